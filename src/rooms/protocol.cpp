#include <array>
#include <cmath>
#include <utility>

#include <nlohmann/json.hpp>

#include <parley/rooms/protocol.hpp>

#include "server_messages.hpp"
#include "text.hpp"

namespace parley::rooms {
namespace {

using nlohmann::json;
using Parsed = tl::expected<ClientMessage, ProtocolError>;

// In the order of the ClientMessage alternatives.
constexpr std::array<std::string_view, std::variant_size_v<ClientMessage>> kTypeNames = {
    "hello",  "join",   "signal", "chat", "media", "admit",
    "reject", "remove", "mute",   "end",  "leave", "ping"};

// An unknown type is echoed in `ref` only when it is this short; the rest is the client's noise.
constexpr std::size_t kMaxEchoedTypeBytes = 32;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

tl::unexpected<ProtocolError> badField(std::string_view type, std::string_view field,
                                       std::string_view requirement) {
  std::string message = "'";
  message += field;
  message += "' ";
  message += requirement;
  return tl::unexpected(ProtocolError{"bad_field", std::move(message), std::string(type)});
}

// The value of `name`, or null when absent; an explicit JSON null counts as absent for the
// optional fields of the protocol.
const json* find(const json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) return nullptr;
  return &*found;
}

tl::expected<std::string, ProtocolError> idField(const json& object, const char* name,
                                                 std::string_view type) {
  const json* value = find(object, name);
  if (value == nullptr || !value->is_string() || value->get_ref<const std::string&>().empty() ||
      value->get_ref<const std::string&>().size() > kMaxIdBytes) {
    return badField(type, name, "must be a participant id (a string of 1 to 128 bytes)");
  }
  return value->get<std::string>();
}

tl::expected<bool, ProtocolError> boolField(const json& object, const char* name,
                                            std::string_view type, std::string_view path,
                                            std::optional<bool> fallback = std::nullopt) {
  const json* value = find(object, name);
  if (value == nullptr && fallback) return *fallback;
  if (value == nullptr || !value->is_boolean()) return badField(type, path, "must be a boolean");
  return value->get<bool>();
}

Parsed parseHello(const json& object) {
  const json* token = find(object, "token");
  if (token == nullptr || !token->is_string() || token->get_ref<const std::string&>().empty() ||
      token->get_ref<const std::string&>().size() > kMaxTokenBytes) {
    return badField("hello", "token", "must be an invitation token (a non-empty string)");
  }
  const json* name = find(object, "name");
  std::optional<std::string> display;
  if (name != nullptr && name->is_string()) {
    display = text::displayName(name->get_ref<const std::string&>(), false);
  }
  if (!display) {
    return badField("hello", "name", "must be 1 to 60 characters without control characters");
  }
  return Hello{token->get<std::string>(), std::move(*display)};
}

Parsed parseJoin(const json& object) {
  Join join;
  if (const json* name = find(object, "name")) {
    std::optional<std::string> display;
    if (name->is_string()) display = text::displayName(name->get_ref<const std::string&>(), true);
    if (!display) {
      return badField("join", "name", "must be at most 60 characters without control characters");
    }
    join.name = std::move(*display);
  }
  if (const json* media = find(object, "media")) {
    if (!media->is_object()) return badField("join", "media", "must be an object");
    // docs/api.md lists audio and video; screen sharing starts later, so it may be left out.
    const auto audio = boolField(*media, "audio", "join", "media.audio");
    if (!audio) return tl::unexpected(audio.error());
    const auto video = boolField(*media, "video", "join", "media.video");
    if (!video) return tl::unexpected(video.error());
    const auto screen = boolField(*media, "screen", "join", "media.screen", false);
    if (!screen) return tl::unexpected(screen.error());
    join.media = MediaState{*audio, *video, *screen};
  }
  return join;
}

Parsed parseSignal(const json& object) {
  auto to = idField(object, "to", "signal");
  if (!to) return tl::unexpected(to.error());
  const json* data = find(object, "data");
  if (data == nullptr || !data->is_object()) return badField("signal", "data", "must be an object");
  return Signal{std::move(*to), messages::serialize(*data)};
}

Parsed parseChat(const json& object) {
  const json* value = find(object, "text");
  std::optional<std::string> chat;
  if (value != nullptr && value->is_string()) {
    chat = text::chatText(value->get_ref<const std::string&>());
  }
  if (!chat) {
    return badField("chat", "text",
                    "must be 1 to 2000 characters without control characters other than tab "
                    "and line breaks");
  }
  return Chat{std::move(*chat)};
}

Parsed parseMedia(const json& object) {
  const auto audio = boolField(object, "audio", "media", "audio");
  if (!audio) return tl::unexpected(audio.error());
  const auto video = boolField(object, "video", "media", "video");
  if (!video) return tl::unexpected(video.error());
  const auto screen = boolField(object, "screen", "media", "screen");
  if (!screen) return tl::unexpected(screen.error());
  return Media{MediaState{*audio, *video, *screen}};
}

template <class Message>
Parsed parseTargeted(const json& object, std::string_view type) {
  auto id = idField(object, "id", type);
  if (!id) return tl::unexpected(id.error());
  return Message{std::move(*id)};
}

Parsed parseMute(const json& object) {
  auto id = idField(object, "id", "mute");
  if (!id) return tl::unexpected(id.error());
  const json* kind = find(object, "kind");
  if (kind == nullptr || !kind->is_string() || kind->get_ref<const std::string&>() != "audio") {
    return badField("mute", "kind", "must be \"audio\"");
  }
  return Mute{std::move(*id), "audio"};
}

Parsed parsePing(const json& object) {
  Ping ping;
  if (const json* t = find(object, "t")) {
    // Echoed back in pong: it must survive serialisation, and inf/nan would turn into null.
    if (!t->is_number() || !std::isfinite(t->get<double>())) {
      return badField("ping", "t", "must be a finite number");
    }
    ping.t = t->get<double>();
  }
  return ping;
}

Parsed parseBody(std::size_t typeIndex, const json& object) {
  switch (typeIndex) {
    case 0:
      return parseHello(object);
    case 1:
      return parseJoin(object);
    case 2:
      return parseSignal(object);
    case 3:
      return parseChat(object);
    case 4:
      return parseMedia(object);
    case 5:
      return parseTargeted<Admit>(object, "admit");
    case 6:
      return parseTargeted<Reject>(object, "reject");
    case 7:
      return parseTargeted<Remove>(object, "remove");
    case 8:
      return parseMute(object);
    case 9:
      return End{};
    case 10:
      return Leave{};
    default:
      return parsePing(object);
  }
}

json mediaJson(const MediaState& state) {
  return json{{"audio", state.audio}, {"video", state.video}, {"screen", state.screen}};
}

}  // namespace

std::string_view roleName(Role role) {
  return role == Role::Host ? "host" : "guest";
}

tl::expected<ClientMessage, ProtocolError> parseClientMessage(std::string_view text) {
  if (!text::jsonNestingWithin(text, kMaxNestingDepth)) {
    return tl::unexpected(
        ProtocolError{"bad_json", "the message is nested deeper than 32 levels", ""});
  }
  // No exceptions: invalid JSON, including ill-formed UTF-8 and unpaired surrogate escapes
  // (RFC 8259 §8.1), comes back as a discarded value.
  const json message = json::parse(text.begin(), text.end(), nullptr, false);
  if (message.is_discarded()) {
    return tl::unexpected(ProtocolError{"bad_json", "the message is not valid JSON", ""});
  }
  if (!message.is_object()) {
    return tl::unexpected(ProtocolError{"bad_json", "the message must be a JSON object", ""});
  }
  const json* type = find(message, "type");
  std::string ref;
  if (type != nullptr && type->is_string() &&
      type->get_ref<const std::string&>().size() <= kMaxEchoedTypeBytes) {
    ref = type->get<std::string>();
  }
  // The version first: a newer client's message is answered as such, whatever its type.
  const json* version = find(message, "v");
  if (version == nullptr || !version->is_number_integer() || *version != kProtocolVersion) {
    return tl::unexpected(ProtocolError{"bad_version", "'v' must be 1", std::move(ref)});
  }
  if (type == nullptr || !type->is_string()) {
    return tl::unexpected(ProtocolError{"bad_field", "'type' must be a string", ""});
  }
  const auto& typeText = type->get_ref<const std::string&>();
  for (std::size_t index = 0; index < kTypeNames.size(); ++index) {
    if (typeText == kTypeNames[index]) return parseBody(index, message);
  }
  return tl::unexpected(ProtocolError{"unknown_type", "unknown message type", std::move(ref)});
}

std::string typeName(const ClientMessage& message) {
  if (message.valueless_by_exception()) return {};
  return std::string(kTypeNames[message.index()]);
}

std::string serializeClientMessage(const ClientMessage& message) {
  json object{{"v", kProtocolVersion}, {"type", typeName(message)}};
  std::visit(Overloaded{
                 [&](const Hello& hello) {
                   object["token"] = hello.token;
                   object["name"] = hello.name;
                 },
                 [&](const Join& join) {
                   if (!join.name.empty()) object["name"] = join.name;
                   if (join.media) object["media"] = mediaJson(*join.media);
                 },
                 [&](const Signal& signal) {
                   object["to"] = signal.to;
                   json data = messages::signalData(signal.dataJson);
                   object["data"] = data.is_discarded() ? json::object() : std::move(data);
                 },
                 [&](const Chat& chat) { object["text"] = chat.text; },
                 [&](const Media& media) { object.update(mediaJson(media.state)); },
                 [&](const Admit& admit) { object["id"] = admit.id; },
                 [&](const Reject& reject) { object["id"] = reject.id; },
                 [&](const Remove& remove) { object["id"] = remove.id; },
                 [&](const Mute& mute) {
                   object["id"] = mute.id;
                   object["kind"] = mute.kind;
                 },
                 [&](const End&) {},
                 [&](const Leave&) {},
                 [&](const Ping& ping) {
                   if (ping.t) object["t"] = *ping.t;
                 },
             },
             message);
  return messages::serialize(object);
}

std::string errorMessage(const ProtocolError& error) {
  return messages::error(error);
}

std::string pongMessage(std::optional<double> t) {
  return messages::pong(t);
}

std::string shutdownMessage(int retryAfterMs) {
  return messages::shutdown(retryAfterMs);
}

}  // namespace parley::rooms
