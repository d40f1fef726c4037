#!/usr/bin/python3
"""Generate tests/golden/optax_golden.json: optax's schedule formulas, transcribed, in float64.

    /usr/bin/python3 tests/golden/gen_optax_golden.py

optax (and jax) are not installed here, so every number comes from the formulas of optax's own source, transcribed
below with a citation next to each (our code, not optax's):

    google-deepmind/optax, optax/schedules/_schedule.py at commit bda4442cd7c6b54631b1c34616838d4d84620ef5
    google-deepmind/optax, optax/schedules/_join.py     at commit 58f8353e6883290002c64867bbbfc57515c68b29
    (optax 0.2.x; the tree's optax/__init__.py at 00ad97c says __version__ = "0.2.7.dev")

optax computes in float32 by default (jax's default dtype); these goldens are the same formulas in float64, in
optax's order of operations, with Python's correctly rounded int / int and C's pow/cos (what the C++ core uses).
Step N is schedule(N): optax evaluates a schedule on the update count before incrementing it.

Each case is an hpsched spec {"optax": {"name": <optax function>, ...}}. The generator reads the spec the way the
catalog documents it (per-group lists, unset init_value / peak_value / value = the group's base value, boundaries and
scales = the dict boundaries_and_scales, child schedules for join_schedules and sgdr_schedule's cosine_kwargs), calls
the transcribed optax function once per parameter group and samples it densely near every transition and at far steps
up to 2^53 - 1. Output: a hpsched.golden.GoldenFile (tests/golden/golden.proto) as protobuf JSON, floats as Python
reprs (exact round trip). Deterministic.
"""

import json
import math
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optax_golden.json")
FAR = [10**3, 10**4, 10**5, 10**6, 10**7 - 1, 10**7, 2**53 - 1]


def ieee_pow(base, exponent):
    """base ** exponent with IEEE overflow to +inf (as jnp.power) instead of Python's OverflowError; base >= 0."""
    try:
        return base ** exponent
    except OverflowError:
        return math.inf


# ---------------------------------------------------------------------------------------------------------------------
# optax, transcribed. Each function returns a schedule: a Python function of the integer count.

def constant_schedule(value):
    # _schedule.py, constant_schedule: the value at every count.
    return lambda count: value


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    # _schedule.py, polynomial_schedule: transition_steps <= 0 gives the constant init_value; a negative
    # transition_begin falls back to 0; count = clip(count - begin, 0, steps); frac = 1 - count / steps;
    # (init - end) * frac**power + end.
    if transition_steps <= 0:
        return lambda count: init_value
    begin = max(transition_begin, 0)

    def schedule(count):
        c = min(max(count - begin, 0), transition_steps)
        frac = 1 - c / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value
    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    # _schedule.py, linear_schedule: polynomial_schedule with power=1.
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False,
                      end_value=None):
    # _schedule.py, exponential_decay: transition_steps <= 0 or decay_rate == 0 give the constant init_value (before
    # end_value is considered); negative begin -> 0; d = count - begin; p = d / steps, floored if staircase;
    # where(d <= 0, init, init * rate**p); then clip by end_value: max if rate < 1 else min (the init value too).
    if transition_steps <= 0 or decay_rate == 0:
        return lambda count: init_value
    begin = max(transition_begin, 0)

    def schedule(count):
        d = count - begin
        p = d / transition_steps
        if staircase:
            p = float(math.floor(p))
        value = init_value if d <= 0 else init_value * ieee_pow(decay_rate, p)
        if end_value is not None:
            value = max(value, end_value) if decay_rate < 1.0 else min(value, end_value)
        return value
    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    # _schedule.py, cosine_decay_schedule: decay_steps must be > 0; count = min(count, steps) as floats;
    # cosine = 0.5 * (1 + cos(pi * count / steps)); init * ((1 - alpha) * cosine**exponent + alpha).
    assert decay_steps > 0

    def schedule(count):
        c = min(float(count), float(decay_steps))
        cosine = 0.5 * (1 + math.cos(math.pi * c / float(decay_steps)))
        decayed = (1 - alpha) * cosine ** exponent + alpha
        return init_value * decayed
    return schedule


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    # _schedule.py, piecewise_constant_schedule: scales >= 0; over the sorted items,
    # indicator = max(0, sign(threshold - count)); v = v * indicator + (1 - indicator) * scale * v.
    if boundaries_and_scales is not None:
        assert all(s >= 0.0 for s in boundaries_and_scales.values())

    def schedule(count):
        v = init_value
        if boundaries_and_scales is not None:
            for threshold, scale in sorted(boundaries_and_scales.items()):
                indicator = max(0.0, float((threshold > count) - (threshold < count)))
                v = v * indicator + (1 - indicator) * scale * v
        return v
    return schedule


def _linear_interpolate(start, end, pct):
    # _schedule.py, _linear_interpolate.
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    # _schedule.py, _cosine_interpolate.
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def piecewise_interpolate_schedule(interpolate_type, init_value, boundaries_and_scales=None):
    # _schedule.py, piecewise_interpolate_schedule: bounds = (0,) + sorted boundaries; values = cumprod((init,) +
    # scales); interval sizes max(b[i+1] - b[i], 1); indicator_i = b[i] <= count < b[i+1];
    # pct_i = (count - b[i]) / size_i; result = indicator . interp(values[:-1], values[1:], pct)
    # + (b[-1] <= count) * values[-1].
    interp = {"linear": _linear_interpolate, "cosine": _cosine_interpolate}[interpolate_type]
    if boundaries_and_scales:
        boundaries, scales = zip(*sorted(boundaries_and_scales.items()))
        assert all(s >= 0.0 for s in scales)
    else:
        boundaries, scales = (), ()
    bounds = (0,) + tuple(boundaries)
    values = [init_value]
    for s in scales:
        values.append(values[-1] * s)  # jnp.cumprod, in order

    def schedule(count):
        total = 0.0
        for i in range(len(bounds) - 1):
            size = max(bounds[i + 1] - bounds[i], 1)
            indicator = 1.0 if bounds[i] <= count < bounds[i + 1] else 0.0
            pct = (count - bounds[i]) / size
            total += indicator * interp(values[i], values[i + 1], pct)
        return total + (1.0 if bounds[-1] <= count else 0.0) * values[-1]
    return schedule


def linear_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, pct_final=0.85, div_factor=25.0,
                             final_div_factor=1e4):
    # _schedule.py, linear_onecycle_schedule: transition_steps > 0; piecewise_interpolate_schedule('linear',
    # peak / div, {int(pct_start * T): div, int(pct_final * T): 1 / div, T: 1 / final_div}) (a dict literal: an
    # equal later key replaces the earlier value).
    assert transition_steps > 0
    return piecewise_interpolate_schedule("linear", peak_value / div_factor, {
        int(pct_start * transition_steps): div_factor,
        int(pct_final * transition_steps): 1.0 / div_factor,
        transition_steps: 1.0 / final_div_factor,
    })


def cosine_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    # _schedule.py, cosine_onecycle_schedule: piecewise_interpolate_schedule('cosine', peak / div,
    # {int(pct_start * T): div, int(T): 1 / (div * final_div)}).
    assert transition_steps > 0
    return piecewise_interpolate_schedule("cosine", peak_value / div_factor, {
        int(pct_start * transition_steps): div_factor,
        int(transition_steps): 1.0 / (div_factor * final_div_factor),
    })


def join_schedules(schedules, boundaries):
    # _join.py, join_schedules: output = schedules[0](step); for each (boundary, schedule):
    # output = where(step < boundary, output, schedule(step - boundary)). (Evaluated lazily here; same values.)
    def schedule(step):
        output = schedules[0](step)
        for boundary, s in zip(boundaries, schedules[1:]):
            if not step < boundary:
                output = s(step - boundary)
        return output
    return schedule


def warmup_constant_schedule(init_value, peak_value, warmup_steps):
    # _schedule.py, warmup_constant_schedule: linear_schedule(init, peak, warmup_steps).
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0):
    # _schedule.py, warmup_cosine_decay_schedule: alpha = 0 if peak == 0 else end / peak;
    # join([linear(init, peak, W), cosine_decay(peak, decay_steps - W, alpha, exponent)], [W]).
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules([
        linear_schedule(init_value, peak_value, warmup_steps),
        cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
    ], [warmup_steps])


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps, transition_steps, decay_rate,
                                      transition_begin=0, staircase=False, end_value=None):
    # _schedule.py, warmup_exponential_decay_schedule:
    # join([linear(init, peak, W), exponential_decay(peak, steps, rate, begin, staircase, end)], [W]).
    return join_schedules([
        linear_schedule(init_value, peak_value, warmup_steps),
        exponential_decay(peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value),
    ], [warmup_steps])


def sgdr_schedule(cosine_kwargs):
    # _schedule.py, sgdr_schedule: one warmup_cosine_decay_schedule(**kwargs) per cycle; cycle boundaries are the
    # running sums of decay_steps; join_schedules(schedules, boundaries[:-1]).
    boundaries, schedules, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        boundaries.append(step + kwargs["decay_steps"])
        step += kwargs["decay_steps"]
    return join_schedules(schedules, boundaries[:-1])


def torch_step_lr(base, step_size, gamma=0.1):
    # A non-optax child of join_schedules: hpsched's `step` kind, PyTorch StepLR's closed form
    # (torch/optim/lr_scheduler.py, StepLR._get_closed_form_lr): base * gamma ** (t // step_size).
    return lambda t: base * gamma ** float(t // step_size)


# ---------------------------------------------------------------------------------------------------------------------
# The hpsched spec -> the optax call, for one parameter group (the mapping docs/catalog/optax.md documents).

ABSOLUTE = ("value", "init_value", "end_value", "peak_value")
DEFAULTS_TO_BASE = {
    "constant_schedule": ("value",),
    "linear_schedule": ("init_value",),
    "polynomial_schedule": ("init_value",),
    "exponential_decay": ("init_value",),
    "cosine_decay_schedule": ("init_value",),
    "piecewise_constant_schedule": ("init_value",),
    "piecewise_interpolate_schedule": ("init_value",),
    "warmup_constant_schedule": ("peak_value",),
    "warmup_cosine_decay_schedule": ("peak_value",),
    "warmup_exponential_decay_schedule": ("peak_value",),
    "cosine_onecycle_schedule": ("peak_value",),
    "linear_onecycle_schedule": ("peak_value",),
}


def kwargs_for(body, base, group):
    kw = {}
    for k, v in body.items():
        if k in ("name", "schedules", "boundaries", "scales"):
            continue
        if k in ABSOLUTE:
            v = float(v[group] if len(v) > 1 else v[0])
        kw[k] = v
    for k in DEFAULTS_TO_BASE.get(body["name"], ()):
        kw.setdefault(k, base)
    if "boundaries" in body or "scales" in body:
        if body["name"] != "join_schedules":
            kw["boundaries_and_scales"] = dict(zip(body.get("boundaries", []), body.get("scales", [])))
    return kw


def build(spec, base, group):
    """The reference schedule of an hpsched spec for one group (base value `base`)."""
    kind, body = next(iter(spec.items()))
    if kind == "step":
        return torch_step_lr(base, body["step_size"], body.get("gamma", 0.1))
    assert kind == "optax"
    name = body["name"]
    if name == "join_schedules":
        return join_schedules([build(c, base, group) for c in body["schedules"]], body.get("boundaries", []))
    if name == "sgdr_schedule":
        return sgdr_schedule([kwargs_for(c["optax"], base, group) for c in body["schedules"]])
    return globals()[name](**kwargs_for(body, base, group))


def reference(spec, top=True):
    """The optax call, for humans; per-group lists are marked, defaults to the base value noted once."""
    kind, body = next(iter(spec.items()))
    if kind == "step":
        return "hpsched step(step_size=%r, gamma=%r)" % (body["step_size"], body.get("gamma", 0.1))
    name = body["name"]
    args = []
    for k, v in body.items():
        if k in ("name", "schedules", "boundaries", "scales"):
            continue
        args.append("%s=%s" % (k, ("per group %r" % v) if isinstance(v, list) and len(v) > 1 else
                               repr(v[0] if isinstance(v, list) else v)))
    if name in ("join_schedules", "sgdr_schedule"):
        args.insert(0, "[%s]" % ", ".join(reference(c, top=False) for c in body["schedules"]))
        if name == "join_schedules":
            args.append("boundaries=%r" % body.get("boundaries", []))
    elif "boundaries" in body:
        args.append("boundaries_and_scales=%r" % dict(zip(body["boundaries"], body["scales"])))
    text = "optax.%s(%s)" % (name, ", ".join(args))
    if top:
        text += "  # unset value / init_value / peak_value = the group's base value (see docs/catalog/optax.md)"
    return text


# ---------------------------------------------------------------------------------------------------------------------
# Cases.

CASES = []


def around(*steps):
    out = set()
    for s in steps:
        out |= {s - 2, s - 1, s, s + 1, s + 2}
    return {s for s in out if s >= 0}


def case(name, bases, body, marks=(), near=range(0, 41), far=FAR):
    spec = {"optax": body} if "name" in body else body
    steps = set(near) | around(*marks) | set(far)
    CASES.append((name, [float(b) for b in bases], spec, sorted(s for s in steps if 0 <= s < 2**53)))


def O(name, **kw):
    return dict(name=name, **kw)


B1 = [0.1]
B2 = [0.1, 0.01]
B3 = [1.0, 0.5, 0.003]

# constant_schedule
case("constant_default", B3, O("constant_schedule"))
case("constant_value", B2, O("constant_schedule", value=[0.3]))
case("constant_value_per_group", B2, O("constant_schedule", value=[0.5, 0.25]))

# linear_schedule
case("linear_1_to_0.01_T100", B1, O("linear_schedule", init_value=[1.0], end_value=[0.01], transition_steps=100),
     marks=[100], near=range(0, 111))
case("linear_all_params_per_group", B2,
     O("linear_schedule", end_value=[0.0, 0.001], transition_steps=50, transition_begin=10), marks=[10, 60])
case("linear_warmup_0_to_base", B3, O("linear_schedule", init_value=[0.0], end_value=B3, transition_steps=7),
     marks=[7])
case("linear_transition_steps0_is_init", B2, O("linear_schedule", init_value=[0.2], end_value=[0.0],
                                               transition_steps=0))
case("linear_transition_steps_negative_is_init", B1, O("linear_schedule", end_value=[0.0], transition_steps=-5))
case("linear_negative_begin_is_0", B1, O("linear_schedule", end_value=[0.0], transition_steps=20,
                                         transition_begin=-5), marks=[20])

# polynomial_schedule
case("polynomial_doc_example", B1, O("polynomial_schedule", init_value=[1.0], end_value=[0.01], power=2.0,
                                     transition_steps=100, transition_begin=5), marks=[5, 105], near=range(0, 111))
case("polynomial_power0.5_per_group", B3, O("polynomial_schedule", end_value=[1e-4], power=0.5,
                                            transition_steps=1000), marks=[1000])
case("polynomial_power3_end_per_group", B2, O("polynomial_schedule", init_value=[0.2, 0.05], end_value=[0.02, 0.0],
                                              power=3.0, transition_steps=30, transition_begin=3), marks=[3, 33])
case("polynomial_power0_holds_init", B1, O("polynomial_schedule", end_value=[0.0], power=0.0, transition_steps=10),
     marks=[10])
case("polynomial_transition_steps0_is_init", B1, O("polynomial_schedule", end_value=[0.5], power=2.0,
                                                   transition_steps=0))
case("polynomial_far_transition", B1, O("polynomial_schedule", end_value=[0.0], power=1.5,
                                        transition_steps=2**53, transition_begin=2**52),
     marks=[2**52, 2**52 + 10**6], far=FAR + [2**53 - 2])

# exponential_decay
case("exponential_default", B2, O("exponential_decay", transition_steps=10, decay_rate=0.5), marks=[10, 20, 30])
case("exponential_staircase_begin", B1, O("exponential_decay", transition_steps=7, decay_rate=0.9,
                                          transition_begin=20, staircase=True), marks=[20, 27, 34, 41],
     near=range(0, 61))
case("exponential_end_lower_bound", B1, O("exponential_decay", init_value=[1.0], transition_steps=5,
                                          decay_rate=0.5, end_value=[0.001]), marks=[45, 50])
case("exponential_rate_above_1_end_upper_bound", B1, O("exponential_decay", init_value=[0.1], transition_steps=10,
                                                       decay_rate=1.5, end_value=[2.0]), marks=[70, 80])
case("exponential_end_clips_init", B1, O("exponential_decay", init_value=[1.0], transition_steps=5, decay_rate=0.5,
                                         end_value=[2.0]))
case("exponential_rate0_is_init", B2, O("exponential_decay", transition_steps=5, decay_rate=0.0, end_value=[5.0]))
case("exponential_transition_steps0_is_init", B1, O("exponential_decay", transition_steps=0, decay_rate=0.5))
case("exponential_negative_begin_is_0", B1, O("exponential_decay", transition_steps=3, decay_rate=0.8,
                                              transition_begin=-7))
case("exponential_rate_above_1_stays_finite", B1, O("exponential_decay", transition_steps=10**12, decay_rate=1.001),
     far=FAR + [10**12, 10**15])
case("exponential_all_params_per_group", B2, O("exponential_decay", init_value=[0.2, 0.02], transition_steps=3,
                                               decay_rate=0.7, transition_begin=4, staircase=True,
                                               end_value=[0.01, 0.001]), marks=[4, 7, 10, 25, 28])

# cosine_decay_schedule
case("cosine_decay_default", B2, O("cosine_decay_schedule", decay_steps=100), marks=[50, 100], near=range(0, 21))
case("cosine_decay_alpha_exponent", B1, O("cosine_decay_schedule", init_value=[1.0], decay_steps=50, alpha=0.1,
                                          exponent=2.0), marks=[25, 50])
case("cosine_decay_steps1", B1, O("cosine_decay_schedule", decay_steps=1))
case("cosine_decay_per_group", B3, O("cosine_decay_schedule", init_value=[0.3, 0.03, 0.003], decay_steps=37,
                                     alpha=0.05, exponent=0.5), marks=[37])
case("cosine_decay_negative_alpha", B1, O("cosine_decay_schedule", decay_steps=20, alpha=-0.1, exponent=0.0),
     marks=[20])

# warmup_constant_schedule
case("warmup_constant", B2, O("warmup_constant_schedule", init_value=[0.0], warmup_steps=10), marks=[10])
case("warmup_constant_steps0_is_init", B1, O("warmup_constant_schedule", init_value=[0.01], peak_value=[1.0],
                                             warmup_steps=0))

# warmup_cosine_decay_schedule
case("warmup_cosine_basic", B3, O("warmup_cosine_decay_schedule", init_value=[0.0], warmup_steps=10,
                                  decay_steps=100), marks=[10, 55, 100], near=range(0, 21))
case("warmup_cosine_all_params_per_group", B2,
     O("warmup_cosine_decay_schedule", init_value=[0.0, 0.001], peak_value=[1.0, 0.1], warmup_steps=5,
       decay_steps=50, end_value=[0.01, 0.002], exponent=1.5), marks=[5, 50], near=range(0, 56))
case("warmup_cosine_warmup0", B1, O("warmup_cosine_decay_schedule", init_value=[0.5], warmup_steps=0,
                                    decay_steps=20), marks=[20])
case("warmup_cosine_peak0_alpha0", B1, O("warmup_cosine_decay_schedule", init_value=[0.1], peak_value=[0.0],
                                         warmup_steps=4, decay_steps=12, end_value=[0.05]), marks=[4, 12])

# warmup_exponential_decay_schedule
case("warmup_exponential_basic", B2, O("warmup_exponential_decay_schedule", init_value=[0.0], warmup_steps=10,
                                       transition_steps=20, decay_rate=0.5), marks=[10, 30, 50])
case("warmup_exponential_all_params_per_group", B2,
     O("warmup_exponential_decay_schedule", init_value=[0.001], peak_value=[0.1, 0.2], warmup_steps=5,
       transition_steps=3, decay_rate=0.8, transition_begin=7, staircase=True, end_value=[0.01]),
     marks=[5, 12, 15, 18, 40], near=range(0, 61))
case("warmup_exponential_rate0", B1, O("warmup_exponential_decay_schedule", init_value=[0.0], warmup_steps=3,
                                       transition_steps=5, decay_rate=0.0), marks=[3])

# piecewise_constant_schedule
case("piecewise_constant_doc", B1, O("piecewise_constant_schedule", init_value=[1.0], boundaries=[100, 200],
                                     scales=[0.1, 0.01]), marks=[100, 200])
case("piecewise_constant_unsorted_per_group", B3, O("piecewise_constant_schedule", boundaries=[30, 10, 20],
                                                    scales=[0.5, 2.0, 0.1]), marks=[10, 20, 30])
case("piecewise_constant_boundary0", B2, O("piecewise_constant_schedule", init_value=[0.4, 0.04], boundaries=[0, 5],
                                           scales=[0.5, 0.5]), marks=[5])
case("piecewise_constant_no_boundaries", B1, O("piecewise_constant_schedule"))
case("piecewise_constant_scale0", B1, O("piecewise_constant_schedule", boundaries=[3, 1000], scales=[0.0, 5.0]),
     marks=[3, 1000])

# piecewise_interpolate_schedule
case("piecewise_interpolate_linear_doc", B1, O("piecewise_interpolate_schedule", interpolate_type="linear",
                                               init_value=[1.0], boundaries=[4, 8], scales=[0.1, 0.01]))
case("piecewise_interpolate_cosine_per_group", B2, O("piecewise_interpolate_schedule", interpolate_type="cosine",
                                                     boundaries=[10, 30, 100], scales=[10.0, 0.1, 0.01]),
     marks=[10, 30, 100], near=range(0, 41))
case("piecewise_interpolate_linear_unsorted_boundary0", B1,
     O("piecewise_interpolate_schedule", interpolate_type="linear", boundaries=[20, 0], scales=[0.5, 4.0]),
     marks=[20])
case("piecewise_interpolate_no_boundaries", B2, O("piecewise_interpolate_schedule", interpolate_type="cosine",
                                                  init_value=[0.7, 0.07]))
case("piecewise_interpolate_adjacent_boundaries", B1,
     O("piecewise_interpolate_schedule", interpolate_type="cosine", boundaries=[5, 6, 1000], scales=[3.0, 0.5, 0.1]),
     marks=[5, 6, 500, 1000])

# join_schedules
case("join_linear_cosine", B2, O("join_schedules", boundaries=[10], schedules=[
    {"optax": O("linear_schedule", init_value=[0.0], end_value=B2, transition_steps=10)},
    {"optax": O("cosine_decay_schedule", decay_steps=90)}]), marks=[10, 100])
case("join_three_per_group", B3, O("join_schedules", boundaries=[5, 15], schedules=[
    {"optax": O("constant_schedule", value=[0.1, 0.01, 0.001])},
    {"optax": O("exponential_decay", transition_steps=2, decay_rate=0.5)},
    {"optax": O("piecewise_constant_schedule", init_value=[2.0], boundaries=[3], scales=[0.25])}]),
     marks=[5, 15, 18])
case("join_equal_boundaries", B1, O("join_schedules", boundaries=[10, 10], schedules=[
    {"optax": O("constant_schedule", value=[1.0])},
    {"optax": O("constant_schedule", value=[2.0])},
    {"optax": O("linear_schedule", init_value=[3.0], end_value=[0.0], transition_steps=10)}]), marks=[10, 20])
case("join_boundary0", B1, O("join_schedules", boundaries=[0], schedules=[
    {"optax": O("constant_schedule", value=[1.0])},
    {"optax": O("cosine_decay_schedule", decay_steps=8)}]), marks=[8])
case("join_with_torch_step_child", B2, O("join_schedules", boundaries=[7], schedules=[
    {"optax": O("warmup_constant_schedule", init_value=[0.0], warmup_steps=7)},
    {"step": {"step_size": 5, "gamma": 0.5}}]), marks=[7, 12, 17])
case("join_single", B1, O("join_schedules", schedules=[
    {"optax": O("polynomial_schedule", end_value=[0.0], power=2.0, transition_steps=30)}]), marks=[30])

# sgdr_schedule
CYCLES = [
    O("warmup_cosine_decay_schedule", init_value=[0.0], peak_value=[1.0], warmup_steps=5, decay_steps=20,
      end_value=[0.01]),
    O("warmup_cosine_decay_schedule", init_value=[0.0], peak_value=[0.5], warmup_steps=5, decay_steps=40),
    O("warmup_cosine_decay_schedule", init_value=[0.1], peak_value=[0.25], warmup_steps=0, decay_steps=80,
      end_value=[0.0], exponent=2.0),
]
case("sgdr_three_cycles", B1, O("sgdr_schedule", schedules=[{"optax": c} for c in CYCLES]),
     marks=[5, 20, 25, 60, 140], near=range(0, 70))
case("sgdr_per_group_peak_default", B2, O("sgdr_schedule", schedules=[
    {"optax": O("warmup_cosine_decay_schedule", init_value=[0.0], warmup_steps=3, decay_steps=10)},
    {"optax": O("warmup_cosine_decay_schedule", init_value=[0.0, 0.001], warmup_steps=2, decay_steps=10,
                end_value=[0.001, 0.0001])}]), marks=[3, 10, 12, 20])

# cosine_onecycle_schedule
case("cosine_onecycle_default", B2, O("cosine_onecycle_schedule", transition_steps=100), marks=[30, 100])
case("cosine_onecycle_all_params", B1, O("cosine_onecycle_schedule", transition_steps=1000, peak_value=[1.0],
                                         pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
     marks=[250, 1000])
case("cosine_onecycle_T1", B1, O("cosine_onecycle_schedule", transition_steps=1))
case("cosine_onecycle_pct_start1_same_key", B1, O("cosine_onecycle_schedule", transition_steps=10, pct_start=1.0))
case("cosine_onecycle_pct_start0_per_group", B3, O("cosine_onecycle_schedule", transition_steps=12, pct_start=0.0,
                                                   peak_value=[2.0, 1.0, 0.5]), marks=[12])

# linear_onecycle_schedule
case("linear_onecycle_default", B2, O("linear_onecycle_schedule", transition_steps=100), marks=[30, 85, 100],
     near=range(0, 41))
case("linear_onecycle_all_params_per_group", B2,
     O("linear_onecycle_schedule", transition_steps=200, peak_value=[2.0, 1.0], pct_start=0.2, pct_final=0.9,
       div_factor=5.0, final_div_factor=50.0), marks=[40, 180, 200])
case("linear_onecycle_T1_same_keys", B1, O("linear_onecycle_schedule", transition_steps=1))
case("linear_onecycle_T3", B1, O("linear_onecycle_schedule", transition_steps=3, pct_start=0.5, pct_final=0.7))


def main():
    out_cases, npoints = [], 0
    names = set()
    for name, bases, spec, steps in CASES:
        assert name not in names, name
        names.add(name)
        schedules = [build(spec, b, g) for g, b in enumerate(bases)]
        points = []
        for t in steps:
            values = [float(s(t)) for s in schedules]
            for v in values:
                if not math.isfinite(v):
                    raise SystemExit("%s: non-finite value %r at step %d" % (name, v, t))
            points.append({"step": t, "values": values})
        npoints += len(points)
        out_cases.append({"name": name, "schedule": spec, "base_values": bases, "reference": reference(spec),
                          "points": points})
    golden = {
        "source": "optax formulas transcribed in float64 (optax computes in float32 by default): "
                  "google-deepmind/optax optax/schedules/_schedule.py @bda4442 and _join.py @58f8353 (optax 0.2.x), "
                  "tests/golden/gen_optax_golden.py; step N = schedule(N)",
        "cases": out_cases,
    }
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print("wrote %s: %d cases, %d points" % (os.path.relpath(OUT), len(out_cases), npoints), file=sys.stderr)


if __name__ == "__main__":
    main()
