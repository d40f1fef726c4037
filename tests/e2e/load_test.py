#!/usr/bin/env python3
"""Hostile load (issue 10, items 2, 3 and 6) replayed on loopback against the real server.

- Costly evaluations: six clients send Previews of 1,024 long lambdas, at count 5000 (over the evaluation budget)
  and just under the budget (the work pool's business); meanwhile the health check and a cheap GetValues keep
  answering within a generous 1 s deadline, and the attackers get INVALID_ARGUMENT or RESOURCE_EXHAUSTED.
- `hyperparameters` with 100,000 duplicate names on a job with 65,536 series: refused at once; 1,024 duplicates
  answer each series once.
- Shutdown within its grace: with --shutdown_grace=2s and CPU-bound calls in flight, the server exits soon after the
  grace, and those calls answer UNAVAILABLE (or CANCELLED).
- Slow watchers: WatchJob streams that never read, on a job whose events are ~600 KB, while the job is updated: the
  server's memory grows by far less than one copy per stream per update (bounded by --max_watch_queue_bytes, the
  events being shared), the watchers are dropped with RESOURCE_EXHAUSTED, and other clients are served.

Every loop is bounded; latencies are printed, not asserted beyond the liveness deadline.

Usage: /usr/bin/python3 load_test.py BUILD_DIR
"""
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402
from server_process import ServerProcess  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
# 50 terms of about 5 instructions: about 250 instructions per value, 999 characters (the limit is 1024).
LONG_LAMBDA = "+".join("0.001*cos(step/%d)" % (k + 100) for k in range(50))
LIVENESS_DEADLINE = 1.0  # Seconds; generous for CI, the target is 100 ms.


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class LoadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-load-")
        cls.stub_tmp, cls.job_pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    # --- helpers

    def start(self, *flags, name, env=None):
        server = ServerProcess(BUILD, self.tmp, "--store=memory", *flags, name=name, env=env)
        channel = self.grpc.insecure_channel(server.address)
        self.addCleanup(channel.close)
        return server, channel, self.svc_grpc.SchedulerServiceStub(channel)

    def lambda_schedule(self):
        schedule = self.sched.Schedule()
        getattr(schedule, "lambda").expression = LONG_LAMBDA
        return schedule

    def chained_lambdas(self, outer, inner):
        """A chained of `outer` chained of `inner` long lambdas: outer x inner x ~251 units per step."""
        schedule = self.sched.Schedule()
        for _ in range(outer):
            child = schedule.chained.schedules.add()
            for _ in range(inner):
                child.chained.schedules.add().CopyFrom(self.lambda_schedule())
        return schedule

    def create(self, stub, job_id, hyperparameters, groups, schedule=None):
        job = self.job_pb.Job()
        for h in range(hyperparameters):
            hp = job.hyperparameters.add(name=f"h{h}", base_values=[0.1] * groups)
            if schedule is not None:
                hp.schedule.CopyFrom(schedule)
            else:
                hp.schedule.step.step_size = 10
        stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=job), timeout=30)

    def code(self, call, request, timeout=30):
        try:
            call(request, timeout=timeout)
            return self.grpc.StatusCode.OK, ""
        except self.grpc.RpcError as e:
            return e.code(), e.details()

    @staticmethod
    def health(channel):
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda _: b"", response_deserializer=lambda b: b)
        return lambda: check(None, timeout=LIVENESS_DEADLINE)

    def probe(self, channel, stub, stop, results):
        """Health checks and cheap GetValues until `stop`, at most 400 rounds: [(name, seconds, error)]."""
        health = self.health(channel)
        cheap = self.svc.GetValuesRequest(job="jobs/small", step=0, count=10)
        for _ in range(400):
            if stop.is_set():
                return
            for name, call in (("health", health),
                               ("GetValues", lambda: stub.GetValues(cheap, timeout=LIVENESS_DEADLINE))):
                t = time.monotonic()
                try:
                    call()
                    results.append((name, time.monotonic() - t, None))
                except self.grpc.RpcError as e:
                    results.append((name, time.monotonic() - t, e.code()))
            time.sleep(0.02)

    def report(self, title, results):
        for name in ("health", "GetValues"):
            times = sorted(t for n, t, _ in results if n == name)
            if times:
                print(f"{title}: {name}: {len(times)} calls, median {times[len(times) // 2] * 1000:.1f} ms, "
                      f"max {times[-1] * 1000:.1f} ms", flush=True)

    # --- item 2: costly evaluations

    def test_costly_previews_leave_health_and_cheap_reads_alone(self):
        server, channel, stub = self.start("--eval_threads=2", "--eval_queue=2", name="costly")
        self.create(stub, "small", 1, 1)
        # 32 groups of a long lambda: 32 x 10000 x 251 = 80 M units at count 10000, over the default budget of 50 M.
        self.create(stub, "lambdas", 1, 32, self.lambda_schedule())
        C = self.grpc.StatusCode
        # 1,024 long lambdas (chained): 1.3 G units at count 5000, several seconds of CPU each before.
        over = self.svc.PreviewRequest(schedule=self.chained_lambdas(16, 64), count=5000)
        # 64 long lambdas at count 3000: about 48 M units, just within the budget, so evaluated, off gRPC's threads.
        within = self.svc.PreviewRequest(schedule=self.chained_lambdas(1, 64), count=3000)
        stop = threading.Event()
        probes = []
        codes = []
        lock = threading.Lock()

        def attack(i):
            request = over if i % 2 == 0 else within
            for _ in range(8):
                code, message = self.code(stub.Preview, request, timeout=60)
                with lock:
                    codes.append((request is over, code, message))

        prober = threading.Thread(target=self.probe, args=(channel, stub, stop, probes))
        prober.start()
        attackers = [threading.Thread(target=attack, args=(i,)) for i in range(6)]
        for a in attackers:
            a.start()
        for a in attackers:
            a.join(timeout=300)
        stop.set()
        prober.join(timeout=60)
        self.report("costly Previews", probes)

        # One GetValues of the lambda job at count 10000 (6.4 s before): refused before evaluating.
        code, message = self.code(stub.GetValues, self.svc.GetValuesRequest(job="jobs/lambdas", count=10000))
        self.assertEqual(code, C.INVALID_ARGUMENT)
        self.assertIn("count: the request would cost", message)
        self.assertIn("--max_eval_cost", message)
        # Within the budget it answers, with every group's values.
        values = stub.GetValues(self.svc.GetValuesRequest(job="jobs/lambdas", count=100), timeout=60)
        self.assertEqual(len(values.series), 32)
        self.assertEqual(len(values.series[31].values), 100)

        self.assertTrue(probes, "the prober ran")
        failed = [(n, t, c) for n, t, c in probes if c is not None]
        self.assertEqual(failed, [], "health and cheap reads answered within the deadline while the attack ran")
        over_codes = {(c, m.split(":")[0]) for is_over, c, m in codes if is_over}
        self.assertEqual(over_codes, {(C.INVALID_ARGUMENT, "count")}, codes[:3])
        self.assertTrue(all("--max_eval_cost" in m for is_over, c, m in codes if is_over))
        within_codes = {c for is_over, c, m in codes if not is_over}
        self.assertLessEqual(within_codes, {C.OK, C.RESOURCE_EXHAUSTED})
        self.assertIn(C.OK, within_codes)
        for is_over, c, m in codes:
            if c == C.RESOURCE_EXHAUSTED:
                self.assertIn("busy with costly evaluations", m)
        print(f"costly Previews: attacker codes {sorted(_count(codes).items())}", flush=True)
        self.assertEqual(server.stop(), 0)

    def test_duplicate_hyperparameter_names(self):
        server, channel, stub = self.start(name="names")
        self.create(stub, "wide", 64, 1024)  # 65,536 series.
        C = self.grpc.StatusCode
        t = time.monotonic()
        code, message = self.code(stub.GetValues,
                                  self.svc.GetValuesRequest(job="jobs/wide", hyperparameters=["h7"] * 100000))
        print(f"100000 names: {code.name} in {(time.monotonic() - t) * 1000:.0f} ms", flush=True)
        self.assertEqual(code, C.INVALID_ARGUMENT)
        self.assertEqual(message, "hyperparameters: must name at most 1024 hyperparameters, got 100000")
        response = stub.GetValues(self.svc.GetValuesRequest(job="jobs/wide", hyperparameters=["h7", "h3"] * 512),
                                  timeout=30)
        # Each named hyperparameter once, every group, in the job's order.
        self.assertEqual(len(response.series), 2048)
        self.assertEqual([s.hyperparameter for s in response.series[::1024]], ["h3", "h7"])
        self.assertEqual([s.group for s in response.series[:3]], [0, 1, 2])
        code, message = self.code(stub.GetValues,
                                  self.svc.GetValuesRequest(job="jobs/wide", hyperparameters=["h7"] * 5 + ["nope"]))
        self.assertEqual((code, message), (C.INVALID_ARGUMENT, 'hyperparameters[5]: the job has no hyperparameter "nope"'))
        self.assertEqual(server.stop(), 0)

    def test_malformed_watch_request(self):
        # WatchJob is served raw (its events are shared bytes): the service parses the request itself.
        server, channel, stub = self.start(name="raw")
        call = channel.unary_stream("/hpsched.v1.SchedulerService/WatchJob")
        with self.assertRaises(self.grpc.RpcError) as raised:
            next(call(b"\x0a\xff\xff\xff\x0f", timeout=10))
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(raised.exception.details(), "the request is not a serialized WatchJobRequest")
        self.assertEqual(self.code(stub.ListJobs, self.svc.ListJobsRequest())[0], self.grpc.StatusCode.OK)
        self.assertEqual(server.stop(), 0)

    # --- item 6: shutdown within the grace

    def test_shutdown_cancels_evaluations_at_the_grace(self):
        # A budget high enough for calls of many seconds each (2.6 G units), so they are in flight at SIGTERM.
        server, channel, stub = self.start("--shutdown_grace=2s", "--max_eval_cost=100000000000", "--eval_threads=2",
                                           name="grace")
        request = self.svc.PreviewRequest(schedule=self.chained_lambdas(16, 64), count=10000)
        codes = []
        calls = [stub.Preview.future(request, timeout=120) for _ in range(4)]
        time.sleep(1.0)  # Let them start evaluating (each needs far more than the test's whole run).
        t = time.monotonic()
        server.proc.send_signal(15)
        exit_code = server.proc.wait(timeout=60)
        took = time.monotonic() - t
        server.log.close()
        print(f"shutdown with 4 CPU-bound calls in flight, grace 2 s: exited in {took:.2f} s", flush=True)
        for call in calls:
            try:
                call.result(timeout=30)
                codes.append(self.grpc.StatusCode.OK)
            except self.grpc.RpcError as e:
                codes.append(e.code())
        self.assertEqual(exit_code, 0)
        self.assertLess(took, 2 + 4, "the server exits soon after its grace")
        C = self.grpc.StatusCode
        self.assertLessEqual(set(codes), {C.UNAVAILABLE, C.CANCELLED}, codes)

    # --- item 3: slow watchers

    def update(self, step):
        return self.svc.UpdateJobRequest(name="jobs/wide", updates=[self.svc.HyperparameterUpdate(
            hyperparameter="h0", segment=self.job_pb.Segment(effective_step=step, scale=0.5))])

    def test_slow_watchers_hold_bounded_memory(self):
        limit = 2 << 20
        # glibc returns large blocks to the system when they are freed, so RSS follows what the server holds.
        malloc = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072", "MALLOC_ARENA_MAX": "2"}
        server, channel, stub = self.start(f"--max_watch_queue_bytes={limit}", name="watchers", env=malloc)
        self.create(stub, "small", 1, 1)
        # Each event carries the job, whose spec is 256 long lambdas: about 260 KB, cheap to compile.
        self.create(stub, "wide", 1, 1, self.chained_lambdas(16, 16))
        event_bytes = stub.GetJob(self.svc.GetJobRequest(name="jobs/wide"), timeout=30).ByteSize()
        watchers, updates = int(os.environ.get("LOAD_WATCHERS", 20)), 20
        # Before the watchers start: the same updates warm the allocator, so the growth measured is the watchers'.
        for i in range(updates):
            stub.UpdateJob(self.update(500 + i), timeout=30)
        streams = []
        # Each watcher on its own channel, so one connection's flow control does not stall the others.
        for _ in range(watchers):
            # No BDP probing: the client announces no window beyond the initial 64 KB while nothing reads.
            ch = self.grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1),
                                                                     ("grpc.http2.bdp_probe", 0)])
            self.addCleanup(ch.close)
            streams.append(self.svc_grpc.SchedulerServiceStub(ch).WatchJob(
                self.svc.WatchJobRequest(job="jobs/wide"), timeout=120))
        time.sleep(1.0)  # The snapshots are written (and stall in the unread windows).
        before = rss_bytes(server.proc.pid)
        peak = before
        for i in range(updates):
            stub.UpdateJob(self.update(1000 + i), timeout=30)
            peak = max(peak, rss_bytes(server.proc.pid))
        time.sleep(1.0)
        after = rss_bytes(server.proc.pid)
        print(f"slow watchers: RSS after the updates settled: {after >> 20} MB", flush=True)
        growth = peak - before
        unshared = watchers * updates * event_bytes
        print(f"slow watchers: {watchers} x {updates} updates of {event_bytes} B events: RSS {before >> 20} MB -> "
              f"peak {peak >> 20} MB (+{growth >> 20} MB; one copy per stream would be {unshared >> 20} MB)", flush=True)
        # Other clients are served meanwhile.
        self.assertEqual(len(stub.GetValues(self.svc.GetValuesRequest(job="jobs/small"), timeout=5).series), 1)
        self.health(channel)()
        # The bound: events are shared, a stream holds at most the limit plus the event in flight; allow gRPC's own
        # buffers and the allocator generous room, far below one copy per stream per update.
        self.assertLess(growth, 8 * (limit + event_bytes) + (32 << 20))
        self.assertLess(growth, unshared // 4)
        # A watcher that finally reads gets its snapshot, then the reason it was dropped.
        stream = streams[0]
        first = next(stream)
        self.assertEqual(first.type, self.svc.JOB_EVENT_TYPE_SNAPSHOT)
        self.assertEqual(len(first.job.hyperparameters[0].schedule.chained.schedules), 16)
        with self.assertRaises(self.grpc.RpcError) as raised:
            for _ in range(updates + 2):
                next(stream)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("fell behind", raised.exception.details())
        self.assertIn("reconnect for a fresh snapshot", raised.exception.details())
        for s in streams:
            s.cancel()
        # A new watch gets a fresh snapshot at the latest version.
        fresh = next(stub.WatchJob(self.svc.WatchJobRequest(job="jobs/wide"), timeout=30))
        self.assertEqual(fresh.job.version, 1 + 2 * updates)
        self.assertEqual(server.stop(), 0)


def _count(codes):
    out = {}
    for is_over, c, _ in codes:
        key = ("over budget" if is_over else "within budget", c.name)
        out[key] = out.get(key, 0) + 1
    return out


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
