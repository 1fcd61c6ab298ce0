// Advisor passwords: Argon2id hashes (RFC 9106) through libsodium, and the length policy.
// The encoded hash "$argon2id$v=19$m=KIB,t=PASSES,p=1$SALT$HASH" carries its own parameters, so
// stored hashes keep verifying after the policy changes; needsRehash() tells the login handler
// when to re-hash with the current policy.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace parley::auth {

struct PasswordPolicy {
  // Argon2id passes; 2 is libsodium's crypto_pwhash_OPSLIMIT_INTERACTIVE (minimum 1).
  unsigned long long opsLimit = 2;
  // Argon2id memory in bytes (stored in KiB); 64 MiB is crypto_pwhash_MEMLIMIT_INTERACTIVE
  // (minimum 8 KiB). Each concurrent login costs this much memory for ~0.1 s.
  std::size_t memLimitBytes = 64 * 1024 * 1024;
  // Lengths in Unicode code points. NIST SP 800-63B §5.1.1.2: at least 8 characters, every
  // printable character and space allowed, no composition rules; the maximum only bounds work.
  std::size_t minLength = 8;
  std::size_t maxLength = 1024;
};

// Argon2id hash of `password` with the policy's cost and a random 16-byte salt. Throws
// std::runtime_error when libsodium refuses (out of memory, or a cost below its minimum).
std::string hashPassword(std::string_view password, const PasswordPolicy& policy = {});

// True when `password` matches `encodedHash` (Argon2id or Argon2i, any parameters). False for a
// wrong password and for a malformed hash; never throws.
bool verifyPassword(std::string_view encodedHash, std::string_view password);

// True when `encodedHash` is not an Argon2id hash with exactly the policy's passes and memory
// (including when it is malformed): the caller re-hashes after a successful login.
bool needsRehash(std::string_view encodedHash, const PasswordPolicy& policy = {});

// A message for the user when `password` does not meet the policy (too short, too long, not
// UTF-8), or nullopt when it does.
std::optional<std::string> checkPasswordPolicy(std::string_view password,
                                               const PasswordPolicy& policy = {});

// Spends what one verification with default-policy parameters costs, so that a login for an
// unknown username takes as long as one with a wrong password (no username enumeration by timing).
void burnPasswordVerification();
// The same for hashes made with `policy`: call it with the policy the deployment hashes with.
void burnPasswordVerification(const PasswordPolicy& policy);

}  // namespace parley::auth
