#include <deque>
#include <vector>

#include <gtest/gtest.h>

#include <parley/stun/message.hpp>

#include "vectors.hpp"

namespace parley::stun {
namespace {

std::vector<std::uint8_t> header(std::uint16_t type, std::uint16_t length, bool cookie = true) {
  std::vector<std::uint8_t> bytes = {
      static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type),
      static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
  if (cookie) {
    bytes.insert(bytes.end(), {0x21, 0x12, 0xa4, 0x42});
  } else {
    bytes.insert(bytes.end(), {0xde, 0xad, 0xbe, 0xef});
  }
  bytes.insert(bytes.end(), 12, 0x07);
  return bytes;
}

void append(std::vector<std::uint8_t>& bytes, std::initializer_list<std::uint8_t> more) {
  bytes.insert(bytes.end(), more);
}

TEST(MessageType, InterleavesMethodAndClass) {
  // RFC 8489 §5 and §6: Binding request 0x0001, success 0x0101, error 0x0111, indication 0x0011.
  EXPECT_EQ(messageType(method::kBinding, MessageClass::Request), 0x0001);
  EXPECT_EQ(messageType(method::kBinding, MessageClass::SuccessResponse), 0x0101);
  EXPECT_EQ(messageType(method::kBinding, MessageClass::ErrorResponse), 0x0111);
  EXPECT_EQ(messageType(method::kBinding, MessageClass::Indication), 0x0011);
  // RFC 8656: Allocate error 0x0113, Send indication 0x0016, Data indication 0x0017.
  EXPECT_EQ(messageType(method::kAllocate, MessageClass::ErrorResponse), 0x0113);
  EXPECT_EQ(messageType(method::kSend, MessageClass::Indication), 0x0016);
  EXPECT_EQ(messageType(method::kData, MessageClass::Indication), 0x0017);
  for (std::uint16_t m = 0; m < 0x1000; m += 7) {
    for (auto c : {MessageClass::Request, MessageClass::Indication, MessageClass::SuccessResponse,
                   MessageClass::ErrorResponse}) {
      const auto type = messageType(m, c);
      EXPECT_EQ(methodOf(type), m);
      EXPECT_EQ(classOf(type), c);
      EXPECT_EQ(type & 0xC000, 0);
    }
  }
}

TEST(MessageParse, RejectsMalformedFraming) {
  EXPECT_EQ(Message::parse(std::vector<std::uint8_t>(19, 0)).error(), ParseError::TooShort);
  auto notStun = header(0x0001, 0);
  notStun[0] = 0x80;
  EXPECT_EQ(Message::parse(notStun).error(), ParseError::NotStun);
  auto oddLength = header(0x0001, 2);
  append(oddLength, {0, 0});
  EXPECT_EQ(Message::parse(oddLength).error(), ParseError::BadLength);
  auto lengthMismatch = header(0x0001, 8);
  append(lengthMismatch, {0, 0, 0, 0});
  EXPECT_EQ(Message::parse(lengthMismatch).error(), ParseError::BadLength);
  // Attribute announcing 8 bytes in a 4-byte body.
  auto truncated = header(0x0001, 8);
  append(truncated, {0x80, 0x22, 0x00, 0x08, 'a', 'b', 'c', 'd'});
  EXPECT_EQ(Message::parse(truncated).error(), ParseError::TruncatedAttribute);
  // Padding counts: a 5-byte value needs 8 bytes.
  auto unpadded = header(0x0001, 12);
  append(unpadded, {0x80, 0x22, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e', 0, 0, 0});
  EXPECT_TRUE(Message::parse(unpadded));
  unpadded.resize(unpadded.size() - 4);
  unpadded[3] = 8;
  EXPECT_EQ(Message::parse(unpadded).error(), ParseError::TruncatedAttribute);
  auto afterFingerprint = header(0x0001, 16);
  append(afterFingerprint,
         {0x80, 0x28, 0x00, 0x04, 1, 2, 3, 4, 0x80, 0x22, 0x00, 0x04, 'a', 'b', 'c', 'd'});
  EXPECT_EQ(Message::parse(afterFingerprint).error(), ParseError::AttributeAfterFingerprint);
}

TEST(MessageParse, ClassicMessageWithoutCookie) {
  auto classic = header(0x0001, 0, false);
  const auto message = Message::parse(classic);
  ASSERT_TRUE(message);
  EXPECT_TRUE(message->isClassic());
  EXPECT_EQ(message->legacyTransactionId()[0], 0xde);
}

TEST(MessageParse, IgnoresAttributesAfterIntegrityExceptSha256AndFingerprint) {
  auto bytes = header(0x0001, 0);
  append(bytes, {0x00, 0x08, 0x00, 0x14});  // MESSAGE-INTEGRITY
  bytes.insert(bytes.end(), 20, 0xAA);
  append(bytes, {0x80, 0x22, 0x00, 0x04, 'i', 'g', 'n', 'o'});  // SOFTWARE: ignored
  append(bytes, {0x00, 0x1C, 0x00, 0x20});                      // MESSAGE-INTEGRITY-SHA256
  bytes.insert(bytes.end(), 32, 0xBB);
  append(bytes, {0x80, 0x22, 0x00, 0x04, 'i', 'g', 'n', 'o'});  // ignored too
  append(bytes, {0x80, 0x28, 0x00, 0x04, 1, 2, 3, 4});          // FINGERPRINT
  const std::uint16_t length = static_cast<std::uint16_t>(bytes.size() - 20);
  bytes[2] = static_cast<std::uint8_t>(length >> 8);
  bytes[3] = static_cast<std::uint8_t>(length);
  const auto message = Message::parse(bytes);
  ASSERT_TRUE(message);
  std::vector<std::uint16_t> seen;
  for (const auto& attribute : *message)
    seen.push_back(attribute.type);
  EXPECT_EQ(seen, (std::vector<std::uint16_t>{attr::kMessageIntegrity,
                                              attr::kMessageIntegritySha256, attr::kFingerprint}));
  EXPECT_FALSE(message->find(attr::kSoftware));
}

// Keeps each value alive for the whole test binary, so tests can pass temporaries.
Attribute attributeOf(std::uint16_t type, std::vector<std::uint8_t> value) {
  static std::deque<std::vector<std::uint8_t>> values;
  values.push_back(std::move(value));
  return Attribute{type, Bytes(values.back()), 0};
}

TEST(AttributeDecode, Addresses) {
  const std::vector<std::uint8_t> v4 = {0, 0x01, 0x0d, 0x96, 192, 0, 2, 1};
  EXPECT_EQ(Message::decodeAddress(attributeOf(attr::kMappedAddress, v4))->toString(),
            "192.0.2.1:3478");
  std::vector<std::uint8_t> v6 = {0, 0x02, 0x0d, 0x96, 0x20, 0x01, 0x0d, 0xb8};
  v6.resize(20, 0);
  v6[19] = 1;
  EXPECT_EQ(Message::decodeAddress(attributeOf(attr::kOtherAddress, v6))->toString(),
            "[2001:db8::1]:3478");
  const std::vector<std::uint8_t> badFamily = {0, 0x03, 0x0d, 0x96, 192, 0, 2, 1};
  EXPECT_EQ(Message::decodeAddress(attributeOf(attr::kMappedAddress, badFamily)).error(),
            DecodeError::BadFamily);
  const std::vector<std::uint8_t> shortV4 = {0, 0x01, 0x0d, 0x96, 192, 0, 2};
  EXPECT_EQ(Message::decodeAddress(attributeOf(attr::kMappedAddress, shortV4)).error(),
            DecodeError::WrongSize);
  const std::vector<std::uint8_t> v6SizedAsV4 = {0, 0x02, 0x0d, 0x96, 192, 0, 2, 1};
  EXPECT_EQ(Message::decodeAddress(attributeOf(attr::kMappedAddress, v6SizedAsV4)).error(),
            DecodeError::WrongSize);
}

TEST(AttributeDecode, ErrorCode) {
  const std::vector<std::uint8_t> value = {0, 0, 4, 20, 'U', 'n', 'k'};
  const auto decoded = decodeErrorCode(attributeOf(attr::kErrorCode, value));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->code, 420);
  EXPECT_EQ(decoded->reason, "Unk");
  EXPECT_EQ(decodeErrorCode(attributeOf(attr::kErrorCode, {0, 0, 2, 0})).error(),
            DecodeError::OutOfRange);
  EXPECT_EQ(decodeErrorCode(attributeOf(attr::kErrorCode, {0, 0, 4, 100})).error(),
            DecodeError::OutOfRange);
  EXPECT_EQ(decodeErrorCode(attributeOf(attr::kErrorCode, {0, 0, 4})).error(),
            DecodeError::WrongSize);
}

TEST(AttributeDecode, TextLimits) {
  EXPECT_TRUE(decodeText(attributeOf(attr::kUsername, std::vector<std::uint8_t>(512, 'u'))));
  EXPECT_EQ(decodeText(attributeOf(attr::kUsername, std::vector<std::uint8_t>(513, 'u'))).error(),
            DecodeError::OutOfRange);
  EXPECT_TRUE(decodeText(attributeOf(attr::kRealm, std::vector<std::uint8_t>(763, 'r'))));
  EXPECT_EQ(decodeText(attributeOf(attr::kNonce, std::vector<std::uint8_t>(764, 'n'))).error(),
            DecodeError::OutOfRange);
}

TEST(AttributeDecode, UnknownAttributesAndUint32) {
  const auto list = decodeUnknownAttributes(attributeOf(attr::kUnknownAttributes, {0, 3, 0x7f, 1}));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], 0x0003);
  EXPECT_EQ((*list)[1], 0x7f01);
  EXPECT_FALSE(decodeUnknownAttributes(attributeOf(attr::kUnknownAttributes, {0, 3, 0})));
  EXPECT_EQ(*decodeUint32(attributeOf(attr::kLifetime, {0, 0, 0x02, 0x58})), 600u);
  EXPECT_FALSE(decodeUint32(attributeOf(attr::kLifetime, {0, 0, 2})));
}

TEST(AttributeDecode, PasswordAlgorithms) {
  const std::vector<std::uint8_t> both = {0, 2, 0, 0, 0, 1, 0, 0};
  std::vector<std::uint16_t> seen;
  ASSERT_TRUE(
      forEachPasswordAlgorithm(attributeOf(attr::kPasswordAlgorithms, both),
                               [&](const PasswordAlgorithm& a) { seen.push_back(a.algorithm); }));
  EXPECT_EQ(seen, (std::vector<std::uint16_t>{algorithm::kSha256, algorithm::kMd5}));
  // Parameters of 3 bytes are padded to 4 inside the list.
  const std::vector<std::uint8_t> withParams = {0, 9, 0, 3, 'a', 'b', 'c', 0, 0, 1, 0, 0};
  seen.clear();
  ASSERT_TRUE(
      forEachPasswordAlgorithm(attributeOf(attr::kPasswordAlgorithms, withParams),
                               [&](const PasswordAlgorithm& a) { seen.push_back(a.algorithm); }));
  EXPECT_EQ(seen, (std::vector<std::uint16_t>{9, algorithm::kMd5}));
  const std::vector<std::uint8_t> truncated = {0, 2, 0, 8, 1, 2};
  bool called = false;
  EXPECT_FALSE(forEachPasswordAlgorithm(attributeOf(attr::kPasswordAlgorithms, truncated),
                                        [&](const PasswordAlgorithm&) { called = true; }));
  EXPECT_FALSE(called);
  const auto one = decodePasswordAlgorithm(attributeOf(attr::kPasswordAlgorithm, {0, 2, 0, 0}));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->algorithm, algorithm::kSha256);
  EXPECT_FALSE(decodePasswordAlgorithm(attributeOf(attr::kPasswordAlgorithm, both)));
}

}  // namespace
}  // namespace parley::stun
