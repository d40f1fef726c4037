"""A real hpsched-server process for tests: started on a free loopback port, stopped with SIGTERM.

    server = ServerProcess(build_dir, tmp_dir, "--store=memory", name="plain")
    ... f"127.0.0.1:{server.port}" ...
    assert server.stop() == 0          # graceful shutdown exits 0

Flags given replace the defaults of the same name; the defaults are --address=127.0.0.1 --port=0
--port_file=<tmp>/<name>.port --metrics_port=0. `env` adds environment variables (HPSCHED_* settings).
"""
import os
import signal
import subprocess
import time


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


class ServerProcess:
    def __init__(self, build, tmp, *flags, name="server", env=None, timeout=15):
        self.port_file = os.path.join(tmp, f"{name}.port")
        self.log_path = os.path.join(tmp, f"{name}.log")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        given = {f.split("=", 1)[0] for f in flags}
        defaults = [f for f in ("--address=127.0.0.1", "--port=0", f"--port_file={self.port_file}", "--metrics_port=0")
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
                raise RuntimeError("hpsched-server did not start:\n" + read(self.log_path))
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
