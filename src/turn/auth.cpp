#include <algorithm>
#include <charconv>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <parley/stun/integrity.hpp>

#include "auth.hpp"
#include "crypto.hpp"

namespace parley::turn::detail {

std::array<std::uint8_t, 20> hmacSha1(std::span<const std::uint8_t> key,
                                      std::span<const std::uint8_t> data) {
  std::array<std::uint8_t, 20> out{};
  unsigned int size = 0;
  static const std::uint8_t kEmpty = 0;
  HMAC(EVP_sha1(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
       data.empty() ? &kEmpty : data.data(), data.size(), out.data(), &size);
  return out;
}

std::array<std::uint8_t, 32> hmacSha256(std::span<const std::uint8_t> key,
                                        std::span<const std::uint8_t> data) {
  std::array<std::uint8_t, 32> out{};
  unsigned int size = 0;
  static const std::uint8_t kEmpty = 0;
  HMAC(EVP_sha256(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
       data.empty() ? &kEmpty : data.data(), data.size(), out.data(), &size);
  return out;
}

std::string base64(std::span<const std::uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(std::max(written, 0)));
  return out;
}

bool unbase64(std::string_view text, std::span<std::uint8_t> out) {
  if (out.size() % 3 != 0 || text.size() != out.size() / 3 * 4) return false;
  // EVP_DecodeBlock skips leading/trailing whitespace; reject anything but the alphabet.
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  std::array<std::uint8_t, 64> buffer{};
  if (out.size() > buffer.size()) return false;
  const int decoded =
      EVP_DecodeBlock(buffer.data(), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size()));
  if (decoded != static_cast<int>(out.size())) return false;
  std::memcpy(out.data(), buffer.data(), out.size());
  return true;
}

// ---- Nonces ----

namespace {
std::uint64_t secondsOf(SteadyTime time) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count());
}
}  // namespace

std::array<std::uint8_t, 16> Nonces::mac(std::uint64_t expiry, const IpAddress& client) const {
  std::array<std::uint8_t, 8 + 16> input{};
  for (int i = 0; i < 8; ++i)
    input[i] = static_cast<std::uint8_t>(expiry >> (56 - 8 * i));
  const auto address = client.bytes();
  std::copy(address.begin(), address.end(), input.begin() + 8);
  const auto full = hmacSha256(key_, std::span(input.data(), 8 + address.size()));
  std::array<std::uint8_t, 16> truncated;
  std::copy_n(full.begin(), truncated.size(), truncated.begin());
  return truncated;
}

std::string Nonces::mint(const IpAddress& client, SteadyTime now) const {
  const std::uint64_t expiry = secondsOf(now) + static_cast<std::uint64_t>(lifetime_.count());
  std::array<std::uint8_t, 24> raw{};
  for (int i = 0; i < 8; ++i)
    raw[i] = static_cast<std::uint8_t>(expiry >> (56 - 8 * i));
  const auto tag = mac(expiry, client);
  std::copy(tag.begin(), tag.end(), raw.begin() + 8);
  std::string nonce;
  nonce.reserve(kSize);
  nonce.append(kCookie).append(kFeatures).append(base64(raw));
  return nonce;
}

bool Nonces::valid(std::string_view nonce, const IpAddress& client, SteadyTime now) const {
  if (nonce.size() != kSize || !nonce.starts_with(kCookie)) return false;
  std::array<std::uint8_t, 24> raw{};
  if (!unbase64(nonce.substr(kCookie.size() + kFeatures.size()), raw)) return false;
  std::uint64_t expiry = 0;
  for (int i = 0; i < 8; ++i)
    expiry = expiry << 8 | raw[i];
  const auto expected = mac(expiry, client);
  if (CRYPTO_memcmp(expected.data(), raw.data() + 8, expected.size()) != 0) return false;
  return expiry > secondsOf(now);
}

bool Nonces::hasPasswordAlgorithmsBit(std::string_view nonce) {
  if (nonce.size() < kCookie.size() + 4 || !nonce.starts_with(kCookie)) return false;
  std::array<std::uint8_t, 3> features{};
  if (!unbase64(nonce.substr(kCookie.size(), 4), features)) return false;
  return (features[0] & 0x80) != 0;
}

// ---- Credentials ----

std::optional<Keys> Credentials::derive(std::string_view username, std::string_view realm,
                                        std::string_view password) {
  const auto md5 = stun::longTermKeyMd5(username, realm, password);
  const auto sha256 = stun::longTermKeySha256(username, realm, password);
  if (!md5 || !sha256) return std::nullopt;
  return Keys{*md5, *sha256};
}

Credentials::Credentials(std::string realm,
                         const std::vector<std::pair<std::string, std::string>>& users,
                         std::vector<std::string> restSecrets)
    : realm_(std::move(realm)), restSecrets_(std::move(restSecrets)) {
  for (const auto& [username, password] : users) {
    // A password SASLprep rejects can never authenticate; the user is left out.
    if (auto keys = derive(username, realm_, password)) {
      users_[username] = *keys;
      const auto hash = stun::userhash(username, realm_);
      byHash_[std::string(reinterpret_cast<const char*>(hash.data()), hash.size())] = username;
    }
  }
}

const Keys* Credentials::staticUser(const std::string& username) const {
  const auto found = users_.find(username);
  return found == users_.end() ? nullptr : &found->second;
}

const std::string* Credentials::userByHash(std::span<const std::uint8_t> hash) const {
  if (hash.size() != 32) return nullptr;
  const auto found =
      byHash_.find(std::string(reinterpret_cast<const char*>(hash.data()), hash.size()));
  return found == byHash_.end() ? nullptr : &found->second;
}

std::optional<std::int64_t> Credentials::restExpiry(std::string_view username) {
  const std::string_view digits = username.substr(0, username.find(':'));
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  std::int64_t expiry = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), expiry);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return expiry;
}

std::optional<Keys> Credentials::restKeys(std::string_view secret,
                                          std::string_view username) const {
  const auto mac = hmacSha1(asBytes(secret), asBytes(username));
  return derive(username, realm_, base64(mac));
}

// ---- RateLimiter ----

bool RateLimiter::allow(const IpAddress& source, SteadyTime now) {
  if (perSecond_ == 0) return true;
  // FNV-1a, seeded so that an outsider cannot aim collisions at a victim's slot.
  std::uint64_t hash = 0xcbf29ce484222325ULL ^ seed_;
  for (std::uint8_t b : source.bytes()) {
    hash ^= b;
    hash *= 0x100000001b3ULL;
  }
  hash ^= hash >> 29;
  Slot& slot = slots_[hash % kSlots];
  const std::int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (slot.second != second) {
    slot.second = second;
    slot.count = 0;
  }
  if (slot.count >= perSecond_) return false;
  ++slot.count;
  return true;
}

}  // namespace parley::turn::detail
