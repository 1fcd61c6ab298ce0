// Server-side TLS and DTLS configuration: one certificate, two OpenSSL contexts, and a holder
// that swaps in a reloaded pair (SIGHUP) while existing connections keep the one they started
// with. Loading is start-up (or reload) code: errors throw.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <openssl/types.h>

#include <parley/tls/certificate.hpp>

namespace parley::tls {

class ServerContext {
 public:
  // Loads `paths` into two contexts:
  //   tls():  TLS 1.2 and 1.3, server cipher preference (ECDHE with AES-GCM or ChaCha20 for
  //           1.2), no compression, no renegotiation, session tickets on;
  //   dtls(): DTLS 1.2 with the same certificate and ciphers, plus stateless cookie exchange
  //           (RFC 6347 §4.2.1) whose cookie is an HMAC of the client's address and port.
  // `alpn` lists the protocols this server speaks, most preferred first (RFC 7301): when a
  // client offers ALPN the server picks its first listed protocol the client also offers; with
  // none in common, or no ALPN offered, the handshake goes on without ALPN (what the client
  // sends then decides). Empty: ALPN is ignored.
  // Throws std::runtime_error naming the file and OpenSSL's reason (unreadable, not PEM, key
  // does not match the certificate), std::invalid_argument for an empty or >255-byte protocol.
  static std::shared_ptr<ServerContext> load(const CertificatePaths& paths,
                                             const std::vector<std::string>& alpn = {});

  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Never null. An SSL made from either holds its own reference to the SSL_CTX, so a
  // connection outlives a reload that drops this ServerContext.
  SSL_CTX* tls() const { return tls_; }
  SSL_CTX* dtls() const { return dtls_; }

  const CertificatePaths& paths() const { return paths_; }
  const std::vector<std::string>& alpn() const { return alpn_; }
  // SHA-256 fingerprint of the loaded leaf certificate, "AB:CD:...".
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  ServerContext() = default;

  SSL_CTX* tls_ = nullptr;
  SSL_CTX* dtls_ = nullptr;
  CertificatePaths paths_;
  std::vector<std::string> alpn_;
  std::string fingerprint_;
};

// The current ServerContext of a listener; thread-safe.
class ContextHolder {
 public:
  explicit ContextHolder(std::shared_ptr<ServerContext> initial);

  // The context for a new connection. Never null.
  std::shared_ptr<ServerContext> current() const;

  // Loads `paths` with the current ALPN list and makes it current. On failure logs the reason,
  // keeps the current context and returns false.
  bool reload(const CertificatePaths& paths);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<ServerContext> current_;
};

}  // namespace parley::tls
