// Streams, proxies and TLS of the network check against real servers on loopback: a TCP echo
// server, an OpenSSL TLS echo server with parley's self-signed certificate, and a small CONNECT
// proxy written here.
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <parley/netclient/transport.hpp>
#include <parley/tls/certificate.hpp>

#include "media_test_support.hpp"

namespace parley::netclient {
namespace {

using namespace std::chrono_literals;
using test::loopback;
using test::TestSocket;
using ::testing::HasSubstr;

std::span<const std::uint8_t> bytesOf(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

void setTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, sizeof value);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, sizeof value);
}

// Reads until `expected` bytes arrived, the peer closed or the deadline passed.
std::string readExactly(Stream& stream, std::size_t expected, Deadline deadline) {
  std::string text;
  std::array<std::uint8_t, 1024> chunk;
  for (int i = 0; i < 100 && text.size() < expected; ++i) {
    auto n = stream.readSome(chunk, deadline);
    if (!n || *n == 0) break;
    text.append(reinterpret_cast<const char*>(chunk.data()), *n);
  }
  return text;
}

// A TCP server on 127.0.0.1 that runs `serve(fd)` for each of up to `connections` clients.
class TcpServer {
 public:
  template <typename Serve>
  TcpServer(int connections, Serve serve) : listener_(SOCK_STREAM) {
    endpoint_ = listener_.bindLoopback();
    ::listen(listener_.fd(), 8);
    thread_ = std::thread([this, connections, serve] {
      for (int i = 0; i < connections && !stop_; ++i) {
        pollfd poller{listener_.fd(), POLLIN, 0};
        if (::poll(&poller, 1, 5000) != 1) return;
        const int fd = ::accept(listener_.fd(), nullptr, nullptr);
        if (fd < 0) return;
        setTimeouts(fd, 3000ms);
        serve(fd);
        ::close(fd);
      }
    });
  }
  ~TcpServer() {
    stop_ = true;
    ::shutdown(listener_.fd(), SHUT_RDWR);
    thread_.join();
  }
  Endpoint endpoint() const { return endpoint_; }

 private:
  TestSocket listener_;
  Endpoint endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Greets with "hello\n", then echoes until the client closes.
void greetAndEcho(int fd) {
  ::send(fd, "hello\n", 6, MSG_NOSIGNAL);
  char buffer[1024];
  for (int i = 0; i < 100; ++i) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    ::send(fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL);
  }
}

// TLS echo with parley's certificate; the server offers ALPN "stun.turn".
struct TlsEcho {
  test::TestCertificate certificate;
  std::shared_ptr<tls::ServerContext> context = certificate.context({"stun.turn"});
  std::string expectedFingerprint() const {
    std::string colons = tls::fingerprintSha256(certificate.paths.cert);
    std::string hex;
    for (char c : colons)
      if (c != ':') hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return hex;
  }
  void serve(int fd) const {
    SSL* ssl = SSL_new(context->tls());
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      char buffer[1024];
      for (int i = 0; i < 100; ++i) {
        const int n = SSL_read(ssl, buffer, sizeof buffer);
        if (n <= 0) break;
        SSL_write(ssl, buffer, n);
      }
    }
    SSL_free(ssl);
  }
};

// Copies bytes both ways between two sockets until one closes (at most 5 s).
void relay(int a, int b) {
  char buffer[4096];
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    pollfd pollers[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (::poll(pollers, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(pollers[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::recv(pollers[i].fd, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      ::send(pollers[1 - i].fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    }
  }
}

// A CONNECT proxy: reads the request head, then answers by `mode`. "open": 200 and a tunnel to
// the requested 127.0.0.1 port (the target's first bytes ride in the same segment as the 200
// head); "auth": like "open" when Proxy-Authorization is Basic alice:secret, else 407;
// "deny": 403. Records the last request head.
struct ConnectProxy {
  explicit ConnectProxy(std::string proxyMode, bool greetingWithHead = true)
      : mode(std::move(proxyMode)),
        greetingFirst(greetingWithHead),
        server(1, [this](int fd) { serve(fd); }) {}

  void serve(int fd) {
    std::string head;
    char buffer[1024];
    for (int i = 0; i < 64 && head.find("\r\n\r\n") == std::string::npos; ++i) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      head.append(buffer, static_cast<std::size_t>(n));
    }
    lastRequest = head;
    const bool authorized =
        head.find("Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n") != std::string::npos;
    if (mode == "deny" || (mode == "auth" && !authorized)) {
      const std::string answer =
          mode == "deny" ? "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n"
                         : "HTTP/1.1 407 Proxy Authentication Required\r\n"
                           "Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n";
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      return;
    }
    const auto colon = head.find(':', 8);
    const auto port = static_cast<std::uint16_t>(std::stoi(head.substr(colon + 1)));
    TestSocket upstream(SOCK_STREAM);
    const auto address = test::toSockaddrV4(loopback(port));
    if (::connect(upstream.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) !=
        0) {
      const std::string answer = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      return;
    }
    setTimeouts(upstream.fd(), 3000ms);
    std::string answer = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (greetingFirst) {
      const ssize_t n = ::recv(upstream.fd(), buffer, sizeof buffer, 0);
      if (n > 0) answer.append(buffer, static_cast<std::size_t>(n));
    }
    ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    relay(fd, upstream.fd());
  }

  std::string mode;
  bool greetingFirst = true;
  std::string lastRequest;
  TcpServer server;
};

TEST(ConnectTcp, ConnectsAndCarriesBytesBothWays) {
  TcpServer echo(1, greetAndEcho);
  const auto deadline = Clock::now() + 3s;
  auto stream = connectTcp(echo.endpoint(), deadline);
  ASSERT_TRUE(stream) << stream.error().message;
  EXPECT_EQ((*stream)->describe(), "tcp " + echo.endpoint().toString());
  ASSERT_TRUE((*stream)->localEndpoint());
  EXPECT_EQ((*stream)->localEndpoint()->address.toString(), "127.0.0.1");
  EXPECT_EQ(readExactly(**stream, 6, deadline), "hello\n");
  ASSERT_TRUE((*stream)->writeAll(bytesOf("ping"), deadline));
  EXPECT_EQ(readExactly(**stream, 4, deadline), "ping");
}

TEST(ConnectTcp, ConnectsOverIpv6) {
  const int listener = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(listener);
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  ::listen(listener, 1);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const Endpoint target{*IpAddress::parse("::1"), ntohs(address.sin6_port)};
  auto stream = connectTcp(target, Clock::now() + 2s);
  ::close(listener);
  ASSERT_TRUE(stream) << stream.error().message;
  EXPECT_EQ((*stream)->describe(), "tcp [::1]:" + std::to_string(target.port));
  ASSERT_TRUE((*stream)->localEndpoint());
  EXPECT_EQ((*stream)->localEndpoint()->address.toString(), "::1");
}

TEST(ConnectTcp, RefusedPortIsRefusedNamingTheAddress) {
  TestSocket closed(SOCK_STREAM);
  const Endpoint target = closed.bindLoopback();  // bound, not listening: RST
  auto stream = connectTcp(target, Clock::now() + 2s);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "refused");
  EXPECT_EQ(stream.error().message, "TCP " + target.toString() + ": connection refused");
}

TEST(ConnectTcp, ReadWithNothingToReadTimesOutAtTheDeadline) {
  TestSocket listener(SOCK_STREAM);
  const Endpoint target = listener.bindLoopback();
  ::listen(listener.fd(), 1);  // the kernel completes the handshake; nobody ever writes
  auto stream = connectTcp(target, Clock::now() + 2s);
  ASSERT_TRUE(stream) << stream.error().message;
  std::array<std::uint8_t, 16> buffer;
  const auto start = Clock::now();
  auto n = (*stream)->readSome(buffer, start + 300ms);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, "timeout");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1s);
}

TEST(ConnectViaProxy, TunnelCarriesBytesIncludingThoseAfterTheHead) {
  TcpServer echo(1, greetAndEcho);
  ConnectProxy proxy("open");
  const Proxy settings{"127.0.0.1", proxy.server.endpoint().port, ""};
  const auto deadline = Clock::now() + 3s;
  auto stream = connectViaProxy(settings, "127.0.0.1", echo.endpoint().port, deadline);
  ASSERT_TRUE(stream) << stream.error().message;
  const std::string target = "127.0.0.1:" + std::to_string(echo.endpoint().port);
  EXPECT_THAT((*stream)->describe(), HasSubstr("via proxy " + settings.display()));
  EXPECT_THAT(proxy.lastRequest, HasSubstr("CONNECT " + target + " HTTP/1.1\r\n"));
  EXPECT_THAT(proxy.lastRequest, HasSubstr("Host: " + target + "\r\n"));
  EXPECT_THAT(proxy.lastRequest, ::testing::Not(HasSubstr("Proxy-Authorization")));
  // The greeting arrived with the 200 head: it must not be lost.
  EXPECT_EQ(readExactly(**stream, 6, deadline), "hello\n");
  ASSERT_TRUE((*stream)->writeAll(bytesOf("through the proxy"), deadline));
  EXPECT_EQ(readExactly(**stream, 17, deadline), "through the proxy");
}

TEST(ConnectViaProxy, WithoutCredentialsA407IsProxyAuthRequired) {
  ConnectProxy proxy("auth");
  const Proxy settings{"127.0.0.1", proxy.server.endpoint().port, ""};
  auto stream = connectViaProxy(settings, "parley.example.com", 443, Clock::now() + 3s);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "proxy_auth_required");
  EXPECT_EQ(stream.error().message, "the proxy " + settings.display() +
                                        " requires authentication (407 Proxy Authentication "
                                        "Required)");
  EXPECT_THAT(proxy.lastRequest, HasSubstr("CONNECT parley.example.com:443 HTTP/1.1\r\n"));
}

TEST(ConnectViaProxy, RefusedCredentialsSaySo) {
  ConnectProxy proxy("auth");
  const Proxy settings{"127.0.0.1", proxy.server.endpoint().port, "alice:wrong"};
  auto stream = connectViaProxy(settings, "parley.example.com", 443, Clock::now() + 3s);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "proxy_auth_required");
  EXPECT_THAT(stream.error().message, HasSubstr("refused the credentials"));
  EXPECT_THAT(stream.error().message, HasSubstr(settings.display()));
  EXPECT_THAT(proxy.lastRequest, HasSubstr("Proxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"));
}

TEST(ConnectViaProxy, AcceptedCredentialsOpenTheTunnel) {
  TcpServer echo(1, greetAndEcho);
  ConnectProxy proxy("auth");
  const Proxy settings{"127.0.0.1", proxy.server.endpoint().port, "alice:secret"};
  const auto deadline = Clock::now() + 3s;
  auto stream = connectViaProxy(settings, "127.0.0.1", echo.endpoint().port, deadline);
  ASSERT_TRUE(stream) << stream.error().message;
  EXPECT_EQ(readExactly(**stream, 6, deadline), "hello\n");
}

TEST(ConnectViaProxy, ForbiddenIsProxyRefusedNamingTheStatus) {
  ConnectProxy proxy("deny");
  const Proxy settings{"127.0.0.1", proxy.server.endpoint().port, ""};
  auto stream = connectViaProxy(settings, "parley.example.com", 443, Clock::now() + 3s);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "proxy_refused");
  EXPECT_THAT(stream.error().message, HasSubstr("403 Forbidden"));
  EXPECT_THAT(stream.error().message, HasSubstr(settings.display()));
}

TEST(ConnectViaProxy, ProxyNotListeningIsProxyRefusedNamingIt) {
  TestSocket closed(SOCK_STREAM);
  const Endpoint proxyAddress = closed.bindLoopback();
  const Proxy settings{"127.0.0.1", proxyAddress.port, ""};
  auto stream = connectViaProxy(settings, "parley.example.com", 443, Clock::now() + 2s);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "proxy_refused");
  EXPECT_THAT(stream.error().message, HasSubstr(settings.display()));
}

TEST(ConnectViaProxy, ProxyThatClosesIsProxyRefused) {
  TcpServer closer(1, [](int fd) {
    char buffer[256];
    (void)::recv(fd, buffer, sizeof buffer, 0);
  });
  const Proxy settings{"127.0.0.1", closer.endpoint().port, ""};
  auto stream = connectViaProxy(settings, "parley.example.com", 443, Clock::now() + 2s);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "proxy_refused");
  EXPECT_THAT(stream.error().message, HasSubstr("closed the connection"));
}

TEST(ConnectViaProxy, SilentProxyTimesOutByTheDeadline) {
  TestSocket listener(SOCK_STREAM);
  const Endpoint proxyAddress = listener.bindLoopback();
  ::listen(listener.fd(), 1);
  const Proxy settings{"127.0.0.1", proxyAddress.port, ""};
  const auto start = Clock::now();
  auto stream = connectViaProxy(settings, "parley.example.com", 443, start + 400ms);
  ASSERT_FALSE(stream);
  EXPECT_EQ(stream.error().code, "timeout");
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(StartTls, HandshakeReportsTheCertificateAlpnAndCarriesData) {
  TlsEcho server;
  TcpServer listener(1, [&server](int fd) { server.serve(fd); });
  const auto deadline = Clock::now() + 3s;
  auto tcp = connectTcp(listener.endpoint(), deadline);
  ASSERT_TRUE(tcp) << tcp.error().message;
  TlsFacts facts;
  auto tls = startTls(std::move(*tcp), "localhost", "stun.turn", deadline, &facts);
  ASSERT_TRUE(tls) << tls.error().message;
  EXPECT_EQ(facts.leafSha256, server.expectedFingerprint());
  EXPECT_EQ(facts.leafSha256.size(), 64u);
  EXPECT_EQ(facts.subject, "CN=localhost");
  EXPECT_EQ(facts.issuer, "CN=localhost");  // self-signed
  EXPECT_THAT(facts.protocol, ::testing::AnyOf("TLSv1.3", "TLSv1.2"));
  EXPECT_EQ(facts.alpn, "stun.turn");
  EXPECT_THAT((*tls)->describe(), HasSubstr("tls over tcp"));
  ASSERT_TRUE((*tls)->writeAll(bytesOf("secret hello"), deadline));
  EXPECT_EQ(readExactly(**tls, 12, deadline), "secret hello");
}

TEST(StartTls, WorksThroughAProxyTunnel) {
  TlsEcho server;
  TcpServer listener(1, [&server](int fd) { server.serve(fd); });
  ConnectProxy proxy("open", /*greetingWithHead=*/false);  // TLS servers wait for the hello
  const Proxy settings{"127.0.0.1", proxy.server.endpoint().port, ""};
  const auto deadline = Clock::now() + 3s;
  auto tunnel = connectViaProxy(settings, "localhost", listener.endpoint().port, deadline);
  // The test proxy connects to 127.0.0.1 whatever the host says.
  ASSERT_TRUE(tunnel) << tunnel.error().message;
  TlsFacts facts;
  auto tls = startTls(std::move(*tunnel), "localhost", "", deadline, &facts);
  ASSERT_TRUE(tls) << tls.error().message;
  EXPECT_EQ(facts.leafSha256, server.expectedFingerprint());
  EXPECT_EQ(facts.alpn, "");
  ASSERT_TRUE((*tls)->writeAll(bytesOf("tunnelled"), deadline));
  EXPECT_EQ(readExactly(**tls, 9, deadline), "tunnelled");
}

TEST(StartTls, NonTlsServerIsTlsFailedWithOpenSslsReason) {
  TcpServer plain(1, [](int fd) {
    char buffer[1024];
    (void)::recv(fd, buffer, sizeof buffer, 0);
    const std::string answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
  });
  const auto deadline = Clock::now() + 3s;
  auto tcp = connectTcp(plain.endpoint(), deadline);
  ASSERT_TRUE(tcp);
  auto tls = startTls(std::move(*tcp), "localhost", "", deadline, nullptr);
  ASSERT_FALSE(tls);
  EXPECT_EQ(tls.error().code, "tls_failed");
  EXPECT_THAT(tls.error().message, HasSubstr("wrong version number"));
}

TEST(StartTls, SilentServerTimesOutByTheDeadline) {
  TestSocket listener(SOCK_STREAM);
  const Endpoint target = listener.bindLoopback();
  ::listen(listener.fd(), 1);
  const auto start = Clock::now();
  auto tcp = connectTcp(target, start + 2s);
  ASSERT_TRUE(tcp);
  auto tls = startTls(std::move(*tcp), "localhost", "", start + 400ms, nullptr);
  ASSERT_FALSE(tls);
  EXPECT_EQ(tls.error().code, "timeout");
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(ProxyDisplay, BracketsIpv6) {
  EXPECT_EQ((Proxy{"10.10.0.1", 3128, ""}.display()), "10.10.0.1:3128");
  EXPECT_EQ((Proxy{"2001:db8::1", 8080, ""}.display()), "[2001:db8::1]:8080");
}

}  // namespace
}  // namespace parley::netclient
