// The TURN REST secret `parley serve` generates when none is configured, kept in
// DATA_DIR/turn-secret so restarts (and the web platform, later) use the same one.
#include <array>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.hpp"

namespace parley::app {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kMinSecretChars = 16;  // as config's turn.secrets

[[noreturn]] void fail(const std::string& what, const fs::path& path, int error) {
  throw std::runtime_error(what + " " + path.string() + ": " +
                           std::generic_category().message(error));
}

std::string base64(const std::uint8_t* data, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < size; i += 3) {
    const std::uint32_t chunk = (std::uint32_t{data[i]} << 16) |
                                (i + 1 < size ? std::uint32_t{data[i + 1]} << 8 : 0) |
                                (i + 2 < size ? std::uint32_t{data[i + 2]} : 0);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

std::string randomSecret() {
  std::array<std::uint8_t, kSecretBytes> bytes{};
  for (std::size_t filled = 0; filled < bytes.size();) {
    const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    filled += static_cast<std::size_t>(n);
  }
  return base64(bytes.data(), bytes.size());
}

// The secret in `path`, or nullopt when there is no such file.
std::optional<std::string> readSecret(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    fail("cannot read", path, errno);
  }
  std::string secret;
  char buffer[512];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      fail("cannot read", path, error);
    }
    secret.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' ||
                             secret.back() == ' ' || secret.back() == '\t')) {
    secret.pop_back();
  }
  if (secret.size() < kMinSecretChars || secret.find('\n') != std::string::npos) {
    throw std::runtime_error(path.string() +
                             ": not a usable TURN secret (expected one line of at least 16 "
                             "characters); delete it to generate a new one");
  }
  return secret;
}

void writeAll(int fd, const std::string& text, const fs::path& path) {
  for (std::size_t written = 0; written < text.size();) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", path, errno);
    }
    written += static_cast<std::size_t>(n);
  }
}

// Writes a new secret to a private temporary file and links it into place: link() fails if
// the name exists, so a concurrent start never replaces a secret another one already uses.
bool createSecret(const fs::path& dataDir, const fs::path& path) {
  const fs::path temporary = dataDir / (".turn-secret." + std::to_string(::getpid()) + ".tmp");
  ::unlink(temporary.c_str());  // a leftover of a crashed start with the same pid
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create", temporary, errno);
  try {
    if (::fchmod(fd, 0600) != 0) fail("cannot chmod", temporary, errno);
    writeAll(fd, randomSecret() + "\n", temporary);
    if (::fsync(fd) != 0) fail("cannot write", temporary, errno);
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  ::close(fd);
  const int linked = ::link(temporary.c_str(), path.c_str());
  const int error = errno;
  ::unlink(temporary.c_str());
  if (linked != 0) {
    if (error == EEXIST) return false;  // another start won the race: use its secret
    fail("cannot create", path, error);
  }
  if (const int dir = ::open(dataDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return true;
}

}  // namespace

TurnSecretFile loadOrCreateTurnSecret(const fs::path& dataDir) {
  std::error_code error;
  if (fs::create_directories(dataDir, error)) {
    // Generated state includes private keys: only the owner may look inside.
    fs::permissions(dataDir, fs::perms::owner_all, fs::perm_options::replace, error);
  }
  if (error) fail("cannot create data directory", dataDir, error.value());

  TurnSecretFile result;
  result.path = dataDir / "turn-secret";
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (auto secret = readSecret(result.path)) {
      result.secret = std::move(*secret);
      struct stat status {};
      if (::stat(result.path.c_str(), &status) == 0) {
        result.widePermissions = (status.st_mode & 077) != 0;
      }
      return result;
    }
    if (createSecret(dataDir, result.path)) {
      result.created = true;
      result.secret = *readSecret(result.path);
      return result;
    }
  }
  throw std::runtime_error("cannot create " + result.path.string());
}

}  // namespace parley::app
