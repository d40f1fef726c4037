#!/usr/bin/env python3
"""Time to serving after a restart with N jobs in the SQLite store.

Usage: /usr/bin/python3 bench/restart_bench.py BUILD_DIR [JOBS]

Fills a fresh data directory with JOBS jobs through the API (mixed specs, 2 hyperparameters, 1-3 groups; written with
--sync off to fill fast), stops the server, then starts it 3 times on that directory and reports the time from exec
to the port file appearing (the server writes it once it is serving), and the load time the server logs.
"""
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "e2e"))
import grpcio_golden  # noqa: E402
from server_process import ServerProcess  # noqa: E402

SPECS = [
    {"step": {"step_size": 30, "gamma": 0.5}},
    {"sequential": {"schedules": [{"linear": {"start_factor": 0.01, "total_iters": 100}},
                                  {"cosine_annealing": {"t_max": 10000}}], "milestones": [100]}},
    {"one_cycle": {"total_steps": 5000}},
    {"lambda": {"expression": "min(1, (step + 1) / 500) / sqrt(max(step, 500) / 500)"}},
]


def start(build, data, extra):
    t0 = time.monotonic()
    server = ServerProcess(build, os.path.dirname(data), f"--data_dir={data}", *extra)
    return server, time.monotonic() - t0


def main():
    build, jobs = os.path.abspath(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    tmp = tempfile.mkdtemp(prefix="hpsched-restart-")
    data = os.path.join(tmp, "data")
    stub_tmp, pb, sched, svc, svc_grpc = grpcio_golden.import_stubs()
    import grpc
    from google.protobuf import json_format
    try:
        server, _ = start(build, data, ["--sync=off"])
        channel = grpc.insecure_channel(server.address)
        stub = svc_grpc.SchedulerServiceStub(channel)

        def fill(worker, workers):
            for i in range(worker, jobs, workers):
                job = pb.Job()
                lr = job.hyperparameters.add(name="lr", base_values=[0.1, 0.05, 0.01][: 1 + i % 3])
                json_format.ParseDict(SPECS[i % len(SPECS)], lr.schedule)
                wd = job.hyperparameters.add(name="weight_decay", base_values=[0.01])
                json_format.ParseDict({"constant": {"factor": 0.5, "total_iters": 1000}}, wd.schedule)
                stub.CreateJob(svc.CreateJobRequest(job_id=f"job-{i:07d}", job=job), timeout=30)

        t0 = time.monotonic()
        threads = [threading.Thread(target=fill, args=(w, 8)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"filled {jobs} jobs in {time.monotonic() - t0:.1f} s")
        channel.close()
        server.stop()
        print(f"database: {os.path.getsize(os.path.join(data, 'hpsched.db')) / 1e6:.1f} MB")
        for run in range(3):
            server, elapsed = start(build, data, [])
            log = server.log_text()
            server.stop()
            logged = re.findall(r"(\d+) jobs loaded in ([^)]+)\)", log)[-1]
            print(f"restart {run + 1}: serving after {elapsed:.3f} s (exec to port file); "
                  f"server log: {logged[0]} jobs loaded in {logged[1]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if stub_tmp:
            shutil.rmtree(stub_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
