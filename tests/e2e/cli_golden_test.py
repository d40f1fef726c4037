#!/usr/bin/env python3
"""Every golden case (tests/golden/*_golden.json) through the CLI: `hpsched preview --local` (the server's core, in-process),
for the case's hyperparameter (`--hyperparameter`, "lr" when the case has none).

Usage: /usr/bin/python3 cli_golden_test.py BUILD_DIR
Sampled steps that lie close together are fetched as one --steps range; every sampled point is compared at 1e-12
relative (absolute floor 1e-15 x the largest base value, as in the C++ golden tests).
"""
import glob
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ranges(steps, max_gap=200):
    steps = sorted(set(steps))
    start = prev = steps[0]
    for s in steps[1:]:
        if s - prev > max_gap:
            yield start, prev + 1
            start = s
        prev = s
    yield start, prev + 1


def significant_digits(text):
    """Digits of a number's mantissa without leading and trailing zeros: 1 for "0.1" and "100", 17 for
    "0.10000000000000001". Python's repr is the shortest text that reads back as the same double."""
    mantissa = text.lower().split("e")[0].lstrip("+-").replace(".", "")
    return max(1, len(mantissa.strip("0")))


def main():
    build = os.path.abspath(sys.argv[1])
    cli = os.path.join(build, "client", "hpsched")
    cases = []
    for path in sorted(glob.glob(os.path.join(REPO, "tests", "golden", "*_golden.json"))):
        with open(path) as f:
            cases += json.load(f)["cases"]
    failures, compared, calls = [], 0, 0
    for case in cases:
        bases = case["base_values"]
        floor = 1e-15 * max(abs(b) for b in bases)
        want = {p["step"]: p["values"] for p in case["points"]}
        got = {}
        for start, end in ranges(want):
            out = subprocess.run(
                [cli, "preview", "--local", "--schedule", json.dumps(case["schedule"]),
                 "--base", ",".join(repr(b) for b in bases), "--steps", f"{start}:{end}",
                 "--hyperparameter", case.get("hyperparameter") or "lr"],
                capture_output=True, text=True, timeout=60)
            calls += 1
            if out.returncode != 0:
                failures.append(f"{case['name']}: exit {out.returncode}: {out.stderr.strip()}")
                break
            lines = out.stdout.splitlines()
            header = lines[0].split("\t") if lines else []
            if header != ["step"] + [f"value/{g}" for g in range(len(bases))]:
                failures.append(f"{case['name']}: header {header!r}")
                break
            for line in lines[1:]:
                fields = line.split("\t")
                got[int(fields[0])] = [float(v) for v in fields[1:]]
                # The text is the shortest that reads back as the same double (what --json prints).
                for v in fields[1:]:
                    if v not in ("nan", "inf", "-inf") and significant_digits(v) > significant_digits(repr(float(v))):
                        failures.append(f"{case['name']} step {fields[0]}: {v!r} is not the shortest form")
        for step, values in want.items():
            for g, w in enumerate(values):
                v = got.get(step, [None] * len(values))[g]
                compared += 1
                if v is None or not (abs(v - w) <= 1e-12 * max(abs(v), abs(w)) or abs(v - w) <= floor):
                    failures.append(f"{case['name']} step {step} group {g}: reference {w!r}, hpsched {v!r}")
    for f in failures[:30]:
        print("not ok -", f)
    print(f"{len(cases)} cases, {compared} points compared in {calls} CLI runs")
    print(f"{compared - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
