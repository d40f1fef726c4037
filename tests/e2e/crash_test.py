#!/usr/bin/env python3
"""kill -9 under load, repeated: no acknowledged write is lost, nothing half-applied appears, values do not change.

Usage: /usr/bin/python3 crash_test.py BUILD_DIR [CYCLES] [--sync full|normal|off]

Each cycle starts hpsched-server on the same data directory (the SQLite store), checks everything acknowledged so
far, then runs a mixed load (creates, updates, metric reports, deletes, reads from 4 threads) and kills the server
with SIGKILL at a random moment. A mutation is "acknowledged" when its reply arrived; one whose reply did not arrive
may or may not have happened, but if it did, it happened whole (the job exists with exactly the spec sent, or is gone;
an update is there with exactly the segment sent, or not at all; a report is there with its value, or not at all).
Acknowledged reports are checked by reporting them again: the server must answer "duplicate", and a different value
for the same step must be refused.

Served steps survive the crash too: each cycle a "guard" job is created and read at growing steps (and now and then
far ahead) until the kill, with no mutation of it after its creation. After the restart, an UpdateJob effective at
the highest acknowledged served step, and at a random step below it, must be refused with FAILED_PRECONDITION, and
accepted with allow_rewrite.
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
from server_process import ServerProcess, finish  # noqa: E402

SPECS = [
    {"step": {"step_size": 7, "gamma": 0.5}},
    {"cosine_annealing": {"t_max": 100, "eta_min": 0.001}},
    {"sequential": {"schedules": [{"linear": {"start_factor": 0.1, "total_iters": 10}},
                                  {"cosine_annealing_warm_restarts": {"t_0": 10, "t_mult": 2}}],
                    "milestones": [10]}},
    {"one_cycle": {"max_lr": [0.5], "total_steps": 1000, "three_phase": True}},
    {"lambda": {"expression": "min(1, (step + 1) / 50) * 0.99 ** step"}},
    {"reduce_on_plateau": {"metric": "loss", "patience": 1, "factor": 0.5}},
]
EVERY = 10  # Every job declares metric "loss", reported every 10 steps (at 9, 19, ...).
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
        self.acked = {}       # job_id -> (serialized Job as last acknowledged, {step: values})
        self.deleted = set()  # acknowledged deletes
        self.reports = {}     # job_id -> {step: value}, acknowledged reports
        # job_id -> ("create", spec index), ("delete", None), ("update", HyperparameterUpdate) or
        # ("report", (step, value)): sent, no reply.
        self.uncertain = {}
        self.failures = []
        self.checks = 0
        self.guards = {}      # guard job_id -> the highest step of an acknowledged GetValues of it

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
        job.metrics.add(name="loss", every_steps=EVERY)
        return job

    def segment(self, rng):
        """A random UpdateJob change, as (hyperparameter update, its segment)."""
        step = rng.randrange(10**6)
        kind = rng.randrange(3)
        if kind == 0:
            segment = self.pb.Segment(effective_step=step, scale=rng.choice([0.5, 0.25, 2.0]))
        elif kind == 1:
            segment = self.pb.Segment(effective_step=step, pin=self.pb.PinnedValues(values=[rng.random()]))
        else:
            segment = self.pb.Segment(effective_step=step, anchor=True)
            self.json_format.ParseDict(SPECS[rng.randrange(len(SPECS) - 1)], segment.schedule)
        return self.svc.HyperparameterUpdate(hyperparameter="lr", segment=segment)

    def values(self, job_id):
        out = {}
        for step in SAMPLE_STEPS:
            r = self.stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=step, count=3,
                                                              pending_policy="PENDING_POLICY_PROVISIONAL_NOW"),
                                    timeout=5)
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
        for job_id, (op, arg) in list(self.uncertain.items()):
            self.checks += 1
            got = listed.get(job_id)
            if op == "create" and got is not None:
                if list(got.hyperparameters) != list(self.job(arg).hyperparameters):
                    self.fail(f"unacknowledged create of {job_id} is torn")
                self.acked[job_id] = (self.canonical(got), self.values(job_id))
            elif op == "delete" and got is None:
                self.acked.pop(job_id, None)
                self.deleted.add(job_id)
            elif op == "update" and got is not None:
                before = self.job_pb(self.acked[job_id][0])
                segments = list(got.hyperparameters[0].segments)
                if got.version == before.version + 1:
                    sent = arg.segment
                    last = segments[-1]
                    if (last.effective_step, last.WhichOneof("change"), last.anchor) != \
                            (sent.effective_step, sent.WhichOneof("change"), sent.anchor):
                        self.fail(f"unacknowledged update of {job_id} is torn")
                    self.acked[job_id] = (self.canonical(got), self.values(job_id))
                elif got.version != before.version or len(segments) != len(before.hyperparameters[0].segments):
                    self.fail(f"unacknowledged update of {job_id}: version {got.version}, was {before.version}")
            elif op == "report" and got is not None:
                step, value = arg
                # Either it happened (the same report is a duplicate now) or not (it is accepted now): both are
                # whole; from here on it is acknowledged.
                try:
                    self.report(job_id, step, value)
                    self.reports.setdefault(job_id, {})[step] = value
                    self.acked[job_id] = (self.acked[job_id][0], self.values(job_id))
                except self.grpc.RpcError as e:
                    self.fail(f"unacknowledged report of {job_id} at {step}: {e.code()} {e.details()}")
        self.uncertain.clear()
        # Every acknowledged report is there, with its value.
        for job_id, reports in self.reports.items():
            if job_id not in self.acked:
                continue
            for step, value in list(reports.items())[-3:]:
                self.checks += 1
                try:
                    if not self.report(job_id, step, value).duplicate:
                        self.fail(f"acknowledged report of {job_id} at step {step} lost")
                except self.grpc.RpcError as e:
                    self.fail(f"acknowledged report of {job_id} at step {step}: {e.code()} {e.details()}")
        for job_id, (created, _) in self.acked.items():
            self.checks += 1
            if job_id not in listed:
                self.fail(f"acknowledged job {job_id} lost")
            elif self.canonical(listed[job_id]) != created:
                self.fail(f"job {job_id} changed across the crash")
        for job_id in listed:
            if job_id.startswith("guard-"):
                continue  # checked by verify_guards
            self.checks += 1
            if job_id not in self.acked:
                self.fail(f"job {job_id} exists but was never acknowledged or sent"
                          + (" (acknowledged deleted)" if job_id in self.deleted else ""))
        # Values of a sample of jobs, as read when they were acknowledged.
        for job_id in self.rng.sample(sorted(self.acked), min(100, len(self.acked))):
            self.checks += 1
            if self.values(job_id) != self.acked[job_id][1]:
                self.fail(f"values of job {job_id} changed across the crash")

    def guard_reads(self, cycle, stop):
        """Creates this cycle's guard job and reads it, step by step forward and sometimes far ahead, until the
        kill; every acknowledged read raises the step its guard must protect after the restart."""
        rng = random.Random(cycle * 100 + 99)
        job_id = f"guard-{cycle}"
        try:
            self.stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=self.job(0)), timeout=5)
        except self.grpc.RpcError:
            return
        with self.lock:
            self.guards[job_id] = -1
        step = 0
        while not stop.is_set():
            start = rng.randrange(step + 1, 10**6) if rng.random() < 0.05 else step
            try:
                self.stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=start, count=64,
                                                              pending_policy="PENDING_POLICY_PROVISIONAL_NOW"),
                                    timeout=5)
            except self.grpc.RpcError:
                return
            with self.lock:
                self.guards[job_id] = max(self.guards[job_id], start + 63)
            step += 64

    def verify_guards(self):
        """No served step of a guard job may be rewritten after the crash, unless allow_rewrite says so."""
        for job_id, served in sorted(self.guards.items()):
            if served < 0:
                continue
            for step in sorted({served, self.rng.randrange(served + 1)}):
                self.checks += 1
                update = self.svc.HyperparameterUpdate(
                    hyperparameter="lr", segment=self.pb.Segment(effective_step=step, scale=0.5))
                try:
                    self.stub.UpdateJob(self.svc.UpdateJobRequest(name=f"jobs/{job_id}", updates=[update]), timeout=5)
                    self.fail(f"{job_id}: an update at step {step} was accepted after the crash, though steps up to "
                              f"{served} had been served")
                except self.grpc.RpcError as e:
                    if e.code() != self.grpc.StatusCode.FAILED_PRECONDITION or \
                            "would change values already served" not in e.details():
                        self.fail(f"{job_id}: update at served step {step}: {e.code()} {e.details()}")
            self.checks += 1
            try:
                self.stub.UpdateJob(self.svc.UpdateJobRequest(name=f"jobs/{job_id}", updates=[update],
                                                              allow_rewrite=True), timeout=5)
                self.stub.DeleteJob(self.svc.DeleteJobRequest(name=f"jobs/{job_id}"), timeout=5)
            except self.grpc.RpcError as e:
                self.fail(f"{job_id}: update with allow_rewrite at step {step}: {e.code()} {e.details()}")
        self.guards.clear()

    def canonical(self, job):
        """The job's bytes without plateau_reductions: those are derived from the reports (checked on their own)
        and change whenever a report makes a reduction; nor served_through, the served mark, which grows with reads
        and after a crash is the reservation that bounds it (checked by verify_guards)."""
        job = self.pb.Job.FromString(job.SerializeToString())
        job.ClearField("served_through")
        for hp in job.hyperparameters:
            del hp.plateau_reductions[:]
        return job.SerializeToString(deterministic=True)

    def job_pb(self, serialized):
        job = self.pb.Job()
        job.ParseFromString(serialized)
        return job

    def report(self, job_id, step, value):
        return self.stub.ReportMetrics(self.svc.ReportMetricsRequest(job=f"jobs/{job_id}", step=step,
                                                                     metrics={"loss": value}), timeout=5)

    def load(self, cycle, worker, stop):
        rng = random.Random(cycle * 100 + worker)
        n = 0
        while not stop.is_set():
            n += 1
            op = rng.random()
            try:
                if op < 0.4:
                    job_id, spec_index = f"c{cycle}-w{worker}-{n}", rng.randrange(len(SPECS))
                    with self.lock:
                        self.uncertain[job_id] = ("create", spec_index)
                    created = self.stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=self.job(spec_index)),
                                                  timeout=5)
                    values = self.values(job_id)  # read back before the job is counted
                    with self.lock:
                        self.acked[job_id] = (self.canonical(created), values)
                        del self.uncertain[job_id]
                elif op < 0.55:
                    with self.lock:
                        candidates = [j for j in self.acked if j not in self.uncertain]
                        if not candidates:
                            continue
                        job_id = rng.choice(candidates)
                        update = self.segment(rng)
                        self.uncertain[job_id] = ("update", update)
                    # allow_rewrite: the readers below serve random steps, which would refuse most updates.
                    updated = self.stub.UpdateJob(self.svc.UpdateJobRequest(
                        name=f"jobs/{job_id}", updates=[update], allow_rewrite=True), timeout=5)
                    values = self.values(job_id)
                    with self.lock:
                        self.acked[job_id] = (self.canonical(updated), values)
                        del self.uncertain[job_id]
                elif op < 0.7:
                    with self.lock:
                        candidates = [j for j in self.acked if j not in self.uncertain]
                        if not candidates:
                            continue
                        job_id = rng.choice(candidates)
                        reports = self.reports.setdefault(job_id, {})
                        step = (len(reports) + 1) * EVERY - 1
                        value = round(rng.uniform(0.5, 2.0), 6)
                        self.uncertain[job_id] = ("report", (step, value))
                    self.report(job_id, step, value)
                    values = self.values(job_id)
                    with self.lock:
                        reports[step] = value
                        self.acked[job_id] = (self.acked[job_id][0], values)
                        del self.uncertain[job_id]
                elif op < 0.8:
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
            self.verify_guards()
            stop = threading.Event()
            workers = [threading.Thread(target=self.load, args=(cycle, w, stop)) for w in range(4)]
            workers.append(threading.Thread(target=self.guard_reads, args=(cycle, stop)))
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
        self.verify_guards()
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
    finish(not crash.failures)
    return 1 if crash.failures else 0


if __name__ == "__main__":
    sys.exit(main())
