#!/usr/bin/env python3
"""bench/run_bench.py's own behaviour, with stand-in sections (no benchmark runs): a section that fails and one that
exceeds its budget are stopped and reported in the results file, and the sections after them still run.

Usage: /usr/bin/python3 tests/bench/run_bench_test.py BUILD_DIR
"""
import os
import re
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import run_bench  # noqa: E402

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(ROOT, "build")
PY = sys.executable


class RunBenchTest(unittest.TestCase):
    def run_sections(self, sections, *args):
        saved_sections, saved_argv = run_bench.SECTIONS, sys.argv
        with tempfile.TemporaryDirectory() as out:
            run_bench.SECTIONS = sections
            sys.argv = ["run_bench.py", f"--build={BUILD}", f"--out-dir={out}", *args]
            try:
                code = run_bench.main()
            finally:
                run_bench.SECTIONS, sys.argv = saved_sections, saved_argv
            files = os.listdir(out)
            self.assertEqual(len(files), 1, files)
            self.assertRegex(files[0], r"^\d{4}-\d{2}-\d{2}-[0-9a-f]+\.md$")
            with open(os.path.join(out, files[0])) as f:
                return code, f.read()

    def test_failing_and_slow_sections_are_reported_and_the_run_goes_on(self):
        code, text = self.run_sections([
            run_bench.Section("Fails", [PY, "-c", "import sys; print('## Fails\\n\\npartial table'); "
                                        "print('boom', file=sys.stderr); sys.exit(3)"], budget_s=30),
            run_bench.Section("Slow", [PY, "-c", "import time; print('## Slow', flush=True); time.sleep(60)"],
                              budget_s=1),
            run_bench.Section("Fine", [PY, "-c", "import sys; print('## Fine\\n\\n| a |\\n|---|\\n| ' + "
                                       "str(sys.argv[1:]) + ' |')"], budget_s=30),
        ])
        self.assertEqual(code, 1)
        self.assertIn("- Fails: failed (exit 3)", text)
        self.assertIn("- Slow: stopped: exceeded its budget of 1 s", text)
        self.assertIn("partial table", text)          # the failed section's output is kept
        self.assertIn("boom", text)                   # with the tail of its stderr
        self.assertIn("## Slow", text)                # the stopped section's output so far
        self.assertIn("| [] |", text)                 # the section after them ran, without --quick
        self.assertLess(text.index("## Fails"), text.index("## Slow"))
        self.assertLess(text.index("## Slow"), text.index("## Fine"))

    def test_header_names_the_machine_and_commit_and_quick_passes_quick(self):
        code, text = self.run_sections([run_bench.Section(
            "Args", [PY, "-c", "import sys; print('## Args ' + ' '.join(sys.argv[1:]))"], budget_s=30)], "--quick")
        self.assertEqual(code, 0)
        self.assertIn("## Args --quick", text)
        self.assertIn("quick smoke run", text)
        for row in ("| commit | `", "| CPU | ", "| vector flags | ", "| cores | ", "| memory | ", "| kernel | ",
                    "| compiler | ", "| load average (1, 5, 15 min) | before "):
            self.assertIn(row, text)
        self.assertRegex(text, r"\| commit \| `[0-9a-f]{40}`")
        self.assertTrue(re.search(r"\| cores \| [1-9]\d* online processors", text), text)
        self.assertNotIn("Not every section finished cleanly", text)

    def test_the_section_list_has_the_rpc_benchmark(self):
        titles = [s.title for s in run_bench.SECTIONS]
        self.assertIn("RPC: GetValues against a gRPC echo baseline", titles)
        for s in run_bench.SECTIONS:
            # The program each section runs: a script under the interpreter, or a program of the build.
            program = s.argv[1] if s.argv[0] == run_bench.PYTHON else s.argv[0]
            path = program.replace("{build}", BUILD)
            self.assertTrue(os.path.exists(os.path.join(ROOT, path)), s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
