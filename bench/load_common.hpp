// Helpers shared by the load generators (stun_load, turn_load): clock, fatal errors,
// command-line parsing and a latency histogram. Header-only: each generator is one translation
// unit.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <errno.h>  // program_invocation_short_name (glibc)
#include <netinet/in.h>
#include <time.h>

namespace parley::bench {

inline std::uint64_t nowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Usage and set-up errors: "<program>: message", exit status 2.
[[noreturn]] inline void die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  std::exit(2);
}

template <typename T>
T parseNumber(std::string_view name, std::string_view text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    die("bad value for " + std::string(name) + ": " + std::string(text));
  }
  return value;
}

inline double parseDouble(std::string_view name, std::string_view text) {
  // strtod rather than from_chars<double>: the same on every libstdc++ the project builds with.
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end == copy.c_str() || *end != '\0' || !std::isfinite(value)) {
    die("bad value for " + std::string(name) + ": " + copy);
  }
  return value;
}

// "IPv4:PORT" of --server; exits with a usage error otherwise.
inline sockaddr_in parseServer(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) die("--server needs IP:PORT");
  const std::string host = text.substr(0, colon);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(parseNumber<std::uint16_t>("--server port", text.substr(colon + 1)));
  if (::inet_pton(AF_INET, host.c_str(), &server.sin_addr) != 1) {
    die("--server needs an IPv4 address: " + host);
  }
  return server;
}

// Log-linear histogram of nanosecond values: 32 sub-buckets per power of two, i.e. a
// quantile is reported within about 3%, with constant memory for any run length.
class Histogram {
 public:
  void add(std::uint64_t value) {
    ++counts_[bucketOf(value)];
    ++total_;
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return upperBound(i);
    }
    return upperBound(counts_.size() - 1);
  }
  double quantileUs(double q) const { return static_cast<double>(quantile(q)) / 1000.0; }

 private:
  static constexpr int kSubBits = 5;
  static constexpr std::size_t kSub = std::size_t{1} << kSubBits;

  static std::size_t bucketOf(std::uint64_t value) {
    if (value < kSub) return static_cast<std::size_t>(value);
    const int msb = 63 - __builtin_clzll(value);
    const int shift = msb - kSubBits;
    const auto sub = static_cast<std::size_t>((value >> shift) & (kSub - 1));
    return static_cast<std::size_t>(shift + 1) * kSub + sub;
  }
  static std::uint64_t upperBound(std::size_t bucket) {
    if (bucket < kSub) return bucket;
    const std::size_t shift = bucket / kSub - 1;
    const std::uint64_t sub = bucket % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }

  std::array<std::uint64_t, 64 * kSub> counts_{};
  std::uint64_t total_ = 0;
};

}  // namespace parley::bench
