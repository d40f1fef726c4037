#!/usr/bin/python3
"""torchrun --nproc_per_node=3 (gloo, CPU): three DDP ranks train the toy model with RemoteScheduler reading one job.

Every rank's learning rates equal every other rank's and PyTorch's own OneCycleLR for the same spec (1e-12), the
ranks end with the same weights, and the loss falls. The rendezvous uses a free loopback port, the server another,
so the test can run in parallel with others.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn
from torch.optim import lr_scheduler as L

from hpsched_testing import ServerTestCase, free_port, main

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "ddp_worker.py")
NPROC = 3
STEPS = 60
WINDOW = 16
MAX_LR = 0.1
RUN_TIMEOUT = 240  # seconds for one torchrun
REL = 1e-12


def torchrun_command() -> list[str]:
    """/usr/bin/torchrun when it runs under /usr/bin/python3's interpreter, else `/usr/bin/python3 -m torch...`."""
    torchrun = "/usr/bin/torchrun"
    if os.access(torchrun, os.X_OK):
        with open(torchrun) as f:
            shebang = f.readline()
        if os.path.realpath(shebang[2:].strip()) == os.path.realpath(sys.executable):
            return [torchrun]
    return [sys.executable, "-m", "torch.distributed.run"]


def local_lrs(steps: int) -> list[float]:
    """The lr each optimizer step uses under PyTorch's OneCycleLR, for steps 0..steps-1."""
    opt = torch.optim.Adam(nn.Linear(1, 1).parameters(), lr=MAX_LR)
    sched = L.OneCycleLR(opt, max_lr=MAX_LR, total_steps=steps, cycle_momentum=False)
    out = []
    for step in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if step < steps - 1:  # PyTorch's OneCycleLR raises past total_steps
            sched.step()
    return out


class TorchrunDDPTest(ServerTestCase):

    def run_torchrun(self, out_dir: str, log_dir: str, job: str) -> subprocess.CompletedProcess:
        """torchrun in its own session, killed as a group on timeout; retried if the rendezvous port was taken."""
        env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
        # --redirects / --tee: their default "0" crashes Debian's torchrun 1.13 under Python 3.11 (Std.from_str("0")
        # is None because 3.11 no longer iterates IntFlag's zero member: "'NoneType' object has no attribute 'get'").
        # 2 (stderr) works: workers' stderr goes to a log file and, tee'd, to torchrun's output with a rank prefix.
        for attempt in range(3):
            command = [*torchrun_command(), "--nnodes=1", f"--nproc_per_node={NPROC}", "--master_addr=127.0.0.1",
                       f"--master_port={free_port()}", "--max_restarts=0", "--redirects=2", "--tee=2",
                       f"--log_dir={log_dir}", WORKER, f"--target={self.target}",
                       f"--job={job}", f"--steps={STEPS}", f"--window={WINDOW}", f"--out_dir={out_dir}"]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       env=env, start_new_session=True)
            try:
                output, _ = process.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    output, _ = process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    output, _ = process.communicate()
                self.fail(f"torchrun did not finish within {RUN_TIMEOUT} s:\n{output[-6000:]}")
            finally:
                try:  # leftover workers, if any
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            result = subprocess.CompletedProcess(command, process.returncode, output)
            if result.returncode == 0 or "address already in use" not in output.lower():
                return result
            print(f"torchrun attempt {attempt + 1}: rendezvous port taken, retrying", file=sys.stderr)
        return result

    def test_three_ranks_share_the_schedule(self):
        self.client.create_job("ddp-onecycle", {"lr": {"base_values": [MAX_LR], "schedule": {
            "one_cycle": {"max_lr": [MAX_LR], "total_steps": STEPS}}}})
        tmp = tempfile.mkdtemp(prefix="hpsched-ddp-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out_dir, log_dir = os.path.join(tmp, "out"), os.path.join(tmp, "logs")
        os.makedirs(out_dir)

        start = time.monotonic()
        result = self.run_torchrun(out_dir, log_dir, "ddp-onecycle")
        print(f"torchrun: {time.monotonic() - start:.1f} s", file=sys.stderr)
        self.assertEqual(result.returncode, 0, f"torchrun failed:\n{result.stdout[-6000:]}")

        ranks = []
        for rank in range(NPROC):
            path = os.path.join(out_dir, f"lr_rank{rank}.json")
            self.assertTrue(os.path.exists(path), f"{path} missing; torchrun output:\n{result.stdout[-6000:]}")
            with open(path) as f:
                ranks.append(json.load(f))
        self.assertEqual(sorted(os.listdir(out_dir)), [f"lr_rank{r}.json" for r in range(NPROC)])

        want = local_lrs(STEPS)
        for r, data in enumerate(ranks):
            with self.subTest(rank=r):
                self.assertEqual((data["rank"], data["world_size"]), (r, NPROC))
                self.assertEqual(len(data["lrs"]), STEPS)
                # Every rank's learning rates equal every other rank's, bit for bit ...
                self.assertEqual(data["lrs"], ranks[0]["lrs"])
                # ... and PyTorch's OneCycleLR for the same spec.
                for step, (got, exp) in enumerate(zip(data["lrs"], want)):
                    self.assertLessEqual(abs(got - exp), REL * abs(exp), f"rank {r} step {step}: {got!r} vs {exp!r}")
                # DDP kept the replicas equal.
                self.assertEqual(data["weights"], ranks[0]["weights"])
                # The loss fell.
                first, last = sum(data["losses"][:5]) / 5, sum(data["losses"][-5:]) / 5
                self.assertLess(last, 0.1 * first, f"rank {r}: loss {first} -> {last}")
                # Steps 0..STEPS were read through the window: ceil((STEPS + 1) / WINDOW) GetValues.
                self.assertEqual(data["rpc_count"], math.ceil((STEPS + 1) / WINDOW))
        self.assertGreater(max(want), 0.99 * MAX_LR)  # the schedule really went through its cycle
        self.assertLess(want[-1], MAX_LR / 1000)


if __name__ == "__main__":
    main()
