#!/usr/bin/env python3
"""Checks that the layers link one way, and that their headers include one way too (docs/architecture.md):

    core <- codec <- store, jobs <- service <- server;   client, CLI -> proto (+ codec, core), never the service.

Reads the link graph CMake writes at configure time (cmake/LinkGraph.cmake: "<target> <TYPE>: lib;lib;...") and
fails, naming the path, when a target reaches a library its layer must not link; `--includes server/` fails on an
#include a layer must not make (a header-only type the link graph cannot see). `--self-test` runs both checks on
small cases that break each rule, so each check is known to fail when it should.
"""
import os
import re
import sys

# target -> patterns of libraries it must not reach, directly or through other targets.
GRPC = r"gRPC::.*|grpc.*"
RULES = {
    "hpsched_core": [GRPC, r"protobuf::.*", r"hpsched_.*proto.*", r"spdlog::.*", r"hpsched_(codec|store|jobs|service).*"],
    "hpsched_codec": [GRPC, r"hpsched_store", r"hpsched_sqlite_store", r"hpsched_jobs", r"hpsched_service.*"],
    "hpsched_store": [GRPC, r"hpsched_jobs", r"hpsched_service.*", r"hpsched_server.*"],
    "hpsched_sqlite_store": [GRPC, r"hpsched_jobs", r"hpsched_service.*", r"hpsched_server.*"],
    "hpsched_jobs": [GRPC, r"hpsched_service.*", r"hpsched_server.*"],
    "hpsched_service": [r"hpsched_server.*"],
    # The HTTP front end (server/http/) calls the service over an in-process gRPC channel, like a client.
    "hpsched_http": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*",
                     r"hpsched_metrics"],
    "hpsched_client": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*"],
    "hpsched": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*"],
    "toy-trainer": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*"],
}
# Targets that must exist: a rule on a renamed target would otherwise pass by checking nothing.
REQUIRED = ["hpsched_core", "hpsched_codec", "hpsched_store", "hpsched_sqlite_store", "hpsched_jobs",
            "hpsched_service", "hpsched_client", "hpsched", "hpsched_http"]


def parse(text):
    graph = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        head, _, libs = line.partition(": ")
        target = head.rsplit(" ", 1)[0]
        deps = []
        for lib in libs.split(";"):
            # $<LINK_ONLY:x>, $<BUILD_INTERFACE:x>: the library inside.
            lib = re.sub(r"^\$<[A-Z_]+:(.*)>$", r"\1", lib.strip())
            if lib and not lib.startswith("$<") and not lib.startswith("-"):
                deps.append(lib)
        graph[target] = graph.get(target, []) + deps
    return graph


def path_to(graph, start, pattern):
    """A link path from start to a library matching pattern, or None (depth-first, each node once)."""
    regex = re.compile(pattern)
    seen = set()
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, []):
            if regex.fullmatch(dep):
                return path + [dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, path + [dep]))
    return None


def violations(graph, required=REQUIRED):
    found = [f"{t}: target missing from the link graph" for t in required if t not in graph]
    for target, patterns in RULES.items():
        if target not in graph:
            continue
        for pattern in patterns:
            path = path_to(graph, target, pattern)
            if path:
                found.append(f"{target} must not link {path[-1]}: " + " -> ".join(path))
    return found


def self_test():
    good = {"hpsched_core": ["absl::status"], "hpsched_codec": ["hpsched_core", "hpsched_messages"],
            "hpsched_messages": ["protobuf::libprotobuf"], "hpsched_store": ["hpsched_core"],
            "hpsched_sqlite_store": ["hpsched_store", "hpsched_codec"], "hpsched_jobs": ["hpsched_store"],
            "hpsched_service": ["hpsched_jobs", "gRPC::grpc++"], "hpsched_client": ["hpsched_proto"],
            "hpsched_http": ["hpsched_proto", "hpsched_codec", "gRPC::grpc++"],
            "hpsched": ["hpsched_client", "hpsched_codec"]}
    assert violations(good) == [], violations(good)
    bad_cases = [
        ("hpsched_core", "gRPC::grpc++"),          # core links gRPC
        ("hpsched_messages", "gRPC::grpc++"),      # codec reaches gRPC through its messages
        ("hpsched_sqlite_store", "hpsched_service"),  # the store links the service
        ("hpsched_client", "hpsched_service"),     # a client links the service
        ("hpsched_http", "hpsched_jobs"),          # the HTTP front end goes around the service
    ]
    for target, lib in bad_cases:
        graph = {k: list(v) for k, v in good.items()}
        graph[target].append(lib)
        assert violations(graph), f"no violation found for {target} -> {lib}"
    assert violations({k: v for k, v in good.items() if k != "hpsched_codec"}), "missing target not reported"
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "core"))
        with open(os.path.join(root, "core", "a.h"), "w") as f:
            f.write('#include "core/node.h"\n')
        assert include_violations(root) == [], include_violations(root)
        with open(os.path.join(root, "core", "b.h"), "w") as f:
            f.write('#include <string>\n#include "store/job_store.h"\n')
        assert include_violations(root) == ["core/b.h:2 (core) must not include store/job_store.h"], \
            include_violations(root)
    print("check_layers self-test: 8 passed, 0 failed")


# Header includes the link graph cannot see (a header-only type reached from a lower layer): directory under
# server/ -> include prefixes its files must not use.
INCLUDE_RULES = {
    "core": ["grpc", "grpcpp/", "google/protobuf/", "hpsched/v1/", "spdlog/", "codec/", "store/", "jobs/",
             "service/", "metrics/"],
    "codec": ["grpc", "grpcpp/", "store/", "jobs/", "service/", "metrics/"],
    "store": ["grpc", "grpcpp/", "jobs/", "service/", "metrics/"],
    "jobs": ["grpc", "grpcpp/", "hpsched/v1/", "codec/", "service/", "metrics/"],
    "http": ["service/", "jobs/", "store/", "metrics/"],
    "web": ["grpc", "grpcpp/", "google/protobuf/", "hpsched/v1/", "codec/", "store/", "jobs/", "service/",
            "metrics/", "http/"],
}


def include_violations(server_dir):
    found = []
    include = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
    for layer, banned in INCLUDE_RULES.items():
        layer_dir = os.path.join(server_dir, layer)
        for dirpath, _, names in os.walk(layer_dir):
            for name in sorted(names):
                if not name.endswith((".h", ".cc", ".inc")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    for lineno, line in enumerate(f, 1):
                        m = include.match(line)
                        if m and any(m.group(1).startswith(b) for b in banned):
                            rel = os.path.relpath(path, server_dir)
                            found.append(f"{rel}:{lineno} ({layer}) must not include {m.group(1)}")
    return found


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--includes":
        found = include_violations(sys.argv[2])
        for v in found:
            print("layer violation:", v)
        if not found:
            print(f"includes point one way in {len(INCLUDE_RULES)} layers")
        return 1 if found else 0
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    with open(sys.argv[1]) as f:
        graph = parse(f.read())
    found = violations(graph)
    for v in found:
        print("layer violation:", v)
    if not found:
        print(f"layers link one way: {len(RULES)} targets checked against {len(graph)} in the graph")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
