// OpenSSL clients for the tests, independent of parley::tls internals: a DTLS client over
// memory BIOs (each record it writes becomes one datagram) and helpers for temp dirs and
// memory use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <openssl/ssl.h>

namespace parley::tls::test {

using Bytes = std::vector<std::uint8_t>;

Bytes toBytes(std::string_view text);
std::string toString(std::span<const std::uint8_t> bytes);

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ClientOptions {
  std::filesystem::path trust;     // verify the server against this certificate; empty: no
  std::string host = "localhost";  // name (or IP literal) the certificate must hold
  std::vector<std::string> alpn;   // offered protocols
  int maxVersion = 0;              // e.g. DTLS1_VERSION for an old client; 0: library default
  std::string ciphers;             // OpenSSL cipher list for (D)TLS 1.2; empty: library default
};

class DtlsClient {
 public:
  explicit DtlsClient(const ClientOptions& options);
  ~DtlsClient();
  DtlsClient(const DtlsClient&) = delete;
  DtlsClient& operator=(const DtlsClient&) = delete;

  // Starts the handshake; returns the datagrams to send (the ClientHello).
  std::vector<Bytes> start();
  // One datagram from the server; returns the datagrams to send in reply.
  std::vector<Bytes> receive(std::span<const std::uint8_t> datagram);
  // Encrypts one record.
  std::vector<Bytes> write(std::string_view text);
  std::vector<Bytes> shutdown();

  bool established() const { return SSL_is_init_finished(ssl_) == 1; }
  bool failed() const { return failed_; }
  bool peerClosed() const { return peerClosed_; }
  std::string alpn() const;
  // Application data received so far, one string per record.
  const std::vector<std::string>& received() const { return received_; }

 private:
  std::vector<Bytes> drive();
  std::vector<Bytes> takeOutput();

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  bool failed_ = false;
  bool peerClosed_ = false;
  std::vector<std::string> received_;
};

// Heap bytes in use (the sanitizer allocator's count under ASan, mallinfo2 otherwise).
std::size_t allocatedBytes();

}  // namespace parley::tls::test
