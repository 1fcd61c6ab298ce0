#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include <openssl/evp.h>
#include <zlib.h>

#include <parley/base/log.hpp>
#include <parley/web/static_files.hpp>

namespace parley::web {

namespace {

// The client is a few hundred kilobytes; these only stop a wrong clientDir (say, "/") from
// pulling a disk into memory.
constexpr std::uintmax_t kMaxFileBytes = 64ULL * 1024 * 1024;
constexpr std::size_t kMaxTotalBytes = 256ULL * 1024 * 1024;

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A strong validator: the first 128 bits of SHA-256 of the bytes, so equal content gives
// equal ETags across restarts and servers.
std::string etagOf(std::string_view content, std::string_view suffix) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(content.data(), content.size(), digest.data(), &length, EVP_sha256(), nullptr) !=
      1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string etag = "\"";
  for (unsigned int i = 0; i < 16 && i < length; ++i) {
    etag += kHex[digest[i] >> 4];
    etag += kHex[digest[i] & 0xF];
  }
  etag += suffix;
  etag += '"';
  return etag;
}

// gzip (RFC 1952) at the best compression; done once at load, so the level costs nothing later.
std::string gzip(std::string_view input) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("zlib deflateInit2 failed");
  }
  std::string output(deflateBound(&stream, static_cast<uLong>(input.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(output.data());
  stream.avail_out = static_cast<uInt>(output.size());
  const int result = deflate(&stream, Z_FINISH);
  output.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) throw std::runtime_error("zlib deflate failed");
  return output;
}

bool isDotName(const std::filesystem::path& name) {
  const std::string text = name.filename().string();
  return !text.empty() && text.front() == '.';
}

}  // namespace

std::string_view contentTypeFor(std::string_view fileName) {
  const auto dot = fileName.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  const std::string extension = lowercase(fileName.substr(dot + 1));
  struct Type {
    std::string_view extension;
    std::string_view type;
  };
  // RFC 9239 makes text/javascript the one type for JavaScript, modules included.
  static constexpr Type kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"ico", "image/x-icon"},
      {"json", "application/json; charset=utf-8"},
      {"webmanifest", "application/manifest+json"},
      {"woff2", "font/woff2"},
      {"txt", "text/plain; charset=utf-8"},
      {"map", "application/json; charset=utf-8"},
  };
  for (const Type& type : kTypes) {
    if (type.extension == extension) return type.type;
  }
  return "application/octet-stream";
}

void StaticFiles::add(std::string path, std::string content) {
  StaticAsset asset;
  asset.contentType = std::string(contentTypeFor(path));
  asset.etag = etagOf(content, "");
  std::string compressed = gzip(content);
  if (compressed.size() < content.size()) {
    asset.gzipBody = std::move(compressed);
    asset.gzipEtag = etagOf(content, "-gzip");
  }
  asset.body = std::move(content);
  assets_.insert_or_assign(std::move(path), std::move(asset));
}

StaticFiles StaticFiles::load(const std::filesystem::path& directory) {
  namespace fs = std::filesystem;
  StaticFiles files;
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    throw std::runtime_error("client directory " + directory.string() + " is not a directory");
  }
  std::size_t total = 0;
  fs::recursive_directory_iterator it(directory, fs::directory_options::none, error);
  if (error) {
    throw std::runtime_error("cannot read client directory " + directory.string() + ": " +
                             error.message());
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    const fs::directory_entry& entry = *it;
    if (isDotName(entry.path())) {
      // Dotfiles (.git, .env, editor swap files) are never part of the client.
      if (entry.is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (!entry.is_regular_file(error)) continue;
    const fs::path& path = entry.path();
    const std::uintmax_t size = entry.file_size(error);
    if (error || size > kMaxFileBytes || total + size > kMaxTotalBytes) {
      throw std::runtime_error("client file " + path.string() + " is unreadable or too large");
    }
    std::ifstream in(path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      throw std::runtime_error("cannot read client file " + path.string());
    }
    total += content.size();
    files.add("/" + fs::relative(path, directory).generic_string(), std::move(content));
  }
  if (error) {
    throw std::runtime_error("cannot read client directory " + directory.string() + ": " +
                             error.message());
  }
  log::get("web")->info("loaded {} client files ({} bytes) from {}", files.size(), total,
                        directory.string());
  return files;
}

StaticFiles StaticFiles::fromMemory(const std::map<std::string, std::string>& files) {
  StaticFiles result;
  for (const auto& [path, content] : files)
    result.add(path, content);
  return result;
}

const StaticAsset* StaticFiles::find(std::string_view path) const {
  const auto found = assets_.find(path);
  return found == assets_.end() ? nullptr : &found->second;
}

std::size_t StaticFiles::totalBytes() const {
  std::size_t total = 0;
  for (const auto& [path, asset] : assets_)
    total += asset.body.size();
  return total;
}

}  // namespace parley::web
