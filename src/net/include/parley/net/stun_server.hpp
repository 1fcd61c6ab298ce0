// STUN server over UDP and TCP: one event loop thread per worker, each with its own
// SO_REUSEPORT sockets, so workers share nothing on the packet path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <parley/base/endpoint.hpp>
#include <parley/net/counters.hpp>
#include <parley/tls/accepted_stream.hpp>
#include <parley/tls/context.hpp>
#include <parley/turn/peer_filter.hpp>
#include <parley/turn/server.hpp>

namespace parley::net {

// The TURN relay (RFC 8656) on the same listeners. Disabled: STUN only.
struct TurnRelayOptions {
  bool enabled = false;
  turn::Options protocol;                // realm, credentials, lifetimes, quotas per allocation
  std::vector<turn::Cidr> allowedPeers;  // override the built-in deny list (tests: loopback)
  std::vector<turn::Cidr> deniedPeers;
  // Exactly these address:port peers are relayable whatever the lists say, and nothing else of
  // their ranges (the network check's probe peer, docs/netcheck.md).
  std::vector<Endpoint> exemptPeers;
  // Addresses relay sockets bind to, per family; none for a family means 440 for it.
  std::optional<IpAddress> relayAddressV4;
  std::optional<IpAddress> relayAddressV6;
  // Advertised instead of the bound address behind a 1:1 NAT (XOR-RELAYED-ADDRESS).
  std::optional<IpAddress> externalAddressV4;
  std::optional<IpAddress> externalAddressV6;
  std::uint16_t relayPortMin = 49152;
  std::uint16_t relayPortMax = 65535;
  std::size_t maxAllocationsTotal = 10'000;
  // Relay socket buffers: a key-frame burst of a 2 Mbit/s stream (~250 KB) must fit.
  int relaySocketBufferBytes = 1 << 20;
};

// STUN/TURN over TLS (TCP) and DTLS (UDP) on their own port (RFC 8656 §3.1: 5349).
struct TlsListenerOptions {
  bool tls = false;
  bool dtls = false;
  std::uint16_t port = 5349;  // 0 picks a free port (tests)
  // Certificates; reloaded on SIGHUP by whoever owns the holder. Required when tls or dtls.
  std::shared_ptr<tls::ContextHolder> contexts;
};

struct StunServerOptions {
  std::vector<IpAddress> listenAddresses;  // each gets UDP and/or TCP on `port`
  std::uint16_t port = 3478;               // 0 picks a free port (tests)
  // RFC 5780: a second address (and port) lets clients probe NAT behaviour with CHANGE-REQUEST
  // and is advertised as OTHER-ADDRESS. Only used with exactly one listen address.
  std::optional<IpAddress> alternateAddress;
  std::uint16_t alternatePort = 3479;
  bool udp = true;
  bool tcp = true;
  unsigned threads = 1;
  std::string software = "parley";                   // SOFTWARE attribute; empty sends none
  std::chrono::milliseconds tcpIdleTimeout{30'000};  // no complete message for this long: close
  std::size_t tcpMaxConnections = 10'000;            // across all workers
  std::size_t tcpMaxMessageSize = 65'535 + 20;       // larger framed messages close the stream
  TurnRelayOptions turn;
  TlsListenerOptions tls;  // disabled by default: STUN only
};

// Thrown by start() when a socket cannot be bound; what() names the address and port.
class BindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class StunServer {
 public:
  explicit StunServer(StunServerOptions options);
  ~StunServer();
  StunServer(const StunServer&) = delete;
  StunServer& operator=(const StunServer&) = delete;

  // Binds every socket (throws BindError) and starts the worker threads. Returns at once.
  void start();
  // Stops the workers and joins them. Safe to call more than once.
  void stop();

  // The endpoints actually bound, e.g. after port 0 was requested.
  std::vector<Endpoint> udpEndpoints() const;
  std::vector<Endpoint> tcpEndpoints() const;
  std::vector<Endpoint> tlsEndpoints() const;
  std::vector<Endpoint> dtlsEndpoints() const;

  // Totals over all workers; cheap relaxed reads, for /metrics and tests.
  StunCounters counters() const;
  // Replaces the TURN long-term users and REST secrets in every worker (SIGHUP reload);
  // allocations made with old credentials keep running until they expire.
  void updateCredentials(std::vector<std::pair<std::string, std::string>> users,
                         std::vector<std::string> restSecrets);
  // TURN totals over all workers, as of each worker's last tick (about once a second).
  turn::Counters turnCounters() const;
  // Serves a TCP connection another listener accepted (the HTTPS port, when the client spoke
  // STUN/TURN): its TLS session, if any, and the bytes already read continue here as if this
  // server had accepted it, with `stream.client` as the client's address. Thread-safe, returns
  // at once; counted against tcp_max_connections. Dropped (closed) when the server is not running.
  void adoptStream(tls::AcceptedStream&& stream);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::net
