#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <parley/auth/encoding.hpp>
#include <parley/auth/token.hpp>

#include "crypto.hpp"

namespace parley::auth {

namespace {

using Json = nlohmann::json;

constexpr std::size_t kMacBytes = 32;  // HMAC-SHA256
constexpr int kPayloadVersion = 1;
// Domain separation from token MACs: a token payload is a JSON object and starts with '{'.
constexpr std::string_view kCsrfLabel{"csrf\0", 5};

constexpr std::string_view kindName(TokenKind kind) {
  switch (kind) {
    case TokenKind::Invitation:
      return "invitation";
    case TokenKind::Setup:
      return "setup";
    case TokenKind::Netcheck:
      return "netcheck";
  }
  return "setup";
}

std::optional<TokenKind> kindFromName(std::string_view name) {
  if (name == "invitation") return TokenKind::Invitation;
  if (name == "setup") return TokenKind::Setup;
  if (name == "netcheck") return TokenKind::Netcheck;
  return std::nullopt;
}

// Claims from a payload whose MAC was already checked. Strict all the same: only payloads this
// code wrote are valid, and anything else means a key was misused.
tl::expected<TokenClaims, TokenError> parseClaims(std::span<const std::uint8_t> payload) {
  const auto malformed = tl::unexpected(TokenError::Malformed);
  try {
    const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
    const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return malformed;

    const auto version = json.find("v");
    if (version == json.end() || !version->is_number_integer() ||
        version->get<std::int64_t>() != kPayloadVersion) {
      return malformed;
    }
    const auto kind = json.find("kind");
    if (kind == json.end() || !kind->is_string()) return malformed;
    const auto parsedKind = kindFromName(kind->get_ref<const std::string&>());
    if (!parsedKind) return malformed;

    const auto id = json.find("jti");
    if (id == json.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
      return malformed;
    }
    const auto expiry = json.find("exp");
    if (expiry == json.end() || !expiry->is_number_integer()) return malformed;
    if (expiry->is_number_unsigned() &&
        expiry->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return malformed;
    }
    const auto once = json.find("once");
    if (once == json.end() || !once->is_boolean()) return malformed;

    TokenClaims claims;
    claims.kind = *parsedKind;
    claims.id = id->get<std::string>();
    claims.expiresAt = expiry->get<std::int64_t>();
    claims.singleUse = once->get<bool>();
    const auto room = json.find("room");
    if (room != json.end()) {
      if (!room->is_string()) return malformed;
      claims.roomId = room->get<std::string>();
    }
    // An invitation admits to exactly one room; set-up and netcheck tokens to none.
    if ((claims.kind == TokenKind::Invitation) == claims.roomId.empty()) return malformed;
    return claims;
  } catch (const Json::exception&) {
    return malformed;  // not reached with the checks above; kept so no input can escape as one
  }
}

}  // namespace

std::string_view describe(TokenError error) {
  switch (error) {
    case TokenError::Malformed:
      return "the link is malformed";
    case TokenError::BadSignature:
      return "the link was not issued by this server or has been altered";
    case TokenError::Expired:
      return "the link has expired";
    case TokenError::WrongKind:
      return "the link is not meant for this page";
  }
  return "the link is not valid";
}

TokenSigner::TokenSigner(std::vector<std::vector<std::uint8_t>> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) throw std::invalid_argument("a token signer needs at least one key");
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].size() < kMinKeyBytes) {
      throw std::invalid_argument(fmt::format("token key {} has {} bytes; at least {} are needed",
                                              i, keys_[i].size(), kMinKeyBytes));
    }
  }
}

std::string TokenSigner::sign(const TokenClaims& claims) const {
  if (!detail::utf8Length(claims.id) || !detail::utf8Length(claims.roomId)) {
    throw std::invalid_argument("token claims must be UTF-8 text");
  }
  // Refuse what verify() would refuse, so every token signed here verifies until it expires.
  if (claims.id.empty()) throw std::invalid_argument("a token needs an id");
  if ((claims.kind == TokenKind::Invitation) == claims.roomId.empty()) {
    throw std::invalid_argument("an invitation token needs a room id, other tokens none");
  }
  Json json = {{"v", kPayloadVersion},
               {"kind", kindName(claims.kind)},
               {"jti", claims.id},
               {"exp", claims.expiresAt},
               {"once", claims.singleUse}};
  if (!claims.roomId.empty()) json["room"] = claims.roomId;
  const std::string payload = json.dump();  // compact, keys sorted: the same claims, same token
  const auto mac = detail::hmacSha256(keys_.front(), detail::asBytes(payload));
  return base64UrlEncode(detail::asBytes(payload)) + "." + base64UrlEncode(mac);
}

tl::expected<TokenClaims, TokenError> TokenSigner::verify(std::string_view token,
                                                          TokenKind expected,
                                                          std::int64_t now) const {
  if (token.size() > kMaxTokenLength) return tl::unexpected(TokenError::Malformed);
  const std::size_t dot = token.find('.');
  if (dot == std::string_view::npos) return tl::unexpected(TokenError::Malformed);
  // A second '.' is outside the base64url alphabet, so decoding the MAC part refuses it.
  const auto payload = base64UrlDecode(token.substr(0, dot));
  const auto mac = base64UrlDecode(token.substr(dot + 1));
  if (!payload || payload->empty() || !mac || mac->size() != kMacBytes) {
    return tl::unexpected(TokenError::Malformed);
  }

  // The MAC is checked before the payload is parsed: unauthenticated bytes never reach the JSON
  // parser. Every key is tried without stopping early, in time independent of the MAC's bytes.
  bool genuine = false;
  for (const auto& key : keys_) {
    const auto computed = detail::hmacSha256(key, *payload);
    genuine |= CRYPTO_memcmp(computed.data(), mac->data(), kMacBytes) == 0;
  }
  if (!genuine) return tl::unexpected(TokenError::BadSignature);

  auto claims = parseClaims(*payload);
  if (!claims) return claims;
  if (claims->kind != expected) return tl::unexpected(TokenError::WrongKind);
  if (now >= claims->expiresAt) return tl::unexpected(TokenError::Expired);
  return claims;
}

std::string TokenSigner::csrfTokenFor(std::string_view sessionToken) const {
  std::string message(kCsrfLabel);
  message += sessionToken;
  return base64UrlEncode(detail::hmacSha256(keys_.front(), detail::asBytes(message)));
}

bool TokenSigner::checkCsrf(std::string_view sessionToken, std::string_view presented) const {
  std::string message(kCsrfLabel);
  message += sessionToken;
  bool matches = false;
  for (const auto& key : keys_) {
    const std::string expected = base64UrlEncode(detail::hmacSha256(key, detail::asBytes(message)));
    matches |= detail::constantTimeEqual(expected, presented);
  }
  return matches;
}

}  // namespace parley::auth
