#include <parley/stun/framer.hpp>

#include "wire.hpp"

namespace parley::stun {

namespace {
// RFC 7983 §7: first byte 0..3 is STUN; ChannelData as isChannelDataFirstByte says.
bool isStunFirstByte(std::uint8_t b) {
  return b <= 3;
}
constexpr std::size_t kChannelHeaderSize = 4;
}  // namespace

FrameResult nextFrame(Bytes buffered, std::size_t maxFrameSize, bool acceptChannelData) {
  FrameResult result;
  if (buffered.empty()) return result;
  const std::uint8_t first = buffered[0];
  if (isStunFirstByte(first)) {
    if (buffered.size() < 4) return result;
    const std::size_t length = wire::read16(buffered.data() + 2);
    if (length % 4 != 0) {
      result.status = FrameStatus::NotStun;
      return result;
    }
    // Streams were introduced by RFC 5389, so every STUN message on one carries the cookie:
    // checking it closes a garbage stream after 8 bytes instead of after the idle timeout.
    if (buffered.size() >= 8 && wire::read32(buffered.data() + 4) != kMagicCookie) {
      result.status = FrameStatus::NotStun;
      return result;
    }
    const std::size_t total = kHeaderSize + length;
    if (total > maxFrameSize) {
      result.status = FrameStatus::TooLarge;
      return result;
    }
    if (buffered.size() < total) return result;
    result.status = FrameStatus::Complete;
    result.frame = Frame{FrameKind::Stun, buffered.first(total)};
    result.consumed = total;
    return result;
  }
  if (acceptChannelData && isChannelDataFirstByte(first)) {
    if (buffered.size() < kChannelHeaderSize) return result;
    const std::size_t total = kChannelHeaderSize + wire::read16(buffered.data() + 2);
    if (total > maxFrameSize) {
      result.status = FrameStatus::TooLarge;
      return result;
    }
    // RFC 8656 §12.5: over a stream ChannelData is padded to a multiple of 4.
    const std::size_t withPadding = wire::padded(total);
    if (buffered.size() < withPadding) return result;
    result.status = FrameStatus::Complete;
    result.frame = Frame{FrameKind::ChannelData, buffered.first(total)};
    result.consumed = withPadding;
    return result;
  }
  result.status = FrameStatus::NotStun;
  return result;
}

}  // namespace parley::stun
