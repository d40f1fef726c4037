// One libpq connection to PostgreSQL, with the error mapping and reconnection every PostgreSQL user
// in the store layer shares (the job store, and the replication built on it).
#ifndef HPSCHED_STORE_POSTGRES_CONNECTION_H_
#define HPSCHED_STORE_POSTGRES_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct pg_conn;
struct pg_result;

namespace hpsched::store {

// One parameter of a statement: text (also numbers, in their decimal spelling), bytes sent in
// binary (for bytea), or NULL.
struct PgParam {
  std::string value;
  bool binary = false;
  bool null = false;

  static PgParam Text(absl::string_view text) { return {std::string(text), false, false}; }
  static PgParam Bytes(absl::string_view bytes) { return {std::string(bytes), true, false}; }
  static PgParam Int(int64_t value) { return {std::to_string(value), false, false}; }
  static PgParam Null() { return {"", false, true}; }
};

// The rows of a statement, every column in PostgreSQL's binary format: text and bytea as their
// bytes, bigint as 8 bytes (Int64), double precision as 8 bytes (Double), boolean as 1 byte (Bool).
// Movable, owns the PGresult.
class PgResult {
 public:
  explicit PgResult(pg_result* result);
  PgResult(PgResult&&) noexcept;
  PgResult& operator=(PgResult&&) noexcept;
  ~PgResult();

  int rows() const;
  bool IsNull(int row, int column) const;
  // The bytes of a text or bytea column; empty for NULL.
  absl::string_view Bytes(int row, int column) const;
  // A bigint column (0 for NULL). An integer (int4) column reads as Int32.
  int64_t Int64(int row, int column) const;
  int32_t Int32(int row, int column) const;
  // A double precision (float8) column, bit for bit; 0 for NULL.
  double Double(int row, int column) const;
  bool Bool(int row, int column) const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t affected() const;

 private:
  pg_result* result_;
};

// Not thread-safe: the owner serializes its calls (a mutex, or one thread).
//
// Every error is Unavailable when the connection or the server failed (connection lost, server
// shutting down, serialization failures and deadlocks: trying again may succeed) and Internal when
// the statement itself failed; the message starts with "postgres <user@host:port/db>: <what>: " and
// never holds the password, even where libpq would quote the connection string.
//
// A lost connection is noticed by the call that loses it (Unavailable), and the next call outside a
// transaction connects again, first running the OnConnect hook (session settings, session locks).
// Inside a transaction (Begin .. Commit/Rollback) there is no reconnection: the statements after a
// lost connection fail until Rollback. A Commit whose connection is lost has an unknown outcome; it
// is reported as Unavailable, and the caller must treat the change as not acknowledged.
class PgConnection {
 public:
  // Runs on every (re)connection, before any other statement; an error closes the connection.
  using OnConnect = std::function<absl::Status(PgConnection&)>;

  // Connects to `url` (a libpq URI or key=value string; connect_timeout defaults to 5 s, TCP
  // keepalives on). InvalidArgument naming --postgres_url when it does not parse; Unavailable when
  // the server cannot be reached or refuses the login.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(absl::string_view url,
                                                               OnConnect on_connect = nullptr);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // "user@host:port/dbname" of the URL: for messages, without the password.
  const std::string& where() const { return where_; }
  // Sets the hook for the next reconnections (the current connection is not affected).
  void set_on_connect(OnConnect on_connect) { on_connect_ = std::move(on_connect); }

  // Connects again if the connection was lost (outside a transaction). Unavailable on failure.
  absl::Status EnsureConnected();
  // Runs one statement with `params` ($1, $2, ...). `what` names the call in errors.
  absl::StatusOr<PgResult> Exec(absl::string_view what, absl::string_view sql,
                                std::span<const PgParam> params = {});
  // Runs one statement, or several separated by semicolons (no parameters, no rows).
  absl::Status Script(absl::string_view what, absl::string_view sql);

  absl::Status Begin(absl::string_view what);
  absl::Status Commit(absl::string_view what);
  // Never fails: a connection that cannot roll back is closed (the server rolls back).
  void Rollback();
  bool in_transaction() const { return in_transaction_; }

  // The libpq connection, for what this class does not wrap (LISTEN, notifications); null when
  // lost. Valid until the next call of this class.
  pg_conn* raw() { return conn_; }
  // Whether the connection is up as far as libpq knows.
  bool connected() const;

  // `message` without the password of this connection's URL.
  std::string Scrub(absl::string_view message) const;

 private:
  PgConnection() = default;
  absl::Status ConnectNow();
  absl::Status ResultError(absl::string_view what, pg_result* result);

  std::string url_;
  std::string password_;
  std::string where_;
  OnConnect on_connect_;
  pg_conn* conn_ = nullptr;
  bool in_transaction_ = false;
};

// "user@host:port/dbname" for a libpq URL or key=value string, without the password;
// InvalidArgument (not quoting the URL) when it does not parse.
absl::StatusOr<std::string> PgWhere(absl::string_view url);

// A PostgreSQL text[] literal of `items`, each quoted and escaped, for a PgParam::Text.
std::string PgTextArray(const std::vector<std::string>& items);

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_POSTGRES_CONNECTION_H_
