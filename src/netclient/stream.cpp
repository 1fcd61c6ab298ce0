// TCP streams for the network check: direct, or through an HTTP proxy's CONNECT tunnel.
// Non-blocking sockets and poll() against the caller's deadline, IPv4 and IPv6.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>

#include <parley/netclient/transport.hpp>

#include "socket_util.hpp"

namespace parley::netclient {
namespace detail {

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

std::optional<Endpoint> fromSockaddr(const sockaddr_storage& storage) {
  if (storage.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage);
    return Endpoint{IpAddress::v4(std::span<const std::uint8_t, 4>(
                        reinterpret_cast<const std::uint8_t*>(&v4->sin_addr), 4)),
                    ntohs(v4->sin_port)};
  }
  if (storage.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    return Endpoint{IpAddress::v6(std::span<const std::uint8_t, 16>(
                        reinterpret_cast<const std::uint8_t*>(&v6->sin6_addr), 16)),
                    ntohs(v6->sin6_port)};
  }
  return std::nullopt;
}

std::optional<Endpoint> localEndpointOf(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return std::nullopt;
  return fromSockaddr(storage);
}

OwnedFd openSocket(AddressFamily family, int type) {
  const int domain = family == AddressFamily::V4 ? AF_INET : AF_INET6;
  return OwnedFd(::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

int pollTimeout(Deadline deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Round up so that a wait never returns just before the deadline and spins.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

bool waitFor(int fd, short events, Deadline deadline) {
  // Bounded: each pass waits until the deadline (at most a minute); EINTR retries.
  for (int pass = 0; pass < 1000; ++pass) {
    pollfd poller{fd, events, 0};
    const int timeout = pollTimeout(deadline);
    const int ready = ::poll(&poller, 1, timeout);
    if (ready > 0) return true;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return true;  // the next call on the socket reports the error
    if (Clock::now() >= deadline) return false;
  }
  return false;
}

std::string errnoText(int error) {
  char buffer[128];
  // GNU strerror_r returns the text (possibly not in `buffer`).
  return ::strerror_r(error, buffer, sizeof buffer);
}

}  // namespace detail

namespace {

using detail::OwnedFd;

std::string connectErrorText(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "connection refused";
    case ENETUNREACH:
      return "network unreachable";
    case EHOSTUNREACH:
      return "host unreachable";
    case ETIMEDOUT:
      return "timed out";
    default:
      return detail::errnoText(error);
  }
}

std::string failureCodeOf(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "refused";
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
      return "unreachable";
    case ETIMEDOUT:
      return "timeout";
    default:
      return "unreachable";
  }
}

class TcpStream final : public Stream {
 public:
  TcpStream(OwnedFd fd, Endpoint remote) : fd_(std::move(fd)), remote_(remote) {}

  Result<std::size_t> readSome(std::span<std::uint8_t> buffer, Deadline deadline) override {
    if (buffer.empty()) return 0;
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return tl::unexpected(Failure{
            errno == ECONNRESET ? "refused" : "protocol",
            fmt::format("TCP {}: {} while reading", remote_.toString(), detail::errnoText(errno))});
      if (!detail::waitFor(fd_.get(), POLLIN, deadline))
        return tl::unexpected(
            Failure{"timeout", fmt::format("TCP {}: no answer in time", remote_.toString())});
    }
    return tl::unexpected(
        Failure{"timeout", fmt::format("TCP {}: no answer in time", remote_.toString())});
  }

  Result<void> writeAll(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    std::size_t written = 0;
    // Bounded by the deadline: every pass either writes or waits for it.
    while (written < bytes.size()) {
      const ssize_t n =
          ::send(fd_.get(), bytes.data() + written, bytes.size() - written, MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return tl::unexpected(Failure{
            errno == ECONNRESET || errno == EPIPE ? "refused" : "protocol",
            fmt::format("TCP {}: {} while writing", remote_.toString(), detail::errnoText(errno))});
      if (!detail::waitFor(fd_.get(), POLLOUT, deadline))
        return tl::unexpected(
            Failure{"timeout", fmt::format("TCP {}: could not send in time", remote_.toString())});
    }
    return {};
  }

  std::string describe() const override { return "tcp " + remote_.toString(); }
  std::optional<Endpoint> localEndpoint() const override {
    return detail::localEndpointOf(fd_.get());
  }

 private:
  OwnedFd fd_;
  Endpoint remote_;
};

// A proxy tunnel: the bytes the proxy sent after its response head belong to the tunnel and are
// served before anything read from the socket.
class TunnelStream final : public Stream {
 public:
  TunnelStream(std::unique_ptr<Stream> inner, std::vector<std::uint8_t> leftover,
               std::string description)
      : inner_(std::move(inner)),
        leftover_(std::move(leftover)),
        description_(std::move(description)) {}

  Result<std::size_t> readSome(std::span<std::uint8_t> buffer, Deadline deadline) override {
    if (offset_ < leftover_.size()) {
      const std::size_t n = std::min(buffer.size(), leftover_.size() - offset_);
      std::memcpy(buffer.data(), leftover_.data() + offset_, n);
      offset_ += n;
      return n;
    }
    return inner_->readSome(buffer, deadline);
  }
  Result<void> writeAll(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    return inner_->writeAll(bytes, deadline);
  }
  std::string describe() const override { return description_; }
  std::optional<Endpoint> localEndpoint() const override { return inner_->localEndpoint(); }

 private:
  std::unique_ptr<Stream> inner_;
  std::vector<std::uint8_t> leftover_;
  std::size_t offset_ = 0;
  std::string description_;
};

std::string hostPort(const std::string& host, std::uint16_t port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

std::string base64(std::string_view text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The proxy's address: an IP literal as is, a name through the resolver (the first address).
Result<Endpoint> resolveProxy(const Proxy& proxy) {
  std::string host = proxy.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (auto literal = IpAddress::parse(host)) return Endpoint{*literal, proxy.port};
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* found = nullptr;
  const int status = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (status != 0 || found == nullptr)
    return tl::unexpected(Failure{"dns", fmt::format("the proxy {} does not resolve ({})",
                                                     proxy.display(), ::gai_strerror(status))});
  sockaddr_storage storage{};
  std::memcpy(&storage, found->ai_addr, std::min<std::size_t>(found->ai_addrlen, sizeof storage));
  ::freeaddrinfo(found);
  auto endpoint = detail::fromSockaddr(storage);
  if (!endpoint)
    return tl::unexpected(
        Failure{"dns", fmt::format("the proxy {} has no IP address", proxy.display())});
  endpoint->port = proxy.port;
  return *endpoint;
}

}  // namespace

Result<std::unique_ptr<Stream>> connectTcp(const Endpoint& server, Deadline deadline) {
  OwnedFd fd = detail::openSocket(server.address.family(), SOCK_STREAM);
  if (!fd.valid())
    return tl::unexpected(
        Failure{"unreachable",
                fmt::format("TCP {}: no socket: {}", server.toString(), detail::errnoText(errno))});
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_storage storage{};
  const socklen_t length = detail::toSockaddr(server, storage);
  int error = 0;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    if (errno != EINPROGRESS && errno != EINTR) {
      error = errno;
    } else {
      if (!detail::waitFor(fd.get(), POLLOUT, deadline))
        return tl::unexpected(Failure{
            "timeout",
            fmt::format("TCP {}: no answer to the connection attempt in time", server.toString())});
      socklen_t size = sizeof error;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    }
  }
  if (error != 0)
    return tl::unexpected(Failure{failureCodeOf(error), fmt::format("TCP {}: {}", server.toString(),
                                                                    connectErrorText(error))});
  return std::make_unique<TcpStream>(std::move(fd), server);
}

Result<std::unique_ptr<Stream>> connectViaProxy(const Proxy& proxy, const std::string& host,
                                                std::uint16_t port, Deadline deadline) {
  namespace http = boost::beast::http;
  const std::string target = hostPort(host, port);
  auto address = resolveProxy(proxy);
  if (!address) return tl::unexpected(address.error());
  auto connected = connectTcp(*address, deadline);
  if (!connected) {
    const Failure& failure = connected.error();
    if (failure.code == "refused")
      return tl::unexpected(Failure{
          "proxy_refused", fmt::format("the proxy {} refused the connection", proxy.display())});
    if (failure.code == "timeout")
      return tl::unexpected(
          Failure{"timeout", fmt::format("the proxy {} did not answer in time", proxy.display())});
    return tl::unexpected(Failure{failure.code, fmt::format("the proxy {} cannot be reached: {}",
                                                            proxy.display(), failure.message)});
  }
  std::unique_ptr<Stream> stream = std::move(*connected);

  std::string request = fmt::format(
      "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\nUser-Agent: parley-netcheck\r\n"
      "Proxy-Connection: keep-alive\r\n",
      target);
  const bool sentCredentials = !proxy.userColonPassword.empty();
  if (sentCredentials)
    request += "Proxy-Authorization: Basic " + base64(proxy.userColonPassword) + "\r\n";
  request += "\r\n";
  if (auto written = stream->writeAll(
          std::span(reinterpret_cast<const std::uint8_t*>(request.data()), request.size()),
          deadline);
      !written)
    return tl::unexpected(Failure{
        "proxy_refused", fmt::format("the proxy {} closed the connection before CONNECT {} was "
                                     "sent ({})",
                                     proxy.display(), target, written.error().message)});

  // The response head, bounded: a proxy that sends more than 16 KiB of head is broken.
  constexpr std::size_t kHeadLimit = 16 * 1024;
  http::response_parser<http::empty_body> parser;
  parser.header_limit(kHeadLimit);
  parser.skip(true);  // a 2xx answer to CONNECT has no body: what follows is the tunnel
  std::vector<std::uint8_t> buffered;
  buffered.reserve(4096);
  std::size_t consumed = 0;
  std::array<std::uint8_t, 4096> chunk;
  while (!parser.is_header_done()) {
    if (buffered.size() > kHeadLimit)
      return tl::unexpected(Failure{
          "proxy_refused", fmt::format("the proxy {} sent an oversized answer to CONNECT {}",
                                       proxy.display(), target)});
    auto n = stream->readSome(chunk, deadline);
    if (!n) {
      if (n.error().code == "timeout")
        return tl::unexpected(
            Failure{"timeout", fmt::format("the proxy {} did not answer CONNECT {} in time",
                                           proxy.display(), target)});
      return tl::unexpected(
          Failure{"proxy_refused", fmt::format("the proxy {} dropped the connection on CONNECT "
                                               "{} ({})",
                                               proxy.display(), target, n.error().message)});
    }
    if (*n == 0)
      return tl::unexpected(
          Failure{"proxy_refused", fmt::format("the proxy {} closed the connection on CONNECT {}",
                                               proxy.display(), target)});
    buffered.insert(buffered.end(), chunk.begin(), chunk.begin() + *n);
    boost::beast::error_code error;
    consumed += parser.put(
        boost::asio::buffer(buffered.data() + consumed, buffered.size() - consumed), error);
    if (error == http::error::need_more) continue;
    if (error)
      return tl::unexpected(Failure{
          "proxy_refused", fmt::format("the proxy {} answered CONNECT {} with something that is "
                                       "not HTTP ({})",
                                       proxy.display(), target, error.message())});
  }
  const auto& head = parser.get();
  const unsigned status = head.result_int();
  const std::string reason(head.reason());
  if (status >= 200 && status < 300) {
    std::vector<std::uint8_t> leftover(buffered.begin() + static_cast<std::ptrdiff_t>(consumed),
                                       buffered.end());
    return std::make_unique<TunnelStream>(
        std::move(stream), std::move(leftover),
        fmt::format("tcp {} via proxy {}", target, proxy.display()));
  }
  if (status == 407)
    return tl::unexpected(Failure{
        "proxy_auth_required",
        sentCredentials
            ? fmt::format(
                  "the proxy {} requires authentication and refused the credentials sent ({} {})",
                  proxy.display(), status, reason)
            : fmt::format("the proxy {} requires authentication ({} {})", proxy.display(), status,
                          reason)});
  return tl::unexpected(
      Failure{"proxy_refused", fmt::format("the proxy {} answered CONNECT {} with {} {}",
                                           proxy.display(), target, status, reason)});
}

}  // namespace parley::netclient
