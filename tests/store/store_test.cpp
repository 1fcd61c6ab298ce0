#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parley/store/store.hpp>

namespace parley::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "parley-store-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path file(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// A second, independent connection to a database file: sees only what was committed, and
// reads the raw tables the Store hides.
class RawDatabase {
 public:
  explicit RawDatabase(const fs::path& file) {
    if (sqlite3_open_v2(file.c_str(), &connection_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + file.string());
  }
  ~RawDatabase() { sqlite3_close(connection_); }
  RawDatabase(const RawDatabase&) = delete;
  RawDatabase& operator=(const RawDatabase&) = delete;

  void execute(const std::string& sql) {
    if (sqlite3_exec(connection_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(connection_));
  }

  // Every row of `sql`, each column as its bytes (text or blob alike; NULL as "").
  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(connection_, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK)
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(connection_));
    std::vector<std::vector<std::string>> result;
    int code = SQLITE_OK;
    while ((code = sqlite3_step(statement)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int column = 0; column < sqlite3_column_count(statement); ++column) {
        const auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement, column));
        const int size = sqlite3_column_bytes(statement, column);
        row.emplace_back(bytes == nullptr ? ""
                                          : std::string(bytes, static_cast<std::size_t>(size)));
      }
      result.push_back(std::move(row));
    }
    sqlite3_finalize(statement);
    if (code != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(connection_));
    return result;
  }

  std::string scalar(const std::string& sql) { return rows(sql).at(0).at(0); }

 private:
  sqlite3* connection_ = nullptr;
};

std::string sha256(const std::string& text) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest.data()), size);
}

std::string fileBytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> tableNames(RawDatabase& raw) {
  std::vector<std::string> names;
  for (const auto& row :
       raw.rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"))
    names.push_back(row.at(0));
  return names;
}

constexpr std::int64_t kNow = 1'800'000'000;

// An advisor, a room and a single-use invitation: the rows most tests hang theirs on.
struct Fixture {
  Advisor advisor;
  Room room;
  Invitation invitation;
};

Fixture populate(Store& store) {
  Fixture fixture;
  fixture.advisor = store.createAdvisor("alice", "Alice A.", "$argon2id$hash", kNow).value();
  fixture.room = store.createRoom("room-1", fixture.advisor.id, "Consultation", kNow);
  fixture.invitation = store.createInvitation("jti-1", "room-1", kNow, kNow + 3600, true);
  return fixture;
}

// --- schema and migrations ---

TEST(StoreSchema, MigrationsApplyOnAFreshFileAndAreIdempotentOnReopen) {
  TempDir dir;
  const auto file = dir.file("parley.db");
  ASSERT_GE(Store::latestSchemaVersion(), 1);
  {
    auto store = Store::open(file);
    EXPECT_EQ(store->schemaVersion(), Store::latestSchemaVersion());
  }
  std::string schemaAfterFirstOpen;
  {
    RawDatabase raw(file);
    EXPECT_EQ(raw.scalar("PRAGMA user_version"), std::to_string(Store::latestSchemaVersion()));
    EXPECT_THAT(tableNames(raw), ::testing::IsSupersetOf({"advisors", "sessions", "rooms",
                                                          "invitations", "guests", "audit_log"}));
    schemaAfterFirstOpen = raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_master");
  }
  {
    auto store = Store::open(file);
    EXPECT_EQ(store->schemaVersion(), Store::latestSchemaVersion());
  }
  RawDatabase raw(file);
  EXPECT_EQ(raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_master"), schemaAfterFirstOpen);
  EXPECT_EQ(raw.scalar("PRAGMA user_version"), std::to_string(Store::latestSchemaVersion()));
}

TEST(StoreSchema, InMemoryDatabaseIsMigratedToo) {
  auto store = Store::openInMemory();
  EXPECT_EQ(store->schemaVersion(), Store::latestSchemaVersion());
}

TEST(StoreSchema, RefusesADatabaseFromANewerVersion) {
  TempDir dir;
  const auto file = dir.file("future.db");
  const int future = Store::latestSchemaVersion() + 1;
  {
    RawDatabase raw(file);
    raw.execute("PRAGMA user_version = " + std::to_string(future));
  }
  try {
    Store::open(file);
    FAIL() << "a database from a newer schema was opened";
  } catch (const StoreError& error) {
    EXPECT_THAT(error.what(), HasSubstr(file.string()));
    EXPECT_THAT(error.what(), HasSubstr("newer"));
  }
  RawDatabase raw(file);
  EXPECT_EQ(raw.scalar("PRAGMA user_version"), std::to_string(future));  // left untouched
}

TEST(StoreSchema, AFailedMigrationRollsBackAndNamesTheFile) {
  TempDir dir;
  const auto file = dir.file("clash.db");
  {
    // A table in the way makes migration 1 fail halfway through its script.
    RawDatabase raw(file);
    raw.execute("CREATE TABLE rooms (anything TEXT)");
  }
  try {
    Store::open(file);
    FAIL() << "migration over a clashing table succeeded";
  } catch (const StoreError& error) {
    EXPECT_THAT(error.what(), HasSubstr(file.string()));
    EXPECT_THAT(error.what(), HasSubstr("migration 1"));
  }
  RawDatabase raw(file);
  EXPECT_EQ(raw.scalar("PRAGMA user_version"), "0");
  EXPECT_THAT(tableNames(raw), ::testing::ElementsAre("rooms"));  // advisors was rolled back
}

TEST(StoreSchema, OpenFailsWithThePathWhenTheDirectoryIsMissing) {
  TempDir dir;
  const auto file = dir.file("missing-dir") / "parley.db";
  try {
    Store::open(file);
    FAIL() << "opened a database in a directory that does not exist";
  } catch (const StoreError& error) {
    EXPECT_THAT(error.what(), HasSubstr(file.string()));
  }
}

TEST(StoreSchema, NewFileIsPrivateToItsOwner) {
  TempDir dir;
  const auto file = dir.file("parley.db");
  auto store = Store::open(file);
  const auto permissions = fs::status(file).permissions();
  EXPECT_EQ(permissions & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST(StoreSchema, WalSynchronousFullAndForeignKeysAreOn) {
  TempDir dir;
  const auto file = dir.file("parley.db");
  auto store = Store::open(file);
  const auto settings = store->connectionSettings();
  EXPECT_EQ(settings.journalMode, "wal");
  EXPECT_TRUE(settings.foreignKeys);
  EXPECT_EQ(settings.synchronous, 2);  // FULL
  EXPECT_GT(settings.busyTimeoutMs, 0);
  // WAL is a property of the file: a second connection sees it too.
  RawDatabase raw(file);
  EXPECT_EQ(raw.scalar("PRAGMA journal_mode"), "wal");
}

TEST(StoreSchema, ForeignKeysAreEnforced) {
  auto store = Store::openInMemory();
  EXPECT_TRUE(store->connectionSettings().foreignKeys);
  EXPECT_THROW(store->createRoom("orphan", 4242, "No owner", kNow), StoreError);
  EXPECT_THROW(store->createInvitation("jti-x", "no-such-room", kNow, kNow + 60, false),
               StoreError);
  EXPECT_THROW(store->createSession("token", 4242, kNow, kNow + 60), StoreError);

  const auto fixture = populate(*store);
  store->createRoom("room-2", fixture.advisor.id, "Other", kNow);
  // A guest must come in through an invitation of its own room.
  EXPECT_THROW(store->createGuest("g-1", "guest-token", "room-2", fixture.invitation.id, "Bob",
                                  kNow, kNow + 60),
               StoreError);
  EXPECT_FALSE(store->findGuestByToken("guest-token", kNow));
}

// --- advisors ---

TEST(StoreAdvisors, CreateFindAndCount) {
  auto store = Store::openInMemory();
  EXPECT_EQ(store->advisorCount(), 0);
  const auto created = store->createAdvisor("Alice", "Alice A.", "$argon2id$one", kNow);
  ASSERT_TRUE(created);
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(store->advisorCount(), 1);

  const auto byName = store->findAdvisorByUsername("aLiCe");
  ASSERT_TRUE(byName);
  EXPECT_EQ(byName->id, created->id);
  EXPECT_EQ(byName->username, "Alice");
  EXPECT_EQ(byName->displayName, "Alice A.");
  EXPECT_EQ(byName->passwordHash, "$argon2id$one");
  EXPECT_EQ(byName->createdAt, kNow);

  const auto byId = store->findAdvisor(created->id);
  ASSERT_TRUE(byId);
  EXPECT_EQ(byId->username, "Alice");
  EXPECT_FALSE(store->findAdvisor(created->id + 1));
  EXPECT_FALSE(store->findAdvisorByUsername("bob"));
}

TEST(StoreAdvisors, UsernameTakenIgnoringCase) {
  auto store = Store::openInMemory();
  ASSERT_TRUE(store->createAdvisor("alice", "Alice", "h1", kNow));
  const auto duplicate = store->createAdvisor("ALICE", "Other Alice", "h2", kNow);
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error(), Conflict::UsernameTaken);
  EXPECT_EQ(store->advisorCount(), 1);
  EXPECT_EQ(store->findAdvisorByUsername("alice")->displayName, "Alice");
  EXPECT_TRUE(store->createAdvisor("bob", "Bob", "h3", kNow));
}

TEST(StoreAdvisors, SetPasswordHash) {
  auto store = Store::openInMemory();
  const auto advisor = store->createAdvisor("alice", "Alice", "old", kNow).value();
  store->setPasswordHash(advisor.id, "new");
  EXPECT_EQ(store->findAdvisor(advisor.id)->passwordHash, "new");
  EXPECT_THROW(store->setPasswordHash(advisor.id + 100, "x"), StoreError);
}

// --- sessions ---

TEST(StoreSessions, FoundUntilTheyExpireAndGoneWhenDeleted) {
  auto store = Store::openInMemory();
  const auto fixture = populate(*store);
  store->createSession("session-token", fixture.advisor.id, kNow, kNow + 100);

  const auto session = store->findSession("session-token", kNow + 99);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->advisorId, fixture.advisor.id);
  EXPECT_EQ(session->createdAt, kNow);
  EXPECT_EQ(session->expiresAt, kNow + 100);
  EXPECT_FALSE(store->findSession("session-token", kNow + 100));  // valid while now < expiresAt
  EXPECT_FALSE(store->findSession("other-token", kNow));

  store->deleteSession("session-token");
  EXPECT_FALSE(store->findSession("session-token", kNow));
  store->deleteSession("session-token");  // deleting twice is harmless (logout twice)
}

TEST(StoreSessions, DeleteExpiredRemovesExpiredSessionsAndGuests) {
  auto store = Store::openInMemory();
  const auto fixture = populate(*store);
  store->createSession("expired", fixture.advisor.id, kNow, kNow + 10);
  store->createSession("alive", fixture.advisor.id, kNow, kNow + 1000);
  store->createGuest("g-expired", "guest-expired", "room-1", "jti-1", "Old", kNow, kNow + 10);
  store->createGuest("g-alive", "guest-alive", "room-1", "jti-1", "New", kNow, kNow + 1000);

  EXPECT_EQ(store->deleteExpiredSessions(kNow + 10), 2U);
  EXPECT_TRUE(store->findSession("alive", kNow));
  EXPECT_FALSE(store->findSession("expired", kNow));
  EXPECT_TRUE(store->findGuestByToken("guest-alive", kNow));
  EXPECT_FALSE(store->findGuestByToken("guest-expired", kNow));
  EXPECT_EQ(store->deleteExpiredSessions(kNow + 10), 0U);
}

TEST(StoreSessions, SessionAndGuestTokensAreStoredOnlyAsSha256) {
  TempDir dir;
  const auto file = dir.file("parley.db");
  const std::string sessionToken = "session-token-that-must-never-be-stored-7f3a";
  const std::string guestToken = "guest-token-that-must-never-be-stored-91c2";
  auto store = Store::open(file);
  const auto fixture = populate(*store);
  store->createSession(sessionToken, fixture.advisor.id, kNow, kNow + 100);
  store->createGuest("g-1", guestToken, "room-1", "jti-1", "Bob", kNow, kNow + 100);

  RawDatabase raw(file);
  const auto sessions = raw.rows("SELECT * FROM sessions");
  ASSERT_EQ(sessions.size(), 1U);
  const auto guests = raw.rows("SELECT * FROM guests");
  ASSERT_EQ(guests.size(), 1U);
  for (const auto& rows : {sessions, guests})
    for (const auto& column : rows.front()) {
      EXPECT_THAT(column, ::testing::Not(HasSubstr(sessionToken)));
      EXPECT_THAT(column, ::testing::Not(HasSubstr(guestToken)));
    }
  EXPECT_EQ(raw.scalar("SELECT token_hash FROM sessions"), sha256(sessionToken));
  EXPECT_EQ(raw.scalar("SELECT token_hash FROM guests"), sha256(guestToken));

  // Nor anywhere in the files: the committed pages sit in the WAL until a checkpoint.
  for (const auto& path : {file, fs::path(file.string() + "-wal")}) {
    const std::string bytes = fileBytes(path);
    EXPECT_EQ(bytes.find(sessionToken), std::string::npos) << path;
    EXPECT_EQ(bytes.find(guestToken), std::string::npos) << path;
  }
}

// --- rooms ---

TEST(StoreRooms, CreateFindAndListNewestFirst) {
  auto store = Store::openInMemory();
  const auto alice = store->createAdvisor("alice", "Alice", "h", kNow).value();
  const auto bob = store->createAdvisor("bob", "Bob", "h", kNow).value();
  store->createRoom("r-old", alice.id, "Old", kNow);
  store->createRoom("r-new", alice.id, "New", kNow + 20);
  store->createRoom("r-mid", alice.id, "Mid", kNow + 10);
  store->createRoom("r-mid2", alice.id, "Mid, same second, created later", kNow + 10);
  store->createRoom("r-bob", bob.id, "Bob's", kNow + 30);

  const auto found = store->findRoom("r-mid");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->advisorId, alice.id);
  EXPECT_EQ(found->name, "Mid");
  EXPECT_EQ(found->createdAt, kNow + 10);
  EXPECT_FALSE(store->findRoom("nope"));

  std::vector<std::string> ids;
  for (const auto& room : store->roomsOf(alice.id))
    ids.push_back(room.id);
  EXPECT_THAT(ids, ::testing::ElementsAre("r-new", "r-mid2", "r-mid", "r-old"));
  EXPECT_EQ(store->roomsOf(bob.id).size(), 1U);
  EXPECT_TRUE(store->roomsOf(bob.id + 100).empty());

  EXPECT_THROW(store->createRoom("r-old", alice.id, "Duplicate id", kNow), StoreError);
}

// --- invitations ---

TEST(StoreInvitations, SingleUseIsConsumedExactlyOnce) {
  auto store = Store::openInMemory();
  populate(*store);

  const auto first = store->consumeInvitation("jti-1", kNow + 5);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->roomId, "room-1");
  EXPECT_TRUE(first->singleUse);
  EXPECT_EQ(first->usedAt, kNow + 5);

  const auto second = store->consumeInvitation("jti-1", kNow + 6);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), Conflict::AlreadyUsed);
  EXPECT_EQ(store->findInvitation("jti-1")->usedAt, kNow + 5);

  const auto unknown = store->consumeInvitation("jti-unknown", kNow);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), Conflict::NotFound);
}

TEST(StoreInvitations, ReusableInvitationIsNeverMarked) {
  auto store = Store::openInMemory();
  populate(*store);
  const auto created = store->createInvitation("jti-multi", "room-1", kNow, kNow + 60, false);
  EXPECT_FALSE(created.singleUse);
  for (int i = 0; i < 3; ++i) {
    const auto consumed = store->consumeInvitation("jti-multi", kNow + i);
    ASSERT_TRUE(consumed);
    EXPECT_FALSE(consumed->usedAt);
  }
  const auto found = store->findInvitation("jti-multi");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->roomId, "room-1");
  EXPECT_EQ(found->createdAt, kNow);
  EXPECT_EQ(found->expiresAt, kNow + 60);
  EXPECT_FALSE(found->singleUse);
  EXPECT_FALSE(found->usedAt);
  EXPECT_FALSE(store->findInvitation("jti-unknown"));
}

TEST(StoreInvitations, ConcurrentConsumersOfOneInvitationHaveExactlyOneWinner) {
  TempDir dir;
  auto store = Store::open(dir.file("parley.db"));
  populate(*store);
  constexpr int kInvitations = 100;
  constexpr int kThreads = 4;
  for (int i = 0; i < kInvitations; ++i)
    store->createInvitation("race-" + std::to_string(i), "room-1", kNow, kNow + 60, true);

  std::array<std::atomic<int>, kInvitations> winners{};
  std::atomic<int> alreadyUsed{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kInvitations; ++i) {
        const auto result = store->consumeInvitation("race-" + std::to_string(i), kNow);
        if (result)
          ++winners[static_cast<std::size_t>(i)];
        else if (result.error() == Conflict::AlreadyUsed)
          ++alreadyUsed;
      }
    });
  for (auto& thread : threads)
    thread.join();

  for (int i = 0; i < kInvitations; ++i)
    EXPECT_EQ(winners[static_cast<std::size_t>(i)].load(), 1) << "invitation " << i;
  EXPECT_EQ(alreadyUsed.load(), kInvitations * (kThreads - 1));
}

// --- guests ---

TEST(StoreGuests, FoundByTokenUntilTheyExpire) {
  auto store = Store::openInMemory();
  populate(*store);
  const auto created =
      store->createGuest("guest-1", "guest-cookie", "room-1", "jti-1", "Bob", kNow, kNow + 50);
  EXPECT_EQ(created.id, "guest-1");

  const auto found = store->findGuestByToken("guest-cookie", kNow + 49);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, "guest-1");
  EXPECT_EQ(found->roomId, "room-1");
  EXPECT_EQ(found->invitationId, "jti-1");
  EXPECT_EQ(found->name, "Bob");
  EXPECT_EQ(found->createdAt, kNow);
  EXPECT_EQ(found->expiresAt, kNow + 50);
  EXPECT_FALSE(store->findGuestByToken("guest-cookie", kNow + 50));
  EXPECT_FALSE(store->findGuestByToken("another-cookie", kNow));
}

// --- audit log ---

TEST(StoreAudit, OldestFirstPerRoomAndLimitKeepsTheNewest) {
  auto store = Store::openInMemory();
  store->appendAudit("room-a", kNow + 30, "advisor:1", "ended", "room-a");
  store->appendAudit("room-a", kNow + 10, "guest:g1", "joined", "guest:g1", "name=Bob");
  store->appendAudit("room-b", kNow + 15, "guest:g2", "joined", "guest:g2");
  store->appendAudit("room-a", kNow + 20, "advisor:1", "admitted", "guest:g1");
  store->appendAudit("room-a", kNow + 20, "advisor:1", "muted", "guest:g1");

  const auto events = store->auditOf("room-a");
  std::vector<std::string> actions;
  for (const auto& event : events)
    actions.push_back(event.action);
  EXPECT_THAT(actions, ::testing::ElementsAre("joined", "admitted", "muted", "ended"));
  EXPECT_EQ(events.front().roomId, "room-a");
  EXPECT_EQ(events.front().at, kNow + 10);
  EXPECT_EQ(events.front().actor, "guest:g1");
  EXPECT_EQ(events.front().subject, "guest:g1");
  EXPECT_EQ(events.front().detail, "name=Bob");
  EXPECT_EQ(events.back().detail, "");
  EXPECT_LT(events[1].id, events[2].id);

  const auto newestTwo = store->auditOf("room-a", 2);
  ASSERT_EQ(newestTwo.size(), 2U);
  EXPECT_EQ(newestTwo[0].action, "muted");
  EXPECT_EQ(newestTwo[1].action, "ended");

  EXPECT_EQ(store->auditOf("room-b").size(), 1U);
  EXPECT_TRUE(store->auditOf("room-c").empty());
  EXPECT_TRUE(store->auditOf("room-a", 0).empty());
}

// --- concurrency and durability ---

TEST(StoreThreads, ConcurrentWritersAllLand) {
  auto store = Store::openInMemory();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "user-" + std::to_string(t) + "-" + std::to_string(i);
        const auto advisor = store->createAdvisor(name, name, "h", kNow);
        store->appendAudit("busy", kNow, name, "created", std::to_string(advisor->id));
        store->findAdvisorByUsername(name);
      }
    });
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(store->advisorCount(), kThreads * kPerThread);
  EXPECT_EQ(store->auditOf("busy", 10'000).size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(StoreDurability, DataSurvivesCloseAndReopen) {
  TempDir dir;
  const auto file = dir.file("parley.db");
  {
    auto store = Store::open(file);
    const auto fixture = populate(*store);
    store->createSession("session", fixture.advisor.id, kNow, kNow + 100);
    store->createGuest("guest-1", "guest-cookie", "room-1", "jti-1", "Bob", kNow, kNow + 100);
    ASSERT_TRUE(store->consumeInvitation("jti-1", kNow + 1));
    store->appendAudit("room-1", kNow + 1, "guest:guest-1", "joined", "guest:guest-1");
  }
  auto store = Store::open(file);
  const auto advisor = store->findAdvisorByUsername("alice");
  ASSERT_TRUE(advisor);
  EXPECT_EQ(store->findSession("session", kNow)->advisorId, advisor->id);
  EXPECT_EQ(store->roomsOf(advisor->id).size(), 1U);
  EXPECT_EQ(store->findInvitation("jti-1")->usedAt, kNow + 1);
  EXPECT_EQ(store->findGuestByToken("guest-cookie", kNow)->name, "Bob");
  EXPECT_EQ(store->auditOf("room-1").size(), 1U);
}

// The child writes until it is killed; each value on the pipe is the number of iterations it has
// committed. It never returns into the test framework.
[[noreturn]] void writeUntilKilled(const fs::path& file, int reportFd) {
  try {
    auto store = Store::open(file);
    const std::string padding(1024, 'x');  // longer rows: more pages per commit to tear
    for (std::int64_t i = 1;; ++i) {
      const std::string subject = std::to_string(i);
      store->appendAudit("crash", i, "child", "write", subject, padding);
      if (!store->createAdvisor("user-" + subject, "User " + subject, padding, i)) ::_exit(3);
      const char* bytes = reinterpret_cast<const char*>(&i);
      std::size_t written = 0;
      while (written < sizeof i) {
        const ssize_t n = ::write(reportFd, bytes + written, sizeof i - written);
        if (n <= 0) ::_exit(4);
        written += static_cast<std::size_t>(n);
      }
    }
  } catch (...) {
    ::_exit(2);
  }
}

TEST(StoreDurability, EveryCommitSurvivesSigkillMidWrite) {
  TempDir dir;
  const auto file = dir.file("crash.db");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    writeUntilKilled(file, fds[1]);
  }
  ::close(fds[1]);

  constexpr std::int64_t kKillAfter = 150;
  std::int64_t reported = 0;
  std::string pending;
  bool killed = false;
  for (;;) {
    pollfd readable{fds[0], POLLIN, 0};
    if (::poll(&readable, 1, 30'000) <= 0) break;  // a hung child fails below
    char buffer[4096];
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;  // EOF: the child is gone and the pipe is drained
    pending.append(buffer, static_cast<std::size_t>(n));
    while (pending.size() >= sizeof reported) {
      std::memcpy(&reported, pending.data(), sizeof reported);
      pending.erase(0, sizeof reported);
    }
    if (!killed && reported >= kKillAfter) {
      ::kill(child, SIGKILL);
      killed = true;
    }
  }
  ::close(fds[0]);
  if (!killed) ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(killed) << "child reported only " << reported << " commits";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  ASSERT_GE(reported, kKillAfter);

  {
    RawDatabase raw(file);
    EXPECT_EQ(raw.scalar("PRAGMA integrity_check"), "ok");
  }
  auto store = Store::open(file);
  const auto events = store->auditOf("crash", 1'000'000);
  // Every reported iteration is there; one more may have committed before its report.
  ASSERT_GE(events.size(), static_cast<std::size_t>(reported));
  for (std::int64_t i = 1; i <= reported; ++i) {
    EXPECT_EQ(events[static_cast<std::size_t>(i - 1)].subject, std::to_string(i));
    EXPECT_TRUE(store->findAdvisorByUsername("user-" + std::to_string(i))) << i;
  }
  EXPECT_GE(store->advisorCount(), reported);
}

}  // namespace
}  // namespace parley::store
