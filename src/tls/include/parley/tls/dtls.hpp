// A sans-IO DTLS 1.2 server (RFC 6347): many clients over one UDP socket, told apart by their
// address:port. The caller owns the socket and the clock: it hands in each received datagram
// and the time, and sends what comes back in a DtlsOutput. Nothing is kept for a client until
// it has echoed a cookie (stateless HelloVerifyRequest), so spoofed ClientHellos cost no
// memory. One DtlsServer per socket and thread; not thread-safe. Nothing here throws on the
// packet path: bad input is dropped and counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <parley/base/endpoint.hpp>
#include <parley/tls/context.hpp>

namespace parley::tls {

namespace detail {
struct OutputWriter;
}

using Clock = std::chrono::steady_clock;

// Abuse limits and timers, with their defaults.
struct DtlsLimits {
  // Sessions (in handshake or established) at once; ClientHellos beyond are dropped.
  std::size_t maxSessions = 10000;
  // From cookie exchange to Finished; a client that stalls longer is dropped.
  std::chrono::seconds handshakeTimeout{10};
  // An established session with nothing decrypted from its peer for this long is closed.
  std::chrono::seconds idleTimeout{300};
  // Largest UDP payload sent: 1200, as WebRTC stacks use, fits the IPv6 minimum link MTU of
  // 1280 (RFC 8200 §5) with the IP and UDP headers, so nothing is fragmented.
  std::size_t mtu = 1200;
  // First handshake retransmission timeout, doubled per retry up to 60 s (RFC 6347 §4.2.4.1).
  std::chrono::milliseconds retransmitInitial{1000};
};

enum class CloseReason : std::uint8_t {
  PeerClosed,        // close_notify received
  Local,             // close() called
  HandshakeFailed,   // fatal alert or protocol error during the handshake
  HandshakeTimeout,  // DtlsLimits::handshakeTimeout passed before Finished
  IdleTimeout,       // DtlsLimits::idleTimeout passed without data from the peer
  Error,             // fatal alert or protocol error after the handshake
  Replaced,          // the peer started a new handshake from the same address:port
};
const char* toString(CloseReason reason);

// One datagram to send or one decrypted record, as a slice of DtlsOutput's buffer.
struct DtlsChunk {
  Endpoint peer;
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
};

struct DtlsClosed {
  Endpoint peer;
  CloseReason reason = CloseReason::Local;
};

// What one call produced, in order per peer. Reuse one across calls (clear() keeps capacity),
// so the packet path does not allocate once warm.
class DtlsOutput {
 public:
  // Datagrams to send, each to its `peer` (handshake flights, alerts, encrypted records).
  const std::vector<DtlsChunk>& datagrams() const { return datagrams_; }
  // Decrypted application records, one per DTLS record.
  const std::vector<DtlsChunk>& received() const { return received_; }
  // Peers whose handshake completed in this call.
  const std::vector<Endpoint>& established() const { return established_; }
  // Sessions that ended in this call; each session ends exactly once.
  const std::vector<DtlsClosed>& closed() const { return closed_; }

  // The bytes of a chunk of this output; valid until the next call that adds to it.
  std::span<const std::uint8_t> bytes(const DtlsChunk& chunk) const {
    return {buffer_.data() + chunk.offset, chunk.size};
  }
  bool empty() const {
    return datagrams_.empty() && received_.empty() && established_.empty() && closed_.empty();
  }
  void clear();

 private:
  friend struct detail::OutputWriter;

  std::vector<std::uint8_t> buffer_;
  std::vector<DtlsChunk> datagrams_;
  std::vector<DtlsChunk> received_;
  std::vector<Endpoint> established_;
  std::vector<DtlsClosed> closed_;
};

// Counters for metrics; the packet path counts instead of logging.
struct DtlsCounters {
  std::uint64_t datagramsIn = 0;
  std::uint64_t ignored = 0;              // from an unknown peer and not a ClientHello
  std::uint64_t helloVerifyRequests = 0;  // ClientHellos answered statelessly with a cookie
  std::uint64_t sessionLimitDrops = 0;    // ClientHellos dropped at maxSessions
  std::uint64_t handshakesStarted = 0;    // cookie verified: a session was created
  std::uint64_t handshakesCompleted = 0;
  std::uint64_t handshakeFailures = 0;
  std::uint64_t handshakeTimeouts = 0;
  std::uint64_t idleTimeouts = 0;
  std::uint64_t retransmissions = 0;  // flights resent on a timer
  std::uint64_t recordsIn = 0;        // application records decrypted
  std::uint64_t recordsOut = 0;       // application records encrypted
  std::uint64_t sendRejected = 0;     // send() without a session, too large, or failed
  std::uint64_t sessionErrors = 0;    // established sessions ended by a fatal error
};

class DtlsServer {
 public:
  using TimePoint = Clock::time_point;

  // Each new handshake uses contexts.current(), so a reload applies to new sessions while
  // existing ones keep theirs. `contexts` must outlive the server.
  explicit DtlsServer(const ContextHolder& contexts, DtlsLimits limits = {});
  // A fixed context.
  explicit DtlsServer(std::shared_ptr<ServerContext> context, DtlsLimits limits = {});
  ~DtlsServer();
  DtlsServer(const DtlsServer&) = delete;
  DtlsServer& operator=(const DtlsServer&) = delete;

  // A datagram from `peer`. From an unknown peer only a ClientHello is considered: without a
  // valid cookie it is answered with a HelloVerifyRequest and forgotten; with one a session
  // starts. Handshake flights, alerts and decrypted records are appended to `out`.
  void onDatagram(const Endpoint& peer, std::span<const std::uint8_t> datagram, TimePoint now,
                  DtlsOutput& out);

  // Encrypts `plaintext` as one record to `peer` into `out`. False (and nothing added) when
  // there is no established session or the plaintext exceeds maxPlaintext(peer).
  bool send(const Endpoint& peer, std::span<const std::uint8_t> plaintext, DtlsOutput& out);

  // Runs timers: handshake retransmissions, handshake and idle timeouts. Call every 100-250 ms.
  // Retransmissions follow OpenSSL's own (monotonic wall) clock; timeouts follow `now`.
  void tick(TimePoint now, DtlsOutput& out);

  // Sends close_notify and forgets the session (reported in out.closed() as Local).
  void close(const Endpoint& peer, DtlsOutput& out);

  std::size_t sessionCount() const { return sessions_.size(); }
  bool isEstablished(const Endpoint& peer) const;
  // The ALPN protocol negotiated with `peer`; empty if none or no session.
  std::string alpn(const Endpoint& peer) const;
  // The largest plaintext send() accepts for `peer` (from the MTU); 0 without a session.
  std::size_t maxPlaintext(const Endpoint& peer) const;
  const DtlsCounters& counters() const { return counters_; }
  const DtlsLimits& limits() const { return limits_; }

 private:
  struct Session;
  struct EndpointHash {
    std::size_t operator()(const Endpoint& endpoint) const;
  };
  using Sessions = std::unordered_map<Endpoint, std::unique_ptr<Session>, EndpointHash>;

  std::shared_ptr<ServerContext> currentContext() const;
  // Runs the stateless cookie exchange on `datagram`; returns the new session if the cookie
  // was valid.
  std::unique_ptr<Session> listen(const Endpoint& peer, std::span<const std::uint8_t> datagram,
                                  TimePoint now, DtlsOutput& out);
  // Feeds one datagram to an existing session; ends (erases) it on close or fatal error.
  void feed(Sessions::iterator it, std::span<const std::uint8_t> datagram, TimePoint now,
            DtlsOutput& out);
  // Advances the handshake and reads records; says why the session must end, if it must.
  std::optional<CloseReason> drive(Session& session, TimePoint now, DtlsOutput& out);
  void end(Sessions::iterator it, CloseReason reason, bool notifyPeer, DtlsOutput& out);
  std::unique_ptr<Session> newSession(const Endpoint& peer);

  const ContextHolder* holder_ = nullptr;
  std::shared_ptr<ServerContext> fixed_;
  DtlsLimits limits_;
  DtlsCounters counters_;
  Sessions sessions_;
  // The SSL that runs DTLSv1_listen for unknown peers. It keeps nothing between datagrams
  // (DTLSv1_listen clears it); when a cookie verifies it becomes that peer's session.
  std::unique_ptr<Session> listener_;
  std::vector<std::uint8_t> scratch_;  // one decrypted record
};

}  // namespace parley::tls
