#include <array>
#include <vector>

#include <gtest/gtest.h>

#include <parley/stun/binding.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>

namespace parley::stun {
namespace {

const TransactionId kId = {1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144};

Endpoint endpoint(const char* address, std::uint16_t port) {
  return Endpoint{*IpAddress::parse(address), port};
}

struct Request {
  std::array<std::uint8_t, 256> buffer{};
  MessageBuilder builder{buffer, messageType(method::kBinding, MessageClass::Request), kId};
  std::vector<std::uint8_t> bytes() {
    const auto built = *builder.finish();
    return {built.begin(), built.end()};
  }
};

class BindingTest : public ::testing::Test {
 protected:
  BindingContext context{endpoint("198.51.100.9", 40000), endpoint("192.0.2.10", 3478),
                         Transport::Udp, std::nullopt, "parley"};
  std::array<std::uint8_t, 1024> out{};

  Message answer(const std::vector<std::uint8_t>& request, BindingResult& result) {
    result = answerBinding(request, context, out);
    EXPECT_NE(result.outcome, Outcome::Drop);
    const auto parsed = Message::parse(result.response);
    EXPECT_TRUE(parsed);
    return *parsed;
  }
};

TEST_F(BindingTest, AnswersWithMappedAddressOriginSoftwareAndFingerprint) {
  Request request;
  request.builder.addFingerprint();
  BindingResult result;
  const auto response = answer(request.bytes(), result);
  EXPECT_EQ(result.outcome, Outcome::Respond);
  EXPECT_EQ(result.replyFrom, ReplyFrom::Same);
  EXPECT_EQ(response.type(), 0x0101);
  EXPECT_TRUE(std::equal(kId.begin(), kId.end(), response.transactionId().begin()));
  EXPECT_EQ(*response.decodeXorAddress(*response.find(attr::kXorMappedAddress)), context.source);
  EXPECT_EQ(*Message::decodeAddress(*response.find(attr::kResponseOrigin)), context.local);
  EXPECT_FALSE(response.find(attr::kOtherAddress));
  EXPECT_EQ(*decodeText(*response.find(attr::kSoftware)), "parley");
  EXPECT_EQ(checkFingerprint(response), Check::Valid);
}

TEST_F(BindingTest, Ipv6SourceAndNoSoftware) {
  context.source = endpoint("2001:db8::77", 5000);
  context.local = endpoint("2001:db8::1", 3478);
  context.software = "";
  Request request;
  BindingResult result;
  const auto response = answer(request.bytes(), result);
  EXPECT_EQ(*response.decodeXorAddress(*response.find(attr::kXorMappedAddress)), context.source);
  EXPECT_FALSE(response.find(attr::kSoftware));
}

TEST_F(BindingTest, UnknownComprehensionRequiredAttributesGet420) {
  Request request;
  const std::uint8_t value[] = {1, 2, 3, 4};
  request.builder.addAttribute(0x7ABC, value)
      .addAttribute(0xC001, value)  // comprehension-optional: ignored
      .addAttribute(0x0002, value)  // RFC 3489 RESPONSE-ADDRESS: never honoured
      .addFingerprint();
  BindingResult result;
  const auto response = answer(request.bytes(), result);
  EXPECT_EQ(result.outcome, Outcome::RespondError);
  EXPECT_EQ(response.type(), 0x0111);
  EXPECT_EQ(decodeErrorCode(*response.find(attr::kErrorCode))->code, 420);
  const auto unknown = decodeUnknownAttributes(*response.find(attr::kUnknownAttributes));
  ASSERT_EQ(unknown->size(), 2u);
  EXPECT_EQ((*unknown)[0], 0x7ABC);
  EXPECT_EQ((*unknown)[1], 0x0002);
  EXPECT_EQ(checkFingerprint(response), Check::Valid);
}

TEST_F(BindingTest, OtherMethodsGet400) {
  std::array<std::uint8_t, 64> buffer{};
  MessageBuilder allocate(buffer, messageType(method::kAllocate, MessageClass::Request), kId);
  const auto bytes = *allocate.finish();
  BindingResult result;
  const auto response = answer({bytes.begin(), bytes.end()}, result);
  EXPECT_EQ(response.type(), messageType(method::kAllocate, MessageClass::ErrorResponse));
  EXPECT_EQ(decodeErrorCode(*response.find(attr::kErrorCode))->code, 400);
}

TEST_F(BindingTest, DropsWhatNeedsNoAnswer) {
  std::array<std::uint8_t, 64> buffer{};
  MessageBuilder indication(buffer, messageType(method::kBinding, MessageClass::Indication), kId);
  const auto bytes = *indication.finish();
  EXPECT_EQ(answerBinding(bytes, context, out).dropReason, DropReason::NotARequest);
  MessageBuilder success(buffer, 0x0101, kId);
  EXPECT_EQ(answerBinding(*success.finish(), context, out).dropReason, DropReason::NotARequest);
  Request request;
  request.builder.addFingerprint();
  auto tampered = request.bytes();
  tampered.back() ^= 0xFF;
  EXPECT_EQ(answerBinding(tampered, context, out).dropReason, DropReason::BadFingerprint);
  const std::vector<std::uint8_t> garbage(20, 0xFF);
  EXPECT_EQ(answerBinding(garbage, context, out).dropReason, DropReason::Malformed);
  std::array<std::uint8_t, 24> small{};
  EXPECT_EQ(answerBinding(request.bytes(), context, small).dropReason, DropReason::BufferTooSmall);
}

TEST_F(BindingTest, ChangeRequestPicksTheSocketWhenThereIsAnOtherAddress) {
  context.otherAddress = endpoint("192.0.2.11", 3479);
  const std::pair<std::uint32_t, ReplyFrom> cases[] = {
      {0, ReplyFrom::Same},
      {kChangePort, ReplyFrom::ChangedPort},
      {kChangeIp, ReplyFrom::ChangedIp},
      {kChangeIp | kChangePort, ReplyFrom::ChangedIpAndPort}};
  for (const auto& [flags, expected] : cases) {
    Request request;
    request.builder.addUint32(attr::kChangeRequest, flags);
    BindingResult result;
    const auto response = answer(request.bytes(), result);
    EXPECT_EQ(result.replyFrom, expected);
    EXPECT_EQ(*Message::decodeAddress(*response.find(attr::kOtherAddress)), *context.otherAddress);
    const auto origin = *Message::decodeAddress(*response.find(attr::kResponseOrigin));
    EXPECT_EQ(origin.address.toString(), (flags & kChangeIp) ? "192.0.2.11" : "192.0.2.10");
    EXPECT_EQ(origin.port, (flags & kChangePort) ? 3479 : 3478);
  }
}

TEST_F(BindingTest, ChangeRequestWithoutOtherAddressOrOverTcpGets420) {
  for (bool tcp : {false, true}) {
    context.transport = tcp ? Transport::Tcp : Transport::Udp;
    context.otherAddress = tcp ? std::optional(endpoint("192.0.2.11", 3479)) : std::nullopt;
    Request request;
    request.builder.addUint32(attr::kChangeRequest, kChangeIp);
    BindingResult result;
    const auto response = answer(request.bytes(), result);
    EXPECT_EQ(decodeErrorCode(*response.find(attr::kErrorCode))->code, 420);
    EXPECT_EQ((*decodeUnknownAttributes(*response.find(attr::kUnknownAttributes)))[0],
              attr::kChangeRequest);
  }
}

TEST_F(BindingTest, ClassicClientGetsRfc3489Attributes) {
  context.otherAddress = endpoint("192.0.2.11", 3479);
  // RFC 3489 request: 128-bit transaction ID, CHANGE-REQUEST asking for another port.
  std::vector<std::uint8_t> request = {0x00, 0x01, 0x00, 0x08};
  for (std::uint8_t i = 0; i < 16; ++i)
    request.push_back(static_cast<std::uint8_t>(0xA0 + i));
  request.insert(request.end(), {0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0x02});
  BindingResult result;
  const auto response = answer(request, result);
  EXPECT_TRUE(response.isClassic());
  EXPECT_TRUE(std::equal(request.begin() + 4, request.begin() + 20, response.bytes().begin() + 4));
  EXPECT_EQ(result.replyFrom, ReplyFrom::ChangedPort);
  EXPECT_EQ(*Message::decodeAddress(*response.find(attr::kMappedAddress)), context.source);
  EXPECT_EQ(*Message::decodeAddress(*response.find(attr::kSourceAddress)),
            endpoint("192.0.2.10", 3479));
  EXPECT_EQ(*Message::decodeAddress(*response.find(attr::kChangedAddress)), *context.otherAddress);
  EXPECT_FALSE(response.find(attr::kXorMappedAddress));
  EXPECT_FALSE(response.find(attr::kFingerprint));
}

TEST_F(BindingTest, ResponsePortAndPaddingPerRfc5780) {
  Request request;
  const std::uint8_t port[] = {0x9c, 0x40, 0, 0};  // 40000
  const std::vector<std::uint8_t> padding(100, 0xAB);
  request.builder.addAttribute(attr::kResponsePort, port).addAttribute(attr::kPadding, padding);
  BindingResult result;
  const auto response = answer(request.bytes(), result);
  EXPECT_EQ(result.outcome, Outcome::Respond);
  ASSERT_TRUE(result.responsePort);
  EXPECT_EQ(*result.responsePort, 40000);
  EXPECT_EQ(response.find(attr::kPadding)->value.size(), 100u);
  // Over TCP RESPONSE-PORT means nothing: 400.
  context.transport = Transport::Tcp;
  Request overTcp;
  overTcp.builder.addAttribute(attr::kResponsePort, port);
  const auto tcpResponse = answer(overTcp.bytes(), result);
  EXPECT_EQ(decodeErrorCode(*tcpResponse.find(attr::kErrorCode))->code, 400);
  // PADDING beyond the bound: 400, never a large response.
  context.transport = Transport::Udp;
  const std::vector<std::uint8_t> tooMuch(kMaxPadding + 4, 0);
  std::array<std::uint8_t, 4096> bigBuffer{};
  MessageBuilder bigBuilder(bigBuffer, 0x0001, kId);
  bigBuilder.addAttribute(attr::kPadding, tooMuch);
  const auto bigBytes = *bigBuilder.finish();
  const auto bigResult = answerBinding(bigBytes, context, out);
  EXPECT_EQ(decodeErrorCode(*Message::parse(bigResult.response)->find(attr::kErrorCode))->code,
            400);
}

TEST_F(BindingTest, WildcardListenerSendsNoResponseOrigin) {
  context.local = endpoint("0.0.0.0", 3478);
  Request request;
  BindingResult result;
  const auto response = answer(request.bytes(), result);
  EXPECT_FALSE(response.find(attr::kResponseOrigin));
  EXPECT_TRUE(response.find(attr::kXorMappedAddress));
}

}  // namespace
}  // namespace parley::stun
