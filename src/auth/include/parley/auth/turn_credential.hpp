// Short-lived TURN credentials for browsers, in the TURN REST API scheme
// (draft-uberti-behave-turn-rest-00 §2.2) that coturn's use-auth-secret and parley's own TURN
// server (src/turn) accept.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::auth {

struct TurnCredential {
  std::string username;        // "EXPIRY:user" (just "EXPIRY" when user is empty)
  std::string credential;      // base64(HMAC-SHA1(secret, username)), standard base64 with padding
  std::int64_t expiresAt = 0;  // EXPIRY, Unix seconds

  friend bool operator==(const TurnCredential&, const TurnCredential&) = default;
};

// Valid for `ttlSeconds` from `now`. Throws std::invalid_argument when ttlSeconds <= 0 or the
// expiry does not fit in int64.
TurnCredential makeTurnCredential(std::string_view secret, std::string_view user, std::int64_t now,
                                  std::int64_t ttlSeconds);

}  // namespace parley::auth
