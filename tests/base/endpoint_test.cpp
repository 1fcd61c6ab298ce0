#include <array>
#include <cstdint>

#include <gtest/gtest.h>

#include <parley/base/endpoint.hpp>

namespace parley {
namespace {

TEST(IpAddressTest, ParsesDottedIpv4) {
  const auto address = IpAddress::parse("192.0.2.1");
  ASSERT_TRUE(address);
  EXPECT_TRUE(address->isV4());
  EXPECT_EQ(address->family(), AddressFamily::V4);
  const std::array<std::uint8_t, 4> expected{192, 0, 2, 1};
  ASSERT_EQ(address->bytes().size(), 4u);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), address->bytes().begin()));
  EXPECT_EQ(address->toString(), "192.0.2.1");
  EXPECT_EQ(*address, IpAddress::v4(0xC0000201));
}

TEST(IpAddressTest, ParsesIpv6AndPrintsCanonicalForm) {
  const auto address = IpAddress::parse("2001:0db8:0000:0000:0000:0000:0000:0001");
  ASSERT_TRUE(address);
  EXPECT_FALSE(address->isV4());
  EXPECT_EQ(address->family(), AddressFamily::V6);
  EXPECT_EQ(address->bytes().size(), 16u);
  EXPECT_EQ(address->bytes()[0], 0x20);
  EXPECT_EQ(address->bytes()[1], 0x01);
  EXPECT_EQ(address->bytes()[15], 0x01);
  // RFC 5952 section 4: zeros compressed, lower case.
  EXPECT_EQ(address->toString(), "2001:db8::1");
}

TEST(IpAddressTest, ParsesLoopbackAndUnspecified) {
  EXPECT_EQ(IpAddress::parse("::1")->toString(), "::1");
  EXPECT_TRUE(IpAddress::parse("::")->isUnspecified());
  EXPECT_TRUE(IpAddress::parse("0.0.0.0")->isUnspecified());
  EXPECT_FALSE(IpAddress::parse("127.0.0.1")->isUnspecified());
  EXPECT_TRUE(IpAddress().isUnspecified());
  EXPECT_TRUE(IpAddress().isV4());
}

TEST(IpAddressTest, Ipv4MappedIpv6StaysIpv6) {
  const auto address = IpAddress::parse("::ffff:192.0.2.1");
  ASSERT_TRUE(address);
  EXPECT_FALSE(address->isV4());
  EXPECT_NE(*address, *IpAddress::parse("192.0.2.1"));
}

TEST(IpAddressTest, RejectsInvalidText) {
  for (const char* text :
       {"", "10.0.0.300", "1.2.3", "1.2.3.4.5", "256.1.1.1", "abc", "[::1]", "::1%eth0",
        "2001:db8:::1", "1.2.3.4:80", " 1.2.3.4", "1.2.3.4 ", "localhost", "1:2:3:4:5:6:7:8:9",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"}) {
    EXPECT_FALSE(IpAddress::parse(text)) << text;
  }
}

TEST(IpAddressTest, OrdersAndComparesByValue) {
  EXPECT_EQ(*IpAddress::parse("10.0.0.1"), IpAddress::v4(0x0A000001));
  EXPECT_LT(*IpAddress::parse("10.0.0.1"), *IpAddress::parse("10.0.0.2"));
  // IPv4 sorts before IPv6 because the family comes first.
  EXPECT_LT(*IpAddress::parse("255.255.255.255"), *IpAddress::parse("::"));
}

TEST(IpAddressTest, BuildsFromBytes) {
  const std::array<std::uint8_t, 4> v4{198, 51, 100, 7};
  EXPECT_EQ(IpAddress::v4(v4).toString(), "198.51.100.7");
  std::array<std::uint8_t, 16> v6{};
  v6[0] = 0xfe;
  v6[1] = 0x80;
  v6[15] = 0x2a;
  EXPECT_EQ(IpAddress::v6(v6).toString(), "fe80::2a");
}

TEST(EndpointTest, Ipv4WithoutBrackets) {
  const Endpoint endpoint{*IpAddress::parse("192.0.2.1"), 3478};
  EXPECT_EQ(endpoint.toString(), "192.0.2.1:3478");
}

TEST(EndpointTest, Ipv6InBrackets) {
  const Endpoint endpoint{*IpAddress::parse("2001:db8::1"), 3478};
  EXPECT_EQ(endpoint.toString(), "[2001:db8::1]:3478");
  EXPECT_EQ((Endpoint{*IpAddress::parse("::"), 0}).toString(), "[::]:0");
}

TEST(EndpointTest, ComparesAddressThenPort) {
  const Endpoint a{*IpAddress::parse("10.0.0.1"), 5000};
  const Endpoint b{*IpAddress::parse("10.0.0.1"), 5001};
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_EQ(a, (Endpoint{IpAddress::v4(0x0A000001), 5000}));
  EXPECT_EQ(Endpoint{}.toString(), "0.0.0.0:0");
}

}  // namespace
}  // namespace parley
