// The STUN Binding service (RFC 8489 §6.3, RFC 5780, RFC 3489 compatibility) as a pure
// function of a received request: no sockets. The server layer sends what it returns.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <parley/base/endpoint.hpp>
#include <parley/stun/message.hpp>

namespace parley::stun {

enum class Transport : std::uint8_t { Udp, Tcp };

struct BindingContext {
  Endpoint source;  // where the request came from
  Endpoint local;   // the address:port it arrived on
  Transport transport = Transport::Udp;
  // RFC 5780: the other address:port of this server (OTHER-ADDRESS), when it has one.
  std::optional<Endpoint> otherAddress;
  std::string_view software;  // SOFTWARE attribute; empty sends none
};

// Which of the server's sockets must send the response (RFC 5780 CHANGE-REQUEST).
enum class ReplyFrom : std::uint8_t { Same, ChangedPort, ChangedIp, ChangedIpAndPort };

enum class Outcome : std::uint8_t {
  Respond,       // send `response` from `replyFrom`
  RespondError,  // an error response is in `response` (same socket)
  Drop,          // nothing to send; `dropReason` says why
};

enum class DropReason : std::uint8_t {
  None,
  Malformed,       // not a STUN message
  BadFingerprint,  // FINGERPRINT present and wrong (RFC 8489 §7.3)
  NotARequest,     // indications and responses need no answer here
  BufferTooSmall,  // the caller's buffer cannot hold the response
};

struct BindingResult {
  Outcome outcome = Outcome::Drop;
  Bytes response;
  ReplyFrom replyFrom = ReplyFrom::Same;
  DropReason dropReason = DropReason::None;
  // RFC 5780 §7.5 RESPONSE-PORT: send to this port of the client's IP instead (UDP only).
  std::optional<std::uint16_t> responsePort;
};

// Answers `request` into `out`. Binding requests get XOR-MAPPED-ADDRESS (MAPPED-ADDRESS,
// SOURCE-ADDRESS, CHANGED-ADDRESS for RFC 3489 clients), RESPONSE-ORIGIN, OTHER-ADDRESS,
// SOFTWARE and FINGERPRINT. RFC 5780 RESPONSE-PORT and PADDING are honoured. Unknown
// comprehension-required attributes get 420 with UNKNOWN-ATTRIBUTES; other methods get 400.
// `out` should hold at least 548 bytes, more for PADDING.
inline constexpr std::size_t kMaxPadding = 2048;
BindingResult answerBinding(Bytes request, const BindingContext& context,
                            std::span<std::uint8_t> out);

// A quick pre-filter for the packet path: could these bytes be a STUN message?
// (first two bits zero, length a multiple of 4 that matches, at least a header).
bool looksLikeStun(Bytes bytes);

}  // namespace parley::stun
