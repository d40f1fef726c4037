#!/usr/bin/env python3
"""Instructions per call, under callgrind: GetValues against the echo baseline, independent of the machine's load.

Usage: /usr/bin/python3 bench/rpc_callgrind.py [--build=build] [--calls=N] [--body=tiny|large] [--keep=DIR] [--rate=R]
                                              [--server_flag=--flag=value ...]

Calls/s on a shared machine move with its load; the instructions a server executes per call do not. This starts
hpsched-server (as bench/rpc_bench.py does) and bench/echo_server under valgrind's callgrind, warms each up, zeroes
the counters (callgrind_control -z), sends N calls from bench/load_client (4 connections, 16 in flight each), dumps
the counters and prints the instructions (Ir) per call of each server and their ratio. With --keep=DIR the dumps
stay in DIR for callgrind_annotate (the profile behind bench/README.md's notes). A diagnostic, not a section of
`make bench` (valgrind's slowdown makes it about a minute).
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import rpc_bench  # noqa: E402


def option(name, default):
    return next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith(f"--{name}=")), default)


def totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(bench, server, method, body, calls, out_dir):
    pid = bench.server.proc.pid if server == "hpsched" else bench.echo.proc.pid
    client = [os.path.join(bench.build, "bench", "load_client"), f"--target={bench.address(server)}",
              f"--method={method}", f"--request_file={bench.files[(body, False)]}", "--connections=4",
              "--concurrency=16", "--warmup=0s"]
    subprocess.run(client + ["--duration=2s"], check=True, capture_output=True)  # warm-up
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    # A fixed number of calls: an open loop at a low rate for calls / rate seconds. Counted by the client (every
    # status code), not the server's counters: a /metrics scrape would be counted among the server's instructions.
    rate = int(option("rate", "1000"))
    out = subprocess.run(client + [f"--rate={rate}", f"--duration={calls / rate}s"], check=True,
                         capture_output=True, text=True).stdout
    codes = json.loads(out)["codes"]
    if set(codes) != {"OK"}:
        raise RuntimeError(f"{server}: calls failed: {codes}")
    done = codes["OK"]
    subprocess.run(["callgrind_control", "-d", f"{server}", str(pid)], check=True, capture_output=True)
    dumps = sorted(glob.glob(os.path.join(out_dir, f"callgrind.{server}.out*")), key=os.path.getmtime)
    return totals(dumps[-1]), done


def main():
    build = os.path.abspath(option("build", os.path.join(ROOT, "build")))
    calls = int(option("calls", "2000"))
    body = option("body", "tiny")
    out_dir = os.path.abspath(option("keep", "")) if option("keep", "") else None
    import tempfile
    tmp_out = out_dir or tempfile.mkdtemp(prefix="hpsched-callgrind-")
    os.makedirs(tmp_out, exist_ok=True)
    os.environ.setdefault("HPSCHED_PY_STUBS", os.path.join(build, "python"))
    # Both servers run under callgrind: the bench's process classes start whatever this wrapper names.
    wrap = ["valgrind", "--tool=callgrind", "--dump-instr=no"]
    real_popen = subprocess.Popen

    def popen(argv, *a, **kw):
        name = "hpsched" if argv[0].endswith("hpsched-server") else "echo" if argv[0].endswith("echo_server") else None
        if name:
            argv = wrap + [f"--callgrind-out-file={tmp_out}/callgrind.{name}.out"] + list(argv)
        return real_popen(argv, *a, **kw)
    subprocess.Popen = popen
    flags = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--server_flag=")]
    bench = rpc_bench.Bench(build, True, flags)
    bench.start()
    subprocess.Popen = real_popen
    try:
        method_echo = rpc_bench.ECHO_TINY if body == "tiny" else rpc_bench.ECHO_LARGE
        echo_ir, echo_calls = measure(bench, "echo", method_echo, body, calls, tmp_out)
        h_ir, h_calls = measure(bench, "hpsched", rpc_bench.GETVALUES, body, calls, tmp_out)
    finally:
        bench.stop()
    e, h = echo_ir / max(echo_calls, 1), h_ir / max(h_calls, 1)
    print(f"## Instructions per call under callgrind ({body})\n")
    print(f"`/usr/bin/python3 bench/rpc_callgrind.py {' '.join(sys.argv[1:])}`\n")
    print("| server | calls | instructions (Ir) per call |")
    print("|---|---|---|")
    print(f"| echo ({method_echo}) | {echo_calls} | {e:,.0f} |")
    print(f"| hpsched GetValues | {h_calls} | {h:,.0f} |")
    print(f"\nRatio echo / GetValues (instructions): {e / h:.3f}" + (f"; dumps in {out_dir}" if out_dir else ""))
    import server_process
    server_process.finish(True)


if __name__ == "__main__":
    main()
