// Random identifiers and base64url (RFC 4648 §5), the alphabet every token, cookie value and id
// of the web platform is written in: safe in URLs, fragments and cookies without escaping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace parley::auth {

// `bytes` random bytes from libsodium's CSPRNG, base64url without padding (32 bytes -> 43 chars).
std::string randomToken(std::size_t bytes = 32);

// RFC 4648 §5 base64url without padding ("=" is never written).
std::string base64UrlEncode(std::span<const std::uint8_t> bytes);

// Strict inverse of base64UrlEncode: rejects padding, characters outside the alphabet, a length
// of 4n+1, and non-zero unused bits in the last character (so every byte string has exactly one
// accepted encoding). The error names the problem.
tl::expected<std::vector<std::uint8_t>, std::string> base64UrlDecode(std::string_view text);

}  // namespace parley::auth
