// The TURN server state machine (RFC 8656, RFC 8489 long-term credentials, RFC 8656 REST
// credentials): allocations, permissions, channels and their lifetimes. No sockets, no clock:
// the server layer feeds it what arrives, calls expire() about once a second, and carries out
// what it asks through RelayIo. One instance per worker thread; not thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <parley/turn/peer_filter.hpp>
#include <parley/turn/relay_io.hpp>
#include <parley/turn/types.hpp>

namespace parley::turn {

struct Options {
  std::string realm = "parley";
  std::string software;  // SOFTWARE in responses; empty sends none
  // Long-term credentials: username -> password.
  std::vector<std::pair<std::string, std::string>> users;
  // TURN REST API secrets (username "expiry:user", password base64(HMAC-SHA1(secret, username)));
  // every listed secret is accepted, so secrets can be rotated.
  std::vector<std::string> restSecrets;
  std::chrono::seconds nonceLifetime{600};
  std::chrono::seconds defaultLifetime{600};  // RFC 8656 §3.2
  std::chrono::seconds maxLifetime{3600};
  std::chrono::seconds permissionLifetime{300};  // RFC 8656 §9
  std::chrono::seconds channelLifetime{600};     // RFC 8656 §12
  std::size_t maxAllocationsPerUser =
      50;  // a browser takes one per ICE server URL and PeerConnection
  std::size_t maxPermissionsPerAllocation = 64;  // each also bounds channels
  // Token bucket per allocation, bytes/s both ways together; 0 = unlimited.
  std::uint64_t bandwidthPerAllocation = 2'500'000;  // 20 Mbit/s
  // Token bucket over all allocations of this instance (the server layer gives each worker
  // its share of the configured total), bytes/s; 0 = unlimited.
  std::uint64_t bandwidthTotal = 0;
  std::optional<IpAddress> otherAddress;  // unused for TURN, kept for Binding answers
  // 401 answers per second per source address (a flood of unauthenticated requests gets few
  // answers and costs no memory: the limiter is a fixed-size table).
  unsigned unauthenticatedPerSecond = 10;
};

// Shared by all workers of a process: quotas that span workers.
class SharedState {
 public:
  explicit SharedState(std::size_t maxAllocationsTotal, std::array<std::uint8_t, 32> nonceKey);
  // Reserve one allocation for `username`; false when the user or the total is at its quota.
  bool acquireAllocation(const std::string& username, std::size_t perUserLimit);
  void releaseAllocation(const std::string& username);
  std::size_t allocations() const { return total_.load(std::memory_order_relaxed); }
  const std::array<std::uint8_t, 32>& nonceKey() const { return nonceKey_; }

 private:
  const std::size_t maxTotal_;
  const std::array<std::uint8_t, 32> nonceKey_;
  std::atomic<std::size_t> total_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> perUser_;
};

// Counters with bounded cardinality (no per-user labels). Single writer, read by anyone.
struct Counters {
  std::uint64_t allocationsCreated = 0;
  std::uint64_t allocationsExpired = 0;  // lifetime ran out
  std::uint64_t allocationsDeleted = 0;  // refresh 0 or transport closed
  std::uint64_t allocationsActive = 0;
  std::uint64_t permissionsCreated = 0;
  std::uint64_t channelsBound = 0;
  std::uint64_t packetsToPeer = 0;
  std::uint64_t bytesToPeer = 0;
  std::uint64_t packetsToClient = 0;
  std::uint64_t bytesToClient = 0;
  std::uint64_t authFailures = 0;         // 401 after a MESSAGE-INTEGRITY, 441
  std::uint64_t staleNonces = 0;          // 438
  std::uint64_t forbiddenPeers = 0;       // 403 and dropped Send/ChannelData to a denied peer
  std::uint64_t quotaRejections = 0;      // 486 and 508
  std::uint64_t droppedNoPermission = 0;  // data without a permission or channel
  std::uint64_t droppedBandwidth = 0;     // over the allocation's token bucket
  std::uint64_t droppedMalformed = 0;
  std::uint64_t unauthenticatedRateLimited = 0;
};

class Server {
 public:
  Server(const Options& options, SharedState& shared, const PeerFilter& filter, RelayIo& io);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A STUN message (Binding or a TURN method) or a ChannelData frame from a client.
  void onClientBytes(const FiveTuple& client, Bytes bytes, const Now& now);
  // A datagram that arrived on a relay socket from `peer`.
  void onPeerBytes(RelayId relay, const Endpoint& peer, Bytes payload, const Now& now);
  // A stream transport closed: its allocation goes (RFC 8656 §3.1).
  void onClientClosed(const FiveTuple& client, const Now& now);
  // Expires allocations, permissions and channels. Call about once a second.
  void expire(const Now& now);

  // Replaces Options::users and Options::restSecrets (SIGHUP reload). Existing allocations
  // keep their cached keys until they expire.
  void setCredentials(std::vector<std::pair<std::string, std::string>> users,
                      std::vector<std::string> restSecrets);

  const Counters& counters() const;
  std::size_t allocationCount() const;
  // Whether the stream from `client` may carry ChannelData yet (some channel is bound).
  bool hasChannels(const FiveTuple& client) const;
  // Whether `client` has an allocation (its stream then lives as long as the allocation).
  bool hasAllocation(const FiveTuple& client) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::turn
