// IP addresses and transport endpoints as plain values: no sockets, no allocation.
// Wire codecs (STUN, later RTP) use these; the net layer converts to and from sockaddr.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace parley {

enum class AddressFamily : std::uint8_t { V4, V6 };

class IpAddress {
 public:
  // The unspecified IPv4 address 0.0.0.0.
  constexpr IpAddress() = default;

  static IpAddress v4(std::span<const std::uint8_t, 4> bytes);
  static IpAddress v4(std::uint32_t hostOrder);
  static IpAddress v6(std::span<const std::uint8_t, 16> bytes);
  // Accepts dotted IPv4 and RFC 4291 text IPv6 (no brackets, no zone). nullopt if neither.
  static std::optional<IpAddress> parse(std::string_view text);

  AddressFamily family() const { return family_; }
  bool isV4() const { return family_ == AddressFamily::V4; }
  // 4 bytes for IPv4, 16 for IPv6, network order.
  std::span<const std::uint8_t> bytes() const {
    return {bytes_.data(), isV4() ? std::size_t{4} : std::size_t{16}};
  }
  bool isUnspecified() const;
  std::string toString() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  AddressFamily family_ = AddressFamily::V4;
  std::array<std::uint8_t, 16> bytes_{};  // IPv4 uses the first 4
};

struct Endpoint {
  IpAddress address;
  std::uint16_t port = 0;

  // "192.0.2.1:3478" or "[2001:db8::1]:3478".
  std::string toString() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

}  // namespace parley
