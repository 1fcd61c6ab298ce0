#include "crypto.hpp"
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

namespace parley::auth::detail {

void ensureSodium() {
  // sodium_init() is itself thread-safe and idempotent; the static only saves the repeated call
  // and turns a failure (no entropy source) into one exception per call site.
  static const int status = sodium_init();
  if (status < 0) throw std::runtime_error("libsodium could not be initialised");
}

namespace {

template <std::size_t Size>
std::array<std::uint8_t, Size> hmac(const EVP_MD* digest, std::span<const std::uint8_t> key,
                                    std::span<const std::uint8_t> data) {
  std::array<std::uint8_t, Size> out{};
  unsigned int size = 0;
  // OpenSSL wants non-null pointers even for empty input.
  static const std::uint8_t kEmpty = 0;
  HMAC(digest, key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
       data.empty() ? &kEmpty : data.data(), data.size(), out.data(), &size);
  return out;
}

}  // namespace

std::array<std::uint8_t, 20> hmacSha1(std::span<const std::uint8_t> key,
                                      std::span<const std::uint8_t> data) {
  return hmac<20>(EVP_sha1(), key, data);
}

std::array<std::uint8_t, 32> hmacSha256(std::span<const std::uint8_t> key,
                                        std::span<const std::uint8_t> data) {
  return hmac<32>(EVP_sha256(), key, data);
}

std::string base64(std::span<const std::uint8_t> bytes) {
  // EVP_EncodeBlock writes 4 characters per started 3 bytes plus a terminating NUL.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                      static_cast<int>(bytes.size()));
  out.resize(written > 0 ? static_cast<std::size_t>(written) : 0);
  return out;
}

bool constantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::size_t> utf8Length(std::string_view text) {
  std::size_t codePoints = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<std::uint8_t>(text[i]);
    std::size_t continuation = 0;
    std::uint32_t value = 0;
    std::uint32_t smallest = 0;  // below this the sequence is overlong
    if (lead < 0x80) {
      value = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      continuation = 1;
      value = lead & 0x1F;
      smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      continuation = 2;
      value = lead & 0x0F;
      smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      continuation = 3;
      value = lead & 0x07;
      smallest = 0x10000;
    } else {
      return std::nullopt;  // a continuation byte without a lead, or 0xF8..0xFF
    }
    if (continuation >= text.size() - i) return std::nullopt;  // truncated sequence
    for (std::size_t k = 1; k <= continuation; ++k) {
      const auto byte = static_cast<std::uint8_t>(text[i + k]);
      if ((byte & 0xC0) != 0x80) return std::nullopt;
      value = (value << 6) | (byte & 0x3F);
    }
    if (value < smallest || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
      return std::nullopt;
    }
    i += continuation + 1;
    ++codePoints;
  }
  return codePoints;
}

}  // namespace parley::auth::detail
