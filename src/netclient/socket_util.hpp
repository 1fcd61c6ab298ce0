// POSIX socket helpers shared by the network check's transports: an owned descriptor, address
// conversion, and waiting for readiness against a deadline. Private to src/netclient.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/base/endpoint.hpp>
#include <parley/netclient/transport.hpp>

namespace parley::netclient::detail {

class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

socklen_t toSockaddr(const Endpoint& endpoint, sockaddr_storage& storage);
std::optional<Endpoint> fromSockaddr(const sockaddr_storage& storage);
std::optional<Endpoint> localEndpointOf(int fd);

// A non-blocking socket of `type` for `family`, close-on-exec; invalid on failure (errno set).
OwnedFd openSocket(AddressFamily family, int type);

// Milliseconds left until `deadline` for poll(): 0 when it has passed (poll once, no wait).
int pollTimeout(Deadline deadline);

// Waits until `fd` has one of `events` or the deadline passes. True when ready (or an error
// condition is pending, which the following call reports), false on timeout.
bool waitFor(int fd, short events, Deadline deadline);

std::string errnoText(int error);

// A non-blocking UDP socket connected to `server` (udp.cpp).
Result<OwnedFd> connectedUdpSocket(const Endpoint& server);

}  // namespace parley::netclient::detail
