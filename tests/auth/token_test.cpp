#include <array>
#include <set>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <parley/auth/encoding.hpp>
#include <parley/auth/token.hpp>

namespace parley::auth {
namespace {

using Key = std::vector<std::uint8_t>;

Key sequentialKey(std::uint8_t first) {
  Key key(32);
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(first + i);
  return key;
}

TokenClaims invitation(std::int64_t expiresAt = 1'700'000'000) {
  TokenClaims claims;
  claims.kind = TokenKind::Invitation;
  claims.id = "inv-1";
  claims.roomId = "room-1";
  claims.expiresAt = expiresAt;
  claims.singleUse = true;
  return claims;
}

// A token over any payload, MAC'd independently of TokenSigner, to reach the claim parser.
std::string forge(const Key& key, std::string_view payload) {
  std::array<std::uint8_t, 32> mac{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac.data(), &size);
  const std::vector<std::uint8_t> bytes(payload.begin(), payload.end());
  return base64UrlEncode(bytes) + "." + base64UrlEncode(mac);
}

constexpr std::int64_t kNow = 1'699'990'000;

TEST(TokenSigner, MatchesAnIndependentlyComputedToken) {
  // Computed with Python's hmac/base64 modules:
  //   key = bytes(range(32)); p = b'{"exp":1700000000,"jti":"inv-1","kind":"invitation",
  //   "once":true,"room":"room-1","v":1}'
  //   b64u(p) + "." + b64u(hmac.new(key, p, hashlib.sha256).digest()), b64u strips '='.
  const TokenSigner signer({sequentialKey(0)});
  EXPECT_EQ(signer.sign(invitation()),
            "eyJleHAiOjE3MDAwMDAwMDAsImp0aSI6Imludi0xIiwia2luZCI6Imludml0YXRpb24iLCJvbmNlIjp0cnVl"
            "LCJyb29tIjoicm9vbS0xIiwidiI6MX0.Ru-PQ7hGX9dK2It85cQ4ro2nn_QbObCcztfaioCtLug");
}

TEST(TokenSigner, RoundTripsBothKinds) {
  const TokenSigner signer({sequentialKey(0)});
  const auto claims = signer.verify(signer.sign(invitation()), TokenKind::Invitation, kNow);
  ASSERT_TRUE(claims);
  EXPECT_EQ(*claims, invitation());

  TokenClaims setup;
  setup.kind = TokenKind::Setup;
  setup.id = "nonce-42";
  setup.expiresAt = kNow + 3600;
  const auto verified = signer.verify(signer.sign(setup), TokenKind::Setup, kNow);
  ASSERT_TRUE(verified);
  EXPECT_EQ(*verified, setup);
  EXPECT_TRUE(verified->roomId.empty());
  EXPECT_FALSE(verified->singleUse);

  TokenClaims unicode = invitation();
  unicode.id = "einladung-ä-日本";
  EXPECT_EQ(signer.verify(signer.sign(unicode), TokenKind::Invitation, kNow).value(), unicode);
}

// Network-check tickets (docs/netcheck.md): kind "netcheck", the session id, no room.
TEST(TokenSigner, NetcheckTicketsRoundTripAndAreTheirOwnKind) {
  const TokenSigner signer({sequentialKey(0)});
  TokenClaims ticket;
  ticket.kind = TokenKind::Netcheck;
  ticket.id = "5f0c2a9e8d7b6a41";
  ticket.expiresAt = kNow + 300;
  const std::string token = signer.sign(ticket);
  const auto payload = base64UrlDecode(token.substr(0, token.find('.')));
  ASSERT_TRUE(payload);
  EXPECT_NE(std::string(payload->begin(), payload->end()).find("\"kind\":\"netcheck\""),
            std::string::npos);
  EXPECT_EQ(signer.verify(token, TokenKind::Netcheck, kNow).value(), ticket);
  EXPECT_EQ(signer.verify(token, TokenKind::Setup, kNow).error(), TokenError::WrongKind);
  EXPECT_EQ(signer.verify(token, TokenKind::Invitation, kNow).error(), TokenError::WrongKind);
  EXPECT_EQ(signer.verify(signer.sign(invitation()), TokenKind::Netcheck, kNow).error(),
            TokenError::WrongKind);
  EXPECT_EQ(signer.verify(token, TokenKind::Netcheck, kNow + 300).error(), TokenError::Expired);
  TokenClaims withRoom = ticket;
  withRoom.roomId = "room-1";
  EXPECT_THROW(signer.sign(withRoom), std::invalid_argument);
}

TEST(TokenSigner, IsValidUpToButExcludingTheExpiry) {
  const TokenSigner signer({sequentialKey(0)});
  const std::string token = signer.sign(invitation(1000));
  EXPECT_TRUE(signer.verify(token, TokenKind::Invitation, 0));
  EXPECT_TRUE(signer.verify(token, TokenKind::Invitation, 999));
  EXPECT_EQ(signer.verify(token, TokenKind::Invitation, 1000).error(), TokenError::Expired);
  EXPECT_EQ(signer.verify(token, TokenKind::Invitation, 1001).error(), TokenError::Expired);
  EXPECT_EQ(signer.verify(signer.sign(invitation(-5)), TokenKind::Invitation, 0).error(),
            TokenError::Expired);
}

TEST(TokenSigner, RefusesTheOtherKind) {
  const TokenSigner signer({sequentialKey(0)});
  EXPECT_EQ(signer.verify(signer.sign(invitation()), TokenKind::Setup, kNow).error(),
            TokenError::WrongKind);
  TokenClaims setup;
  setup.kind = TokenKind::Setup;
  setup.id = "nonce";
  setup.expiresAt = kNow + 60;
  EXPECT_EQ(signer.verify(signer.sign(setup), TokenKind::Invitation, kNow).error(),
            TokenError::WrongKind);
  // The kind is judged before the expiry: an old set-up link on the join page is the wrong link.
  setup.expiresAt = kNow - 60;
  EXPECT_EQ(signer.verify(signer.sign(setup), TokenKind::Invitation, kNow).error(),
            TokenError::WrongKind);
}

TEST(TokenSigner, DetectsATamperedPayload) {
  const Key key = sequentialKey(0);
  const TokenSigner signer({key});
  const std::string token = signer.sign(invitation());
  const std::string mac = token.substr(token.find('.'));
  // Another room, another expiry, multi-use: each a valid payload with the original MAC.
  for (
      const char* payload : {
          R"({"exp":1700000000,"jti":"inv-1","kind":"invitation","once":true,"room":"room-2","v":1})",
          R"({"exp":1800000000,"jti":"inv-1","kind":"invitation","once":true,"room":"room-1","v":1})",
          R"({"exp":1700000000,"jti":"inv-1","kind":"invitation","once":false,"room":"room-1","v":1})",
      }) {
    const std::string_view text(payload);
    const std::string altered =
        base64UrlEncode(std::vector<std::uint8_t>(text.begin(), text.end())) + mac;
    EXPECT_EQ(signer.verify(altered, TokenKind::Invitation, kNow).error(),
              TokenError::BadSignature);
  }
  // Every single-character change in the payload part.
  for (std::size_t i = 0; i < token.find('.'); ++i) {
    std::string altered = token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    const auto result = signer.verify(altered, TokenKind::Invitation, kNow);
    ASSERT_FALSE(result) << i;
    EXPECT_TRUE(result.error() == TokenError::BadSignature ||
                result.error() == TokenError::Malformed)
        << i;
  }
}

TEST(TokenSigner, DetectsATamperedSignature) {
  const TokenSigner signer({sequentialKey(0)});
  const std::string token = signer.sign(invitation());
  for (std::size_t i = token.find('.') + 1; i + 1 < token.size(); ++i) {
    std::string altered = token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(signer.verify(altered, TokenKind::Invitation, kNow).error(), TokenError::BadSignature)
        << i;
  }
  // 32 bytes are 43 characters, the last carrying 2 unused bits: setting one of them gives a
  // non-canonical encoding of the same MAC, which is refused as malformed, not accepted.
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string lastBits = token;
  lastBits.back() = kAlphabet[kAlphabet.find(lastBits.back()) ^ 1];
  EXPECT_EQ(signer.verify(lastBits, TokenKind::Invitation, kNow).error(), TokenError::Malformed);
}

TEST(TokenSigner, RefusesEveryTruncation) {
  const TokenSigner signer({sequentialKey(0)});
  const std::string token = signer.sign(invitation());
  for (std::size_t length = 0; length < token.size(); ++length) {
    const auto result = signer.verify(token.substr(0, length), TokenKind::Invitation, kNow);
    ASSERT_FALSE(result) << length;
    EXPECT_TRUE(result.error() == TokenError::Malformed ||
                result.error() == TokenError::BadSignature)
        << length;
  }
}

TEST(TokenSigner, RefusesGarbageAsMalformed) {
  const TokenSigner signer({sequentialKey(0)});
  const std::string token = signer.sign(invitation());
  const std::string payload = token.substr(0, token.find('.'));
  const std::string mac = token.substr(token.find('.') + 1);
  for (const std::string& garbage : {
           std::string(),
           std::string("."),
           std::string(".."),
           std::string("a.b"),
           std::string("no dot at all"),
           payload,
           payload + ".",
           "." + mac,
           payload + "." + mac + "." + mac,
           payload + "." + mac + "=",
           payload + "==." + mac,
           payload + " ." + mac,
           payload + "." + mac.substr(0, 42) + "AAAA",  // a 34-byte MAC
           payload + "." + mac.substr(0, 40),           // a 30-byte MAC
           std::string(TokenSigner::kMaxTokenLength + 1, 'A'),
           std::string("\0\0\0.\0\0", 6),
           std::string("\xff\xfe.\x80"),
       }) {
    const auto result = signer.verify(garbage, TokenKind::Invitation, kNow);
    ASSERT_FALSE(result) << garbage;
    EXPECT_EQ(result.error(), TokenError::Malformed) << garbage;
  }
}

TEST(TokenSigner, RefusesGenuineButMalformedClaims) {
  const Key key = sequentialKey(0);
  const TokenSigner signer({key});
  for (
      const char* payload : {
          "{",
          "[]",
          "null",
          "{}",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"room":"r"})",  // no v
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"room":"r","v":2})",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"room":"r","v":"1"})",
          R"({"exp":1700000000,"jti":"i","kind":"guest","once":true,"room":"r","v":1})",
          R"({"exp":1700000000,"jti":"i","kind":7,"once":true,"room":"r","v":1})",
          R"({"exp":1700000000,"kind":"invitation","once":true,"room":"r","v":1})",
          R"({"exp":1700000000,"jti":"","kind":"invitation","once":true,"room":"r","v":1})",
          R"({"exp":1700000000,"jti":5,"kind":"invitation","once":true,"room":"r","v":1})",
          R"({"jti":"i","kind":"invitation","once":true,"room":"r","v":1})",
          R"({"exp":"1700000000","jti":"i","kind":"invitation","once":true,"room":"r","v":1})",
          R"({"exp":1.7e9,"jti":"i","kind":"invitation","once":true,"room":"r","v":1})",
          R"({"exp":9223372036854775808,"jti":"i","kind":"invitation","once":true,"room":"r","v":1})",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","room":"r","v":1})",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":1,"room":"r","v":1})",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"v":1})",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"room":"","v":1})",
          R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"room":["r"],"v":1})",
          R"({"exp":1700000000,"jti":"i","kind":"setup","once":true,"room":"r","v":1})",
          "{\"exp\":1700000000,\"jti\":\"\xff\",\"kind\":\"setup\",\"once\":true,\"v\":1}",
      }) {
    for (const TokenKind kind : {TokenKind::Invitation, TokenKind::Setup}) {
      const auto result = signer.verify(forge(key, payload), kind, kNow);
      ASSERT_FALSE(result) << payload;
      EXPECT_EQ(result.error(), TokenError::Malformed) << payload;
    }
  }
  // The same shape with every field right is accepted, so the cases above fail for their field.
  const auto good = signer.verify(
      forge(key,
            R"({"exp":1700000000,"jti":"i","kind":"invitation","once":true,"room":"r","v":1})"),
      TokenKind::Invitation, kNow);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->roomId, "r");
  // Unknown fields are ignored; the largest int64 expiry is fine.
  EXPECT_TRUE(signer.verify(
      forge(key,
            R"({"exp":9223372036854775807,"jti":"i","kind":"setup","once":false,"v":1,"x":0})"),
      TokenKind::Setup, kNow));
}

TEST(TokenSigner, RotatesKeys) {
  const Key oldKey = sequentialKey(0);
  const Key newKey = sequentialKey(100);
  const TokenSigner before({oldKey});
  const TokenSigner during({newKey, oldKey});
  const TokenSigner after({newKey});

  const std::string oldToken = before.sign(invitation());
  const std::string newToken = during.sign(invitation());
  EXPECT_NE(oldToken, newToken);
  EXPECT_EQ(after.sign(invitation()), newToken);  // the first key signs

  EXPECT_TRUE(during.verify(oldToken, TokenKind::Invitation, kNow));
  EXPECT_TRUE(during.verify(newToken, TokenKind::Invitation, kNow));
  EXPECT_TRUE(after.verify(newToken, TokenKind::Invitation, kNow));
  EXPECT_EQ(after.verify(oldToken, TokenKind::Invitation, kNow).error(), TokenError::BadSignature);
  EXPECT_EQ(before.verify(newToken, TokenKind::Invitation, kNow).error(), TokenError::BadSignature);
}

TEST(TokenSigner, NeedsLongEnoughKeys) {
  EXPECT_THROW(TokenSigner({}), std::invalid_argument);
  EXPECT_THROW(TokenSigner({Key(31, 1)}), std::invalid_argument);
  EXPECT_THROW(TokenSigner({Key(32, 1), Key(16, 2)}), std::invalid_argument);
  EXPECT_NO_THROW(TokenSigner({Key(32, 1), Key(64, 2)}));
}

TEST(TokenSigner, RefusesToSignClaimsJsonCannotCarry) {
  const TokenSigner signer({sequentialKey(0)});
  TokenClaims claims = invitation();
  claims.id = "bad\xff";
  EXPECT_THROW(signer.sign(claims), std::invalid_argument);
  claims = invitation();
  claims.roomId = "\xc0\xaf";
  EXPECT_THROW(signer.sign(claims), std::invalid_argument);
}

TEST(TokenSigner, RefusesToSignClaimsItWouldNotVerify) {
  const TokenSigner signer({sequentialKey(0)});
  TokenClaims noId = invitation();
  noId.id.clear();
  EXPECT_THROW(signer.sign(noId), std::invalid_argument);
  TokenClaims noRoom = invitation();
  noRoom.roomId.clear();
  EXPECT_THROW(signer.sign(noRoom), std::invalid_argument);
  TokenClaims setupWithRoom = invitation();
  setupWithRoom.kind = TokenKind::Setup;
  EXPECT_THROW(signer.sign(setupWithRoom), std::invalid_argument);
}

TEST(TokenSigner, DescribesEveryErrorForPeople) {
  std::set<std::string_view> texts;
  for (const TokenError error : {TokenError::Malformed, TokenError::BadSignature,
                                 TokenError::Expired, TokenError::WrongKind}) {
    EXPECT_FALSE(describe(error).empty());
    texts.insert(describe(error));
  }
  EXPECT_EQ(texts.size(), 4u);
  EXPECT_EQ(describe(TokenError::Malformed), "the link is malformed");
  EXPECT_EQ(describe(TokenError::Expired), "the link has expired");
}

TEST(Csrf, MatchesAnIndependentlyComputedValue) {
  // Python: b64u(hmac.new(bytes(range(32)), b"csrf\x00session-token", hashlib.sha256).digest())
  const TokenSigner signer({sequentialKey(0)});
  EXPECT_EQ(signer.csrfTokenFor("session-token"), "2EO4eY1EBZpZoWRrOWyalwFStasNx4RLNvfj3Vj76tI");
}

TEST(Csrf, AcceptsOnlyTheTokenOfTheSameSession) {
  const TokenSigner signer({sequentialKey(0)});
  const std::string csrf = signer.csrfTokenFor("session-a");
  EXPECT_EQ(csrf, signer.csrfTokenFor("session-a"));  // deterministic: nothing stored
  EXPECT_NE(csrf, signer.csrfTokenFor("session-b"));
  EXPECT_TRUE(signer.checkCsrf("session-a", csrf));
  EXPECT_FALSE(signer.checkCsrf("session-b", csrf));
  EXPECT_FALSE(signer.checkCsrf("session-a", ""));
  EXPECT_FALSE(signer.checkCsrf("session-a", csrf.substr(1)));
  EXPECT_FALSE(signer.checkCsrf("session-a", csrf + "A"));
  std::string altered = csrf;
  altered[10] = altered[10] == 'x' ? 'y' : 'x';
  EXPECT_FALSE(signer.checkCsrf("session-a", altered));
  // Another deployment's key derives other tokens.
  const TokenSigner other({sequentialKey(1)});
  EXPECT_FALSE(other.checkCsrf("session-a", csrf));
}

TEST(Csrf, SurvivesKeyRotation) {
  const TokenSigner before({sequentialKey(0)});
  const TokenSigner during({sequentialKey(100), sequentialKey(0)});
  const std::string csrf = before.csrfTokenFor("session-a");
  EXPECT_TRUE(during.checkCsrf("session-a", csrf));
  EXPECT_TRUE(during.checkCsrf("session-a", during.csrfTokenFor("session-a")));
  EXPECT_NE(during.csrfTokenFor("session-a"), csrf);
}

TEST(Csrf, IsNotAValidTokenMac) {
  // The CSRF derivation and token MACs share the key; a CSRF value must not work as a MAC.
  const TokenSigner signer({sequentialKey(0)});
  const std::string token = signer.sign(invitation());
  const std::string payload = token.substr(0, token.find('.'));
  const std::string csrf = signer.csrfTokenFor(
      std::string(reinterpret_cast<const char*>(base64UrlDecode(payload)->data()),
                  base64UrlDecode(payload)->size()));
  EXPECT_EQ(signer.verify(payload + "." + csrf, TokenKind::Invitation, kNow).error(),
            TokenError::BadSignature);
}

}  // namespace
}  // namespace parley::auth
