#!/usr/bin/env python3
"""TLS, mutual TLS and bearer-token roles through real clients (Python grpcio, and buf curl for the open services).

Usage: /usr/bin/python3 security_test.py BUILD_DIR

Certificates come from openssl at test time (a CA, a server certificate for 127.0.0.1, a client certificate).
Every role is tried on every SchedulerService method, with and without TLS: reader may read, admin may do
everything, a missing or unknown token is UNAUTHENTICATED, a token of too low a role is PERMISSION_DENIED. Health and
reflection stay open. No token appears in the server's log.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402  (stub generation)
from server_process import ServerProcess, read, unittest_main  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(REPO, "build")
BUF = os.path.join(REPO, "tools", "node_modules", ".bin", "buf")
TOKENS = {"reader": "reader-token-0123456789abcdef", "trainer": "trainer-token-0123456789abcdef",
          "admin": "admin-token-0123456789abcdef"}
# The least role each method needs.
NEEDS = {"CreateJob": "admin", "DeleteJob": "admin", "GetJob": "reader", "ListJobs": "reader",
         "GetValues": "reader", "BatchGetValues": "reader", "Preview": "reader", "WatchJob": "reader",
         "ReportMetrics": "trainer", "UpdateJob": "admin"}
RANK = {"reader": 0, "trainer": 1, "admin": 2}


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hpsched test CA",
        "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=hpsched {name}", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


def call(stub, method, request, metadata):
    """Calls `method`; for the WatchJob stream, reads its first event and cancels it."""
    if method == "WatchJob":
        stream = stub.WatchJob(request, metadata=metadata, timeout=10)
        next(stream)
        stream.cancel()
        return
    getattr(stub, method)(request, metadata=metadata, timeout=10)


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-security-")
        make_certs(cls.tmp)
        cls.tokens = os.path.join(cls.tmp, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("# role token\n" + "".join(f"{role} {token}\n" for role, token in TOKENS.items()))
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    def requests(self, job_id):
        pb, svc, sched = self.pb, self.svc, self.sched
        job = pb.Job(hyperparameters=[pb.Hyperparameter(
            name="lr", base_values=[0.1], schedule=sched.Schedule(step=sched.StepSchedule(step_size=10)))],
            metrics=[pb.MetricSpec(name="loss", every_steps=10)])
        return [
            ("CreateJob", svc.CreateJobRequest(job_id=job_id, job=job)),
            ("GetJob", svc.GetJobRequest(name=f"jobs/{job_id}")),
            ("ListJobs", svc.ListJobsRequest()),
            ("GetValues", svc.GetValuesRequest(job=f"jobs/{job_id}", step=10)),
            ("BatchGetValues", svc.BatchGetValuesRequest(requests=[svc.GetValuesRequest(job=f"jobs/{job_id}")])),
            ("Preview", svc.PreviewRequest(schedule=job.hyperparameters[0].schedule)),
            ("WatchJob", svc.WatchJobRequest(job=f"jobs/{job_id}")),
            ("ReportMetrics", svc.ReportMetricsRequest(job=f"jobs/{job_id}", step=9, metrics={"loss": 1.0})),
            ("UpdateJob", svc.UpdateJobRequest(name=f"jobs/{job_id}", updates=[svc.HyperparameterUpdate(
                hyperparameter="lr", segment=pb.Segment(effective_step=1000, scale=0.5))])),
            ("DeleteJob", svc.DeleteJobRequest(name=f"jobs/{job_id}")),
        ]

    def role_matrix(self, channel):
        stub = self.svc_grpc.SchedulerServiceStub(channel)
        StatusCode = self.grpc.StatusCode
        admin = [("authorization", f"Bearer {TOKENS['admin']}")]
        for role, token in TOKENS.items():
            job_id = f"job-{role}"
            # The admin makes the job each role then reads, so reads find it.
            stub.CreateJob(self.svc.CreateJobRequest(job_id=job_id, job=self.requests(job_id)[0][1].job),
                           metadata=admin, timeout=10)
            for method, request in self.requests(job_id):
                with self.subTest(role=role, method=method):
                    try:
                        call(stub, method, request, [("authorization", f"Bearer {token}")])
                        code = StatusCode.OK
                    except self.grpc.RpcError as e:
                        code = e.code()
                        if code == StatusCode.PERMISSION_DENIED:
                            self.assertIn(f"needs role {NEEDS[method]}", e.details())
                    allowed = RANK[role] >= RANK[NEEDS[method]]
                    self.assertEqual(code, StatusCode.OK if allowed else StatusCode.PERMISSION_DENIED)
            stub.DeleteJob(self.svc.DeleteJobRequest(name=f"jobs/{job_id}"), metadata=admin, timeout=10) \
                if RANK[role] < RANK["admin"] else None
        for metadata, why in (([], "no token"), ([("authorization", "Bearer not-a-known-token-000000")], "unknown"),
                              ([("authorization", TOKENS["admin"])], "no Bearer prefix")):
            for method, request in self.requests("job-x"):
                with self.subTest(method=method, why=why):
                    with self.assertRaises(self.grpc.RpcError) as raised:
                        call(stub, method, request, metadata)
                    self.assertEqual(raised.exception.code(), StatusCode.UNAUTHENTICATED)

    def health(self, channel):
        response = channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
        self.assertEqual(response, b"\x08\x01")  # HealthCheckResponse{status: SERVING}

    def test_plaintext_with_tokens(self):
        server = ServerProcess(BUILD, self.tmp, "--store=memory", f"--auth_token_file={self.tokens}", name="plain")
        try:
            with self.grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                self.role_matrix(channel)
                self.health(channel)
            # buf curl, a client we did not write: reflection and health need no token.
            url = f"http://127.0.0.1:{server.port}"
            out = subprocess.run([BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", url],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("hpsched.v1.SchedulerService/GetValues", out.stdout)
            out = subprocess.run([BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H",
                                  f"authorization: Bearer {TOKENS['reader']}", "-d", '{"job": "jobs/none"}',
                                  f"{url}/hpsched.v1.SchedulerService/GetValues"],
                                 capture_output=True, text=True, timeout=60)
            self.assertIn("not_found", out.stdout + out.stderr)
        finally:
            self.assertEqual(server.stop(), 0)
        log = read(server.log_path)
        for token in TOKENS.values():
            self.assertNotIn(token, log)

    def test_tls_with_tokens(self):
        server = ServerProcess(BUILD, self.tmp, "--store=memory", f"--auth_token_file={self.tokens}",
                               f"--tls_cert={self.tmp}/server.pem", f"--tls_key={self.tmp}/server.key", name="tls")
        try:
            creds = self.grpc.ssl_channel_credentials(root_certificates=read(f"{self.tmp}/ca.pem", "rb"))
            with self.grpc.secure_channel(f"127.0.0.1:{server.port}", creds) as channel:
                self.role_matrix(channel)
                self.health(channel)
            with self.grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                with self.assertRaises(self.grpc.RpcError) as raised:
                    self.svc_grpc.SchedulerServiceStub(channel).ListJobs(self.svc.ListJobsRequest(), timeout=5)
                self.assertEqual(raised.exception.code(), self.grpc.StatusCode.UNAVAILABLE)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_cli_with_tls_and_token(self):
        server = ServerProcess(BUILD, self.tmp, "--store=memory", f"--auth_token_file={self.tokens}",
                               f"--tls_cert={self.tmp}/server.pem", f"--tls_key={self.tmp}/server.key", name="cli")
        token_file = os.path.join(self.tmp, "admin.token")
        with open(token_file, "w") as f:
            f.write(TOKENS["admin"] + "\n")
        cli = [os.path.join(BUILD, "client", "hpsched"), f"--target={server.address}", f"--tls_ca={self.tmp}/ca.pem"]
        try:
            def run_cli(*args, env=None):
                return subprocess.run(cli + list(args), capture_output=True, text=True, timeout=60,
                                      env=dict(os.environ, **(env or {})))
            out = run_cli("health")
            self.assertEqual((out.returncode, out.stdout.strip()), (0, "SERVING"), out.stderr)
            out = run_cli("create", "cli-job", "--schedule", '{"step": {"step_size": 3}}', "--base", "0.1",
                          f"--token_file={token_file}")
            self.assertEqual(out.returncode, 0, out.stderr)
            out = run_cli("values", "cli-job", "--steps", "2:4", env={"HPSCHED_TOKEN": TOKENS["reader"]})
            self.assertEqual(out.stdout.split(), ["step", "lr/0", "2", "0.1", "3", "0.010000000000000002"])
            out = run_cli("list")
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("UNAUTHENTICATED", out.stderr)
            out = run_cli("delete", "cli-job", env={"HPSCHED_TOKEN": TOKENS["reader"]})
            self.assertIn("PERMISSION_DENIED", out.stderr)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_mutual_tls(self):
        server = ServerProcess(BUILD, self.tmp, "--store=memory", f"--tls_cert={self.tmp}/server.pem",
                               f"--tls_key={self.tmp}/server.key", f"--tls_client_ca={self.tmp}/ca.pem", name="mtls")
        try:
            ca = read(f"{self.tmp}/ca.pem", "rb")
            with_cert = self.grpc.ssl_channel_credentials(root_certificates=ca,
                                                          private_key=read(f"{self.tmp}/client.key", "rb"),
                                                          certificate_chain=read(f"{self.tmp}/client.pem", "rb"))
            with self.grpc.secure_channel(f"127.0.0.1:{server.port}", with_cert) as channel:
                self.svc_grpc.SchedulerServiceStub(channel).ListJobs(self.svc.ListJobsRequest(), timeout=10)
            without = self.grpc.ssl_channel_credentials(root_certificates=ca)
            with self.grpc.secure_channel(f"127.0.0.1:{server.port}", without) as channel:
                with self.assertRaises(self.grpc.RpcError) as raised:
                    self.svc_grpc.SchedulerServiceStub(channel).ListJobs(self.svc.ListJobsRequest(), timeout=5)
                self.assertEqual(raised.exception.code(), self.grpc.StatusCode.UNAVAILABLE)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_bad_settings_are_clear_errors(self):
        bad_tokens = os.path.join(self.tmp, "bad-tokens")
        with open(bad_tokens, "w") as f:
            f.write("superuser abcdefghijklmnopqrstuvwxyz\n")
        for flags, message in (([f"--auth_token_file={bad_tokens}"], "role must be reader, trainer or admin"),
                               ([f"--tls_cert={self.tmp}/server.pem"], "--tls_cert and --tls_key: set both"),
                               (["--auth_token_file=/nonexistent"], "--auth_token_file: cannot read")):
            out = subprocess.run([os.path.join(BUILD, "server", "hpsched-server"), "--address=127.0.0.1", "--port=0",
                                  "--store=memory", "--metrics_port=0", "--http_port=0", *flags],
                                 capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn(message, out.stdout + out.stderr)
            self.assertNotIn("abcdefghijklmnopqrstuvwxyz", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest_main()
