// Splits a byte stream (TCP, TLS) into STUN messages and TURN ChannelData frames.
// RFC 8489 §6.2.2: STUN over a stream carries its own length; RFC 8656 §12.5: ChannelData
// over a stream is padded to a multiple of 4. No I/O: the caller feeds what it read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <parley/stun/message.hpp>

namespace parley::stun {

enum class FrameKind : std::uint8_t { Stun, ChannelData };

// ChannelData starts with the channel number: RFC 8656 §12 assigns 0x4000-0x4FFF, but RFC 5766
// allowed 0x4000-0x7FFF and coturn's clients (and coturn) still use the whole range, so the
// first byte of ChannelData is 0x40-0x7F (first two bits 01, RFC 5766 §11).
constexpr bool isChannelDataFirstByte(std::uint8_t b) {
  return b >= 0x40 && b <= 0x7F;
}

struct Frame {
  FrameKind kind = FrameKind::Stun;
  Bytes bytes;  // the whole message, without stream padding
};

enum class FrameStatus : std::uint8_t {
  Complete,  // `frame` is valid; `consumed` bytes are used (incl. padding)
  NeedMore,  // the bytes so far are a valid prefix
  NotStun,   // neither a STUN header nor a ChannelData header: close the stream
  TooLarge,  // the announced frame exceeds the limit: close the stream
};

struct FrameResult {
  FrameStatus status = FrameStatus::NeedMore;
  Frame frame;
  std::size_t consumed = 0;
};

// Looks at the start of `buffered` and says whether it holds one complete frame.
// Call again on the rest after consuming. `maxFrameSize` bounds what one frame may announce.
// `acceptChannelData` is false until the stream has a channel bound: then a first byte of
// 0x40-0x4F is garbage (plain "GET " would otherwise pass as channel 0x4745).
FrameResult nextFrame(Bytes buffered, std::size_t maxFrameSize, bool acceptChannelData = false);

}  // namespace parley::stun
