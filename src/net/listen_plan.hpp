// Which sockets a STUN server opens. With an RFC 5780 alternate address there are four
// (primary/alternate IP x primary/alternate port), each knowing its "other" address and the
// siblings a CHANGE-REQUEST can send from.
#pragma once

#include <array>
#include <optional>
#include <vector>

#include <parley/base/endpoint.hpp>
#include <parley/net/stun_server.hpp>

namespace parley::net {

struct SocketSpec {
  Endpoint local;
  std::optional<Endpoint> other;  // OTHER-ADDRESS
  // Index into the plan of the socket for ChangedPort, ChangedIp, ChangedIpAndPort.
  std::array<int, 3> changed{-1, -1, -1};
};

// The sockets for `options`, with concrete ports. Port 0 is resolved to a port free for both
// UDP and TCP. Throws BindError when a port is already taken (probed without SO_REUSEPORT,
// so another process holding it, even with SO_REUSEPORT, is noticed) or an address is not
// local. Throws std::invalid_argument when the options contradict each other.
std::vector<SocketSpec> planSockets(const StunServerOptions& options);
// The TLS (TCP) and DTLS (UDP) sockets on options.tls.port, one per listen address.
std::vector<SocketSpec> planTlsSockets(const StunServerOptions& options);

}  // namespace parley::net
