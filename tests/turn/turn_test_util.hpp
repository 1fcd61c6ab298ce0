// Test helpers for the TURN state machine: a RelayIo that records, a clock the test moves,
// requests built with the project's MessageBuilder and replies read with Message::parse.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>
#include <parley/turn/server.hpp>

namespace parley::turn::testing {

namespace attr = stun::attr;
namespace method = stun::method;
using stun::MessageBuilder;
using stun::MessageClass;

inline IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

class FakeRelayIo : public RelayIo {
 public:
  struct PeerSend {
    RelayId relay;
    Endpoint peer;
    std::vector<std::uint8_t> payload;
    bool dontFragment;
  };
  struct ClientSend {
    FiveTuple client;
    std::vector<std::uint8_t> bytes;
  };

  tl::expected<OpenedRelay, int> openRelay(const RelayRequest& request) override {
    opens.push_back(request);
    if (const auto fail = failures.find(request.family); fail != failures.end()) {
      return tl::unexpected(fail->second);
    }
    OpenedRelay relay;
    relay.id = nextId++;
    const auto port = static_cast<std::uint16_t>(50000 + 2 * relay.id);
    relay.advertised = request.family == AddressFamily::V4 ? Endpoint{ip("203.0.113.1"), port}
                                                           : Endpoint{ip("2001:db8::1"), port};
    if (request.reserveNext) relay.reservationToken = 0x0102030405060708ULL;
    open.push_back(relay.id);
    return relay;
  }
  void closeRelay(RelayId relay) override {
    closes.push_back(relay);
    std::erase(open, relay);
  }
  void sendToPeer(RelayId relay, const Endpoint& peer, Bytes payload, bool df) override {
    toPeer.push_back({relay, peer, {payload.begin(), payload.end()}, df});
  }
  void sendToClient(const FiveTuple& client, Bytes message) override {
    toClient.push_back({client, {message.begin(), message.end()}});
  }

  std::map<AddressFamily, int> failures;  // family -> error code openRelay returns
  RelayId nextId = 1;
  std::vector<RelayRequest> opens;
  std::vector<RelayId> open;
  std::vector<RelayId> closes;
  std::vector<PeerSend> toPeer;
  std::vector<ClientSend> toClient;
};

// A received message kept alive with its bytes.
struct Reply {
  std::vector<std::uint8_t> bytes;
  stun::Message message() const {
    auto parsed = stun::Message::parse(bytes);
    EXPECT_TRUE(parsed) << "reply does not parse";
    return *parsed;
  }
  // 0 for a success response.
  int code() const {
    const auto m = message();
    const auto attribute = m.find(attr::kErrorCode);
    if (!attribute) return 0;
    return stun::decodeErrorCode(*attribute)->code;
  }
  bool has(std::uint16_t type) const { return message().find(type).has_value(); }
  std::string text(std::uint16_t type) const {
    const auto m = message();
    const auto attribute = m.find(type);
    if (!attribute) return {};
    return std::string(*stun::decodeText(*attribute));
  }
  std::uint32_t u32(std::uint16_t type) const {
    const auto m = message();
    return *stun::decodeUint32(*m.find(type));
  }
  std::vector<Endpoint> xorAddresses(std::uint16_t type) const {
    const auto m = message();
    std::vector<Endpoint> out;
    for (const auto& attribute : m) {
      if (attribute.type == type) out.push_back(*m.decodeXorAddress(attribute));
    }
    return out;
  }
  std::vector<std::uint8_t> raw(std::uint16_t type) const {
    const auto m = message();
    const auto attribute = m.find(type);
    if (!attribute) return {};
    return {attribute->value.begin(), attribute->value.end()};
  }
};

struct Credential {
  Credential(std::string user, std::string pass, std::string realmName = "parley")
      : username(std::move(user)), password(std::move(pass)), realm(std::move(realmName)) {}
  std::string username;
  std::string password;
  std::string realm;
  std::string nonce;
  std::uint16_t algorithm = 0;  // 0: send no PASSWORD-ALGORITHM(S); else echo and choose this
  bool sha256Mac = false;
  bool useUserhash = false;

  std::vector<std::uint8_t> key() const {
    if (algorithm == stun::algorithm::kSha256) {
      const auto k = *stun::longTermKeySha256(username, realm, password);
      return {k.begin(), k.end()};
    }
    const auto k = *stun::longTermKeyMd5(username, realm, password);
    return {k.begin(), k.end()};
  }
};

inline constexpr std::array<std::uint8_t, 8> kOffered = {0, 2, 0, 0, 0, 1, 0, 0};

using Body = std::function<void(MessageBuilder&)>;

inline std::vector<std::uint8_t> build(std::uint16_t method, MessageClass cls,
                                       const stun::TransactionId& id, const Body& body,
                                       const Credential* credential) {
  std::array<std::uint8_t, 4096> buffer{};
  MessageBuilder builder(buffer, stun::messageType(method, cls), id);
  if (body) body(builder);
  if (credential != nullptr) {
    if (credential->useUserhash) {
      builder.addAttribute(attr::kUserhash,
                           stun::userhash(credential->username, credential->realm));
    } else {
      builder.addText(attr::kUsername, credential->username);
    }
    builder.addText(attr::kRealm, credential->realm).addText(attr::kNonce, credential->nonce);
    if (credential->algorithm != 0) {
      const std::array<std::uint8_t, 4> chosen = {
          0, static_cast<std::uint8_t>(credential->algorithm), 0, 0};
      builder.addAttribute(attr::kPasswordAlgorithms, kOffered)
          .addAttribute(attr::kPasswordAlgorithm, chosen);
    }
    const auto key = credential->key();
    if (credential->sha256Mac) {
      builder.addMessageIntegritySha256(key);
    } else {
      builder.addMessageIntegrity(key);
    }
  }
  builder.addFingerprint();
  const auto bytes = builder.finish();
  EXPECT_TRUE(bytes);
  return {bytes->begin(), bytes->end()};
}

inline Body requestedTransport(std::uint8_t protocol = 17) {
  return [protocol](MessageBuilder& b) {
    const std::array<std::uint8_t, 4> value = {protocol, 0, 0, 0};
    b.addAttribute(attr::kRequestedTransport, value);
  };
}

inline std::array<std::uint8_t, 4> familyValue(std::uint8_t family) {
  return {family, 0, 0, 0};
}

inline std::array<std::uint8_t, 4> channelValue(std::uint16_t number) {
  return {static_cast<std::uint8_t>(number >> 8), static_cast<std::uint8_t>(number), 0, 0};
}

}  // namespace parley::turn::testing
