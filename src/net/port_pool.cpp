#include "port_pool.hpp"
#include <stdexcept>

namespace parley::net {

PortPool::PortPool(std::uint16_t first, std::uint16_t last)
    : first_(first), last_(last), taken_(static_cast<std::size_t>(last - first) + 1, false) {
  if (first == 0 || first > last) throw std::invalid_argument("bad relay port range");
}

std::optional<std::uint16_t> PortPool::take(bool even) {
  std::lock_guard lock(mutex_);
  const std::size_t size = taken_.size();
  const std::size_t start = std::uniform_int_distribution<std::size_t>(0, size - 1)(random_);
  for (std::size_t step = 0; step < size; ++step) {
    const std::size_t index = (start + step) % size;
    const auto port = static_cast<std::uint16_t>(first_ + index);
    if (taken_[index] || (even && port % 2 != 0)) continue;
    taken_[index] = true;
    ++inUse_;
    return port;
  }
  return std::nullopt;
}

bool PortPool::takeExactly(std::uint16_t port) {
  std::lock_guard lock(mutex_);
  if (port < first_ || port > last_ || taken_[port - first_]) return false;
  taken_[port - first_] = true;
  ++inUse_;
  return true;
}

void PortPool::give(std::uint16_t port) {
  std::lock_guard lock(mutex_);
  if (port < first_ || port > last_ || !taken_[port - first_]) return;
  taken_[port - first_] = false;
  --inUse_;
}

std::uint64_t PortPool::reserve(std::uint16_t port, std::chrono::steady_clock::time_point expiry) {
  std::lock_guard lock(mutex_);
  std::uint64_t token = 0;
  do {
    token = random_();
  } while (token == 0 || reservations_.contains(token));
  reservations_.emplace(token, Reservation{port, expiry});
  return token;
}

std::optional<std::uint16_t> PortPool::claim(std::uint64_t token) {
  std::lock_guard lock(mutex_);
  const auto found = reservations_.find(token);
  if (found == reservations_.end()) return std::nullopt;
  const std::uint16_t port = found->second.port;
  reservations_.erase(found);
  return port;
}

void PortPool::expireReservations(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    if (it->second.expiry <= now) {
      const std::size_t index = it->second.port - first_;
      if (taken_[index]) {
        taken_[index] = false;
        --inUse_;
      }
      it = reservations_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t PortPool::inUse() const {
  std::lock_guard lock(mutex_);
  return inUse_;
}

}  // namespace parley::net
