#include <string_view>

#include <gtest/gtest.h>

#include <parley/base/cidr.hpp>

namespace parley {
namespace {

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

TEST(Cidr, ParsesPrefixes) {
  const auto net = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->network, ip("10.0.0.0"));
  EXPECT_EQ(net->prefixLength, 8u);
  const auto v6 = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->network, ip("2001:db8::"));
  EXPECT_EQ(v6->prefixLength, 32u);
  // Host bits may be set; they are ignored when matching.
  const auto host = Cidr::parse("192.0.2.77/24");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(ip("192.0.2.1")));
}

TEST(Cidr, BareAddressIsFullLength) {
  EXPECT_EQ(Cidr::parse("192.0.2.1")->prefixLength, 32u);
  EXPECT_EQ(Cidr::parse("::1")->prefixLength, 128u);
  EXPECT_TRUE(Cidr::parse("::1")->contains(ip("::1")));
  EXPECT_FALSE(Cidr::parse("::1")->contains(ip("::2")));
}

TEST(Cidr, ContainsAtPrefixBoundaries) {
  const auto odd = *Cidr::parse("100.64.0.0/10");
  EXPECT_TRUE(odd.contains(ip("100.64.0.0")));
  EXPECT_TRUE(odd.contains(ip("100.127.255.255")));
  EXPECT_FALSE(odd.contains(ip("100.128.0.0")));
  EXPECT_FALSE(odd.contains(ip("100.63.255.255")));
  const auto ula = *Cidr::parse("fc00::/7");
  EXPECT_TRUE(ula.contains(ip("fd12:3456::1")));
  EXPECT_FALSE(ula.contains(ip("fe80::1")));
  const auto last = *Cidr::parse("2001:db8::/127");
  EXPECT_TRUE(last.contains(ip("2001:db8::1")));
  EXPECT_FALSE(last.contains(ip("2001:db8::2")));
}

TEST(Cidr, ZeroLengthMatchesItsWholeFamilyOnly) {
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(ip("203.0.113.9")));
  EXPECT_TRUE(Cidr::parse("::/0")->contains(ip("2001:db8::1")));
  EXPECT_FALSE(Cidr::parse("::/0")->contains(ip("203.0.113.9")));
  EXPECT_FALSE(Cidr::parse("0.0.0.0/0")->contains(ip("::ffff:203.0.113.9")));
}

TEST(Cidr, RejectsMalformedText) {
  for (const char* text : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x",
                           "10.0.0/8", "example.org", "10.0.0.0/-1", "10.0.0.0/+8", "[::1]/128",
                           "10.0.0.0/0008", "10.0.0.0/8/8", " 10.0.0.0/8"}) {
    EXPECT_FALSE(Cidr::parse(text)) << text;
  }
}

}  // namespace
}  // namespace parley
