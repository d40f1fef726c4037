"""Shared fixture of the Python tests: a real hpsched-server on a free loopback port, stopped at the end.

    with ServerProcess() as server:           # or: class T(ServerTestCase): ... self.server / self.client
        client = Client(server.target)

The server binary is $HPSCHED_SERVER, else <build>/server/hpsched-server where <build>/python is on PYTHONPATH (the
directory CMake builds the package into). The server gets SIGTERM when the test ends, also when it fails or raises,
and dies with the test process (setpriv --pdeathsig) if that is killed (e.g. by ctest's timeout).
"""
from __future__ import annotations

import atexit
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
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> list[str]:
    """A command prefix that makes the child get SIGTERM when the test process dies (util-linux's setpriv).

    Not a preexec_fn calling prctl: a preexec_fn makes subprocess fork() instead of vfork(), and grpcio's fork
    handlers then wait forever for the thread pool to idle while another thread has a call in flight.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class ServerProcess:
    """hpsched-server --address=127.0.0.1 --port=PORT (0 = a free one, read back from --port_file)."""

    def __init__(self, port: int = 0, extra_args: tuple[str, ...] = ()):
        self.requested_port = port
        self.extra_args = tuple(extra_args)
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None
        self._dir: Optional[tempfile.TemporaryDirectory] = None
        self.log_path = ""

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
        # - metrics off: their fixed default port would collide between servers of tests running in parallel.
        env = dict(os.environ, HPSCHED_STORE="memory", HPSCHED_DATA_DIR=os.path.join(self._dir.name, "data"),
                   HPSCHED_METRICS_PORT="0")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*_die_with_parent(), server_binary(), "--address=127.0.0.1", f"--port={self.requested_port}",
                 f"--port_file={port_file}", "--log_level=warn", *self.extra_args],
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

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
        if self in _live:
            _live.remove(self)
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
    """Starts one server for the class (self.server, self.target) and a Client on it (self.client)."""

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


def main() -> None:
    """unittest.main with verbose output; exits non-zero if a test fails (SIGTERM runs the cleanups too).

    With HPSCHED_TEST_TIMEOUT=S (ctest's TIMEOUT), a run still going after S - 10 seconds prints every thread's
    traceback and exits 1 (the server dies with the process), instead of being killed silently by ctest.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    timeout = float(os.environ.get("HPSCHED_TEST_TIMEOUT", "0") or 0)
    if timeout > 20:
        faulthandler.dump_traceback_later(timeout - 10, exit=True)
    unittest.main(verbosity=2)
