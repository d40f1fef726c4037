#!/usr/bin/env python3
"""Replicas over one PostgreSQL: GetValues and ReportMetrics throughput with 1, 2 and 3 replicas, and how long a
change takes to reach every replica's WatchJob streams. Prints one Markdown section.

Usage (from the repo root):  /usr/bin/python3 bench/replica_bench.py [BUILD_DIR] [--quick]

Starts a throwaway PostgreSQL (tests/lib/pg_cluster.py) and the replicas on free loopback ports, and stops them. Load
comes from client processes (Python grpcio, synchronous calls), WORKERS of them spread round robin over the replicas:
GetValues of 10 steps of a job every replica holds, and ReportMetrics of successive steps, one job per worker (so the
reports do not queue on one job's lock). The latency is from sending an UpdateJob through replica 0 to the UPDATED
event on a WatchJob stream open on every replica (the slowest of the three). Budget: about 2 minutes (the --quick
smoke run: about 20 s). On a shared 2-core box the clients, the replicas and PostgreSQL compete for the same cores, so
throughput cannot grow with replicas here; the ratio shows what the replicas cost, not what more machines would give.
"""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))

WORKERS = 4


def stubs():
    import grpcio_golden
    return grpcio_golden.import_stubs()


def worker(kind, addr, job, seconds):
    """One load process: calls until `seconds` pass; prints the count."""
    import grpc
    _, pb, sched, svc, svc_grpc = stubs()
    with grpc.insecure_channel(addr) as channel:
        stub = svc_grpc.SchedulerServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            if kind == "get":
                stub.GetValues(svc.GetValuesRequest(job=f"jobs/{job}", step=n % 1000, count=10), timeout=10)
            else:
                stub.ReportMetrics(svc.ReportMetricsRequest(job=f"jobs/{job}", step=n, metrics={"loss": 1.0}),
                                   timeout=10)
            n += 1
    print(n)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    build = os.path.abspath(args[0]) if args else os.path.join(REPO, "build")
    # The generated Python stubs of this build (the workers inherit it).
    os.environ.setdefault("HPSCHED_PY_STUBS", os.path.join(build, "python"))
    seconds, rounds, counts = (1.0, 5, (1, 3)) if quick else (4.0, 60, (1, 2, 3))
    import grpc
    from pg_cluster import PgCluster
    import server_process
    from server_process import ServerProcess
    _, pb, sched, svc, svc_grpc = stubs()
    tmp = tempfile.mkdtemp(prefix="hpsched-replica-bench-")
    job = pb.Job(hyperparameters=[pb.Hyperparameter(
        name="lr", base_values=[0.1], schedule=sched.Schedule(step=sched.StepSchedule(step_size=1 << 40)))],
        metrics=[pb.MetricSpec(name="loss", every_steps=1)])
    rows, latency = [], None
    with PgCluster() as cluster:
        env = {"HPSCHED_POSTGRES_URL": cluster.url}
        for n in counts:
            servers = [ServerProcess(build, tmp, "--store=postgres", f"--replica_id=bench{n}-{i}", "--log_level=warn",
                                     name=f"bench{n}-{i}", env=env) for i in range(n)]
            try:
                channels = [grpc.insecure_channel(s.address) for s in servers]
                first = svc_grpc.SchedulerServiceStub(channels[0])
                for w in range(WORKERS + 1):
                    first.CreateJob(svc.CreateJobRequest(job_id=f"r{n}-{w}", job=job), timeout=10)
                # Every replica holds the jobs before the clock starts.
                for channel in channels:
                    stub = svc_grpc.SchedulerServiceStub(channel)
                    deadline = time.monotonic() + 10
                    while True:
                        try:
                            stub.GetJob(svc.GetJobRequest(name=f"jobs/r{n}-{WORKERS}"), timeout=10)
                            break
                        except grpc.RpcError:
                            if time.monotonic() > deadline:
                                raise
                            time.sleep(0.02)
                result = {}
                for kind in ("get", "report"):
                    procs = [subprocess.Popen(
                        [sys.executable, os.path.abspath(__file__), "--worker", kind, servers[w % n].address,
                         f"r{n}-{WORKERS}" if kind == "get" else f"r{n}-{w}", str(seconds)],
                        stdout=subprocess.PIPE, text=True, env=dict(os.environ)) for w in range(WORKERS)]
                    total = sum(int(p.communicate(timeout=seconds + 60)[0].strip() or 0) for p in procs)
                    result[kind] = total / seconds
                rows.append((n, result["get"], result["report"]))
                if n == counts[-1]:
                    latency = change_latency(grpc, pb, svc, svc_grpc, channels, f"r{n}-{WORKERS}", rounds)
                for channel in channels:
                    channel.close()
            finally:
                for s in servers:
                    s.stop()
    base_get, base_report = rows[0][1], rows[0][2]
    cmd = "/usr/bin/python3 bench/replica_bench.py build" + (" --quick" if quick else "")
    print("## Replicas over PostgreSQL (`bench/replica_bench.py`)\n")
    print(f"```sh\n{cmd}\n```\n")
    print(f"{WORKERS} client processes (Python grpcio, synchronous), round robin over the replicas, {seconds:g} s per "
          f"measurement; one PostgreSQL 15 (throwaway cluster, synchronous_commit on); all on this machine "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end).\n")
    print("| replicas | GetValues/s (10 steps) | vs 1 replica | ReportMetrics/s | vs 1 replica |")
    print("|---|---|---|---|---|")
    for n, get, report in rows:
        print(f"| {n} | {get:,.0f} | {get / base_get:.2f} | {report:,.0f} | {report / base_report:.2f} |")
    p50, p99, worst = latency
    print(f"\nUpdateJob through replica 0 to the UPDATED event on every one of {counts[-1]} replicas' WatchJob streams "
          f"({rounds} rounds): p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms.\n")
    print("Judged by: reads do not touch the database, so GetValues/s per replica stays near the 1-replica figure "
          "(with the same cores shared, the total cannot grow here); ReportMetrics/s is bounded by the database's "
          "commit rate whatever the number of replicas; a change reaches every replica within p99 < 100 ms.")
    server_process.finish(True)  # the servers' logs go with a successful run


def change_latency(grpc, pb, svc, svc_grpc, channels, job_id, rounds):
    events = [queue.Queue() for _ in channels]
    watches = []
    for channel, q in zip(channels, events):
        watch = svc_grpc.SchedulerServiceStub(channel).WatchJob(svc.WatchJobRequest(job=f"jobs/{job_id}"))
        watches.append(watch)

        def pump(watch=watch, q=q):
            try:
                for event in watch:
                    q.put((time.perf_counter(), event))
            except grpc.RpcError:
                pass
        threading.Thread(target=pump, daemon=True).start()
    for q in events:
        q.get(timeout=10)  # the snapshot
    stub = svc_grpc.SchedulerServiceStub(channels[0])
    took = []
    for r in range(rounds):
        sent = time.perf_counter()
        stub.UpdateJob(svc.UpdateJobRequest(name=f"jobs/{job_id}", updates=[svc.HyperparameterUpdate(
            hyperparameter="lr", segment=pb.Segment(effective_step=10 ** 9 + r, scale=0.999))]), timeout=10)
        last = 0
        for q in events:
            while True:
                at, event = q.get(timeout=10)
                if event.type == svc.JOB_EVENT_TYPE_UPDATED:
                    break
            last = max(last, at)
        took.append((last - sent) * 1000)
    for watch in watches:
        watch.cancel()
    took.sort()
    return took[len(took) // 2], took[min(len(took) - 1, int(0.99 * len(took)))], took[-1]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        main()
