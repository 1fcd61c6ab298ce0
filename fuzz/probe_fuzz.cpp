// Fuzzes the probe codec and the probe peer's state machine (docs/netcheck.md "The probe peer").
// Every input is first parsed whole as one datagram (parse -> write -> parse must agree), then
// read as records that drive a ProbeResponder with a fake clock and ticket verifier:
//
//   [op][length hi][length lo][length bytes], op % 6:
//   0, 1: the bytes as a datagram from relay port 50000 or 50001;
//   2: the bytes as a datagram from an address that is not a relay (must never be answered);
//   3: advance the clock by the first byte in ms and poll() until nothing is due now;
//   4: a valid HELLO for session id = first byte, from relay port 50000 + (second byte & 1);
//   5: a DOWN_START for session id = first byte with kbps, ms and size from the next bytes.
//
// The sender checks what the responder emits: only to relays that sent a valid HELLO, never
// larger than kProbeMaxDatagram, always a datagram of a probe -> client type, and an ERROR never
// larger than the datagram it answers.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <parley/netcheck/probe.hpp>

using namespace parley;
using namespace parley::netcheck;

namespace {

using Clock = ProbeResponder::Clock;

Endpoint relay(std::uint16_t port) {
  return Endpoint{*IpAddress::parse("203.0.113.10"), port};
}

std::string ticketFor(std::uint64_t id) {
  static const char* digits = "0123456789abcdef";
  std::string hex(16, '0');
  for (int i = 15; i >= 0; --i, id >>= 4)
    hex[static_cast<std::size_t>(i)] = digits[id & 0xF];
  return hex;
}

void roundTrip(std::span<const std::uint8_t> bytes) {
  const auto parsed = parseProbe(bytes);
  if (!parsed) return;
  std::vector<std::uint8_t> out(bytes.size() + kProbeHeaderBytes);
  const std::size_t size = writeProbe(out, parsed->header, parsed->body, bytes.size());
  if (size != bytes.size()) std::abort();
  const auto again = parseProbe(std::span<const std::uint8_t>(out.data(), size));
  if (!again || again->header.type != parsed->header.type ||
      again->header.sessionId != parsed->header.sessionId ||
      again->header.sequence != parsed->header.sequence ||
      again->header.value != parsed->header.value ||
      again->header.timestampUs != parsed->header.timestampUs ||
      !std::equal(again->body.begin(), again->body.end(), parsed->body.begin(),
                  parsed->body.end())) {
    std::abort();
  }
  (void)parseHelloOk(*parsed);
  (void)parseUpReport(*parsed);
  if (const auto start = parseDownStart(*parsed)) {
    std::vector<std::uint8_t> written(kProbeMaxDatagram);
    const std::size_t n = writeDownStart(written, parsed->header.sessionId, *start, 0);
    const auto reparsed = parseProbe(std::span<const std::uint8_t>(written.data(), n));
    if (!reparsed || !parseDownStart(*reparsed) ||
        parseDownStart(*reparsed)->durationMs != start->durationMs) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  roundTrip({data, size});
  (void)sessionIdFromHex(std::string_view(reinterpret_cast<const char*>(data), size));

  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  const Clock::time_point expires = now + std::chrono::seconds(30);
  std::set<Endpoint> greeted;
  std::size_t requestSize = 0;  // of the datagram being answered; 0 inside poll()

  ProbeLimits limits;
  limits.maxSessions = 4;
  limits.maxConcurrentDown = 2;
  limits.maxEchoPackets = 20;
  ProbeResponder responder(
      limits,
      [&](std::string_view ticket) -> std::optional<std::pair<std::uint64_t, Clock::time_point>> {
        if (ticket.size() != 16) return std::nullopt;
        const auto id = sessionIdFromHex(ticket);
        if (!id) return std::nullopt;
        return std::pair{*id, expires};
      },
      [](const Endpoint& from) { return from.address == relay(0).address; },
      [&](const Endpoint& to, std::span<const std::uint8_t> bytes) {
        if (bytes.size() > kProbeMaxDatagram) std::abort();
        const auto parsed = parseProbe(bytes);
        if (!parsed) std::abort();
        const ProbeType type = parsed->header.type;
        if (type == ProbeType::Error) {
          if (requestSize == 0 || bytes.size() > requestSize) std::abort();
          return;
        }
        if (type != ProbeType::HelloOk && type != ProbeType::EchoReply &&
            type != ProbeType::UpReport && type != ProbeType::DownData &&
            type != ProbeType::DownEnd) {
          std::abort();
        }
        if (type == ProbeType::HelloOk) {
          greeted.insert(to);
        } else if (!greeted.contains(to)) {
          std::abort();
        }
      });

  const Endpoint stranger{*IpAddress::parse("198.51.100.7"), 50000};
  std::vector<std::uint8_t> scratch(kProbeMaxDatagram);
  std::size_t pos = 0;
  for (int records = 0; records < 256 && pos + 3 <= size; ++records) {
    const std::uint8_t op = data[pos];
    const std::size_t length =
        std::min<std::size_t>((data[pos + 1] << 8) | data[pos + 2], size - pos - 3);
    const std::span<const std::uint8_t> bytes(data + pos + 3, length);
    pos += 3 + length;
    const auto feed = [&](const Endpoint& from, std::span<const std::uint8_t> datagram) {
      requestSize = datagram.size();
      responder.onDatagram(from, datagram, now);
      requestSize = 0;
    };
    switch (op % 6) {
      case 0:
      case 1:
        feed(relay(static_cast<std::uint16_t>(50000 + op % 6)), bytes);
        break;
      case 2:
        feed(stranger, bytes);
        break;
      case 3: {
        now += std::chrono::milliseconds(length > 0 ? bytes[0] : 1);
        // poll() until nothing is due by now; each round sends at least one datagram or moves
        // the wake-up past now, so this is bounded, but cap it anyway.
        for (int rounds = 0; rounds < 10'000; ++rounds) {
          const auto wake = responder.poll(now);
          if (!wake || *wake > now) break;
        }
        break;
      }
      case 4: {
        const std::uint64_t id = length > 0 ? bytes[0] : 0;
        const std::uint16_t port =
            static_cast<std::uint16_t>(50000 + (length > 1 ? bytes[1] & 1 : 0));
        const std::size_t n = writeHello(scratch, id, ticketFor(id), 0);
        feed(relay(port), std::span<const std::uint8_t>(scratch.data(), n));
        break;
      }
      case 5: {
        if (length < 7) break;
        const DownStart start{static_cast<std::uint32_t>(bytes[1] << 8 | bytes[2]) * 10,
                              static_cast<std::uint32_t>(bytes[3] << 8 | bytes[4]),
                              static_cast<std::uint16_t>(bytes[5] << 8 | bytes[6])};
        const std::size_t n = writeDownStart(scratch, bytes[0], start, 0);
        feed(relay(50000), std::span<const std::uint8_t>(scratch.data(), n));
        break;
      }
    }
  }
  const ProbeCounters& counters = responder.counters();
  if (counters.dropped > counters.datagramsIn) std::abort();
  return 0;
}
