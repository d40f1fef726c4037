#!/usr/bin/python3
"""A throwaway PostgreSQL 15 cluster for tests: initdb in a temporary directory, a free loopback port.

PostgreSQL refuses to run as root, so when this runs as root the cluster belongs to an unprivileged
system user (created once, idempotently: HPSCHED_PG_USER, default "hpsched-pg"). Everything the
cluster writes (data, unix socket, log) lives in one temporary directory that is removed at the end,
also on failure. Every wait is bounded.

As a library:

    with PgCluster() as cluster:        # initdb, start, createdb
        url = cluster.url               # postgresql://hpsched:<password>@127.0.0.1:<port>/hpsched
        cluster.stop()                  # stop the same cluster (fault tests) ...
        cluster.start()                 # ... and start it again, same port, same data
    # stopped and removed here

As a command line:

    pg_cluster.py run -- CMD ARGS...    # runs CMD with HPSCHED_POSTGRES_URL set; cleans up after
    pg_cluster.py start --dir DIR       # leaves a cluster running; prints its URL (also in DIR/url)
    pg_cluster.py stop --dir DIR        # stops it, keeps the data (start --dir DIR starts it again);
                                        # --mode immediate for a crash
    pg_cluster.py destroy --dir DIR     # stops it and removes DIR

The server authenticates TCP connections with a password (scram-sha-256), so a URL that reaches a
log would show it: the tests check that it never does.
"""

import argparse
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN_DIRS = ["/usr/lib/postgresql/15/bin"]
DEFAULT_USER = "hpsched-pg"
DATABASE = "hpsched"
ROLE = "hpsched"
# Bounded waits (seconds).
START_TIMEOUT = 60
STOP_TIMEOUT = 30


class PgClusterError(RuntimeError):
    pass


def find_bin_dir():
    for d in BIN_DIRS:
        if os.path.exists(os.path.join(d, "postgres")):
            return d
    raise PgClusterError(
        "PostgreSQL 15 not found (looked in %s): install postgresql-15" % ", ".join(BIN_DIRS))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_user(name):
    """The unprivileged user the cluster runs as (uid, gid); created when missing (root only)."""
    try:
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise PgClusterError("user %s does not exist and only root can create it" % name)
    # Two tests may create it at once: a failure is fine when the user exists afterwards.
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", name], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30, check=False)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PgClusterError("could not create the system user %s (useradd)" % name) from None
    return entry.pw_uid, entry.pw_gid


class PgCluster:
    """One cluster in one directory. Not thread-safe; stop() and start() keep the data and port."""

    def __init__(self, directory=None, user=None, port=None):
        self.bin_dir = find_bin_dir()
        self._own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="hpsched-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.state_file = os.path.join(self.dir, "cluster.json")
        self.user = user or os.environ.get("HPSCHED_PG_USER", DEFAULT_USER)
        self.port = port
        self.password = None
        self._as_user = os.geteuid() == 0
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                state = json.load(f)
            self.port, self.password, self.user = state["port"], state["password"], state["user"]

    @property
    def url(self):
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (ROLE, self.password, self.port, DATABASE)

    def _run(self, args, timeout, check=True):
        kwargs = {}
        if self._as_user:
            uid, gid = ensure_user(self.user)
            kwargs = {"user": uid, "group": gid, "extra_groups": []}
        result = subprocess.run([os.path.join(self.bin_dir, args[0])] + args[1:],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout, cwd=self.dir, env=self._env(), **kwargs)
        if check and result.returncode != 0:
            raise PgClusterError("%s failed (%d): %s" % (args[0], result.returncode, result.stdout))
        return result

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def init(self):
        """initdb, once per directory."""
        if os.path.exists(os.path.join(self.data, "PG_VERSION")):
            return
        os.makedirs(self.dir, exist_ok=True)
        if self._as_user:
            uid, gid = ensure_user(self.user)
            os.chown(self.dir, uid, gid)
        os.chmod(self.dir, 0o700)
        self.password = secrets.token_hex(12)
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self._as_user:
            os.chown(pwfile, uid, gid)
        try:
            self._run(["initdb", "-D", self.data, "-U", ROLE, "--pwfile", pwfile,
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                       "--no-instructions"], timeout=120)
        finally:
            os.remove(pwfile)
        if self.port is None:
            self.port = free_port()
        with open(self.state_file, "w") as f:
            json.dump({"port": self.port, "password": self.password, "user": self.user}, f)

    def running(self):
        return self._run(["pg_ctl", "status", "-D", self.data], timeout=10, check=False).returncode == 0

    def start(self):
        """Starts the cluster (initdb first if needed) and waits until it accepts connections."""
        self.init()
        if self.running():
            return
        options = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='%s' "
                   "-c fsync=on -c synchronous_commit=on -c max_connections=200 "
                   "-c shared_buffers=16MB" % (self.port, self.dir))
        result = self._run(["pg_ctl", "start", "-D", self.data, "-l", self.log, "-w",
                            "-t", str(START_TIMEOUT), "-o", options],
                           timeout=START_TIMEOUT + 10, check=False)
        if result.returncode != 0:
            raise PgClusterError("postgres did not start on 127.0.0.1:%d: %s\n%s" %
                                 (self.port, result.stdout, self.tail_log()))
        created = self._run(["psql", "-h", self.dir, "-p", str(self.port), "-U", ROLE, "-d",
                             "postgres", "-tAc",
                             "SELECT 1 FROM pg_database WHERE datname = '%s'" % DATABASE],
                            timeout=30)
        if created.stdout.strip() != "1":
            self._run(["createdb", "-h", self.dir, "-p", str(self.port), "-U", ROLE, DATABASE],
                      timeout=30)

    def stop(self, mode="fast"):
        """Stops the cluster (mode fast, or immediate for a crash); keeps its data."""
        if not os.path.exists(os.path.join(self.data, "postmaster.pid")):
            return
        result = self._run(["pg_ctl", "stop", "-D", self.data, "-m", mode, "-w",
                            "-t", str(STOP_TIMEOUT)], timeout=STOP_TIMEOUT + 10, check=False)
        if result.returncode != 0 and self.running():
            self._kill()

    def _kill(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def psql(self, sql):
        """Runs `sql` in the test database as the owner; returns its unaligned output."""
        return self._run(["psql", "-h", self.dir, "-p", str(self.port), "-U", ROLE, "-d",
                          DATABASE, "-v", "ON_ERROR_STOP=1", "-tAc", sql], timeout=60).stdout

    def tail_log(self, limit=4000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-limit:]
        except OSError:
            return ""

    def destroy(self):
        """Stops the cluster and removes its directory."""
        try:
            self.stop(mode="immediate")
        except (PgClusterError, subprocess.TimeoutExpired):
            self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "start", "stop", "destroy"])
    parser.add_argument("--dir", help="the cluster's directory (start/stop/destroy)")
    parser.add_argument("--mode", default="fast", choices=["smart", "fast", "immediate"],
                        help="stop: how (immediate is a crash: recovery from the WAL at start)")
    # run: everything after "--" is the command.
    own, argv = sys.argv[1:], []
    if "--" in own:
        own, argv = own[:own.index("--")], own[own.index("--") + 1:]
    args = parser.parse_args(own)
    if args.command == "run":
        if not argv:
            parser.error("run: give the command after --")
        cluster = PgCluster(args.dir)
        # ctest's timeout sends SIGTERM (or the user SIGINT): clean up all the same.
        child = None

        def on_signal(signum, _frame):
            if child is not None and child.poll() is None:
                child.kill()
            cluster.destroy()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            cluster.start()
            env = dict(os.environ, HPSCHED_POSTGRES_URL=cluster.url,
                       HPSCHED_PG_CLUSTER_DIR=cluster.dir)
            child = subprocess.Popen(argv, env=env)
            return child.wait()
        finally:
            cluster.destroy()
    if not args.dir:
        parser.error("%s: needs --dir" % args.command)
    cluster = PgCluster(os.path.abspath(args.dir))
    if args.command == "start":
        try:
            cluster.start()
        except BaseException:
            print(cluster.tail_log(), file=sys.stderr)
            raise
        with open(os.path.join(cluster.dir, "url"), "w") as f:
            f.write(cluster.url + "\n")
        print(cluster.url)
    elif args.command == "stop":
        cluster.stop(mode=args.mode)
    else:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
