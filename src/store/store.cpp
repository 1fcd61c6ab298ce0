#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <parley/base/log.hpp>
#include <parley/store/store.hpp>

#include "migrations.hpp"
#include "sqlite.hpp"

namespace parley::store {
namespace {

using detail::Database;
using detail::Statement;
using detail::Transaction;

// Only another process (the sqlite3 shell, a backup) can hold the lock against us: inside the
// process every call is serialised by the mutex. Five seconds rides out a backup step.
constexpr int kBusyTimeoutMs = 5000;

std::shared_ptr<spdlog::logger> logger() {
  static const auto instance = log::get("store");
  return instance;
}

using TokenHash = std::array<std::uint8_t, 32>;

// Session and guest tokens are looked up by SHA-256 only. The tokens are 256-bit random values,
// so a plain hash (no salt, no stretching) is enough to make a stolen table useless.
TokenHash hashToken(const std::string& token) {
  TokenHash hash{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), hash.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != hash.size())
    throw StoreError("store: SHA-256 of a token failed (OpenSSL EVP_Digest)");
  return hash;
}

int readUserVersion(Database& database) {
  auto statement = database.prepare("PRAGMA user_version", "read schema version");
  statement.step();
  return static_cast<int>(statement.int64(0));
}

// Creates a missing database file with mode 0600 before SQLite opens it: it holds password
// hashes, and SQLite would create it with 0644 under the usual umask. The -wal and -shm files
// SQLite creates later take the main file's permissions. An empty file is a valid empty database.
void createPrivateFile(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    throw StoreError(
        fmt::format("cannot open database {}: {}", file.string(), std::strerror(errno)));
  ::close(fd);
}

Advisor advisorFrom(const Statement& row) {
  return Advisor{row.int64(0), row.text(1), row.text(2), row.text(3), row.int64(4)};
}

Room roomFrom(const Statement& row) {
  return Room{row.text(0), row.int64(1), row.text(2), row.int64(3)};
}

Invitation invitationFrom(const Statement& row) {
  return Invitation{row.text(0),  row.text(1),       row.int64(2),
                    row.int64(3), row.int64(4) != 0, row.optionalInt64(5)};
}

Guest guestFrom(const Statement& row) {
  return Guest{row.text(0), row.text(1), row.text(2), row.text(3), row.int64(4), row.int64(5)};
}

constexpr std::string_view kSelectAdvisorByUsername =
    "SELECT id, username, display_name, password_hash, created_at FROM advisors "
    "WHERE username = ?";
constexpr std::string_view kSelectAdvisorById =
    "SELECT id, username, display_name, password_hash, created_at FROM advisors WHERE id = ?";
constexpr std::string_view kSelectInvitation =
    "SELECT id, room_id, created_at, expires_at, single_use, used_at FROM invitations WHERE id = ?";

}  // namespace

struct Store::Impl {
  Impl(const std::string& location, std::string label, bool memoryOnly)
      : database(location, std::move(label)), inMemory(memoryOnly) {}

  void configure();
  void migrate();

  std::mutex mutex;
  Database database;
  const bool inMemory;
};

void Store::Impl::configure() {
  database.setBusyTimeout(kBusyTimeoutMs);

  // WAL: readers do not block the writer, and a commit is one sequential append.
  // synchronous=FULL: in WAL mode NORMAL may lose the last commits on power loss; FULL syncs
  // the WAL at every commit, so a transaction that returned is durable
  // (https://www.sqlite.org/pragma.html#pragma_synchronous).
  database.execute("PRAGMA journal_mode = WAL", "enable WAL journal");
  std::string journalMode;
  {
    auto statement = database.prepare("PRAGMA journal_mode", "read journal mode");
    statement.step();
    journalMode = statement.text(0);
  }
  // An in-memory database has no file to keep a WAL beside; SQLite keeps it in "memory" mode.
  if (!inMemory && journalMode != "wal")
    throw StoreError(fmt::format(
        "cannot open database {}: SQLite refused the WAL journal (journal_mode is '{}'); is it on "
        "a network file system?",
        database.label(), journalMode));
  database.execute("PRAGMA synchronous = FULL", "set synchronous=FULL");
}

// Migration N takes user_version from N-1 to N, each in its own transaction together with the
// version bump, so a crash leaves the database at a whole version. The version is re-read inside
// the transaction's write lock: two processes opening the same file never both apply a step.
void Store::Impl::migrate() {
  const auto steps = detail::migrations();
  const int latest = static_cast<int>(steps.size());
  // Foreign keys cannot be switched inside a transaction, and a table rebuild needs them off
  // (https://www.sqlite.org/lang_altertable.html); foreign_key_check below stands in.
  database.execute("PRAGMA foreign_keys = OFF", "disable foreign keys for migrations");
  for (;;) {
    Transaction transaction(database);
    const int current = readUserVersion(database);
    if (current > latest)
      throw StoreError(fmt::format(
          "database {} has schema version {}, newer than this build of parley knows ({}); run "
          "the newer parley or restore a backup made by this version",
          database.label(), current, latest));
    if (current == latest) break;
    const int next = current + 1;
    const std::string operation = fmt::format("migration {}", next);
    database.execute(std::string(steps[static_cast<std::size_t>(current)]), operation);
    {
      auto check = database.prepare("PRAGMA foreign_key_check", "foreign key check");
      if (check.step())
        throw StoreError(fmt::format("store {}: {} left rows violating a foreign key in table {}",
                                     database.label(), operation, check.text(0)));
    }
    database.execute(fmt::format("PRAGMA user_version = {}", next), operation);
    transaction.commit();
    // Tests open many in-memory stores; only a real file's migration is worth an info line.
    logger()->log(inMemory ? spdlog::level::debug : spdlog::level::info,
                  "database {}: applied schema migration {}", database.label(), next);
  }
  database.execute("PRAGMA foreign_keys = ON", "enable foreign keys");
  auto check = database.prepare("PRAGMA foreign_keys", "read foreign keys");
  if (!check.step() || check.int64(0) != 1)
    throw StoreError(fmt::format("cannot open database {}: SQLite does not enforce foreign keys",
                                 database.label()));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() = default;

std::unique_ptr<Store> Store::open(const std::filesystem::path& file) {
  createPrivateFile(file);
  auto impl = std::make_unique<Impl>(file.string(), file.string(), false);
  impl->configure();
  impl->migrate();
  logger()->info("opened database {} (schema version {})", file.string(),
                 readUserVersion(impl->database));
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

std::unique_ptr<Store> Store::openInMemory() {
  auto impl = std::make_unique<Impl>(":memory:", ":memory:", true);
  impl->configure();
  impl->migrate();
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

int Store::schemaVersion() const {
  std::lock_guard lock(impl_->mutex);
  return readUserVersion(impl_->database);
}

int Store::latestSchemaVersion() {
  return static_cast<int>(detail::migrations().size());
}

ConnectionSettings Store::connectionSettings() const {
  std::lock_guard lock(impl_->mutex);
  auto& database = impl_->database;
  const auto read = [&database](std::string_view sql) {
    auto statement = database.prepare(sql, "read connection settings");
    statement.step();
    return statement.text(0);
  };
  ConnectionSettings settings;
  settings.journalMode = read("PRAGMA journal_mode");
  settings.foreignKeys = read("PRAGMA foreign_keys") == "1";
  settings.synchronous = std::stoi(read("PRAGMA synchronous"));
  settings.busyTimeoutMs = std::stoi(read("PRAGMA busy_timeout"));
  return settings;
}

tl::expected<Advisor, Conflict> Store::createAdvisor(const std::string& username,
                                                     const std::string& displayName,
                                                     const std::string& passwordHash,
                                                     std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  auto& database = impl_->database;
  auto insert = database.prepare(
      "INSERT INTO advisors (username, display_name, password_hash, created_at) "
      "VALUES (?, ?, ?, ?)",
      "create advisor");
  insert.bind(1, username).bind(2, displayName).bind(3, passwordHash).bind(4, now);
  if (!insert.runUnlessDuplicate()) return tl::make_unexpected(Conflict::UsernameTaken);
  return Advisor{database.lastInsertRowid(), username, displayName, passwordHash, now};
}

std::optional<Advisor> Store::findAdvisorByUsername(const std::string& username) {
  std::lock_guard lock(impl_->mutex);
  // The column's NOCASE collation applies to this comparison and lets it use the UNIQUE index.
  auto select = impl_->database.prepare(kSelectAdvisorByUsername, "find advisor by username");
  select.bind(1, username);
  if (!select.step()) return std::nullopt;
  return advisorFrom(select);
}

std::optional<Advisor> Store::findAdvisor(std::int64_t id) {
  std::lock_guard lock(impl_->mutex);
  auto select = impl_->database.prepare(kSelectAdvisorById, "find advisor");
  select.bind(1, id);
  if (!select.step()) return std::nullopt;
  return advisorFrom(select);
}

std::int64_t Store::advisorCount() {
  std::lock_guard lock(impl_->mutex);
  auto select = impl_->database.prepare("SELECT count(*) FROM advisors", "count advisors");
  select.step();
  return select.int64(0);
}

void Store::setPasswordHash(std::int64_t advisorId, const std::string& passwordHash) {
  std::lock_guard lock(impl_->mutex);
  auto& database = impl_->database;
  database.prepare("UPDATE advisors SET password_hash = ? WHERE id = ?", "set password hash")
      .bind(1, passwordHash)
      .bind(2, advisorId)
      .run();
  if (database.changes() == 0)
    throw StoreError(fmt::format("store {}: set password hash failed: no advisor with id {}",
                                 database.label(), advisorId));
}

void Store::createSession(const std::string& token, std::int64_t advisorId, std::int64_t now,
                          std::int64_t expiresAt) {
  const TokenHash hash = hashToken(token);
  std::lock_guard lock(impl_->mutex);
  impl_->database
      .prepare(
          "INSERT INTO sessions (token_hash, advisor_id, created_at, expires_at) "
          "VALUES (?, ?, ?, ?)",
          "create session")
      .bind(1, hash)
      .bind(2, advisorId)
      .bind(3, now)
      .bind(4, expiresAt)
      .run();
}

std::optional<Session> Store::findSession(const std::string& token, std::int64_t now) {
  const TokenHash hash = hashToken(token);
  std::lock_guard lock(impl_->mutex);
  auto select = impl_->database.prepare(
      "SELECT advisor_id, created_at, expires_at FROM sessions "
      "WHERE token_hash = ? AND expires_at > ?",
      "find session");
  select.bind(1, hash).bind(2, now);
  if (!select.step()) return std::nullopt;
  return Session{select.int64(0), select.int64(1), select.int64(2)};
}

void Store::deleteSession(const std::string& token) {
  const TokenHash hash = hashToken(token);
  std::lock_guard lock(impl_->mutex);
  impl_->database.prepare("DELETE FROM sessions WHERE token_hash = ?", "delete session")
      .bind(1, hash)
      .run();
}

std::size_t Store::deleteExpiredSessions(std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  auto& database = impl_->database;
  Transaction transaction(database);
  database.prepare("DELETE FROM sessions WHERE expires_at <= ?", "delete expired sessions")
      .bind(1, now)
      .run();
  const std::int64_t sessions = database.changes();
  database.prepare("DELETE FROM guests WHERE expires_at <= ?", "delete expired guests")
      .bind(1, now)
      .run();
  const std::int64_t guests = database.changes();
  transaction.commit();
  return static_cast<std::size_t>(sessions + guests);
}

Room Store::createRoom(const std::string& id, std::int64_t advisorId, const std::string& name,
                       std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  impl_->database
      .prepare("INSERT INTO rooms (id, advisor_id, name, created_at) VALUES (?, ?, ?, ?)",
               "create room")
      .bind(1, id)
      .bind(2, advisorId)
      .bind(3, name)
      .bind(4, now)
      .run();
  return Room{id, advisorId, name, now};
}

std::optional<Room> Store::findRoom(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  auto select = impl_->database.prepare(
      "SELECT id, advisor_id, name, created_at FROM rooms WHERE id = ?", "find room");
  select.bind(1, id);
  if (!select.step()) return std::nullopt;
  return roomFrom(select);
}

std::vector<Room> Store::roomsOf(std::int64_t advisorId) {
  std::lock_guard lock(impl_->mutex);
  // rowid breaks ties between rooms created in the same second: the later insert is newer.
  auto select = impl_->database.prepare(
      "SELECT id, advisor_id, name, created_at FROM rooms WHERE advisor_id = ? "
      "ORDER BY created_at DESC, rowid DESC",
      "list rooms");
  select.bind(1, advisorId);
  std::vector<Room> rooms;
  while (select.step())
    rooms.push_back(roomFrom(select));
  return rooms;
}

Invitation Store::createInvitation(const std::string& id, const std::string& roomId,
                                   std::int64_t now, std::int64_t expiresAt, bool singleUse) {
  std::lock_guard lock(impl_->mutex);
  impl_->database
      .prepare(
          "INSERT INTO invitations (id, room_id, created_at, expires_at, single_use) "
          "VALUES (?, ?, ?, ?, ?)",
          "create invitation")
      .bind(1, id)
      .bind(2, roomId)
      .bind(3, now)
      .bind(4, expiresAt)
      .bind(5, std::int64_t{singleUse ? 1 : 0})
      .run();
  return Invitation{id, roomId, now, expiresAt, singleUse, std::nullopt};
}

std::optional<Invitation> Store::findInvitation(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  auto select = impl_->database.prepare(kSelectInvitation, "find invitation");
  select.bind(1, id);
  if (!select.step()) return std::nullopt;
  return invitationFrom(select);
}

tl::expected<Invitation, Conflict> Store::consumeInvitation(const std::string& id,
                                                            std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  auto& database = impl_->database;
  // The mutex makes this atomic within the process; the IMMEDIATE transaction's write lock
  // does the same against another process on the file, and the UPDATE's "used_at IS NULL"
  // makes the mark itself conditional.
  Transaction transaction(database);
  std::optional<Invitation> invitation;
  {
    auto select = database.prepare(kSelectInvitation, "consume invitation");
    select.bind(1, id);
    if (select.step()) invitation = invitationFrom(select);
  }
  if (!invitation) return tl::make_unexpected(Conflict::NotFound);
  if (!invitation->singleUse) return *invitation;
  if (invitation->usedAt) return tl::make_unexpected(Conflict::AlreadyUsed);
  database
      .prepare("UPDATE invitations SET used_at = ? WHERE id = ? AND used_at IS NULL",
               "consume invitation")
      .bind(1, now)
      .bind(2, id)
      .run();
  if (database.changes() != 1) return tl::make_unexpected(Conflict::AlreadyUsed);
  transaction.commit();
  invitation->usedAt = now;
  return *invitation;
}

Guest Store::createGuest(const std::string& guestId, const std::string& token,
                         const std::string& roomId, const std::string& invitationId,
                         const std::string& name, std::int64_t now, std::int64_t expiresAt) {
  const TokenHash hash = hashToken(token);
  std::lock_guard lock(impl_->mutex);
  impl_->database
      .prepare(
          "INSERT INTO guests (id, token_hash, room_id, invitation_id, name, created_at, "
          "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
          "create guest")
      .bind(1, guestId)
      .bind(2, hash)
      .bind(3, roomId)
      .bind(4, invitationId)
      .bind(5, name)
      .bind(6, now)
      .bind(7, expiresAt)
      .run();
  return Guest{guestId, roomId, invitationId, name, now, expiresAt};
}

std::optional<Guest> Store::findGuestByToken(const std::string& token, std::int64_t now) {
  const TokenHash hash = hashToken(token);
  std::lock_guard lock(impl_->mutex);
  auto select = impl_->database.prepare(
      "SELECT id, room_id, invitation_id, name, created_at, expires_at FROM guests "
      "WHERE token_hash = ? AND expires_at > ?",
      "find guest");
  select.bind(1, hash).bind(2, now);
  if (!select.step()) return std::nullopt;
  return guestFrom(select);
}

void Store::appendAudit(const std::string& roomId, std::int64_t at, const std::string& actor,
                        const std::string& action, const std::string& subject,
                        const std::string& detail) {
  std::lock_guard lock(impl_->mutex);
  impl_->database
      .prepare(
          "INSERT INTO audit_log (room_id, at, actor, action, subject, detail) "
          "VALUES (?, ?, ?, ?, ?, ?)",
          "append audit event")
      .bind(1, roomId)
      .bind(2, at)
      .bind(3, actor)
      .bind(4, action)
      .bind(5, subject)
      .bind(6, detail)
      .run();
}

std::vector<AuditEvent> Store::auditOf(const std::string& roomId, std::size_t limit) {
  const auto rowLimit = static_cast<std::int64_t>(std::min<std::size_t>(
      limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
  std::lock_guard lock(impl_->mutex);
  // The newest `limit` events (what an audit view needs), then put back in time order.
  auto select = impl_->database.prepare(
      "SELECT id, room_id, at, actor, action, subject, detail FROM ("
      "  SELECT * FROM audit_log WHERE room_id = ? ORDER BY at DESC, id DESC LIMIT ?"
      ") ORDER BY at, id",
      "read audit log");
  select.bind(1, roomId).bind(2, rowLimit);
  std::vector<AuditEvent> events;
  while (select.step())
    events.push_back(AuditEvent{select.int64(0), select.text(1), select.int64(2), select.text(3),
                                select.text(4), select.text(5), select.text(6)});
  return events;
}

}  // namespace parley::store
