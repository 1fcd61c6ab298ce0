// RFC 5769 test vectors: parse and verify the RFC's bytes, then build the same messages with
// MessageBuilder and verify those (byte for byte where the RFC pads with zeros).
#include <array>
#include <string>

#include <gtest/gtest.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>

#include "vectors.hpp"

namespace parley::stun {
namespace {

Bytes keyOf(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string textOf(const Message& message, std::uint16_t type) {
  const auto attribute = message.find(type);
  EXPECT_TRUE(attribute.has_value()) << "attribute " << type;
  if (!attribute) return {};
  return std::string(*decodeText(*attribute));
}

TEST(Rfc5769, SampleRequestParsesAndVerifies) {
  const auto message = Message::parse(test::kSampleRequest);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->method(), method::kBinding);
  EXPECT_EQ(message->messageClass(), MessageClass::Request);
  EXPECT_FALSE(message->isClassic());
  EXPECT_EQ(textOf(*message, attr::kSoftware), "STUN test client");
  EXPECT_EQ(textOf(*message, attr::kUsername), "evtj:h6vY");
  EXPECT_EQ(*decodeUint32(*message->find(attr::kPriority)), 0x6e0001ffu);
  const std::string key = *shortTermKey(test::kShortTermPassword);
  EXPECT_EQ(checkMessageIntegrity(*message, keyOf(key)), Check::Valid);
  EXPECT_EQ(checkMessageIntegrity(*message, keyOf("wrong")), Check::Invalid);
  EXPECT_EQ(checkFingerprint(*message), Check::Valid);
}

TEST(Rfc5769, SampleRequestRebuiltVerifies) {
  const auto original = Message::parse(test::kSampleRequest);
  ASSERT_TRUE(original);
  std::array<std::uint8_t, 256> buffer{};
  const std::string key = *shortTermKey(test::kShortTermPassword);
  MessageBuilder builder(buffer, messageType(method::kBinding, MessageClass::Request),
                         original->transactionId());
  const std::uint8_t tieBreaker[] = {0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36};
  builder.addText(attr::kSoftware, "STUN test client")
      .addUint32(attr::kPriority, 0x6e0001ff)
      .addAttribute(attr::kIceControlled, tieBreaker)
      .addText(attr::kUsername, "evtj:h6vY")
      .addMessageIntegrity(keyOf(key))
      .addFingerprint();
  const auto built = builder.finish();
  ASSERT_TRUE(built);
  // The RFC pads USERNAME with spaces, we pad with zeros: same length, other MAC.
  EXPECT_EQ(built->size(), test::kSampleRequest.size());
  const auto rebuilt = Message::parse(*built);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(checkMessageIntegrity(*rebuilt, keyOf(key)), Check::Valid);
  EXPECT_EQ(checkFingerprint(*rebuilt), Check::Valid);
  EXPECT_EQ(textOf(*rebuilt, attr::kUsername), "evtj:h6vY");
}

void expectResponseVector(const std::vector<std::uint8_t>& vector, const Endpoint& mapped) {
  const auto message = Message::parse(vector);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->messageClass(), MessageClass::SuccessResponse);
  EXPECT_EQ(textOf(*message, attr::kSoftware), "test vector");
  const auto xorMapped = message->decodeXorAddress(*message->find(attr::kXorMappedAddress));
  ASSERT_TRUE(xorMapped);
  EXPECT_EQ(*xorMapped, mapped);
  const std::string key = *shortTermKey(test::kShortTermPassword);
  EXPECT_EQ(checkMessageIntegrity(*message, keyOf(key)), Check::Valid);
  EXPECT_EQ(checkFingerprint(*message), Check::Valid);

  // Build it again: same fields, our zero padding; MI and FINGERPRINT must verify.
  std::array<std::uint8_t, 256> buffer{};
  MessageBuilder builder(buffer, message->type(), message->transactionId());
  builder.addText(attr::kSoftware, "test vector")
      .addXorAddress(attr::kXorMappedAddress, mapped)
      .addMessageIntegrity(keyOf(key))
      .addFingerprint();
  const auto built = builder.finish();
  ASSERT_TRUE(built);
  ASSERT_EQ(built->size(), vector.size());
  // Everything but SOFTWARE's padding byte, MI and FINGERPRINT is identical to the RFC's bytes.
  const std::size_t xorStart = 20 + 4 + 12;
  const std::size_t miStart = vector.size() - 8 - 24;
  EXPECT_TRUE(std::equal(vector.begin(), vector.begin() + 35, built->begin()));
  EXPECT_TRUE(
      std::equal(vector.begin() + xorStart, vector.begin() + miStart, built->begin() + xorStart));
  const auto rebuilt = Message::parse(*built);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(checkMessageIntegrity(*rebuilt, keyOf(key)), Check::Valid);
  EXPECT_EQ(checkFingerprint(*rebuilt), Check::Valid);
  EXPECT_EQ(*rebuilt->decodeXorAddress(*rebuilt->find(attr::kXorMappedAddress)), mapped);
}

TEST(Rfc5769, SampleIpv4Response) {
  expectResponseVector(test::kSampleIpv4Response, Endpoint{*IpAddress::parse("192.0.2.1"), 32853});
}

TEST(Rfc5769, SampleIpv6Response) {
  expectResponseVector(test::kSampleIpv6Response,
                       Endpoint{*IpAddress::parse("2001:db8:1234:5678:11:2233:4455:6677"), 32853});
}

TEST(Rfc5769, LongTermRequestVerifies) {
  const auto message = Message::parse(test::kSampleLongTermRequest);
  ASSERT_TRUE(message);
  EXPECT_EQ(textOf(*message, attr::kUsername), test::kLongTermUsername);
  EXPECT_EQ(textOf(*message, attr::kNonce), "f//499k954d6OL34oL9FSTvy64sA");
  EXPECT_EQ(textOf(*message, attr::kRealm), "example.org");
  EXPECT_EQ(*saslPrep(test::kLongTermPassword), "TheMatrIX");
  const auto key = longTermKeyMd5(test::kLongTermUsername, "example.org", test::kLongTermPassword);
  ASSERT_TRUE(key);
  EXPECT_EQ(checkMessageIntegrity(*message, *key), Check::Valid);
  EXPECT_EQ(checkFingerprint(*message), Check::Absent);
}

TEST(Rfc5769, LongTermRequestRebuiltByteForByte) {
  const auto original = Message::parse(test::kSampleLongTermRequest);
  ASSERT_TRUE(original);
  const auto key = longTermKeyMd5(test::kLongTermUsername, "example.org", test::kLongTermPassword);
  ASSERT_TRUE(key);
  std::array<std::uint8_t, 256> buffer{};
  MessageBuilder builder(buffer, messageType(method::kBinding, MessageClass::Request),
                         original->transactionId());
  builder.addText(attr::kUsername, test::kLongTermUsername)
      .addText(attr::kNonce, "f//499k954d6OL34oL9FSTvy64sA")
      .addText(attr::kRealm, "example.org")
      .addMessageIntegrity(*key);
  const auto built = builder.finish();
  ASSERT_TRUE(built);
  EXPECT_EQ(std::vector<std::uint8_t>(built->begin(), built->end()), test::kSampleLongTermRequest);
}

}  // namespace
}  // namespace parley::stun
