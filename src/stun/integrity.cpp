#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

#include <idn-free.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stringprep.h>
#include <zlib.h>

#include <parley/stun/integrity.hpp>

#include "hmac.hpp"
#include "wire.hpp"

namespace parley::stun {

namespace {

// One reusable HMAC context per digest and thread: EVP_MAC_init with a new key resets it.
class HmacContext {
 public:
  explicit HmacContext(const char* digest) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (mac == nullptr) throw std::runtime_error("OpenSSL has no HMAC");
    context_ = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context keeps its own reference
    if (context_ == nullptr) throw std::runtime_error("EVP_MAC_CTX_new failed");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(context_, params) != 1) {
      throw std::runtime_error(std::string("OpenSSL has no ") + digest);
    }
  }
  ~HmacContext() { EVP_MAC_CTX_free(context_); }
  HmacContext(const HmacContext&) = delete;
  HmacContext& operator=(const HmacContext&) = delete;

  void compute(std::span<const std::uint8_t> key, std::span<const std::uint8_t> first,
               std::span<const std::uint8_t> second, std::span<std::uint8_t> out) {
    // A null key would mean "keep the previous key" to OpenSSL; an empty password is a key.
    static const std::uint8_t kEmpty = 0;
    const std::uint8_t* keyData = key.empty() ? &kEmpty : key.data();
    std::size_t written = 0;
    if (EVP_MAC_init(context_, keyData, key.size(), nullptr) != 1 ||
        EVP_MAC_update(context_, first.data(), first.size()) != 1 ||
        (!second.empty() && EVP_MAC_update(context_, second.data(), second.size()) != 1) ||
        EVP_MAC_final(context_, out.data(), &written, out.size()) != 1 || written != out.size()) {
      // Cannot happen with valid contexts; fill with zeros so a check never passes by accident.
      std::memset(out.data(), 0, out.size());
    }
  }

 private:
  EVP_MAC_CTX* context_ = nullptr;
};

HmacContext& sha1Context() {
  thread_local HmacContext context("SHA1");
  return context;
}
HmacContext& sha256Context() {
  thread_local HmacContext context("SHA256");
  return context;
}

// The header with its length field set as if the message ended right after the attribute at
// `offset` whose value is `valueSize` bytes: RFC 8489 §14.5-14.7 hash it that way.
std::array<std::uint8_t, kHeaderSize> headerEndingAt(Bytes message, std::size_t offset,
                                                     std::size_t valueSize) {
  std::array<std::uint8_t, kHeaderSize> header;
  std::memcpy(header.data(), message.data(), kHeaderSize);
  wire::write16(header.data() + 2, static_cast<std::uint16_t>(offset + kAttributeHeaderSize +
                                                              valueSize - kHeaderSize));
  return header;
}

template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> digestOf(const EVP_MD* md, std::string_view text) {
  std::array<std::uint8_t, N> out;
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), out.data(), &size, md, nullptr) != 1 || size != N) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

void hmac::sha1(std::span<const std::uint8_t> key, std::span<const std::uint8_t> first,
                std::span<const std::uint8_t> second, std::span<std::uint8_t, 20> out) {
  sha1Context().compute(key, first, second, out);
}

void hmac::sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> first,
                  std::span<const std::uint8_t> second, std::span<std::uint8_t, 32> out) {
  sha256Context().compute(key, first, second, out);
}

std::uint32_t fingerprintOf(std::span<const std::uint8_t> bytes) {
  // zlib's CRC-32 is the same polynomial (ISO-HDLC) and uses a sliced, SIMD-assisted table.
  const auto crc = ::crc32_z(0, bytes.data(), bytes.size());
  return static_cast<std::uint32_t>(crc) ^ kFingerprintXor;
}

std::uint32_t fingerprint(Bytes bytes) {
  return fingerprintOf(bytes);
}

Check checkFingerprint(const Message& message) {
  const auto attribute = message.find(attr::kFingerprint);
  if (!attribute) return Check::Absent;
  if (attribute->value.size() != 4) return Check::Invalid;
  // Message::parse guarantees FINGERPRINT is last, so the length field already ends with it.
  const auto expected = fingerprintOf(message.bytes().first(attribute->offset));
  return wire::read32(attribute->value.data()) == expected ? Check::Valid : Check::Invalid;
}

Check checkMessageIntegrity(const Message& message, Bytes key) {
  const auto attribute = message.find(attr::kMessageIntegrity);
  if (!attribute) return Check::Absent;
  if (attribute->value.size() != 20) return Check::Invalid;
  const auto header = headerEndingAt(message.bytes(), attribute->offset, 20);
  std::array<std::uint8_t, 20> mac;
  hmac::sha1(key, header, message.bytes().subspan(kHeaderSize, attribute->offset - kHeaderSize),
             mac);
  return CRYPTO_memcmp(mac.data(), attribute->value.data(), mac.size()) == 0 ? Check::Valid
                                                                             : Check::Invalid;
}

Check checkMessageIntegritySha256(const Message& message, Bytes key) {
  const auto attribute = message.find(attr::kMessageIntegritySha256);
  if (!attribute) return Check::Absent;
  // RFC 8489 §14.6: at least 16 bytes, a multiple of 4, at most the full 32.
  const std::size_t size = attribute->value.size();
  if (size < 16 || size > 32 || size % 4 != 0) return Check::Invalid;
  const auto header = headerEndingAt(message.bytes(), attribute->offset, size);
  std::array<std::uint8_t, 32> mac;
  hmac::sha256(key, header, message.bytes().subspan(kHeaderSize, attribute->offset - kHeaderSize),
               mac);
  return CRYPTO_memcmp(mac.data(), attribute->value.data(), size) == 0 ? Check::Valid
                                                                       : Check::Invalid;
}

std::optional<std::string> saslPrep(std::string_view text) {
  const std::string terminated(text);
  if (terminated.find('\0') != std::string::npos) return std::nullopt;
  char* prepared = nullptr;
  // Flags 0: unassigned code points allowed, as for "queries" in RFC 3454 §7.
  if (stringprep_profile(terminated.c_str(), &prepared, "SASLprep", Stringprep_profile_flags{}) !=
      STRINGPREP_OK) {
    return std::nullopt;
  }
  std::string result(prepared);
  idn_free(prepared);
  return result;
}

namespace {
// RFC 8489 §9.2.2: the long-term key hashes username ":" realm ":" SASLprep(password).
template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> longTermKey(const EVP_MD* md, std::string_view username,
                                                       std::string_view realm,
                                                       std::string_view password) {
  const auto prepared = saslPrep(password);
  if (!prepared) return std::nullopt;
  return digestOf<N>(md, std::string(username) + ":" + std::string(realm) + ":" + *prepared);
}
}  // namespace

std::optional<std::array<std::uint8_t, 16>> longTermKeyMd5(std::string_view username,
                                                           std::string_view realm,
                                                           std::string_view password) {
  return longTermKey<16>(EVP_md5(), username, realm, password);
}

std::optional<std::array<std::uint8_t, 32>> longTermKeySha256(std::string_view username,
                                                              std::string_view realm,
                                                              std::string_view password) {
  return longTermKey<32>(EVP_sha256(), username, realm, password);
}

std::optional<std::string> shortTermKey(std::string_view password) {
  return saslPrep(password);
}

std::array<std::uint8_t, 32> userhash(std::string_view username, std::string_view realm) {
  const std::string input = std::string(username) + ":" + std::string(realm);
  return *digestOf<32>(EVP_sha256(), input);
}

}  // namespace parley::stun
