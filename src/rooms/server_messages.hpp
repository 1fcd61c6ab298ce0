// Every server -> client message of the signaling protocol is built here, and only here
// (docs/api.md, "Server -> client"), each with "v":1 and serialised by nlohmann so that names
// and chat text are always escaped correctly.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <parley/rooms/protocol.hpp>

namespace parley::rooms::messages {

// Compact text; invalid UTF-8 (only possible in strings built in code, the parser refuses it)
// is replaced by U+FFFD instead of throwing.
std::string serialize(const nlohmann::json& message);

// Signal::dataJson as a value to relay: a discarded value unless it is a JSON object within
// kMaxNestingDepth (the parser guarantees both; a Signal built in code may not).
nlohmann::json signalData(std::string_view dataJson);

nlohmann::json participantJson(const Participant& participant);
nlohmann::json chatJson(const ChatMessage& message);

struct Welcome {
  const Participant& you;
  std::string_view roomId;
  std::string_view roomName;
  std::vector<Participant> participants;          // the others admitted
  std::optional<std::vector<Participant>> lobby;  // hosts only
  const std::deque<ChatMessage>& chat;
  bool resumed = false;
};
std::string welcome(const Welcome& welcome);
std::string lobby(const Participant& you, std::string_view roomId, std::string_view roomName);
std::string participantJoined(const Participant& participant);
std::string participantLeft(std::string_view id, std::string_view reason);
std::string participantUpdated(const Participant& participant);
std::string lobbyUpdate(const std::vector<Participant>& lobby);
std::string signal(std::string_view from, nlohmann::json data);
std::string chat(const ChatMessage& message);
std::string muted(std::string_view kind, std::string_view by);
std::string rejected();
std::string removed();
std::string ended(std::string_view by);
std::string error(const ProtocolError& error);
std::string pong(std::optional<double> t);
std::string shutdown(int retryAfterMs);

}  // namespace parley::rooms::messages
