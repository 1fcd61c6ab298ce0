#include "ossl.hpp"
#include <array>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/pem.h>

namespace parley::tls::ossl {

std::string takeErrors(std::string_view fallback) {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!text.empty()) text += "; ";
    text += buffer.data();
  }
  return text.empty() ? std::string(fallback) : text;
}

void fail(std::string_view what, const std::filesystem::path& path) {
  throw std::runtime_error(std::string(what) + " " + path.string() + ": " + takeErrors());
}

void fail(std::string_view what) {
  throw std::runtime_error(std::string(what) + ": " + takeErrors());
}

X509Ptr readCertificate(const std::filesystem::path& path) {
  Bio bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Pkey readPrivateKey(const std::filesystem::path& path) {
  Bio bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  // An empty passphrase callback: an encrypted key fails instead of prompting on a terminal.
  return Pkey(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
}

std::string fingerprintSha256(const X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), digest.data(), &size) != 1) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text;
  text.reserve(size * 3);
  for (unsigned int i = 0; i < size; ++i) {
    if (i != 0) text += ':';
    text += kHex[digest[i] >> 4];
    text += kHex[digest[i] & 0xF];
  }
  return text;
}

}  // namespace parley::tls::ossl
