#include <array>
#include <vector>

#include <gtest/gtest.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/framer.hpp>

namespace parley::stun {
namespace {

std::vector<std::uint8_t> bindingRequest(std::uint8_t id) {
  std::array<std::uint8_t, 64> buffer{};
  TransactionId transaction{};
  transaction.fill(id);
  MessageBuilder builder(buffer, 0x0001, transaction);
  builder.addText(attr::kSoftware, "x").addFingerprint();
  const auto bytes = *builder.finish();
  return {bytes.begin(), bytes.end()};
}

TEST(Framer, SeveralMessagesInOneSegment) {
  auto stream = bindingRequest(1);
  const auto second = bindingRequest(2);
  stream.insert(stream.end(), second.begin(), second.end());
  // ChannelData 0x4001 with 5 bytes of data and 3 bytes of stream padding.
  stream.insert(stream.end(), {0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0});
  std::vector<Frame> frames;
  Bytes rest(stream);
  while (true) {
    const auto result = nextFrame(rest, 4096, true);
    if (result.status != FrameStatus::Complete) {
      EXPECT_EQ(result.status, FrameStatus::NeedMore);
      break;
    }
    frames.push_back(result.frame);
    rest = rest.subspan(result.consumed);
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].kind, FrameKind::Stun);
  EXPECT_EQ(frames[1].bytes[8], 2);
  EXPECT_EQ(frames[2].kind, FrameKind::ChannelData);
  EXPECT_EQ(frames[2].bytes.size(), 9u);  // without the padding
  EXPECT_TRUE(rest.empty());
}

TEST(Framer, OneMessageOverManySegments) {
  const auto message = bindingRequest(3);
  for (std::size_t have = 0; have < message.size(); ++have) {
    EXPECT_EQ(nextFrame(Bytes(message.data(), have), 4096).status, FrameStatus::NeedMore) << have;
  }
  const auto complete = nextFrame(message, 4096);
  EXPECT_EQ(complete.status, FrameStatus::Complete);
  EXPECT_EQ(complete.consumed, message.size());
  // ChannelData is complete only once its padding arrived.
  const std::vector<std::uint8_t> channel = {0x4f, 0xff, 0x00, 0x01, 'x', 0, 0, 0};
  EXPECT_EQ(nextFrame(Bytes(channel.data(), 5), 4096, true).status, FrameStatus::NeedMore);
  EXPECT_EQ(nextFrame(channel, 4096, true).status, FrameStatus::Complete);
  // Without a bound channel the same bytes are garbage.
  EXPECT_EQ(nextFrame(channel, 4096).status, FrameStatus::NotStun);
}

TEST(Framer, GarbageAndOversizeCloseTheStream) {
  const std::string http = "GET / HTTP/1.1\r\n";
  const Bytes httpBytes(reinterpret_cast<const std::uint8_t*>(http.data()), http.size());
  EXPECT_EQ(nextFrame(httpBytes, 4096).status, FrameStatus::NotStun);
  // 'G' is 0x47, a channel number: with channels bound, the announced length is the limit.
  EXPECT_EQ(nextFrame(httpBytes, 4096, true).status, FrameStatus::TooLarge);
  // TLS ClientHello starts with 0x16.
  const std::vector<std::uint8_t> tls = {0x16, 0x03, 0x01, 0x02, 0x00};
  EXPECT_EQ(nextFrame(tls, 4096).status, FrameStatus::NotStun);
  // STUN-like first bytes but no magic cookie.
  const std::vector<std::uint8_t> noCookie = {0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4};
  EXPECT_EQ(nextFrame(noCookie, 4096).status, FrameStatus::NotStun);
  // Length not a multiple of 4.
  const std::vector<std::uint8_t> oddLength = {0x00, 0x01, 0x00, 0x03};
  EXPECT_EQ(nextFrame(oddLength, 4096).status, FrameStatus::NotStun);
  // Announces 65532 bytes against a 1024-byte limit: refused before buffering it.
  const std::vector<std::uint8_t> huge = {0x00, 0x01, 0xff, 0xfc, 0x21, 0x12, 0xa4, 0x42};
  EXPECT_EQ(nextFrame(huge, 1024).status, FrameStatus::TooLarge);
  const std::vector<std::uint8_t> hugeChannel = {0x40, 0x00, 0xff, 0xff};
  EXPECT_EQ(nextFrame(hugeChannel, 1024, true).status, FrameStatus::TooLarge);
  EXPECT_EQ(nextFrame({}, 1024).status, FrameStatus::NeedMore);
}

}  // namespace
}  // namespace parley::stun
