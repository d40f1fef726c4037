#!/usr/bin/env python3
"""The HTTP listener (docs/http.md) against the gRPC port of the same real hpsched-server.

Usage: /usr/bin/python3 http_api_test.py BUILD_DIR

- Values: every PyTorch golden case (tests/golden/torch_golden.json, numbers from torch itself) through
  POST /v1/preview, and as a job through GET /v1/jobs/{id}:values, equal bit for bit to gRPC's Preview and GetValues
  (and to torch at 1e-12, as grpcio_golden.py checks gRPC).
- Every route against its RPC: the same messages (compared as protos after json_format.Parse) for create, get, list
  (filter, paging), update, report metrics, batch values, delete; the same code and message for the same bad
  requests, with grpc-gateway's HTTP status; malformed JSON, unknown fields and bad query parameters are 400 with a
  google.rpc.Status body naming the problem.
- Tokens and roles (401 / 403 with google.rpc.Status bodies; the cookie for reads only), TLS and mutual TLS with
  certificates from openssl (made as security_test.py makes them), bodies over --max_request_bytes (413).
- Server-sent events: the snapshot, an UpdateJob's event, a heartbeat; a bound on open streams (429) that frees
  when a client goes away; slow and abandoned clients do not hold the server's shutdown.
- The static pages: / is index.html, an ETag and 304, 404 as JSON.
Every server is real, on loopback, on ports picked free; nothing sleeps to wait except a bounded poll.
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import time
import unittest
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(REPO, "build")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402  (stub generation)
_argv = list(sys.argv)
import security_test  # noqa: E402  (make_certs; it takes sys.argv[1] as its build directory when imported)
sys.argv[:] = _argv
from server_process import ServerProcess, unittest_main  # noqa: E402
TOKENS = {"reader": "reader-token-0123456789abcdef", "trainer": "trainer-token-0123456789abcdef",
          "admin": "admin-token-0123456789abcdef"}
TIMEOUT = 30  # seconds: liveness bound of any one call or read


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp, *flags, name="http"):
    """A server with HTTP on a free port (picked here, so another process may take it first: three tries)."""
    last = None
    for attempt in range(3):
        port = free_port()
        try:
            server = ServerProcess(BUILD, tmp, "--store=memory", f"--http_port={port}", "--http_address=127.0.0.1",
                                   *flags, name=f"{name}{attempt}")
        except RuntimeError as e:
            last = e
            continue
        server.http_port = port
        return server
    raise last


def bits(values):
    return [struct.pack("<d", v) for v in values]


class Http:
    """One HTTP/1.1 client of the listener; each call a fresh connection (http.client is not thread-safe)."""

    def __init__(self, port, context=None, token=None):
        self.port, self.context, self.token = port, context, token

    def connect(self):
        if self.context is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=TIMEOUT, context=self.context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)

    def raw(self, method, path, body=None, headers=None):
        conn = self.connect()
        try:
            h = {"Content-Type": "application/json"} if body is not None else {}
            if self.token:
                h["Authorization"] = f"Bearer {self.token}"
            h.update(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def call(self, method, path, body=None, headers=None):
        status, headers, data = self.raw(method, path, body, headers)
        return status, (json.loads(data) if data else None)


def query(**params):
    items = []
    for k, v in params.items():
        for x in (v if isinstance(v, list) else [v]):
            items.append((k, x))
    return "?" + urllib.parse.urlencode(items) if items else ""


class HttpApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        from google.protobuf import json_format
        cls.grpc, cls.json_format = grpc, json_format
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-http-")
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()
        cls.server = start_server(cls.tmp, "--http_heartbeat=200ms", name="plain")
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.stub = cls.svc_grpc.SchedulerServiceStub(cls.channel)
        cls.http = Http(cls.server.http_port)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)
        assert code == 0, f"the server exited {code}"

    def parse(self, body, message):
        return self.json_format.Parse(json.dumps(body), message)

    def grpc_error(self, method, request):
        try:
            getattr(self.stub, method)(request, timeout=TIMEOUT)
        except self.grpc.RpcError as e:
            return e.code().value[0], e.details()
        self.fail(f"{method} succeeded over gRPC")

    def create_job(self, job_id, schedule, base_values=(0.1,), metrics=None, labels=None):
        job = self.pb.Job()
        hp = job.hyperparameters.add(name="lr", base_values=list(base_values))
        self.json_format.ParseDict(schedule, hp.schedule)
        for k, v in (labels or {}).items():
            job.labels[k] = v
        for m in metrics or []:
            self.json_format.ParseDict(m, job.metrics.add())
        return self.stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=job), timeout=TIMEOUT)

    # --- values --------------------------------------------------------------------------------------------------

    def test_golden_cases_equal_grpc_bit_for_bit_and_torch(self):
        with open(os.path.join(REPO, "tests", "golden", "torch_golden.json")) as f:
            cases = json.load(f)["cases"]
        compared = 0
        for index, case in enumerate(cases):
            with self.subTest(case=case["name"]):
                bases = case["base_values"]
                floor = grpcio_golden.ABS_FLOOR * max(abs(b) for b in bases)
                job_id = f"golden-{index}"
                status, created = self.http.call("POST", f"/v1/jobs?job_id={job_id}",
                                                 {"hyperparameters": [{"name": "lr", "baseValues": bases,
                                                                       "schedule": case["schedule"]}]})
                self.assertEqual(status, 200, created)
                want_points = {p["step"]: p["values"] for p in case["points"]}
                for start, end in grpcio_golden.ranges(want_points):
                    count = end - start + 1
                    # Preview: HTTP == gRPC, bit for bit.
                    preview = {"schedule": case["schedule"], "baseValues": bases, "startStep": str(start),
                               "count": str(count)}
                    status, body = self.http.call("POST", "/v1/preview", preview)
                    self.assertEqual(status, 200, body)
                    got = self.parse(body, self.svc.PreviewResponse())
                    want = self.stub.Preview(self.parse(preview, self.svc.PreviewRequest()), timeout=TIMEOUT)
                    self.assertEqual(len(got.series), len(want.series))
                    for a, b in zip(got.series, want.series):
                        self.assertEqual(bits(a.values), bits(b.values))
                    # GetValues of the job: HTTP == gRPC, bit for bit, and equal to torch.
                    status, body = self.http.call("GET", f"/v1/jobs/{job_id}:values" +
                                                  query(step=start, count=count, hyperparameters="lr"))
                    self.assertEqual(status, 200, body)
                    got = self.parse(body, self.svc.GetValuesResponse())
                    want = self.stub.GetValues(self.svc.GetValuesRequest(job=f"jobs/{job_id}", step=start,
                                                                         count=count), timeout=TIMEOUT)
                    self.assertEqual(got.start_step, want.start_step)
                    self.assertEqual(got.version, want.version)
                    self.assertEqual([bits(s.values) for s in got.series], [bits(s.values) for s in want.series])
                    for step, values in want_points.items():
                        if start <= step <= end:
                            for g, w in enumerate(values):
                                have = got.series[g].values[step - start]
                                self.assertTrue(grpcio_golden.close(have, w, floor), (step, g, have, w))
                                compared += 1
        self.assertGreater(compared, 1000)

    # --- every route against its RPC ------------------------------------------------------------------------------

    def test_routes_answer_as_grpc(self):
        spec = {"hyperparameters": [{"name": "lr", "baseValues": [0.1, 0.2],
                                     "schedule": {"step": {"stepSize": "10", "gamma": 0.5}}},
                                    {"name": "momentum", "baseValues": [0.9], "schedule": {"constant": {}}}],
                "labels": {"team": "vision"}}
        status, created = self.http.call("POST", "/v1/jobs?job_id=routes-a&request_id=r-1", spec)
        self.assertEqual(status, 200, created)
        self.assertEqual(created["name"], "jobs/routes-a")
        # The same request_id again: the same job (idempotent), as over gRPC.
        status, again = self.http.call("POST", "/v1/jobs?job_id=routes-a&request_id=r-1", spec)
        self.assertEqual((status, again), (200, created))
        self.create_job("routes-b", {"constant": {}}, labels={"team": "audio"})

        status, got = self.http.call("GET", "/v1/jobs/routes-a")
        self.assertEqual(status, 200)
        self.assertEqual(self.parse(got, self.pb.Job()),
                         self.stub.GetJob(self.svc.GetJobRequest(name="jobs/routes-a"), timeout=TIMEOUT))

        # ListJobs: filter and paging, as gRPC pages.
        status, page = self.http.call("GET", "/v1/jobs" + query(filter='labels.team = "vision"'))
        self.assertEqual(status, 200, page)
        self.assertEqual([j["name"] for j in page["jobs"]], ["jobs/routes-a"])
        status, page1 = self.http.call("GET", "/v1/jobs" + query(filter='id:"routes-*"', pageSize=1))
        self.assertEqual(status, 200, page1)
        want1 = self.stub.ListJobs(self.svc.ListJobsRequest(filter='id:"routes-*"', page_size=1), timeout=TIMEOUT)
        self.assertEqual(self.parse(page1, self.svc.ListJobsResponse()), want1)
        status, page2 = self.http.call("GET", "/v1/jobs" + query(filter='id:"routes-*"', page_size=1,
                                                                 page_token=page1["nextPageToken"]))
        self.assertEqual([j["name"] for j in page2["jobs"]], ["jobs/routes-b"])

        # GetValues with a repeated query parameter, and an enum by name.
        path = "/v1/jobs/routes-a:values" + query(step=8, count=4, hyperparameters=["momentum", "lr"],
                                                  pending_policy="PENDING_POLICY_PROVISIONAL_NOW")
        status, values = self.http.call("GET", path)
        self.assertEqual(status, 200, values)
        want = self.stub.GetValues(self.svc.GetValuesRequest(
            job="jobs/routes-a", step=8, count=4, hyperparameters=["momentum", "lr"],
            pending_policy=self.svc.PENDING_POLICY_PROVISIONAL_NOW), timeout=TIMEOUT)
        self.assertEqual(self.parse(values, self.svc.GetValuesResponse()), want)
        self.assertEqual([(s["hyperparameter"], s["group"]) for s in values["series"]],
                         [("lr", 0), ("lr", 1), ("momentum", 0)])
        self.assertEqual(values["series"][0]["values"], [0.1, 0.1, 0.05, 0.05])

        # BatchGetValues.
        batch = {"requests": [{"job": "jobs/routes-a", "step": "0", "count": "3"},
                              {"job": "routes-b", "step": "5", "count": "2"}]}
        status, body = self.http.call("POST", "/v1/jobs:batchGetValues", batch)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.parse(body, self.svc.BatchGetValuesResponse()),
                         self.stub.BatchGetValues(self.parse(batch, self.svc.BatchGetValuesRequest()),
                                                  timeout=TIMEOUT))

        # UpdateJob (PATCH, the whole request in the body; the path names the job).
        update = {"updates": [{"hyperparameter": "lr", "segment": {"effectiveStep": "1000", "scale": 0.5}}],
                  "etag": created["etag"]}
        status, updated = self.http.call("PATCH", "/v1/jobs/routes-a", update)
        self.assertEqual(status, 200, updated)
        self.assertEqual(updated["version"], "2")
        self.assertEqual(self.parse(updated, self.pb.Job()),
                         self.stub.GetJob(self.svc.GetJobRequest(name="jobs/routes-a"), timeout=TIMEOUT))

        # ReportMetrics on a job with a declared metric.
        self.create_job("routes-m", {"constant": {}},
                        metrics=[{"name": "loss", "everySteps": "10"}])
        status, report = self.http.call("POST", "/v1/jobs/routes-m:reportMetrics",
                                        {"step": "9", "metrics": {"loss": 0.5}})
        self.assertEqual(status, 200, report)
        self.assertEqual(report["job"], "jobs/routes-m")
        self.assertFalse(report["duplicate"])
        status, report = self.http.call("POST", "/v1/jobs/routes-m:reportMetrics",
                                        {"step": "9", "metrics": {"loss": 0.5}})
        self.assertTrue(report["duplicate"])

        # DeleteJob, then the job is gone for both.
        self.assertEqual(self.http.call("DELETE", "/v1/jobs/routes-b"), (200, {}))
        self.assertEqual(self.grpc_error("GetJob", self.svc.GetJobRequest(name="jobs/routes-b"))[0], 5)
        self.assertEqual(self.http.call("GET", "/v1/jobs/routes-b")[0], 404)

    def test_bad_requests_get_grpcs_code_and_message(self):
        self.create_job("errors-a", {"constant": {}})
        status, job = self.http.call("GET", "/v1/jobs/errors-a")
        self.stub.GetValues(self.svc.GetValuesRequest(job="jobs/errors-a", step=0, count=100), timeout=TIMEOUT)
        svc, pb = self.svc, self.pb
        bad_schedule = {"step": {"stepSize": "-1", "gamma": 0.5}}
        cases = [
            # (name, HTTP method, path, body, RPC, request, HTTP status)
            ("unknown job", "GET", "/v1/jobs/nope", None, "GetJob", svc.GetJobRequest(name="jobs/nope"), 404),
            ("bad id", "GET", "/v1/jobs/Bad_ID", None, "GetJob", svc.GetJobRequest(name="jobs/Bad_ID"), 400),
            ("count too large", "GET", "/v1/jobs/errors-a:values?count=200000", None, "GetValues",
             svc.GetValuesRequest(job="jobs/errors-a", count=200000), 400),
            ("unknown hyperparameter", "GET", "/v1/jobs/errors-a:values?hyperparameters=nope", None, "GetValues",
             svc.GetValuesRequest(job="jobs/errors-a", hyperparameters=["nope"]), 400),
            ("invalid schedule", "POST", "/v1/preview", {"schedule": bad_schedule}, "Preview",
             self.parse({"schedule": bad_schedule}, svc.PreviewRequest()), 400),
            ("preview without schedule", "POST", "/v1/preview", {}, "Preview", svc.PreviewRequest(), 400),
            ("bad filter", "GET", "/v1/jobs?filter=" + urllib.parse.quote('labels.team = "x" OR id = "y"'), None,
             "ListJobs", svc.ListJobsRequest(filter='labels.team = "x" OR id = "y"'), 400),
            ("different spec under an existing id", "POST", "/v1/jobs?job_id=errors-a",
             {"hyperparameters": [{"name": "lr", "baseValues": [0.5], "schedule": {"constant": {}}}]},
             "CreateJob", self.parse({"jobId": "errors-a", "job": {"hyperparameters": [
                 {"name": "lr", "baseValues": [0.5], "schedule": {"constant": {}}}]}}, svc.CreateJobRequest()), 409),
            ("stale etag", "PATCH", "/v1/jobs/errors-a",
             {"updates": [{"hyperparameter": "lr", "segment": {"effectiveStep": "500", "scale": 0.5}}],
              "etag": "0-0000000000000000"},
             "UpdateJob", self.parse({"name": "jobs/errors-a", "updates": [
                 {"hyperparameter": "lr", "segment": {"effectiveStep": "500", "scale": 0.5}}],
                 "etag": "0-0000000000000000"}, svc.UpdateJobRequest()), 409),
            ("rewrite of a served step", "PATCH", "/v1/jobs/errors-a",
             {"updates": [{"hyperparameter": "lr", "segment": {"effectiveStep": "5", "scale": 0.5}}]},
             "UpdateJob", self.parse({"name": "jobs/errors-a", "updates": [
                 {"hyperparameter": "lr", "segment": {"effectiveStep": "5", "scale": 0.5}}]},
                 svc.UpdateJobRequest()), 400),
            ("undeclared metric", "POST", "/v1/jobs/errors-a:reportMetrics", {"step": "1", "metrics": {"x": 1}},
             "ReportMetrics", self.parse({"job": "jobs/errors-a", "step": "1", "metrics": {"x": 1}},
                                         svc.ReportMetricsRequest()), 400),
        ]
        for name, method, path, body, rpc, request, http_status in cases:
            with self.subTest(case=name):
                code, message = self.grpc_error(rpc, request)
                status, got = self.http.call(method, path, body)
                self.assertEqual(got, {"code": code, "message": message, "details": []})
                self.assertEqual(status, http_status, f"gRPC code {code}")
        # The job is unchanged by all of it (its served mark, Job.served_through, grew with the reads: not a change).
        status, after = self.http.call("GET", "/v1/jobs/errors-a")
        after.pop("servedThrough", None)
        job = dict(job)
        job.pop("servedThrough", None)
        self.assertEqual((status, after), (200, job))

    def test_malformed_requests_are_400_naming_the_problem(self):
        cases = [
            ("POST", "/v1/preview", "{bad", "request body (hpsched.v1.PreviewRequest): "),
            ("POST", "/v1/preview", '{"schedule": {"constant": {}}, "stepCount": 5}', "stepCount"),
            ("POST", "/v1/preview", '{"count": "many"}', "count"),
            ("POST", "/v1/jobs?job_id=x", "[1, 2]", "request body (hpsched.v1.CreateJobRequest.job)"),
            ("GET", "/v1/jobs/a:values?step=ten", None, 'query parameter step: must be an integer, got "ten"'),
            ("GET", "/v1/jobs/a:values?stepp=1", None,
             "query parameter stepp: no such field of hpsched.v1.GetValuesRequest"),
            ("GET", "/v1/jobs/a:values?pending_policy=SOON", None,
             'query parameter pending_policy: must be a value of hpsched.v1.PendingPolicy, got "SOON"'),
            ("POST", "/v1/preview?count=3", "{}", "query parameter count: this route takes its whole request in"),
        ]
        for method, path, body, needle in cases:
            with self.subTest(path=path, body=body):
                status, got = self.http.call(method, path, body)
                self.assertEqual(status, 400, got)
                self.assertEqual(got["code"], 3)
                self.assertIn(needle, got["message"])
                self.assertEqual(got["details"], [])
        status, got = self.http.call("GET", "/v1/nothing")
        self.assertEqual((status, got["code"]), (404, 5))
        status, got = self.http.call("PUT", "/v1/jobs/a", "{}")
        self.assertEqual((status, got["code"]), (405, 12))
        # A form-encoded body (curl -d's default) is still read as the JSON it is, not as query parameters.
        status, got = self.http.call("POST", "/v1/preview", json.dumps({"schedule": {"constant": {}}, "count": 2}),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, got)
        self.assertEqual(len(got["series"][0]["values"]), 2)

    # --- server-sent events --------------------------------------------------------------------------------------

    def open_watch(self, port, job_id, token=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", f"/v1/jobs/{job_id}:watch", headers=headers)
        return conn, conn.getresponse()

    def next_event(self, resp, allow_heartbeats=True):
        """The next `data:` event as a dict, skipping heartbeat comments; ("comment", text) for a heartbeat when
        not allowed."""
        while True:
            line = resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                if not allow_heartbeats:
                    return ("comment", line)
                continue
            if line.startswith("data: "):
                self.assertEqual(resp.readline(), b"\n")
                return json.loads(line[len("data: "):])

    def test_watch_streams_snapshot_update_and_heartbeats(self):
        self.create_job("watch-a", {"constant": {}})
        conn, resp = self.open_watch(self.server.http_port, "watch-a")
        try:
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.getheader("Content-Type"), "text/event-stream")
            first = self.next_event(resp)
            self.assertEqual(first["type"], "JOB_EVENT_TYPE_SNAPSHOT")
            self.assertEqual(first["job"]["version"], "1")
            # A heartbeat comes while nothing happens (--http_heartbeat=200ms here).
            self.assertEqual(self.next_event(resp, allow_heartbeats=False), ("comment", ": heartbeat"))
            self.stub.UpdateJob(self.parse({"name": "jobs/watch-a", "updates": [
                {"hyperparameter": "lr", "segment": {"effectiveStep": "700", "scale": 0.25}}]},
                self.svc.UpdateJobRequest()), timeout=TIMEOUT)
            event = self.next_event(resp)
            self.assertEqual(event["type"], "JOB_EVENT_TYPE_UPDATED")
            self.assertEqual(event["effectiveStep"], "700")
            self.assertEqual(event["job"]["version"], "2")
            got = self.parse(event, self.svc.WatchJobResponse())
            current = self.stub.GetJob(self.svc.GetJobRequest(name="jobs/watch-a"), timeout=TIMEOUT)
            # GetJob's served mark (Job.served_through) is not in watch events.
            current.ClearField("served_through")
            self.assertEqual(got.job, current)
            # A delete ends the stream after its event.
            self.stub.DeleteJob(self.svc.DeleteJobRequest(name="jobs/watch-a"), timeout=TIMEOUT)
            self.assertEqual(self.next_event(resp)["type"], "JOB_EVENT_TYPE_DELETED")
            self.assertIsNone(self.next_event(resp))
        finally:
            conn.close()
        # An unknown job is an ordinary error reply, not a stream.
        status, got = self.http.call("GET", "/v1/jobs/watch-nope:watch")
        self.assertEqual((status, got["code"]), (404, 5))

    def test_stream_bound_frees_when_a_client_goes_away(self):
        tmp = tempfile.mkdtemp(prefix="hpsched-http-streams-", dir=self.tmp)
        server = start_server(tmp, "--http_max_streams=1", "--http_heartbeat=100ms", name="streams")
        try:
            with self.grpc.insecure_channel(server.address) as channel:
                stub = self.svc_grpc.SchedulerServiceStub(channel)
                job = self.pb.Job()
                job.hyperparameters.add(name="lr", base_values=[1.0]).schedule.constant.SetInParent()
                stub.CreateJob(self.svc.CreateJobRequest(job_id="s", job=job), timeout=TIMEOUT)
            conn, resp = self.open_watch(server.http_port, "s")
            self.assertEqual(self.next_event(resp)["type"], "JOB_EVENT_TYPE_SNAPSHOT")
            status, got = Http(server.http_port).call("GET", "/v1/jobs/s:watch")
            self.assertEqual((status, got["code"]), (429, 8))
            self.assertIn("--http_max_streams=1", got["message"])
            # Reads are still served while every stream is open.
            self.assertEqual(Http(server.http_port).call("GET", "/v1/jobs/s")[0], 200)
            conn.close()  # The client goes away; the next heartbeat write finds out.
            deadline = time.monotonic() + TIMEOUT
            while True:
                conn2, resp2 = self.open_watch(server.http_port, "s")
                if resp2.status == 200:
                    break
                resp2.read()
                conn2.close()
                self.assertLess(time.monotonic(), deadline, "the closed stream was never released")
                time.sleep(0.05)
            self.assertEqual(self.next_event(resp2)["type"], "JOB_EVENT_TYPE_SNAPSHOT")
            conn2.close()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_slow_and_abandoned_clients_do_not_hold_shutdown(self):
        tmp = tempfile.mkdtemp(prefix="hpsched-http-shutdown-", dir=self.tmp)
        # A heartbeat longer than the stop deadline below: only ending the streams at shutdown stops them in time.
        server = start_server(tmp, "--shutdown_grace=2s", "--http_heartbeat=120s", name="shutdown")
        with self.grpc.insecure_channel(server.address) as channel:
            stub = self.svc_grpc.SchedulerServiceStub(channel)
            job = self.pb.Job()
            job.hyperparameters.add(name="lr", base_values=[1.0]).schedule.constant.SetInParent()
            stub.CreateJob(self.svc.CreateJobRequest(job_id="w", job=job), timeout=TIMEOUT)
            # A client that reads its snapshot and then nothing more, while 200 updates queue up for it.
            slow = socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT)
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.sendall(b"GET /v1/jobs/w:watch HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200 OK", slow.recv(256))
            # A client that sent half a request and went quiet, and one whose stream is open and idle.
            half = socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT)
            half.sendall(b"GET /v1/jobs/w:watch HTTP/1.1\r\nHost")
            idle_conn, idle = self.open_watch(server.http_port, "w")
            self.assertEqual(self.next_event(idle)["type"], "JOB_EVENT_TYPE_SNAPSHOT")
            for i in range(200):
                stub.UpdateJob(self.parse({"name": "jobs/w", "updates": [
                    {"hyperparameter": "lr", "segment": {"effectiveStep": str(10_000 + i), "scale": 0.5}}]},
                    self.svc.UpdateJobRequest()), timeout=TIMEOUT)
            # The server still answers others.
            self.assertEqual(Http(server.http_port).call("GET", "/v1/jobs/w")[1]["version"], "201")
        start = time.monotonic()
        code = server.stop(timeout=TIMEOUT)
        took = time.monotonic() - start
        with open(server.log_path) as f:
            self.assertEqual(code, 0, f.read()[-3000:])
        print(f"shutdown with a slow, a half-sent and an idle event-stream client: {took:.2f} s", file=sys.stderr)
        for s in (slow, half):
            s.close()
        idle_conn.close()

    # --- pages ---------------------------------------------------------------------------------------------------

    def test_pages(self):
        status, headers, body = self.http.raw("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        with open(os.path.join(REPO, "server", "web", "index.html"), "rb") as f:
            self.assertEqual(body, f.read())
        self.assertEqual(headers["Cache-Control"], "no-cache")
        etag = headers["ETag"]
        status, headers, body = self.http.raw("GET", "/index.html", headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        status, got = self.http.call("GET", "/no-such-page.js")
        self.assertEqual((status, got["code"]), (404, 5))
        status, got = self.http.call("POST", "/index.html", "{}")
        self.assertEqual(status, 405)

    def test_metrics(self):
        # The calls the HTTP listener makes are the service's calls, counted as such.
        self.http.call("GET", "/v1/jobs/metrics-nope")
        status, headers, body = self.http.raw("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        self.assertIn("hpsched_watch_streams ", text)
        line = [l for l in text.splitlines() if l.startswith("grpc_server_handled_total{") and
                'grpc_method="GetJob"' in l and 'grpc_code="NotFound"' in l]
        self.assertEqual(len(line), 1, text[:2000])
        self.assertGreaterEqual(float(line[0].rsplit(" ", 1)[1]), 1)


def curl_examples(path):
    """The example lines of a document: those that start with `curl -s ` and reach http://localhost:8080."""
    with open(os.path.join(REPO, path)) as f:
        return [line.strip() for line in f if line.startswith("curl -s ") and "http://localhost:8080/" in line]


class DocsExamplesTest(unittest.TestCase):
    """docs/http.md's and the README's curl lines run, in order, each document against a fresh server, and answer
    2xx with JSON."""

    def run_examples(self, path, minimum):
        import shlex
        import subprocess
        examples = curl_examples(path)
        self.assertGreaterEqual(len(examples), minimum, f"{path} has fewer curl examples than expected")
        tmp = tempfile.mkdtemp(prefix="hpsched-http-docs-")
        server = start_server(tmp, name="docs")
        try:
            for line in examples:
                with self.subTest(line=line):
                    argv = [a.replace("http://localhost:8080/", f"http://127.0.0.1:{server.http_port}/")
                            for a in shlex.split(line)]
                    r = subprocess.run([*argv, "--fail-with-body", "--max-time", str(TIMEOUT)], capture_output=True,
                                       text=True, timeout=TIMEOUT + 5)
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                    json.loads(r.stdout)
        finally:
            self.assertEqual(server.stop(), 0)
            shutil.rmtree(tmp, ignore_errors=True)

    def test_docs_http_md(self):
        self.run_examples(os.path.join("docs", "http.md"), 8)

    def test_readme(self):
        self.run_examples("README.md", 3)


class HttpSecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-http-sec-")
        security_test.make_certs(cls.tmp)
        cls.tokens = os.path.join(cls.tmp, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("".join(f"{role} {token}\n" for role, token in TOKENS.items()))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def roles(self, port, context=None):
        def client(role):
            return Http(port, context, TOKENS.get(role))
        job = {"hyperparameters": [{"name": "lr", "baseValues": [0.1], "schedule": {"constant": {}}}]}
        status, got = client(None).call("GET", "/v1/jobs")
        self.assertEqual((status, got["code"]), (401, 16))
        self.assertIn("authorization", got["message"])
        status, got = Http(port, context, "wrong-token-0123456789abcdef").call("GET", "/v1/jobs")
        self.assertEqual((status, got["code"]), (401, 16))
        status, got = client("reader").call("POST", "/v1/jobs?job_id=sec-1", job)
        self.assertEqual((status, got["code"]), (403, 7))
        self.assertIn("needs role admin, the token has role reader", got["message"])
        status, got = client("trainer").call("PATCH", "/v1/jobs/sec-1", {"updates": []})
        self.assertEqual((status, got["code"]), (403, 7))
        self.assertEqual(client("admin").call("POST", "/v1/jobs?job_id=sec-1", job)[0], 200)
        self.assertEqual(client("reader").call("GET", "/v1/jobs/sec-1")[0], 200)
        self.assertEqual(client("reader").call("GET", "/v1/jobs/sec-1:values?count=3")[0], 200)
        self.assertEqual(client("reader").call("POST", "/v1/preview", {"schedule": {"constant": {}}})[0], 200)
        status, got = client("reader").call("POST", "/v1/jobs/sec-1:reportMetrics", {"step": "1"})
        self.assertEqual((status, got["code"]), (403, 7))
        # Pages need a reader token too.
        status, got = client(None).call("GET", "/")
        self.assertEqual((status, got["code"]), (401, 16))
        self.assertEqual(client("reader").raw("GET", "/")[0], 200)
        self.assertEqual(client(None).call("GET", "/metrics")[0], 401)
        self.assertEqual(client("reader").raw("GET", "/metrics")[0], 200)
        # The cookie (for browsers) authorizes reads, pages and streams, but never a write.
        cookie = {"Cookie": f"theme=dark; hpsched_token={TOKENS['admin']}"}
        self.assertEqual(client(None).raw("GET", "/", headers=cookie)[0], 200)
        self.assertEqual(client(None).raw("GET", "/v1/jobs/sec-1", headers=cookie)[0], 200)
        status, got = client(None).call("DELETE", "/v1/jobs/sec-1", headers=cookie)
        self.assertEqual((status, got["code"]), (401, 16))
        self.assertEqual(client("admin").call("DELETE", "/v1/jobs/sec-1"), (200, {}))

    def test_tokens_and_roles(self):
        server = start_server(self.tmp, f"--auth_token_file={self.tokens}", name="tokens")
        try:
            self.roles(server.http_port)
            log = server.log_text()
            for token in TOKENS.values():
                self.assertNotIn(token, log)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_tls_and_mutual_tls(self):
        ca = os.path.join(self.tmp, "ca.pem")
        tls = [f"--tls_cert={self.tmp}/server.pem", f"--tls_key={self.tmp}/server.key"]
        server = start_server(self.tmp, *tls, f"--auth_token_file={self.tokens}", name="tls")
        try:
            context = ssl.create_default_context(cafile=ca)
            self.roles(server.http_port, context)
            # Plaintext on the TLS port gets no HTTP answer.
            with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
                Http(server.http_port).call("GET", "/v1/jobs")
            # A client that does not trust the CA refuses the server.
            with self.assertRaises(ssl.SSLError):
                Http(server.http_port, ssl.create_default_context()).call("GET", "/v1/jobs")
        finally:
            self.assertEqual(server.stop(), 0)
        server = start_server(self.tmp, *tls, f"--tls_client_ca={ca}", name="mtls")
        try:
            context = ssl.create_default_context(cafile=ca)
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                Http(server.http_port, context).call("GET", "/v1/jobs")
            context.load_cert_chain(os.path.join(self.tmp, "client.pem"), os.path.join(self.tmp, "client.key"))
            self.assertEqual(Http(server.http_port, context).call("GET", "/v1/jobs"),
                             (200, {"jobs": [], "nextPageToken": ""}))
        finally:
            self.assertEqual(server.stop(), 0)

    def test_request_body_bound(self):
        server = start_server(self.tmp, "--max_request_bytes=65536", name="bound")
        try:
            body = json.dumps({"schedule": {"constant": {}}, "baseValues": [0.5] * 20000})
            self.assertGreater(len(body), 65536)
            status, got = Http(server.http_port).call("POST", "/v1/preview", body)
            self.assertEqual((status, got["code"]), (413, 8))
            self.assertIn("--max_request_bytes", got["message"])
            # A header over cpp-httplib's 8 KiB line limit.
            status, _, _ = Http(server.http_port).raw("GET", "/v1/jobs", headers={"X-Big": "a" * 10000})
            self.assertEqual(status, 400)
            # The server is fine.
            self.assertEqual(Http(server.http_port).call("GET", "/v1/jobs")[0], 200)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_listener_rules(self):
        # The loopback rule: without tokens, a non-loopback HTTP address is refused by name.
        r = __import__("subprocess").run(
            [os.path.join(BUILD, "server", "hpsched-server"), "--store=memory", "--address=127.0.0.1", "--port=0",
             "--metrics_port=0", f"--http_port={free_port()}", "--http_address=0.0.0.0"],
            capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--http_address=0.0.0.0: authentication is off", r.stdout + r.stderr)
        # A port another process holds is refused before anything starts.
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            r = __import__("subprocess").run(
                [os.path.join(BUILD, "server", "hpsched-server"), "--store=memory", "--address=127.0.0.1",
                 "--port=0", "--metrics_port=0", f"--http_port={port}"],
                capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("another process holds this port", r.stdout + r.stderr)
        self.assertIn("--http_port", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest_main()
