// One meeting room: who is admitted, who waits in the lobby, chat history, and who was removed
// or rejected in this meeting (docs/api.md, "Signaling"). No sockets, no clock, no threads: the
// hub feeds it joins, messages, dropped sockets and ticks with the time, and carries out the
// Effects it returns (messages to participants, sockets to close, audit records to store).
// Not thread-safe; the hub serialises calls.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <parley/rooms/protocol.hpp>

namespace parley::rooms {

using Clock = std::chrono::steady_clock;

struct Limits {
  std::size_t maxParticipants = 10;  // admitted (connected or in grace), host included
  std::size_t maxLobby = 50;         // guests waiting to be admitted
  std::size_t chatHistory = 500;     // chat messages kept for the welcome of late joiners
  std::chrono::seconds reconnectGrace{30};
};

// Who a socket speaks for; `id` is stable across reconnects (cookie or token).
struct Identity {
  std::string id;
  Role role = Role::Guest;
  std::string name;
};

struct Outbound {
  std::string to;  // participant id
  // One immutable payload shared by all receivers of a broadcast; null when only closing.
  std::shared_ptr<const std::string> message;
  std::optional<CloseCode> close;  // close that socket after sending
};

// actions: "joined", "waiting", "admitted", "rejected", "removed", "muted", "left",
// "disconnected", "ended". actor and subject are participant ids (subject of "ended" is the
// room id); detail: "resumed" for a reconnect, "lobby" for a guest leaving the lobby, the kind
// for "muted", else empty. "disconnected" is recorded when the reconnect grace runs out (or at
// once for a lobby guest), not when the socket drops.
struct AuditRecord {
  std::string actor;
  std::string action;
  std::string subject;
  std::string detail;
  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

// What a call asks of the hub, in the order generated; the hub appends to the sockets' queues
// in this order, so what one sender causes reaches every receiver in order.
struct Effects {
  std::vector<Outbound> messages;
  std::vector<AuditRecord> audit;
  void clear();
};

class Room {
 public:
  Room(std::string id, std::string name, Limits limits = {});

  // A socket of `who` is authenticated and sent `join` (or hello+join).
  // - removed or rejected in this meeting: `removed`/`rejected` again, close 4001/4003;
  // - already admitted (reconnect within grace, or a newer socket replacing an open one):
  //   `welcome` with resumed=true, `participant-joined` to the others so they renegotiate
  //   media with the fresh client (docs/api.md: "someone was admitted or (re)connected");
  // - host: admitted at once (`welcome` with the lobby, `participant-joined` to the others),
  //   or `error` room_full and close 4409 when maxParticipants are admitted;
  // - guest: to the lobby (`lobby` to the guest, `lobby-update` to connected hosts), or
  //   `error` room_full and close 4409 when maxLobby guests wait.
  // `welcome` lists the other admitted participants (connected or in grace) in admission
  // order, the chat history, and for hosts the lobby in arrival order.
  // A non-empty join.name replaces the identity's name; join.media sets the media state.
  // The time arguments are taken for symmetry with handle(); joining needs no clock.
  void join(const Identity& who, const Join& join, Clock::time_point now, std::int64_t wallNow,
            Effects& out);

  // Any message after join from participant `from`. Hello/Join -> error "bad_state";
  // admit/reject/remove/mute/end from a guest -> "forbidden"; a lobby guest may only send
  // leave, ping and media (else "not_admitted"); signal/admit/reject/remove/mute naming an id
  // that is not admitted (for admit/reject: not waiting) -> "unknown_participant"; admit when
  // maxParticipants are admitted -> "room_full" to the host. Chat is stamped with `wallNow`
  // (Unix ms). `leave` sends participant-left to the others; the hub closes the socket.
  // `end` sends `ended` to everyone with close 4002, then resets the meeting (participants,
  // lobby, chat, removed and rejected lists) so a new one can start in the same room.
  void handle(const std::string& from, const ClientMessage& message, Clock::time_point now,
              std::int64_t wallNow, Effects& out);

  // The socket of `id` dropped without `leave`. Admitted: connected=false and
  // `participant-updated` to the others; they leave with reason "disconnected" when
  // Limits::reconnectGrace runs out (tick). In the lobby: out of the lobby at once
  // (`lobby-update` to hosts).
  void disconnect(const std::string& id, Clock::time_point now, Effects& out);

  // Expires reconnect grace periods; call about once a second.
  void tick(Clock::time_point now, Effects& out);

  // Nobody connected, in the lobby or in grace: the hub may drop the room. A room that becomes
  // idle also forgets its meeting (chat, removed and rejected lists), as after `end`.
  bool idle() const;
  std::size_t admittedCount() const;  // connected or in grace
  std::size_t lobbyCount() const;
  std::size_t connectedCount() const;  // admitted and connected, plus the lobby
  std::size_t chatCount() const;       // chat messages kept (at most Limits::chatHistory)
  const std::string& id() const;
  const std::string& name() const;

 private:
  struct Member {
    Participant participant;
    std::optional<Clock::time_point> graceEnds;  // set while disconnected
  };

  Member* findMember(const std::string& id);
  std::vector<Participant>::iterator findWaiting(const std::string& id);
  void resume(Member& member, const Join& join, const std::string& name, Effects& out);
  void admitHost(const Identity& who, const Join& join, const std::string& name, Effects& out);
  void enterLobby(const Identity& who, const Join& join, const std::string& name, Effects& out);
  void handleWaiting(const std::string& from, const ClientMessage& message, Effects& out);
  void handleAdmitted(Member& member, const ClientMessage& message, std::int64_t wallNow,
                      Effects& out);
  void relaySignal(const Member& sender, const Signal& signal, Effects& out);
  void chat(const Member& sender, const Chat& chat, std::int64_t wallNow, Effects& out);
  void updateMedia(Member& member, const MediaState& state, Effects& out);
  void admit(const std::string& host, const Admit& admit, Effects& out);
  void reject(const std::string& host, const Reject& reject, Effects& out);
  void remove(const std::string& host, const Remove& remove, Effects& out);
  void mute(const std::string& host, const Mute& mute, Effects& out);
  void end(const std::string& host, Effects& out);
  void eraseMember(const std::string& id);

  std::string welcomeFor(const Member& member, bool resumed) const;
  void sendError(const std::string& to, std::string code, std::string message, std::string ref,
                 Effects& out) const;
  // Sends one payload to every connected member except `except` (may be empty).
  void broadcast(const std::shared_ptr<const std::string>& payload, const std::string& except,
                 Effects& out) const;
  void updateLobbyForHosts(Effects& out) const;
  void forgetMeetingIfIdle();
  void resetMeeting();

  const std::string id_;
  const std::string name_;
  const Limits limits_;
  std::vector<Member> members_;     // admitted, in admission order
  std::vector<Participant> lobby_;  // waiting, in arrival order
  std::deque<ChatMessage> chat_;    // the last limits_.chatHistory messages
  std::uint64_t chatSeq_ = 0;       // seq of the last chat message of this meeting
  std::set<std::string> removed_;   // may not come back in this meeting
  std::set<std::string> rejected_;
};

}  // namespace parley::rooms
