#include "socket_address.hpp"
#include <cstring>

namespace parley::net {

socklen_t toSockaddr(const Endpoint& endpoint, sockaddr_storage& storage) {
  std::memset(&storage, 0, sizeof storage);
  const auto bytes = endpoint.address.bytes();
  if (endpoint.address.isV4()) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(endpoint.port);
    std::memcpy(&v4->sin_addr, bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(endpoint.port);
  std::memcpy(&v6->sin6_addr, bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

Endpoint fromSockaddr(const sockaddr* address) {
  Endpoint endpoint;
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    endpoint.address = IpAddress::v4(
        std::span<const std::uint8_t, 4>(reinterpret_cast<const std::uint8_t*>(&v4->sin_addr), 4));
    endpoint.port = ntohs(v4->sin_port);
  } else if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    endpoint.address = IpAddress::v6(std::span<const std::uint8_t, 16>(
        reinterpret_cast<const std::uint8_t*>(&v6->sin6_addr), 16));
    endpoint.port = ntohs(v6->sin6_port);
  }
  return endpoint;
}

}  // namespace parley::net
