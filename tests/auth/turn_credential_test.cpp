#include <limits>

#include <gtest/gtest.h>

#include <parley/auth/turn_credential.hpp>

namespace parley::auth {
namespace {

TEST(TurnCredential, MatchesOpensslDgst) {
  // Obtained with:
  //   printf '%s' '1700086400:alice' | openssl dgst -sha1 -hmac 'north-turn-secret' -binary |
  //   base64
  const auto credential = makeTurnCredential("north-turn-secret", "alice", 1'700'000'000, 86'400);
  EXPECT_EQ(credential.username, "1700086400:alice");
  EXPECT_EQ(credential.credential, "s10DYljgT6iiuI1tSAubnmHni6s=");
  EXPECT_EQ(credential.expiresAt, 1'700'086'400);
}

TEST(TurnCredential, WithoutUserTheUsernameIsTheExpiry) {
  // printf '%s' '1700086400' | openssl dgst -sha1 -hmac 'north-turn-secret' -binary | base64
  const auto credential = makeTurnCredential("north-turn-secret", "", 1'700'000'000, 86'400);
  EXPECT_EQ(credential.username, "1700086400");
  EXPECT_EQ(credential.credential, "1QINXJ9T+Eu94zMhjONNwyuyrfA=");
}

TEST(TurnCredential, DependsOnSecretUserAndTime) {
  const auto base = makeTurnCredential("secret", "p1", 1000, 60);
  EXPECT_EQ(base.credential.size(), 28u);  // 20 bytes, standard base64 with one '='
  EXPECT_EQ(base.credential.back(), '=');
  EXPECT_EQ(makeTurnCredential("secret", "p1", 1000, 60), base);
  EXPECT_NE(makeTurnCredential("secret2", "p1", 1000, 60).credential, base.credential);
  EXPECT_NE(makeTurnCredential("secret", "p2", 1000, 60).credential, base.credential);
  EXPECT_NE(makeTurnCredential("secret", "p1", 1001, 60).credential, base.credential);
}

TEST(TurnCredential, RefusesLifetimesThatMakeNoSense) {
  EXPECT_THROW(makeTurnCredential("secret", "p1", 1000, 0), std::invalid_argument);
  EXPECT_THROW(makeTurnCredential("secret", "p1", 1000, -5), std::invalid_argument);
  EXPECT_THROW(makeTurnCredential("secret", "p1", std::numeric_limits<std::int64_t>::max(), 1),
               std::invalid_argument);
}

}  // namespace
}  // namespace parley::auth
