#!/usr/bin/env python3
"""Scale benchmark (issue 11, items 4 and 5): many jobs and many watchers, at the stated sizes.

Usage (from the repository root):
    /usr/bin/python3 bench/scale_bench.py [BUILD_DIR] [--quick] [--only=memory]

Prints one Markdown section. Full mode (the sizes of the issue), about 3 minutes on 2 cores:
  - memory per job: the server's resident memory with 10^6 single-hyperparameter cosine jobs loaded from SQLite,
    minus that of the same server with an empty store, divided by the jobs; once with every spec distinct
    (t_max = 1000 + i: no plan is shared) and once with one spec for every job (one template, many jobs);
  - restart: exec to serving (the port file appears once the server serves) with 10^6 stored jobs, and the
    server's CPU time until then (the wall time on a shared machine depends on the other processes);
  - listing all 10^6 jobs with ListJobs, 1,000 a page, to the last page: the time per page at the start and at
    the end (linear in the jobs: the same);
  - WatchJob fan-out: 10^4 streams on one job, 20 UpdateJobs (from sending the update to each stream's event,
    and to the last stream's), and 10^4 jobs with one stream each, every job updated twice (64 in flight).
`--only=memory` runs the memory and restart parts alone (no listing, no watchers: about a minute), for iterating on
them. The stores are filled by bench/scale_fill (through the SQLite store's own Put, not the API: 10^6 CreateJob calls
take minutes); the server then loads them the normal way. `--quick` runs every step at a tiny size (ctest
bench_smoke_scale): it checks that the programs run, not the numbers.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import server_process  # noqa: E402
from server_process import ServerProcess  # noqa: E402

FULL = {"jobs": 1_000_000, "watchers": 10_000, "rounds": 20, "watch_jobs": 10_000, "watch_rounds": 2}
QUICK = {"jobs": 2_000, "watchers": 200, "rounds": 3, "watch_jobs": 100, "watch_rounds": 1}
TARGET_BYTES_PER_JOB = 1024
TARGET_RESTART_S = 5.0


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(build, tmp, data, name, *flags):
    t0 = time.monotonic()
    server = ServerProcess(build, tmp, f"--data_dir={data}", "--log_level=warn", *flags, name=name, timeout=300)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(server.proc.pid)
    time.sleep(0.3)  # gRPC's threads settle
    return server, elapsed, cpu, rss_bytes(server.proc.pid)


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")], out.stdout


def watch(build, tmp, client, size, rows):
    """WatchJob fan-out: one job with many streams, then many jobs with one stream each."""
    watch_flags = ["--store=memory", f"--max_watches={2 * size['watchers'] + 100}"]
    server = ServerProcess(build, tmp, "--log_level=warn", *watch_flags, name="watch", timeout=60)
    try:
        (opened, one), _ = run([client, "watch-one", server.address, str(size["watchers"]), str(size["rounds"])])
        rows.append(f"| WatchJob fan-out, {one['streams']:,} streams on one job ({opened['connections']} "
                    f"connections), {one['rounds']} UpdateJobs | update -> each stream's event: p50 "
                    f"{one['every_p50_ms']:.1f} ms, p99 {one['every_p99_ms']:.1f} ms; -> the last stream's: p50 "
                    f"{one['last_p50_ms']:.1f} ms, p99 {one['last_p99_ms']:.1f} ms | UpdateJob itself: p50 "
                    f"{one['update_p50_ms']:.2f} ms, p99 {one['update_p99_ms']:.2f} ms | written down (no target) |")
        (opened, many), _ = run([client, "watch-many", server.address, str(size["watch_jobs"]),
                                 str(size["watch_rounds"])])
        rows.append(f"| WatchJob, {many['streams']:,} jobs with one stream each, every job updated "
                    f"{many['rounds']}x (64 UpdateJobs in flight) | update -> its stream's event: p50 "
                    f"{many['every_p50_ms']:.1f} ms, p99 {many['every_p99_ms']:.1f} ms | UpdateJob: p50 "
                    f"{many['update_p50_ms']:.2f} ms, p99 {many['update_p99_ms']:.2f} ms; a round "
                    f"{many['round_p50_ms'] / 1000:.1f} s | written down (no target) |")
    finally:
        server.stop(timeout=60)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    memory_only = "--only=memory" in sys.argv
    build = os.path.abspath(args[0] if args else os.path.join(ROOT, "build"))
    size = QUICK if quick else FULL
    fill = os.path.join(build, "bench", "scale_fill")
    client = os.path.join(build, "bench", "scale_client")
    tmp = tempfile.mkdtemp(prefix="hpsched-scale-")
    load = os.getloadavg()
    began = time.monotonic()
    rows, notes = [], []
    try:
        empty, _, _, empty_rss = start(build, tmp, os.path.join(tmp, "empty"), "empty")
        empty.stop()
        results = {}
        for specs in ("distinct", "same"):
            data = os.path.join(tmp, specs)
            t0 = time.monotonic()
            run([fill, data, str(size["jobs"]), specs])
            fill_s = time.monotonic() - t0
            server, elapsed, cpu, rss = start(build, tmp, data, specs)
            try:
                per_job = (rss - empty_rss) / size["jobs"]
                results[specs] = (per_job, elapsed, cpu)
                rows.append(f"| memory per job, {specs} specs | {per_job:,.0f} bytes | "
                            f"(RSS {rss / 2**20:,.0f} MiB - empty server's {empty_rss / 2**20:,.0f} MiB) / "
                            f"{size['jobs']:,} jobs | at most {TARGET_BYTES_PER_JOB:,} bytes |")
                rows.append(f"| restart to serving, {specs} specs | {elapsed:.2f} s wall, {cpu:.2f} s CPU | "
                            f"{size['jobs']:,} stored jobs (filled in {fill_s:.1f} s) | under {TARGET_RESTART_S:.0f} s |")
                if specs == "distinct" and not memory_only:
                    (listed,), _ = run([client, "list", server.address, "1000"])
                    ratio = listed["last10_ms_per_page"] / max(listed["first10_ms_per_page"], 1e-9)
                    rows.append(f"| ListJobs, all {listed['jobs']:,} jobs, {listed['pages']:,} pages of 1,000 | "
                                f"{listed['total_ms'] / 1000:.1f} s; per page: first 10 "
                                f"{listed['first10_ms_per_page']:.2f} ms, last 10 {listed['last10_ms_per_page']:.2f} ms, "
                                f"median {listed['median_ms_per_page']:.2f} ms | last/first {ratio:.2f} | "
                                f"linear: last/first about 1 |")
            finally:
                server.stop(timeout=120)
            shutil.rmtree(data, ignore_errors=True)

        if not memory_only:
            watch(build, tmp, client, size, rows)
        distinct, same = results["distinct"], results["same"]
        notes.append(f"Memory per job, judged at most {TARGET_BYTES_PER_JOB:,} bytes: distinct specs "
                     f"{distinct[0]:,.0f} ({distinct[0] / TARGET_BYTES_PER_JOB:.2f}x the target), one spec "
                     f"{same[0]:,.0f} ({same[0] / TARGET_BYTES_PER_JOB:.2f}x). Restart, judged under "
                     f"{TARGET_RESTART_S:.0f} s: {distinct[1]:.2f} s wall ({distinct[1] / TARGET_RESTART_S:.2f}x), "
                     f"{distinct[2]:.2f} s of the server's CPU.")
        server_process.finish(True)
    except BaseException:
        server_process.finish(False)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    mode = (" --quick" if quick else "") + (" --only=memory" if memory_only else "")
    print(f"## Scale: many jobs and many watchers{' (quick smoke run: sizes too small to judge)' if quick else ''}\n")
    print("```sh")
    print(f"/usr/bin/python3 bench/scale_bench.py {os.path.relpath(build, ROOT)}{mode}")
    print("```\n")
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} at the start; client and server share the cores; "
          f"{time.monotonic() - began:.0f} s in all.\n")
    print("| measure | result | detail | judged by |")
    print("|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
