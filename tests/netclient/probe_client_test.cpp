// The probe client through real TURN allocations on loopback: parley's STUN/TURN server relays
// to a UDP socket driven by netcheck::ProbeResponder, as `parley serve`'s probe peer is.
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <parley/netcheck/probe.hpp>
#include <parley/netclient/media.hpp>

#include "media_test_support.hpp"

namespace parley::netclient {
namespace {

using namespace std::chrono_literals;
using test::Kind;
using test::TestSocket;
using test::TestTurnServer;
using ::testing::HasSubstr;

constexpr std::uint64_t kSessionId = 0x5f0c2a9e8d7b6a41;
constexpr const char* kTicket = "ticket-for-5f0c2a9e8d7b6a41";

// A probe peer on 127.0.0.1: a UDP socket and a ProbeResponder on a thread of its own. It
// answers only datagrams from 127.0.0.1 (the relay address of the test's TURN server).
class TestProbePeer {
 public:
  explicit TestProbePeer(netcheck::ProbeLimits limits = {})
      : responder_(
            limits,
            [](std::string_view ticket)
                -> std::optional<
                    std::pair<std::uint64_t, netcheck::ProbeResponder::Clock::time_point>> {
              if (ticket != kTicket) return std::nullopt;
              return std::pair{kSessionId, netcheck::ProbeResponder::Clock::now() + 60s};
            },
            [](const Endpoint& from) { return from.address.toString() == "127.0.0.1"; },
            [this](const Endpoint& to, std::span<const std::uint8_t> bytes) {
              recordSent(bytes);
              const auto address = test::toSockaddrV4(to);
              ::sendto(socket_.fd(), bytes.data(), bytes.size(), 0,
                       reinterpret_cast<const sockaddr*>(&address), sizeof address);
            }) {
    endpoint_ = socket_.bindLoopback();
    int size = 1 << 21;
    ::setsockopt(socket_.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    ::setsockopt(socket_.fd(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    thread_ = std::thread([this] { run(); });
  }
  ~TestProbePeer() {
    stop_ = true;
    thread_.join();
  }
  Endpoint endpoint() const { return endpoint_; }
  ProbeSession session() const {
    return ProbeSession{kTicket, kSessionId, endpoint_, 10'000, 4, 200};
  }
  // The rate the probe itself sent DOWN_DATA at, first to last datagram. On a loaded machine
  // the probe thread wakes late and its stream stretches (it never bursts to catch up).
  double sentKbps() const {
    std::lock_guard lock(mutex_);
    const double seconds = std::chrono::duration<double>(lastDown_ - firstDown_).count();
    if (downPackets_ < 2 || seconds <= 0) return 0;
    return static_cast<double>(downBytes_) * static_cast<double>(downPackets_ - 1) /
           static_cast<double>(downPackets_) * 8 / seconds / 1000;
  }

 private:
  void run() {
    std::array<std::uint8_t, 2048> buffer{};
    // Bounded by the test's lifetime: stop_ ends it; each pass waits at most 50 ms.
    while (!stop_) {
      auto now = netcheck::ProbeResponder::Clock::now();
      int timeout = 50;
      if (const auto wake = responder_.nextWake()) {
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*wake - now).count();
        timeout = static_cast<int>(std::clamp<std::int64_t>(wait, 0, 50));
      }
      pollfd poller{socket_.fd(), POLLIN, 0};
      if (::poll(&poller, 1, timeout) == 1) {
        // Everything that is waiting, then the paced sends.
        for (int i = 0; i < 256; ++i) {
          sockaddr_in from{};
          socklen_t length = sizeof from;
          const ssize_t n = ::recvfrom(socket_.fd(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                                       reinterpret_cast<sockaddr*>(&from), &length);
          if (n < 0) break;
          responder_.onDatagram(
              Endpoint{IpAddress::v4(ntohl(from.sin_addr.s_addr)), ntohs(from.sin_port)},
              std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)),
              netcheck::ProbeResponder::Clock::now());
        }
      }
      responder_.poll(netcheck::ProbeResponder::Clock::now());
    }
  }

  void recordSent(std::span<const std::uint8_t> bytes) {
    const auto datagram = netcheck::parseProbe(bytes);
    if (!datagram || datagram->header.type != netcheck::ProbeType::DownData) return;
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    if (downPackets_ == 0) firstDown_ = now;
    lastDown_ = now;
    ++downPackets_;
    downBytes_ += bytes.size();
  }

  mutable std::mutex mutex_;
  Clock::time_point firstDown_;
  Clock::time_point lastDown_;
  std::uint64_t downPackets_ = 0;
  std::uint64_t downBytes_ = 0;
  TestSocket socket_{SOCK_DGRAM};
  Endpoint endpoint_;
  netcheck::ProbeResponder responder_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct RelayToProbe {
  TestTurnServer server;
  TestProbePeer probe;
  std::unique_ptr<TurnAllocation> allocation;

  explicit RelayToProbe(Kind kind) {
    const auto deadline = Clock::now() + 5s;
    auto transport = test::open(server, kind, deadline);
    if (!transport) {
      ADD_FAILURE() << transport.error().message;
      return;
    }
    auto allocated = allocate(std::move(*transport),
                              test::restCredentials("netcheck-5f0c2a9e8d7b6a41"), deadline);
    if (!allocated) {
      ADD_FAILURE() << allocated.error().message;
      return;
    }
    allocation = std::move(*allocated);
    if (auto bound = allocation->bindPeer(probe.endpoint(), deadline); !bound) {
      ADD_FAILURE() << bound.error().message;
      allocation.reset();
    }
  }
};

class ProbeOverTransport : public ::testing::TestWithParam<Kind> {};

TEST_P(ProbeOverTransport, PathQualityOnLoopbackIsClean) {
  RelayToProbe setup(GetParam());
  ASSERT_TRUE(setup.allocation);
  const auto start = Clock::now();
  auto quality = measurePath(*setup.allocation, setup.probe.session(), 50, 20ms, start + 5s);
  ASSERT_TRUE(quality) << quality.error().message;
  EXPECT_EQ(quality->sent, 50u);
  EXPECT_EQ(quality->received, 50u);
  EXPECT_EQ(quality->lossPercent, 0.0);
  EXPECT_GT(quality->rttMs, 0.0);
  EXPECT_LT(quality->rttMs, 50.0);
  EXPECT_GE(quality->jitterMs, 0.0);
  EXPECT_LT(quality->jitterMs, 20.0);
  // 50 echoes 20 ms apart take about a second.
  EXPECT_GE(Clock::now() - start, 980ms);
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST_P(ProbeOverTransport, UpstreamCarriesTheOfferedRate) {
  RelayToProbe setup(GetParam());
  ASSERT_TRUE(setup.allocation);
  auto up = measureUp(*setup.allocation, setup.probe.session(), 2000, 1000ms, Clock::now() + 5s);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->offeredKbps, 2000.0);
  EXPECT_NEAR(up->kbps, 2000.0, 600.0);
  EXPECT_EQ(up->lossPercent, 0.0);
  EXPECT_NEAR(up->seconds, 1.0, 0.2);
  // 2000 kbit/s for a second: about 250 kB in 1200-byte datagrams.
  EXPECT_NEAR(static_cast<double>(up->bytes), 250'000.0, 30'000.0);
}

TEST_P(ProbeOverTransport, DownstreamCarriesTheRequestedRate) {
  RelayToProbe setup(GetParam());
  ASSERT_TRUE(setup.allocation);
  auto down =
      measureDown(*setup.allocation, setup.probe.session(), 2000, 1000ms, Clock::now() + 5s);
  ASSERT_TRUE(down) << down.error().message;
  EXPECT_EQ(down->offeredKbps, 2000.0);
  // What arrived is what the probe sent, within 30 %; and that is the offer unless the machine
  // was too busy to let the probe keep its pace.
  const double sent = setup.probe.sentKbps();
  EXPECT_NEAR(down->kbps, sent, 0.3 * sent);
  if (sent > 1800) EXPECT_NEAR(down->kbps, 2000.0, 600.0);
  EXPECT_EQ(down->lossPercent, 0.0);
  EXPECT_NEAR(static_cast<double>(down->bytes), 250'000.0, 30'000.0);
}

INSTANTIATE_TEST_SUITE_P(Transports, ProbeOverTransport,
                         ::testing::Values(Kind::Udp, Kind::Tcp, Kind::Tls, Kind::Dtls),
                         test::kindName);

TEST(ProbeClient, OfferAboveTheProbesLimitIsClamped) {
  netcheck::ProbeLimits limits;
  limits.maxKbps = 1000;
  limits.maxSeconds = 1;
  TestTurnServer server;
  TestProbePeer probe(limits);
  const auto deadline = Clock::now() + 6s;
  auto transport = openUdp(server.udp());
  ASSERT_TRUE(transport);
  auto allocation = allocate(std::move(*transport), test::restCredentials("netcheck-x"), deadline);
  ASSERT_TRUE(allocation) << allocation.error().message;
  ASSERT_TRUE((*allocation)->bindPeer(probe.endpoint(), deadline));
  auto down = measureDown(**allocation, probe.session(), 5000, 3000ms, deadline);
  ASSERT_TRUE(down) << down.error().message;
  EXPECT_EQ(down->offeredKbps, 1000.0);
  const double sent = probe.sentKbps();
  EXPECT_LT(sent, 1100.0);  // the probe kept to its own limit
  EXPECT_NEAR(down->kbps, sent, 0.3 * sent);
  EXPECT_LT(down->seconds, 1.5);
}

TEST(ProbeClient, BadTicketIsAuthFailed) {
  RelayToProbe setup(Kind::Udp);
  ASSERT_TRUE(setup.allocation);
  ProbeSession session = setup.probe.session();
  session.ticket = "forged";
  auto quality = measurePath(*setup.allocation, session, 10, 20ms, Clock::now() + 3s);
  ASSERT_FALSE(quality);
  EXPECT_EQ(quality.error().code, "auth_failed");
}

TEST(ProbeClient, SilentPeerTimesOutByTheDeadline) {
  TestTurnServer server;
  TestSocket silent(SOCK_DGRAM);
  const Endpoint peer = silent.bindLoopback();
  const auto start = Clock::now();
  auto transport = openUdp(server.udp());
  ASSERT_TRUE(transport);
  auto allocation =
      allocate(std::move(*transport), test::restCredentials("netcheck-y"), start + 3s);
  ASSERT_TRUE(allocation) << allocation.error().message;
  ASSERT_TRUE((*allocation)->bindPeer(peer, start + 3s));
  ProbeSession session{kTicket, kSessionId, peer, 10'000, 4, 200};
  const auto measured = Clock::now();
  auto quality = measurePath(**allocation, session, 10, 20ms, measured + 1500ms);
  ASSERT_FALSE(quality);
  EXPECT_EQ(quality.error().code, "timeout");
  EXPECT_THAT(quality.error().message, HasSubstr("HELLO"));
  EXPECT_LT(Clock::now() - measured, 2s);
  // The three HELLOs reached the peer through the relay.
  int hellos = 0;
  for (int i = 0; i < 10; ++i) {
    pollfd poller{silent.fd(), POLLIN, 0};
    if (::poll(&poller, 1, 0) != 1) break;
    std::array<std::uint8_t, 1500> buffer{};
    const ssize_t n = ::recv(silent.fd(), buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    auto datagram = netcheck::parseProbe(
        std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)));
    if (datagram && datagram->header.type == netcheck::ProbeType::Hello) ++hellos;
  }
  EXPECT_EQ(hellos, 3);
}

}  // namespace
}  // namespace parley::netclient
