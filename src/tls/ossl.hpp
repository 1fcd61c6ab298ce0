// The one wrapper around OpenSSL's C API: owning pointers for its objects and its error queue
// turned into text. Private to parley::tls.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace parley::tls::ossl {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using SslCtx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, Deleter<SSL_free>>;

// Drains this thread's OpenSSL error queue into one line ("reason; reason"), or `fallback`
// when the queue is empty.
std::string takeErrors(std::string_view fallback = "unknown OpenSSL error");

// Throws std::runtime_error "<what> <path>: <OpenSSL reasons>" (start-up paths only).
[[noreturn]] void fail(std::string_view what, const std::filesystem::path& path);
[[noreturn]] void fail(std::string_view what);

// PEM readers; nullptr with the error queue set when the file is unreadable or not PEM.
X509Ptr readCertificate(const std::filesystem::path& path);
Pkey readPrivateKey(const std::filesystem::path& path);

// "AB:CD:..." SHA-256 of the DER certificate; empty on failure.
std::string fingerprintSha256(const X509* cert);

}  // namespace parley::tls::ossl
