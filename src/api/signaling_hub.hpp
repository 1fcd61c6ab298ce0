// The signaling hub: live meetings (rooms::Room) and the WebSocket sessions of their
// participants. Every message of every socket goes through one mutex in arrival order, and
// the room's effects are queued on the receivers' sockets before it is released, so what one
// sender sends reaches each receiver in order. Sockets never block (web::WsConnection::send
// queues, and drops a client that does not read), so the lock is held only for in-memory work;
// audit records are written to SQLite after it is released.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parley/rooms/protocol.hpp>
#include <parley/rooms/room.hpp>
#include <parley/store/store.hpp>
#include <parley/web/server.hpp>

namespace parley::api {

class SignalingHub;

// Who a socket speaks for, once authenticated.
struct SocketIdentity {
  rooms::Identity participant;
  std::string roomId;
  std::string roomName;
};

// Turns a hello (invitation token + name) into an identity, or an error message; provided by
// the Platform, which owns tokens and the store.
using HelloAuthenticator =
    std::function<tl::expected<SocketIdentity, std::string>(const rooms::Hello&,
                                                           const std::string& requiredRoom)>;

class SignalingSession : public web::WsSession,
                         public std::enable_shared_from_this<SignalingSession> {
 public:
  SignalingSession(SignalingHub& hub, std::shared_ptr<web::WsConnection> connection,
                   std::optional<SocketIdentity> identity, std::string requiredRoom);
  void onMessage(std::string_view text) override;
  void onClose() override;

 private:
  friend class SignalingHub;
  enum class State { AwaitHello, AwaitJoin, Joined, Detached };

  SignalingHub& hub_;
  std::shared_ptr<web::WsConnection> connection_;
  std::optional<SocketIdentity> identity_;
  std::string requiredRoom_;  // for hello: the token must be for this room ("" = any)
  State state_;               // guarded by the hub's mutex
  std::chrono::steady_clock::time_point helloDeadline_;
};

struct HubCounters {
  std::uint64_t socketsActive = 0;
  std::uint64_t roomsActive = 0;
  std::uint64_t participantsAdmitted = 0;
  std::uint64_t participantsWaiting = 0;
  std::uint64_t messagesIn = 0;
  std::uint64_t protocolErrors = 0;
};

class SignalingHub {
 public:
  SignalingHub(store::Store& store, rooms::Limits limits, std::chrono::seconds helloTimeout,
               HelloAuthenticator authenticateHello);

  std::shared_ptr<SignalingSession> open(std::shared_ptr<web::WsConnection> connection,
                                         std::optional<SocketIdentity> identity,
                                         std::string requiredRoom);
  // Grace periods and hello deadlines; called about once a second.
  void tick();
  // {"type":"shutdown"} to every socket.
  void broadcastShutdown(int retryAfterMs);
  // Live counts of one room (0, 0 when it is not live).
  std::pair<std::size_t, std::size_t> liveCounts(const std::string& roomId) const;
  HubCounters counters() const;

 private:
  friend class SignalingSession;
  struct LiveRoom {
    explicit LiveRoom(const SocketIdentity& identity, const rooms::Limits& limits)
        : room(identity.roomId, identity.roomName, limits) {}
    rooms::Room room;
    std::map<std::string, std::shared_ptr<SignalingSession>> sockets;  // participant -> socket
  };
  struct PendingAudit {
    std::string roomId;
    rooms::AuditRecord record;
  };

  void onMessage(SignalingSession& session, std::string_view text);
  void onClose(SignalingSession& session);
  // Sends a room's effects to its sockets and collects its audit records; mutex held.
  void deliver(LiveRoom& live, rooms::Effects& effects, std::vector<PendingAudit>& audit);
  void writeAudit(const std::vector<PendingAudit>& audit);
  void send(SignalingSession& session, std::string text);

  store::Store& store_;
  const rooms::Limits limits_;
  const std::chrono::seconds helloTimeout_;
  const HelloAuthenticator authenticateHello_;

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<LiveRoom>> rooms_;
  std::vector<std::weak_ptr<SignalingSession>> awaitingHello_;
  std::map<std::uint64_t, std::weak_ptr<SignalingSession>> sockets_;  // every open socket
  std::atomic<std::uint64_t> messagesIn_{0};
  std::atomic<std::uint64_t> protocolErrors_{0};
};

}  // namespace parley::api
