#include "signaling_hub.hpp"

#include <variant>

#include <parley/base/log.hpp>

namespace parley::api {
namespace {

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto instance = log::get("api");
  return instance;
}

std::int64_t wallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t wallSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view closeReason(rooms::CloseCode code) {
  switch (code) {
    case rooms::CloseCode::GoingAway:
      return "going away";
    case rooms::CloseCode::TooBig:
      return "message too big";
    case rooms::CloseCode::Replaced:
      return "replaced by a newer connection";
    case rooms::CloseCode::Removed:
      return "removed by the host";
    case rooms::CloseCode::Ended:
      return "meeting ended";
    case rooms::CloseCode::Rejected:
      return "rejected by the host";
    case rooms::CloseCode::TooSlow:
      return "too slow";
    case rooms::CloseCode::NotAuthenticated:
      return "not authenticated";
    case rooms::CloseCode::Forbidden:
      return "forbidden";
    case rooms::CloseCode::RoomFull:
      return "room full";
  }
  return "closed";
}

void closeWith(web::WsConnection& connection, rooms::CloseCode code) {
  connection.close(static_cast<std::uint16_t>(code), std::string(closeReason(code)));
}

}  // namespace

SignalingSession::SignalingSession(SignalingHub& hub,
                                   std::shared_ptr<web::WsConnection> connection,
                                   std::optional<SocketIdentity> identity,
                                   std::string requiredRoom)
    : hub_(hub),
      connection_(std::move(connection)),
      identity_(std::move(identity)),
      requiredRoom_(std::move(requiredRoom)),
      state_(identity_ ? State::AwaitJoin : State::AwaitHello) {}

void SignalingSession::onMessage(std::string_view text) {
  hub_.onMessage(*this, text);
}

void SignalingSession::onClose() {
  hub_.onClose(*this);
}

SignalingHub::SignalingHub(store::Store& store, rooms::Limits limits,
                           std::chrono::seconds helloTimeout, HelloAuthenticator authenticateHello)
    : store_(store),
      limits_(limits),
      helloTimeout_(helloTimeout),
      authenticateHello_(std::move(authenticateHello)) {}

std::shared_ptr<SignalingSession> SignalingHub::open(std::shared_ptr<web::WsConnection> connection,
                                                     std::optional<SocketIdentity> identity,
                                                     std::string requiredRoom) {
  auto session = std::make_shared<SignalingSession>(*this, connection, std::move(identity),
                                                    std::move(requiredRoom));
  const std::lock_guard lock(mutex_);
  sockets_[connection->id()] = session;
  if (session->state_ == SignalingSession::State::AwaitHello) {
    session->helloDeadline_ = std::chrono::steady_clock::now() + helloTimeout_;
    awaitingHello_.push_back(session);
  }
  return session;
}

void SignalingHub::send(SignalingSession& session, std::string text) {
  session.connection_->send(std::make_shared<const std::string>(std::move(text)));
}

void SignalingHub::onMessage(SignalingSession& session, std::string_view text) {
  messagesIn_.fetch_add(1, std::memory_order_relaxed);
  auto parsed = rooms::parseClientMessage(text);
  if (!parsed) {
    protocolErrors_.fetch_add(1, std::memory_order_relaxed);
    send(session, rooms::errorMessage(parsed.error()));
    return;
  }
  rooms::ClientMessage& message = *parsed;
  if (const auto* ping = std::get_if<rooms::Ping>(&message)) {
    send(session, rooms::pongMessage(ping->t));
    return;
  }

  std::unique_lock lock(mutex_);
  switch (session.state_) {
    case SignalingSession::State::Detached:
      return;
    case SignalingSession::State::AwaitHello: {
      const auto* hello = std::get_if<rooms::Hello>(&message);
      if (hello == nullptr) {
        send(session, rooms::errorMessage({"not_authenticated",
                                           "send hello with an invitation token first",
                                           rooms::typeName(message)}));
        session.state_ = SignalingSession::State::Detached;
        closeWith(*session.connection_, rooms::CloseCode::NotAuthenticated);
        return;
      }
      const rooms::Hello copy = *hello;
      const std::string requiredRoom = session.requiredRoom_;
      // Token checks touch SQLite; do them without holding the hub.
      lock.unlock();
      auto identity = authenticateHello_(copy, requiredRoom);
      lock.lock();
      if (session.state_ != SignalingSession::State::AwaitHello) return;
      if (!identity) {
        send(session, rooms::errorMessage({"invalid_token", identity.error(), "hello"}));
        session.state_ = SignalingSession::State::Detached;
        closeWith(*session.connection_, rooms::CloseCode::NotAuthenticated);
        return;
      }
      session.identity_ = std::move(*identity);
      session.state_ = SignalingSession::State::AwaitJoin;
      return;
    }
    case SignalingSession::State::AwaitJoin: {
      const auto* join = std::get_if<rooms::Join>(&message);
      if (join == nullptr) {
        const auto* leave = std::get_if<rooms::Leave>(&message);
        if (leave != nullptr) {
          session.state_ = SignalingSession::State::Detached;
          session.connection_->close(1000, "left");
          return;
        }
        send(session, rooms::errorMessage(
                          {"bad_state", "send join first", rooms::typeName(message)}));
        return;
      }
      const SocketIdentity& identity = *session.identity_;
      auto& slot = rooms_[identity.roomId];
      if (!slot) slot = std::make_unique<LiveRoom>(identity, limits_);
      LiveRoom& live = *slot;
      const std::string& id = identity.participant.id;
      if (auto existing = live.sockets.find(id);
          existing != live.sockets.end() && existing->second.get() != &session) {
        // The same participant connected again (reload, network change): the newer socket
        // wins and the older one is told why it closes.
        existing->second->state_ = SignalingSession::State::Detached;
        closeWith(*existing->second->connection_, rooms::CloseCode::Replaced);
      }
      live.sockets[id] = session.shared_from_this();
      session.state_ = SignalingSession::State::Joined;
      rooms::Effects effects;
      std::vector<PendingAudit> audit;
      live.room.join(identity.participant, *join, std::chrono::steady_clock::now(), wallMillis(),
                     effects);
      deliver(live, effects, audit);
      lock.unlock();
      writeAudit(audit);
      return;
    }
    case SignalingSession::State::Joined: {
      const SocketIdentity& identity = *session.identity_;
      const auto found = rooms_.find(identity.roomId);
      if (found == rooms_.end()) return;
      LiveRoom& live = *found->second;
      rooms::Effects effects;
      std::vector<PendingAudit> audit;
      live.room.handle(identity.participant.id, message, std::chrono::steady_clock::now(),
                       wallMillis(), effects);
      if (std::holds_alternative<rooms::Leave>(message)) {
        if (auto socket = live.sockets.find(identity.participant.id);
            socket != live.sockets.end() && socket->second.get() == &session) {
          live.sockets.erase(socket);
        }
        session.state_ = SignalingSession::State::Detached;
        session.connection_->close(1000, "left");
      }
      deliver(live, effects, audit);
      if (live.room.idle() && live.sockets.empty()) rooms_.erase(found);
      lock.unlock();
      writeAudit(audit);
      return;
    }
  }
}

void SignalingHub::onClose(SignalingSession& session) {
  std::vector<PendingAudit> audit;
  {
    const std::lock_guard lock(mutex_);
    sockets_.erase(session.connection_->id());
    const bool joined = session.state_ == SignalingSession::State::Joined;
    session.state_ = SignalingSession::State::Detached;
    if (!joined || !session.identity_) return;
    const auto found = rooms_.find(session.identity_->roomId);
    if (found == rooms_.end()) return;
    LiveRoom& live = *found->second;
    const std::string& id = session.identity_->participant.id;
    const auto socket = live.sockets.find(id);
    // Only the participant's current socket speaks for them; a replaced one goes quietly.
    if (socket == live.sockets.end() || socket->second.get() != &session) return;
    live.sockets.erase(socket);
    rooms::Effects effects;
    live.room.disconnect(id, std::chrono::steady_clock::now(), effects);
    deliver(live, effects, audit);
    if (live.room.idle() && live.sockets.empty()) rooms_.erase(found);
  }
  writeAudit(audit);
}

void SignalingHub::deliver(LiveRoom& live, rooms::Effects& effects,
                           std::vector<PendingAudit>& audit) {
  for (auto& outbound : effects.messages) {
    const auto socket = live.sockets.find(outbound.to);
    if (socket == live.sockets.end()) continue;  // in grace: nobody to tell
    SignalingSession& target = *socket->second;
    if (outbound.message) target.connection_->send(outbound.message);
    if (outbound.close) {
      target.state_ = SignalingSession::State::Detached;
      closeWith(*target.connection_, *outbound.close);
      live.sockets.erase(socket);
    }
  }
  for (auto& record : effects.audit)
    audit.push_back({live.room.id(), std::move(record)});
  effects.clear();
}

void SignalingHub::writeAudit(const std::vector<PendingAudit>& audit) {
  if (audit.empty()) return;
  const std::int64_t now = wallSeconds();
  for (const auto& entry : audit) {
    try {
      store_.appendAudit(entry.roomId, now, entry.record.actor, entry.record.action,
                         entry.record.subject, entry.record.detail);
    } catch (const std::exception& error) {
      // The meeting goes on; the operator learns that the audit log has a gap.
      logger()->error("audit log write failed ({} {} in room {}): {}", entry.record.action,
                      entry.record.subject, entry.roomId, error.what());
    }
  }
}

void SignalingHub::tick() {
  std::vector<PendingAudit> audit;
  {
    const std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(awaitingHello_, [&](const std::weak_ptr<SignalingSession>& weak) {
      const auto session = weak.lock();
      if (!session || session->state_ != SignalingSession::State::AwaitHello) return true;
      if (now < session->helloDeadline_) return false;
      session->state_ = SignalingSession::State::Detached;
      closeWith(*session->connection_, rooms::CloseCode::NotAuthenticated);
      return true;
    });
    for (auto it = rooms_.begin(); it != rooms_.end();) {
      LiveRoom& live = *it->second;
      rooms::Effects effects;
      live.room.tick(now, effects);
      deliver(live, effects, audit);
      if (live.room.idle() && live.sockets.empty()) {
        it = rooms_.erase(it);
      } else {
        ++it;
      }
    }
  }
  writeAudit(audit);
}

void SignalingHub::broadcastShutdown(int retryAfterMs) {
  const auto message = std::make_shared<const std::string>(rooms::shutdownMessage(retryAfterMs));
  const std::lock_guard lock(mutex_);
  for (const auto& [id, weak] : sockets_) {
    if (const auto session = weak.lock()) session->connection_->send(message);
  }
}

std::pair<std::size_t, std::size_t> SignalingHub::liveCounts(const std::string& roomId) const {
  const std::lock_guard lock(mutex_);
  const auto found = rooms_.find(roomId);
  if (found == rooms_.end()) return {0, 0};
  return {found->second->room.admittedCount(), found->second->room.lobbyCount()};
}

HubCounters SignalingHub::counters() const {
  HubCounters counters;
  const std::lock_guard lock(mutex_);
  counters.socketsActive = sockets_.size();
  counters.roomsActive = rooms_.size();
  for (const auto& [id, live] : rooms_) {
    counters.participantsAdmitted += live->room.admittedCount();
    counters.participantsWaiting += live->room.lobbyCount();
  }
  counters.messagesIn = messagesIn_.load(std::memory_order_relaxed);
  counters.protocolErrors = protocolErrors_.load(std::memory_order_relaxed);
  return counters;
}

}  // namespace parley::api
