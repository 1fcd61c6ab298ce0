// Round trips of every attribute the codec writes, and the builder's error handling.
#include <array>
#include <string>

#include <gtest/gtest.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>

namespace parley::stun {
namespace {

const TransactionId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

Endpoint endpoint(const char* address, std::uint16_t port) {
  return Endpoint{*IpAddress::parse(address), port};
}

TEST(MessageBuilder, RoundTripsEveryAttribute) {
  std::array<std::uint8_t, 1024> buffer{};
  const std::string key = "key";
  const Bytes keyBytes(reinterpret_cast<const std::uint8_t*>(key.data()), key.size());
  const auto hash = userhash("user", "realm");
  const std::uint8_t algorithms[] = {0, 2, 0, 0, 0, 1, 0, 0};
  const std::uint8_t algorithmSha256[] = {0, 2, 0, 0};
  const std::uint16_t unknown[] = {0x0002, 0x7777};
  MessageBuilder builder(buffer, messageType(method::kBinding, MessageClass::ErrorResponse), kId);
  builder.addXorAddress(attr::kXorMappedAddress, endpoint("192.0.2.1", 1))
      .addXorAddress(attr::kXorPeerAddress, endpoint("2001:db8::42", 65535))
      .addAddress(attr::kMappedAddress, endpoint("198.51.100.7", 3478))
      .addAddress(attr::kAlternateServer, endpoint("2001:db8::1", 443))
      .addAddress(attr::kResponseOrigin, endpoint("203.0.113.1", 3478))
      .addAddress(attr::kOtherAddress, endpoint("203.0.113.2", 3479))
      .addText(attr::kUsername, "alice")
      .addAttribute(attr::kUserhash, hash)
      .addText(attr::kRealm, "example.org")
      .addText(attr::kNonce, "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
      .addAttribute(attr::kPasswordAlgorithms, algorithms)
      .addAttribute(attr::kPasswordAlgorithm, algorithmSha256)
      .addText(attr::kSoftware, "parley test")
      .addErrorCode(error::kUnknownAttribute)
      .addUnknownAttributes(unknown)
      .addMessageIntegrity(keyBytes)
      .addMessageIntegritySha256(keyBytes)
      .addFingerprint();
  const auto built = builder.finish();
  ASSERT_TRUE(built);
  const auto message = Message::parse(*built);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->messageClass(), MessageClass::ErrorResponse);
  EXPECT_TRUE(std::equal(kId.begin(), kId.end(), message->transactionId().begin()));
  EXPECT_EQ(*message->decodeXorAddress(*message->find(attr::kXorMappedAddress)),
            endpoint("192.0.2.1", 1));
  EXPECT_EQ(*message->decodeXorAddress(*message->find(attr::kXorPeerAddress)),
            endpoint("2001:db8::42", 65535));
  EXPECT_EQ(*Message::decodeAddress(*message->find(attr::kMappedAddress)),
            endpoint("198.51.100.7", 3478));
  EXPECT_EQ(*Message::decodeAddress(*message->find(attr::kAlternateServer)),
            endpoint("2001:db8::1", 443));
  EXPECT_EQ(*Message::decodeAddress(*message->find(attr::kResponseOrigin)),
            endpoint("203.0.113.1", 3478));
  EXPECT_EQ(*Message::decodeAddress(*message->find(attr::kOtherAddress)),
            endpoint("203.0.113.2", 3479));
  EXPECT_EQ(*decodeText(*message->find(attr::kUsername)), "alice");
  const auto userhashValue = message->find(attr::kUserhash)->value;
  EXPECT_TRUE(std::equal(hash.begin(), hash.end(), userhashValue.begin(), userhashValue.end()));
  EXPECT_EQ(*decodeText(*message->find(attr::kRealm)), "example.org");
  EXPECT_EQ(*decodeText(*message->find(attr::kNonce)), "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
  int algorithmCount = 0;
  EXPECT_TRUE(forEachPasswordAlgorithm(*message->find(attr::kPasswordAlgorithms),
                                       [&](const PasswordAlgorithm&) { ++algorithmCount; }));
  EXPECT_EQ(algorithmCount, 2);
  EXPECT_EQ(decodePasswordAlgorithm(*message->find(attr::kPasswordAlgorithm))->algorithm,
            algorithm::kSha256);
  EXPECT_EQ(*decodeText(*message->find(attr::kSoftware)), "parley test");
  const auto errorCode = decodeErrorCode(*message->find(attr::kErrorCode));
  EXPECT_EQ(errorCode->code, 420);
  EXPECT_EQ(errorCode->reason, "Unknown Attribute");
  const auto unknownList = decodeUnknownAttributes(*message->find(attr::kUnknownAttributes));
  ASSERT_EQ(unknownList->size(), 2u);
  EXPECT_EQ((*unknownList)[1], 0x7777);
  EXPECT_EQ(checkMessageIntegrity(*message, keyBytes), Check::Valid);
  EXPECT_EQ(checkMessageIntegritySha256(*message, keyBytes), Check::Valid);
  EXPECT_EQ(checkFingerprint(*message), Check::Valid);
}

TEST(MessageBuilder, PadsWithZerosWhateverTheBufferHeld) {
  std::array<std::uint8_t, 64> buffer;
  buffer.fill(0xEE);
  MessageBuilder builder(buffer, messageType(method::kBinding, MessageClass::Request), kId);
  builder.addText(attr::kSoftware, "abcde");
  const auto built = builder.finish();
  ASSERT_TRUE(built);
  ASSERT_EQ(built->size(), 20u + 4 + 8);
  EXPECT_EQ((*built)[3], 12);  // length field
  EXPECT_EQ((*built)[29], 0);
  EXPECT_EQ((*built)[30], 0);
  EXPECT_EQ((*built)[31], 0);
}

TEST(MessageBuilder, OverflowIsStickyAndReported) {
  std::array<std::uint8_t, 30> buffer{};
  MessageBuilder builder(buffer, messageType(method::kBinding, MessageClass::Request), kId);
  builder.addUint32(attr::kLifetime, 1);  // 28 bytes: fits
  EXPECT_TRUE(builder.ok());
  builder.addUint32(attr::kLifetime, 2).addFingerprint();  // does not fit
  EXPECT_FALSE(builder.ok());
  EXPECT_EQ(builder.finish().error(), BuildError::BufferTooSmall);
  std::array<std::uint8_t, 8> tiny{};
  MessageBuilder tooSmall(tiny, 0x0001, kId);
  EXPECT_EQ(tooSmall.finish().error(), BuildError::BufferTooSmall);
}

TEST(MessageBuilder, RejectsValuesPastTheLengthField) {
  std::vector<std::uint8_t> buffer(70000);
  std::vector<std::uint8_t> big(65536, 1);
  MessageBuilder builder(buffer, 0x0001, kId);
  builder.addAttribute(attr::kData, big);
  EXPECT_EQ(builder.finish().error(), BuildError::ValueTooLong);
  MessageBuilder badCode(buffer, 0x0111, kId);
  badCode.addErrorCode(700, "no such class");
  EXPECT_FALSE(badCode.ok());
}

TEST(MessageBuilder, ClassicEchoesTheWholeTransactionId) {
  std::array<std::uint8_t, 16> legacyId;
  for (std::size_t i = 0; i < legacyId.size(); ++i)
    legacyId[i] = static_cast<std::uint8_t>(i);
  std::array<std::uint8_t, 64> buffer{};
  auto builder = MessageBuilder::classic(buffer, 0x0101, legacyId);
  builder.addAddress(attr::kMappedAddress, endpoint("192.0.2.1", 5));
  const auto message = Message::parse(*builder.finish());
  ASSERT_TRUE(message);
  EXPECT_TRUE(message->isClassic());
  EXPECT_TRUE(std::equal(legacyId.begin(), legacyId.end(), message->legacyTransactionId().begin()));
}

}  // namespace
}  // namespace parley::stun
