// The network check's media path on loopback: a client allocates on the real StunServer, and
// its relay reaches the probe peer although loopback is a denied peer range, because the probe's
// exact address:port is exempt; another port of that address stays refused (docs/netcheck.md).
#include <chrono>
#include <cstring>
#include <optional>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/net/probe_peer.hpp>
#include <parley/net/stun_server.hpp>

#include "../turn/turn_test_util.hpp"

namespace parley::net {
namespace {

using namespace std::chrono_literals;
using turn::testing::Body;
using turn::testing::build;
using turn::testing::channelValue;
using turn::testing::Credential;
using turn::testing::Reply;
using turn::testing::requestedTransport;
namespace attr = stun::attr;
namespace method = stun::method;
using stun::MessageClass;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kSession = 0x1122334455667788;
constexpr std::string_view kTicket = "relay-test-ticket";

IpAddress loopback() {
  return IpAddress::v4(0x7F000001);
}

class UdpClient {
 public:
  UdpClient() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
  }
  ~UdpClient() { ::close(fd_); }
  UdpClient(const UdpClient&) = delete;
  UdpClient& operator=(const UdpClient&) = delete;

  void sendTo(const Endpoint& to, std::span<const std::uint8_t> bytes) {
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    std::memcpy(&peer.sin_addr, to.address.bytes().data(), 4);
    peer.sin_port = htons(to.port);
    ASSERT_EQ(::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                       sizeof peer),
              static_cast<ssize_t>(bytes.size()));
  }
  std::optional<std::vector<std::uint8_t>> receive(std::chrono::milliseconds timeout) {
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::vector<std::uint8_t> buffer(4096);
    const ssize_t size = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (size < 0) return std::nullopt;
    buffer.resize(static_cast<std::size_t>(size));
    return buffer;
  }

 private:
  int fd_ = -1;
};

class ProbeThroughRelayTest : public ::testing::Test {
 protected:
  ProbeThroughRelayTest() {
    ProbePeerOptions probeOptions;
    probeOptions.bind = {loopback(), 0};
    probeOptions.verifyTicket =
        [](std::string_view ticket) -> std::optional<std::pair<std::uint64_t, Clock::time_point>> {
      if (ticket != kTicket) return std::nullopt;
      return std::pair{kSession, Clock::now() + 60s};
    };
    // The relay sockets bind to 127.0.0.1: only they are answered.
    probeOptions.fromRelay = [](const Endpoint& source) { return source.address == loopback(); };
    probe_ = std::make_unique<ProbePeer>(std::move(probeOptions));

    StunServerOptions options;
    options.listenAddresses = {loopback()};
    options.port = 0;
    options.tcp = false;
    options.turn.enabled = true;
    options.turn.protocol.realm = "parley";
    options.turn.protocol.users = {{"alice", "alice-pass"}};
    options.turn.relayAddressV4 = loopback();
    options.turn.exemptPeers = {probe_->endpoint()};  // loopback itself stays denied
    server_ = std::make_unique<StunServer>(options);
    server_->start();
    probe_->start();
    stunEndpoint_ = server_->udpEndpoints().at(0);
  }
  ~ProbeThroughRelayTest() override {
    probe_->stop();
    server_->stop();
  }

  Reply request(std::uint16_t m, const Body& body, const Credential* credential) {
    stun::TransactionId id{};
    id[0] = ++transactions_;
    client_.sendTo(stunEndpoint_, build(m, MessageClass::Request, id, body, credential));
    const auto answer = client_.receive(2000ms);
    EXPECT_TRUE(answer) << "no answer";
    return Reply{answer.value_or(std::vector<std::uint8_t>{})};
  }

  void allocate() {
    const Reply challenge = request(method::kAllocate, requestedTransport(), nullptr);
    ASSERT_EQ(challenge.code(), 401);
    alice_.nonce = challenge.text(attr::kNonce);
    ASSERT_EQ(request(method::kAllocate, requestedTransport(), &alice_).code(), 0);
  }

  static std::vector<std::uint8_t> channelData(std::uint16_t number,
                                               std::span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> out = {
        static_cast<std::uint8_t>(number >> 8), static_cast<std::uint8_t>(number),
        static_cast<std::uint8_t>(payload.size() >> 8), static_cast<std::uint8_t>(payload.size())};
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
  }

  std::unique_ptr<ProbePeer> probe_;
  std::unique_ptr<StunServer> server_;
  Endpoint stunEndpoint_;
  UdpClient client_;
  Credential alice_{"alice", "alice-pass"};
  std::uint8_t transactions_ = 0;
};

TEST_F(ProbeThroughRelayTest, TheRelayReachesTheProbeAndNothingElseOfItsAddress) {
  allocate();
  const Endpoint probe = probe_->endpoint();
  const Endpoint otherPort{probe.address, static_cast<std::uint16_t>(probe.port + 1)};
  const auto peerIs = [](const Endpoint& peer) {
    return Body([peer](stun::MessageBuilder& b) { b.addXorAddress(attr::kXorPeerAddress, peer); });
  };
  // Loopback stays denied, except the probe's address for a permission ...
  EXPECT_EQ(
      request(method::kCreatePermission, peerIs({IpAddress::v4(0x7F000002), 9}), &alice_).code(),
      403);
  ASSERT_EQ(request(method::kCreatePermission, peerIs(probe), &alice_).code(), 0);
  // ... and its exact port for a channel.
  const auto bind = [&](std::uint16_t number, const Endpoint& peer) {
    return request(
        method::kChannelBind,
        [&](stun::MessageBuilder& b) {
          b.addAttribute(attr::kChannelNumber, channelValue(number))
              .addXorAddress(attr::kXorPeerAddress, peer);
        },
        &alice_);
  };
  EXPECT_EQ(bind(0x4001, otherPort).code(), 403);
  ASSERT_EQ(bind(0x4000, probe).code(), 0);

  // HELLO through the relay: the probe sees the relay's address and answers through it.
  std::vector<std::uint8_t> hello(netcheck::kProbeMaxDatagram);
  hello.resize(netcheck::writeHello(hello, kSession, kTicket, 1));
  client_.sendTo(stunEndpoint_, channelData(0x4000, hello));
  const auto answer = client_.receive(2000ms);
  ASSERT_TRUE(answer);
  ASSERT_GE(answer->size(), 4u);
  EXPECT_EQ((*answer)[0], 0x40);  // ChannelData on 0x4000
  EXPECT_EQ((*answer)[1], 0x00);
  const std::span<const std::uint8_t> payload(answer->data() + 4, answer->size() - 4);
  const auto parsed = netcheck::parseProbe(payload);
  ASSERT_TRUE(parsed);
  const auto limits = netcheck::parseHelloOk(*parsed);
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->maxKbps, netcheck::ProbeLimits{}.maxKbps);

  // An echo round trip over the same path.
  std::vector<std::uint8_t> echo(netcheck::kProbeMaxDatagram);
  const netcheck::ProbeHeader header{netcheck::ProbeType::Echo, kSession, 42, 0, 777};
  const std::array<std::uint8_t, 3> body = {7, 8, 9};
  echo.resize(netcheck::writeProbe(echo, header, body, 300));
  client_.sendTo(stunEndpoint_, channelData(0x4000, echo));
  const auto echoed = client_.receive(2000ms);
  ASSERT_TRUE(echoed);
  const auto reply =
      netcheck::parseProbe(std::span<const std::uint8_t>(echoed->data() + 4, echoed->size() - 4));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->header.type, netcheck::ProbeType::EchoReply);
  EXPECT_EQ(reply->header.sequence, 42u);
  EXPECT_EQ(echoed->size() - 4, 300u);
  EXPECT_EQ(probe_->counters().sessionsStarted, 1u);
}

}  // namespace
}  // namespace parley::net
