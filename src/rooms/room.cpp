#include <algorithm>
#include <utility>
#include <variant>

#include <parley/rooms/room.hpp>

#include "server_messages.hpp"
#include "text.hpp"

namespace parley::rooms {
namespace {

std::shared_ptr<const std::string> shared(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

bool hostOnly(const ClientMessage& message) {
  return std::holds_alternative<Admit>(message) || std::holds_alternative<Reject>(message) ||
         std::holds_alternative<Remove>(message) || std::holds_alternative<Mute>(message) ||
         std::holds_alternative<End>(message);
}

}  // namespace

void Effects::clear() {
  messages.clear();
  audit.clear();
}

Room::Room(std::string id, std::string name, Limits limits)
    : id_(std::move(id)), name_(std::move(name)), limits_(limits) {}

// --- joining ---------------------------------------------------------------------------------

void Room::join(const Identity& who, const Join& join, Clock::time_point /*now*/,
                std::int64_t /*wallNow*/, Effects& out) {
  // The host's decision stands for the rest of the meeting, whatever socket asks again.
  if (removed_.count(who.id) != 0) {
    out.messages.push_back({who.id, shared(messages::removed()), CloseCode::Removed});
    return;
  }
  if (rejected_.count(who.id) != 0) {
    out.messages.push_back({who.id, shared(messages::rejected()), CloseCode::Rejected});
    return;
  }
  // The parser has checked join.name; a Join built in code is held to the same rule.
  const auto requested = text::displayName(join.name, true);
  const std::string name = requested && !requested->empty() ? *requested : who.name;
  if (Member* member = findMember(who.id)) {
    resume(*member, join, name, out);
  } else if (who.role == Role::Host) {
    admitHost(who, join, name, out);
  } else {
    enterLobby(who, join, name, out);
  }
}

void Room::resume(Member& member, const Join& join, const std::string& name, Effects& out) {
  Participant& participant = member.participant;
  participant.name = name;
  if (join.media) participant.media = *join.media;
  participant.connected = true;
  member.graceEnds.reset();
  out.messages.push_back({participant.id, shared(welcomeFor(member, true)), std::nullopt});
  // The client that comes back has lost its peer connections (reload, new network): the
  // others learn it through participant-joined and negotiate afresh.
  broadcast(shared(messages::participantJoined(participant)), participant.id, out);
  out.audit.push_back({participant.id, "joined", participant.id, "resumed"});
}

void Room::admitHost(const Identity& who, const Join& join, const std::string& name, Effects& out) {
  if (members_.size() >= limits_.maxParticipants) {
    out.messages.push_back({who.id,
                            shared(messages::error({"room_full", "the meeting is full", "join"})),
                            CloseCode::RoomFull});
    return;
  }
  members_.push_back(
      {Participant{who.id, name, Role::Host, join.media.value_or(MediaState{}), true},
       std::nullopt});
  const Member& host = members_.back();
  out.messages.push_back({who.id, shared(welcomeFor(host, false)), std::nullopt});
  broadcast(shared(messages::participantJoined(host.participant)), who.id, out);
  out.audit.push_back({who.id, "joined", who.id, ""});
}

void Room::enterLobby(const Identity& who, const Join& join, const std::string& name,
                      Effects& out) {
  auto waiting = findWaiting(who.id);
  if (waiting == lobby_.end()) {
    if (lobby_.size() >= limits_.maxLobby) {
      out.messages.push_back(
          {who.id, shared(messages::error({"room_full", "the waiting room is full", "join"})),
           CloseCode::RoomFull});
      return;
    }
    lobby_.push_back(
        Participant{who.id, name, Role::Guest, join.media.value_or(MediaState{}), true});
    waiting = std::prev(lobby_.end());
    out.audit.push_back({who.id, "waiting", who.id, ""});
  } else {
    // A newer socket of a guest who waits (the hub closed the old one): same place in line.
    waiting->name = name;
    if (join.media) waiting->media = *join.media;
  }
  out.messages.push_back({who.id, shared(messages::lobby(*waiting, id_, name_)), std::nullopt});
  updateLobbyForHosts(out);
}

// --- messages --------------------------------------------------------------------------------

void Room::handle(const std::string& from, const ClientMessage& message, Clock::time_point /*now*/,
                  std::int64_t wallNow, Effects& out) {
  Member* member = findMember(from);
  const bool waiting = member == nullptr && findWaiting(from) != lobby_.end();
  if (member == nullptr && !waiting) {
    sendError(from, "bad_state", "join the room first", typeName(message), out);
    return;
  }
  if (std::holds_alternative<Hello>(message) || std::holds_alternative<Join>(message)) {
    sendError(from, "bad_state", "already joined", typeName(message), out);
    return;
  }
  if (const auto* ping = std::get_if<Ping>(&message)) {
    out.messages.push_back({from, shared(messages::pong(ping->t)), std::nullopt});
    return;
  }
  const bool host = member != nullptr && member->participant.role == Role::Host;
  if (hostOnly(message) && !host) {
    sendError(from, "forbidden", "only the host may do this", typeName(message), out);
    return;
  }
  if (waiting) {
    handleWaiting(from, message, out);
  } else {
    handleAdmitted(*member, message, wallNow, out);
  }
  forgetMeetingIfIdle();
}

void Room::handleWaiting(const std::string& from, const ClientMessage& message, Effects& out) {
  const auto waiting = findWaiting(from);
  if (std::holds_alternative<Leave>(message)) {
    lobby_.erase(waiting);
    out.audit.push_back({from, "left", from, "lobby"});
    updateLobbyForHosts(out);
  } else if (const auto* media = std::get_if<Media>(&message)) {
    // Hosts see the waiting guest's camera and microphone state in the lobby list.
    if (waiting->media == media->state) return;
    waiting->media = media->state;
    updateLobbyForHosts(out);
  } else {
    sendError(from, "not_admitted", "wait until the host admits you", typeName(message), out);
  }
}

void Room::handleAdmitted(Member& member, const ClientMessage& message, std::int64_t wallNow,
                          Effects& out) {
  // Admitting or removing reshapes members_; host actions get the actor's id, not the member.
  const std::string actor = member.participant.id;
  if (const auto* signal = std::get_if<Signal>(&message)) {
    relaySignal(member, *signal, out);
  } else if (const auto* text = std::get_if<Chat>(&message)) {
    chat(member, *text, wallNow, out);
  } else if (const auto* media = std::get_if<Media>(&message)) {
    updateMedia(member, media->state, out);
  } else if (const auto* admitted = std::get_if<Admit>(&message)) {
    admit(actor, *admitted, out);
  } else if (const auto* rejected = std::get_if<Reject>(&message)) {
    reject(actor, *rejected, out);
  } else if (const auto* removed = std::get_if<Remove>(&message)) {
    remove(actor, *removed, out);
  } else if (const auto* muted = std::get_if<Mute>(&message)) {
    mute(actor, *muted, out);
  } else if (std::holds_alternative<End>(message)) {
    end(actor, out);
  } else if (std::holds_alternative<Leave>(message)) {
    eraseMember(actor);
    broadcast(shared(messages::participantLeft(actor, "left")), {}, out);
    out.audit.push_back({actor, "left", actor, ""});
  }
}

void Room::relaySignal(const Member& sender, const Signal& signal, Effects& out) {
  const std::string& from = sender.participant.id;
  Member* target = signal.to == from ? nullptr : findMember(signal.to);
  if (target == nullptr) {
    sendError(from, "unknown_participant", "'to' is not another participant of the meeting",
              "signal", out);
    return;
  }
  nlohmann::json data = messages::signalData(signal.dataJson);
  if (data.is_discarded()) {
    sendError(from, "bad_field", "'data' must be an object", "signal", out);
    return;
  }
  // Nobody to deliver to while the target is in grace; when it comes back, participant-joined
  // makes both sides negotiate afresh, so nothing is lost by dropping this.
  if (!target->participant.connected) return;
  out.messages.push_back(
      {signal.to, shared(messages::signal(from, std::move(data))), std::nullopt});
}

void Room::chat(const Member& sender, const Chat& chat, std::int64_t wallNow, Effects& out) {
  const std::string& from = sender.participant.id;
  auto text = text::chatText(chat.text);
  if (!text) {
    sendError(from, "bad_field", "'text' must be 1 to 2000 characters", "chat", out);
    return;
  }
  ChatMessage entry{++chatSeq_, from, sender.participant.name, std::move(*text), wallNow};
  // The sender gets it back too: the echo carries the seq and time everyone else sees.
  const auto payload = shared(messages::chat(entry));
  chat_.push_back(std::move(entry));
  while (chat_.size() > limits_.chatHistory)
    chat_.pop_front();
  broadcast(payload, {}, out);
}

void Room::updateMedia(Member& member, const MediaState& state, Effects& out) {
  if (member.participant.media == state) return;
  member.participant.media = state;
  broadcast(shared(messages::participantUpdated(member.participant)), member.participant.id, out);
}

void Room::admit(const std::string& host, const Admit& admit, Effects& out) {
  const auto waiting = findWaiting(admit.id);
  if (waiting == lobby_.end()) {
    sendError(host, "unknown_participant", "'id' is not waiting in the lobby", "admit", out);
    return;
  }
  if (members_.size() >= limits_.maxParticipants) {
    sendError(host, "room_full", "the meeting is full", "admit", out);
    return;
  }
  Participant guest = std::move(*waiting);
  lobby_.erase(waiting);
  guest.connected = true;
  members_.push_back({std::move(guest), std::nullopt});
  const Member& admitted = members_.back();
  const std::string& id = admitted.participant.id;
  out.messages.push_back({id, shared(welcomeFor(admitted, false)), std::nullopt});
  broadcast(shared(messages::participantJoined(admitted.participant)), id, out);
  updateLobbyForHosts(out);
  out.audit.push_back({host, "admitted", id, ""});
}

void Room::reject(const std::string& host, const Reject& reject, Effects& out) {
  const auto waiting = findWaiting(reject.id);
  if (waiting == lobby_.end()) {
    sendError(host, "unknown_participant", "'id' is not waiting in the lobby", "reject", out);
    return;
  }
  const std::string id = waiting->id;
  lobby_.erase(waiting);
  rejected_.insert(id);
  out.messages.push_back({id, shared(messages::rejected()), CloseCode::Rejected});
  updateLobbyForHosts(out);
  out.audit.push_back({host, "rejected", id, ""});
}

void Room::remove(const std::string& host, const Remove& remove, Effects& out) {
  const Member* target = findMember(remove.id);
  if (target == nullptr) {
    sendError(host, "unknown_participant", "'id' is not in the meeting", "remove", out);
    return;
  }
  if (target->participant.role == Role::Host) {
    sendError(host, "forbidden", "a host cannot be removed", "remove", out);
    return;
  }
  const bool connected = target->participant.connected;
  const std::string id = remove.id;
  eraseMember(id);
  removed_.insert(id);
  if (connected) out.messages.push_back({id, shared(messages::removed()), CloseCode::Removed});
  broadcast(shared(messages::participantLeft(id, "removed")), {}, out);
  out.audit.push_back({host, "removed", id, ""});
}

void Room::mute(const std::string& host, const Mute& mute, Effects& out) {
  if (mute.kind != "audio") {
    sendError(host, "bad_field", "'kind' must be \"audio\"", "mute", out);
    return;
  }
  const Member* target = findMember(mute.id);
  if (target == nullptr) {
    sendError(host, "unknown_participant", "'id' is not in the meeting", "mute", out);
    return;
  }
  // The target's client mutes its track and reports it with a media message; the room does not
  // claim a state the client has not confirmed.
  if (target->participant.connected) {
    out.messages.push_back({mute.id, shared(messages::muted(mute.kind, host)), std::nullopt});
  }
  out.audit.push_back({host, "muted", mute.id, mute.kind});
}

void Room::end(const std::string& host, Effects& out) {
  const auto payload = shared(messages::ended(host));
  for (const auto& member : members_) {
    if (member.participant.connected) {
      out.messages.push_back({member.participant.id, payload, CloseCode::Ended});
    }
  }
  for (const auto& waiting : lobby_)
    out.messages.push_back({waiting.id, payload, CloseCode::Ended});
  out.audit.push_back({host, "ended", id_, ""});
  resetMeeting();
}

// --- presence --------------------------------------------------------------------------------

void Room::disconnect(const std::string& id, Clock::time_point now, Effects& out) {
  if (Member* member = findMember(id)) {
    if (!member->participant.connected) return;
    member->participant.connected = false;
    member->graceEnds = now + limits_.reconnectGrace;
    broadcast(shared(messages::participantUpdated(member->participant)), id, out);
    return;
  }
  const auto waiting = findWaiting(id);
  if (waiting == lobby_.end()) return;
  // A waiting guest holds no place worth keeping: a reload simply queues again.
  lobby_.erase(waiting);
  out.audit.push_back({id, "disconnected", id, "lobby"});
  updateLobbyForHosts(out);
  forgetMeetingIfIdle();
}

void Room::tick(Clock::time_point now, Effects& out) {
  std::vector<std::string> expired;
  for (const auto& member : members_) {
    if (member.graceEnds && *member.graceEnds <= now) expired.push_back(member.participant.id);
  }
  for (const auto& id : expired) {
    eraseMember(id);
    broadcast(shared(messages::participantLeft(id, "disconnected")), {}, out);
    out.audit.push_back({id, "disconnected", id, ""});
  }
  forgetMeetingIfIdle();
}

// --- state -----------------------------------------------------------------------------------

bool Room::idle() const {
  // Everyone in members_ is connected or in grace.
  return members_.empty() && lobby_.empty();
}

std::size_t Room::admittedCount() const {
  return members_.size();
}

std::size_t Room::lobbyCount() const {
  return lobby_.size();
}

std::size_t Room::connectedCount() const {
  const auto connected = std::count_if(members_.begin(), members_.end(),
                                       [](const Member& m) { return m.participant.connected; });
  return static_cast<std::size_t>(connected) + lobby_.size();
}

std::size_t Room::chatCount() const {
  return chat_.size();
}

const std::string& Room::id() const {
  return id_;
}

const std::string& Room::name() const {
  return name_;
}

Room::Member* Room::findMember(const std::string& id) {
  const auto found = std::find_if(members_.begin(), members_.end(), [&](const Member& member) {
    return member.participant.id == id;
  });
  return found == members_.end() ? nullptr : &*found;
}

std::vector<Participant>::iterator Room::findWaiting(const std::string& id) {
  return std::find_if(lobby_.begin(), lobby_.end(),
                      [&](const Participant& waiting) { return waiting.id == id; });
}

void Room::eraseMember(const std::string& id) {
  std::erase_if(members_, [&](const Member& member) { return member.participant.id == id; });
}

std::string Room::welcomeFor(const Member& member, bool resumed) const {
  std::vector<Participant> others;
  others.reserve(members_.size());
  for (const auto& other : members_) {
    if (other.participant.id != member.participant.id) others.push_back(other.participant);
  }
  std::optional<std::vector<Participant>> lobby;
  if (member.participant.role == Role::Host) lobby = lobby_;
  return messages::welcome({.you = member.participant,
                            .roomId = id_,
                            .roomName = name_,
                            .participants = std::move(others),
                            .lobby = std::move(lobby),
                            .chat = chat_,
                            .resumed = resumed});
}

void Room::sendError(const std::string& to, std::string code, std::string message, std::string ref,
                     Effects& out) const {
  const ProtocolError error{std::move(code), std::move(message), std::move(ref)};
  out.messages.push_back({to, shared(messages::error(error)), std::nullopt});
}

void Room::broadcast(const std::shared_ptr<const std::string>& payload, const std::string& except,
                     Effects& out) const {
  for (const auto& member : members_) {
    if (member.participant.connected && member.participant.id != except) {
      out.messages.push_back({member.participant.id, payload, std::nullopt});
    }
  }
}

void Room::updateLobbyForHosts(Effects& out) const {
  std::shared_ptr<const std::string> payload;  // built only when a host is there to see it
  for (const auto& member : members_) {
    if (member.participant.role != Role::Host || !member.participant.connected) continue;
    if (!payload) payload = shared(messages::lobbyUpdate(lobby_));
    out.messages.push_back({member.participant.id, payload, std::nullopt});
  }
}

void Room::forgetMeetingIfIdle() {
  if (idle()) resetMeeting();
}

void Room::resetMeeting() {
  members_.clear();
  lobby_.clear();
  chat_.clear();
  chatSeq_ = 0;
  removed_.clear();
  rejected_.clear();
}

}  // namespace parley::rooms
