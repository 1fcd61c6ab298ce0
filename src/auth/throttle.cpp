#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <parley/auth/throttle.hpp>

#include "lru_map.hpp"

namespace parley::auth {

namespace {

using Clock = std::chrono::steady_clock;

// Accounts and IPs share one table; the domain keeps an account named like an IP apart from it.
constexpr char kAccount = 'a';
constexpr char kIp = 'i';
constexpr char kRateKey = 'r';

}  // namespace

// ---- LoginThrottle ----

struct LoginThrottle::Impl {
  struct Entry {
    std::vector<Clock::time_point> failures;  // inside the window, oldest first, < maxFailures
    Clock::time_point lastFailure{};
    Clock::time_point lockedUntil{};  // the clock's epoch: never locked
    unsigned locks = 0;               // locks so far: the next lasts lockout * 2^locks
    unsigned pending = 0;             // attempts begun and not yet recorded
  };

  explicit Impl(const ThrottlePolicy& policy_)
      : policy(policy_),
        quietPeriod(std::max(policy_.window, policy_.maxLockout)),
        entries(policy_.maxTracked) {}

  // An entry with no lock and nothing for `quietPeriod` since its last failure or lock end is
  // no different from none: its failures left the window and its lock level is forgiven.
  bool forgettable(const Entry& entry, Clock::time_point now) const {
    return now >= std::max(entry.lastFailure, entry.lockedUntil) + quietPeriod;
  }

  Clock::duration remainingLock(const detail::KeyDigest& key, Clock::time_point now) {
    const Entry* entry = entries.find(key);
    if (entry == nullptr || now >= entry->lockedUntil) return Clock::duration::zero();
    return entry->lockedUntil - now;
  }

  std::chrono::seconds lockDuration(unsigned locksSoFar) const {
    std::chrono::seconds duration = policy.lockout;
    for (unsigned i = 0; i < locksSoFar && duration < policy.maxLockout; ++i)
      duration *= 2;
    return std::min(duration, policy.maxLockout);
  }

  void fail(const detail::KeyDigest& key, Clock::time_point now) {
    bool inserted = false;
    Entry& entry = entries.touch(key, Entry{}, inserted);
    settle(entry);
    if (!inserted && forgettable(entry, now)) {
      const unsigned pending = entry.pending;
      entry = Entry{};
      entry.pending = pending;
    }
    if (now < entry.lockedUntil) return;  // refused anyway; counting would extend nothing

    const auto windowStart = now - policy.window;
    std::erase_if(entry.failures, [&](Clock::time_point at) { return at <= windowStart; });
    entry.failures.push_back(now);
    entry.lastFailure = std::max(entry.lastFailure, now);
    if (entry.failures.size() >= policy.maxFailures) {
      entry.lockedUntil = now + lockDuration(entry.locks);
      ++entry.locks;
      entry.failures.clear();  // after the lock, a fresh count of maxFailures
    }
  }

  static void settle(Entry& entry) {
    if (entry.pending > 0) --entry.pending;
  }

  // Whether failures in the window plus attempts in flight leave room for one more attempt:
  // concurrent guesses must not all pass the check before the first failure is recorded.
  bool roomFor(const detail::KeyDigest& key, Clock::time_point now) {
    const Entry* entry = entries.find(key);
    if (entry == nullptr || (entry->pending == 0 && forgettable(*entry, now))) return true;
    const auto windowStart = now - policy.window;
    const auto recent = std::count_if(entry->failures.begin(), entry->failures.end(),
                                      [&](Clock::time_point at) { return at > windowStart; });
    return static_cast<std::size_t>(recent) + entry->pending < policy.maxFailures;
  }

  void reserve(const detail::KeyDigest& key) {
    bool inserted = false;
    ++entries.touch(key, Entry{}, inserted).pending;
  }

  void release(const detail::KeyDigest& key) {
    bool inserted = false;
    settle(entries.touch(key, Entry{}, inserted));
  }

  ThrottlePolicy policy;
  std::chrono::seconds quietPeriod;
  detail::KeyDigester digest;
  std::mutex mutex;
  detail::LruMap<Entry> entries;
};

LoginThrottle::LoginThrottle(ThrottlePolicy policy) {
  using std::chrono::seconds;
  if (policy.maxFailures == 0 || policy.maxTracked == 0 || policy.window <= seconds::zero() ||
      policy.lockout <= seconds::zero() || policy.maxLockout < policy.lockout) {
    throw std::invalid_argument(
        "login throttle: maxFailures and maxTracked must be positive, window and lockout "
        "positive, and maxLockout at least lockout");
  }
  impl_ = std::make_unique<Impl>(policy);
}

LoginThrottle::~LoginThrottle() = default;

std::chrono::seconds LoginThrottle::check(std::string_view account, std::string_view ip,
                                          Clock::time_point now) {
  // Digests need no lock: the digester does not change after construction.
  const auto accountKey = impl_->digest(kAccount, account);
  const auto ipKey = impl_->digest(kIp, ip);
  const std::lock_guard lock(impl_->mutex);
  const auto wait =
      std::max(impl_->remainingLock(accountKey, now), impl_->remainingLock(ipKey, now));
  // Rounded up: Retry-After 0 would invite an immediate retry that is still refused.
  return std::chrono::ceil<std::chrono::seconds>(wait);
}

void LoginThrottle::recordFailure(std::string_view account, std::string_view ip,
                                  Clock::time_point now) {
  const auto accountKey = impl_->digest(kAccount, account);
  const auto ipKey = impl_->digest(kIp, ip);
  const std::lock_guard lock(impl_->mutex);
  impl_->entries.forgetStale(
      [&](const Impl::Entry& entry) { return entry.pending == 0 && impl_->forgettable(entry, now); });
  impl_->fail(accountKey, now);
  impl_->fail(ipKey, now);
}

std::chrono::seconds LoginThrottle::begin(std::string_view account, std::string_view ip,
                                          Clock::time_point now) {
  const auto accountKey = impl_->digest(kAccount, account);
  const auto ipKey = impl_->digest(kIp, ip);
  const std::lock_guard lock(impl_->mutex);
  const auto wait =
      std::max(impl_->remainingLock(accountKey, now), impl_->remainingLock(ipKey, now));
  if (wait > Clock::duration::zero()) return std::chrono::ceil<std::chrono::seconds>(wait);
  // Other attempts in flight could still lock the key: ask for a retry once they are decided.
  if (!impl_->roomFor(accountKey, now) || !impl_->roomFor(ipKey, now)) {
    return std::chrono::seconds(1);
  }
  impl_->reserve(accountKey);
  impl_->reserve(ipKey);
  return std::chrono::seconds::zero();
}

void LoginThrottle::cancel(std::string_view account, std::string_view ip) {
  const auto accountKey = impl_->digest(kAccount, account);
  const auto ipKey = impl_->digest(kIp, ip);
  const std::lock_guard lock(impl_->mutex);
  impl_->release(accountKey);
  impl_->release(ipKey);
}

void LoginThrottle::recordSuccess(std::string_view account, std::string_view ip,
                                  Clock::time_point /*now*/) {
  const auto accountKey = impl_->digest(kAccount, account);
  const auto ipKey = impl_->digest(kIp, ip);
  const std::lock_guard lock(impl_->mutex);
  impl_->entries.erase(accountKey);
  if (impl_->entries.find(ipKey) != nullptr) impl_->release(ipKey);
}

std::size_t LoginThrottle::trackedKeys() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->entries.size();
}

// ---- RateLimiter ----

// The token bucket as the generic cell rate algorithm (ITU-T I.371, GCRA): each key stores only
// the theoretical arrival time of its next request, in integer clock ticks, so refills are exact
// (no floating-point drift) and an entry whose time has passed is a full bucket.
struct RateLimiter::Impl {
  Impl(Clock::duration interval_, Clock::duration tolerance_, bool refuseAll_,
       std::size_t maxTracked)
      : interval(interval_), tolerance(tolerance_), refuseAll(refuseAll_), arrivals(maxTracked) {}

  Clock::duration interval;   // 1 / rate
  Clock::duration tolerance;  // (burst - 1) * interval: how far ahead of the rate a key may run
  bool refuseAll;             // burst < 1
  detail::KeyDigester digest;
  std::mutex mutex;
  detail::LruMap<Clock::time_point> arrivals;  // key -> theoretical arrival time
};

RateLimiter::RateLimiter(double ratePerSecond, double burst, std::size_t maxTracked) {
  if (!std::isfinite(ratePerSecond) || ratePerSecond <= 0 || !std::isfinite(burst) || burst < 0 ||
      maxTracked == 0) {
    throw std::invalid_argument(
        "rate limiter: the rate must be positive and finite, the burst finite and not "
        "negative, maxTracked positive");
  }
  // Bounded so that arithmetic on time points cannot overflow: a century is "never" here.
  const double kLongest = std::chrono::duration<double>(std::chrono::hours(24 * 365 * 100)).count();
  const auto ticks = [&](double seconds) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(std::min(seconds, kLongest)));
  };
  const double wholeBurst = std::floor(burst);
  impl_ = std::make_unique<Impl>(ticks(1.0 / ratePerSecond),
                                 ticks(std::max(0.0, wholeBurst - 1) / ratePerSecond),
                                 wholeBurst < 1, maxTracked);
}

RateLimiter::~RateLimiter() = default;

bool RateLimiter::allow(std::string_view key, std::chrono::steady_clock::time_point now) {
  if (impl_->refuseAll) return false;
  const auto digest = impl_->digest(kRateKey, key);
  const std::lock_guard lock(impl_->mutex);
  // A key whose arrival time has passed has a full bucket, just like a key never seen.
  impl_->arrivals.forgetStale([&](Clock::time_point arrival) { return arrival <= now; });
  bool inserted = false;
  Clock::time_point& arrival = impl_->arrivals.touch(digest, now, inserted);
  if (now < arrival - impl_->tolerance) return false;
  arrival = std::max(arrival, now) + impl_->interval;
  return true;
}

std::size_t RateLimiter::trackedKeys() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->arrivals.size();
}

}  // namespace parley::auth
