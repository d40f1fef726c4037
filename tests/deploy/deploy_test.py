#!/usr/bin/env python3
"""Checks deploy/ against the real binaries.

  deploy_test.py --source-dir SRC --server BUILD/server/hpsched-server --cli BUILD/client/hpsched [unittest args]

ConfigTest    every YAML file parses; the ports, addresses, data directory and HPSCHED_* variables of the Dockerfile,
              the compose file, prometheus.yml and the Kubernetes manifests agree with each other and with the flags
              and defaults that `hpsched-server --helpfull` prints (nothing is hard-coded here but uid 10001 and the
              image's paths); probes are gRPC probes on the health-only port (or the gRPC port); the health checks
              use `hpsched health`; the HTTP port (dashboard, JSON API) is exposed everywhere, published on loopback
              by compose, on the gRPC address, with TLS as a pair and the Services' appProtocol following it; the
              Kubernetes security settings; deploy/README.md's settings table matches the flags; the build context
              filter keeps every source file and drops build trees.
ReplicasConfigTest  deploy/k8s-replicas/ (Deployment of N replicas, the URL from a Secret, headless Service,
              --max_connection_age, the clients' service config equal to the one the clients build, PostgreSQL as a
              StatefulSet) and deploy/docker-compose.replicas.yml (two replicas and PostgreSQL).
ReplicasRuntimeTest  two servers from the replicas ConfigMap's settings on a throwaway PostgreSQL (run inside
              tests/lib/pg_cluster.py; skipped without HPSCHED_POSTGRES_URL): their dashboards and JSON API answer with
              a token, a job made through one is listed by the other's and by a third started later.
PackagesTest  the Dockerfile's runtime packages are exactly the Debian packages owning the shared libraries `ldd`
              reports for both binaries (`dpkg -S`), plus ca-certificates. Skipped when dpkg is not available.
RuntimeTest   the binaries laid out as in the image (DIR/usr/local/bin, stripped like the Dockerfile does), started
              with only HPSCHED_* variables: port file, `hpsched health`, GET / and GET /v1/jobs on the HTTP port,
              JSON logs, SIGTERM -> exit 0; compose's and the k8s ConfigMap's settings serve the dashboard with
              their tokens (401 without: no HTTP probe). As root, also in a chroot holding only the files of the
              Dockerfile's runtime packages, as uid 10001 (ld.so resolves every library, the CLI talks to the server,
              /metrics and the dashboard answer, a job survives a restart in the data directory). The server's data directory is always inside the test's temporary directory. Loopback
              only; every wait is bounded.

Needs /usr/bin/python3 with PyYAML (Debian's python3-yaml).
"""
import argparse
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import server_process  # noqa: E402  (server logs kept under the build tree when a test fails)

try:
    import yaml
except ImportError:  # reported by every test that needs it
    yaml = None

SOURCE_DIR = ""
SERVER = ""
CLI = ""
ABSL_FLAGS = set()  # --flagfile, --fromenv, ...: Abseil's own, not hpsched settings

UID = 10001  # the image's user (the brief's choice; Kubernetes' runAsUser must match the Dockerfile's USER)
DATA_DIR = "/var/lib/hpsched"
BIN_DIR = "/usr/local/bin"
GRPC_SERVICE = "hpsched.v1.SchedulerService"
ENV_PREFIX = "HPSCHED_"
# Packages in the Dockerfile that no library needs, on purpose.
EXTRA_PACKAGES_OK = {"ca-certificates": "TLS roots for outbound TLS (not a shared library)"}
WAIT = 10.0  # seconds, for every wait on a process
# For a server to write its port file: generous, since a loaded machine (ctest -j2 beside a build) can take seconds
# to start one; a liveness bound, not a speed check.
START_WAIT = 60.0


def build_dir():
    """The build tree holding the server binary (BUILD/server/hpsched-server)."""
    return os.path.dirname(os.path.dirname(SERVER))


def deploy_path(*parts):
    return os.path.join(SOURCE_DIR, "deploy", *parts)


def rel(path):
    return os.path.relpath(path, SOURCE_DIR)


def need_yaml(test):
    if yaml is None:
        test.fail("PyYAML is missing for /usr/bin/python3 (Debian package python3-yaml)")


# --- the binary's flags --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def server_flags():
    """{flag: default} from `hpsched-server --helpfull`, run with an empty environment (so HPSCHED_* of the caller
    cannot change what it prints). String defaults lose their quotes."""
    out = subprocess.run([SERVER, "--helpfull"], env={}, capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    entries = []
    section = ""
    for line in text.splitlines():
        header = re.match(r"^ {2}Flags from (\S+):", line)
        if header:
            section = header.group(1)
        m = re.match(r"^ {4}--([A-Za-z0-9_]+) \(", line)
        if m:
            if "absl/" in section:
                ABSL_FLAGS.add(m.group(1))
            entries.append([m.group(1), line.strip()])
        elif entries and line.startswith("      ") and line.strip():
            entries[-1][1] += " " + line.strip()
        elif not line.strip() and entries:
            entries.append([None, ""])  # a blank line ends the entry
    flags = {}
    for name, body in entries:
        if name is None:
            continue
        m = re.search(r";\s*default: (.*?);(?:\s*currently: .*?;)?\s*$", body)
        if not m:
            continue
        value = m.group(1)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        flags[name] = value
    if "port" not in flags or "metrics_port" not in flags or "http_port" not in flags:
        raise AssertionError(
            f"cannot read --port, --metrics_port and --http_port from `{SERVER} --helpfull` (exit {out.returncode}):\n{text[:3000]}")
    return flags


def default_port():
    return int(server_flags()["port"])


def default_metrics_port():
    return int(server_flags()["metrics_port"])


def default_http_port():
    """--http_port's default: the dashboard, the JSON API (docs/http.md)."""
    return int(server_flags()["http_port"])


def env_var_flag(var):
    """HPSCHED_METRICS_PORT -> metrics_port."""
    return var[len(ENV_PREFIX):].lower()


def parse_duration(text):
    """absl / Go style durations: 5s, 1m30s, 500ms, 1.5h. Seconds as a float."""
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def parse_quantity(text):
    """Kubernetes memory quantities: 512Mi, 1Gi, 1G, 1000000. Bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?", str(text).strip())
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    scale = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "K": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12}[m.group(2)]
    return float(m.group(1)) * scale


def makefile_list(name):
    """The words of `NAME := ...` in the top-level Makefile (continuation lines joined)."""
    with open(os.path.join(SOURCE_DIR, "Makefile")) as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(rf"^{name}\s*:?=(.*)$", text, re.M)
    return m.group(1).split() if m else []


# --- Dockerfile ------------------------------------------------------------------------------------------------------


class Dockerfile:
    """Instructions of a Dockerfile: (stage index, INSTRUCTION, arguments), comment lines dropped, continuations
    joined."""

    def __init__(self, path):
        self.path = path
        self.instructions = []
        stage = -1
        pending = ""
        with open(path) as f:
            for raw in f:
                line = raw.rstrip("\n")
                if line.strip().startswith("#") or (pending and not line.strip()):
                    continue  # comments; empty lines inside a continuation (Docker skips them too)
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                line = pending + line
                pending = ""
                if not line.strip():
                    continue
                word, _, args = line.strip().partition(" ")
                word = word.upper()
                if word == "FROM":
                    stage += 1
                self.instructions.append((stage, word, args.strip()))
        self.stages = stage + 1

    def get(self, word, stage=None):
        return [a for s, w, a in self.instructions if w == word and (stage is None or s == stage)]

    @property
    def last(self):
        return self.stages - 1

    def env(self, stage=None):
        stage = self.last if stage is None else stage
        values = {}
        for args in self.get("ENV", stage):
            for token in shlex.split(args):
                key, eq, value = token.partition("=")
                if not eq:
                    raise AssertionError(f"ENV {args!r}: use KEY=VALUE")
                values[key] = value
        return values

    def apt_packages(self, stage=None):
        stage = self.last if stage is None else stage
        packages = []
        for args in self.get("RUN", stage):
            tokens = shlex.split(args)
            for i, token in enumerate(tokens):
                if token == "install" and i > 0 and tokens[i - 1] in ("apt-get", "apt"):
                    for t in tokens[i + 1:]:
                        if t in ("&&", ";", "||", "|") or t.endswith(";"):
                            break
                        if not t.startswith("-"):
                            packages.append(t)
        return packages

    def non_comment_text(self):
        return "\n".join(f"{w} {a}" for _, w, a in self.instructions)


def exec_form(args):
    args = args.strip()
    if args.startswith("["):
        return json.loads(args)
    return ["/bin/sh", "-c", args]


def expand(text, env):
    """${VAR}, ${VAR:-default} and $VAR as sh would expand them with `env`."""

    def sub(m):
        name = m.group(1) or m.group(3)
        default = m.group(2)
        value = env.get(name, "")
        if default is not None and not value:
            return default
        return value

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text)


def command_argv(argv, env):
    """The program's argv of an exec-form command, looking through `sh -c "[exec] ..."` and expanding variables."""
    if len(argv) >= 3 and os.path.basename(argv[0]) == "sh" and argv[1] == "-c":
        words = shlex.split(expand(argv[2], env))
        if words and words[0] == "exec":
            words = words[1:]
        return words
    return [expand(a, env) for a in argv]


def health_target_port(testcase, argv, what):
    """Asserts `hpsched health --target=127.0.0.1:PORT` and returns PORT."""
    testcase.assertTrue(argv, f"{what}: empty command")
    testcase.assertEqual(os.path.basename(argv[0]), "hpsched", f"{what}: runs {argv}, not the hpsched CLI")
    testcase.assertGreaterEqual(len(argv), 2, f"{what}: {argv}")
    testcase.assertEqual(argv[1], "health", f"{what}: {argv} does not use the CLI's `health` command")
    targets = [a.split("=", 1)[1] for a in argv[2:] if a.startswith("--target=")]
    testcase.assertEqual(len(targets), 1, f"{what}: {argv} has no single --target=HOST:PORT")
    host, _, port = targets[0].rpartition(":")
    testcase.assertIn(host, ("127.0.0.1", "localhost", "[::1]"), f"{what}: health check must stay on loopback")
    return int(port)


# --- .dockerignore semantics (moby/patternmatcher, enough for our patterns) -------------------------------------------


def dockerignore_patterns(path):
    patterns = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = os.path.normpath(line).lstrip("/")
            patterns.append((negate, re.compile(glob_regex(line))))
    return patterns


def glob_regex(pattern):
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return "^" + out + "$"


def excluded(patterns, path):
    """Like Docker: a pattern matching the path or one of its parent directories excludes it; later patterns win."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negate, regex in patterns:
        if any(regex.match(p) for p in prefixes):
            result = not negate
    return result


# --- YAML ----------------------------------------------------------------------------------------------------------


def yaml_files():
    found = []
    for dirpath, _, names in os.walk(deploy_path()):
        for name in names:
            if name.endswith((".yaml", ".yml")):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def load_yaml(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def strings_in(data):
    """Every key and string value in a parsed YAML tree."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(data, list):
        for v in data:
            yield from strings_in(v)
    elif isinstance(data, str):
        yield data


def k8s_docs():
    docs = []
    for path in yaml_files():
        if os.path.dirname(path) == deploy_path("k8s"):
            for doc in load_yaml(path):
                docs.append((rel(path), doc))
    return docs


def is_client_doc(doc):
    """A document for the clients' pods (label app.kubernetes.io/component: client), not the server's."""
    return ((doc.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component") == "client"


def compose_env(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return env


def compose_container_ports(service):
    ports = []
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            ports.append(int(p["target"]))
        else:
            ports.append(int(str(p).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def compose_host_port(published):
    """(host ip or "", host port) of a compose short-syntax port: "8080:8080", "127.0.0.1:8080:8080"."""
    parts = str(published).split("/")[0].split(":")
    return ("", parts[0]) if len(parts) == 2 else (parts[0], parts[1])


def check_http_settings(testcase, env, where):
    """The HTTP listener's settings in a deploy file's environment `env` (HPSCHED_* -> value, the image's ENV
    included where it applies): on the default port, listening where the gRPC port does (the files publish it), and
    TLS given as the pair the gRPC port takes, since the HTTP listener has no TLS or token settings of its own."""
    flags = server_flags()
    testcase.assertEqual(int(env.get("HPSCHED_HTTP_PORT", flags["http_port"])), default_http_port(),
                         f"{where}: HPSCHED_HTTP_PORT")
    if "HPSCHED_HTTP_ADDRESS" in env:
        testcase.assertEqual(env["HPSCHED_HTTP_ADDRESS"], env.get("HPSCHED_ADDRESS", flags["address"]),
                             f"{where}: HPSCHED_HTTP_ADDRESS: where the gRPC port listens (the port is published)")
    own = sorted(f for f in flags if f.startswith("http_") and re.search(r"tls|token|auth|cert|key", f))
    testcase.assertEqual(own, [], "the HTTP listener has TLS or token flags of its own: the deploy files must set them")
    testcase.assertEqual("HPSCHED_TLS_CERT" in env, "HPSCHED_TLS_KEY" in env,
                         f"{where}: HPSCHED_TLS_CERT and HPSCHED_TLS_KEY together (gRPC and HTTP share them)")


def http_app_protocol(env):
    """The appProtocol of a Service's `http` port: https when the settings turn TLS on (HTTP follows gRPC)."""
    return "https" if env.get("HPSCHED_TLS_CERT") else "http"


def check_http_published_on_loopback(testcase, service, http_port, where):
    """The HTTP port is published on the host's loopback only: the listener does not bound the number of header
    lines (docs/http.md, Limits), so it goes further only behind a proxy that does."""
    published = [p for p in service.get("ports") or [] if compose_container_ports({"ports": [p]}) == [http_port]]
    testcase.assertEqual(len(published), 1, f"{where}: the HTTP port {http_port} is published once")
    host_ip, _ = compose_host_port(published[0])
    testcase.assertEqual(host_ip, "127.0.0.1", f"{where}: {published[0]!r}: publish HTTP on 127.0.0.1 only")


def compose_mounts(service):
    """[(source, target)] for short and long volume syntax."""
    mounts = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            mounts.append((v.get("source"), v.get("target")))
        else:
            parts = str(v).split(":")
            if len(parts) == 1:
                mounts.append((None, parts[0]))
            else:
                mounts.append((parts[0], parts[1]))
    return mounts


# --- processes -----------------------------------------------------------------------------------------------------


def wait_for_port_file(proc, path, timeout=START_WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text.isdigit() and int(text) > 0:
                return int(text)
        except OSError:
            pass
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def stop(proc, timeout=WAIT):
    """SIGTERM, then the exit status within `timeout` (SIGKILL and None if it does not stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=WAIT)
        return None


def kill_if_running(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=WAIT)


def free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serving(testcase, start, env, log_path, port_file, http_port_file, what):
    """Starts start(env) with HPSCHED_HTTP_PORT on a free loopback port and waits for the HTTP port file (written
    after the gRPC one). The port is picked here, so another process may take it first: up to three tries, the next
    only when the start failed on the HTTP port. env sets HPSCHED_PORT_FILE and HPSCHED_HTTP_PORT_FILE; port_file and
    http_port_file are where this process sees them. Returns (process, gRPC port, HTTP port)."""
    proc = None
    for _ in range(3):
        for path in (port_file, http_port_file):
            if os.path.exists(path):
                os.remove(path)
        offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        proc = start(dict(env, HPSCHED_HTTP_PORT=str(free_loopback_port())))
        http_port = wait_for_port_file(proc, http_port_file)
        if http_port is not None:
            port = wait_for_port_file(proc, port_file)
            testcase.assertIsNotNone(port, f"{what}: no gRPC port file")
            return proc, port, http_port
        stop(proc)  # never two servers on one data directory
        if "HTTP" not in read_since(log_path, offset):
            break
    testcase.fail(f"{what}: no HTTP port file within {START_WAIT:.0f}s (exit {proc.poll()}):\n{read(log_path)}")


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def http_get(port, path, token=None):
    """(status, Content-Type, body) of GET http://127.0.0.1:PORT/PATH, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with _DIRECT.open(urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers),
                          timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace")


def check_dashboard(testcase, port, token=None, jobs=None):
    """The dashboard (GET /) and the JSON API (GET /v1/jobs) answer on HTTP port `port`; /v1/jobs lists exactly the
    job ids `jobs` (when given). With `token`, both also answer 401 without it (so no probe can use them)."""
    status, content_type, body = http_get(port, "/", token)
    testcase.assertEqual(status, 200, f"GET / on the HTTP port: {body[:500]}")
    testcase.assertTrue(content_type.startswith("text/html"), f"GET /: Content-Type {content_type}")
    testcase.assertIn("<title>hpsched</title>", body, "GET / is the dashboard's page")
    status, content_type, body = http_get(port, "/v1/jobs", token)
    testcase.assertEqual(status, 200, f"GET /v1/jobs: {body[:500]}")
    testcase.assertTrue(content_type.startswith("application/json"), f"GET /v1/jobs: Content-Type {content_type}")
    listed = json.loads(body)
    testcase.assertEqual(listed["nextPageToken"], "")
    if jobs is not None:
        testcase.assertEqual(sorted(j["name"] for j in listed["jobs"]), sorted(f"jobs/{j}" for j in jobs))
    if token:
        for path in ("/", "/v1/jobs"):
            status, _, body = http_get(port, path)
            testcase.assertEqual(status, 401, f"GET {path} without a token: {body[:500]}")
            testcase.assertEqual(json.loads(body)["code"], 16, f"GET {path} without a token: UNAUTHENTICATED")


def read(path, limit=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


def read_since(path, offset):
    """What was appended to `path` after byte `offset`."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def install_binaries(bin_dir):
    """The two binaries as the Dockerfile installs them: `strip --strip-debug` (when binutils is here), mode 0755."""
    os.makedirs(bin_dir, exist_ok=True)
    strip = shutil.which("strip")
    for src in (SERVER, CLI):
        dst = os.path.join(bin_dir, os.path.basename(src))
        if strip:
            subprocess.run([strip, "--strip-debug", "-o", dst, src], check=True, timeout=60)
        else:
            shutil.copy2(src, dst)
        os.chmod(dst, 0o755)


def health_failure_hint(result):
    out = (result.stdout or "") + (result.stderr or "")
    hint = ""
    if "health" not in out and ("COMMAND" in out or "usage" in out.lower()):
        hint = " -- the CLI has no `health` command yet?"
    return f"`hpsched health` exit {result.returncode}{hint}\n{out[-2000:]}"


def env_support_problem():
    """None when hpsched-server reads HPSCHED_* variables, else why not. Probes with an invalid HPSCHED_PORT and
    --helpfull, so the server never listens: with env support it rejects the variable (exit 2, naming it)."""
    r = subprocess.run([SERVER, "--helpfull"], env={"HPSCHED_PORT": "not-a-port"}, capture_output=True, text=True,
                       timeout=30)
    if r.returncode == 2 and "HPSCHED_PORT" in r.stdout + r.stderr:
        return None
    return ("hpsched-server ignores HPSCHED_* environment variables (HPSCHED_PORT=not-a-port with --helpfull: exit "
            f"{r.returncode}, want 2 and a message naming HPSCHED_PORT); the image and manifests configure it only "
            "that way")


# ======================================================================================================================


class ConfigTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dockerfile = Dockerfile(deploy_path("Dockerfile"))

    def setUp(self):
        need_yaml(self)

    # -- files and flags --

    def test_yaml_files_parse(self):
        files = yaml_files()
        for expected in ("docker-compose.yml", "prometheus.yml"):
            self.assertIn(deploy_path(expected), files)
        self.assertTrue([f for f in files if os.path.dirname(f) == deploy_path("k8s")], "no YAML in deploy/k8s/")
        for path in files:
            with self.subTest(file=rel(path)):
                try:
                    docs = load_yaml(path)
                except yaml.YAMLError as e:
                    self.fail(f"{rel(path)} does not parse: {e}")
                self.assertTrue(docs, f"{rel(path)} has no document")
                for doc in docs:
                    self.assertIsInstance(doc, dict, f"{rel(path)}: a document is not a mapping")

    def test_server_flags_from_binary(self):
        flags = server_flags()
        for name in ("address", "port", "port_file", "log_level", "log_format", "shutdown_grace", "metrics_port",
                     "metrics_address"):
            with self.subTest(flag=name):
                self.assertIn(name, flags, f"hpsched-server has no --{name} (deploy/README.md documents it)")
        parse_duration(flags["shutdown_grace"])

    def test_hpsched_variables_are_flags(self):
        """Every HPSCHED_* name used (outside comments) in deploy/ names a flag of hpsched-server."""
        flags = server_flags()
        used = {}
        for var in re.findall(r"\b(HPSCHED_[A-Z0-9_]+)", self.dockerfile.non_comment_text()):
            used.setdefault(var, set()).add("deploy/Dockerfile")
        for path in yaml_files():
            for doc in load_yaml(path):
                if is_client_doc(doc):
                    continue  # the clients' settings (HPSCHED_TARGET): ReplicasConfigTest checks them
                for s in strings_in(doc):
                    for var in re.findall(r"\b(HPSCHED_[A-Z0-9_]+)", s):
                        used.setdefault(var, set()).add(rel(path))
        self.assertTrue(used, "no HPSCHED_* variable found in deploy/")
        for var, where in sorted(used.items()):
            with self.subTest(variable=var):
                self.assertTrue(env_var_flag(var) in flags,
                                f"{var} (in {', '.join(sorted(where))}) is no flag of hpsched-server, whose flags are "
                                f"{', '.join(sorted(flags))}")

    def test_readme_settings_table(self):
        """deploy/README.md's settings table: rows not marked "coming" are flags with these defaults; every hpsched
        flag has a row."""
        flags = server_flags()
        rows = {}
        with open(deploy_path("README.md")) as f:
            for line in f:
                m = re.match(r"^\| `--([a-z0-9_]+)` \| `([A-Z0-9_]+)` \| (.*?) \| (.*) \|\s*$", line)
                if m:
                    rows[m.group(1)] = (m.group(2), m.group(3).strip(), "coming" in m.group(4))
        self.assertTrue(rows, "no settings table in deploy/README.md")
        for flag, (var, default, coming) in sorted(rows.items()):
            with self.subTest(flag=flag):
                self.assertEqual(var, ENV_PREFIX + flag.upper())
                if coming:
                    if flag in flags:
                        print(f"\n# deploy/README.md: --{flag} exists now; drop its 'coming' mark", file=sys.stderr)
                    continue
                self.assertTrue(flag in flags, f"deploy/README.md documents --{flag}, which hpsched-server lacks")
                documented = "" if default == "(none)" else default.strip("`")
                actual = flags[flag]
                if flag == "shutdown_grace":
                    self.assertEqual(parse_duration(documented), parse_duration(actual))
                else:
                    self.assertEqual(documented, actual, f"default of --{flag}")
        undocumented = sorted(set(flags) - ABSL_FLAGS - set(rows))
        self.assertEqual(undocumented, [], "flags missing from the settings table in deploy/README.md")

    # -- Dockerfile --

    def test_dockerfile_stages(self):
        df = self.dockerfile
        froms = df.get("FROM")
        self.assertGreaterEqual(len(froms), 2, "want a multi-stage build")
        builder = froms[0].split()
        self.assertEqual(builder[0], "debian:bookworm", "builder stage")
        self.assertEqual([w.lower() for w in builder[1:2]], ["as"], "the builder stage is named")
        builder_name = builder[2]
        self.assertEqual(froms[-1].split()[0], "debian:bookworm-slim", "runtime stage")
        runs = " ; ".join(df.get("RUN", 0))
        self.assertRegex(runs, r"\bmake deps-build\b", "the builder runs `make deps-build` (the build set)")
        self.assertNotRegex(runs, r"\bmake (deps|deps-test|build|test)(\s|$)",
                            "the builder installs and builds only what the image needs")
        self.assertRegex(runs, r"\bmake build-server BUILD_DIR=/src/build\b",
                         "the builder runs `make build-server` in /src/build")
        # The build set that the builder installs holds none of the test set (no PyTorch, grpcio, clang, Node.js).
        build_set, test_set = makefile_list("BUILD_PACKAGES"), makefile_list("TEST_PACKAGES")
        self.assertTrue(build_set and test_set, "BUILD_PACKAGES and TEST_PACKAGES in the Makefile")
        self.assertEqual(sorted(set(build_set) & set(test_set)), [], "packages in both sets")
        for package in ("python3-torch", "python3-grpcio", "clang-14", "nodejs", "npm"):
            self.assertNotIn(package, build_set, "a test dependency in the Makefile's BUILD_PACKAGES")
        # make itself: the debian:bookworm image does not have it.
        self.assertRegex(runs, r"apt-get install[^;&|]*\bmake\b[^;|]*&& make deps-build",
                         "the builder installs make before running it")
        # Every file the builder copies from the context exists.
        for args in df.get("COPY", 0):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            for src in words[:-1]:
                with self.subTest(copy=src):
                    self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, src)), f"COPY {src}: no such file")
        # The runtime stage gets both binaries from the builder into /usr/local/bin.
        copied = []
        for args in df.get("COPY", df.last):
            words = shlex.split(args)
            if f"--from={builder_name}" in words:
                words = [w for w in words if not w.startswith("--")]
                self.assertEqual(words[-1].rstrip("/"), BIN_DIR, f"COPY {args}")
                copied += [os.path.basename(w) for w in words[:-1]]
        self.assertEqual(sorted(copied), ["hpsched", "hpsched-server"], "binaries copied into the runtime stage")

    def test_dockerfile_runtime_user_volume_entrypoint(self):
        df = self.dockerfile
        users = df.get("USER", df.last)
        self.assertEqual(len(users), 1, "one USER in the runtime stage")
        self.assertEqual(users[0].split(":")[0], str(UID), "USER is the numeric uid (Kubernetes runAsNonRoot "
                                                           "can only verify a numeric one)")
        volumes = df.get("VOLUME", df.last)
        self.assertEqual(len(volumes), 1)
        vol = exec_form(volumes[0]) if volumes[0].startswith("[") else volumes[0].split()
        self.assertEqual(vol, [DATA_DIR])
        if "data_dir" in server_flags():
            self.assertEqual(df.env().get("HPSCHED_DATA_DIR", server_flags()["data_dir"]), DATA_DIR,
                             "the server's --data_dir is the VOLUME")
        # The directory is created with the user as owner before VOLUME (later changes to it would be discarded).
        runtime = [(w, a) for s, w, a in df.instructions if s == df.last]
        volume_index = [w for w, _ in runtime].index("VOLUME")
        prepared = any(w == "RUN" and DATA_DIR in a and re.search(rf"-o\s+({UID}|hpsched)\b|chown\s+{UID}|chown\s+"
                                                                   r"hpsched", a)
                       for w, a in runtime[:volume_index])
        self.assertTrue(prepared, f"a RUN before VOLUME creates {DATA_DIR} owned by uid {UID}")
        entry = df.get("ENTRYPOINT", df.last)
        self.assertEqual(len(entry), 1)
        argv = json.loads(entry[0])  # exec form, so the server is PID 1 and gets SIGTERM itself
        self.assertEqual(argv[0], f"{BIN_DIR}/hpsched-server")

    def test_dockerfile_ports_and_env(self):
        df = self.dockerfile
        flags = server_flags()
        exposed = {int(p.split("/")[0]) for args in df.get("EXPOSE", df.last) for p in args.split()}
        self.assertEqual(exposed, {default_port(), default_metrics_port(), default_http_port()},
                         "EXPOSE = the server's default gRPC, metrics and HTTP ports")
        env = df.env()
        for var, flag in (("HPSCHED_ADDRESS", "address"), ("HPSCHED_PORT", "port"),
                          ("HPSCHED_METRICS_PORT", "metrics_port"), ("HPSCHED_HTTP_PORT", "http_port")):
            with self.subTest(variable=var):
                self.assertIn(var, env, f"ENV {var}")
                self.assertEqual(env[var], flags[flag], f"ENV {var} = the default of --{flag}")
        check_http_settings(self, env, "deploy/Dockerfile ENV")

    def test_dockerfile_healthcheck(self):
        df = self.dockerfile
        checks = df.get("HEALTHCHECK", df.last)
        self.assertEqual(len(checks), 1, "one HEALTHCHECK")
        options, sep, cmd = checks[0].partition("CMD ")
        self.assertTrue(sep, f"HEALTHCHECK {checks[0]}: no CMD")
        env = df.env()
        port = health_target_port(self, command_argv(exec_form(cmd), env), "HEALTHCHECK")
        self.assertEqual(port, int(env.get("HPSCHED_PORT", default_port())), "HEALTHCHECK checks the gRPC port")
        # And it follows the port when the environment moves it (docker run -e HPSCHED_PORT=...).
        if "HPSCHED_PORT" in cmd:
            moved = command_argv(exec_form(cmd), dict(env, HPSCHED_PORT="6000"))
            self.assertEqual(health_target_port(self, moved, "HEALTHCHECK"), 6000)
        timeout = re.search(r"--timeout=(\S+)", options)
        if timeout:
            self.assertLess(parse_duration(timeout.group(1)), 60)

    def test_dockerignore(self):
        """deploy/Dockerfile.dockerignore keeps every file the build needs and drops build trees and .git."""
        path = deploy_path("Dockerfile.dockerignore")
        self.assertTrue(os.path.isfile(path), "deploy/Dockerfile.dockerignore (BuildKit reads it for -f "
                                              "deploy/Dockerfile)")
        patterns = dockerignore_patterns(path)
        for p in ("build/CMakeCache.txt", "build-deploy/CMakeCache.txt", "build-e2e/server/hpsched-server",
                  "tools/node_modules/.bin/buf", ".git/HEAD", "python/hpsched/__pycache__/x.pyc"):
            with self.subTest(dropped=p):
                self.assertTrue(excluded(patterns, p), f"{p} is sent to the builder")
        for args in self.dockerfile.get("COPY", 0):
            for src in [w for w in shlex.split(args) if not w.startswith("--")][:-1]:
                if src != ".":
                    with self.subTest(kept=src):
                        self.assertFalse(excluded(patterns, os.path.normpath(src)), f"COPY {src} is ignored")
        git = shutil.which("git")
        listing = None
        if git:
            r = subprocess.run([git, "-C", SOURCE_DIR, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               capture_output=True, timeout=60)
            if r.returncode == 0:
                listing = [p for p in r.stdout.decode().split("\0") if p]
        if listing is None:
            self.skipTest("not a git checkout: cannot list the source files to check against the ignore file")
        lost = [p for p in listing if not p.startswith("deploy/") and excluded(patterns, p)]
        self.assertEqual(lost, [], "source files the ignore file keeps from the builder")

    # -- compose and Prometheus --

    def compose(self):
        docs = load_yaml(deploy_path("docker-compose.yml"))
        self.assertEqual(len(docs), 1)
        return docs[0]

    def test_compose(self):
        compose = self.compose()
        services = compose.get("services") or {}
        self.assertIn("hpsched", services)
        self.assertIn("prometheus", services)
        svc = services["hpsched"]
        compose_dir = deploy_path()
        build = svc.get("build") or {}
        context = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
        self.assertEqual(context, os.path.normpath(SOURCE_DIR), "the build context is the repository root")
        self.assertEqual(os.path.normpath(os.path.join(context, build.get("dockerfile", "Dockerfile"))),
                         deploy_path("Dockerfile"))

        env = compose_env(svc)
        for var, value in env.items():
            with self.subTest(variable=var):
                self.assertIsInstance(value, str, f"environment {var}: quote the value in YAML")
        image_env = self.dockerfile.env()
        effective = dict(image_env, **env)
        grpc_port = int(effective.get("HPSCHED_PORT", default_port()))
        metrics_port = int(effective.get("HPSCHED_METRICS_PORT", default_metrics_port()))
        http_port = int(effective.get("HPSCHED_HTTP_PORT", default_http_port()))
        self.assertEqual(grpc_port, default_port())
        self.assertEqual(metrics_port, default_metrics_port())
        self.assertEqual(http_port, default_http_port())
        self.assertEqual(sorted(compose_container_ports(svc)), sorted([grpc_port, metrics_port, http_port]),
                         "published container ports")
        check_http_settings(self, effective, "deploy/docker-compose.yml")
        check_http_published_on_loopback(self, svc, http_port, "deploy/docker-compose.yml")

        if "data_dir" in server_flags():
            self.assertEqual(effective.get("HPSCHED_DATA_DIR", server_flags()["data_dir"]), DATA_DIR,
                             "--data_dir is where the named volume is")
        named = set((compose.get("volumes") or {}).keys())
        data = [src for src, dst in compose_mounts(svc) if dst == DATA_DIR]
        self.assertEqual(len(data), 1, f"one volume at {DATA_DIR}")
        self.assertIn(data[0], named, f"the volume at {DATA_DIR} is a named volume")

        test = (svc.get("healthcheck") or {}).get("test")
        self.assertTrue(test, "hpsched has a healthcheck")
        if isinstance(test, str):
            argv = ["/bin/sh", "-c", test]
        elif test[0] == "CMD":
            argv = test[1:]
        elif test[0] == "CMD-SHELL":
            argv = ["/bin/sh", "-c", test[1]]
        else:
            self.fail(f"healthcheck test {test!r}")
        self.assertEqual(health_target_port(self, command_argv(argv, effective), "compose healthcheck"), grpc_port)

        grace = parse_duration(effective.get("HPSCHED_SHUTDOWN_GRACE", server_flags()["shutdown_grace"]))
        self.assertIn("stop_grace_period", svc, "stop_grace_period (docker's default 10s is tight)")
        self.assertGreater(parse_duration(svc["stop_grace_period"]), grace, "stop_grace_period > shutdown grace")

        prom = services["prometheus"]
        self.assertTrue(str(prom.get("image", "")).startswith("prom/prometheus:"), "prometheus image, pinned")
        config = [src for src, dst in compose_mounts(prom) if dst == "/etc/prometheus/prometheus.yml"]
        self.assertEqual(len(config), 1, "prometheus.yml mounted at /etc/prometheus/prometheus.yml")
        self.assertEqual(os.path.normpath(os.path.join(compose_dir, config[0])), deploy_path("prometheus.yml"))

    def test_prometheus_config(self):
        docs = load_yaml(deploy_path("prometheus.yml"))
        self.assertEqual(len(docs), 1)
        jobs = {j.get("job_name"): j for j in docs[0].get("scrape_configs") or []}
        self.assertIn("hpsched", jobs)
        job = jobs["hpsched"]
        self.assertIn(job.get("metrics_path", "/metrics"), ("/metrics",))
        targets = [t for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
        self.assertTrue(targets, "job hpsched has static targets")
        services = self.compose().get("services") or {}
        for target in targets:
            with self.subTest(target=target):
                host, _, port = target.rpartition(":")
                self.assertEqual(int(port), default_metrics_port(), "scrapes the server's metrics port")
                self.assertIn(host, services, "the target is a compose service")
                self.assertIn("build", services[host], "the target is the hpsched service")

    def test_prometheus_config_promtool(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool is not installed (Debian package prometheus); the structure is checked above")
        r = subprocess.run([promtool, "check", "config", deploy_path("prometheus.yml")], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    # -- Kubernetes --

    def k8s(self):
        docs = k8s_docs()
        by_kind = {}
        for path, doc in docs:
            by_kind.setdefault(doc.get("kind"), []).append(doc)
        return docs, by_kind

    def pod(self):
        _, by_kind = self.k8s()
        sts = by_kind.get("StatefulSet") or []
        self.assertEqual(len(sts), 1, "one StatefulSet")
        return sts[0], sts[0]["spec"]["template"]

    def container(self):
        sts, template = self.pod()
        containers = template["spec"]["containers"]
        self.assertEqual(len(containers), 1)
        return containers[0]

    def configmap_env(self):
        _, by_kind = self.k8s()
        names = [ref["configMapRef"]["name"] for ref in self.container().get("envFrom") or [] if "configMapRef" in ref]
        self.assertEqual(len(names), 1, "the container takes its env from one ConfigMap")
        cms = [cm for cm in by_kind.get("ConfigMap") or [] if cm["metadata"]["name"] == names[0]]
        self.assertEqual(len(cms), 1, f"ConfigMap {names[0]} is in deploy/k8s/")
        env = dict(cms[0].get("data") or {})
        for item in self.container().get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
        return env

    def container_ports(self):
        return {p["name"]: p["containerPort"] for p in self.container().get("ports") or []}

    def test_k8s_namespace_agnostic(self):
        docs, by_kind = self.k8s()
        self.assertNotIn("Namespace", by_kind)
        for path, doc in docs:
            with self.subTest(doc=f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"):
                self.assertNotIn("namespace", doc.get("metadata") or {})
        self.assertEqual(sorted(by_kind), ["ConfigMap", "Service", "StatefulSet"])

    def test_k8s_configmap(self):
        env = self.configmap_env()
        flags = server_flags()
        for var, value in env.items():
            with self.subTest(variable=var):
                self.assertIsInstance(value, str, f"ConfigMap {var}: quote the value in YAML")
                self.assertTrue(var.startswith(ENV_PREFIX), f"{var} is not an HPSCHED_* setting")
                self.assertTrue(env_var_flag(var) in flags, f"{var} is no flag of hpsched-server")
        ports = self.container_ports()
        self.assertEqual(int(env.get("HPSCHED_PORT", default_port())), ports.get("grpc"))
        self.assertEqual(int(env.get("HPSCHED_METRICS_PORT", default_metrics_port())), ports.get("metrics"))
        self.assertEqual(int(env.get("HPSCHED_HTTP_PORT", default_http_port())), ports.get("http"))
        check_http_settings(self, env, "deploy/k8s/configmap.yaml")

    def test_k8s_statefulset(self):
        sts, template = self.pod()
        spec = sts["spec"]
        pod = template["spec"]
        c = self.container()
        self.assertEqual(spec.get("replicas"), 1)
        labels = template["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v, "the selector matches the pod labels")

        # Ports: the server's defaults, and the plaintext health-only port when the ConfigMap turns it on.
        ports = self.container_ports()
        health_port = int(self.configmap_env().get("HPSCHED_HEALTH_PORT", "0"))
        want = {"grpc": default_port(), "metrics": default_metrics_port(), "http": default_http_port()}
        if health_port:
            want["health"] = health_port
        self.assertEqual(ports, want)

        # Probes: native gRPC, on the health-only port when there is one (it stays plaintext when TLS is on), else
        # on the gRPC port; readiness asks for the SchedulerService.
        probed, probed_name = (health_port, "health-only") if health_port else (ports["grpc"], "gRPC")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe not in c and probe == "startupProbe":
                continue
            with self.subTest(probe=probe):
                self.assertIn(probe, c)
                handlers = set(c[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"}
                # Not httpGet on the HTTP port: with tokens on every path there answers 401 without one
                # (RuntimeTest.test_settings_serve_the_dashboard shows it), and with TLS it speaks https only.
                self.assertEqual(handlers, {"grpc"}, f"{probe} is a gRPC probe")
                self.assertEqual(c[probe]["grpc"]["port"], probed, f"{probe} probes the {probed_name} port (a number)")
        self.assertEqual(c["readinessProbe"]["grpc"].get("service"), GRPC_SERVICE)
        self.assertIn(c["livenessProbe"]["grpc"].get("service", ""), ("",), "liveness checks the server as a whole")
        with open(os.path.join(SOURCE_DIR, "proto/hpsched/v1/scheduler_service.proto")) as f:
            proto = f.read()
        package, _, service = GRPC_SERVICE.rpartition(".")
        self.assertRegex(proto, rf"(?m)^package {re.escape(package)};")
        self.assertRegex(proto, rf"(?m)^service {service} ")

        # Resources.
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                with self.subTest(resource=f"{kind}.{res}"):
                    self.assertIn(res, (c.get("resources") or {}).get(kind) or {})

        # Restricted security context (pod level, overridden per container).
        psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
        merged = dict(psc, **csc)
        self.assertIs(merged.get("runAsNonRoot"), True)
        self.assertEqual(merged.get("runAsUser"), UID)
        self.assertEqual(int(self.dockerfile.get("USER", self.dockerfile.last)[0].split(":")[0]), merged["runAsUser"])
        self.assertIs(csc.get("readOnlyRootFilesystem"), True)
        self.assertIs(csc.get("allowPrivilegeEscalation"), False)
        self.assertIn("ALL", (csc.get("capabilities") or {}).get("drop") or [])
        self.assertEqual((merged.get("seccompProfile") or {}).get("type"), "RuntimeDefault")

        # Storage: a PVC template mounted at the data directory.
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
        self.assertIn(DATA_DIR, mounts)
        self.assertIn(mounts[DATA_DIR], claims, f"{DATA_DIR} is a volumeClaimTemplate")

        # The server's store is where the volume is.
        env = self.configmap_env()
        if "data_dir" in server_flags():
            self.assertEqual(env.get("HPSCHED_DATA_DIR", server_flags()["data_dir"]), DATA_DIR,
                             "--data_dir is the PVC's mount path")
        # The server's own budget for calls in flight stays under the container's memory limit.
        if "max_call_memory_bytes" in server_flags():
            budget = int(env.get("HPSCHED_MAX_CALL_MEMORY_BYTES", server_flags()["max_call_memory_bytes"]))
            limit = parse_quantity(c["resources"]["limits"]["memory"])
            self.assertLess(budget, limit * 0.75, "--max_call_memory_bytes leaves room under the memory limit")

        # Shutdown: the kubelet's SIGKILL comes after the server's own grace.
        grace = parse_duration(self.configmap_env().get("HPSCHED_SHUTDOWN_GRACE", server_flags()["shutdown_grace"]))
        self.assertGreater(pod.get("terminationGracePeriodSeconds", 30), grace)

        # Service links would put HPSCHED_PORT=tcp://... (Service `hpsched`) into the server's flag environment.
        self.assertIs(pod.get("enableServiceLinks"), False, "enableServiceLinks: false")

        # The same image as compose builds.
        compose_image = (self.compose_services().get("hpsched") or {}).get("image")
        self.assertEqual(c.get("image"), compose_image)

    def compose_services(self):
        return load_yaml(deploy_path("docker-compose.yml"))[0].get("services") or {}

    def test_k8s_services(self):
        sts, template = self.pod()
        _, by_kind = self.k8s()
        labels = template["metadata"]["labels"]
        ports = self.container_ports()
        services = {s["metadata"]["name"]: s for s in by_kind.get("Service") or []}
        headless = [s for s in services.values() if s["spec"].get("clusterIP") == "None"]
        cluster = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
        self.assertEqual(len(headless), 1, "one headless Service")
        self.assertEqual(len(cluster), 1, "one ClusterIP Service")
        self.assertEqual(sts["spec"]["serviceName"], headless[0]["metadata"]["name"],
                         "the StatefulSet's serviceName is the headless Service")
        self.assertIn(cluster[0]["spec"].get("type", "ClusterIP"), ("ClusterIP",))
        for svc in services.values():
            name = svc["metadata"]["name"]
            for k, v in (svc["spec"].get("selector") or {}).items():
                self.assertEqual(labels.get(k), v, f"Service {name} selects the pod")
            by_name = {p["name"]: p for p in svc["spec"]["ports"]}
            for port_name, number in (("grpc", default_port()), ("metrics", default_metrics_port()),
                                      ("http", default_http_port())):
                with self.subTest(service=name, port=port_name):
                    self.assertIn(port_name, by_name)
                    p = by_name[port_name]
                    self.assertEqual(p["port"], number)
                    target = p.get("targetPort", p["port"])
                    resolved = ports.get(target) if isinstance(target, str) else target
                    self.assertEqual(resolved, ports[port_name], f"targetPort {target!r}")
            with self.subTest(service=name, port="http", rule="appProtocol follows TLS"):
                self.assertEqual(by_name["http"].get("appProtocol"), http_app_protocol(self.configmap_env()))
        notes = cluster[0]["metadata"].get("annotations") or {}
        self.assertEqual(notes.get("prometheus.io/scrape"), "true")
        self.assertEqual(notes.get("prometheus.io/port"), str(ports["metrics"]))
        self.assertIn(notes.get("prometheus.io/path", "/metrics"), ("/metrics",))


# --- several replicas over PostgreSQL -------------------------------------------------------------------------------


def replicas_docs():
    """(kind, name) -> document, for deploy/k8s-replicas/."""
    docs = {}
    for path in yaml_files():
        if os.path.dirname(path) == deploy_path("k8s-replicas"):
            for doc in load_yaml(path):
                docs[(doc.get("kind"), doc["metadata"]["name"])] = doc
    return docs


@functools.lru_cache(maxsize=None)
def client_service_config():
    """The service config the Python client builds (python/hpsched/client.py), from the package the build made."""
    sys.path.insert(0, os.path.join(build_dir(), "python"))
    try:
        from hpsched.client import service_config  # noqa: PLC0415 (the built package)
    finally:
        sys.path.pop(0)
    return json.loads(service_config())


class ReplicasConfigTest(unittest.TestCase):
    """deploy/k8s-replicas/ and deploy/docker-compose.replicas.yml: N replicas on PostgreSQL."""

    maxDiff = None

    def setUp(self):
        need_yaml(self)
        self.docs = replicas_docs()

    def doc(self, kind, name):
        self.assertIn((kind, name), self.docs, f"deploy/k8s-replicas/ has no {kind} {name}")
        return self.docs[(kind, name)]

    def test_kinds_and_no_namespace(self):
        self.assertEqual(sorted(self.docs), [("ConfigMap", "hpsched"), ("ConfigMap", "hpsched-client"),
                                             ("Deployment", "hpsched"), ("Service", "hpsched-replicas"),
                                             ("Service", "postgres"), ("StatefulSet", "postgres")])
        for (kind, name), doc in self.docs.items():
            with self.subTest(doc=f"{kind} {name}"):
                self.assertNotIn("namespace", doc["metadata"])

    def server_env(self):
        env = dict(self.doc("ConfigMap", "hpsched")["data"])
        for value in env.values():
            self.assertIsInstance(value, str, "ConfigMap values are strings")
        return env

    def test_server_settings(self):
        env = self.server_env()
        flags = server_flags()
        for var in env:
            with self.subTest(variable=var):
                self.assertTrue(env_var_flag(var) in flags, f"{var} is no flag of hpsched-server")
        self.assertEqual(env.get("HPSCHED_STORE"), "postgres")
        self.assertNotIn("HPSCHED_POSTGRES_URL", env, "the URL holds a password: it comes from a Secret")
        self.assertNotIn("HPSCHED_DATA_DIR", env, "the replicas keep nothing on disk")
        age = parse_duration(env.get("HPSCHED_MAX_CONNECTION_AGE", "0s"))
        self.assertGreater(age, 0, "--max_connection_age set, so clients reconnect and rebalance")
        self.assertLess(age, 3600, "--max_connection_age short enough to rebalance within the hour")
        self.assertTrue(env.get("HPSCHED_AUTH_TOKEN_FILE"), "auth on (the server refuses [::] without it)")

    def test_deployment(self):
        dep = self.doc("Deployment", "hpsched")
        spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
        self.assertGreaterEqual(spec["replicas"], 2, "N replicas")
        self.assertEqual(spec.get("strategy", {}).get("type"), "RollingUpdate")
        self.assertEqual(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 1, "one replica at a time")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        self.assertNotIn("volumeClaimTemplates", spec)
        containers = pod["containers"]
        self.assertEqual(len(containers), 1)
        c = containers[0]
        self.assertEqual([r["configMapRef"]["name"] for r in c["envFrom"]], ["hpsched"])
        url = [e for e in c.get("env") or [] if e["name"] == "HPSCHED_POSTGRES_URL"]
        self.assertEqual(len(url), 1, "HPSCHED_POSTGRES_URL in the container's env")
        self.assertEqual(url[0]["valueFrom"]["secretKeyRef"]["name"], "hpsched-postgres",
                         "HPSCHED_POSTGRES_URL from the Secret hpsched-postgres")
        self.assertNotIn("value", url[0])
        for item in c.get("env") or []:
            self.assertTrue(env_var_flag(item["name"]) in server_flags(), f"{item['name']} is no server flag")
        # As the single server's StatefulSet: ports, gRPC probes on the health-only port, security, image.
        env = self.server_env()
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports, {"grpc": int(env["HPSCHED_PORT"]), "metrics": int(env["HPSCHED_METRICS_PORT"]),
                                 "health": int(env["HPSCHED_HEALTH_PORT"]), "http": int(env["HPSCHED_HTTP_PORT"])})
        self.assertEqual(ports["http"], default_http_port())
        check_http_settings(self, env, "deploy/k8s-replicas/configmap.yaml")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            with self.subTest(probe=probe):
                self.assertEqual(set(c[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"}, {"grpc"})
                self.assertEqual(c[probe]["grpc"]["port"], ports["health"])
        self.assertEqual(c["readinessProbe"]["grpc"].get("service"), GRPC_SERVICE)
        merged = dict(pod.get("securityContext") or {}, **(c.get("securityContext") or {}))
        self.assertIs(merged.get("runAsNonRoot"), True)
        self.assertEqual(merged.get("runAsUser"), UID)
        self.assertIs(c["securityContext"].get("readOnlyRootFilesystem"), True)
        self.assertIs(c["securityContext"].get("allowPrivilegeEscalation"), False)
        self.assertIn("ALL", c["securityContext"]["capabilities"]["drop"])
        self.assertIs(pod.get("enableServiceLinks"), False)
        grace = parse_duration(env.get("HPSCHED_SHUTDOWN_GRACE", server_flags()["shutdown_grace"]))
        self.assertGreater(pod.get("terminationGracePeriodSeconds", 30), grace)
        compose = load_yaml(deploy_path("docker-compose.yml"))[0]["services"]["hpsched"]
        self.assertEqual(c["image"], compose["image"], "the image compose builds")
        mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
        self.assertNotIn(DATA_DIR, mounts, "no data volume: the state is in PostgreSQL")
        budget = int(env.get("HPSCHED_MAX_CALL_MEMORY_BYTES", server_flags()["max_call_memory_bytes"]))
        self.assertLess(budget, parse_quantity(c["resources"]["limits"]["memory"]) * 0.75)

    def test_headless_service_for_client_side_balancing(self):
        svc = self.doc("Service", "hpsched-replicas")
        dep = self.doc("Deployment", "hpsched")
        self.assertEqual(svc["spec"].get("clusterIP"), "None", "headless: one DNS record per replica")
        self.assertIs(svc["spec"].get("publishNotReadyAddresses", False), False, "only ready replicas in DNS")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(labels.get(k), v, "the Service selects the replicas")
        ports = {p["name"]: p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
        by_name = {p["name"]: p for p in svc["spec"]["ports"]}
        self.assertEqual(by_name["grpc"]["port"], default_port())
        self.assertEqual(ports[by_name["grpc"]["targetPort"]], ports["grpc"])
        self.assertEqual(by_name["http"]["port"], default_http_port())
        self.assertEqual(ports[by_name["http"]["targetPort"]], ports["http"])
        self.assertEqual(by_name["http"].get("appProtocol"), http_app_protocol(self.server_env()))
        notes = svc["metadata"].get("annotations") or {}
        self.assertEqual(notes.get("prometheus.io/port"), str(ports["metrics"]))

    def test_client_service_config(self):
        cm = self.doc("ConfigMap", "hpsched-client")
        self.assertTrue(is_client_doc(cm))
        data = cm["data"]
        self.assertEqual(set(data), {"HPSCHED_TARGET", "service-config.json"})
        target = data["HPSCHED_TARGET"]
        self.assertRegex(target, r"^dns:///hpsched-replicas(\.[a-z0-9.-]+)?:50051$",
                         "a dns:/// target on the headless Service, so gRPC resolves every replica")
        with open(os.path.join(SOURCE_DIR, "client", "cli", "main.cc")) as f:
            self.assertIn("HPSCHED_TARGET", f.read(), "the CLI reads HPSCHED_TARGET")
        config = json.loads(data["service-config.json"])
        self.assertEqual(config["loadBalancingConfig"], [{"round_robin": {}}])
        # The same config the clients build by themselves.
        self.assertEqual(config, client_service_config())
        retried = {n["method"] for n in config["methodConfig"][0]["name"]}
        self.assertNotIn("DeleteJob", retried)
        self.assertNotIn("WatchJob", retried)
        self.assertEqual(config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"], ["UNAVAILABLE"])

    def test_postgres_statefulset(self):
        sts = self.doc("StatefulSet", "postgres")
        svc = self.doc("Service", "postgres")
        self.assertEqual(sts["spec"]["serviceName"], "postgres")
        c = sts["spec"]["template"]["spec"]["containers"][0]
        self.assertRegex(c["image"], r"^postgres:15[.-]", "PostgreSQL 15, pinned to a major version")
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"], "hpsched-postgres")
        self.assertNotIn("value", env["POSTGRES_PASSWORD"])
        claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        self.assertIn(mounts["/var/lib/postgresql/data"], claims, "the data directory is a PVC")
        self.assertTrue(env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/"), "PGDATA below the mount")
        args = " ".join(c.get("args") or [])
        self.assertNotRegex(args, r"fsync=off|synchronous_commit=off", "acknowledged means on disk")
        self.assertEqual(svc["spec"]["ports"][0]["port"], 5432)
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(sts["spec"]["template"]["metadata"]["labels"].get(k), v)
        # The URL in the docs points at this Service.
        with open(deploy_path("k8s-replicas", "deployment.yaml")) as f:
            self.assertIn("@postgres:5432/hpsched", f.read())
        with open(deploy_path("k8s-replicas", "postgres.yaml")) as f:
            self.assertRegex(f.read(), r"(?i)managed PostgreSQL.*operator", "a note on production PostgreSQL")

    def test_compose_two_replicas(self):
        compose = load_yaml(deploy_path("docker-compose.replicas.yml"))[0]
        services = compose["services"]
        replicas = {n: s for n, s in services.items() if "build" in s}
        self.assertEqual(len(replicas), 2, "two replicas")
        self.assertIn("postgres", services)
        pg = services["postgres"]
        self.assertRegex(pg["image"], r"^postgres:15[.-]")
        self.assertIn("healthcheck", pg)
        published = []
        for name, svc in replicas.items():
            with self.subTest(replica=name):
                env = compose_env(svc)
                for var in env:
                    self.assertTrue(env_var_flag(var) in server_flags(), f"{var} is no server flag")
                self.assertEqual(env["HPSCHED_STORE"], "postgres")
                url = env["HPSCHED_POSTGRES_URL"]
                self.assertRegex(url, r"^postgresql://hpsched:\$\{[A-Z_]+(:\?[^}]*)?\}@postgres:5432/hpsched$",
                                 "the URL names the postgres service; its password comes from the environment")
                self.assertGreater(parse_duration(env["HPSCHED_MAX_CONNECTION_AGE"]), 0)
                self.assertEqual(svc["depends_on"]["postgres"]["condition"], "service_healthy")
                self.assertEqual(os.path.normpath(os.path.join(deploy_path(), svc["build"]["context"])),
                                 os.path.normpath(SOURCE_DIR))
                self.assertFalse([dst for _, dst in compose_mounts(svc) if dst == DATA_DIR], "no data volume")
                self.assertEqual(compose_container_ports(svc),
                                 [default_port(), default_metrics_port(), default_http_port()])
                check_http_settings(self, env, f"deploy/docker-compose.replicas.yml {name}")
                check_http_published_on_loopback(self, svc, default_http_port(),
                                                 f"deploy/docker-compose.replicas.yml {name}")
                published += [compose_host_port(p) for p in svc["ports"]]
                grace = parse_duration(env.get("HPSCHED_SHUTDOWN_GRACE", server_flags()["shutdown_grace"]))
                self.assertGreater(parse_duration(svc["stop_grace_period"]), grace)
        self.assertEqual(len(published), len(set(published)), "each replica publishes its own host ports")
        self.assertNotRegex(json.dumps(compose), r"password@|:[A-Za-z0-9]{6,}@postgres", "no password in the file")


class ReplicasRuntimeTest(unittest.TestCase):
    """Two servers started with deploy/k8s-replicas/configmap.yaml's settings (addresses and ports moved to loopback
    and 0, a token file of the test's own) and HPSCHED_POSTGRES_URL from the environment (ctest's
    deploy_replicas_runtime runs this inside tests/lib/pg_cluster.py): both serve, a job created through one is read
    through the other and through the CLI given both addresses, SIGTERM gives exit 0."""

    def test_start_errors_name_the_url_not_its_password(self):
        root = tempfile.mkdtemp(prefix="hpsched-deploy-replicas-")
        self.addCleanup(shutil.rmtree, root, True)
        base = {"HPSCHED_ADDRESS": "127.0.0.1", "HPSCHED_PORT": "0", "HPSCHED_METRICS_PORT": "0",
                "HPSCHED_STORE": "postgres"}
        r = subprocess.run([SERVER], env=base, cwd=root, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot start: INVALID_ARGUMENT: --postgres_url: must be set with --store=postgres",
                      r.stdout + r.stderr)
        dead = free_loopback_port()
        url = f"postgresql://hpsched:s3cret-deploy-pw@127.0.0.1:{dead}/hpsched?connect_timeout=5"
        r = subprocess.run([SERVER], env=dict(base, HPSCHED_POSTGRES_URL=url), cwd=root, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"cannot start: UNAVAILABLE: postgres hpsched@127.0.0.1:{dead}/hpsched: cannot connect: ",
                      r.stdout + r.stderr)
        self.assertNotIn("s3cret-deploy-pw", r.stdout + r.stderr)

    def test_two_replicas_from_the_configmap(self):
        url = os.environ.get("HPSCHED_POSTGRES_URL")
        if not url:
            self.skipTest("HPSCHED_POSTGRES_URL is not set (ctest runs this through tests/lib/pg_cluster.py)")
        need_yaml(self)
        base = dict(replicas_docs()[("ConfigMap", "hpsched")]["data"])
        root = tempfile.mkdtemp(prefix="hpsched-deploy-replicas-")
        self.addCleanup(shutil.rmtree, root, True)
        tokens = os.path.join(root, "tokens")
        reader = "deploy-replicas-reader-token-0123456789"
        with open(tokens, "w") as f:
            f.write(f"admin deploy-replicas-admin-token-0123456789\nreader {reader}\n")
        token_file = os.path.join(root, "token")
        with open(token_file, "w") as f:
            f.write("deploy-replicas-admin-token-0123456789\n")
        ports = []
        http_ports = []
        procs = []

        def start_replica(i):
            port_file, http_port_file = os.path.join(root, f"port{i}"), os.path.join(root, f"http_port{i}")
            env = dict(base, HPSCHED_ADDRESS="127.0.0.1", HPSCHED_PORT="0", HPSCHED_PORT_FILE=port_file,
                       HPSCHED_HEALTH_PORT="0", HPSCHED_METRICS_PORT="0", HPSCHED_HTTP_ADDRESS="127.0.0.1",
                       HPSCHED_HTTP_PORT_FILE=http_port_file, HPSCHED_AUTH_TOKEN_FILE=tokens,
                       HPSCHED_POSTGRES_URL=url)
            log_path = os.path.join(server_process.log_dir(build_dir()), f"replica{i}.log")
            server_process.keep_log(log_path)

            def start(e):
                log = open(log_path, "ab")
                self.addCleanup(log.close)
                proc = subprocess.Popen([SERVER], env=e, cwd=root, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
                self.addCleanup(kill_if_running, proc)
                return proc

            proc, port, http_port = start_serving(self, start, env, log_path, port_file, http_port_file,
                                                  f"replica {i}")
            password = url.rsplit("@", 1)[0].rsplit(":", 1)[-1]
            self.assertNotIn(password, read(log_path, 1 << 20), "the log shows the database password")
            return proc, port, http_port

        for i in range(2):
            proc, port, http_port = start_replica(i)
            ports.append(port)
            http_ports.append(http_port)
            procs.append(proc)
            check_dashboard(self, http_port, token=reader, jobs=[])

        def cli(port_list, *args):
            target = ",".join(f"127.0.0.1:{p}" for p in port_list)
            return subprocess.run([CLI, f"--target={target}", f"--token_file={token_file}", *args], env={},
                                  capture_output=True, text=True, timeout=60)

        r = cli(ports[:1], "create", "deploy-replicas", '--schedule={"constant": {}}', "--base=0.5")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The other replica loads it from PostgreSQL at start; a replica started now sees it too.
        r = cli(ports, "list")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The other replica's JSON API has it once the change reaches it (LISTEN/NOTIFY, or the catch-up read every
        # --replica_catchup_interval): a bounded wait, not a speed check.
        deadline = time.monotonic() + START_WAIT
        status, body = None, ""
        while time.monotonic() < deadline:
            status, _, body = http_get(http_ports[1], "/v1/jobs/deploy-replicas", reader)
            if status != 404:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200, f"GET /v1/jobs/deploy-replicas on the other replica: {body[:500]}")
        self.assertEqual(json.loads(body)["name"], "jobs/deploy-replicas")
        check_dashboard(self, http_ports[1], token=reader, jobs=["deploy-replicas"])
        for i, proc in enumerate(procs):
            with self.subTest(replica=i):
                self.assertEqual(stop(proc), 0, "SIGTERM: exit 0")
        proc, port, http_port = start_replica(2)
        r = cli([port], "get", "deploy-replicas")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("deploy-replicas", r.stdout)
        check_dashboard(self, http_port, token=reader, jobs=["deploy-replicas"])  # loaded from PostgreSQL at start
        self.assertEqual(stop(proc), 0)


# ======================================================================================================================


def ldd_libraries(binary):
    """[(soname, path or None)] from ldd; path None means `not found`."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"ldd {binary}: exit {r.returncode}\n{r.stderr}")
    libs = []
    for line in r.stdout.splitlines():
        line = line.strip()
        m = re.match(r"^(\S+) => (\S+)", line)
        if m:
            libs.append((m.group(1), None if m.group(2) == "not" else m.group(2)))
        elif line.startswith("/"):
            path = line.split()[0]
            libs.append((os.path.basename(path), path))
        # linux-vdso.so.1 (the kernel's) has no file
    return libs


def path_aliases(path):
    """The names dpkg may have recorded for a library: as ldd prints it, resolved, and across merged /usr."""
    names = [path, os.path.realpath(path)]
    for p in list(names):
        names.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    return list(dict.fromkeys(names))


def dpkg_owners(paths):
    """{path: Debian packages (no :arch) owning it}, with one dpkg-query for all of them."""
    aliases = {path: path_aliases(path) for path in paths}
    everything = sorted({a for names in aliases.values() for a in names})
    r = subprocess.run(["dpkg-query", "-S"] + everything, capture_output=True, text=True, timeout=60)
    recorded = {}  # path as dpkg knows it -> packages
    for line in r.stdout.splitlines():
        packages, sep, file_path = line.partition(": ")
        if sep and not packages.startswith("diversion "):
            recorded.setdefault(file_path.strip(), set()).update(p.strip().split(":")[0] for p in packages.split(","))
    owners = {}
    for path, names in aliases.items():
        found = next((recorded[n] for n in names if n in recorded), None)
        if found is None:  # last resort: by file name, keeping entries that are the same file
            r = subprocess.run(["dpkg-query", "-S", "*/" + os.path.basename(path)], capture_output=True, text=True,
                               timeout=30)
            found = parse_dpkg_s(r.stdout, os.path.realpath(path)) if r.returncode == 0 else set()
        owners[path] = found
    return owners


def parse_dpkg_s(text, same_as):
    owners = set()
    for line in text.splitlines():
        packages, sep, file_path = line.partition(": ")
        if not sep or packages.startswith("diversion "):
            continue
        if same_as is not None and os.path.realpath(file_path.strip()) != same_as:
            continue
        owners.update(p.strip().split(":")[0] for p in packages.split(","))
    return owners


SANITIZER_LIBS = re.compile(r"^lib(asan|tsan|ubsan|lsan|hwasan)\.so|^libclang_rt\.")


@functools.lru_cache(maxsize=None)
def sanitizer_build():
    """The sanitizer the server was built with (tools/sanitize.sh, -DHPSCHED_SANITIZE=...), or None. Such binaries are
    not what the image ships (the Dockerfile runs a plain `make build-server`)."""
    for soname, _ in ldd_libraries(SERVER):
        m = SANITIZER_LIBS.match(soname)
        if m:
            return soname
    if shutil.which("readelf"):
        r = subprocess.run(["readelf", "--dyn-syms", "-W", SERVER], capture_output=True, text=True, timeout=30)
        m = re.search(r"\b__(asan|tsan|msan|hwasan)_init\b", r.stdout)
        if m:
            return m.group(1) + " (static runtime)"
    return None


class PackagesTest(unittest.TestCase):
    def test_runtime_packages_are_exactly_what_ldd_needs(self):
        for tool in ("dpkg-query", "ldd"):
            if not shutil.which(tool):
                self.skipTest(f"{tool} is not available: cannot map the binaries' shared libraries to Debian "
                              "packages, so the Dockerfile's runtime package list is NOT checked here")
        libraries = {}  # path -> soname
        for binary in (SERVER, CLI):
            for soname, path in ldd_libraries(binary):
                if SANITIZER_LIBS.match(soname):
                    print(f"\n# {soname}: a sanitizer runtime (this build is instrumented; the image's is not): "
                          "not a package of the image", file=sys.stderr)
                    continue
                with self.subTest(binary=os.path.basename(binary), library=soname):
                    self.assertIsNotNone(path, f"ldd: {soname} not found for {binary}")
                if path is not None:
                    libraries[path] = soname
        needed = {}  # package -> {library}
        unowned = []
        for path, owners in dpkg_owners(sorted(libraries)).items():
            if not owners:
                unowned.append(path)
            for p in owners:
                needed.setdefault(p, set()).add(libraries[path])
        self.assertEqual(unowned, [], "libraries no Debian package owns (built locally? the image cannot get them)")
        listed = Dockerfile(deploy_path("Dockerfile")).apt_packages()
        self.assertEqual(len(listed), len(set(listed)), f"duplicates in {listed}")
        print("\n# ldd -> dpkg -S (hpsched-server, hpsched):", file=sys.stderr)
        for p in sorted(needed):
            libs = sorted(needed[p])
            print(f"#   {p}: {', '.join(libs[:3])}{f' (+{len(libs) - 3} more)' if len(libs) > 3 else ''}",
                  file=sys.stderr)
        missing = sorted(set(needed) - set(listed))
        self.assertEqual(missing, [], "packages the runtime stage must install: " +
                         "; ".join(f"{p} ({', '.join(sorted(needed[p]))})" for p in missing))
        extra = sorted(set(listed) - set(needed) - set(EXTRA_PACKAGES_OK))
        self.assertEqual(extra, [], "packages the runtime stage installs but no library of the binaries comes from")
        for p, why in EXTRA_PACKAGES_OK.items():
            self.assertIn(p, listed, f"{p}: {why}")


# ======================================================================================================================


class RuntimeTest(unittest.TestCase):
    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="hpsched-deploy-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def log_path(self, name):
        """A server log under the build tree (BUILD/test-logs/deploy_test/): kept, and its tail printed, when a test
        fails; removed when every test passes."""
        path = os.path.join(server_process.log_dir(build_dir()), name)
        server_process.keep_log(path)
        return path

    def start(self, argv, env, log_path, cwd):
        log = open(log_path, "ab")  # a restart appends: the log shows both runs
        self.addCleanup(log.close)
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        self.addCleanup(kill_if_running, proc)
        return proc

    def test_environment_sets_flags(self):
        problem = env_support_problem()
        self.assertIsNone(problem, problem)

    def test_runtime_file_set(self):
        """The image's layout on this host's libraries: only HPSCHED_* variables, no flags, an empty environment."""
        problem = env_support_problem()
        if problem:
            self.fail(problem + " -- not starting it: it would listen on its default ports on every interface")
        root = self.tmpdir()
        bin_dir = root + BIN_DIR
        install_binaries(bin_dir)
        os.makedirs(root + DATA_DIR)
        os.makedirs(os.path.join(root, "tmp"))

        with self.subTest("no RPATH/RUNPATH into the source or build tree"):
            for name in ("hpsched-server", "hpsched"):
                r = subprocess.run(["readelf", "-d", os.path.join(bin_dir, name)], capture_output=True, text=True,
                                   timeout=30) if shutil.which("readelf") else None
                if r is not None:
                    for line in r.stdout.splitlines():
                        if "RPATH" in line or "RUNPATH" in line:
                            build_dir = os.path.dirname(os.path.dirname(os.path.abspath(SERVER)))
                            self.assertNotIn(SOURCE_DIR, line, f"{name}: {line.strip()}")
                            self.assertNotIn(build_dir, line, f"{name}: {line.strip()}")

        port_file = os.path.join(root, "tmp", "port")
        http_port_file = os.path.join(root, "tmp", "http_port")
        # The image's ENV, its ports moved to loopback and free ones (HTTP's address follows HPSCHED_ADDRESS).
        env = dict(Dockerfile(deploy_path("Dockerfile")).env(), HPSCHED_ADDRESS="127.0.0.1", HPSCHED_PORT="0",
                   HPSCHED_PORT_FILE=port_file, HPSCHED_METRICS_PORT="0", HPSCHED_HTTP_PORT_FILE=http_port_file,
                   HPSCHED_LOG_FORMAT="json")
        if "data_dir" in server_flags():  # the image's data directory, inside DIR (never this host's)
            env["HPSCHED_DATA_DIR"] = root + DATA_DIR
        log_path = self.log_path("runtime_file_set.log")
        proc, port, http_port = start_serving(
            self, lambda e: self.start([os.path.join(bin_dir, "hpsched-server")], e, log_path, root + DATA_DIR), env,
            log_path, port_file, http_port_file, "the image's layout")

        with self.subTest("the dashboard and the JSON API answer on the HTTP port"):
            check_dashboard(self, http_port, jobs=[])

        with self.subTest("hpsched health answers 0 (SERVING)"):
            r = subprocess.run([os.path.join(bin_dir, "hpsched"), "health", f"--target=127.0.0.1:{port}"], env={},
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, health_failure_hint(r))

        with self.subTest("SIGTERM: exit 0"):
            rc = stop(proc)
            self.assertEqual(rc, 0, f"exit {rc} after SIGTERM (None: did not stop within {WAIT:.0f}s):\n"
                                    f"{read(log_path)}")

        with self.subTest("HPSCHED_LOG_FORMAT=json: every log line is a JSON object"):
            lines = [l for l in read(log_path, 1 << 20).splitlines() if l.strip()]
            self.assertTrue(lines, "no log output")
            for line in lines:
                try:
                    self.assertIsInstance(json.loads(line), dict, line)
                except ValueError:
                    self.fail(f"not JSON: {line}")

    def test_settings_serve_the_dashboard(self):
        """The server as compose and deploy/k8s/ configure it (the image's ENV, then the file's settings; addresses
        moved to loopback, ports to free ones, the data directory and token file to the test's): the dashboard and
        the JSON API answer on the HTTP port with the gRPC port's tokens, and not without one, which is why no probe
        is an HTTP probe."""
        need_yaml(self)
        problem = env_support_problem()
        self.assertIsNone(problem, problem)
        configmap = [d for _, d in k8s_docs() if d.get("kind") == "ConfigMap"]
        self.assertEqual(len(configmap), 1)
        sources = {
            "docker-compose.yml": compose_env(load_yaml(deploy_path("docker-compose.yml"))[0]["services"]["hpsched"]),
            "k8s/configmap.yaml": dict(configmap[0]["data"]),
        }
        reader, admin = "deploy-reader-token-0123456789", "deploy-admin-token-0123456789"
        for name, settings in sources.items():
            with self.subTest(settings=name):
                self.assertTrue(settings.get("HPSCHED_AUTH_TOKEN_FILE"), f"{name}: tokens on")
                root = self.tmpdir()
                with open(os.path.join(root, "tokens"), "w") as f:
                    f.write(f"reader {reader}\nadmin {admin}\n")
                with open(os.path.join(root, "admin-token"), "w") as f:
                    f.write(admin + "\n")
                os.makedirs(os.path.join(root, "data"))
                env = dict(Dockerfile(deploy_path("Dockerfile")).env(), **settings)
                for var in ("HPSCHED_ADDRESS", "HPSCHED_METRICS_ADDRESS", "HPSCHED_HEALTH_ADDRESS",
                            "HPSCHED_HTTP_ADDRESS"):
                    if var in env:
                        env[var] = "127.0.0.1"
                env.update(HPSCHED_PORT="0", HPSCHED_PORT_FILE=os.path.join(root, "port"), HPSCHED_METRICS_PORT="0",
                           HPSCHED_HEALTH_PORT="0", HPSCHED_HTTP_PORT_FILE=os.path.join(root, "http_port"),
                           HPSCHED_DATA_DIR=os.path.join(root, "data"),
                           HPSCHED_AUTH_TOKEN_FILE=os.path.join(root, "tokens"))
                log_path = self.log_path(f"settings_{name.replace('/', '_')}.log")
                proc, port, http_port = start_serving(
                    self, lambda e: self.start([SERVER], e, log_path, root), env, log_path,
                    os.path.join(root, "port"), os.path.join(root, "http_port"), name)
                check_dashboard(self, http_port, token=reader, jobs=[])
                r = subprocess.run([CLI, f"--target=127.0.0.1:{port}", f"--token_file={root}/admin-token", "create",
                                    "deploy-http", '--schedule={"step": {"step_size": 10, "gamma": 0.5}}', "--base=0.5"], env={},
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                check_dashboard(self, http_port, token=reader, jobs=["deploy-http"])
                status, _, body = http_get(http_port, "/v1/jobs/deploy-http:values?step=9&count=2", reader)
                self.assertEqual(status, 200, body)
                self.assertEqual(json.loads(body)["series"][0]["values"], [0.5, 0.25])
                self.assertEqual(stop(proc), 0, f"SIGTERM: exit 0\n{read(log_path)}")

    def test_image_root(self):
        """A root holding only the files of the Dockerfile's runtime packages and the two binaries, run as uid 10001
        through chroot: what the runtime stage provides, minus the rest of debian:bookworm-slim."""
        if os.geteuid() != 0:
            self.skipTest("needs root for chroot: the image's file set is only checked on this host's libraries")
        if sanitizer_build():
            self.skipTest(f"the binaries are a sanitizer build ({sanitizer_build()}), not the image's: their runtime "
                          "is not in the image and needs /proc")
        chroot = shutil.which("chroot") or ("/usr/sbin/chroot" if os.path.exists("/usr/sbin/chroot") else None)
        for tool in (chroot, shutil.which("dpkg-query"), shutil.which("readelf")):
            if not tool:
                self.skipTest("needs chroot, dpkg-query and readelf")
        problem = env_support_problem()
        if problem:
            self.fail(problem)
        if "data_dir" in server_flags():
            self.assertEqual(server_flags()["data_dir"], DATA_DIR, "the server's default --data_dir")
        packages = Dockerfile(deploy_path("Dockerfile")).apt_packages()
        root = self.tmpdir()
        os.chmod(root, 0o755)
        # The merged-/usr layout of Debian 12: /lib -> usr/lib and so on, as on this host.
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            if os.path.islink("/" + name):
                target = os.readlink("/" + name)
                os.makedirs(os.path.join(root, target.lstrip("/")) if not target.startswith("/") else root + target,
                            exist_ok=True)
                os.symlink(target, os.path.join(root, name))
        copied = 0
        for package in packages:
            r = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{package} (in the Dockerfile) is not installed here: {r.stderr}")
            for path in r.stdout.splitlines():
                if path.startswith(("/usr/share/doc", "/usr/share/man", "/usr/share/lintian")):
                    continue
                if not os.path.lexists(path) or (os.path.isdir(path) and not os.path.islink(path)):
                    continue
                dest_dir = root + os.path.realpath(os.path.dirname(path))
                dest = os.path.join(dest_dir, os.path.basename(path))
                if os.path.lexists(dest):
                    continue
                os.makedirs(dest_dir, exist_ok=True)
                if os.path.islink(path):
                    os.symlink(os.readlink(path), dest)
                else:
                    shutil.copy2(path, dest)
                copied += 1
        install_binaries(root + BIN_DIR)
        os.makedirs(os.path.join(root, "tmp"))
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.makedirs(root + DATA_DIR)
        os.chown(root + DATA_DIR, UID, UID)
        os.chmod(root + DATA_DIR, 0o750)

        def in_root(*argv):
            return [chroot, f"--userspec={UID}:{UID}", root] + list(argv)

        interp = None
        r = subprocess.run(["readelf", "-l", SERVER], capture_output=True, text=True, timeout=30)
        m = re.search(r"Requesting program interpreter: (\S+)\]", r.stdout)
        if m:
            interp = m.group(1)
        probe = subprocess.run(in_root(f"{BIN_DIR}/hpsched", "--help"), env={}, capture_output=True, text=True,
                               timeout=30)
        if probe.returncode == 125 and "not permitted" in probe.stderr:
            self.skipTest(f"chroot is not permitted here: {probe.stderr.strip()}")

        for name in ("hpsched-server", "hpsched"):
            with self.subTest(f"ld.so finds every library of {name} in the package files"):
                self.assertIsNotNone(interp, "no PT_INTERP in the server")
                r = subprocess.run(in_root(interp, "--list", f"{BIN_DIR}/{name}"), env={}, capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertNotIn("not found", r.stdout)

        log_path = self.log_path("image_root.log")  # outside the root: the server's user cannot touch it
        port = proc = http_port = None
        metrics_port = None
        for _ in range(3):  # the metrics port is picked here, so another process may take it first
            metrics_port = free_loopback_port()
            # The image's ENV, moved to loopback and free ports; start_serving picks the HTTP port.
            env = dict(Dockerfile(deploy_path("Dockerfile")).env(), HPSCHED_ADDRESS="127.0.0.1", HPSCHED_PORT="0",
                       HPSCHED_PORT_FILE="/tmp/port", HPSCHED_METRICS_ADDRESS="127.0.0.1",
                       HPSCHED_METRICS_PORT=str(metrics_port), HPSCHED_HTTP_PORT_FILE="/tmp/http_port",
                       HPSCHED_LOG_FORMAT="json")
            offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
            try:
                proc, port, http_port = start_serving(
                    self, lambda e: self.start(in_root(f"{BIN_DIR}/hpsched-server"), e, log_path, "/"), env, log_path,
                    os.path.join(root, "tmp", "port"), os.path.join(root, "tmp", "http_port"), "in the chroot")
                break
            except AssertionError:
                # start_serving stopped it, so two servers never run on one data directory; tried again only if
                # this one's own start failed on the metrics port.
                if "metrics" not in read_since(log_path, offset):
                    raise
        self.assertIsNotNone(port, f"no port file within {START_WAIT:.0f}s in the chroot ({copied} package "
                                   f"files):\n{read(log_path)}")

        with self.subTest("the CLI in the image lists jobs (gRPC round trip)"):
            r = subprocess.run(in_root(f"{BIN_DIR}/hpsched", f"--target=127.0.0.1:{port}", "list"), env={},
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        with self.subTest("hpsched health answers 0 (SERVING) in the image"):
            r = subprocess.run(in_root(f"{BIN_DIR}/hpsched", "health", f"--target=127.0.0.1:{port}"), env={},
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, health_failure_hint(r))

        with self.subTest("/metrics answers"):
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
                body = resp.read().decode(errors="replace")
                self.assertEqual(resp.status, 200)
                self.assertIn("# TYPE", body)

        durable = server_flags().get("store") == "sqlite"
        spec = '{"step":{"step_size":10,"gamma":0.5}}'
        if durable:
            with self.subTest("CreateJob through the CLI"):
                r = subprocess.run(in_root(f"{BIN_DIR}/hpsched", f"--target=127.0.0.1:{port}", "create", "deploy-check",
                                           "--schedule", spec, "--base", "0.1"), env={}, capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        with self.subTest("the dashboard and the JSON API answer in the image, and list the job"):
            check_dashboard(self, http_port, jobs=["deploy-check"] if durable else [])

        with self.subTest("SIGTERM: exit 0"):
            rc = stop(proc)
            self.assertEqual(rc, 0, f"exit {rc} after SIGTERM:\n{read(log_path)}")

        if durable:
            with self.subTest(f"the job survives a restart: the store is in {DATA_DIR}, written as uid {UID}"):
                self.assertTrue(os.listdir(root + DATA_DIR), f"nothing written to {DATA_DIR}")
                os.remove(os.path.join(root, "tmp", "port"))
                proc = self.start(in_root(f"{BIN_DIR}/hpsched-server"),
                                  dict(env, HPSCHED_METRICS_PORT="0", HPSCHED_HTTP_PORT="0"), log_path, "/")
                port = wait_for_port_file(proc, os.path.join(root, "tmp", "port"))
                self.assertIsNotNone(port, f"no port file after the restart:\n{read(log_path)}")
                r = subprocess.run(in_root(f"{BIN_DIR}/hpsched", f"--target=127.0.0.1:{port}", "get", "deploy-check"),
                                   env={}, capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(stop(proc), 0, read(log_path))


def main():
    global SOURCE_DIR, SERVER, CLI
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--server", required=True, help="the built hpsched-server")
    parser.add_argument("--cli", required=True, help="the built hpsched CLI")
    args, rest = parser.parse_known_args()
    SOURCE_DIR = os.path.abspath(args.source_dir)
    SERVER = os.path.abspath(args.server)
    CLI = os.path.abspath(args.cli)
    for binary in (SERVER, CLI):
        if not os.access(binary, os.X_OK):
            print(f"not executable: {binary} (build it first)", file=sys.stderr)
            return 1
    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    server_process.finish(program.result.wasSuccessful())
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
