#!/usr/bin/env python3
"""The JSON API against gRPC on the same server: what a script (or the dashboard) pays for HTTP and JSON.

Usage: /usr/bin/python3 bench/http_bench.py BUILD_DIR [--quick]

One real server (memory store) on loopback; one job with one hyperparameter (cosine annealing). Measures, each
through gRPC (Python grpcio, a persistent channel) and through HTTP (Python http.client, a keep-alive connection,
json.loads of the body):
- GetValues of 100,000 steps (the dashboard's "job of 10^5 steps"), ROUNDS times;
- GetValues of 1 step, SMALL times.
Prints one Markdown section: the command, a table of medians and p90s, the HTTP/gRPC ratio of each read, and the
target it is judged by (a 10^5-step read over HTTP well under the 1 s page budget of issue 13).
Time budget: about 20 s on a loaded 2-core machine (--quick: about 3 s).
"""
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import grpcio_golden  # noqa: E402
from server_process import ServerProcess  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KeepAlive:
    """A keep-alive HTTP connection that reconnects when the server closed it (after 100 requests, or idle 2 s)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                if resp.status != 200:
                    raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
                return json.loads(body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def stats(seconds):
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.9 * len(ms)))]


def main():
    quick = "--quick" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    build = os.path.abspath(args[0]) if args else os.path.join(REPO, "build")
    rounds, small, steps = (3, 20, 10_000) if quick else (15, 300, 100_000)
    import grpc
    from google.protobuf import json_format
    _, pb, sched, svc, svc_grpc = grpcio_golden.import_stubs()
    tmp = tempfile.mkdtemp(prefix="hpsched-http-bench-")
    port = free_port()
    server = ServerProcess(build, tmp, "--store=memory", f"--http_port={port}", "--http_address=127.0.0.1",
                           "--log_level=warn", name="http-bench")
    try:
        with grpc.insecure_channel(server.address, options=[("grpc.max_receive_message_length", -1)]) as channel:
            stub = svc_grpc.SchedulerServiceStub(channel)
            job = pb.Job()
            hp = job.hyperparameters.add(name="lr", base_values=[0.1])
            json_format.ParseDict({"cosine_annealing": {"t_max": steps}}, hp.schedule)
            stub.CreateJob(svc.CreateJobRequest(job_id="bench", job=job), timeout=30)
            client = KeepAlive(port)
            big = svc.GetValuesRequest(job="jobs/bench", step=0, count=steps)
            one = svc.GetValuesRequest(job="jobs/bench", step=5, count=1)
            # Same numbers both ways, before anything is timed.
            via_http = client.get(f"/v1/jobs/bench:values?step=0&count={steps}")["series"][0]["values"]
            via_grpc = list(stub.GetValues(big, timeout=60).series[0].values)
            if via_http != via_grpc:
                raise SystemExit("HTTP and gRPC disagree on the values")
            rows = []
            for name, n, grpc_fn, http_fn in (
                    (f"GetValues, {steps:,} steps", rounds, lambda: stub.GetValues(big, timeout=60),
                     lambda: client.get(f"/v1/jobs/bench:values?step=0&count={steps}")),
                    ("GetValues, 1 step", small, lambda: stub.GetValues(one, timeout=60),
                     lambda: client.get("/v1/jobs/bench:values?step=5&count=1"))):
                # Alternate the two in blocks, so load changes on the shared machine hit both alike.
                g, h = [], []
                for _ in range(2):
                    g += timed(grpc_fn, (n + 1) // 2)
                    h += timed(http_fn, (n + 1) // 2)
                rows.append((name, len(g), stats(g), stats(h)))
    finally:
        server.stop()
    command = "/usr/bin/python3 bench/http_bench.py build" + (" --quick" if quick else "")
    print("## HTTP JSON API vs gRPC (bench/http_bench.py)\n")
    print(f"`{command}`: one server, memory store, loopback; Python grpcio (persistent channel) against Python "
          "http.client (keep-alive) + json.loads; medians and p90 in ms, client time included.\n")
    print("| read | n each | gRPC median | gRPC p90 | HTTP median | HTTP p90 | HTTP / gRPC (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, (gm, g9), (hm, h9) in rows:
        print(f"| {name} | {n} | {gm:.3f} | {g9:.3f} | {hm:.3f} | {h9:.3f} | {hm / gm:.2f} |")
    big_http = rows[0][3][0]
    print(f"\nJudged by: the {steps:,}-step read over HTTP (JSON included) against the dashboard's 1 s page budget "
          f"(issue 13): {big_http:.0f} ms, {'within' if big_http < 1000 else 'OVER'} it; the ratios show the cost "
          "of JSON and HTTP/1.1 over protobuf and HTTP/2 for the same service call.")


if __name__ == "__main__":
    main()
