#include "cookie.hpp"
#include <array>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>

namespace parley::tls::detail {
namespace {

constexpr std::size_t kSecretSize = 32;
constexpr std::size_t kCookieSize = 32;  // SHA-256; DTLS allows up to 255 (RFC 6347 §4.2.1)
static_assert(kCookieSize <= DTLS1_COOKIE_LENGTH);

std::array<unsigned char, kSecretSize> gSecret{};
std::once_flag gSecretOnce;

int peerIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// family || address || port; 19 bytes at most.
std::size_t addressBytes(SSL* ssl, std::array<unsigned char, 19>& out) {
  Endpoint peer;
  if (const auto* known = static_cast<const Endpoint*>(SSL_get_ex_data(ssl, peerIndex()))) {
    peer = *known;
  } else {
    // A socket BIO (BIO_s_datagram) reports the sender of the datagram it just read.
    BIO_ADDR* addr = BIO_ADDR_new();
    if (!addr) return 0;
    if (BIO_dgram_get_peer(SSL_get_rbio(ssl), addr) <= 0) {
      BIO_ADDR_free(addr);
      return 0;
    }
    std::array<unsigned char, 16> raw{};
    std::size_t size = raw.size();
    const int family = BIO_ADDR_family(addr);
    const bool ok = BIO_ADDR_rawaddress(addr, raw.data(), &size) == 1;
    peer.port = ntohs(BIO_ADDR_rawport(addr));
    BIO_ADDR_free(addr);
    if (!ok) return 0;
    if (family == AF_INET && size == 4) {
      peer.address = IpAddress::v4(std::span<const std::uint8_t, 4>(raw.data(), 4));
    } else if (family == AF_INET6 && size == 16) {
      peer.address = IpAddress::v6(std::span<const std::uint8_t, 16>(raw.data(), 16));
    } else {
      return 0;
    }
  }
  const auto bytes = peer.address.bytes();
  out[0] = peer.address.isV4() ? 4 : 6;
  std::memcpy(out.data() + 1, bytes.data(), bytes.size());
  out[1 + bytes.size()] = static_cast<unsigned char>(peer.port >> 8);
  out[2 + bytes.size()] = static_cast<unsigned char>(peer.port & 0xFF);
  return 3 + bytes.size();
}

bool computeCookie(SSL* ssl, unsigned char* cookie) {
  std::array<unsigned char, 19> input{};
  const std::size_t size = addressBytes(ssl, input);
  if (size == 0) return false;
  unsigned int length = 0;
  return HMAC(EVP_sha256(), gSecret.data(), static_cast<int>(gSecret.size()), input.data(), size,
              cookie, &length) != nullptr &&
         length == kCookieSize;
}

int generateCookie(SSL* ssl, unsigned char* cookie, unsigned int* length) {
  if (!computeCookie(ssl, cookie)) return 0;
  *length = kCookieSize;
  return 1;
}

int verifyCookie(SSL* ssl, const unsigned char* cookie, unsigned int length) {
  std::array<unsigned char, kCookieSize> expected{};
  if (length != kCookieSize || !computeCookie(ssl, expected.data())) return 0;
  return CRYPTO_memcmp(expected.data(), cookie, kCookieSize) == 0 ? 1 : 0;
}

}  // namespace

void initCookieSecret() {
  std::call_once(gSecretOnce, [] {
    if (RAND_bytes(gSecret.data(), static_cast<int>(gSecret.size())) != 1) {
      ossl::fail("cannot draw the DTLS cookie secret");
    }
  });
  peerIndex();
}

void installCookieCallbacks(SSL_CTX* ctx) {
  SSL_CTX_set_cookie_generate_cb(ctx, generateCookie);
  SSL_CTX_set_cookie_verify_cb(ctx, verifyCookie);
}

void setCookiePeer(SSL* ssl, const Endpoint* peer) {
  SSL_set_ex_data(ssl, peerIndex(), const_cast<Endpoint*>(peer));
}

}  // namespace parley::tls::detail
