#!/usr/bin/python3
"""Small checks for tests/e2e/e2e_test.sh. Each subcommand reads files the test wrote, exits 0 when the check
holds, and otherwise prints why on stdout and exits 1.

  methods FILE                       buf curl --list-methods lists the 7 SchedulerService methods
  health FILE                        a grpc.health.v1.Health/Check response says SERVING
  job FILE ID                        a Job JSON (buf curl) for the demo StepLR spec, named jobs/ID, version >= 1
  same-job FILE1 FILE2               two Job JSONs have the same name, version and etag
  error FILE CODE [SUBSTRING]        a buf curl error output carries CODE (and SUBSTRING in its message)
  list-has FILE NAME...              a ListJobsResponse JSON holds jobs with these names, in order of ids
  steplr FILE START COUNT            a GetValuesResponse holds StepLR(10, 0.5) lr 0.1 values for [START, START+COUNT)
  batch FILE                         the BatchGetValues response of the demo job (steps 0:5 and 25:30)
  preview FILE                       the Preview response of StepLR(10, 0.5), bases 0.1 and 0.01, steps 0:30
  torch-loop step|cosine             prints the PyTorch loop's "Epoch NN - LR: X" lines (torch 1.13)
  loss-falls FILE                    the toy trainer's last line "loss A -> B ..." has B < A
  rows FILE N NCOLS                  N lines "step\\tv..." with NCOLS values each, steps consecutive from 0
  golden-rows FILE GOLDEN CASE       CLI rows agree with golden case CASE (by name) at 1e-12, for each golden
                                     point whose step is in the rows; at least one point must be compared
  values-rows FILE START COUNT EXPR  CLI rows for [START, START+COUNT): one value each, equal to EXPR(step)
  golden-spec GOLDEN CASE            prints golden case CASE's schedule as JSON, then its base values as "0.1,0.01"
  cli-job FILE ID                    hpsched get/create output: a Job named jobs/ID
  cli-list-has FILE NAME...          hpsched list output (JSON objects, one after another) has these names
"""
import json
import math
import re
import sys

SERVICE_METHODS = ["BatchGetValues", "CreateJob", "DeleteJob", "GetJob", "GetMetricReports", "GetValues", "ListJobs",
                   "Preview", "ReportMetrics", "UpdateJob", "WatchJob"]


class CheckError(Exception):
    pass


def need(cond, why):
    if not cond:
        raise CheckError(why)


def load(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckError(f"{path}: not JSON ({e}): {text[:300]!r}")


def as_int(v):
    # The protobuf JSON mapping writes int64 as strings.
    return int(v) if v is not None else 0


def get(d, *names, default=None):
    # buf curl prints lowerCamelCase JSON names, the CLI the proto field names: accept both.
    for n in names:
        if n in d:
            return d[n]
    return default


def steplr(step):
    return 0.1 * 0.5 ** (step // 10)


def cmd_methods(path):
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip()]
    want = [f"hpsched.v1.SchedulerService/{m}" for m in SERVICE_METHODS]
    missing = [m for m in want if m not in lines]
    need(not missing, f"missing {missing} in {lines}")
    extra = [l for l in lines if l.startswith("hpsched.v1.SchedulerService/") and l not in want]
    need(not extra, f"unexpected methods {extra}")


def cmd_health(path):
    d = load(path)
    need(d.get("status") == "SERVING", f"status {d.get('status')!r}, want SERVING: {d}")


def check_demo_job(d, job_id):
    need(d.get("name") == f"jobs/{job_id}", f"name {d.get('name')!r}")
    need(as_int(d.get("version")) >= 1, f"version {d.get('version')!r}")
    need(d.get("etag"), "no etag")
    need(get(d, "createTime", "create_time"), "no create_time")
    hps = d.get("hyperparameters", [])
    need(len(hps) == 1, f"hyperparameters {hps}")
    hp = hps[0]
    need(hp.get("name") == "lr", f"hyperparameter name {hp.get('name')!r}")
    need(get(hp, "baseValues", "base_values") == [0.1], f"base values {hp}")
    step = hp.get("schedule", {}).get("step", {})
    need(as_int(get(step, "stepSize", "step_size")) == 10 and step.get("gamma") == 0.5, f"schedule {hp.get('schedule')}")


def cmd_job(path, job_id):
    check_demo_job(load(path), job_id)


def cmd_same_job(path1, path2):
    a, b = load(path1), load(path2)
    for k in ("name", "version", "etag"):
        need(a.get(k) == b.get(k), f"{k}: {a.get(k)!r} != {b.get(k)!r}")


def cmd_error(path, code, substring=None):
    with open(path) as f:
        text = f.read()
    # buf curl prints {"code": "already_exists", "message": "..."} on stderr.
    m = re.search(r"\{.*\}", text, re.S)
    need(m, f"no JSON error in {text!r}")
    try:
        err = json.loads(m.group(0))
    except json.JSONDecodeError:
        raise CheckError(f"not a JSON error: {text!r}")
    need(err.get("code") == code, f"code {err.get('code')!r}, want {code!r}: {err}")
    if substring:
        need(substring in err.get("message", ""), f"message {err.get('message')!r} lacks {substring!r}")


def cmd_list_has(path, *names):
    d = load(path)
    got = [j.get("name") for j in d.get("jobs", [])]
    missing = [n for n in names if n not in got]
    need(not missing, f"missing {missing} in {got}")
    need(got == sorted(got), f"not in order of ids: {got}")


def cmd_steplr(path, start, count):
    start, count = int(start), int(count)
    d = load(path)
    need(d.get("job") == "jobs/demo", f"job {d.get('job')!r}")
    need(as_int(get(d, "startStep", "start_step")) == start, f"start_step {get(d, 'startStep', 'start_step')!r}")
    series = d.get("series", [])
    need(len(series) == 1, f"{len(series)} series")
    s = series[0]
    need(s.get("hyperparameter") == "lr" and as_int(s.get("group")) == 0, f"series ({s.get('hyperparameter')}, "
                                                                           f"{s.get('group')})")
    want = [steplr(t) for t in range(start, start + count)]
    need(s.get("values") == want, f"values {s.get('values')}, want {want}")
    need(d.get("lr") == want[0], f"lr {d.get('lr')!r}, want {want[0]}")


def cmd_batch(path):
    d = load(path)
    rs = d.get("responses", [])
    need(len(rs) == 2, f"{len(rs)} responses")
    for r, (start, count) in zip(rs, [(0, 5), (25, 5)]):
        need(as_int(get(r, "startStep", "start_step")) == start, f"start_step {r}")
        vals = r["series"][0]["values"]
        want = [steplr(t) for t in range(start, start + count)]
        need(vals == want, f"values {vals}, want {want}")
        need(r.get("lr") == want[0], f"lr {r.get('lr')}")


def cmd_preview(path):
    d = load(path)
    series = d.get("series", [])
    need(len(series) == 2, f"{len(series)} series")
    for g, base in enumerate([0.1, 0.01]):
        need(as_int(series[g].get("group")) == g, f"group {series[g].get('group')}")
        want = [base * 0.5 ** (t // 10) for t in range(30)]
        got = series[g].get("values")
        need(len(got) == 30 and all(math.isclose(a, b, rel_tol=1e-15) for a, b in zip(got, want)),
             f"group {g}: {got}, want {want}")


def cmd_torch_loop(kind):
    import torch
    from torch import nn, optim
    from torch.optim.lr_scheduler import CosineAnnealingLR, StepLR

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 2 * x - 1
    model = nn.Linear(1, 1)
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    if kind == "step":
        scheduler = StepLR(optimizer, step_size=10, gamma=0.5)
    elif kind == "cosine":
        scheduler = CosineAnnealingLR(optimizer, T_max=20)
    else:
        raise CheckError(f"unknown loop {kind!r}")
    loss_fn = nn.MSELoss()
    for epoch in range(30):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        print(f"Epoch {epoch+1:02d} - LR: {scheduler.get_last_lr()[0]:.5f}")


def cmd_loss_falls(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    need(lines, "no output")
    m = re.match(r"loss ([0-9.eE+-]+) -> ([0-9.eE+-]+)", lines[-1])
    need(m, f"last line {lines[-1]!r}")
    a, b = float(m.group(1)), float(m.group(2))
    need(b < a, f"loss did not fall: {a} -> {b}")


def parse_rows(path):
    """The rows of `hpsched values` / `preview` text output: a header line "step<TAB>lr/0...", then
    step<TAB>value... per line."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1:
                need(parts[0] == "step" and len(parts) > 1, f"{path}:1: not a header: {line!r}")
                continue
            try:
                rows.append((int(parts[0]), [float(v) for v in parts[1:]]))
            except (ValueError, IndexError):
                raise CheckError(f"{path}:{n}: bad row {line!r}")
    return rows


def cmd_rows(path, n, ncols):
    rows = parse_rows(path)
    need(len(rows) == int(n), f"{len(rows)} rows, want {n}")
    for i, (step, vals) in enumerate(rows):
        need(step == i, f"row {i} has step {step}")
        need(len(vals) == int(ncols), f"row {i}: {len(vals)} values, want {ncols}")


def cmd_golden_rows(path, golden_path, case_name):
    cases = [c for c in load(golden_path)["cases"] if c["name"] == case_name]
    need(len(cases) == 1, f"no golden case {case_name!r}")
    case = cases[0]
    floor = 1e-15 * max(abs(b) for b in case["base_values"])
    rows = dict(parse_rows(path))
    compared, bad = 0, []
    for p in case["points"]:
        if p["step"] not in rows:
            continue
        got = rows[p["step"]]
        compared += 1
        if len(got) != len(p["values"]) or not all(
                abs(a - b) <= max(1e-12 * abs(b), floor) for a, b in zip(got, p["values"])):
            bad.append(f"step {p['step']}: got {got}, want {p['values']}")
    need(compared > 0, "no golden point in the rows")
    need(not bad, "; ".join(bad[:10]))
    print(f"{compared} golden points")


def cmd_golden_spec(golden_path, case_name):
    cases = [c for c in load(golden_path)["cases"] if c["name"] == case_name]
    need(len(cases) == 1, f"no golden case {case_name!r}")
    print(json.dumps(cases[0]["schedule"], separators=(",", ":")))
    print(",".join(repr(float(b)) for b in cases[0]["base_values"]))


def cmd_values_rows(path, start, count, expr):
    start, count = int(start), int(count)
    rows = parse_rows(path)
    need(len(rows) == count, f"{len(rows)} rows, want {count}")
    for i, (step, vals) in enumerate(rows):
        want = eval(expr, {"math": math}, {"step": step})  # The test's own expression.
        need(step == start + i, f"row {i} has step {step}")
        need(len(vals) == 1 and math.isclose(vals[0], want, rel_tol=1e-15), f"step {step}: {vals}, want {want}")


def json_objects(path):
    with open(path) as f:
        text = f.read()
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise CheckError(f"{path}: not JSON at {i}: {e}")
        out.append(obj)


def cmd_cli_job(path, job_id):
    objs = json_objects(path)
    need(len(objs) == 1, f"{len(objs)} JSON objects")
    need(objs[0].get("name") == f"jobs/{job_id}", f"name {objs[0].get('name')!r}")
    need(as_int(objs[0].get("version")) >= 1, f"version {objs[0].get('version')!r}")


def cmd_cli_list_has(path, *names):
    """`hpsched list`: a table whose first column is the job id, under the header ID HYPERPARAMETERS ..."""
    with open(path) as f:
        lines = f.read().splitlines()
    need(lines and lines[0].split() == ["ID", "HYPERPARAMETERS", "VERSION", "LABELS", "UPDATED"],
         f"not the list table's header: {lines[:1]}")
    got = ["jobs/" + line.split()[0] for line in lines[1:]]
    missing = [n for n in names if n not in got]
    need(not missing, f"missing {missing} in {got}")
    need(got == sorted(got), f"not in order of ids: {got}")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    fn = globals().get("cmd_" + sys.argv[1].replace("-", "_"))
    if fn is None:
        print(f"unknown check {sys.argv[1]!r}", file=sys.stderr)
        return 2
    try:
        fn(*sys.argv[2:])
    except CheckError as e:
        print(e)
        return 1
    except (OSError, KeyError, IndexError, TypeError, ValueError) as e:
        print(f"{type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
