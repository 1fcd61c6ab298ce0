#include <parley/turn/server.hpp>

namespace parley::turn {

std::size_t FiveTupleHash::operator()(const FiveTuple& tuple) const noexcept {
  // FNV-1a over both endpoints and the transport.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  const auto mix = [&hash](std::uint8_t b) {
    hash ^= b;
    hash *= 0x100000001b3ULL;
  };
  for (const Endpoint* endpoint : {&tuple.client, &tuple.server}) {
    for (std::uint8_t b : endpoint->address.bytes())
      mix(b);
    mix(static_cast<std::uint8_t>(endpoint->port >> 8));
    mix(static_cast<std::uint8_t>(endpoint->port));
  }
  mix(static_cast<std::uint8_t>(tuple.transport));
  return static_cast<std::size_t>(hash);
}

SharedState::SharedState(std::size_t maxAllocationsTotal, std::array<std::uint8_t, 32> nonceKey)
    : maxTotal_(maxAllocationsTotal), nonceKey_(nonceKey) {}

bool SharedState::acquireAllocation(const std::string& username, std::size_t perUserLimit) {
  std::lock_guard lock(mutex_);
  if (total_.load(std::memory_order_relaxed) >= maxTotal_) return false;
  std::size_t& count = perUser_[username];
  if (count >= perUserLimit) {
    if (count == 0) perUser_.erase(username);
    return false;
  }
  ++count;
  total_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void SharedState::releaseAllocation(const std::string& username) {
  std::lock_guard lock(mutex_);
  const auto found = perUser_.find(username);
  if (found == perUser_.end()) return;
  if (--found->second == 0) perUser_.erase(found);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace parley::turn
