#include "listen_plan.hpp"
#include <cerrno>
#include <cstring>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket_address.hpp"

namespace parley::net {

namespace {

std::string describe(bool tcp, const Endpoint& endpoint) {
  return std::string(tcp ? "tcp " : "udp ") + endpoint.toString();
}

// Binds a plain socket (no SO_REUSEPORT) to see whether the port is free; returns the bound
// port. The probe is closed again before the real, SO_REUSEPORT sockets bind.
std::uint16_t probe(bool tcp, const Endpoint& endpoint) {
  const int family = endpoint.address.isV4() ? AF_INET : AF_INET6;
  const int fd = ::socket(family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0) throw BindError("cannot open socket: " + std::string(std::strerror(errno)));
  const int on = 1;
  if (tcp) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // ignore TIME_WAIT
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  sockaddr_storage storage;
  const socklen_t length = toSockaddr(endpoint, storage);
  int result = ::bind(fd, reinterpret_cast<sockaddr*>(&storage), length);
  if (result == 0 && tcp) result = ::listen(fd, 1);  // a TCP port is only taken once listening
  if (result != 0) {
    const int error = errno;
    ::close(fd);
    throw BindError("cannot listen on " + describe(tcp, endpoint) + ": " + std::strerror(error));
  }
  socklen_t boundLength = sizeof storage;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &boundLength);
  ::close(fd);
  return fromSockaddr(reinterpret_cast<sockaddr*>(&storage)).port;
}

// A port free for every protocol in use on every address; `port` 0 asks for any.
std::uint16_t reservePort(bool udp, bool tcp, const std::vector<IpAddress>& addresses,
                          std::uint16_t port) {
  constexpr int kAttempts = 20;  // another process may take a port picked for us in between
  for (int attempt = 0;; ++attempt) {
    try {
      std::uint16_t chosen = port;
      for (const IpAddress& address : addresses) {
        if (udp) chosen = probe(false, Endpoint{address, chosen});
        if (tcp) chosen = probe(true, Endpoint{address, chosen});
      }
      return chosen;
    } catch (const BindError&) {
      if (port != 0 || attempt + 1 == kAttempts) throw;
    }
  }
}

}  // namespace

std::vector<SocketSpec> planSockets(const StunServerOptions& options) {
  if (options.listenAddresses.empty()) throw std::invalid_argument("no listen address");
  if (!options.udp && !options.tcp) throw std::invalid_argument("neither UDP nor TCP enabled");
  std::vector<SocketSpec> plan;
  if (!options.alternateAddress) {
    const std::uint16_t port =
        reservePort(options.udp, options.tcp, options.listenAddresses, options.port);
    for (const IpAddress& address : options.listenAddresses) {
      plan.push_back(SocketSpec{Endpoint{address, port}, std::nullopt, {-1, -1, -1}});
    }
    return plan;
  }
  if (options.listenAddresses.size() != 1) {
    throw std::invalid_argument("an alternate address needs exactly one listen address");
  }
  const IpAddress primary = options.listenAddresses.front();
  const IpAddress alternate = *options.alternateAddress;
  if (primary.family() != alternate.family() || primary == alternate || primary.isUnspecified() ||
      alternate.isUnspecified()) {
    throw std::invalid_argument(
        "the alternate address must be a different, specific address of the same family");
  }
  const std::uint16_t port =
      reservePort(options.udp, options.tcp, {primary, alternate}, options.port);
  std::uint16_t alternatePort = options.alternatePort;
  // Keep the two ports distinct even when both are picked for us.
  do {
    alternatePort =
        reservePort(options.udp, options.tcp, {primary, alternate}, options.alternatePort);
  } while (alternatePort == port && options.alternatePort == 0);
  if (alternatePort == port) throw std::invalid_argument("alternate port equals the port");

  // Index = 2 * (alternate IP) + (alternate port); "other" flips both.
  const IpAddress ips[2] = {primary, alternate};
  const std::uint16_t ports[2] = {port, alternatePort};
  for (int ip = 0; ip < 2; ++ip) {
    for (int p = 0; p < 2; ++p) {
      SocketSpec spec;
      spec.local = Endpoint{ips[ip], ports[p]};
      spec.other = Endpoint{ips[1 - ip], ports[1 - p]};
      spec.changed = {2 * ip + (1 - p), 2 * (1 - ip) + p, 2 * (1 - ip) + (1 - p)};
      plan.push_back(spec);
    }
  }
  return plan;
}

std::vector<SocketSpec> planTlsSockets(const StunServerOptions& options) {
  std::vector<SocketSpec> plan;
  const TlsListenerOptions& tls = options.tls;
  if (!tls.tls && !tls.dtls) return plan;
  const std::uint16_t port = reservePort(tls.dtls, tls.tls, options.listenAddresses, tls.port);
  for (const IpAddress& address : options.listenAddresses) {
    plan.push_back(SocketSpec{Endpoint{address, port}, std::nullopt, {-1, -1, -1}});
  }
  return plan;
}

}  // namespace parley::net
