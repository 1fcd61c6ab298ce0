// The signaling wire format, version 1 (docs/api.md, "Signaling"): client messages parsed from
// untrusted WebSocket text, and the server messages the hub sends outside a Room. Every
// server message carries "v":1. Parsing never throws: bad input is a ProtocolError, which the
// hub sends back as an `error` message while the socket stays open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <tl/expected.hpp>

namespace parley::rooms {

inline constexpr int kProtocolVersion = 1;

// Field limits. Names match the REST API's guest names (POST /api/v1/join: 1-60 chars); chat
// text is 1-2000 characters (Unicode code points) after trimming.
inline constexpr std::size_t kMaxNameChars = 60;
inline constexpr std::size_t kMaxChatChars = 2000;
inline constexpr std::size_t kMaxIdBytes = 128;
inline constexpr std::size_t kMaxTokenBytes = 4096;
// Deeper JSON is refused before it is parsed: SDP and ICE candidates need 3 levels, and
// serialising and destroying nested values recurses, so an attacker's "[[[[..." must not
// reach them.
inline constexpr int kMaxNestingDepth = 32;

enum class Role { Host, Guest };
std::string_view roleName(Role role);  // "host", "guest"

struct MediaState {
  bool audio = false;
  bool video = false;
  bool screen = false;
  friend bool operator==(const MediaState&, const MediaState&) = default;
};

// Participant as sent on the wire: {"id","name","role","audio","video","screen","connected"}.
struct Participant {
  std::string id;
  std::string name;
  Role role = Role::Guest;
  MediaState media;
  bool connected = true;
  friend bool operator==(const Participant&, const Participant&) = default;
};

// ChatMessage as sent on the wire: {"seq","from","name","text","at"}; `at` is Unix ms.
struct ChatMessage {
  std::uint64_t seq = 0;
  std::string from;
  std::string name;
  std::string text;
  std::int64_t at = 0;
  friend bool operator==(const ChatMessage&, const ChatMessage&) = default;
};

// --- client -> server ----------------------------------------------------------------------

struct Hello {
  std::string token;  // invitation token (never logged)
  std::string name;   // trimmed, 1-60 chars, no control characters
  friend bool operator==(const Hello&, const Hello&) = default;
};
struct Join {
  std::string name;  // trimmed, 0-60 chars; empty: keep the name the identity carries
  std::optional<MediaState> media;
  friend bool operator==(const Join&, const Join&) = default;
};
struct Signal {
  std::string to;
  std::string dataJson;  // `data` re-serialised compactly; always a JSON object
  friend bool operator==(const Signal&, const Signal&) = default;
};
struct Chat {
  std::string text;  // trimmed, 1-2000 chars, no control characters but tab and line breaks
  friend bool operator==(const Chat&, const Chat&) = default;
};
struct Media {
  MediaState state;
  friend bool operator==(const Media&, const Media&) = default;
};
struct Admit {
  std::string id;
  friend bool operator==(const Admit&, const Admit&) = default;
};
struct Reject {
  std::string id;
  friend bool operator==(const Reject&, const Reject&) = default;
};
struct Remove {
  std::string id;
  friend bool operator==(const Remove&, const Remove&) = default;
};
struct Mute {
  std::string id;
  std::string kind;  // "audio"
  friend bool operator==(const Mute&, const Mute&) = default;
};
struct End {
  friend bool operator==(const End&, const End&) = default;
};
struct Leave {
  friend bool operator==(const Leave&, const Leave&) = default;
};
struct Ping {
  std::optional<double> t;  // finite when present
  friend bool operator==(const Ping&, const Ping&) = default;
};

using ClientMessage =
    std::variant<Hello, Join, Signal, Chat, Media, Admit, Reject, Remove, Mute, End, Leave, Ping>;

// Error codes: "bad_json" (not JSON, not an object, nested deeper than kMaxNestingDepth),
// "bad_version" ("v" missing or not 1), "unknown_type", "bad_field" (missing, wrong type or out
// of range; the message names the field). Room adds "bad_state", "forbidden", "not_admitted",
// "unknown_participant", "room_full". `ref` is the type of the offending message when known.
struct ProtocolError {
  std::string code;
  std::string message;
  std::string ref;
  friend bool operator==(const ProtocolError&, const ProtocolError&) = default;
};

// One text frame from a client. Fields the message type does not define are ignored (a newer
// client may add some without a version bump); strings are trimmed where documented above.
tl::expected<ClientMessage, ProtocolError> parseClientMessage(std::string_view text);

// The wire "type" of a message: "hello", "join", "signal", ...
std::string typeName(const ClientMessage& message);

// The client side of the wire format: what parseClientMessage reads back as `message`. For
// non-browser clients (load test) and round-trip tests.
std::string serializeClientMessage(const ClientMessage& message);

// --- server -> client, built outside a Room --------------------------------------------------

std::string errorMessage(const ProtocolError& error);  // {"v":1,"type":"error",...}
std::string pongMessage(std::optional<double> t);      // echoes t when given
std::string shutdownMessage(int retryAfterMs);

// WebSocket close codes (RFC 6455 §7.4.1 for 1001 and 1009; 4000-4999 are ours, §7.4.2).
enum class CloseCode : std::uint16_t {
  GoingAway = 1001,
  TooBig = 1009,
  Replaced = 4000,
  Removed = 4001,
  Ended = 4002,
  Rejected = 4003,
  TooSlow = 4008,
  NotAuthenticated = 4401,
  Forbidden = 4403,
  RoomFull = 4409,
};

}  // namespace parley::rooms
