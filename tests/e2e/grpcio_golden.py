#!/usr/bin/python3
"""Checks a running hpsched-server against the PyTorch golden values, through Python grpcio.

Usage: grpcio_golden.py SERVER_ADDR GOLDEN_JSON

For every case of GOLDEN_JSON (tests/golden/torch_golden.json) it creates the job "golden-<index>" with one
hyperparameter "lr" (the case's schedule and base values), fetches every golden point with GetValues (consecutive
sampled steps in one ranged call) and compares at relative 1e-12, with an absolute floor of 1e-15 x the largest base
value. BatchGetValues is checked once, for a few cases, against GetValues. The Python stubs are generated at run time
with protoc into a temporary directory (set HPSCHED_PY_STUBS to a directory holding them to skip that).

Prints the mismatches and exits 1 if there are any; always prints "N cases, M points compared" last.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_COUNT = 100_000  # GetValuesRequest.count limit.
MAX_GAP = 512  # Consecutive sampled steps at most this far apart are fetched by one ranged GetValues.
REL_TOL = 1e-12
ABS_FLOOR = 1e-15
RPC_TIMEOUT = 30


def generate_stubs(out_dir):
    proto_dir = os.path.join(REPO, "proto")
    protos = sorted(
        os.path.join("hpsched", "v1", f)
        for f in os.listdir(os.path.join(proto_dir, "hpsched", "v1"))
        if f.endswith(".proto"))
    subprocess.run(
        ["protoc", "-I", proto_dir, f"--python_out={out_dir}", f"--grpc_out={out_dir}",
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", *protos],
        check=True, cwd=proto_dir)


def import_stubs():
    stubs = os.environ.get("HPSCHED_PY_STUBS")
    tmp = None
    if not stubs:
        tmp = tempfile.mkdtemp(prefix="hpsched-py-stubs-")
        generate_stubs(tmp)
        stubs = tmp
    sys.path.insert(0, stubs)
    from hpsched.v1 import job_pb2, schedule_pb2, scheduler_service_pb2, scheduler_service_pb2_grpc  # noqa: E402
    return tmp, job_pb2, schedule_pb2, scheduler_service_pb2, scheduler_service_pb2_grpc


def ranges(steps):
    """Groups sorted distinct steps into [start, end] ranges of at most MAX_COUNT steps with small gaps."""
    out = []
    for s in sorted(set(steps)):
        if out and s - out[-1][1] <= MAX_GAP and s - out[-1][0] < MAX_COUNT:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def close(got, want, floor):
    return abs(got - want) <= max(REL_TOL * abs(want), floor)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, golden_path = sys.argv[1], sys.argv[2]
    with open(golden_path) as f:
        golden = json.load(f)
    cases = golden["cases"]

    tmp, job_pb2, schedule_pb2, svc_pb2, svc_grpc = import_stubs()
    import grpc
    from google.protobuf import json_format

    mismatches = []
    points = 0
    try:
        with grpc.insecure_channel(addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            stub = svc_grpc.SchedulerServiceStub(channel)
            for index, case in enumerate(cases):
                job_id = f"golden-{index}"
                name = case["name"]
                bases = case["base_values"]
                floor = ABS_FLOOR * max(abs(b) for b in bases)
                job = job_pb2.Job()
                hp = job.hyperparameters.add(name="lr", base_values=bases)
                json_format.ParseDict(case["schedule"], hp.schedule)
                try:
                    created = stub.CreateJob(svc_pb2.CreateJobRequest(job_id=job_id, job=job), timeout=RPC_TIMEOUT)
                except grpc.RpcError as e:
                    mismatches.append(f"{name}: CreateJob {job_id}: {e.code().name}: {e.details()}")
                    continue
                if created.name != f"jobs/{job_id}":
                    mismatches.append(f"{name}: CreateJob returned name {created.name!r}")

                # step -> [value per group]
                got = {}
                try:
                    for start, end in ranges(p["step"] for p in case["points"]):
                        resp = stub.GetValues(
                            svc_pb2.GetValuesRequest(job=f"jobs/{job_id}", step=start, count=end - start + 1),
                            timeout=RPC_TIMEOUT)
                        if resp.start_step != start or len(resp.series) != len(bases):
                            mismatches.append(f"{name}: GetValues step={start}: start_step {resp.start_step}, "
                                              f"{len(resp.series)} series for {len(bases)} groups")
                            continue
                        for g, series in enumerate(resp.series):
                            if series.hyperparameter != "lr" or series.group != g:
                                mismatches.append(f"{name}: series {g} is ({series.hyperparameter!r}, {series.group})")
                            if len(series.values) != end - start + 1:
                                mismatches.append(f"{name}: GetValues step={start} count={end - start + 1}: "
                                                  f"{len(series.values)} values")
                                continue
                        for p in case["points"]:
                            if start <= p["step"] <= end:
                                got[p["step"]] = [s.values[p["step"] - start] for s in resp.series]
                except grpc.RpcError as e:
                    mismatches.append(f"{name}: GetValues: {e.code().name}: {e.details()}")
                    continue

                for p in case["points"]:
                    step, want = p["step"], p["values"]
                    have = got.get(step)
                    points += 1
                    if have is None or len(have) != len(want):
                        mismatches.append(f"{name}: step {step}: got {have}, want {want}")
                        continue
                    for g, (h, w) in enumerate(zip(have, want)):
                        if not close(h, w, floor):
                            rel = abs(h - w) / abs(w) if w else float("inf")
                            mismatches.append(f"{name}: step {step} group {g}: got {h!r}, want {w!r} (rel {rel:.3g})")

            # BatchGetValues once, for a few cases, against GetValues.
            picks = [i for i in (0, 6, 31, 44, len(cases) - 1) if i < len(cases)]
            reqs = []
            for i in picks:
                last = max(p["step"] for p in cases[i]["points"])
                reqs.append(svc_pb2.GetValuesRequest(job=f"jobs/golden-{i}", step=max(0, min(last, 1200)), count=50))
            try:
                batch = stub.BatchGetValues(svc_pb2.BatchGetValuesRequest(requests=reqs), timeout=RPC_TIMEOUT)
                if len(batch.responses) != len(reqs):
                    mismatches.append(f"BatchGetValues: {len(batch.responses)} responses for {len(reqs)} requests")
                for req, resp in zip(reqs, batch.responses):
                    single = stub.GetValues(req, timeout=RPC_TIMEOUT)
                    if resp != single:
                        mismatches.append(f"BatchGetValues {req.job} step {req.step}: differs from GetValues")
            except grpc.RpcError as e:
                mismatches.append(f"BatchGetValues: {e.code().name}: {e.details()}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    for m in mismatches[:200]:
        print(f"MISMATCH {m}")
    if len(mismatches) > 200:
        print(f"... and {len(mismatches) - 200} more")
    if mismatches:
        print(f"{len(mismatches)} mismatches")
    print(f"{len(cases)} cases, {points} points compared")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
