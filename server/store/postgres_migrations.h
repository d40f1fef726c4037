// The PostgreSQL schema as an ordered list of migrations, applied at start under an advisory lock
// so that replicas starting together migrate once.
#ifndef HPSCHED_STORE_POSTGRES_MIGRATIONS_H_
#define HPSCHED_STORE_POSTGRES_MIGRATIONS_H_

#include <span>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/postgres_connection.h"

namespace hpsched::store {

struct PgMigration {
  // 1, 2, 3, ...: the list is in order, without gaps.
  int version;
  // One line for schema_migrations.name and the log.
  const char* name;
  // One or more statements; run in one transaction with the row recording it.
  const char* sql;
  // Whether a server built before this migration still runs correctly against the migrated
  // schema (it only adds tables, columns with defaults, or indexes). A server refuses to start on
  // a database that has a non-additive migration it does not know; additive ones it ignores, which
  // is what lets replicas be upgraded one by one (see docs/operations.md).
  bool additive = true;
  // Run after `sql`, in its transaction, for what SQL alone cannot do (rows whose bytes must be
  // parsed); null for none.
  absl::Status (*run)(PgConnection& connection) = nullptr;
};

// Every migration this build knows, in order. Append, never edit or reorder: a database records
// the versions it applied (schema_migrations) and never runs one twice.
std::span<const PgMigration> PgMigrations();

// Applies the migrations of `migrations` the database lacks, each in its own transaction with its
// schema_migrations row, while holding the session-level advisory lock kPgMigrationLock (waiting
// at most `lock_timeout` for a replica that holds it). Returns how many this call applied (0 when
// another replica had applied them). FailedPrecondition when the database records a non-additive
// migration newer than `migrations` knows; Unavailable/Internal from the database.
absl::StatusOr<int> ApplyPgMigrations(PgConnection& connection,
                                      std::span<const PgMigration> migrations,
                                      absl::Duration lock_timeout);

// The advisory-lock space (first key of pg_advisory_lock(int, int)) of store sessions
// (PostgresJobStore): a store holds (kPgSessionLockSpace, its session_id) while it is open.
inline constexpr int kPgSessionLockSpace = 0x68707331;  // "hps1"

// The key of the migration lock (pg_advisory_lock(bigint)); "hpsched" in ASCII.
inline constexpr int64_t kPgMigrationLock = 0x68707363686564;

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_POSTGRES_MIGRATIONS_H_
