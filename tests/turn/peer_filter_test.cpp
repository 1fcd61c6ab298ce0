#include <gtest/gtest.h>

#include <parley/turn/peer_filter.hpp>

namespace parley::turn {
namespace {

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

TEST(Cidr, ParsesPrefixesAndBareAddresses) {
  const auto net = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->prefixLength, 8u);
  EXPECT_TRUE(net->contains(ip("10.255.1.2")));
  EXPECT_FALSE(net->contains(ip("11.0.0.1")));
  EXPECT_FALSE(net->contains(ip("::ffff:10.0.0.1")));  // other family: not by itself

  const auto bare = Cidr::parse("2001:db8::1");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->prefixLength, 128u);
  EXPECT_TRUE(bare->contains(ip("2001:db8::1")));
  EXPECT_FALSE(bare->contains(ip("2001:db8::2")));

  const auto odd = Cidr::parse("100.64.0.0/10");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(ip("100.127.255.255")));
  EXPECT_FALSE(odd->contains(ip("100.128.0.0")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(ip("8.8.8.8")));
}

TEST(Cidr, RejectsMalformedText) {
  for (const char* text : {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x", "10.0.0/8",
                           "example.org", "10.0.0.0/-1", "[::1]/128", "10.0.0.0/0008"}) {
    EXPECT_FALSE(Cidr::parse(text)) << text;
  }
}

TEST(PeerFilter, DeniesEveryForbiddenClassByDefault) {
  const PeerFilter filter;
  for (const char* text : {
           "127.0.0.1",
           "10.1.2.3",
           "172.16.0.1",
           "172.31.255.255",
           "192.168.1.1",
           "100.64.0.1",
           "100.127.0.1",
           "169.254.169.254",
           "224.0.0.1",
           "239.255.255.250",
           "255.255.255.255",
           "0.1.2.3",
           "0.0.0.0",
           "::",
           "::1",
           "fe80::1",
           "fd00::1",
           "fc00::1",
           "ff02::1",
           "::ffff:127.0.0.1",
           "::ffff:169.254.169.254",
           "::ffff:10.0.0.1",
           "::127.0.0.1",
           "::10.0.0.1",
           "64:ff9b::a00:1",
           "64:ff9b::7f00:1",
           "2002:7f00:1::",
           "2002:a9fe:a9fe::1",
           "2002:c0a8:101::",
           "64:ff9b:1::8.8.8.8",
       }) {
    EXPECT_FALSE(filter.isAllowed(ip(text))) << text;
  }
}

TEST(PeerFilter, AllowsPublicAddressesInEveryForm) {
  const PeerFilter filter;
  for (const char* text :
       {"8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "192.0.2.1", "2001:4860:4860::8888",
        "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "::8.8.8.8"}) {
    EXPECT_TRUE(filter.isAllowed(ip(text))) << text;
  }
}

TEST(PeerFilter, AllowedRangesWinOverBuiltinAndConfiguredDenies) {
  const PeerFilter filter(
      {*Cidr::parse("10.0.0.0/8"), *Cidr::parse("fd00::/8"), *Cidr::parse("8.8.8.8")},
      {*Cidr::parse("8.8.8.0/24")});
  EXPECT_TRUE(filter.isAllowed(ip("10.1.2.3")));
  EXPECT_TRUE(filter.isAllowed(ip("::ffff:10.1.2.3")));  // embedded form of an allowed range
  EXPECT_TRUE(filter.isAllowed(ip("fd00::1")));
  EXPECT_TRUE(filter.isAllowed(ip("8.8.8.8")));
  EXPECT_FALSE(filter.isAllowed(ip("8.8.8.9")));  // configured deny
  EXPECT_FALSE(filter.isAllowed(ip("::ffff:8.8.8.9")));
  EXPECT_FALSE(filter.isAllowed(ip("192.168.0.1")));
  EXPECT_FALSE(filter.isAllowed(ip("fc00::1")));
}

TEST(PeerFilter, ConfiguredDeniesAddToTheBuiltinList) {
  const PeerFilter filter({}, {*Cidr::parse("203.0.113.0/24"), *Cidr::parse("2001:db8::/32")});
  EXPECT_FALSE(filter.isAllowed(ip("203.0.113.9")));
  EXPECT_FALSE(filter.isAllowed(ip("2002:cb00:7109::")));  // 6to4 of 203.0.113.9
  EXPECT_FALSE(filter.isAllowed(ip("2001:db8::5")));
  EXPECT_FALSE(filter.isAllowed(ip("127.0.0.1")));
  EXPECT_TRUE(filter.isAllowed(ip("198.51.100.1")));
}

TEST(PeerFilter, ExemptEndpointsAllowThatPortOnly) {
  const Endpoint probe{ip("10.0.0.5"), 43117};
  const PeerFilter filter({}, {}, {probe});
  EXPECT_FALSE(filter.isAllowed(probe.address));  // the range stays denied
  EXPECT_TRUE(filter.allowsPermission(probe.address));
  EXPECT_FALSE(filter.allowsPermission(ip("10.0.0.6")));
  EXPECT_TRUE(filter.allowsEndpoint(probe));
  EXPECT_FALSE(filter.allowsEndpoint({probe.address, 43118}));
  EXPECT_FALSE(filter.allowsEndpoint({ip("10.0.0.6"), probe.port}));
  EXPECT_TRUE(filter.allowsEndpoint({ip("8.8.8.8"), 1}));  // public: as before
  EXPECT_TRUE(filter.allowsPermission(ip("8.8.8.8")));
  EXPECT_TRUE(filter.admitsInbound(probe));
  EXPECT_FALSE(filter.admitsInbound({probe.address, 43118}));
  EXPECT_TRUE(filter.admitsInbound({ip("8.8.8.8"), 1}));
  EXPECT_TRUE(filter.admitsInbound({ip("10.0.0.6"), 1}));  // its permission was checked already

  const PeerFilter none;
  EXPECT_TRUE(none.admitsInbound(probe));  // without exemptions a permission decides alone
  EXPECT_FALSE(none.allowsPermission(probe.address));
  EXPECT_FALSE(none.allowsEndpoint(probe));
}

}  // namespace
}  // namespace parley::turn
