#include "store/postgres_migrations.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/postgres_reports.h"

namespace hpsched::store {
namespace {

// Append, never edit. Job ids compare bytewise (COLLATE "C"), the order the other stores list in,
// whatever the database's default collation.
constexpr PgMigration kMigrations[] = {
    {1, "jobs, meta and store sessions",
     R"sql(
      CREATE TABLE jobs (
        job_id TEXT COLLATE "C" PRIMARY KEY,
        version BIGINT NOT NULL,
        -- hpsched.store.StoredJob (store/job_state.proto).
        job BYTEA NOT NULL,
        create_request_id TEXT NOT NULL,
        -- Served marks written in the background (PutServedMarks), each plus one (0 for none).
        served_end BIGINT NOT NULL DEFAULT 0,
        reserved_end BIGINT NOT NULL DEFAULT 0
      );
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- One row per open store that has not stopped cleanly; its holder keeps the advisory lock
      -- (kSessionLockSpace, session_id) while connected.
      CREATE TABLE store_sessions (
        session_id SERIAL PRIMARY KEY,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
    )sql"},
    // Replicas (docs/replicas.md): additive, so a server of migration 1 still runs beside them.
    {2, "replicas: job heads, change log, per-replica marks, fences, leases",
     R"sql(
      -- The job's lock (FOR UPDATE by mutations) and the change that last wrote it.
      CREATE TABLE replica_heads (
        job_id TEXT COLLATE "C" PRIMARY KEY,
        revision BIGINT NOT NULL
      );
      INSERT INTO replica_heads (job_id, revision) SELECT job_id, 0 FROM jobs;
      -- Every committed change, followed by number (a missed notification loses nothing).
      CREATE TABLE replica_changes (
        seq BIGSERIAL PRIMARY KEY,
        job_id TEXT COLLATE "C" NOT NULL
      );
      -- Each replica's served mark and reservation per job.
      CREATE TABLE replica_marks (
        job_id TEXT COLLATE "C" NOT NULL,
        replica_id TEXT NOT NULL,
        served BIGINT NOT NULL,
        reserved BIGINT NOT NULL,
        PRIMARY KEY (job_id, replica_id)
      );
      -- Pending updates waiting for other replicas' exact marks, and their answers.
      CREATE TABLE replica_fences (
        id BIGSERIAL PRIMARY KEY,
        job_id TEXT COLLATE "C" NOT NULL,
        step BIGINT NOT NULL,
        deadline TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE replica_fence_acks (
        fence_id BIGINT NOT NULL,
        replica_id TEXT NOT NULL,
        served BIGINT NOT NULL,
        PRIMARY KEY (fence_id, replica_id)
      );
      CREATE TABLE replica_leases (
        replica_id TEXT PRIMARY KEY,
        lease_until TIMESTAMPTZ NOT NULL
      );
    )sql"},
    // Metric reports a row each (store/postgres_reports.h), so that a report writes one row, not
    // the job's whole history; the rows' reports move here (MoveReportsOutOfRows). Not additive:
    // a server of schema 2 would read no reports and write them into rows again.
    {3, "metric reports in a table of their own, a row per report",
     R"sql(
      CREATE TABLE metric_reports (
        job_id TEXT COLLATE "C" NOT NULL,
        metric TEXT COLLATE "C" NOT NULL,
        -- The report's place in its metric's log (JobState.report_logs of the job's row).
        seq BIGINT NOT NULL,
        step BIGINT NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        next_step BIGINT NOT NULL,
        PRIMARY KEY (job_id, metric, seq)
      );
    )sql",
     /*additive=*/false, &MoveReportsOutOfRows},
};

}  // namespace

std::span<const PgMigration> PgMigrations() { return kMigrations; }

absl::StatusOr<int> ApplyPgMigrations(PgConnection& connection,
                                      std::span<const PgMigration> migrations,
                                      absl::Duration lock_timeout) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InternalError(absl::StrCat("postgres migrations: entry ", i, " has version ",
                                              migrations[i].version, ", expected ", i + 1));
    }
  }
  RETURN_IF_ERROR(connection.Script(
      "migration lock",
      absl::StrCat("SET lock_timeout = ", absl::ToInt64Milliseconds(lock_timeout))));
  RETURN_IF_ERROR(connection.Script(
      "migration lock", absl::StrCat("SELECT pg_advisory_lock(", kPgMigrationLock, ")")));
  const auto unlock = [&] {
    (void)connection.Script(
        "migration unlock",
        absl::StrCat("SELECT pg_advisory_unlock(", kPgMigrationLock, "); SET lock_timeout = 0"));
  };
  int applied = 0;
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(connection.Script("schema_migrations",
                                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                      "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                      "additive BOOLEAN NOT NULL, "
                                      "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
    ASSIGN_OR_RETURN(PgResult newest,
                     connection.Exec("schema_migrations",
                                     "SELECT coalesce(max(version), 0)::bigint FROM "
                                     "schema_migrations"));
    const int64_t have = newest.Int64(0, 0);
    const int64_t known = static_cast<int64_t>(migrations.size());
    if (have > known) {
      const PgParam params[] = {PgParam::Int(known)};
      ASSIGN_OR_RETURN(PgResult breaking,
                       connection.Exec("schema_migrations",
                                       "SELECT version::bigint, name FROM schema_migrations "
                                       "WHERE version > $1 AND NOT additive ORDER BY version",
                                       params));
      if (breaking.rows() > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("postgres ", connection.where(), ": the database has schema version ",
                         have, ", whose migration ", breaking.Int64(0, 0), " (",
                         breaking.Bytes(0, 1), ") this hpsched-server (schema ", known,
                         ") cannot run with: upgrade this server to a release that knows it"));
      }
      spdlog::warn(
          "postgres {}: the database has schema version {}, newer than this server's {}; the newer "
          "migrations are additive, so this server runs with them",
          connection.where(), have, known);
    }
    for (int64_t version = have; version < known; ++version) {
      const PgMigration& migration = migrations[version];
      RETURN_IF_ERROR(connection.Begin("migration"));
      absl::Status step = connection.Script(
          absl::StrCat("migration ", migration.version, " (", migration.name, ")"), migration.sql);
      if (step.ok() && migration.run != nullptr) step = migration.run(connection);
      if (step.ok()) {
        const PgParam params[] = {PgParam::Int(migration.version), PgParam::Text(migration.name),
                                  PgParam::Text(migration.additive ? "true" : "false")};
        step = connection
                   .Exec("schema_migrations",
                         "INSERT INTO schema_migrations (version, name, additive) "
                         "VALUES ($1, $2, $3)",
                         params)
                   .status();
      }
      if (step.ok()) step = connection.Commit("migration");
      if (!step.ok()) {
        connection.Rollback();
        return step;
      }
      spdlog::info("postgres {}: applied schema migration {} ({})", connection.where(),
                   migration.version, migration.name);
      ++applied;
    }
    return absl::OkStatus();
  }();
  unlock();
  if (!status.ok()) return status;
  return applied;
}

}  // namespace hpsched::store
