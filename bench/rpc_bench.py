#!/usr/bin/env python3
"""The RPC benchmark: GetValues against a trivial echo server from the same gRPC, under the same load, in one run.

Usage (from the repository root, after building hpsched-server, hpsched_python, echo_server and load_client):
    /usr/bin/python3 bench/rpc_bench.py [--build=build] [--quick]

Starts hpsched-server (memory store, a few jobs) and bench/echo_server.cc, then drives both, alternating them round
by round, with the same load:
- h2load (`-c 8 -m 64 -t 1 -n N`, gRPC framing from a pre-encoded body file). h2load counts a gRPC error status as a
  success (HTTP 200), so the server's own counters (hpsched: grpc_server_handled_total on /metrics; echo: its Count
  RPC) are read before and after: every call must be OK, exactly as many as h2load reports (-n, not -D: a
  timed run cuts the calls in flight at its end, which the server counts as failed).
- bench/load_client.cc: closed loop at saturation, then open loop at 25%, 50% and 75% of each server's own
  saturation, counting every status code and giving p50/p90/p99/p99.9.
Two comparisons: GetValues count 1 vs Echo/Tiny (one double), GetValues count 4096 vs Echo/Large (32 KiB).
Prints one Markdown section on stdout. Budget: about 4 minutes (full), 15 s (--quick).
"""
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

BUDGET_FULL_S = 240
BUDGET_QUICK_S = 15
GETVALUES = "/hpsched.v1.SchedulerService/GetValues"
ECHO_TINY = "/hpsched.bench.Echo/Tiny"
ECHO_LARGE = "/hpsched.bench.Echo/Large"
ECHO_COUNT = "/hpsched.bench.Echo/Count"
LARGE_COUNT = 4096
H2LOAD_IN_FLIGHT = 8 * 64  # -c 8 -m 64
# h2load's calls per measured run (full, quick), about 5 s each here; a warm-up run of a tenth goes first.
H2LOAD_CALLS = {"tiny": {False: 150000, True: 5000}, "large": {False: 40000, True: 2000}}
# The targets of issue 11.
TARGET_TINY_RATIO = 0.95
TARGET_P99_MS = 2.0
TARGET_VALUES_PER_S = 1e8
TARGET_LARGE_RATIO = 0.8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def request_bytes(job, step, count):
    """A GetValuesRequest {job, step, count}; EchoRequest has the same fields, so one body serves both servers."""
    name = job.encode()
    return b"\x0a" + varint(len(name)) + name + b"\x10" + varint(step) + b"\x18" + varint(count)


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


class Echo:
    def __init__(self, build, tmp):
        self.port_file = os.path.join(tmp, "echo.port")
        self.proc = subprocess.Popen([os.path.join(build, "bench", "echo_server"), f"--port_file={self.port_file}"])
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("echo_server did not start")
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.address = f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=15)


class Bench:
    def __init__(self, build, quick, server_flags=()):
        import grpc
        self.grpc = grpc
        self.build = build
        self.quick = quick
        self.tmp = tempfile.mkdtemp(prefix="hpsched-rpc-bench-")
        self.commands = []  # every distinct command shape, for the section
        self.h2load = shutil.which("h2load")
        self.warmup, self.duration = (0.2, 0.4) if quick else (1.0, 5.0)
        self.rounds = 1 if quick else 3
        self.errors = []
        self.server_flags = list(server_flags)

    # --- servers -------------------------------------------------------------------------------------------------
    def start(self):
        from server_process import ServerProcess
        import grpcio_golden
        _, pb, sched, svc, svc_grpc = grpcio_golden.import_stubs()
        self.metrics_port = free_port()
        self.server = ServerProcess(self.build, self.tmp, "--store=memory", "--log_level=warn",
                                    "--metrics_address=127.0.0.1", f"--metrics_port={self.metrics_port}",
                                    *self.server_flags, name="rpc-bench")
        self.echo = Echo(self.build, self.tmp)
        with self.grpc.insecure_channel(self.server.address) as channel:
            stub = svc_grpc.SchedulerServiceStub(channel)

            def job(schedule):
                return pb.Job(hyperparameters=[pb.Hyperparameter(name="lr", base_values=[0.1], schedule=schedule)])
            cosine = sched.Schedule(cosine_annealing=sched.CosineAnnealingSchedule(t_max=100000, eta_min=1e-5))
            warmup_cosine = sched.Schedule(sequential=sched.SequentialSchedule(
                schedules=[sched.Schedule(linear=sched.LinearSchedule(start_factor=0.01, total_iters=1000)),
                           sched.Schedule(cosine_annealing=sched.CosineAnnealingSchedule(t_max=99000))],
                milestones=[1000]))
            for job_id, schedule in (("cosine", cosine), ("warmup-cosine", warmup_cosine),
                                     ("step", sched.Schedule(step=sched.StepSchedule(step_size=1000, gamma=0.5)))):
                stub.CreateJob(svc.CreateJobRequest(job_id=job_id, job=job(schedule)), timeout=10)
            # The bodies: what each comparison sends, checked once through grpcio.
            self.bodies = {"tiny": request_bytes("jobs/cosine", 2000, 1),
                           "large": request_bytes("jobs/warmup-cosine", 2000, LARGE_COUNT)}
            got = stub.GetValues(svc.GetValuesRequest.FromString(self.bodies["large"]), timeout=10)
            assert len(got.series) == 1 and len(got.series[0].values) == LARGE_COUNT, got
        with self.grpc.insecure_channel(self.echo.address) as channel:
            large = channel.unary_unary(ECHO_LARGE)(self.bodies["large"], timeout=10)
            assert len(large) >= 32 * 1024, len(large)
        self.files = {}
        for name, body in self.bodies.items():
            for framed in (False, True):
                path = os.path.join(self.tmp, f"{name}{'.grpc' if framed else ''}.bin")
                with open(path, "wb") as f:
                    f.write(grpc_frame(body) if framed else body)
                self.files[(name, framed)] = path

    def stop(self):
        codes = [self.server.stop(), self.echo.stop()]
        shutil.rmtree(self.tmp, ignore_errors=True)
        return codes

    # --- counters ------------------------------------------------------------------------------------------------
    def hpsched_codes(self):
        """grpc_code -> calls handled of GetValues, from the server's /metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        codes = {}
        for line in text.splitlines():
            if line.startswith("grpc_server_handled_total{") and 'grpc_method="GetValues"' in line:
                code = re.search(r'grpc_code="([A-Za-z_]+)"', line).group(1)
                codes[code] = codes.get(code, 0) + int(float(line.rsplit(" ", 1)[1]))
        return codes

    def echo_answered(self):
        with self.grpc.insecure_channel(self.echo.address) as channel:
            reply = channel.unary_unary(ECHO_COUNT)(b"", timeout=10)
        return int(decode_varint(reply[1:])) if reply else 0

    def cpu_seconds(self, server):
        """The server process's user + system CPU time so far (/proc/PID/stat)."""
        pid = self.server.proc.pid if server == "hpsched" else self.echo.proc.pid
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def counted(self, server, run):
        """Runs `run()` and returns (its result, OK calls the server counted, non-OK calls the server counted by
        code). Adds to the result the server's CPU time per call ("cpu_us_per_call"): less noisy than calls/s on a
        shared machine, and what bounds calls/s once the server has a core to itself."""
        cpu = self.cpu_seconds(server)
        if server == "hpsched":
            before = self.hpsched_codes()
            result = run()
            after = self.hpsched_codes()
            delta = {c: after.get(c, 0) - before.get(c, 0) for c in after}
            ok, errors = delta.get("OK", 0), {c: v for c, v in delta.items() if c != "OK" and v}
        else:
            before = self.echo_answered()
            result = run()
            ok, errors = self.echo_answered() - before, {}
        result["cpu_us_per_call"] = (self.cpu_seconds(server) - cpu) * 1e6 / max(1, ok + sum(errors.values()))
        return result, ok, errors

    # --- loads ---------------------------------------------------------------------------------------------------
    def address(self, server):
        return self.server.address if server == "hpsched" else self.echo.address

    def run_h2load(self, server, method, body):
        """A warm-up run, then the measured one, each of a fixed number of calls (-n): h2load's -D cuts the calls
        in flight when it ends, which the server counts as failed calls, so it would hide real errors among them.
        Returns the measured run's calls/s and both runs' succeeded and failed calls."""
        calls = H2LOAD_CALLS[body][self.quick]
        runs = []
        for n in (max(calls // 10, H2LOAD_IN_FLIGHT), calls):
            argv = [self.h2load, "-c", "8", "-m", "64", "-t", "1", "-n", str(n), "-d", self.files[(body, True)],
                    "-H", "content-type: application/grpc", "-H", "te: trailers",
                    f"http://{self.address(server)}{method}"]
            self.note(argv)
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
            if "req/s" not in out:
                raise RuntimeError(f"h2load gave no result:\n{out}")
            runs.append({"calls_per_s": float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1)),
                         "succeeded": int(re.search(r"(\d+) succeeded", out).group(1)),
                         "failed": sum(int(re.search(rf"(\d+) {w}", out).group(1))
                                       for w in ("failed", "errored", "timeout"))})
        return {"calls_per_s": runs[1]["calls_per_s"], "succeeded": sum(r["succeeded"] for r in runs),
                "failed": sum(r["failed"] for r in runs)}

    def run_client(self, server, method, body, rate=0.0):
        argv = [os.path.join(self.build, "bench", "load_client"), f"--target={self.address(server)}",
                f"--method={method}", f"--request_file={self.files[(body, False)]}", "--connections=8",
                "--concurrency=64", f"--warmup={self.warmup}s", f"--duration={self.duration}s"]
        if rate:
            argv.append(f"--rate={rate:.0f}")
        self.note(argv)
        out = subprocess.run(argv, capture_output=True, text=True, check=True,
                             timeout=self.warmup + self.duration + 60).stdout
        return json.loads(out)

    def note(self, argv):
        shape = " ".join(shlex.quote(a.replace(self.tmp, "$TMP")) for a in argv)
        shape = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", shape)
        shape = re.sub(r"--rate=\d+", "--rate=$RATE", shape)
        if shape not in self.commands:
            self.commands.append(shape)

    def check(self, label, server, tool_ok, server_ok, server_errors, client_errors=0, exact=True):
        """Records an error unless every call the server counted was OK, the load saw no error, and the server
        counted as many OK calls as the load (`exact`) or at least as many."""
        errors = {c: v for c, v in server_errors.items() if v}
        if errors or client_errors or server_ok < tool_ok or (exact and server_ok != tool_ok):
            self.errors.append(f"{label} on {server}: the load counted {tool_ok} OK and {client_errors} errors, "
                               f"the server {server_ok} OK and errors {errors or 'none'}")

    def h2load_rounds(self, label, method_echo, body):
        rounds = []
        for r in range(self.rounds):
            row = {}
            for server in (("echo", "hpsched") if r % 2 == 0 else ("hpsched", "echo")):
                method = GETVALUES if server == "hpsched" else method_echo
                result, ok, errors = self.counted(server, lambda: self.run_h2load(server, method, body))
                self.check(f"h2load {label}", server, result["succeeded"], ok, errors, result["failed"])
                row[server] = result
            rounds.append(row)
        return rounds

    def client_rounds(self, label, method_echo, body, rounds, rate_of=None):
        out = []
        for r in range(rounds):
            row = {}
            for server in (("echo", "hpsched") if r % 2 == 0 else ("hpsched", "echo")):
                method = GETVALUES if server == "hpsched" else method_echo
                rate = rate_of(server) if rate_of else 0.0
                result, ok, errors = self.counted(server, lambda: self.run_client(server, method, body, rate))
                bad = sum(v for c, v in result["codes"].items() if c != "OK")
                self.check(f"load_client {label}", server, result["codes"].get("OK", 0), ok, errors, bad)
                row[server] = result
            out.append(row)
        return out


def decode_varint(data):
    n, shift = 0, 0
    for b in data:
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return n


def median(values):
    return statistics.median(values) if values else float("nan")


def verdict(ok):
    return "met" if ok else "**missed**"


def main():
    quick = "--quick" in sys.argv[1:]
    build = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--build=")), "build")
    build = os.path.abspath(build)
    os.environ.setdefault("HPSCHED_PY_STUBS", os.path.join(build, "python"))
    for binary in ("server/hpsched-server", "bench/echo_server", "bench/load_client"):
        if not os.access(os.path.join(build, binary), os.X_OK):
            sys.exit(f"rpc_bench: {build}/{binary} is missing: build it first (make bench does)")
    started = time.time()
    bench = Bench(build, quick)
    bench.start()
    try:
        h2_tiny = bench.h2load_rounds("count 1", ECHO_TINY, "tiny") if bench.h2load else []
        h2_large = bench.h2load_rounds("count 4096", ECHO_LARGE, "large") if bench.h2load else []
        sat_tiny = bench.client_rounds("count 1", ECHO_TINY, "tiny", bench.rounds)
        saturation = {s: median([r[s]["calls_per_s"] for r in sat_tiny]) for s in ("echo", "hpsched")}
        open_tiny = {}
        for fraction in (0.25, 0.5, 0.75):
            open_tiny[fraction] = bench.client_rounds(
                f"count 1 at {fraction:.0%}", ECHO_TINY, "tiny", 1,
                rate_of=lambda s, f=fraction: max(1.0, f * saturation[s]))[0]
        sat_large = bench.client_rounds("count 4096", ECHO_LARGE, "large", max(1, bench.rounds - 1))
    finally:
        exit_codes = bench.stop()
    elapsed = time.time() - started

    def ratios(rounds, key="calls_per_s"):
        return [r["hpsched"][key] / r["echo"][key] for r in rounds if r["echo"][key] > 0]

    out = []
    say = out.append
    say("## RPC: GetValues against a gRPC echo baseline\n")
    say(f"`/usr/bin/python3 bench/rpc_bench.py --build={os.path.relpath(build, ROOT)}{' --quick' if quick else ''}` "
        f"({'smoke run: ' if quick else ''}{bench.rounds} round(s) of {bench.warmup:g} s warm-up + "
        f"{bench.duration:g} s per server and load, the two servers alternated; took {elapsed:.0f} s, budget "
        f"{BUDGET_QUICK_S if quick else BUDGET_FULL_S} s). hpsched-server: memory store, 3 jobs (cosine, "
        "warmup + cosine, step); GetValues count 1 reads `jobs/cosine`, count 4096 `jobs/warmup-cosine`. Baseline: "
        "`bench/echo_server` (callback API, same gRPC), `Tiny` answers one double, `Large` a 32 KiB bytes field. "
        "Client, servers and the rest of the machine share its cores: see the load average in the header.\n")
    say("Commands ($PORT: each server's, $RATE: a fraction of that server's own saturation):\n")
    say("```sh")
    out.extend(bench.commands)
    say("```\n")
    if not bench.h2load:
        say("h2load not found (Debian package nghttp2-client): its rows are skipped.\n")
    if h2_tiny or h2_large:
        say("### h2load (`-c 8 -m 64 -t 1 -n N`), calls/s per round\n")
        say("| comparison | round | echo | GetValues | ratio |")
        say("|---|---|---|---|---|")
        for label, rounds in (("count 1 vs Tiny", h2_tiny), ("count 4096 vs Large (32 KiB)", h2_large)):
            for i, r in enumerate(rounds):
                say(f"| {label} | {i + 1} | {r['echo']['calls_per_s']:.0f} | {r['hpsched']['calls_per_s']:.0f} | "
                    f"{r['hpsched']['calls_per_s'] / max(r['echo']['calls_per_s'], 1e-9):.3f} |")
        say("")
    say("### load_client (8 connections; closed loop: 64 calls in flight each; open loop: fixed rate)\n")
    say("| comparison | load | server | calls/s | p50 ms | p90 ms | p99 ms | p99.9 ms | status codes |")
    say("|---|---|---|---|---|---|---|---|---|")

    def row(label, load, server, r):
        codes = ", ".join(f"{c} {n}" for c, n in sorted(r["codes"].items()))
        say(f"| {label} | {load} | {server} | {r['calls_per_s']:.0f} | {r['p50_us'] / 1000:.3f} | "
            f"{r['p90_us'] / 1000:.3f} | {r['p99_us'] / 1000:.3f} | {r['p999_us'] / 1000:.3f} | {codes} |")
    for i, r in enumerate(sat_tiny):
        for s in ("echo", "hpsched"):
            row("count 1", f"saturation, round {i + 1}", s, r[s])
    for fraction, r in open_tiny.items():
        for s in ("echo", "hpsched"):
            row("count 1", f"open {fraction:.0%} of own saturation ({r[s]['rate']:.0f}/s)", s, r[s])
    for i, r in enumerate(sat_large):
        for s in ("echo", "hpsched"):
            row("count 4096" if s == "hpsched" else "Large 32 KiB", f"saturation, round {i + 1}", s, r[s])
    say("")

    h2_tiny_ratio = median(ratios(h2_tiny))
    h2_large_ratio = median(ratios(h2_large))
    client_tiny_ratio = median(ratios(sat_tiny))
    client_large_ratio = median(ratios(sat_large))
    p99_half = open_tiny[0.5]["hpsched"]["p99_us"] / 1000
    large_calls = [r["hpsched"]["calls_per_s"] for r in sat_large] + [r["hpsched"]["calls_per_s"] for r in h2_large]
    values_per_s = median(large_calls) * LARGE_COUNT
    errors_ok = not bench.errors and exit_codes == [0, 0]
    say("### Ratios and targets (medians over rounds)\n")
    say("| measure | value | target | |")
    say("|---|---|---|---|")
    if h2_tiny:
        say(f"| GetValues count 1 / echo Tiny calls/s, h2load | {h2_tiny_ratio:.3f} | >= {TARGET_TINY_RATIO} | "
            f"{verdict(h2_tiny_ratio >= TARGET_TINY_RATIO)} |")
    say(f"| GetValues count 1 / echo Tiny calls/s, load_client | {client_tiny_ratio:.3f} | >= {TARGET_TINY_RATIO} | "
        f"{verdict(client_tiny_ratio >= TARGET_TINY_RATIO)} |")
    say(f"| GetValues count 1 p99 at half of its saturation | {p99_half:.3f} ms | < {TARGET_P99_MS} ms | "
        f"{verdict(p99_half < TARGET_P99_MS)} |")
    say(f"| GetValues count 4096 values/s | {values_per_s:.3g} | >= {TARGET_VALUES_PER_S:.0e} | "
        f"{verdict(values_per_s >= TARGET_VALUES_PER_S)} |")
    if h2_large:
        say(f"| GetValues count 4096 / echo 32 KiB calls/s, h2load | {h2_large_ratio:.3f} | >= {TARGET_LARGE_RATIO} "
            f"| {verdict(h2_large_ratio >= TARGET_LARGE_RATIO)} |")
    say(f"| GetValues count 4096 / echo 32 KiB calls/s, load_client | {client_large_ratio:.3f} | >= "
        f"{TARGET_LARGE_RATIO} | {verdict(client_large_ratio >= TARGET_LARGE_RATIO)} |")
    say(f"| errors (every status code counted by load_client and by the servers' counters) | "
        f"{len(bench.errors)} | 0 | {verdict(errors_ok)} |")
    say("")
    if bench.errors:
        say("Errors:\n")
        out.extend(f"- {e}" for e in bench.errors)
        say("")
    if exit_codes != [0, 0]:
        say(f"Server exit codes (hpsched, echo): {exit_codes}; 0 is a graceful stop.\n")
    print("\n".join(out))
    import server_process
    server_process.finish(errors_ok)
    return 0 if errors_ok else 1


if __name__ == "__main__":
    sys.exit(main())
