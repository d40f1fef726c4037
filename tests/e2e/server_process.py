"""A real hpsched-server process for tests: started on a free loopback port, stopped with SIGTERM.

    server = ServerProcess(build_dir, tmp_dir, "--store=memory", name="plain")
    ... f"127.0.0.1:{server.port}" ...
    assert server.stop() == 0          # graceful shutdown exits 0

Flags given replace the defaults of the same name; the defaults are --address=127.0.0.1 --port=0
--port_file=<tmp>/<name>.port --metrics_port=0 --http_port=0 (the fixed default ports would collide
between tests running in parallel). `env` adds environment variables (HPSCHED_* settings).

Server logs are written under the build tree, not into `tmp` (which tests delete):
BUILD/test-logs/TEST/RUN/NAME.log, TEST being the test script's name and RUN this process's own directory (time and
pid: runs of one test at the same time never share one). A test ends with `finish(ok)` (or runs `unittest_main()`,
which calls it): on failure it prints the tail of every server log of the run to stderr and keeps the files; on
success it removes its RUN directory. A test killed by ctest's timeout keeps them too.
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

TAIL_LINES = 80  # of each server log, printed when a test fails

_logs = []  # every log file of this run, in the order the servers started
_log_dirs = {}  # build dir -> this run's log directory


def test_name():
    """The running test's name: HPSCHED_TEST_NAME, else the script's file name without .py."""
    return os.environ.get("HPSCHED_TEST_NAME") or os.path.splitext(os.path.basename(sys.argv[0] or "test"))[0]


def log_dir(build):
    """BUILD/test-logs/TEST/RUN/, this process's own directory, created the first time it asks."""
    build = os.path.abspath(build)
    if build not in _log_dirs:
        run = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        path = os.path.join(build, "test-logs", test_name(), run)
        os.makedirs(path, exist_ok=True)
        _log_dirs[build] = path
    return _log_dirs[build]


def keep_log(path):
    """Registers a log file (of any process) for `finish`: printed and kept on failure, removed on success."""
    if path not in _logs:
        _logs.append(path)


def tail(path, lines=TAIL_LINES):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(cannot read: {e})\n"


def finish(ok):
    """Ends the run: on failure, the last TAIL_LINES lines of each log to stderr (the files stay); on success, the
    log directories are removed. Safe to call more than once."""
    if ok:
        for path in _log_dirs.values():
            shutil.rmtree(path, ignore_errors=True)
            for parent in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
                try:
                    os.rmdir(parent)  # TEST/ and test-logs/, when no other run kept logs there
                except OSError:
                    break
        _log_dirs.clear()
    else:
        for path in _logs:
            print(f"--- {path} (last {TAIL_LINES} lines; the file is kept) ---\n{tail(path)}--- end of {path} ---",
                  file=sys.stderr, flush=True)
    _logs.clear()


def unittest_main():
    """unittest.main(verbosity=2), then finish() with its result; exits 0 only if every test passed."""
    program = unittest.main(verbosity=2, exit=False)
    ok = program.result.wasSuccessful()
    finish(ok)
    sys.exit(0 if ok else 1)


def _note_kept_logs():
    if _log_dirs:
        print(f"server logs kept in {', '.join(_log_dirs.values())}", file=sys.stderr)


# A script that exits without calling finish() (an exception, a check's sys.exit) keeps its logs and says where.
atexit.register(_note_kept_logs)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


class ServerProcess:
    def __init__(self, build, tmp, *flags, name="server", env=None, timeout=15):
        self.port_file = os.path.join(tmp, f"{name}.port")
        self.log_path = os.path.join(log_dir(build), f"{name}.log")
        keep_log(self.log_path)
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        given = {f.split("=", 1)[0] for f in flags}
        defaults = [f for f in ("--address=127.0.0.1", "--port=0", f"--port_file={self.port_file}", "--metrics_port=0",
                                  "--http_port=0")
                    if f.split("=", 1)[0] not in given and not (env and "HPSCHED_" + f[2:].split("=")[0].upper() in env)]
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([os.path.join(build, "server", "hpsched-server"), *defaults, *flags],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        port_file = (env or {}).get("HPSCHED_PORT_FILE", self.port_file)
        deadline = time.time() + timeout
        while not (os.path.exists(port_file) and read(port_file).strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                self.log.flush()
                raise RuntimeError(f"hpsched-server did not start (log {self.log_path}):\n" + read(self.log_path))
            time.sleep(0.01)
        self.port = int(read(port_file))
        self.address = f"127.0.0.1:{self.port}"

    def kill(self):
        """SIGKILL: a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code (0 for a graceful shutdown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def log_text(self):
        self.log.flush()
        return read(self.log_path)
