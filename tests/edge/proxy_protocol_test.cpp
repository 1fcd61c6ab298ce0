#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <parley/edge/proxy_protocol.hpp>

namespace parley::edge {

std::ostream& operator<<(std::ostream& out, ProxyError error) {
  return out << toString(error);
}

namespace {

using Bytes = std::vector<std::uint8_t>;
using Result = tl::expected<ProxyHeader, ProxyError>;

Bytes bytesOf(std::string_view text) {
  return {text.begin(), text.end()};
}

Result parse(const Bytes& bytes) {
  return parseProxyHeader(bytes);
}

Result parse(std::string_view text) {
  return parse(bytesOf(text));
}

// nullopt when the header parsed.
std::optional<ProxyError> errorOf(const Result& result) {
  if (result) return std::nullopt;
  return result.error();
}

std::optional<ProxyError> errorOf(std::string_view text) {
  return errorOf(parse(text));
}

Endpoint endpoint(std::string_view address, std::uint16_t port) {
  return Endpoint{*IpAddress::parse(address), port};
}

// The shortest prefix for which the parser stops saying NeedMore, and what it says then.
struct Decision {
  std::size_t at = 0;
  Result result;
};

Decision firstDecision(const Bytes& bytes) {
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    auto result = parseProxyHeader(std::span<const std::uint8_t>(bytes.data(), n));
    if (result || result.error() != ProxyError::NeedMore) return {n, result};
  }
  return {bytes.size() + 1, tl::unexpected(ProxyError::NeedMore)};
}

// Every strict prefix is NeedMore, the whole input parses, and the answer stays the same when the
// client's own bytes follow the header.
void expectParsesOnlyWhenComplete(const Bytes& header) {
  for (std::size_t n = 0; n < header.size(); ++n) {
    const auto result = parseProxyHeader(std::span<const std::uint8_t>(header.data(), n));
    ASSERT_FALSE(result) << "prefix " << n;
    ASSERT_EQ(result.error(), ProxyError::NeedMore) << "prefix " << n;
  }
  const auto whole = parse(header);
  ASSERT_TRUE(whole) << whole.error();
  EXPECT_EQ(whole->length, header.size());
  Bytes followed = header;
  for (const char c : std::string_view("\x16\x03\x01\x00\x05hello"))
    followed.push_back(c);
  const auto withData = parse(followed);
  ASSERT_TRUE(withData);
  EXPECT_EQ(withData->length, header.size());
  EXPECT_EQ(withData->source, whole->source);
  EXPECT_EQ(withData->destination, whole->destination);
}

// ---------------------------------------------------------------------------------------------
// v1

TEST(ProxyV1, Tcp4) {
  const std::string line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  const auto header = parse(line + "GET / HTTP/1.1\r\n");
  ASSERT_TRUE(header) << header.error();
  EXPECT_EQ(header->version, 1);
  EXPECT_EQ(header->length, line.size());
  EXPECT_EQ(header->source, endpoint("192.0.2.1", 56324));
  EXPECT_EQ(header->destination, endpoint("198.51.100.2", 443));
  expectParsesOnlyWhenComplete(bytesOf(line));
}

TEST(ProxyV1, Tcp6) {
  const std::string line = "PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 1 65535\r\n";
  const auto header = parse(line);
  ASSERT_TRUE(header) << header.error();
  EXPECT_EQ(header->version, 1);
  EXPECT_EQ(header->length, line.size());
  EXPECT_EQ(header->source, endpoint("2001:db8::1", 1));
  EXPECT_EQ(header->destination, endpoint("2001:db8::2", 65535));
  expectParsesOnlyWhenComplete(bytesOf(line));
}

TEST(ProxyV1, Tcp6WithEmbeddedIpv4AndEdgeForms) {
  for (const char* address :
       {"::ffff:192.0.2.1", "::", "::1", "1::", "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1::1.2.3.4", "::1.2.3.4",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0000:0000:0000:0000:0000:0000:0000:0001"}) {
    const std::string line = std::string("PROXY TCP6 ") + address + " ::1 80 443\r\n";
    const auto header = parse(line);
    ASSERT_TRUE(header) << address << ": " << header.error();
    EXPECT_EQ(header->source, endpoint(address, 80)) << address;
    expectParsesOnlyWhenComplete(bytesOf(line));
  }
}

TEST(ProxyV1, PortsAtTheEndsOfTheRange) {
  const auto header = parse("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->source, endpoint("0.0.0.0", 0));
  EXPECT_EQ(header->destination, endpoint("255.255.255.255", 65535));
}

TEST(ProxyV1, UnknownAlone) {
  const auto header = parse("PROXY UNKNOWN\r\nrest");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->version, 1);
  EXPECT_EQ(header->length, 15u);
  EXPECT_FALSE(header->source);
  EXPECT_FALSE(header->destination);
  expectParsesOnlyWhenComplete(bytesOf("PROXY UNKNOWN\r\n"));
}

TEST(ProxyV1, UnknownIgnoresAnythingUpToCrlf) {
  // §2.1: "the receiver must ignore anything presented before the CRLF is found".
  static constexpr char kBinary[] = "PROXY UNKNOWN  two spaces, ports 99999 and \x01\x00\xff\r\n";
  for (const std::string_view line :
       {std::string_view("PROXY UNKNOWN 192.0.2.1 198.51.100.2 1 2\r\n"),
        std::string_view(kBinary, sizeof kBinary - 1), std::string_view("PROXY UNKNOWN \r\n")}) {
    const auto header = parse(bytesOf(line));
    ASSERT_TRUE(header) << line;
    EXPECT_EQ(header->length, line.size());
    EXPECT_FALSE(header->source);
    expectParsesOnlyWhenComplete(bytesOf(line));
  }
}

TEST(ProxyV1, LongestLinesFitIn107Bytes) {
  // §2.1's worst cases: 56 bytes for TCP4, 104 for TCP6, 107 for UNKNOWN.
  const std::string tcp4 = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
  const std::string v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const std::string tcp6 = "PROXY TCP6 " + v6 + " " + v6 + " 65535 65535\r\n";
  const std::string unknown = "PROXY UNKNOWN " + v6 + " " + v6 + " 65535 65535\r\n";
  ASSERT_EQ(tcp4.size(), 56u);
  ASSERT_EQ(tcp6.size(), 104u);
  ASSERT_EQ(unknown.size(), 107u);
  for (const auto& line : {tcp4, tcp6, unknown}) {
    const auto header = parse(line);
    ASSERT_TRUE(header) << line;
    EXPECT_EQ(header->length, line.size());
    expectParsesOnlyWhenComplete(bytesOf(line));
  }
}

TEST(ProxyV1, TooLongWithoutCrlfWithin107Bytes) {
  // 106 bytes without a CR: the CRLF can no longer fit, decided now rather than at byte 108.
  const std::string start = "PROXY UNKNOWN ";
  const std::string filler(106 - start.size(), 'x');
  EXPECT_EQ(errorOf(start + filler.substr(1)), ProxyError::NeedMore);  // 105 bytes
  EXPECT_EQ(errorOf(start + filler), ProxyError::TooLong);
  EXPECT_EQ(errorOf(start + filler + std::string(500, 'x')), ProxyError::TooLong);
  // The same 105 bytes and a CR: only the LF is missing, and it fits.
  EXPECT_EQ(errorOf(start + filler.substr(1) + "\r"), ProxyError::NeedMore);
  const auto header = parse(start + filler.substr(1) + "\r\n");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->length, 107u);
  // A line of 108 bytes is refused even though its CRLF comes.
  EXPECT_EQ(errorOf(start + filler + "\r\n"), ProxyError::TooLong);
}

TEST(ProxyV1, TooLongAsSoonAsTheAddressesCannotFit) {
  // Two IPv6 addresses with dotted tails (45 characters each) are valid text, but the line
  // would take 116 bytes.
  const std::string v6 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  ASSERT_EQ(v6.size(), 45u);
  const std::string line = "PROXY TCP6 " + v6 + " " + v6 + " 65535 65535\r\n";
  const auto decision = firstDecision(bytesOf(line));
  ASSERT_FALSE(decision.result);
  EXPECT_EQ(decision.result.error(), ProxyError::TooLong);
  // Decided at the last "255" of the destination: 102 bytes, and " 0 0\r\n" still to come.
  EXPECT_EQ(decision.at, 102u);
  // The same source with a short destination fits.
  EXPECT_TRUE(parse("PROXY TCP6 " + v6 + " ::1 65535 65535\r\n"));
}

TEST(ProxyV1, MalformedLines) {
  const std::string_view bad[] = {
      "PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",      // two spaces after PROXY
      "PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",      // two spaces after the protocol
      "PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",      // two spaces between addresses
      "PROXY TCP4 192.0.2.1 198.51.100.2  1 2\r\n",      // two spaces before the source port
      "PROXY TCP4 192.0.2.1 198.51.100.2 1  2\r\n",      // two spaces before the destination port
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",      // trailing space
      "PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n",      // tab
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",         // LF only
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",        // CR without LF
      "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",         // a port missing
      "PROXY TCP4 192.0.2.1 198.51.100.2\r\n",           // both ports missing
      "PROXY TCP4\r\n",                                  // nothing after TCP4
      "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",       // protocol is case-sensitive
      "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",       // no such protocol
      "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",       // v1 has no UDP
      "PROXY TCP 192.0.2.1 198.51.100.2 1 2\r\n",        //
      "PROXY UNKNOWNX\r\n",                              // UNKNOWN must end its word
      "PROXY UNKNOWN\rX\n",                              // ... and CR must start CRLF
      "PROXY UNKNOWN bare LF\n",                         // a bare LF is not a line end
      "PROXY UNKNOWN CR without LF\r\r\n",               //
      "PROXY TCP4 256.0.2.1 198.51.100.2 1 2\r\n",       // octet out of range
      "PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",         // three octets
      "PROXY TCP4 192.0.2.1.5 198.51.100.2 1 2\r\n",     // five octets
      "PROXY TCP4 192.0..1 198.51.100.2 1 2\r\n",        // empty octet
      "PROXY TCP4 .192.0.2 198.51.100.2 1 2\r\n",        // leading dot
      "PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n",      // heading zero in an octet
      "PROXY TCP4 192.0.2.1a 198.51.100.2 1 2\r\n",      //
      "PROXY TCP4 ::1 198.51.100.2 1 2\r\n",             // family mismatch: IPv6 under TCP4
      "PROXY TCP4 192.0.2.1 ::ffff:1.2.3.4 1 2\r\n",     //
      "PROXY TCP6 192.0.2.1 ::1 1 2\r\n",                // family mismatch: IPv4 under TCP6
      "PROXY TCP6 ::1 198.51.100.2 1 2\r\n",             //
      "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n",             // three colons
      "PROXY TCP6 2001::db8::1 ::1 1 2\r\n",             // two "::"
      "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",        // nine groups
      "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",            // seven groups without "::"
      "PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n",        // "::" standing for nothing
      "PROXY TCP6 :1::2 ::1 1 2\r\n",                    // a single leading colon
      "PROXY TCP6 1::2: ::1 1 2\r\n",                    // a single trailing colon
      "PROXY TCP6 12345::1 ::1 1 2\r\n",                 // five hex digits
      "PROXY TCP6 ::g ::1 1 2\r\n",                      //
      "PROXY TCP6 [::1] ::1 1 2\r\n",                    // brackets
      "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",             // zone
      "PROXY TCP6 ::1.2.3 ::1 1 2\r\n",                  // short dotted tail
      "PROXY TCP6 ::01.2.3.4 ::1 1 2\r\n",               // heading zero in the dotted tail
      "PROXY TCP6 ::a.2.3.4 ::1 1 2\r\n",                // hex in the dotted tail
      "PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n",    // dotted tail after seven groups
      "PROXY TCP6 1:2:3:4:5:6::1.2.3.4 ::1 1 2\r\n",     // "::" standing for nothing
      "PROXY TCP6 1.2.3.4:: ::1 1 2\r\n",                // dotted part not last
      "PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",   // port out of range
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 99999\r\n",   //
      "PROXY TCP4 192.0.2.1 198.51.100.2 123456 2\r\n",  // six digits
      "PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",      // sign
      "PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",      //
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 0x50\r\n",    // hex
      "PROXY TCP4 192.0.2.1 198.51.100.2 080 2\r\n",     // heading zero (§2.1 forbids them)
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 00\r\n",      //
  };
  for (const auto line : bad) {
    EXPECT_EQ(errorOf(line), ProxyError::Malformed) << line;
    // The same with more bytes behind it: still decided by the line.
    EXPECT_EQ(errorOf(std::string(line) + std::string(200, 'x')), ProxyError::Malformed) << line;
  }
}

TEST(ProxyV1, MalformedDecidedAtTheOffendingByte) {
  // Nothing is buffered beyond the byte that can no longer lead to a valid line.
  const struct {
    std::string_view line;
    std::size_t decidedAt;  // prefix length that first says Malformed
  } cases[] = {
      {"PROXY  TCP4", 7},                        // the second space
      {"PROXY TCP4 1.2..", 16},                  // the second dot in a row
      {"PROXY TCP4 1.2.3.4.", 19},               // a fourth dot
      {"PROXY TCP4 01", 13},                     // the digit after a heading zero
      {"PROXY TCP4 300", 14},                    // 300 > 255
      {"PROXY TCP4 1.2.3.4 5.6.7.8 6553", 100},  // not decided: 6553x may still be valid
      {"PROXY TCP4 1.2.3.4 5.6.7.8 65536", 32},  // 65536 > 65535
      {"PROXY TCP6 1:2:3:4:5:6:7:8:", 27},       // no room for a ninth group
      {"PROXY TCP6 ::1::", 16},                  // a second "::"
      {"PROXY TCP6 ::1:2:3:4:5:6:7", 100},       // valid: "::" stands for one group
      {"PROXY TCP6 ::1:2:3:4:5:6:7:", 27},       // "::" and seven groups: full
      {"PROXY TCP6 1:2:3:4:5:6:7:8:9", 27},      //
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31},  // LF without CR
      {"PROXY UNKNOWN\n", 14},                   //
  };
  for (const auto& c : cases) {
    const auto decision = firstDecision(bytesOf(c.line));
    if (c.decidedAt > c.line.size()) {
      EXPECT_EQ(decision.at, c.line.size() + 1) << c.line;
      continue;
    }
    ASSERT_FALSE(decision.result) << c.line;
    EXPECT_EQ(decision.result.error(), ProxyError::Malformed) << c.line;
    EXPECT_EQ(decision.at, c.decidedAt) << c.line;
  }
}

TEST(ProxyV1, PrefixesOfTheSignature) {
  EXPECT_EQ(errorOf(""), ProxyError::NeedMore);
  EXPECT_EQ(errorOf("P"), ProxyError::NeedMore);
  EXPECT_EQ(errorOf("PROXY"), ProxyError::NeedMore);
  EXPECT_EQ(errorOf("PROXY "), ProxyError::NeedMore);
  EXPECT_EQ(errorOf("PROXY T"), ProxyError::NeedMore);
  EXPECT_EQ(errorOf("PROXY UNKNOWN"), ProxyError::NeedMore);
  EXPECT_EQ(errorOf("PROXY UNKNOWN\r"), ProxyError::NeedMore);
}

TEST(ProxyV1, NotProxy) {
  for (const std::string_view text :
       {std::string_view("GET / HTTP/1.1\r\n"), std::string_view("PROXZ"),
        std::string_view("proxy TCP4"), std::string_view("PRI * HTTP/2.0"),
        std::string_view("\x16\x03\x01\x02\x00", 5), std::string_view("\x00\x01\x00\x00", 4),
        std::string_view(" PROXY"), std::string_view("PROXY\r\n")}) {
    EXPECT_EQ(errorOf(text), ProxyError::NotProxy) << text;
  }
}

// The address grammar follows inet_pton exactly: the parser accepts a TCP4/TCP6 address iff
// inet_pton does (for texts that fit the line), on random mutations of valid addresses.
TEST(ProxyV1, AddressGrammarMatchesInetPton) {
  std::mt19937 random(8489);
  const std::string_view seeds[] = {"::",
                                    "1::",
                                    "::ffff:192.0.2.1",
                                    "2001:db8::1",
                                    "1:2:3:4:5:6:7:8",
                                    "1:2:3:4:5:6:1.2.3.4",
                                    "1::2:3:4:5:6:7",
                                    "192.0.2.1",
                                    "0.0.0.0",
                                    "255.255.255.255",
                                    "fe80::abcd:ef01:2345:6789"};
  const std::string alphabet = "0123456789abcdefABCDEF:.:.g ";
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text(seeds[random() % std::size(seeds)]);
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = text.empty() ? 0 : random() % (text.size() + 1);
      const char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
        case 0:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = c;
          break;
      }
    }
    if (text.empty() || text.find(' ') != std::string::npos) continue;
    std::array<std::uint8_t, 16> buffer{};
    const bool v4 = inet_pton(AF_INET, text.c_str(), buffer.data()) == 1;
    const bool v6 = inet_pton(AF_INET6, text.c_str(), buffer.data()) == 1;
    const auto as4 = parse("PROXY TCP4 " + text + " 1.2.3.4 1 2\r\n");
    const auto as6 = parse("PROXY TCP6 " + text + " ::1 1 2\r\n");
    EXPECT_EQ(as4.has_value(), v4) << text;
    EXPECT_EQ(as6.has_value(), v6) << text;
    if (!v4) {
      EXPECT_EQ(errorOf(as4), ProxyError::Malformed) << text;
    }
    if (!v6) {
      EXPECT_EQ(errorOf(as6), ProxyError::Malformed) << text;
    }
    accepted += v4 || v6;
  }
  EXPECT_GT(accepted, 1000);  // the mutations keep a fair share valid
}

// ---------------------------------------------------------------------------------------------
// v2

constexpr std::uint8_t kSignature[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// Signature, version/command, family/transport, length of `block`, `block`.
Bytes v2(std::uint8_t versionCommand, std::uint8_t family, const Bytes& block) {
  Bytes out(std::begin(kSignature), std::end(kSignature));
  out.push_back(versionCommand);
  out.push_back(family);
  out.push_back(static_cast<std::uint8_t>(block.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(block.size()));
  out.insert(out.end(), block.begin(), block.end());
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// 192.0.2.1:56324 -> 198.51.100.2:443
const Bytes kIpv4Block = {
    192,  0,    2,   1,  // source address
    198,  51,   100, 2,  // destination address
    0xDC, 0x04,          // source port 56324
    0x01, 0xBB,          // destination port 443
};

// [2001:db8::1]:1 -> [2001:db8::2]:65535
const Bytes kIpv6Block = {
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,  // source address
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,  // destination address
    0x00, 0x01,                                                  // source port 1
    0xFF, 0xFF,                                                  // destination port 65535
};

// §2.2.7 TLVs: ALPN "h2", AUTHORITY "example.org", NOOP with nothing.
const Bytes kTlvs = {
    0x01, 0x00, 0x02, 'h', '2',                                               // PP2_TYPE_ALPN
    0x02, 0x00, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g',  // AUTHORITY
    0x04, 0x00, 0x00,                                                         // PP2_TYPE_NOOP
};

TEST(ProxyV2, TcpOverIpv4) {
  const Bytes header = v2(0x21, 0x11, kIpv4Block);
  const auto parsed = parse(header);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->version, 2);
  EXPECT_EQ(parsed->length, 28u);
  EXPECT_EQ(parsed->source, endpoint("192.0.2.1", 56324));
  EXPECT_EQ(parsed->destination, endpoint("198.51.100.2", 443));
  expectParsesOnlyWhenComplete(header);
}

TEST(ProxyV2, TcpOverIpv6) {
  const Bytes header = v2(0x21, 0x21, kIpv6Block);
  const auto parsed = parse(header);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->length, 52u);
  EXPECT_EQ(parsed->source, endpoint("2001:db8::1", 1));
  EXPECT_EQ(parsed->destination, endpoint("2001:db8::2", 65535));
  expectParsesOnlyWhenComplete(header);
}

TEST(ProxyV2, UdpReportsAddressesToo) {
  const auto v4 = parse(v2(0x21, 0x12, kIpv4Block));
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->source, endpoint("192.0.2.1", 56324));
  const auto v6 = parse(v2(0x21, 0x22, kIpv6Block));
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->destination, endpoint("2001:db8::2", 65535));
}

TEST(ProxyV2, WithTlvs) {
  const Bytes header = v2(0x21, 0x11, kIpv4Block + kTlvs);
  const auto parsed = parse(header);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->length, 16 + 12 + kTlvs.size());
  EXPECT_EQ(parsed->source, endpoint("192.0.2.1", 56324));
  expectParsesOnlyWhenComplete(header);
  expectParsesOnlyWhenComplete(v2(0x21, 0x21, kIpv6Block + kTlvs));
}

TEST(ProxyV2, LocalIgnoresTheBlock) {
  // §2.2 LOCAL (health checks): "discard the protocol block including the family which is
  // ignored" - whatever family, length and content.
  for (const Bytes& header : {v2(0x20, 0x00, {}), v2(0x20, 0x11, kIpv4Block), v2(0x20, 0x11, {}),
                              v2(0x20, 0x00, kTlvs), v2(0x20, 0x11, kIpv4Block + kTlvs),
                              v2(0x20, 0xFF, {1, 2, 3}), v2(0x20, 0x21, Bytes{0x01, 0x00, 0xFF})}) {
    const auto parsed = parse(header);
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->version, 2);
    EXPECT_EQ(parsed->length, header.size());
    EXPECT_FALSE(parsed->source);
    EXPECT_FALSE(parsed->destination);
    expectParsesOnlyWhenComplete(header);
  }
}

TEST(ProxyV2, UnspecReportsNothing) {
  // "the receiver should ignore address information": skipped unread.
  for (const Bytes& header :
       {v2(0x21, 0x00, {}), v2(0x21, 0x00, {0xFF, 0xFF, 0xFF}), v2(0x21, 0x00, kTlvs)}) {
    const auto parsed = parse(header);
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->length, header.size());
    EXPECT_FALSE(parsed->source);
  }
}

TEST(ProxyV2, UnixReportsNothingButNeedsItsAddressBlock) {
  const Bytes paths(216, 0);  // two 108-byte sun_path
  for (const std::uint8_t family : {0x31, 0x32}) {
    const auto parsed = parse(v2(0x21, family, paths + kTlvs));
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->length, 16 + 216 + kTlvs.size());
    EXPECT_FALSE(parsed->source);
    EXPECT_FALSE(parsed->destination);
    EXPECT_EQ(errorOf(parse(v2(0x21, family, Bytes(215, 0)))), ProxyError::Malformed);
  }
}

TEST(ProxyV2, LengthMustCoverTheAddresses) {
  EXPECT_EQ(errorOf(parse(v2(0x21, 0x11, Bytes(kIpv4Block.begin(), kIpv4Block.end() - 1)))),
            ProxyError::Malformed);
  EXPECT_EQ(errorOf(parse(v2(0x21, 0x11, {}))), ProxyError::Malformed);
  EXPECT_EQ(errorOf(parse(v2(0x21, 0x21, kIpv4Block + Bytes(23, 0)))), ProxyError::Malformed);
  EXPECT_EQ(errorOf(parse(v2(0x21, 0x22, kIpv4Block))), ProxyError::Malformed);
  // Decided from the 16-byte header alone, before any address byte arrives.
  const auto decision = firstDecision(v2(0x21, 0x11, Bytes(11, 0)));
  EXPECT_EQ(decision.at, 16u);
  EXPECT_EQ(errorOf(decision.result), ProxyError::Malformed);
}

TEST(ProxyV2, TlvsMustFitExactly) {
  const Bytes overrun = {0x01, 0x00, 0x0A, 'h', '2', 'x', 'y', 'z'};  // says 10, has 5
  const Bytes oneByte = {0x04};                                       // a TLV header cut to 1
  const Bytes twoBytes = {0x04, 0x00};                                // ... and to 2
  const Bytes lastOverruns = kTlvs + Bytes{0x04, 0x00, 0x01};         // says 1, has 0
  for (const Bytes& tlvs : {overrun, oneByte, twoBytes, lastOverruns}) {
    EXPECT_EQ(errorOf(parse(v2(0x21, 0x11, kIpv4Block + tlvs))), ProxyError::Malformed);
    EXPECT_EQ(errorOf(parse(v2(0x21, 0x21, kIpv6Block + tlvs))), ProxyError::Malformed);
    // The client's next bytes do not make the TLV fit: the header's length is what counts.
    EXPECT_EQ(errorOf(parse(v2(0x21, 0x11, kIpv4Block + tlvs) + Bytes(64, 0))),
              ProxyError::Malformed);
  }
  // An overrunning TLV is refused when its length arrives, not when the header would end.
  const Bytes header = v2(0x21, 0x11, kIpv4Block + overrun);
  const auto decision = firstDecision(header);
  EXPECT_EQ(decision.at, 16u + 12u + 3u);
  EXPECT_EQ(errorOf(decision.result), ProxyError::Malformed);
  // A high length byte alone can already be too much.
  const auto early = firstDecision(v2(0x21, 0x11, kIpv4Block + Bytes{0x01, 0x01, 0x00, 0, 0}));
  EXPECT_EQ(early.at, 16u + 12u + 2u);
  EXPECT_EQ(errorOf(early.result), ProxyError::Malformed);
}

TEST(ProxyV2, VersionOtherThanTwoIsUnsupported) {
  for (const std::uint8_t versionCommand : {0x01, 0x11, 0x31, 0xF1, 0x00}) {
    const Bytes header = v2(versionCommand, 0x11, kIpv4Block);
    EXPECT_EQ(errorOf(parse(header)), ProxyError::Unsupported) << int(versionCommand);
    EXPECT_EQ(firstDecision(header).at, 13u);
  }
}

TEST(ProxyV2, UnknownCommandIsMalformed) {
  for (const std::uint8_t versionCommand : {0x22, 0x2F}) {
    EXPECT_EQ(errorOf(parse(v2(versionCommand, 0x11, kIpv4Block))), ProxyError::Malformed);
  }
}

TEST(ProxyV2, UndefinedFamilyIsUnsupported) {
  for (const std::uint8_t family : {0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x41, 0xFF}) {
    const Bytes header = v2(0x21, family, kIpv4Block);
    EXPECT_EQ(errorOf(parse(header)), ProxyError::Unsupported) << int(family);
    EXPECT_EQ(firstDecision(header).at, 14u);
  }
}

TEST(ProxyV2, TooLong) {
  // 1024 bytes after the header is the most a receiver buffers; 1025 is refused.
  const Bytes bigTlv = Bytes{0x04, 0x03, 0xF1} + Bytes(1009, 0xAA);  // NOOP, 12 + 3 + 1009 = 1024
  const Bytes largest = v2(0x21, 0x11, kIpv4Block + bigTlv);
  ASSERT_EQ(largest.size(), kMaxProxyHeaderBytes);
  const auto parsed = parse(largest);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->length, kMaxProxyHeaderBytes);
  EXPECT_EQ(parsed->source, endpoint("192.0.2.1", 56324));

  const Bytes tooLong = v2(0x21, 0x11, kIpv4Block + Bytes{0x04, 0x03, 0xF2} + Bytes(1010, 0));
  EXPECT_EQ(errorOf(parse(tooLong)), ProxyError::TooLong);
  EXPECT_EQ(firstDecision(tooLong).at, 16u);
  EXPECT_EQ(errorOf(parse(v2(0x20, 0x00, Bytes(1025, 0)))), ProxyError::TooLong);  // LOCAL too
  // A length of 0x05xx is refused as soon as its high byte arrives.
  Bytes header = v2(0x21, 0x11, {});
  header[14] = 0x05;
  EXPECT_EQ(firstDecision(header).at, 15u);
  EXPECT_EQ(errorOf(firstDecision(header).result), ProxyError::TooLong);
}

TEST(ProxyV2, SignaturePrefixes) {
  const Bytes header = v2(0x21, 0x11, kIpv4Block);
  for (std::size_t n = 1; n < 12; ++n) {
    EXPECT_EQ(errorOf(parse(Bytes(header.begin(), header.begin() + n))), ProxyError::NeedMore);
    Bytes broken(header.begin(), header.begin() + n);
    broken.back() ^= 0x20;
    EXPECT_EQ(errorOf(parse(broken)), ProxyError::NotProxy) << n;
  }
  EXPECT_EQ(errorOf(std::string_view("\r\n\r\n\0\r\nQUIT\nX", 13)), ProxyError::Unsupported);
  EXPECT_EQ(errorOf("\r\n\r\nQUIT"), ProxyError::NotProxy);
}

TEST(ProxyError, Names) {
  for (const auto error : {ProxyError::NeedMore, ProxyError::NotProxy, ProxyError::Malformed,
                           ProxyError::Unsupported, ProxyError::TooLong}) {
    EXPECT_FALSE(toString(error).empty());
  }
  EXPECT_NE(toString(ProxyError::Malformed), toString(ProxyError::TooLong));
}

}  // namespace
}  // namespace parley::edge
