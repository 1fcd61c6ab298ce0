#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/auth/encoding.hpp>
#include <parley/auth/key_file.hpp>
#include <parley/auth/token.hpp>
#include <parley/base/log.hpp>

#include "crypto.hpp"

namespace parley::auth {

namespace {

constexpr std::size_t kNewKeyBytes = 32;
constexpr std::size_t kMaxKeyBytes = 4096;  // a raw key; anything larger is the wrong file

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  // Closes now and reports whether the close succeeded (a failed close can mean lost data).
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::filesystem::path& file, std::string_view what, int error) {
  throw std::runtime_error(
      fmt::format("token key file {}: {}: {}", file.string(), what, std::strerror(error)));
}

// The key in `file`, or nullopt when there is no such file.
std::optional<std::vector<std::uint8_t>> readKey(const std::filesystem::path& file) {
  FileDescriptor fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    fail(file, "cannot open", errno);
  }
  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) fail(file, "cannot stat", errno);
  if (!S_ISREG(status.st_mode)) {
    throw std::runtime_error(fmt::format("token key file {} is not a regular file", file.string()));
  }
  if (static_cast<std::size_t>(status.st_size) > kMaxKeyBytes) {
    throw std::runtime_error(fmt::format("token key file {} has {} bytes; at most {} expected",
                                         file.string(), status.st_size, kMaxKeyBytes));
  }
  if ((status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    log::get("auth")->warn("token key file {} is accessible to group or others; chmod 600 it",
                           file.string());
  }
  std::vector<std::uint8_t> key(kMaxKeyBytes + 1);
  std::size_t size = 0;
  while (size < key.size()) {
    const ssize_t got = ::read(fd.get(), key.data() + size, key.size() - size);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(file, "cannot read", errno);
    }
    if (got == 0) break;
    size += static_cast<std::size_t>(got);
  }
  if (size < TokenSigner::kMinKeyBytes || size > kMaxKeyBytes) {
    throw std::runtime_error(
        fmt::format("token key file {} has {} bytes; a key needs {} to {} (delete the file to "
                    "have a new key made, which invalidates every link issued so far)",
                    file.string(), size, TokenSigner::kMinKeyBytes, kMaxKeyBytes));
  }
  key.resize(size);
  return key;
}

void writeAll(int fd, std::span<const std::uint8_t> bytes, const std::filesystem::path& file) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t put = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (put < 0) {
      if (errno == EINTR) continue;
      fail(file, "cannot write", errno);
    }
    written += static_cast<std::size_t>(put);
  }
}

// Makes the rename itself durable; best effort, the key is already usable without it.
void syncDirectory(const std::filesystem::path& directory) {
  FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) (void)::fsync(fd.get());
}

}  // namespace

std::vector<std::uint8_t> loadOrCreateKey(const std::filesystem::path& file) {
  if (auto existing = readKey(file)) return std::move(*existing);

  detail::ensureSodium();
  std::vector<std::uint8_t> key(kNewKeyBytes);
  randombytes_buf(key.data(), key.size());

  const std::filesystem::path directory =
      file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  // A name of our own in the same directory (rename only is atomic within one file system).
  std::array<std::uint8_t, 9> suffix{};
  randombytes_buf(suffix.data(), suffix.size());
  const std::filesystem::path temporary =
      directory / fmt::format(".{}.{}.tmp", file.filename().string(), base64UrlEncode(suffix));

  FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) fail(file, fmt::format("cannot create {}", temporary.string()), errno);
  try {
    writeAll(fd.get(), key, temporary);
    if (::fsync(fd.get()) != 0) fail(temporary, "cannot sync", errno);
    if (!fd.close()) fail(temporary, "cannot close", errno);
    // RENAME_NOREPLACE: if another process created the key meanwhile, keep and use theirs, so
    // both sign with the same key. File systems without it get a plain rename.
    if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, file.c_str(), RENAME_NOREPLACE) != 0) {
      const int error = errno;
      if (error == EEXIST) {
        ::unlink(temporary.c_str());
        sodium_memzero(key.data(), key.size());
        if (auto theirs = readKey(file)) return std::move(*theirs);
        fail(file, "vanished while being created", ENOENT);
      }
      if ((error != EINVAL && error != ENOSYS) || ::rename(temporary.c_str(), file.c_str()) != 0) {
        fail(file, fmt::format("cannot rename {} to it", temporary.string()), errno);
      }
    }
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  syncDirectory(directory);
  log::get("auth")->info("created a new token key in {}", file.string());
  return key;
}

}  // namespace parley::auth
