#include <algorithm>

#include <parley/stun/message.hpp>

#include "wire.hpp"

namespace parley::stun {

using wire::padded;
using wire::read16;
using wire::read32;

namespace {
// RFC 8489 §14.3 and §14.9-14.10, 14.14: length limits of the text attributes, in bytes.
constexpr std::size_t kMaxUsername = 512;
constexpr std::size_t kMaxText = 763;
constexpr std::uint8_t kFamilyV4 = 0x01;
constexpr std::uint8_t kFamilyV6 = 0x02;
}  // namespace

std::string_view toString(ParseError error) {
  switch (error) {
    case ParseError::TooShort:
      return "shorter than a STUN header";
    case ParseError::NotStun:
      return "not a STUN message";
    case ParseError::BadLength:
      return "length field does not match";
    case ParseError::TruncatedAttribute:
      return "attribute runs past the end";
    case ParseError::AttributeAfterFingerprint:
      return "attribute after FINGERPRINT";
  }
  return "unknown parse error";
}

std::string_view error::defaultReason(int code) {
  switch (code) {
    case kTryAlternate:
      return "Try Alternate";
    case kBadRequest:
      return "Bad Request";
    case kUnauthenticated:
      return "Unauthenticated";
    case kForbidden:
      return "Forbidden";
    case kUnknownAttribute:
      return "Unknown Attribute";
    case kAllocationMismatch:
      return "Allocation Mismatch";
    case kStaleNonce:
      return "Stale Nonce";
    case kAddressFamilyNotSupported:
      return "Address Family not Supported";
    case kWrongCredentials:
      return "Wrong Credentials";
    case kUnsupportedTransportProtocol:
      return "Unsupported Transport Protocol";
    case kPeerAddressFamilyMismatch:
      return "Peer Address Family Mismatch";
    case kAllocationQuotaReached:
      return "Allocation Quota Reached";
    case kServerError:
      return "Server Error";
    case kInsufficientCapacity:
      return "Insufficient Capacity";
    default:
      return "";
  }
}

AttributeIterator::AttributeIterator(Bytes message, std::size_t offset)
    : message_(message), offset_(offset) {
  load();
}

void AttributeIterator::load() {
  // Message::parse already checked that every attribute fits, so no bounds checks here.
  while (offset_ + kAttributeHeaderSize <= message_.size()) {
    const std::uint8_t* p = message_.data() + offset_;
    const std::uint16_t type = read16(p);
    const std::uint16_t length = read16(p + 2);
    current_ = Attribute{type, message_.subspan(offset_ + kAttributeHeaderSize, length), offset_};
    const bool ignored =
        (afterIntegritySha256_ && type != attr::kFingerprint) ||
        (afterIntegrity_ && type != attr::kMessageIntegritySha256 && type != attr::kFingerprint);
    if (!ignored) return;
    offset_ += kAttributeHeaderSize + padded(length);
  }
  offset_ = message_.size();
}

AttributeIterator& AttributeIterator::operator++() {
  if (current_.type == attr::kMessageIntegrity) afterIntegrity_ = true;
  if (current_.type == attr::kMessageIntegritySha256) afterIntegritySha256_ = true;
  offset_ += kAttributeHeaderSize + padded(current_.value.size());
  load();
  return *this;
}

tl::expected<Message, ParseError> Message::parse(Bytes bytes) {
  if (bytes.size() < kHeaderSize) return tl::unexpected(ParseError::TooShort);
  if ((bytes[0] & 0xC0) != 0) return tl::unexpected(ParseError::NotStun);
  const std::size_t length = read16(bytes.data() + 2);
  if (length % 4 != 0 || length + kHeaderSize != bytes.size()) {
    return tl::unexpected(ParseError::BadLength);
  }
  bool seenFingerprint = false;
  for (std::size_t offset = kHeaderSize; offset < bytes.size();) {
    if (seenFingerprint) return tl::unexpected(ParseError::AttributeAfterFingerprint);
    const std::uint8_t* p = bytes.data() + offset;
    const std::size_t valueSize = read16(p + 2);
    if (kAttributeHeaderSize + padded(valueSize) > bytes.size() - offset) {
      return tl::unexpected(ParseError::TruncatedAttribute);
    }
    seenFingerprint = read16(p) == attr::kFingerprint;
    offset += kAttributeHeaderSize + padded(valueSize);
  }
  Message message;
  message.bytes_ = bytes;
  message.type_ = read16(bytes.data());
  message.classic_ = read32(bytes.data() + 4) != kMagicCookie;
  return message;
}

std::optional<Attribute> Message::find(std::uint16_t type) const {
  for (const Attribute& attribute : *this) {
    if (attribute.type == type) return attribute;
  }
  return std::nullopt;
}

tl::expected<Endpoint, DecodeError> Message::decodeAddress(const Attribute& attribute) {
  // RFC 8489 §14.1: 0x00, family, port, address (4 or 16 bytes).
  const Bytes v = attribute.value;
  if (v.size() < 4) return tl::unexpected(DecodeError::WrongSize);
  Endpoint endpoint;
  endpoint.port = read16(v.data() + 2);
  if (v[1] == kFamilyV4) {
    if (v.size() != 8) return tl::unexpected(DecodeError::WrongSize);
    endpoint.address = IpAddress::v4(v.subspan<4, 4>());
  } else if (v[1] == kFamilyV6) {
    if (v.size() != 20) return tl::unexpected(DecodeError::WrongSize);
    endpoint.address = IpAddress::v6(v.subspan<4, 16>());
  } else {
    return tl::unexpected(DecodeError::BadFamily);
  }
  return endpoint;
}

tl::expected<Endpoint, DecodeError> Message::decodeXorAddress(const Attribute& attribute) const {
  auto plain = decodeAddress(attribute);
  if (!plain) return plain;
  // RFC 8489 §14.2: port XOR the cookie's top 16 bits; address XOR cookie (+ transaction ID).
  const std::uint8_t* mask = bytes_.data() + 4;  // magic cookie followed by transaction ID
  plain->port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
  std::array<std::uint8_t, 16> address{};
  const Bytes raw = plain->address.bytes();
  for (std::size_t i = 0; i < raw.size(); ++i)
    address[i] = raw[i] ^ mask[i];
  plain->address = plain->address.isV4()
                       ? IpAddress::v4(std::span<const std::uint8_t, 4>(address.data(), 4))
                       : IpAddress::v6(address);
  return plain;
}

tl::expected<ErrorCodeValue, DecodeError> decodeErrorCode(const Attribute& attribute) {
  // RFC 8489 §14.8: 21 reserved bits, class (3 bits, 3..6), number (0..99), reason phrase.
  const Bytes v = attribute.value;
  if (v.size() < 4) return tl::unexpected(DecodeError::WrongSize);
  const int cls = v[2] & 0x07;
  const int number = v[3];
  if (cls < 3 || cls > 6 || number > 99) return tl::unexpected(DecodeError::OutOfRange);
  if (v.size() - 4 > kMaxText) return tl::unexpected(DecodeError::OutOfRange);
  return ErrorCodeValue{
      cls * 100 + number,
      std::string_view(reinterpret_cast<const char*>(v.data() + 4), v.size() - 4)};
}

tl::expected<std::uint32_t, DecodeError> decodeUint32(const Attribute& attribute) {
  if (attribute.value.size() != 4) return tl::unexpected(DecodeError::WrongSize);
  return read32(attribute.value.data());
}

tl::expected<std::string_view, DecodeError> decodeText(const Attribute& attribute) {
  const std::size_t limit = attribute.type == attr::kUsername ? kMaxUsername : kMaxText;
  if (attribute.value.size() > limit) return tl::unexpected(DecodeError::OutOfRange);
  return std::string_view(reinterpret_cast<const char*>(attribute.value.data()),
                          attribute.value.size());
}

tl::expected<AttributeTypeList, DecodeError> decodeUnknownAttributes(const Attribute& attribute) {
  if (attribute.value.size() % 2 != 0) return tl::unexpected(DecodeError::WrongSize);
  return AttributeTypeList(attribute.value);
}

namespace detail {
tl::expected<std::size_t, DecodeError> passwordAlgorithmAt(Bytes value, std::size_t offset,
                                                           PasswordAlgorithm& out) {
  // RFC 8489 §14.11/14.12: algorithm (16 bits), parameters length (16 bits), parameters padded.
  if (value.size() - offset < 4) return tl::unexpected(DecodeError::WrongSize);
  const std::size_t paramsSize = read16(value.data() + offset + 2);
  if (padded(paramsSize) > value.size() - offset - 4) return tl::unexpected(DecodeError::WrongSize);
  out.algorithm = read16(value.data() + offset);
  out.parameters = value.subspan(offset + 4, paramsSize);
  return offset + 4 + padded(paramsSize);
}
}  // namespace detail

tl::expected<PasswordAlgorithm, DecodeError> decodePasswordAlgorithm(const Attribute& attribute) {
  PasswordAlgorithm entry;
  auto end = detail::passwordAlgorithmAt(attribute.value, 0, entry);
  if (!end) return tl::unexpected(end.error());
  if (*end != attribute.value.size()) return tl::unexpected(DecodeError::WrongSize);
  return entry;
}

}  // namespace parley::stun
