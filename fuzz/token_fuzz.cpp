// Fuzzes signed-token verification three ways: the input as a token; the input as a claims
// payload under a valid MAC (so the JSON claim parser sees arbitrary bytes, which a forged MAC
// could never reach); and the input as claims that must survive sign -> verify unchanged. Also
// base64url decoding, which must accept only canonical text, and the CSRF check.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

// parley::auth links libcrypto; the MAC over arbitrary payloads is computed here on purpose,
// independently of TokenSigner, which only signs well-formed claims.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <parley/auth/encoding.hpp>
#include <parley/auth/token.hpp>

using namespace parley::auth;

namespace {

// bytes(range(32)), as in tests/auth/token_test.cpp, so the seed tokens carry valid MACs.
std::vector<std::uint8_t> fuzzKey() {
  std::vector<std::uint8_t> key(32);
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(i);
  return key;
}

const std::vector<std::uint8_t>& key() {
  static const std::vector<std::uint8_t> value = fuzzKey();
  return value;
}

const TokenSigner& signer() {
  static const TokenSigner value({key()});
  return value;
}

void verifyAsToken(std::string_view text) {
  for (const TokenKind kind : {TokenKind::Invitation, TokenKind::Setup}) {
    for (const std::int64_t now :
         {std::numeric_limits<std::int64_t>::min(), std::int64_t{0}, std::int64_t{1'700'000'000},
          std::numeric_limits<std::int64_t>::max()}) {
      const auto result = signer().verify(text, kind, now);
      if (result) {
        // Only genuine claims verify: signing them again must give a token that verifies.
        if (result->kind != kind || now >= result->expiresAt) std::abort();
        const std::string resigned = signer().sign(*result);
        const auto again = signer().verify(resigned, kind, now);
        if (resigned.size() <= TokenSigner::kMaxTokenLength && (!again || *again != *result)) {
          std::abort();
        }
      } else {
        (void)describe(result.error());
      }
    }
  }
}

void verifyAsPayload(std::string_view payload) {
  if (payload.empty()) return;
  std::array<std::uint8_t, 32> mac{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), key().data(), static_cast<int>(key().size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac.data(), &size);
  const std::vector<std::uint8_t> bytes(payload.begin(), payload.end());
  const std::string token = base64UrlEncode(bytes) + "." + base64UrlEncode(mac);
  if (token.size() > TokenSigner::kMaxTokenLength) return;
  for (const TokenKind kind : {TokenKind::Invitation, TokenKind::Setup}) {
    const auto result = signer().verify(token, kind, 0);
    // With a valid MAC, the only failures left are in the claims themselves.
    if (!result && result.error() == TokenError::BadSignature) std::abort();
  }
}

// Layout: flags (bit 0 kind, bit 1 single-use), 8 bytes expiry, then id '\0' roomId.
void signAndVerify(std::string_view input) {
  if (input.size() < 9) return;
  TokenClaims claims;
  claims.kind = (input[0] & 1) != 0 ? TokenKind::Setup : TokenKind::Invitation;
  claims.singleUse = (input[0] & 2) != 0;
  std::uint64_t expiry = 0;
  std::memcpy(&expiry, input.data() + 1, sizeof expiry);
  claims.expiresAt = static_cast<std::int64_t>(expiry);
  const std::string_view rest = input.substr(9);
  const std::size_t nul = rest.find('\0');
  claims.id = std::string(rest.substr(0, nul));
  if (nul != std::string_view::npos) claims.roomId = std::string(rest.substr(nul + 1));

  std::string token;
  try {
    token = signer().sign(claims);
  } catch (const std::invalid_argument&) {
    return;  // not UTF-8, no id, or a room where none belongs: documented refusals
  }
  if (claims.expiresAt == std::numeric_limits<std::int64_t>::min()) return;
  const auto result = signer().verify(token, claims.kind, claims.expiresAt - 1);
  // A long id can make the token exceed kMaxTokenLength; anything else must round-trip.
  if (token.size() <= TokenSigner::kMaxTokenLength && (!result || *result != claims)) {
    std::abort();
  }
  if (signer().verify(token, claims.kind, claims.expiresAt)) std::abort();  // expired by then
}

void decodeBase64Url(std::string_view text) {
  const auto decoded = base64UrlDecode(text);
  if (decoded && base64UrlEncode(*decoded) != text) std::abort();  // canonical only
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  verifyAsToken(input);
  verifyAsPayload(input);
  signAndVerify(input);
  decodeBase64Url(input);
  const std::string csrf = signer().csrfTokenFor(input);
  if (!signer().checkCsrf(input, csrf)) std::abort();
  if (input != csrf && signer().checkCsrf(input, input)) std::abort();
  return 0;
}
