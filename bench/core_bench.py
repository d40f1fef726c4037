#!/usr/bin/python3
"""Runs the core microbenchmarks (build/bench/evaluator_bench) and prints one Markdown section:
values/s of every kind through the scalar reference and the vector evaluator side by side, the
batches across 10^4 jobs, the libmvec loop, and the ratios issue 11 judges the vector core by
(warmup + cosine >= 3x the scalar core and >= 0.7x the libmvec loop, measured in the same run).

  /usr/bin/python3 bench/core_bench.py [--quick] [--binary build/bench/evaluator_bench]

Budget: about 3 minutes in full mode (178 benchmarks at --benchmark_min_time=0.1 s of CPU each,
then the 6 headline benchmarks x 7 interleaved repetitions at 0.2 s: about 45 s of CPU in all; the
wall time grows with the machine's load: 3 to 4 minutes with 8 helpers' builds on 2 cores);
--quick (min_time 0.002 s) takes a few seconds.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def libmvec_calls(binary):
    """How many call sites of libmvec's AVX2 cos (_ZGVdN4v_cos) the binary holds (objdump)."""
    if shutil.which("objdump") is None:
        return None
    out = subprocess.run(["objdump", "-d", binary], capture_output=True, text=True).stdout
    return len(re.findall(r"call.*<_ZGVdN4v_cos", out))


def run_json(command):
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        sys.exit(f"evaluator_bench failed with status {run.returncode}")
    return json.loads(run.stdout)


def fmt_rate(v):
    if v is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny min_time: a smoke run")
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "bench", "evaluator_bench"))
    args = parser.parse_args()
    min_time = "0.002" if args.quick else "0.1"
    command = [args.binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    report = run_json(command)
    # The ratios the issue judges by: the four warmup + cosine benchmarks again, interleaved in
    # random order over several repetitions, median of each, so that a burst of load from the
    # other users of the machine does not fall on one side of a ratio only.
    headline_command = [
        args.binary, "--benchmark_format=json",
        "--benchmark_filter=BM_(SequentialWarmupCosine|LibmvecWarmupCosine|"
        "SequentialWarmupCosineAvx2)/(4096|100000)/",
        f"--benchmark_min_time={'0.002' if args.quick else '0.2'}",
        f"--benchmark_repetitions={2 if args.quick else 7}",
        "--benchmark_enable_random_interleaving=true", "--benchmark_report_aggregates_only=true"]
    headline = run_json(headline_command)

    rates = {}  # (name, span, path) -> values/s; path 0 scalar, 1 vector, 2 libmvec
    labels = {}
    errors = []
    for b in report["benchmarks"]:
        m = re.match(r"BM_(\w+)/(\d+)/(\d+)$", b["name"])
        if not m:
            continue
        key = (m.group(1), int(m.group(2)), int(m.group(3)))
        if b.get("error_occurred"):
            message = f"{m.group(1)}: {b.get('error_message', '')}"
            if message not in errors:
                errors.append(message)
            continue
        rates[key] = b.get("items_per_second")
        labels[key] = b.get("label", "")

    medians = {}  # the headline run: (name, span, path) -> median values/s
    for b in headline["benchmarks"]:
        m = re.match(r"BM_(\w+)/(\d+)/(\d+)_median$", b["name"])
        if m and not b.get("error_occurred"):
            medians[(m.group(1), int(m.group(2)), int(m.group(3)))] = b.get("items_per_second")

    vector_target = next((labels[k] for k in labels if k[2] == 1 and labels[k]), "?")
    ctx = report.get("context", {})
    shown = " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) else c for c in command[:1]) + \
        " " + " ".join(command[1:])
    print("## Evaluation core: scalar reference vs vector path (`evaluator_bench`)\n")
    print(f"Command: `/usr/bin/python3 bench/core_bench.py{' --quick' if args.quick else ''}`, "
          f"which runs `{shown}`.\n")
    print(f"Machine: {cpu_model()}, {ctx.get('num_cpus', '?')} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))} at the start; vector path on "
          f"{vector_target} (Highway's runtime choice). Values/s of one parameter group; ratios are "
          f"of numbers from this same run.\n")

    names = []
    for (name, _, path) in rates:
        if path in (0, 1) and name not in names and not name.startswith("Batch") \
                and not name.endswith("Avx2"):
            names.append(name)
    spans = (1, 64, 4096, 100000)
    print("| kind | " + " | ".join(f"span {s}: scalar / vector (x)" for s in spans) + " |")
    print("|---|" + "---|" * len(spans))
    for name in names:
        cells = []
        for s in spans:
            sc, ve = rates.get((name, s, 0)), rates.get((name, s, 1))
            ratio = f" ({ve / sc:.2f}x)" if sc and ve else ""
            cells.append(f"{fmt_rate(sc)} / {fmt_rate(ve)}{ratio}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| batch of 10^4 jobs (warmup + cosine, one query each) | scalar | vector | x |")
    print("|---|---|---|---|")
    for count in (1, 16):
        sc, ve = rates.get(("BatchWarmupCosine10kJobs", count, 0)), \
            rates.get(("BatchWarmupCosine10kJobs", count, 1))
        ratio = f"{ve / sc:.2f}" if sc and ve else "-"
        print(f"| {count} step(s) per query | {fmt_rate(sc)} | {fmt_rate(ve)} | {ratio} |")
    print()

    calls = libmvec_calls(args.binary)
    shown_headline = " ".join(["build/bench/evaluator_bench"] + headline_command[1:])
    print(f"Warmup + cosine again, median of the repetitions of `{shown_headline}` "
          f"(random interleaving), and the targets judged on these medians:\n")
    print("| warmup + cosine | span 4096 | span 100000 |")
    print("|---|---|---|")
    for label, key in (("scalar core", 0), ("vector core", 1), ("libmvec loop (AVX2)", 2)):
        name = "LibmvecWarmupCosine" if key == 2 else "SequentialWarmupCosine"
        print(f"| {label} | " + " | ".join(fmt_rate(medians.get((name, s, key))) for s in (4096, 100000)) + " |")
    print("| vector core restricted to AVX2 | " + " | ".join(
        fmt_rate(medians.get(("SequentialWarmupCosineAvx2", s, 1))) for s in (4096, 100000)) + " |")
    print()
    print(f"objdump: {calls if calls is not None else 'n/a'} call site(s) of `_ZGVdN4v_cos` in the "
          f"binary (the libmvec loop is vectorized through libmvec).\n")
    print("| target (issue 11) | span 4096 | span 100000 | verdict |")
    print("|---|---|---|---|")
    for label, num, den, goal in (
            ("vector / scalar core >= 3x", ("SequentialWarmupCosine", 1), ("SequentialWarmupCosine", 0), 3.0),
            ("vector / libmvec loop >= 0.7x", ("SequentialWarmupCosine", 1), ("LibmvecWarmupCosine", 2), 0.7),
            ("vector (AVX2 only) / libmvec loop >= 0.7x", ("SequentialWarmupCosineAvx2", 1),
             ("LibmvecWarmupCosine", 2), 0.7)):
        cells, ok = [], True
        for s in (4096, 100000):
            n, d = medians.get((num[0], s, num[1])), medians.get((den[0], s, den[1]))
            if n and d:
                cells.append(f"{n / d:.2f}x")
                ok = ok and n / d >= goal
            else:
                cells.append("-")
                ok = False
        print(f"| {label} | {cells[0]} | {cells[1]} | {'met' if ok else 'missed'} |")
    if errors:
        print("\nSkipped: " + "; ".join(errors))
    if args.quick:
        print("\n(--quick: a smoke run; the numbers mean nothing.)")


if __name__ == "__main__":
    main()
