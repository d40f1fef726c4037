#!/usr/bin/python3
"""Several hpsched-server replicas over one throwaway PostgreSQL (tests/lib/pg_cluster.py), as docs/replicas.md
promises:

* three replicas; rank processes spread over them, the reporter on one, the operator (UpdateJob) on another: every
  rank records the same values for every step, equal to the final history read from every replica, and to a
  recomputation with real torch (tests/e2e/ranks_test.py's job and checks);
* an update through replica A effective at a step replica B has served is FAILED_PRECONDITION (naming B's step),
  and goes through with allow_rewrite; B then answers the new value;
* SIGKILL of one replica while ranks and the reporter run through all three (round robin, retrying on
  UNAVAILABLE): they carry on on the others, and every acknowledged report is in the database (reporting it again
  through each surviving replica is a duplicate);
* PostgreSQL stopped under load: reads keep being answered by both replicas, mutations answer UNAVAILABLE, each
  replica's health for "hpsched.v1.SchedulerService.replica" turns NOT_SERVING (the service's stays SERVING);
  PostgreSQL started again: the replicas recover by themselves, and nothing acknowledged is lost.

Usage: /usr/bin/python3 replicas_test.py BUILD_DIR      (env HPSCHED_PY_STUBS=BUILD_DIR/python)
Every wait is bounded; every process is stopped at the end.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(REPO, "build")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import grpcio_golden  # noqa: E402
import ranks_test  # noqa: E402  (its job, its torch recomputation; BUILD was taken above)
import server_process  # noqa: E402
from pg_cluster import PgCluster  # noqa: E402
from server_process import ServerProcess, unittest_main  # noqa: E402

WORKER = os.path.join(HERE, "rank_worker.py")
RPC = 10
REPLICA_HEALTH = "hpsched.v1.SchedulerService.replica"


def health(channel, service):
    """grpc.health.v1.Health/Check by hand (no grpc_health package here): 1 SERVING, 2 NOT_SERVING."""
    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    name = service.encode()
    reply = check(b"\x0a" + bytes([len(name)]) + name, timeout=RPC)
    return reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0


def wait_until(what, check, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class RoundRobin:
    """A client over several replicas: each call goes to the next one, and on UNAVAILABLE to the one after
    (what the multi-address clients do), for at most `attempts` tries."""

    def __init__(self, grpc, stubs, attempts=12):
        self.grpc, self.stubs, self.attempts, self.next = grpc, stubs, attempts, 0
        self.failovers = 0

    def call(self, method, request, timeout=RPC):
        last = None
        for attempt in range(self.attempts):
            stub = self.stubs[self.next % len(self.stubs)]
            self.next += 1
            try:
                return getattr(stub, method)(request, timeout=timeout)
            except self.grpc.RpcError as e:
                if e.code() != self.grpc.StatusCode.UNAVAILABLE:
                    raise
                last = e
                self.failovers += 1
                time.sleep(0.05 * attempt)
        raise last


class ReplicasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        from google.protobuf import json_format
        cls.grpc, cls.json_format = grpc, json_format
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-replicas-")
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()
        cls.cluster = PgCluster()
        cls.cluster.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    def setUp(self):
        self.servers, self.channels, self.procs = [], [], []

    def tearDown(self):
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        for channel in self.channels:
            channel.close()
        for server in self.servers:
            if server.proc.poll() is None:
                server.stop()
        if not self.cluster.running():
            self.cluster.start()

    def replicas(self, n, prefix, *flags):
        started = []
        for i in range(n):
            server = ServerProcess(BUILD, self.tmp, "--store=postgres", f"--replica_id={prefix}{i}", *flags,
                                   name=f"{prefix}{i}", env={"HPSCHED_POSTGRES_URL": self.cluster.url})
            self.servers.append(server)
            started.append(server)
        return started

    def stub(self, server):
        channel = self.grpc.insecure_channel(server.address)
        self.channels.append(channel)
        return self.svc_grpc.SchedulerServiceStub(channel), channel

    def create(self, stub, job_id, spec):
        return stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=self.json_format.ParseDict(spec, self.pb.Job())),
                              timeout=RPC)

    def wait_for_job(self, stub, job_id):
        def present():
            try:
                return stub.GetJob(self.svc.GetJobRequest(name=f"jobs/{job_id}"), timeout=RPC)
            except self.grpc.RpcError as e:
                if e.code() != self.grpc.StatusCode.NOT_FOUND:
                    raise
                return None
        return wait_until(f"jobs/{job_id} to reach the replica", present)

    def spawn(self, name, *args):
        path = os.path.join(server_process.log_dir(BUILD), f"{name}-{args[0]}-{len(self.procs)}.log")
        server_process.keep_log(path)
        log = open(path, "w")
        proc = subprocess.Popen([sys.executable, WORKER, *args], stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        self.procs.append((proc, log))
        return proc

    def test_ranks_over_three_replicas(self):
        servers = self.replicas(3, "ranks")
        stubs = [self.stub(s)[0] for s in servers]
        seed = int(os.environ.get("HPSCHED_RANKS_SEED", random.SystemRandom().randrange(1 << 30)))
        print(f"seed {seed} (HPSCHED_RANKS_SEED={seed} replays the random moments)", file=sys.stderr)
        job_id = "ranks"
        self.create(stubs[0], job_id, ranks_test.job_spec())
        for stub in stubs:
            self.wait_for_job(stub, job_id)
        n, ranks = ranks_test.N, 3
        outs = [os.path.join(self.tmp, f"rank{r}.jsonl") for r in range(ranks)]
        reports_out = os.path.join(self.tmp, "reports.jsonl")
        operator_out = os.path.join(self.tmp, "operator.json")
        for r in range(ranks):
            self.spawn("ranks", "rank", servers[r % 3].address, job_id, str(n), outs[r], str(seed + r))
        self.spawn("ranks", "reporter", servers[1].address, job_id, str(n), str(ranks_test.K), reports_out)
        self.spawn("ranks", "operator", servers[0].address, job_id, operator_out, str(seed))
        deadline = time.monotonic() + 60
        for proc, log in self.procs:
            proc.wait(timeout=max(1, deadline - time.monotonic()))
            with open(log.name) as f:
                self.assertEqual(proc.returncode, 0, f"{' '.join(proc.args[2:4])}:\n{f.read()[-3000:]}")
        with open(operator_out) as f:
            operator = json.load(f)
        with open(reports_out) as f:
            reports = [(r["step"], r["val_loss"]) for r in map(json.loads, f)]
        print(f"operator: scale 0.5 from step {operator['effective_step']} after {operator['attempts']} attempts",
              file=sys.stderr)
        recorded = []
        for out in outs:
            with open(out) as f:
                rows = [json.loads(line) for line in f]
            self.assertEqual([row["step"] for row in rows], list(range(n)))
            recorded.append([row["values"] for row in rows])
        for r in range(1, ranks):
            diff = [i for i in range(n) if recorded[r][i] != recorded[0][i]]
            self.assertEqual(diff[:10], [], f"rank {r} (replica {r % 3}) differs from rank 0 at steps {diff[:10]}")
        # The history, as every replica holds it once it has caught up, is what the ranks saw, and torch's.
        want = ranks_test.torch_lr(reports, operator["effective_step"])
        for i, stub in enumerate(stubs):
            def caught_up():
                job = stub.GetJob(self.svc.GetJobRequest(name=f"jobs/{job_id}"), timeout=RPC)
                return job.version == 2 and job
            job = wait_until(f"replica {i} to hold version 2", caught_up)
            self.assertEqual([(s.effective_step, s.scale) for s in job.hyperparameters[0].segments],
                             [(operator["effective_step"], 0.5)])
            final = stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=0, count=n), timeout=RPC)
            self.assertFalse(final.HasField("provisional_from"))
            history = [{f"{s.hyperparameter}/{s.group}": s.values[k] for s in final.series} for k in range(n)]
            diff = [k for k in range(n) if history[k] != recorded[0][k]]
            self.assertEqual(diff[:10], [], f"replica {i}'s history differs from the ranks at {diff[:10]}")
            bad = [(k, g) for k in range(n) for g in range(len(ranks_test.LR_BASES))
                   if not ranks_test.close(history[k][f"lr/{g}"], want[k][g])]
            self.assertEqual(bad[:10], [])
        reductions = sorted({k for k in range(ranks_test.W + 1, n) if want[k][0] < want[k - 1][0]})
        self.assertGreaterEqual(len(reductions), 2, "the metrics should make the plateau reduce")

    def test_update_at_a_step_another_replica_served_is_refused(self):
        a, b = (self.stub(s)[0] for s in self.replicas(2, "guard"))
        spec = {"hyperparameters": [{"name": "lr", "baseValues": [0.1],
                                     "schedule": {"step": {"stepSize": "1000000", "gamma": 0.5}}}]}
        self.create(a, "guard", spec)
        self.wait_for_job(b, "guard")
        served = b.GetValues(self.svc.GetValuesRequest(job="jobs/guard", step=0, count=201), timeout=RPC)
        self.assertEqual(list(served.series[0].values), [0.1] * 201)

        def update(step, allow_rewrite=False):
            return a.UpdateJob(self.svc.UpdateJobRequest(
                name="jobs/guard", allow_rewrite=allow_rewrite,
                updates=[self.svc.HyperparameterUpdate(hyperparameter="lr",
                                                       segment=self.pb.Segment(effective_step=step, scale=0.5))]),
                timeout=RPC)
        with self.assertRaises(self.grpc.RpcError) as refused:
            update(100)
        self.assertEqual(refused.exception.code(), self.grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("updates[0].segment.effective_step: 100 would change values already served (up to step 200)",
                      refused.exception.details())
        # Nothing changed, on either replica.
        self.assertEqual(b.GetJob(self.svc.GetJobRequest(name="jobs/guard"), timeout=RPC).version, 1)
        self.assertEqual(update(100, allow_rewrite=True).version, 2)
        # B answers the new history once the change reached it (promptly: notification, then catch-up).
        t0 = time.monotonic()
        wait_until("B to answer the rewritten value", lambda: b.GetValues(
            self.svc.GetValuesRequest(job="jobs/guard", step=150), timeout=RPC).series[0].values[0] == 0.05, 5)
        print(f"the rewrite reached B in {1000 * (time.monotonic() - t0):.1f} ms", file=sys.stderr)
        self.assertEqual(b.GetValues(self.svc.GetValuesRequest(job="jobs/guard", step=99), timeout=RPC)
                         .series[0].values[0], 0.1)
        # Past everything served, an update through B goes through at once.
        self.assertEqual(b.UpdateJob(self.svc.UpdateJobRequest(
            name="jobs/guard", updates=[self.svc.HyperparameterUpdate(
                hyperparameter="lr", segment=self.pb.Segment(effective_step=300, scale=0.5))]), timeout=RPC).version, 3)

    def load(self, clients, job_id, steps, stop, acked, failures):
        """A reporter and a reader through `clients` (RoundRobin) until `stop` or `steps` reports."""
        def reporter():
            try:
                for s in range(steps):
                    if stop.is_set():
                        return
                    value = 1.0 / (1 + s)
                    clients[0].call("ReportMetrics", self.svc.ReportMetricsRequest(
                        job=f"jobs/{job_id}", step=s, metrics={"loss": value}))
                    acked.append((s, value))
                    time.sleep(0.005)
            except Exception as e:  # noqa: BLE001 (reported by the test)
                failures.append(f"reporter: {e!r}")

        def reader():
            try:
                while not stop.is_set():
                    step = len(acked)
                    got = clients[1].call("GetValues", self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=step))
                    if got.series[0].values[0] != 0.1:
                        failures.append(f"reader: step {step} = {got.series[0].values[0]}")
                    time.sleep(0.002)  # a training step
            except Exception as e:  # noqa: BLE001
                failures.append(f"reader: {e!r}")
        threads = [threading.Thread(target=reporter), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        return threads

    def check_acked(self, stubs, job_id, acked):
        """Every acknowledged report is stored: reporting it again is a duplicate through every replica given."""
        for i, stub in enumerate(stubs):
            for s, value in acked:
                reply = stub.ReportMetrics(self.svc.ReportMetricsRequest(job=f"jobs/{job_id}", step=s,
                                                                         metrics={"loss": value}), timeout=RPC)
                self.assertTrue(reply.duplicate, f"report of step {s} lost (through replica {i})")

    # A constant lr beside a metric reported at every step (the reports are what must not be lost).
    LOAD_SPEC = {"hyperparameters": [{"name": "lr", "baseValues": [0.1],
                                      "schedule": {"step": {"stepSize": "100000000"}}}],
                 "metrics": [{"name": "loss", "everySteps": "1"}]}

    def test_sigkill_of_one_replica_under_load(self):
        servers = self.replicas(3, "kill")
        stubs = [self.stub(s)[0] for s in servers]
        self.create(stubs[0], "kill", self.LOAD_SPEC)
        for stub in stubs:
            self.wait_for_job(stub, "kill")
        clients = [RoundRobin(self.grpc, stubs), RoundRobin(self.grpc, stubs)]
        stop, acked, failures = threading.Event(), [], []
        threads = self.load(clients, "kill", 150, stop, acked, failures)
        wait_until("50 acknowledged reports", lambda: len(acked) >= 50, 30)
        servers[2].kill()
        killed_at = len(acked)
        threads[0].join(timeout=60)  # the reporter ends after its steps
        stop.set()
        threads[1].join(timeout=30)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(failures, [])
        self.assertEqual([s for s, _ in acked], list(range(150)))
        print(f"replica kill2 killed after {killed_at} reports; failovers {clients[0].failovers} (reporter), "
              f"{clients[1].failovers} (reader)", file=sys.stderr)
        self.check_acked(stubs[:2], "kill", acked)

    def test_postgres_stopped_and_started_under_load(self):
        servers = self.replicas(2, "outage", "--replica_lease=30s")
        pairs = [self.stub(s) for s in servers]
        stubs = [p[0] for p in pairs]
        self.create(stubs[0], "outage", self.LOAD_SPEC)
        for stub in stubs:
            self.wait_for_job(stub, "outage")
        # Both replicas have served (and reserved) the first steps.
        for stub in stubs:
            stub.GetValues(self.svc.GetValuesRequest(job="jobs/outage", step=0, count=100), timeout=RPC)
        acked = []
        for s in range(20):
            stubs[s % 2].ReportMetrics(self.svc.ReportMetricsRequest(job="jobs/outage", step=s,
                                                                     metrics={"loss": 1.0 / (1 + s)}), timeout=RPC)
            acked.append((s, 1.0 / (1 + s)))
        self.cluster.stop()
        t0 = time.monotonic()
        for i, (stub, channel) in enumerate(pairs):
            wait_until(f"replica {i} to report itself degraded", lambda: health(channel, REPLICA_HEALTH) == 2, 10)
            self.assertEqual(health(channel, "hpsched.v1.SchedulerService"), 1)
        # Reads of what the replicas hold go on; mutations answer UNAVAILABLE; nothing waits long. For 3 s at
        # least, so both replicas retry their connections meanwhile.
        round_ = 0
        while time.monotonic() - t0 < 3 or round_ < 20:
            round_ += 1
            for i, stub in enumerate(stubs):
                got = stub.GetValues(self.svc.GetValuesRequest(job="jobs/outage", step=(round_ % 20) * 5,
                                                               count=5, pending_policy=self.svc.PENDING_POLICY_PROVISIONAL_NOW),
                                     timeout=RPC)
                self.assertEqual(list(got.series[0].values), [0.1] * 5)
                with self.assertRaises(self.grpc.RpcError) as failed:
                    stub.ReportMetrics(self.svc.ReportMetricsRequest(job="jobs/outage", step=20,
                                                                     metrics={"loss": 0.5}), timeout=RPC)
                self.assertEqual(failed.exception.code(), self.grpc.StatusCode.UNAVAILABLE, failed.exception.details())
            time.sleep(0.01)
        print(f"outage: reads answered, mutations UNAVAILABLE, for {time.monotonic() - t0:.1f} s", file=sys.stderr)
        self.cluster.start()
        for i, (stub, channel) in enumerate(pairs):
            wait_until(f"replica {i} to recover", lambda: health(channel, REPLICA_HEALTH) == 1, 20)
        # Mutations go through again on both, and what was acknowledged before is there.
        for s in range(20, 40):
            stubs[s % 2].ReportMetrics(self.svc.ReportMetricsRequest(job="jobs/outage", step=s,
                                                                     metrics={"loss": 1.0 / (1 + s)}), timeout=RPC)
            acked.append((s, 1.0 / (1 + s)))
        self.check_acked(stubs, "outage", acked)
        for server in servers:
            self.assertIn("replica degraded", server.log_text())
            self.assertIn("replica recovered", server.log_text())


if __name__ == "__main__":
    unittest_main()
