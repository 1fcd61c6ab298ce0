#include <algorithm>
#include <cstring>

#include <parley/base/log.hpp>
#include <parley/stun/binding.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/framer.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>
#include <parley/turn/server.hpp>

#include "auth.hpp"

namespace parley::turn {

namespace {

using stun::Attribute;
using stun::Message;
using stun::MessageBuilder;
using stun::MessageClass;
using SteadyTime = std::chrono::steady_clock::time_point;
namespace attr = stun::attr;
namespace error = stun::error;
namespace method = stun::method;

// RFC 8656 §12: a channel number stays reserved for its peer 5 minutes after it expires.
constexpr std::chrono::minutes kChannelReuseDelay{5};
// RFC 8656 §12 assigns 0x4000 through 0x4FFF; RFC 5766 allowed up to 0x7FFF and coturn's
// clients use that range, so it is accepted (see stun::isChannelDataFirstByte).
constexpr std::uint16_t kMinChannel = 0x4000;
constexpr std::uint16_t kMaxChannel = 0x7FFF;
constexpr std::size_t kChannelHeaderSize = 4;
// RFC 8656 §18.5 / IANA protocol number of UDP in REQUESTED-TRANSPORT.
constexpr std::uint8_t kProtocolUdp = 17;
constexpr std::uint8_t kFamilyV4 = 0x01;
constexpr std::uint8_t kFamilyV6 = 0x02;
constexpr std::size_t kMaxUnknownReported = 16;
// RFC 8489 §14.11/§14.12: what we offer in PASSWORD-ALGORITHMS, in order of preference; a
// client that echoes it must echo exactly these bytes.
constexpr std::array<std::uint8_t, 8> kOfferedAlgorithms = {0x00, 0x02, 0x00, 0x00,
                                                            0x00, 0x01, 0x00, 0x00};

std::uint16_t read16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
std::size_t familyIndex(AddressFamily family) {
  return family == AddressFamily::V4 ? 0 : 1;
}
std::uint8_t familyCode(AddressFamily family) {
  return family == AddressFamily::V4 ? kFamilyV4 : kFamilyV6;
}
const char* transportName(Transport transport) {
  switch (transport) {
    case Transport::Udp:
      return "udp";
    case Transport::Tcp:
      return "tcp";
    case Transport::Tls:
      return "tls";
    case Transport::Dtls:
      return "dtls";
  }
  return "?";
}

// RFC 8489 §6.3 / RFC 8656 §5: comprehension-required attributes a TURN request may carry.
// Known attributes a method does not use are ignored ("known-but-unexpected"); only attributes
// this server does not know at all get a 420.
bool knownInTurnRequest(std::uint16_t type) {
  switch (type) {
    case attr::kUsername:
    case attr::kUserhash:
    case attr::kMessageIntegrity:
    case attr::kMessageIntegritySha256:
    case attr::kRealm:
    case attr::kNonce:
    case attr::kPasswordAlgorithm:
    case attr::kErrorCode:
    case attr::kChannelNumber:
    case attr::kLifetime:
    case attr::kXorPeerAddress:
    case attr::kData:
    case attr::kXorRelayedAddress:
    case attr::kRequestedAddressFamily:
    case attr::kEvenPort:
    case attr::kRequestedTransport:
    case attr::kDontFragment:
    case attr::kReservationToken:
    case attr::kXorMappedAddress:
      return true;
    default:
      return !attr::isComprehensionRequired(type);
  }
}

struct Permission {
  IpAddress peer;
  SteadyTime expires;
};

// A binding is usable while `expires` is ahead; the entry stays (reserving the number and the
// peer) until kChannelReuseDelay after that.
struct Channel {
  std::uint16_t number = 0;
  Endpoint peer;
  SteadyTime expires;
};

struct RelaySlot {
  bool open = false;
  RelayId id = 0;
  Endpoint advertised;
};

}  // namespace

struct Server::Impl {
  // Bytes per second with a burst of one second's worth; rate 0 = unlimited. Refilled lazily
  // from the injected clock, so it costs nothing while idle.
  class TokenBucket {
   public:
    TokenBucket() = default;
    TokenBucket(std::uint64_t rate, SteadyTime now)
        : rate_(static_cast<double>(rate)), tokens_(rate_), refilled_(now) {}
    bool take(std::size_t bytes, SteadyTime now) {
      if (rate_ == 0) return true;
      if (now > refilled_) {
        const double elapsed = std::chrono::duration<double>(now - refilled_).count();
        tokens_ = std::min(rate_, tokens_ + elapsed * rate_);
        refilled_ = now;
      }
      if (tokens_ < static_cast<double>(bytes)) return false;
      tokens_ -= static_cast<double>(bytes);
      return true;
    }

   private:
    double rate_ = 0;
    double tokens_ = 0;
    SteadyTime refilled_{};
  };

  struct Allocation {
    FiveTuple client;
    std::string username;
    detail::Keys keys;                // RFC 8656 §5: later requests must use the same credentials
    std::array<RelaySlot, 2> relays;  // [0] IPv4, [1] IPv6
    SteadyTime expires;
    bool dontFragment = false;
    std::vector<Permission> permissions;
    std::vector<Channel> channels;
    bool everHadChannel = false;
    stun::TransactionId allocateTransaction{};
    std::vector<std::uint8_t> allocateResponse;  // resent for a retransmitted Allocate
    TokenBucket bandwidth;                       // RFC-independent abuse limit
    std::uint64_t bytesToPeer = 0;
    std::uint64_t bytesToClient = 0;

    const RelaySlot* relayFor(AddressFamily family) const {
      const RelaySlot& slot = relays[familyIndex(family)];
      return slot.open ? &slot : nullptr;
    }
    Permission* permission(const IpAddress& peer) {
      for (Permission& p : permissions)
        if (p.peer == peer) return &p;
      return nullptr;
    }
    bool permitted(const IpAddress& peer, SteadyTime now) {
      const Permission* p = permission(peer);
      return p != nullptr && p->expires > now;
    }
  };

  // The result of RFC 8489 §9.2.4: who the request is from, and the key to answer with.
  struct Auth {
    std::string username;
    detail::Keys keys;
    std::uint16_t algorithm = stun::algorithm::kMd5;
    bool sha256Mac = false;  // request carried MESSAGE-INTEGRITY-SHA256: answer the same way
    stun::Bytes key() const {
      if (algorithm == stun::algorithm::kSha256) return keys.sha256;
      return keys.md5;
    }
  };

  Impl(const Options& o, SharedState& s, const PeerFilter& f, RelayIo& r)
      : options(o),
        shared(s),
        filter(f),
        io(r),
        credentials(o.realm, o.users, o.restSecrets),
        nonces(s.nonceKey(), o.nonceLifetime),
        limiter(o.unauthenticatedPerSecond, seedFrom(s.nonceKey())),
        logger(log::get("turn")) {}

  static std::uint64_t seedFrom(const std::array<std::uint8_t, 32>& key) {
    std::uint64_t seed = 0;
    for (int i = 0; i < 8; ++i)
      seed = seed << 8 | key[24 + i];
    return seed;
  }

  Options options;
  SharedState& shared;
  const PeerFilter& filter;
  RelayIo& io;
  detail::Credentials credentials;
  detail::Nonces nonces;
  detail::RateLimiter limiter;
  std::shared_ptr<spdlog::logger> logger;
  Counters counters;
  TokenBucket totalBandwidth{options.bandwidthTotal, SteadyTime{}};
  std::unordered_map<FiveTuple, std::unique_ptr<Allocation>, FiveTupleHash> allocations;
  std::unordered_map<RelayId, Allocation*> byRelay;
  // Scratch buffers: responses, and Data indications / ChannelData toward clients.
  std::array<std::uint8_t, 4096> response{};
  std::array<std::uint8_t, 65536 + 64> data{};
  std::uint64_t indicationCounter = 0;

  Allocation* find(const FiveTuple& client) const {
    const auto found = allocations.find(client);
    return found == allocations.end() ? nullptr : found->second.get();
  }

  // ---- responses ----

  MessageBuilder start(const Message& request, MessageClass cls) {
    return MessageBuilder(response, stun::messageType(request.method(), cls),
                          request.transactionId());
  }

  // SOFTWARE, then MESSAGE-INTEGRITY(-SHA256) when authenticated, then FINGERPRINT (RFC 8656
  // §5 recommends FINGERPRINT on every message), then send.
  stun::Bytes finishAndSend(MessageBuilder& builder, const FiveTuple& client, const Auth* auth) {
    if (!options.software.empty()) builder.addText(attr::kSoftware, options.software);
    if (auth != nullptr) {
      if (auth->sha256Mac) {
        builder.addMessageIntegritySha256(auth->key());
      } else {
        builder.addMessageIntegrity(auth->key());
      }
    }
    builder.addFingerprint();
    const auto bytes = builder.finish();
    if (!bytes) return {};
    io.sendToClient(client, *bytes);
    return *bytes;
  }

  void sendError(const FiveTuple& client, const Message& request, int code, const Auth* auth) {
    MessageBuilder builder = start(request, MessageClass::ErrorResponse);
    builder.addErrorCode(code);
    finishAndSend(builder, client, auth);
  }

  // RFC 8489 §9.2.4: 401 and 438 carry REALM, a fresh NONCE and PASSWORD-ALGORITHMS.
  void sendChallenge(const FiveTuple& client, const Message& request, int code, const Auth* auth,
                     const Now& now) {
    const std::string nonce = nonces.mint(client.client.address, now.steady);
    MessageBuilder builder = start(request, MessageClass::ErrorResponse);
    builder.addErrorCode(code)
        .addText(attr::kRealm, options.realm)
        .addText(attr::kNonce, nonce)
        .addAttribute(attr::kPasswordAlgorithms, kOfferedAlgorithms);
    finishAndSend(builder, client, auth);
  }

  // 401s are what an unauthenticated flood earns: rate-limited per source address over UDP,
  // where the source can be spoofed and a dropped answer is retransmitted for. TCP, TLS and
  // DTLS have proved their address in a handshake, and a stream client never retransmits, so
  // a dropped 401 would leave it hanging: those are always answered.
  void sendUnauthenticated(const FiveTuple& client, const Message& request, const Now& now) {
    if (client.transport == Transport::Udp && !limiter.allow(client.client.address, now.steady)) {
      ++counters.unauthenticatedRateLimited;
      return;
    }
    sendChallenge(client, request, error::kUnauthenticated, nullptr, now);
  }

  // ---- RFC 8489 §9.2.4: receiving a request with long-term credentials ----

  std::optional<Auth> authenticate(const FiveTuple& client, const Message& request,
                                   Allocation* allocation, const Now& now) {
    const auto integrity = request.find(attr::kMessageIntegrity);
    const auto integrity256 = request.find(attr::kMessageIntegritySha256);
    // "If the message does not contain a MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256
    // attribute, the server MUST generate an error response with an error code of 401."
    if (!integrity && !integrity256) {
      sendUnauthenticated(client, request, now);
      return std::nullopt;
    }
    // "... but is missing either the USERNAME or USERHASH, REALM, or NONCE attribute, the
    // server MUST generate an error response with an error code of 400 (Bad Request)."
    const auto usernameAttr = request.find(attr::kUsername);
    const auto userhashAttr = request.find(attr::kUserhash);
    const auto realmAttr = request.find(attr::kRealm);
    const auto nonceAttr = request.find(attr::kNonce);
    const auto realm = realmAttr ? stun::decodeText(*realmAttr) : std::string_view{};
    const auto nonce = nonceAttr ? stun::decodeText(*nonceAttr) : std::string_view{};
    if ((!usernameAttr && !userhashAttr) || !realmAttr || !nonceAttr || !realm || !nonce) {
      sendError(client, request, error::kBadRequest, nullptr);
      return std::nullopt;
    }
    Auth auth;
    auth.sha256Mac = integrity256.has_value();
    // "If the NONCE attribute starts with the 'nonce cookie' with the STUN Security Feature
    // 'Password algorithms' bit set to 1": neither attribute means MD5; otherwise both must be
    // present, PASSWORD-ALGORITHMS must match what we sent and PASSWORD-ALGORITHM be in it.
    if (detail::Nonces::hasPasswordAlgorithmsBit(*nonce)) {
      const auto chosen = request.find(attr::kPasswordAlgorithm);
      const auto offered = request.find(attr::kPasswordAlgorithms);
      if (chosen || offered) {
        const auto algorithm = chosen ? stun::decodePasswordAlgorithm(*chosen)
                                      : tl::unexpected(stun::DecodeError::WrongSize);
        const bool echoed =
            offered && std::equal(offered->value.begin(), offered->value.end(),
                                  kOfferedAlgorithms.begin(), kOfferedAlgorithms.end());
        if (!algorithm || !echoed || !algorithm->parameters.empty() ||
            (algorithm->algorithm != stun::algorithm::kMd5 &&
             algorithm->algorithm != stun::algorithm::kSha256)) {
          sendError(client, request, error::kBadRequest, nullptr);
          return std::nullopt;
        }
        auth.algorithm = algorithm->algorithm;
      }
    }
    // "If the value of the USERNAME or USERHASH attribute is not valid ... 401."
    if (usernameAttr) {
      const auto username = stun::decodeText(*usernameAttr);
      if (!username) {
        sendError(client, request, error::kBadRequest, nullptr);
        return std::nullopt;
      }
      auth.username = *username;
    } else if (const std::string* user = credentials.userByHash(userhashAttr->value)) {
      auth.username = *user;
    }
    if (auth.username.empty() || *realm != options.realm) return authFailed(client, request, now);

    if (allocation != nullptr) {
      // RFC 8656 §5: requests on an allocation must come from the user that created it.
      if (allocation->username != auth.username) {
        ++counters.authFailures;
        sendError(client, request, error::kWrongCredentials, nullptr);
        return std::nullopt;
      }
      auth.keys = allocation->keys;  // cached: no key derivation per Refresh
      if (!integrityValid(request, auth)) return authFailed(client, request, now);
    } else if (const detail::Keys* keys = credentials.staticUser(auth.username)) {
      auth.keys = *keys;
      if (!integrityValid(request, auth)) return authFailed(client, request, now);
    } else if (!restAuthenticate(request, auth, now)) {
      return authFailed(client, request, now);
    }
    // "If the NONCE is no longer valid, the server MUST generate an error response with an
    // error code of 438 (Stale Nonce)" with a valid NONCE, REALM and PASSWORD-ALGORITHMS.
    if (!nonces.valid(*nonce, client.client.address, now.steady)) {
      ++counters.staleNonces;
      sendChallenge(client, request, error::kStaleNonce, &auth, now);
      return std::nullopt;
    }
    return auth;
  }

  std::optional<Auth> authFailed(const FiveTuple& client, const Message& request, const Now& now) {
    ++counters.authFailures;
    sendUnauthenticated(client, request, now);
    return std::nullopt;
  }

  static bool integrityValid(const Message& request, const Auth& auth) {
    // "If the MESSAGE-INTEGRITY-SHA256 attribute is present, compute the value ... as described
    // in Section 14.6 ... Otherwise ... MESSAGE-INTEGRITY as described in Section 14.5."
    const auto check = auth.sha256Mac ? stun::checkMessageIntegritySha256(request, auth.key())
                                      : stun::checkMessageIntegrity(request, auth.key());
    return check == stun::Check::Valid;
  }

  // TURN REST API (draft-uberti-behave-turn-rest): username "<unix expiry>[:<anything>]",
  // password base64(HMAC-SHA1(secret, username)). Every configured secret is tried.
  bool restAuthenticate(const Message& request, Auth& auth, const Now& now) {
    if (credentials.restSecrets().empty()) return false;
    const auto expiry = detail::Credentials::restExpiry(auth.username);
    if (!expiry) return false;
    const auto wall =
        std::chrono::duration_cast<std::chrono::seconds>(now.wall.time_since_epoch()).count();
    if (*expiry < wall) return false;
    for (const std::string& secret : credentials.restSecrets()) {
      const auto keys = credentials.restKeys(secret, auth.username);
      if (!keys) continue;
      auth.keys = *keys;
      if (integrityValid(request, auth)) return true;
    }
    return false;
  }

  // RFC 8489 §6.3.1 (after authentication, §6.3): unknown comprehension-required attributes.
  bool rejectUnknown(const FiveTuple& client, const Message& request, const Auth& auth) {
    std::array<std::uint16_t, kMaxUnknownReported> unknown{};
    std::size_t count = 0;
    for (const Attribute& attribute : request) {
      if (!knownInTurnRequest(attribute.type) && count < unknown.size()) {
        unknown[count++] = attribute.type;
      }
    }
    if (count == 0) return false;
    MessageBuilder builder = start(request, MessageClass::ErrorResponse);
    builder.addErrorCode(error::kUnknownAttribute)
        .addUnknownAttributes(std::span(unknown.data(), count));
    finishAndSend(builder, client, &auth);
    return true;
  }

  // ---- dispatch ----

  void onClientBytes(const FiveTuple& client, Bytes bytes, const Now& now) {
    if (bytes.empty()) {
      ++counters.droppedMalformed;
      return;
    }
    if (stun::isChannelDataFirstByte(bytes[0])) {
      onChannelData(client, bytes, now);
      return;
    }
    const auto message = Message::parse(bytes);
    if (!message) {
      ++counters.droppedMalformed;
      return;
    }
    if (message->method() == method::kBinding) {
      answerBinding(client, *message);
      return;
    }
    // TURN needs RFC 5389+ framing; a FINGERPRINT that does not match means not STUN (§7.3).
    if (message->isClassic() || stun::checkFingerprint(*message) == stun::Check::Invalid) {
      ++counters.droppedMalformed;
      return;
    }
    switch (message->messageClass()) {
      case MessageClass::Request:
        onRequest(client, *message, now);
        return;
      case MessageClass::Indication:
        if (message->method() == method::kSend) onSend(client, *message, now);
        return;  // RFC 8656 §5: other indications are discarded
      default:
        return;  // a client sends no responses to a server
    }
  }

  void answerBinding(const FiveTuple& client, const Message& request) {
    // RFC 5780 RESPONSE-PORT and PADDING would turn a TURN port into a reflector or an
    // amplifier, and RelayIo answers on the request's 5-tuple only: a TURN server declines
    // them with 420 (RFC 5780 §7.5 lets a server not support them).
    if (request.messageClass() == MessageClass::Request && !request.isClassic() &&
        stun::checkFingerprint(request) != stun::Check::Invalid) {
      std::array<std::uint16_t, 2> declined{};
      std::size_t count = 0;
      for (const std::uint16_t type : {attr::kResponsePort, attr::kPadding}) {
        if (request.find(type)) declined[count++] = type;
      }
      if (count > 0) {
        MessageBuilder builder = start(request, MessageClass::ErrorResponse);
        builder.addErrorCode(error::kUnknownAttribute)
            .addUnknownAttributes(std::span(declined.data(), count));
        finishAndSend(builder, client, nullptr);
        return;
      }
    }
    stun::BindingContext context;
    context.source = client.client;
    context.local = client.server;
    context.transport = isStream(client.transport) ? stun::Transport::Tcp : stun::Transport::Udp;
    // No otherAddress: RelayIo can only answer from the socket the request came in on, so a
    // CHANGE-REQUEST is answered with 420 (RFC 5780 §7.2 lets a server decline).
    context.software = options.software;
    const auto result = stun::answerBinding(request.bytes(), context, response);
    if (result.outcome == stun::Outcome::Drop) {
      if (result.dropReason == stun::DropReason::Malformed ||
          result.dropReason == stun::DropReason::BadFingerprint) {
        ++counters.droppedMalformed;
      }
      return;
    }
    io.sendToClient(client, result.response);
  }

  void onRequest(const FiveTuple& client, const Message& request, const Now& now) {
    const std::uint16_t m = request.method();
    if (m != method::kAllocate && m != method::kRefresh && m != method::kCreatePermission &&
        m != method::kChannelBind) {
      sendError(client, request, error::kBadRequest, nullptr);
      return;
    }
    Allocation* allocation = find(client);
    // RFC 8656 §7.2: over UDP a lost success response makes the client retransmit its
    // Allocate; the 5-tuple is then in use, but it must get the same success response.
    if (m == method::kAllocate && allocation != nullptr &&
        std::equal(allocation->allocateTransaction.begin(), allocation->allocateTransaction.end(),
                   request.transactionId().begin())) {
      io.sendToClient(client, allocation->allocateResponse);
      return;
    }
    const auto auth = authenticate(client, request, allocation, now);
    if (!auth) return;
    if (rejectUnknown(client, request, *auth)) return;
    if (m == method::kAllocate) {
      onAllocate(client, request, *auth, allocation, now);
      return;
    }
    // RFC 8656 §5: requests other than Allocate need an allocation on this 5-tuple.
    if (allocation == nullptr) {
      sendError(client, request, error::kAllocationMismatch, &*auth);
      return;
    }
    // Requests are authenticated with the credentials the allocation was made with.
    if (m == method::kRefresh) {
      onRefresh(client, request, *auth, *allocation, now);
    } else if (m == method::kCreatePermission) {
      onCreatePermission(client, request, *auth, *allocation, now);
    } else {
      onChannelBind(client, request, *auth, *allocation, now);
    }
  }

  // ---- lifetimes ----

  // RFC 8656 §7.2 / §7.4: "the minimum of the client's proposed lifetime and the server's
  // maximum allowed lifetime. If this computed value is greater than the default lifetime,
  // then the server uses the computed lifetime ... Otherwise, the server uses the default."
  std::chrono::seconds lifetimeFor(std::optional<std::uint32_t> requested) const {
    if (!requested) return options.defaultLifetime;
    const auto computed = std::min(std::chrono::seconds(*requested), options.maxLifetime);
    return std::max(computed, options.defaultLifetime);
  }

  // A missing attribute is nullopt; a malformed one sets `bad`.
  static std::optional<std::uint32_t> lifetimeOf(const Message& request, bool& bad) {
    const auto attribute = request.find(attr::kLifetime);
    if (!attribute) return std::nullopt;
    const auto value = stun::decodeUint32(*attribute);
    if (!value) {
      bad = true;
      return std::nullopt;
    }
    return *value;
  }

  // REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.6, §18.12): family
  // byte then 3 reserved bytes. Returns the raw family byte; 0 on a malformed value.
  static std::uint8_t familyByte(const Attribute& attribute) {
    return attribute.value.size() == 4 ? attribute.value[0] : 0;
  }

  // ---- RFC 8656 §7.2: receiving an Allocate request ----

  void onAllocate(const FiveTuple& client, const Message& request, const Auth& auth,
                  Allocation* existing, const Now& now) {
    // 2. "checks if the 5-tuple is currently in use by an existing allocation. If yes, the
    // server rejects the request with a 437 (Allocation Mismatch) error."
    if (existing != nullptr) {
      sendError(client, request, error::kAllocationMismatch, &auth);
      return;
    }
    // 3. "checks if the request contains a REQUESTED-TRANSPORT attribute. If the
    // REQUESTED-TRANSPORT attribute is not included or is malformed, the server rejects the
    // request with a 400 ... If the value ... is not supported ... 442."
    const auto transport = request.find(attr::kRequestedTransport);
    if (!transport || transport->value.size() != 4) {
      sendError(client, request, error::kBadRequest, &auth);
      return;
    }
    if (transport->value[0] != kProtocolUdp) {
      sendError(client, request, error::kUnsupportedTransportProtocol, &auth);
      return;
    }
    // 4. DONT-FRAGMENT: supported (the server layer sets DF on the relay socket's datagrams).
    const bool dontFragment = request.find(attr::kDontFragment).has_value();
    // 5.-7. RESERVATION-TOKEN, EVEN-PORT, REQUESTED-ADDRESS-FAMILY, ADDITIONAL-ADDRESS-FAMILY.
    const auto token = request.find(attr::kReservationToken);
    const auto evenPort = request.find(attr::kEvenPort);
    const auto requestedFamily = request.find(attr::kRequestedAddressFamily);
    const auto additionalFamily = request.find(attr::kAdditionalAddressFamily);
    bool badLifetime = false;
    const auto requestedLifetime = lifetimeOf(request, badLifetime);
    // "If the server receives a RESERVATION-TOKEN with EVEN-PORT / REQUESTED-ADDRESS-FAMILY
    // ... 400"; a token names one reserved port, so it cannot start a dual allocation either;
    // REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together are a 400 as well.
    if (badLifetime || (token && token->value.size() != 8) ||
        (evenPort && evenPort->value.size() != 1) ||
        (token && (evenPort || requestedFamily || additionalFamily)) ||
        (requestedFamily && additionalFamily)) {
      sendError(client, request, error::kBadRequest, &auth);
      return;
    }
    AddressFamily family = AddressFamily::V4;
    if (requestedFamily) {
      const std::uint8_t code = familyByte(*requestedFamily);
      if (code == 0) {
        sendError(client, request, error::kBadRequest, &auth);
        return;
      }
      if (code != kFamilyV4 && code != kFamilyV6) {
        sendError(client, request, error::kAddressFamilyNotSupported, &auth);
        return;
      }
      family = code == kFamilyV4 ? AddressFamily::V4 : AddressFamily::V6;
    }
    // ADDITIONAL-ADDRESS-FAMILY: "the only valid value is 0x02 (IPv6)"; anything else is 400.
    const bool dual = additionalFamily.has_value();
    if (dual && familyByte(*additionalFamily) != kFamilyV6) {
      sendError(client, request, error::kBadRequest, &auth);
      return;
    }
    // 8. "At any point, the server MAY choose to reject the request with a 486 (Allocation
    // Quota Reached) error if it feels the client is trying to exceed some locally defined
    // allocation quota."
    if (!shared.acquireAllocation(auth.username, options.maxAllocationsPerUser)) {
      ++counters.quotaRejections;
      sendError(client, request, error::kAllocationQuotaReached, &auth);
      return;
    }

    RelayRequest relayRequest;
    relayRequest.family = family;
    relayRequest.evenPort = evenPort.has_value();
    relayRequest.reserveNext = evenPort && (evenPort->value[0] & 0x80) != 0;
    if (token) {
      std::uint64_t value = 0;
      for (std::uint8_t b : token->value)
        value = value << 8 | b;
      relayRequest.reservationToken = value;
    }
    const auto first = io.openRelay(relayRequest);
    tl::expected<OpenedRelay, int> second = tl::unexpected(0);
    if (dual) {
      RelayRequest v6;
      v6.family = AddressFamily::V6;
      v6.evenPort = relayRequest.evenPort;
      second = io.openRelay(v6);
    }
    if (!first && !(dual && second)) {
      shared.releaseAllocation(auth.username);
      int code = first.error();
      if (code < 300 || code > 699) code = error::kServerError;
      if (code == error::kInsufficientCapacity) ++counters.quotaRejections;
      sendError(client, request, code, &auth);
      return;
    }

    auto allocation = std::make_unique<Allocation>();
    Allocation& a = *allocation;
    a.client = client;
    a.username = auth.username;
    a.keys = auth.keys;
    a.dontFragment = dontFragment;
    const auto lifetime = lifetimeFor(requestedLifetime);
    a.expires = now.steady + lifetime;
    a.bandwidth = TokenBucket(options.bandwidthPerAllocation, now.steady);
    std::copy(request.transactionId().begin(), request.transactionId().end(),
              a.allocateTransaction.begin());
    if (first) a.relays[familyIndex(family)] = RelaySlot{true, first->id, first->advertised};
    if (dual && second) a.relays[1] = RelaySlot{true, second->id, second->advertised};

    // Success: XOR-RELAYED-ADDRESS per family, LIFETIME, RESERVATION-TOKEN, XOR-MAPPED-ADDRESS,
    // and ADDRESS-ERROR-CODE (RFC 8656 §18.13) for a family of a dual request that failed.
    MessageBuilder builder = start(request, MessageClass::SuccessResponse);
    for (const RelaySlot& slot : a.relays) {
      if (slot.open) builder.addXorAddress(attr::kXorRelayedAddress, slot.advertised);
    }
    builder.addUint32(attr::kLifetime, static_cast<std::uint32_t>(lifetime.count()));
    if (first && first->reservationToken) {
      std::array<std::uint8_t, 8> value{};
      for (int i = 0; i < 8; ++i) {
        value[i] = static_cast<std::uint8_t>(*first->reservationToken >> (56 - 8 * i));
      }
      builder.addAttribute(attr::kReservationToken, value);
    }
    builder.addXorAddress(attr::kXorMappedAddress, client.client);
    if (dual && (!first || !second)) {
      const AddressFamily failed = first ? AddressFamily::V6 : family;
      int code = first ? second.error() : first.error();
      if (code < 300 || code > 699) code = error::kServerError;
      const std::string_view reason = error::defaultReason(code);
      std::array<std::uint8_t, 4 + 64> value{};
      value[0] = familyCode(failed);
      value[2] = static_cast<std::uint8_t>(code / 100);
      value[3] = static_cast<std::uint8_t>(code % 100);
      const std::size_t reasonSize = std::min(reason.size(), value.size() - 4);
      std::memcpy(value.data() + 4, reason.data(), reasonSize);
      builder.addAttribute(attr::kAddressErrorCode, std::span(value.data(), 4 + reasonSize));
    }
    const stun::Bytes sent = finishAndSend(builder, client, &auth);
    a.allocateResponse.assign(sent.begin(), sent.end());

    for (const RelaySlot& slot : a.relays) {
      if (slot.open) byRelay[slot.id] = &a;
    }
    ++counters.allocationsCreated;
    ++counters.allocationsActive;
    logger->info("allocation started: user={} client={}/{} server={} relay={}{} lifetime={}s",
                 a.username, client.client.toString(), transportName(client.transport),
                 client.server.toString(), relayText(a), dontFragment ? " df" : "",
                 lifetime.count());
    allocations.emplace(client, std::move(allocation));
  }

  static std::string relayText(const Allocation& a) {
    std::string text;
    for (const RelaySlot& slot : a.relays) {
      if (!slot.open) continue;
      if (!text.empty()) text += ",";
      text += slot.advertised.toString();
    }
    return text.empty() ? "none" : text;
  }

  void removeAllocation(const FiveTuple& client, const char* reason) {
    const auto found = allocations.find(client);
    if (found == allocations.end()) return;
    Allocation& a = *found->second;
    logger->info(
        "allocation ended: user={} client={}/{} relay={} bytes_to_peer={} bytes_to_client={} "
        "reason={}",
        a.username, client.client.toString(), transportName(client.transport), relayText(a),
        a.bytesToPeer, a.bytesToClient, reason);
    for (RelaySlot& slot : a.relays) {
      if (!slot.open) continue;
      byRelay.erase(slot.id);
      io.closeRelay(slot.id);
      slot.open = false;
    }
    shared.releaseAllocation(a.username);
    --counters.allocationsActive;
    allocations.erase(found);
  }

  // ---- RFC 8656 §7.4: receiving a Refresh request ----

  void onRefresh(const FiveTuple& client, const Message& request, const Auth& auth, Allocation& a,
                 const Now& now) {
    bool bad = false;
    const auto requested = lifetimeOf(request, bad);
    std::optional<AddressFamily> family;
    if (const auto attribute = request.find(attr::kRequestedAddressFamily)) {
      const std::uint8_t code = familyByte(*attribute);
      if (code == kFamilyV4 || code == kFamilyV6) {
        family = code == kFamilyV4 ? AddressFamily::V4 : AddressFamily::V6;
      } else {
        bad = true;
      }
    }
    if (bad) {
      sendError(client, request, error::kBadRequest, &auth);
      return;
    }
    // "If the server receives a Refresh Request with a REQUESTED-ADDRESS-FAMILY attribute and
    // the attribute value does not match the address family of the allocation, the server MUST
    // reply with a 443 (Peer Address Family Mismatch)."
    if (family && a.relayFor(*family) == nullptr) {
      sendError(client, request, error::kPeerAddressFamilyMismatch, &auth);
      return;
    }
    // "If the 'desired lifetime' is zero, then the request succeeds and the allocation is
    // deleted." §7.3: in a dual allocation, REQUESTED-ADDRESS-FAMILY names the family the
    // request applies to; without it the request applies to all of them.
    if (requested && *requested == 0) {
      const bool both = a.relays[0].open && a.relays[1].open;
      MessageBuilder builder = start(request, MessageClass::SuccessResponse);
      builder.addUint32(attr::kLifetime, 0);
      finishAndSend(builder, client, &auth);
      if (family && both) {
        RelaySlot& slot = a.relays[familyIndex(*family)];
        byRelay.erase(slot.id);
        io.closeRelay(slot.id);
        slot.open = false;
      } else {
        ++counters.allocationsDeleted;
        removeAllocation(client, "refresh 0");
      }
      return;
    }
    // "If the 'desired lifetime' is non-zero, then the request succeeds and the allocation's
    // time-to-expiry is set to the 'desired lifetime'." (One timer for both families.)
    const auto lifetime = lifetimeFor(requested);
    a.expires = now.steady + lifetime;
    MessageBuilder builder = start(request, MessageClass::SuccessResponse);
    builder.addUint32(attr::kLifetime, static_cast<std::uint32_t>(lifetime.count()));
    finishAndSend(builder, client, &auth);
  }

  // ---- RFC 8656 §9.2: receiving a CreatePermission request ----

  void onCreatePermission(const FiveTuple& client, const Message& request, const Auth& auth,
                          Allocation& a, const Now& now) {
    // "The CreatePermission request MUST contain at least one XOR-PEER-ADDRESS attribute ...
    // If no such attribute exists, or if any of these attributes are invalid, then a 400."
    std::size_t peers = 0;
    int failure = 0;
    for (const Attribute& attribute : request) {
      if (attribute.type != attr::kXorPeerAddress) continue;
      ++peers;
      const auto peer = request.decodeXorAddress(attribute);
      if (!peer) {
        failure = error::kBadRequest;
        break;
      }
      // "If an XOR-PEER-ADDRESS attribute contains an address of an address family that is
      // not the same as that of a relayed transport address for the allocation ... 443."
      if (a.relayFor(peer->address.family()) == nullptr) {
        failure = error::kPeerAddressFamilyMismatch;
        break;
      }
      // "The server MAY impose restrictions on the IP address ... 403 (Forbidden)." An exempt
      // endpoint's address may be permitted; ChannelBind and Send still check its port.
      if (!filter.allowsPermission(peer->address)) {
        ++counters.forbiddenPeers;
        failure = error::kForbidden;
        break;
      }
    }
    if (peers == 0) failure = error::kBadRequest;
    if (failure != 0) {
      sendError(client, request, failure, &auth);
      return;
    }
    // "If the request is valid, but the server is unable to satisfy the request due to some
    // capacity limit or similar, then a 508 (Insufficient Capacity) error is returned."
    std::vector<IpAddress> added;
    for (const Attribute& attribute : request) {
      if (attribute.type != attr::kXorPeerAddress) continue;
      const IpAddress ip = request.decodeXorAddress(attribute)->address;
      if (a.permission(ip) != nullptr || std::find(added.begin(), added.end(), ip) != added.end())
        continue;
      if (a.permissions.size() + added.size() >= options.maxPermissionsPerAllocation) {
        ++counters.quotaRejections;
        sendError(client, request, error::kInsufficientCapacity, &auth);
        return;
      }
      added.push_back(ip);
    }
    // "the server installs or refreshes a permission for the IP address contained in each
    // XOR-PEER-ADDRESS attribute ... The port portion of each attribute is ignored."
    for (const Attribute& attribute : request) {
      if (attribute.type != attr::kXorPeerAddress) continue;
      installPermission(a, request.decodeXorAddress(attribute)->address, now);
    }
    MessageBuilder builder = start(request, MessageClass::SuccessResponse);
    finishAndSend(builder, client, &auth);
  }

  void installPermission(Allocation& a, const IpAddress& peer, const Now& now) {
    const SteadyTime expires = now.steady + options.permissionLifetime;
    if (Permission* p = a.permission(peer)) {
      p->expires = expires;
      return;
    }
    a.permissions.push_back(Permission{peer, expires});
    ++counters.permissionsCreated;
  }

  // ---- RFC 8656 §11.2: receiving a ChannelBind request ----

  void onChannelBind(const FiveTuple& client, const Message& request, const Auth& auth,
                     Allocation& a, const Now& now) {
    // "The request contains both a CHANNEL-NUMBER and an XOR-PEER-ADDRESS attribute; the
    // channel number is in the range 0x4000 through 0x4FFF (inclusive)" else 400 (we take
    // RFC 5766's 0x7FFF as the upper bound, see kMaxChannel).
    const auto numberAttr = request.find(attr::kChannelNumber);
    const auto peerAttr = request.find(attr::kXorPeerAddress);
    const auto peer = peerAttr ? request.decodeXorAddress(*peerAttr)
                               : tl::unexpected(stun::DecodeError::WrongSize);
    const std::uint16_t number =
        numberAttr && numberAttr->value.size() == 4 ? read16(numberAttr->value.data()) : 0;
    if (!peer || number < kMinChannel || number > kMaxChannel) {
      sendError(client, request, error::kBadRequest, &auth);
      return;
    }
    // "If the value contained in the XOR-PEER-ADDRESS attribute's address family is not the
    // same as that of a relayed transport address for the allocation ... 443."
    if (a.relayFor(peer->address.family()) == nullptr) {
      sendError(client, request, error::kPeerAddressFamilyMismatch, &auth);
      return;
    }
    // "The channel number is not currently bound to a different transport address (same
    // transport address is OK); the transport address is not currently bound to a different
    // channel number." §12: after expiry both stay reserved for 5 more minutes.
    std::erase_if(a.channels,
                  [&](const Channel& c) { return c.expires + kChannelReuseDelay <= now.steady; });
    Channel* same = nullptr;
    for (Channel& channel : a.channels) {
      const bool numberMatches = channel.number == number;
      const bool peerMatches = channel.peer == *peer;
      if (numberMatches && peerMatches) {
        same = &channel;
      } else if (numberMatches || peerMatches) {
        sendError(client, request, error::kBadRequest, &auth);
        return;
      }
    }
    if (!filter.allowsEndpoint(*peer)) {
      ++counters.forbiddenPeers;
      sendError(client, request, error::kForbidden, &auth);
      return;
    }
    // Capacity: channels (live or reserved) and permissions are bounded per allocation.
    const bool needPermission = a.permission(peer->address) == nullptr;
    if ((same == nullptr && a.channels.size() >= options.maxPermissionsPerAllocation) ||
        (needPermission && a.permissions.size() >= options.maxPermissionsPerAllocation)) {
      ++counters.quotaRejections;
      sendError(client, request, error::kInsufficientCapacity, &auth);
      return;
    }
    // "the server creates or refreshes the channel binding ... The server also installs or
    // refreshes a permission for the IP address in the XOR-PEER-ADDRESS attribute."
    const SteadyTime expires = now.steady + options.channelLifetime;
    if (same != nullptr) {
      if (same->expires <= now.steady) ++counters.channelsBound;  // rebound after expiry
      same->expires = expires;
    } else {
      a.channels.push_back(Channel{number, *peer, expires});
      ++counters.channelsBound;
    }
    a.everHadChannel = true;
    installPermission(a, peer->address, now);
    MessageBuilder builder = start(request, MessageClass::SuccessResponse);
    finishAndSend(builder, client, &auth);
  }

  // ---- data path: no allocation, no exceptions, no logging ----

  // The allocation's bucket and this instance's total, both directions together.
  bool takeTokens(Allocation& a, std::size_t bytes, const Now& now) {
    if (!a.bandwidth.take(bytes, now.steady) || !totalBandwidth.take(bytes, now.steady)) {
      ++counters.droppedBandwidth;
      return false;
    }
    return true;
  }

  void toPeer(Allocation& a, const Endpoint& peer, Bytes payload, bool dontFragment,
              const Now& now) {
    const RelaySlot* relay = a.relayFor(peer.address.family());
    if (relay == nullptr) {
      ++counters.droppedNoPermission;
      return;
    }
    if (!takeTokens(a, payload.size(), now)) return;
    io.sendToPeer(relay->id, peer, payload, dontFragment);
    ++counters.packetsToPeer;
    counters.bytesToPeer += payload.size();
    a.bytesToPeer += payload.size();
  }

  // RFC 8656 §10.2: receiving a Send indication.
  void onSend(const FiveTuple& client, const Message& indication, const Now& now) {
    Allocation* a = find(client);
    if (a == nullptr) {
      ++counters.droppedNoPermission;
      return;
    }
    // RFC 8489 §6.3.2: an indication with unknown comprehension-required attributes is dropped.
    for (const Attribute& attribute : indication) {
      if (!knownInTurnRequest(attribute.type)) {
        ++counters.droppedMalformed;
        return;
      }
    }
    // "The Send indication MUST contain both an XOR-PEER-ADDRESS attribute and a DATA
    // attribute. If one of these attributes is missing or invalid, then the message is
    // discarded."
    const auto peerAttr = indication.find(attr::kXorPeerAddress);
    const auto dataAttr = indication.find(attr::kData);
    const auto peer = peerAttr ? indication.decodeXorAddress(*peerAttr)
                               : tl::unexpected(stun::DecodeError::WrongSize);
    if (!peer || !dataAttr) {
      ++counters.droppedMalformed;
      return;
    }
    // "if a value is not allowed, the server silently discards the Send indication."
    if (!filter.allowsEndpoint(*peer)) {
      ++counters.forbiddenPeers;
      return;
    }
    // "If no such permission exists, the message is discarded. Note that a Send indication
    // never causes the server to refresh the permission."
    if (!a->permitted(peer->address, now.steady)) {
      ++counters.droppedNoPermission;
      return;
    }
    const bool dontFragment = indication.find(attr::kDontFragment).has_value();
    toPeer(*a, *peer, dataAttr->value, dontFragment, now);
  }

  // RFC 8656 §12.6: receiving a ChannelData message from the client.
  void onChannelData(const FiveTuple& client, Bytes bytes, const Now& now) {
    // Header: channel number (16 bits), length (16 bits). Over UDP a datagram may carry padding
    // after the data (§12.5); it is ignored.
    if (bytes.size() < kChannelHeaderSize) {
      ++counters.droppedMalformed;
      return;
    }
    const std::uint16_t number = read16(bytes.data());
    const std::size_t length = read16(bytes.data() + 2);
    if (kChannelHeaderSize + length > bytes.size()) {
      ++counters.droppedMalformed;
      return;
    }
    Allocation* a = find(client);
    if (a == nullptr) {
      ++counters.droppedNoPermission;
      return;
    }
    // "If the ChannelData message is received on a channel that is not bound to any peer, then
    // the message is silently discarded."
    const Channel* channel = nullptr;
    for (const Channel& c : a->channels) {
      if (c.number == number) {
        channel = &c;
        break;
      }
    }
    if (channel == nullptr || channel->expires <= now.steady ||
        !a->permitted(channel->peer.address, now.steady)) {
      ++counters.droppedNoPermission;
      return;
    }
    toPeer(*a, channel->peer, bytes.subspan(kChannelHeaderSize, length), a->dontFragment, now);
  }

  // RFC 8656 §10.3 and §12.4: a datagram from a peer on a relay.
  void onPeerBytes(RelayId relay, const Endpoint& peer, Bytes payload, const Now& now) {
    const auto found = byRelay.find(relay);
    if (found == byRelay.end()) {
      ++counters.droppedNoPermission;
      return;
    }
    Allocation& a = *found->second;
    // "the server MUST check that a permission exists ... If no permission exists, the server
    // silently discards the UDP datagram."
    if (!a.permitted(peer.address, now.steady)) {
      ++counters.droppedNoPermission;
      return;
    }
    // A permission for an exempt endpoint's address admits that endpoint only: other ports of
    // a denied address must not reach the client either.
    if (!filter.admitsInbound(peer)) {
      ++counters.forbiddenPeers;
      return;
    }
    const Channel* channel = nullptr;
    for (const Channel& c : a.channels) {
      if (c.peer == peer && c.expires > now.steady) {
        channel = &c;
        break;
      }
    }
    if (!takeTokens(a, payload.size(), now)) return;
    Bytes message;
    if (channel != nullptr) {
      // §12.4: ChannelData; over a stream padded to a multiple of 4 (§12.5).
      if (payload.size() > 0xFFFF) {
        ++counters.droppedMalformed;
        return;
      }
      std::size_t size = kChannelHeaderSize + payload.size();
      data[0] = static_cast<std::uint8_t>(channel->number >> 8);
      data[1] = static_cast<std::uint8_t>(channel->number);
      data[2] = static_cast<std::uint8_t>(payload.size() >> 8);
      data[3] = static_cast<std::uint8_t>(payload.size());
      if (!payload.empty())
        std::memcpy(data.data() + kChannelHeaderSize, payload.data(), payload.size());
      if (isStream(a.client.transport)) {
        while (size % 4 != 0)
          data[size++] = 0;
      }
      message = Bytes(data.data(), size);
    } else {
      // §10.3: a Data indication with XOR-PEER-ADDRESS and DATA. It carries no integrity.
      stun::TransactionId id{};
      ++indicationCounter;
      for (int i = 0; i < 8; ++i)
        id[4 + i] = static_cast<std::uint8_t>(indicationCounter >> (8 * i));
      MessageBuilder builder(data, stun::messageType(method::kData, MessageClass::Indication), id);
      builder.addXorAddress(attr::kXorPeerAddress, peer).addAttribute(attr::kData, payload);
      const auto built = builder.finish();
      if (!built) {
        ++counters.droppedMalformed;
        return;
      }
      message = *built;
    }
    io.sendToClient(a.client, message);
    ++counters.packetsToClient;
    counters.bytesToClient += payload.size();
    a.bytesToClient += payload.size();
  }

  // ---- timers ----

  void expire(const Now& now) {
    for (auto it = allocations.begin(); it != allocations.end();) {
      Allocation& a = *it->second;
      if (a.expires <= now.steady) {
        const FiveTuple client = it->first;
        ++it;
        ++counters.allocationsExpired;
        removeAllocation(client, "expired");
        continue;
      }
      // RFC 8656 §9: permissions last permissionLifetime unless refreshed.
      std::erase_if(a.permissions, [&](const Permission& p) { return p.expires <= now.steady; });
      // §12: an expired channel keeps its number and peer reserved for 5 more minutes.
      std::erase_if(a.channels,
                    [&](const Channel& c) { return c.expires + kChannelReuseDelay <= now.steady; });
      ++it;
    }
  }

  ~Impl() {
    while (!allocations.empty()) {
      removeAllocation(allocations.begin()->first, "shutdown");
    }
  }
};

Server::Server(const Options& options, SharedState& shared, const PeerFilter& filter, RelayIo& io)
    : impl_(std::make_unique<Impl>(options, shared, filter, io)) {}

Server::~Server() = default;

void Server::onClientBytes(const FiveTuple& client, Bytes bytes, const Now& now) {
  impl_->onClientBytes(client, bytes, now);
}

void Server::onPeerBytes(RelayId relay, const Endpoint& peer, Bytes payload, const Now& now) {
  impl_->onPeerBytes(relay, peer, payload, now);
}

void Server::onClientClosed(const FiveTuple& client, const Now&) {
  // RFC 8656 §3.1: over TCP/TLS the allocation lives as long as the connection.
  if (impl_->find(client) == nullptr) return;
  ++impl_->counters.allocationsDeleted;
  impl_->removeAllocation(client, "transport closed");
}

void Server::expire(const Now& now) {
  impl_->expire(now);
}

void Server::setCredentials(std::vector<std::pair<std::string, std::string>> users,
                            std::vector<std::string> restSecrets) {
  impl_->credentials = detail::Credentials(impl_->options.realm, users, std::move(restSecrets));
}

const Counters& Server::counters() const {
  return impl_->counters;
}

std::size_t Server::allocationCount() const {
  return impl_->allocations.size();
}

bool Server::hasChannels(const FiveTuple& client) const {
  const auto* a = impl_->find(client);
  return a != nullptr && a->everHadChannel;
}

bool Server::hasAllocation(const FiveTuple& client) const {
  return impl_->find(client) != nullptr;
}

}  // namespace parley::turn
