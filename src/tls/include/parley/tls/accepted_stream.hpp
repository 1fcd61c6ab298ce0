// A TCP connection handed from the listener that accepted it to the server that will serve it:
// port 443 accepts every connection, finds out from the first bytes whether it carries HTTP or
// STUN/TURN (after TLS, when it is TLS) and hands STUN/TURN on to the TURN server. The socket,
// the TLS session and the bytes already read travel together, so nothing is lost or read twice.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <parley/base/endpoint.hpp>
#include <parley/tls/context.hpp>
#include <parley/tls/handshake.hpp>

namespace parley::tls {

// Owns a socket descriptor; closes it unless released.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

struct AcceptedStream {
  UniqueFd socket;
  // Set when the client spoke TLS: the established session (its BIOs empty) and the context
  // it was accepted with. Null for plain TCP.
  UniqueSsl ssl;
  std::shared_ptr<ServerContext> context;
  // What the client sent so far, decrypted, after any PROXY protocol header.
  std::vector<std::uint8_t> received;
  // The client as the PROXY protocol header gave it, else the socket's peer; and the local
  // address:port the connection arrived on.
  Endpoint client;
  Endpoint local;
};

}  // namespace parley::tls
