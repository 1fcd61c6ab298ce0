// Request rate per client address: one token bucket per IPv4 address or IPv6 /64 (a single
// IPv6 host usually owns a whole /64, so counting addresses would let it rotate freely), in a
// table of bounded size. Thread-safe; time is passed in so tests are exact.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <parley/base/endpoint.hpp>

namespace parley::web {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `ratePerSecond` tokens flow in per second up to `burst`; each request takes one. At most
  // `maxTracked` addresses are tracked: when the table is full, buckets that have refilled
  // are forgotten, and if none has, a new address goes untracked (allowed) rather than
  // pushing out the addresses being limited.
  RateLimiter(double ratePerSecond, double burst, std::size_t maxTracked = 100'000);

  // Takes a token for `address` at `now`; false when its bucket is empty.
  bool allow(const IpAddress& address, Clock::time_point now);
  // Seconds until an empty bucket has a token again (1 to 3600), for Retry-After.
  unsigned retryAfterSeconds() const;
  std::size_t tracked() const;

 private:
  using Key = std::array<std::uint8_t, 9>;  // family tag + IPv4 address or IPv6 /64
  struct KeyHash {
    std::size_t operator()(const Key& key) const;
  };
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  static Key keyOf(const IpAddress& address);
  void forgetRefilled(Clock::time_point now);

  const double rate_;
  const double burst_;
  const std::size_t maxTracked_;
  mutable std::mutex mutex_;
  std::unordered_map<Key, Bucket, KeyHash> buckets_;
};

}  // namespace parley::web
