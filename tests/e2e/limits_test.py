#!/usr/bin/env python3
"""Every limit answers its documented code, and hostile bytes and JSON from real clients hurt nothing.

Usage: /usr/bin/python3 limits_test.py BUILD_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402
from security_test import BUF, BUILD  # noqa: E402
from server_process import ServerProcess, unittest_main  # noqa: E402


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-limits-")
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()
        cls.server = ServerProcess(BUILD, cls.tmp, "--store=memory", "--max_jobs=3", "--max_request_bytes=65536")
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.stub = cls.svc_grpc.SchedulerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0, "the server did not shut down cleanly"
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    def job(self, spec=None, bases=(0.1,)):
        job = self.pb.Job()
        hp = job.hyperparameters.add(name="lr", base_values=list(bases))
        from google.protobuf import json_format
        json_format.ParseDict(spec or {"step": {"step_size": 10}}, hp.schedule)
        return job

    def code(self, method, request):
        try:
            getattr(self.stub, method)(request, timeout=10)
            return self.grpc.StatusCode.OK, ""
        except self.grpc.RpcError as e:
            return e.code(), e.details()

    def assertAlive(self):
        self.assertEqual(self.code("ListJobs", self.svc.ListJobsRequest())[0], self.grpc.StatusCode.OK)

    def test_limits(self):
        C = self.grpc.StatusCode
        cases = [
            ("GetValues count", "GetValues", self.svc.GetValuesRequest(job="jobs/x", count=100001),
             C.INVALID_ARGUMENT, "count: must be between 1 and 100000"),
            ("batch size", "BatchGetValues",
             self.svc.BatchGetValuesRequest(requests=[self.svc.GetValuesRequest(job="jobs/x")] * 1001),
             C.INVALID_ARGUMENT, "requests: must have at most 1000"),
            ("nesting", "Preview", self.svc.PreviewRequest(schedule=self.job(
                {"chained": {"schedules": [{"chained": {"schedules": [{"chained": {"schedules": [{"chained": {
                    "schedules": [{"chained": {"schedules": [{"chained": {"schedules": [{"chained": {"schedules": [
                        {"chained": {"schedules": [{"chained": {"schedules": [{"chained": {"schedules": [
                            {"constant": {}}]}}]}}]}}]}}]}}]}}]}}]}}]}}]}}).hyperparameters[0].schedule),
             C.INVALID_ARGUMENT, "nest deeper than 8"),
            ("expression length", "Preview", self.svc.PreviewRequest(schedule=self.job(
                {"lambda": {"expression": "1+" * 600 + "1"}}).hyperparameters[0].schedule),
             C.INVALID_ARGUMENT, "schedule.lambda.expression"),
            ("groups", "CreateJob", self.svc.CreateJobRequest(job_id="g", job=self.job(bases=[0.1] * 1025)),
             C.INVALID_ARGUMENT, "must have at most 1024 values"),
            ("request size", "CreateJob", self.svc.CreateJobRequest(job_id="big", job=self.job(bases=[0.1] * 9000)),
             C.RESOURCE_EXHAUSTED, ""),
        ]
        for name, method, request, want, message in cases:
            with self.subTest(name):
                code, details = self.code(method, request)
                self.assertEqual(code, want, details)
                self.assertIn(message, details)
        labels = self.job()
        for i in range(65):
            labels.labels[f"k{i}"] = "v"
        self.assertEqual(self.code("CreateJob", self.svc.CreateJobRequest(job_id="l", job=labels))[0],
                         C.INVALID_ARGUMENT)
        # Jobs per server.
        for i in range(3):
            self.assertEqual(self.code("CreateJob", self.svc.CreateJobRequest(job_id=f"j{i}", job=self.job()))[0], C.OK)
        code, details = self.code("CreateJob", self.svc.CreateJobRequest(job_id="j3", job=self.job()))
        self.assertEqual(code, C.RESOURCE_EXHAUSTED)
        self.assertIn("maximum of 3 jobs", details)
        # A repeat of an existing job is still answered at the limit.
        self.assertEqual(self.code("CreateJob", self.svc.CreateJobRequest(job_id="j0", job=self.job()))[0], C.OK)
        self.assertEqual(self.code("DeleteJob", self.svc.DeleteJobRequest(name="jobs/j2"))[0], C.OK)
        self.assertEqual(self.code("CreateJob", self.svc.CreateJobRequest(job_id="j3", job=self.job()))[0], C.OK)
        self.assertAlive()

    def test_live_job_limits(self):
        """UpdateJob, ReportMetrics, WatchJob and waiting GetValues limits, on a server with small stream limits."""
        C, svc, pb = self.grpc.StatusCode, self.svc, self.pb
        server = ServerProcess(BUILD, self.tmp, "--store=memory", "--max_watches=2", "--max_waiting_calls=1",
                               name="live")
        try:
            with self.grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)

                def code(method, request, timeout=10):
                    try:
                        getattr(stub, method)(request, timeout=timeout)
                        return C.OK, ""
                    except self.grpc.RpcError as e:
                        return e.code(), e.details()

                job = self.job({"reduce_on_plateau": {"metric": "m0"}})
                job.metrics.extend(pb.MetricSpec(name=f"m{i}", every_steps=10) for i in range(17))
                got = code("CreateJob", svc.CreateJobRequest(job_id="p", job=job))
                self.assertEqual(got[0], C.INVALID_ARGUMENT)
                self.assertIn("job.metrics: must have at most 16 metrics", got[1])
                del job.metrics[16:]
                self.assertEqual(code("CreateJob", svc.CreateJobRequest(job_id="p", job=job))[0], C.OK)
                got = code("ReportMetrics", svc.ReportMetricsRequest(
                    job="jobs/p", step=9, metrics={f"m{i}": 1.0 for i in range(17)}))
                self.assertEqual(got[0], C.INVALID_ARGUMENT)
                self.assertIn("metrics: must have at most 16", got[1])

                def scale(step):
                    return svc.HyperparameterUpdate(hyperparameter="lr",
                                                    segment=pb.Segment(effective_step=step, scale=1.0))
                got = code("UpdateJob", svc.UpdateJobRequest(name="jobs/p", updates=[scale(100 + i) for i in range(65)]))
                self.assertEqual(got[0], C.INVALID_ARGUMENT)
                self.assertIn("updates: must have at most 64", got[1])
                for k in range(4):
                    self.assertEqual(code("UpdateJob", svc.UpdateJobRequest(
                        name="jobs/p", updates=[scale(1000 + 64 * k + i) for i in range(64)]))[0], C.OK)
                got = code("UpdateJob", svc.UpdateJobRequest(name="jobs/p", updates=[scale(5000)]))
                self.assertEqual(got[0], C.RESOURCE_EXHAUSTED)
                self.assertIn("maximum of 256 segments", got[1])

                # Streams: two watches are open; a third is refused.
                watches = [stub.WatchJob(svc.WatchJobRequest(job="jobs/p"), timeout=30) for _ in range(2)]
                for w in watches:
                    next(w)
                with self.assertRaises(self.grpc.RpcError) as raised:
                    next(stub.WatchJob(svc.WatchJobRequest(job="jobs/p"), timeout=30))
                self.assertEqual(raised.exception.code(), C.RESOURCE_EXHAUSTED)
                self.assertIn("maximum of 2 watch streams", raised.exception.details())
                for w in watches:
                    w.cancel()
                # Waiting calls: one waits for the report at step 9; a second is refused.
                waiting = stub.GetValues.future(svc.GetValuesRequest(job="jobs/p", step=50), timeout=30)
                time.sleep(0.5)
                got = code("GetValues", svc.GetValuesRequest(job="jobs/p", step=60))
                self.assertEqual(got[0], C.RESOURCE_EXHAUSTED)
                self.assertIn("GetValues calls waiting for metric reports", got[1])
                waiting.cancel()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_malformed_protobuf_bytes(self):
        for method in ("CreateJob", "GetValues", "Preview", "BatchGetValues"):
            for payload in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\x0f", b"\x12\x05\x0a\x03", os.urandom(512)):
                call = self.channel.unary_unary(f"/hpsched.v1.SchedulerService/{method}")
                with self.subTest(method=method, payload=payload[:8]):
                    try:
                        call(payload, timeout=10)
                    except self.grpc.RpcError as e:
                        # Bytes that do not parse never reach a handler: gRPC 1.51's callback API answers
                        # UNIMPLEMENTED (its choice, with an empty message). Bytes that parse by chance are validated
                        # like any request.
                        self.assertIn(e.code(), (self.grpc.StatusCode.UNIMPLEMENTED, self.grpc.StatusCode.INTERNAL,
                                                 self.grpc.StatusCode.INVALID_ARGUMENT, self.grpc.StatusCode.NOT_FOUND))
        self.assertAlive()

    def test_hostile_json_through_buf_curl(self):
        url = f"http://127.0.0.1:{self.server.port}/hpsched.v1.SchedulerService/"
        hostile = [
            ("Preview", {"schedule": {"exponential": {"gamma": "NaN"}}}, "must be finite"),
            ("Preview", {"schedule": {"cosine_annealing": {"t_max": "9223372036854775807", "eta_min": "-Infinity"}}},
             "eta_min: must be finite"),
            ("Preview", {"schedule": {"lambda": {"expression": "(" * 200 + "1" + ")" * 200}}}, "nesting"),
            ("Preview", {"schedule": {"lambda": {"expression": "step\u0000"}}}, "expression"),
            ("GetValues", {"job": "jobs/../../etc/passwd"}, "job: must be"),
            ("GetValues", {"job": "jobs/x", "step": "-9223372036854775808"}, "step: must be >= 0"),
            ("GetValues", {"job": "jobs/x", "step": "9223372036854775807", "count": 100}, "step: must be >= 0 and < 2^53"),
            ("CreateJob", {"job_id": "a" * 100, "job": {}}, "job_id: must match"),
            ("CreateJob", {"job_id": "ok", "job": {"hyperparameters": [{"name": "lr\n; rm -rf", "base_values": [1],
                                                                        "schedule": {"constant": {}}}]}}, "name: must match"),
        ]
        for method, body, message in hostile:
            with self.subTest(method=method, body=json.dumps(body)[:60]):
                out = subprocess.run([BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d",
                                      json.dumps(body), url + method], capture_output=True, text=True, timeout=60)
                self.assertNotEqual(out.returncode, 0)
                # buf curl prints a call's error status as JSON on stderr.
                error = json.loads(out.stderr) if out.stderr.strip().startswith("{") else {"message": out.stderr}
                self.assertEqual(error.get("code"), "invalid_argument", out.stdout + out.stderr)
                self.assertIn(message, error["message"])
        self.assertAlive()


if __name__ == "__main__":
    unittest_main()
