// Fuzzes the signaling parser and the meeting state machine behind it.
//
// The whole input is parsed as one client message. Then it is cut at '\n' into messages for a
// Room that holds a host ("h"), an admitted guest ("g") and a guest in the lobby ("w"): line i
// comes from h, g and w in turn (a join re-joins its sender). An empty line drops the socket of
// whoever's turn it is, lets 10 s pass and ticks, so reconnects, grace expiry and the meeting
// reset are reached too. After every step the harness checks what the room produced: each
// message is a JSON object with "v":1 and a type, the counts stay within the limits, and one
// step never produces more messages than the room has people to tell.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <parley/rooms/protocol.hpp>
#include <parley/rooms/room.hpp>

using namespace parley::rooms;

namespace {

constexpr Limits kLimits{3, 2, 4, std::chrono::seconds(25)};

void check(bool condition) {
  if (!condition) std::abort();
}

void checkServerMessage(const std::string& text) {
  const auto message = nlohmann::json::parse(text, nullptr, false);
  check(message.is_object());
  check(message.contains("v") && message["v"] == kProtocolVersion);
  check(message.contains("type") && message["type"].is_string());
}

void checkEffects(const Room& room, Effects& effects) {
  for (const auto& outbound : effects.messages) {
    check(!outbound.to.empty());
    check(outbound.message || outbound.close);
    if (outbound.message) checkServerMessage(*outbound.message);
  }
  // A step tells each of at most maxParticipants + maxLobby people a few things.
  check(effects.messages.size() <= 4 * (kLimits.maxParticipants + kLimits.maxLobby + 1));
  check(room.admittedCount() <= kLimits.maxParticipants);
  check(room.lobbyCount() <= kLimits.maxLobby);
  check(room.chatCount() <= kLimits.chatHistory);
  check(room.connectedCount() <= room.admittedCount() + room.lobbyCount());
  effects.clear();
}

// A parsed message must read back the same after serialisation.
void checkRoundTrip(const ClientMessage& message) {
  const auto again = parseClientMessage(serializeClientMessage(message));
  check(again.has_value());
  check(*again == message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (const auto whole = parseClientMessage(input)) {
    checkRoundTrip(*whole);
    check(!typeName(*whole).empty());
  } else {
    checkServerMessage(errorMessage(whole.error()));
  }

  const Identity people[] = {
      {"h", Role::Host, "Host"}, {"g", Role::Guest, "Guest"}, {"w", Role::Guest, "Waiting"}};
  Room room("room", "Fuzz room", kLimits);
  Effects effects;
  Clock::time_point now{};
  std::int64_t wall = 0;
  room.join(people[0], {}, now, wall, effects);
  room.join(people[1], {}, now, wall, effects);
  room.handle("h", Admit{"g"}, now, wall, effects);
  room.join(people[2], {}, now, wall, effects);
  checkEffects(room, effects);

  std::size_t turn = 0;
  std::size_t start = 0;
  while (start <= input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(start, end - start);
    const Identity& sender = people[turn++ % 3];
    wall += 1000;
    if (line.empty()) {
      room.disconnect(sender.id, now, effects);
      now += std::chrono::seconds(10);
      room.tick(now, effects);
    } else if (auto message = parseClientMessage(line)) {
      if (const auto* join = std::get_if<Join>(&*message)) {
        room.join(sender, *join, now, wall, effects);
      } else {
        room.handle(sender.id, *message, now, wall, effects);
      }
    } else {
      checkServerMessage(errorMessage(message.error()));
    }
    checkEffects(room, effects);
    start = end + 1;
  }
  return 0;
}
