#include <array>

#include "migrations.hpp"

namespace parley::store::detail {
namespace {

// Conventions: STRICT tables (SQLite >= 3.37, Debian 12 has 3.40) so a value of the wrong type
// is an error rather than silently stored; times are INTEGER Unix seconds; token hashes are the
// 32 raw bytes of SHA-256. Every foreign key column has an index: SQLite does not create one, and
// ON DELETE CASCADE would otherwise scan the child table
// (https://www.sqlite.org/foreignkeys.html#fk_indexes).
//
// A migration that rebuilds a table must follow https://www.sqlite.org/lang_altertable.html
// ("Making Other Kinds Of Table Schema Changes"): the runner already switches foreign keys off
// around migrations and runs PRAGMA foreign_key_check before each commit.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE advisors (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reuse an id that audit lines name
  username      TEXT    NOT NULL COLLATE NOCASE UNIQUE CHECK (username <> ''),
  display_name  TEXT    NOT NULL,
  password_hash TEXT    NOT NULL,
  created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
  token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
  advisor_id INTEGER NOT NULL REFERENCES advisors (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_advisor ON sessions (advisor_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE rooms (
  id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
  advisor_id INTEGER NOT NULL REFERENCES advisors (id) ON DELETE CASCADE,
  name       TEXT    NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX rooms_by_advisor ON rooms (advisor_id, created_at);

CREATE TABLE invitations (
  id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
  room_id    TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  single_use INTEGER NOT NULL CHECK (single_use IN (0, 1)),
  used_at    INTEGER,
  UNIQUE (id, room_id)  -- parent key for guests: a guest's invitation is one of its room's
) STRICT;
CREATE INDEX invitations_by_room ON invitations (room_id);

CREATE TABLE guests (
  id            TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
  token_hash    BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  room_id       TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  invitation_id TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  FOREIGN KEY (invitation_id, room_id) REFERENCES invitations (id, room_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX guests_by_room ON guests (room_id);
CREATE INDEX guests_by_invitation ON guests (invitation_id, room_id);
CREATE INDEX guests_by_expiry ON guests (expires_at);

-- No foreign key to rooms: the log must outlive what it describes, and events such as a login
-- belong to no room (room_id '').
CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id TEXT    NOT NULL,
  at      INTEGER NOT NULL,
  actor   TEXT    NOT NULL,
  action  TEXT    NOT NULL,
  subject TEXT    NOT NULL,
  detail  TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_log_by_room ON audit_log (room_id, at);
)sql";

constexpr std::array kMigrations = {kInitialSchema};

}  // namespace

std::span<const std::string_view> migrations() {
  return kMigrations;
}

}  // namespace parley::store::detail
