#include <array>
#include <cstddef>

#include <parley/edge/first_bytes.hpp>

namespace parley::edge {
namespace {

using Bytes = std::span<const std::uint8_t>;

// How one kind judges the bytes so far.
enum class Verdict { No, Maybe, Yes };

constexpr std::array<std::uint8_t, 12> kProxyV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kProxyV1Prefix = "PROXY ";
// RFC 9110 §9 methods are tokens; the ones anyone sends are upper-case letters, '-' and '_'.
// 15 characters and the space fit the 16 bytes classifyFirstBytes promises to decide within.
constexpr std::size_t kMaxMethodLength = 15;

Verdict matchPrefix(Bytes bytes, std::span<const std::uint8_t> pattern) {
  const std::size_t n = bytes.size() < pattern.size() ? bytes.size() : pattern.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != pattern[i]) return Verdict::No;
  }
  return n == pattern.size() ? Verdict::Yes : Verdict::Maybe;
}

Verdict proxyV2(Bytes bytes) {
  return matchPrefix(bytes, kProxyV2Signature);
}

Verdict proxyV1(Bytes bytes) {
  return matchPrefix(
      bytes, {reinterpret_cast<const std::uint8_t*>(kProxyV1Prefix.data()), kProxyV1Prefix.size()});
}

// TLS record header (RFC 8446 §5.1): ContentType handshake(22), legacy_record_version 0x03 0x0N.
// Clients send 0x0301 (TLS 1.0) for compatibility; 0x0300..0x0304 covers SSL 3.0 to TLS 1.3.
Verdict tls(Bytes bytes) {
  if (bytes[0] != 0x16) return Verdict::No;
  if (bytes.size() < 2) return Verdict::Maybe;
  if (bytes[1] != 0x03) return Verdict::No;
  if (bytes.size() < 3) return Verdict::Maybe;
  return bytes[2] <= 0x04 ? Verdict::Yes : Verdict::No;
}

constexpr bool isMethodChar(std::uint8_t b) {
  return (b >= 'A' && b <= 'Z') || b == '-' || b == '_';
}

// Request line (RFC 9112 §3): method SP request-target SP HTTP-version. The HTTP/2 connection
// preface "PRI * HTTP/2.0" (RFC 9113 §3.4) has the same shape.
Verdict http(Bytes bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == ' ') return i > 0 ? Verdict::Yes : Verdict::No;
    if (!isMethodChar(bytes[i]) || i == kMaxMethodLength) return Verdict::No;
  }
  return Verdict::Maybe;
}

// RFC 8489 §6: the two most significant bits are zero, the length (bytes 2-3) is a multiple of
// 4 (attributes are padded), and bytes 4-7 are the magic cookie 0x2112A442.
Verdict stun(Bytes bytes) {
  static constexpr std::array<std::uint8_t, 4> kCookie = {0x21, 0x12, 0xA4, 0x42};
  if ((bytes[0] & 0xC0) != 0) return Verdict::No;
  if (bytes.size() > 3 && (bytes[3] & 0x03) != 0) return Verdict::No;
  for (std::size_t i = 4; i < bytes.size() && i < 8; ++i) {
    if (bytes[i] != kCookie[i - 4]) return Verdict::No;
  }
  return bytes.size() >= 8 ? Verdict::Yes : Verdict::Maybe;
}

// RFC 8656 §12.4: channel number (0x4000-0x7FFF as RFC 5766 allowed, see stun/framer.hpp) and a
// 16-bit length; nothing else in the header to check.
Verdict channelData(Bytes bytes) {
  if (bytes[0] < 0x40 || bytes[0] > 0x7F) return Verdict::No;
  return bytes.size() >= 4 ? Verdict::Yes : Verdict::Maybe;
}

}  // namespace

FirstBytes classifyFirstBytes(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return FirstBytes::NeedMore;
  // In priority order. The first kind that matches wins unless a kind before it can still
  // match: then wait. A verdict only moves from Maybe to Yes or No as bytes arrive, so the
  // answer for a prefix never changes, and every kind decides within 16 bytes.
  struct Candidate {
    FirstBytes kind;
    Verdict (*judge)(Bytes);
  };
  static constexpr std::array<Candidate, 6> kCandidates = {{
      {FirstBytes::ProxyV2, proxyV2},
      {FirstBytes::Tls, tls},
      {FirstBytes::ProxyV1, proxyV1},  // before Http: "PROXY " is a method-shaped prefix
      {FirstBytes::Http, http},
      {FirstBytes::Stun, stun},
      {FirstBytes::ChannelData, channelData},  // last: "GET " starts like channel 0x4745
  }};
  for (const Candidate& candidate : kCandidates) {
    switch (candidate.judge(bytes)) {
      case Verdict::Yes:
        return candidate.kind;
      case Verdict::Maybe:
        return FirstBytes::NeedMore;
      case Verdict::No:
        break;
    }
  }
  return FirstBytes::Unknown;
}

std::string_view toString(FirstBytes kind) {
  switch (kind) {
    case FirstBytes::NeedMore:
      return "need more bytes";
    case FirstBytes::Tls:
      return "TLS";
    case FirstBytes::Http:
      return "HTTP";
    case FirstBytes::Stun:
      return "STUN";
    case FirstBytes::ChannelData:
      return "ChannelData";
    case FirstBytes::ProxyV1:
      return "PROXY v1";
    case FirstBytes::ProxyV2:
      return "PROXY v2";
    case FirstBytes::Unknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace parley::edge
