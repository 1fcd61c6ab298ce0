// The deployment's token key on disk (server.data_dir/token-key).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace parley::auth {

// Reads the raw key in `file` (32 to 4096 bytes), or, when the file does not exist, creates it
// with 32 random bytes and mode 0600: written to a temporary file in the same directory, synced,
// then renamed into place without replacing a file another process created meanwhile (whose key
// is then returned). The directory must exist. Throws std::runtime_error naming the path.
std::vector<std::uint8_t> loadOrCreateKey(const std::filesystem::path& file);

}  // namespace parley::auth
