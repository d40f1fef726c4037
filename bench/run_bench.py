#!/usr/bin/env python3
"""`make bench`: runs every benchmark section and writes one results file.

Usage (from the repository root, after a build; `make bench` builds first):
    /usr/bin/python3 bench/run_bench.py [--build=build] [--quick] [--out-dir=bench/results] [--only=SUBSTRING]

Each entry of SECTIONS is a program that prints one Markdown section (`## Title`, its command, a table, the ratio or
target it is judged by) on stdout. This runs them one after another, each within its time budget, and writes
OUT_DIR/<YYYY-MM-DD>-<short commit>.md: a header with the machine (CPU model and flags, cores, memory, kernel,
compiler, load average before and after), the commit (and whether the tree is dirty), then each section under the
command that produced it. A section that fails or exceeds its budget is stopped, its output so far is kept, the
file says what happened, and the run goes on with the next section; the exit status is 1 when any section did not
finish cleanly.

--quick runs every section in its smoke mode (the section's own `--quick`: tiny inputs, seconds): what ctest's
`bench_smoke_run` runs, into a temporary directory, never bench/results.
"""
import datetime
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
# The whole of `make bench` must finish in this on 2 cores (issue 11).
TOTAL_BUDGET_S = 15 * 60


class Section(NamedTuple):
    title: str
    # The program and its arguments, run from the repository root; "{build}" is the build directory. In quick mode
    # "--quick" is appended.
    argv: list
    # Seconds before the section is stopped: full mode, quick mode.
    budget_s: int
    quick_budget_s: int = 60


# Adding a benchmark is one line here.
SECTIONS = [
    Section("Evaluation core: scalar reference vs vector path",
            [PYTHON, "bench/core_bench.py", "--binary={build}/bench/evaluator_bench"], budget_s=120, quick_budget_s=60),
    Section("RPC: GetValues against a gRPC echo baseline",
            [PYTHON, "bench/rpc_bench.py", "--build={build}"], budget_s=270, quick_budget_s=60),
    Section("HTTP: the JSON API against gRPC", [PYTHON, "bench/http_bench.py", "{build}"], budget_s=50,
            quick_budget_s=30),
    Section("Scale: 10^6 jobs, 10^4 watchers", [PYTHON, "bench/scale_bench.py", "{build}"], budget_s=140,
            quick_budget_s=60),
    Section("Report cost at 10^5 reports", ["{build}/bench/report_bench", "--server={build}/server/hpsched-server"],
            budget_s=110, quick_budget_s=60),
    # The same on PostgreSQL (a throwaway cluster), at 10^4 reports: a commit per report (~4-5 ms on the loaded
    # 2-core box) makes 10^5 about 8 minutes, more than make bench has.
    Section("Report cost on PostgreSQL at 10^4 reports",
            [PYTHON, "tests/lib/pg_cluster.py", "run", "--", "{build}/bench/report_bench",
             "--server={build}/server/hpsched-server", "--stores=postgres", "--reports=10000"],
            budget_s=120, quick_budget_s=60),
    Section("Replicas over PostgreSQL", [PYTHON, "bench/replica_bench.py", "{build}"], budget_s=90,
            quick_budget_s=60),
]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def run(argv):
    try:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_info():
    text = read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    processors = len(re.findall(r"^processor\s*:", text, re.M))
    return (model.group(1).strip() if model else platform.processor() or "unknown",
            flags.group(1).split() if flags else [], processors)


def memory():
    m = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    return f"{int(m.group(1)) / 2**20:.1f} GiB" if m else "unknown"


def load_average():
    return " ".join(read("/proc/loadavg").split()[:3]) or "unknown"


def compiler(build):
    cache = read(os.path.join(build, "CMakeCache.txt"))
    cxx = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", cache, re.M)
    build_type = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", cache, re.M)
    version = run([cxx.group(1) if cxx else "c++", "--version"]).splitlines()
    return (version[0] if version else "unknown"), (build_type.group(1) if build_type else "unknown")


def commit():
    short = run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    full = run(["git", "rev-parse", "HEAD"]) or "unknown"
    subject = run(["git", "log", "-1", "--format=%s"])
    dirty = bool(run(["git", "status", "--porcelain", "--untracked-files=no"]))
    return short, full, subject, dirty


def run_section(section, argv, budget):
    """Runs one section in its own process group. Returns (stdout, stderr, status), status one of "ok",
    "failed (exit N)", "stopped: exceeded its budget of N s"."""
    started = time.time()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=budget)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        status = f"stopped: exceeded its budget of {budget} s"
    return out, err, status, time.time() - started


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    option = lambda name, default: next((a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")), default)  # noqa: E731
    build = os.path.abspath(option("build", os.path.join(ROOT, "build")))
    out_dir = os.path.abspath(option("out-dir", os.path.join(ROOT, "bench", "results")))
    only = option("only", "")
    sections = [s for s in SECTIONS if only.lower() in s.title.lower()]
    budgets = [s.quick_budget_s if quick else s.budget_s for s in sections]
    if not quick and sum(budgets) > TOTAL_BUDGET_S:
        print(f"run_bench: the sections' budgets add up to {sum(budgets)} s, over the {TOTAL_BUDGET_S} s of make bench",
              file=sys.stderr)

    model, flags, processors = cpu_info()
    short, full, subject, dirty = commit()
    cxx, build_type = compiler(build)
    load_before = load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    vector_flags = [f for f in flags if re.match(r"^(sse\d?\w*|ssse3|avx\w*|fma\w*|f16c|bmi\d|amx\w*)$", f)]

    body, failures = [], []
    for section, budget in zip(sections, budgets):
        argv = [a.replace("{build}", os.path.relpath(build, ROOT)) for a in section.argv] + (["--quick"] if quick else [])
        print(f"run_bench: {section.title} (budget {budget} s)...", file=sys.stderr, flush=True)
        out, err, status, took = run_section(section, argv, budget)
        print(f"run_bench: {section.title}: {status}, {took:.0f} s", file=sys.stderr, flush=True)
        text = out.strip()
        if status != "ok":
            failures.append(f"{section.title}: {status}")
            if not text.startswith("## "):
                text = f"## {section.title}\n\n{text}".rstrip()
            tail = "\n".join(err.strip().splitlines()[-30:])
            text += (f"\n\n**This section {status}** after {took:.0f} s; the run went on with the next section. "
                     f"Its output so far is above; the last lines of its stderr:\n\n```\n{tail}\n```")
        body.append(f"<!-- `{shlex.join(argv)}`: {status}, {took:.0f} s of a {budget} s budget -->\n\n{text}\n")
    load_after = load_average()
    finished = datetime.datetime.now(datetime.timezone.utc)

    header = [
        f"# Benchmark results {started:%Y-%m-%d} ({short}){' (quick smoke run: the numbers mean nothing)' if quick else ''}",
        "",
        f"Written by `{shlex.join([PYTHON, 'bench/run_bench.py', *args])}` (`make bench`), "
        f"{started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC.",
        "",
        "| | |",
        "|---|---|",
        f"| commit | `{full}`{' **with uncommitted changes**' if dirty else ''}: {subject} |",
        f"| CPU | {model} |",
        f"| vector flags | {' '.join(vector_flags) or 'none'} |",
        f"| cores | {processors} online processors (os.cpu_count {os.cpu_count()}) |",
        f"| memory | {memory()} |",
        f"| kernel | {platform.system()} {platform.release()} ({platform.machine()}) |",
        f"| compiler | {cxx}, CMAKE_BUILD_TYPE {build_type} |",
        f"| load average (1, 5, 15 min) | before {load_before}; after {load_after} |",
        "",
        "Other work on this machine shares its cores with the benchmarks (see the load average): compare the ratios "
        "measured within one section, not absolute numbers across runs.",
        "",
        "Sections: " + (", ".join(f"{s.title} ({st})" for s, st in zip(sections, [
            "ok" if not any(f.startswith(s.title + ":") for f in failures) else "see below" for s in sections]))
            or "none") + ".",
        "",
        f"<details><summary>all CPU flags</summary>\n\n{' '.join(flags)}\n\n</details>",
        "",
    ]
    if failures:
        header += ["**Not every section finished cleanly** (each was stopped or failed, and the run went on):", ""]
        header += [f"- {f}" for f in failures] + [""]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{started:%Y-%m-%d}-{short}.md")
    with open(path, "w") as f:
        f.write("\n".join(header) + "\n" + "\n".join(body))
    print(path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
