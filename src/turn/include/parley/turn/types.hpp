// Values shared by the TURN state machine and the server layer that drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

#include <parley/base/endpoint.hpp>

namespace parley::turn {

using Bytes = std::span<const std::uint8_t>;

enum class Transport : std::uint8_t { Udp, Tcp, Tls, Dtls };
// Stream transports carry ChannelData padded to 4 bytes (RFC 8656 §12.5).
constexpr bool isStream(Transport t) {
  return t == Transport::Tcp || t == Transport::Tls;
}

// RFC 8656 §2: client address, server address and transport identify an allocation.
struct FiveTuple {
  Endpoint client;
  Endpoint server;
  Transport transport = Transport::Udp;
  friend bool operator==(const FiveTuple&, const FiveTuple&) = default;
};

struct FiveTupleHash {
  std::size_t operator()(const FiveTuple& tuple) const noexcept;
};

// Time is injected: `steady` drives lifetimes, `wall` checks REST usernames (unix expiry).
struct Now {
  std::chrono::steady_clock::time_point steady;
  std::chrono::system_clock::time_point wall;
};

// Identifies a relay socket owned by the server layer.
using RelayId = std::uint32_t;

}  // namespace parley::turn
