#!/usr/bin/python3
"""Live jobs end to end, through Python grpcio against a real hpsched-server: reduce_on_plateau driven by
ReportMetrics, GetValues that waits for reports, UpdateJob segments, WatchJob streams, a restart of the SQLite
store.

Usage: /usr/bin/python3 live_jobs_test.py BUILD_DIR      (env HPSCHED_PY_STUBS=BUILD_DIR/python)

* Plateau parity: every case of tests/golden/plateau_cases.json (real torch ReduceLROnPlateau, see
  gen_plateau_cases.py) three ways: reports in order then reads; reports in shuffled order then reads (arrival order
  must not matter); reports interleaved with reads of the values each report made final. Values are compared exactly
  (==); the warmup cases at 1e-12 relative (torch's recursive LinearLR leaves the warmup's end a few ulps off the base
  value, see the generator). The reduction_steps of every ReportMetrics response are checked against torch.
* ReportMetrics semantics (duplicates, conflicts, non-finite values, unknown job or metric, cadence, announced
  cadence), the three pending policies and a waiting call woken by a report or a delete, UpdateJob (anchor, local
  and global time, scale, pin, versions, etag, request_id, served steps, error paths, the segments history, and no
  accepted update changing a value served while it was applied), WatchJob events and their latency, and restarts
  with --store=sqlite (the job, its values, its reports, its request ids and its served steps survive).

Latencies (a waiting GetValues answered by a report; update -> WatchJob event) are printed, and bounded generously.
Every wait is bounded by an RPC deadline or a loop count.
"""
import json
import math
import os
import queue
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402  (stubs)
from server_process import ServerProcess, unittest_main  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(REPO, "build")
CASES = os.path.join(REPO, "tests", "golden", "plateau_cases.json")
RPC = 30  # Deadline of calls that should answer at once, in seconds.
REL_TOL = 1e-12


def rel_close(a, b):
    return a == b or abs(a - b) <= REL_TOL * max(abs(a), abs(b))


class LiveJobsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        from google.protobuf import json_format
        cls.grpc = grpc
        cls.json_format = json_format
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-live-")
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()
        with open(CASES) as f:
            cls.cases = json.load(f)["cases"]
        cls.server = ServerProcess(BUILD, cls.tmp, "--store=memory", name="live")
        cls.channel = grpc.insecure_channel(cls.server.address)
        grpc.channel_ready_future(cls.channel).result(timeout=10)
        cls.stub = cls.svc_grpc.SchedulerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"hpsched-server exited {code}")

    # ----------------------------------------------------------------------------------------------------------
    # Helpers.

    def job_from_json(self, spec):
        return self.json_format.ParseDict(spec, self.pb.Job())

    def create(self, job_id, spec, stub=None):
        job = spec if isinstance(spec, self.pb.Job) else self.job_from_json(spec)
        return (stub or self.stub).CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=job), timeout=RPC)

    def report(self, job_id, step, metrics, next_step=None, stub=None):
        req = self.svc.ReportMetricsRequest(job=f"jobs/{job_id}", step=step, metrics=metrics)
        if next_step is not None:
            req.next_step = next_step
        return (stub or self.stub).ReportMetrics(req, timeout=RPC)

    def get_values(self, job_id, step, count=1, policy=0, timeout=RPC, hyperparameters=(), stub=None):
        return (stub or self.stub).GetValues(
            self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=step, count=count, pending_policy=policy,
                                      hyperparameters=list(hyperparameters)), timeout=timeout)

    def series(self, job_id, step, count, **kw):
        """{(hyperparameter, group): [values]} for [step, step + count)."""
        resp = self.get_values(job_id, step, count, **kw)
        return {(s.hyperparameter, s.group): list(s.values) for s in resp.series}

    def get_job(self, job_id, stub=None):
        """The job without served_through: the served mark grows with this test's reads (not a change of the job),
        and the tests compare jobs across reads; the mark's effect (FAILED_PRECONDITION) is checked on its own."""
        job = (stub or self.stub).GetJob(self.svc.GetJobRequest(name=f"jobs/{job_id}"), timeout=RPC)
        job.ClearField("served_through")
        return job

    def update(self, job_id, *updates, etag="", request_id="", allow_rewrite=False, stub=None):
        return (stub or self.stub).UpdateJob(self.svc.UpdateJobRequest(
            name=f"jobs/{job_id}", updates=list(updates), etag=etag, request_id=request_id,
            allow_rewrite=allow_rewrite), timeout=RPC)

    def hp_update(self, hyperparameter, effective_step, **change):
        return self.svc.HyperparameterUpdate(hyperparameter=hyperparameter, segment=self.pb.Segment(
            effective_step=effective_step, **change))

    def schedule(self, spec):
        return self.json_format.ParseDict(spec, self.sched.Schedule())

    def preview(self, spec, bases, start, count):
        resp = self.stub.Preview(self.svc.PreviewRequest(schedule=self.schedule(spec), base_values=bases,
                                                         start_step=start, count=count), timeout=RPC)
        return [list(s.values) for s in resp.series]

    def answered_in_time(self, fn, *args, tries=3, **kw):
        """(response or RpcError, seconds) of fn(*args, **kw), a call with a short deadline that the server answers
        itself a little before the deadline (scheduler_service.cc's ParkDeadline: at most 100 ms early). On a loaded
        machine (ctest -j2 beside a build, load 15-20 on 2 cores) that answer can still arrive after the client's own
        deadline, which gRPC reports as DEADLINE_EXCEEDED "Deadline Exceeded"; such a try is made again, up to
        `tries` times, so the server must answer in time at least once."""
        for attempt in range(tries):
            t0 = time.monotonic()
            try:
                return fn(*args, **kw), time.monotonic() - t0
            except self.grpc.RpcError as e:
                took = time.monotonic() - t0
                own_deadline = e.code() == self.grpc.StatusCode.DEADLINE_EXCEEDED and e.details() == "Deadline Exceeded"
                if not own_deadline or attempt + 1 == tries:
                    return e, took
                print(f"try {attempt + 1}: the client's own deadline came first ({took * 1000:.0f} ms; a loaded "
                      "machine); again", file=sys.stderr)

    def assert_code(self, code, fn, *args, contains=None, **kw):
        with self.assertRaises(self.grpc.RpcError) as raised:
            fn(*args, **kw)
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        if contains is not None:
            self.assertIn(contains, raised.exception.details())
        return raised.exception

    def plateau_job(self, k=10, bases=(0.1,), patience=0, factor=0.5, extra_hps=()):
        """A job with lr = reduce_on_plateau(val_loss every k) and optional more hyperparameters."""
        spec = {"hyperparameters": [{"name": "lr", "baseValues": list(bases), "schedule": {"reduceOnPlateau": {
            "metric": "val_loss", "patience": str(patience), "factor": factor}}}, *extra_hps],
            "metrics": [{"name": "val_loss", "everySteps": str(k)}]}
        return spec

    # ----------------------------------------------------------------------------------------------------------
    # Plateau parity with torch.

    def check_points(self, case, job_id, points=None):
        """Reads the case's points (one ranged GetValues over [0, final_through], plus single-step reads of a
        sample) and returns the mismatches."""
        points = case["points"] if points is None else points
        exact = case["warmup_steps"] == 0
        mismatches = []
        end = case["final_through"] + 1
        resp = self.get_values(job_id, 0, end)
        if resp.HasField("provisional_from"):
            mismatches.append(f"range [0, {end}) has provisional_from {resp.provisional_from}")
        got = {p["step"]: [s.values[p["step"]] for s in resp.series] for p in points}
        for p in points[:: max(1, len(points) // 25)]:
            single = self.get_values(job_id, p["step"])
            if [s.values[0] for s in single.series] != got[p["step"]]:
                mismatches.append(f"step {p['step']}: single read {[s.values[0] for s in single.series]} "
                                  f"!= ranged read {got[p['step']]}")
        for p in points:
            have, want = got[p["step"]], p["values"]
            ok = have == want if exact else all(rel_close(h, w) for h, w in zip(have, want))
            if not ok or len(have) != len(want):
                mismatches.append(f"step {p['step']}: got {have}, torch {want}")
        return mismatches

    def report_case(self, case, job_id, order):
        """Reports the case's metrics in `order` (epoch indices); returns reduction steps seen."""
        k = case["every_steps"]
        seen = []
        for e in order:
            resp = self.report(job_id, (e + 1) * k - 1, {case["metric"]: case["metric_values"][e]})
            self.assertFalse(resp.duplicate)
            seen.extend(resp.reduction_steps)
        return sorted(seen)

    def test_plateau_parity_report_all_then_read(self):
        for index, case in enumerate(self.cases):
            with self.subTest(case=case["name"]):
                job_id = f"parity-a-{index}"
                self.create(job_id, case["job"])
                reductions = self.report_case(case, job_id, range(len(case["metric_values"])))
                self.assertEqual(reductions, case["reduction_steps"])
                mismatches = self.check_points(case, job_id)
                self.assertEqual(mismatches[:10], [], f"{len(mismatches)} mismatches")
                # The next report is pending: values from final_through + 1 on are provisional.
                resp = self.get_values(job_id, case["final_through"], 3, policy=2)
                self.assertEqual(resp.provisional_from, case["final_through"] + 1)

    def test_plateau_parity_shuffled_reports(self):
        for index, case in enumerate(self.cases):
            with self.subTest(case=case["name"]):
                job_id = f"parity-s-{index}"
                self.create(job_id, case["job"])
                order = list(range(len(case["metric_values"])))
                random.Random(index).shuffle(order)
                # A report that fills a gap makes every reduction it unblocks known at once.
                self.assertEqual(self.report_case(case, job_id, order), case["reduction_steps"])
                mismatches = self.check_points(case, job_id)
                self.assertEqual(mismatches[:10], [], f"{len(mismatches)} mismatches")

    def test_plateau_parity_interleaved(self):
        """Report epoch e, then read (default policy, short deadline) the points that report made final."""
        for index, case in enumerate(self.cases):
            with self.subTest(case=case["name"]):
                job_id = f"parity-i-{index}"
                self.create(job_id, case["job"])
                k = case["every_steps"]
                exact = case["warmup_steps"] == 0
                by_epoch = {}
                for p in case["points"]:
                    by_epoch.setdefault(p["step"] // k, []).append(p)
                mismatches = []
                # Epoch 0's values (steps [0, K)) are final before any report.
                for e in range(len(case["metric_values"]) + 1):
                    if e > 0:
                        resp = self.report(job_id, e * k - 1, {case["metric"]: case["metric_values"][e - 1]})
                        self.assertEqual(list(resp.reduction_steps),
                                         [e * k] if e * k in case["reduction_steps"] else [])
                    for p in by_epoch.get(e, []):
                        got = [s.values[0] for s in self.get_values(job_id, p["step"], timeout=5).series]
                        ok = got == p["values"] if exact else all(rel_close(h, w) for h, w in zip(got, p["values"]))
                        if not ok:
                            mismatches.append(f"step {p['step']}: got {got}, torch {p['values']}")
                self.assertEqual(mismatches[:10], [], f"{len(mismatches)} mismatches")

    # ----------------------------------------------------------------------------------------------------------
    # ReportMetrics.

    def test_report_metrics_semantics(self):
        StatusCode = self.grpc.StatusCode
        job_id = "report-semantics"
        self.create(job_id, self.plateau_job(k=5))
        first = self.report(job_id, 4, {"val_loss": 1.0})
        self.assertFalse(first.duplicate)
        self.assertEqual(first.job, f"jobs/{job_id}")
        self.report(job_id, 9, {"val_loss": 2.0})  # bad: patience 0 reduces from step 10
        job_before = self.get_job(job_id)
        values_before = self.series(job_id, 0, 15)
        self.assertEqual(values_before[("lr", 0)][9:11], [0.1, 0.05])

        again = self.report(job_id, 9, {"val_loss": 2.0})
        self.assertTrue(again.duplicate)
        self.assertEqual(list(again.reduction_steps), [])
        self.assert_code(StatusCode.FAILED_PRECONDITION, self.report, job_id, 9, {"val_loss": 0.5},
                         contains='metrics["val_loss"]')
        for bad in (math.nan, math.inf, -math.inf):
            with self.subTest(value=bad):
                self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 14, {"val_loss": bad},
                                 contains='metrics["val_loss"]')
        self.assert_code(StatusCode.NOT_FOUND, self.report, "no-such-job", 4, {"val_loss": 1.0})
        self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 14, {"train_loss": 1.0},
                         contains="train_loss")
        for step in (5, 13, 15):
            with self.subTest(step=step):
                self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, step, {"val_loss": 1.0},
                                 contains="step")
        self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 14, {"val_loss": 1.0}, next_step=19,
                         contains="next_step")
        # Nothing above changed the job or its values.
        self.assertEqual(self.get_job(job_id), job_before)
        self.assertEqual(self.series(job_id, 0, 15), values_before)
        self.assertEqual(self.get_values(job_id, 14, 5, policy=2).provisional_from, 15)

    def test_announced_cadence(self):
        StatusCode = self.grpc.StatusCode
        job_id = "announced"
        spec = self.plateau_job()
        spec["metrics"] = [{"name": "val_loss", "firstStep": "9"}]
        self.create(job_id, spec)
        self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 9, {"val_loss": 1.0},
                         contains="next_step")
        self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 19, {"val_loss": 1.0}, next_step=29)
        self.assertEqual(self.get_values(job_id, 0, 100, policy=2).provisional_from, 10)
        self.report(job_id, 9, {"val_loss": 1.0}, next_step=19)
        self.assertEqual(self.get_values(job_id, 0, 100, policy=2).provisional_from, 20)
        self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 29, {"val_loss": 1.0}, next_step=49)
        self.report(job_id, 19, {"val_loss": 2.0}, next_step=49)  # bad: lr 0.05 from 20
        self.assert_code(StatusCode.INVALID_ARGUMENT, self.report, job_id, 29, {"val_loss": 1.0}, next_step=49)
        self.assertTrue(self.report(job_id, 19, {"val_loss": 2.0}, next_step=49).duplicate)
        self.assert_code(StatusCode.FAILED_PRECONDITION, self.report, job_id, 19, {"val_loss": 2.0}, next_step=39)
        self.assertEqual(self.get_values(job_id, 0, 100, policy=2).provisional_from, 50)
        resp = self.report(job_id, 49, {"val_loss": 3.0}, next_step=-1)  # bad: 0.025 from 50
        self.assertEqual(list(resp.reduction_steps), [50])
        full = self.get_values(job_id, 0, 1000)
        self.assertFalse(full.HasField("provisional_from"))
        lr = list(full.series[0].values)
        self.assertEqual((lr[19], lr[20], lr[49], lr[50], lr[999]), (0.1, 0.05, 0.05, 0.025, 0.025))

    # ----------------------------------------------------------------------------------------------------------
    # Waiting GetValues.

    def pending_job(self, job_id):
        self.create(job_id, self.plateau_job(k=10, extra_hps=[{"name": "momentum", "baseValues": [0.9],
                                                                "schedule": {"constant": {"factor": 1.0}}}]))

    def test_pending_default_policy_deadline(self):
        """Default policy: the call waits, and the server answers DEADLINE_EXCEEDED (its own message) a little
        before the call's deadline."""
        job_id = "pending-default"
        self.pending_job(job_id)
        # Steps before the first expected report's effect are final at once.
        self.assertFalse(self.get_values(job_id, 0, 10, timeout=2).HasField("provisional_from"))
        err, took = self.answered_in_time(self.get_values, job_id, 10, timeout=1)
        self.assertIsInstance(err, self.grpc.RpcError, "a waiting call answered with values")
        self.assertEqual(err.code(), self.grpc.StatusCode.DEADLINE_EXCEEDED, err.details())
        print(f"default policy: DEADLINE_EXCEEDED after {took * 1000:.0f} ms: {err.details()!r}", file=sys.stderr)
        self.assertGreater(took, 0.5)
        self.assertIn("metric reports", err.details(), "the server should answer before the client's deadline")

    def test_pending_wait_then_provisional(self):
        job_id = "pending-wait"
        self.pending_job(job_id)
        resp, took = self.answered_in_time(self.get_values, job_id, 5, 20, policy=1, timeout=1)
        if isinstance(resp, self.grpc.RpcError):
            self.fail(f"WAIT_THEN_PROVISIONAL: {resp.code()} {resp.details()!r}, want provisional values")
        print(f"WAIT_THEN_PROVISIONAL answered after {took * 1000:.0f} ms", file=sys.stderr)
        self.assertGreater(took, 0.5)
        self.assertEqual(resp.provisional_from, 10)
        self.assertEqual(list(resp.series[0].values), [0.1] * 20)

    def test_pending_provisional_now(self):
        job_id = "pending-now"
        self.pending_job(job_id)
        t0 = time.monotonic()
        resp = self.get_values(job_id, 12, 5, policy=2, timeout=5)
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertEqual(resp.provisional_from, 12)
        self.assertEqual(self.get_values(job_id, 5, 10, policy=2, timeout=5).provisional_from, 10)
        self.assertFalse(self.get_values(job_id, 0, 10, policy=2, timeout=5).HasField("provisional_from"))
        # A hyperparameter that follows no metric never waits.
        resp = self.get_values(job_id, 500, 5, timeout=5, hyperparameters=["momentum"])
        self.assertFalse(resp.HasField("provisional_from"))
        self.assertEqual(list(resp.series[0].values), [0.9] * 5)

    def test_waiting_call_answered_by_report(self):
        job_id = "pending-report"
        self.pending_job(job_id)
        self.report(job_id, 9, {"val_loss": 1.0})
        latencies = []
        for round_ in range(5):
            step = 10 * (round_ + 2) - 1  # the report that unblocks step + 1
            out = {}

            def reader():
                try:
                    out["resp"] = self.get_values(job_id, step + 1, timeout=20)
                except self.grpc.RpcError as e:
                    out["error"] = e
                out["t"] = time.monotonic()

            thread = threading.Thread(target=reader)
            thread.start()
            time.sleep(0.2)  # let the call park (the answer is the same either way)
            t_report = time.monotonic()
            self.report(job_id, step, {"val_loss": 2.0 + round_})  # bad every time: patience 0 reduces
            thread.join(timeout=25)
            self.assertFalse(thread.is_alive())
            self.assertNotIn("error", out)
            latencies.append(out["t"] - t_report)
            self.assertEqual(out["resp"].series[0].values[0], 0.1 * 0.5 ** (round_ + 1))
            self.assertFalse(out["resp"].HasField("provisional_from"))
        print(f"waiting GetValues answered {', '.join(f'{x * 1000:.1f}' for x in latencies)} ms after the "
              f"report was sent (median {statistics.median(latencies) * 1000:.1f} ms)", file=sys.stderr)
        self.assertLess(statistics.median(latencies), 1.0)

    def test_waiting_call_on_deleted_job(self):
        """A GetValues waiting for a report of a job that is deleted answers NOT_FOUND at once."""
        job_id = "pending-delete"
        self.pending_job(job_id)
        out = {}

        def reader():
            t0 = time.monotonic()
            try:
                self.get_values(job_id, 10, timeout=20)
            except self.grpc.RpcError as e:
                out["code"] = e.code()
            out["took"] = time.monotonic() - t0

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.2)
        self.stub.DeleteJob(self.svc.DeleteJobRequest(name=f"jobs/{job_id}"), timeout=RPC)
        thread.join(timeout=25)
        self.assertFalse(thread.is_alive())
        self.assertEqual(out.get("code"), self.grpc.StatusCode.NOT_FOUND)
        self.assertLess(out["took"], 5)

    # ----------------------------------------------------------------------------------------------------------
    # UpdateJob.

    def test_update_job(self):
        StatusCode = self.grpc.StatusCode
        cosine = {"cosineAnnealing": {"tMax": "1000", "etaMin": 0.001}}
        spec = {"hyperparameters": [
            {"name": "lr", "baseValues": [0.1, 0.2], "schedule": cosine},
            {"name": "momentum", "baseValues": [0.9], "schedule": {"linear": {"startFactor": 0.5,
                                                                                "totalIters": "100"}}}]}
        job_id, ref_id = "update", "update-ref"  # ref: the same history, read freely (allow_rewrite)
        self.create(job_id, spec)
        self.create(ref_id, spec)
        n = 3000

        def ref_values():
            return self.series(ref_id, 0, n)

        def current(upto):
            """The values after the last update (read on the ref), checked against the job's on [0, upto), which
            serves them (the next update must start at or after upto)."""
            ref = ref_values()
            mine = self.series(job_id, 0, upto)
            self.assertEqual(mine, {key: values[:upto] for key, values in ref.items()})
            return ref

        def both(*updates, **kw):
            self.update(ref_id, *updates, allow_rewrite=True)
            job = self.update(job_id, *updates, **kw)
            job.ClearField("served_through")  # compared with get_job's, which leaves it out
            return job

        old = ref_values()
        served = self.series(job_id, 0, 300)  # serves [0, 300)
        self.assertEqual(served[("lr", 0)], old[("lr", 0)][:300])
        job1 = self.get_job(job_id)
        self.assertEqual(job1.version, 1)

        # 1. Anchored cosine on local time from 300: continuous at 300.
        seg_cos = self.schedule({"cosineAnnealing": {"tMax": "400"}})
        up = self.hp_update("lr", 300, schedule=seg_cos, anchor=True, time=self.pb.SEGMENT_TIME_LOCAL)
        job2 = both(up, etag=job1.etag, request_id="req-1")
        self.assertEqual(job2.version, 2)
        self.assertNotEqual(job2.etag, job1.etag)
        new = current(600)  # serves through 599
        for g in (0, 1):
            key = ("lr", g)
            self.assertEqual(new[key][:300], old[key][:300])
            self.assertTrue(rel_close(new[key][300], old[key][300]), (new[key][300], old[key][300]))
            want = self.preview({"cosineAnnealing": {"tMax": "400"}}, [old[key][300]], 0, n - 300)[0]
            bad = [t for t in range(n - 300) if not rel_close(new[key][300 + t], want[t])]
            self.assertEqual(bad[:5], [])
        self.assertEqual(new[("momentum", 0)], old[("momentum", 0)])

        # Retried request_id: not applied again; stale etag: ABORTED.
        again = self.update(job_id, up, etag=job1.etag, request_id="req-1")
        self.assertEqual(again.version, 2)
        self.assertEqual(len(again.hyperparameters[0].segments), 1)
        self.assertEqual(self.get_job(job_id), job2)
        self.assert_code(StatusCode.ABORTED, self.update, job_id, up, etag=job1.etag, request_id="req-other")
        self.assertEqual(self.get_job(job_id).version, 2)

        # 2. Served steps: an update at or below them is refused unless allow_rewrite.
        for step in (0, 450, 599):
            with self.subTest(effective_step=step):
                self.assert_code(StatusCode.FAILED_PRECONDITION, self.update, job_id,
                                 self.hp_update("lr", step, scale=0.5), contains="effective_step")
        self.assertEqual(self.get_job(job_id).version, 2)
        # Scale 0.5 from 600.
        old = ref_values()
        job3 = both(self.hp_update("lr", 600, scale=0.5), request_id="req-2")
        self.assertEqual(job3.version, 3)
        new = current(1000)
        for g in (0, 1):
            key = ("lr", g)
            self.assertEqual(new[key][:600], old[key][:600])
            self.assertEqual(new[key][600:], [v * 0.5 for v in old[key][600:]])

        # 3. Pins: one value for every group, then one per group.
        both(self.hp_update("lr", 1000, pin=self.pb.PinnedValues(values=[0.01])))
        job5 = both(self.hp_update("lr", 1100, pin=self.pb.PinnedValues(values=[0.01, 0.02])))
        new = current(1250)
        self.assertEqual(new[("lr", 0)][1000:1200], [0.01] * 200)
        self.assertEqual(new[("lr", 1)][1000:1200], [0.01] * 100 + [0.02] * 100)
        self.assertEqual(job5.version, 5)

        # 4. Global vs local time for the same schedule.
        step_spec = {"step": {"stepSize": "100", "gamma": 0.5}}
        both(self.hp_update("lr", 1250, schedule=self.schedule(step_spec), time=self.pb.SEGMENT_TIME_GLOBAL))
        both(self.hp_update("lr", 1550, schedule=self.schedule(step_spec), time=self.pb.SEGMENT_TIME_LOCAL))
        new = {key: values[1250:1850] for key, values in current(2000).items()}
        global_want = self.preview(step_spec, [0.1, 0.2], 1250, 300)
        local_want = self.preview(step_spec, [0.1, 0.2], 0, 300)
        for g in (0, 1):
            self.assertEqual(new[("lr", g)][:300], global_want[g])
            self.assertEqual(new[("lr", g)][300:], local_want[g])
        self.assertEqual(new[("lr", 0)][0], 0.1 * 0.5 ** 12)  # global step 1250
        self.assertEqual(new[("lr", 0)][300], 0.1)  # local step 0

        # 5. Two updates in one request: one new version.
        before = self.get_job(job_id)
        job = both(self.hp_update("lr", 2000, scale=2.0), self.hp_update("momentum", 2000, pin=self.pb.PinnedValues(
            values=[0.5])), etag=before.etag, request_id="req-5")
        self.assertEqual(job.version, before.version + 1)
        again = self.update(job_id, self.hp_update("lr", 2000, scale=2.0), request_id="req-5")
        self.assertEqual(again.version, job.version)
        self.assertEqual(current(2500)[("momentum", 0)][2000:], [0.5] * (n - 2000))

        # 6. Unknown hyperparameter, named by its path; nothing changes.
        err = self.assert_code(StatusCode.INVALID_ARGUMENT, self.update, job_id, self.hp_update("wd", 2500, scale=0.5))
        self.assertTrue(err.details().startswith("updates[0].hyperparameter"), err.details())
        err = self.assert_code(StatusCode.INVALID_ARGUMENT, self.update, job_id,
                               self.hp_update("lr", 2500, scale=0.5), self.hp_update("wd", 2500, scale=0.5))
        self.assertTrue(err.details().startswith("updates[1].hyperparameter"), err.details())
        self.assertEqual(self.get_job(job_id).version, job.version)

        # 7. allow_rewrite: a served step may change.
        self.series(job_id, 0, 2600)  # serves through 2599
        self.assert_code(StatusCode.FAILED_PRECONDITION, self.update, job_id, self.hp_update("lr", 10, scale=0.5))
        rewritten = both(self.hp_update("lr", 10, scale=0.5), allow_rewrite=True)
        self.assertEqual(self.series(job_id, 0, n), ref_values())
        got = self.series(job_id, 9, 2)[("lr", 0)][1]
        self.assertTrue(rel_close(got, 0.5 * cosine_value(0.1, 0.001, 1000, 10)), got)

        # 8. GetJob shows the history: every segment, in order, with the version that made it.
        history = [(s.effective_step, s.WhichOneof("change"), s.version)
                   for s in self.get_job(job_id).hyperparameters[0].segments]
        self.assertEqual(history, [(300, "schedule", 2), (600, "scale", 3), (1000, "pin", 4), (1100, "pin", 5),
                                   (1250, "schedule", 6), (1550, "schedule", 7), (2000, "scale", 8),
                                   (10, "scale", rewritten.version)])
        segments = self.get_job(job_id).hyperparameters[0].segments
        self.assertTrue(segments[0].anchor)
        self.assertEqual(segments[4].time, self.pb.SEGMENT_TIME_GLOBAL)
        self.assertEqual([s.effective_step for s in self.get_job(job_id).hyperparameters[1].segments], [2000])

    def test_update_never_rewrites_a_value_served_concurrently(self):
        """An UpdateJob accepted without allow_rewrite must change no value a GetValues has returned, even one
        returned while the update was being applied. Readers walk forward through the steps while an updater pins
        new values from just past the served steps (learned from the FAILED_PRECONDITION message); afterwards every
        value any reader got must be the final history's. The SQLite store (a synced write per update) gives the
        update a window of milliseconds."""
        import grpc
        data_dir = os.path.join(self.tmp, "data-race")
        os.makedirs(data_dir)
        server = ServerProcess(BUILD, self.tmp, "--store=sqlite", f"--data_dir={data_dir}", name="race")
        job_id = "race"
        seen = []
        stop = threading.Event()
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)
                self.create(job_id, {"hyperparameters": [{"name": "lr", "baseValues": [1.0],
                                                          "schedule": {"constant": {"factor": 1.0}}}]}, stub=stub)

                def reader():
                    with grpc.insecure_channel(server.address) as c:
                        s = self.svc_grpc.SchedulerServiceStub(c)
                        for step in range(100_000):
                            if stop.is_set():
                                break
                            resp = self.get_values(job_id, step, timeout=10, stub=s)
                            seen.append((step, resp.series[0].values[0], resp.version))

                readers = [threading.Thread(target=reader) for _ in range(4)]
                for t in readers:
                    t.start()
                accepted = 0
                try:
                    for i in range(60):
                        try:
                            self.update(job_id, self.hp_update("lr", 0, pin=self.pb.PinnedValues(values=[0.0])),
                                        stub=stub)
                            self.fail("an update at step 0 was accepted after reads")
                        except grpc.RpcError as e:
                            self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
                            served = int(re.search(r"up to step (\d+)", e.details()).group(1))
                        try:
                            self.update(job_id, self.hp_update("lr", served + 1, pin=self.pb.PinnedValues(
                                values=[float(i + 2)])), stub=stub)
                            accepted += 1
                        except grpc.RpcError as e:
                            self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
                finally:
                    stop.set()
                    for t in readers:
                        t.join(timeout=30)
                last = max(step for step, _, _ in seen)
                final = self.get_values(job_id, 0, last + 1, stub=stub).series[0].values
                bad = [(step, value, version, final[step]) for step, value, version in seen if value != final[step]]
                print(f"concurrent updates: {accepted} accepted, {len(seen)} reads, {len(bad)} reads contradicted "
                      f"by the final history", file=sys.stderr)
                self.assertGreater(accepted, 0)
                self.assertEqual(bad[:5], [], "(step, value served, version served, value in the final history)")
        finally:
            stop.set()
            self.assertEqual(server.stop(), 0)

    def test_update_retry_is_not_applied_again(self):
        """scheduler_service.proto / UpdateJobRequest.request_id: "a retry with the same key returns the job as it is
        now, without applying the change again", even after other updates."""
        job_id = "update-retry"
        self.create(job_id, {"hyperparameters": [{"name": "lr", "baseValues": [0.1],
                                                  "schedule": {"constant": {"factor": 1.0}}}]})
        first = self.update(job_id, self.hp_update("lr", 100, scale=0.5), request_id="a")
        second = self.update(job_id, self.hp_update("lr", 200, scale=0.5), request_id="b")
        retry = self.update(job_id, self.hp_update("lr", 100, scale=0.5), request_id="a")
        self.assertEqual(len(retry.hyperparameters[0].segments), 2)  # not applied again
        self.assertEqual([s.version for s in retry.hyperparameters[0].segments], [first.version, second.version])
        self.assertEqual(retry.version, second.version)
        self.assertEqual(retry.etag, second.etag)

    # ----------------------------------------------------------------------------------------------------------
    # WatchJob.

    def watch(self, job_id):
        """Starts a WatchJob stream; returns (queue of (monotonic time, event) and finally ("end", status), call)."""
        events = queue.Queue()
        call = self.stub.WatchJob(self.svc.WatchJobRequest(job=f"jobs/{job_id}"), timeout=120)

        def pump():
            try:
                for event in call:
                    events.put((time.monotonic(), event))
                events.put(("end", self.grpc.StatusCode.OK))
            except self.grpc.RpcError as e:
                events.put(("end", e.code()))

        threading.Thread(target=pump, daemon=True).start()
        return events, call

    def next_event(self, events, timeout=10):
        return events.get(timeout=timeout)

    def test_watch_job(self):
        StatusCode = self.grpc.StatusCode
        job_id = "watched"
        self.create(job_id, self.plateau_job(k=10, patience=1))
        self.assert_code(StatusCode.NOT_FOUND, lambda: list(self.stub.WatchJob(
            self.svc.WatchJobRequest(job="jobs/no-such-job"), timeout=10)))
        events, call = self.watch(job_id)
        _, snapshot = self.next_event(events)
        self.assertEqual(snapshot.type, self.svc.JOB_EVENT_TYPE_SNAPSHOT)
        self.assertEqual(snapshot.job, self.get_job(job_id))
        self.assertEqual(snapshot.effective_step, 0)

        updated = self.update(job_id, self.hp_update("lr", 5000, scale=0.5))
        _, event = self.next_event(events)
        self.assertEqual(event.type, self.svc.JOB_EVENT_TYPE_UPDATED)
        self.assertEqual(event.effective_step, 5000)
        self.assertEqual(event.job, updated)

        # Reports that change no value are not events; the reduction is.
        self.report(job_id, 9, {"val_loss": 1.0})
        self.report(job_id, 19, {"val_loss": 1.5})
        resp = self.report(job_id, 29, {"val_loss": 1.5})  # second bad report, patience 1: reduce from 30
        self.assertEqual(list(resp.reduction_steps), [30])
        _, event = self.next_event(events)
        self.assertEqual(event.type, self.svc.JOB_EVENT_TYPE_PLATEAU_REDUCED)
        self.assertEqual(event.effective_step, 30)
        self.assertEqual(self.series(job_id, 29, 2)[("lr", 0)], [0.1, 0.05])

        # update -> event latency.
        latencies = []
        for i in range(50):
            t0 = time.monotonic()
            job = self.update(job_id, self.hp_update("lr", 6000 + i, pin=self.pb.PinnedValues(values=[0.001 * i])))
            t_event, event = self.next_event(events)
            self.assertEqual((event.type, event.effective_step, event.job.version),
                             (self.svc.JOB_EVENT_TYPE_UPDATED, 6000 + i, job.version))
            latencies.append(t_event - t0)
        print(f"UpdateJob -> WatchJob event: median {statistics.median(latencies) * 1000:.2f} ms, "
              f"max {max(latencies) * 1000:.2f} ms over {len(latencies)} updates", file=sys.stderr)
        self.assertLess(statistics.median(latencies), 0.5)

        self.stub.DeleteJob(self.svc.DeleteJobRequest(name=f"jobs/{job_id}"), timeout=RPC)
        _, event = self.next_event(events)
        self.assertEqual(event.type, self.svc.JOB_EVENT_TYPE_DELETED)
        self.assertEqual(event.job.name, f"jobs/{job_id}")
        self.assertEqual(self.next_event(events), ("end", StatusCode.OK))

    # ----------------------------------------------------------------------------------------------------------
    # Restart with the SQLite store.

    def test_restart_sqlite(self):
        StatusCode = self.grpc.StatusCode
        data_dir = os.path.join(self.tmp, "data")
        os.makedirs(data_dir)
        case = next(c for c in self.cases if c["name"] == "cooldown_patience1")
        k = case["every_steps"]
        job_id = "durable"
        flags = ("--store=sqlite", f"--data_dir={data_dir}")
        server = ServerProcess(BUILD, self.tmp, *flags, name="sqlite1")
        try:
            import grpc
            with grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)
                self.create(job_id, case["job"], stub=stub)
                reports = len(case["metric_values"]) // 2
                for e in range(reports):
                    self.report(job_id, (e + 1) * k - 1, {"val_loss": case["metric_values"][e]}, stub=stub)
                updated = self.update(job_id, self.hp_update("lr", 2000, scale=0.5), request_id="durable-1",
                                      stub=stub)
                self.assertEqual(updated.version, 2)
                end = (reports + 1) * k
                before = self.get_values(job_id, 0, end, stub=stub)
                later = self.get_values(job_id, 1990, 20, policy=2, stub=stub)
                job_before = self.get_job(job_id, stub=stub)
        finally:
            self.assertEqual(server.stop(), 0)

        server = ServerProcess(BUILD, self.tmp, *flags, name="sqlite2")
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)
                self.assertEqual(self.get_job(job_id, stub=stub), job_before)
                self.assertEqual(self.get_values(job_id, 0, end, stub=stub), before)
                self.assertEqual(self.get_values(job_id, 1990, 20, policy=2, stub=stub), later)
                points = [p for p in case["points"] if p["step"] < end]
                want = {p["step"]: p["values"] for p in points}
                self.assertEqual({s: [x.values[s] for x in before.series] for s in want}, want)
                self.assertTrue(self.report(job_id, k - 1, {"val_loss": case["metric_values"][0]}, stub=stub)
                                .duplicate)
                self.assert_code(StatusCode.FAILED_PRECONDITION, self.report, job_id, k - 1,
                                 {"val_loss": case["metric_values"][0] + 1}, stub=stub)
                retry = self.update(job_id, self.hp_update("lr", 2000, scale=0.5), request_id="durable-1",
                                    stub=stub)
                self.assertEqual((retry.version, len(retry.hyperparameters[0].segments)), (2, 1))
                self.assertEqual(self.get_job(job_id, stub=stub), job_before)
                # The remaining reports continue where the first server stopped.
                for e in range(reports, len(case["metric_values"])):
                    self.report(job_id, (e + 1) * k - 1, {"val_loss": case["metric_values"][e]}, stub=stub)
                got = self.get_values(job_id, 0, case["final_through"] + 1, stub=stub)
                bad = [p["step"] for p in case["points"] if [s.values[p["step"]] for s in got.series] != p["values"]]
                self.assertEqual(bad[:10], [])
        finally:
            self.assertEqual(server.stop(), 0)

    def test_served_steps_survive_restart(self):
        """UpdateJob's FAILED_PRECONDITION for served steps must hold after a restart: the steps a trainer already
        used stay served."""
        StatusCode = self.grpc.StatusCode
        import grpc
        data_dir = os.path.join(self.tmp, "data-served")
        os.makedirs(data_dir)
        flags = ("--store=sqlite", f"--data_dir={data_dir}")
        job_id = "served"
        server = ServerProcess(BUILD, self.tmp, *flags, name="served1")
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)
                self.create(job_id, {"hyperparameters": [{"name": "lr", "baseValues": [0.1],
                                                          "schedule": {"constant": {"factor": 1.0}}}]}, stub=stub)
                self.get_values(job_id, 0, 500, stub=stub)  # serves through 499
                self.assert_code(StatusCode.FAILED_PRECONDITION, self.update, job_id,
                                 self.hp_update("lr", 400, scale=0.5), stub=stub)
        finally:
            self.assertEqual(server.stop(), 0)
        server = ServerProcess(BUILD, self.tmp, *flags, name="served2")
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)
                self.assert_code(StatusCode.FAILED_PRECONDITION, self.update, job_id,
                                 self.hp_update("lr", 400, scale=0.5), stub=stub)
        finally:
            self.assertEqual(server.stop(), 0)


def cosine_value(base, eta_min, t_max, t):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2


if __name__ == "__main__":
    unittest_main()
