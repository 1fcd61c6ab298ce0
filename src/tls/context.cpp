#include <stdexcept>

#include <parley/base/log.hpp>
#include <parley/tls/context.hpp>

#include "cookie.hpp"
#include "ossl.hpp"

namespace parley::tls {
namespace {

// Mozilla "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS 1.3 keeps OpenSSL's
// defaults. Both certificate types are listed so an RSA certificate works too.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

std::shared_ptr<spdlog::logger> logger() {
  static const auto log = parley::log::get("tls");
  return log;
}

// The ALPN list in wire format (RFC 7301 §3.1) lives in the SSL_CTX itself, freed with it, so
// an SSL that outlives its ServerContext never reads freed memory.
int alpnIndex() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* data, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::string*>(data);
      });
  return index;
}

std::string alpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      throw std::invalid_argument("ALPN protocol \"" + protocol + "\" must be 1-255 bytes");
    }
    wire += static_cast<char>(protocol.size());
    wire += protocol;
  }
  return wire;
}

// RFC 7301 §3.2: the server picks. With no overlap it goes on without ALPN (which §3.2 allows)
// rather than refusing: an intercepting proxy or a client that offers only http/1.1 to the TURN
// port should still get its connection, and the bytes that follow decide what it is.
int selectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outLength,
               const unsigned char* offered, unsigned int offeredLength, void*) {
  const auto* wire =
      static_cast<const std::string*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), alpnIndex()));
  if (!wire || wire->empty() || offeredLength == 0) return SSL_TLSEXT_ERR_NOACK;
  // Server preference: walk our list, take the first the client also offered.
  for (std::size_t i = 0; i < wire->size();) {
    const auto length = static_cast<unsigned char>((*wire)[i]);
    const auto* ours = reinterpret_cast<const unsigned char*>(wire->data() + i + 1);
    for (unsigned int j = 0; j < offeredLength;) {
      const unsigned char theirLength = offered[j];
      if (j + 1 + theirLength > offeredLength) return SSL_TLSEXT_ERR_ALERT_FATAL;  // malformed
      if (theirLength == length && std::equal(ours, ours + length, offered + j + 1)) {
        *out = offered + j + 1;
        *outLength = theirLength;
        return SSL_TLSEXT_ERR_OK;
      }
      j += 1 + theirLength;
    }
    i += 1 + length;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

ossl::SslCtx makeContext(const SSL_METHOD* method, int minVersion, const CertificatePaths& paths,
                         const std::string& alpn) {
  ossl::SslCtx ctx(SSL_CTX_new(method));
  if (!ctx) ossl::fail("cannot create an SSL_CTX");
  SSL_CTX_set_min_proto_version(ctx.get(), minVersion);
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(ctx.get(), kCiphers12) != 1 ||
      SSL_CTX_set1_groups_list(ctx.get(), kGroups) != 1) {
    ossl::fail("cannot set ciphers");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), paths.cert.c_str()) != 1) {
    ossl::fail("cannot load certificate", paths.cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), paths.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    ossl::fail("cannot load private key", paths.key);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    ossl::fail("private key " + paths.key.string() + " does not match certificate", paths.cert);
  }
  if (!alpn.empty()) {
    auto wire = std::make_unique<std::string>(alpn);
    if (SSL_CTX_set_ex_data(ctx.get(), alpnIndex(), wire.get()) != 1) ossl::fail("ALPN");
    wire.release();  // owned by the SSL_CTX now
    SSL_CTX_set_alpn_select_cb(ctx.get(), selectAlpn, nullptr);
  }
  return ctx;
}

}  // namespace

std::shared_ptr<ServerContext> ServerContext::load(const CertificatePaths& paths,
                                                   const std::vector<std::string>& alpn) {
  const std::string wire = alpnWire(alpn);
  detail::initCookieSecret();

  auto tls = makeContext(TLS_server_method(), TLS1_2_VERSION, paths, wire);
  // Sessions resume with tickets; a session-id context makes resumption legal should client
  // certificates ever be requested.
  static constexpr unsigned char kSessionContext[] = "parley";
  SSL_CTX_set_session_id_context(tls.get(), kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_mode(tls.get(), SSL_MODE_RELEASE_BUFFERS);

  auto dtls = makeContext(DTLS_server_method(), DTLS1_2_VERSION, paths, wire);
  // The DTLS server sets the MTU per session; OpenSSL must not ask the (memory) BIO.
  SSL_CTX_set_options(dtls.get(), SSL_OP_NO_QUERY_MTU);
  detail::installCookieCallbacks(dtls.get());

  std::shared_ptr<ServerContext> context(new ServerContext());
  context->paths_ = paths;
  context->alpn_ = alpn;
  context->fingerprint_ = ossl::fingerprintSha256(SSL_CTX_get0_certificate(tls.get()));
  context->tls_ = tls.release();
  context->dtls_ = dtls.release();
  return context;
}

ServerContext::~ServerContext() {
  SSL_CTX_free(tls_);
  SSL_CTX_free(dtls_);
}

ContextHolder::ContextHolder(std::shared_ptr<ServerContext> initial)
    : current_(std::move(initial)) {
  if (!current_) throw std::invalid_argument("ContextHolder needs a context");
}

std::shared_ptr<ServerContext> ContextHolder::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

bool ContextHolder::reload(const CertificatePaths& paths) {
  std::shared_ptr<ServerContext> loaded;
  try {
    loaded = ServerContext::load(paths, current()->alpn());
  } catch (const std::exception& e) {
    logger()->error("TLS reload failed, keeping the current certificate: {}", e.what());
    return false;
  }
  logger()->info("TLS certificate reloaded from {} (SHA-256 {})", paths.cert.string(),
                 loaded->fingerprint());
  std::lock_guard lock(mutex_);
  current_ = std::move(loaded);
  return true;
}

}  // namespace parley::tls
