// The browser client's files, held in memory: loaded once at start-up, with content type,
// a strong ETag and a precomputed gzip form. Requests are only ever answered from this map,
// never from the file system, so no request path can reach a file outside it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace parley::web {

struct StaticAsset {
  std::string contentType;
  std::string body;
  std::string etag;      // strong ETag with quotes: "\"<hash>\"" (RFC 9110 §8.8.3)
  std::string gzipBody;  // empty when gzip would not be smaller
  std::string gzipEtag;  // the gzip form is another representation, so another ETag
};

class StaticFiles {
 public:
  StaticFiles() = default;  // no files

  // Walks `directory` recursively; dotfiles and dot-directories are skipped, the rest is
  // keyed by "/relative/path". Throws std::runtime_error naming the path when the directory
  // or a file cannot be read. Start-up code.
  static StaticFiles load(const std::filesystem::path& directory);
  // From path ("/index.html") -> content; for tests and the fuzz target.
  static StaticFiles fromMemory(const std::map<std::string, std::string>& files);

  // The asset at decoded request path `path`, or nullptr.
  const StaticAsset* find(std::string_view path) const;
  std::size_t size() const { return assets_.size(); }
  std::size_t totalBytes() const;

 private:
  void add(std::string path, std::string content);

  std::map<std::string, StaticAsset, std::less<>> assets_;
};

// The Content-Type for a file name by its extension; application/octet-stream when unknown.
std::string_view contentTypeFor(std::string_view fileName);

}  // namespace parley::web
