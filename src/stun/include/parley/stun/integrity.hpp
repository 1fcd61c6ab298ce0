// Message integrity and fingerprint (RFC 8489 §9, §14.5-14.7) and credential keys.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <parley/stun/message.hpp>

namespace parley::stun {

enum class Check : std::uint8_t { Absent, Valid, Invalid };

// FINGERPRINT present and matching the CRC-32 of everything before it?
Check checkFingerprint(const Message& message);
// MESSAGE-INTEGRITY (HMAC-SHA1) with `key`.
Check checkMessageIntegrity(const Message& message, Bytes key);
// MESSAGE-INTEGRITY-SHA256 with `key`; truncated values (16..32 bytes, multiple of 4) accepted
// as RFC 8489 §14.6 allows.
Check checkMessageIntegritySha256(const Message& message, Bytes key);

// CRC-32 (ISO-HDLC) XOR 0x5354554e of `bytes`.
std::uint32_t fingerprint(Bytes bytes);

// RFC 4013 SASLprep, as RFC 5389 and RFC 5769 apply it to passwords. nullopt when the input
// is not valid UTF-8 or contains prohibited characters.
std::optional<std::string> saslPrep(std::string_view text);

// RFC 8489 §9.2.2 long-term key: MD5 (16 bytes) or SHA-256 (32 bytes) of
// username ":" realm ":" SASLprep(password). nullopt if the password fails SASLprep.
std::optional<std::array<std::uint8_t, 16>> longTermKeyMd5(std::string_view username,
                                                           std::string_view realm,
                                                           std::string_view password);
std::optional<std::array<std::uint8_t, 32>> longTermKeySha256(std::string_view username,
                                                              std::string_view realm,
                                                              std::string_view password);
// RFC 8489 §9.1.1 short-term key: SASLprep(password).
std::optional<std::string> shortTermKey(std::string_view password);
// RFC 8489 §14.4 USERHASH: SHA-256(username ":" realm).
std::array<std::uint8_t, 32> userhash(std::string_view username, std::string_view realm);

}  // namespace parley::stun
