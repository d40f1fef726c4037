#!/usr/bin/env python3
"""The Prometheus endpoint after real traffic, the JSON-lines log format, and settings from HPSCHED_* variables.

Usage: /usr/bin/python3 metrics_test.py BUILD_DIR

Starts the real hpsched-server configured only through the environment (HPSCHED_ADDRESS, HPSCHED_PORT=0,
HPSCHED_PORT_FILE, HPSCHED_METRICS_PORT, HPSCHED_LOG_FORMAT=json), sends a known mix of calls with Python grpcio,
scrapes /metrics and checks every count.
"""
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402  (stub generation)
from server_process import ServerProcess, unittest_main  # noqa: E402

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "build"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-metrics-")
        cls.stub_tmp, cls.job_pb2, cls.schedule_pb2, cls.svc_pb2, cls.svc_grpc = grpcio_golden.import_stubs()
        cls.metrics_port = free_port()
        env = dict(HPSCHED_ADDRESS="127.0.0.1", HPSCHED_PORT="0", HPSCHED_PORT_FILE=os.path.join(cls.tmp, "port"),
                   HPSCHED_METRICS_PORT=str(cls.metrics_port), HPSCHED_METRICS_ADDRESS="127.0.0.1",
                   HPSCHED_LOG_FORMAT="json", HPSCHED_HTTP_PORT="0", HPSCHED_DATA_DIR=os.path.join(cls.tmp, "data"))
        # Settings come from the environment only: no flags.
        cls.server = ServerProcess(BUILD, cls.tmp, env=env)
        import grpc
        cls.grpc = grpc
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.stub = cls.svc_grpc.SchedulerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    def call(self, method, request, code=None):
        try:
            getattr(self.stub, method)(request, timeout=10)
            self.assertIsNone(code, f"{method} should have failed with {code}")
        except self.grpc.RpcError as e:
            self.assertEqual(e.code(), code, e.details())

    def test_counts_after_traffic(self):
        pb, svc, sched = self.job_pb2, self.svc_pb2, self.schedule_pb2
        job = pb.Job(hyperparameters=[pb.Hyperparameter(
            name="lr", base_values=[0.1, 0.01], schedule=sched.Schedule(step=sched.StepSchedule(step_size=10)))])
        StatusCode = self.grpc.StatusCode
        self.call("CreateJob", svc.CreateJobRequest(job_id="m", job=job))
        self.call("CreateJob", svc.CreateJobRequest(job_id="m", job=job))  # identical: OK, no new job
        self.call("CreateJob", svc.CreateJobRequest(job_id="m2", job=job))
        for step in range(5):
            self.call("GetValues", svc.GetValuesRequest(job="jobs/m", step=step, count=10))  # 2 groups x 10
        for _ in range(2):
            self.call("GetValues", svc.GetValuesRequest(job="jobs/missing"), StatusCode.NOT_FOUND)
        # A body that is not a GetValuesRequest (field 1, a string, 5 bytes long, with 1 byte): answered before any
        # handler, and counted all the same (GetValues and BatchGetValues are counted without an interceptor).
        undecodable = self.channel.unary_unary("/hpsched.v1.SchedulerService/GetValues")
        with self.assertRaises(self.grpc.RpcError) as raised:
            undecodable(b"\x0a\x05x", timeout=10)
        self.assertEqual(raised.exception.code(), StatusCode.UNIMPLEMENTED, raised.exception.details())
        self.call("BatchGetValues", svc.BatchGetValuesRequest(requests=[svc.GetValuesRequest(job="jobs/m", count=2)]))
        self.call("BatchGetValues", svc.BatchGetValuesRequest(requests=[svc.GetValuesRequest(job="x/")]),
                  StatusCode.INVALID_ARGUMENT)
        self.call("GetJob", svc.GetJobRequest(name="jobs/BAD"), StatusCode.INVALID_ARGUMENT)
        self.call("Preview", svc.PreviewRequest(schedule=job.hyperparameters[0].schedule, count=3))
        self.call("DeleteJob", svc.DeleteJobRequest(name="jobs/m2"))
        # Live jobs: two updates, three reports (one a duplicate) of which one reduces, a watch stream open
        # while scraping.
        plateau = pb.Job(hyperparameters=[pb.Hyperparameter(
            name="lr", base_values=[1.0],
            schedule=sched.Schedule(reduce_on_plateau=sched.ReduceOnPlateauSchedule(metric="loss", patience=0)))],
            metrics=[pb.MetricSpec(name="loss", every_steps=10)])
        self.call("CreateJob", svc.CreateJobRequest(job_id="p", job=plateau))
        for step in (1000, 2000):
            self.call("UpdateJob", svc.UpdateJobRequest(name="jobs/m", updates=[svc.HyperparameterUpdate(
                hyperparameter="lr", segment=pb.Segment(effective_step=step, scale=0.5))]))
        for step, loss in ((9, 1.0), (9, 1.0), (19, 2.0)):
            self.call("ReportMetrics", svc.ReportMetricsRequest(job="jobs/p", step=step, metrics={"loss": loss}))
        watch = self.stub.WatchJob(svc.WatchJobRequest(job="jobs/p"), timeout=30)
        next(watch)  # The snapshot: the stream is open.

        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        samples = parse_metrics(text)

        def value(name, **labels):
            for (n, ls), v in samples.items():
                if n == name and set(labels.items()) <= set(ls):
                    return v
            self.fail(f"no sample {name} {labels}\n{text}")

        service = "hpsched.v1.SchedulerService"
        self.assertEqual(value("grpc_server_started_total", grpc_service=service, grpc_method="GetValues",
                               grpc_type="unary"), 8)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="GetValues", grpc_code="OK"), 5)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="GetValues", grpc_code="NotFound"), 2)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="GetValues", grpc_code="Unimplemented"), 1)
        self.assertEqual(value("grpc_server_started_total", grpc_method="BatchGetValues"), 2)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="BatchGetValues", grpc_code="OK"), 1)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="BatchGetValues",
                               grpc_code="InvalidArgument"), 1)
        self.assertEqual(value("grpc_server_handling_seconds_count", grpc_method="BatchGetValues"), 2)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="GetJob", grpc_code="InvalidArgument"), 1)
        self.assertEqual(value("grpc_server_handled_total", grpc_method="CreateJob", grpc_code="OK"), 4)
        self.assertEqual(value("grpc_server_handling_seconds_count", grpc_method="GetValues"), 8)
        self.assertEqual(value("grpc_server_handling_seconds_bucket", grpc_method="GetValues", le="+Inf"), 8)
        self.assertGreater(value("grpc_server_handling_seconds_sum", grpc_method="GetValues"), 0)
        self.assertEqual(value("hpsched_values_served_total"), 5 * 2 * 10 + 2 * 2 + 3)
        self.assertEqual(value("hpsched_jobs"), 2)
        # Three creates, one delete, two updates, two new reports.
        self.assertEqual(value("hpsched_store_write_seconds_count"), 8)
        self.assertEqual(value("hpsched_updates_total"), 2)
        self.assertEqual(value("hpsched_metric_reports_total"), 2)
        self.assertEqual(value("hpsched_plateau_reductions_total"), 1)
        self.assertEqual(value("hpsched_watch_streams"), 1)
        self.assertEqual(value("hpsched_waiting_calls"), 0)
        self.assertEqual(value("grpc_server_started_total", grpc_method="WatchJob", grpc_type="server_stream"), 1)
        watch.cancel()

        # The log is JSON lines: one object per line, a line per mutation and none per GetValues.
        lines = [json.loads(l) for l in self.server.log_text().splitlines() if l.strip()]
        messages = [l["message"] for l in lines]
        self.assertTrue(all({"time", "level", "thread", "message"} <= set(l) for l in lines), lines)
        self.assertEqual(sum("created job" in m for m in messages), 3, messages)
        self.assertEqual(sum("updated job" in m for m in messages), 2, messages)
        self.assertEqual(sum("deleted job" in m for m in messages), 1, messages)
        self.assertFalse(any("GetValues" in m for m in messages), messages)


if __name__ == "__main__":
    unittest_main()
