#!/usr/bin/env python3
"""Keeps the README honest: runs its grpcurl recipes, its "Coming from PyTorch" table and the catalog's examples
against a real server.

Usage: /usr/bin/python3 readme_recipes_test.py BUILD_DIR

- Every `grpcurl -plaintext [-d JSON] localhost:50051 SERVICE/METHOD` line of README.md runs, in order, as the same
  call through `buf curl --protocol grpc --http2-prior-knowledge` (a grpcurl-compatible client, same JSON, same
  reflection) and must succeed.
- Every row of the PyTorch table runs twice: the PyTorch call with Debian's torch (60 scheduler steps, base lr 0.1)
  and the JSON through the server's Preview; the values must agree to 1e-12 relative.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_process import ServerProcess, read, unittest_main  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(REPO, "build")
BUF = os.path.join(REPO, "tools", "node_modules", ".bin", "buf")
README = None  # Read in main().
STEPS = 60
BASE_LR = 0.1


def grpcurl_recipes():
    recipes = []
    for line in README.splitlines():
        m = re.match(r"^grpcurl -plaintext(?: -max-time (\d+))?(?: -d '(.*)')? localhost:50051 (\S+/\S+)$",
                     line.strip())
        if m:
            recipes.append((m.group(2), m.group(3), int(m.group(1)) if m.group(1) else None))
    return recipes


def pytorch_rows():
    rows = []
    for line in README.splitlines():
        m = re.match(r"^\| `(.+)` \| `(\{.+\})` \|$", line.strip())
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


def torch_values(call):
    import warnings
    import torch
    from torch.optim import lr_scheduler

    warnings.filterwarnings("ignore")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=BASE_LR)
    namespace = {name: getattr(lr_scheduler, name) for name in dir(lr_scheduler)}
    namespace["opt"] = opt
    scheduler = eval(call, namespace)  # noqa: S307 - the README's own table
    values = [opt.param_groups[0]["lr"]]
    for _ in range(STEPS - 1):
        opt.step()
        scheduler.step()
        values.append(opt.param_groups[0]["lr"])
    return values


class ReadmeRecipesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-readme-")
        cls.server = ServerProcess(BUILD, cls.tmp, "--store=memory")
        cls.url = f"http://{cls.server.address}"

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def buf_curl(self, method, data, max_time=None):
        """Runs the call; with max_time (grpcurl's -max-time, buf curl's --timeout) the call is a stream that is
        still open at its deadline: returns the messages it printed (JSON objects, one after another)."""
        args = [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--emit-defaults"]
        if data is not None:
            args += ["-d", data]
        if max_time is not None:
            args += ["--timeout", f"{max_time}s"]
        result = subprocess.run(args + [f"{self.url}/{method}"], capture_output=True, text=True, timeout=60)
        if max_time is not None:
            self.assertIn("deadline_exceeded", result.stderr, f"{method} {data}: {result.stderr}")
            decoder, text, messages = json.JSONDecoder(), result.stdout.strip(), []
            while text:
                message, end = decoder.raw_decode(text)
                messages.append(message)
                text = text[end:].strip()
            return messages
        self.assertEqual(result.returncode, 0, f"{method} {data}: {result.stderr}")
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def test_grpcurl_recipes(self):
        recipes = grpcurl_recipes()
        methods = {m.split("/")[1] for _, m, _ in recipes}
        # One recipe per RPC of the service, plus health.
        self.assertEqual(methods, {"CreateJob", "GetValues", "BatchGetValues", "Preview", "GetJob", "ListJobs",
                                   "DeleteJob", "UpdateJob", "ReportMetrics", "WatchJob", "Check"})
        for data, method, max_time in recipes:
            with self.subTest(method=method, data=data):
                out = self.buf_curl(method, data, max_time)
                if method.endswith("/Check"):
                    self.assertEqual(out["status"], "SERVING")
                if method.endswith("/GetValues") and '"jobs/demo"' in data:
                    self.assertEqual(out["lr"], 0.1 * 0.5 ** 10)  # step 100 of StepLR(10, 0.5)
                if method.endswith("/GetValues") and '"jobs/live"' in data:
                    # The report at step 99 is in; the one at 199 is not: values from 200 on are provisional.
                    self.assertEqual(out["provisionalFrom"], "200")
                if method.endswith("/UpdateJob"):
                    self.assertEqual(out["version"], "2" if '"scale"' in data else "3")
                if method.endswith("/WatchJob"):
                    self.assertEqual([m["type"] for m in out], ["JOB_EVENT_TYPE_SNAPSHOT"])
                    self.assertEqual(len(out[0]["job"]["hyperparameters"][0]["segments"]), 2)

    def test_catalog_examples(self):
        """docs/catalog.md's example specs (the lines that are one JSON Schedule each) are valid and finite."""
        examples = [line for line in read(os.path.join(REPO, "docs", "catalog.md")).splitlines()
                    if line.startswith('{"')]
        self.assertGreaterEqual(len(examples), 7)
        for spec in examples:
            with self.subTest(spec=spec):
                request = json.dumps({"schedule": json.loads(spec), "base_values": [3e-4], "count": 100})
                values = self.buf_curl("hpsched.v1.SchedulerService/Preview", request)["series"][0]["values"]
                self.assertEqual(len(values), 100)
                self.assertTrue(all(math.isfinite(v) for v in values))

    def test_pytorch_table(self):
        rows = pytorch_rows()
        self.assertGreaterEqual(len(rows), 13)
        for call, schedule in rows:
            with self.subTest(call=call):
                want = torch_values(call)
                request = json.dumps({"schedule": json.loads(schedule), "base_values": [BASE_LR], "count": STEPS})
                got = self.buf_curl("hpsched.v1.SchedulerService/Preview", request)["series"][0]["values"]
                self.assertEqual(len(got), STEPS)
                for step, (w, g) in enumerate(zip(want, got)):
                    self.assertTrue(math.isclose(w, g, rel_tol=1e-12, abs_tol=1e-16),
                                    f"step {step}: torch {w!r}, hpsched {g!r}")


if __name__ == "__main__":
    README = read(os.path.join(REPO, "README.md"))
    unittest_main()
