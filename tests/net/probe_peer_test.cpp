// The probe peer over real UDP sockets on loopback: HELLO, ECHO, UP and DOWN round trips with
// netcheck's codec, and silence towards sources that are not relay addresses.
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/net/probe_peer.hpp>

namespace parley::net {
namespace {

using namespace std::chrono_literals;
using netcheck::ProbeHeader;
using netcheck::ProbeType;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kSession = 0x5f0c2a9e8d7b6a41;
constexpr std::string_view kTicket = "ticket-5f0c2a9e8d7b6a41";

IpAddress loopback() {
  return IpAddress::v4(0x7F000001);
}

// A UDP socket on 127.0.0.1 with a bounded receive.
class Client {
 public:
  Client() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
    const int buffer = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void sendTo(const Endpoint& to, std::span<const std::uint8_t> bytes) {
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    std::memcpy(&peer.sin_addr, to.address.bytes().data(), 4);
    peer.sin_port = htons(to.port);
    ASSERT_EQ(::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                       sizeof peer),
              static_cast<ssize_t>(bytes.size()));
  }

  // The next datagram within `timeout`, or nothing.
  std::optional<std::vector<std::uint8_t>> receive(std::chrono::milliseconds timeout) {
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::vector<std::uint8_t> buffer(2048);
    const ssize_t size = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (size < 0) return std::nullopt;
    buffer.resize(static_cast<std::size_t>(size));
    return buffer;
  }

 private:
  int fd_ = -1;
};

ProbePeerOptions options(bool acceptLoopback) {
  ProbePeerOptions result;
  result.bind = {loopback(), 0};
  result.limits.maxKbps = 2000;
  result.limits.maxSeconds = 1;
  result.limits.maxEchoPackets = 5;
  result.verifyTicket =
      [](std::string_view ticket) -> std::optional<std::pair<std::uint64_t, Clock::time_point>> {
    if (ticket != kTicket) return std::nullopt;
    return std::pair{kSession, Clock::now() + 60s};
  };
  result.fromRelay = [acceptLoopback](const Endpoint& source) {
    return acceptLoopback && source.address == loopback();
  };
  return result;
}

std::vector<std::uint8_t> datagram(ProbeType type, std::uint32_t sequence,
                                   std::vector<std::uint8_t> body = {}, std::uint32_t value = 0) {
  std::vector<std::uint8_t> out(netcheck::kProbeMaxDatagram);
  const ProbeHeader header{type, kSession, sequence, value, 123456789};
  out.resize(netcheck::writeProbe(out, header, body));
  return out;
}

std::vector<std::uint8_t> hello() {
  std::vector<std::uint8_t> out(netcheck::kProbeMaxDatagram);
  out.resize(netcheck::writeHello(out, kSession, kTicket, 1));
  return out;
}

netcheck::ProbeDatagram parsed(const std::vector<std::uint8_t>& bytes) {
  auto result = netcheck::parseProbe(bytes);
  EXPECT_TRUE(result) << (result ? "" : std::string(result.error()));
  return result ? *result : netcheck::ProbeDatagram{};
}

TEST(ProbePeer, BindsAnEphemeralPortOnTheGivenAddress) {
  ProbePeer probe(options(true));
  EXPECT_EQ(probe.endpoint().address, loopback());
  EXPECT_NE(probe.endpoint().port, 0);
  probe.start();
  probe.stop();
  probe.stop();  // twice is fine
}

TEST(ProbePeer, NeedsBothCallbacks) {
  auto missing = options(true);
  missing.verifyTicket = nullptr;
  EXPECT_THROW(ProbePeer{std::move(missing)}, std::invalid_argument);
}

TEST(ProbePeer, HelloEchoUpAndDownOverRealSockets) {
  ProbePeer probe(options(true));
  probe.start();
  Client client;
  const Endpoint peer = probe.endpoint();

  // HELLO -> HELLO_OK with the limits.
  client.sendTo(peer, hello());
  const auto helloOk = client.receive(2000ms);
  ASSERT_TRUE(helloOk);
  const auto limits = netcheck::parseHelloOk(parsed(*helloOk));
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->maxKbps, 2000u);
  EXPECT_EQ(limits->maxSeconds, 1u);
  EXPECT_EQ(limits->maxEchoPackets, 5u);

  // ECHO -> ECHO_REPLY: body, sequence and timestamp back.
  client.sendTo(peer, datagram(ProbeType::Echo, 7, {1, 2, 3, 4}));
  const auto echo = client.receive(2000ms);
  ASSERT_TRUE(echo);
  const auto reply = parsed(*echo);
  EXPECT_EQ(reply.header.type, ProbeType::EchoReply);
  EXPECT_EQ(reply.header.sequence, 7u);
  EXPECT_EQ(reply.header.timestampUs, 123456789u);
  EXPECT_EQ(std::vector<std::uint8_t>(reply.body.begin(), reply.body.end()),
            (std::vector<std::uint8_t>{1, 2, 3, 4}));

  // UP_DATA x 10, then the report counts them.
  const std::vector<std::uint8_t> padding(200, 0xAB);
  std::size_t upBytes = 0;
  for (std::uint32_t sequence = 0; sequence < 10; ++sequence) {
    const auto up = datagram(ProbeType::UpData, sequence, padding);
    upBytes += up.size();
    client.sendTo(peer, up);
  }
  std::this_thread::sleep_for(100ms);  // loopback: all ten arrive before the request
  client.sendTo(peer, datagram(ProbeType::UpReportRequest, 11));
  const auto upReply = client.receive(2000ms);
  ASSERT_TRUE(upReply);
  const auto report = netcheck::parseUpReport(parsed(*upReply));
  ASSERT_TRUE(report);
  EXPECT_EQ(report->packets, 10u);
  EXPECT_EQ(report->bytes, upBytes);
  EXPECT_EQ(report->highestSequence, 9u);
  EXPECT_LE(report->firstArrivalUs, report->lastArrivalUs);

  // DOWN_START at 800 kbit/s for 500 ms in 500-byte datagrams: 100 DOWN_DATA, then DOWN_END.
  std::vector<std::uint8_t> start(netcheck::kProbeMaxDatagram);
  start.resize(netcheck::writeDownStart(start, kSession, {800, 500, 500}, 1));
  const auto began = Clock::now();
  client.sendTo(peer, start);
  std::uint32_t received = 0;
  std::optional<std::uint32_t> announced;
  std::optional<Clock::time_point> lastData;
  while (Clock::now() - began < 5s) {
    const auto bytes = client.receive(1000ms);
    if (!bytes) break;
    const auto message = parsed(*bytes);
    if (message.header.type == ProbeType::DownData) {
      EXPECT_EQ(bytes->size(), 500u);
      EXPECT_EQ(message.header.sequence, received);  // loopback keeps the order
      ++received;
      lastData = Clock::now();
    } else if (message.header.type == ProbeType::DownEnd) {
      announced = message.header.value;
      break;
    }
  }
  ASSERT_TRUE(announced);
  EXPECT_EQ(*announced, 100u);
  EXPECT_EQ(received, 100u);
  ASSERT_TRUE(lastData);
  // Paced over the duration, not sent in one burst.
  EXPECT_GE(*lastData - began, 350ms);

  // DOWN_END goes out three times; wait (bounded) until the probe counted all it sent.
  const auto deadline = Clock::now() + 2s;
  while (probe.counters().datagramsOut < 103u && Clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  const ProbePeerCounters counters = probe.counters();
  EXPECT_EQ(counters.sessionsStarted, 1u);
  EXPECT_GE(counters.datagramsIn, 14u);
  EXPECT_GE(counters.datagramsOut, 103u);
  EXPECT_GT(counters.bytesSent, 100u * 500u);
  probe.stop();
}

TEST(ProbePeer, BadTicketGetsAnErrorAndNoSession) {
  ProbePeer probe(options(true));
  probe.start();
  Client client;
  std::vector<std::uint8_t> forged(netcheck::kProbeMaxDatagram);
  forged.resize(netcheck::writeHello(forged, kSession, "forged-ticket", 1));
  client.sendTo(probe.endpoint(), forged);
  const auto answer = client.receive(2000ms);
  ASSERT_TRUE(answer);
  const auto error = parsed(*answer);
  EXPECT_EQ(error.header.type, ProbeType::Error);
  EXPECT_EQ(error.header.value, static_cast<std::uint32_t>(netcheck::ProbeErrorCode::BadTicket));
  // Without a session, an ECHO gets nothing.
  client.sendTo(probe.endpoint(), datagram(ProbeType::Echo, 1, {9}));
  EXPECT_FALSE(client.receive(300ms));
  EXPECT_EQ(probe.counters().sessionsStarted, 0u);
}

TEST(ProbePeer, SourcesThatAreNotRelayAddressesGetNothing) {
  ProbePeer probe(options(false));
  probe.start();
  Client client;
  client.sendTo(probe.endpoint(), hello());
  client.sendTo(probe.endpoint(), datagram(ProbeType::Echo, 1, {9}));
  client.sendTo(probe.endpoint(), std::vector<std::uint8_t>{1, 2, 3});  // garbage
  EXPECT_FALSE(client.receive(500ms));
  const auto deadline = Clock::now() + 2s;
  while (probe.counters().datagramsIn < 3 && Clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  const ProbePeerCounters counters = probe.counters();
  EXPECT_EQ(counters.datagramsIn, 3u);
  EXPECT_EQ(counters.dropped, 3u);
  EXPECT_EQ(counters.datagramsOut, 0u);
  EXPECT_EQ(counters.sessionsStarted, 0u);
}

}  // namespace
}  // namespace parley::net
