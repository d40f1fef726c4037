#!/usr/bin/python3
"""Generate tests/golden/keras_golden.json: Keras 3's learning-rate schedule classes.

    /usr/bin/python3 tests/golden/gen_keras_golden.py

Keras is not installed here (and PyPI is unreachable), so each schedule's __call__ is transcribed from the source:
keras-team/keras, keras/src/optimizers/schedules/learning_rate_schedule.py at commit
2534b643145262fc2c9ee638065ee14fdb623984 (Keras 3). Each function below names the class it transcribes and keeps its
order of operations. Step N is schedule(N).

Keras computes in the dtype of initial_learning_rate, float32 by default; these goldens are Keras's formula in
float64 (what Keras gives with a float64 initial_learning_rate), which is what hpsched computes.

One deliberate difference, documented in proto/hpsched/v1/keras.proto and docs/catalog/keras.md: CosineDecayRestarts
finds the cycle with a floating-point logarithm, which lands on the wrong side of some restarts (t_mul=3,
first_decay_steps=1, step 121: the end of cycle 4 instead of the start of cycle 5). hpsched moves to the neighbouring
cycle when the fraction falls outside [0, 1); so does this generator (restart_keras_corrected), and it reports on
stderr every sampled step where Keras's own float64 formula (restart_keras) differs.

Output: a hpsched.golden.GoldenFile (tests/golden/golden.proto) in the protobuf JSON mapping; floats are Python
reprs and round-trip exactly. Deterministic.
"""

import math
import os
import sys

from catalog_golden import B1, B2, B3, Cases, around

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_golden.json")
SOURCE = ("keras-team/keras keras/src/optimizers/schedules/learning_rate_schedule.py @ "
          "2534b643145262fc2c9ee638065ee14fdb623984 (Keras 3), __call__ formulas transcribed in float64 (Keras's "
          "default dtype is float32) by tests/golden/gen_keras_golden.py; step N = schedule(N)")


def log(msg):
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------------------------------------------------
# The __call__ methods, transcribed (not copied) in float64.


def exponential_decay(step, *, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    # ExponentialDecay.__call__
    p = float(step) / float(decay_steps)
    if staircase:
        p = math.floor(p)
    return initial_learning_rate * math.pow(decay_rate, p)


def piecewise_constant_decay(step, *, boundaries, values):
    # PiecewiseConstantDecay.__call__: sum over segments of (indicator as float) * value.
    result = 0.0
    result += float(step <= boundaries[0]) * values[0]
    result += float(step > boundaries[-1]) * values[-1]
    for low, high, v in zip(boundaries[:-1], boundaries[1:], values[1:-1]):
        result += float(step > low and step <= high) * v
    return result


def polynomial_decay(step, *, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False):
    # PolynomialDecay.__call__
    global_step = float(step)
    decay_steps_recomp = float(decay_steps)
    if cycle:
        multiplier = 1.0 if global_step == 0 else math.ceil(global_step / decay_steps)
        decay_steps_recomp = decay_steps_recomp * multiplier
    else:
        global_step = min(global_step, decay_steps_recomp)
    p = global_step / decay_steps_recomp
    assert p <= 1.0, "1 - p < 0 at step %d" % step  # Keras would take a negative number to a power
    return (initial_learning_rate - end_learning_rate) * math.pow(1 - p, power) + end_learning_rate


def inverse_time_decay(step, *, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    # InverseTimeDecay.__call__
    p = float(step) / float(decay_steps)
    if staircase:
        p = math.floor(p)
    denom = 1.0 + decay_rate * p
    return initial_learning_rate / denom


def cosine_decay(step, *, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    # CosineDecay.__call__, _decay_function, _warmup_function
    def decay_function(s, from_lr):
        completed_fraction = s / decay_steps
        cosine_decayed = 0.5 * (1.0 + math.cos(math.pi * completed_fraction))
        decayed = (1 - alpha) * cosine_decayed + alpha
        return from_lr * decayed

    decay_steps = float(decay_steps)
    global_step = float(step)
    if warmup_target is None:
        return decay_function(min(global_step, decay_steps), initial_learning_rate)
    warmup_steps = float(warmup_steps)
    global_step = min(global_step, decay_steps + warmup_steps)
    if global_step < warmup_steps:
        completed_fraction = global_step / warmup_steps
        total_step_delta = warmup_target - initial_learning_rate
        return total_step_delta * completed_fraction + initial_learning_rate
    return decay_function(global_step - warmup_steps, warmup_target)


def restart_keras(completed_fraction, t_mul):
    # CosineDecayRestarts.__call__.compute_step, as Keras computes it.
    if t_mul == 1.0:
        i_restart = math.floor(completed_fraction)
        return i_restart, completed_fraction - i_restart
    i_restart = math.floor(math.log(1.0 - completed_fraction * (1.0 - t_mul)) / math.log(t_mul))
    sum_r = (1.0 - math.pow(t_mul, i_restart)) / (1.0 - t_mul)
    return i_restart, (completed_fraction - sum_r) / math.pow(t_mul, i_restart)


def restart_keras_corrected(completed_fraction, t_mul):
    # hpsched: Keras's cycle index, moved to the neighbouring cycle when the fraction is outside [0, 1).
    i_restart, fraction = restart_keras(completed_fraction, t_mul)
    if t_mul == 1.0:
        return i_restart, fraction

    def frac(i):
        sum_r = (1.0 - math.pow(t_mul, i)) / (1.0 - t_mul)
        return (completed_fraction - sum_r) / math.pow(t_mul, i)

    if fraction < 0:
        i_restart -= 1
        fraction = frac(i_restart)
    elif fraction >= 1:
        i_restart += 1
        fraction = frac(i_restart)
    return i_restart, fraction


def cosine_decay_restarts(step, *, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                          locate=restart_keras_corrected):
    # CosineDecayRestarts.__call__
    completed_fraction = float(step) / float(first_decay_steps)
    i_restart, completed_fraction = locate(completed_fraction, float(t_mul))
    m_fac = math.pow(m_mul, i_restart)
    cosine_decayed = 0.5 * m_fac * (1.0 + math.cos(math.pi * completed_fraction))
    decayed = (1 - alpha) * cosine_decayed + alpha
    return initial_learning_rate * decayed


FUNCTIONS = {
    "ExponentialDecay": exponential_decay,
    "PiecewiseConstantDecay": piecewise_constant_decay,
    "PolynomialDecay": polynomial_decay,
    "InverseTimeDecay": inverse_time_decay,
    "CosineDecay": cosine_decay,
    "CosineDecayRestarts": cosine_decay_restarts,
}
PER_GROUP = {"initial_learning_rate", "end_learning_rate", "warmup_target"}
TAKES_INITIAL = {"ExponentialDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts"}


def keras_kwargs(spec, base, group, groups):
    """The constructor arguments of one group's Keras schedule, from an hpsched KerasSchedule spec."""
    kw = {}
    for k, v in spec.items():
        if k == "name":
            continue
        if k in PER_GROUP:
            v = v[0] if len(v) == 1 else v[group]
        if k == "values":
            n = len(spec["boundaries"]) + 1
            v = v if len(v) == n else v[group * n:(group + 1) * n]
        kw[k] = v
    if spec["name"] in TAKES_INITIAL and "initial_learning_rate" not in kw:
        kw["initial_learning_rate"] = base  # hpsched's default: the group's base value
    return kw


# --------------------------------------------------------------------------------------------------------------------
# Cases.

CASES = Cases()
case = CASES.add


def restarts(first, t_mul, limit):
    out, start, length = [], 0, first
    while start + length <= limit:
        start += length
        out.append(start)
        length *= t_mul
    return out


# ExponentialDecay
case("exponential_decay_ilr0.1_ds100_rate0.96", B1,
     {"name": "ExponentialDecay", "initial_learning_rate": [0.1], "decay_steps": 100, "decay_rate": 0.96},
     "ExponentialDecay(0.1, decay_steps=100, decay_rate=0.96)", extra=around(100, 200) | {150})
case("exponential_decay_staircase_default_ilr", B2,
     {"name": "ExponentialDecay", "decay_steps": 10, "decay_rate": 0.5, "staircase": True},
     "ExponentialDecay(b, decay_steps=10, decay_rate=0.5, staircase=True), b = the group's base value",
     extra=around(30, 100))
case("exponential_decay_per_group_ilr", B3,
     {"name": "ExponentialDecay", "initial_learning_rate": [0.1, 0.05, 0.001], "decay_steps": 1000,
      "decay_rate": 0.9},
     "ExponentialDecay([0.1, 0.05, 0.001][g], decay_steps=1000, decay_rate=0.9)", extra=around(1000, 5000))
case("exponential_decay_growth1.5_ds1e14", B1,
     {"name": "ExponentialDecay", "initial_learning_rate": [0.001], "decay_steps": 1e14, "decay_rate": 1.5},
     "ExponentialDecay(0.001, decay_steps=1e14, decay_rate=1.5)")
case("exponential_decay_ds2.5_rate0", B1,
     {"name": "ExponentialDecay", "initial_learning_rate": [0.1], "decay_steps": 2.5, "decay_rate": 0.0},
     "ExponentialDecay(0.1, decay_steps=2.5, decay_rate=0.0)", near=range(0, 5))
case("exponential_decay_ds2.5_rate0.8_staircase", B2,
     {"name": "ExponentialDecay", "initial_learning_rate": [0.1], "decay_steps": 2.5, "decay_rate": 0.8,
      "staircase": True},
     "ExponentialDecay(0.1, decay_steps=2.5, decay_rate=0.8, staircase=True)")

# PiecewiseConstantDecay: a boundary belongs to the earlier segment.
case("piecewise_10_20", B1, {"name": "PiecewiseConstantDecay", "boundaries": [10, 20], "values": [1.0, 0.5, 0.1]},
     "PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])", near=range(0, 31))
case("piecewise_per_group_values", B2,
     {"name": "PiecewiseConstantDecay", "boundaries": [100, 1000],
      "values": [0.1, 0.01, 0.001, 0.2, 0.02, 0.002]},
     "PiecewiseConstantDecay([100, 1000], [[0.1, 0.01, 0.001], [0.2, 0.02, 0.002]][g])", extra=around(100, 1000))
case("piecewise_boundary0", B3, {"name": "PiecewiseConstantDecay", "boundaries": [0], "values": [1.0, 0.5]},
     "PiecewiseConstantDecay([0], [1.0, 0.5])", near=range(0, 5))
case("piecewise_negative_and_far_boundaries", B1,
     {"name": "PiecewiseConstantDecay", "boundaries": [-5, 3, 10**7, 2**53 - 2], "values": [9.0, 1.0, 0.5, 0.25, 0.125]},
     "PiecewiseConstantDecay([-5, 3, 10**7, 2**53 - 2], [9.0, 1.0, 0.5, 0.25, 0.125])",
     near=range(0, 8), extra=around(10**7, 2**53 - 2))

# PolynomialDecay
case("polynomial_decay_default_ds100", B1,
     {"name": "PolynomialDecay", "initial_learning_rate": [0.1], "decay_steps": 100},
     "PolynomialDecay(0.1, decay_steps=100)  # end_learning_rate=1e-4, power=1", extra=around(50, 100))
case("polynomial_decay_power0.5_per_group_end", B2,
     {"name": "PolynomialDecay", "decay_steps": 10000, "end_learning_rate": [0.01, 0.001], "power": 0.5},
     "PolynomialDecay(b, decay_steps=10000, end_learning_rate=[0.01, 0.001][g], power=0.5)",
     extra=around(5000, 10000))
case("polynomial_decay_cycle_ds10_power2", B1,
     {"name": "PolynomialDecay", "initial_learning_rate": [0.1], "decay_steps": 10, "end_learning_rate": [0.001],
      "power": 2.0, "cycle": True},
     "PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.001, power=2.0, cycle=True)",
     near=range(0, 51), extra=around(100, 1000))
case("polynomial_decay_cycle_ds7.5", B3,
     {"name": "PolynomialDecay", "decay_steps": 7.5, "cycle": True},
     "PolynomialDecay(b, decay_steps=7.5, cycle=True)", near=range(0, 40))
case("polynomial_decay_power0", B1,
     {"name": "PolynomialDecay", "initial_learning_rate": [0.1], "decay_steps": 5, "power": 0.0},
     "PolynomialDecay(0.1, decay_steps=5, power=0.0)", near=range(0, 10))

# InverseTimeDecay
case("inverse_time_decay_ds1_rate0.5", B1,
     {"name": "InverseTimeDecay", "initial_learning_rate": [0.1], "decay_steps": 1.0, "decay_rate": 0.5},
     "InverseTimeDecay(0.1, decay_steps=1.0, decay_rate=0.5)")
case("inverse_time_decay_staircase_ds100", B2,
     {"name": "InverseTimeDecay", "decay_steps": 100, "decay_rate": 1.0, "staircase": True},
     "InverseTimeDecay(b, decay_steps=100, decay_rate=1.0, staircase=True)", extra=around(100, 200))
case("inverse_time_decay_every_parameter", B2,
     {"name": "InverseTimeDecay", "initial_learning_rate": [0.2, 0.02], "decay_steps": 7, "decay_rate": 0.3,
      "staircase": False},
     "InverseTimeDecay([0.2, 0.02][g], decay_steps=7, decay_rate=0.3, staircase=False)", extra=around(70, 700))
case("inverse_time_decay_per_group_rate0", B3,
     {"name": "InverseTimeDecay", "initial_learning_rate": [0.3, 0.2, 0.1], "decay_steps": 3, "decay_rate": 0.0},
     "InverseTimeDecay([0.3, 0.2, 0.1][g], decay_steps=3, decay_rate=0.0)", near=range(0, 5))

# CosineDecay
case("cosine_decay_ds1000", B1, {"name": "CosineDecay", "initial_learning_rate": [0.1], "decay_steps": 1000},
     "CosineDecay(0.1, decay_steps=1000)", extra=around(500, 1000) | {2000})
case("cosine_decay_alpha0.1_default_ilr", B2, {"name": "CosineDecay", "decay_steps": 100, "alpha": 0.1},
     "CosineDecay(b, decay_steps=100, alpha=0.1)", extra=around(50, 100))
case("cosine_decay_warmup100_ds900", B1,
     {"name": "CosineDecay", "initial_learning_rate": [0.0], "decay_steps": 900, "warmup_target": [0.1],
      "warmup_steps": 100},
     "CosineDecay(0.0, decay_steps=900, warmup_target=0.1, warmup_steps=100)", extra=around(100, 550, 1000))
case("cosine_decay_warmup_per_group_alpha0.01", B3,
     {"name": "CosineDecay", "initial_learning_rate": [0.0], "decay_steps": 90, "warmup_target": [1.0, 0.5, 0.003],
      "warmup_steps": 10, "alpha": 0.01},
     "CosineDecay(0.0, decay_steps=90, warmup_target=[1.0, 0.5, 0.003][g], warmup_steps=10, alpha=0.01)",
     extra=around(55, 100))
case("cosine_decay_warmup_target_no_warmup_steps", B1,
     {"name": "CosineDecay", "initial_learning_rate": [0.5], "decay_steps": 10, "warmup_target": [0.2]},
     "CosineDecay(0.5, decay_steps=10, warmup_target=0.2)  # warmup_steps=0: decays from warmup_target")
case("cosine_decay_fractional_warmup2.5_ds7.5", B2,
     {"name": "CosineDecay", "initial_learning_rate": [0.01], "decay_steps": 7.5, "warmup_target": [0.1],
      "warmup_steps": 2.5, "alpha": 0.2},
     "CosineDecay(0.01, decay_steps=7.5, warmup_target=0.1, warmup_steps=2.5, alpha=0.2)")

# CosineDecayRestarts
case("cosine_decay_restarts_default_fds10", B1,
     {"name": "CosineDecayRestarts", "initial_learning_rate": [0.1], "first_decay_steps": 10},
     "CosineDecayRestarts(0.1, first_decay_steps=10)  # t_mul=2, m_mul=1, alpha=0",
     near=range(0, 80), extra=around(*restarts(10, 2, 2**53 - 1)))
case("cosine_decay_restarts_tmul1_mmul0.5_alpha0.1", B2,
     {"name": "CosineDecayRestarts", "first_decay_steps": 100, "t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1},
     "CosineDecayRestarts(b, first_decay_steps=100, t_mul=1.0, m_mul=0.5, alpha=0.1)",
     extra=around(100, 200, 300, 1000))
case("cosine_decay_restarts_tmul3_fds1", B1,
     {"name": "CosineDecayRestarts", "initial_learning_rate": [0.1], "first_decay_steps": 1, "t_mul": 3.0},
     "CosineDecayRestarts(0.1, first_decay_steps=1, t_mul=3.0)  # Keras's log misplaces restarts: corrected",
     near=range(0, 45), extra=around(*restarts(1, 3, 2**53 - 1)))
case("cosine_decay_restarts_tmul3_fds10", B3,
     {"name": "CosineDecayRestarts", "first_decay_steps": 10, "t_mul": 3.0, "alpha": 0.01},
     "CosineDecayRestarts(b, first_decay_steps=10, t_mul=3.0, alpha=0.01)",
     extra=around(*restarts(10, 3, 2**53 - 1)) | set(range(1200, 1221)))
case("cosine_decay_restarts_tmul1.5_mmul0.9", B3,
     {"name": "CosineDecayRestarts", "initial_learning_rate": [0.2, 0.1, 0.05], "first_decay_steps": 20,
      "t_mul": 1.5, "m_mul": 0.9, "alpha": 0.05},
     "CosineDecayRestarts([0.2, 0.1, 0.05][g], first_decay_steps=20, t_mul=1.5, m_mul=0.9, alpha=0.05)",
     near=range(0, 120))
case("cosine_decay_restarts_mmul1.1_fds1000", B1,
     {"name": "CosineDecayRestarts", "initial_learning_rate": [0.01], "first_decay_steps": 1000, "m_mul": 1.1},
     "CosineDecayRestarts(0.01, first_decay_steps=1000, m_mul=1.1)",
     extra=around(*restarts(1000, 2, 2**53 - 1)[:12]))
case("cosine_decay_restarts_tmul2_fds1", B2,
     {"name": "CosineDecayRestarts", "initial_learning_rate": [0.1], "first_decay_steps": 1},
     "CosineDecayRestarts(0.1, first_decay_steps=1)  # Keras's log misplaces restarts near 2^48: corrected",
     near=range(0, 40), extra=around(*restarts(1, 2, 2**53 - 1)))


def main():
    differs = 0

    def values(c, step):
        nonlocal differs
        spec, bases = c["spec"], c["bases"]
        fn = FUNCTIONS[spec["name"]]
        kws = [keras_kwargs(spec, b, g, len(bases)) for g, b in enumerate(bases)]
        vals = [fn(step, **kw) for kw in kws]
        if fn is cosine_decay_restarts:
            raw = fn(step, locate=restart_keras, **kws[0])
            if raw != vals[0]:
                differs += 1
                log("%s step %d: Keras's float64 formula gives %r, the corrected cycle %r" %
                    (c["name"], step, raw, vals[0]))
        return vals

    CASES.write(OUT, SOURCE, "keras", values)
    log("CosineDecayRestarts: %d sampled points where the restart correction changes Keras's value" % differs)


if __name__ == "__main__":
    main()
