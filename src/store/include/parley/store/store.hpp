// The web platform's persistent state in one SQLite file: advisors, their sessions, rooms,
// invitations, guests and the audit log.
//
// Durability: WAL journal with synchronous=FULL, so a commit that returned survives a crash of
// the process or the machine. Foreign keys are enforced. The schema is migrated at open; a
// database written by a newer parley is refused rather than guessed at.
//
// Threads: every method may be called from any thread; one connection is shared behind a mutex.
//
// Errors: conditions a caller must expect (a taken username, a used invitation, an unknown or
// expired row) are return values. Anything else — I/O errors, a full disk, a constraint broken
// by a caller bug such as a room for an unknown advisor — throws StoreError naming the
// operation, the database and SQLite's message.
//
// Time: every time is int64 Unix seconds (UTC) passed in by the caller; the store has no clock.
// A session, guest or invitation is valid while now < expiresAt.
//
// Tokens: session and guest tokens are never stored. The store keeps the 32-byte SHA-256 of the
// token (raw bytes in a BLOB column `token_hash`) and looks rows up by hashing what the caller
// presents, so a leaked database file or backup does not let anyone in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace parley::store {

struct Advisor {
  std::int64_t id = 0;
  std::string username;
  std::string displayName;
  std::string passwordHash;
  std::int64_t createdAt = 0;
};

struct Room {
  std::string id;
  std::int64_t advisorId = 0;
  std::string name;
  std::int64_t createdAt = 0;
};

struct Invitation {
  std::string id;
  std::string roomId;
  std::int64_t createdAt = 0;
  std::int64_t expiresAt = 0;
  bool singleUse = false;
  std::optional<std::int64_t> usedAt;
};

struct Guest {
  std::string id;
  std::string roomId;
  std::string invitationId;
  std::string name;
  std::int64_t createdAt = 0;
  std::int64_t expiresAt = 0;
};

struct Session {
  std::int64_t advisorId = 0;
  std::int64_t createdAt = 0;
  std::int64_t expiresAt = 0;
};

struct AuditEvent {
  std::int64_t id = 0;
  std::string roomId;
  std::int64_t at = 0;
  std::string actor;
  std::string action;
  std::string subject;
  std::string detail;
};

// The connection's effective settings, read back from SQLite's pragmas (diagnostics, tests).
struct ConnectionSettings {
  std::string journalMode;  // "wal" for a file database, "memory" for openInMemory()
  bool foreignKeys = false;
  int synchronous = 0;  // 2 = FULL
  int busyTimeoutMs = 0;
};

enum class Conflict { UsernameTaken, AlreadyUsed, NotFound };

class StoreError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

class Store {
 public:
  // Opens or creates the database file (parent dir must exist; a new file is created with mode
  // 0600 since it holds password hashes), applies pending migrations.
  // Throws StoreError (message names the path) when it cannot open/migrate, or when the
  // database's schema is newer than this build knows.
  static std::unique_ptr<Store> open(const std::filesystem::path& file);
  // In-memory database for tests.
  static std::unique_ptr<Store> openInMemory();

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schemaVersion() const;  // highest applied migration
  static int latestSchemaVersion();
  ConnectionSettings connectionSettings() const;

  // Advisors. Usernames are unique ignoring ASCII case (SQLite's NOCASE collation; letters
  // outside ASCII compare exactly, so the caller should restrict or normalise them).
  tl::expected<Advisor, Conflict> createAdvisor(const std::string& username,
                                                const std::string& displayName,
                                                const std::string& passwordHash, std::int64_t now);
  std::optional<Advisor> findAdvisorByUsername(const std::string& username);  // case-insensitive
  std::optional<Advisor> findAdvisor(std::int64_t id);
  std::int64_t advisorCount();
  // Throws StoreError when no advisor has this id (a caller bug: advisors are never deleted
  // while they are logged in).
  void setPasswordHash(std::int64_t advisorId, const std::string& passwordHash);

  // Sessions, stored as SHA-256(token) only (see the top of this file).
  void createSession(const std::string& token, std::int64_t advisorId, std::int64_t now,
                     std::int64_t expiresAt);
  std::optional<Session> findSession(const std::string& token,
                                     std::int64_t now);  // nullopt if expired
  void deleteSession(const std::string& token);
  // Deletes sessions and guests with expiresAt <= now; returns how many rows went in total.
  std::size_t deleteExpiredSessions(std::int64_t now);

  // Rooms (id is chosen by the caller: random base64url). Throws StoreError for an unknown
  // advisor or a duplicate id.
  Room createRoom(const std::string& id, std::int64_t advisorId, const std::string& name,
                  std::int64_t now);
  std::optional<Room> findRoom(const std::string& id);
  std::vector<Room> roomsOf(std::int64_t advisorId);  // newest first

  // Invitations (id chosen by the caller, it is the token's jti). Throws StoreError for an
  // unknown room or a duplicate id.
  Invitation createInvitation(const std::string& id, const std::string& roomId, std::int64_t now,
                              std::int64_t expiresAt, bool singleUse);
  std::optional<Invitation> findInvitation(const std::string& id);
  // Marks a single-use invitation used; atomic (two concurrent calls: exactly one succeeds).
  // Returns AlreadyUsed if it was used, NotFound if unknown. For non-single-use invitations
  // it succeeds every time and does not mark them. Expiry is not checked here: the signed
  // token carries it, and the returned Invitation has expiresAt for the caller.
  tl::expected<Invitation, Conflict> consumeInvitation(const std::string& id, std::int64_t now);

  // Guests (customers without account). Like sessions, the guest cookie token is stored hashed.
  // Throws StoreError when the room is unknown or the invitation is not one of that room's.
  Guest createGuest(const std::string& guestId, const std::string& token, const std::string& roomId,
                    const std::string& invitationId, const std::string& name, std::int64_t now,
                    std::int64_t expiresAt);
  std::optional<Guest> findGuestByToken(const std::string& token,
                                        std::int64_t now);  // nullopt if expired

  // Audit log: who joined, admitted, rejected, removed, muted, ended, invited, logged in...
  // roomId may be empty for events outside a room (a login). Rooms are not foreign keys here:
  // the log outlives what it describes.
  void appendAudit(const std::string& roomId, std::int64_t at, const std::string& actor,
                   const std::string& action, const std::string& subject,
                   const std::string& detail = {});
  // The room's newest `limit` events, returned oldest first (by `at`, then insertion order).
  std::vector<AuditEvent> auditOf(const std::string& roomId, std::size_t limit = 500);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::store
