// Long-term credential pieces of the TURN server (RFC 8489 §9.2, RFC 8656 §5): stateless
// nonces, the credential store (static users and TURN REST secrets) and the fixed-size limiter
// for unauthenticated answers. Private to the library.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <parley/base/endpoint.hpp>

namespace parley::turn::detail {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// Both long-term keys of one user (RFC 8489 §9.2.2): the password algorithm picks one.
struct Keys {
  std::array<std::uint8_t, 16> md5{};
  std::array<std::uint8_t, 32> sha256{};
};

// RFC 8489 §9.2: nonce = "obMatJos2" + 4 base64 characters of the 24-bit security feature set
// + a server-defined part. Ours is base64(expiry (8 bytes) || HMAC-SHA256(key, expiry || client
// IP)[0..16)), so a server keeps no state for a client before it has authenticated.
class Nonces {
 public:
  static constexpr std::string_view kCookie = "obMatJos2";
  // Feature bits, most significant first: bit 0 "Password algorithms", bit 1 "Username
  // anonymity". 0xC0 0x00 0x00 in base64.
  static constexpr std::string_view kFeatures = "wAAA";
  static constexpr std::size_t kSize = 9 + 4 + 32;

  Nonces(const std::array<std::uint8_t, 32>& key, std::chrono::seconds lifetime)
      : key_(key), lifetime_(lifetime) {}
  std::string mint(const IpAddress& client, SteadyTime now) const;
  // Issued by this key for this client and not expired.
  bool valid(std::string_view nonce, const IpAddress& client, SteadyTime now) const;
  // RFC 8489 §9.2.4: does the nonce carry the cookie with the "Password algorithms" bit?
  static bool hasPasswordAlgorithmsBit(std::string_view nonce);

 private:
  std::array<std::uint8_t, 16> mac(std::uint64_t expiry, const IpAddress& client) const;
  std::array<std::uint8_t, 32> key_;
  std::chrono::seconds lifetime_;
};

class Credentials {
 public:
  Credentials(std::string realm, const std::vector<std::pair<std::string, std::string>>& users,
              std::vector<std::string> restSecrets);
  const std::string& realm() const { return realm_; }
  // Keys of a configured user, computed once here.
  const Keys* staticUser(const std::string& username) const;
  // RFC 8489 §14.4 USERHASH -> username, for configured users.
  const std::string* userByHash(std::span<const std::uint8_t> hash) const;
  const std::vector<std::string>& restSecrets() const { return restSecrets_; }
  // TURN REST: the unix expiry in "<expiry>:<anything>" or "<expiry>"; nullopt if not that form.
  static std::optional<std::int64_t> restExpiry(std::string_view username);
  // Keys for `username` under `secret`: password = base64(HMAC-SHA1(secret, username)).
  std::optional<Keys> restKeys(std::string_view secret, std::string_view username) const;
  // Key derivation for a username/password pair; nullopt if SASLprep rejects the password.
  static std::optional<Keys> derive(std::string_view username, std::string_view realm,
                                    std::string_view password);

 private:
  std::string realm_;
  std::unordered_map<std::string, Keys> users_;
  std::unordered_map<std::string, std::string> byHash_;  // raw 32-byte hash -> username
  std::vector<std::string> restSecrets_;
};

// Fixed-window counter per source address in a fixed table: colliding addresses share a slot,
// so a flood from spoofed sources costs no memory, only answers.
class RateLimiter {
 public:
  static constexpr std::size_t kSlots = 4096;
  RateLimiter(unsigned perSecond, std::uint64_t seed) : perSecond_(perSecond), seed_(seed) {}
  // 0 per second means unlimited.
  bool allow(const IpAddress& source, SteadyTime now);

 private:
  struct Slot {
    std::int64_t second = -1;
    std::uint32_t count = 0;
  };
  unsigned perSecond_;
  std::uint64_t seed_;
  std::array<Slot, kSlots> slots_{};
};

}  // namespace parley::turn::detail
