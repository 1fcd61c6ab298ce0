#include <chrono>
#include <random>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <parley/tls/certificate.hpp>
#include <parley/tls/context.hpp>
#include <parley/tls/dtls.hpp>

#include "test_client.hpp"

namespace parley::tls {
namespace {

using namespace std::chrono_literals;
using test::Bytes;
using test::ClientOptions;
using test::DtlsClient;
using test::TempDir;
using ::testing::ElementsAre;
using TimePoint = DtlsServer::TimePoint;

// RFC 6347 §4.2.2 handshake types, at byte 13 of a plaintext handshake record.
constexpr std::uint8_t kHelloVerifyRequest = 3;
constexpr std::uint8_t kServerHello = 2;
constexpr std::uint8_t kContentAlert = 21;

Endpoint endpoint(std::string_view ip, std::uint16_t port) {
  return Endpoint{*IpAddress::parse(ip), port};
}

// What the server produced for the tests to look at, accumulated over calls.
struct Trace {
  std::vector<std::pair<Endpoint, std::string>> received;
  std::vector<Endpoint> established;
  std::vector<DtlsClosed> closed;
  std::vector<Bytes> datagrams;  // all datagrams the server sent

  void add(const DtlsOutput& out) {
    for (const auto& chunk : out.received()) {
      received.emplace_back(chunk.peer, test::toString(out.bytes(chunk)));
    }
    established.insert(established.end(), out.established().begin(), out.established().end());
    closed.insert(closed.end(), out.closed().begin(), out.closed().end());
    for (const auto& chunk : out.datagrams()) {
      auto bytes = out.bytes(chunk);
      datagrams.emplace_back(bytes.begin(), bytes.end());
    }
  }
};

// One client at one address, with the datagrams it still has to send.
struct Link {
  DtlsClient* client;
  Endpoint peer;
  std::vector<Bytes> pending;
};

class DtlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    paths_ = ensureSelfSigned(dir_->path(), {"localhost", "127.0.0.1", "::1"});
    context_ = ServerContext::load(paths_, {"stun.turn"});
  }
  static void TearDownTestSuite() {
    context_.reset();
    delete dir_;
  }
  void TearDown() override { EXPECT_EQ(ERR_peek_error(), 0u) << "error queue left dirty"; }

  static ClientOptions options() { return {paths_.cert, "localhost", {"stun.turn"}}; }

  // Delivers each link's datagrams to the server and the server's answers to the link's
  // client (round robin) until everyone is quiet.
  void pump(DtlsServer& server, std::vector<Link*> links, TimePoint now) {
    for (int round = 0; round < 50; ++round) {
      bool any = false;
      for (Link* link : links) {
        std::vector<Bytes> pending = std::move(link->pending);
        link->pending.clear();
        for (const auto& datagram : pending) {
          any = true;
          out_.clear();
          server.onDatagram(link->peer, datagram, now, out_);
          trace_.add(out_);
          deliver(links);
        }
      }
      if (!any) return;
    }
    ADD_FAILURE() << "no quiet after 50 rounds";
  }

  // Hands the datagrams in out_ to the links they are addressed to.
  void deliver(const std::vector<Link*>& links) {
    for (const auto& chunk : out_.datagrams()) {
      EXPECT_LE(chunk.size, 1200u) << "datagram over the MTU";
      for (Link* link : links) {
        if (link->peer == chunk.peer) {
          auto replies = link->client->receive(out_.bytes(chunk));
          link->pending.insert(link->pending.end(), replies.begin(), replies.end());
        }
      }
    }
  }

  void establish(DtlsServer& server, Link& link, TimePoint now) {
    link.pending = link.client->start();
    pump(server, {&link}, now);
    ASSERT_TRUE(link.client->established());
    ASSERT_TRUE(server.isEstablished(link.peer));
  }

  static inline TempDir* dir_ = nullptr;
  static inline CertificatePaths paths_;
  static inline std::shared_ptr<ServerContext> context_;
  const TimePoint t0_ = TimePoint{} + 1h;
  DtlsOutput out_;
  Trace trace_;
};

TEST_F(DtlsTest, HandshakeUsesStatelessCookieExchange) {
  DtlsServer server(context_);
  DtlsClient client(options());
  const Endpoint peer = endpoint("192.0.2.10", 40000);

  auto hello = client.start();
  ASSERT_EQ(hello.size(), 1u);
  server.onDatagram(peer, hello[0], t0_, out_);
  // RFC 6347 §4.2.1: HelloVerifyRequest, and nothing remembered.
  ASSERT_EQ(out_.datagrams().size(), 1u);
  EXPECT_EQ(out_.bytes(out_.datagrams()[0])[13], kHelloVerifyRequest);
  EXPECT_EQ(server.sessionCount(), 0u);
  EXPECT_EQ(server.counters().helloVerifyRequests, 1u);

  auto helloWithCookie = client.receive(out_.bytes(out_.datagrams()[0]));
  ASSERT_EQ(helloWithCookie.size(), 1u);
  out_.clear();
  server.onDatagram(peer, helloWithCookie[0], t0_, out_);
  EXPECT_EQ(server.sessionCount(), 1u);
  EXPECT_EQ(server.counters().handshakesStarted, 1u);
  ASSERT_FALSE(out_.datagrams().empty());
  EXPECT_EQ(out_.bytes(out_.datagrams()[0])[13], kServerHello);
  EXPECT_FALSE(server.isEstablished(peer));

  Link link{&client, peer, {}};
  trace_.add(out_);
  deliver({&link});
  pump(server, {&link}, t0_);
  EXPECT_TRUE(client.established());
  EXPECT_FALSE(client.failed());
  EXPECT_TRUE(server.isEstablished(peer));
  EXPECT_THAT(trace_.established, ElementsAre(peer));
  EXPECT_EQ(server.alpn(peer), "stun.turn");
  EXPECT_EQ(client.alpn(), "stun.turn");
  EXPECT_EQ(server.counters().handshakesCompleted, 1u);
  EXPECT_GT(server.maxPlaintext(peer), 1000u);
  EXPECT_LE(server.maxPlaintext(peer), 1200u);
}

TEST_F(DtlsTest, ApplicationDataBothWays) {
  DtlsServer server(context_);
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);

  link.pending = client.write("ping");
  pump(server, {&link}, t0_);
  ASSERT_EQ(trace_.received.size(), 1u);
  EXPECT_EQ(trace_.received[0].first, link.peer);
  EXPECT_EQ(trace_.received[0].second, "ping");

  out_.clear();
  ASSERT_TRUE(server.send(link.peer, test::toBytes("pong"), out_));
  ASSERT_EQ(out_.datagrams().size(), 1u);
  deliver({&link});
  EXPECT_THAT(client.received(), ElementsAre("pong"));

  // The largest record that fits the MTU goes out as one datagram.
  const std::string big(server.maxPlaintext(link.peer), 'x');
  out_.clear();
  ASSERT_TRUE(server.send(link.peer, test::toBytes(big), out_));
  ASSERT_EQ(out_.datagrams().size(), 1u);
  EXPECT_LE(out_.datagrams()[0].size, 1200u);
  deliver({&link});
  EXPECT_EQ(client.received().back(), big);
  EXPECT_EQ(server.counters().recordsIn, 1u);
  EXPECT_EQ(server.counters().recordsOut, 2u);
}

TEST_F(DtlsTest, TwoClientsAtOnce) {
  DtlsServer server(context_);
  DtlsClient alice(options());
  DtlsClient bob(options());
  // Same IP, different ports: two sessions.
  Link a{&alice, endpoint("198.51.100.7", 5000), alice.start()};
  Link b{&bob, endpoint("198.51.100.7", 5001), bob.start()};
  pump(server, {&a, &b}, t0_);
  ASSERT_TRUE(alice.established());
  ASSERT_TRUE(bob.established());
  EXPECT_EQ(server.sessionCount(), 2u);

  a.pending = alice.write("from alice");
  b.pending = bob.write("from bob");
  pump(server, {&a, &b}, t0_);
  ASSERT_EQ(trace_.received.size(), 2u);
  EXPECT_EQ(trace_.received[0], std::make_pair(a.peer, std::string("from alice")));
  EXPECT_EQ(trace_.received[1], std::make_pair(b.peer, std::string("from bob")));

  out_.clear();
  ASSERT_TRUE(server.send(a.peer, test::toBytes("to alice"), out_));
  ASSERT_TRUE(server.send(b.peer, test::toBytes("to bob"), out_));
  deliver({&a, &b});
  EXPECT_THAT(alice.received(), ElementsAre("to alice"));
  EXPECT_THAT(bob.received(), ElementsAre("to bob"));
}

TEST_F(DtlsTest, Ipv6Peer) {
  DtlsServer server(context_);
  DtlsClient client(options());
  Link link{&client, endpoint("2001:db8::42", 3478), {}};
  establish(server, link, t0_);
  link.pending = client.write("v6");
  pump(server, {&link}, t0_);
  ASSERT_EQ(trace_.received.size(), 1u);
  EXPECT_EQ(trace_.received[0].second, "v6");
}

TEST_F(DtlsTest, ClientHelloFloodFromSpoofedAddressesKeepsNoState) {
  DtlsServer server(context_);
  DtlsClient client(options());
  const Bytes hello = client.start().at(0);
  auto spoofed = [](std::uint32_t i) {
    return Endpoint{IpAddress::v4(0x0A000000u + i), static_cast<std::uint16_t>(1024 + i % 60000)};
  };
  // Warm up: the listener SSL, its buffers and the output buffer are allocated once.
  for (std::uint32_t i = 0; i < 100; ++i) {
    out_.clear();
    server.onDatagram(spoofed(i), hello, t0_, out_);
  }
  const std::size_t before = test::allocatedBytes();
  for (std::uint32_t i = 100; i < 10100; ++i) {
    out_.clear();
    server.onDatagram(spoofed(i), hello, t0_, out_);
    ASSERT_EQ(out_.datagrams().size(), 1u);
    ASSERT_EQ(out_.datagrams()[0].peer, spoofed(i));
  }
  const std::size_t after = test::allocatedBytes();
  RecordProperty("heap_growth_bytes", std::to_string(after > before ? after - before : 0));
  EXPECT_EQ(server.sessionCount(), 0u);
  EXPECT_EQ(server.counters().helloVerifyRequests, 10100u);
  EXPECT_EQ(server.counters().handshakesStarted, 0u);
  // Nothing per client: growth stays far below even one session per hello.
  EXPECT_LT(after > before ? after - before : 0, 64u * 1024) << before << " -> " << after;

  // The cookie of one address is worthless from any other (RFC 6347 §4.2.1). A fresh client:
  // the first one's retransmission timer may have run out during the flood.
  DtlsClient honest(options());
  out_.clear();
  const Endpoint real = endpoint("192.0.2.10", 40000);
  server.onDatagram(real, honest.start().at(0), t0_, out_);
  const Bytes withCookie = honest.receive(out_.bytes(out_.datagrams().at(0))).back();
  for (std::uint32_t i = 0; i < 10000; ++i) {
    out_.clear();
    server.onDatagram(spoofed(i), withCookie, t0_, out_);
    ASSERT_EQ(out_.datagrams().size(), 1u);
    ASSERT_EQ(out_.bytes(out_.datagrams()[0])[13], kHelloVerifyRequest);
  }
  EXPECT_EQ(server.sessionCount(), 0u);
  EXPECT_EQ(server.counters().handshakesStarted, 0u);
  // ... and still good from its own.
  out_.clear();
  const std::size_t beforeSession = test::allocatedBytes();
  server.onDatagram(real, withCookie, t0_, out_);
  EXPECT_EQ(server.sessionCount(), 1u);
  RecordProperty("one_session_bytes", std::to_string(test::allocatedBytes() - beforeSession));
}

TEST_F(DtlsTest, GarbageIsIgnored) {
  DtlsServer server(context_);
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);
  DtlsClient victim(options());
  const Bytes hello = victim.start().at(0);

  std::mt19937 random(1234);
  auto garbage = [&](std::size_t size) {
    Bytes bytes(size);
    for (auto& b : bytes)
      b = static_cast<std::uint8_t>(random());
    return bytes;
  };
  for (int i = 0; i < 3000; ++i) {
    Bytes datagram;
    switch (i % 4) {
      case 0:  // random bytes
        datagram = garbage(random() % 1500);
        break;
      case 1:  // a ClientHello header with a random body
        datagram = hello;
        for (std::size_t j = 25; j < datagram.size(); ++j) {
          datagram[j] = static_cast<std::uint8_t>(random());
        }
        break;
      case 2:  // a truncated ClientHello
        datagram.assign(hello.begin(), hello.begin() + static_cast<long>(random() % hello.size()));
        break;
      case 3:  // a ClientHello with one byte flipped
        datagram = hello;
        datagram[random() % datagram.size()] ^= static_cast<std::uint8_t>(1 + random() % 255);
        break;
    }
    out_.clear();
    const Endpoint from{IpAddress::v4(0xC6336400u + static_cast<std::uint32_t>(i % 200)),
                        static_cast<std::uint16_t>(2000 + i)};
    server.onDatagram(from, datagram, t0_, out_);
    // Garbage sent to the established session's address too.
    server.onDatagram(link.peer, garbage(random() % 300), t0_, out_);
    for (const auto& chunk : out_.datagrams()) {
      EXPECT_EQ(out_.bytes(chunk)[13], kHelloVerifyRequest) << "only cookies go to strangers";
    }
  }
  EXPECT_EQ(server.sessionCount(), 1u);
  EXPECT_GT(server.counters().ignored, 0u);

  // The established session is unharmed.
  link.pending = client.write("still here");
  pump(server, {&link}, t0_);
  ASSERT_FALSE(trace_.received.empty());
  EXPECT_EQ(trace_.received.back().second, "still here");
}

TEST_F(DtlsTest, IdleSessionsExpire) {
  DtlsServer server(context_, DtlsLimits{.idleTimeout = 300s});
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);

  // Data at t0+200s resets the idle clock.
  link.pending = client.write("keepalive");
  pump(server, {&link}, t0_ + 200s);
  out_.clear();
  server.tick(t0_ + 499s, out_);
  EXPECT_EQ(server.sessionCount(), 1u);
  EXPECT_TRUE(out_.empty());

  server.tick(t0_ + 500s, out_);
  EXPECT_EQ(server.sessionCount(), 0u);
  ASSERT_EQ(out_.closed().size(), 1u);
  EXPECT_EQ(out_.closed()[0].peer, link.peer);
  EXPECT_EQ(out_.closed()[0].reason, CloseReason::IdleTimeout);
  EXPECT_EQ(server.counters().idleTimeouts, 1u);
  // A close_notify goes to the peer.
  ASSERT_EQ(out_.datagrams().size(), 1u);
  EXPECT_EQ(out_.bytes(out_.datagrams()[0])[0], kContentAlert);
  deliver({&link});
  EXPECT_TRUE(client.peerClosed());
  EXPECT_FALSE(server.send(link.peer, test::toBytes("late"), out_));
}

TEST_F(DtlsTest, StalledHandshakeTimesOut) {
  DtlsServer server(context_, DtlsLimits{.handshakeTimeout = 10s});
  DtlsClient client(options());
  const Endpoint peer = endpoint("192.0.2.10", 40000);
  server.onDatagram(peer, client.start().at(0), t0_, out_);
  const Bytes withCookie = client.receive(out_.bytes(out_.datagrams().at(0))).back();
  out_.clear();
  server.onDatagram(peer, withCookie, t0_, out_);  // the server's flight is lost
  ASSERT_EQ(server.sessionCount(), 1u);

  out_.clear();
  server.tick(t0_ + 9s, out_);
  EXPECT_EQ(server.sessionCount(), 1u);
  server.tick(t0_ + 10s, out_);
  EXPECT_EQ(server.sessionCount(), 0u);
  ASSERT_EQ(out_.closed().size(), 1u);
  EXPECT_EQ(out_.closed()[0].reason, CloseReason::HandshakeTimeout);
  EXPECT_EQ(server.counters().handshakeTimeouts, 1u);
}

TEST_F(DtlsTest, LostFlightIsRetransmittedOnTick) {
  // Retransmission runs on OpenSSL's clock: a short first timeout keeps the test quick.
  DtlsServer server(context_, DtlsLimits{.retransmitInitial = 100ms});
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  server.onDatagram(link.peer, client.start().at(0), t0_, out_);
  const Bytes withCookie = client.receive(out_.bytes(out_.datagrams().at(0))).back();
  out_.clear();
  server.onDatagram(link.peer, withCookie, t0_, out_);
  ASSERT_FALSE(out_.datagrams().empty());

  out_.clear();  // lost
  server.tick(t0_, out_);
  EXPECT_TRUE(out_.datagrams().empty()) << "too early";

  std::this_thread::sleep_for(150ms);
  server.tick(t0_ + 150ms, out_);
  // OpenSSL resends the flight one handshake message per datagram.
  ASSERT_FALSE(out_.datagrams().empty());
  EXPECT_EQ(out_.bytes(out_.datagrams()[0])[13], kServerHello);
  EXPECT_EQ(server.counters().retransmissions, 1u);

  deliver({&link});
  pump(server, {&link}, t0_ + 150ms);
  EXPECT_TRUE(client.established());
  EXPECT_TRUE(server.isEstablished(link.peer));
}

TEST_F(DtlsTest, PeerCloseNotifyEndsSession) {
  DtlsServer server(context_);
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);
  link.pending = client.shutdown();
  pump(server, {&link}, t0_);
  EXPECT_EQ(server.sessionCount(), 0u);
  ASSERT_EQ(trace_.closed.size(), 1u);
  EXPECT_EQ(trace_.closed[0].reason, CloseReason::PeerClosed);
}

TEST_F(DtlsTest, LocalCloseSendsCloseNotify) {
  DtlsServer server(context_);
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);
  out_.clear();
  server.close(link.peer, out_);
  EXPECT_EQ(server.sessionCount(), 0u);
  ASSERT_EQ(out_.closed().size(), 1u);
  EXPECT_EQ(out_.closed()[0].reason, CloseReason::Local);
  deliver({&link});
  EXPECT_TRUE(client.peerClosed());
  out_.clear();
  server.close(link.peer, out_);  // unknown now: nothing
  EXPECT_TRUE(out_.empty());
}

TEST_F(DtlsTest, SessionLimitDropsNewClientHellos) {
  DtlsServer server(context_, DtlsLimits{.maxSessions = 1});
  DtlsClient first(options());
  Link a{&first, endpoint("192.0.2.10", 40000), {}};
  establish(server, a, t0_);

  DtlsClient second(options());
  out_.clear();
  server.onDatagram(endpoint("192.0.2.11", 40000), second.start().at(0), t0_, out_);
  EXPECT_TRUE(out_.datagrams().empty());
  EXPECT_EQ(server.counters().sessionLimitDrops, 1u);
  EXPECT_EQ(server.sessionCount(), 1u);
}

TEST_F(DtlsTest, NewHandshakeFromSameAddressReplacesSession) {
  DtlsServer server(context_);
  DtlsClient before(options());
  Link link{&before, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);

  // The client restarted and reuses its port (RFC 6347 §4.2.8).
  DtlsClient after(options());
  Link again{&after, link.peer, {}};
  auto hello = after.start();
  out_.clear();
  server.onDatagram(link.peer, hello.at(0), t0_, out_);
  EXPECT_TRUE(server.isEstablished(link.peer)) << "kept until the cookie comes back";
  ASSERT_EQ(out_.bytes(out_.datagrams().at(0))[13], kHelloVerifyRequest);
  deliver({&again});
  pump(server, {&again}, t0_);
  EXPECT_TRUE(after.established());
  EXPECT_EQ(server.sessionCount(), 1u);
  ASSERT_EQ(trace_.closed.size(), 1u);
  EXPECT_EQ(trace_.closed[0].reason, CloseReason::Replaced);

  again.pending = after.write("new session");
  pump(server, {&again}, t0_);
  EXPECT_EQ(trace_.received.back().second, "new session");
}

TEST_F(DtlsTest, SendRejections) {
  DtlsServer server(context_);
  EXPECT_FALSE(server.send(endpoint("192.0.2.10", 1), test::toBytes("x"), out_));
  DtlsClient client(options());
  Link link{&client, endpoint("192.0.2.10", 40000), {}};
  establish(server, link, t0_);
  out_.clear();
  EXPECT_FALSE(server.send(link.peer, Bytes(server.maxPlaintext(link.peer) + 1, 'x'), out_));
  EXPECT_FALSE(server.send(link.peer, Bytes{}, out_));
  EXPECT_TRUE(out_.datagrams().empty());
  EXPECT_EQ(server.counters().sendRejected, 3u);
  EXPECT_TRUE(server.isEstablished(link.peer));
}

TEST_F(DtlsTest, HandshakeFailureSendsAlertAndForgets) {
  DtlsServer server(context_);
  // A client that offers only a cipher suite the server refuses (no forward secrecy).
  DtlsClient client({.trust = paths_.cert, .host = "localhost", .ciphers = "AES128-SHA"});
  Link link{&client, endpoint("192.0.2.10", 40000), client.start()};
  pump(server, {&link}, t0_);
  EXPECT_FALSE(client.established());
  EXPECT_TRUE(client.failed());
  EXPECT_EQ(server.sessionCount(), 0u);
  ASSERT_EQ(trace_.closed.size(), 1u);
  EXPECT_EQ(trace_.closed[0].reason, CloseReason::HandshakeFailed);
  EXPECT_EQ(trace_.datagrams.back()[0], kContentAlert);
}

TEST_F(DtlsTest, Dtls10Refused) {
  DtlsServer server(context_);
  DtlsClient client(
      {.trust = paths_.cert, .host = "localhost", .alpn = {}, .maxVersion = DTLS1_VERSION});
  Link link{&client, endpoint("192.0.2.10", 40000), client.start()};
  pump(server, {&link}, t0_);
  EXPECT_FALSE(client.established());
  EXPECT_TRUE(client.failed());
  EXPECT_EQ(server.sessionCount(), 0u);
  EXPECT_EQ(server.counters().handshakeFailures, 1u);
}

TEST_F(DtlsTest, ReloadAppliesToNewSessionsOnly) {
  ContextHolder holder(context_);
  DtlsServer server(holder);
  DtlsClient oldClient(options());
  Link a{&oldClient, endpoint("192.0.2.10", 40000), {}};
  establish(server, a, t0_);

  TempDir other;
  const auto newPaths = ensureSelfSigned(other.path(), {"localhost"});
  ASSERT_TRUE(holder.reload(newPaths));

  // A client that trusts only the new certificate gets in ...
  DtlsClient newClient({newPaths.cert, "localhost", {"stun.turn"}});
  Link b{&newClient, endpoint("192.0.2.11", 40000), {}};
  establish(server, b, t0_);
  // ... and the old session carries on.
  a.pending = oldClient.write("old");
  pump(server, {&a}, t0_);
  EXPECT_EQ(trace_.received.back(), std::make_pair(a.peer, std::string("old")));
}

}  // namespace
}  // namespace parley::tls
