#include <algorithm>
#include <cmath>

#include <parley/web/rate_limiter.hpp>

namespace parley::web {

RateLimiter::RateLimiter(double ratePerSecond, double burst, std::size_t maxTracked)
    : rate_(std::max(ratePerSecond, 1e-9)),
      burst_(std::max(burst, 1.0)),
      maxTracked_(std::max<std::size_t>(maxTracked, 1)) {}

std::size_t RateLimiter::KeyHash::operator()(const Key& key) const {
  // FNV-1a: the key is already an address; this only spreads it over the buckets.
  std::uint64_t hash = 1469598103934665603ULL;
  for (const std::uint8_t byte : key) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  }
  return static_cast<std::size_t>(hash);
}

RateLimiter::Key RateLimiter::keyOf(const IpAddress& address) {
  Key key{};
  const auto bytes = address.bytes();
  key[0] = address.isV4() ? 4 : 6;
  const std::size_t take = address.isV4() ? 4 : 8;  // IPv6: the /64 prefix
  std::copy_n(bytes.begin(), take, key.begin() + 1);
  return key;
}

void RateLimiter::forgetRefilled(Clock::time_point now) {
  std::erase_if(buckets_, [&](const auto& entry) {
    const double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
    return entry.second.tokens + elapsed * rate_ >= burst_;
  });
}

bool RateLimiter::allow(const IpAddress& address, Clock::time_point now) {
  const Key key = keyOf(address);
  std::lock_guard lock(mutex_);
  auto found = buckets_.find(key);
  if (found == buckets_.end()) {
    if (buckets_.size() >= maxTracked_) {
      forgetRefilled(now);
      if (buckets_.size() >= maxTracked_) return true;
    }
    buckets_.emplace(key, Bucket{burst_ - 1, now});
    return true;
  }
  Bucket& bucket = found->second;
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - bucket.updated).count());
  bucket.tokens = std::min(burst_, bucket.tokens + elapsed * rate_);
  bucket.updated = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

unsigned RateLimiter::retryAfterSeconds() const {
  return static_cast<unsigned>(std::clamp(std::ceil(1.0 / rate_), 1.0, 3600.0));
}

std::size_t RateLimiter::tracked() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace parley::web
