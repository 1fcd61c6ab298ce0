#include <cstdint>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include <parley/edge/first_bytes.hpp>

#include "../stun/vectors.hpp"

namespace parley::edge {

std::ostream& operator<<(std::ostream& out, FirstBytes kind) {
  return out << toString(kind);
}

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytesOf(std::string_view text) {
  return {text.begin(), text.end()};
}

FirstBytes classify(const Bytes& bytes, std::size_t n) {
  return classifyFirstBytes(std::span<const std::uint8_t>(bytes.data(), n));
}

// Every prefix shorter than `decidedAt` is NeedMore; from `decidedAt` bytes on, every prefix up
// to the whole input is `expected`.
void expectDecision(const Bytes& bytes, std::size_t decidedAt, FirstBytes expected) {
  ASSERT_LE(decidedAt, 16u) << "classifyFirstBytes promises to decide within 16 bytes";
  ASSERT_LE(decidedAt, bytes.size());
  for (std::size_t n = 0; n < decidedAt; ++n) {
    EXPECT_EQ(classify(bytes, n), FirstBytes::NeedMore) << "prefix " << n;
  }
  for (std::size_t n = decidedAt; n <= bytes.size(); ++n) {
    EXPECT_EQ(classify(bytes, n), expected) << "prefix " << n;
  }
}

void expectDecision(std::string_view text, std::size_t decidedAt, FirstBytes expected) {
  expectDecision(bytesOf(text), decidedAt, expected);
}

// The start of a real ClientHello (curl 7.88 against OpenSSL 3).
const Bytes kClientHello = {
    0x16,                                            // record: handshake
    0x03, 0x01,                                      // legacy_record_version TLS 1.0
    0x02, 0x00,                                      // record length 512
    0x01,                                            // handshake: client_hello
    0x00, 0x01, 0xFC,                                // length 508
    0x03, 0x03,                                      // legacy_version TLS 1.2
    0x5a, 0x1c, 0x9e, 0x41, 0x07, 0xd2, 0x6b, 0x3f,  // random...
    0xc8, 0x55, 0x20, 0x9a, 0x6e, 0x31, 0xf0, 0x8c,  //
};

TEST(FirstBytes, EmptyNeedsMore) {
  EXPECT_EQ(classifyFirstBytes({}), FirstBytes::NeedMore);
}

TEST(FirstBytes, TlsClientHello) {
  expectDecision(kClientHello, 3, FirstBytes::Tls);
}

TEST(FirstBytes, TlsRecordVersions) {
  // SSL 3.0 (0x0300) to TLS 1.3 (0x0304, never sent as record version but harmless).
  for (std::uint8_t minor = 0; minor <= 4; ++minor) {
    EXPECT_EQ(classify(Bytes{0x16, 0x03, minor}, 3), FirstBytes::Tls) << int(minor);
  }
  // 0x16 0x03 0x05 is no TLS; it is still the start of a STUN header until byte 3 says no.
  const Bytes notTls = {0x16, 0x03, 0x05, 0x01, 0x21, 0x12, 0xA4, 0x42};
  expectDecision(notTls, 4, FirstBytes::Unknown);
  // An alert or application-data record is not how a client starts.
  EXPECT_EQ(classify(Bytes{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28, 0}, 8), FirstBytes::Unknown);
  EXPECT_EQ(classify(Bytes{0x16, 0x02}, 2), FirstBytes::NeedMore);  // STUN still possible
}

TEST(FirstBytes, StunBindingRequest) {
  // RFC 5769 §2.1: decided once the magic cookie is complete.
  expectDecision(stun::test::kSampleRequest, 8, FirstBytes::Stun);
  expectDecision(stun::test::kSampleIpv6Response, 8, FirstBytes::Stun);
}

TEST(FirstBytes, StunRuledOutEarly) {
  // Length not a multiple of 4: decided at byte 4.
  expectDecision(Bytes{0x00, 0x01, 0x00, 0x05, 0x21, 0x12, 0xA4, 0x42}, 4, FirstBytes::Unknown);
  // A wrong cookie byte decides at that byte (RFC 3489 clients have no cookie: not on 443).
  expectDecision(Bytes{0x00, 0x01, 0x00, 0x00, 0x21, 0x13, 0xA4, 0x42}, 6, FirstBytes::Unknown);
  expectDecision(Bytes{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x43}, 8, FirstBytes::Unknown);
  // First two bits not zero and not ChannelData either.
  expectDecision(Bytes{0x80, 0x01, 0x00, 0x00}, 1, FirstBytes::Unknown);
  expectDecision(Bytes{0xC0}, 1, FirstBytes::Unknown);
}

TEST(FirstBytes, ChannelData) {
  // Channel 0x4000 with 4 bytes of data; and the top of RFC 5766's range.
  expectDecision(Bytes{0x40, 0x00, 0x00, 0x04, 'd', 'a', 't', 'a'}, 4, FirstBytes::ChannelData);
  expectDecision(Bytes{0x7F, 0xFF, 0x00, 0x00}, 4, FirstBytes::ChannelData);
  // Channel 0x4745 ("GE") with a length no method could continue with.
  expectDecision(Bytes{'G', 'E', 0x00, 0x10, 0, 0}, 4, FirstBytes::ChannelData);
  // The length field is not checked: any value goes.
  expectDecision(Bytes{0x4F, 0xFF, 0xFF, 0xFF}, 4, FirstBytes::ChannelData);
}

TEST(FirstBytes, Http) {
  expectDecision("GET / HTTP/1.1\r\nHost: example.org\r\n", 4, FirstBytes::Http);
  expectDecision("POST /api/login HTTP/1.1\r\n", 5, FirstBytes::Http);
  expectDecision("OPTIONS * HTTP/1.1\r\n", 8, FirstBytes::Http);
  expectDecision("CONNECT example.org:443 HTTP/1.1\r\n", 8, FirstBytes::Http);
  expectDecision("HEAD / HTTP/1.0\r\n", 5, FirstBytes::Http);
  expectDecision("M-SEARCH * HTTP/1.1", 9, FirstBytes::Http);
  expectDecision("X_Y /", 4, FirstBytes::Http);
}

TEST(FirstBytes, Http2PrefaceIsHttp) {
  // RFC 9113 §3.4.
  expectDecision("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 4, FirstBytes::Http);
}

TEST(FirstBytes, MethodLengthLimit) {
  // 15 method characters and the space are the 16 bytes; a 16th method character is no method.
  const std::string fifteen(15, 'A');
  expectDecision(fifteen + " /", 16, FirstBytes::Http);
  const std::string sixteen(16, 'A');
  expectDecision(sixteen + " /", 16, FirstBytes::ChannelData);  // 'A' 'A' = channel 0x4141
  // Something that is no method is decided by the first byte that breaks the token.
  expectDecision("GET\t/", 4, FirstBytes::ChannelData);
  expectDecision("get / HTTP/1.1", 4, FirstBytes::ChannelData);  // lower case: 0x6765
  expectDecision(" GET / HTTP/1.1", 5, FirstBytes::Unknown);     // space first: STUN until byte 4
  // '-' (0x2D) can start a method and a STUN message alike: decided by byte 1.
  expectDecision("-X ", 3, FirstBytes::Http);
  expectDecision(Bytes{'-', 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42}, 8, FirstBytes::Stun);
}

TEST(FirstBytes, ProxyV1WinsOverHttp) {
  expectDecision("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", 6, FirstBytes::ProxyV1);
  expectDecision("PROXY UNKNOWN\r\n", 6, FirstBytes::ProxyV1);
  // Other methods starting with P are decided as HTTP once they differ from "PROXY ".
  expectDecision("PROPFIND / HTTP/1.1", 9, FirstBytes::Http);
  expectDecision("PUT / HTTP/1.1", 4, FirstBytes::Http);
  expectDecision("PROXYX / HTTP/1.1", 7, FirstBytes::Http);
  expectDecision("PROXY\r\n", 6, FirstBytes::ChannelData);  // "PR" channel, not a method
}

TEST(FirstBytes, ProxyV2Signature) {
  const Bytes header = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                        0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 192,  0,    2,    1};
  expectDecision(header, 12, FirstBytes::ProxyV2);
  // A broken signature is nothing we know (0x0D 0x0A cannot start a STUN header: length 0x0D0A
  // is no multiple of 4).
  Bytes broken = header;
  broken[11] = 0x0B;
  expectDecision(broken, 12, FirstBytes::Unknown);
  expectDecision(Bytes{0x0D, 0x0A, 0x0D, 0x0B}, 4, FirstBytes::Unknown);
}

TEST(FirstBytes, Garbage) {
  expectDecision(Bytes{0xFF, 0xFE, 0x00, 0x01}, 1, FirstBytes::Unknown);
  expectDecision(Bytes{0x80}, 1, FirstBytes::Unknown);
  expectDecision(Bytes{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 5, FirstBytes::Unknown);
  expectDecision("\r\n\r\nGET", 5, FirstBytes::Unknown);  // the v2 signature until byte 4
  expectDecision(Bytes{0x05, 0x01, 0x00}, 3, FirstBytes::NeedMore);  // SOCKS5: a STUN prefix
  expectDecision(Bytes{0x05, 0x01, 0x00, 0x01}, 4, FirstBytes::Unknown);
}

// On random inputs biased towards the interesting first bytes: the answer for a prefix never
// changes once it is not NeedMore, and 16 bytes always decide.
TEST(FirstBytes, DecisionIsStableAndBounded) {
  std::mt19937 random(5766);
  const std::uint8_t starts[] = {0x00, 0x01, 0x0D, 0x16, 0x40, 0x47, 0x50, 0x7F, 0x2D, 0x5F, 'P'};
  const std::string interesting = "PROXY GETOS-_ \r\n\x03\x21\x12\xA4\x42";
  std::set<FirstBytes> seen;
  for (int round = 0; round < 20000; ++round) {
    Bytes bytes(16);
    bytes[0] = starts[random() % std::size(starts)];
    for (std::size_t i = 1; i < bytes.size(); ++i) {
      bytes[i] = random() % 2
                     ? static_cast<std::uint8_t>(interesting[random() % interesting.size()])
                     : static_cast<std::uint8_t>(random());
    }
    FirstBytes decided = FirstBytes::NeedMore;
    for (std::size_t n = 0; n <= bytes.size(); ++n) {
      const FirstBytes now = classify(bytes, n);
      if (decided != FirstBytes::NeedMore) {
        ASSERT_EQ(now, decided) << "prefix " << n;
      }
      decided = now;
    }
    ASSERT_NE(decided, FirstBytes::NeedMore);
    seen.insert(decided);
  }
  EXPECT_GE(seen.size(), 4u);  // at least Tls, Http, ChannelData and Unknown come up
}

TEST(FirstBytes, Names) {
  std::set<std::string_view> names;
  for (const auto kind :
       {FirstBytes::NeedMore, FirstBytes::Tls, FirstBytes::Http, FirstBytes::Stun,
        FirstBytes::ChannelData, FirstBytes::ProxyV1, FirstBytes::ProxyV2, FirstBytes::Unknown}) {
    names.insert(toString(kind));
  }
  EXPECT_EQ(names.size(), 8u);
}

}  // namespace
}  // namespace parley::edge
