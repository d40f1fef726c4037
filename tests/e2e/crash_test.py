#!/usr/bin/env python3
"""kill -9 under load, repeated: no acknowledged write is lost, nothing half-applied appears, values do not change.

Usage: /usr/bin/python3 crash_test.py BUILD_DIR [CYCLES] [--sync full|normal|off]

Each cycle starts hpsched-server on the same data directory (the SQLite store), checks everything acknowledged so
far, then runs a mixed load (creates, deletes, reads from 4 threads) and kills the server with SIGKILL at a random
moment. A mutation is "acknowledged" when its reply arrived; one whose reply did not arrive may or may not have
happened, but if it did, it happened whole (the job exists with exactly the spec sent, or is gone).
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402  (stub generation)
from server_process import ServerProcess  # noqa: E402

SPECS = [
    {"step": {"step_size": 7, "gamma": 0.5}},
    {"cosine_annealing": {"t_max": 100, "eta_min": 0.001}},
    {"sequential": {"schedules": [{"linear": {"start_factor": 0.1, "total_iters": 10}},
                                  {"cosine_annealing_warm_restarts": {"t_0": 10, "t_mult": 2}}],
                    "milestones": [10]}},
    {"one_cycle": {"max_lr": [0.5], "total_steps": 1000, "three_phase": True}},
    {"lambda": {"expression": "min(1, (step + 1) / 50) * 0.99 ** step"}},
]
SAMPLE_STEPS = [0, 1, 9, 10, 11, 99, 100, 999, 123456]


class Crash:
    def __init__(self, build, sync, seed):
        self.build = build
        self.sync = sync
        self.rng = random.Random(seed)
        self.tmp = tempfile.mkdtemp(prefix="hpsched-crash-")
        self.data = os.path.join(self.tmp, "data")
        self.stub_tmp, self.pb, self.sched, self.svc, self.svc_grpc = grpcio_golden.import_stubs()
        import grpc
        from google.protobuf import json_format
        self.grpc, self.json_format = grpc, json_format
        self.lock = threading.Lock()
        self.acked = {}       # job_id -> (serialized Job as created, {step: values})
        self.deleted = set()  # acknowledged deletes
        self.uncertain = {}   # job_id -> ("create", spec index) or ("delete", None): sent, no reply
        self.failures = []
        self.checks = 0

    def start(self):
        self.server = ServerProcess(self.build, self.tmp, f"--data_dir={self.data}", f"--sync={self.sync}",
                                    "--log_level=warn")
        self.channel = self.grpc.insecure_channel(self.server.address)
        self.stub = self.svc_grpc.SchedulerServiceStub(self.channel)

    def kill(self):
        self.server.kill()

    def fail(self, message):
        with self.lock:
            self.failures.append(message)

    def job(self, spec_index):
        job = self.pb.Job()
        hp = job.hyperparameters.add(name="lr", base_values=[0.1, 0.02])
        self.json_format.ParseDict(SPECS[spec_index], hp.schedule)
        return job

    def values(self, job_id):
        out = {}
        for step in SAMPLE_STEPS:
            r = self.stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=step, count=3), timeout=5)
            out[step] = [tuple(s.values) for s in r.series]
        return out

    def listed(self):
        jobs, token = {}, ""
        while True:
            page = self.stub.ListJobs(self.svc.ListJobsRequest(page_size=1000, page_token=token), timeout=30)
            for job in page.jobs:
                jobs[job.name[len("jobs/"):]] = job
            token = page.next_page_token
            if not token:
                return jobs

    def verify(self):
        """Everything acknowledged is there, exactly; nothing torn or invented; resolves uncertain mutations."""
        listed = self.listed()
        for job_id, (op, spec_index) in list(self.uncertain.items()):
            self.checks += 1
            got = listed.get(job_id)
            if op == "create" and got is not None:
                if list(got.hyperparameters) != list(self.job(spec_index).hyperparameters):
                    self.fail(f"unacknowledged create of {job_id} is torn")
                self.acked[job_id] = (got.SerializeToString(deterministic=True), self.values(job_id))
            elif op == "delete" and got is None:
                self.acked.pop(job_id, None)
                self.deleted.add(job_id)
        self.uncertain.clear()
        for job_id, (created, _) in self.acked.items():
            self.checks += 1
            if job_id not in listed:
                self.fail(f"acknowledged job {job_id} lost")
            elif listed[job_id].SerializeToString(deterministic=True) != created:
                self.fail(f"job {job_id} changed across the crash")
        for job_id in listed:
            self.checks += 1
            if job_id not in self.acked:
                self.fail(f"job {job_id} exists but was never acknowledged or sent"
                          + (" (acknowledged deleted)" if job_id in self.deleted else ""))
        # Values of a sample of jobs, as read when they were acknowledged.
        for job_id in self.rng.sample(sorted(self.acked), min(100, len(self.acked))):
            self.checks += 1
            if self.values(job_id) != self.acked[job_id][1]:
                self.fail(f"values of job {job_id} changed across the crash")

    def load(self, cycle, worker, stop):
        rng = random.Random(cycle * 100 + worker)
        n = 0
        while not stop.is_set():
            n += 1
            op = rng.random()
            try:
                if op < 0.55:
                    job_id, spec_index = f"c{cycle}-w{worker}-{n}", rng.randrange(len(SPECS))
                    with self.lock:
                        self.uncertain[job_id] = ("create", spec_index)
                    created = self.stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=self.job(spec_index)),
                                                  timeout=5)
                    values = self.values(job_id)  # read back before the job is counted
                    with self.lock:
                        self.acked[job_id] = (created.SerializeToString(deterministic=True), values)
                        del self.uncertain[job_id]
                elif op < 0.7:
                    with self.lock:
                        candidates = [j for j in self.acked if j not in self.uncertain]
                        if not candidates:
                            continue
                        job_id = rng.choice(candidates)
                        self.uncertain[job_id] = ("delete", None)
                    self.stub.DeleteJob(self.svc.DeleteJobRequest(name=f"jobs/{job_id}"), timeout=5)
                    with self.lock:
                        self.acked.pop(job_id, None)
                        self.deleted.add(job_id)
                        del self.uncertain[job_id]
                else:
                    with self.lock:
                        candidates = list(self.acked)
                    if candidates:
                        self.stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{rng.choice(candidates)}",
                                                                      step=rng.randrange(10**6), count=100), timeout=5)
            except self.grpc.RpcError:
                if self.server.proc.poll() is None and not stop.is_set():
                    time.sleep(0.001)  # a NOT_FOUND race with a delete; the server is up
                else:
                    return

    def run(self, cycles):
        for cycle in range(cycles):
            self.start()
            self.verify()
            stop = threading.Event()
            workers = [threading.Thread(target=self.load, args=(cycle, w, stop)) for w in range(4)]
            for w in workers:
                w.start()
            time.sleep(self.rng.uniform(0.2, 1.2))
            self.kill()
            stop.set()
            for w in workers:
                w.join(timeout=30)
            self.channel.close()
            print(f"cycle {cycle}: {len(self.acked)} jobs acknowledged, {len(self.deleted)} deleted, "
                  f"{len(self.uncertain)} unacknowledged at the kill", flush=True)
        self.start()
        self.verify()
        self.channel.close()
        code = self.server.stop()
        if code != 0:
            self.fail(f"graceful shutdown exit code {code}")

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.stub_tmp:
            shutil.rmtree(self.stub_tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("cycles", type=int, nargs="?", default=5)
    parser.add_argument("--sync", default="full")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    print(f"seed {args.seed}, sync {args.sync}, {args.cycles} cycles")
    crash = Crash(os.path.abspath(args.build), args.sync, args.seed)
    try:
        crash.run(args.cycles)
    finally:
        crash.cleanup()
    for f in crash.failures[:50]:
        print("not ok -", f)
    print(f"{crash.checks - len(crash.failures)} passed, {len(crash.failures)} failed")
    return 1 if crash.failures else 0


if __name__ == "__main__":
    sys.exit(main())
