// The job table: every job's record and compiled plan, kept in memory and written through a
// JobStore.
#ifndef HPSCHED_JOBS_JOB_REGISTRY_H_
#define HPSCHED_JOBS_JOB_REGISTRY_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/job_plan.h"
#include "jobs/clock.h"
#include "jobs/executor.h"
#include "store/job_store.h"
#include "store/shared_job_store.h"

namespace hpsched::jobs {

inline constexpr size_t kMaxRequestIdLength = 128;
inline constexpr size_t kMaxUpdatesPerRequest = 64;

// A job as the registry holds it: immutable, shared with in-flight reads, replaced whole on change.
struct Job {
  // `served`: the served mark as the store holds it, which also bounds what may be served unseen.
  // `revision`: the shared database's change that wrote the record (0 without one).
  Job(core::JobRecord r, std::shared_ptr<const core::JobPlan> p, int64_t served = -1,
      int64_t rev = 0)
      : record(std::move(r)),
        plan(std::move(p)),
        revision(rev),
        served_through(served),
        reserved_through(served),
        flushed_through(served) {}

  core::JobRecord record;
  std::shared_ptr<const core::JobPlan> plan;
  const int64_t revision;
  // The highest step GetValues has served (-1 for none): the mutable part, carried over to the job
  // that replaces this one, written to the store with the next mutation and by the served-mark
  // flusher (see JobRegistry::StartServedMarkFlusher).
  mutable std::atomic<int64_t> served_through;
  // The highest step the store holds as reserved: readers serve up to it without waiting. Raised by
  // the flusher after its transaction commits, never before.
  mutable std::atomic<int64_t> reserved_through;
  // The served mark the store holds (the flusher writes the marks that grew past it).
  mutable std::atomic<int64_t> flushed_through;
  // Set while a mutation is replacing this job: readers must not serve from it (see MarkServed).
  mutable std::atomic<bool> closing{false};
  // With replicas: the lowest step of another replica's pending update (docs/replicas.md, R3);
  // reads of it or later wait. core::kStepLimit for none.
  mutable std::atomic<int64_t> fence_step{core::kStepLimit};
};

// A change the registry made, told to observers in the order the changes were made.
struct JobEvent {
  // kUnchanged: a mutation that had closed the job for replacing (see MarkServed) ended without
  // changing it (it failed, or was a retry or a duplicate report); readers that met the job
  // closing read it again.
  enum class Type { kUpdated, kMetricsReported, kPlateauReduced, kDeleted, kUnchanged };
  Type type;
  std::string job_id;
  // The job after the change (the same job for kUnchanged); null after a delete.
  std::shared_ptr<const Job> job;
  // The first step whose values changed (updates, plateau reductions).
  int64_t effective_step = 0;
};

// Receives every change. Called with the registry's write lock held: must only note the event
// (queue it, hand work to an executor) and must not call the registry's mutations. Every mutation
// that closes a job (see MarkServed) ends with one event on that job, so a reader that met the job
// closing can wait for the job's next event instead of polling.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  virtual void OnJobEvent(const JobEvent& event) = 0;
};

// One change of UpdateJob: a segment for a hyperparameter.
struct SegmentChange {
  std::string hyperparameter;
  core::SegmentSpec segment;
};

// What ReportMetrics did.
struct ReportResult {
  std::shared_ptr<const Job> job;
  // Every (metric, value) had been reported before: nothing changed.
  bool duplicate = false;
  // Steps at which the report made reduce_on_plateau schedules reduce, increasing.
  std::vector<int64_t> reduction_steps;
};

struct JobPage {
  std::vector<std::shared_ptr<const Job>> jobs;
  // The id to continue after, empty on the last page.
  std::string next_after;
};

// Thread-safe. Reads (Get, List) take a shared lock only long enough to copy a pointer; mutations
// take the exclusive lock, and write through the store before they change the table, so a failed
// write changes nothing.
class JobRegistry {
 public:
  // `store` and `clock` must outlive the registry. Create refuses jobs beyond `max_jobs`.
  JobRegistry(store::JobStore* store, const Clock* clock, size_t max_jobs = 1'000'000);

  // Loads every job from the store and compiles it. Errors: the store's, or Internal (naming the
  // job) for a stored spec that no longer compiles.
  absl::Status Load();

  // Creates job `job_id` from a validated spec. Returns the existing job when `request_id` matches
  // the request that created it, or when the spec is identical; AlreadyExists when a different job
  // has that id. Errors from validation are InvalidArgument with paths under "job"; `job_id` and
  // `request_id` are checked too.
  absl::StatusOr<std::shared_ptr<const Job>> Create(absl::string_view job_id, core::JobSpec spec,
                                                    absl::string_view request_id);
  // NotFound if there is no such job.
  absl::StatusOr<std::shared_ptr<const Job>> Get(absl::string_view job_id) const;
  // Get, calling `subscribe(job)` before any later change can be published: an observer that
  // starts following the job in `subscribe` is told every change after `job`, and at most the one
  // change `job` already holds (published, not yet told; at most one, since mutations are
  // serialized). WatchJob's snapshot and events. `subscribe` runs under the table's shared lock:
  // it must be short and take only locks that are never held while taking that one (an observer's
  // own lock).
  absl::StatusOr<std::shared_ptr<const Job>> GetSubscribed(
      absl::string_view job_id,
      absl::FunctionRef<void(const std::shared_ptr<const Job>&)> subscribe) const;
  // Up to `page_size` jobs with ids greater than `after`, in order of id.
  JobPage List(size_t page_size, absl::string_view after) const;
  // NotFound if there is no such job.
  absl::Status Delete(absl::string_view job_id);

  // Applies `changes` (fields named "updates[i]...") as one new version. Aborted when `etag` is set
  // and stale; FailedPrecondition when a change starts at or below a step already served, unless
  // `allow_rewrite`; a request_id seen before returns the job without changing it again.
  absl::StatusOr<std::shared_ptr<const Job>> Update(absl::string_view job_id,
                                                    std::vector<SegmentChange> changes,
                                                    absl::string_view etag,
                                                    absl::string_view request_id,
                                                    bool allow_rewrite);

  // Records metric values measured after `step` (fields named "step", "metrics[...]",
  // "next_step"). The same value again is a no-op; a different one FailedPrecondition.
  absl::StatusOr<ReportResult> ReportMetrics(absl::string_view job_id, int64_t step,
                                             const std::map<std::string, double>& metrics,
                                             std::optional<int64_t> next_step);

  // Notes that GetValues is about to serve `job`'s values up to `last_step`. Returns false when the
  // caller must not serve yet, and must plan again on the job's next event (JobObserver):
  //  - a mutation is replacing the job. A mutation closes the job before it reads the mark, and a
  //    reader marks before it checks, so either the mutation sees the mark (and refuses to rewrite
  //    those steps) or the reader sees the job closing;
  //  - with the flusher running, `last_step` is past the job's reservation: the flusher is woken,
  //    makes a new reservation durable, and tells observers (kUnchanged). So no step is ever served
  //    past what the store holds as reserved, and after a crash the reservation bounds what was
  //    served. Reads never write: the flusher does, for all waiting jobs in one transaction.
  bool MarkServed(const Job& job, int64_t last_step) const;

  // Persists served marks in the background: every `interval` (on `executor`'s clock, the
  // registry's), and at once when a read waits for a reservation, FlushServedMarks runs on
  // `executor` (give it a thread of its own: a flush is a store transaction). From then on a read
  // past a job's reservation waits for the flusher (see MarkServed). Call once, after Load and
  // before serving; `executor` must outlive the registry or drop its tasks first.
  void StartServedMarkFlusher(Executor* executor, absl::Duration interval, int64_t reserve_steps);

  // One flush, in one store transaction: for every job served past its stored mark, the mark and a
  // reservation of `reserve_steps` past it; jobs whose readers waited for the reservation are told
  // (kUnchanged). On error nothing changed and the readers keep waiting (the next flush retries).
  absl::Status FlushServedMarks();

  // Stops the flusher, and writes the exact served marks of every job with a clean-stop mark
  // (graceful shutdown). Reads past a reservation wait from now on. The first call writes; later
  // ones return OK at once.
  absl::Status PersistServedMarks();

  // `observer` must outlive the registry; add observers before serving.
  void AddObserver(JobObserver* observer);

  // --- Replicas (docs/replicas.md). None of these is used with one server.

  // Makes every mutation a transaction of `shared` (which must outlive the registry), and Load read
  // from it. A mutation that fences other replicas waits up to `fence_timeout` for them. Call
  // before Load.
  void UseSharedStore(store::SharedJobStore* shared, absl::Duration fence_timeout);
  bool shared() const { return shared_ != nullptr; }
  // The change sequence number the last Load is consistent with (replicas follow from there).
  int64_t loaded_seq() const { return loaded_seq_; }
  // Publishes `job` as the database holds it (nullopt: deleted) when it is newer than the job
  // held, keeping this replica's served marks, and tells observers as for a local change.
  void ApplyRemote(absl::string_view job_id, std::optional<store::SharedJob> job);
  // The revision of the job held (0 for none).
  int64_t HeldRevision(absl::string_view job_id) const;
  // Every job id held, in order.
  std::vector<std::string> HeldJobIds() const;
  // Fences reads of `fence.job_id` at `fence.step` (R3), then returns the exact served mark, for
  // the acknowledgement. Takes no write lock (so it never waits for a local mutation).
  int64_t FenceReads(const store::Fence& fence);
  // Whether a fence is held for `id` (acknowledged or being acknowledged).
  bool HoldsFence(int64_t id) const;
  // Returns an epoch to pass to LiftFences: take it before reading the pending fences.
  int64_t FenceEpoch() const;
  // Lifts every fence held that was taken before `epoch` and is not in `pending`; parked reads of
  // those jobs plan again. Call after applying every change read after `pending` was.
  void LiftFences(std::span<const store::Fence> pending, int64_t epoch);
  // While the lease is not valid, reads past a job's served mark wait (docs/replicas.md, leases).
  void SetLeaseValid(bool valid);
  // Called (on the flusher's thread) when a flush finds a job the database holds a newer revision
  // of: the replica catches up.
  void SetBehindCallback(std::function<void()> behind) { on_behind_ = std::move(behind); }

  size_t size() const;

 private:
  // Replaces (or with null, removes) the table entry of `job_id`: the only place the table is
  // written.
  void Publish(const std::string& job_id, std::shared_ptr<const Job> job)
      ABSL_LOCKS_EXCLUDED(table_mutex_);
  // Tells every observer; called with write_mutex_ held, after Publish.
  void Notify(const JobEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);
  // Writes `record` with the served mark of `current`, which the caller has closed, and publishes
  // it. Compiles nothing: the caller has.
  absl::StatusOr<std::shared_ptr<const Job>> Commit(core::JobRecord record,
                                                    std::shared_ptr<const core::JobPlan> plan,
                                                    const Job& current)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);

  // A record's etag, and its plan as the server accepted it (job_registry.cc's rules).
  static std::string EtagOf(const core::JobRecord& record);
  // NotFound naming job `job_id` (escaped, at most 80 bytes of it).
  static absl::Status JobNotFound(absl::string_view job_id);
  static absl::StatusOr<std::shared_ptr<const core::JobPlan>> CompileAccepted(
      const core::JobRecord& record);
  // The job as the database holds it, as a Job: `held` itself when it is that revision, else
  // compiled (on from `held`'s plan when only reports were added: ExtendedPlan), with `held`'s
  // served marks (null `held`: none).
  absl::StatusOr<std::shared_ptr<const Job>> FromShared(
      const store::SharedJob& shared, const std::shared_ptr<const Job>& held) const;
  // The plan of `record` compiled on from `held`'s, as a local report's is (its tracks extended by
  // the reports added since: O(1) amortized per report, not a replay of the job's history), when
  // `record` differs from `held`'s record only by reports added after its own (same version,
  // every history continuing held's); null otherwise.
  static std::shared_ptr<const core::JobPlan> ExtendedPlan(const core::JobRecord& record,
                                                           const Job& held);
  // The shared-mode flush (FlushServedMarks).
  absl::Status FlushShared() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);
  // Publishes `job` in place of `held` (closed by the caller) after a commit or catch-up.
  std::shared_ptr<const Job> Carry(std::shared_ptr<const Job> job, const Job* held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);
  // The decisions of Update and ReportMetrics on `current`, whoever holds the lock.
  struct UpdateDecision {
    std::shared_ptr<const Job> retry;  // A retry of an applied request: this job, unchanged.
    core::JobRecord record;
    std::shared_ptr<const core::JobPlan> plan;
    int64_t first_step = 0;
  };
  absl::StatusOr<UpdateDecision> DecideUpdate(const std::shared_ptr<const Job>& current,
                                              const std::vector<SegmentChange>& changes,
                                              absl::string_view etag, absl::string_view request_id,
                                              bool allow_rewrite, int64_t served) const;
  struct ReportDecision {
    bool duplicate = false;
    core::JobRecord record;
    std::shared_ptr<const core::JobPlan> plan;
    std::vector<int64_t> reduction_steps;
  };
  absl::StatusOr<ReportDecision> DecideReport(const Job& current, int64_t step,
                                              const std::map<std::string, double>& metrics,
                                              std::optional<int64_t> next_step) const;
  absl::StatusOr<std::shared_ptr<const Job>> CreateShared(absl::string_view job_id,
                                                          core::JobSpec spec,
                                                          std::shared_ptr<const core::JobPlan> plan,
                                                          absl::string_view request_id);
  absl::StatusOr<std::shared_ptr<const Job>> UpdateShared(absl::string_view job_id,
                                                          std::vector<SegmentChange> changes,
                                                          absl::string_view etag,
                                                          absl::string_view request_id,
                                                          bool allow_rewrite);
  absl::StatusOr<ReportResult> ReportShared(absl::string_view job_id, int64_t step,
                                            const std::map<std::string, double>& metrics,
                                            std::optional<int64_t> next_step);
  absl::Status DeleteShared(absl::string_view job_id);
  // The exact marks at a graceful stop (PersistServedMarks).
  absl::Status RetireShared() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);
  // ApplyRemote with write_mutex_ held; returns the job published (null after a delete).
  std::shared_ptr<const Job> ApplyLocked(absl::string_view job_id,
                                         std::optional<store::SharedJob> job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);
  // Plans are shared between jobs whose specs are equal and that hold no metric reports: such a
  // plan is a function of the spec alone, and immutable, so 10^5 jobs made from one template hold
  // one compiled plan, not 10^5 (issue 11: about 300 bytes a single-hyperparameter job). The plan
  // of an earlier job with `record`'s spec, or null; `*offer` says where `record`'s job offers
  // its own (OfferPlan): nowhere when it has reports or an equal spec's job already offers one.
  struct PlanDonor {
    // The donor's spec hash (SpecKey), so that a slot held by another spec is passed over without
    // touching the donor (at 10^6 distinct specs, that cache miss was a fifth of the start).
    size_t hash = 0;
    std::weak_ptr<const Job> job;
  };
  struct PlanOffer {
    PlanDonor* donor = nullptr;
    size_t hash = 0;
  };
  std::shared_ptr<const core::JobPlan> SharedPlan(const core::JobRecord& record, PlanOffer* offer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);
  // Offers `job`'s plan to later jobs with the same spec, where SharedPlan said.
  static void OfferPlan(const std::shared_ptr<const Job>& job, const PlanOffer& offer) {
    if (offer.donor != nullptr) *offer.donor = PlanDonor{offer.hash, job};
  }

  // FlushServedMarks, then the next tick unless stopped.
  void FlushTick();
  // FlushServedMarks, logging when flushes start or stop failing. On the flusher's executor only.
  void FlushAndLog();

  store::JobStore* const store_;
  const Clock* const clock_;
  const size_t max_jobs_;
  // The served-mark flusher (StartServedMarkFlusher). Set before serving, then read-only.
  Executor* flush_executor_ = nullptr;
  absl::Duration flush_interval_;
  int64_t reserve_steps_ = 0;
  std::unique_ptr<CoalescedTask> flush_now_;
  // Whether reads wait for reservations (the flusher was started).
  std::atomic<bool> reserving_{false};
  std::atomic<bool> marks_persisted_{false};
  // Whether the last flush failed (FlushAndLog).
  bool flush_failing_ = false;
  // Serializes mutations, held across their store writes; reads never take it, so a slow write (an
  // fsync) never delays a read.
  absl::Mutex write_mutex_ ABSL_ACQUIRED_BEFORE(table_mutex_);
  // Guards the table; held exclusively only to swap a pointer.
  mutable absl::Mutex table_mutex_;
  // Orders jobs by id and finds them by id: the key is the job's own record.job_id, so an entry is
  // one pointer (16 bytes in a B-tree node), not a map node with a second copy of the id (80
  // bytes a job at 10^6 jobs, issue 11).
  struct ById {
    using is_transparent = void;
    static absl::string_view Id(const std::shared_ptr<const Job>& job) {
      return job->record.job_id;
    }
    static absl::string_view Id(absl::string_view id) { return id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Id(a) < Id(b);
    }
  };
  using Table = absl::btree_set<std::shared_ptr<const Job>, ById>;
  Table jobs_ ABSL_GUARDED_BY(table_mutex_);
  std::vector<JobObserver*> observers_;

  // Replicas. Set before serving, then read-only.
  store::SharedJobStore* shared_ = nullptr;
  absl::Duration fence_timeout_;
  std::function<void()> on_behind_;
  std::atomic<bool> lease_valid_{true};
  int64_t loaded_seq_ = 0;
  // Fences held (FenceReads): id -> (job id, step, epoch taken). Publish copies a job's lowest
  // step into the job it publishes, so a fence outlives the replacing of its job.
  struct HeldFence {
    std::string job_id;
    int64_t step;
    int64_t epoch;
  };
  mutable absl::Mutex fence_mutex_ ABSL_ACQUIRED_AFTER(write_mutex_)
      ABSL_ACQUIRED_BEFORE(table_mutex_);
  std::map<int64_t, HeldFence> fences_ ABSL_GUARDED_BY(fence_mutex_);
  mutable int64_t fence_epoch_ ABSL_GUARDED_BY(fence_mutex_) = 0;
  // The lowest fenced step of `job_id`, kStepLimit for none.
  int64_t LowestFence(absl::string_view job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(fence_mutex_);
  // By a hash of the spec (its low bits), the last job that offered its plan (SharedPlan): a
  // fixed table, so distinct specs cost a bounded 1.5 MiB, not bytes per job, and a spec whose
  // slot another took just compiles its own plan.
  static constexpr size_t kPlanDonors = size_t{1} << 16;
  std::vector<PlanDonor> plan_donors_ ABSL_GUARDED_BY(write_mutex_) =
      std::vector<PlanDonor>(kPlanDonors);
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_JOB_REGISTRY_H_
