#include <algorithm>
#include <cstring>

#include <parley/stun/builder.hpp>

#include "hmac.hpp"
#include "wire.hpp"

namespace parley::stun {

using wire::padded;
using wire::write16;
using wire::write32;

MessageBuilder::MessageBuilder(std::span<std::uint8_t> buffer, std::uint16_t type,
                               std::span<const std::uint8_t, 12> transactionId)
    : buffer_(buffer) {
  if (buffer_.size() < kHeaderSize) {
    error_ = BuildError::BufferTooSmall;
    return;
  }
  write16(buffer_.data(), type);
  write16(buffer_.data() + 2, 0);
  write32(buffer_.data() + 4, kMagicCookie);
  std::copy(transactionId.begin(), transactionId.end(), buffer_.data() + 8);
  size_ = kHeaderSize;
}

MessageBuilder MessageBuilder::classic(std::span<std::uint8_t> buffer, std::uint16_t type,
                                       std::span<const std::uint8_t, 16> legacyTransactionId) {
  MessageBuilder builder(buffer);
  if (buffer.size() < kHeaderSize) {
    builder.error_ = BuildError::BufferTooSmall;
    return builder;
  }
  write16(buffer.data(), type);
  write16(buffer.data() + 2, 0);
  std::copy(legacyTransactionId.begin(), legacyTransactionId.end(), buffer.data() + 4);
  builder.size_ = kHeaderSize;
  return builder;
}

void MessageBuilder::setLength(std::size_t bodySize) {
  write16(buffer_.data() + 2, static_cast<std::uint16_t>(bodySize));
}

std::uint8_t* MessageBuilder::reserve(std::uint16_t type, std::size_t valueSize) {
  if (error_) return nullptr;
  const std::size_t total = kAttributeHeaderSize + padded(valueSize);
  // The whole message length must fit the 16-bit length field too.
  if (valueSize > 0xFFFF || size_ - kHeaderSize + total > 0xFFFF) {
    error_ = BuildError::ValueTooLong;
    return nullptr;
  }
  if (total > buffer_.size() - size_) {
    error_ = BuildError::BufferTooSmall;
    return nullptr;
  }
  std::uint8_t* p = buffer_.data() + size_;
  write16(p, type);
  write16(p + 2, static_cast<std::uint16_t>(valueSize));
  // Padding bytes are zero on the wire, whatever the buffer held before.
  std::memset(p + kAttributeHeaderSize + valueSize, 0, padded(valueSize) - valueSize);
  size_ += total;
  setLength(size_ - kHeaderSize);
  return p + kAttributeHeaderSize;
}

MessageBuilder& MessageBuilder::addAttribute(std::uint16_t type, Bytes value) {
  if (std::uint8_t* p = reserve(type, value.size())) {
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
  }
  return *this;
}

MessageBuilder& MessageBuilder::addText(std::uint16_t type, std::string_view text) {
  return addAttribute(type, Bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

MessageBuilder& MessageBuilder::addUint32(std::uint16_t type, std::uint32_t value) {
  if (std::uint8_t* p = reserve(type, 4)) write32(p, value);
  return *this;
}

MessageBuilder& MessageBuilder::addAddress(std::uint16_t type, const Endpoint& endpoint) {
  const Bytes address = endpoint.address.bytes();
  if (std::uint8_t* p = reserve(type, 4 + address.size())) {
    p[0] = 0;
    p[1] = endpoint.address.isV4() ? 0x01 : 0x02;
    write16(p + 2, endpoint.port);
    std::memcpy(p + 4, address.data(), address.size());
  }
  return *this;
}

MessageBuilder& MessageBuilder::addXorAddress(std::uint16_t type, const Endpoint& endpoint) {
  const Bytes address = endpoint.address.bytes();
  if (std::uint8_t* p = reserve(type, 4 + address.size())) {
    // RFC 8489 §14.2: the mask is the magic cookie followed by the transaction ID, which are
    // exactly bytes 4..19 of this message's header.
    const std::uint8_t* mask = buffer_.data() + 4;
    p[0] = 0;
    p[1] = endpoint.address.isV4() ? 0x01 : 0x02;
    write16(p + 2, endpoint.port ^ static_cast<std::uint16_t>(kMagicCookie >> 16));
    for (std::size_t i = 0; i < address.size(); ++i)
      p[4 + i] = address[i] ^ mask[i];
  }
  return *this;
}

MessageBuilder& MessageBuilder::addErrorCode(int code, std::string_view reason) {
  if (code < 300 || code > 699) {
    error_ = BuildError::ValueTooLong;
    return *this;
  }
  if (std::uint8_t* p = reserve(attr::kErrorCode, 4 + reason.size())) {
    p[0] = 0;
    p[1] = 0;
    p[2] = static_cast<std::uint8_t>(code / 100);
    p[3] = static_cast<std::uint8_t>(code % 100);
    if (!reason.empty()) std::memcpy(p + 4, reason.data(), reason.size());
  }
  return *this;
}

MessageBuilder& MessageBuilder::addUnknownAttributes(std::span<const std::uint16_t> types) {
  if (std::uint8_t* p = reserve(attr::kUnknownAttributes, 2 * types.size())) {
    for (std::size_t i = 0; i < types.size(); ++i)
      write16(p + 2 * i, types[i]);
  }
  return *this;
}

MessageBuilder& MessageBuilder::addMessageIntegrity(Bytes key) {
  const std::size_t start = size_;
  // reserve() sets the header length to include this attribute, as §14.5 demands for the HMAC.
  if (std::uint8_t* p = reserve(attr::kMessageIntegrity, 20)) {
    hmac::sha1(key, {buffer_.data(), start}, {}, std::span<std::uint8_t, 20>(p, 20));
  }
  return *this;
}

MessageBuilder& MessageBuilder::addMessageIntegritySha256(Bytes key) {
  const std::size_t start = size_;
  if (std::uint8_t* p = reserve(attr::kMessageIntegritySha256, 32)) {
    hmac::sha256(key, {buffer_.data(), start}, {}, std::span<std::uint8_t, 32>(p, 32));
  }
  return *this;
}

MessageBuilder& MessageBuilder::addFingerprint() {
  const std::size_t start = size_;
  if (std::uint8_t* p = reserve(attr::kFingerprint, 4)) {
    write32(p, fingerprintOf({buffer_.data(), start}));
  }
  return *this;
}

tl::expected<Bytes, BuildError> MessageBuilder::finish() const {
  if (error_) return tl::unexpected(*error_);
  return Bytes(buffer_.data(), size_);
}

}  // namespace parley::stun
