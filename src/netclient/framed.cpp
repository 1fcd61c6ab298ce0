// STUN messages and ChannelData over a byte stream (TCP, TLS, a proxy tunnel): RFC 8489 §6.2.2
// framing by the message's own length, ChannelData padded to 4 (RFC 8656 §12.5), cut with
// stun::nextFrame. Bytes after a frame stay buffered for the next receive().
#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <parley/netclient/transport.hpp>
#include <parley/stun/framer.hpp>

namespace parley::netclient {
namespace {

// The largest frame a STUN/TURN server sends: a 64 KiB message plus its header.
constexpr std::size_t kMaxFrame = 65'535 + 20;

class FramedTransport final : public MessageTransport {
 public:
  explicit FramedTransport(std::unique_ptr<Stream> stream) : stream_(std::move(stream)) {
    buffer_.resize(kMaxFrame + 4 + kReadChunk);
  }

  Result<void> send(std::span<const std::uint8_t> message, Deadline deadline) override {
    return stream_->writeAll(message, deadline);
  }

  Result<std::size_t> receive(std::span<std::uint8_t> out, Deadline deadline) override {
    // Each pass consumes a frame or reads from the stream, which honours the deadline.
    for (int pass = 0; pass < 100'000; ++pass) {
      if (size_ > 0) {
        const stun::Bytes buffered(buffer_.data(), size_);
        // A web server answering on a TURN port sends HTTP: say so instead of waiting.
        constexpr std::string_view kHttp = "HTTP/";
        if (size_ >= kHttp.size() &&
            std::equal(kHttp.begin(), kHttp.end(), buffer_.begin(),
                       [](char c, std::uint8_t b) { return static_cast<std::uint8_t>(c) == b; }))
          return tl::unexpected(Failure{
              "protocol", fmt::format("{}: the server answered HTTP, not STUN", describe())});
        const stun::FrameResult result =
            stun::nextFrame(buffered, kMaxFrame, /*acceptChannelData=*/true);
        if (result.status == stun::FrameStatus::Complete) {
          const std::size_t frameSize = result.frame.bytes.size();
          if (frameSize > out.size())
            return tl::unexpected(Failure{
                "protocol", fmt::format("{}: a {}-byte message does not fit the {}-byte buffer",
                                        describe(), frameSize, out.size())});
          std::memcpy(out.data(), result.frame.bytes.data(), frameSize);
          std::memmove(buffer_.data(), buffer_.data() + result.consumed, size_ - result.consumed);
          size_ -= result.consumed;
          return frameSize;
        }
        if (result.status == stun::FrameStatus::NotStun ||
            result.status == stun::FrameStatus::TooLarge)
          return tl::unexpected(
              Failure{"protocol",
                      fmt::format("{}: the server sent something that is not STUN", describe())});
      }
      // NeedMore (or nothing buffered): read on. The buffer holds a whole frame plus a chunk.
      const std::size_t room = std::min(kReadChunk, buffer_.size() - size_);
      auto n = stream_->readSome(std::span<std::uint8_t>(buffer_.data() + size_, room), deadline);
      if (!n) return tl::unexpected(n.error());
      if (*n == 0)
        return tl::unexpected(
            Failure{"protocol", fmt::format("{}: the server closed the connection", describe())});
      size_ += *n;
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: no answer in time", describe())});
  }

  bool reliable() const override { return true; }
  std::string describe() const override { return stream_->describe(); }
  std::optional<Endpoint> localEndpoint() const override { return stream_->localEndpoint(); }

 private:
  static constexpr std::size_t kReadChunk = 16 * 1024;
  std::unique_ptr<Stream> stream_;
  std::vector<std::uint8_t> buffer_;  // allocated once
  std::size_t size_ = 0;
};

}  // namespace

std::unique_ptr<MessageTransport> framed(std::unique_ptr<Stream> stream) {
  return std::make_unique<FramedTransport>(std::move(stream));
}

}  // namespace parley::netclient
