// Signed tokens for invitation links, the first-advisor set-up link and network-check tickets,
// and keyed derivations for CSRF tokens. A token is
//   base64url(payload) "." base64url(HMAC-SHA256(key, payload))
// where the payload is compact JSON of the claims, e.g.
//   {"exp":1700000000,"jti":"…","kind":"invitation","once":true,"room":"…","v":1}
// Tokens are stateless: whether a single-use invitation was already used is the store's business
// (the claim only says it is single-use, `id` names it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace parley::auth {

// Netcheck: a network-check session's ticket (docs/netcheck.md); its id is the session id.
enum class TokenKind { Invitation, Setup, Netcheck };

struct TokenClaims {
  TokenKind kind = TokenKind::Invitation;
  std::string id;              // jti: the invitation id, or the set-up nonce
  std::string roomId;          // the room an invitation admits to; empty for other kinds
  std::int64_t expiresAt = 0;  // Unix seconds; the token is valid while now < expiresAt
  bool singleUse = false;

  friend bool operator==(const TokenClaims&, const TokenClaims&) = default;
};

enum class TokenError {
  Malformed,     // not two base64url parts, wrong sizes, or claims that do not parse
  BadSignature,  // no key produced this MAC: forged, altered, or signed under a retired key
  Expired,       // genuine, but now >= expiresAt
  WrongKind,     // genuine, but e.g. a set-up token presented as an invitation
};

// A sentence for the user, e.g. "the link is malformed".
std::string_view describe(TokenError error);

class TokenSigner {
 public:
  // Tokens at most this long are examined; longer input is Malformed without further work.
  static constexpr std::size_t kMaxTokenLength = 4096;
  // HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3).
  static constexpr std::size_t kMinKeyBytes = 32;

  // keys[0] signs; every key verifies, so a new key can be put first while links signed under
  // the old one stay valid until it is removed. Throws std::invalid_argument when `keys` is empty
  // or a key is shorter than kMinKeyBytes.
  explicit TokenSigner(std::vector<std::vector<std::uint8_t>> keys);

  // Throws std::invalid_argument for claims verify() would refuse: id or roomId not UTF-8 (JSON
  // cannot carry it), an empty id, an invitation without a room or a set-up token with one.
  std::string sign(const TokenClaims& claims) const;

  // Checks, in this order: shape (Malformed), MAC under any key (BadSignature), claims
  // (Malformed), kind (WrongKind), expiry (Expired). Never throws; any input is safe.
  tl::expected<TokenClaims, TokenError> verify(std::string_view token, TokenKind expected,
                                               std::int64_t now) const;

  // The CSRF token that goes with a session: base64url(HMAC-SHA256(keys[0], "csrf\0" + session)).
  // Deterministic, so nothing is stored; it cannot collide with a token MAC because every token
  // payload starts with '{'.
  std::string csrfTokenFor(std::string_view sessionToken) const;
  // Constant-time comparison of `presented` with the CSRF token of the session under every key
  // (so sessions survive a key rotation).
  bool checkCsrf(std::string_view sessionToken, std::string_view presented) const;

 private:
  std::vector<std::vector<std::uint8_t>> keys_;
};

}  // namespace parley::auth
