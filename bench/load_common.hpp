// Helpers shared by the load generators (stun_load, turn_load): clock, fatal errors and
// command-line number parsing. Header-only: each generator is one translation unit.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <errno.h>  // program_invocation_short_name (glibc)
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

}  // namespace parley::bench
