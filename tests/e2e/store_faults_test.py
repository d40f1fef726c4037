#!/usr/bin/env python3
"""Store faults at start, with real hpsched-server processes: each must refuse to start (non-zero exit, a message
naming the file) rather than serve a store it would lose writes to.

Usage: /usr/bin/python3 store_faults_test.py BUILD_DIR

1. An hpsched.db that exists but is not writable (0444, the server run as an unprivileged user with setpriv, since
   permission bits do not stop root).
2. An hpsched.db emptied (0 bytes) or deleted where one that held jobs was: refused, naming --accept_empty_store;
   with the flag the server starts with no jobs.
3. Two servers on one data directory after its LOCK file was deleted: the second is refused (the database itself is
   locked), so no acknowledged update of the first can be lost to it.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402  (stub generation)
from server_process import ServerProcess  # noqa: E402

NOBODY = 65534


class Faults:
    def __init__(self, build):
        self.build = build
        self.binary = os.path.join(build, "server", "hpsched-server")
        self.tmp = tempfile.mkdtemp(prefix="hpsched-store-faults-")
        os.chmod(self.tmp, 0o755)  # the unprivileged server must reach its data directory
        self.stub_tmp, self.pb, self.sched, self.svc, self.svc_grpc = grpcio_golden.import_stubs()
        import grpc
        from google.protobuf import json_format
        self.grpc, self.json_format = grpc, json_format
        self.failures = []
        self.checks = 0

    def check(self, ok, message):
        self.checks += 1
        if not ok:
            self.failures.append(message)

    def data_dir(self, name):
        path = os.path.join(self.tmp, name)
        os.makedirs(path)
        return path

    def serve(self, data, *flags, name="server"):
        server = ServerProcess(self.build, self.tmp, f"--data_dir={data}", "--log_level=warn", *flags, name=name)
        channel = self.grpc.insecure_channel(server.address)
        return server, channel, self.svc_grpc.SchedulerServiceStub(channel)

    def create(self, stub, job_id):
        job = self.pb.Job()
        hp = job.hyperparameters.add(name="lr", base_values=[0.1])
        self.json_format.ParseDict({"step": {"step_size": 10}}, hp.schedule)
        return stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=job), timeout=5)

    def with_jobs(self, name, job_ids):
        """A data directory whose database holds `job_ids`, after a graceful stop."""
        data = self.data_dir(name)
        server, channel, stub = self.serve(data, name=name)
        for job_id in job_ids:
            self.create(stub, job_id)
        channel.close()
        self.check(server.stop() == 0, f"{name}: graceful stop")
        return data

    def refused(self, data, *flags, prefix=()):
        """Runs a server that must not start; returns (exit code, output)."""
        try:
            run = subprocess.run([*prefix, self.binary, f"--data_dir={data}", "--address=127.0.0.1", "--port=0",
                                  "--metrics_port=0", "--http_port=0", *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return None, "still running after 30 s (it started)"
        return run.returncode, run.stdout

    def unwritable(self):
        data = self.with_jobs("unwritable", ["a"])
        db = os.path.join(data, "hpsched.db")
        os.chmod(db, 0o444)
        os.chmod(data, 0o777)  # the directory, LOCK and IDENTITY stay writable: only the database is not
        for name in ("LOCK", "IDENTITY"):
            if os.path.exists(os.path.join(data, name)):
                os.chmod(os.path.join(data, name), 0o666)
        prefix = []
        if os.getuid() == 0:
            prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        code, out = self.refused(data, prefix=prefix)
        self.check(code == 1, f"unwritable: exit code {code}, want 1:\n{out}")
        self.check(f"--data_dir: {db} is not writable" in out, f"unwritable: the message names the file:\n{out}")

    def emptied(self):
        data = self.with_jobs("emptied", ["a", "b"])
        db = os.path.join(data, "hpsched.db")
        os.truncate(db, 0)
        code, out = self.refused(data)
        self.check(code == 1, f"emptied: exit code {code}, want 1:\n{out}")
        self.check(f"--data_dir: {db} is empty (0 bytes), but {data}/IDENTITY records that database" in out and
                   "--accept_empty_store" in out, f"emptied: the message names the file and the flag:\n{out}")
        self.check(os.path.getsize(db) == 0, "emptied: the refused start wrote to the database")
        os.remove(db)
        code, out = self.refused(data)
        self.check(code == 1 and f"{db} is missing" in out, f"deleted: exit code {code}:\n{out}")
        # Accepted: the server starts with no jobs, and from then on the directory holds the new database.
        server, channel, stub = self.serve(data, "--accept_empty_store")
        listed = stub.ListJobs(self.svc.ListJobsRequest(), timeout=5)
        self.check(len(listed.jobs) == 0, f"accepted: {len(listed.jobs)} jobs")
        self.check("--accept_empty_store" in server.log_text(), "accepted: the log says what was accepted")
        channel.close()
        self.check(server.stop() == 0, "accepted: graceful stop")
        server, channel, stub = self.serve(data, name="again")
        channel.close()
        self.check(server.stop() == 0, "the accepted store opens without the flag")

    def lock_deleted(self):
        data = self.data_dir("locked")
        first, channel, stub = self.serve(data, name="first")
        self.create(stub, "shared")
        os.remove(os.path.join(data, "LOCK"))
        code, out = self.refused(data)
        self.check(code == 1, f"second server after LOCK was deleted: exit code {code}, want 1:\n{out}")
        self.check(f"--data_dir: {data}/hpsched.db is locked by another process" in out,
                   f"second server: the message names the database:\n{out}")
        # The first server still serves and keeps what it acknowledged.
        update = self.svc.HyperparameterUpdate(hyperparameter="lr",
                                               segment=self.pb.Segment(effective_step=100, scale=0.5))
        stub.UpdateJob(self.svc.UpdateJobRequest(name="jobs/shared", updates=[update]), timeout=5)
        channel.close()
        self.check(first.stop() == 0, "first server: graceful stop")
        server, channel, stub = self.serve(data, name="after")
        job = stub.GetJob(self.svc.GetJobRequest(name="jobs/shared"), timeout=5)
        self.check(job.version == 2, f"the acknowledged update is there: version {job.version}")
        channel.close()
        self.check(server.stop() == 0, "after: graceful stop")

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.stub_tmp:
            shutil.rmtree(self.stub_tmp, ignore_errors=True)


def main():
    faults = Faults(os.path.abspath(sys.argv[1]))
    try:
        for case in (faults.unwritable, faults.emptied, faults.lock_deleted):
            try:
                case()
            except Exception as e:  # a server that would not start, or a call that failed: this case fails
                faults.check(False, f"{case.__name__}: {type(e).__name__}: {e}")
    finally:
        faults.cleanup()
    for f in faults.failures:
        print("not ok -", f)
    print(f"{faults.checks - len(faults.failures)} passed, {len(faults.failures)} failed")
    return 1 if faults.failures else 0


if __name__ == "__main__":
    sys.exit(main())
