// One-shot HMAC and base64 for the TURN control path (nonces, REST passwords). Not used per
// packet: the STUN library's reusable contexts do the per-message integrity work.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace parley::turn::detail {

std::array<std::uint8_t, 20> hmacSha1(std::span<const std::uint8_t> key,
                                      std::span<const std::uint8_t> data);
std::array<std::uint8_t, 32> hmacSha256(std::span<const std::uint8_t> key,
                                        std::span<const std::uint8_t> data);
// RFC 4648 base64 with padding.
std::string base64(std::span<const std::uint8_t> bytes);
// Decodes exactly `out.size()` bytes from `text` (which must be 4 * ceil(size / 3) characters,
// unpadded when size % 3 == 0). False on any other length or character.
bool unbase64(std::string_view text, std::span<std::uint8_t> out);

inline std::span<const std::uint8_t> asBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace parley::turn::detail
