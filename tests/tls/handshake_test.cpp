#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <parley/tls/certificate.hpp>
#include <parley/tls/context.hpp>
#include <parley/tls/handshake.hpp>

#include "test_client.hpp"

namespace parley::tls {
namespace {

using test::Bytes;
using test::TempDir;

// A TLS client over memory BIOs: what it writes is taken with takeOutput(), what the server
// sends is handed to it with receive().
class MemoryClient {
 public:
  explicit MemoryClient(int maxVersion = 0, std::string_view alpnWire = {}) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (maxVersion != 0) SSL_CTX_set_max_proto_version(ctx_, maxVersion);
    ssl_ = SSL_new(ctx_);
    if (!alpnWire.empty()) {
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(alpnWire.data()),
                          static_cast<unsigned int>(alpnWire.size()));
    }
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~MemoryClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  Bytes drive() {
    SSL_do_handshake(ssl_);
    return takeOutput();
  }
  void receive(std::span<const std::uint8_t> bytes) {
    if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
    SSL_do_handshake(ssl_);
  }
  Bytes write(std::string_view text) {
    EXPECT_EQ(SSL_write(ssl_, text.data(), static_cast<int>(text.size())),
              static_cast<int>(text.size()));
    return takeOutput();
  }
  Bytes shutdown() {
    SSL_shutdown(ssl_);
    return takeOutput();
  }
  std::string read() {
    std::string text;
    char buffer[4096];
    int n = 0;
    while ((n = SSL_read(ssl_, buffer, sizeof buffer)) > 0)
      text.append(buffer, static_cast<std::size_t>(n));
    ERR_clear_error();
    return text;
  }
  bool established() const { return SSL_is_init_finished(ssl_) == 1; }
  int version() const { return SSL_version(ssl_); }
  Bytes takeOutput() {
    Bytes bytes(BIO_ctrl_pending(out_));
    if (!bytes.empty()) BIO_read(out_, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

// Pumps bytes until both sides are done or stuck; returns the server's state.
ServerHandshake::State connect(MemoryClient& client, ServerHandshake& server) {
  Bytes toServer = client.drive();
  for (int round = 0; round < 10; ++round) {
    server.feed(toServer);
    const auto output = server.output();
    client.receive(output);
    server.consumeOutput();
    toServer = client.takeOutput();
    if (server.state() != ServerHandshake::State::Handshaking && client.established() &&
        toServer.empty()) {
      break;
    }
  }
  return server.state();
}

std::string text(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The new owner of a released SSL: fresh memory BIOs, as asio::ssl::stream attaches its own.
struct Adopted {
  explicit Adopted(UniqueSsl released) : ssl(std::move(released)) {
    in = BIO_new(BIO_s_mem());
    out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl.get(), in, out);
  }
  std::string read(std::span<const std::uint8_t> bytes) {
    BIO_write(in, bytes.data(), static_cast<int>(bytes.size()));
    std::string result;
    char buffer[4096];
    int n = 0;
    while ((n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0)
      result.append(buffer, static_cast<std::size_t>(n));
    ERR_clear_error();
    return result;
  }
  Bytes write(std::string_view data) {
    SSL_write(ssl.get(), data.data(), static_cast<int>(data.size()));
    Bytes bytes(BIO_ctrl_pending(out));
    BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }
  UniqueSsl ssl;
  BIO* in = nullptr;
  BIO* out = nullptr;
};

class ServerHandshakeTest : public ::testing::TestWithParam<int> {
 protected:
  TempDir dir_;
  std::shared_ptr<ServerContext> context_ =
      ServerContext::load(ensureSelfSigned(dir_.path(), {"localhost"}), {"http/1.1", "stun.turn"});
};

TEST_P(ServerHandshakeTest, HandsOverWithEverythingReceivedAndKeepsTheSession) {
  MemoryClient client(GetParam());
  ServerHandshake server(context_);
  ASSERT_EQ(connect(client, server), ServerHandshake::State::Established);
  EXPECT_EQ(client.version(), GetParam());
  EXPECT_TRUE(server.plaintext().empty());

  // Two records in one read: both are decrypted before the hand-over.
  Bytes records = client.write("GET / HTTP/1.1\r\n");
  const Bytes second = client.write("Host: x\r\n");
  records.insert(records.end(), second.begin(), second.end());
  ASSERT_EQ(server.feed(records), ServerHandshake::State::Established);
  EXPECT_EQ(text(server.plaintext()), "GET / HTTP/1.1\r\nHost: x\r\n");
  client.receive(server.output());
  server.consumeOutput();

  UniqueSsl released = server.release();
  ASSERT_TRUE(released);
  EXPECT_EQ(server.state(), ServerHandshake::State::Closed);

  Adopted owner(std::move(released));
  EXPECT_EQ(owner.read(client.write("\r\n")), "\r\n");
  client.receive(owner.write("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(client.read(), "HTTP/1.1 200 OK\r\n");
}

TEST_P(ServerHandshakeTest, APartialRecordSurvivesTheHandOver) {
  MemoryClient client(GetParam());
  ServerHandshake server(context_);
  ASSERT_EQ(connect(client, server), ServerHandshake::State::Established);
  const std::string payload("\x00\x01\x00\x00 a STUN request", 19);
  const Bytes record = client.write(payload);
  const std::size_t half = record.size() / 2;
  server.feed(std::span(record).first(half));
  EXPECT_TRUE(server.plaintext().empty());
  ASSERT_TRUE(server.output().empty());
  Adopted owner(server.release());
  ASSERT_TRUE(owner.ssl);
  EXPECT_EQ(owner.read(std::span(record).subspan(half)), payload);
}

INSTANTIATE_TEST_SUITE_P(Versions, ServerHandshakeTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION), [](const auto& param) {
                           return param.param == TLS1_2_VERSION ? std::string("Tls12")
                                                                : std::string("Tls13");
                         });

class ServerHandshakeEdgeTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::shared_ptr<ServerContext> context_ =
      ServerContext::load(ensureSelfSigned(dir_.path(), {"localhost"}), {"http/1.1", "stun.turn"});
};

TEST_F(ServerHandshakeEdgeTest, ReportsTheAgreedAlpn) {
  MemoryClient client(0, "\x09stun.turn");
  ServerHandshake server(context_);
  ASSERT_EQ(connect(client, server), ServerHandshake::State::Established);
  EXPECT_EQ(server.alpn(), "stun.turn");
}

TEST_F(ServerHandshakeEdgeTest, NoAlpnIsServed) {
  MemoryClient client;
  ServerHandshake server(context_);
  ASSERT_EQ(connect(client, server), ServerHandshake::State::Established);
  EXPECT_EQ(server.alpn(), "");
}

TEST_F(ServerHandshakeEdgeTest, GarbageFailsWithAReasonAndCannotBeReleased) {
  ServerHandshake server(context_);
  // A handshake record holding an empty ClientHello.
  const std::string garbage("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9);
  EXPECT_EQ(
      server.feed(std::span(reinterpret_cast<const std::uint8_t*>(garbage.data()), garbage.size())),
      ServerHandshake::State::Failed);
  EXPECT_FALSE(server.error().empty());
  EXPECT_FALSE(server.release());
  // Further input is ignored.
  EXPECT_EQ(server.feed({}), ServerHandshake::State::Failed);
}

TEST_F(ServerHandshakeEdgeTest, ReleaseWaitsForEstablishedAndSentOutput) {
  MemoryClient client;
  ServerHandshake server(context_);
  EXPECT_FALSE(server.release());  // nothing happened yet
  server.feed(client.drive());     // ClientHello -> ServerHello...: output pending
  EXPECT_EQ(server.state(), ServerHandshake::State::Handshaking);
  EXPECT_FALSE(server.output().empty());
  EXPECT_FALSE(server.release());
}

TEST_F(ServerHandshakeEdgeTest, CloseNotifyEndsIt) {
  MemoryClient client;
  ServerHandshake server(context_);
  ASSERT_EQ(connect(client, server), ServerHandshake::State::Established);
  EXPECT_EQ(server.feed(client.shutdown()), ServerHandshake::State::Closed);
  EXPECT_FALSE(server.release());
}

}  // namespace
}  // namespace parley::tls
