// Real servers on loopback for the netclient media tests: a temporary self-signed certificate,
// plain sockets, and parley's own STUN/TURN server with every transport on.
#pragma once

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/base/cidr.hpp>
#include <parley/base/endpoint.hpp>
#include <parley/net/stun_server.hpp>
#include <parley/netclient/media.hpp>
#include <parley/netclient/transport.hpp>
#include <parley/tls/certificate.hpp>
#include <parley/tls/context.hpp>

namespace parley::netclient::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "netclient-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A certificate for "localhost" and 127.0.0.1, loaded into server contexts.
struct TestCertificate {
  TempDir dir;
  tls::CertificatePaths paths = tls::ensureSelfSigned(dir.path(), {"localhost", "127.0.0.1"});
  std::shared_ptr<tls::ServerContext> context(const std::vector<std::string>& alpn = {}) const {
    return tls::ServerContext::load(paths, alpn);
  }
};

inline Endpoint loopback(std::uint16_t port) {
  return Endpoint{*IpAddress::parse("127.0.0.1"), port};
}

// An owned socket of the test.
class TestSocket {
 public:
  explicit TestSocket(int type) : fd_(::socket(AF_INET, type | SOCK_CLOEXEC, 0)) {}
  ~TestSocket() { close(); }
  TestSocket(const TestSocket&) = delete;
  TestSocket& operator=(const TestSocket&) = delete;
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Binds to 127.0.0.1 on a port the kernel picks; returns it.
  Endpoint bindLoopback() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return {};
    return local();
  }
  Endpoint local() const {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    return Endpoint{IpAddress::v4(ntohl(address.sin_addr.s_addr)), ntohs(address.sin_port)};
  }

 private:
  int fd_;
};

inline sockaddr_in toSockaddrV4(const Endpoint& endpoint) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(endpoint.port);
  std::memcpy(&address.sin_addr, endpoint.address.bytes().data(), 4);
  return address;
}

// TURN REST credentials (RFC draft-uberti-behave-turn-rest): the server derives the password.
inline constexpr const char* kTurnSecret = "netclient-test-secret";
inline constexpr const char* kTurnUser = "alice";
inline constexpr const char* kTurnPassword = "wonderland";

// parley's STUN/TURN server on 127.0.0.1 with UDP, TCP, TLS and DTLS, relaying to loopback
// peers (the built-in deny list would refuse them), and RFC 5780's alternate address.
class TestTurnServer {
 public:
  explicit TestTurnServer(bool alternate = false) {
    net::StunServerOptions options;
    options.listenAddresses = {*IpAddress::parse("127.0.0.1")};
    options.port = 0;
    options.threads = 1;
    if (alternate) {
      options.alternateAddress = IpAddress::parse("127.0.0.2");
      options.alternatePort = 0;
    }
    options.turn.enabled = true;
    options.turn.protocol.realm = "parley";
    options.turn.protocol.users = {{kTurnUser, kTurnPassword}};
    options.turn.protocol.restSecrets = {kTurnSecret};
    options.turn.protocol.unauthenticatedPerSecond = 1000;
    options.turn.protocol.bandwidthPerAllocation = 0;
    options.turn.allowedPeers = {*Cidr::parse("127.0.0.0/8")};
    options.turn.relayAddressV4 = IpAddress::parse("127.0.0.1");
    options.tls.tls = true;
    options.tls.dtls = true;
    options.tls.port = 0;
    options.tls.contexts = std::make_shared<tls::ContextHolder>(certificate_.context());
    server_ = std::make_unique<net::StunServer>(options);
    server_->start();
  }
  ~TestTurnServer() { server_->stop(); }

  net::StunServer& server() { return *server_; }
  Endpoint udp() const { return server_->udpEndpoints().front(); }
  Endpoint tcp() const { return server_->tcpEndpoints().front(); }
  Endpoint tls() const { return server_->tlsEndpoints().front(); }
  Endpoint dtls() const { return server_->dtlsEndpoints().front(); }

 private:
  TestCertificate certificate_;
  std::unique_ptr<net::StunServer> server_;
};

enum class Kind { Udp, Tcp, Tls, Dtls };

inline std::string kindName(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::Udp:
      return "Udp";
    case Kind::Tcp:
      return "Tcp";
    case Kind::Tls:
      return "Tls";
    case Kind::Dtls:
      return "Dtls";
  }
  return "Unknown";
}

inline Result<std::unique_ptr<MessageTransport>> open(TestTurnServer& server, Kind kind,
                                                      Deadline deadline) {
  switch (kind) {
    case Kind::Udp:
      return openUdp(server.udp());
    case Kind::Tcp: {
      auto stream = connectTcp(server.tcp(), deadline);
      if (!stream) return tl::unexpected(stream.error());
      return framed(std::move(*stream));
    }
    case Kind::Tls: {
      auto stream = connectTcp(server.tls(), deadline);
      if (!stream) return tl::unexpected(stream.error());
      auto tls = startTls(std::move(*stream), "localhost", "", deadline, nullptr);
      if (!tls) return tl::unexpected(tls.error());
      return framed(std::move(*tls));
    }
    case Kind::Dtls:
      return openDtls("localhost", server.dtls(), deadline, nullptr);
  }
  return tl::unexpected(Failure{"protocol", "unknown kind"});
}

// TURN REST credentials as `parley serve` hands them out: "expiry:user" and
// base64(HMAC-SHA1(secret, username)).
inline TurnCredentials restCredentials(const std::string& user) {
  const auto expiry =
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch() + std::chrono::seconds(300))
          .count();
  TurnCredentials credentials;
  credentials.username = std::to_string(expiry) + ":" + user;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int macSize = 0;
  HMAC(EVP_sha1(), kTurnSecret, static_cast<int>(std::strlen(kTurnSecret)),
       reinterpret_cast<const unsigned char*>(credentials.username.data()),
       credentials.username.size(), mac.data(), &macSize);
  std::string encoded(4 * ((macSize + 2) / 3) + 1, '\0');
  encoded.resize(static_cast<std::size_t>(EVP_EncodeBlock(
      reinterpret_cast<unsigned char*>(encoded.data()), mac.data(), static_cast<int>(macSize))));
  credentials.password = encoded;
  return credentials;
}

}  // namespace parley::netclient::test
