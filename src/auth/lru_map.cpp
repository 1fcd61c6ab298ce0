#include "lru_map.hpp"

#include <sodium.h>

#include "crypto.hpp"

namespace parley::auth::detail {

KeyDigester::KeyDigester() {
  ensureSodium();
  randombytes_buf(secret_.data(), secret_.size());
}

KeyDigest KeyDigester::operator()(char domain, std::string_view key) const {
  static_assert(std::tuple_size_v<KeyDigest> >= crypto_generichash_BYTES_MIN);
  crypto_generichash_state state;
  crypto_generichash_init(&state, secret_.data(), secret_.size(), sizeof(KeyDigest));
  const auto domainByte = static_cast<unsigned char>(domain);
  crypto_generichash_update(&state, &domainByte, 1);
  crypto_generichash_update(&state, asBytes(key).data(), key.size());
  KeyDigest digest{};
  crypto_generichash_final(&state, digest.data(), digest.size());
  return digest;
}

}  // namespace parley::auth::detail
