// The probe protocol (docs/netcheck.md "The probe peer"): datagrams a network check exchanges
// with the server's probe peer through a TURN allocation, to measure RTT, jitter, loss and
// bandwidth over the real media path. The codec and the peer's state machine; no sockets, time
// injected, nothing allocated per datagram.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include <tl/expected.hpp>

#include <parley/base/endpoint.hpp>

namespace parley::netcheck {

inline constexpr std::uint32_t kProbeMagic = 0x504E4331;  // "PNC1"
inline constexpr std::size_t kProbeHeaderBytes = 32;
inline constexpr std::size_t kProbeMaxDatagram = 1200;
inline constexpr std::size_t kProbeMinDatagram = 200;  // DOWN_START's smallest datagram size

enum class ProbeType : std::uint8_t {
  Hello = 1,
  HelloOk = 2,
  Echo = 3,
  EchoReply = 4,
  UpData = 5,
  UpReportRequest = 6,
  UpReport = 7,
  DownStart = 8,
  DownData = 9,
  DownEnd = 10,
  Error = 11,
};

enum class ProbeErrorCode : std::uint32_t { BadTicket = 1, Expired = 2, Limit = 3, Busy = 4 };

struct ProbeHeader {
  ProbeType type = ProbeType::Echo;
  std::uint64_t sessionId = 0;
  std::uint32_t sequence = 0;
  std::uint32_t value = 0;
  std::uint64_t timestampUs = 0;
};

struct ProbeDatagram {
  ProbeHeader header;
  std::span<const std::uint8_t> body;  // into the parsed buffer
};

// Parses one datagram; an error names what is wrong. Never throws.
tl::expected<ProbeDatagram, std::string_view> parseProbe(std::span<const std::uint8_t> bytes);
// Writes header + body into `out` (body may be empty; padding = zero bytes up to `totalBytes`
// when totalBytes > header + body). Returns the bytes written, 0 when `out` is too small.
std::size_t writeProbe(std::span<std::uint8_t> out, const ProbeHeader& header,
                       std::span<const std::uint8_t> body = {}, std::size_t totalBytes = 0);

// Bodies of the typed messages.
struct HelloOk {
  std::uint32_t maxKbps = 0;
  std::uint32_t maxSeconds = 0;
  std::uint32_t maxEchoPackets = 0;
};
struct UpReport {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t firstArrivalUs = 0;
  std::uint64_t lastArrivalUs = 0;
  std::uint32_t highestSequence = 0;
};
struct DownStart {
  std::uint32_t kbps = 0;
  std::uint32_t durationMs = 0;
  std::uint16_t datagramBytes = 0;
};
std::optional<HelloOk> parseHelloOk(const ProbeDatagram& datagram);
std::optional<UpReport> parseUpReport(const ProbeDatagram& datagram);
std::optional<DownStart> parseDownStart(const ProbeDatagram& datagram);
std::size_t writeHello(std::span<std::uint8_t> out, std::uint64_t sessionId,
                       std::string_view ticket, std::uint64_t timestampUs);
std::size_t writeDownStart(std::span<std::uint8_t> out, std::uint64_t sessionId,
                           const DownStart& start, std::uint64_t timestampUs);

// The session id a ticket id stands for ("5f0c2a9e8d7b6a41" -> 0x5f0c2a9e8d7b6a41).
std::optional<std::uint64_t> sessionIdFromHex(std::string_view hex);

struct ProbeLimits {
  std::uint32_t maxKbps = 10'000;  // under turn.bandwidth_per_allocation_kbps
  std::uint32_t maxSeconds = 4;
  std::uint32_t maxEchoPackets = 200;
  std::size_t maxSessions = 16;
  // DOWN streams running at once over all sessions; beyond it DOWN_START gets ERROR 4 busy.
  std::size_t maxConcurrentDown = 4;
  // DOWN tests one session may run in its life (a check runs one, a retry one more); beyond it
  // ERROR 3 limit, so a ticket cannot keep the probe sending for its whole lifetime.
  std::uint32_t maxDownTestsPerSession = 4;
  // UP_REPORTs one session gets (each a little larger than its request).
  std::uint32_t maxUpReports = 32;
};

struct ProbeCounters {
  std::uint64_t datagramsIn = 0;
  std::uint64_t dropped = 0;  // malformed, unknown session, wrong source, over a limit
  std::uint64_t sessionsStarted = 0;
  std::uint64_t bytesSent = 0;
};

// The probe peer's state machine. The caller feeds every datagram with its source and the time,
// and calls poll() when nextWake() is due; replies and paced DOWN_DATA leave through `send`.
// - Datagrams from a source `fromRelay` refuses, longer than kProbeMaxDatagram, malformed, or of
//   a probe -> client type are dropped silently (counted).
// - Sessions are keyed by source endpoint + session id, in a table of limits.maxSessions slots
//   allocated at construction. HELLO with a ticket `verify` accepts for the header's session id
//   opens one (or answers again for an open one) with HELLO_OK; a full table reuses the session
//   that expired first, or answers ERROR 4 busy. Bad ticket: ERROR 1; expired ticket: ERROR 2.
// - An ERROR is never larger than the datagram it answers (its text is cut to fit), and only
//   one is sent per datagram; anything for a session that does not exist is dropped silently.
// - ECHO -> ECHO_REPLY of the request's size, at most maxEchoPackets per session (the first one
//   over gets ERROR 3, later ones are dropped).
// - UP_DATA is counted; UP_REPORT_REQUEST -> UP_REPORT (at most maxUpReports per session).
// - DOWN_START is clamped to maxKbps (at least 1), maxSeconds and 200..1200-byte datagrams; a
//   DOWN_START while that session's stream runs is a retransmission and ignored.
class ProbeResponder {
 public:
  using Clock = std::chrono::steady_clock;
  // Checks a ticket: the session id it grants and when it expires, or nothing.
  using TicketVerifier =
      std::function<std::optional<std::pair<std::uint64_t, Clock::time_point>>(std::string_view)>;
  // Whether a source address is one of this server's relay addresses (only those are answered).
  using SourceCheck = std::function<bool(const Endpoint&)>;
  using Sender = std::function<void(const Endpoint& to, std::span<const std::uint8_t> bytes)>;

  ProbeResponder(ProbeLimits limits, TicketVerifier verify, SourceCheck fromRelay, Sender send);

  void onDatagram(const Endpoint& from, std::span<const std::uint8_t> bytes, Clock::time_point now);
  // Sends the DOWN_DATA (and DOWN_END) due by `now`; returns when to call again (nullopt:
  // nothing pending). DOWN_DATA is paced evenly; a late poll sends at most 2 ms worth at once
  // and the rest of the stream moves later rather than bursting (but ends at most 1 s after its
  // requested duration; DOWN_END then counts what went out). DOWN_END goes out three times,
  // 10 ms apart, after the last DOWN_DATA.
  std::optional<Clock::time_point> poll(Clock::time_point now);
  // When poll() should next run (nullopt: nothing pending); a DOWN_START makes one due at once.
  std::optional<Clock::time_point> nextWake() const;
  const ProbeCounters& counters() const { return counters_; }

 private:
  struct Session;
  // Implementation detail; fixed-size table of limits.maxSessions sessions.
  struct Table;
  ProbeLimits limits_;
  TicketVerifier verify_;
  SourceCheck fromRelay_;
  Sender send_;
  ProbeCounters counters_;
  std::shared_ptr<Table> table_;
  std::array<std::uint8_t, kProbeMaxDatagram> scratch_{};
};

}  // namespace parley::netcheck
