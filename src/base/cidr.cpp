#include <algorithm>
#include <charconv>
#include <cstdint>

#include <parley/base/cidr.hpp>

namespace parley {

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const unsigned maxLength = address->isV4() ? 32 : 128;
  unsigned length = maxLength;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (error != std::errc{} || end != digits.data() + digits.size() || length > maxLength) {
      return std::nullopt;
    }
  }
  return Cidr{*address, length};
}

bool Cidr::contains(const IpAddress& address) const {
  if (address.family() != network.family()) return false;
  const auto a = address.bytes();
  const auto n = network.bytes();
  const unsigned fullBytes = prefixLength / 8;
  if (!std::equal(a.begin(), a.begin() + fullBytes, n.begin())) return false;
  const unsigned rest = prefixLength % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (a[fullBytes] & mask) == (n[fullBytes] & mask);
}

}  // namespace parley
