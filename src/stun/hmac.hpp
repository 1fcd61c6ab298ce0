// HMAC and CRC helpers private to the STUN library. The HMAC contexts are per thread and
// reused, so computing integrity costs no allocation after a thread's first message.
#pragma once

#include <cstdint>
#include <span>

namespace parley::stun {

namespace hmac {
// HMAC over `first` then `second` (the header copy and the rest, when the length is patched).
void sha1(std::span<const std::uint8_t> key, std::span<const std::uint8_t> first,
          std::span<const std::uint8_t> second, std::span<std::uint8_t, 20> out);
void sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> first,
            std::span<const std::uint8_t> second, std::span<std::uint8_t, 32> out);
}  // namespace hmac

// CRC-32 XOR 0x5354554e (RFC 8489 §14.7).
std::uint32_t fingerprintOf(std::span<const std::uint8_t> bytes);

}  // namespace parley::stun
