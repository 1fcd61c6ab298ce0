// An address range ("10.0.0.0/8", "2001:db8::/32") as a plain value: the TURN peer filter and
// the trusted-proxy list of the port-443 front door both match addresses against these.
#pragma once

#include <optional>
#include <string_view>

#include <parley/base/endpoint.hpp>

namespace parley {

struct Cidr {
  IpAddress network;
  unsigned prefixLength = 0;
  // "10.0.0.0/8", "::1/128", or a bare address (full length). nullopt when malformed.
  static std::optional<Cidr> parse(std::string_view text);
  // False for an address of the other family: ::ffff:10.0.0.1 is not in 10.0.0.0/8.
  bool contains(const IpAddress& address) const;
};

}  // namespace parley
