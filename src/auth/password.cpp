#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <sodium.h>

#include <parley/auth/password.hpp>

#include "crypto.hpp"

namespace parley::auth {

namespace {

// The encoded form always fits in crypto_pwhash_STRBYTES including its NUL; longer text cannot
// be a hash we wrote, and libsodium reads the string up to a NUL, so one inside is refused too.
bool plausibleEncoding(std::string_view encodedHash) {
  return !encodedHash.empty() && encodedHash.size() < crypto_pwhash_STRBYTES &&
         encodedHash.find('\0') == std::string_view::npos;
}

// A string_view of nothing may hold a null pointer; libsodium gets a valid one either way.
const char* nonNull(std::string_view text) {
  return text.empty() ? "" : text.data();
}

}  // namespace

std::string hashPassword(std::string_view password, const PasswordPolicy& policy) {
  detail::ensureSodium();
  std::array<char, crypto_pwhash_STRBYTES> encoded{};
  if (crypto_pwhash_str_alg(encoded.data(), nonNull(password), password.size(), policy.opsLimit,
                            policy.memLimitBytes, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    // libsodium sets errno: ENOMEM when the memory cannot be had, EINVAL for costs outside
    // Argon2id's limits (opsLimit >= 1, memLimitBytes >= 8 KiB).
    const int error = errno;
    throw std::runtime_error(fmt::format(
        "Argon2id hashing failed (opsLimit {}, memLimitBytes {}): {}", policy.opsLimit,
        policy.memLimitBytes, error == ENOMEM ? "out of memory" : "parameters out of range"));
  }
  return std::string(encoded.data());
}

bool verifyPassword(std::string_view encodedHash, std::string_view password) {
  if (!plausibleEncoding(encodedHash)) return false;
  detail::ensureSodium();
  const std::string terminated(encodedHash);
  // Returns -1 for a wrong password and for anything it cannot decode alike.
  return crypto_pwhash_str_verify(terminated.c_str(), nonNull(password), password.size()) == 0;
}

bool needsRehash(std::string_view encodedHash, const PasswordPolicy& policy) {
  if (!plausibleEncoding(encodedHash)) return true;
  detail::ensureSodium();
  const std::string terminated(encodedHash);
  // The Argon2id-specific check answers -1 for an Argon2i (or any other) hash, so those are
  // upgraded too; 1 means other passes or memory.
  return crypto_pwhash_argon2id_str_needs_rehash(terminated.c_str(), policy.opsLimit,
                                                 policy.memLimitBytes) != 0;
}

std::optional<std::string> checkPasswordPolicy(std::string_view password,
                                               const PasswordPolicy& policy) {
  const auto length = detail::utf8Length(password);
  if (!length) return "The password is not valid UTF-8 text.";
  if (*length < policy.minLength) {
    return fmt::format("The password must be at least {} characters long.", policy.minLength);
  }
  if (*length > policy.maxLength) {
    return fmt::format("The password must be at most {} characters long.", policy.maxLength);
  }
  return std::nullopt;
}

void burnPasswordVerification() {
  burnPasswordVerification(PasswordPolicy{});
}

void burnPasswordVerification(const PasswordPolicy& policy) {
  detail::ensureSodium();
  // Verifying is computing the hash again with the stored parameters and comparing; computing
  // one with the same parameters costs the same. The result is thrown away.
  static const std::array<unsigned char, crypto_pwhash_SALTBYTES> kSalt{};
  static constexpr std::string_view kDummy = "parley-dummy-password";
  std::array<unsigned char, 32> out{};
  if (crypto_pwhash(out.data(), out.size(), kDummy.data(), kDummy.size(), kSalt.data(),
                    policy.opsLimit, policy.memLimitBytes, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return;  // out of memory: the caller answers "invalid credentials" all the same
  }
}

}  // namespace parley::auth
