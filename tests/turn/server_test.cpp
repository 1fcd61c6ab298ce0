#include <memory>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <parley/stun/framer.hpp>
#include <parley/turn/server.hpp>

#include "turn_test_util.hpp"

namespace parley::turn::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::array<std::uint8_t, 32> kNonceKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

std::string restPassword(std::string_view secret, std::string_view username) {
  unsigned char mac[20];
  unsigned int size = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &size);
  unsigned char text[32] = {};
  EVP_EncodeBlock(text, mac, 20);
  return reinterpret_cast<char*>(text);
}

class TurnServerTest : public ::testing::Test {
 protected:
  TurnServerTest() {
    options.users = {{"alice", "alice-pass"}, {"bob", "bob-pass"}};
    options.restSecrets = {"old-secret", "new-secret"};
    options.software = "parley-test";
  }

  Server& server() {
    if (!server_) {
      shared_ = std::make_unique<SharedState>(maxTotal, kNonceKey);
      server_ = std::make_unique<Server>(options, *shared_, filter, io);
    }
    return *server_;
  }
  SharedState& shared() {
    server();
    return *shared_;
  }

  void advance(std::chrono::seconds by) {
    now.steady += by;
    now.wall += by;
  }

  stun::TransactionId nextId() {
    stun::TransactionId id{};
    ++idCounter_;
    for (int i = 0; i < 4; ++i)
      id[i] = static_cast<std::uint8_t>(idCounter_ >> (8 * i));
    return id;
  }

  // Sends `bytes` from `client` and returns what the server answered, if anything.
  std::optional<Reply> send(const std::vector<std::uint8_t>& bytes, const FiveTuple& client) {
    const std::size_t before = io.toClient.size();
    server().onClientBytes(client, bytes, now);
    if (io.toClient.size() == before) return std::nullopt;
    EXPECT_EQ(io.toClient.size(), before + 1);
    EXPECT_EQ(io.toClient.back().client, client);
    return Reply{io.toClient.back().bytes};
  }

  Reply request(std::uint16_t m, const Body& body, const Credential* credential,
                const FiveTuple& client) {
    auto reply = send(build(m, MessageClass::Request, nextId(), body, credential), client);
    EXPECT_TRUE(reply) << "no answer";
    return reply ? *reply : Reply{};
  }
  Reply request(std::uint16_t m, const Body& body, const Credential* credential) {
    return request(m, body, credential, udp);
  }

  // The unauthenticated first Allocate: fills in the credential's nonce from the 401.
  void challenge(Credential& credential, const FiveTuple& client) {
    const Reply reply = request(method::kAllocate, requestedTransport(), nullptr, client);
    ASSERT_EQ(reply.code(), 401);
    credential.nonce = reply.text(attr::kNonce);
  }

  Reply allocate(Credential& credential, const FiveTuple& client, const Body& extra = {}) {
    if (credential.nonce.empty()) challenge(credential, client);
    return request(
        method::kAllocate,
        [&](MessageBuilder& b) {
          requestedTransport()(b);
          if (extra) extra(b);
        },
        &credential, client);
  }
  Reply allocate(Credential& credential) { return allocate(credential, udp); }

  Reply createPermission(Credential& credential, std::vector<Endpoint> peers,
                         const FiveTuple& client) {
    return request(
        method::kCreatePermission,
        [&](MessageBuilder& b) {
          for (const auto& each : peers)
            b.addXorAddress(attr::kXorPeerAddress, each);
        },
        &credential, client);
  }
  Reply createPermission(Credential& credential, std::vector<Endpoint> peers) {
    return createPermission(credential, std::move(peers), udp);
  }

  Reply channelBind(Credential& credential, std::uint16_t number, const Endpoint& to,
                    const FiveTuple& client) {
    return request(
        method::kChannelBind,
        [&](MessageBuilder& b) {
          b.addAttribute(attr::kChannelNumber, channelValue(number))
              .addXorAddress(attr::kXorPeerAddress, to);
        },
        &credential, client);
  }
  Reply channelBind(Credential& credential, std::uint16_t number, const Endpoint& to) {
    return channelBind(credential, number, to, udp);
  }

  Reply refresh(Credential& credential, std::optional<std::uint32_t> lifetime,
                const FiveTuple& client, std::optional<std::uint8_t> family = std::nullopt) {
    return request(
        method::kRefresh,
        [&](MessageBuilder& b) {
          if (lifetime) b.addUint32(attr::kLifetime, *lifetime);
          if (family) b.addAttribute(attr::kRequestedAddressFamily, familyValue(*family));
        },
        &credential, client);
  }

  std::vector<std::uint8_t> sendIndication(const Endpoint& to, std::vector<std::uint8_t> data,
                                           bool dontFragment = false) {
    return build(
        method::kSend, MessageClass::Indication, nextId(),
        [&](MessageBuilder& b) {
          b.addXorAddress(attr::kXorPeerAddress, to).addAttribute(attr::kData, data);
          if (dontFragment) b.addAttribute(attr::kDontFragment, {});
        },
        nullptr);
  }

  static std::vector<std::uint8_t> channelData(std::uint16_t number,
                                               std::vector<std::uint8_t> payload,
                                               std::size_t trailing = 0) {
    std::vector<std::uint8_t> out = {
        static_cast<std::uint8_t>(number >> 8), static_cast<std::uint8_t>(number),
        static_cast<std::uint8_t>(payload.size() >> 8), static_cast<std::uint8_t>(payload.size())};
    out.insert(out.end(), payload.begin(), payload.end());
    out.resize(out.size() + trailing, 0);
    return out;
  }

  void peerSends(RelayId relay, const Endpoint& from, std::vector<std::uint8_t> payload) {
    server().onPeerBytes(relay, from, payload, now);
  }

  // The response must carry a MESSAGE-INTEGRITY valid under `credential` and a FINGERPRINT.
  static void expectSigned(const Reply& reply, const Credential& credential) {
    const auto message = reply.message();
    EXPECT_EQ(stun::checkFingerprint(message), stun::Check::Valid);
    const auto key = credential.key();
    if (credential.sha256Mac) {
      EXPECT_EQ(stun::checkMessageIntegritySha256(message, key), stun::Check::Valid);
    } else {
      EXPECT_EQ(stun::checkMessageIntegrity(message, key), stun::Check::Valid);
    }
  }

  Options options;
  std::size_t maxTotal = 100;
  PeerFilter filter;
  FakeRelayIo io;
  Now now{std::chrono::steady_clock::time_point{} + 1000h,
          std::chrono::system_clock::from_time_t(1'700'000'000)};
  const FiveTuple udp{{ip("198.51.100.7"), 40000}, {ip("192.0.2.1"), 3478}, Transport::Udp};
  const FiveTuple udp2{{ip("198.51.100.7"), 40001}, {ip("192.0.2.1"), 3478}, Transport::Udp};
  const FiveTuple tcp{{ip("198.51.100.8"), 50000}, {ip("192.0.2.1"), 3478}, Transport::Tcp};
  const Endpoint peer{ip("8.8.8.8"), 5000};
  const Endpoint peer2{ip("1.1.1.1"), 6000};
  Credential alice{"alice", "alice-pass"};
  Credential bob{"bob", "bob-pass"};

 private:
  std::unique_ptr<SharedState> shared_;
  std::unique_ptr<Server> server_;
  std::uint32_t idCounter_ = 0;
};

// ---- Binding and the 401 challenge ----

TEST_F(TurnServerTest, BindingIsAnsweredWithoutAuthentication) {
  const Reply reply = request(method::kBinding, {}, nullptr);
  EXPECT_EQ(reply.message().messageClass(), MessageClass::SuccessResponse);
  EXPECT_EQ(reply.xorAddresses(attr::kXorMappedAddress).at(0), udp.client);
  EXPECT_EQ(server().allocationCount(), 0u);
}

TEST_F(TurnServerTest, BindingWithResponsePortOrPaddingIsDeclined) {
  const Reply reply = request(
      method::kBinding, [](MessageBuilder& b) { b.addUint32(attr::kResponsePort, 0x10000000); },
      nullptr);
  EXPECT_EQ(reply.code(), 420);
  EXPECT_EQ(reply.raw(attr::kUnknownAttributes), (std::vector<std::uint8_t>{0x00, 0x27}));
}

TEST_F(TurnServerTest, AllocateWithoutIntegrityGets401WithRealmNonceAndAlgorithms) {
  const Reply reply = request(method::kAllocate, requestedTransport(), nullptr);
  EXPECT_EQ(reply.code(), 401);
  EXPECT_EQ(reply.text(attr::kRealm), "parley");
  const std::string nonce = reply.text(attr::kNonce);
  // RFC 8489 §9.2: nonce cookie, then the feature set (password algorithms + anonymity).
  EXPECT_EQ(nonce.substr(0, 13), "obMatJos2wAAA");
  EXPECT_EQ(reply.raw(attr::kPasswordAlgorithms),
            std::vector<std::uint8_t>(kOffered.begin(), kOffered.end()));
  EXPECT_FALSE(reply.has(attr::kMessageIntegrity));
  EXPECT_EQ(reply.text(attr::kSoftware), "parley-test");
  EXPECT_EQ(stun::checkFingerprint(reply.message()), stun::Check::Valid);
  EXPECT_EQ(server().counters().authFailures, 0u);
  EXPECT_TRUE(io.opens.empty());
}

TEST_F(TurnServerTest, FeatureSetCharactersEncodeTheTwoBits) {
  // 0xC0 0x00 0x00: "Password algorithms" and "Username anonymity", most significant first.
  unsigned char text[8] = {};
  const unsigned char features[3] = {0xC0, 0, 0};
  EVP_EncodeBlock(text, features, 3);
  EXPECT_STREQ(reinterpret_cast<char*>(text), "wAAA");
}

// ---- the common flow ----

TEST_F(TurnServerTest, FullFlowOverUdpWithMd5) {
  const Reply allocated = allocate(alice);
  ASSERT_EQ(allocated.code(), 0);
  expectSigned(allocated, alice);
  EXPECT_EQ(allocated.text(attr::kSoftware), "parley-test");
  const auto relayed = allocated.xorAddresses(attr::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0], (Endpoint{ip("203.0.113.1"), 50002}));
  EXPECT_EQ(allocated.u32(attr::kLifetime), 600u);
  EXPECT_EQ(allocated.xorAddresses(attr::kXorMappedAddress).at(0), udp.client);
  ASSERT_EQ(io.opens.size(), 1u);
  EXPECT_EQ(io.opens[0].family, AddressFamily::V4);
  EXPECT_FALSE(io.opens[0].evenPort);
  EXPECT_EQ(server().allocationCount(), 1u);
  EXPECT_TRUE(server().hasAllocation(udp));
  EXPECT_EQ(shared().allocations(), 1u);

  // Before a permission, data to and from the peer is dropped.
  EXPECT_FALSE(send(sendIndication(peer, {1, 2, 3}), udp));
  EXPECT_TRUE(io.toPeer.empty());
  peerSends(1, peer, {9});
  EXPECT_EQ(server().counters().droppedNoPermission, 2u);

  const Reply permitted = createPermission(alice, {peer});
  ASSERT_EQ(permitted.code(), 0);
  expectSigned(permitted, alice);

  EXPECT_FALSE(send(sendIndication(peer, {1, 2, 3}), udp));
  ASSERT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(io.toPeer[0].relay, 1u);
  EXPECT_EQ(io.toPeer[0].peer, peer);
  EXPECT_EQ(io.toPeer[0].payload, (std::vector<std::uint8_t>{1, 2, 3}));
  EXPECT_FALSE(io.toPeer[0].dontFragment);

  // The permission is per IP: another port of the same peer may answer.
  const Endpoint otherPort{peer.address, 7000};
  const std::size_t before = io.toClient.size();
  peerSends(1, otherPort, {4, 5, 6, 7, 8});
  ASSERT_EQ(io.toClient.size(), before + 1);
  const Reply data{io.toClient.back().bytes};
  EXPECT_EQ(data.message().type(), stun::messageType(method::kData, MessageClass::Indication));
  EXPECT_EQ(data.xorAddresses(attr::kXorPeerAddress).at(0), otherPort);
  EXPECT_EQ(data.raw(attr::kData), (std::vector<std::uint8_t>{4, 5, 6, 7, 8}));
  EXPECT_FALSE(data.has(attr::kMessageIntegrity));

  const Reply bound = channelBind(alice, 0x4000, peer);
  ASSERT_EQ(bound.code(), 0);
  expectSigned(bound, alice);
  EXPECT_TRUE(server().hasChannels(udp));

  EXPECT_FALSE(send(channelData(0x4000, {0xAA, 0xBB}), udp));
  ASSERT_EQ(io.toPeer.size(), 2u);
  EXPECT_EQ(io.toPeer[1].peer, peer);
  EXPECT_EQ(io.toPeer[1].payload, (std::vector<std::uint8_t>{0xAA, 0xBB}));

  peerSends(1, peer, {1, 2, 3, 4, 5});
  EXPECT_EQ(io.toClient.back().bytes,
            (std::vector<std::uint8_t>{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5}));  // no padding
  // The other port has no channel: still a Data indication.
  peerSends(1, otherPort, {6});
  EXPECT_EQ(Reply{io.toClient.back().bytes}.message().method(), method::kData);

  const auto& counters = server().counters();
  EXPECT_EQ(counters.allocationsCreated, 1u);
  EXPECT_EQ(counters.allocationsActive, 1u);
  EXPECT_EQ(counters.permissionsCreated, 1u);
  EXPECT_EQ(counters.channelsBound, 1u);
  EXPECT_EQ(counters.packetsToPeer, 2u);
  EXPECT_EQ(counters.bytesToPeer, 5u);
  EXPECT_EQ(counters.packetsToClient, 3u);
  EXPECT_EQ(counters.bytesToClient, 11u);
}

TEST_F(TurnServerTest, FullFlowOverTcpPadsChannelData) {
  ASSERT_EQ(allocate(alice, tcp).code(), 0);
  EXPECT_FALSE(server().hasChannels(tcp));
  ASSERT_EQ(channelBind(alice, 0x4001, peer, tcp).code(), 0);
  EXPECT_TRUE(server().hasChannels(tcp));
  peerSends(1, peer, {1, 2, 3, 4, 5});
  const auto& frame = io.toClient.back().bytes;
  EXPECT_EQ(frame, (std::vector<std::uint8_t>{0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0}));
  // The framer of the stream layer reads it back as one ChannelData frame.
  const auto parsed = stun::nextFrame(frame, 4096, true);
  EXPECT_EQ(parsed.status, stun::FrameStatus::Complete);
  EXPECT_EQ(parsed.consumed, 12u);

  // From the client, the framer has already cut the padding away.
  EXPECT_FALSE(send(channelData(0x4001, {7, 7, 7}), tcp));
  ASSERT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(io.toPeer[0].payload, (std::vector<std::uint8_t>{7, 7, 7}));
}

TEST_F(TurnServerTest, ChannelDataLengthIsCheckedAgainstTheBytes) {
  ASSERT_EQ(allocate(alice).code(), 0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  // UDP may carry padding after the data: it is not sent on.
  server().onClientBytes(udp, channelData(0x4000, {1, 2, 3}, 1), now);
  ASSERT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(io.toPeer[0].payload, (std::vector<std::uint8_t>{1, 2, 3}));
  // A length beyond the datagram, or a short header, is malformed.
  auto truncated = channelData(0x4000, {1, 2, 3});
  truncated.pop_back();
  server().onClientBytes(udp, truncated, now);
  server().onClientBytes(udp, std::vector<std::uint8_t>{0x40, 0x00, 0x00}, now);
  EXPECT_EQ(server().counters().droppedMalformed, 2u);
  // An unbound channel is dropped.
  server().onClientBytes(udp, channelData(0x4002, {1}), now);
  EXPECT_EQ(server().counters().droppedNoPermission, 1u);
  EXPECT_EQ(io.toPeer.size(), 1u);
}

TEST_F(TurnServerTest, DontFragmentIsPassedOn) {
  ASSERT_EQ(allocate(alice, udp, [](MessageBuilder& b) { b.addAttribute(attr::kDontFragment, {}); })
                .code(),
            0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  send(channelData(0x4000, {1}), udp);
  ASSERT_EQ(io.toPeer.size(), 1u);
  EXPECT_TRUE(io.toPeer[0].dontFragment);  // from the Allocate
  // Send indications carry their own DONT-FRAGMENT.
  send(sendIndication(peer, {2}, true), udp);
  send(sendIndication(peer, {3}, false), udp);
  ASSERT_EQ(io.toPeer.size(), 3u);
  EXPECT_TRUE(io.toPeer[1].dontFragment);
  EXPECT_FALSE(io.toPeer[2].dontFragment);
}

// ---- authentication ----

TEST_F(TurnServerTest, Sha256PasswordAlgorithm) {
  alice.algorithm = stun::algorithm::kSha256;
  alice.sha256Mac = true;
  const Reply reply = allocate(alice);
  ASSERT_EQ(reply.code(), 0);
  EXPECT_TRUE(reply.has(attr::kMessageIntegritySha256));
  EXPECT_FALSE(reply.has(attr::kMessageIntegrity));
  expectSigned(reply, alice);
  // Later requests on the allocation use the cached SHA-256 key.
  const Reply permitted = createPermission(alice, {peer});
  ASSERT_EQ(permitted.code(), 0);
  expectSigned(permitted, alice);
  // The same allocation may be refreshed with MD5 too: both keys are cached.
  Credential md5 = alice;
  md5.algorithm = stun::algorithm::kMd5;
  md5.sha256Mac = false;
  const Reply refreshed = refresh(md5, 600, udp);
  ASSERT_EQ(refreshed.code(), 0);
  expectSigned(refreshed, md5);
}

TEST_F(TurnServerTest, Md5KeyWithMessageIntegritySha256) {
  alice.algorithm = stun::algorithm::kMd5;
  alice.sha256Mac = true;
  const Reply reply = allocate(alice);
  ASSERT_EQ(reply.code(), 0);
  expectSigned(reply, alice);
}

TEST_F(TurnServerTest, ChosenAlgorithmPicksTheKey) {
  // PASSWORD-ALGORITHM says SHA-256, but the integrity was computed with the MD5 key.
  challenge(alice, udp);
  const auto md5Key = alice.key();
  const Reply reply = request(
      method::kAllocate,
      [&](MessageBuilder& b) {
        requestedTransport()(b);
        const std::array<std::uint8_t, 4> sha256 = {0, 2, 0, 0};
        b.addText(attr::kUsername, "alice")
            .addText(attr::kRealm, "parley")
            .addText(attr::kNonce, alice.nonce)
            .addAttribute(attr::kPasswordAlgorithms, kOffered)
            .addAttribute(attr::kPasswordAlgorithm, sha256)
            .addMessageIntegrity(md5Key);
      },
      nullptr);
  EXPECT_EQ(reply.code(), 401);
  EXPECT_EQ(server().counters().authFailures, 1u);
  // With the SHA-256 key it is accepted.
  alice.algorithm = stun::algorithm::kSha256;
  EXPECT_EQ(allocate(alice).code(), 0);
}

TEST_F(TurnServerTest, EchoedAlgorithmsMustMatchTheOffer) {
  challenge(alice, udp);
  // PASSWORD-ALGORITHMS with a different list.
  Reply reply = request(
      method::kAllocate,
      [&](MessageBuilder& b) {
        requestedTransport()(b);
        const std::array<std::uint8_t, 4> onlyMd5 = {0, 1, 0, 0};
        b.addAttribute(attr::kPasswordAlgorithms, onlyMd5)
            .addAttribute(attr::kPasswordAlgorithm, onlyMd5);
      },
      &alice);
  EXPECT_EQ(reply.code(), 400);
  EXPECT_FALSE(reply.has(attr::kMessageIntegrity));
  // PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS.
  reply = request(
      method::kAllocate,
      [&](MessageBuilder& b) {
        requestedTransport()(b);
        const std::array<std::uint8_t, 4> md5 = {0, 1, 0, 0};
        b.addAttribute(attr::kPasswordAlgorithm, md5);
      },
      &alice);
  EXPECT_EQ(reply.code(), 400);
  // An algorithm that is not offered.
  reply = request(
      method::kAllocate,
      [&](MessageBuilder& b) {
        requestedTransport()(b);
        const std::array<std::uint8_t, 4> other = {0, 3, 0, 0};
        b.addAttribute(attr::kPasswordAlgorithms, kOffered)
            .addAttribute(attr::kPasswordAlgorithm, other);
      },
      &alice);
  EXPECT_EQ(reply.code(), 400);
  EXPECT_EQ(server().allocationCount(), 0u);
}

TEST_F(TurnServerTest, IntegrityWithoutUsernameRealmOrNonceIs400) {
  challenge(alice, udp);
  const auto key = alice.key();
  for (int missing = 0; missing < 3; ++missing) {
    const Reply reply = request(
        method::kAllocate,
        [&](MessageBuilder& b) {
          requestedTransport()(b);
          if (missing != 0) b.addText(attr::kUsername, "alice");
          if (missing != 1) b.addText(attr::kRealm, "parley");
          if (missing != 2) b.addText(attr::kNonce, alice.nonce);
          b.addMessageIntegrity(key);
        },
        nullptr);
    EXPECT_EQ(reply.code(), 400) << missing;
    EXPECT_FALSE(reply.has(attr::kMessageIntegrity));
    EXPECT_FALSE(reply.has(attr::kNonce));
  }
}

TEST_F(TurnServerTest, UnknownUserAndWrongPasswordAre401) {
  Credential mallory{"mallory", "x"};
  challenge(mallory, udp);
  Reply reply = allocate(mallory);
  EXPECT_EQ(reply.code(), 401);
  EXPECT_FALSE(reply.has(attr::kMessageIntegrity));
  EXPECT_TRUE(reply.has(attr::kNonce));
  Credential wrong{"alice", "not-alice-pass"};
  wrong.nonce = mallory.nonce;
  reply = allocate(wrong);
  EXPECT_EQ(reply.code(), 401);
  Credential otherRealm{"alice", "alice-pass", "elsewhere"};
  otherRealm.nonce = mallory.nonce;
  EXPECT_EQ(allocate(otherRealm).code(), 401);
  EXPECT_EQ(server().counters().authFailures, 3u);
  EXPECT_EQ(server().allocationCount(), 0u);
}

TEST_F(TurnServerTest, UserhashIdentifiesAConfiguredUser) {
  alice.useUserhash = true;
  const Reply reply = allocate(alice);
  ASSERT_EQ(reply.code(), 0);
  expectSigned(reply, alice);
  EXPECT_EQ(createPermission(alice, {peer}).code(), 0);
}

TEST_F(TurnServerTest, RestCredentials) {
  const std::string valid = std::to_string(1'700'000'000 + 3600) + ":carol";
  Credential rest{valid, restPassword("new-secret", valid)};
  const Reply reply = allocate(rest);
  ASSERT_EQ(reply.code(), 0);
  expectSigned(reply, rest);
  // The key is cached: later requests work, and validate MI every time.
  EXPECT_EQ(createPermission(rest, {peer}).code(), 0);
  Credential tampered = rest;
  tampered.password = "wrong";
  EXPECT_EQ(createPermission(tampered, {peer}).code(), 401);

  // The rotated-out secret still works for a while; a bare number is a REST username too.
  const std::string bare = std::to_string(1'700'000'000 + 60);
  Credential old{bare, restPassword("old-secret", bare)};
  EXPECT_EQ(allocate(old, udp2).code(), 0);

  // Wrong secret and expired username.
  const FiveTuple third{{ip("198.51.100.9"), 1}, udp.server, Transport::Udp};
  Credential forged{valid, restPassword("guess", valid)};
  EXPECT_EQ(allocate(forged, third).code(), 401);
  const std::string expired = std::to_string(1'700'000'000 - 1) + ":carol";
  Credential stale{expired, restPassword("new-secret", expired)};
  stale.nonce = forged.nonce;
  EXPECT_EQ(allocate(stale, third).code(), 401);
  Credential notRest{"carol", restPassword("new-secret", "carol")};
  notRest.nonce = forged.nonce;
  EXPECT_EQ(allocate(notRest, third).code(), 401);
  EXPECT_EQ(server().allocationCount(), 2u);
}

TEST_F(TurnServerTest, StaleNonceGets438ThenTheNewNonceWorks) {
  ASSERT_EQ(allocate(alice).code(), 0);
  advance(601s);  // nonceLifetime 600 s; the allocation (600 s) has not been expired yet
  const Reply stale = refresh(alice, 600, udp);
  EXPECT_EQ(stale.code(), 438);
  EXPECT_EQ(stale.text(attr::kRealm), "parley");
  EXPECT_TRUE(stale.has(attr::kPasswordAlgorithms));
  expectSigned(stale, alice);  // MI with the key the client used
  const std::string fresh = stale.text(attr::kNonce);
  EXPECT_NE(fresh, alice.nonce);
  alice.nonce = fresh;
  const Reply refreshed = refresh(alice, 600, udp);
  EXPECT_EQ(refreshed.code(), 0);
  EXPECT_EQ(server().counters().staleNonces, 1u);
}

TEST_F(TurnServerTest, NonceIsBoundToTheClientAddressAndTheKey) {
  challenge(alice, udp);
  const FiveTuple elsewhere{{ip("198.51.100.99"), 40000}, udp.server, Transport::Udp};
  EXPECT_EQ(allocate(alice, elsewhere).code(), 438);
  Credential forged = alice;
  forged.nonce = "obMatJos2wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  EXPECT_EQ(allocate(forged).code(), 438);
  forged.nonce = "whatever";
  EXPECT_EQ(allocate(forged).code(), 438);
  EXPECT_EQ(allocate(alice).code(), 0);
}

TEST_F(TurnServerTest, UnauthenticatedAnswersAreRateLimitedPerSource) {
  options.unauthenticatedPerSecond = 3;
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    if (send(build(method::kAllocate, MessageClass::Request, nextId(), requestedTransport(),
                   nullptr),
             udp)) {
      ++answered;
    }
  }
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(server().counters().unauthenticatedRateLimited, 2u);
  // Another source has its own budget; the next second refills ours.
  EXPECT_EQ(request(method::kAllocate, requestedTransport(), nullptr, tcp).code(), 401);
  advance(1s);
  EXPECT_EQ(request(method::kAllocate, requestedTransport(), nullptr).code(), 401);
}

TEST_F(TurnServerTest, StreamClientsAreAlwaysChallenged) {
  // A TCP client never retransmits: a dropped 401 would leave it waiting forever. Its address
  // is proven by the handshake, so the UDP spoofing limit does not apply.
  options.unauthenticatedPerSecond = 1;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(request(method::kAllocate, requestedTransport(), nullptr, tcp).code(), 401) << i;
  }
  EXPECT_EQ(server().counters().unauthenticatedRateLimited, 0u);
}

TEST_F(TurnServerTest, OtherUserOnAnAllocationGets441) {
  ASSERT_EQ(allocate(alice).code(), 0);
  bob.nonce = alice.nonce;
  EXPECT_EQ(createPermission(bob, {peer}).code(), 441);
  EXPECT_EQ(refresh(bob, 0, udp).code(), 441);
  EXPECT_EQ(server().allocationCount(), 1u);
  EXPECT_EQ(server().counters().authFailures, 2u);
}

TEST_F(TurnServerTest, SetCredentialsReplacesUsersButKeepsCachedKeys) {
  ASSERT_EQ(allocate(alice).code(), 0);
  server().setCredentials({{"dave", "dave-pass"}}, {});
  Credential dave{"dave", "dave-pass"};
  EXPECT_EQ(allocate(dave, udp2).code(), 0);
  EXPECT_EQ(refresh(alice, 600, udp).code(), 0);  // cached key
  const FiveTuple third{{ip("198.51.100.9"), 1}, udp.server, Transport::Udp};
  EXPECT_EQ(allocate(bob, third).code(), 401);  // bob was removed
}

// ---- Allocate ----

TEST_F(TurnServerTest, RequestedTransportMissingIs400AndTcpIs442) {
  challenge(alice, udp);
  Reply reply = request(method::kAllocate, {}, &alice);
  EXPECT_EQ(reply.code(), 400);
  expectSigned(reply, alice);  // error responses after authentication carry MI
  reply = request(method::kAllocate, requestedTransport(6), &alice);
  EXPECT_EQ(reply.code(), 442);
  expectSigned(reply, alice);
  EXPECT_TRUE(io.opens.empty());
}

TEST_F(TurnServerTest, LifetimeIsClampedPerRfc8656) {
  const auto lifetimeFor = [&](std::uint32_t requested, const FiveTuple& client) {
    Credential c = alice;
    c.nonce.clear();
    return allocate(c, client, [&](MessageBuilder& b) { b.addUint32(attr::kLifetime, requested); })
        .u32(attr::kLifetime);
  };
  EXPECT_EQ(lifetimeFor(10, udp), 600u);
  EXPECT_EQ(lifetimeFor(100000, udp2), 3600u);
  EXPECT_EQ(lifetimeFor(1200, tcp), 1200u);
}

TEST_F(TurnServerTest, SecondAllocateOnTheFiveTupleIs437ButARetransmissionIsAnswered) {
  challenge(alice, udp);
  const auto allocateBytes =
      build(method::kAllocate, MessageClass::Request, nextId(), requestedTransport(), &alice);
  const auto first = send(allocateBytes, udp);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->code(), 0);
  const auto again = send(allocateBytes, udp);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->bytes, first->bytes);
  EXPECT_EQ(io.opens.size(), 1u);
  const Reply other = request(method::kAllocate, requestedTransport(), &alice);
  EXPECT_EQ(other.code(), 437);
  expectSigned(other, alice);
  EXPECT_EQ(server().allocationCount(), 1u);
}

TEST_F(TurnServerTest, RequestsNeedTheFiveTupleOfTheAllocation) {
  EXPECT_EQ(allocate(alice).code(), 0);
  // Same client IP, another port: a different 5-tuple.
  EXPECT_EQ(createPermission(alice, {peer}, udp2).code(), 437);
  EXPECT_EQ(channelBind(alice, 0x4000, peer, udp2).code(), 437);
  EXPECT_EQ(refresh(alice, 600, udp2).code(), 437);
  // Same addresses over TCP: also different.
  Credential c = alice;
  c.nonce.clear();
  const FiveTuple overTcp{udp.client, udp.server, Transport::Tcp};
  challenge(c, overTcp);
  EXPECT_EQ(createPermission(c, {peer}, overTcp).code(), 437);
  // Data on the other 5-tuple is dropped.
  send(sendIndication(peer, {1}), udp2);
  EXPECT_TRUE(io.toPeer.empty());
}

TEST_F(TurnServerTest, AddressFamilyAttributes) {
  challenge(alice, udp);
  const auto withAttrs = [&](const Body& extra) {
    return request(
        method::kAllocate,
        [&](MessageBuilder& b) {
          requestedTransport()(b);
          extra(b);
        },
        &alice);
  };
  EXPECT_EQ(withAttrs([](MessageBuilder& b) {
              b.addAttribute(attr::kRequestedAddressFamily, familyValue(3));
            }).code(),
            440);
  EXPECT_EQ(withAttrs([](MessageBuilder& b) {
              b.addAttribute(attr::kRequestedAddressFamily, familyValue(1))
                  .addAttribute(attr::kAdditionalAddressFamily, familyValue(2));
            }).code(),
            400);
  EXPECT_EQ(withAttrs([](MessageBuilder& b) {
              b.addAttribute(attr::kAdditionalAddressFamily, familyValue(1));
            }).code(),
            400);
  // A family the relay layer has no address for.
  io.failures[AddressFamily::V6] = 440;
  EXPECT_EQ(withAttrs([](MessageBuilder& b) {
              b.addAttribute(attr::kRequestedAddressFamily, familyValue(2));
            }).code(),
            440);
  io.failures.clear();
  const Reply v6 = withAttrs(
      [](MessageBuilder& b) { b.addAttribute(attr::kRequestedAddressFamily, familyValue(2)); });
  ASSERT_EQ(v6.code(), 0);
  EXPECT_EQ(io.opens.back().family, AddressFamily::V6);
  EXPECT_EQ(v6.xorAddresses(attr::kXorRelayedAddress).at(0).address, ip("2001:db8::1"));
  // An IPv4 peer on an IPv6-only allocation.
  EXPECT_EQ(createPermission(alice, {peer}).code(), 443);
  EXPECT_EQ(channelBind(alice, 0x4000, peer).code(), 443);
  EXPECT_EQ(createPermission(alice, {{ip("2001:4860::1"), 1}}).code(), 0);
  EXPECT_EQ(shared().allocations(), 1u);  // failed attempts released their quota
}

TEST_F(TurnServerTest, DualAllocation) {
  const Reply reply = allocate(alice, udp, [](MessageBuilder& b) {
    b.addAttribute(attr::kAdditionalAddressFamily, familyValue(2));
  });
  ASSERT_EQ(reply.code(), 0);
  const auto relayed = reply.xorAddresses(attr::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 2u);
  EXPECT_TRUE(relayed[0].address.isV4());
  EXPECT_FALSE(relayed[1].address.isV4());
  EXPECT_FALSE(reply.has(attr::kAddressErrorCode));
  ASSERT_EQ(io.opens.size(), 2u);
  const Endpoint v6peer{ip("2001:4860::1"), 1};
  ASSERT_EQ(createPermission(alice, {peer, v6peer}).code(), 0);
  send(sendIndication(v6peer, {6}), udp);
  send(sendIndication(peer, {4}), udp);
  ASSERT_EQ(io.toPeer.size(), 2u);
  EXPECT_EQ(io.toPeer[0].relay, 2u);
  EXPECT_EQ(io.toPeer[1].relay, 1u);
  // Refresh 0 with REQUESTED-ADDRESS-FAMILY deletes only that family (RFC 8656 §7.3).
  const Reply dropV6 = refresh(alice, 0, udp, 2);
  EXPECT_EQ(dropV6.code(), 0);
  EXPECT_EQ(io.closes, (std::vector<RelayId>{2}));
  EXPECT_TRUE(server().hasAllocation(udp));
  EXPECT_EQ(refresh(alice, 600, udp, 2).code(), 443);
  send(sendIndication(v6peer, {6}), udp);
  EXPECT_EQ(io.toPeer.size(), 2u);
  EXPECT_EQ(refresh(alice, 0, udp, 1).code(), 0);
  EXPECT_FALSE(server().hasAllocation(udp));
  EXPECT_EQ(shared().allocations(), 0u);
}

TEST_F(TurnServerTest, DualAllocationWithOneFamilyFailing) {
  io.failures[AddressFamily::V6] = 440;
  const Reply reply = allocate(alice, udp, [](MessageBuilder& b) {
    b.addAttribute(attr::kAdditionalAddressFamily, familyValue(2));
  });
  ASSERT_EQ(reply.code(), 0);
  EXPECT_EQ(reply.xorAddresses(attr::kXorRelayedAddress).size(), 1u);
  const auto error = reply.raw(attr::kAddressErrorCode);
  ASSERT_GE(error.size(), 4u);
  EXPECT_EQ(error[0], 0x02);  // IPv6
  EXPECT_EQ(error[2] * 100 + error[3], 440);
  expectSigned(reply, alice);
}

TEST_F(TurnServerTest, EvenPortAndReservationTokenArePassedThrough) {
  const Reply reply = allocate(alice, udp, [](MessageBuilder& b) {
    const std::array<std::uint8_t, 1> rBit = {0x80};
    b.addAttribute(attr::kEvenPort, rBit);
  });
  ASSERT_EQ(reply.code(), 0);
  EXPECT_TRUE(io.opens[0].evenPort);
  EXPECT_TRUE(io.opens[0].reserveNext);
  const auto token = reply.raw(attr::kReservationToken);
  EXPECT_EQ(token, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  Credential c = alice;
  c.nonce.clear();
  ASSERT_EQ(
      allocate(c, udp2, [&](MessageBuilder& b) { b.addAttribute(attr::kReservationToken, token); })
          .code(),
      0);
  ASSERT_EQ(io.opens.size(), 2u);
  EXPECT_EQ(io.opens[1].reservationToken, 0x0102030405060708ULL);
  EXPECT_FALSE(io.opens[1].evenPort);

  // EVEN-PORT without R: no reservation asked for, no token returned.
  c.nonce.clear();
  const Reply plain = allocate(c, tcp, [](MessageBuilder& b) {
    const std::array<std::uint8_t, 1> noR = {0x00};
    b.addAttribute(attr::kEvenPort, noR);
  });
  ASSERT_EQ(plain.code(), 0);
  EXPECT_TRUE(io.opens[2].evenPort);
  EXPECT_FALSE(io.opens[2].reserveNext);
  EXPECT_FALSE(plain.has(attr::kReservationToken));
}

TEST_F(TurnServerTest, ReservationTokenConflictsAre400AndBadTokensComeFromTheRelayLayer) {
  challenge(alice, udp);
  const std::array<std::uint8_t, 8> token = {1, 2, 3, 4, 5, 6, 7, 8};
  const auto withAttrs = [&](const Body& extra) {
    return request(
        method::kAllocate,
        [&](MessageBuilder& b) {
          requestedTransport()(b);
          b.addAttribute(attr::kReservationToken, token);
          extra(b);
        },
        &alice);
  };
  EXPECT_EQ(withAttrs([](MessageBuilder& b) {
              const std::array<std::uint8_t, 1> rBit = {0x80};
              b.addAttribute(attr::kEvenPort, rBit);
            }).code(),
            400);
  EXPECT_EQ(withAttrs([](MessageBuilder& b) {
              b.addAttribute(attr::kRequestedAddressFamily, familyValue(1));
            }).code(),
            400);
  EXPECT_TRUE(io.opens.empty());
  io.failures[AddressFamily::V4] = 400;  // unknown token, as the relay layer reports it
  EXPECT_EQ(withAttrs([](MessageBuilder&) {}).code(), 400);
  io.failures[AddressFamily::V4] = 508;
  EXPECT_EQ(withAttrs([](MessageBuilder&) {}).code(), 508);
  EXPECT_EQ(server().counters().quotaRejections, 1u);
  EXPECT_EQ(shared().allocations(), 0u);
}

TEST_F(TurnServerTest, QuotaPerUserAndTotal) {
  options.maxAllocationsPerUser = 2;
  maxTotal = 3;
  EXPECT_EQ(allocate(alice, udp).code(), 0);
  Credential c = alice;
  c.nonce.clear();
  EXPECT_EQ(allocate(c, udp2).code(), 0);
  c.nonce.clear();
  const Reply over = allocate(c, tcp);
  EXPECT_EQ(over.code(), 486);
  expectSigned(over, c);
  // Bob takes the last slot of the total; then nobody gets one.
  const FiveTuple b1{{ip("198.51.100.20"), 1}, udp.server, Transport::Udp};
  const FiveTuple b2{{ip("198.51.100.20"), 2}, udp.server, Transport::Udp};
  EXPECT_EQ(allocate(bob, b1).code(), 0);
  Credential bob2 = bob;
  bob2.nonce.clear();
  EXPECT_EQ(allocate(bob2, b2).code(), 486);
  EXPECT_EQ(server().counters().quotaRejections, 2u);
  EXPECT_EQ(shared().allocations(), 3u);
  // Releasing one (refresh 0) lets the next in.
  EXPECT_EQ(refresh(alice, 0, udp).code(), 0);
  EXPECT_EQ(request(method::kAllocate, requestedTransport(), &bob2, b2).code(), 0);
}

// ---- lifetimes ----

TEST_F(TurnServerTest, AllocationExpiresWithTheClock) {
  ASSERT_EQ(allocate(alice).code(), 0);
  advance(599s);
  server().expire(now);
  EXPECT_TRUE(server().hasAllocation(udp));
  advance(1s);
  server().expire(now);
  EXPECT_FALSE(server().hasAllocation(udp));
  EXPECT_EQ(io.closes, (std::vector<RelayId>{1}));
  EXPECT_EQ(server().counters().allocationsExpired, 1u);
  EXPECT_EQ(server().counters().allocationsActive, 0u);
  EXPECT_EQ(shared().allocations(), 0u);
  peerSends(1, peer, {1});  // the relay is gone
  EXPECT_EQ(io.toClient.size(), 2u);
}

TEST_F(TurnServerTest, RefreshExtendsAndRefreshZeroDeletes) {
  ASSERT_EQ(allocate(alice).code(), 0);
  const Reply extended = refresh(alice, 1200, udp);
  ASSERT_EQ(extended.code(), 0);
  EXPECT_EQ(extended.u32(attr::kLifetime), 1200u);
  expectSigned(extended, alice);
  EXPECT_EQ(refresh(alice, std::nullopt, udp).u32(attr::kLifetime), 600u);  // default
  EXPECT_EQ(refresh(alice, 1200, udp).u32(attr::kLifetime), 1200u);
  advance(1000s);
  alice.nonce.clear();
  {
    const Reply stale = refresh(alice, 1200, udp);
    ASSERT_EQ(stale.code(), 438);
    alice.nonce = stale.text(attr::kNonce);
  }
  server().expire(now);
  EXPECT_TRUE(server().hasAllocation(udp));
  const Reply deleted = refresh(alice, 0, udp);
  ASSERT_EQ(deleted.code(), 0);
  EXPECT_EQ(deleted.u32(attr::kLifetime), 0u);
  EXPECT_FALSE(server().hasAllocation(udp));
  EXPECT_EQ(io.closes.size(), 1u);
  EXPECT_EQ(server().counters().allocationsDeleted, 1u);
  // A retransmitted refresh 0 finds no allocation: 437, which the client treats as success.
  EXPECT_EQ(refresh(alice, 0, udp).code(), 437);
}

TEST_F(TurnServerTest, PermissionsExpireUnlessRefreshed) {
  ASSERT_EQ(
      allocate(alice, udp, [](MessageBuilder& b) { b.addUint32(attr::kLifetime, 3600); }).code(),
      0);
  ASSERT_EQ(createPermission(alice, {peer, peer2}).code(), 0);
  advance(200s);
  // Only peer2 is refreshed (a different port is fine: permissions are per IP).
  ASSERT_EQ(createPermission(alice, {{peer2.address, 1}}).code(), 0);
  // A Send indication does not refresh a permission.
  send(sendIndication(peer, {1}), udp);
  advance(101s);
  server().expire(now);
  send(sendIndication(peer, {1}), udp);
  send(sendIndication(peer2, {2}), udp);
  ASSERT_EQ(io.toPeer.size(), 2u);
  EXPECT_EQ(io.toPeer[1].peer, peer2);
  const std::size_t before = io.toClient.size();
  peerSends(1, peer, {3});
  EXPECT_EQ(io.toClient.size(), before);
  peerSends(1, peer2, {4});
  EXPECT_EQ(io.toClient.size(), before + 1);
  EXPECT_EQ(server().counters().droppedNoPermission, 2u);
}

TEST_F(TurnServerTest, ChannelsExpireAndTheirNumbersStayReservedForFiveMinutes) {
  ASSERT_EQ(
      allocate(alice, udp, [](MessageBuilder& b) { b.addUint32(attr::kLifetime, 3600); }).code(),
      0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  advance(250s);
  ASSERT_EQ(createPermission(alice, {peer, peer2}).code(), 0);  // keep the permission
  advance(250s);
  ASSERT_EQ(createPermission(alice, {peer, peer2}).code(), 0);
  advance(101s);  // the channel was bound 601 s ago
  alice.nonce.clear();
  challenge(alice, udp2);
  server().expire(now);
  // The channel is gone: ChannelData is dropped, peer data comes as Data indications.
  send(channelData(0x4000, {1}), udp);
  EXPECT_TRUE(io.toPeer.empty());
  peerSends(1, peer, {2});
  EXPECT_EQ(Reply{io.toClient.back().bytes}.message().method(), method::kData);
  // For 5 minutes the number cannot go to another peer, nor the peer to another number.
  EXPECT_EQ(channelBind(alice, 0x4000, peer2).code(), 400);
  EXPECT_EQ(channelBind(alice, 0x4001, peer).code(), 400);
  advance(298s);
  server().expire(now);
  EXPECT_EQ(channelBind(alice, 0x4000, peer2).code(), 400);
  advance(2s);
  server().expire(now);
  EXPECT_EQ(channelBind(alice, 0x4000, peer2).code(), 0);
  EXPECT_EQ(server().counters().channelsBound, 2u);
}

TEST_F(TurnServerTest, AnExpiredChannelMayBeReboundToItsOwnPeer) {
  ASSERT_EQ(
      allocate(alice, udp, [](MessageBuilder& b) { b.addUint32(attr::kLifetime, 3600); }).code(),
      0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);  // refresh
  advance(601s);
  server().expire(now);
  alice.nonce.clear();
  challenge(alice, udp2);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  send(channelData(0x4000, {1}), udp);
  EXPECT_EQ(io.toPeer.size(), 1u);  // the bind refreshed the permission too
  EXPECT_EQ(server().counters().channelsBound, 2u);
}

// ---- CreatePermission and ChannelBind errors ----

TEST_F(TurnServerTest, CreatePermissionErrors) {
  options.maxPermissionsPerAllocation = 2;
  ASSERT_EQ(allocate(alice).code(), 0);
  EXPECT_EQ(createPermission(alice, {}).code(), 400);
  // One forbidden peer forbids the whole request.
  const Reply forbidden = createPermission(alice, {peer, {ip("10.0.0.1"), 1}});
  EXPECT_EQ(forbidden.code(), 403);
  expectSigned(forbidden, alice);
  EXPECT_EQ(server().counters().forbiddenPeers, 1u);
  send(sendIndication(peer, {1}), udp);
  EXPECT_TRUE(io.toPeer.empty());  // nothing was installed
  // An IPv6 peer on an IPv4 allocation is a family mismatch before it is anything else.
  EXPECT_EQ(createPermission(alice, {{ip("::ffff:169.254.169.254"), 80}}).code(), 443);
  EXPECT_EQ(createPermission(alice, {{ip("169.254.169.254"), 80}}).code(), 403);
  // Capacity: 2 permissions; the same IP twice counts once.
  EXPECT_EQ(createPermission(alice, {peer, {peer.address, 9}}).code(), 0);
  EXPECT_EQ(createPermission(alice, {peer2, {ip("9.9.9.9"), 1}}).code(), 508);
  EXPECT_EQ(createPermission(alice, {peer2}).code(), 0);
  EXPECT_EQ(createPermission(alice, {peer2, peer}).code(), 0);  // refreshes need no room
  EXPECT_EQ(server().counters().quotaRejections, 1u);
  EXPECT_EQ(server().counters().permissionsCreated, 2u);
  // A malformed XOR-PEER-ADDRESS is a 400.
  const Reply malformed = request(
      method::kCreatePermission,
      [](MessageBuilder& b) {
        const std::array<std::uint8_t, 8> bad = {0, 9, 0, 0, 1, 2, 3, 4};
        b.addAttribute(attr::kXorPeerAddress, bad);
      },
      &alice);
  EXPECT_EQ(malformed.code(), 400);
}

// The network check's probe peer (docs/netcheck.md): its exact address:port is relayable even
// though its range is denied, and nothing else of that address is.
TEST_F(TurnServerTest, AnExemptEndpointIsRelayableButNoOtherPortOfItsAddress) {
  const Endpoint probe{ip("127.0.0.1"), 43117};
  const Endpoint otherPort{probe.address, 43118};
  filter = PeerFilter({}, {}, {probe});
  ASSERT_EQ(allocate(alice).code(), 0);
  // A permission names an address only: the probe's is allowed; another denied address is not.
  EXPECT_EQ(createPermission(alice, {probe}).code(), 0);
  EXPECT_EQ(createPermission(alice, {{ip("127.0.0.2"), probe.port}}).code(), 403);
  EXPECT_EQ(createPermission(alice, {{ip("10.0.0.1"), probe.port}}).code(), 403);
  // Send: to the probe goes out, to another port of its address is dropped.
  EXPECT_FALSE(send(sendIndication(probe, {1, 2}), udp));
  ASSERT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(io.toPeer[0].peer, probe);
  const auto forbiddenBefore = server().counters().forbiddenPeers;
  EXPECT_FALSE(send(sendIndication(otherPort, {3}), udp));
  EXPECT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(server().counters().forbiddenPeers, forbiddenBefore + 1);
  // ChannelBind: to the probe succeeds, to another port of its address is 403.
  EXPECT_EQ(channelBind(alice, 0x4000, probe).code(), 0);
  EXPECT_EQ(channelBind(alice, 0x4001, otherPort).code(), 403);
  EXPECT_FALSE(send(channelData(0x4000, {7}), udp));
  ASSERT_EQ(io.toPeer.size(), 2u);
  EXPECT_EQ(io.toPeer[1].peer, probe);
  // From the probe, data reaches the client; from another port of its address it does not.
  const std::size_t toClientBefore = io.toClient.size();
  peerSends(1, probe, {9, 9});
  ASSERT_EQ(io.toClient.size(), toClientBefore + 1);
  EXPECT_EQ(io.toClient.back().bytes, (std::vector<std::uint8_t>{0x40, 0x00, 0x00, 0x02, 9, 9}));
  peerSends(1, otherPort, {8});
  EXPECT_EQ(io.toClient.size(), toClientBefore + 1);
  // Public peers are unaffected by the exemption.
  EXPECT_EQ(createPermission(alice, {peer}).code(), 0);
  EXPECT_FALSE(send(sendIndication(peer, {5}), udp));
  EXPECT_EQ(io.toPeer.back().peer, peer);
}

TEST_F(TurnServerTest, ChannelBindErrors) {
  ASSERT_EQ(allocate(alice).code(), 0);
  EXPECT_EQ(channelBind(alice, 0x3FFF, peer).code(), 400);
  EXPECT_EQ(channelBind(alice, 0x8000, peer).code(), 400);
  EXPECT_EQ(
      request(
          method::kChannelBind,
          [](MessageBuilder& b) { b.addAttribute(attr::kChannelNumber, channelValue(0x4000)); },
          &alice)
          .code(),
      400);
  EXPECT_EQ(request(
                method::kChannelBind,
                [&](MessageBuilder& b) { b.addXorAddress(attr::kXorPeerAddress, peer); }, &alice)
                .code(),
            400);
  ASSERT_EQ(channelBind(alice, 0x7FFF, peer).code(), 0);
  EXPECT_EQ(channelBind(alice, 0x7FFF, peer2).code(), 400);  // number taken by another peer
  EXPECT_EQ(channelBind(alice, 0x4001, peer).code(), 400);   // peer has another number
  EXPECT_EQ(channelBind(alice, 0x4002, {peer.address, 5001}).code(), 0);  // same IP, other port
  const Reply forbidden = channelBind(alice, 0x4003, {ip("127.0.0.1"), 1});
  EXPECT_EQ(forbidden.code(), 403);
  expectSigned(forbidden, alice);
  EXPECT_EQ(channelBind(alice, 0x4003, {ip("2001:4860::1"), 1}).code(), 443);
  EXPECT_EQ(server().counters().forbiddenPeers, 1u);
}

TEST_F(TurnServerTest, ChannelsAreBoundedByThePermissionLimit) {
  options.maxPermissionsPerAllocation = 2;
  ASSERT_EQ(allocate(alice).code(), 0);
  EXPECT_EQ(channelBind(alice, 0x4000, {peer.address, 1}).code(), 0);
  EXPECT_EQ(channelBind(alice, 0x4001, {peer.address, 2}).code(), 0);
  EXPECT_EQ(channelBind(alice, 0x4002, {peer.address, 3}).code(), 508);
  EXPECT_EQ(channelBind(alice, 0x4001, {peer.address, 2}).code(), 0);  // refresh
}

// ---- unknown attributes, methods and malformed input ----

TEST_F(TurnServerTest, UnknownComprehensionRequiredAttributeIs420AfterAuthentication) {
  ASSERT_EQ(allocate(alice).code(), 0);
  const Reply reply = request(
      method::kRefresh,
      [](MessageBuilder& b) {
        b.addUint32(0x7777, 1).addUint32(0x8777, 1);  // required unknown, optional unknown
      },
      &alice);
  EXPECT_EQ(reply.code(), 420);
  EXPECT_EQ(reply.raw(attr::kUnknownAttributes), (std::vector<std::uint8_t>{0x77, 0x77}));
  expectSigned(reply, alice);
  // A known attribute in a method that does not use it is ignored.
  EXPECT_EQ(request(
                method::kRefresh,
                [&](MessageBuilder& b) { b.addXorAddress(attr::kXorPeerAddress, peer); }, &alice)
                .code(),
            0);
}

TEST_F(TurnServerTest, UnknownMethodIs400) {
  const Reply reply = request(method::kConnect, {}, nullptr);
  EXPECT_EQ(reply.code(), 400);
  EXPECT_EQ(request(0x0123, {}, nullptr).code(), 400);
}

TEST_F(TurnServerTest, MalformedInputIsDroppedAndCounted) {
  server().onClientBytes(udp, std::vector<std::uint8_t>{}, now);
  server().onClientBytes(udp, std::vector<std::uint8_t>{0x00, 0x03, 0x00}, now);
  auto bytes =
      build(method::kAllocate, MessageClass::Request, nextId(), requestedTransport(), nullptr);
  bytes.push_back(0);  // length no longer matches
  server().onClientBytes(udp, bytes, now);
  bytes.pop_back();
  bytes.back() ^= 1;  // FINGERPRINT broken
  server().onClientBytes(udp, bytes, now);
  server().onClientBytes(udp, std::vector<std::uint8_t>(20, 0xFF), now);
  EXPECT_EQ(server().counters().droppedMalformed, 5u);
  // Responses and other indications from a client are ignored.
  send(build(method::kAllocate, MessageClass::SuccessResponse, nextId(), {}, nullptr), udp);
  send(build(method::kData, MessageClass::Indication, nextId(), {}, nullptr), udp);
  send(build(method::kBinding, MessageClass::Indication, nextId(), {}, nullptr), udp);
  EXPECT_TRUE(io.toClient.empty());
  EXPECT_TRUE(io.opens.empty());
}

// ---- Send indications and peer data ----

TEST_F(TurnServerTest, SendIndicationDrops) {
  ASSERT_EQ(allocate(alice).code(), 0);
  ASSERT_EQ(createPermission(alice, {peer}).code(), 0);
  // Missing DATA or XOR-PEER-ADDRESS.
  send(build(
           method::kSend, MessageClass::Indication, nextId(),
           [&](MessageBuilder& b) { b.addXorAddress(attr::kXorPeerAddress, peer); }, nullptr),
       udp);
  send(build(
           method::kSend, MessageClass::Indication, nextId(),
           [](MessageBuilder& b) { b.addAttribute(attr::kData, {}); }, nullptr),
       udp);
  EXPECT_EQ(server().counters().droppedMalformed, 2u);
  // A forbidden peer.
  send(sendIndication({ip("192.168.0.1"), 1}, {1}), udp);
  EXPECT_EQ(server().counters().forbiddenPeers, 1u);
  // No permission.
  send(sendIndication(peer2, {1}), udp);
  EXPECT_EQ(server().counters().droppedNoPermission, 1u);
  // Unknown comprehension-required attribute.
  send(build(
           method::kSend, MessageClass::Indication, nextId(),
           [&](MessageBuilder& b) {
             b.addXorAddress(attr::kXorPeerAddress, peer).addAttribute(attr::kData, {});
             b.addUint32(0x7001, 0);
           },
           nullptr),
       udp);
  EXPECT_TRUE(io.toPeer.empty());
  // Empty DATA is allowed.
  send(sendIndication(peer, {}), udp);
  ASSERT_EQ(io.toPeer.size(), 1u);
  EXPECT_TRUE(io.toPeer[0].payload.empty());
  // Peer data on an unknown relay.
  peerSends(77, peer, {1});
  EXPECT_EQ(server().counters().droppedNoPermission, 2u);
}

TEST_F(TurnServerTest, TokenBucketLimitsBothDirections) {
  options.bandwidthPerAllocation = 1000;
  ASSERT_EQ(allocate(alice).code(), 0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  const std::vector<std::uint8_t> payload(600, 0x55);
  send(channelData(0x4000, payload), udp);
  send(channelData(0x4000, payload), udp);  // 1200 > 1000 burst
  EXPECT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(server().counters().droppedBandwidth, 1u);
  const std::size_t before = io.toClient.size();
  peerSends(1, peer, std::vector<std::uint8_t>(500, 1));  // 400 tokens left
  EXPECT_EQ(io.toClient.size(), before);
  EXPECT_EQ(server().counters().droppedBandwidth, 2u);
  now.steady += 500ms;  // +500 tokens
  peerSends(1, peer, std::vector<std::uint8_t>(500, 1));
  EXPECT_EQ(io.toClient.size(), before + 1);
  advance(10s);  // refills to the burst, not beyond
  send(channelData(0x4000, payload), udp);
  send(channelData(0x4000, payload), udp);
  EXPECT_EQ(io.toPeer.size(), 2u);
  EXPECT_EQ(server().counters().droppedBandwidth, 3u);
}

TEST_F(TurnServerTest, TotalBandwidthIsSharedByAllAllocations) {
  options.bandwidthPerAllocation = 0;
  options.bandwidthTotal = 1000;
  ASSERT_EQ(allocate(alice, udp).code(), 0);
  ASSERT_EQ(allocate(bob, udp2).code(), 0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer, udp).code(), 0);
  ASSERT_EQ(channelBind(bob, 0x4000, peer, udp2).code(), 0);
  const std::vector<std::uint8_t> payload(600, 0x55);
  send(channelData(0x4000, payload), udp);
  send(channelData(0x4000, payload), udp2);  // 1200 > the shared 1000
  EXPECT_EQ(io.toPeer.size(), 1u);
  EXPECT_EQ(server().counters().droppedBandwidth, 1u);
  advance(1s);
  send(channelData(0x4000, payload), udp2);
  EXPECT_EQ(io.toPeer.size(), 2u);
}

TEST_F(TurnServerTest, UnlimitedBandwidthWhenZero) {
  options.bandwidthPerAllocation = 0;
  ASSERT_EQ(allocate(alice).code(), 0);
  ASSERT_EQ(channelBind(alice, 0x4000, peer).code(), 0);
  for (int i = 0; i < 100; ++i)
    send(channelData(0x4000, std::vector<std::uint8_t>(1200)), udp);
  EXPECT_EQ(io.toPeer.size(), 100u);
}

TEST_F(TurnServerTest, LargestPeerDatagramFitsADataIndication) {
  options.bandwidthPerAllocation = 0;
  ASSERT_EQ(allocate(alice).code(), 0);
  ASSERT_EQ(createPermission(alice, {peer}).code(), 0);
  peerSends(1, peer, std::vector<std::uint8_t>(65507, 7));  // max UDP payload over IPv4
  const Reply data{io.toClient.back().bytes};
  EXPECT_EQ(data.raw(attr::kData).size(), 65507u);
}

// ---- teardown ----

TEST_F(TurnServerTest, ClientClosedDeletesItsAllocation) {
  ASSERT_EQ(allocate(alice, tcp).code(), 0);
  ASSERT_EQ(allocate(bob, udp).code(), 0);
  server().onClientClosed(tcp, now);
  EXPECT_FALSE(server().hasAllocation(tcp));
  EXPECT_TRUE(server().hasAllocation(udp));
  EXPECT_EQ(io.closes, (std::vector<RelayId>{1}));
  EXPECT_EQ(server().counters().allocationsDeleted, 1u);
  EXPECT_EQ(shared().allocations(), 1u);
  server().onClientClosed(tcp, now);  // nothing left: no effect
  EXPECT_EQ(server().counters().allocationsDeleted, 1u);
}

TEST_F(TurnServerTest, DestructorClosesRelaysAndReleasesQuotas) {
  SharedState shared(10, kNonceKey);
  {
    Server local(options, shared, filter, io);
    Credential c = alice;
    const auto first = [&] {
      local.onClientBytes(
          udp,
          build(method::kAllocate, MessageClass::Request, nextId(), requestedTransport(), nullptr),
          now);
      return Reply{io.toClient.back().bytes};
    }();
    c.nonce = first.text(attr::kNonce);
    local.onClientBytes(
        udp, build(method::kAllocate, MessageClass::Request, nextId(), requestedTransport(), &c),
        now);
    EXPECT_EQ(local.allocationCount(), 1u);
    EXPECT_EQ(shared.allocations(), 1u);
  }
  EXPECT_EQ(io.closes, (std::vector<RelayId>{1}));
  EXPECT_EQ(shared.allocations(), 0u);
}

TEST(SharedState, CountsPerUserAndTotal) {
  SharedState shared(3, {});
  EXPECT_TRUE(shared.acquireAllocation("a", 2));
  EXPECT_TRUE(shared.acquireAllocation("a", 2));
  EXPECT_FALSE(shared.acquireAllocation("a", 2));
  EXPECT_TRUE(shared.acquireAllocation("b", 2));
  EXPECT_FALSE(shared.acquireAllocation("c", 2));
  EXPECT_EQ(shared.allocations(), 3u);
  shared.releaseAllocation("a");
  shared.releaseAllocation("nobody");  // ignored
  EXPECT_EQ(shared.allocations(), 2u);
  EXPECT_TRUE(shared.acquireAllocation("c", 2));
}

TEST(FiveTupleHash, DistinguishesTheFields) {
  const FiveTuple a{{ip("1.2.3.4"), 1}, {ip("5.6.7.8"), 2}, Transport::Udp};
  FiveTuple b = a;
  b.transport = Transport::Tcp;
  FiveTuple c = a;
  c.client.port = 3;
  const FiveTupleHash hash;
  EXPECT_EQ(hash(a), hash(FiveTuple(a)));
  EXPECT_NE(hash(a), hash(b));
  EXPECT_NE(hash(a), hash(c));
}

}  // namespace
}  // namespace parley::turn::testing
