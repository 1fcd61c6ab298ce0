#include "test_client.hpp"
#include <stdexcept>

#include <malloc.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PARLEY_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PARLEY_TEST_ASAN 1
#endif
#ifdef PARLEY_TEST_ASAN
#include <sanitizer/allocator_interface.h>
#endif

namespace parley::tls::test {

Bytes toBytes(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

std::string toString(std::span<const std::uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "parley-tls-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

DtlsClient::DtlsClient(const ClientOptions& options) {
  ctx_ = SSL_CTX_new(DTLS_client_method());
  if (options.maxVersion != 0) {
    // Security level 0 so an old-protocol ClientHello really goes out.
    SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_max_proto_version(ctx_, options.maxVersion);
  }
  SSL_CTX_set_options(ctx_, SSL_OP_NO_QUERY_MTU);
  if (!options.ciphers.empty()) SSL_CTX_set_cipher_list(ctx_, options.ciphers.c_str());
  if (!options.trust.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, options.trust.c_str(), nullptr) != 1) {
      throw std::runtime_error("cannot load " + options.trust.string());
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!options.alpn.empty()) {
    std::string wire;
    for (const auto& protocol : options.alpn) {
      wire += static_cast<char>(protocol.size());
      wire += protocol;
    }
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  ssl_ = SSL_new(ctx_);
  if (!options.trust.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, options.host.c_str()) != 1) {
      ERR_clear_error();
      SSL_set1_host(ssl_, options.host.c_str());
    }
  }
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_mtu(ssl_, 1200);
  SSL_set_connect_state(ssl_);
}

DtlsClient::~DtlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

std::vector<Bytes> DtlsClient::start() {
  return drive();
}

std::vector<Bytes> DtlsClient::receive(std::span<const std::uint8_t> datagram) {
  BIO_write(in_, datagram.data(), static_cast<int>(datagram.size()));
  return drive();
}

std::vector<Bytes> DtlsClient::write(std::string_view text) {
  if (SSL_write(ssl_, text.data(), static_cast<int>(text.size())) <= 0) failed_ = true;
  return takeOutput();
}

std::vector<Bytes> DtlsClient::shutdown() {
  SSL_shutdown(ssl_);
  ERR_clear_error();
  return takeOutput();
}

std::string DtlsClient::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl_, &data, &size);
  return data ? std::string(reinterpret_cast<const char*>(data), size) : std::string();
}

std::vector<Bytes> DtlsClient::drive() {
  if (!established()) {
    const int result = SSL_do_handshake(ssl_);
    if (result != 1) {
      const int error = SSL_get_error(ssl_, result);
      if (error != SSL_ERROR_WANT_READ) failed_ = true;
      ERR_clear_error();
      return takeOutput();
    }
  }
  for (;;) {
    char buffer[16384];
    const int n = SSL_read(ssl_, buffer, sizeof buffer);
    if (n > 0) {
      received_.emplace_back(buffer, static_cast<std::size_t>(n));
      continue;
    }
    const int error = SSL_get_error(ssl_, n);
    if (error == SSL_ERROR_ZERO_RETURN)
      peerClosed_ = true;
    else if (error != SSL_ERROR_WANT_READ)
      failed_ = true;
    ERR_clear_error();
    break;
  }
  return takeOutput();
}

// The memory BIO concatenates what the client writes; cut it back into DTLS records
// (RFC 6347 §4.1: 13-byte header, length in bytes 11-12) and send each as a datagram.
std::vector<Bytes> DtlsClient::takeOutput() {
  std::vector<Bytes> datagrams;
  char* data = nullptr;
  const long size = BIO_get_mem_data(out_, &data);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
  long offset = 0;
  while (offset + 13 <= size) {
    const long length = (long{bytes[offset + 11]} << 8) | bytes[offset + 12];
    const long end = std::min(size, offset + 13 + length);
    datagrams.emplace_back(bytes + offset, bytes + end);
    offset = end;
  }
  (void)BIO_reset(out_);
  return datagrams;
}

std::size_t allocatedBytes() {
#ifdef PARLEY_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

}  // namespace parley::tls::test
