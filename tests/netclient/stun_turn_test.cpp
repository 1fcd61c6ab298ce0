// STUN Binding, RFC 5780 behaviour discovery and TURN allocations of the network check against
// parley's own STUN/TURN server on loopback, over UDP, TCP, TLS and DTLS.
#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <parley/netclient/media.hpp>
#include <parley/netclient/transport.hpp>

#include "media_test_support.hpp"

namespace parley::netclient {
namespace {

using namespace std::chrono_literals;
using test::Kind;
using test::kindName;
using test::open;
using test::restCredentials;
using test::TestSocket;
using test::TestTurnServer;
using ::testing::HasSubstr;

// A UDP peer on 127.0.0.1 that the relay may send to.
struct UdpPeer {
  TestSocket socket{SOCK_DGRAM};
  Endpoint endpoint = socket.bindLoopback();

  std::optional<std::pair<std::string, Endpoint>> receive(std::chrono::milliseconds timeout) {
    pollfd poller{socket.fd(), POLLIN, 0};
    if (::poll(&poller, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buffer[2048];
    sockaddr_in from{};
    socklen_t length = sizeof from;
    const ssize_t n = ::recvfrom(socket.fd(), buffer, sizeof buffer, 0,
                                 reinterpret_cast<sockaddr*>(&from), &length);
    if (n < 0) return std::nullopt;
    return std::pair{std::string(buffer, static_cast<std::size_t>(n)),
                     Endpoint{IpAddress::v4(ntohl(from.sin_addr.s_addr)), ntohs(from.sin_port)}};
  }
  void sendTo(const Endpoint& to, const std::string& text) {
    const auto address = test::toSockaddrV4(to);
    ::sendto(socket.fd(), text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&address),
             sizeof address);
  }
};

std::span<const std::uint8_t> bytesOf(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

class OverEachTransport : public ::testing::TestWithParam<Kind> {
 protected:
  TestTurnServer server;
};

TEST_P(OverEachTransport, AllocatesRelaysBothWaysAndReleasesTheAllocation) {
  const auto deadline = Clock::now() + 5s;
  auto transport = open(server, GetParam(), deadline);
  ASSERT_TRUE(transport) << transport.error().message;
  const auto local = (*transport)->localEndpoint();
  ASSERT_TRUE(local);
  auto allocation =
      allocate(std::move(*transport), restCredentials("netcheck-0123456789abcdef"), deadline);
  ASSERT_TRUE(allocation) << allocation.error().message;
  EXPECT_EQ((*allocation)->relayed().address.toString(), "127.0.0.1");
  EXPECT_NE((*allocation)->relayed().port, 0);
  EXPECT_EQ((*allocation)->mapped(), *local);
  EXPECT_EQ((*allocation)->reliable(), GetParam() == Kind::Tcp || GetParam() == Kind::Tls);

  UdpPeer peer;
  ASSERT_TRUE((*allocation)->bindPeer(peer.endpoint, deadline));
  // Odd length: stream transports pad ChannelData to 4, the peer gets exactly these bytes.
  ASSERT_TRUE((*allocation)->sendToPeer(bytesOf("hello, peer"), deadline));
  const auto received = peer.receive(2000ms);
  ASSERT_TRUE(received);
  EXPECT_EQ(received->first, "hello, peer");
  EXPECT_EQ(received->second, (*allocation)->relayed());

  peer.sendTo((*allocation)->relayed(), "hello, client");
  std::array<std::uint8_t, 1500> buffer{};
  auto got = (*allocation)->receiveFromPeer(buffer, deadline);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), *got), "hello, client");

  allocation->reset();  // Refresh with LIFETIME 0
  // The server's TURN counters are refreshed about once a second.
  std::uint64_t deleted = 0;
  for (int i = 0; i < 40 && deleted == 0; ++i) {
    std::this_thread::sleep_for(100ms);
    deleted = server.server().turnCounters().allocationsDeleted;
  }
  EXPECT_EQ(deleted, 1u);
  EXPECT_EQ(server.server().turnCounters().allocationsActive, 0u);
}

TEST_P(OverEachTransport, LongTermCredentialsWork) {
  const auto deadline = Clock::now() + 5s;
  auto transport = open(server, GetParam(), deadline);
  ASSERT_TRUE(transport) << transport.error().message;
  auto allocation = allocate(std::move(*transport),
                             TurnCredentials{test::kTurnUser, test::kTurnPassword}, deadline);
  ASSERT_TRUE(allocation) << allocation.error().message;
  EXPECT_NE((*allocation)->relayed().port, 0);
}

TEST_P(OverEachTransport, WrongPasswordIsAuthFailed) {
  const auto deadline = Clock::now() + 5s;
  auto transport = open(server, GetParam(), deadline);
  ASSERT_TRUE(transport) << transport.error().message;
  auto allocation = allocate(std::move(*transport),
                             TurnCredentials{test::kTurnUser, "not-the-password"}, deadline);
  ASSERT_FALSE(allocation);
  EXPECT_EQ(allocation.error().code, "auth_failed");
  EXPECT_THAT(allocation.error().message, HasSubstr("401"));
  EXPECT_THAT(allocation.error().message, HasSubstr(test::kTurnUser));
  EXPECT_THAT(allocation.error().message, ::testing::Not(HasSubstr("not-the-password")));
}

TEST_P(OverEachTransport, BindingReportsTheMappedAddress) {
  const auto deadline = Clock::now() + 5s;
  auto transport = open(server, GetParam(), deadline);
  ASSERT_TRUE(transport) << transport.error().message;
  auto outcome = stunBinding(**transport, deadline);
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_EQ(outcome->mapped, *(*transport)->localEndpoint());
  EXPECT_FALSE(outcome->otherAddress);  // no alternate address configured
  EXPECT_LT(outcome->rtt, 1000ms);
}

INSTANTIATE_TEST_SUITE_P(Transports, OverEachTransport,
                         ::testing::Values(Kind::Udp, Kind::Tcp, Kind::Tls, Kind::Dtls), kindName);

TEST(StunBinding, SilentServerTimesOutByTheDeadlineAfterRetransmitting) {
  TestSocket silent(SOCK_DGRAM);
  const Endpoint target = silent.bindLoopback();
  auto transport = openUdp(target);
  ASSERT_TRUE(transport);
  const auto start = Clock::now();
  auto outcome = stunBinding(**transport, start + 1200ms);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, "timeout");
  EXPECT_THAT(outcome.error().message, HasSubstr(target.toString()));
  EXPECT_GE(took, 1150ms);
  EXPECT_LT(took, 1600ms);
  // 0, 250, 750 ms: three copies of the request (RTO doubling).
  int copies = 0;
  for (int i = 0; i < 10; ++i) {
    pollfd poller{silent.fd(), POLLIN, 0};
    if (::poll(&poller, 1, 0) != 1) break;
    char buffer[256];
    if (::recv(silent.fd(), buffer, sizeof buffer, 0) > 0) ++copies;
  }
  EXPECT_EQ(copies, 3);
}

TEST(StunBinding, ClosedUdpPortIsRefused) {
  TestSocket closed(SOCK_DGRAM);
  const Endpoint target = closed.bindLoopback();
  closed.close();  // ICMP port unreachable from now on
  auto transport = openUdp(target);
  ASSERT_TRUE(transport);
  auto outcome = stunBinding(**transport, Clock::now() + 1s);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, "refused");
}

TEST(StunBinding, HttpServerOnAStreamIsAProtocolFailure) {
  TestSocket listener(SOCK_STREAM);
  const Endpoint target = listener.bindLoopback();
  ::listen(listener.fd(), 1);
  std::thread server([&listener] {
    pollfd poller{listener.fd(), POLLIN, 0};
    if (::poll(&poller, 1, 3000) != 1) return;
    const int fd = ::accept(listener.fd(), nullptr, nullptr);
    char buffer[512];
    (void)::recv(fd, buffer, sizeof buffer, 0);
    const std::string answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(200ms);
    ::close(fd);
  });
  const auto deadline = Clock::now() + 3s;
  auto stream = connectTcp(target, deadline);
  ASSERT_TRUE(stream);
  auto transport = framed(std::move(*stream));
  auto outcome = stunBinding(*transport, deadline);
  server.join();
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, "protocol");
  EXPECT_THAT(outcome.error().message, HasSubstr("HTTP"));
}

TEST(Allocate, SilentServerTimesOutByTheDeadline) {
  TestSocket silent(SOCK_DGRAM);
  const Endpoint target = silent.bindLoopback();
  auto transport = openUdp(target);
  ASSERT_TRUE(transport);
  const auto start = Clock::now();
  auto allocation =
      allocate(std::move(*transport), TurnCredentials{"user", "password"}, start + 800ms);
  ASSERT_FALSE(allocation);
  EXPECT_EQ(allocation.error().code, "timeout");
  EXPECT_LT(Clock::now() - start, 1200ms);
}

TEST(Allocate, ForbiddenPeerIsNamedInTheFailure) {
  TestTurnServer server;
  const auto deadline = Clock::now() + 5s;
  auto transport = openUdp(server.udp());
  ASSERT_TRUE(transport);
  auto allocation = allocate(std::move(*transport),
                             TurnCredentials{test::kTurnUser, test::kTurnPassword}, deadline);
  ASSERT_TRUE(allocation) << allocation.error().message;
  // 10.0.0.1 is outside the allowed loopback range: the built-in deny list applies.
  auto bound = (*allocation)->bindPeer(Endpoint{*IpAddress::parse("10.0.0.1"), 9}, deadline);
  ASSERT_FALSE(bound);
  EXPECT_THAT(bound.error().message, HasSubstr("CreatePermission answered 403"));
}

TEST(OpenDtls, ReportsTheServersCertificate) {
  TestTurnServer server;
  TlsFacts facts;
  auto transport = openDtls("localhost", server.dtls(), Clock::now() + 3s, &facts);
  ASSERT_TRUE(transport) << transport.error().message;
  EXPECT_EQ(facts.protocol, "DTLSv1.2");
  EXPECT_EQ(facts.leafSha256.size(), 64u);
  EXPECT_EQ(facts.subject, "CN=localhost");
  EXPECT_EQ((*transport)->describe(), "dtls " + server.dtls().toString());
  EXPECT_FALSE((*transport)->reliable());
}

TEST(OpenDtls, SilentServerTimesOutByTheDeadline) {
  TestSocket silent(SOCK_DGRAM);
  const Endpoint target = silent.bindLoopback();
  const auto start = Clock::now();
  auto transport = openDtls("localhost", target, start + 700ms, nullptr);
  ASSERT_FALSE(transport);
  EXPECT_EQ(transport.error().code, "timeout");
  EXPECT_GE(Clock::now() - start, 650ms);
  EXPECT_LT(Clock::now() - start, 1200ms);
}

TEST(NatBehaviour, LoopbackHasNoNatAndNoFiltering) {
  TestTurnServer server(/*alternate=*/true);
  const auto deadline = Clock::now() + 5s;
  auto transport = openUdp(server.udp());
  ASSERT_TRUE(transport);
  auto binding = stunBinding(**transport, deadline);
  ASSERT_TRUE(binding) << binding.error().message;
  ASSERT_TRUE(binding->otherAddress);
  EXPECT_EQ(binding->otherAddress->address.toString(), "127.0.0.2");
  auto behaviour = natBehaviour(server.udp(), *binding->otherAddress, deadline);
  ASSERT_TRUE(behaviour) << behaviour.error().message;
  EXPECT_EQ(behaviour->mapping, "no-nat");
  EXPECT_EQ(behaviour->filtering, "endpoint-independent");
}

TEST(NatBehaviour, ServerWithoutChangeRequestSupportIsAProtocolFailure) {
  // A plain server without an alternate address answers CHANGE-REQUEST from where it is.
  TestTurnServer server;
  const Endpoint fakeOther{*IpAddress::parse("127.0.0.2"), server.udp().port};
  auto behaviour = natBehaviour(server.udp(), fakeOther, Clock::now() + 3s);
  ASSERT_FALSE(behaviour);
  EXPECT_EQ(behaviour.error().code, "protocol");
  EXPECT_THAT(behaviour.error().message, HasSubstr("CHANGE-REQUEST"));
}

}  // namespace
}  // namespace parley::netclient
