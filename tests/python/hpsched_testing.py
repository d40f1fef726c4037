"""Shared fixture of the Python tests: a real hpsched-server on a free loopback port, stopped at the end.

    with ServerProcess() as server:           # or: class T(ServerTestCase): ... self.server / self.client
        client = Client(server.target)

The server binary is $HPSCHED_SERVER, else <build>/server/hpsched-server where <build>/python is on PYTHONPATH (the
directory CMake builds the package into). The server gets SIGTERM when the test ends, also when it fails or raises,
and dies with the test process (setpriv --pdeathsig) if that is killed (e.g. by ctest's timeout).

Logs: each server writes its log into its temporary directory. When a test fails while the server is up, or the
server exits by itself, the log is copied to $HPSCHED_TEST_LOG_DIR (CMake sets <build>/tests/python/logs/<test>) and
its tail printed to stderr; ServerTestCase fails the test during which the class's server went away, with its exit
status. Ports: servers bind port 0 and report theirs in a port file; a test that needs a port nothing listens on
holds one with closed_port() (bound, never listening: connections are refused and no other process can take it).
"""
from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from collections.abc import Iterator
from typing import Optional

import hpsched

START_TIMEOUT = 10.0  # seconds for the server to write its port file
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL

_live: list["ServerProcess"] = []


def server_binary() -> str:
    path = os.environ.get("HPSCHED_SERVER")
    if not path:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(hpsched.__file__)))  # <build>/python
        path = os.path.join(os.path.dirname(package_parent), "server", "hpsched-server")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"hpsched-server not found at {path} (set HPSCHED_SERVER)")
    return path


def free_port() -> int:
    """A loopback TCP port nothing listens on right now. Another process may take it as soon as this returns (a
    server binding port 0 can be given it): prefer closed_port() for a port that must stay dead, and port 0 with a
    port file for a server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port held bound but never listening, for as long as the block runs: connecting to it is refused
    (UNAVAILABLE), and no other process can listen on it meanwhile (the socket has neither SO_REUSEADDR nor
    SO_REUSEPORT, so neither a bind to port 0 nor gRPC's SO_REUSEPORT bind gets it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def _die_with_parent() -> list[str]:
    """A command prefix that makes the child get SIGTERM when the test process dies (util-linux's setpriv).

    Not a preexec_fn calling prctl: a preexec_fn makes subprocess fork() instead of vfork(), and grpcio's fork
    handlers then wait forever for the thread pool to idle while another thread has a call in flight.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class ServerProcess:
    """hpsched-server --address=127.0.0.1 --port=PORT (0 = a free one, read back from --port_file)."""

    def __init__(self, port: int = 0, extra_args: tuple[str, ...] = (), name: str = "server"):
        self.requested_port = port
        self.extra_args = tuple(extra_args)
        self.name = name
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None
        self._dir: Optional[tempfile.TemporaryDirectory] = None
        self.log_path = ""
        self.failed_tests: list[str] = []  # tests that failed while this server was up (see main)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        self._dir = tempfile.TemporaryDirectory(prefix="hpsched-pytest-")
        port_file = os.path.join(self._dir.name, "port")
        self.log_path = os.path.join(self._dir.name, "server.log")
        # Settings through HPSCHED_* variables, which a server without the flag ignores (flags would be errors):
        # - the memory store: a fresh, private state per server. The default is a SQLite store in /var/lib/hpsched,
        #   shared by every server on the machine (and locked by one of them); HPSCHED_DATA_DIR keeps even that
        #   inside this server's temporary directory should the memory store not be picked up;
        # - metrics and HTTP off: their fixed default ports would collide between servers of tests running in
        #   parallel.
        env = dict(os.environ, HPSCHED_STORE="memory", HPSCHED_DATA_DIR=os.path.join(self._dir.name, "data"),
                   HPSCHED_METRICS_PORT="0", HPSCHED_HTTP_PORT="0")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*_die_with_parent(), server_binary(), "--address=127.0.0.1", f"--port={self.requested_port}",
                 f"--port_file={port_file}", "--log_level=info", *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        _live.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read().strip()
                if text.isdigit() and int(text) > 0:
                    self.port = int(text)
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        log = self.log()
        self.stop()
        raise RuntimeError(f"hpsched-server did not write its port file within {START_TIMEOUT} s; log:\n{log}")

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def exit_status(self) -> Optional[str]:
        """None while the server runs, else how it ended ("exit code 1", "signal SIGKILL")."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        if code < 0:
            try:
                return f"signal {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"

    def keep_log(self, reason: str) -> str:
        """Copies the log to $HPSCHED_TEST_LOG_DIR (if set) and prints its tail to stderr; returns where it is."""
        kept = self.log_path
        log_dir = os.environ.get("HPSCHED_TEST_LOG_DIR")
        if log_dir and self.log_path and os.path.exists(self.log_path):
            os.makedirs(log_dir, exist_ok=True)
            pid = self.process.pid if self.process is not None else 0
            kept = os.path.join(log_dir, f"{self.name}-port{self.port}-pid{pid}.log")
            shutil.copyfile(self.log_path, kept)
        print(f"\n--- hpsched-server {self.target} ({reason}); log kept at {kept}; its last lines:\n{self.log()}"
              f"\n--- end of the server log", file=sys.stderr, flush=True)
        return kept

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code. Keeps the log (see keep_log) if a test
        failed while the server was up or if it had exited by itself."""
        code = None
        died = None
        if self.process is not None:
            died = self.exit_status()
            if died is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
        if self in _live:
            _live.remove(self)
        if died is not None:
            self.keep_log(f"it had exited by itself: {died}")
        elif self.failed_tests:
            self.keep_log(f"failed while it was up: {', '.join(self.failed_tests)}")
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        return code

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()


class ServerTestCase(unittest.TestCase):
    """Starts one server for the class (self.server, self.target) and a Client on it (self.client).

    Every test checks that the class's server is still up before and after it: the test during which it went away
    fails, naming its exit status; the tests after it fail at once with the same message.
    """

    server: ServerProcess
    client: hpsched.Client

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = ServerProcess().start()
        cls.addClassCleanup(cls.server.stop)
        cls.target = cls.server.target
        cls.client = hpsched.Client(cls.target, timeout=30.0)
        cls.addClassCleanup(cls.client.close)

    def setUp(self) -> None:
        super().setUp()
        self._check_server("before this test")
        self.addCleanup(self._check_server, "during this test")

    def _check_server(self, when: str) -> None:
        status = self.server.exit_status()
        if status is not None:
            self.fail(f"the class's hpsched-server {self.target} went away {when} ({status}); its log:\n"
                      f"{self.server.log()}")


def main() -> None:
    """unittest.main with verbose output; exits non-zero if a test fails (SIGTERM runs the cleanups too).

    With HPSCHED_TEST_TIMEOUT=S (ctest's TIMEOUT), a run still going after S - 10 seconds prints every thread's
    traceback and exits 1 (the server dies with the process), instead of being killed silently by ctest.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    timeout = float(os.environ.get("HPSCHED_TEST_TIMEOUT", "0") or 0)
    if timeout > 20:
        faulthandler.dump_traceback_later(timeout - 10, exit=True)
    unittest.main(verbosity=2, testRunner=unittest.TextTestRunner(verbosity=2, resultclass=_KeepLogsResult))


def _mark_failed(test: unittest.TestCase) -> None:
    for server in list(_live):
        server.failed_tests.append(test.id().rsplit(".", 1)[-1])


class _KeepLogsResult(unittest.TextTestResult):
    """Marks every live server when a test fails, so that stop() keeps and prints its log."""

    def addError(self, test, err):
        super().addError(test, err)
        _mark_failed(test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        _mark_failed(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            _mark_failed(test)
