#!/usr/bin/python3
"""Generate tests/golden/timm_golden.json from timm's schedulers, transcribed, with torch's own noise.

    /usr/bin/python3 tests/golden/gen_timm_golden.py

timm is not installed, so each scheduler's _get_lr is transcribed below from huggingface/pytorch-image-models
timm/scheduler/cosine_lr.py (7479d45), tanh_lr.py, poly_lr.py, step_lr.py and multistep_lr.py (b1b024d), in float64 and
in timm's order of operations. The noise is timm's Scheduler._calculate_noise run on Debian's real torch (1.13):
torch.Generator seeded with noise_seed + t, torch.randn(1) redrawn until |n| < noise_pct, value + value * n.

Step N is timm's t = N: the value step_update(N) writes (_get_lr(N), then the noise).

timm's cycle_mul defect: timm finds the cycle with floor(math.log(1 - t / t_initial * (1 - cycle_mul), cycle_mul)),
which misplaces some restarts by one cycle. hpsched gives the mathematically right cycle; so does this file: where the
exact cycle (from the boundaries t_initial * (m^i - 1) / (m - 1) in exact rational arithmetic) differs from timm's, the
value uses the exact cycle in timm's formulas and the case's reference lists those steps. Likewise where timm raises
OverflowError (cycle_decay ** i far past cycle_limit) the value is the one timm's own check gives (lr_min).
"""

import bisect
import math
import os
import sys
from fractions import Fraction

import torch

from golden_common import case, per_group, steps_near, write

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timm_golden.json")


def timm_noise(seed, t, pct):
    """Scheduler._calculate_noise (timm/scheduler/scheduler.py), noise_type 'normal', with real torch."""
    g = torch.Generator()
    g.manual_seed(seed + t)
    while True:
        noise = torch.randn(1, generator=g).item()
        if abs(noise) < pct:
            return noise


def exact_cycle(t, t_initial, m):
    """The largest i with t_initial * (m^i - 1) / (m - 1) <= t, in exact rational arithmetic (m > 1)."""
    mf = Fraction(m)
    i = max(0, math.floor(math.log(1 + t / t_initial * (m - 1)) / math.log(m)) - 2)

    def start(k):
        return t_initial * (mf**k - 1) / (mf - 1)

    while start(i + 1) <= t:
        i += 1
    while i > 0 and start(i) > t:
        i -= 1
    return i


class Timm:
    def __init__(self, kind, base, t_initial=None, lr_min=0., cycle_mul=1., cycle_decay=1., cycle_limit=1, warmup_t=0,
                 warmup_lr_init=0., warmup_prefix=None, k_decay=1.0, power=0.5, lb=-7., ub=3., decay_t=None,
                 decay_rate=1., noise_range_t=None, noise_pct=0.67, noise_std=1.0, noise_seed=42):
        self.kind, self.base = kind, base
        self.t_initial, self.lr_min, self.cycle_mul, self.cycle_decay = t_initial, lr_min, cycle_mul, cycle_decay
        self.cycle_limit, self.k_decay, self.power, self.lb, self.ub = cycle_limit, k_decay, power, lb, ub
        self.decay_t, self.decay_rate = decay_t, decay_rate
        if warmup_prefix is None:  # timm's defaults: False for cosine/tanh/poly, True for step/multistep
            warmup_prefix = kind in ("step", "multistep")
        self.warmup_t, self.warmup_lr_init, self.warmup_prefix = warmup_t, warmup_lr_init, warmup_prefix
        self.noise_range_t, self.noise_pct, self.noise_seed = noise_range_t, noise_pct, noise_seed
        self.fixed = []
        if self.warmup_t:
            # TanhLRScheduler.__init__: t_v = base_values if warmup_prefix else self._get_lr(warmup_t)
            target = self.base if (kind != "tanh" or warmup_prefix) else self._get_lr(self.warmup_t)
            self.warmup_step = (target - warmup_lr_init) / self.warmup_t
        else:
            self.warmup_step = 1

    def _cycle(self, t):
        """The (i, t_i, t_curr) block of CosineLRScheduler/TanhLRScheduler/PolyLRScheduler._get_lr."""
        if self.cycle_mul != 1:
            i = math.floor(math.log(1 - t / self.t_initial * (1 - self.cycle_mul), self.cycle_mul))
            exact = exact_cycle(t, self.t_initial, self.cycle_mul)
            if exact != i:
                self.fixed.append(t)
                i = exact
            t_i = self.cycle_mul**i * self.t_initial
            t_curr = t - (1 - self.cycle_mul**i) / (1 - self.cycle_mul) * self.t_initial
        else:
            i = t // self.t_initial
            t_i = self.t_initial
            t_curr = t - (self.t_initial * i)
        return i, t_i, t_curr

    def _get_lr(self, t):
        if t < self.warmup_t:
            return self.warmup_lr_init + t * self.warmup_step
        if self.warmup_prefix:
            t = t - self.warmup_t
        if self.kind == "step":  # StepLRScheduler._get_lr
            return self.base * (self.decay_rate**(t // self.decay_t))
        if self.kind == "multistep":  # MultiStepLRScheduler._get_lr, get_curr_decay_steps
            return self.base * (self.decay_rate**bisect.bisect_right(self.decay_t, t + 1))
        i, t_i, t_curr = self._cycle(t)
        if not i < self.cycle_limit:
            return self.lr_min
        lr_max = self.base * self.cycle_decay**i
        k = self.k_decay
        if self.kind == "cosine":  # CosineLRScheduler._get_lr
            return self.lr_min + 0.5 * (lr_max - self.lr_min) * (1 + math.cos(math.pi * t_curr**k / t_i**k))
        if self.kind == "poly":  # PolyLRScheduler._get_lr
            return self.lr_min + (lr_max - self.lr_min) * (1 - t_curr**k / t_i**k)**self.power
        tr = t_curr / t_i  # TanhLRScheduler._get_lr
        return self.lr_min + 0.5 * (lr_max - self.lr_min) * (1 - math.tanh(self.lb * (1. - tr) + self.ub * tr))

    def value(self, t):
        """Scheduler.step_update(t): _get_lr(t), then _add_noise(values, t)."""
        v = self._get_lr(t)
        r = self.noise_range_t
        if r is not None:
            apply = r[0] <= t < r[1] if isinstance(r, (list, tuple)) else t >= r
            if apply:
                v = v + v * timm_noise(self.noise_seed, t, self.noise_pct)
        return v


GROUP_KEYS = ("lr_min", "warmup_lr_init")


def timm_case(name, kind, bases, bounds, far=None, **kw):
    spec = {"name": kind}
    for key, value in kw.items():
        if key in GROUP_KEYS and not isinstance(value, list):
            value = [value]
        if key == "decay_t" and not isinstance(value, list):
            value = [value]
        if key == "noise_range_t" and not isinstance(value, list):
            value = [value]
        spec[key] = value
    scheds = []
    for g, b in enumerate(bases):
        args = {k: (per_group(v, g) if k in GROUP_KEYS else v) for k, v in kw.items()}
        scheds.append(Timm(kind, b, **args))
    steps = steps_near(bounds) if far is None else steps_near(bounds, far=far)
    c = case(name, {"timm": spec}, bases, "", steps, lambda n, g: scheds[g].value(n))
    fixed = sorted(set(scheds[0].fixed) & set(steps))
    ref = f"timm {kind}: {kw}; step N = step_update(N)"
    if fixed:
        ref += f"; timm's log-based cycle index misplaces steps {fixed[:8]}: exact cycle used there"
        print(f"{name}: cycle_mul defect fixed at {fixed}", file=sys.stderr)
    c["reference"] = ref
    return c


def cycle_starts(t_initial, m, count, offset=0):
    return [offset + round(t_initial * (m**i - 1) / (m - 1)) if m != 1 else offset + t_initial * i
            for i in range(count + 1)]


def main():
    cases = [
        timm_case("cosine_t100_default", "cosine", [0.1], [100, 200], t_initial=100),
        timm_case("cosine_warmup5_overlay_lr_min", "cosine", [0.1, 0.05], [5, 50, 100], t_initial=50,
                  lr_min=[1e-4, 1e-5], warmup_t=5, warmup_lr_init=1e-6),
        timm_case("cosine_warmup_prefix_restarts_decay", "cosine", [1.0], cycle_starts(20, 1, 4, 10) + [10],
                  t_initial=20, warmup_t=10, warmup_prefix=True, warmup_lr_init=0.01, cycle_limit=3,
                  cycle_decay=0.5, lr_min=0.01),
        timm_case("cosine_k_decay2_cycles", "cosine", [0.2], cycle_starts(30, 1, 3), t_initial=30, k_decay=2.0,
                  cycle_limit=3),
        timm_case("cosine_cycle_mul2_decay", "cosine", [0.5, 1.0], cycle_starts(10, 2, 8), t_initial=10,
                  cycle_mul=2.0, cycle_limit=6, cycle_decay=0.8, lr_min=0.001),
        timm_case("cosine_cycle_mul3_boundary_defect", "cosine", [1.0], cycle_starts(10, 3, 12), t_initial=10,
                  cycle_mul=3.0, cycle_limit=100),
        timm_case("cosine_cycle_mul1.5", "cosine", [1.0], cycle_starts(8, 1.5, 12), t_initial=8, cycle_mul=1.5,
                  cycle_limit=20, k_decay=0.5),
        timm_case("tanh_t100_default", "tanh", [0.1], [100], t_initial=100),
        timm_case("tanh_warmup10_overlay_target_is_curve", "tanh", [0.1, 0.3], [10, 60], t_initial=60, warmup_t=10,
                  warmup_lr_init=[0.001, 0.002], lr_min=1e-4),
        timm_case("tanh_warmup_prefix_cycles", "tanh", [1.0], cycle_starts(25, 1, 3, 5), t_initial=25, warmup_t=5,
                  warmup_prefix=True, cycle_limit=3, cycle_decay=0.7, lb=-5.0, ub=5.0),
        timm_case("tanh_cycle_mul3", "tanh", [1.0], cycle_starts(10, 3, 11), t_initial=10, cycle_mul=3.0,
                  cycle_limit=50),
        timm_case("poly_t100_default", "poly", [0.1], [100], t_initial=100),
        timm_case("poly_power2_k0.7_warmup", "poly", [0.1, 0.2], [7, 80], t_initial=80, power=2.0, k_decay=0.7,
                  warmup_t=7, lr_min=[0.0, 0.01]),
        timm_case("poly_cycle_mul2_limit4", "poly", [1.0], cycle_starts(16, 2, 6), t_initial=16, cycle_mul=2.0,
                  cycle_limit=4, power=1.0, cycle_decay=0.9),
        timm_case("step_decay_t_only_default_rate", "step", [0.1], [10, 20], decay_t=10),
        timm_case("multistep_decay_t_only_default_rate", "multistep", [0.1], [10, 20], decay_t=[10, 20]),
        timm_case("step_decay30_rate0.1", "step", [0.1], [30, 60, 90], decay_t=30, decay_rate=0.1),
        timm_case("step_warmup_prefix_default", "step", [0.4, 0.2], [5, 15, 25, 35], decay_t=10, decay_rate=0.5,
                  warmup_t=5, warmup_lr_init=0.001),
        timm_case("step_fractional_decay_t", "step", [1.0], [7, 8, 15, 23], decay_t=7.5, decay_rate=0.9,
                  warmup_t=3, warmup_prefix=False),
        timm_case("step_rate_above_one_long_period", "step", [1e-3], [2 * 10**12, 4 * 10**12], decay_t=2 * 10**12,
                  decay_rate=1.1),
        timm_case("multistep_30_60_90", "multistep", [0.1], [30, 60, 90], decay_t=[30, 60, 90], decay_rate=0.1),
        timm_case("multistep_warmup_overlay_duplicates", "multistep", [0.3, 0.6], [4, 10, 20],
                  decay_t=[10, 20, 20], decay_rate=0.5, warmup_t=4, warmup_prefix=False, warmup_lr_init=0.01),
        # Noise: real torch random numbers.
        timm_case("cosine_noise_from_10", "cosine", [0.1, 0.2], [10, 100], t_initial=100, noise_range_t=10),
        timm_case("cosine_noise_range_pct_seed", "cosine", [1.0], [20, 50, 80], t_initial=100, warmup_t=5,
                  noise_range_t=[20, 80], noise_pct=0.1, noise_seed=7),
        timm_case("step_noise_whole_run_pct0.01", "step", [0.5], [50], decay_t=50, decay_rate=0.5, noise_range_t=0,
                  noise_pct=0.01, noise_std=2.0, noise_seed=123456789),
        timm_case("poly_noise_negative_seed_wide_pct", "poly", [0.1], [30], t_initial=60, noise_range_t=[0, 2**53],
                  noise_pct=5.0, noise_seed=-5),
        timm_case("tanh_noise_large_seed", "tanh", [0.3], [40], t_initial=40, noise_range_t=[0.5, 1e7],
                  noise_seed=2**40 + 3),
    ]
    write(OUT, "timm schedulers (huggingface/pytorch-image-models timm/scheduler/*_lr.py) transcribed in "
          "tests/golden/gen_timm_golden.py, noise from torch " + torch.__version__ + " (Debian python3-torch) as "
          "timm's Scheduler._calculate_noise; step N = step_update(N); cycle_mul restarts at the exact boundary",
          cases)


if __name__ == "__main__":
    main()
