// Fuzzes the front door's two codecs, parseProxyHeader and classifyFirstBytes, on every prefix of
// the input (each copied to a buffer of its exact size, so ASan sees any read past the span), and
// checks what the I/O side relies on:
//  - a header's length is at most the input (and the limits), and parsing just those bytes gives
//    the same header;
//  - decisions are stable: once a prefix is not NeedMore, every longer prefix says the same;
//  - NeedMore only if a longer input could still be valid: a depth-first search over a small
//    alphabet must find a completion that parses (PROXY) or classifies as something known
//    (first bytes). Each dead branch is refused at once by an exact parser, so the search costs at
//    most (depth x alphabet) calls; running over that budget means a NeedMore that had no future;
//  - the two codecs agree on which inputs are PROXY headers.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <parley/edge/first_bytes.hpp>
#include <parley/edge/proxy_protocol.hpp>

using namespace parley;
using namespace parley::edge;

namespace {

using Result = tl::expected<ProxyHeader, ProxyError>;

constexpr std::size_t kMaxV1Bytes = 107;
constexpr std::size_t kFirstBytesDecide = 16;

[[noreturn]] void fail() {
  std::abort();
}

void check(bool condition) {
  if (!condition) fail();
}

// A private copy of exactly `n` bytes: reading past the span is a heap overflow.
struct Exact {
  explicit Exact(const std::uint8_t* data, std::size_t n)
      : bytes(new std::uint8_t[n == 0 ? 1 : n]), size(n) {
    std::copy(data, data + n, bytes.get());
  }
  std::span<const std::uint8_t> span() const { return {bytes.get(), size}; }
  std::unique_ptr<std::uint8_t[]> bytes;
  std::size_t size;
};

Result parseExact(const std::uint8_t* data, std::size_t n) {
  return parseProxyHeader(Exact(data, n).span());
}

FirstBytes classifyExact(const std::uint8_t* data, std::size_t n) {
  return classifyFirstBytes(Exact(data, n).span());
}

bool isNeedMore(const Result& result) {
  return !result && result.error() == ProxyError::NeedMore;
}

bool sameResult(const Result& a, const Result& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return a.error() == b.error();
  return a->length == b->length && a->version == b->version && a->source == b->source &&
         a->destination == b->destination;
}

void checkHeader(const ProxyHeader& header, std::size_t inputSize) {
  check(header.length > 0 && header.length <= inputSize);
  check(header.length <= kMaxProxyHeaderBytes);
  check(header.version == 1 || header.version == 2);
  if (header.version == 1) check(header.length <= kMaxV1Bytes);
  if (header.version == 2) check(header.length >= 16);
  check(header.source.has_value() == header.destination.has_value());
  if (header.source && header.version == 1) {
    check(header.source->address.isV4() == header.destination->address.isV4());
  }
}

// Bytes a completion may need: the v1 grammar, and for v2 the signature, version/command,
// families, small lengths and TLV fillers.
const std::vector<std::uint8_t>& alphabet() {
  static const std::vector<std::uint8_t> letters = [] {
    std::vector<std::uint8_t> out = {0x00, 0x01, 0x02, 0x03, 0x0A, 0x0C, 0x0D, 0x11,
                                     0x20, 0x21, 0x24, 0x49, 0x51, 0x54, 0x55, 0xD8};
    const std::string text = "\r\n 0123456789abcdef:.TCPUNKOWRXY46";
    out.insert(out.end(), text.begin(), text.end());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }();
  return letters;
}

// Depth-first search for a completion of a NeedMore input that parses.
bool completeHeader(std::vector<std::uint8_t>& buffer, long& budget) {
  for (const std::uint8_t b : alphabet()) {
    if (--budget < 0) fail();  // NeedMore was given for a prefix with no valid completion
    buffer.push_back(b);
    const Result result = parseProxyHeader(buffer);
    if (result) {
      check(result->length == buffer.size());  // decided exactly when its last byte came
      return true;
    }
    if (result.error() == ProxyError::NeedMore && completeHeader(buffer, budget)) return true;
    buffer.pop_back();
  }
  return false;
}

bool completeFirstBytes(std::vector<std::uint8_t>& buffer, long& budget) {
  for (int b = 0; b < 256; ++b) {
    if (--budget < 0) fail();
    buffer.push_back(static_cast<std::uint8_t>(b));
    const FirstBytes kind = classifyFirstBytes(buffer);
    if (kind != FirstBytes::NeedMore && kind != FirstBytes::Unknown) return true;
    if (kind == FirstBytes::NeedMore && completeFirstBytes(buffer, budget)) return true;
    buffer.pop_back();
  }
  return false;
}

// The longest NeedMore prefix must have a valid completion: that is where an inexact parser
// (one that waits although the bytes so far are already dead) shows.
void expectCompletion(const std::uint8_t* data, std::size_t n) {
  check(n < kMaxProxyHeaderBytes);
  if (n > 0 && data[0] == 'P') check(n < kMaxV1Bytes);
  std::vector<std::uint8_t> buffer(data, data + n);
  long budget = static_cast<long>((kMaxProxyHeaderBytes + 1) * alphabet().size());
  check(completeHeader(buffer, budget));
}

void fuzzProxyHeader(const std::uint8_t* data, std::size_t size) {
  // Every input of this length or longer is decided; no need to look further.
  const std::size_t n = std::min(size, kMaxProxyHeaderBytes + 1);
  std::optional<Result> decided;
  std::size_t decidedAt = 0;
  for (std::size_t k = 0; k <= n; ++k) {
    const Result result = parseExact(data, k);
    if (result) checkHeader(*result, k);
    if (decided) {
      check(sameResult(*decided, result));
    } else if (!isNeedMore(result)) {
      decided = result;
      decidedAt = k;
      if (result) check(result->length == k);  // a header is decided by its own last byte
    }
  }
  if (!decided) {
    expectCompletion(data, n);
    return;
  }
  if (decidedAt > 0) expectCompletion(data, decidedAt - 1);

  if (*decided) {
    const ProxyHeader& header = **decided;
    // Just the header's bytes give the same header.
    check(sameResult(parseExact(data, header.length), *decided));
    // The first-bytes classifier agrees on the kind.
    const FirstBytes kind = classifyExact(data, std::min(size, kFirstBytesDecide));
    check(kind == (header.version == 1 ? FirstBytes::ProxyV1 : FirstBytes::ProxyV2));
    // v1 with addresses: the canonical line for the same endpoints parses to them again.
    if (header.version == 1 && header.source) {
      const std::string line =
          std::string("PROXY ") + (header.source->address.isV4() ? "TCP4 " : "TCP6 ") +
          header.source->address.toString() + " " + header.destination->address.toString() + " " +
          std::to_string(header.source->port) + " " + std::to_string(header.destination->port) +
          "\r\n";
      const auto again =
          parseExact(reinterpret_cast<const std::uint8_t*>(line.data()), line.size());
      check(again && again->source == header.source && again->destination == header.destination &&
            again->length == line.size());
    }
  } else if (decided->error() == ProxyError::NotProxy) {
    const FirstBytes kind = classifyExact(data, std::min(size, kFirstBytesDecide));
    check(kind != FirstBytes::ProxyV1 && kind != FirstBytes::ProxyV2);
  }
}

void fuzzFirstBytes(const std::uint8_t* data, std::size_t size) {
  const std::size_t n = std::min(size, kFirstBytesDecide + 4);
  FirstBytes decided = FirstBytes::NeedMore;
  std::size_t lastNeedMore = 0;
  for (std::size_t k = 0; k <= n; ++k) {
    const FirstBytes kind = classifyExact(data, k);
    if (decided != FirstBytes::NeedMore) check(kind == decided);
    decided = kind;
    if (kind == FirstBytes::NeedMore) lastNeedMore = k;
    if (k >= kFirstBytesDecide) check(kind != FirstBytes::NeedMore);  // 16 bytes always decide
  }
  // The longest NeedMore prefix can still become something known.
  std::vector<std::uint8_t> buffer(data, data + lastNeedMore);
  long budget = static_cast<long>(kFirstBytesDecide * 256);
  check(completeFirstBytes(buffer, budget));
  // A PROXY header by the classifier is never NotProxy by the parser, and anything else is.
  if (decided != FirstBytes::NeedMore) {
    const Result result = parseExact(data, std::min(size, kMaxProxyHeaderBytes + 1));
    const bool notProxy = !result && result.error() == ProxyError::NotProxy;
    check(notProxy == (decided != FirstBytes::ProxyV1 && decided != FirstBytes::ProxyV2));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzzProxyHeader(data, size);
  fuzzFirstBytes(data, size);
  for (const auto error : {ProxyError::NeedMore, ProxyError::NotProxy, ProxyError::Malformed,
                           ProxyError::Unsupported, ProxyError::TooLong}) {
    check(!toString(error).empty());
  }
  check(!toString(classifyFirstBytes({data, std::min<std::size_t>(size, 16)})).empty());
  return 0;
}
