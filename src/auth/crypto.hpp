// Private helpers of parley::auth: one-shot HMACs (OpenSSL), standard base64, libsodium set-up
// and UTF-8 checks. Nothing here is on a per-packet path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace parley::auth::detail {

// Calls sodium_init() once per process (thread-safe); throws std::runtime_error if it fails.
void ensureSodium();

std::array<std::uint8_t, 20> hmacSha1(std::span<const std::uint8_t> key,
                                      std::span<const std::uint8_t> data);
std::array<std::uint8_t, 32> hmacSha256(std::span<const std::uint8_t> key,
                                        std::span<const std::uint8_t> data);

// RFC 4648 §4 base64 with padding.
std::string base64(std::span<const std::uint8_t> bytes);

// Equal sizes and contents, in time that depends only on the sizes (CRYPTO_memcmp).
bool constantTimeEqual(std::string_view a, std::string_view b);

// Number of code points in `text` when it is well-formed UTF-8 (RFC 3629 §4: no overlong forms,
// no surrogates, nothing above U+10FFFF), else nullopt.
std::optional<std::size_t> utf8Length(std::string_view text);

inline std::span<const std::uint8_t> asBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace parley::auth::detail
