// STUN, TURN and the probe over a MessageTransport (docs/netcheck.md): what the checks of the
// media path do. Blocking, with deadlines; retransmits on unreliable transports (RFC 8489 §6.2.1
// timing, shortened to fit the check's deadline).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <parley/base/endpoint.hpp>
#include <parley/netclient/transport.hpp>

namespace parley::netclient {

struct BindingOutcome {
  Endpoint mapped;                       // XOR-MAPPED-ADDRESS
  std::optional<Endpoint> otherAddress;  // RFC 5780 OTHER-ADDRESS, when the server has one
  std::chrono::milliseconds rtt{0};
};
Result<BindingOutcome> stunBinding(MessageTransport& transport, Deadline deadline);

// RFC 5780 §4.3 and §4.4 over UDP, from one local socket.
struct NatBehaviour {
  std::string mapping;    // "endpoint-independent", "address-dependent",
                          // "address-and-port-dependent", "no-nat"
  std::string filtering;  // "endpoint-independent", "address-dependent",
                          // "address-and-port-dependent"
};
Result<NatBehaviour> natBehaviour(const Endpoint& server, const Endpoint& otherAddress,
                                  Deadline deadline);

struct TurnCredentials {
  std::string username;
  std::string password;  // the REST credential
};

// One allocation (RFC 8656) over its transport, with one peer bound to a channel.
class TurnAllocation {
 public:
  virtual ~TurnAllocation() = default;
  virtual Endpoint relayed() const = 0;
  virtual Endpoint mapped() const = 0;
  virtual std::string describe() const = 0;  // the transport's description
  // CreatePermission + ChannelBind for `peer`.
  virtual Result<void> bindPeer(const Endpoint& peer, Deadline deadline) = 0;
  // ChannelData to / from the bound peer.
  virtual Result<void> sendToPeer(std::span<const std::uint8_t> data, Deadline deadline) = 0;
  virtual Result<std::size_t> receiveFromPeer(std::span<std::uint8_t> buffer,
                                              Deadline deadline) = 0;
  virtual bool reliable() const = 0;
};
// 401 -> retried with the realm and nonce; a refused credential is Failure{"auth_failed"}.
Result<std::unique_ptr<TurnAllocation>> allocate(std::unique_ptr<MessageTransport> transport,
                                                 const TurnCredentials& credentials,
                                                 Deadline deadline);

// What POST /api/v1/netcheck handed out for the probe peer.
struct ProbeSession {
  std::string ticket;
  std::uint64_t sessionId = 0;
  Endpoint peer;
  std::uint32_t maxKbps = 0;
  std::uint32_t maxSeconds = 0;
  std::uint32_t maxEchoPackets = 0;
};

struct PathQuality {
  double rttMs = 0;     // median
  double jitterMs = 0;  // RFC 3550 interarrival jitter over the replies
  double lossPercent = 0;
  unsigned sent = 0;
  unsigned received = 0;
};
// HELLO, then `count` echoes paced `interval` apart.
Result<PathQuality> measurePath(TurnAllocation& allocation, const ProbeSession& probe,
                                unsigned count, std::chrono::milliseconds interval,
                                Deadline deadline);

struct Bandwidth {
  double offeredKbps = 0;
  double kbps = 0;  // what arrived, over the time it took to arrive
  double lossPercent = 0;
  double seconds = 0;
  std::uint64_t bytes = 0;
};
// Paced UP_DATA at `offeredKbps` for `duration`, then the probe's UP_REPORT.
Result<Bandwidth> measureUp(TurnAllocation& allocation, const ProbeSession& probe,
                            unsigned offeredKbps, std::chrono::milliseconds duration,
                            Deadline deadline);
// DOWN_START, then count DOWN_DATA until DOWN_END or the deadline.
Result<Bandwidth> measureDown(TurnAllocation& allocation, const ProbeSession& probe,
                              unsigned offeredKbps, std::chrono::milliseconds duration,
                              Deadline deadline);

}  // namespace parley::netclient
