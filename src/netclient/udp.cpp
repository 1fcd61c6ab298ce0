// STUN/TURN over a connected UDP socket: one datagram is one message.
#include <cerrno>
#include <string>

#include <fmt/format.h>

#include <parley/netclient/transport.hpp>

#include "socket_util.hpp"

namespace parley::netclient {
namespace {

using detail::OwnedFd;

class UdpTransport final : public MessageTransport {
 public:
  UdpTransport(OwnedFd fd, Endpoint server) : fd_(std::move(fd)), server_(server) {}

  Result<void> send(std::span<const std::uint8_t> message, Deadline deadline) override {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const ssize_t n = ::send(fd_.get(), message.data(), message.size(), 0);
      if (n >= 0) return {};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        // The socket buffer is full: wait for room rather than drop, within the deadline.
        if (!detail::waitFor(fd_.get(), POLLOUT, deadline))
          return tl::unexpected(
              Failure{"timeout", fmt::format("{}: could not send in time", describe())});
        continue;
      }
      return tl::unexpected(errorFailure(errno, "sending"));
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: could not send", describe())});
  }

  Result<std::size_t> receive(std::span<std::uint8_t> buffer, Deadline deadline) override {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), MSG_TRUNC);
      if (n >= 0) {
        // A datagram larger than the buffer is no message we expect: skip it.
        if (static_cast<std::size_t>(n) > buffer.size()) continue;
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return tl::unexpected(errorFailure(errno, "receiving"));
      if (!detail::waitFor(fd_.get(), POLLIN, deadline))
        return tl::unexpected(Failure{"timeout", fmt::format("{}: no answer in time", describe())});
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: no answer in time", describe())});
  }

  bool reliable() const override { return false; }
  std::string describe() const override { return "udp " + server_.toString(); }
  std::optional<Endpoint> localEndpoint() const override {
    return detail::localEndpointOf(fd_.get());
  }

 private:
  Failure errorFailure(int error, const char* doing) const {
    // A connected UDP socket reports ICMP errors for earlier datagrams.
    if (error == ECONNREFUSED)
      return Failure{"refused", fmt::format("UDP {}: port unreachable (nothing listens there)",
                                            server_.toString())};
    if (error == ENETUNREACH || error == EHOSTUNREACH)
      return Failure{"unreachable",
                     fmt::format("UDP {}: {}", server_.toString(), detail::errnoText(error))};
    return Failure{"protocol", fmt::format("UDP {}: {} while {}", server_.toString(),
                                           detail::errnoText(error), doing)};
  }

  OwnedFd fd_;
  Endpoint server_;
};

}  // namespace

namespace detail {

Result<OwnedFd> connectedUdpSocket(const Endpoint& server) {
  OwnedFd fd = openSocket(server.address.family(), SOCK_DGRAM);
  if (!fd.valid())
    return tl::unexpected(Failure{
        "unreachable", fmt::format("UDP {}: no socket: {}", server.toString(), errnoText(errno))});
  sockaddr_storage storage{};
  const socklen_t length = toSockaddr(server, storage);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) != 0)
    return tl::unexpected(
        Failure{"unreachable", fmt::format("UDP {}: {}", server.toString(), errnoText(errno))});
  return fd;
}

}  // namespace detail

Result<std::unique_ptr<MessageTransport>> openUdp(const Endpoint& server) {
  auto fd = detail::connectedUdpSocket(server);
  if (!fd) return tl::unexpected(fd.error());
  return std::make_unique<UdpTransport>(std::move(*fd), server);
}

}  // namespace parley::netclient
