#include <limits>

#include <fmt/format.h>

#include <parley/store/store.hpp>

#include "sqlite.hpp"

namespace parley::store::detail {

Statement::Statement(Database& database, sqlite3_stmt* statement, std::string_view operation)
    : database_(database), statement_(statement), operation_(operation) {}

Statement::~Statement() {
  // reset() repeats the last step's error code; that error was already thrown from step().
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}

Statement& Statement::bind(int index, std::int64_t value) {
  const int code = sqlite3_bind_int64(statement_, index, value);
  if (code != SQLITE_OK) database_.fail(operation_, code);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    database_.fail(operation_, SQLITE_TOOBIG);
  // A view's bytes need not outlive this call, so SQLite copies them (SQLITE_TRANSIENT).
  const int code = sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()),
                                     SQLITE_TRANSIENT);
  if (code != SQLITE_OK) database_.fail(operation_, code);
  return *this;
}

Statement& Statement::bind(int index, std::span<const std::uint8_t> blob) {
  if (blob.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    database_.fail(operation_, SQLITE_TOOBIG);
  const int code = sqlite3_bind_blob(statement_, index, blob.data(), static_cast<int>(blob.size()),
                                     SQLITE_TRANSIENT);
  if (code != SQLITE_OK) database_.fail(operation_, code);
  return *this;
}

Statement& Statement::bindNull(int index) {
  const int code = sqlite3_bind_null(statement_, index);
  if (code != SQLITE_OK) database_.fail(operation_, code);
  return *this;
}

bool Statement::step() {
  const int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  database_.fail(operation_, code);
}

void Statement::run() {
  while (step()) {
  }
}

bool Statement::runUnlessDuplicate() {
  const int code = sqlite3_step(statement_);
  if (code == SQLITE_DONE || code == SQLITE_ROW) return true;
  // Extended result codes are on for the connection, so a UNIQUE failure is told apart from a
  // NOT NULL, CHECK or FOREIGN KEY failure, which remain caller bugs.
  if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) return false;
  database_.fail(operation_, code);
}

std::int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(statement_, column);
}

std::string Statement::text(int column) const {
  const auto* bytes = sqlite3_column_text(statement_, column);
  // The size must be read after the text pointer (https://www.sqlite.org/c3ref/column_blob.html).
  const int size = sqlite3_column_bytes(statement_, column);
  if (bytes == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size));
}

std::optional<std::int64_t> Statement::optionalInt64(int column) const {
  if (sqlite3_column_type(statement_, column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(statement_, column);
}

Database::Database(const std::string& location, std::string label) : label_(std::move(label)) {
  // The Store's mutex serialises every call, so SQLite's own per-connection mutex is redundant.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int code = sqlite3_open_v2(location.c_str(), &connection_, flags, nullptr);
  if (code != SQLITE_OK) {
    const std::string message =
        connection_ != nullptr ? sqlite3_errmsg(connection_) : sqlite3_errstr(code);
    sqlite3_close(connection_);
    connection_ = nullptr;
    throw StoreError(fmt::format("cannot open database {}: {}", label_, message));
  }
  sqlite3_extended_result_codes(connection_, 1);
}

Database::~Database() {
  // Statements first: sqlite3_close() refuses to close a connection with live statements. The
  // last connection to close checkpoints the WAL into the main file and removes it.
  statements_.clear();
  sqlite3_close(connection_);
}

Statement Database::prepare(std::string_view sql, std::string_view operation) {
  auto found = statements_.find(std::string(sql));
  if (found == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    // PERSISTENT: the statement lives as long as the connection, so SQLite may allocate it from
    // longer-lived memory instead of the lookaside pool.
    const int code = sqlite3_prepare_v3(connection_, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (code != SQLITE_OK) fail(operation, code);
    found = statements_.emplace(std::string(sql), raw).first;
  }
  return Statement(*this, found->second.get(), operation);
}

void Database::execute(const std::string& sql, std::string_view operation) {
  char* message = nullptr;
  const int code = sqlite3_exec(connection_, sql.c_str(), nullptr, nullptr, &message);
  if (code == SQLITE_OK) return;
  const std::string text = message != nullptr ? message : sqlite3_errstr(code);
  sqlite3_free(message);
  throw StoreError(
      fmt::format("store {}: {} failed: {} (SQLite code {})", label_, operation, text, code));
}

void Database::setBusyTimeout(int milliseconds) {
  sqlite3_busy_timeout(connection_, milliseconds);
}

std::int64_t Database::changes() const {
  return sqlite3_changes64(connection_);
}

std::int64_t Database::lastInsertRowid() const {
  return sqlite3_last_insert_rowid(connection_);
}

bool Database::inTransaction() const {
  return sqlite3_get_autocommit(connection_) == 0;
}

void Database::fail(std::string_view operation, int code) const {
  throw StoreError(fmt::format("store {}: {} failed: {} (SQLite code {})", label_, operation,
                               sqlite3_errmsg(connection_), code));
}

Transaction::Transaction(Database& database) : database_(database) {
  database_.prepare("BEGIN IMMEDIATE", "begin transaction").run();
}

Transaction::~Transaction() {
  // Some errors (SQLITE_FULL, SQLITE_IOERR, …) roll back by themselves; ROLLBACK without an
  // open transaction would only fail again, so check first.
  if (committed_ || !database_.inTransaction()) return;
  try {
    database_.prepare("ROLLBACK", "roll back transaction").run();
  } catch (const StoreError&) {
    // Already unwinding from the error that matters; the connection rolls back when closed.
  }
}

void Transaction::commit() {
  database_.prepare("COMMIT", "commit transaction").run();
  committed_ = true;
}

}  // namespace parley::store::detail
