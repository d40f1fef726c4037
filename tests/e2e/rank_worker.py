#!/usr/bin/python3
"""One process of tests/e2e/ranks_test.py: a training rank, the metric reporter, or the operator.

    rank_worker.py rank     ADDR JOB N OUT SEED     GetValues(step) for steps 0..N-1 (default pending policy, so it
                                                    waits for metric reports), one JSON line per step to OUT:
                                                    {"step": n, "version": v, "values": {"lr/0": x, ...}}
    rank_worker.py reporter ADDR JOB N K OUT        "trains" an epoch (a short sleep), then ReportMetrics(step =
                                                    (e + 1) * K - 1, val_loss = metric(e)) for every report step < N;
                                                    one JSON line per report to OUT: {"step": s, "val_loss": x}
    rank_worker.py operator ADDR JOB OUT SEED       after a random delay, UpdateJob(lr: scale 0.5 from a step ahead of
                                                    the served ones); on FAILED_PRECONDITION it retries from a later
                                                    step (the served step the error names + 5); writes
                                                    {"effective_step": S, "attempts": a, "version": v} to OUT

Every call has a deadline and every loop a bound; a failure exits non-zero with the error on stderr.
The stubs come from HPSCHED_PY_STUBS (see grpcio_golden.import_stubs).
"""
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpcio_golden  # noqa: E402

WAIT = 30  # Deadline of a GetValues that may wait for a report, in seconds.
RPC = 10


def metric(epoch):
    """Deterministic validation loss: improves, then plateaus (with small deterministic wiggles) so the plateau
    schedule reduces, then improves again."""
    wiggle = ((epoch * 7919) % 13 - 6) * 1e-4
    if epoch < 6:
        return 1.0 / (1.0 + 0.3 * epoch)
    if epoch < 16:
        return 0.45 + abs(wiggle)
    return 0.45 * 0.97 ** (epoch - 15) + wiggle


def connect(addr):
    import grpc
    _, pb, _, svc, svc_grpc = grpcio_golden.import_stubs()
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=10)
    return grpc, pb, svc, svc_grpc.SchedulerServiceStub(channel)


def run_rank(addr, job, n, out, seed):
    grpc, _, svc, stub = connect(addr)
    rng = random.Random(seed)
    with open(out, "w") as f:
        for step in range(n):
            resp = stub.GetValues(svc.GetValuesRequest(job=f"jobs/{job}", step=step), timeout=WAIT)
            values = {f"{s.hyperparameter}/{s.group}": s.values[0] for s in resp.series}
            f.write(json.dumps({"step": step, "version": resp.version, "values": values}) + "\n")
            time.sleep(rng.uniform(0, 0.002))  # the forward and backward pass


def run_reporter(addr, job, n, k, out):
    _, _, svc, stub = connect(addr)
    with open(out, "w") as f:
        for e in range(n // k):
            step = (e + 1) * k - 1
            time.sleep(0.03)  # the epoch's validation
            value = metric(e)
            stub.ReportMetrics(svc.ReportMetricsRequest(job=f"jobs/{job}", step=step, metrics={"val_loss": value}),
                               timeout=RPC)
            f.write(json.dumps({"step": step, "val_loss": value}) + "\n")
            f.flush()


def run_operator(addr, job, out, seed):
    grpc, pb, svc, stub = connect(addr)
    rng = random.Random(seed)
    time.sleep(rng.uniform(0.2, 1.0))
    current = stub.GetJob(svc.GetJobRequest(name=f"jobs/{job}"), timeout=RPC)
    effective = 40  # a guess; the error says how far the ranks have got
    for attempt in range(1, 101):
        try:
            job_after = stub.UpdateJob(svc.UpdateJobRequest(
                name=f"jobs/{job}", etag=current.etag, request_id=f"operator-{seed}-{effective}",
                updates=[svc.HyperparameterUpdate(hyperparameter="lr", segment=pb.Segment(
                    effective_step=effective, scale=0.5))]), timeout=RPC)
            break
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                served = re.search(r"up to step (\d+)", e.details())
                effective = (int(served.group(1)) if served else effective) + 5
            elif e.code() == grpc.StatusCode.ABORTED:
                current = stub.GetJob(svc.GetJobRequest(name=f"jobs/{job}"), timeout=RPC)
            else:
                raise
    else:
        raise SystemExit("operator: no UpdateJob succeeded in 100 attempts")
    with open(out, "w") as f:
        json.dump({"effective_step": effective, "attempts": attempt, "version": job_after.version}, f)


def main():
    role, args = sys.argv[1], sys.argv[2:]
    if role == "rank":
        run_rank(args[0], args[1], int(args[2]), args[3], int(args[4]))
    elif role == "reporter":
        run_reporter(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif role == "operator":
        run_operator(args[0], args[1], args[2], int(args[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
