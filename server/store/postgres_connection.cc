#include "store/postgres_connection.h"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace hpsched::store {
namespace {

// SQLSTATE classes where trying again may succeed: connection exceptions (08), insufficient
// resources (53), operator intervention (57: shutdown, cannot connect now), serialization failures
// and deadlocks (40001, 40P01).
bool Retriable(absl::string_view sqlstate) {
  return absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "53") ||
         absl::StartsWith(sqlstate, "57") || sqlstate == "40001" || sqlstate == "40P01";
}

struct ConninfoDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

}  // namespace

PgResult::PgResult(pg_result* result) : result_(result) {}
PgResult::PgResult(PgResult&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}
PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

int PgResult::rows() const { return PQntuples(result_); }

bool PgResult::IsNull(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }

absl::string_view PgResult::Bytes(int row, int column) const {
  if (IsNull(row, column)) return {};
  return absl::string_view(PQgetvalue(result_, row, column), PQgetlength(result_, row, column));
}

int64_t PgResult::Int64(int row, int column) const {
  const absl::string_view bytes = Bytes(row, column);
  if (bytes.size() == 4) return Int32(row, column);
  if (bytes.size() != 8) return 0;
  uint64_t value;
  std::memcpy(&value, bytes.data(), 8);
  return static_cast<int64_t>(be64toh(value));
}

int32_t PgResult::Int32(int row, int column) const {
  const absl::string_view bytes = Bytes(row, column);
  if (bytes.size() != 4) return 0;
  uint32_t value;
  std::memcpy(&value, bytes.data(), 4);
  return static_cast<int32_t>(be32toh(value));
}

double PgResult::Double(int row, int column) const {
  const absl::string_view bytes = Bytes(row, column);
  if (bytes.size() != 8) return 0;
  uint64_t bits;
  std::memcpy(&bits, bytes.data(), 8);
  bits = be64toh(bits);
  double value;
  std::memcpy(&value, &bits, 8);
  return value;
}

bool PgResult::Bool(int row, int column) const {
  const absl::string_view bytes = Bytes(row, column);
  return bytes.size() == 1 && bytes[0] != 0;
}

int64_t PgResult::affected() const {
  const char* tuples = PQcmdTuples(result_);
  return tuples == nullptr || *tuples == '\0' ? 0 : std::strtoll(tuples, nullptr, 10);
}

absl::StatusOr<std::string> PgWhere(absl::string_view url) {
  char* error = nullptr;
  const std::string text(url);
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> options(PQconninfoParse(text.c_str(), &error));
  if (options == nullptr) {
    // libpq's message may quote the string, password and all.
    PQfreemem(error);
    return absl::InvalidArgumentError(
        "--postgres_url: does not parse as a libpq URI (postgresql://user:password@host:port/db) "
        "or key=value connection string");
  }
  std::string user, host, port, dbname;
  for (PQconninfoOption* option = options.get(); option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const absl::string_view keyword = option->keyword;
    if (keyword == "user") user = option->val;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = option->val;
    if (keyword == "port") port = option->val;
    if (keyword == "dbname") dbname = option->val;
  }
  return absl::StrCat(user.empty() ? "" : absl::StrCat(user, "@"),
                      host.empty() ? "localhost" : host, ":", port.empty() ? "5432" : port, "/",
                      dbname.empty() ? user : dbname);
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(absl::string_view url,
                                                                    OnConnect on_connect) {
  if (url.empty()) {
    return absl::InvalidArgumentError(
        "--postgres_url: must be set with --store=postgres (or HPSCHED_POSTGRES_URL), e.g. "
        "postgresql://hpsched@db.example:5432/hpsched");
  }
  std::unique_ptr<PgConnection> connection(new PgConnection());
  auto where = PgWhere(url);
  if (!where.ok()) return where.status();
  connection->where_ = *where;
  connection->url_ = std::string(url);
  {
    char* error = nullptr;
    std::unique_ptr<PQconninfoOption, ConninfoDeleter> options(
        PQconninfoParse(connection->url_.c_str(), &error));
    PQfreemem(error);
    for (PQconninfoOption* option = options.get(); option != nullptr && option->keyword != nullptr;
         ++option) {
      if (option->val != nullptr && absl::string_view(option->keyword) == "password") {
        connection->password_ = option->val;
      }
    }
  }
  connection->on_connect_ = std::move(on_connect);
  if (absl::Status status = connection->ConnectNow(); !status.ok()) return status;
  return connection;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::string PgConnection::Scrub(absl::string_view message) const {
  std::string text(absl::StripTrailingAsciiWhitespace(message));
  if (password_.size() >= 1) text = absl::StrReplaceAll(text, {{password_, "<password>"}});
  absl::StrReplaceAll({{"\n", " "}}, &text);
  return text;
}

bool PgConnection::connected() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

absl::Status PgConnection::ConnectNow() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  in_transaction_ = false;
  // Defaults first: a value in the URL (expanded from dbname) overrides them.
  const char* keywords[] = {
      "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "application_name", "dbname",          nullptr};
  const char* values[] = {"5", "1", "10", "3", "3", "hpsched-server", url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("postgres ", where_, ": cannot connect: out of memory"));
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("postgres ", where_, ": cannot connect: ", Scrub(PQerrorMessage(conn_))));
    PQfinish(conn_);
    conn_ = nullptr;
    return status;
  }
  // Acknowledged means committed and flushed to the server's WAL, whatever the database's default.
  absl::Status status = Script("session settings", "SET synchronous_commit = on");
  if (status.ok() && on_connect_) status = on_connect_(*this);
  if (!status.ok()) {
    PQfinish(conn_);
    conn_ = nullptr;
    in_transaction_ = false;
  }
  return status;
}

absl::Status PgConnection::EnsureConnected() {
  if (connected()) return absl::OkStatus();
  if (in_transaction_) {
    return absl::UnavailableError(
        absl::StrCat("postgres ", where_, ": connection lost inside a transaction"));
  }
  return ConnectNow();
}

absl::Status PgConnection::ResultError(absl::string_view what, pg_result* result) {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const std::string sqlstate = state == nullptr ? "" : state;
  const std::string message = Scrub(result != nullptr && *PQresultErrorMessage(result) != '\0'
                                        ? PQresultErrorMessage(result)
                                        : PQerrorMessage(conn_));
  const std::string text = absl::StrCat("postgres ", where_, ": ", what, ": ", message);
  if (result != nullptr) PQclear(result);
  if (sqlstate.empty() || PQstatus(conn_) != CONNECTION_OK || Retriable(sqlstate)) {
    return absl::UnavailableError(text);
  }
  return absl::InternalError(text);
}

absl::StatusOr<PgResult> PgConnection::Exec(absl::string_view what, absl::string_view sql,
                                            std::span<const PgParam> params) {
  if (absl::Status status = EnsureConnected(); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat(status.message(), " (", what, ")"));
  }
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size());
  std::vector<int> formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].null ? nullptr : params[i].value.data();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
  const std::string statement(sql);
  pg_result* result = PQexecParams(conn_, statement.c_str(), static_cast<int>(params.size()),
                                   nullptr, values.data(), lengths.data(), formats.data(),
                                   /*resultFormat=*/1);
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return ResultError(what, result);
  return PgResult(result);
}

absl::Status PgConnection::Script(absl::string_view what, absl::string_view sql) {
  if (absl::Status status = EnsureConnected(); !status.ok()) return status;
  const std::string statement(sql);
  pg_result* result = PQexec(conn_, statement.c_str());
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return ResultError(what, result);
  PQclear(result);
  return absl::OkStatus();
}

absl::Status PgConnection::Begin(absl::string_view what) {
  if (absl::Status status = Script(absl::StrCat(what, ": begin"), "BEGIN"); !status.ok()) {
    return status;
  }
  in_transaction_ = true;
  return absl::OkStatus();
}

absl::Status PgConnection::Commit(absl::string_view what) {
  absl::Status status = Script(absl::StrCat(what, ": commit"), "COMMIT");
  in_transaction_ = false;
  return status;
}

void PgConnection::Rollback() {
  in_transaction_ = false;
  if (!connected()) return;
  pg_result* result = PQexec(conn_, "ROLLBACK");
  const bool ok = result != nullptr && PQresultStatus(result) == PGRES_COMMAND_OK;
  if (result != nullptr) PQclear(result);
  if (!ok) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

std::string PgTextArray(const std::vector<std::string>& items) {
  std::string text = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += ',';
    text += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += '"';
  }
  return text + "}";
}

}  // namespace hpsched::store
