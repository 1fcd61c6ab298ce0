// Writes a STUN message into a caller-provided buffer: no allocation. Overflow is sticky and
// reported by finish(), so a chain of add*() calls needs one check at the end.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <tl/expected.hpp>

#include <parley/base/endpoint.hpp>
#include <parley/stun/message.hpp>

namespace parley::stun {

enum class BuildError : std::uint8_t { BufferTooSmall, ValueTooLong };

class MessageBuilder {
 public:
  // RFC 8489 message: header with magic cookie and `transactionId`.
  MessageBuilder(std::span<std::uint8_t> buffer, std::uint16_t type,
                 std::span<const std::uint8_t, 12> transactionId);
  // RFC 3489 message: `legacyTransactionId` fills bytes 4..19 as the classic client sent them.
  static MessageBuilder classic(std::span<std::uint8_t> buffer, std::uint16_t type,
                                std::span<const std::uint8_t, 16> legacyTransactionId);

  // Appends type-length-value with zero padding to a multiple of 4 (RFC 8489 §14).
  MessageBuilder& addAttribute(std::uint16_t type, Bytes value);
  MessageBuilder& addText(std::uint16_t type, std::string_view text);
  MessageBuilder& addUint32(std::uint16_t type, std::uint32_t value);
  MessageBuilder& addAddress(std::uint16_t type, const Endpoint& endpoint);
  // XOR'ed with the magic cookie (and the transaction ID for IPv6), RFC 8489 §14.2.
  MessageBuilder& addXorAddress(std::uint16_t type, const Endpoint& endpoint);
  MessageBuilder& addErrorCode(int code, std::string_view reason);
  MessageBuilder& addErrorCode(int code) { return addErrorCode(code, error::defaultReason(code)); }
  MessageBuilder& addUnknownAttributes(std::span<const std::uint16_t> types);
  // RFC 8489 §14.5: HMAC-SHA1 over the message so far, length field covering this attribute.
  MessageBuilder& addMessageIntegrity(Bytes key);
  // RFC 8489 §14.6: HMAC-SHA256, full 32 bytes.
  MessageBuilder& addMessageIntegritySha256(Bytes key);
  // RFC 8489 §14.7: must be the last attribute.
  MessageBuilder& addFingerprint();

  bool ok() const { return !error_; }
  std::size_t size() const { return size_; }
  // The finished message, a prefix of the buffer.
  tl::expected<Bytes, BuildError> finish() const;

 private:
  MessageBuilder(std::span<std::uint8_t> buffer) : buffer_(buffer) {}
  std::uint8_t* reserve(std::uint16_t type, std::size_t valueSize);
  void setLength(std::size_t bodySize);

  std::span<std::uint8_t> buffer_;
  std::size_t size_ = 0;
  std::optional<BuildError> error_;
};

}  // namespace parley::stun
