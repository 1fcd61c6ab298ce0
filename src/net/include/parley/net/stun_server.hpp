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

namespace parley::net {

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

  // Totals over all workers; cheap relaxed reads, for /metrics and tests.
  StunCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::net
