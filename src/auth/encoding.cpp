#include <array>

#include <sodium.h>

#include <parley/auth/encoding.hpp>

#include "crypto.hpp"

namespace parley::auth {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::uint8_t kInvalid = 0xFF;

constexpr std::array<std::uint8_t, 256> makeDecodeTable() {
  std::array<std::uint8_t, 256> table{};
  for (auto& entry : table)
    entry = kInvalid;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<std::uint8_t>(kAlphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr std::array<std::uint8_t, 256> kDecode = makeDecodeTable();

}  // namespace

std::string randomToken(std::size_t bytes) {
  detail::ensureSodium();
  std::vector<std::uint8_t> random(bytes);
  if (!random.empty()) randombytes_buf(random.data(), random.size());
  std::string token = base64UrlEncode(random);
  sodium_memzero(random.data(), random.size());  // the token is a secret; leave no copy behind
  return token;
}

std::string base64UrlEncode(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group =
        (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(group >> 18) & 0x3F];
    out += kAlphabet[(group >> 12) & 0x3F];
    out += kAlphabet[(group >> 6) & 0x3F];
    out += kAlphabet[group & 0x3F];
  }
  // RFC 4648 §5 with §3.2's padding left out: 1 byte -> 2 characters, 2 bytes -> 3.
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t group = std::uint32_t{bytes[i]} << 16;
    out += kAlphabet[(group >> 18) & 0x3F];
    out += kAlphabet[(group >> 12) & 0x3F];
  } else if (rest == 2) {
    const std::uint32_t group =
        (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8);
    out += kAlphabet[(group >> 18) & 0x3F];
    out += kAlphabet[(group >> 12) & 0x3F];
    out += kAlphabet[(group >> 6) & 0x3F];
  }
  return out;
}

tl::expected<std::vector<std::uint8_t>, std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return tl::unexpected(std::string("base64url text cannot be 4n+1 characters long"));
  }
  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int bitCount = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t value = kDecode[static_cast<std::uint8_t>(text[i])];
    if (value == kInvalid) {
      return tl::unexpected("not a base64url character at offset " + std::to_string(i));
    }
    bits = (bits << 6) | value;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      out.push_back(static_cast<std::uint8_t>(bits >> bitCount));
      bits &= (1u << bitCount) - 1;
    }
  }
  // RFC 4648 §3.5: the unused low bits of the last character must be zero; requiring it makes
  // the encoding canonical, so a token cannot be altered without changing its bytes.
  if (bits != 0) return tl::unexpected(std::string("non-zero unused bits at the end of base64url"));
  return out;
}

}  // namespace parley::auth
