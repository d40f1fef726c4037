#!/usr/bin/env python3
"""Latencies of live jobs, through a real server over loopback.

Usage: /usr/bin/python3 bench/live_bench.py BUILD_DIR [ROUNDS] [--store=memory|sqlite]

Measures, over ROUNDS rounds (default 200) each:
- update -> event: from sending an UpdateJob to a WatchJob stream (already open) receiving its UPDATED event;
- report -> answer: a GetValues waiting for a metric report, from sending the ReportMetrics that completes it to the
  waiting call's answer;
- ReportMetrics and UpdateJob round trips.
Prints median, p90 and p99 in milliseconds. The client runs in the same machine; times include Python grpcio.
"""
import os
import queue
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "e2e"))
import grpcio_golden  # noqa: E402
from server_process import ServerProcess  # noqa: E402


def summary(name, seconds):
    ms = sorted(s * 1000 for s in seconds)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    print(f"{name:32s} median {statistics.median(ms):7.3f} ms   p90 {pick(0.9):7.3f} ms   p99 {pick(0.99):7.3f} ms"
          f"   (n={len(ms)})")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    store = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--store=")), "memory")
    build, rounds = os.path.abspath(args[0]), int(args[1]) if len(args) > 1 else 200
    import grpc
    _, pb, sched, svc, svc_grpc = grpcio_golden.import_stubs()
    tmp = tempfile.mkdtemp(prefix="hpsched-live-bench-")
    flags = ["--store=memory"] if store == "memory" else ["--store=sqlite", f"--data_dir={tmp}/data"]
    server = ServerProcess(build, tmp, *flags, "--log_level=warn")
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = svc_grpc.SchedulerServiceStub(channel)
            job = pb.Job(hyperparameters=[pb.Hyperparameter(
                name="lr", base_values=[0.1],
                schedule=sched.Schedule(reduce_on_plateau=sched.ReduceOnPlateauSchedule(metric="loss")))],
                metrics=[pb.MetricSpec(name="loss", every_steps=1)])
            stub.CreateJob(svc.CreateJobRequest(job_id="bench", job=job), timeout=10)

            events = queue.Queue()
            watch = stub.WatchJob(svc.WatchJobRequest(job="jobs/bench"))

            def pump():
                try:
                    for event in watch:
                        events.put((time.perf_counter(), event))
                except grpc.RpcError:
                    pass  # Cancelled at the end.

            threading.Thread(target=pump, daemon=True).start()
            events.get(timeout=10)  # The snapshot.
            update_event, update_rtt = [], []
            for i in range(rounds):
                request = svc.UpdateJobRequest(name="jobs/bench", updates=[svc.HyperparameterUpdate(
                    hyperparameter="lr", segment=pb.Segment(effective_step=10**9 + i, scale=1.0))])
                t0 = time.perf_counter()
                stub.UpdateJob(request, timeout=10)
                update_rtt.append(time.perf_counter() - t0)
                t_event, event = events.get(timeout=10)
                update_event.append(t_event - t0)
            watch.cancel()

            report_answer, report_rtt = [], []
            for step in range(rounds):
                # The value for step + 1 waits for the report at `step`.
                waiting = stub.GetValues.future(svc.GetValuesRequest(job="jobs/bench", step=step + 1), timeout=10)
                time.sleep(0.002)  # Let it park.
                t0 = time.perf_counter()
                stub.ReportMetrics(svc.ReportMetricsRequest(job="jobs/bench", step=step,
                                                            metrics={"loss": 1.0 / (step + 1)}), timeout=10)
                report_rtt.append(time.perf_counter() - t0)
                waiting.result()
                report_answer.append(time.perf_counter() - t0)
        print(f"store {store}, {rounds} rounds")
        summary("UpdateJob round trip", update_rtt)
        summary("UpdateJob -> WatchJob event", update_event)
        summary("ReportMetrics round trip", report_rtt)
        summary("ReportMetrics -> waiting answer", report_answer)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
