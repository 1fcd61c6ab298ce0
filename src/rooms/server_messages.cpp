#include "server_messages.hpp"
#include <cmath>
#include <utility>

#include "text.hpp"

namespace parley::rooms::messages {
namespace {

using nlohmann::json;

json envelope(std::string_view type) {
  return json{{"v", kProtocolVersion}, {"type", type}};
}

json participantList(const std::vector<Participant>& participants) {
  json list = json::array();
  for (const auto& participant : participants)
    list.push_back(participantJson(participant));
  return list;
}

}  // namespace

std::string serialize(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

json signalData(std::string_view dataJson) {
  if (!text::jsonNestingWithin(dataJson, kMaxNestingDepth)) return json(json::value_t::discarded);
  json data = json::parse(dataJson.begin(), dataJson.end(), nullptr, false);
  if (!data.is_object()) return json(json::value_t::discarded);
  return data;
}

json participantJson(const Participant& participant) {
  return json{{"id", participant.id},
              {"name", participant.name},
              {"role", roleName(participant.role)},
              {"audio", participant.media.audio},
              {"video", participant.media.video},
              {"screen", participant.media.screen},
              {"connected", participant.connected}};
}

json chatJson(const ChatMessage& message) {
  return json{{"seq", message.seq},
              {"from", message.from},
              {"name", message.name},
              {"text", message.text},
              {"at", message.at}};
}

std::string welcome(const Welcome& welcome) {
  json message = envelope("welcome");
  message["you"] = participantJson(welcome.you);
  message["room"] = json{{"id", welcome.roomId}, {"name", welcome.roomName}};
  message["participants"] = participantList(welcome.participants);
  if (welcome.lobby) message["lobby"] = participantList(*welcome.lobby);
  json chat = json::array();
  for (const auto& entry : welcome.chat)
    chat.push_back(chatJson(entry));
  message["chat"] = std::move(chat);
  message["resumed"] = welcome.resumed;
  return serialize(message);
}

std::string lobby(const Participant& you, std::string_view roomId, std::string_view roomName) {
  json message = envelope("lobby");
  message["you"] = participantJson(you);
  message["room"] = json{{"id", roomId}, {"name", roomName}};
  return serialize(message);
}

std::string participantJoined(const Participant& participant) {
  json message = envelope("participant-joined");
  message["participant"] = participantJson(participant);
  return serialize(message);
}

std::string participantLeft(std::string_view id, std::string_view reason) {
  json message = envelope("participant-left");
  message["id"] = id;
  message["reason"] = reason;
  return serialize(message);
}

std::string participantUpdated(const Participant& participant) {
  json message = envelope("participant-updated");
  message["participant"] = participantJson(participant);
  return serialize(message);
}

std::string lobbyUpdate(const std::vector<Participant>& lobby) {
  json message = envelope("lobby-update");
  message["lobby"] = participantList(lobby);
  return serialize(message);
}

std::string signal(std::string_view from, json data) {
  json message = envelope("signal");
  message["from"] = from;
  message["data"] = std::move(data);
  return serialize(message);
}

std::string chat(const ChatMessage& entry) {
  json message = envelope("chat");
  message.update(chatJson(entry));
  return serialize(message);
}

std::string muted(std::string_view kind, std::string_view by) {
  json message = envelope("muted");
  message["kind"] = kind;
  message["by"] = by;
  return serialize(message);
}

std::string rejected() {
  return serialize(envelope("rejected"));
}

std::string removed() {
  return serialize(envelope("removed"));
}

std::string ended(std::string_view by) {
  json message = envelope("ended");
  message["by"] = by;
  return serialize(message);
}

std::string error(const ProtocolError& error) {
  json message = envelope("error");
  message["code"] = error.code;
  message["message"] = error.message;
  if (!error.ref.empty()) message["ref"] = error.ref;
  return serialize(message);
}

std::string pong(std::optional<double> t) {
  json message = envelope("pong");
  // A non-finite double would serialise as null; the parser never produces one.
  if (t && std::isfinite(*t)) message["t"] = *t;
  return serialize(message);
}

std::string shutdown(int retryAfterMs) {
  json message = envelope("shutdown");
  message["retryAfterMs"] = retryAfterMs;
  return serialize(message);
}

}  // namespace parley::rooms::messages
