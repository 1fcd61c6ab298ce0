// A thin RAII layer over the SQLite C API: one connection, a cache of prepared statements, and
// every unexpected result code turned into StoreError naming the operation and the database.
// Not thread-safe by itself: Store serialises all use behind its mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include <sqlite3.h>

namespace parley::store::detail {

class Database;

// One use of a cached prepared statement. Parameters and columns are numbered as in SQLite
// (bind from 1, columns from 0). The destructor resets the statement, so the next user finds it
// fresh and a finished read does not keep its snapshot of the WAL open.
class Statement {
 public:
  Statement(Database& database, sqlite3_stmt* statement, std::string_view operation);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::span<const std::uint8_t> blob);
  Statement& bindNull(int index);

  // One step: true when a row is ready, false when the statement has finished.
  bool step();
  // Runs a statement that returns no rows.
  void run();
  // Runs an INSERT; returns false instead of throwing when it broke a UNIQUE or PRIMARY KEY
  // constraint, the one constraint failure callers are expected to see.
  bool runUnlessDuplicate();

  std::int64_t int64(int column) const;
  std::string text(int column) const;
  std::optional<std::int64_t> optionalInt64(int column) const;

 private:
  Database& database_;
  sqlite3_stmt* statement_;
  std::string_view operation_;
};

class Database {
 public:
  // `location` is a file path or ":memory:"; `label` names the database in error messages.
  // Throws StoreError when SQLite cannot open it.
  Database(const std::string& location, std::string label);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // The cached statement for `sql`, prepared on first use. `sql` must be one statement.
  Statement prepare(std::string_view sql, std::string_view operation);
  // Runs one or more statements without caching them (schema, pragmas, migrations).
  void execute(const std::string& sql, std::string_view operation);

  // How long a statement waits for another process's lock before failing with SQLITE_BUSY.
  void setBusyTimeout(int milliseconds);

  std::int64_t changes() const;
  std::int64_t lastInsertRowid() const;
  bool inTransaction() const;
  const std::string& label() const { return label_; }

  // Throws StoreError for result `code` with the connection's current error message.
  [[noreturn]] void fail(std::string_view operation, int code) const;

 private:
  struct StatementDeleter {
    void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
  };

  sqlite3* connection_ = nullptr;
  std::string label_;
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, StatementDeleter>> statements_;
};

// BEGIN IMMEDIATE … COMMIT, rolled back when destroyed uncommitted (an exception unwinding).
// IMMEDIATE takes the write lock up front: a read-then-write transaction can then never fail
// halfway with SQLITE_BUSY because another process wrote in between; it waits busy_timeout at
// BEGIN instead (https://www.sqlite.org/lang_transaction.html).
class Transaction {
 public:
  explicit Transaction(Database& database);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit();

 private:
  Database& database_;
  bool committed_ = false;
};

}  // namespace parley::store::detail
