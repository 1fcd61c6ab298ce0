#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>
#include <utility>

#include <parley/edge/proxy_protocol.hpp>

namespace parley::edge {
namespace {

using Bytes = std::span<const std::uint8_t>;
using Result = tl::expected<ProxyHeader, ProxyError>;

tl::unexpected<ProxyError> fail(ProxyError error) {
  return tl::unexpected<ProxyError>(error);
}

// §2.2: "\r\n\r\n\0\r\nQUIT\n", chosen so that no text protocol can start with it.
constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";
// §2.1: "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n" is the longest line a
// receiver must accept; it need not read further to find the CRLF.
constexpr std::size_t kMaxV1Bytes = 107;
constexpr std::size_t kV2HeaderBytes = 16;

// ---------------------------------------------------------------------------------------------
// v1 fields, read one character at a time so that a prefix which cannot become a valid field is
// rejected at once, and so that we know how many characters a valid completion needs at least.
// feed() returns false when no valid field starts with what was fed; the state is then unusable.

// §2.1: "exactly 4 integers in the range [0..255] ... separated by exactly one dot", without
// heading zeroes (the same grammar as inet_pton(AF_INET)).
class Ipv4Text {
 public:
  bool feed(char c) {
    if (c >= '0' && c <= '9') {
      if (digits_ > 0 && value_ == 0) return false;  // heading zero
      value_ = value_ * 10 + static_cast<unsigned>(c - '0');
      if (value_ > 255) return false;  // also bounds the octet to 3 digits
      ++digits_;
      return true;
    }
    if (c == '.' && digits_ > 0 && dots_ < 3) {
      ++dots_;
      digits_ = 0;
      value_ = 0;
      return true;
    }
    return false;
  }
  bool complete() const { return dots_ == 3 && digits_ > 0; }
  // A digit for an empty octet, then ".0" for every missing octet.
  std::size_t minRemaining() const { return (digits_ == 0 ? 1 : 0) + (3 - dots_) * 2; }

 private:
  unsigned dots_ = 0;
  unsigned digits_ = 0;
  unsigned value_ = 0;
};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 4291 §2.2 text, the grammar inet_pton(AF_INET6) accepts: eight groups of 1-4 hex digits,
// one "::" standing for at least one zero group, and an optional dotted IPv4 address as the last
// two groups. No zone, no brackets.
class Ipv6Text {
 public:
  bool feed(char c) {
    if (inTail_) return tail_.feed(c);
    if (hexValue(c) >= 0) {
      if (leadingColon_ || hexDigits_ == 4) return false;
      if (hexDigits_ == 0) {
        if (groups_ >= maxGroups()) return false;  // no room for another group
        token_ = Ipv4Text{};
        tokenIsOctet_ = true;
      }
      tokenIsOctet_ = tokenIsOctet_ && token_.feed(c);
      ++hexDigits_;
      started_ = true;
      afterDoubleColon_ = false;
      return true;
    }
    if (c == ':') {
      if (!started_) {
        started_ = leadingColon_ = true;
        return true;
      }
      if (leadingColon_ || hexDigits_ == 0) {  // the second colon of "::"
        if (doubleColon_ || groups_ > 7) return false;
        leadingColon_ = false;
        doubleColon_ = afterDoubleColon_ = true;
        return true;
      }
      ++groups_;  // room was checked when the group started
      hexDigits_ = 0;
      // A group or a second colon must follow; either needs room for one more group.
      return groups_ < maxGroups();
    }
    if (c == '.') {
      // The group read so far was the first octet of a dotted IPv4 tail, which ends the address
      // and fills two groups.
      if (leadingColon_ || hexDigits_ == 0 || !tokenIsOctet_) return false;
      const unsigned total = groups_ + 2;
      if (doubleColon_ ? total > 7 : total != 8) return false;
      inTail_ = true;
      tail_ = token_;
      return tail_.feed(c);
    }
    return false;
  }

  bool complete() const {
    if (inTail_) return tail_.complete();
    if (hexDigits_ > 0) return doubleColon_ ? groups_ + 1 <= 7 : groups_ + 1 == 8;
    return afterDoubleColon_;
  }

  std::size_t minRemaining() const {
    if (inTail_) return tail_.minRemaining();
    if (!started_) return 2;      // "::"
    if (leadingColon_) return 1;  // ":"
    if (complete()) return 0;
    if (hexDigits_ > 0) return 2;  // "::" after fewer than eight groups
    return 1;                      // after a single colon: a group or a second colon
  }

 private:
  unsigned maxGroups() const { return doubleColon_ ? 7 : 8; }  // "::" stands for at least one

  unsigned groups_ = 0;     // groups finished by a colon
  unsigned hexDigits_ = 0;  // digits of the group being read
  bool started_ = false;
  bool leadingColon_ = false;  // read one colon at the start: only "::" may start that way
  bool doubleColon_ = false;
  bool afterDoubleColon_ = false;  // the last two characters were "::"
  Ipv4Text token_;                 // the group being read, as the first octet of a dotted tail
  bool tokenIsOctet_ = false;
  Ipv4Text tail_;
  bool inTail_ = false;
};

// §2.1: "a decimal integer in the range [0..65535] inclusive. Heading zeroes are not permitted".
class PortText {
 public:
  bool feed(char c) {
    if (c < '0' || c > '9') return false;
    if (digits_ > 0 && value_ == 0) return false;
    value_ = value_ * 10 + static_cast<unsigned>(c - '0');
    if (value_ > 65535) return false;
    ++digits_;
    return true;
  }
  bool complete() const { return digits_ > 0; }
  std::size_t minRemaining() const { return digits_ == 0 ? 1 : 0; }
  std::uint16_t value() const { return static_cast<std::uint16_t>(value_); }

 private:
  unsigned digits_ = 0;
  unsigned value_ = 0;
};

// The v1 line after "PROXY ", as a state machine over its characters.
class V1Parser {
 public:
  explicit V1Parser(Bytes line) : line_(line) {}

  Result run() {
    for (std::size_t i = kV1Prefix.size(); i < line_.size(); ++i) {
      const char c = static_cast<char>(line_[i]);
      if (!step(c, i)) return fail(ProxyError::Malformed);
      if (state_ == State::Done) return header_;
      // A prefix that cannot end within the 107 bytes is decided now, not when byte 108 comes.
      if (i + 1 + minRemaining() > kMaxV1Bytes) return fail(ProxyError::TooLong);
    }
    return fail(ProxyError::NeedMore);
  }

 private:
  enum class State { Protocol, UnknownRest, Source, Destination, SourcePort, DestPort, Lf, Done };
  enum class Family { Tcp4, Tcp6 };

  bool step(char c, std::size_t i) {
    switch (state_) {
      case State::Protocol:
        return protocol(c, i);
      case State::UnknownRest:
        // §2.1: with UNKNOWN "the receiver must ignore anything presented before the CRLF". The
        // first CR ends the line; a bare LF would be read as a line end by lax peers: refuse it.
        if (c == '\n') return false;
        if (c == '\r') state_ = State::Lf;
        return true;
      case State::Source:
      case State::Destination:
        return address(c, i);
      case State::SourcePort:
        if (c == ' ') return endSourcePort();
        return sourcePort_.feed(c);
      case State::DestPort:
        if (c == '\r') return endDestPort();
        return destPort_.feed(c);
      case State::Lf:
        if (c != '\n') return false;
        header_.length = i + 1;
        header_.version = 1;
        state_ = State::Done;
        return true;
      case State::Done:
        break;
    }
    return false;
  }

  // "TCP4" / "TCP6" then a space, or "UNKNOWN" then a space or CRLF.
  bool protocol(char c, std::size_t i) {
    const std::string_view word(reinterpret_cast<const char*>(line_.data()) + kV1Prefix.size(),
                                i - kV1Prefix.size());
    if (c == ' ' || c == '\r') {
      if (word == "UNKNOWN") {
        state_ = c == ' ' ? State::UnknownRest : State::Lf;
        return true;
      }
      if (c == '\r' || (word != "TCP4" && word != "TCP6")) return false;
      family_ = word == "TCP4" ? Family::Tcp4 : Family::Tcp6;
      state_ = State::Source;
      fieldStart_ = i + 1;
      return true;
    }
    const std::size_t n = word.size() + 1;
    for (const std::string_view candidate : {"TCP4", "TCP6", "UNKNOWN"}) {
      if (candidate.size() >= n && candidate.substr(0, word.size()) == word &&
          candidate[n - 1] == c) {
        return true;
      }
    }
    return false;
  }

  bool address(char c, std::size_t i) {
    if (c != ' ') {
      return family_ == Family::Tcp4 ? v4_.feed(c) : v6_.feed(c);
    }
    if (!(family_ == Family::Tcp4 ? v4_.complete() : v6_.complete())) return false;
    const std::string_view text(reinterpret_cast<const char*>(line_.data()) + fieldStart_,
                                i - fieldStart_);
    const auto parsed = IpAddress::parse(text);
    // The scanners follow inet_pton's grammar, so this only guards against a disagreement.
    if (!parsed || parsed->isV4() != (family_ == Family::Tcp4)) return false;
    if (state_ == State::Source) {
      source_ = *parsed;
      state_ = State::Destination;
      v4_ = Ipv4Text{};
      v6_ = Ipv6Text{};
      fieldStart_ = i + 1;
    } else {
      destination_ = *parsed;
      state_ = State::SourcePort;
    }
    return true;
  }

  bool endSourcePort() {
    if (!sourcePort_.complete()) return false;
    state_ = State::DestPort;
    return true;
  }

  bool endDestPort() {
    if (!destPort_.complete()) return false;
    header_.source = Endpoint{source_, sourcePort_.value()};
    header_.destination = Endpoint{destination_, destPort_.value()};
    state_ = State::Lf;
    return true;
  }

  // The fewest characters that could still complete the line from the current state.
  std::size_t minRemaining() const {
    const std::size_t shortestAddress = family_ == Family::Tcp4 ? 7 : 2;  // "0.0.0.0", "::"
    const std::size_t addressNow =
        family_ == Family::Tcp4 ? v4_.minRemaining() : v6_.minRemaining();
    switch (state_) {
      case State::Protocol:
        return 0;  // at most 13 bytes in: far from the limit whatever follows
      case State::UnknownRest:
        return 2;  // CRLF
      case State::Source:
        return addressNow + 1 + shortestAddress + 1 + 1 + 1 + 1 + 2;
      case State::Destination:
        return addressNow + 1 + 1 + 1 + 1 + 2;
      case State::SourcePort:
        return sourcePort_.minRemaining() + 1 + 1 + 2;
      case State::DestPort:
        return destPort_.minRemaining() + 2;
      case State::Lf:
        return 1;
      case State::Done:
        break;
    }
    return 0;
  }

  Bytes line_;
  State state_ = State::Protocol;
  Family family_ = Family::Tcp4;
  std::size_t fieldStart_ = 0;
  Ipv4Text v4_;
  Ipv6Text v6_;
  PortText sourcePort_;
  PortText destPort_;
  IpAddress source_;
  IpAddress destination_;
  ProxyHeader header_;
};

// ---------------------------------------------------------------------------------------------
// v2 (§2.2): 12-byte signature, version and command, family and transport, 16-bit length of
// what follows (addresses, then TLVs).

std::uint16_t readU16(Bytes bytes, std::size_t at) {
  return static_cast<std::uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

Endpoint readEndpoint(Bytes bytes, std::size_t addressAt, std::size_t addressSize,
                      std::size_t portAt) {
  const IpAddress address =
      addressSize == 4 ? IpAddress::v4(std::span<const std::uint8_t, 4>(&bytes[addressAt], 4))
                       : IpAddress::v6(std::span<const std::uint8_t, 16>(&bytes[addressAt], 16));
  return Endpoint{address, readU16(bytes, portAt)};
}

Result parseV2(Bytes bytes) {
  const std::size_t size = bytes.size();
  if (size < 13) return fail(ProxyError::NeedMore);
  // Byte 13: the version in the high nibble "must always be sent as \x2 and the receiver must
  // only accept this value"; the command in the low nibble is LOCAL (0) or PROXY (1), and
  // "receivers must drop connections presenting unexpected values here".
  if ((bytes[12] >> 4) != 0x2) return fail(ProxyError::Unsupported);
  const unsigned command = bytes[12] & 0x0F;
  if (command > 1) return fail(ProxyError::Malformed);
  const bool local = command == 0;
  if (size < 14) return fail(ProxyError::NeedMore);

  // Byte 14: address family (high nibble) and transport (low nibble). LOCAL: "discard the
  // protocol block including the family which is ignored". PROXY with UNSPEC: "the receiver
  // should ignore address information", so that block is skipped unread as well.
  std::size_t addressBlock = 0;  // bytes of addresses before the TLVs
  std::size_t addressSize = 0;   // of one address, when reported: 4 or 16
  bool readBlock = !local;       // check the addresses' size and walk the TLVs
  if (!local) {
    switch (bytes[13]) {
      case 0x00:  // UNSPEC
        readBlock = false;
        break;
      case 0x11:  // TCP over IPv4
      case 0x12:  // UDP over IPv4
        addressBlock = 12;
        addressSize = 4;
        break;
      case 0x21:  // TCP over IPv6
      case 0x22:  // UDP over IPv6
        addressBlock = 36;
        addressSize = 16;
        break;
      case 0x31:             // UNIX stream
      case 0x32:             // UNIX datagram
        addressBlock = 216;  // two 108-byte sun_path: not an Endpoint, reported as none
        break;
      default:
        return fail(ProxyError::Unsupported);  // a family or transport the spec does not define
    }
  }

  // Bytes 15-16: length of the rest, network order. Decide TooLong as soon as the high byte says.
  if (size < 15) return fail(ProxyError::NeedMore);
  if (kV2HeaderBytes + (std::size_t{bytes[14]} << 8) > kMaxProxyHeaderBytes) {
    return fail(ProxyError::TooLong);
  }
  if (size < 16) return fail(ProxyError::NeedMore);
  const std::size_t end = kV2HeaderBytes + readU16(bytes, 14);
  if (end > kMaxProxyHeaderBytes) return fail(ProxyError::TooLong);

  if (readBlock) {
    if (end < kV2HeaderBytes + addressBlock) return fail(ProxyError::Malformed);
    // §2.2.7: TLVs (type, 16-bit length, value) fill the rest exactly. Each length is checked as
    // soon as the bytes that carry it arrive.
    std::size_t at = kV2HeaderBytes + addressBlock;
    while (at < end) {
      const std::size_t room = end - at;
      if (room < 3) return fail(ProxyError::Malformed);  // not even a TLV header fits
      if (size < at + 2) return fail(ProxyError::NeedMore);
      if (3 + (std::size_t{bytes[at + 1]} << 8) > room) return fail(ProxyError::Malformed);
      if (size < at + 3) return fail(ProxyError::NeedMore);
      const std::size_t tlv = 3 + std::size_t{readU16(bytes, at + 1)};
      if (tlv > room) return fail(ProxyError::Malformed);
      at += tlv;
    }
  }
  if (size < end) return fail(ProxyError::NeedMore);

  ProxyHeader header;
  header.length = end;
  header.version = 2;
  if (readBlock && addressSize != 0) {
    // src address, dst address, src port, dst port.
    const std::size_t base = kV2HeaderBytes;
    header.source = readEndpoint(bytes, base, addressSize, base + 2 * addressSize);
    header.destination =
        readEndpoint(bytes, base + addressSize, addressSize, base + 2 * addressSize + 2);
  }
  return header;
}

// Whether `bytes` starts like `pattern`: No, a strict prefix of it (Partial), or all of it.
enum class Prefix { No, Partial, Full };

Prefix matchPrefix(Bytes bytes, Bytes pattern) {
  const std::size_t n = std::min(bytes.size(), pattern.size());
  if (!std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n), pattern.begin())) {
    return Prefix::No;
  }
  return n == pattern.size() ? Prefix::Full : Prefix::Partial;
}

}  // namespace

Result parseProxyHeader(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return fail(ProxyError::NeedMore);
  const Bytes v1(reinterpret_cast<const std::uint8_t*>(kV1Prefix.data()), kV1Prefix.size());
  for (const auto& [pattern, version] : {std::pair{Bytes(kV2Signature), 2}, std::pair{v1, 1}}) {
    switch (matchPrefix(bytes, pattern)) {
      case Prefix::No:
        break;
      case Prefix::Partial:
        return fail(ProxyError::NeedMore);
      case Prefix::Full:
        return version == 2 ? parseV2(bytes) : V1Parser(bytes).run();
    }
  }
  return fail(ProxyError::NotProxy);
}

std::string_view toString(ProxyError error) {
  switch (error) {
    case ProxyError::NeedMore:
      return "incomplete PROXY header";
    case ProxyError::NotProxy:
      return "not a PROXY header";
    case ProxyError::Malformed:
      return "malformed PROXY header";
    case ProxyError::Unsupported:
      return "unsupported PROXY header version or address family";
    case ProxyError::TooLong:
      return "PROXY header too long";
  }
  return "unknown PROXY error";
}

}  // namespace parley::edge
