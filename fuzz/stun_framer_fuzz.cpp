// Fuzzes the stream framer the way a TCP server uses it: the input arrives in chunks whose
// sizes come from the input itself, and every frame must lie inside what was buffered.
#include <cstdint>
#include <cstdlib>
#include <parley/stun/framer.hpp>
#include <parley/stun/message.hpp>
#include <vector>

using namespace parley::stun;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const bool channels = (data[1] & 1) != 0;
  const std::size_t limit = 64 + (data[1] >> 1) * 512;
  data += 2;
  size -= 2;
  std::vector<std::uint8_t> buffered;
  for (std::size_t fed = 0; fed < size;) {
    const std::size_t n = std::min(chunk, size - fed);
    buffered.insert(buffered.end(), data + fed, data + fed + n);
    fed += n;
    std::size_t offset = 0;
    while (true) {
      const Bytes rest(buffered.data() + offset, buffered.size() - offset);
      const auto result = nextFrame(rest, limit, channels);
      if (result.status == FrameStatus::NeedMore) break;
      if (result.status != FrameStatus::Complete) return 0;  // the server closes here
      if (result.consumed == 0 || result.consumed > rest.size()) std::abort();
      if (result.frame.bytes.data() != rest.data() || result.frame.bytes.size() > result.consumed ||
          result.frame.bytes.size() > limit) {
        std::abort();
      }
      if (result.frame.kind == FrameKind::Stun) (void)Message::parse(result.frame.bytes);
      offset += result.consumed;
    }
    buffered.erase(buffered.begin(), buffered.begin() + static_cast<std::ptrdiff_t>(offset));
    if (buffered.size() > limit + 4) std::abort();  // NeedMore never asks for more than a frame
  }
  return 0;
}
