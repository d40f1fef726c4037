#!/usr/bin/env python3
"""The server process: its listeners (a port another process holds is refused, gRPC, metrics and health alike),
loopback without authentication, TLS files checked by name, the plaintext health-only port, --help, and what it
says at start and at shutdown.

Usage: /usr/bin/python3 listeners_test.py BUILD_DIR

Every server here is a real hpsched-server on loopback; a second server that should refuse to start is run with a
deadline, so a server that starts anyway (the old SO_REUSEPORT behaviour) fails the test instead of hanging it.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402
from security_test import BUILD, make_certs  # noqa: E402
from server_process import ServerProcess, read  # noqa: E402

SERVER = os.path.join(BUILD, "server", "hpsched-server")
HELD = "another process holds this port"
# grpc.health.v1.HealthCheckResponse{status: SERVING} on the wire.
SERVING = b"\x08\x01"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_server(*flags, timeout=15, env=None):
    """Runs hpsched-server to its exit (it is expected to refuse to start); a server still running at the deadline
    is killed and reported as such."""
    # HTTP off unless asked for (a later flag wins): its fixed default port would collide between tests.
    flags = ("--http_port=0", *flags)
    try:
        r = subprocess.run([SERVER, *flags], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, **(env or {})))
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() + (e.stderr or b"").decode() if isinstance(e.stdout, bytes) else \
            (e.stdout or "") + (e.stderr or "")
        raise AssertionError(f"hpsched-server {' '.join(flags)} was still running after {timeout} s "
                             f"(it should have refused to start):\n{out}")
    return r.returncode, r.stdout + r.stderr


def listening_hosts(port):
    """The local addresses with a listening TCP socket on `port`, from /proc/net/tcp and tcp6."""
    hosts = set()
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(path):
            continue
        for line in read(path).splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            if width == 8:
                hosts.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:  # four host-order 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                host = socket.inet_ntop(socket.AF_INET6, words)
                # gRPC binds an IPv4 address as an IPv4-mapped IPv6 socket.
                hosts.add(host[len("::ffff:"):] if host.startswith("::ffff:") and "." in host else host)
    return hosts


class ListenersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.tmp = tempfile.mkdtemp(prefix="hpsched-listeners-")
        cls.stub_tmp, cls.pb, cls.sched, cls.svc, cls.svc_grpc = grpcio_golden.import_stubs()
        cls.tokens = os.path.join(cls.tmp, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("admin admin-token-0123456789abcdef\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.stub_tmp:
            shutil.rmtree(cls.stub_tmp, ignore_errors=True)

    def job(self):
        job = self.pb.Job()
        job.hyperparameters.add(name="lr", base_values=[0.1]).schedule.constant.SetInParent()
        return job

    def health(self, address, service="", credentials=None):
        channel = (self.grpc.secure_channel(address, credentials) if credentials
                   else self.grpc.insecure_channel(address))
        with channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            request = b"\x0a" + bytes([len(service)]) + service.encode() if service else b""
            return check(request, timeout=10)

    # -- a port another process holds ------------------------------------------------------------------------------

    def test_second_server_on_the_grpc_port_refuses_and_the_first_gets_every_job(self):
        a = ServerProcess(BUILD, self.tmp, "--store=memory", name="grpc-a")
        try:
            code, out = run_server("--store=memory", "--address=127.0.0.1", f"--port={a.port}", "--metrics_port=0")
            self.assertNotEqual(code, 0, out)
            self.assertIn(f"cannot listen on 127.0.0.1:{a.port} (gRPC): {HELD}", out)
            # Every job goes to A, each through a new connection (the kernel would have split those).
            for i in range(6):
                with self.grpc.insecure_channel(a.address) as channel:
                    stub = self.svc_grpc.SchedulerServiceStub(channel)
                    stub.CreateJob(self.svc.CreateJobRequest(job_id=f"job-{i}", job=self.job()), timeout=10)
            with self.grpc.insecure_channel(a.address) as channel:
                jobs = self.svc_grpc.SchedulerServiceStub(channel).ListJobs(self.svc.ListJobsRequest(), timeout=10)
            self.assertEqual(sorted(j.name for j in jobs.jobs), [f"jobs/job-{i}" for i in range(6)])
        finally:
            self.assertEqual(a.stop(), 0)

    def test_second_server_on_the_metrics_port_refuses(self):
        metrics = free_port()
        a = ServerProcess(BUILD, self.tmp, "--store=memory", f"--metrics_port={metrics}",
                          "--metrics_address=127.0.0.1", name="metrics-a")
        try:
            code, out = run_server("--store=memory", "--address=127.0.0.1", "--port=0",
                                   f"--metrics_port={metrics}", "--metrics_address=127.0.0.1")
            self.assertNotEqual(code, 0, out)
            self.assertIn(f"cannot listen on 127.0.0.1:{metrics} (metrics): {HELD} (address already in use); stop it or "
                          "choose another --metrics_port", out)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as r:
                self.assertIn("hpsched_jobs", r.read().decode())
        finally:
            self.assertEqual(a.stop(), 0)

    def test_second_server_on_the_health_port_refuses(self):
        health = free_port()
        a = ServerProcess(BUILD, self.tmp, "--store=memory", f"--health_port={health}", "--health_address=127.0.0.1",
                          name="health-a")
        try:
            code, out = run_server("--store=memory", "--address=127.0.0.1", "--port=0", "--metrics_port=0",
                                   f"--health_port={health}", "--health_address=127.0.0.1")
            self.assertNotEqual(code, 0, out)
            self.assertIn(f"cannot listen on 127.0.0.1:{health} (health): {HELD}", out)
            self.assertEqual(self.health(f"127.0.0.1:{health}"), SERVING)
        finally:
            self.assertEqual(a.stop(), 0)

    # -- safe defaults -----------------------------------------------------------------------------------------------

    def test_without_auth_only_loopback_is_served(self):
        metrics = free_port()
        port_file = os.path.join(self.tmp, "loopback.port")
        # No --address, no --metrics_address (ServerProcess would pass --address=127.0.0.1): the flags' defaults
        # ([::]) would be every interface.
        log_path = os.path.join(self.tmp, "loopback.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([SERVER, "--store=memory", "--port=0", f"--port_file={port_file}",
                                     f"--metrics_port={metrics}", "--http_port=0"], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 15
            while not (os.path.exists(port_file) and read(port_file).strip()):
                self.assertIsNone(proc.poll(), read(log_path))
                self.assertLess(time.time(), deadline, read(log_path))
                time.sleep(0.02)
            port = int(read(port_file))
            self.assertEqual(listening_hosts(port), {"127.0.0.1"})
            self.assertEqual(listening_hosts(metrics), {"127.0.0.1"})
            self.assertIn("authentication is off (no --auth_token_file): listening on loopback only", read(log_path))
            self.assertEqual(self.health(f"127.0.0.1:{port}"), SERVING)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(timeout=15), 0)

    def test_an_open_address_without_auth_is_refused(self):
        for flags, flag in ((["--address=0.0.0.0", "--metrics_port=0"], "--address=0.0.0.0"),
                            (["--address=127.0.0.1", f"--metrics_port={free_port()}", "--metrics_address=0.0.0.0"],
                             "--metrics_address=0.0.0.0")):
            with self.subTest(flag):
                code, out = run_server("--store=memory", "--port=0", *flags)
                self.assertNotEqual(code, 0, out)
                self.assertIn(f"{flag}: authentication is off (no --auth_token_file), so only loopback addresses "
                              "are served; set --auth_token_file, or --allow_unauthenticated_remote", out)
        # Metrics that are off bind nothing: their address is not refused.
        server = ServerProcess(BUILD, self.tmp, "--store=memory", "--metrics_address=0.0.0.0", name="metrics-off")
        self.assertEqual(server.stop(), 0)
        # The same from the environment (as containers set it).
        code, out = run_server("--store=memory", "--port=0", "--metrics_port=0", env={"HPSCHED_ADDRESS": "[::]"})
        self.assertNotEqual(code, 0, out)
        self.assertIn("--address=[::]: authentication is off", out)

    # -- TLS files -----------------------------------------------------------------------------------------------------

    def test_tls_files_are_checked_by_name(self):
        d = os.path.join(self.tmp, "certs")
        os.makedirs(d, exist_ok=True)
        make_certs(d)
        p = lambda name: os.path.join(d, name)  # noqa: E731
        with open(p("garbage.pem"), "w") as f:
            f.write("not a certificate\n")
        cert, key, ca = p("server.pem"), p("server.key"), p("ca.pem")
        cases = [
            ("key of another certificate", [f"--tls_cert={cert}", f"--tls_key={p('client.key')}"],
             f"--tls_key: {p('client.key')} does not match the certificate in --tls_cert {cert}"),
            ("missing client CA", [f"--tls_cert={cert}", f"--tls_key={key}", f"--tls_client_ca={p('none.pem')}"],
             f"--tls_client_ca: cannot read {p('none.pem')}: No such file or directory"),
            ("client CA that is no certificate",
             [f"--tls_cert={cert}", f"--tls_key={key}", f"--tls_client_ca={p('garbage.pem')}"],
             f"--tls_client_ca: {p('garbage.pem')} holds no PEM certificate"),
            ("certificate that is no certificate", [f"--tls_cert={p('garbage.pem')}", f"--tls_key={key}"],
             f"--tls_cert: {p('garbage.pem')} holds no PEM certificate"),
            ("key that is no key", [f"--tls_cert={cert}", f"--tls_key={p('garbage.pem')}"],
             f"--tls_key: {p('garbage.pem')} holds no PEM private key"),
            ("missing key", [f"--tls_cert={cert}", f"--tls_key={p('none.key')}"],
             f"--tls_key: cannot read {p('none.key')}: No such file or directory"),
            ("a key as the certificate", [f"--tls_cert={key}", f"--tls_key={key}"],
             f"--tls_cert: {key} holds no PEM certificate"),
        ]
        for name, flags, message in cases:
            with self.subTest(name):
                code, out = run_server("--store=memory", "--address=127.0.0.1", "--port=0", "--metrics_port=0",
                                       *flags)
                self.assertNotEqual(code, 0, out)
                self.assertIn(message, out)
                self.assertNotIn("cannot listen on", out)
        # The right files still start a TLS server (and its CA still verifies it).
        server = ServerProcess(BUILD, self.tmp, "--store=memory", f"--tls_cert={cert}", f"--tls_key={key}",
                               f"--tls_client_ca={ca}", name="tls-ok")
        self.assertEqual(server.stop(), 0)

    def test_plaintext_health_port_beside_tls(self):
        d = os.path.join(self.tmp, "certs-health")
        os.makedirs(d, exist_ok=True)
        make_certs(d)
        health = free_port()
        server = ServerProcess(BUILD, self.tmp, "--store=memory", f"--tls_cert={d}/server.pem",
                               f"--tls_key={d}/server.key", f"--health_port={health}", "--health_address=127.0.0.1",
                               name="tls-health")
        try:
            self.assertIn(f"health only (plaintext grpc.health.v1) on 127.0.0.1:{health}", read(server.log_path))
            # What Kubernetes' native probes send: plaintext, overall and for the service.
            self.assertEqual(self.health(f"127.0.0.1:{health}"), SERVING)
            self.assertEqual(self.health(f"127.0.0.1:{health}", "hpsched.v1.SchedulerService"), SERVING)
            with self.assertRaises(self.grpc.RpcError) as unknown:
                self.health(f"127.0.0.1:{health}", "no.such.Service")
            self.assertEqual(unknown.exception.code(), self.grpc.StatusCode.NOT_FOUND)
            # Only health: the scheduler is not served there.
            with self.grpc.insecure_channel(f"127.0.0.1:{health}") as channel:
                with self.assertRaises(self.grpc.RpcError) as other:
                    self.svc_grpc.SchedulerServiceStub(channel).ListJobs(self.svc.ListJobsRequest(), timeout=10)
                self.assertEqual(other.exception.code(), self.grpc.StatusCode.UNIMPLEMENTED)
            # The main port still speaks TLS only.
            creds = self.grpc.ssl_channel_credentials(root_certificates=read(f"{d}/ca.pem", "rb"))
            self.assertEqual(self.health(server.address, credentials=creds), SERVING)
        finally:
            self.assertEqual(server.stop(), 0)

    # -- flags, start and shutdown ---------------------------------------------------------------------------------

    def test_help_lists_every_server_flag_with_its_default(self):
        full = subprocess.run([SERVER, "--helpfull"], capture_output=True, text=True, timeout=30, env={})
        section = re.search(r"Flags from \S*server/main\.cc:\n(.*?)(?:\n\n|\Z)", full.stdout + full.stderr, re.S)
        self.assertIsNotNone(section, full.stdout[:2000])
        names = re.findall(r"^ {4}--([a-z0-9_]+) \(", section.group(1), re.M)
        self.assertGreater(len(names), 25)
        for flag in ("help", "helpshort"):
            with self.subTest(flag):
                r = subprocess.run([SERVER, f"--{flag}"], capture_output=True, text=True, timeout=30, env={})
                text = r.stdout + r.stderr
                listed = re.findall(r"^ {4}--([a-z0-9_]+) \(", text, re.M)
                self.assertEqual(sorted(listed), sorted(names), text[:3000])
                self.assertEqual(text.count("default:"), len(names))

    def test_data_dir_with_the_memory_store_is_refused(self):
        code, out = run_server("--store=memory", f"--data_dir={self.tmp}/unused", "--address=127.0.0.1", "--port=0",
                               "--metrics_port=0")
        self.assertEqual(code, 2, out)
        self.assertIn(f"--data_dir={self.tmp}/unused: has no effect with --store=memory", out)
        self.assertFalse(os.path.exists(f"{self.tmp}/unused"))
        # From the environment (where a ConfigMap sets every variable) it is a warning.
        server = ServerProcess(BUILD, self.tmp, "--store=memory", name="memory-env",
                               env={"HPSCHED_DATA_DIR": f"{self.tmp}/unused"})
        self.assertEqual(server.stop(), 0)
        self.assertIn(f"HPSCHED_DATA_DIR={self.tmp}/unused is ignored: --store=memory keeps nothing on disk",
                      read(server.log_path))

    def test_served_steps_are_written_once_at_shutdown_and_not_for_the_memory_store(self):
        for store in ("sqlite", "memory"):
            with self.subTest(store):
                flags = [f"--store={store}"]
                if store == "sqlite":
                    flags.append(f"--data_dir={self.tmp}/data-{store}")
                server = ServerProcess(BUILD, self.tmp, *flags, name=f"marks-{store}")
                with self.grpc.insecure_channel(server.address) as channel:
                    stub = self.svc_grpc.SchedulerServiceStub(channel)
                    stub.CreateJob(self.svc.CreateJobRequest(job_id="j", job=self.job()), timeout=10)
                    stub.GetValues(self.svc.GetValuesRequest(job="jobs/j", step=0, count=100), timeout=10)
                self.assertEqual(server.stop(), 0)
                self.assertEqual(read(server.log_path).count("wrote the served steps"), 1 if store == "sqlite" else 0,
                                 read(server.log_path))


if __name__ == "__main__":
    unittest.main(verbosity=2)
