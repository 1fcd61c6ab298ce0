#include <array>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>

namespace parley::stun {
namespace {

const TransactionId kId = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

std::vector<std::uint8_t> signedMessage(Bytes key) {
  std::array<std::uint8_t, 256> buffer{};
  MessageBuilder builder(buffer, 0x0001, kId);
  builder.addText(attr::kUsername, "bob").addMessageIntegritySha256(key).addFingerprint();
  const auto built = builder.finish();
  return {built->begin(), built->end()};
}

TEST(Integrity, TamperingBreaksFingerprintAndIntegrity) {
  const std::uint8_t key[] = {1, 2, 3};
  auto bytes = signedMessage(key);
  ASSERT_EQ(checkFingerprint(*Message::parse(bytes)), Check::Valid);
  bytes[24] ^= 0x20;  // 'b' -> 'B' in USERNAME
  const auto message = Message::parse(bytes);
  ASSERT_TRUE(message);
  EXPECT_EQ(checkFingerprint(*message), Check::Invalid);
  EXPECT_EQ(checkMessageIntegritySha256(*message, key), Check::Invalid);
}

TEST(Integrity, WrongKeyAndAbsentAttribute) {
  const std::uint8_t key[] = {1, 2, 3};
  const std::uint8_t other[] = {1, 2, 4};
  const auto bytes = signedMessage(key);
  const auto message = Message::parse(bytes);
  EXPECT_EQ(checkMessageIntegritySha256(*message, key), Check::Valid);
  EXPECT_EQ(checkMessageIntegritySha256(*message, other), Check::Invalid);
  EXPECT_EQ(checkMessageIntegrity(*message, key), Check::Absent);
}

TEST(Integrity, EmptyKeyIsAKeyNotThePreviousOne) {
  const std::uint8_t key[] = {1, 2, 3};
  const auto withKey = signedMessage(key);
  const auto withEmpty = signedMessage({});
  EXPECT_NE(withKey, withEmpty);
  EXPECT_EQ(checkMessageIntegritySha256(*Message::parse(withEmpty), {}), Check::Valid);
  EXPECT_EQ(checkMessageIntegritySha256(*Message::parse(withEmpty), key), Check::Invalid);
}

TEST(Integrity, TruncatedSha256IsAcceptedWhenAMultipleOfFour) {
  // A sender may truncate MESSAGE-INTEGRITY-SHA256 to 16..28 bytes (RFC 8489 §14.6); the MAC
  // then covers a header whose length ends after the shorter attribute. Computed here with
  // OpenSSL's one-shot HMAC, independent of the codec.
  const std::uint8_t key[] = {7, 7};
  for (std::size_t macSize : {16u, 20u, 28u}) {
    std::vector<std::uint8_t> bytes = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
    bytes.insert(bytes.end(), kId.begin(), kId.end());
    bytes.insert(bytes.end(), {0x00, 0x06, 0x00, 0x03, 'b', 'o', 'b', 0x00});
    bytes.insert(bytes.end(), {0x00, 0x1C, 0x00, static_cast<std::uint8_t>(macSize)});
    bytes[3] = static_cast<std::uint8_t>(bytes.size() - 20 + macSize);
    unsigned char mac[32];
    unsigned int macLength = 0;
    HMAC(EVP_sha256(), key, sizeof key, bytes.data(), bytes.size() - 4, mac, &macLength);
    bytes.insert(bytes.end(), mac, mac + macSize);
    const auto message = Message::parse(bytes);
    ASSERT_TRUE(message);
    EXPECT_EQ(checkMessageIntegritySha256(*message, key), Check::Valid) << macSize;
    bytes.back() ^= 1;
    EXPECT_EQ(checkMessageIntegritySha256(*Message::parse(bytes), key), Check::Invalid);
  }
  // 12 bytes is shorter than allowed, whatever the MAC.
  std::vector<std::uint8_t> shortMac = {0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xa4, 0x42};
  shortMac.insert(shortMac.end(), kId.begin(), kId.end());
  shortMac.insert(shortMac.end(), {0x00, 0x1C, 0x00, 0x0C});
  shortMac.insert(shortMac.end(), 12, 0);
  EXPECT_EQ(checkMessageIntegritySha256(*Message::parse(shortMac), key), Check::Invalid);
}

TEST(Integrity, SaslPrepAndKeys) {
  EXPECT_EQ(*saslPrep("user"), "user");
  EXPECT_EQ(*saslPrep("I\xc2\xadX"), "IX");    // soft hyphen maps to nothing
  EXPECT_EQ(*saslPrep("\xe2\x85\xa8"), "IX");  // ROMAN NUMERAL NINE, NFKC
  EXPECT_FALSE(saslPrep("a\x07"
                        "b")
                   .has_value());                  // control characters are prohibited
  EXPECT_FALSE(saslPrep("\xff\xfe").has_value());  // not UTF-8
  const auto md5 = longTermKeyMd5("user", "realm", "pass");
  const auto sha = longTermKeySha256("user", "realm", "pass");
  ASSERT_TRUE(md5 && sha);
  // MD5("user:realm:pass") = 8493fbc53ba582fb4c044c456bdc40eb
  const std::array<std::uint8_t, 16> expected = {0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb,
                                                 0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc, 0x40, 0xeb};
  EXPECT_EQ(*md5, expected);
}

}  // namespace
}  // namespace parley::stun
