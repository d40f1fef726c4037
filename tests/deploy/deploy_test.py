#!/usr/bin/env python3
"""Checks deploy/ against the real binaries.

  deploy_test.py --source-dir SRC --server BUILD/server/hpsched-server --cli BUILD/client/hpsched [unittest args]

ConfigTest    every YAML file parses; the ports, addresses, data directory and HPSCHED_* variables of the Dockerfile,
              the compose file, prometheus.yml and the Kubernetes manifests agree with each other and with the flags
              and defaults that `hpsched-server --helpfull` prints (nothing is hard-coded here but uid 10001 and the
              image's paths); probes are gRPC probes on the health-only port (or the gRPC port); the health checks
              use `hpsched health`; the Kubernetes security settings; deploy/README.md's settings table matches the flags; the build context
              filter keeps every source file and drops build trees.
PackagesTest  the Dockerfile's runtime packages are exactly the Debian packages owning the shared libraries `ldd`
              reports for both binaries (`dpkg -S`), plus ca-certificates. Skipped when dpkg is not available.
RuntimeTest   the binaries laid out as in the image (DIR/usr/local/bin, stripped like the Dockerfile does), started
              with only HPSCHED_* variables: port file, `hpsched health`, JSON logs, SIGTERM -> exit 0. As root, also
              in a chroot holding only the files of the Dockerfile's runtime packages, as uid 10001 (ld.so resolves
              every library, the CLI talks to the server, /metrics answers, a job survives a restart in the data
              directory). The server's data directory is always inside the test's temporary directory. Loopback
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
    if "port" not in flags or "metrics_port" not in flags:
        raise AssertionError(
            f"cannot read --port and --metrics_port from `{SERVER} --helpfull` (exit {out.returncode}):\n{text[:3000]}")
    return flags


def default_port():
    return int(server_flags()["port"])


def default_metrics_port():
    return int(server_flags()["metrics_port"])


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
        self.assertEqual(exposed, {default_port(), default_metrics_port()},
                         "EXPOSE = the server's default gRPC and metrics ports")
        env = df.env()
        for var, flag in (("HPSCHED_ADDRESS", "address"), ("HPSCHED_PORT", "port"),
                          ("HPSCHED_METRICS_PORT", "metrics_port")):
            with self.subTest(variable=var):
                self.assertIn(var, env, f"ENV {var}")
                self.assertEqual(env[var], flags[flag], f"ENV {var} = the default of --{flag}")

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
        self.assertEqual(grpc_port, default_port())
        self.assertEqual(metrics_port, default_metrics_port())
        self.assertEqual(sorted(compose_container_ports(svc)), sorted([grpc_port, metrics_port]),
                         "published container ports")

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
        want = {"grpc": default_port(), "metrics": default_metrics_port()}
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
            for port_name, number in (("grpc", default_port()), ("metrics", default_metrics_port())):
                with self.subTest(service=name, port=port_name):
                    self.assertIn(port_name, by_name)
                    p = by_name[port_name]
                    self.assertEqual(p["port"], number)
                    target = p.get("targetPort", p["port"])
                    resolved = ports.get(target) if isinstance(target, str) else target
                    self.assertEqual(resolved, ports[port_name], f"targetPort {target!r}")
        notes = cluster[0]["metadata"].get("annotations") or {}
        self.assertEqual(notes.get("prometheus.io/scrape"), "true")
        self.assertEqual(notes.get("prometheus.io/port"), str(ports["metrics"]))
        self.assertIn(notes.get("prometheus.io/path", "/metrics"), ("/metrics",))


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
        env = {"HPSCHED_ADDRESS": "127.0.0.1", "HPSCHED_PORT": "0", "HPSCHED_PORT_FILE": port_file,
               "HPSCHED_METRICS_PORT": "0", "HPSCHED_HTTP_PORT": "0", "HPSCHED_LOG_FORMAT": "json"}
        if "data_dir" in server_flags():  # the image's data directory, inside DIR (never this host's)
            env["HPSCHED_DATA_DIR"] = root + DATA_DIR
        log_path = self.log_path("runtime_file_set.log")
        proc = self.start([os.path.join(bin_dir, "hpsched-server")], env, log_path, root + DATA_DIR)
        port = wait_for_port_file(proc, port_file)
        self.assertIsNotNone(port, f"no port file within {START_WAIT:.0f}s (exit {proc.poll()}):\n{read(log_path)}")

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
        port = proc = None
        metrics_port = None
        for _ in range(3):  # the metrics port is picked here, so another process may take it first
            metrics_port = free_loopback_port()
            env = {"HPSCHED_ADDRESS": "127.0.0.1", "HPSCHED_PORT": "0", "HPSCHED_PORT_FILE": "/tmp/port",
                   "HPSCHED_METRICS_ADDRESS": "127.0.0.1", "HPSCHED_METRICS_PORT": str(metrics_port),
                   "HPSCHED_HTTP_PORT": "0", "HPSCHED_LOG_FORMAT": "json"}
            offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
            proc = self.start(in_root(f"{BIN_DIR}/hpsched-server"), env, log_path, "/")
            port = wait_for_port_file(proc, os.path.join(root, "tmp", "port"))
            if port is not None:
                break
            # Stopped before another try, so two servers never run on one data directory (a slow one would write
            # the port file later, for the next one's test to read); tried again only if this one's own start
            # failed on the metrics port.
            stop(proc)
            if "metrics" not in read_since(log_path, offset):
                break
        self.assertIsNotNone(port, f"no port file within {START_WAIT:.0f}s in the chroot (exit {proc.poll()}; "
                                   f"{copied} package files):\n{read(log_path)}")

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

        with self.subTest("SIGTERM: exit 0"):
            rc = stop(proc)
            self.assertEqual(rc, 0, f"exit {rc} after SIGTERM:\n{read(log_path)}")

        if durable:
            with self.subTest(f"the job survives a restart: the store is in {DATA_DIR}, written as uid {UID}"):
                self.assertTrue(os.listdir(root + DATA_DIR), f"nothing written to {DATA_DIR}")
                os.remove(os.path.join(root, "tmp", "port"))
                proc = self.start(in_root(f"{BIN_DIR}/hpsched-server"), dict(env, HPSCHED_METRICS_PORT="0"), log_path,
                                  "/")
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
