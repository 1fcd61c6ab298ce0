#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <parley/auth/throttle.hpp>

namespace parley::auth {
namespace {

using namespace std::chrono_literals;
using Clock = LoginThrottle::Clock;

const Clock::time_point kStart = Clock::time_point{} + 24h;

void failTimes(LoginThrottle& throttle, int times, std::string_view account, std::string_view ip,
               Clock::time_point now) {
  for (int i = 0; i < times; ++i)
    throttle.recordFailure(account, ip, now);
}

TEST(LoginThrottle, LocksAfterMaxFailures) {
  LoginThrottle throttle;  // 5 failures in 300 s lock for 60 s
  failTimes(throttle, 4, "alice", "192.0.2.1", kStart);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart), 0s);
  throttle.recordFailure("alice", "192.0.2.1", kStart + 1s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 1s), 60s);
}

TEST(LoginThrottle, AttemptsInFlightCountAgainstTheLimit) {
  LoginThrottle throttle;  // 5 failures lock
  failTimes(throttle, 2, "alice", "192.0.2.1", kStart);
  // Concurrent guesses from many addresses: only as many may start as failures are left.
  EXPECT_EQ(throttle.begin("alice", "198.51.100.1", kStart), 0s);
  EXPECT_EQ(throttle.begin("alice", "198.51.100.2", kStart), 0s);
  EXPECT_EQ(throttle.begin("alice", "198.51.100.3", kStart), 0s);
  EXPECT_EQ(throttle.begin("alice", "198.51.100.4", kStart), 1s);  // wait for the verdicts
  throttle.recordFailure("alice", "198.51.100.1", kStart);
  throttle.recordFailure("alice", "198.51.100.2", kStart);
  throttle.recordFailure("alice", "198.51.100.3", kStart);
  EXPECT_EQ(throttle.begin("alice", "198.51.100.4", kStart), 60s);  // now locked
}

TEST(LoginThrottle, CancelledAndSuccessfulAttemptsFreeTheirReservation) {
  ThrottlePolicy policy;
  policy.maxFailures = 1;
  LoginThrottle throttle(policy);
  EXPECT_EQ(throttle.begin("alice", "192.0.2.1", kStart), 0s);
  EXPECT_EQ(throttle.begin("alice", "192.0.2.2", kStart), 1s);
  throttle.cancel("alice", "192.0.2.1");
  EXPECT_EQ(throttle.begin("alice", "192.0.2.2", kStart), 0s);
  throttle.recordSuccess("alice", "192.0.2.2", kStart);
  EXPECT_EQ(throttle.begin("alice", "192.0.2.2", kStart), 0s);
}

TEST(LoginThrottle, RetryAfterCountsDownAndRoundsUp) {
  LoginThrottle throttle;
  failTimes(throttle, 5, "alice", "192.0.2.1", kStart);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 10s), 50s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 59s), 1s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 59s + 500ms), 1s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 60s), 0s);
}

TEST(LoginThrottle, FailuresDuringALockDoNotExtendIt) {
  LoginThrottle throttle;
  failTimes(throttle, 5, "alice", "192.0.2.1", kStart);
  failTimes(throttle, 20, "alice", "192.0.2.1", kStart + 30s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 30s), 30s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 60s), 0s);
}

TEST(LoginThrottle, DoublesEachFurtherLockUpToTheCap) {
  ThrottlePolicy policy;
  policy.maxLockout = 200s;
  LoginThrottle throttle(policy);
  Clock::time_point now = kStart;
  for (const auto expected : {60s, 120s, 200s, 200s}) {
    failTimes(throttle, 5, "alice", "192.0.2.1", now);
    EXPECT_EQ(throttle.check("alice", "192.0.2.1", now), expected);
    now += expected;
    EXPECT_EQ(throttle.check("alice", "192.0.2.1", now), 0s);
  }
}

TEST(LoginThrottle, ForgivesTheLockLevelAfterAQuietPeriod) {
  LoginThrottle throttle;  // quiet period: max(window, maxLockout) = 3600 s
  failTimes(throttle, 5, "alice", "192.0.2.1", kStart);
  const auto lockEnd = kStart + 60s;
  failTimes(throttle, 5, "alice", "192.0.2.1", lockEnd);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", lockEnd), 120s);
  // Quiet for less than the period after the second lock: the third lock doubles again.
  const auto secondEnd = lockEnd + 120s;
  failTimes(throttle, 5, "alice", "192.0.2.1", secondEnd + 3599s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", secondEnd + 3599s), 240s);
  // Quiet for the whole period: back to the first lock's length.
  const auto later = secondEnd + 3599s + 240s + 3600s;
  failTimes(throttle, 5, "alice", "192.0.2.1", later);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", later), 60s);
}

TEST(LoginThrottle, CountsFailuresInASlidingWindow) {
  LoginThrottle throttle;
  failTimes(throttle, 4, "alice", "192.0.2.1", kStart);
  // 300 s later the first four are out of the window.
  throttle.recordFailure("alice", "192.0.2.1", kStart + 300s);
  EXPECT_EQ(throttle.check("alice", "192.0.2.1", kStart + 300s), 0s);
  // Four at 200 s and one at 400 s are five within 300 s, across any fixed window boundary.
  LoginThrottle sliding;
  failTimes(sliding, 4, "bob", "192.0.2.2", kStart + 200s);
  sliding.recordFailure("bob", "192.0.2.2", kStart + 400s);
  EXPECT_EQ(sliding.check("bob", "192.0.2.2", kStart + 400s), 60s);
}

TEST(LoginThrottle, SuccessClearsTheAccountButNotTheIp) {
  LoginThrottle throttle;
  failTimes(throttle, 4, "alice", "192.0.2.1", kStart);
  throttle.recordSuccess("alice", "192.0.2.1", kStart + 1s);
  // Alice's four failures are gone: four more from elsewhere do not lock her.
  failTimes(throttle, 4, "alice", "198.51.100.7", kStart + 2s);
  EXPECT_EQ(throttle.check("alice", "203.0.113.9", kStart + 2s), 0s);
  // The first IP still has its four: one more failure, for anyone, locks it.
  throttle.recordFailure("bob", "192.0.2.1", kStart + 3s);
  EXPECT_EQ(throttle.check("carol", "192.0.2.1", kStart + 3s), 60s);
  EXPECT_EQ(throttle.check("carol", "203.0.113.9", kStart + 3s), 0s);
}

TEST(LoginThrottle, SuccessAlsoLiftsAnAccountLock) {
  LoginThrottle throttle;
  for (int i = 0; i < 5; ++i) {
    throttle.recordFailure("alice", "192.0.2." + std::to_string(i), kStart);
  }
  ASSERT_EQ(throttle.check("alice", "203.0.113.9", kStart), 60s);
  throttle.recordSuccess("alice", "203.0.113.9", kStart + 1s);
  EXPECT_EQ(throttle.check("alice", "203.0.113.9", kStart + 1s), 0s);
}

TEST(LoginThrottle, LocksAnIpThatGuessesManyAccounts) {
  LoginThrottle throttle;
  for (int i = 0; i < 5; ++i) {
    throttle.recordFailure("user" + std::to_string(i), "192.0.2.1", kStart);
  }
  EXPECT_EQ(throttle.check("somebody-else", "192.0.2.1", kStart), 60s);
  EXPECT_EQ(throttle.check("user0", "198.51.100.7", kStart), 0s);  // no account reached 5
}

TEST(LoginThrottle, LocksAnAccountGuessedFromManyIps) {
  LoginThrottle throttle;
  for (int i = 0; i < 5; ++i) {
    throttle.recordFailure("alice", "192.0.2." + std::to_string(i), kStart);
  }
  EXPECT_EQ(throttle.check("alice", "203.0.113.9", kStart), 60s);
  EXPECT_EQ(throttle.check("bob", "192.0.2.0", kStart), 0s);
}

TEST(LoginThrottle, KeepsAccountsAndIpsApart) {
  LoginThrottle throttle;
  // An account named like an IP is a different key from that IP.
  failTimes(throttle, 3, "192.0.2.1", "198.51.100.1", kStart);
  failTimes(throttle, 3, "bob", "192.0.2.1", kStart);
  EXPECT_EQ(throttle.check("192.0.2.1", "192.0.2.1", kStart), 0s);
}

TEST(LoginThrottle, TellsLongKeysApartByEveryByte) {
  // Keys are stored as digests; two megabyte-long names differing in the last byte stay apart.
  LoginThrottle throttle;
  std::string longName(1 << 20, 'x');
  failTimes(throttle, 5, longName, "192.0.2.1", kStart);
  EXPECT_EQ(throttle.check(longName, "198.51.100.1", kStart), 60s);
  longName.back() = 'y';
  EXPECT_EQ(throttle.check(longName, "198.51.100.1", kStart), 0s);
}

TEST(LoginThrottle, ReportsTheLongerOfTwoLocks) {
  ThrottlePolicy policy;
  policy.maxFailures = 1;
  LoginThrottle throttle(policy);
  throttle.recordFailure("alice", "192.0.2.1", kStart);        // both locked 60 s
  throttle.recordFailure("alice", "192.0.2.2", kStart + 60s);  // alice 120 s, .2 60 s
  EXPECT_EQ(throttle.check("alice", "192.0.2.2", kStart + 60s), 120s);
  EXPECT_EQ(throttle.check("bob", "192.0.2.2", kStart + 60s), 60s);
}

TEST(LoginThrottle, BoundsItsMemoryAndEvictsTheOldest) {
  ThrottlePolicy policy;
  policy.maxTracked = 10;
  policy.maxFailures = 1;
  LoginThrottle throttle(policy);
  for (int i = 0; i < 100; ++i) {
    throttle.recordFailure("user" + std::to_string(i), "ip" + std::to_string(i), kStart);
    EXPECT_LE(throttle.trackedKeys(), 10u);
  }
  EXPECT_EQ(throttle.check("user99", "elsewhere", kStart), 60s);  // the newest are kept
  EXPECT_EQ(throttle.check("user0", "elsewhere", kStart), 0s);    // the oldest are gone
}

TEST(LoginThrottle, ForgetsQuietKeys) {
  LoginThrottle throttle;
  failTimes(throttle, 2, "alice", "192.0.2.1", kStart);
  EXPECT_EQ(throttle.trackedKeys(), 2u);
  throttle.recordFailure("bob", "192.0.2.2", kStart + 3600s);
  EXPECT_EQ(throttle.trackedKeys(), 2u);  // alice's keys carried nothing any more
}

TEST(LoginThrottle, RefusesNonsensePolicies) {
  ThrottlePolicy noFailures;
  noFailures.maxFailures = 0;
  EXPECT_THROW(LoginThrottle{noFailures}, std::invalid_argument);
  ThrottlePolicy noWindow;
  noWindow.window = 0s;
  EXPECT_THROW(LoginThrottle{noWindow}, std::invalid_argument);
  ThrottlePolicy capBelowLock;
  capBelowLock.maxLockout = 30s;
  EXPECT_THROW(LoginThrottle{capBelowLock}, std::invalid_argument);
  ThrottlePolicy noRoom;
  noRoom.maxTracked = 0;
  EXPECT_THROW(LoginThrottle{noRoom}, std::invalid_argument);
}

TEST(LoginThrottle, IsSafeToShareBetweenThreads) {
  ThrottlePolicy policy;
  policy.maxFailures = 400;  // reached only if no failure is lost between threads
  LoginThrottle throttle(policy);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&throttle, t] {
      for (int i = 0; i < 100; ++i) {
        throttle.recordFailure("alice", "ip" + std::to_string(t) + "-" + std::to_string(i), kStart);
        (void)throttle.check("alice", "ip", kStart);
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(throttle.check("alice", "fresh", kStart), 60s);
}

TEST(RateLimiter, AllowsABurstThenTheRate) {
  RateLimiter limiter(2.0, 3.0);  // 3 at once, then one every 500 ms
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limiter.allow("192.0.2.1", kStart)) << i;
  EXPECT_FALSE(limiter.allow("192.0.2.1", kStart));
  EXPECT_FALSE(limiter.allow("192.0.2.1", kStart + 499ms));
  EXPECT_TRUE(limiter.allow("192.0.2.1", kStart + 500ms));
  EXPECT_FALSE(limiter.allow("192.0.2.1", kStart + 500ms));
  // A long pause refills to the burst, not beyond.
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limiter.allow("192.0.2.1", kStart + 1h)) << i;
  EXPECT_FALSE(limiter.allow("192.0.2.1", kStart + 1h));
}

TEST(RateLimiter, KeepsKeysApart) {
  RateLimiter limiter(1.0, 1.0);
  EXPECT_TRUE(limiter.allow("a", kStart));
  EXPECT_FALSE(limiter.allow("a", kStart));
  EXPECT_TRUE(limiter.allow("b", kStart));
}

TEST(RateLimiter, HandlesSlowRatesAndTimeGoingBackwards) {
  RateLimiter limiter(1.0 / 60, 1.0);  // one a minute
  EXPECT_TRUE(limiter.allow("a", kStart));
  EXPECT_FALSE(limiter.allow("a", kStart + 59s));
  EXPECT_FALSE(limiter.allow("a", kStart - 10min));  // an earlier `now` refills nothing
  EXPECT_TRUE(limiter.allow("a", kStart + 60s));
}

TEST(RateLimiter, CountsTheBurstInWholeRequests) {
  RateLimiter none(10.0, 0.5);
  EXPECT_FALSE(none.allow("a", kStart));
  EXPECT_FALSE(none.allow("a", kStart + 1h));
  RateLimiter two(1.0, 2.9);
  EXPECT_TRUE(two.allow("a", kStart));
  EXPECT_TRUE(two.allow("a", kStart));
  EXPECT_FALSE(two.allow("a", kStart));
}

TEST(RateLimiter, SurvivesExtremeRates) {
  RateLimiter glacial(1e-300, 1e300);  // intervals clamp instead of overflowing
  EXPECT_TRUE(glacial.allow("a", kStart));
  RateLimiter torrent(1e300, 1.0);
  EXPECT_TRUE(torrent.allow("a", kStart));
  EXPECT_TRUE(torrent.allow("a", kStart + 1ns));
}

TEST(RateLimiter, BoundsItsMemory) {
  RateLimiter limiter(1.0, 1.0, 8);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(limiter.allow("key" + std::to_string(i), kStart));
    EXPECT_LE(limiter.trackedKeys(), 8u);
  }
  EXPECT_FALSE(limiter.allow("key99", kStart));  // recent keys are still tracked
  // Buckets that refilled are dropped as they age out.
  EXPECT_TRUE(limiter.allow("late", kStart + 10s));
  EXPECT_EQ(limiter.trackedKeys(), 1u);
}

TEST(RateLimiter, RefusesNonsenseArguments) {
  EXPECT_THROW(RateLimiter(-1.0, 1.0), std::invalid_argument);
  EXPECT_THROW(RateLimiter(0.0, 1.0), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1.0, -1.0), std::invalid_argument);
  EXPECT_THROW(RateLimiter(std::nan(""), 1.0), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1.0, std::numeric_limits<double>::infinity()), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1.0, 1.0, 0), std::invalid_argument);
}

}  // namespace
}  // namespace parley::auth
