#include <fstream>
#include <functional>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <parley/tls/certificate.hpp>
#include <parley/tls/context.hpp>

#include "test_client.hpp"

namespace parley::tls {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

struct Ssl {
  SSL* ssl = nullptr;
  explicit Ssl(SSL* s) : ssl(s) {}
  ~Ssl() { SSL_free(ssl); }
  Ssl(const Ssl&) = delete;
  Ssl& operator=(const Ssl&) = delete;
};

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

struct TlsResult {
  bool clientDone = false;
  bool serverDone = false;
  std::string clientAlpn;
  std::string serverAlpn;
  int version = 0;
  int serverErrorReason = 0;  // ERR_GET_REASON of the server's failure
};

// Runs a TLS handshake between a client and an SSL from `serverCtx` over an in-memory BIO
// pair. `configure` adjusts the client before it starts.
TlsResult handshake(SSL_CTX* serverCtx, const std::filesystem::path& trust,
                    const std::function<void(SSL_CTX*, SSL*)>& configure = {}) {
  std::unique_ptr<SSL_CTX, CtxDeleter> clientCtx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_load_verify_locations(clientCtx.get(), trust.c_str(), nullptr);
  SSL_CTX_set_verify(clientCtx.get(), SSL_VERIFY_PEER, nullptr);
  Ssl client(SSL_new(clientCtx.get()));
  Ssl server(SSL_new(serverCtx));
  SSL_set1_host(client.ssl, "localhost");
  if (configure) configure(clientCtx.get(), client.ssl);

  BIO* clientBio = nullptr;
  BIO* serverBio = nullptr;
  BIO_new_bio_pair(&clientBio, 0, &serverBio, 0);
  SSL_set_bio(client.ssl, clientBio, clientBio);
  SSL_set_bio(server.ssl, serverBio, serverBio);
  SSL_set_connect_state(client.ssl);
  SSL_set_accept_state(server.ssl);

  TlsResult result;
  for (int round = 0; round < 20 && !(result.clientDone && result.serverDone); ++round) {
    const int c = SSL_do_handshake(client.ssl);
    if (c == 1)
      result.clientDone = true;
    else if (SSL_get_error(client.ssl, c) != SSL_ERROR_WANT_READ)
      break;
    const int s = SSL_do_handshake(server.ssl);
    if (s == 1)
      result.serverDone = true;
    else if (SSL_get_error(server.ssl, s) != SSL_ERROR_WANT_READ) {
      result.serverErrorReason = ERR_GET_REASON(ERR_peek_last_error());
      SSL_do_handshake(client.ssl);  // let the client read the alert
      break;
    }
  }
  ERR_clear_error();
  auto alpnOf = [](SSL* ssl) {
    const unsigned char* data = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(ssl, &data, &size);
    return data ? std::string(reinterpret_cast<const char*>(data), size) : std::string();
  };
  result.clientAlpn = alpnOf(client.ssl);
  result.serverAlpn = alpnOf(server.ssl);
  result.version = SSL_version(server.ssl);
  return result;
}

void offerAlpn(SSL* ssl, std::string_view wire) {
  SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                      static_cast<unsigned int>(wire.size()));
}

class ContextTest : public ::testing::Test {
 protected:
  TempDir dir_;
  CertificatePaths paths_ = ensureSelfSigned(dir_.path(), {"localhost", "127.0.0.1"});
};

TEST_F(ContextTest, LoadsBothContexts) {
  auto context = ServerContext::load(paths_, {"stun.turn"});
  ASSERT_TRUE(context);
  EXPECT_NE(context->tls(), nullptr);
  EXPECT_NE(context->dtls(), nullptr);
  EXPECT_EQ(context->fingerprint(), fingerprintSha256(paths_.cert));
  EXPECT_EQ(context->paths(), paths_);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context->tls()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context->dtls()), DTLS1_2_VERSION);
  EXPECT_NE(SSL_CTX_get_options(context->tls()) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_NE(SSL_CTX_get_options(context->tls()) & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_NE(SSL_CTX_get_options(context->tls()) & SSL_OP_CIPHER_SERVER_PREFERENCE, 0u);
}

TEST_F(ContextTest, MismatchedKeyThrowsWithPathAndReason) {
  TempDir other;
  const auto otherPaths = ensureSelfSigned(other.path(), {"localhost"});
  try {
    ServerContext::load({paths_.cert, otherPaths.key});
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(otherPaths.key.string()));
    EXPECT_THAT(e.what(), HasSubstr("mismatch"));
  }
}

TEST_F(ContextTest, MissingOrGarbageFilesThrowWithPath) {
  const auto missing = dir_.path() / "nope.crt";
  try {
    ServerContext::load({missing, paths_.key});
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(missing.string()));
  }
  const auto garbage = dir_.path() / "garbage.key";
  std::ofstream(garbage) << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  try {
    ServerContext::load({paths_.cert, garbage});
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(garbage.string()));
  }
  EXPECT_EQ(ERR_peek_error(), 0u) << "the error queue is left clean";
}

TEST_F(ContextTest, RejectsBadAlpn) {
  EXPECT_THROW(ServerContext::load(paths_, {""}), std::invalid_argument);
  EXPECT_THROW(ServerContext::load(paths_, {std::string(256, 'x')}), std::invalid_argument);
}

TEST_F(ContextTest, TlsHandshakeNegotiatesAlpn) {
  auto context = ServerContext::load(paths_, {"stun.turn", "http/1.1"});
  // The client prefers http/1.1; the server's order wins (RFC 7301 §3.2).
  const auto result = handshake(context->tls(), paths_.cert, [](SSL_CTX*, SSL* ssl) {
    offerAlpn(ssl, "\x08http/1.1\x09stun.turn");
  });
  EXPECT_TRUE(result.clientDone);
  EXPECT_TRUE(result.serverDone);
  EXPECT_EQ(result.serverAlpn, "stun.turn");
  EXPECT_EQ(result.clientAlpn, "stun.turn");
  EXPECT_EQ(result.version, TLS1_3_VERSION);
}

TEST_F(ContextTest, TlsClientWithoutAlpnIsServed) {
  auto context = ServerContext::load(paths_, {"stun.turn"});
  const auto result = handshake(context->tls(), paths_.cert);
  EXPECT_TRUE(result.clientDone && result.serverDone);
  EXPECT_EQ(result.serverAlpn, "");
}

TEST_F(ContextTest, TlsAlpnWithoutOverlapIsServedWithoutAlpn) {
  // A client (or an intercepting proxy) offering only http/1.1 to the TURN port still connects.
  auto context = ServerContext::load(paths_, {"stun.turn"});
  const auto result = handshake(context->tls(), paths_.cert,
                                [](SSL_CTX*, SSL* ssl) { offerAlpn(ssl, "\x08http/1.1"); });
  EXPECT_TRUE(result.serverDone);
  EXPECT_TRUE(result.clientDone);
  EXPECT_EQ(result.serverAlpn, "");
}

TEST_F(ContextTest, Tls12Accepted) {
  auto context = ServerContext::load(paths_, {"stun.turn"});
  const auto result = handshake(context->tls(), paths_.cert, [](SSL_CTX*, SSL* ssl) {
    SSL_set_max_proto_version(ssl, TLS1_2_VERSION);
    offerAlpn(ssl, "\x09stun.turn");
  });
  EXPECT_TRUE(result.clientDone && result.serverDone);
  EXPECT_EQ(result.version, TLS1_2_VERSION);
  EXPECT_EQ(result.serverAlpn, "stun.turn");
}

TEST_F(ContextTest, Tls11Refused) {
  auto context = ServerContext::load(paths_);
  const auto result = handshake(context->tls(), paths_.cert, [](SSL_CTX*, SSL* ssl) {
    // Security level 0 so this client really sends a TLS 1.1 ClientHello.
    SSL_set_cipher_list(ssl, "DEFAULT:@SECLEVEL=0");
    SSL_set_min_proto_version(ssl, TLS1_1_VERSION);
    SSL_set_max_proto_version(ssl, TLS1_1_VERSION);
  });
  EXPECT_FALSE(result.serverDone);
  EXPECT_FALSE(result.clientDone);
  // Refused by the server on reading the ClientHello, not by the client before sending it.
  EXPECT_EQ(result.serverErrorReason, SSL_R_UNSUPPORTED_PROTOCOL);
}

TEST_F(ContextTest, HolderReloadSwapsContext) {
  ContextHolder holder(ServerContext::load(paths_, {"stun.turn"}));
  auto before = holder.current();
  TempDir other;
  const auto otherPaths = ensureSelfSigned(other.path(), {"localhost"});
  EXPECT_TRUE(holder.reload(otherPaths));
  auto after = holder.current();
  EXPECT_NE(after, before);
  EXPECT_EQ(after->paths(), otherPaths);
  EXPECT_NE(after->fingerprint(), before->fingerprint());
  EXPECT_EQ(after->alpn(), std::vector<std::string>{"stun.turn"});
  // The old context still works for whoever holds it.
  EXPECT_TRUE(handshake(before->tls(), paths_.cert).serverDone);
  EXPECT_TRUE(handshake(after->tls(), otherPaths.cert).serverDone);
}

TEST_F(ContextTest, HolderReloadFailureKeepsOld) {
  ContextHolder holder(ServerContext::load(paths_));
  auto before = holder.current();
  EXPECT_FALSE(holder.reload({dir_.path() / "missing.crt", paths_.key}));
  EXPECT_EQ(holder.current(), before);
  TempDir other;
  const auto otherPaths = ensureSelfSigned(other.path(), {"localhost"});
  EXPECT_FALSE(holder.reload({paths_.cert, otherPaths.key}));
  EXPECT_EQ(holder.current(), before);
}

TEST_F(ContextTest, SslCtxOutlivesItsServerContext) {
  auto context = ServerContext::load(paths_, {"stun.turn"});
  SSL_CTX* ctx = context->tls();
  SSL_CTX_up_ref(ctx);  // as an SSL of an existing connection does
  context.reset();
  // The ALPN list lives in the SSL_CTX, so a handshake after the reload still negotiates it.
  const auto result =
      handshake(ctx, paths_.cert, [](SSL_CTX*, SSL* ssl) { offerAlpn(ssl, "\x09stun.turn"); });
  EXPECT_TRUE(result.serverDone);
  EXPECT_EQ(result.serverAlpn, "stun.turn");
  SSL_CTX_free(ctx);
}

}  // namespace
}  // namespace parley::tls
