// Conversions between parley::Endpoint and the BSD socket address structures.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <parley/base/endpoint.hpp>

namespace parley::net {

// Writes `endpoint` into `storage`; returns the length to pass to the socket call.
socklen_t toSockaddr(const Endpoint& endpoint, sockaddr_storage& storage);
// The endpoint in `address`; IPv4-mapped IPv6 addresses stay IPv6 (sockets are V6ONLY).
Endpoint fromSockaddr(const sockaddr* address);

}  // namespace parley::net
