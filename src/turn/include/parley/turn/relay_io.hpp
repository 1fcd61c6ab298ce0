// What the TURN state machine asks of the server layer: sockets and sending. The state
// machine never blocks and never owns a socket; a test implements this with vectors.
#pragma once

#include <cstdint>
#include <optional>

#include <tl/expected.hpp>

#include <parley/turn/types.hpp>

namespace parley::turn {

struct RelayRequest {
  AddressFamily family = AddressFamily::V4;
  bool evenPort = false;     // EVEN-PORT
  bool reserveNext = false;  // EVEN-PORT with the R bit: keep port+1 for a later allocation
  std::optional<std::uint64_t> reservationToken;  // RESERVATION-TOKEN: use that reserved port
};

struct OpenedRelay {
  RelayId id = 0;
  Endpoint advertised;  // XOR-RELAYED-ADDRESS: the public address when behind 1:1 NAT
  std::optional<std::uint64_t> reservationToken;  // when reserveNext was asked
};

class RelayIo {
 public:
  virtual ~RelayIo() = default;
  // Opens a relay socket. Errors are STUN error codes: 508 no port free, 440 the family has
  // no relay address, 400 unknown or expired reservation token.
  virtual tl::expected<OpenedRelay, int> openRelay(const RelayRequest& request) = 0;
  virtual void closeRelay(RelayId relay) = 0;
  // Sends one datagram from the relay socket to a peer. Must not keep `payload`.
  virtual void sendToPeer(RelayId relay, const Endpoint& peer, Bytes payload,
                          bool dontFragment) = 0;
  // Sends a STUN message or ChannelData frame to a client. Must not keep `message`.
  virtual void sendToClient(const FiveTuple& client, Bytes message) = 0;
};

}  // namespace parley::turn
