#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <limits>

#include <gtest/gtest.h>
#include <sodium.h>

#include <parley/auth/password.hpp>

namespace parley::auth {
namespace {

// Argon2id's minimum passes and a small memory: fast tests, same code path.
PasswordPolicy cheap() {
  PasswordPolicy policy;
  policy.opsLimit = 1;
  policy.memLimitBytes = 64 * 1024;
  return policy;
}

TEST(Password, VerifiesTheRightPasswordAndNoOther) {
  const std::string hash = hashPassword("correct horse battery staple", cheap());
  EXPECT_TRUE(verifyPassword(hash, "correct horse battery staple"));
  EXPECT_FALSE(verifyPassword(hash, "correct horse battery stapler"));
  EXPECT_FALSE(verifyPassword(hash, "Correct horse battery staple"));
  EXPECT_FALSE(verifyPassword(hash, ""));
}

TEST(Password, HandlesEmptyUnicodeAndEmbeddedNulPasswords) {
  const std::string empty = hashPassword("", cheap());
  EXPECT_TRUE(verifyPassword(empty, ""));
  EXPECT_FALSE(verifyPassword(empty, " "));

  const std::string unicode = hashPassword("pässwörd-日本語", cheap());
  EXPECT_TRUE(verifyPassword(unicode, "pässwörd-日本語"));
  EXPECT_FALSE(verifyPassword(unicode, "passwort-日本語"));

  // The length is passed, not a C string: nothing after a NUL is cut off.
  const std::string withNul("abc\0def", 7);
  const std::string nulHash = hashPassword(withNul, cheap());
  EXPECT_TRUE(verifyPassword(nulHash, withNul));
  EXPECT_FALSE(verifyPassword(nulHash, "abc"));
}

TEST(Password, EncodesArgon2idWithThePolicyParameters) {
  const std::string hash = hashPassword("secret password", cheap());
  // m is in KiB (64 KiB), t the passes, p the lanes (libsodium always uses 1).
  EXPECT_EQ(hash.rfind("$argon2id$v=19$m=64,t=1,p=1$", 0), 0u) << hash;

  PasswordPolicy other = cheap();
  other.opsLimit = 3;
  other.memLimitBytes = 128 * 1024;
  EXPECT_EQ(hashPassword("secret password", other).rfind("$argon2id$v=19$m=128,t=3,p=1$", 0), 0u);
}

TEST(Password, DefaultPolicyIsLibsodiumInteractive) {
  const PasswordPolicy policy;
  EXPECT_EQ(policy.opsLimit, crypto_pwhash_OPSLIMIT_INTERACTIVE);
  EXPECT_EQ(policy.memLimitBytes, crypto_pwhash_MEMLIMIT_INTERACTIVE);
  const std::string hash = hashPassword("a real deployment password");
  EXPECT_EQ(hash.rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0), 0u) << hash;
  EXPECT_TRUE(verifyPassword(hash, "a real deployment password"));
}

TEST(Password, SaltsEveryHash) {
  EXPECT_NE(hashPassword("same password", cheap()), hashPassword("same password", cheap()));
}

TEST(Password, MalformedHashesNeverVerify) {
  const std::string good = hashPassword("password1", cheap());
  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  const std::string withNul = good.substr(0, 20) + std::string(1, '\0') + good.substr(21);
  for (const std::string& hash : {
           std::string(), std::string("password1"), std::string("$argon2id$"),
           std::string("$argon2id$v=19$m=64,t=1,p=1$"), good.substr(0, good.size() - 5),
           good.substr(1), flipped, withNul, good + "AAAA", std::string(500, 'a'),
           std::string("$argon2id$v=19$m=999999999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA"),
           std::string("$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNo"),
           std::string("$2y$10$abcdefghijklmnopqrstuuJ3RCwCWUuPbBf9/qGj1GvcCzGk5Z5Om"),  // bcrypt
       }) {
    EXPECT_FALSE(verifyPassword(hash, "password1")) << hash;
  }
}

TEST(Password, NeedsRehashWhenTheParametersOrAlgorithmDiffer) {
  const PasswordPolicy policy = cheap();
  const std::string hash = hashPassword("password1", policy);
  EXPECT_FALSE(needsRehash(hash, policy));

  PasswordPolicy morePasses = policy;
  morePasses.opsLimit = 2;
  EXPECT_TRUE(needsRehash(hash, morePasses));
  PasswordPolicy moreMemory = policy;
  moreMemory.memLimitBytes = 128 * 1024;
  EXPECT_TRUE(needsRehash(hash, moreMemory));
  // Length limits are not part of the hash.
  PasswordPolicy longer = policy;
  longer.minLength = 12;
  EXPECT_FALSE(needsRehash(hash, longer));

  EXPECT_TRUE(needsRehash("", policy));
  EXPECT_TRUE(needsRehash("garbage", policy));
  EXPECT_TRUE(needsRehash(hash.substr(0, 30), policy));
}

TEST(Password, Argon2iHashesStillVerifyButAreUpgraded) {
  const PasswordPolicy policy = cheap();
  std::array<char, crypto_pwhash_STRBYTES> argon2i{};
  ASSERT_EQ(crypto_pwhash_str_alg(argon2i.data(), "password1", 9, 3, policy.memLimitBytes,
                                  crypto_pwhash_ALG_ARGON2I13),
            0);
  EXPECT_TRUE(verifyPassword(argon2i.data(), "password1"));
  EXPECT_FALSE(verifyPassword(argon2i.data(), "password2"));
  PasswordPolicy sameCost = policy;
  sameCost.opsLimit = 3;
  EXPECT_TRUE(needsRehash(argon2i.data(), sameCost));
}

TEST(Password, HashingWithImpossibleParametersThrows) {
  PasswordPolicy noPasses = cheap();
  noPasses.opsLimit = 0;
  EXPECT_THROW(hashPassword("password1", noPasses), std::runtime_error);
  PasswordPolicy tooLittleMemory = cheap();
  tooLittleMemory.memLimitBytes = 1024;
  EXPECT_THROW(hashPassword("password1", tooLittleMemory), std::runtime_error);
}

TEST(PasswordPolicy, CountsCodePointsAgainstTheLimits) {
  const PasswordPolicy policy;  // 8 .. 1024
  EXPECT_EQ(checkPasswordPolicy("1234567", policy),
            "The password must be at least 8 characters long.");
  EXPECT_EQ(checkPasswordPolicy("12345678", policy), std::nullopt);
  EXPECT_EQ(checkPasswordPolicy("", policy), "The password must be at least 8 characters long.");
  // 8 code points in 16 bytes pass; 7 two-byte code points (14 bytes) do not.
  EXPECT_EQ(checkPasswordPolicy("äöüäöüäö", policy), std::nullopt);
  EXPECT_TRUE(checkPasswordPolicy("äöüäöüä", policy));
  // A four-byte code point counts once.
  EXPECT_TRUE(checkPasswordPolicy("🔑🔑🔑🔑🔑🔑🔑", policy));
  EXPECT_EQ(checkPasswordPolicy("🔑🔑🔑🔑🔑🔑🔑🔑", policy), std::nullopt);
  // Spaces are characters like any other (NIST SP 800-63B §5.1.1.2).
  EXPECT_EQ(checkPasswordPolicy("        ", policy), std::nullopt);

  EXPECT_EQ(checkPasswordPolicy(std::string(1024, 'a'), policy), std::nullopt);
  EXPECT_EQ(checkPasswordPolicy(std::string(1025, 'a'), policy),
            "The password must be at most 1024 characters long.");

  PasswordPolicy strict;
  strict.minLength = 12;
  strict.maxLength = 16;
  EXPECT_EQ(checkPasswordPolicy("12345678901", strict),
            "The password must be at least 12 characters long.");
  EXPECT_EQ(checkPasswordPolicy("123456789012", strict), std::nullopt);
  EXPECT_EQ(checkPasswordPolicy("12345678901234567", strict),
            "The password must be at most 16 characters long.");
}

TEST(PasswordPolicy, RefusesMalformedUtf8) {
  const std::string notUtf8 = "The password is not valid UTF-8 text.";
  for (const std::string& password : {
           std::string("password\xff"),
           std::string("password\xc0\xaf"),          // overlong '/'
           std::string("password\xed\xa0\x80"),      // UTF-16 surrogate
           std::string("password\xf4\x90\x80\x80"),  // above U+10FFFF
           std::string("password\xe2\x82"),          // truncated sequence
           std::string("password\x80"),              // lone continuation byte
       }) {
    EXPECT_EQ(checkPasswordPolicy(password), notUtf8);
  }
}

TEST(Password, BurningCostsAsMuchAsAVerification) {
  // Compared in this thread's CPU time, not wall time, so other load on the machine does not
  // decide the outcome; the best of three runs of each.
  PasswordPolicy policy;
  policy.opsLimit = 2;
  policy.memLimitBytes = 16 * 1024 * 1024;
  const std::string hash = hashPassword("password1", policy);
  auto cpuNanoseconds = [] {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  };
  auto fastest = [&](auto&& work) {
    std::int64_t best = std::numeric_limits<std::int64_t>::max();
    for (int i = 0; i < 3; ++i) {
      const auto start = cpuNanoseconds();
      work();
      best = std::min(best, cpuNanoseconds() - start);
    }
    return best;
  };
  const auto verifying = fastest([&] { (void)verifyPassword(hash, "wrong password"); });
  const auto burning = fastest([&] { burnPasswordVerification(policy); });
  EXPECT_GT(burning, verifying / 2);
  EXPECT_LT(burning, verifying * 2);
}

}  // namespace
}  // namespace parley::auth
