#include <algorithm>
#include <string>

#include <arpa/inet.h>

#include <parley/base/endpoint.hpp>

namespace parley {

IpAddress IpAddress::v4(std::span<const std::uint8_t, 4> bytes) {
  IpAddress address;
  address.family_ = AddressFamily::V4;
  std::copy(bytes.begin(), bytes.end(), address.bytes_.begin());
  return address;
}

IpAddress IpAddress::v4(std::uint32_t hostOrder) {
  const std::array<std::uint8_t, 4> bytes{
      static_cast<std::uint8_t>(hostOrder >> 24), static_cast<std::uint8_t>(hostOrder >> 16),
      static_cast<std::uint8_t>(hostOrder >> 8), static_cast<std::uint8_t>(hostOrder)};
  return v4(bytes);
}

IpAddress IpAddress::v6(std::span<const std::uint8_t, 16> bytes) {
  IpAddress address;
  address.family_ = AddressFamily::V6;
  std::copy(bytes.begin(), bytes.end(), address.bytes_.begin());
  return address;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a terminated string; addresses are short, so a stack copy is enough.
  char buffer[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
  std::copy(text.begin(), text.end(), buffer);
  buffer[text.size()] = '\0';
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, buffer, bytes.data()) == 1) {
    return v4(std::span<const std::uint8_t, 4>(bytes.data(), 4));
  }
  if (inet_pton(AF_INET6, buffer, bytes.data()) == 1) return v6(bytes);
  return std::nullopt;
}

bool IpAddress::isUnspecified() const {
  const auto view = bytes();
  return std::all_of(view.begin(), view.end(), [](std::uint8_t b) { return b == 0; });
}

std::string IpAddress::toString() const {
  char buffer[INET6_ADDRSTRLEN];
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes_.data(), buffer, sizeof buffer);
  return buffer;
}

std::string Endpoint::toString() const {
  if (address.isV4()) return address.toString() + ":" + std::to_string(port);
  return "[" + address.toString() + "]:" + std::to_string(port);
}

}  // namespace parley
