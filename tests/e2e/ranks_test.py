#!/usr/bin/python3
"""Several real processes on one live job: ranks read, a reporter reports, an operator updates, all at once.

Usage: /usr/bin/python3 ranks_test.py BUILD_DIR      (env HPSCHED_PY_STUBS=BUILD_DIR/python)

The job: lr (2 groups) = sequential(LinearLR warmup for W steps, reduce_on_plateau on val_loss reported every K
steps), momentum = cosine_annealing. Processes (tests/e2e/rank_worker.py):
* RANKS rank processes: GetValues(step) for steps 0..N-1 with the default pending policy (they wait at each epoch
  boundary for the report), each recording what it got;
* one reporter: "trains" an epoch, reports a deterministic val_loss at step (e + 1) * K - 1;
* one operator: at a random moment, UpdateJob(lr: scale 0.5) from a step ahead of the served ones (retrying from a
  later step on FAILED_PRECONDITION).
Checks afterwards: every rank recorded the same values for every step; they equal one GetValues over [0, N) made
after everything finished; the job's history holds exactly the operator's one segment; and the values equal an
independent recomputation with real torch (LinearLR for W steps, then a fresh ReduceLROnPlateau on the same optimizer
fed the reports at steps >= W, then x 0.5 from the operator's effective step), at 1e-12 relative (LinearLR's recursive
formula is a few ulps off the closed form). The seed of the random moments is printed; set HPSCHED_RANKS_SEED to
replay one.
"""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402
import server_process  # noqa: E402
from server_process import ServerProcess, unittest_main  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(REPO, "build")
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rank_worker.py")
RANKS = 4
N = 300  # steps
K = 10  # val_loss every K steps
W = 30  # warmup steps
WARMUP_ITERS = 20
START_FACTOR = 0.1
LR_BASES = [0.1, 0.02]
PATIENCE = 1
FACTOR = 0.5
MOMENTUM = (0.95, 0.85)  # base, eta_min; cosine over N steps
PROCESS_TIMEOUT = 45
REL_TOL = 1e-12


def job_spec():
    return {
        "hyperparameters": [
            {"name": "lr", "baseValues": LR_BASES, "schedule": {"sequential": {
                "schedules": [
                    {"linear": {"startFactor": START_FACTOR, "endFactor": 1.0, "totalIters": str(WARMUP_ITERS)}},
                    {"reduceOnPlateau": {"metric": "val_loss", "patience": str(PATIENCE), "factor": FACTOR}}],
                "milestones": [str(W)]}}},
            {"name": "momentum", "baseValues": [MOMENTUM[0]],
             "schedule": {"cosineAnnealing": {"tMax": str(N), "etaMin": MOMENTUM[1]}}},
        ],
        "metrics": [{"name": "val_loss", "everySteps": str(K)}],
    }


def torch_lr(reports, scale_from):
    """lr per group for steps [0, N) from real torch: LinearLR for W steps, then a fresh ReduceLROnPlateau on the same
    optimizer fed the reports at steps >= W (a report at s sets the value from s + 1 on), then the operator's x 0.5."""
    import torch
    from torch.optim import lr_scheduler as LRS
    warnings.simplefilter("ignore")
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in LR_BASES]
    opt = torch.optim.SGD([{"params": [p], "lr": b} for p, b in zip(params, LR_BASES)], lr=LR_BASES[0])
    linear = LRS.LinearLR(opt, start_factor=START_FACTOR, end_factor=1.0, total_iters=WARMUP_ITERS)
    plateau = None
    by_step = dict(reports)
    out = []
    for n in range(N):
        out.append([g["lr"] * (0.5 if n >= scale_from else 1.0) for g in opt.param_groups])
        if n + 1 <= W:
            linear.step()
            if n + 1 == W:
                plateau = LRS.ReduceLROnPlateau(opt, mode="min", factor=FACTOR, patience=PATIENCE)
        if n >= W and n in by_step:
            plateau.step(by_step[n])
    return out


def close(a, b):
    return a == b or abs(a - b) <= REL_TOL * max(abs(a), abs(b))


class RanksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        from google.protobuf import json_format
        cls.grpc = grpc
        cls.json_format = json_format
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-ranks-")
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    def test_ranks_memory_store(self):
        self.run_ranks("memory", "--store=memory")

    def test_ranks_sqlite_store(self):
        """The same with the SQLite store, whose synced writes make UpdateJob and ReportMetrics take milliseconds."""
        data_dir = os.path.join(self.tmp, "data")
        os.makedirs(data_dir)
        self.run_ranks("sqlite", "--store=sqlite", f"--data_dir={data_dir}")

    def run_ranks(self, name, *flags):
        server = ServerProcess(BUILD, self.tmp, *flags, name=name)
        try:
            self.check_ranks(server.address, name)
        finally:
            self.assertEqual(server.stop(), 0)

    def spawn(self, *args):
        path = os.path.join(server_process.log_dir(BUILD), f"{self.run_name}-{args[0]}-{len(self.procs)}.log")
        server_process.keep_log(path)
        log = open(path, "w")
        proc = subprocess.Popen([sys.executable, WORKER, *args], stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ))
        self.procs.append((proc, log))
        return proc

    def check_ranks(self, addr, name):
        """Ranks, reporter and operator against the server at `addr`; the checks of the module docstring."""
        seed = int(os.environ.get("HPSCHED_RANKS_SEED", random.SystemRandom().randrange(1 << 30)))
        print(f"{name}: seed {seed} (HPSCHED_RANKS_SEED={seed} replays the random moments)", file=sys.stderr)
        job_id = "ranks"
        self.run_name = name
        with self.grpc.insecure_channel(addr) as channel:
            stub = self.svc_grpc.SchedulerServiceStub(channel)
            stub.CreateJob(self.svc.CreateJobRequest(
                job_id=job_id, job=self.json_format.ParseDict(job_spec(), self.pb.Job())), timeout=10)

            self.procs = []
            t0 = time.monotonic()
            outs = [os.path.join(self.tmp, f"{name}-rank{r}.jsonl") for r in range(RANKS)]
            reports_out = os.path.join(self.tmp, f"{name}-reports.jsonl")
            operator_out = os.path.join(self.tmp, f"{name}-operator.json")
            try:
                for r in range(RANKS):
                    self.spawn("rank", addr, job_id, str(N), outs[r], str(seed + r))
                self.spawn("reporter", addr, job_id, str(N), str(K), reports_out)
                self.spawn("operator", addr, job_id, operator_out, str(seed))
                deadline = time.monotonic() + PROCESS_TIMEOUT
                for proc, _ in self.procs:
                    proc.wait(timeout=max(1, deadline - time.monotonic()))
            finally:
                for proc, log in self.procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                    log.close()
            took = time.monotonic() - t0
            for i, (proc, log) in enumerate(self.procs):
                with open(log.name) as f:
                    self.assertEqual(proc.returncode, 0, f"{' '.join(proc.args[2:4])}:\n{f.read()[-3000:]}")

            with open(operator_out) as f:
                operator = json.load(f)
            with open(reports_out) as f:
                reports = [(r["step"], r["val_loss"]) for r in map(json.loads, f)]
            print(f"{RANKS} ranks x {N} steps, {len(reports)} reports, operator: scale 0.5 from step "
                  f"{operator['effective_step']} after {operator['attempts']} attempts; {took:.1f} s", file=sys.stderr)

            # 1. Every rank saw the same values at every step.
            ranks = []
            for out in outs:
                with open(out) as f:
                    rows = [json.loads(line) for line in f]
                self.assertEqual([row["step"] for row in rows], list(range(N)))
                ranks.append([row["values"] for row in rows])
            for r in range(1, RANKS):
                diff = [n for n in range(N) if ranks[r][n] != ranks[0][n]]
                self.assertEqual(diff[:10], [], f"rank {r} differs from rank 0 at steps {diff[:10]}")

            # 2. The final history, read once, says the same; it holds the operator's segment and nothing else.
            job = stub.GetJob(self.svc.GetJobRequest(name=f"jobs/{job_id}"), timeout=10)
            segments = job.hyperparameters[0].segments
            self.assertEqual([(s.effective_step, s.scale, s.version) for s in segments],
                             [(operator["effective_step"], 0.5, 2)])
            self.assertEqual(job.version, 2)
            self.assertEqual(len(job.hyperparameters[1].segments), 0)
            final = stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=0, count=N), timeout=10)
            self.assertFalse(final.HasField("provisional_from"))
            history = [{f"{s.hyperparameter}/{s.group}": s.values[n] for s in final.series} for n in range(N)]
            diff = [n for n in range(N) if history[n] != ranks[0][n]]
            self.assertEqual(diff[:10], [], f"ranks differ from the final history at steps {diff[:10]}: "
                                            f"{[(n, ranks[0][n], history[n]) for n in diff[:3]]}")

            # 3. Independent recomputation with torch from what was reported and what the operator did.
            want = torch_lr(reports, operator["effective_step"])
            bad = []
            for n in range(N):
                for g in range(len(LR_BASES)):
                    if not close(history[n][f"lr/{g}"], want[n][g]):
                        bad.append((n, g, history[n][f"lr/{g}"], want[n][g]))
                momentum = MOMENTUM[1] + (MOMENTUM[0] - MOMENTUM[1]) * (1 + math.cos(math.pi * n / N)) / 2
                if not close(history[n]["momentum/0"], momentum):
                    bad.append((n, "momentum", history[n]["momentum/0"], momentum))
            self.assertEqual(bad[:10], [])
            reductions = sorted({n for n in range(W + 1, N) if want[n][0] < want[n - 1][0]})
            print(f"lr changes (plateau reductions and the operator's scale) at steps {reductions}", file=sys.stderr)
            self.assertGreaterEqual(len(reductions), 2, "the metrics should make the plateau reduce")
            self.assertLess(took, 50)


if __name__ == "__main__":
    unittest_main()
