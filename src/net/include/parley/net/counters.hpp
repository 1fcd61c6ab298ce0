#pragma once

#include <cstdint>

namespace parley::net {

// What the STUN server did with what it received. Summed over workers on read.
struct StunCounters {
  std::uint64_t udpReceived = 0;
  std::uint64_t tcpReceived = 0;         // framed messages
  std::uint64_t responsesSent = 0;       // success and error responses
  std::uint64_t errorResponsesSent = 0;  // 400, 420 ...
  std::uint64_t dropped = 0;             // not STUN, malformed, bad fingerprint, not a request
  std::uint64_t tcpConnectionsAccepted = 0;
  std::uint64_t tcpConnectionsRejected = 0;        // over the connection limit
  std::uint64_t tcpConnectionsClosedForError = 0;  // garbage, oversize
  std::uint64_t tcpConnectionsTimedOut = 0;        // idle / slowloris
};

}  // namespace parley::net
