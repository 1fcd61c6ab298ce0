// The network check's side of the probe protocol (docs/netcheck.md "The probe peer"): RTT,
// jitter, loss and bandwidth measured through a TURN allocation to the server's probe peer.
// Buffers are allocated once per measurement; nothing per datagram.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <parley/netcheck/probe.hpp>
#include <parley/netclient/media.hpp>

namespace parley::netclient {
namespace {

using namespace std::chrono_literals;
using netcheck::ProbeDatagram;
using netcheck::ProbeHeader;
using netcheck::ProbeType;

// The bytes of one ECHO: about an audio packet.
constexpr std::size_t kEchoBytes = 160;
// UP_DATA: a video packet's size.
constexpr std::size_t kBandwidthDatagram = netcheck::kProbeMaxDatagram;
// DOWN_DATA a little smaller: a TURN server sends ChannelData over DTLS in records that must
// fit a 1200-byte datagram (parley's DTLS MTU, as WebRTC's), so 1200 bytes of data would not.
constexpr std::size_t kDownDatagram = 1100;
// How long an unreliable transport waits for an answer before it asks again.
constexpr auto kRetryAfter = 400ms;
constexpr int kHelloTries = 3;

std::uint64_t microsNow() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
          .count());
}

Failure probeError(const ProbeDatagram& datagram, const TurnAllocation& allocation) {
  const std::string text(reinterpret_cast<const char*>(datagram.body.data()),
                         std::min<std::size_t>(datagram.body.size(), 200));
  switch (static_cast<netcheck::ProbeErrorCode>(datagram.header.value)) {
    case netcheck::ProbeErrorCode::BadTicket:
      return Failure{"auth_failed", fmt::format("the probe refused the check's ticket ({})", text)};
    case netcheck::ProbeErrorCode::Expired:
      return Failure{"auth_failed", fmt::format("the probe's ticket expired ({})", text)};
    case netcheck::ProbeErrorCode::Limit:
      return Failure{"rate_limited", fmt::format("the probe's limit was reached ({})", text)};
    case netcheck::ProbeErrorCode::Busy:
      return Failure{"rate_limited", fmt::format("the probe is busy ({})", text)};
  }
  return Failure{"protocol", fmt::format("the probe answered error {} over {} ({})",
                                         datagram.header.value, allocation.describe(), text)};
}

// One conversation with the probe through an allocation.
class ProbeChannel {
 public:
  ProbeChannel(TurnAllocation& allocation, const ProbeSession& probe)
      : allocation_(allocation), probe_(probe) {}

  TurnAllocation& allocation() { return allocation_; }
  // The whole size of the datagram receive() returned last (padding included).
  std::size_t lastSize() const { return lastSize_; }

  Result<void> send(const ProbeHeader& header, std::size_t totalBytes, Deadline deadline,
                    std::span<const std::uint8_t> body = {}) {
    const std::size_t size = netcheck::writeProbe(out_, header, body, totalBytes);
    if (size == 0) return tl::unexpected(Failure{"protocol", "a probe datagram does not fit"});
    return allocation_.sendToPeer(std::span<const std::uint8_t>(out_.data(), size), deadline);
  }

  // The next probe datagram of this session by `until`; nullopt when none came. An ERROR from
  // the probe is a failure. The datagram's body points into this channel's buffer.
  Result<std::optional<ProbeDatagram>> receive(Deadline until) {
    // Each pass takes one datagram; the allocation's receive honours `until`.
    for (int pass = 0; pass < 100'000; ++pass) {
      auto got = allocation_.receiveFromPeer(in_, until);
      if (!got) {
        if (got.error().code == "timeout") return std::optional<ProbeDatagram>{};
        return tl::unexpected(got.error());
      }
      auto datagram = netcheck::parseProbe(std::span<const std::uint8_t>(in_.data(), *got));
      if (!datagram || datagram->header.sessionId != probe_.sessionId) continue;
      lastSize_ = *got;
      if (datagram->header.type == ProbeType::Error)
        return tl::unexpected(probeError(*datagram, allocation_));
      return std::optional<ProbeDatagram>(*datagram);
    }
    return std::optional<ProbeDatagram>{};
  }

  // HELLO until HELLO_OK: three tries on unreliable transports, one on streams.
  Result<netcheck::HelloOk> hello(Deadline deadline) {
    const int tries = allocation_.reliable() ? 1 : kHelloTries;
    for (int attempt = 0; attempt < tries; ++attempt) {
      const std::size_t size =
          netcheck::writeHello(out_, probe_.sessionId, probe_.ticket, microsNow());
      if (size == 0) return tl::unexpected(Failure{"protocol", "the probe ticket is too long"});
      if (auto sent =
              allocation_.sendToPeer(std::span<const std::uint8_t>(out_.data(), size), deadline);
          !sent)
        return tl::unexpected(sent.error());
      const Deadline until =
          attempt + 1 == tries ? deadline : std::min(deadline, Clock::now() + kRetryAfter);
      // Skip what is left of an earlier measurement until HELLO_OK or `until`.
      for (int pass = 0; pass < 100'000 && Clock::now() < until; ++pass) {
        auto datagram = receive(until);
        if (!datagram) return tl::unexpected(datagram.error());
        if (!*datagram) break;
        if (auto ok = netcheck::parseHelloOk(**datagram)) return *ok;
      }
      if (Clock::now() >= deadline) break;
    }
    return tl::unexpected(
        Failure{"timeout", fmt::format("the probe {} did not answer HELLO through {}",
                                       probe_.peer.toString(), allocation_.describe())});
  }

 private:
  TurnAllocation& allocation_;
  const ProbeSession& probe_;
  std::array<std::uint8_t, netcheck::kProbeMaxDatagram> out_{};
  std::array<std::uint8_t, 65'536> in_{};
  std::size_t lastSize_ = 0;
};

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// Rate over the span of arrivals: the first datagram's bytes arrived at its timestamp, so the
// span carries the others. Very short spans (one datagram, or all at once) say nothing: then
// `fallbackSeconds` (how long sending took) is used.
double kbitPerSecond(std::uint64_t bytes, std::uint64_t packets, std::uint64_t firstUs,
                     std::uint64_t lastUs, double fallbackSeconds) {
  if (packets == 0 || bytes == 0) return 0;
  const double spanUs = lastUs > firstUs ? static_cast<double>(lastUs - firstUs) : 0.0;
  if (packets >= 2 && spanUs >= 10'000 && spanUs >= fallbackSeconds * 1e6 / 4) {
    const double carried = static_cast<double>(bytes) * static_cast<double>(packets - 1) /
                           static_cast<double>(packets);
    return carried * 8 / spanUs * 1000;
  }
  if (fallbackSeconds <= 0) return 0;
  return static_cast<double>(bytes) * 8 / fallbackSeconds / 1000;
}

double lossPercent(double expected, double received) {
  if (expected <= 0) return 0;
  return std::clamp((expected - received) / expected * 100, 0.0, 100.0);
}

}  // namespace

Result<PathQuality> measurePath(TurnAllocation& allocation, const ProbeSession& probe,
                                unsigned count, std::chrono::milliseconds interval,
                                Deadline deadline) {
  ProbeChannel channel(allocation, probe);
  auto limits = channel.hello(deadline);
  if (!limits) return tl::unexpected(limits.error());
  if (limits->maxEchoPackets > 0) count = std::min(count, limits->maxEchoPackets);
  if (count == 0) return tl::unexpected(Failure{"protocol", "no echoes to send"});

  std::vector<double> rtts;
  rtts.reserve(count);
  std::vector<bool> answered(count, false);
  double jitterMs = 0;
  std::optional<double> previousTransitMs;
  unsigned sent = 0;

  // RFC 3550 §6.4.1 over the round trip: J += (|D(i-1,i)| - J) / 16, where D is the difference
  // of two replies' transit times (here the round trip, both ends on our clock).
  const auto take = [&](const ProbeDatagram& datagram) {
    if (datagram.header.type != ProbeType::EchoReply) return;
    const std::uint32_t sequence = datagram.header.sequence;
    if (sequence >= count || answered[sequence]) return;
    const std::uint64_t now = microsNow();
    if (datagram.header.timestampUs > now) return;
    answered[sequence] = true;
    const double transitMs = static_cast<double>(now - datagram.header.timestampUs) / 1000.0;
    rtts.push_back(transitMs);
    if (previousTransitMs) jitterMs += (std::abs(transitMs - *previousTransitMs) - jitterMs) / 16.0;
    previousTransitMs = transitMs;
  };

  const Clock::time_point start = Clock::now();
  for (unsigned i = 0; i < count; ++i) {
    const Clock::time_point due = start + i * interval;
    if (due >= deadline) break;
    // Read replies while waiting for the next send.
    for (int pass = 0; pass < 10'000 && Clock::now() < due; ++pass) {
      auto datagram = channel.receive(due);
      if (!datagram) return tl::unexpected(datagram.error());
      if (!*datagram) break;
      take(**datagram);
    }
    ProbeHeader header{ProbeType::Echo, probe.sessionId, i, 0, microsNow()};
    if (auto done = channel.send(header, kEchoBytes, deadline); !done)
      return tl::unexpected(done.error());
    ++sent;
  }
  // Stragglers: up to a second after the last echo (or the deadline), until all are back.
  const Deadline drainUntil = std::min(deadline, Clock::now() + 1s);
  for (int pass = 0; pass < 10'000 && rtts.size() < sent && Clock::now() < drainUntil; ++pass) {
    auto datagram = channel.receive(drainUntil);
    if (!datagram) return tl::unexpected(datagram.error());
    if (!*datagram) break;
    take(**datagram);
  }
  if (rtts.empty())
    return tl::unexpected(
        Failure{"timeout", fmt::format("none of {} echoes came back from the probe {} through {}",
                                       sent, probe.peer.toString(), allocation.describe())});
  PathQuality quality;
  quality.sent = sent;
  quality.received = static_cast<unsigned>(rtts.size());
  quality.rttMs = median(rtts);
  quality.jitterMs = jitterMs;
  quality.lossPercent = lossPercent(sent, static_cast<double>(rtts.size()));
  return quality;
}

namespace {

// HELLO, then the offer clamped to what the probe grants: rate and duration, or why nothing
// is left to measure.
Result<void> helloAndClamp(ProbeChannel& channel, unsigned& offeredKbps,
                           std::chrono::milliseconds& duration, Deadline deadline) {
  auto limits = channel.hello(deadline);
  if (!limits) return tl::unexpected(limits.error());
  if (limits->maxKbps > 0) offeredKbps = std::min(offeredKbps, limits->maxKbps);
  if (limits->maxSeconds > 0)
    duration =
        std::min<std::chrono::milliseconds>(duration, std::chrono::seconds(limits->maxSeconds));
  if (offeredKbps == 0 || duration <= 0ms)
    return tl::unexpected(Failure{"protocol", "nothing to measure: no rate or no time"});
  return {};
}

}  // namespace

Result<Bandwidth> measureUp(TurnAllocation& allocation, const ProbeSession& probe,
                            unsigned offeredKbps, std::chrono::milliseconds duration,
                            Deadline deadline) {
  ProbeChannel channel(allocation, probe);
  if (auto clamped = helloAndClamp(channel, offeredKbps, duration, deadline); !clamped)
    return tl::unexpected(clamped.error());

  // Even pacing by a steady clock: datagram i leaves at start + i * gap. On streams a blocked
  // write simply makes the next datagrams late, which slows the pace to what the path takes.
  const auto gap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
      static_cast<double>(kBandwidthDatagram) * 8 / (static_cast<double>(offeredKbps) * 1000)));
  const Clock::time_point start = Clock::now();
  const Clock::time_point stopSending = std::min(start + duration, deadline);
  std::uint32_t sequence = 0;
  // Bounded by the duration: one datagram per gap.
  for (; sequence < 10'000'000; ++sequence) {
    const Clock::time_point due = start + sequence * gap;
    // A path slower than the offer leaves us behind the schedule: sending still stops on time.
    if (due >= stopSending || Clock::now() >= stopSending) break;
    const auto now = Clock::now();
    if (now < due) std::this_thread::sleep_for(std::min<Clock::duration>(due - now, 20ms));
    if (Clock::now() < due) std::this_thread::sleep_until(due);
    ProbeHeader header{ProbeType::UpData, probe.sessionId, sequence, 0, microsNow()};
    if (auto done = channel.send(header, kBandwidthDatagram, deadline); !done)
      return tl::unexpected(done.error());
  }
  const double sendSeconds = std::chrono::duration<double>(Clock::now() - start).count();

  // UP_REPORT_REQUEST until UP_REPORT (asked again on unreliable transports).
  std::optional<netcheck::UpReport> report;
  for (int attempt = 0; attempt < 20 && !report && Clock::now() < deadline; ++attempt) {
    ProbeHeader request{ProbeType::UpReportRequest, probe.sessionId, sequence, 0, microsNow()};
    if (auto done = channel.send(request, 0, deadline); !done) return tl::unexpected(done.error());
    const Deadline until =
        allocation.reliable() ? deadline : std::min(deadline, Clock::now() + kRetryAfter);
    for (int pass = 0; pass < 100'000 && Clock::now() < until; ++pass) {
      auto datagram = channel.receive(until);
      if (!datagram) return tl::unexpected(datagram.error());
      if (!*datagram) break;
      if ((report = netcheck::parseUpReport(**datagram))) break;
    }
  }
  if (!report)
    return tl::unexpected(
        Failure{"timeout", fmt::format("the probe {} sent no report on what it received through {}",
                                       probe.peer.toString(), allocation.describe())});
  Bandwidth result;
  result.offeredKbps = offeredKbps;
  result.seconds = sendSeconds;
  result.bytes = report->bytes;
  result.kbps = kbitPerSecond(report->bytes, report->packets, report->firstArrivalUs,
                              report->lastArrivalUs, sendSeconds);
  // Sequences start at 0: the highest one seen says how many were sent up to it.
  result.lossPercent = report->packets == 0
                           ? 100.0
                           : lossPercent(static_cast<double>(report->highestSequence) + 1,
                                         static_cast<double>(report->packets));
  return result;
}

Result<Bandwidth> measureDown(TurnAllocation& allocation, const ProbeSession& probe,
                              unsigned offeredKbps, std::chrono::milliseconds duration,
                              Deadline deadline) {
  ProbeChannel channel(allocation, probe);
  if (auto clamped = helloAndClamp(channel, offeredKbps, duration, deadline); !clamped)
    return tl::unexpected(clamped.error());

  // Room to tell duplicates apart: the datagrams the probe can send in the time, and some.
  const auto expected = static_cast<std::size_t>(
      std::ceil(static_cast<double>(offeredKbps) * 1000 / 8 *
                std::chrono::duration<double>(duration).count() / kDownDatagram));
  std::vector<bool> seen(expected + 64, false);
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t firstUs = 0;
  std::uint64_t lastUs = 0;
  std::uint32_t highest = 0;
  std::optional<std::uint32_t> sentByProbe;

  const netcheck::DownStart start{offeredKbps, static_cast<std::uint32_t>(duration.count()),
                                  static_cast<std::uint16_t>(kDownDatagram)};
  std::array<std::uint8_t, 64> startBuffer{};
  const Clock::time_point began = Clock::now();
  // The probe ends at most a second after the requested duration (docs/netcheck.md).
  const Deadline until = std::min(deadline, began + duration + 1500ms);
  Clock::time_point askAgainAt = began;
  int asked = 0;
  for (int pass = 0; pass < 10'000'000 && Clock::now() < until; ++pass) {
    // DOWN_START until data flows; the probe ignores a repeat while its stream runs.
    if (packets == 0 && !sentByProbe && Clock::now() >= askAgainAt &&
        asked < (allocation.reliable() ? 1 : 5)) {
      const std::size_t size =
          netcheck::writeDownStart(startBuffer, probe.sessionId, start, microsNow());
      if (auto done = allocation.sendToPeer(std::span<const std::uint8_t>(startBuffer.data(), size),
                                            deadline);
          !done)
        return tl::unexpected(done.error());
      ++asked;
      askAgainAt = allocation.reliable() ? until : Clock::now() + kRetryAfter;
    }
    auto datagram = channel.receive(packets == 0 ? std::min(askAgainAt, until) : until);
    if (!datagram) return tl::unexpected(datagram.error());
    if (!*datagram) continue;
    const ProbeDatagram& d = **datagram;
    if (d.header.type == ProbeType::DownEnd) {
      sentByProbe = d.header.value;
      break;
    }
    if (d.header.type != ProbeType::DownData) continue;
    const std::uint32_t sequence = d.header.sequence;
    if (sequence < seen.size()) {
      if (seen[sequence]) continue;
      seen[sequence] = true;
    }
    const std::uint64_t now = microsNow();
    if (packets == 0) firstUs = now;
    lastUs = now;
    ++packets;
    bytes += channel.lastSize();
    highest = std::max(highest, sequence);
  }
  if (packets == 0)
    return tl::unexpected(
        Failure{"timeout", fmt::format("no data came from the probe {} through {}",
                                       probe.peer.toString(), allocation.describe())});
  Bandwidth result;
  result.offeredKbps = offeredKbps;
  result.bytes = bytes;
  result.seconds = static_cast<double>(lastUs - firstUs) / 1e6;
  result.kbps = kbitPerSecond(bytes, packets, firstUs, lastUs,
                              std::chrono::duration<double>(duration).count());
  const double expectedPackets =
      sentByProbe ? static_cast<double>(*sentByProbe) : static_cast<double>(highest) + 1;
  result.lossPercent = lossPercent(expectedPackets, static_cast<double>(packets));
  return result;
}

}  // namespace parley::netclient
