#!/usr/bin/python3
"""Generate tests/golden/transformers_golden.json: Hugging Face transformers' get_scheduler schedules.

    /usr/bin/python3 tests/golden/gen_transformers_golden.py

transformers is not installed here (and PyPI is unreachable), so the lambdas are transcribed from the source:
huggingface/transformers, src/transformers/optimization.py, main at commit 005edacb6b5dabbf0843e92c6623de9e07ca6241.
Each function below names the HF function it transcribes and keeps its order of operations and its Python number
types (float() conversions, int / int true division), so the values are HF's own float64 values.

Every HF schedule is a torch LambdaLR, whose value after N scheduler.step() calls is base_lr * lr_lambda(N): step N
here is base * lr_lambda(N), one value per parameter group (base value). The one deviation from HF, which the
hpsched spec documents: "polynomial" and "min_lr" divide by each group's own base value, where HF divides by
optimizer.defaults["lr"] (the same number when every group uses the optimizer's lr).

Output: a hpsched.golden.GoldenFile (tests/golden/golden.proto) in the protobuf JSON mapping; floats are Python
reprs and round-trip exactly. Deterministic.
"""

import math
import os

from catalog_golden import B1, B2, B3, Cases, around

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformers_golden.json")
SOURCE = ("huggingface/transformers src/transformers/optimization.py @ 005edacb6b5dabbf0843e92c6623de9e07ca6241, "
          "lr_lambda functions transcribed in float64 by tests/golden/gen_transformers_golden.py; step N = "
          "base * lr_lambda(N) (torch LambdaLR after N scheduler.step() calls)")


# --------------------------------------------------------------------------------------------------------------------
# The lr_lambda functions, transcribed (not copied) from optimization.py @ 005edacb.


def constant_lambda(s):
    # _get_constant_lambda
    return 1


def constant_with_warmup_lambda(s, *, num_warmup_steps):
    # _get_constant_schedule_with_warmup_lr_lambda
    if s < num_warmup_steps:
        return float(s) / float(max(1.0, num_warmup_steps))
    return 1.0


def linear_lambda(s, *, num_warmup_steps, num_training_steps):
    # _get_linear_schedule_with_warmup_lr_lambda
    if s < num_warmup_steps:
        return float(s) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - s) / float(max(1, num_training_steps - num_warmup_steps)))


def cosine_lambda(s, *, num_warmup_steps, num_training_steps, num_cycles, min_lr_rate=0.0):
    # _get_cosine_schedule_with_warmup_lr_lambda: the file defines it twice; the second definition (with
    # min_lr_rate=0.0) replaces the first and serves both "cosine" and "cosine_with_min_lr".
    if s < num_warmup_steps:
        return float(s) / float(max(1, num_warmup_steps))
    progress = float(s - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


def cosine_with_restarts_lambda(s, *, num_warmup_steps, num_training_steps, num_cycles):
    # _get_cosine_with_hard_restarts_schedule_with_warmup_lr_lambda
    if s < num_warmup_steps:
        return float(s) / float(max(1, num_warmup_steps))
    progress = float(s - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))


def polynomial_lambda(s, *, num_warmup_steps, num_training_steps, lr_end, power, lr_init):
    # _get_polynomial_decay_schedule_with_warmup_lr_lambda (lr_init: optimizer.defaults["lr"] in HF, the group's base
    # value here). (s - W) / decay_steps is Python int / int true division.
    if s < num_warmup_steps:
        return float(s) / float(max(1, num_warmup_steps))
    elif s > num_training_steps:
        return lr_end / lr_init
    else:
        lr_range = lr_init - lr_end
        decay_steps = num_training_steps - num_warmup_steps
        pct_remaining = 1 - (s - num_warmup_steps) / decay_steps
        decay = lr_range * pct_remaining**power + lr_end
        return decay / lr_init


def inverse_sqrt_lambda(s, *, num_warmup_steps, timescale):
    # _get_inverse_sqrt_schedule_lr_lambda; timescale defaults (get_inverse_sqrt_schedule) to num_warmup_steps or 10000.
    if s < num_warmup_steps:
        return float(s) / float(max(1, num_warmup_steps))
    shift = timescale - num_warmup_steps
    decay = 1.0 / math.sqrt((s + shift) / timescale)
    return decay


def cosine_warmup_with_min_lr_lambda(s, *, num_warmup_steps, num_training_steps, num_cycles, min_lr_rate=0.0,
                                     warmup_lr_rate=None):
    # _get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda: floats throughout, one step ahead of the others.
    s = float(s)
    num_warmup_steps = float(num_warmup_steps)
    num_training_steps = float(num_training_steps)
    if s < num_warmup_steps:
        if warmup_lr_rate is None:
            return (s + 1.) / max(1., num_warmup_steps)
        warmup_lr_rate = float(warmup_lr_rate)
        return warmup_lr_rate + (1.0 - warmup_lr_rate) * (s) / (max(1, num_warmup_steps - 1))
    progress = (s - num_warmup_steps + 1.) / (max(1., num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


def wsd_lambda(s, *, num_warmup_steps, num_stable_steps, num_decay_steps, warmup_type, decay_type, min_lr_ratio,
               num_cycles):
    # _get_wsd_scheduler_lambda
    if s < num_warmup_steps:
        progress = float(s) / float(max(1, num_warmup_steps))
        if warmup_type == "linear":
            factor = progress
        elif warmup_type == "cosine":
            factor = 0.5 * (1.0 - math.cos(math.pi * progress))
        elif warmup_type == "1-sqrt":
            factor = 1.0 - math.sqrt(1.0 - progress)
        factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio
        return max(0.0, factor)
    if s < num_warmup_steps + num_stable_steps:
        return 1.0
    if s < num_warmup_steps + num_stable_steps + num_decay_steps:
        progress = float(s - num_warmup_steps - num_stable_steps) / float(max(1, num_decay_steps))
        if decay_type == "linear":
            factor = 1.0 - progress
        elif decay_type == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
        elif decay_type == "1-sqrt":
            factor = 1.0 - math.sqrt(progress)
        factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio
        return max(0.0, factor)
    return min_lr_ratio


# --------------------------------------------------------------------------------------------------------------------
# get_scheduler(name, ...) and its get_*_schedule* functions: defaults and derived arguments, per group.


def make_lambda(spec, base, group):
    """The lr_lambda HF builds for one param group whose lr is `base`, from an hpsched TransformersSchedule spec."""
    a = dict(spec)
    name = a.pop("name")

    def per_group(key):
        v = a.pop(key)
        return v[0] if len(v) == 1 else v[group]

    def min_lr_rate():
        # get_cosine_with_min_lr_schedule_with_warmup[_lr_rate]: min_lr / optimizer.defaults["lr"], or min_lr_rate.
        if "min_lr" in a:
            return per_group("min_lr") / base
        return a.pop("min_lr_rate")

    W = a.pop("num_warmup_steps", None)
    if name == "constant":
        fn = constant_lambda
    elif name == "constant_with_warmup":
        fn = lambda s: constant_with_warmup_lambda(s, num_warmup_steps=W)
    elif name == "linear":
        T = a.pop("num_training_steps")
        fn = lambda s: linear_lambda(s, num_warmup_steps=W, num_training_steps=T)
    elif name == "cosine":
        T, nc = a.pop("num_training_steps"), a.pop("num_cycles", 0.5)
        fn = lambda s: cosine_lambda(s, num_warmup_steps=W, num_training_steps=T, num_cycles=nc)
    elif name == "cosine_with_restarts":
        T, nc = a.pop("num_training_steps"), a.pop("num_cycles", 1)
        fn = lambda s: cosine_with_restarts_lambda(s, num_warmup_steps=W, num_training_steps=T, num_cycles=nc)
    elif name == "polynomial":
        T = a.pop("num_training_steps")
        lr_end = per_group("lr_end") if "lr_end" in a else 1e-7
        power = a.pop("power", 1.0)
        assert base > lr_end  # get_polynomial_decay_schedule_with_warmup raises otherwise
        fn = lambda s: polynomial_lambda(s, num_warmup_steps=W, num_training_steps=T, lr_end=lr_end, power=power,
                                         lr_init=base)
    elif name == "inverse_sqrt":
        ts = a.pop("timescale", None)
        if ts is None:
            ts = W or 10_000
        fn = lambda s: inverse_sqrt_lambda(s, num_warmup_steps=W, timescale=ts)
    elif name == "cosine_with_min_lr":
        T, nc, m = a.pop("num_training_steps"), a.pop("num_cycles", 0.5), min_lr_rate()
        fn = lambda s: cosine_lambda(s, num_warmup_steps=W, num_training_steps=T, num_cycles=nc, min_lr_rate=m)
    elif name == "cosine_warmup_with_min_lr":
        T, nc, m = a.pop("num_training_steps"), a.pop("num_cycles", 0.5), min_lr_rate()
        r = a.pop("warmup_lr_rate", None)
        fn = lambda s: cosine_warmup_with_min_lr_lambda(s, num_warmup_steps=W, num_training_steps=T, num_cycles=nc,
                                                        min_lr_rate=m, warmup_lr_rate=r)
    elif name == "warmup_stable_decay":
        D = a.pop("num_decay_steps")
        T = a.pop("num_training_steps", None)
        S = a.pop("num_stable_steps", None)
        if S is None:  # get_wsd_schedule
            S = T - W - D
        kw = dict(num_warmup_steps=W, num_stable_steps=S, num_decay_steps=D,
                  warmup_type=a.pop("warmup_type", "linear"), decay_type=a.pop("decay_type", "cosine"),
                  min_lr_ratio=a.pop("min_lr_ratio", 0), num_cycles=a.pop("num_cycles", 0.5))
        fn = lambda s: wsd_lambda(s, **kw)
    else:
        raise SystemExit("unknown name " + name)
    if a:
        raise SystemExit("%s does not take %s" % (name, sorted(a)))
    return fn


# --------------------------------------------------------------------------------------------------------------------
# Cases.

CASES = Cases()
case = CASES.add


# linear
case("linear_w10_t100", B2, {"name": "linear", "num_warmup_steps": 10, "num_training_steps": 100},
     "get_scheduler('linear', opt, num_warmup_steps=10, num_training_steps=100)", extra=around(50, 100) | {150, 300})
case("linear_w0_t50", B1, {"name": "linear", "num_warmup_steps": 0, "num_training_steps": 50},
     "get_linear_schedule_with_warmup(opt, 0, 50)", extra=around(50) | {25})
case("linear_w100_t50_training_before_warmup_end", B3,
     {"name": "linear", "num_warmup_steps": 100, "num_training_steps": 50},
     "get_linear_schedule_with_warmup(opt, 100, 50)", extra=around(50, 100))

# cosine: rises again past num_training_steps (W=10, T=100: 0.5 at 145, 1.0 at 190).
case("cosine_w10_t100", B2, {"name": "cosine", "num_warmup_steps": 10, "num_training_steps": 100},
     "get_scheduler('cosine', opt, num_warmup_steps=10, num_training_steps=100)",
     extra=around(55, 100, 145, 190, 280) | {120, 300})
case("cosine_w0_t1000_cycles2", B3, {"name": "cosine", "num_warmup_steps": 0, "num_training_steps": 1000,
                                     "num_cycles": 2.0},
     "get_cosine_schedule_with_warmup(opt, 0, 1000, num_cycles=2.0)", extra=around(250, 500, 750, 1000, 1250))
case("cosine_w5_t5", B1, {"name": "cosine", "num_warmup_steps": 5, "num_training_steps": 5},
     "get_cosine_schedule_with_warmup(opt, 5, 5)")
case("cosine_w3_t20_cycles0.25", B1, {"name": "cosine", "num_warmup_steps": 3, "num_training_steps": 20,
                                      "num_cycles": 0.25},
     "get_cosine_schedule_with_warmup(opt, 3, 20, num_cycles=0.25)", extra=range(21, 80))

# cosine_with_restarts
case("cosine_with_restarts_w10_t110", B1, {"name": "cosine_with_restarts", "num_warmup_steps": 10,
                                           "num_training_steps": 110},
     "get_scheduler('cosine_with_restarts', opt, num_warmup_steps=10, num_training_steps=110)",
     extra=around(60, 110) | {200})
case("cosine_with_restarts_w0_t99_cycles3", B2, {"name": "cosine_with_restarts", "num_warmup_steps": 0,
                                                "num_training_steps": 99, "num_cycles": 3},
     "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 0, 99, num_cycles=3)",
     extra=range(20, 110))
case("cosine_with_restarts_w5_t105_cycles2.5", B3, {"name": "cosine_with_restarts", "num_warmup_steps": 5,
                                                   "num_training_steps": 105, "num_cycles": 2.5},
     "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 5, 105, num_cycles=2.5)",
     extra=around(45, 85, 95, 105))

# polynomial
case("polynomial_default_w10_t100", B2, {"name": "polynomial", "num_warmup_steps": 10, "num_training_steps": 100},
     "get_scheduler('polynomial', opt, num_warmup_steps=10, num_training_steps=100)  # lr_end=1e-7, power=1.0",
     extra=around(50, 100) | {200})
case("polynomial_w0_t50_end0.001_power2", B1, {"name": "polynomial", "num_warmup_steps": 0, "num_training_steps": 50,
                                               "lr_end": [0.001], "power": 2.0},
     "get_polynomial_decay_schedule_with_warmup(opt, 0, 50, lr_end=0.001, power=2.0)", extra=around(25, 50))
case("polynomial_w10_t110_per_group_end_power0.5", B3,
     {"name": "polynomial", "num_warmup_steps": 10, "num_training_steps": 110, "lr_end": [0.01, 0.001, 0.0001],
      "power": 0.5},
     "get_polynomial_decay_schedule_with_warmup(opt_g, 10, 110, lr_end=[0.01, 0.001, 0.0001][g], power=0.5), "
     "one optimizer per group", extra=around(60, 110))
case("polynomial_w20_t10_training_before_warmup_end", B1,
     {"name": "polynomial", "num_warmup_steps": 20, "num_training_steps": 10, "lr_end": [0.0]},
     "get_polynomial_decay_schedule_with_warmup(opt, 20, 10, lr_end=0.0)", near=range(0, 31))
case("polynomial_w0_t7_power0", B2, {"name": "polynomial", "num_warmup_steps": 0, "num_training_steps": 7,
                                     "power": 0.0},
     "get_polynomial_decay_schedule_with_warmup(opt, 0, 7, power=0.0)", near=range(0, 12))

# constant, constant_with_warmup
case("constant", B3, {"name": "constant"}, "get_scheduler('constant', opt)", near=range(0, 5))
case("constant_with_warmup_w10", B2, {"name": "constant_with_warmup", "num_warmup_steps": 10},
     "get_scheduler('constant_with_warmup', opt, num_warmup_steps=10)")
case("constant_with_warmup_w0", B1, {"name": "constant_with_warmup", "num_warmup_steps": 0},
     "get_constant_schedule_with_warmup(opt, 0)", near=range(0, 5))

# inverse_sqrt
case("inverse_sqrt_w100", B1, {"name": "inverse_sqrt", "num_warmup_steps": 100},
     "get_scheduler('inverse_sqrt', opt, num_warmup_steps=100)  # timescale = num_warmup_steps",
     extra=around(100, 400) | {300})
case("inverse_sqrt_w0_default_timescale", B2, {"name": "inverse_sqrt", "num_warmup_steps": 0},
     "get_inverse_sqrt_schedule(opt, 0)  # timescale = 10000", extra=around(10000, 30000))
case("inverse_sqrt_w10_timescale50", B3, {"name": "inverse_sqrt", "num_warmup_steps": 10, "timescale": 50},
     "get_inverse_sqrt_schedule(opt, 10, timescale=50)", extra=around(60, 110))

# cosine_with_min_lr
case("cosine_with_min_lr_w10_t100_rate0.1", B2, {"name": "cosine_with_min_lr", "num_warmup_steps": 10,
                                                 "num_training_steps": 100, "min_lr_rate": 0.1},
     "get_scheduler('cosine_with_min_lr', opt, 10, 100, scheduler_specific_kwargs={'min_lr_rate': 0.1})",
     extra=around(55, 100, 145, 190))
case("cosine_with_min_lr_min_lr0.001", B3, {"name": "cosine_with_min_lr", "num_warmup_steps": 5,
                                            "num_training_steps": 50, "min_lr": [0.001]},
     "get_cosine_with_min_lr_schedule_with_warmup(opt_g, 5, 50, min_lr=0.001), one optimizer per group (lr = base)",
     extra=around(50, 95))
case("cosine_with_min_lr_per_group_min_lr_cycles1", B2,
     {"name": "cosine_with_min_lr", "num_warmup_steps": 0, "num_training_steps": 40, "min_lr": [0.01, 0.002],
      "num_cycles": 1.0},
     "get_cosine_with_min_lr_schedule_with_warmup(opt_g, 0, 40, num_cycles=1.0, min_lr=[0.01, 0.002][g])",
     extra=around(20, 40))

# cosine_warmup_with_min_lr: warmup (N + 1) / W, progress (N - W + 1) / (T - W).
case("cosine_warmup_with_min_lr_w10_t100_rate0.05", B2,
     {"name": "cosine_warmup_with_min_lr", "num_warmup_steps": 10, "num_training_steps": 100, "min_lr_rate": 0.05},
     "get_scheduler('cosine_warmup_with_min_lr', opt, 10, 100, scheduler_specific_kwargs={'min_lr_rate': 0.05})",
     extra=around(55, 99, 100, 190))
case("cosine_warmup_with_min_lr_warmup_lr_rate0.1", B3,
     {"name": "cosine_warmup_with_min_lr", "num_warmup_steps": 10, "num_training_steps": 60, "min_lr": [0.001],
      "warmup_lr_rate": 0.1},
     "get_cosine_with_min_lr_schedule_with_warmup_lr_rate(opt_g, 10, 60, min_lr=0.001, warmup_lr_rate=0.1)",
     extra=around(35, 60))
case("cosine_warmup_with_min_lr_w1_warmup_lr_rate0.5", B1,
     {"name": "cosine_warmup_with_min_lr", "num_warmup_steps": 1, "num_training_steps": 9, "min_lr_rate": 0.0,
      "warmup_lr_rate": 0.5, "num_cycles": 1.0},
     "get_cosine_with_min_lr_schedule_with_warmup_lr_rate(opt, 1, 9, num_cycles=1.0, min_lr_rate=0.0, "
     "warmup_lr_rate=0.5)")
case("cosine_warmup_with_min_lr_w0", B1,
     {"name": "cosine_warmup_with_min_lr", "num_warmup_steps": 0, "num_training_steps": 10, "min_lr_rate": 0.2},
     "get_cosine_with_min_lr_schedule_with_warmup_lr_rate(opt, 0, 10, min_lr_rate=0.2)")

# warmup_stable_decay
case("wsd_default_w10_t100_d20", B2, {"name": "warmup_stable_decay", "num_warmup_steps": 10,
                                      "num_training_steps": 100, "num_decay_steps": 20},
     "get_scheduler('warmup_stable_decay', opt, num_warmup_steps=10, num_training_steps=100, "
     "scheduler_specific_kwargs={'num_decay_steps': 20})  # linear warmup, cosine decay",
     extra=around(80, 90, 100) | set(range(78, 103)))
case("wsd_cosine_warmup_linear_decay_min0.1", B3,
     {"name": "warmup_stable_decay", "num_warmup_steps": 10, "num_stable_steps": 50, "num_decay_steps": 30,
      "warmup_type": "cosine", "decay_type": "linear", "min_lr_ratio": 0.1},
     "get_wsd_schedule(opt, 10, 30, num_stable_steps=50, warmup_type='cosine', decay_type='linear', "
     "min_lr_ratio=0.1)", extra=around(60, 75, 90) | {120})
case("wsd_1sqrt_min0.05", B1,
     {"name": "warmup_stable_decay", "num_warmup_steps": 8, "num_stable_steps": 4, "num_decay_steps": 16,
      "warmup_type": "1-sqrt", "decay_type": "1-sqrt", "min_lr_ratio": 0.05},
     "get_wsd_schedule(opt, 8, 16, num_stable_steps=4, warmup_type='1-sqrt', decay_type='1-sqrt', "
     "min_lr_ratio=0.05)", near=range(0, 40))
case("wsd_stable_steps_win_cycles1", B2,
     {"name": "warmup_stable_decay", "num_warmup_steps": 5, "num_training_steps": 1000, "num_stable_steps": 10,
      "num_decay_steps": 20, "num_cycles": 1.0},
     "get_wsd_schedule(opt, 5, 20, num_training_steps=1000, num_stable_steps=10, num_cycles=1.0)  "
     "# num_stable_steps wins (HF warns)", near=range(0, 45))
case("wsd_every_parameter", B3,
     {"name": "warmup_stable_decay", "num_warmup_steps": 10, "num_training_steps": 200, "num_stable_steps": 40,
      "num_decay_steps": 50, "warmup_type": "1-sqrt", "decay_type": "cosine", "min_lr_ratio": 0.2,
      "num_cycles": 0.75},
     "get_wsd_schedule(opt, 10, 50, num_training_steps=200, num_stable_steps=40, warmup_type='1-sqrt', "
     "decay_type='cosine', min_lr_ratio=0.2, num_cycles=0.75)", extra=set(range(45, 105)))
case("wsd_no_decay", B1, {"name": "warmup_stable_decay", "num_warmup_steps": 3, "num_training_steps": 10,
                          "num_decay_steps": 0, "min_lr_ratio": 0.25},
     "get_wsd_schedule(opt, 3, 0, num_training_steps=10, min_lr_ratio=0.25)")


def main():
    lambdas = {}

    def values(c, step):
        if c["name"] not in lambdas:
            lambdas[c["name"]] = [make_lambda(c["spec"], b, g) for g, b in enumerate(c["bases"])]
        return [b * fn(step) for b, fn in zip(c["bases"], lambdas[c["name"]])]

    CASES.write(OUT, SOURCE, "transformers", values)


if __name__ == "__main__":
    main()
