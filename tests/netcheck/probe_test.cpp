// The probe codec (docs/netcheck.md "Wire format") and the probe peer's state machine, with an
// injected clock: greeting, echo, up counting, paced down streams, limits and the session table.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <parley/netcheck/probe.hpp>

namespace parley::netcheck {
namespace {

using namespace std::chrono_literals;
using Clock = ProbeResponder::Clock;
using Bytes = std::vector<std::uint8_t>;

Bytes bytesOf(std::initializer_list<int> values) {
  Bytes out;
  for (const int v : values)
    out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

TEST(ProbeCodec, HeaderIsBigEndianFieldByField) {
  const Bytes body = bytesOf({0xAA, 0xBB});
  Bytes out(64);
  const ProbeHeader header{ProbeType::Echo, 0x5f0c2a9e8d7b6a41, 0x01020304, 0x0A0B0C0D,
                           0x1122334455667788};
  ASSERT_EQ(writeProbe(out, header, body), 34u);
  out.resize(34);
  EXPECT_EQ(out, bytesOf({
                     0x50, 0x4E, 0x43, 0x31,                          // magic "PNC1"
                     0x03,                                            // type ECHO
                     0x00,                                            // flags
                     0x00, 0x02,                                      // body length
                     0x5f, 0x0c, 0x2a, 0x9e, 0x8d, 0x7b, 0x6a, 0x41,  // session id
                     0x01, 0x02, 0x03, 0x04,                          // sequence
                     0x0A, 0x0B, 0x0C, 0x0D,                          // value
                     0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,  // timestamp µs
                     0xAA, 0xBB,                                      // body
                 }));
  const auto parsed = parseProbe(out);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->header.type, ProbeType::Echo);
  EXPECT_EQ(parsed->header.sessionId, 0x5f0c2a9e8d7b6a41u);
  EXPECT_EQ(parsed->header.sequence, 0x01020304u);
  EXPECT_EQ(parsed->header.value, 0x0A0B0C0Du);
  EXPECT_EQ(parsed->header.timestampUs, 0x1122334455667788u);
  EXPECT_EQ(Bytes(parsed->body.begin(), parsed->body.end()), body);
}

TEST(ProbeCodec, PaddingAndTypedBodiesRoundTrip) {
  Bytes out(kProbeMaxDatagram);
  // Padded: body length says 2, the datagram is 300 bytes of which the rest is zero.
  const std::size_t size =
      writeProbe(out, ProbeHeader{ProbeType::UpData, 7, 1, 0, 2}, bytesOf({1, 2}), 300);
  ASSERT_EQ(size, 300u);
  const auto padded = parseProbe(std::span(out).first(size));
  ASSERT_TRUE(padded);
  EXPECT_EQ(padded->body.size(), 2u);
  EXPECT_TRUE(std::all_of(out.begin() + 34, out.begin() + 300, [](auto b) { return b == 0; }));

  const std::size_t hello = writeHello(out, 42, "ticket-text", 99);
  const auto parsedHello = parseProbe(std::span(out).first(hello));
  ASSERT_TRUE(parsedHello);
  EXPECT_EQ(parsedHello->header.type, ProbeType::Hello);
  EXPECT_EQ(parsedHello->header.sessionId, 42u);
  EXPECT_EQ(std::string(parsedHello->body.begin(), parsedHello->body.end()), "ticket-text");

  const DownStart start{5000, 2500, 1000};
  const std::size_t down = writeDownStart(out, 42, start, 5);
  const auto parsedDown = parseProbe(std::span(out).first(down));
  ASSERT_TRUE(parsedDown);
  const auto downStart = parseDownStart(*parsedDown);
  ASSERT_TRUE(downStart);
  EXPECT_EQ(downStart->kbps, 5000u);
  EXPECT_EQ(downStart->durationMs, 2500u);
  EXPECT_EQ(downStart->datagramBytes, 1000u);
  EXPECT_FALSE(parseHelloOk(*parsedDown));
  EXPECT_FALSE(parseUpReport(*parsedDown));

  // A too-small output buffer writes nothing.
  Bytes small(40);
  EXPECT_EQ(writeProbe(small, ProbeHeader{}, {}, 41), 0u);
  EXPECT_EQ(writeHello(small, 1, "more than eight bytes", 0), 0u);
}

TEST(ProbeCodec, RejectsMalformedDatagrams) {
  Bytes good(kProbeMaxDatagram);
  good.resize(writeHello(good, 1, "t", 0));
  ASSERT_TRUE(parseProbe(good));

  EXPECT_EQ(parseProbe(std::span(good).first(31)).error(), "shorter than the probe header");
  EXPECT_FALSE(parseProbe({}));
  Bytes badMagic = good;
  badMagic[3] = 0x32;
  EXPECT_EQ(parseProbe(badMagic).error(), "not a probe datagram (bad magic)");
  for (const int type : {0, 12, 255}) {
    Bytes unknown = good;
    unknown[4] = static_cast<std::uint8_t>(type);
    EXPECT_EQ(parseProbe(unknown).error(), "unknown probe type");
  }
  Bytes flags = good;
  flags[5] = 1;
  EXPECT_EQ(parseProbe(flags).error(), "probe flags are not 0");
  Bytes longBody = good;
  longBody[7] = 2;  // says 2 bytes of ticket, the datagram has 1
  EXPECT_EQ(parseProbe(longBody).error(), "body length beyond the datagram");
  Bytes trailing = good;
  trailing.push_back(0);  // HELLO is not a padded type
  EXPECT_EQ(parseProbe(trailing).error(), "bytes after the body of an unpadded type");
  // Wrong body sizes for the typed bodies.
  Bytes helloOk(kProbeMaxDatagram);
  helloOk.resize(writeProbe(helloOk, ProbeHeader{ProbeType::HelloOk}, bytesOf({0, 0, 0, 1})));
  EXPECT_FALSE(parseHelloOk(*parseProbe(helloOk)));
}

TEST(ProbeCodec, SessionIdFromHex) {
  EXPECT_EQ(sessionIdFromHex("5f0c2a9e8d7b6a41"), 0x5f0c2a9e8d7b6a41u);
  EXPECT_EQ(sessionIdFromHex("FFFFFFFFFFFFFFFF"), 0xFFFFFFFFFFFFFFFFu);
  EXPECT_FALSE(sessionIdFromHex("5f0c2a9e8d7b6a4"));
  EXPECT_FALSE(sessionIdFromHex("5f0c2a9e8d7b6a411"));
  EXPECT_FALSE(sessionIdFromHex("5f0c2a9e8d7b6a4g"));
  EXPECT_FALSE(sessionIdFromHex(""));
}

// --- the responder ---------------------------------------------------------------------------

struct Sent {
  Endpoint to;
  Bytes bytes;
  Clock::time_point at;
};

// Tickets in tests are "ID:SECONDS": session id ID (hex) expiring SECONDS after t0; anything
// else is refused. The relay is 203.0.113.10, any port.
class Responder : public ::testing::Test {
 protected:
  Responder() { make(ProbeLimits{}); }

  void make(ProbeLimits limits) {
    responder_ = std::make_unique<ProbeResponder>(
        limits,
        [this](
            std::string_view ticket) -> std::optional<std::pair<std::uint64_t, Clock::time_point>> {
          const auto colon = ticket.find(':');
          if (colon == std::string_view::npos) return std::nullopt;
          const auto id = sessionIdFromHex(ticket.substr(0, colon));
          int seconds = 0;
          const auto rest = ticket.substr(colon + 1);
          if (!id ||
              std::from_chars(rest.data(), rest.data() + rest.size(), seconds).ec != std::errc{}) {
            return std::nullopt;
          }
          return std::pair{*id, t0_ + std::chrono::seconds(seconds)};
        },
        [](const Endpoint& from) { return from.address == relay().address; },
        [this](const Endpoint& to, std::span<const std::uint8_t> bytes) {
          sent_.push_back({to, Bytes(bytes.begin(), bytes.end()), now_});
        });
  }

  static Endpoint relay(std::uint16_t port = 50000) {
    return Endpoint{*IpAddress::parse("203.0.113.10"), port};
  }

  void deliver(const Bytes& datagram, const Endpoint& from = relay()) {
    responder_->onDatagram(from, datagram, now_);
  }

  Bytes hello(std::uint64_t id, const std::string& ticket) {
    Bytes out(kProbeMaxDatagram);
    out.resize(writeHello(out, id, ticket, 1));
    return out;
  }
  static std::string ticketFor(std::uint64_t id, int seconds = 300) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(id));
    return std::string(hex) + ":" + std::to_string(seconds);
  }
  void greet(std::uint64_t id, const Endpoint& from = relay(), int seconds = 300) {
    const std::size_t before = sent_.size();
    deliver(hello(id, ticketFor(id, seconds)), from);
    ASSERT_EQ(sent_.size(), before + 1);
    ASSERT_EQ(parseProbe(sent_.back().bytes)->header.type, ProbeType::HelloOk);
  }
  Bytes message(ProbeType type, std::uint64_t id, std::uint32_t sequence = 0, std::size_t total = 0,
                const Bytes& body = {}) {
    Bytes out(kProbeMaxDatagram);
    out.resize(writeProbe(out, ProbeHeader{type, id, sequence, 0, 777}, body, total));
    return out;
  }
  Bytes downStart(std::uint64_t id, std::uint32_t kbps, std::uint32_t ms, std::uint16_t size) {
    Bytes out(kProbeMaxDatagram);
    out.resize(writeDownStart(out, id, DownStart{kbps, ms, size}, 0));
    return out;
  }
  ProbeDatagram last() const { return *parseProbe(sent_.back().bytes); }

  // Drives poll() as the socket would: at every wake-up, or every `step` when given.
  void runDown(Clock::duration limit, std::optional<Clock::duration> step = std::nullopt) {
    const Clock::time_point end = now_ + limit;
    for (int i = 0; i < 1'000'000 && now_ <= end; ++i) {
      const auto wake = responder_->poll(now_);
      if (!wake) return;
      now_ = step ? now_ + *step : std::max(*wake, now_);
    }
  }
  std::vector<Sent> ofType(ProbeType type) const {
    std::vector<Sent> out;
    for (const Sent& s : sent_) {
      if (parseProbe(s.bytes)->header.type == type) out.push_back(s);
    }
    return out;
  }

  Clock::time_point t0_ = Clock::time_point{} + 10h;
  Clock::time_point now_ = t0_;
  std::vector<Sent> sent_;
  std::unique_ptr<ProbeResponder> responder_;
};

TEST_F(Responder, HelloThenEchoOfTheSameSize) {
  deliver(hello(0xABCD, ticketFor(0xABCD)));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].to, relay());
  const auto ok = parseHelloOk(last());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->maxKbps, 10'000u);
  EXPECT_EQ(ok->maxSeconds, 4u);
  EXPECT_EQ(ok->maxEchoPackets, 200u);
  EXPECT_EQ(last().header.sessionId, 0xABCDu);
  EXPECT_EQ(responder_->counters().sessionsStarted, 1u);

  const Bytes echo = message(ProbeType::Echo, 0xABCD, 17, 300, bytesOf({9, 8, 7}));
  deliver(echo);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].bytes.size(), echo.size());
  const auto reply = last();
  EXPECT_EQ(reply.header.type, ProbeType::EchoReply);
  EXPECT_EQ(reply.header.sequence, 17u);
  EXPECT_EQ(reply.header.timestampUs, 777u);  // the request's, copied
  EXPECT_EQ(Bytes(reply.body.begin(), reply.body.end()), bytesOf({9, 8, 7}));

  // A retransmitted HELLO is answered again without a second session.
  greet(0xABCD);
  EXPECT_EQ(responder_->counters().sessionsStarted, 1u);
}

TEST_F(Responder, BadTicketGetsOneErrorNoLargerThanTheRequest) {
  deliver(hello(1, "nonsense"));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(last().header.type, ProbeType::Error);
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::BadTicket));
  EXPECT_LE(sent_[0].bytes.size(), hello(1, "nonsense").size());

  // A valid ticket for another session id is a bad ticket too.
  deliver(hello(2, ticketFor(3)));
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::BadTicket));
  // An empty ticket: the error carries no text, so it is no larger than the bare header.
  deliver(hello(1, ""));
  EXPECT_EQ(sent_.back().bytes.size(), kProbeHeaderBytes);
  EXPECT_EQ(sent_.size(), 3u);
  // ... and after a bad HELLO nothing else is answered.
  deliver(message(ProbeType::Echo, 1, 0, 200));
  EXPECT_EQ(sent_.size(), 3u);
}

TEST_F(Responder, ExpiredTicketGetsError2) {
  now_ = t0_ + 400s;
  deliver(hello(5, ticketFor(5, 300)));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::Expired));
}

TEST_F(Responder, IgnoresSourcesThatAreNotRelaysAndMalformedDatagrams) {
  const Endpoint stranger{*IpAddress::parse("198.51.100.7"), 50000};
  deliver(hello(5, ticketFor(5)), stranger);
  deliver(hello(5, "nonsense"), stranger);
  EXPECT_TRUE(sent_.empty());
  greet(5);
  deliver(message(ProbeType::Echo, 5, 0, 200), stranger);      // right session, wrong source
  deliver(message(ProbeType::Echo, 5, 0, 200), relay(50001));  // another relay port
  deliver(message(ProbeType::Echo, 6, 0, 200));                // unknown session
  deliver(message(ProbeType::EchoReply, 5, 0, 200));           // a probe -> client type
  deliver(bytesOf({1, 2, 3}));                                 // not a probe datagram
  deliver(Bytes(kProbeMaxDatagram + 1, 0));                    // too long
  EXPECT_EQ(sent_.size(), 1u);
  EXPECT_EQ(responder_->counters().dropped, 8u);
  EXPECT_EQ(responder_->counters().datagramsIn, 9u);
}

TEST_F(Responder, EchoesAreLimited) {
  ProbeLimits limits;
  limits.maxEchoPackets = 3;
  make(limits);
  greet(9);
  for (std::uint32_t i = 0; i < 6; ++i)
    deliver(message(ProbeType::Echo, 9, i, 200));
  EXPECT_EQ(ofType(ProbeType::EchoReply).size(), 3u);
  const auto errors = ofType(ProbeType::Error);
  ASSERT_EQ(errors.size(), 1u);  // once, then silence
  EXPECT_EQ(parseProbe(errors[0].bytes)->header.value,
            static_cast<std::uint32_t>(ProbeErrorCode::Limit));
}

TEST_F(Responder, CountsUpDataAndReports) {
  greet(3);
  now_ += 1ms;
  deliver(message(ProbeType::UpData, 3, 0, 1000));
  now_ += 2ms;
  deliver(message(ProbeType::UpData, 3, 2, 500));
  now_ += 3ms;
  deliver(message(ProbeType::UpData, 3, 1, 1200));
  deliver(message(ProbeType::UpReportRequest, 3, 44));
  const auto report = parseUpReport(last());
  ASSERT_TRUE(report);
  EXPECT_EQ(last().header.sequence, 44u);
  EXPECT_EQ(report->packets, 3u);
  EXPECT_EQ(report->bytes, 2700u);
  EXPECT_EQ(report->lastArrivalUs - report->firstArrivalUs, 5000u);
  EXPECT_EQ(report->highestSequence, 2u);
  EXPECT_EQ(sent_.size(), 2u);  // UP_DATA itself is never answered
}

TEST_F(Responder, PacesDownDataEvenly) {
  greet(4);
  sent_.clear();
  deliver(downStart(4, 1000, 1000, 1000));
  EXPECT_TRUE(sent_.empty());
  ASSERT_EQ(responder_->nextWake(), now_);
  const Clock::time_point start = now_;
  runDown(2s);
  EXPECT_FALSE(responder_->nextWake());

  // 1000 kbit/s for 1 s in 1000-byte datagrams: 125 of them, one every 8 ms.
  const auto data = ofType(ProbeType::DownData);
  ASSERT_EQ(data.size(), 125u);
  for (std::size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(data[i].bytes.size(), 1000u);
    EXPECT_EQ(parseProbe(data[i].bytes)->header.sequence, i);
    EXPECT_EQ(data[i].at - start, std::chrono::microseconds(i * 8000)) << i;
  }
  const auto ends = ofType(ProbeType::DownEnd);
  ASSERT_EQ(ends.size(), 3u);
  for (const Sent& end : ends) {
    const auto parsed = *parseProbe(end.bytes);
    EXPECT_EQ(parsed.header.value, 125u);
    ASSERT_EQ(parsed.body.size(), 8u);
    EXPECT_EQ(parsed.body[6], 125000 >> 8 & 0xFF);
    EXPECT_EQ(parsed.body[7], 125000 & 0xFF);
    EXPECT_GE(end.at, data.back().at);
  }
  EXPECT_EQ(ends[2].at - ends[0].at, 20ms);
}

TEST_F(Responder, LatePollsNeverBurstMoreThanTwoMilliseconds) {
  greet(4);
  sent_.clear();
  // 8000 kbit/s in 1000-byte datagrams: one per ms, so 2 ms worth = 2 datagrams.
  deliver(downStart(4, 8000, 500, 1000));
  const Clock::time_point start = now_;
  runDown(5s, 50ms);  // a poll every 50 ms, far too late
  const auto data = ofType(ProbeType::DownData);
  // 2 per poll; the stream runs on past its 500 ms, but stops 1 s after that.
  EXPECT_GT(data.size(), 50u);
  EXPECT_LT(data.size(), 500u);
  EXPECT_LE(data.back().at - start, 1500ms);
  std::size_t atOnce = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    atOnce = i > 0 && data[i].at == data[i - 1].at ? atOnce + 1 : 1;
    ASSERT_LE(atOnce, 2u) << i;
  }
  const auto ends = ofType(ProbeType::DownEnd);
  ASSERT_EQ(ends.size(), 3u);
  EXPECT_EQ(parseProbe(ends[0].bytes)->header.value, data.size());
}

TEST_F(Responder, ClampsDownStartToTheLimits) {
  ProbeLimits limits;
  limits.maxKbps = 2000;
  limits.maxSeconds = 1;
  make(limits);
  greet(4);
  sent_.clear();
  deliver(downStart(4, 50'000, 10'000, 5000));  // 50 Mbit/s for 10 s in 5000-byte datagrams
  const Clock::time_point start = now_;
  runDown(5s);
  const auto data = ofType(ProbeType::DownData);
  // Clamped to 2000 kbit/s for 1 s in 1200-byte datagrams: 250000 / 1200 = 208.
  ASSERT_EQ(data.size(), 208u);
  EXPECT_EQ(data.front().bytes.size(), 1200u);
  EXPECT_LT(data.back().at - start, 1s);
  EXPECT_EQ(parseProbe(ofType(ProbeType::DownEnd)[0].bytes)->header.value, 208u);

  sent_.clear();
  deliver(downStart(4, 100, 1000, 10));  // tiny datagrams become 200 bytes
  runDown(5s);
  ASSERT_FALSE(ofType(ProbeType::DownData).empty());
  EXPECT_EQ(ofType(ProbeType::DownData).front().bytes.size(), 200u);
}

TEST_F(Responder, OneDownStreamPerSessionAndABoundedNumberAtOnce) {
  ProbeLimits limits;
  limits.maxConcurrentDown = 2;
  limits.maxDownTestsPerSession = 2;
  make(limits);
  for (std::uint64_t id = 1; id <= 3; ++id)
    greet(id);
  sent_.clear();
  deliver(downStart(1, 1000, 1000, 1000));
  deliver(downStart(1, 1000, 1000, 1000));  // retransmitted: ignored
  deliver(downStart(2, 1000, 1000, 1000));
  EXPECT_TRUE(sent_.empty());
  deliver(downStart(3, 1000, 1000, 1000));  // a third stream at once: busy
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(last().header.type, ProbeType::Error);
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::Busy));
  runDown(3s);
  EXPECT_EQ(ofType(ProbeType::DownData).size(), 250u);

  // Streams done: session 3 may start now; session 1 has one test left, then the limit.
  sent_.clear();
  deliver(downStart(1, 100, 100, 1000));
  runDown(1s);
  deliver(downStart(1, 100, 100, 1000));
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::Limit));
}

TEST_F(Responder, FullTableIsBusyUntilASessionExpires) {
  ProbeLimits limits;
  limits.maxSessions = 2;
  make(limits);
  greet(1, relay(), 60);
  greet(2, relay(), 30);
  deliver(hello(3, ticketFor(3, 300)));
  EXPECT_EQ(last().header.type, ProbeType::Error);
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::Busy));

  now_ = t0_ + 90s;  // both expired: the one that expired first (2) makes room
  greet(3, relay(), 300);
  deliver(message(ProbeType::Echo, 1, 0, 200));
  EXPECT_EQ(last().header.type, ProbeType::Error);  // still there, expired: told so
  EXPECT_EQ(last().header.value, static_cast<std::uint32_t>(ProbeErrorCode::Expired));
  const std::size_t before = sent_.size();
  deliver(message(ProbeType::Echo, 2, 0, 200));  // reclaimed: gone, silence
  EXPECT_EQ(sent_.size(), before);
  greet(4, relay(), 300);  // session 1's slot was freed when it was found expired
  EXPECT_EQ(responder_->counters().sessionsStarted, 4u);
}

TEST_F(Responder, StopsADownStreamWhenItsTicketExpires) {
  greet(4, relay(), 1);
  sent_.clear();
  deliver(downStart(4, 1000, 4000, 1000));
  runDown(10s);
  const auto data = ofType(ProbeType::DownData);
  EXPECT_GT(data.size(), 0u);
  EXPECT_LT(data.size(), 500u);
  for (const Sent& s : data)
    EXPECT_LT(s.at, t0_ + 1s);
  EXPECT_FALSE(responder_->nextWake());
}

}  // namespace
}  // namespace parley::netcheck
