#!/usr/bin/env python3
"""Checks that the layers link one way (docs/architecture.md):

    core <- codec <- store, jobs <- service <- server;   client, CLI -> proto (+ codec, core), never the service.

Reads the link graph CMake writes at configure time (cmake/LinkGraph.cmake: "<target> <TYPE>: lib;lib;...") and
fails, naming the path, when a target reaches a library its layer must not link. `--self-test` runs the checker
on small graphs that break each rule, so the check itself is known to fail when it should.
"""
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
    "hpsched_client": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*"],
    "hpsched": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*"],
    "toy-trainer": [r"hpsched_service.*", r"hpsched_jobs", r"hpsched_.*store", r"hpsched_server.*"],
}
# Targets that must exist: a rule on a renamed target would otherwise pass by checking nothing.
REQUIRED = ["hpsched_core", "hpsched_codec", "hpsched_store", "hpsched_sqlite_store", "hpsched_jobs",
            "hpsched_service", "hpsched_client", "hpsched"]


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
            "hpsched": ["hpsched_client", "hpsched_codec"]}
    assert violations(good) == [], violations(good)
    bad_cases = [
        ("hpsched_core", "gRPC::grpc++"),          # core links gRPC
        ("hpsched_messages", "gRPC::grpc++"),      # codec reaches gRPC through its messages
        ("hpsched_sqlite_store", "hpsched_service"),  # the store links the service
        ("hpsched_client", "hpsched_service"),     # a client links the service
    ]
    for target, lib in bad_cases:
        graph = {k: list(v) for k, v in good.items()}
        graph[target].append(lib)
        assert violations(graph), f"no violation found for {target} -> {lib}"
    assert violations({k: v for k, v in good.items() if k != "hpsched_codec"}), "missing target not reported"
    print("check_layers self-test: 5 passed, 0 failed")


def main():
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
