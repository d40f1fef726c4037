#!/usr/bin/env python3
"""A/B of one hpsched-server build or flag set against the echo baseline: h2load rounds, alternated, printing each
round's calls/s and each server's CPU time per call, then the medians of GetValues/echo.

Usage: [AB_BUILD=DIR] /usr/bin/python3 bench/rpc_ab.py tiny|large ROUNDS [--server-flag ...]

AB_BUILD (default build) is the build tree whose server/hpsched-server runs; it needs bench/echo_server,
bench/load_client and python/ too (symlinks to another tree's are fine, to measure an older server binary). The
server's CPU time per call (from /proc/PID/stat) moves less with the machine's load than calls/s; comparing two
builds is running this once with each, alternately, several times. A diagnostic behind bench/README.md's notes on
the lean RPC path, not a section of `make bench`.
"""
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import rpc_bench  # noqa: E402


def main():
    body, rounds, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    build = os.path.abspath(os.environ.get("AB_BUILD", os.path.join(ROOT, "build")))
    os.environ.setdefault("HPSCHED_PY_STUBS", os.path.join(build, "python"))
    rpc_bench.H2LOAD_CALLS = {"tiny": {True: 100000}, "large": {True: 40000}}
    bench = rpc_bench.Bench(build, True, flags)
    bench.start()
    echo_method = rpc_bench.ECHO_TINY if body == "tiny" else rpc_bench.ECHO_LARGE
    try:
        ratios, cpus = [], []
        for _ in range(rounds):
            e, _, _ = bench.counted("echo", lambda: bench.run_h2load("echo", echo_method, body))
            h, _, errors = bench.counted("hpsched", lambda: bench.run_h2load("hpsched", rpc_bench.GETVALUES, body))
            if errors or h["failed"] or e["failed"]:
                sys.exit(f"calls failed: server counted {errors}, h2load {h['failed']} and {e['failed']}")
            ratios.append(h["calls_per_s"] / e["calls_per_s"])
            cpus.append(h["cpu_us_per_call"] / e["cpu_us_per_call"])
            print(f"echo {e['calls_per_s']:.0f}/s ({e['cpu_us_per_call']:.1f} us CPU per call)   "
                  f"GetValues {h['calls_per_s']:.0f}/s ({h['cpu_us_per_call']:.1f} us)   ratio {ratios[-1]:.3f}",
                  flush=True)
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"{body} {' '.join(flags)}: median calls/s ratio {statistics.median(ratios):.3f}, median CPU per call "
              f"GetValues/echo {statistics.median(cpus):.3f} (load average {load})")
    finally:
        bench.stop()
    import server_process
    server_process.finish(True)


if __name__ == "__main__":
    main()
