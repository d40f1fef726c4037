#!/usr/bin/python3
"""Generate tests/golden/deepspeed_golden.json from DeepSpeed's LR schedules, transcribed.

    /usr/bin/python3 tests/golden/gen_deepspeed_golden.py

DeepSpeed is not installed here, so each class's get_lr is transcribed below from deepspeedai/DeepSpeed
deepspeed/runtime/lr_schedules.py (commit 22779f2), in float64 and in DeepSpeed's order of operations.

Step convention: DeepSpeed's engine calls scheduler.step() after every successful optimizer step; step() first sets
last_batch_iteration += 1 (from -1), then writes get_lr(). The N-th optimizer step (from 0) therefore runs at the value
the constructor wrote when N = 0 (the `init` functions below) and at get_lr() with last_batch_iteration = N - 1 when
N >= 1. DeepSpeed's OneCycle and LRRangeTest take scalars only; per-group cases here give each group its own scalar.
"""

import math
import os

from golden_common import case, per_group, steps_near, write

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deepspeed_golden.json")


class Warmup:
    """WarmupLR / WarmupDecayLR (lr_schedules.py, classes WarmupLR and WarmupDecayLR, commit 22779f2)."""

    def __init__(self, min_lr, max_lr, warmup_num_steps=1000, warmup_type="log", total_num_steps=None):
        self.min_lr = min_lr
        self.delta_lr = max_lr - min_lr
        self.warmup_num_steps = max(2, warmup_num_steps)
        self.warmup_type = warmup_type
        self.inverse_log_warm_up = 1.0 / math.log(self.warmup_num_steps)
        self.total_num_steps = total_num_steps

    def init(self):
        # The constructor writes get_lr() with last_batch_iteration = -1, which returns min_lrs.
        return self.min_lr

    def warmup_gamma(self, it):
        if self.warmup_type == "log":
            return self.inverse_log_warm_up * math.log(it + 1)
        return it / self.warmup_num_steps

    def gamma(self, it):
        if it < self.warmup_num_steps:
            return self.warmup_gamma(it)
        if self.total_num_steps is None:  # WarmupLR._get_gamma
            return 1.0
        # WarmupDecayLR._get_gamma
        return max(0.0, float(self.total_num_steps - it) /
                   float(max(1.0, self.total_num_steps - self.warmup_num_steps)))

    def get_lr(self, it):
        return self.min_lr + (self.delta_lr * self.gamma(it))


class WarmupCosine:
    """WarmupCosineLR (lr_schedules.py, class WarmupCosineLR, get_lr_ratio, commit 22779f2)."""

    def __init__(self, org_lr, total_num_steps, warmup_min_ratio=0.0, warmup_num_steps=1000, cos_min_ratio=0.0001,
                 warmup_type="log"):
        self.org_lr = org_lr
        self.total_num_steps = total_num_steps
        self.cos_min_ratio = cos_min_ratio
        self.warmup_type = warmup_type
        self.warmup_min_ratio = warmup_min_ratio
        self.warmup_num_steps = max(2, warmup_num_steps)
        self.inverse_log_warm_up = 1.0 / math.log(self.warmup_num_steps)

    def init(self):
        # get_lr() with last_batch_iteration = -1 returns [0.0 for each group].
        return 0.0

    def get_lr_ratio(self, it):
        if it < self.warmup_num_steps:
            if self.warmup_type == "log":
                ratio = self.inverse_log_warm_up * math.log(it + 1)
            else:
                ratio = it / self.warmup_num_steps
            ratio_delta = 1. - self.warmup_min_ratio
            return self.warmup_min_ratio + ratio * ratio_delta
        real_last_step = it - self.warmup_num_steps + 1
        real_total_steps = max(1, self.total_num_steps - self.warmup_num_steps)
        cosine_progress = min(1.0, real_last_step / real_total_steps)
        ratio_delta = 1. - self.cos_min_ratio
        ratio = (1 + math.cos(math.pi * cosine_progress)) / 2
        return max(0.0, self.cos_min_ratio + ratio_delta * ratio)

    def get_lr(self, it):
        return self.org_lr * self.get_lr_ratio(it)


class OneCycle:
    """OneCycle (lr_schedules.py, class OneCycle, commit 22779f2): lr, or betas[0] when momentum=True."""

    def __init__(self, cycle_min_lr, cycle_max_lr, decay_lr_rate=0., cycle_first_step_size=2000,
                 cycle_second_step_size=None, cycle_first_stair_count=0, cycle_second_stair_count=None,
                 decay_step_size=0, cycle_momentum=True, cycle_min_mom=0.8, cycle_max_mom=0.9, decay_mom_rate=0.,
                 momentum=False, base=None):
        # _initialize_cycle
        cycle_first_step_size = float(cycle_first_step_size)
        cycle_second_step_size = float(
            cycle_second_step_size) if cycle_second_step_size is not None else cycle_first_step_size
        self.total_size = cycle_first_step_size + cycle_second_step_size
        self.step_ratio = cycle_first_step_size / self.total_size
        self.first_step_size = cycle_first_step_size
        self.second_step_size = cycle_second_step_size
        self.first_stair_count = cycle_first_stair_count
        self.second_stair_count = (cycle_first_stair_count if cycle_second_stair_count is None
                                   else cycle_second_stair_count)
        self.decay_step_size = decay_step_size
        self.skip_lr_decay = self.skip_mom_decay = math.isclose(decay_step_size, 0)
        # _initialize_lr
        self.min_lr, self.max_lr, self.decay_lr_rate = cycle_min_lr, cycle_max_lr, decay_lr_rate
        if math.isclose(decay_lr_rate, 0):
            self.skip_lr_decay = True
        # _initialize_momentum (an optimizer with betas)
        self.cycle_momentum = cycle_momentum
        self.min_mom, self.max_mom, self.decay_mom_rate = cycle_min_mom, cycle_max_mom, decay_mom_rate
        if math.isclose(decay_mom_rate, 0):
            self.skip_mom_decay = True
        self.momentum = momentum
        self.base = base

    def init(self):
        if self.momentum:
            return self.min_mom if self.cycle_momentum else self.base
        return self.min_lr

    def scale_factor(self, it):
        batch_iteration = it + 1
        cycle = math.floor(1 + batch_iteration / self.total_size)
        x = 1. + batch_iteration / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
            stair_count = self.first_stair_count
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
            stair_count = self.second_stair_count
        if stair_count > 0:
            cycle_iteration = batch_iteration % self.total_size
            if cycle_iteration <= self.first_step_size:
                stair_position = cycle_iteration * stair_count / self.first_step_size
            else:
                stair_position = (self.total_size - cycle_iteration) * stair_count / self.second_step_size
            scale_factor = math.floor(stair_position) / stair_count
        return scale_factor

    def get_lr(self, it):
        if self.momentum:
            return self.get_mom(it)
        if it < self.total_size:
            return self.min_lr + (self.max_lr - self.min_lr) * self.scale_factor(it)  # _get_cycle_lr
        if self.skip_lr_decay:  # _get_decay_lr
            return self.min_lr
        decay_interval = (it - self.total_size + 1) / self.decay_step_size
        return self.min_lr / (1 + self.decay_lr_rate * decay_interval)

    def get_mom(self, it):
        if not self.cycle_momentum:
            return self.base  # betas left alone
        if it < self.total_size:
            return self.max_mom - (self.max_mom - self.min_mom) * self.scale_factor(it)  # _get_cycle_mom
        if self.skip_mom_decay:  # _get_decay_mom
            return self.max_mom
        decay_interval = (it - self.total_size + 1) / self.decay_step_size
        return self.max_mom * (1 + self.decay_mom_rate * decay_interval)


class RangeTest:
    """LRRangeTest (lr_schedules.py, class LRRangeTest, commit 22779f2)."""

    def __init__(self, min_lr, step_size=2000, step_rate=1.0, staircase=False):
        self.min_lr, self.step_size, self.step_rate, self.staircase = min_lr, step_size, step_rate, staircase

    def init(self):
        return self.min_lr

    def get_lr(self, it):
        if self.staircase:
            interval = math.floor(float(it + 1) / self.step_size)
        else:
            interval = float(it + 1) / self.step_size
        return self.min_lr * (1 + self.step_rate * interval)


def at_step(sched, n):
    """The value the N-th optimizer step runs at."""
    return sched.init() if n == 0 else sched.get_lr(n - 1)


def ds_case(name, bases, spec, build, bounds, reference):
    scheds = [build(g) for g in range(len(bases))]
    return case(name, {"deepspeed": spec}, bases, reference, steps_near(bounds), lambda n, g: at_step(scheds[g], n))


def lists(spec):
    """Per-group parameters of the spec as lists (repeated double fields)."""
    return {k: (v if isinstance(v, list) or not k.endswith(("_lr", "_mom")) else [v]) for k, v in spec.items()}


def main():
    cases = []
    # WarmupLR and WarmupDecayLR.
    warmups = [
        ("warmup_lr_default", [0.001], {}),
        ("warmup_lr_log_min1e-5_max3e-4_w100", [3e-4], dict(warmup_min_lr=1e-5, warmup_max_lr=3e-4,
                                                            warmup_num_steps=100)),
        ("warmup_lr_linear_w50_per_group", [0.1, 0.2], dict(warmup_min_lr=[0.0, 0.01], warmup_num_steps=50,
                                                            warmup_type="linear")),
        ("warmup_lr_w1_acts_as_2", [0.5], dict(warmup_num_steps=1, warmup_type="linear")),
    ]
    for name, bases, kw in warmups:
        w = kw.get("warmup_num_steps", 1000)

        def build(g, kw=kw, bases=bases):
            return Warmup(per_group(kw.get("warmup_min_lr", 0.0), g),
                          per_group(kw.get("warmup_max_lr", bases[g]), g), kw.get("warmup_num_steps", 1000),
                          kw.get("warmup_type", "log"))

        cases.append(ds_case(name, bases, lists({"name": "WarmupLR", **kw}), build, [max(2, w), max(2, w) + 1],
                             f"WarmupLR(opt, {kw}); step N = get_lr() at last_batch_iteration N-1"))
    decays = [
        ("warmup_decay_defaults_t5000", [0.01], dict(total_num_steps=5000)),
        ("warmup_decay_log_w100_t1000", [1e-3], dict(warmup_max_lr=1e-3, warmup_num_steps=100,
                                                     total_num_steps=1000)),
        ("warmup_decay_linear_w10_t200_per_group", [0.1, 0.3], dict(warmup_min_lr=0.001, warmup_num_steps=10,
                                                                    total_num_steps=200, warmup_type="linear")),
        ("warmup_decay_total_below_warmup", [0.1], dict(warmup_num_steps=50, total_num_steps=20)),
    ]
    for name, bases, kw in decays:
        w, t = max(2, kw.get("warmup_num_steps", 1000)), kw["total_num_steps"]

        def build(g, kw=kw, bases=bases):
            return Warmup(per_group(kw.get("warmup_min_lr", 0.0), g),
                          per_group(kw.get("warmup_max_lr", bases[g]), g), kw.get("warmup_num_steps", 1000),
                          kw.get("warmup_type", "log"), kw["total_num_steps"])

        cases.append(ds_case(name, bases, lists({"name": "WarmupDecayLR", **kw}), build, [w, w + 1, t, t + 1],
                             f"WarmupDecayLR(opt, {kw}); step N = get_lr() at last_batch_iteration N-1"))
    # WarmupCosineLR.
    cosines = [
        ("warmup_cosine_t1000_default", [2e-4], dict(total_num_steps=1000)),
        ("warmup_cosine_linear_w20_t300_ratios", [0.1, 0.05], dict(total_num_steps=300, warmup_num_steps=20,
                                                                   warmup_type="linear", warmup_min_ratio=0.1,
                                                                   cos_min_ratio=0.01)),
        ("warmup_cosine_log_w8_t8", [1.0], dict(total_num_steps=8, warmup_num_steps=8, cos_min_ratio=0.0)),
    ]
    for name, bases, kw in cosines:
        w, t = max(2, kw.get("warmup_num_steps", 1000)), kw["total_num_steps"]

        def build(g, kw=kw, bases=bases):
            return WarmupCosine(bases[g], **kw)

        cases.append(ds_case(name, bases, {"name": "WarmupCosineLR", **kw}, build, [w, w + 1, t, t + 1],
                             f"WarmupCosineLR(opt, {kw}); step N = get_lr() at last_batch_iteration N-1"))
    # OneCycle, lr and momentum.
    cycles = [
        ("one_cycle_min1e-4_max1e-3_first100", [1e-3], dict(cycle_min_lr=1e-4, cycle_max_lr=1e-3,
                                                            cycle_first_step_size=100)),
        ("one_cycle_asym_decay", [0.1, 0.2], dict(cycle_min_lr=[0.01, 0.02], cycle_first_step_size=30,
                                                  cycle_second_step_size=70, decay_step_size=10,
                                                  decay_lr_rate=0.5)),
        ("one_cycle_stairs", [1.0], dict(cycle_min_lr=0.1, cycle_max_lr=1.0, cycle_first_step_size=40,
                                         cycle_second_step_size=25, cycle_first_stair_count=4,
                                         cycle_second_stair_count=5)),
        ("one_cycle_stairs_first_only_negative_second", [1.0], dict(cycle_min_lr=0.2, cycle_first_step_size=12,
                                                                    cycle_first_stair_count=3,
                                                                    cycle_second_stair_count=-1)),
        ("one_cycle_default_steps", [0.05], dict(cycle_min_lr=0.005)),
    ]
    moms = [
        ("one_cycle_momentum_default", [0.9], dict(cycle_min_lr=0.01, cycle_max_lr=0.1, cycle_first_step_size=50)),
        ("one_cycle_momentum_decay", [0.9, 0.95], dict(cycle_min_lr=0.01, cycle_first_step_size=20,
                                                       cycle_second_step_size=30, decay_step_size=5,
                                                       decay_mom_rate=1e-3, cycle_min_mom=[0.85, 0.8],
                                                       cycle_max_mom=0.95)),
        ("one_cycle_momentum_off", [0.9, 0.99], dict(cycle_min_lr=0.01, cycle_first_step_size=20,
                                                     cycle_momentum=False)),
    ]
    for momentum, group in [(False, cycles), (True, moms)]:
        for name, bases, kw in group:
            first = kw.get("cycle_first_step_size", 2000)
            total = first + kw.get("cycle_second_step_size", first)

            def build(g, kw=kw, bases=bases, momentum=momentum):
                args = {k: per_group(v, g) for k, v in kw.items()}
                args.setdefault("cycle_max_lr", bases[g])
                return OneCycle(momentum=momentum, base=bases[g], **args)

            spec = {"name": "OneCycle", **({"hyperparameter": "momentum"} if momentum else {}), **kw}
            what = ("betas[0]; step N = get_mom() at last_batch_iteration N-1 (step 0: the constructor's "
                    "cycle_min_mom)" if momentum else "step N = get_lr() at last_batch_iteration N-1")
            cases.append(ds_case(name, bases, lists(spec), build, [first, total, total + 1],
                                 f"OneCycle(opt with betas, {kw}): {what}"))
    # LRRangeTest.
    ranges = [
        ("lr_range_test_default", [1e-3], {}),
        ("lr_range_test_rate5_size100", [1e-4, 1e-3], dict(lr_range_test_min_lr=[1e-5, 2e-5],
                                                           lr_range_test_step_size=100, lr_range_test_step_rate=5.0)),
        ("lr_range_test_staircase_size7", [0.01], dict(lr_range_test_step_size=7, lr_range_test_staircase=True,
                                                       lr_range_test_step_rate=0.5)),
    ]
    for name, bases, kw in ranges:
        size = kw.get("lr_range_test_step_size", 2000)

        def build(g, kw=kw, bases=bases):
            return RangeTest(per_group(kw.get("lr_range_test_min_lr", bases[g]), g), size,
                             kw.get("lr_range_test_step_rate", 1.0), kw.get("lr_range_test_staircase", False))

        cases.append(ds_case(name, bases, lists({"name": "LRRangeTest", **kw}), build, [size, 2 * size, 3 * size],
                             f"LRRangeTest(opt, {kw}); step N = get_lr() at last_batch_iteration N-1"))
    write(OUT, "DeepSpeed lr_schedules.py (deepspeedai/DeepSpeed deepspeed/runtime/lr_schedules.py, commit 22779f2) "
          "transcribed in tests/golden/gen_deepspeed_golden.py; step N = the constructor's value for N = 0, else "
          "get_lr() with last_batch_iteration = N - 1", cases)


if __name__ == "__main__":
    main()
