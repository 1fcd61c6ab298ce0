// The probe protocol (docs/netcheck.md "Wire format"): the codec over byte spans and the probe
// peer's state machine. Nothing here allocates after construction: replies are written into the
// responder's scratch buffer and sessions live in a table sized once.
#include <algorithm>
#include <vector>

#include <parley/netcheck/probe.hpp>

namespace parley::netcheck {

namespace {

void putU16(std::uint8_t* out, std::uint16_t value) {
  out[0] = static_cast<std::uint8_t>(value >> 8);
  out[1] = static_cast<std::uint8_t>(value);
}
void putU32(std::uint8_t* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}
void putU64(std::uint8_t* out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::uint8_t>(value >> (56 - 8 * i));
}
std::uint16_t getU16(const std::uint8_t* in) {
  return static_cast<std::uint16_t>((in[0] << 8) | in[1]);
}
std::uint32_t getU32(const std::uint8_t* in) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value = (value << 8) | in[i];
  return value;
}
std::uint64_t getU64(const std::uint8_t* in) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value = (value << 8) | in[i];
  return value;
}

// Types whose datagrams may be longer than header + body: the rest is padding.
bool isPadded(ProbeType type) {
  return type == ProbeType::Echo || type == ProbeType::EchoReply || type == ProbeType::UpData ||
         type == ProbeType::DownData;
}

constexpr std::size_t kHelloOkBody = 8;
constexpr std::size_t kUpReportBody = 8 * 4 + 4;
constexpr std::size_t kDownStartBody = 4 + 2;

}  // namespace

tl::expected<ProbeDatagram, std::string_view> parseProbe(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kProbeHeaderBytes)
    return tl::unexpected(std::string_view("shorter than the probe header"));
  const std::uint8_t* p = bytes.data();
  if (getU32(p) != kProbeMagic)
    return tl::unexpected(std::string_view("not a probe datagram (bad magic)"));
  const std::uint8_t type = p[4];
  if (type < static_cast<std::uint8_t>(ProbeType::Hello) ||
      type > static_cast<std::uint8_t>(ProbeType::Error)) {
    return tl::unexpected(std::string_view("unknown probe type"));
  }
  if (p[5] != 0) return tl::unexpected(std::string_view("probe flags are not 0"));
  const std::size_t bodyLength = getU16(p + 6);
  const std::size_t room = bytes.size() - kProbeHeaderBytes;
  if (bodyLength > room) return tl::unexpected(std::string_view("body length beyond the datagram"));
  ProbeDatagram datagram;
  datagram.header.type = static_cast<ProbeType>(type);
  if (bodyLength < room && !isPadded(datagram.header.type)) {
    return tl::unexpected(std::string_view("bytes after the body of an unpadded type"));
  }
  datagram.header.sessionId = getU64(p + 8);
  datagram.header.sequence = getU32(p + 16);
  datagram.header.value = getU32(p + 20);
  datagram.header.timestampUs = getU64(p + 24);
  datagram.body = bytes.subspan(kProbeHeaderBytes, bodyLength);
  return datagram;
}

std::size_t writeProbe(std::span<std::uint8_t> out, const ProbeHeader& header,
                       std::span<const std::uint8_t> body, std::size_t totalBytes) {
  if (body.size() > 0xFFFF) return 0;
  const std::size_t total = std::max(kProbeHeaderBytes + body.size(), totalBytes);
  if (out.size() < total) return 0;
  std::uint8_t* p = out.data();
  putU32(p, kProbeMagic);
  p[4] = static_cast<std::uint8_t>(header.type);
  p[5] = 0;
  putU16(p + 6, static_cast<std::uint16_t>(body.size()));
  putU64(p + 8, header.sessionId);
  putU32(p + 16, header.sequence);
  putU32(p + 20, header.value);
  putU64(p + 24, header.timestampUs);
  // memmove semantics: an echo may hand its own body back from the same buffer.
  if (!body.empty())
    std::copy_backward(body.begin(), body.end(), p + kProbeHeaderBytes + body.size());
  std::fill(p + kProbeHeaderBytes + body.size(), p + total, std::uint8_t{0});
  return total;
}

std::optional<HelloOk> parseHelloOk(const ProbeDatagram& datagram) {
  if (datagram.header.type != ProbeType::HelloOk || datagram.body.size() != kHelloOkBody) {
    return std::nullopt;
  }
  return HelloOk{datagram.header.value, getU32(datagram.body.data()),
                 getU32(datagram.body.data() + 4)};
}

std::optional<UpReport> parseUpReport(const ProbeDatagram& datagram) {
  if (datagram.header.type != ProbeType::UpReport || datagram.body.size() != kUpReportBody) {
    return std::nullopt;
  }
  const std::uint8_t* b = datagram.body.data();
  return UpReport{getU64(b), getU64(b + 8), getU64(b + 16), getU64(b + 24), getU32(b + 32)};
}

std::optional<DownStart> parseDownStart(const ProbeDatagram& datagram) {
  if (datagram.header.type != ProbeType::DownStart || datagram.body.size() != kDownStartBody) {
    return std::nullopt;
  }
  return DownStart{datagram.header.value, getU32(datagram.body.data()),
                   getU16(datagram.body.data() + 4)};
}

std::size_t writeHello(std::span<std::uint8_t> out, std::uint64_t sessionId,
                       std::string_view ticket, std::uint64_t timestampUs) {
  ProbeHeader header{ProbeType::Hello, sessionId, 0, 0, timestampUs};
  return writeProbe(out, header,
                    {reinterpret_cast<const std::uint8_t*>(ticket.data()), ticket.size()});
}

std::size_t writeDownStart(std::span<std::uint8_t> out, std::uint64_t sessionId,
                           const DownStart& start, std::uint64_t timestampUs) {
  std::array<std::uint8_t, kDownStartBody> body{};
  putU32(body.data(), start.durationMs);
  putU16(body.data() + 4, start.datagramBytes);
  ProbeHeader header{ProbeType::DownStart, sessionId, 0, start.kbps, timestampUs};
  return writeProbe(out, header, body);
}

std::optional<std::uint64_t> sessionIdFromHex(std::string_view hex) {
  if (hex.size() != 16) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : hex) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    value = (value << 4) | digit;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// The responder

namespace {

using Clock = ProbeResponder::Clock;

// DOWN_END goes out this many times, this far apart, so one lost datagram does not leave the
// client waiting for its deadline.
constexpr int kDownEndCopies = 3;
constexpr std::chrono::microseconds kDownEndSpacing{10'000};
// How much longer than asked a stream held back by late polls may run before it is cut short.
constexpr std::chrono::seconds kDownGrace{1};
// "No bursts longer than 2 ms" (docs/netcheck.md).
constexpr std::int64_t kMaxBurstUs = 2'000;

std::uint64_t microseconds(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

}  // namespace

struct ProbeResponder::Session {
  bool used = false;
  Endpoint peer;
  std::uint64_t id = 0;
  Clock::time_point expires;
  std::uint32_t echoes = 0;
  bool echoLimitReported = false;
  std::uint32_t upReports = 0;
  UpReport up;
  std::uint32_t downTests = 0;

  // The running DOWN stream: `total` datagrams of `datagramBytes` evenly over `durationUs`
  // from `start`; datagram i is due at start + i * durationUs / total.
  bool downActive = false;
  Clock::time_point downStart;
  Clock::time_point downDeadline;  // the stream stops here even if late polls held it back
  std::int64_t downDurationUs = 0;
  std::uint32_t downTotal = 0;
  std::uint32_t downSent = 0;
  std::uint16_t datagramBytes = 0;
  std::uint64_t downBytes = 0;
  int endsLeft = 0;  // DOWN_END copies still to send once every DOWN_DATA went out
  Clock::time_point nextEnd;

  Clock::time_point dueAt(std::uint32_t index) const {
    // Rounded up, so poll() at this time finds datagram `index` due (no spinning on a wake-up
    // that sends nothing).
    const std::int64_t offset =
        downTotal == 0
            ? 0
            : (static_cast<std::int64_t>(index) * downDurationUs + downTotal - 1) / downTotal;
    return downStart + std::chrono::microseconds(offset);
  }
};

struct ProbeResponder::Table {
  std::vector<Session> sessions;
  std::size_t activeDown = 0;
};

ProbeResponder::ProbeResponder(ProbeLimits limits, TicketVerifier verify, SourceCheck fromRelay,
                               Sender send)
    : limits_(limits),
      verify_(std::move(verify)),
      fromRelay_(std::move(fromRelay)),
      send_(std::move(send)),
      table_(std::make_shared<Table>()) {
  table_->sessions.resize(std::max<std::size_t>(limits_.maxSessions, 1));
}

namespace {

std::string_view errorText(ProbeErrorCode code) {
  switch (code) {
    case ProbeErrorCode::BadTicket:
      return "bad ticket";
    case ProbeErrorCode::Expired:
      return "expired";
    case ProbeErrorCode::Limit:
      return "limit reached";
    case ProbeErrorCode::Busy:
      return "busy";
  }
  return "";
}

}  // namespace

void ProbeResponder::onDatagram(const Endpoint& from, std::span<const std::uint8_t> bytes,
                                Clock::time_point now) {
  ++counters_.datagramsIn;
  if (bytes.size() > kProbeMaxDatagram || !fromRelay_(from)) {
    ++counters_.dropped;
    return;
  }
  const auto parsed = parseProbe(bytes);
  if (!parsed) {
    ++counters_.dropped;
    return;
  }
  const ProbeHeader& request = parsed->header;
  const std::uint64_t nowUs = microseconds(now);

  // Sends into scratch_; `size` bytes of it were written by the caller.
  const auto send = [&](std::size_t size) {
    if (size == 0) return;
    counters_.bytesSent += size;
    send_(from, std::span<const std::uint8_t>(scratch_.data(), size));
  };
  // ERROR, never larger than the datagram it answers.
  const auto sendError = [&](ProbeErrorCode code) {
    const std::string_view text = errorText(code);
    const std::size_t room = bytes.size() - kProbeHeaderBytes;
    const std::size_t length = std::min(text.size(), room);
    ProbeHeader header{ProbeType::Error, request.sessionId, request.sequence,
                       static_cast<std::uint32_t>(code), nowUs};
    send(
        writeProbe(scratch_, header, {reinterpret_cast<const std::uint8_t*>(text.data()), length}));
  };

  auto& sessions = table_->sessions;
  Session* session = nullptr;
  for (Session& candidate : sessions) {
    if (candidate.used && candidate.id == request.sessionId && candidate.peer == from) {
      session = &candidate;
      break;
    }
  }

  if (request.type == ProbeType::Hello) {
    const std::string_view ticket(reinterpret_cast<const char*>(parsed->body.data()),
                                  parsed->body.size());
    const auto grant = verify_(ticket);
    if (!grant || grant->first != request.sessionId) {
      ++counters_.dropped;
      return sendError(ProbeErrorCode::BadTicket);
    }
    if (grant->second <= now) {
      ++counters_.dropped;
      return sendError(ProbeErrorCode::Expired);
    }
    if (session == nullptr) {
      // A free slot, else the one that expired first, else busy.
      Session* slot = nullptr;
      for (Session& candidate : sessions) {
        if (!candidate.used) {
          slot = &candidate;
          break;
        }
        if (candidate.expires <= now && (slot == nullptr || candidate.expires < slot->expires)) {
          slot = &candidate;
        }
      }
      if (slot == nullptr) {
        ++counters_.dropped;
        return sendError(ProbeErrorCode::Busy);
      }
      if (slot->used && slot->downActive) --table_->activeDown;
      *slot = Session{};
      slot->used = true;
      slot->peer = from;
      slot->id = request.sessionId;
      slot->expires = grant->second;
      session = slot;
      ++counters_.sessionsStarted;
    }
    std::array<std::uint8_t, 8> body{};
    putU32(body.data(), limits_.maxSeconds);
    putU32(body.data() + 4, limits_.maxEchoPackets);
    ProbeHeader header{ProbeType::HelloOk, request.sessionId, request.sequence, limits_.maxKbps,
                       nowUs};
    return send(writeProbe(scratch_, header, body));
  }

  // Everything else belongs to an open session; the probe answers no one it has not greeted.
  const bool fromClient = request.type == ProbeType::Echo || request.type == ProbeType::UpData ||
                          request.type == ProbeType::UpReportRequest ||
                          request.type == ProbeType::DownStart;
  if (!fromClient || session == nullptr) {
    ++counters_.dropped;
    return;
  }
  if (session->expires <= now) {
    ++counters_.dropped;
    if (session->downActive) --table_->activeDown;
    session->used = false;
    return sendError(ProbeErrorCode::Expired);
  }

  switch (request.type) {
    case ProbeType::Echo: {
      if (session->echoes >= limits_.maxEchoPackets) {
        ++counters_.dropped;
        if (!session->echoLimitReported) {
          session->echoLimitReported = true;
          sendError(ProbeErrorCode::Limit);
        }
        return;
      }
      ++session->echoes;
      ProbeHeader header{ProbeType::EchoReply, request.sessionId, request.sequence, 0,
                         request.timestampUs};
      return send(writeProbe(scratch_, header, parsed->body, bytes.size()));
    }
    case ProbeType::UpData: {
      UpReport& up = session->up;
      if (up.packets == 0) up.firstArrivalUs = nowUs;
      ++up.packets;
      up.bytes += bytes.size();
      up.lastArrivalUs = nowUs;
      up.highestSequence = std::max(up.highestSequence, request.sequence);
      return;
    }
    case ProbeType::UpReportRequest: {
      if (session->upReports >= limits_.maxUpReports) {
        ++counters_.dropped;
        return;
      }
      ++session->upReports;
      const UpReport& up = session->up;
      std::array<std::uint8_t, kUpReportBody> body{};
      putU64(body.data(), up.packets);
      putU64(body.data() + 8, up.bytes);
      putU64(body.data() + 16, up.firstArrivalUs);
      putU64(body.data() + 24, up.lastArrivalUs);
      putU32(body.data() + 32, up.highestSequence);
      ProbeHeader header{ProbeType::UpReport, request.sessionId, request.sequence, 0, nowUs};
      return send(writeProbe(scratch_, header, body));
    }
    case ProbeType::DownStart: {
      const auto start = parseDownStart(*parsed);
      if (!start) {
        ++counters_.dropped;
        return;
      }
      if (session->downActive) return;  // a retransmitted DOWN_START
      if (session->downTests >= limits_.maxDownTestsPerSession) {
        ++counters_.dropped;
        return sendError(ProbeErrorCode::Limit);
      }
      if (table_->activeDown >= limits_.maxConcurrentDown) {
        ++counters_.dropped;
        return sendError(ProbeErrorCode::Busy);
      }
      const std::uint32_t kbps =
          std::clamp<std::uint32_t>(start->kbps, 1, std::max<std::uint32_t>(limits_.maxKbps, 1));
      const std::uint32_t durationMs =
          std::min<std::uint64_t>(start->durationMs, std::uint64_t{limits_.maxSeconds} * 1000);
      const std::uint16_t size = std::clamp<std::uint16_t>(
          start->datagramBytes, static_cast<std::uint16_t>(kProbeMinDatagram),
          static_cast<std::uint16_t>(kProbeMaxDatagram));
      // kbit/s * ms = bit; / 8 = bytes; / size = datagrams.
      const std::uint64_t total = std::uint64_t{kbps} * durationMs / 8 / size;
      ++session->downTests;
      session->downActive = true;
      ++table_->activeDown;
      session->downStart = now;
      session->downDeadline = now + std::chrono::milliseconds(durationMs) + kDownGrace;
      session->downDurationUs = std::int64_t{durationMs} * 1000;
      session->downTotal = static_cast<std::uint32_t>(total);
      session->downSent = 0;
      session->datagramBytes = size;
      session->downBytes = 0;
      session->endsLeft = kDownEndCopies;
      session->nextEnd = now;
      return;
    }
    default:
      return;
  }
}

std::optional<Clock::time_point> ProbeResponder::poll(Clock::time_point now) {
  const std::uint64_t nowUs = microseconds(now);
  for (Session& session : table_->sessions) {
    if (!session.used || !session.downActive) continue;
    if (session.expires <= now) {
      // The ticket ran out mid-stream: stop sending to it.
      session.downActive = false;
      --table_->activeDown;
      continue;
    }
    const auto send = [&](std::size_t size) {
      if (size == 0) return;
      counters_.bytesSent += size;
      send_(session.peer, std::span<const std::uint8_t>(scratch_.data(), size));
    };
    if (session.downSent < session.downTotal && now >= session.downDeadline) {
      // Polled so late that the stream would run on well past its time: end it here, and
      // DOWN_END says how many went out.
      session.downTotal = session.downSent;
      session.nextEnd = now;
    }
    if (session.downSent < session.downTotal) {
      const std::int64_t elapsedUs =
          std::chrono::duration_cast<std::chrono::microseconds>(now - session.downStart).count();
      const auto dueBy = [&](std::int64_t elapsed) -> std::uint32_t {
        if (elapsed < 0) return 0;
        const std::uint64_t due = session.downDurationUs == 0
                                      ? session.downTotal
                                      : static_cast<std::uint64_t>(elapsed) * session.downTotal /
                                                static_cast<std::uint64_t>(session.downDurationUs) +
                                            1;
        return static_cast<std::uint32_t>(std::min<std::uint64_t>(due, session.downTotal));
      };
      const std::uint32_t burst = static_cast<std::uint32_t>(std::max<std::int64_t>(
          1, session.downDurationUs == 0
                 ? 1
                 : kMaxBurstUs * session.downTotal / session.downDurationUs));
      std::uint32_t due = dueBy(elapsedUs);
      if (due > session.downSent + burst) {
        // Late: send 2 ms worth and move the rest of the stream later instead of bursting.
        due = session.downSent + burst;
        const std::int64_t onTimeUs =
            static_cast<std::int64_t>(due - 1) * session.downDurationUs / session.downTotal;
        session.downStart = now - std::chrono::microseconds(onTimeUs);
      }
      for (; session.downSent < due; ++session.downSent) {
        ProbeHeader header{ProbeType::DownData, session.id, session.downSent, 0, nowUs};
        send(writeProbe(scratch_, header, {}, session.datagramBytes));
        session.downBytes += session.datagramBytes;
      }
      if (session.downSent == session.downTotal) session.nextEnd = now;
    }
    if (session.downSent == session.downTotal) {
      while (session.endsLeft > 0 && session.nextEnd <= now) {
        std::array<std::uint8_t, 8> body{};
        putU64(body.data(), session.downBytes);
        ProbeHeader header{ProbeType::DownEnd, session.id,
                           static_cast<std::uint32_t>(kDownEndCopies - session.endsLeft),
                           session.downTotal, nowUs};
        send(writeProbe(scratch_, header, body));
        --session.endsLeft;
        session.nextEnd += kDownEndSpacing;
      }
      if (session.endsLeft == 0) {
        session.downActive = false;
        --table_->activeDown;
      }
    }
  }
  return nextWake();
}

std::optional<Clock::time_point> ProbeResponder::nextWake() const {
  std::optional<Clock::time_point> wake;
  for (const Session& session : table_->sessions) {
    if (!session.used || !session.downActive) continue;
    const Clock::time_point at =
        session.downSent < session.downTotal ? session.dueAt(session.downSent) : session.nextEnd;
    if (!wake || at < *wake) wake = at;
  }
  return wake;
}

}  // namespace parley::netcheck
