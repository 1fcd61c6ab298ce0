// The STUN server on loopback with real sockets, on ports the kernel picks.
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/net/stun_server.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/message.hpp>

namespace parley::net {
namespace {

using namespace std::chrono_literals;

class Socket {
 public:
  explicit Socket(int type) : fd_(::socket(AF_INET, type, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  Endpoint local() const {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    return Endpoint{IpAddress::v4(ntohl(address.sin_addr.s_addr)), ntohs(address.sin_port)};
  }

 private:
  int fd_;
};

sockaddr_in toSockaddr(const Endpoint& endpoint) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(endpoint.port);
  std::memcpy(&address.sin_addr, endpoint.address.bytes().data(), 4);
  return address;
}

std::vector<std::uint8_t> bindingRequest(std::uint8_t id,
                                         std::optional<std::uint32_t> change = {}) {
  std::array<std::uint8_t, 64> buffer{};
  stun::TransactionId transaction;
  transaction.fill(id);
  stun::MessageBuilder builder(buffer, 0x0001, transaction);
  if (change) builder.addUint32(stun::attr::kChangeRequest, *change);
  builder.addFingerprint();
  const auto bytes = *builder.finish();
  return {bytes.begin(), bytes.end()};
}

// Receives one datagram within `timeout`; returns it and where it came from.
std::optional<std::pair<std::vector<std::uint8_t>, Endpoint>> receive(
    int fd, std::chrono::milliseconds timeout = 2000ms) {
  pollfd poller{fd, POLLIN, 0};
  if (::poll(&poller, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  std::vector<std::uint8_t> data(2048);
  sockaddr_in from{};
  socklen_t length = sizeof from;
  const ssize_t n =
      ::recvfrom(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&from), &length);
  if (n < 0) return std::nullopt;
  data.resize(static_cast<std::size_t>(n));
  return std::pair{data,
                   Endpoint{IpAddress::v4(ntohl(from.sin_addr.s_addr)), ntohs(from.sin_port)}};
}

StunServerOptions loopbackOptions() {
  StunServerOptions options;
  options.listenAddresses = {*IpAddress::parse("127.0.0.1")};
  options.port = 0;
  options.threads = 2;
  return options;
}

TEST(StunServer, AnswersUdpBindingWithTheClientsAddress) {
  StunServer server(loopbackOptions());
  server.start();
  ASSERT_EQ(server.udpEndpoints().size(), 1u);
  const Endpoint target = server.udpEndpoints().front();
  EXPECT_NE(target.port, 0);
  Socket client(SOCK_DGRAM);
  const auto request = bindingRequest(7);
  const auto address = toSockaddr(target);
  ASSERT_EQ(::sendto(client.fd(), request.data(), request.size(), 0,
                     reinterpret_cast<const sockaddr*>(&address), sizeof address),
            static_cast<ssize_t>(request.size()));
  const auto reply = receive(client.fd());
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->second, target);
  const auto message = stun::Message::parse(reply->first);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->type(), 0x0101);
  // The unconnected client socket is bound to 0.0.0.0; the server saw it as 127.0.0.1.
  EXPECT_EQ(*message->decodeXorAddress(*message->find(stun::attr::kXorMappedAddress)),
            (Endpoint{*IpAddress::parse("127.0.0.1"), client.local().port}));
  EXPECT_EQ(*stun::Message::decodeAddress(*message->find(stun::attr::kResponseOrigin)), target);
  server.stop();
  EXPECT_EQ(server.counters().udpReceived, 1u);
  EXPECT_EQ(server.counters().responsesSent, 1u);
}

TEST(StunServer, AnswersTcpBindingAndClosesGarbage) {
  StunServer server(loopbackOptions());
  server.start();
  const Endpoint target = server.tcpEndpoints().front();
  Socket client(SOCK_STREAM);
  const auto address = toSockaddr(target);
  ASSERT_EQ(::connect(client.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  // Two requests in one segment: two responses, in order.
  auto requests = bindingRequest(1);
  const auto second = bindingRequest(2);
  requests.insert(requests.end(), second.begin(), second.end());
  ASSERT_EQ(::send(client.fd(), requests.data(), requests.size(), 0),
            static_cast<ssize_t>(requests.size()));
  std::vector<std::uint8_t> received;
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  std::size_t firstSize = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd poller{client.fd(), POLLIN, 0};
    if (::poll(&poller, 1, 100) != 1) continue;
    std::array<std::uint8_t, 1024> chunk;
    const ssize_t n = ::recv(client.fd(), chunk.data(), chunk.size(), 0);
    ASSERT_GT(n, 0);
    received.insert(received.end(), chunk.begin(), chunk.begin() + n);
    if (received.size() >= 4) {
      firstSize = 20 + (received[2] << 8 | received[3]);
      if (received.size() >= firstSize + 20 &&
          received.size() >=
              firstSize + 20 + (received[firstSize + 2] << 8 | received[firstSize + 3]))
        break;
    }
  }
  ASSERT_GT(firstSize, 0u);
  const auto first = stun::Message::parse(stun::Bytes(received.data(), firstSize));
  const auto next =
      stun::Message::parse(stun::Bytes(received.data() + firstSize, received.size() - firstSize));
  ASSERT_TRUE(first && next);
  EXPECT_EQ(first->transactionId()[0], 1);
  EXPECT_EQ(next->transactionId()[0], 2);
  EXPECT_EQ(*first->decodeXorAddress(*first->find(stun::attr::kXorMappedAddress)), client.local());

  // Garbage: the server closes the connection.
  const char garbage[] = "GET / HTTP/1.1\r\n\r\n";
  ::send(client.fd(), garbage, sizeof garbage - 1, 0);
  pollfd poller{client.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&poller, 1, 2000), 1);
  std::array<std::uint8_t, 16> rest;
  EXPECT_EQ(::recv(client.fd(), rest.data(), rest.size(), 0), 0);
  server.stop();
  EXPECT_EQ(server.counters().tcpConnectionsClosedForError, 1u);
}

TEST(StunServer, ChangeRequestIsAnsweredFromTheOtherAddressAndPort) {
  StunServerOptions options = loopbackOptions();
  options.alternateAddress = IpAddress::parse("127.0.0.2");
  options.alternatePort = 0;
  StunServer server(options);
  server.start();
  ASSERT_EQ(server.udpEndpoints().size(), 4u);
  const Endpoint primary = server.udpEndpoints().front();
  Socket client(SOCK_DGRAM);
  const auto address = toSockaddr(primary);
  const auto request = bindingRequest(9, stun::kChangeIp | stun::kChangePort);
  ::sendto(client.fd(), request.data(), request.size(), 0,
           reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const auto reply = receive(client.fd());
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->second.address.toString(), "127.0.0.2");
  EXPECT_NE(reply->second.port, primary.port);
  const auto message = stun::Message::parse(reply->first);
  ASSERT_TRUE(message);
  const auto other = stun::Message::decodeAddress(*message->find(stun::attr::kOtherAddress));
  EXPECT_EQ(*other, reply->second);
  EXPECT_EQ(*stun::Message::decodeAddress(*message->find(stun::attr::kResponseOrigin)),
            reply->second);
}

TEST(StunServer, PortInUseIsABindErrorNamingTheAddress) {
  Socket holder(SOCK_DGRAM);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder.fd(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  StunServerOptions options = loopbackOptions();
  options.port = holder.local().port;
  StunServer server(options);
  try {
    server.start();
    FAIL() << "start() should have thrown";
  } catch (const BindError& error) {
    EXPECT_NE(std::string(error.what()).find("udp 127.0.0.1:" + std::to_string(options.port)),
              std::string::npos)
        << error.what();
  }
}

TEST(StunServer, SecondServerOnTheSamePortIsRefusedDespiteReusePort) {
  StunServer first(loopbackOptions());
  first.start();
  StunServerOptions options = loopbackOptions();
  options.port = first.udpEndpoints().front().port;
  StunServer second(options);
  EXPECT_THROW(second.start(), BindError);
}

}  // namespace
}  // namespace parley::net

namespace parley::net {
namespace {

TEST(StunServer, WildcardListenerAnswersFromTheAddressTheRequestReached) {
  StunServerOptions options = loopbackOptions();
  options.listenAddresses = {*IpAddress::parse("0.0.0.0")};
  StunServer server(options);
  server.start();
  const std::uint16_t port = server.udpEndpoints().front().port;
  for (const char* target : {"127.0.0.1", "127.0.0.3"}) {
    Socket client(SOCK_DGRAM);
    const auto address = toSockaddr(Endpoint{*IpAddress::parse(target), port});
    const auto request = bindingRequest(4);
    ::sendto(client.fd(), request.data(), request.size(), 0,
             reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const auto reply = receive(client.fd());
    ASSERT_TRUE(reply) << target;
    EXPECT_EQ(reply->second.address.toString(), target);
    const auto message = stun::Message::parse(reply->first);
    ASSERT_TRUE(message);
    EXPECT_EQ(stun::Message::decodeAddress(*message->find(stun::attr::kResponseOrigin))->toString(),
              std::string(target) + ":" + std::to_string(port));
  }
}

}  // namespace
}  // namespace parley::net
