// The relay port range, shared by all workers of a process: which ports our relay sockets
// hold, and which are reserved by an EVEN-PORT R-bit allocation (RFC 8656 §14.6) for a later
// Allocate with the RESERVATION-TOKEN. Allocations are rare events, so a mutex is fine.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

namespace parley::net {

class PortPool {
 public:
  PortPool(std::uint16_t first, std::uint16_t last);

  // A free port, starting at a random place (ports are not predictable). `even` asks for an
  // even port. nullopt when the range is exhausted.
  std::optional<std::uint16_t> take(bool even);
  // Takes exactly `port` if it is free.
  bool takeExactly(std::uint16_t port);
  void give(std::uint16_t port);

  // Keeps `port` (already taken) for `lifetime` under a new random token.
  std::uint64_t reserve(std::uint16_t port, std::chrono::steady_clock::time_point expiry);
  // The reserved port for `token`, which stays taken and now belongs to the caller.
  std::optional<std::uint16_t> claim(std::uint64_t token);
  // Gives back reservations that expired.
  void expireReservations(std::chrono::steady_clock::time_point now);

  std::size_t inUse() const;

 private:
  struct Reservation {
    std::uint16_t port;
    std::chrono::steady_clock::time_point expiry;
  };
  const std::uint16_t first_;
  const std::uint16_t last_;
  mutable std::mutex mutex_;
  std::vector<bool> taken_;
  std::size_t inUse_ = 0;
  std::mt19937_64 random_{std::random_device{}()};
  std::unordered_map<std::uint64_t, Reservation> reservations_;
};

}  // namespace parley::net
