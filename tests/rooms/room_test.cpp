// The meeting state machine (docs/api.md, "Signaling"): lobby, admission, host actions, signal
// relay, chat, limits, reconnect grace and the audit records each action leaves.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <parley/rooms/room.hpp>

namespace parley::rooms {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Sent {
  std::string to;
  json body;
  std::optional<CloseCode> close;
  std::shared_ptr<const std::string> payload;
};

class RoomTest : public ::testing::Test {
 protected:
  RoomTest() { useLimits({}); }

  void useLimits(const Limits& limits) {
    room_ = std::make_unique<Room>("room-1", "Consultation", limits);
  }
  Room& room() { return *room_; }

  static Identity host() { return {"h", Role::Host, "Dr. Host"}; }
  static Identity guest(const std::string& id = "g1") { return {id, Role::Guest, "Guest " + id}; }

  // Every message the last call produced, decoded; each must be a v1 message with a type.
  std::vector<Sent> take() {
    std::vector<Sent> sent;
    for (const auto& outbound : effects_.messages) {
      Sent entry{outbound.to, json(), outbound.close, outbound.message};
      if (outbound.message) {
        entry.body = json::parse(*outbound.message);
        EXPECT_EQ(entry.body["v"], 1) << *outbound.message;
        EXPECT_TRUE(entry.body["type"].is_string()) << *outbound.message;
      }
      sent.push_back(std::move(entry));
    }
    effects_.messages.clear();
    return sent;
  }
  std::vector<AuditRecord> takeAudit() {
    auto audit = std::move(effects_.audit);
    effects_.audit.clear();
    return audit;
  }

  std::vector<Sent> join(const Identity& who, const Join& join = {}) {
    room().join(who, join, now_, wall_, effects_);
    return take();
  }
  std::vector<Sent> send(const std::string& from, const ClientMessage& message) {
    room().handle(from, message, now_, wall_, effects_);
    return take();
  }
  std::vector<Sent> drop(const std::string& id) {
    room().disconnect(id, now_, effects_);
    return take();
  }
  std::vector<Sent> advance(std::chrono::seconds by) {
    now_ += by;
    wall_ += std::chrono::milliseconds(by).count();
    room().tick(now_, effects_);
    return take();
  }

  // Host in the meeting and `ids` admitted, with what it took cleared.
  void meeting(const std::vector<std::string>& ids = {"g1"}) {
    join(host());
    for (const auto& id : ids) {
      join(guest(id));
      send("h", Admit{id});
    }
    take();
    takeAudit();
  }

  std::unique_ptr<Room> room_;
  Effects effects_;
  Clock::time_point now_{};
  std::int64_t wall_ = 1'732'460'701'000;
};

std::vector<std::string> ids(const json& participants) {
  std::vector<std::string> result;
  for (const auto& participant : participants)
    result.push_back(participant["id"]);
  return result;
}

void expectError(const std::vector<Sent>& sent, const std::string& id, const std::string& code,
                 const std::string& ref) {
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, id);
  EXPECT_EQ(sent[0].body["type"], "error");
  EXPECT_EQ(sent[0].body["code"], code) << sent[0].body.dump();
  EXPECT_EQ(sent[0].body["ref"], ref);
  EXPECT_TRUE(sent[0].body["message"].is_string());
  EXPECT_FALSE(sent[0].close);
}

// --- joining ---------------------------------------------------------------------------------

TEST_F(RoomTest, HostIsAdmittedAtOnceWithTheLobby) {
  const auto sent = join(host(), Join{"", MediaState{true, true, false}});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_FALSE(sent[0].close);
  EXPECT_EQ(sent[0].body, json::parse(R"({
    "v":1, "type":"welcome",
    "you":{"id":"h","name":"Dr. Host","role":"host","audio":true,"video":true,"screen":false,
           "connected":true},
    "room":{"id":"room-1","name":"Consultation"},
    "participants":[], "lobby":[], "chat":[], "resumed":false})"));
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"h", "joined", "h", ""}}));
  EXPECT_EQ(room().admittedCount(), 1u);
  EXPECT_EQ(room().connectedCount(), 1u);
  EXPECT_FALSE(room().idle());
}

TEST_F(RoomTest, GuestWaitsInTheLobbyAndTheHostSeesIt) {
  join(host());
  takeAudit();
  const auto sent = join(guest(), Join{"Ann", MediaState{true, false, false}});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].to, "g1");
  EXPECT_EQ(sent[0].body, json::parse(R"({
    "v":1, "type":"lobby",
    "you":{"id":"g1","name":"Ann","role":"guest","audio":true,"video":false,"screen":false,
           "connected":true},
    "room":{"id":"room-1","name":"Consultation"}})"));
  EXPECT_EQ(sent[1].to, "h");
  EXPECT_EQ(sent[1].body["type"], "lobby-update");
  EXPECT_EQ(sent[1].body["lobby"], json::array({sent[0].body["you"]}));
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"g1", "waiting", "g1", ""}}));
  EXPECT_EQ(room().admittedCount(), 1u);
  EXPECT_EQ(room().lobbyCount(), 1u);
  EXPECT_EQ(room().connectedCount(), 2u);
}

TEST_F(RoomTest, GuestsWaitBeforeTheHostArrivesAndAppearInTheHostsWelcome) {
  EXPECT_EQ(join(guest("g1")).size(), 1u);  // the lobby message; no host to tell
  join(guest("g2"));
  const auto sent = join(host());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(ids(sent[0].body["lobby"]), (std::vector<std::string>{"g1", "g2"}));
}

TEST_F(RoomTest, JoinWithoutANameKeepsTheIdentitysName) {
  join(host());
  const auto sent = join(guest());
  EXPECT_EQ(sent[0].body["you"]["name"], "Guest g1");
}

TEST_F(RoomTest, GuestWhoJoinsAgainWhileWaitingKeepsItsPlace) {
  join(host());
  join(guest("g1"));
  join(guest("g2"));
  takeAudit();
  // The hub closed the older socket (4000) and joins again with the new one.
  const auto sent = join(guest("g1"), Join{"Renamed", std::nullopt});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].body["type"], "lobby");
  EXPECT_EQ(sent[1].body["type"], "lobby-update");
  EXPECT_EQ(ids(sent[1].body["lobby"]), (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(sent[1].body["lobby"][0]["name"], "Renamed");
  EXPECT_EQ(room().lobbyCount(), 2u);
  EXPECT_TRUE(takeAudit().empty());
}

// --- admit, reject, remove, mute, end --------------------------------------------------------

TEST_F(RoomTest, AdmitSendsWelcomeToTheGuestAndParticipantJoinedToTheHost) {
  join(host());
  join(guest());
  takeAudit();
  const auto sent = send("h", Admit{"g1"});
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].to, "g1");
  EXPECT_EQ(sent[0].body["type"], "welcome");
  EXPECT_EQ(sent[0].body["you"]["id"], "g1");
  EXPECT_EQ(ids(sent[0].body["participants"]), (std::vector<std::string>{"h"}));
  EXPECT_FALSE(sent[0].body.contains("lobby"));  // the lobby is for hosts only
  EXPECT_EQ(sent[0].body["resumed"], false);
  EXPECT_EQ(sent[1].to, "h");
  EXPECT_EQ(sent[1].body["type"], "participant-joined");
  EXPECT_EQ(sent[1].body["participant"], sent[0].body["you"]);
  EXPECT_EQ(sent[2].to, "h");
  EXPECT_EQ(sent[2].body, json::parse(R"({"v":1,"type":"lobby-update","lobby":[]})"));
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"h", "admitted", "g1", ""}}));
  EXPECT_EQ(room().admittedCount(), 2u);
  EXPECT_EQ(room().lobbyCount(), 0u);
}

TEST_F(RoomTest, AdmitOfSomeoneNotWaitingIsAnError) {
  meeting();
  expectError(send("h", Admit{"nobody"}), "h", "unknown_participant", "admit");
  expectError(send("h", Admit{"g1"}), "h", "unknown_participant", "admit");  // already in
  expectError(send("h", Reject{"g1"}), "h", "unknown_participant", "reject");
}

TEST_F(RoomTest, RejectClosesWith4003AndTheGuestStaysOut) {
  join(host());
  join(guest());
  takeAudit();
  const auto sent = send("h", Reject{"g1"});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].to, "g1");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"rejected"})"));
  EXPECT_EQ(sent[0].close, CloseCode::Rejected);
  EXPECT_EQ(sent[1].to, "h");
  EXPECT_EQ(sent[1].body["lobby"], json::array());
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"h", "rejected", "g1", ""}}));

  const auto again = join(guest());
  ASSERT_EQ(again.size(), 1u);  // the host hears nothing of it
  EXPECT_EQ(again[0].body["type"], "rejected");
  EXPECT_EQ(again[0].close, CloseCode::Rejected);
  EXPECT_EQ(room().lobbyCount(), 0u);
}

TEST_F(RoomTest, RemoveClosesWith4001AndTheGuestCannotComeBack) {
  meeting({"g1", "g2"});
  const auto sent = send("h", Remove{"g1"});
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].to, "g1");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"removed"})"));
  EXPECT_EQ(sent[0].close, CloseCode::Removed);
  for (const auto& other : {sent[1], sent[2]}) {
    EXPECT_EQ(other.body, json::parse(R"({"v":1,"type":"participant-left","id":"g1",
                                           "reason":"removed"})"));
    EXPECT_FALSE(other.close);
  }
  EXPECT_EQ(sent[1].to, "h");
  EXPECT_EQ(sent[2].to, "g2");
  EXPECT_EQ(sent[1].payload, sent[2].payload);  // one payload for the broadcast
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"h", "removed", "g1", ""}}));
  EXPECT_EQ(room().admittedCount(), 2u);

  const auto again = join(guest("g1"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].body["type"], "removed");
  EXPECT_EQ(again[0].close, CloseCode::Removed);
  EXPECT_EQ(room().lobbyCount(), 0u);
  expectError(send("g1", Chat{"let me in"}), "g1", "bad_state", "chat");
}

TEST_F(RoomTest, HostsCannotBeRemovedAndTargetsMustBeInTheMeeting) {
  meeting();
  expectError(send("h", Remove{"h"}), "h", "forbidden", "remove");
  expectError(send("h", Remove{"nobody"}), "h", "unknown_participant", "remove");
  join(guest("g2"));
  expectError(send("h", Remove{"g2"}), "h", "unknown_participant", "remove");
}

TEST_F(RoomTest, MuteTellsTheTarget) {
  meeting({"g1", "g2"});
  const auto sent = send("h", Mute{"g1", "audio"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, "g1");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"muted","kind":"audio","by":"h"})"));
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"h", "muted", "g1", "audio"}}));
  expectError(send("h", Mute{"nobody", "audio"}), "h", "unknown_participant", "mute");
  // Built in code with another kind: refused like the parser would.
  expectError(send("h", Mute{"g1", "video"}), "h", "bad_field", "mute");
}

TEST_F(RoomTest, EndClosesEverySocketWith4002AndResetsTheMeeting) {
  meeting({"g1", "g2"});
  send("g1", Chat{"hello"});
  send("h", Remove{"g2"});
  join(guest("g3"));  // waiting
  take();
  takeAudit();

  const auto sent = send("h", End{});
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_EQ(sent[1].to, "g1");
  EXPECT_EQ(sent[2].to, "g3");
  for (const auto& entry : sent) {
    EXPECT_EQ(entry.body, json::parse(R"({"v":1,"type":"ended","by":"h"})"));
    EXPECT_EQ(entry.close, CloseCode::Ended);
    EXPECT_EQ(entry.payload, sent[0].payload);
  }
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"h", "ended", "room-1", ""}}));
  EXPECT_TRUE(room().idle());
  EXPECT_EQ(room().admittedCount(), 0u);
  EXPECT_EQ(room().lobbyCount(), 0u);
  EXPECT_EQ(room().connectedCount(), 0u);
  EXPECT_EQ(room().chatCount(), 0u);

  // A new meeting: no chat history, and who was removed may wait in the lobby again.
  const auto welcome = join(host());
  EXPECT_EQ(welcome[0].body["chat"], json::array());
  EXPECT_EQ(welcome[0].body["participants"], json::array());
  EXPECT_EQ(join(guest("g2"))[0].body["type"], "lobby");
}

TEST_F(RoomTest, GuestsMayNotTakeHostActions) {
  meeting();
  join(guest("g2"));  // waiting
  take();
  takeAudit();
  const ClientMessage hostActions[] = {Admit{"g2"}, Reject{"g2"}, Remove{"h"}, Mute{"h", "audio"},
                                       End{}};
  for (const auto& action : hostActions) {
    expectError(send("g1", action), "g1", "forbidden", typeName(action));
    expectError(send("g2", action), "g2", "forbidden", typeName(action));
  }
  EXPECT_TRUE(takeAudit().empty());
  EXPECT_EQ(room().admittedCount(), 2u);
  EXPECT_EQ(room().lobbyCount(), 1u);
}

// --- signal, chat, media ---------------------------------------------------------------------

TEST_F(RoomTest, SignalsAreRelayedBetweenAdmittedParticipantsWithFrom) {
  meeting({"g1", "g2"});
  const auto sent = send("g1", Signal{"g2", R"({"description":{"sdp":"v=0\r\n","type":"offer"}})"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, "g2");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"signal","from":"g1",
                                          "data":{"description":{"sdp":"v=0\r\n",
                                                                 "type":"offer"}}})"));
  const auto answer = send("h", Signal{"g1", R"({"candidate":null})"});
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].body["from"], "h");
  EXPECT_TRUE(takeAudit().empty());
}

TEST_F(RoomTest, SignalsNeverReachOrLeaveTheLobby) {
  meeting();
  join(guest("waiting"));
  take();
  expectError(send("g1", Signal{"waiting", "{}"}), "g1", "unknown_participant", "signal");
  expectError(send("waiting", Signal{"g1", "{}"}), "waiting", "not_admitted", "signal");
  expectError(send("g1", Signal{"nobody", "{}"}), "g1", "unknown_participant", "signal");
  expectError(send("g1", Signal{"g1", "{}"}), "g1", "unknown_participant", "signal");
  // Built in code with data that is not an object: refused like the parser would.
  expectError(send("g1", Signal{"h", "[1]"}), "g1", "bad_field", "signal");
  expectError(send("g1", Signal{"h", "not json"}), "g1", "bad_field", "signal");
}

TEST_F(RoomTest, SignalsToAParticipantInGraceAreDropped) {
  meeting();
  drop("g1");
  EXPECT_TRUE(send("h", Signal{"g1", "{}"}).empty());
}

TEST_F(RoomTest, ChatGoesToEveryoneAdmittedIncludingTheSender) {
  meeting({"g1", "g2"});
  join(guest("waiting"));
  take();
  const auto sent = send("g1", Chat{"  hello  "});
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_EQ(sent[1].to, "g1");
  EXPECT_EQ(sent[2].to, "g2");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"chat","seq":1,"from":"g1",
                                          "name":"Guest g1","text":"hello",
                                          "at":1732460701000})"));
  EXPECT_EQ(sent[0].payload, sent[2].payload);
  EXPECT_EQ(send("h", Chat{"second"})[0].body["seq"], 2);
  expectError(send("waiting", Chat{"hi"}), "waiting", "not_admitted", "chat");
  expectError(send("g1", Chat{"   "}), "g1", "bad_field", "chat");
  EXPECT_EQ(room().chatCount(), 2u);
}

TEST_F(RoomTest, WelcomeCarriesTheChatHistoryBoundedByTheLimit) {
  Limits limits;
  limits.chatHistory = 3;
  useLimits(limits);
  meeting();
  for (int i = 1; i <= 5; ++i) {
    wall_ += 1000;
    send(i % 2 == 0 ? "h" : "g1", Chat{"message " + std::to_string(i)});
  }
  EXPECT_EQ(room().chatCount(), 3u);
  join(guest("late"));
  const auto sent = send("h", Admit{"late"});
  const json& chat = sent[0].body["chat"];
  ASSERT_EQ(chat.size(), 3u);
  EXPECT_EQ(chat[0], json::parse(R"({"seq":3,"from":"g1","name":"Guest g1",
                                     "text":"message 3","at":1732460704000})"));
  EXPECT_EQ(chat[2]["seq"], 5);
  EXPECT_EQ(chat[2]["from"], "g1");
}

TEST_F(RoomTest, MediaChangesGoToTheOthers) {
  meeting({"g1", "g2"});
  const auto sent = send("g1", Media{MediaState{true, false, true}});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_EQ(sent[1].to, "g2");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"participant-updated","participant":
      {"id":"g1","name":"Guest g1","role":"guest","audio":true,"video":false,"screen":true,
       "connected":true}})"));
  // Repeating the same state tells nobody anything new.
  EXPECT_TRUE(send("g1", Media{MediaState{true, false, true}}).empty());
}

TEST_F(RoomTest, LobbyGuestsMaySendMediaLeaveAndPingOnly) {
  join(host());
  join(guest());
  take();
  takeAudit();
  const auto media = send("g1", Media{MediaState{false, true, false}});
  ASSERT_EQ(media.size(), 1u);
  EXPECT_EQ(media[0].to, "h");
  EXPECT_EQ(media[0].body["lobby"][0]["video"], true);
  const auto pong = send("g1", Ping{7.0});
  ASSERT_EQ(pong.size(), 1u);
  EXPECT_EQ(pong[0].body, json::parse(R"({"v":1,"type":"pong","t":7.0})"));
  expectError(send("g1", Chat{"hi"}), "g1", "not_admitted", "chat");

  const auto left = send("g1", Leave{});
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].to, "h");
  EXPECT_EQ(left[0].body["lobby"], json::array());
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"g1", "left", "g1", "lobby"}}));
}

TEST_F(RoomTest, HelloOrJoinAfterJoiningIsABadState) {
  meeting();
  expectError(send("g1", Join{}), "g1", "bad_state", "join");
  expectError(send("h", Hello{"token", "name"}), "h", "bad_state", "hello");
  expectError(send("stranger", Ping{}), "stranger", "bad_state", "ping");
}

TEST_F(RoomTest, LeaveTellsTheOthers) {
  meeting({"g1", "g2"});
  const auto sent = send("g1", Leave{});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"participant-left","id":"g1",
                                          "reason":"left"})"));
  EXPECT_FALSE(sent[0].close);  // the hub closes the leaving socket itself
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"g1", "left", "g1", ""}}));
  EXPECT_EQ(room().admittedCount(), 2u);
  // Leaving ends the admission: coming back means waiting again.
  EXPECT_EQ(join(guest("g1"))[0].body["type"], "lobby");
}

// --- limits ----------------------------------------------------------------------------------

TEST_F(RoomTest, AdmitWhenFullIsRoomFullForTheHost) {
  Limits limits;
  limits.maxParticipants = 2;
  useLimits(limits);
  meeting({"g1"});
  join(guest("g2"));
  take();
  expectError(send("h", Admit{"g2"}), "h", "room_full", "admit");
  EXPECT_EQ(room().lobbyCount(), 1u);  // still waiting: the host may remove someone first
  send("h", Remove{"g1"});
  EXPECT_EQ(send("h", Admit{"g2"})[0].body["type"], "welcome");
}

TEST_F(RoomTest, HostJoiningAFullMeetingIsClosedWithRoomFull) {
  Limits limits;
  limits.maxParticipants = 1;
  useLimits(limits);
  join(host());
  const auto sent = join({"h2", Role::Host, "Second host"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].body["type"], "error");
  EXPECT_EQ(sent[0].body["code"], "room_full");
  EXPECT_EQ(sent[0].close, CloseCode::RoomFull);
  EXPECT_EQ(room().admittedCount(), 1u);
}

TEST_F(RoomTest, AFullLobbyClosesNewGuestsWithRoomFull) {
  Limits limits;
  limits.maxLobby = 1;
  useLimits(limits);
  join(host());
  join(guest("g1"));
  take();
  takeAudit();
  const auto sent = join(guest("g2"));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, "g2");
  EXPECT_EQ(sent[0].body["code"], "room_full");
  EXPECT_EQ(sent[0].close, CloseCode::RoomFull);
  EXPECT_EQ(room().lobbyCount(), 1u);
  EXPECT_TRUE(takeAudit().empty());
}

// --- presence and reconnect grace ------------------------------------------------------------

TEST_F(RoomTest, ReconnectWithinGraceKeepsTheAdmission) {
  meeting();
  const auto dropped = drop("g1");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].to, "h");
  EXPECT_EQ(dropped[0].body["type"], "participant-updated");
  EXPECT_EQ(dropped[0].body["participant"]["connected"], false);
  EXPECT_EQ(room().connectedCount(), 1u);
  EXPECT_EQ(room().admittedCount(), 2u);
  EXPECT_FALSE(room().idle());

  EXPECT_TRUE(advance(29s).empty());
  const auto sent = join(guest("g1"));
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].to, "g1");
  EXPECT_EQ(sent[0].body["type"], "welcome");
  EXPECT_EQ(sent[0].body["resumed"], true);
  EXPECT_EQ(ids(sent[0].body["participants"]), (std::vector<std::string>{"h"}));
  EXPECT_EQ(sent[1].to, "h");
  EXPECT_EQ(sent[1].body["type"], "participant-joined");
  EXPECT_EQ(sent[1].body["participant"]["connected"], true);
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"g1", "joined", "g1", "resumed"}}));
  // The grace that was running is over.
  EXPECT_TRUE(advance(5s).empty());
  EXPECT_EQ(room().admittedCount(), 2u);
}

TEST_F(RoomTest, GraceExpiryIsParticipantLeftDisconnected) {
  meeting({"g1", "g2"});
  drop("g1");
  EXPECT_TRUE(advance(29s).empty());
  const auto sent = advance(1s);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_EQ(sent[1].to, "g2");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"participant-left","id":"g1",
                                          "reason":"disconnected"})"));
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"g1", "disconnected", "g1", ""}}));
  EXPECT_EQ(room().admittedCount(), 2u);
  EXPECT_EQ(join(guest("g1"))[0].body["type"], "lobby");
}

TEST_F(RoomTest, ADisconnectedParticipantIsDroppedOnce) {
  meeting();
  drop("g1");
  EXPECT_TRUE(drop("g1").empty());
  EXPECT_TRUE(drop("stranger").empty());
}

TEST_F(RoomTest, LobbyGuestWhoDropsLeavesTheLobbyAtOnce) {
  join(host());
  join(guest());
  take();
  takeAudit();
  const auto sent = drop("g1");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_EQ(sent[0].body, json::parse(R"({"v":1,"type":"lobby-update","lobby":[]})"));
  EXPECT_EQ(takeAudit(), (std::vector<AuditRecord>{{"g1", "disconnected", "g1", "lobby"}}));
  EXPECT_EQ(room().lobbyCount(), 0u);
}

TEST_F(RoomTest, HostReconnectsWithinGrace) {
  meeting();
  join(guest("waiting"));
  take();
  const auto dropped = drop("h");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].to, "g1");
  EXPECT_EQ(dropped[0].body["participant"]["connected"], false);
  // While the host is away the lobby has nobody to tell.
  EXPECT_EQ(join(guest("also-waiting")).size(), 1u);

  advance(10s);
  const auto sent = join(host());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].to, "h");
  EXPECT_EQ(sent[0].body["resumed"], true);
  EXPECT_EQ(ids(sent[0].body["lobby"]), (std::vector<std::string>{"waiting", "also-waiting"}));
  EXPECT_EQ(ids(sent[0].body["participants"]), (std::vector<std::string>{"g1"}));
  EXPECT_EQ(sent[1].to, "g1");
  EXPECT_EQ(sent[1].body["type"], "participant-joined");
  EXPECT_EQ(send("h", Admit{"waiting"})[0].body["type"], "welcome");
}

TEST_F(RoomTest, ANewerSocketOfAConnectedParticipantResumes) {
  meeting();
  const auto sent = join(guest("g1"));
  EXPECT_EQ(sent[0].body["type"], "welcome");
  EXPECT_EQ(sent[0].body["resumed"], true);
  EXPECT_EQ(room().admittedCount(), 2u);
}

TEST_F(RoomTest, WelcomeListsTheOthersWithTheirPresence) {
  meeting({"g1", "g2"});
  drop("g2");
  join(guest("g3"));
  const auto sent = send("h", Admit{"g3"});
  const json& participants = sent[0].body["participants"];
  EXPECT_EQ(ids(participants), (std::vector<std::string>{"h", "g1", "g2"}));
  EXPECT_EQ(participants[2]["connected"], false);
}

TEST_F(RoomTest, ARoomBecomesIdleAndForgetsItsMeeting) {
  EXPECT_TRUE(room().idle());
  meeting();
  send("g1", Chat{"hi"});
  send("g1", Leave{});
  EXPECT_FALSE(room().idle());
  drop("h");
  EXPECT_FALSE(room().idle());  // in grace
  advance(30s);
  EXPECT_TRUE(room().idle());
  EXPECT_EQ(room().chatCount(), 0u);
  EXPECT_EQ(room().connectedCount(), 0u);
  EXPECT_EQ(room().id(), "room-1");
}

TEST_F(RoomTest, EffectsClearEmptiesBoth) {
  join(host());
  ASSERT_FALSE(effects_.audit.empty());
  room().join(guest(), {}, now_, wall_, effects_);
  ASSERT_FALSE(effects_.messages.empty());
  effects_.clear();
  EXPECT_TRUE(effects_.messages.empty());
  EXPECT_TRUE(effects_.audit.empty());
}

}  // namespace
}  // namespace parley::rooms
