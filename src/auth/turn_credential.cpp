#include <stdexcept>
#include <string>

#include <parley/auth/turn_credential.hpp>

#include "crypto.hpp"

namespace parley::auth {

TurnCredential makeTurnCredential(std::string_view secret, std::string_view user, std::int64_t now,
                                  std::int64_t ttlSeconds) {
  if (ttlSeconds <= 0) throw std::invalid_argument("a TURN credential needs a positive lifetime");
  std::int64_t expiresAt = 0;
  if (__builtin_add_overflow(now, ttlSeconds, &expiresAt)) {
    throw std::invalid_argument("the TURN credential expiry does not fit in 64 bits");
  }
  // draft-uberti-behave-turn-rest-00 §2.2: username = expiry timestamp ":" user id, password =
  // base64(HMAC-SHA1(secret, username)). The server splits at the first ':' (src/turn/auth.cpp,
  // coturn alike), so a ':' inside `user` is harmless.
  TurnCredential credential;
  credential.username = std::to_string(expiresAt);
  if (!user.empty()) {
    credential.username += ':';
    credential.username += user;
  }
  credential.credential = detail::base64(
      detail::hmacSha1(detail::asBytes(secret), detail::asBytes(credential.username)));
  credential.expiresAt = expiresAt;
  return credential;
}

}  // namespace parley::auth
