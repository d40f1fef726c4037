#!/usr/bin/python3
"""Generate tests/golden/torch_extra_golden.json from real PyTorch: MultiplicativeLR, and the momentum / beta1 that
CyclicLR and OneCycleLR set on the optimizer (cycle_momentum).

Run with Debian's interpreter, which has python3-torch (1.13):

    /usr/bin/python3 tests/golden/gen_torch_extra_golden.py

Every number comes from torch.optim.lr_scheduler itself, on a real optimizer with one param group per base value.
Step N is the value after N calls of scheduler.step() (step 0 = right after construction), as in
proto/hpsched/v1/schedule.proto, read from the optimizer's param group:

* hyperparameter "lr" (GoldenCase.hyperparameter empty): group['lr'] (== get_last_lr());
* "momentum": group['momentum'] of an SGD optimizer, the case's base values being the groups' momentum;
* "beta1": group['betas'][0] of an Adam optimizer, the base values being the groups' betas[0].
  torch 1.13's CyclicLR cannot drive Adam (it requires a `momentum` default; OneCycleLR has `use_beta1`): torch >= 2.2
  can, writing the same value to betas[0] that it writes to `momentum` (pytorch/pytorch torch/optim/lr_scheduler.py,
  CyclicLR.__init__ and CyclicLR.get_lr, `use_beta1`, main at commit 008f727). The CyclicLR "beta1" cases therefore
  record SGD's group['momentum'] under the name beta1, and say so in their reference.

Near steps come from the step() loop. Far steps come from torch's own closed form on a second, identically built
scheduler with last_epoch = N and get_lr() (CyclicLR, OneCycleLR: get_lr() writes the momentum into the groups as a
side effect). MultiplicativeLR has no closed form; its cases use the loop only, with two exceptions, both exact:
* a constant factor whose loop reached values that repeat (v * f == v: 0 or a subnormal fixed point, or f == 1;
  or period 2 under a negative factor): PyTorch's loop keeps repeating them forever, so far steps take them;
* a factor that is exactly 1 beyond total_iters: PyTorch's values hold, as hpsched's do.
Cases whose factor is not 1 beyond total_iters sample steps <= total_iters only (hpsched holds from there; PyTorch would
keep multiplying: a documented difference).

Output: a hpsched.golden.GoldenFile (tests/golden/golden.proto) in the protobuf JSON mapping, json.dump(indent=1).
Deterministic.
"""

import math
import os
import sys
import time
import warnings

import torch
from torch.optim import lr_scheduler as LRS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_torch_golden import FAR, Lam, around, check_floats, log, onecycle_bounds, write_golden  # noqa: E402  (shared helpers)

warnings.simplefilter("ignore")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_extra_golden.json")


class Case:
    """One torch scheduler call and the hyperparameter it is read for."""

    def __init__(self, name, cls, kw, bases, hp="lr", optimizer="sgd", lr=0.1, near=range(0, 61), extra=(),
                 far=(), omit=(), total_iters=None, repeat_far=(), loop_to=None, note=""):
        self.name, self.cls, self.kw, self.bases = name, cls, kw, [float(b) for b in bases]
        self.hp, self.optimizer, self.lr = hp, optimizer, lr
        self.near = sorted(set(near) | set(extra))
        self.loop_to = max(self.near) if loop_to is None else loop_to
        self.far = sorted(far)
        self.omit = omit
        self.total_iters = total_iters  # multiplicative: the spec's horizon
        self.repeat_far = sorted(repeat_far)  # multiplicative, constant factor: far steps from the repeating values
        self.note = note

    def make_opt(self):
        params = [torch.nn.Parameter(torch.zeros(1)) for _ in self.bases]
        if self.hp == "lr":
            groups = [{"params": [p], "lr": b} for p, b in zip(params, self.bases)]
            return torch.optim.SGD(groups, lr=self.bases[0], momentum=0.9)
        if self.optimizer == "adam":
            groups = [{"params": [p], "lr": self.lr, "betas": (b, 0.999)} for p, b in zip(params, self.bases)]
            return torch.optim.Adam(groups, lr=self.lr)
        groups = [{"params": [p], "lr": self.lr, "momentum": b} for p, b in zip(params, self.bases)]
        return torch.optim.SGD(groups, lr=self.lr, momentum=self.bases[0])

    def build(self, opt):
        kw = {k: (v.fn if isinstance(v, Lam) else v) for k, v in self.kw.items()}
        return getattr(LRS, self.cls)(opt, **kw)

    def read(self, opt):
        if self.hp == "lr":
            return [g["lr"] for g in opt.param_groups]
        if self.optimizer == "adam":
            return [g["betas"][0] for g in opt.param_groups]
        return [g["momentum"] for g in opt.param_groups]

    def ref(self):
        args = ", ".join("%s=%r" % (k, v) for k, v in self.kw.items())
        opt = ("Adam(betas=(b, 0.999))" if self.optimizer == "adam" else "SGD(momentum=b)") if self.hp != "lr" \
            else "SGD(lr=b)"
        return "%s(%s, %s)" % (self.cls, opt, args)

    def spec(self):
        kind = {"MultiplicativeLR": "multiplicative", "CyclicLR": "cyclic", "OneCycleLR": "one_cycle"}[self.cls]
        body = {}
        for k, v in self.kw.items():
            if k in self.omit:
                continue
            if isinstance(v, Lam):
                v = v.expr
            if k in ("base_lr", "max_lr", "base_momentum", "max_momentum") and not isinstance(v, list):
                v = [v]
            body[k] = v
        if self.total_iters is not None:
            body["total_iters"] = self.total_iters
        return {kind: body}


CASES = []


def case(*args, **kw):
    CASES.append(Case(*args, **kw))


B1 = [0.1]
B2 = [0.1, 0.01]
B3 = [1.0, 0.5, 0.003]
REPEAT_FAR = [10**5, 10**6, 10**7 - 1, 10**7, 2**40 + 1, 2**53 - 2, 2**53 - 1]


def sampled(limit, every=37, also=()):
    """Steps 0..60, every `every`th step up to `limit`, the last two, and `also` with its neighbours."""
    return set(range(0, 61)) | set(range(61, limit + 1, every)) | {limit - 1, limit} | around(*also)

# ---------------------------------------------------------------------------------------------------------------------
# multiplicative: MultiplicativeLR.get_lr (torch 1.13): group['lr'] * lr_lambda(last_epoch) if last_epoch > 0.

case("mult_const0.95", "MultiplicativeLR", {"lr_lambda": Lam("lambda step: 0.95", "0.95")}, B1,
     near=sampled(16000, 97, also=[14500]), repeat_far=REPEAT_FAR,
     note="0.95 settles at a subnormal fixed point (9 x 2^-1074) near step 14,500")
case("mult_const0.9_3groups", "MultiplicativeLR", {"lr_lambda": Lam("lambda step: 0.9", "0.9")}, B3,
     near=sampled(8000, 97), repeat_far=REPEAT_FAR)
case("mult_const1", "MultiplicativeLR", {"lr_lambda": Lam("lambda step: 1.0", "1")}, B2, near=range(0, 21),
     repeat_far=REPEAT_FAR)
case("mult_const_negative0.5", "MultiplicativeLR", {"lr_lambda": Lam("lambda step: -0.5", "-0.5")}, B2,
     near=sampled(1200, 23), repeat_far=REPEAT_FAR, note="a negative factor: zeros of alternating sign")
case("mult_const_exp", "MultiplicativeLR", {"lr_lambda": Lam("lambda step: math.exp(-0.05)", "exp(-0.05)")}, B1,
     near=sampled(16000, 97), repeat_far=REPEAT_FAR)
case("mult_const0.99_total500", "MultiplicativeLR", {"lr_lambda": Lam("lambda step: 0.99", "0.99")}, B2,
     near=sampled(500, 7), total_iters=500)
case("mult_step30_then1", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: 0.95 if step < 30 else 1.0", "step < 30 ? 0.95 : 1")}, B2,
     near=sampled(1200, 19, also=[1000]), total_iters=1000, note="factor 1 beyond total_iters: PyTorch holds too")
case("mult_every10_halve_else_grow", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: 0.5 if step / 10 == math.floor(step / 10) else 1.02",
                       "step / 10 == floor(step / 10) ? 0.5 : 1.02")}, B3, near=sampled(5000, 31, also=[100, 1000]), total_iters=5000)
case("mult_inverse_square", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: 1 - 1 / (step + 1) ** 2", "1 - 1 / (step + 1) ^ 2")}, B1, near=sampled(3000),
     total_iters=3000)
case("mult_sqrt_decay", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: 1 / (1 + 0.01 * math.sqrt(step))", "1 / (1 + 0.01 * sqrt(step))")}, B2,
     near=sampled(2000), total_iters=2000)
case("mult_warmup_then_decay", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: (step + 1) / step if step < 10 else 0.99",
                       "step < 10 ? (step + 1) / step : 0.99")}, B3, near=sampled(1000, 13, also=[10]), total_iters=1000)
case("mult_reaches_zero_at50", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: 0.0 if step == 50 else 0.9", "step == 50 ? 0 : 0.9")}, B2, near=sampled(300, 7, also=[50, 200]),
     total_iters=200, note="0 from step 50 on; beyond total_iters PyTorch multiplies 0 by 0.9: still 0")
case("mult_cos_wiggle", "MultiplicativeLR",
     {"lr_lambda": Lam("lambda step: 1 + 0.05 * math.cos(step / 3)", "1 + 0.05 * cos(step / 3)")}, B1,
     near=sampled(4000), total_iters=4000)

# ---------------------------------------------------------------------------------------------------------------------
# momentum / beta1: CyclicLR.get_lr (torch 1.13): momentum = max_m - (max_m - base_m) * scale_factor * scale_fn(.);
# OneCycleLR.get_lr: the momentum anneals max_m -> base_m -> max_m (three_phase: -> max_m) on the lr's phases.

TAIL = [80, 100, 150, 200, 300]
M1 = [0.9]
M2 = [0.9, 0.5]
M3 = [0.9, 0.95, 0.0]

case("cyclic_momentum_triangular_up5", "CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5}, M1,
     hp="momentum", extra=TAIL, far=FAR)
case("cyclic_momentum_triangular2_per_group", "CyclicLR",
     {"base_lr": [0.01, 0.001], "max_lr": [0.1, 0.01], "step_size_up": 4, "mode": "triangular2",
      "base_momentum": [0.8, 0.7], "max_momentum": [0.9, 0.99]}, M2, hp="momentum", extra=TAIL,
     far=[1000, 4000, 4001, 8183, 8184, 8187, 8188, 8191])
case("cyclic_momentum_exp_range_3groups", "CyclicLR",
     {"base_lr": 0.001, "max_lr": 0.5, "step_size_up": 10, "mode": "exp_range", "gamma": 0.999,
      "base_momentum": 0.85, "max_momentum": 0.95}, M3, hp="momentum", extra=TAIL, far=FAR)
case("cyclic_momentum_asym_fractional", "CyclicLR",
     {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2.5, "step_size_down": 3.5}, M2, hp="momentum", extra=TAIL,
     far=FAR)
case("cyclic_momentum_default_up2000", "CyclicLR", {"base_lr": 0.001, "max_lr": 0.1}, M1, hp="momentum",
     extra=around(1000, 2000, 4000, 6000) | {3000}, far=FAR)
case("cyclic_momentum_off", "CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5,
                                         "cycle_momentum": False}, M2, hp="momentum", near=range(0, 21), far=FAR)
case("cyclic_beta1_triangular2", "CyclicLR",
     {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "triangular2", "base_momentum": 0.85,
      "max_momentum": 0.95}, M2, hp="beta1", extra=TAIL, far=[1000, 3000, 6000, 6143])
case("cyclic_lr_with_momentum_fields", "CyclicLR",
     {"base_lr": [0.01, 0.001], "max_lr": [0.1, 0.01], "step_size_up": 4, "base_momentum": 0.7,
      "max_momentum": [0.9, 0.8]}, B2, extra=TAIL, far=FAR)


case("one_cycle_momentum_cos_total100", "OneCycleLR", {"max_lr": 1.0, "total_steps": 100}, M1, hp="momentum",
     near=range(0, 100))
case("one_cycle_momentum_linear_per_group", "OneCycleLR",
     {"max_lr": [1.0, 0.1], "total_steps": 100, "anneal_strategy": "linear", "base_momentum": [0.8, 0.85],
      "max_momentum": [0.9, 0.99]}, M2, hp="momentum", near=range(0, 100))
case("one_cycle_momentum_three_phase_cos", "OneCycleLR", {"max_lr": 1.0, "total_steps": 130, "three_phase": True},
     M3, hp="momentum", extra=onecycle_bounds(130, 0.3, True) | set(range(60, 130)))
case("one_cycle_momentum_three_phase_linear_pct0.25", "OneCycleLR",
     {"max_lr": 1.0, "total_steps": 10, "pct_start": 0.25, "anneal_strategy": "linear", "three_phase": True}, M2,
     hp="momentum", near=range(0, 10))
case("one_cycle_momentum_total1e7", "OneCycleLR", {"max_lr": 1.0, "total_steps": 10**7}, M1, hp="momentum",
     near=range(0, 61), far=sorted(onecycle_bounds(10**7, 0.3, False) | {10**3, 10**5, 10**6, 5 * 10**6}))
case("one_cycle_momentum_off", "OneCycleLR", {"max_lr": 1.0, "total_steps": 50, "cycle_momentum": False}, M2,
     hp="momentum", near=range(0, 50))
case("one_cycle_beta1_cos_adam", "OneCycleLR", {"max_lr": 0.01, "total_steps": 100, "base_momentum": 0.85,
                                                "max_momentum": 0.95}, [0.9, 0.8], hp="beta1", optimizer="adam",
     near=range(0, 100))
case("one_cycle_beta1_three_phase_adam_per_group", "OneCycleLR",
     {"max_lr": [0.01, 0.001, 0.1], "total_steps": 180, "pct_start": 0.35, "three_phase": True,
      "base_momentum": [0.85, 0.8, 0.5], "max_momentum": [0.95, 0.9, 0.6]}, [0.9, 0.9, 0.9], hp="beta1",
     optimizer="adam", extra=onecycle_bounds(180, 0.35, True) | {100, 150})
case("one_cycle_beta1_linear_epochs_adam", "OneCycleLR",
     {"max_lr": 0.01, "epochs": 10, "steps_per_epoch": 13, "anneal_strategy": "linear"}, [0.9], hp="beta1",
     optimizer="adam", near=range(0, 130))
case("one_cycle_beta1_off_adam", "OneCycleLR", {"max_lr": 0.01, "total_steps": 20, "cycle_momentum": False},
     [0.9, 0.8], hp="beta1", optimizer="adam", near=range(0, 20))
case("one_cycle_lr_with_momentum_fields", "OneCycleLR",
     {"max_lr": [1.0, 0.1], "total_steps": 100, "base_momentum": [0.8, 0.85], "max_momentum": 0.97}, B2,
     near=range(0, 100))


# ---------------------------------------------------------------------------------------------------------------------


def run_loop(c, limit):
    opt = c.make_opt()
    sched = c.build(opt)
    opt.step()
    vals = []
    for t in range(limit + 1):
        if t > 0:
            sched.step()
        vals.append(c.read(opt))
    return vals


def closed_form(c, steps):
    """torch's get_lr() with last_epoch = N, reading the hyperparameter from the groups it writes."""
    opt = c.make_opt()
    sched = c.build(opt)
    out = {}
    for t in steps:
        sched.last_epoch = t
        sched._get_lr_called_within_step = True
        lrs = sched.get_lr()
        out[t] = list(lrs) if c.hp == "lr" else c.read(opt)
    return out


def repeating(vals):
    """(start, [v_even, v_odd]) when the loop's last values repeat with period 1 or 2, else None."""
    a, b, c = vals[-3], vals[-2], vals[-1]
    if all(math.copysign(1, x) == math.copysign(1, y) and x == y for x, y in zip(a, c)):
        return len(vals) - 3, [a, b]
    return None


def main():
    t_start = time.time()
    names = set()
    out_cases = []
    for c in CASES:
        if c.name in names:
            raise SystemExit("duplicate case name " + c.name)
        names.add(c.name)
        limit = c.loop_to
        loop = run_loop(c, limit)
        values = {t: loop[t] for t in c.near}
        if c.total_iters is not None:
            for t in c.near:
                if t > c.total_iters and loop[t] != loop[c.total_iters]:
                    raise SystemExit("%s: PyTorch does not hold after total_iters at step %d" % (c.name, t))
        if c.repeat_far:
            rep = repeating(loop)
            if rep is None:
                raise SystemExit("%s: the loop's values do not repeat by step %d" % (c.name, limit))
            start, pair = rep
            for t in c.repeat_far:
                values[t] = pair[(t - start) % 2]
            log("  %-46s values repeat from step %d at the latest: %r" % (c.name, start, pair))
        if c.far:
            if c.cls == "OneCycleLR" and max(c.far) > c.kw.get("total_steps", 0) - 1 and "epochs" not in c.kw:
                raise SystemExit("%s: far step beyond total_steps - 1" % c.name)
            for t, v in closed_form(c, [t for t in c.far if t not in values]).items():
                values[t] = v
            # The closed form agrees with the loop where both exist.
            for t, v in closed_form(c, [t for t in c.near if t % 7 == 0]).items():
                if v != loop[t]:
                    raise SystemExit("%s: get_lr() %r != loop %r at step %d" % (c.name, v, loop[t], t))
        ref = c.ref()
        if c.cls == "CyclicLR" and c.hp == "beta1":
            ref += "  # torch 1.13 drives SGD's momentum only; torch >= 2.2 writes these values to Adam's betas[0]"
        if c.far:
            ref += "  # steps <= %d: step() loop; later steps: get_lr() with last_epoch = N" % limit
        if c.repeat_far:
            ref += "  # steps > %d: the loop's repeating values (value * factor repeats exactly)" % limit
        if c.note:
            ref += "  # " + c.note
        points = [{"step": t, "values": check_floats(values[t], "%s step %d" % (c.name, t))} for t in sorted(values)]
        entry = {"name": c.name, "schedule": c.spec(), "base_values": c.bases, "reference": ref, "points": points}
        if c.hp != "lr":
            entry["hyperparameter"] = c.hp
        out_cases.append(entry)

    write_golden(OUT, "torch %s (Debian python3-torch), tests/golden/gen_torch_extra_golden.py: one param group per "
                      "base value; step N = the group's lr, momentum or betas[0] after N scheduler.step() calls, or "
                      "torch's get_lr() with last_epoch = N where the reference says so" % torch.__version__,
                 out_cases, t_start)


if __name__ == "__main__":
    main()
