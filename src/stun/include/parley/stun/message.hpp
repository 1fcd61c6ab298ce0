// STUN messages (RFC 8489) as read-only views over caller-owned bytes.
// No sockets, no clock, no allocation: parse() validates the framing once, and the typed
// accessors below decode single attribute values on demand.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <tl/expected.hpp>

#include <parley/base/endpoint.hpp>

namespace parley::stun {

using Bytes = std::span<const std::uint8_t>;

// RFC 8489 §5: fixed header, 0x2112A442 in bytes 4..7, 96-bit transaction ID.
inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::size_t kAttributeHeaderSize = 4;
// RFC 8489 §14.7: FINGERPRINT is CRC-32 of the message XOR 0x5354554e ("STUN").
inline constexpr std::uint32_t kFingerprintXor = 0x5354554e;

using TransactionId = std::array<std::uint8_t, 12>;

namespace method {
inline constexpr std::uint16_t kBinding = 0x001;   // RFC 8489
inline constexpr std::uint16_t kAllocate = 0x003;  // RFC 8656
inline constexpr std::uint16_t kRefresh = 0x004;
inline constexpr std::uint16_t kSend = 0x006;
inline constexpr std::uint16_t kData = 0x007;
inline constexpr std::uint16_t kCreatePermission = 0x008;
inline constexpr std::uint16_t kChannelBind = 0x009;
inline constexpr std::uint16_t kConnect = 0x00A;  // RFC 6062
inline constexpr std::uint16_t kConnectionBind = 0x00B;
inline constexpr std::uint16_t kConnectionAttempt = 0x00C;
}  // namespace method

enum class MessageClass : std::uint8_t {
  Request = 0b00,
  Indication = 0b01,
  SuccessResponse = 0b10,
  ErrorResponse = 0b11,
};

// RFC 8489 §5: the 12 method bits and 2 class bits are interleaved as M11..M7 C1 M6..M4 C0 M3..M0.
constexpr std::uint16_t messageType(std::uint16_t method, MessageClass cls) {
  const auto c = static_cast<std::uint16_t>(cls);
  return static_cast<std::uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) |
                                    ((method & 0x0F80) << 2) | ((c & 0b01) << 4) |
                                    ((c & 0b10) << 7));
}
constexpr std::uint16_t methodOf(std::uint16_t type) {
  return static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) |
                                    ((type & 0x3E00) >> 2));
}
constexpr MessageClass classOf(std::uint16_t type) {
  return static_cast<MessageClass>(((type >> 4) & 0b01) | ((type >> 7) & 0b10));
}

namespace attr {
// Comprehension-required range 0x0000-0x7FFF.
inline constexpr std::uint16_t kMappedAddress = 0x0001;
inline constexpr std::uint16_t kChangeRequest = 0x0003;   // RFC 5780 (and RFC 3489)
inline constexpr std::uint16_t kSourceAddress = 0x0004;   // RFC 3489 only
inline constexpr std::uint16_t kChangedAddress = 0x0005;  // RFC 3489 only
inline constexpr std::uint16_t kUsername = 0x0006;
inline constexpr std::uint16_t kMessageIntegrity = 0x0008;
inline constexpr std::uint16_t kErrorCode = 0x0009;
inline constexpr std::uint16_t kUnknownAttributes = 0x000A;
inline constexpr std::uint16_t kChannelNumber = 0x000C;  // RFC 8656
inline constexpr std::uint16_t kLifetime = 0x000D;
inline constexpr std::uint16_t kXorPeerAddress = 0x0012;
inline constexpr std::uint16_t kData = 0x0013;
inline constexpr std::uint16_t kRealm = 0x0014;
inline constexpr std::uint16_t kNonce = 0x0015;
inline constexpr std::uint16_t kXorRelayedAddress = 0x0016;
inline constexpr std::uint16_t kRequestedAddressFamily = 0x0017;
inline constexpr std::uint16_t kEvenPort = 0x0018;
inline constexpr std::uint16_t kRequestedTransport = 0x0019;
inline constexpr std::uint16_t kDontFragment = 0x001A;
inline constexpr std::uint16_t kMessageIntegritySha256 = 0x001C;
inline constexpr std::uint16_t kPasswordAlgorithm = 0x001D;
inline constexpr std::uint16_t kUserhash = 0x001E;
inline constexpr std::uint16_t kXorMappedAddress = 0x0020;
inline constexpr std::uint16_t kReservationToken = 0x0022;
inline constexpr std::uint16_t kPriority = 0x0024;  // RFC 8445
inline constexpr std::uint16_t kUseCandidate = 0x0025;
inline constexpr std::uint16_t kPadding = 0x0026;       // RFC 5780
inline constexpr std::uint16_t kResponsePort = 0x0027;  // RFC 5780
inline constexpr std::uint16_t kConnectionId = 0x002A;  // RFC 6062
// Comprehension-optional range 0x8000-0xFFFF.
inline constexpr std::uint16_t kAdditionalAddressFamily = 0x8000;
inline constexpr std::uint16_t kAddressErrorCode = 0x8001;
inline constexpr std::uint16_t kPasswordAlgorithms = 0x8002;
inline constexpr std::uint16_t kAlternateDomain = 0x8003;
inline constexpr std::uint16_t kIcmp = 0x8004;
inline constexpr std::uint16_t kSoftware = 0x8022;
inline constexpr std::uint16_t kAlternateServer = 0x8023;
inline constexpr std::uint16_t kFingerprint = 0x8028;
inline constexpr std::uint16_t kIceControlled = 0x8029;
inline constexpr std::uint16_t kIceControlling = 0x802A;
inline constexpr std::uint16_t kResponseOrigin = 0x802B;  // RFC 5780
inline constexpr std::uint16_t kOtherAddress = 0x802C;    // RFC 5780

constexpr bool isComprehensionRequired(std::uint16_t type) {
  return type < 0x8000;
}
}  // namespace attr

// RFC 8489 §14.12 and RFC 8656 §18: error codes the servers send.
namespace error {
inline constexpr int kTryAlternate = 300;
inline constexpr int kBadRequest = 400;
inline constexpr int kUnauthenticated = 401;
inline constexpr int kForbidden = 403;
inline constexpr int kUnknownAttribute = 420;
inline constexpr int kAllocationMismatch = 437;
inline constexpr int kStaleNonce = 438;
inline constexpr int kAddressFamilyNotSupported = 440;
inline constexpr int kWrongCredentials = 441;
inline constexpr int kUnsupportedTransportProtocol = 442;
inline constexpr int kPeerAddressFamilyMismatch = 443;
inline constexpr int kAllocationQuotaReached = 486;
inline constexpr int kServerError = 500;
inline constexpr int kInsufficientCapacity = 508;
// The reason phrase the RFCs suggest for a code; "" for codes we do not know.
std::string_view defaultReason(int code);
}  // namespace error

enum class ParseError : std::uint8_t {
  TooShort,            // fewer than 20 bytes
  NotStun,             // the two most significant bits are not zero
  BadLength,           // length field not a multiple of 4 or not the datagram's size
  TruncatedAttribute,  // an attribute runs past the end of the message
  AttributeAfterFingerprint,
};
std::string_view toString(ParseError error);

enum class DecodeError : std::uint8_t {
  WrongSize,   // value length not what the attribute needs
  BadFamily,   // address family neither 0x01 nor 0x02
  OutOfRange,  // e.g. ERROR-CODE class outside 3..6, string too long
};

struct Attribute {
  std::uint16_t type = 0;
  Bytes value;             // without padding
  std::size_t offset = 0;  // of the attribute header from the start of the message
};

class Message;

// Iterates attributes in wire order. Following RFC 8489 §14.5/§14.6, attributes after
// MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are skipped, and
// attributes after MESSAGE-INTEGRITY-SHA256 other than FINGERPRINT likewise.
class AttributeIterator {
 public:
  using value_type = Attribute;
  using difference_type = std::ptrdiff_t;
  AttributeIterator() = default;
  AttributeIterator(Bytes message, std::size_t offset);
  const Attribute& operator*() const { return current_; }
  const Attribute* operator->() const { return &current_; }
  AttributeIterator& operator++();
  AttributeIterator operator++(int) {
    auto copy = *this;
    ++*this;
    return copy;
  }
  friend bool operator==(const AttributeIterator& a, const AttributeIterator& b) {
    return a.offset_ == b.offset_;
  }

 private:
  void load();
  Bytes message_;
  std::size_t offset_ = 0;
  Attribute current_;
  bool afterIntegrity_ = false;
  bool afterIntegritySha256_ = false;
};

class Message {
 public:
  // Validates the header and walks every attribute once; the bytes must outlive the view.
  // RFC 3489 ("classic") messages, without the magic cookie, parse too: see isClassic().
  static tl::expected<Message, ParseError> parse(Bytes bytes);

  std::uint16_t type() const { return type_; }
  std::uint16_t method() const { return methodOf(type_); }
  MessageClass messageClass() const { return classOf(type_); }
  // RFC 8489 §11 (and RFC 5389 §12): no magic cookie means an RFC 3489 client.
  bool isClassic() const { return classic_; }
  // The 96-bit transaction ID of RFC 8489.
  std::span<const std::uint8_t, 12> transactionId() const {
    return std::span<const std::uint8_t, 12>(bytes_.data() + 8, 12);
  }
  // Bytes 4..19: the magic cookie and transaction ID, or RFC 3489's 128-bit transaction ID.
  std::span<const std::uint8_t, 16> legacyTransactionId() const {
    return std::span<const std::uint8_t, 16>(bytes_.data() + 4, 16);
  }
  Bytes bytes() const { return bytes_; }

  AttributeIterator begin() const { return {bytes_, kHeaderSize}; }
  AttributeIterator end() const { return {bytes_, bytes_.size()}; }
  // The first attribute of `type` that counts (see AttributeIterator).
  std::optional<Attribute> find(std::uint16_t type) const;

  // Typed decoders. Each checks the value's size and ranges.
  // MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, ALTERNATE-SERVER, SOURCE/CHANGED-ADDRESS.
  static tl::expected<Endpoint, DecodeError> decodeAddress(const Attribute& attribute);
  // XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS (RFC 8489 §14.2).
  tl::expected<Endpoint, DecodeError> decodeXorAddress(const Attribute& attribute) const;

 private:
  Bytes bytes_;
  std::uint16_t type_ = 0;
  bool classic_ = false;
};

struct ErrorCodeValue {
  int code = 0;             // 300..699
  std::string_view reason;  // UTF-8, at most 763 bytes
};

// Attribute value decoders that need nothing but the value.
tl::expected<ErrorCodeValue, DecodeError> decodeErrorCode(const Attribute& attribute);
tl::expected<std::uint32_t, DecodeError> decodeUint32(const Attribute& attribute);
// USERNAME (< 513 bytes), REALM, NONCE, SOFTWARE (< 763 bytes): bounds from RFC 8489 §14.
tl::expected<std::string_view, DecodeError> decodeText(const Attribute& attribute);

// UNKNOWN-ATTRIBUTES: a list of 16-bit types.
class AttributeTypeList {
 public:
  explicit AttributeTypeList(Bytes value) : value_(value) {}
  std::size_t size() const { return value_.size() / 2; }
  std::uint16_t operator[](std::size_t i) const {
    return static_cast<std::uint16_t>(value_[2 * i] << 8 | value_[2 * i + 1]);
  }

 private:
  Bytes value_;
};
tl::expected<AttributeTypeList, DecodeError> decodeUnknownAttributes(const Attribute& attribute);

// RFC 8489 §18.5: password algorithm numbers.
namespace algorithm {
inline constexpr std::uint16_t kMd5 = 0x0001;
inline constexpr std::uint16_t kSha256 = 0x0002;
}  // namespace algorithm

struct PasswordAlgorithm {
  std::uint16_t algorithm = 0;
  Bytes parameters;
};
// PASSWORD-ALGORITHM (one entry).
tl::expected<PasswordAlgorithm, DecodeError> decodePasswordAlgorithm(const Attribute& attribute);
// PASSWORD-ALGORITHMS: calls `visit(PasswordAlgorithm)` for each entry, in order.
// Returns an error without calling `visit` when the list is malformed.
template <typename Visitor>
tl::expected<void, DecodeError> forEachPasswordAlgorithm(const Attribute& attribute,
                                                         Visitor&& visit);

// RFC 5780 §7.2 CHANGE-REQUEST flags.
inline constexpr std::uint32_t kChangeIp = 0x04;
inline constexpr std::uint32_t kChangePort = 0x02;

// ---- implementation of the template above ----
namespace detail {
tl::expected<std::size_t, DecodeError> passwordAlgorithmAt(Bytes value, std::size_t offset,
                                                           PasswordAlgorithm& out);
}
template <typename Visitor>
tl::expected<void, DecodeError> forEachPasswordAlgorithm(const Attribute& attribute,
                                                         Visitor&& visit) {
  PasswordAlgorithm entry;
  for (std::size_t offset = 0; offset < attribute.value.size();) {
    auto next = detail::passwordAlgorithmAt(attribute.value, offset, entry);
    if (!next) return tl::unexpected(next.error());
    offset = *next;
  }
  for (std::size_t offset = 0; offset < attribute.value.size();) {
    offset = *detail::passwordAlgorithmAt(attribute.value, offset, entry);
    visit(entry);
  }
  return {};
}

}  // namespace parley::stun
