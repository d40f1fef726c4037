#!/usr/bin/python3
"""The e2e harness keeps the server log of a failed test: tests/e2e/server_process.py.

    /usr/bin/python3 tests/e2e/harness_test.py BUILD_DIR

Runs two small unittest scripts that start a real hpsched-server through ServerProcess: one fails on purpose, and its
server's log must be printed (tail) on stderr and kept in BUILD/test-logs/TEST/RUN/; one passes, and its log
directory must be gone. Loopback only; each child is bounded by a timeout.
"""
import glob
import os
import subprocess
import sys
import tempfile
import shutil
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build")

CHILD = textwrap.dedent("""\
    import sys, tempfile, unittest
    sys.path.insert(0, {here!r})
    from server_process import ServerProcess, unittest_main

    class Child(unittest.TestCase):
        def test_it(self):
            server = ServerProcess({build!r}, tempfile.mkdtemp(), "--store=memory", name="child")
            self.assertEqual(server.stop(), 0)
            self.assertTrue({passes!r}, "failing on purpose")

    if __name__ == "__main__":
        unittest_main()
    """)


class KeepsLogsTest(unittest.TestCase):
    def run_child(self, name, passes):
        tmp = tempfile.mkdtemp(prefix="hpsched-harness-")
        script = os.path.join(tmp, "child.py")
        with open(script, "w") as f:
            f.write(CHILD.format(here=HERE, build=BUILD, passes=passes))
        r = subprocess.run([sys.executable, script], env=dict(os.environ, HPSCHED_TEST_NAME=name),
                           capture_output=True, text=True, timeout=120)
        return r, os.path.join(BUILD, "test-logs", name)

    def test_failed_test_keeps_and_prints_the_server_log(self):
        r, logs = self.run_child("harness_test_failing", passes=False)
        self.addCleanup(shutil.rmtree, logs, True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        kept = glob.glob(os.path.join(logs, "*", "child.log"))
        self.assertEqual(len(kept), 1, f"no kept log in {logs}/RUN/:\n{r.stderr}")
        log = kept[0]
        with open(log) as f:
            text = f.read()
        self.assertIn("serving on 127.0.0.1:", text)
        self.assertIn(f"--- {log} (last", r.stderr)
        self.assertIn("serving on 127.0.0.1:", r.stderr.split(f"--- {log} (last", 1)[1])

    def test_concurrent_runs_of_one_test_keep_their_own_logs(self):
        """ctest --repeat in two build trees' worth of runs, or two helpers: a passing run must not take a failing
        run's logs with it."""
        name = "harness_test_concurrent"
        self.addCleanup(shutil.rmtree, os.path.join(BUILD, "test-logs", name), True)
        procs = []
        for passes in (False, True, True):
            tmp = tempfile.mkdtemp(prefix="hpsched-harness-")
            script = os.path.join(tmp, "child.py")
            with open(script, "w") as f:
                f.write(CHILD.format(here=HERE, build=BUILD, passes=passes))
            procs.append(subprocess.Popen([sys.executable, script], env=dict(os.environ, HPSCHED_TEST_NAME=name),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = [(p.wait(timeout=120), p.communicate()) for p in procs]
        self.assertEqual([code for code, _ in results], [1, 0, 0], results)
        kept = glob.glob(os.path.join(BUILD, "test-logs", name, "*", "child.log"))
        self.assertEqual(len(kept), 1, kept)
        with open(kept[0]) as f:
            self.assertIn("serving on 127.0.0.1:", f.read())

    def test_passed_test_removes_its_logs(self):
        r, logs = self.run_child("harness_test_passing", passes=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(logs), f"{logs} left behind by a passing test")
        self.assertNotIn("serving on", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
