// Abuse limits keyed by strings the caller builds (an account name, a client IP or IPv6 /64, a
// route): login throttling and a generic token bucket. No clock inside: every call takes `now`
// from std::chrono::steady_clock. Memory is bounded by `maxTracked` keys; when full, the key
// touched longest ago is forgotten. Thread-safe: one mutex per object.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

namespace parley::auth {

struct ThrottlePolicy {
  unsigned maxFailures = 5;               // failures within `window` that lock a key
  std::chrono::seconds window{300};       // failures older than this are forgotten
  std::chrono::seconds lockout{60};       // first lock; each further lock doubles it
  std::chrono::seconds maxLockout{3600};  // cap of the doubling
  // A key with no failure and no lock for max(window, maxLockout) is forgotten, lock level too.
  std::size_t maxTracked = 100000;  // account and IP keys together
};

// Login throttling per account AND per client IP (OWASP Authentication Cheat Sheet, "Login
// Throttling"): guessing one account from many IPs locks the account, and one IP guessing many
// accounts locks the IP. While a key is locked every attempt is refused, right password or not.
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  // Throws std::invalid_argument when maxFailures or maxTracked is 0, a duration is not
  // positive, or maxLockout < lockout.
  explicit LoginThrottle(ThrottlePolicy policy = {});
  ~LoginThrottle();
  LoginThrottle(const LoginThrottle&) = delete;
  LoginThrottle& operator=(const LoginThrottle&) = delete;

  // Zero if the attempt may proceed, else how long the longer of the two locks still lasts,
  // rounded up to whole seconds (for Retry-After).
  std::chrono::seconds check(std::string_view account, std::string_view ip, Clock::time_point now);
  // Like check(), and when the attempt may proceed it is reserved against both keys until
  // recordFailure(), recordSuccess() or cancel() settles it: attempts in flight count as
  // failures-to-be, so N concurrent guesses cannot all pass before the first is recorded. When
  // only attempts in flight stand in the way, asks for a retry in 1 s.
  std::chrono::seconds begin(std::string_view account, std::string_view ip, Clock::time_point now);
  // Releases a reservation of begin() that ends without a verdict (an error).
  void cancel(std::string_view account, std::string_view ip);
  // A wrong password (or unknown account): counts against both keys. Ignored for a key that is
  // locked (the caller refuses locked attempts without checking the password).
  void recordFailure(std::string_view account, std::string_view ip, Clock::time_point now);
  // A right password: forgets the account's failures and lock level; the IP's stay, so an
  // attacker cannot reset its IP counter by logging into an account of its own.
  void recordSuccess(std::string_view account, std::string_view ip, Clock::time_point now);

  // Keys currently tracked (for tests and metrics).
  std::size_t trackedKeys() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A token bucket per key: `burst` requests at once (rounded down to whole requests), refilled at
// `ratePerSecond`. A key not seen before starts full; a key forgotten for lack of room starts
// full again.
class RateLimiter {
 public:
  // Throws std::invalid_argument when the rate is not positive, either is not finite, the burst
  // is negative, or maxTracked is 0. A burst below 1 refuses everything.
  RateLimiter(double ratePerSecond, double burst, std::size_t maxTracked = 100000);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // True (and one token taken) when `key` has a token left at `now`.
  bool allow(std::string_view key, std::chrono::steady_clock::time_point now);

  // Keys currently tracked (for tests and metrics).
  std::size_t trackedKeys() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::auth
