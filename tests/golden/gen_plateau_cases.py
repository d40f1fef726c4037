#!/usr/bin/python3
"""Generate tests/golden/plateau_cases.json: metric sequences run through real torch ReduceLROnPlateau.

Run with Debian's interpreter, which has python3-torch (1.13):

    /usr/bin/python3 tests/golden/gen_plateau_cases.py

The file is named plateau_cases.json, not *_golden.json, on purpose: the golden tests read every *_golden.json as a
hpsched.golden.GoldenFile of metric-free schedules; these cases need a live job and metric reports
(tests/e2e/live_jobs_test.py reads them).

Every expected value comes from torch.optim.lr_scheduler itself, on a real optimizer: torch.optim.SGD with one param
group per base value (each group's lr = its base value). The mapping to hpsched (proto/hpsched/v1/job.proto,
MetricSpec and ReportMetricsRequest; schedule.proto, ReduceOnPlateauSchedule):

* The job declares the metric "val_loss" with every_steps K. The report of epoch e (0-based) is
  ReportMetrics(step = (e + 1) * K - 1, metrics = {"val_loss": metric_values[e]}).
* The value for step N reflects every report with a step < N. So the value for the steps in [(e + 1) * K, (e + 2) * K)
  is torch's lr after e + 1 calls of scheduler.step(metric_values[0..e]); steps [0, K) have the base value.
* The simulation walks the steps one by one: it records the optimizer's lr for step n, then, if n is a report step,
  calls scheduler.step(metric) (the report measured after step n changes the values from n + 1 on).
* After the last of E reports (step E * K - 1), the next expected report is at (E + 1) * K - 1, so the values of
  steps [0, (E + 1) * K) are final and later ones provisional: every point lies in [0, final_through], final_through
  = (E + 1) * K - 1.

Warmup-then-plateau cases (warmup_steps W set): the hpsched schedule is
    {"sequential": {"schedules": [{"linear": {...}}, {"reduce_on_plateau": {...}}], "milestones": [W]}}
and the plateau sees only the reports at steps >= W (schedule.proto: inside a sequential the schedule sees only the
reports from the step it starts at). The torch reference:
* a LinearLR(optimizer, start_factor, end_factor=1.0, total_iters=T) with T <= W, stepped once at the end of each of
  the steps 0 .. W-1, so step n < W has LinearLR's lr after n calls and step W has it after W calls (= the base value,
  since end_factor is 1.0 and T <= W; hpsched's plateau child starts from the group's base value, so these cases keep
  end_factor 1.0 and T <= W);
* at the end of step W - 1, after the W-th LinearLR call, a fresh ReduceLROnPlateau on the same optimizer;
* the reports at steps s >= W are fed to it (scheduler.step(metric) at the end of step s); the reports at s < W are
  made to hpsched too (the reporter does not know about the warmup) but never reach the torch plateau.
LinearLR's recursive formula leaves the lr at step W a few ulps away from the base value, so these cases agree with
hpsched to ~1e-15 relative, not bit for bit; all other cases are exact (same double operations as torch).

Each case stores: name, description, every_steps (K), warmup_steps (W or 0), the job spec in the protobuf JSON
mapping (hyperparameters with baseValues and schedule, metrics), metric_values (one per epoch, reported in order),
final_through, reduction_steps (the steps from which a report made torch reduce some group's lr: report step + 1) and
points: [{"step": n, "values": [lr per group]}] at the first step of every epoch, the last step of every epoch, and one
pseudo-random step inside each epoch (every step of the warmup for warmup cases). Floats are written by json.dump
(Python reprs, which round-trip exactly). Deterministic: fixed seeds, no clock.
"""
import json
import math
import os
import random
import sys
import warnings

import torch
from torch.optim import lr_scheduler as LRS

warnings.simplefilter("ignore")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plateau_cases.json")
METRIC = "val_loss"


# ----------------------------------------------------------------------------------------------------------------
# Metric sequences (deterministic).


def loss_curve(n, seed, start=2.5, floor=0.3, tau=40.0, noise=0.02, plateaus=(), drops=()):
    """A noisy decaying loss; `plateaus` are (first, last) epoch ranges where it stays flat (plus noise), `drops`
    epochs where it falls by 10% at once."""
    rng = random.Random(seed)
    out = []
    level = start
    for e in range(n):
        flat = any(a <= e <= b for a, b in plateaus)
        if not flat:
            level = floor + (level - floor) * math.exp(-1.0 / tau)
        if e in drops:
            level *= 0.9
        out.append(level + rng.gauss(0.0, noise))
    return out


def accuracy_curve(n, seed, start=0.1, ceiling=0.95, tau=30.0, noise=0.01, plateaus=()):
    rng = random.Random(seed)
    out = []
    level = start
    for e in range(n):
        if not any(a <= e <= b for a, b in plateaus):
            level = ceiling - (ceiling - level) * math.exp(-1.0 / tau)
        out.append(level + rng.gauss(0.0, noise))
    return out


def quantized(values, q):
    """Values rounded to multiples of q: exact ties happen (a tie is not an improvement)."""
    return [round(v / q) * q for v in values]


# ----------------------------------------------------------------------------------------------------------------
# Torch reference.


def plateau_kwargs(p):
    """torch ReduceLROnPlateau keyword arguments from a hpsched reduce_on_plateau spec (defaults as in both)."""
    kw = {}
    for key in ("mode", "factor", "threshold", "threshold_mode", "eps"):
        if key in p:
            kw[key] = p[key]
    for key in ("patience", "cooldown"):  # int64: strings in the JSON mapping
        if key in p:
            kw[key] = int(p[key])
    if "minLr" in p:
        kw["min_lr"] = p["minLr"] if len(p["minLr"]) > 1 else p["minLr"][0]
    return kw


def plateau_spec(**kw):
    """A hpsched reduce_on_plateau spec in the protobuf JSON mapping (min_lr -> minLr, threshold_mode ->
    thresholdMode)."""
    spec = {"metric": METRIC}
    for key, value in kw.items():
        if key == "min_lr":
            spec["minLr"] = value if isinstance(value, list) else [value]
        elif key == "threshold_mode":
            spec["thresholdMode"] = value
        else:
            spec[key] = value
    return spec


def to_torch_kwargs(spec):
    renamed = dict(spec)
    renamed.pop("metric")
    if "thresholdMode" in renamed:
        renamed["threshold_mode"] = renamed.pop("thresholdMode")
    return plateau_kwargs(renamed)


def simulate(bases, spec, k, metrics, warmup=None):
    """Per-step lrs (a list of lists, one per step in [0, (E + 1) * K)) and the reduction steps."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in bases]
    opt = torch.optim.SGD([{"params": [p], "lr": b} for p, b in zip(params, bases)], lr=bases[0])
    plateau = None
    linear = None
    if warmup is None:
        plateau = LRS.ReduceLROnPlateau(opt, **to_torch_kwargs(spec))
    else:
        linear = LRS.LinearLR(opt, start_factor=warmup["start_factor"], end_factor=1.0,
                              total_iters=warmup["total_iters"])
    w = warmup["steps"] if warmup else 0
    total = (len(metrics) + 1) * k
    values, reductions = [], []
    for n in range(total):
        values.append([float(g["lr"]) for g in opt.param_groups])
        if linear is not None and n + 1 <= w:
            linear.step()
            if n + 1 == w:
                plateau = LRS.ReduceLROnPlateau(opt, **to_torch_kwargs(spec))
        if (n + 1) % k == 0 and (n + 1) // k - 1 < len(metrics) and n >= w:
            before = [g["lr"] for g in opt.param_groups]
            plateau.step(metrics[(n + 1) // k - 1])
            if [g["lr"] for g in opt.param_groups] != before:
                reductions.append(n + 1)
    return values, reductions


def sample_steps(k, epochs, seed, warmup_steps=0):
    rng = random.Random(seed)
    steps = set(range(min(warmup_steps + 1, (epochs + 1) * k)))
    for e in range(epochs + 1):
        steps.add(e * k)
        steps.add(e * k + k - 1)
        steps.add(e * k + rng.randrange(k))
    return sorted(steps)


def make_case(name, description, bases, k, metrics, spec, warmup=None, seed=0):
    if warmup is None:
        schedule = {"reduceOnPlateau": spec}
    else:
        assert warmup["total_iters"] <= warmup["steps"]
        schedule = {"sequential": {
            "schedules": [{"linear": {"startFactor": warmup["start_factor"], "endFactor": 1.0,
                                      "totalIters": str(warmup["total_iters"])}},
                          {"reduceOnPlateau": spec}],
            "milestones": [str(warmup["steps"])]}}
    job = {"hyperparameters": [{"name": "lr", "baseValues": bases, "schedule": schedule}],
           "metrics": [{"name": METRIC, "everySteps": str(k)}]}
    values, reductions = simulate(bases, spec, k, metrics, warmup)
    steps = sample_steps(k, len(metrics), seed, warmup["steps"] if warmup else 0)
    return {
        "name": name,
        "description": description,
        "every_steps": k,
        "warmup_steps": warmup["steps"] if warmup else 0,
        "job": job,
        "metric": METRIC,
        "metric_values": metrics,
        "final_through": len(values) - 1,
        "reduction_steps": reductions,
        "points": [{"step": s, "values": values[s]} for s in steps],
    }


def int64_strings(spec):
    """Int64 fields are strings in the protobuf JSON mapping."""
    for key in ("patience", "cooldown"):
        if key in spec:
            spec[key] = str(spec[key])
    return spec


def cases():
    P = lambda **kw: int64_strings(plateau_spec(**kw))  # noqa: E731
    out = []
    add = lambda *a, **kw: out.append(make_case(*a, **kw))  # noqa: E731

    add("min_rel_defaults", "defaults (min, rel 1e-4, patience 10, factor 0.1), 300 noisy reports with plateaus",
        [0.1], 10, loss_curve(300, 1, plateaus=[(60, 90), (150, 200)]), P(), seed=1)
    add("min_rel_patience0_eps", "patience 0, factor 0.5, K 1: nearly every bad report reduces, until old - new <= eps",
        [0.1], 1, loss_curve(220, 2, noise=0.05), P(patience=0, factor=0.5), seed=2)
    add("max_rel", "mode max (accuracy), patience 3, factor 0.3, K 25",
        [0.5], 25, accuracy_curve(250, 3, plateaus=[(40, 80), (120, 170)]),
        P(mode="max", patience=3, factor=0.3), seed=3)
    add("min_abs", "threshold_mode abs 0.01, patience 2, factor 0.5, K 7",
        [0.2], 7, loss_curve(300, 4, noise=0.01, plateaus=[(50, 120)]),
        P(threshold_mode="abs", threshold=0.01, patience=2, factor=0.5), seed=4)
    add("max_abs_cooldown", "mode max, abs 0.002, patience 4, cooldown 3, factor 0.6, K 5",
        [1.0], 5, accuracy_curve(320, 5, tau=60.0, plateaus=[(100, 180)]),
        P(mode="max", threshold_mode="abs", threshold=0.002, patience=4, cooldown=3, factor=0.6), seed=5)
    add("cooldown_patience1", "patience 1, cooldown 5, factor 0.7, rel 1e-3, K 3, 400 reports",
        [0.05], 3, loss_curve(400, 6, noise=0.03, plateaus=[(100, 250)]),
        P(patience=1, cooldown=5, factor=0.7, threshold=1e-3), seed=6)
    add("groups_min_lr_list", "4 groups, per-group min_lr (one group at min_lr from the start), patience 2, factor 0.5",
        [0.1, 0.05, 0.2, 1e-3], 4, loss_curve(300, 7, noise=0.04, plateaus=[(30, 200)]),
        P(patience=2, factor=0.5, min_lr=[0.01, 0.02, 0.0, 1e-3]), seed=7)
    add("eps_skip_groups", "eps 1e-8, factor 0.5, patience 0, never better: group 0 (1e-7) stops reducing when "
        "old - new <= eps while group 1 (1e-3) goes on",
        [1e-7, 1e-3], 2, [1.0] * 60, P(patience=0, factor=0.5, eps=1e-8), seed=8)
    add("eps_large_min_lr", "eps 0.01 with base 0.1 (0.0125 -> 0.00625 is skipped); a group whose min_lr makes the "
        "reduction smaller than eps", [0.1, 0.0205], 5, loss_curve(120, 9, noise=0.05, plateaus=[(10, 119)]),
        P(patience=3, factor=0.5, eps=0.01, min_lr=[0.0, 0.0125]), seed=9)
    add("factor_zero", "factor 0: the first reduction goes to min_lr (0 and 1e-4), later ones are skipped",
        [0.1, 0.3], 6, loss_curve(80, 10, plateaus=[(20, 79)]), P(patience=5, factor=0.0, min_lr=[0.0, 1e-4]),
        seed=10)
    add("factor_0_9_long", "factor 0.9, patience 5, rel 1e-3, K 1, 600 reports",
        [0.3], 1, loss_curve(600, 11, tau=80.0, noise=0.01, plateaus=[(150, 300), (400, 500)]),
        P(patience=5, factor=0.9, threshold=1e-3), seed=11)
    add("threshold0_ties", "threshold 0 with quantized values: an equal value is not an improvement",
        [0.1], 3, quantized(loss_curve(200, 12, noise=0.02, plateaus=[(50, 150)]), 0.05),
        P(patience=2, factor=0.5, threshold=0.0), seed=12)
    add("negative_metric_min_rel", "negative metric (e.g. -log likelihood gain), min rel 0.01: torch's rel test on a "
        "negative best", [0.1], 4, [v - 3.0 for v in loss_curve(200, 13, noise=0.03, plateaus=[(60, 120)])],
        P(patience=2, factor=0.5, threshold=0.01), seed=13)
    add("long_two_groups_k50", "2 groups, K 50 (20000 steps), patience 8, cooldown 2, rel 1e-2",
        [0.1, 0.01], 50, loss_curve(400, 14, tau=60.0, noise=0.02, plateaus=[(100, 160), (250, 330)],
                                    drops=(170, 340)),
        P(patience=8, cooldown=2, threshold=1e-2, factor=0.5), seed=14)
    add("never_reduces", "patience larger than the number of reports: the value stays the base value",
        [0.1, 0.2], 10, loss_curve(40, 15, plateaus=[(5, 39)]), P(patience=100), seed=15)
    add("warmup_then_plateau", "sequential: LinearLR warmup (start 0.1, 20 iters) for 35 steps, then "
        "reduce_on_plateau (patience 2, factor 0.5) seeing only reports at steps >= 35 (K 10: the reports at 9, 19, "
        "29 are skipped)", [0.1, 0.02], 10, loss_curve(200, 16, noise=0.03, plateaus=[(40, 120)]),
        P(patience=2, factor=0.5), warmup={"steps": 35, "start_factor": 0.1, "total_iters": 20}, seed=16)
    add("warmup_aligned_then_plateau", "sequential: LinearLR warmup (start 0.25, 40 iters) for 40 steps (K 10: the "
        "report at 39 is the last skipped), then reduce_on_plateau with patience 0 and cooldown 2",
        [0.4], 10, loss_curve(150, 17, noise=0.05), P(patience=0, cooldown=2, factor=0.8),
        warmup={"steps": 40, "start_factor": 0.25, "total_iters": 40}, seed=17)
    return out


def main():
    all_cases = cases()
    names = [c["name"] for c in all_cases]
    assert len(names) == len(set(names))
    for c in all_cases:
        print(f"{c['name']}: {len(c['metric_values'])} reports, K {c['every_steps']}, "
              f"{len(c['reduction_steps'])} reductions, {len(c['points'])} points", file=sys.stderr)
        if not c["reduction_steps"] and c["name"] != "never_reduces":
            raise SystemExit(f"{c['name']}: no reduction: the case would not test anything")
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/golden/gen_plateau_cases.py", "torch_version": torch.__version__,
                   "cases": all_cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(all_cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
