#!/usr/bin/python3
"""Generate tests/golden/megatron_golden.json from Megatron-LM's OptimizerParamScheduler, transcribed.

    /usr/bin/python3 tests/golden/gen_megatron_golden.py

Megatron-LM is not installed (it needs CUDA builds), so get_lr and get_wd are transcribed below from
NVIDIA/Megatron-LM megatron/core/optimizer_param_scheduler.py (commit 00caa53), in float64 and in Megatron's order of
operations. Step N is Megatron's num_steps = N (the constructor calls step(0); every iteration calls step(1)).
Per-group values stand for Megatron's per-group overrides param_group['max_lr'], ['min_lr'], ['start_wd'], ['end_wd']
and ['wd_mult'].
"""

import math
import os

from golden_common import case, per_group, steps_near, write

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "megatron_golden.json")


def get_lr(n, style, max_lr, min_lr, init_lr, warmup, decay, wsd_decay=None, wsd_style=None):
    """OptimizerParamScheduler.get_lr (optimizer_param_scheduler.py, commit 00caa53)."""
    # "Use linear warmup for the initial part."
    if warmup > 0 and n <= warmup:
        return init_lr + ((max_lr - init_lr) * float(n) / float(warmup))
    if style == "constant":
        return max_lr
    if n > decay:
        return min_lr
    if style == "inverse-square-root":
        warmup_steps = max(warmup, 1)
        num_steps = max(n, 1)
        lr = max_lr * warmup_steps**0.5 / (num_steps**0.5)
        return max(min_lr, lr)
    decay_ratio = float(n - warmup) / float(decay - warmup)
    delta_lr = max_lr - min_lr
    if style == "linear":
        coeff = 1.0 - decay_ratio
    elif style == "cosine":
        coeff = 0.5 * (math.cos(math.pi * decay_ratio) + 1.0)
    elif style == "WSD":
        anneal_start = decay - wsd_decay
        if n <= anneal_start:
            coeff = 1.0
        else:
            r = float(n - anneal_start) / float(wsd_decay)
            if wsd_style == "linear":
                coeff = 1.0 - r
            elif wsd_style == "cosine":
                coeff = 0.5 * (math.cos(math.pi * r) + 1.0)
            elif wsd_style == "exponential":
                coeff = (2.0 * math.pow(0.5, r)) - 1.0
            elif wsd_style == "minus_sqrt":
                coeff = 1.0 - math.sqrt(r)
    return min_lr + coeff * delta_lr


def get_wd(n, style, start_wd, end_wd, incr_steps):
    """OptimizerParamScheduler.get_wd (optimizer_param_scheduler.py, commit 00caa53)."""
    if n > incr_steps:
        return end_wd
    if style == "constant":
        assert start_wd == end_wd
        return end_wd
    incr_ratio = float(n) / float(incr_steps)
    delta_wd = end_wd - start_wd
    if style == "linear":
        coeff = incr_ratio
    elif style == "cosine":
        coeff = 0.5 * (math.cos(math.pi * (1 - incr_ratio)) + 1.0)
    return start_wd + coeff * delta_wd


def lr_case(name, bases, style, reference=None, **kw):
    spec = {"name": style}
    for key, value in kw.items():
        spec[key] = value if not key.endswith("_lr") else (value if isinstance(value, list) else [value])
    max_lr = kw.get("max_lr")
    min_lr = kw.get("min_lr", 0.0)
    init_lr = kw.get("init_lr", 0.0)
    warmup = kw.get("lr_warmup_steps", 0)
    decay = kw.get("lr_decay_steps", 2**53)
    wsd = kw.get("wsd_decay_steps")
    wsd_style = kw.get("lr_wsd_decay_style", "exponential")

    def value(n, g):
        mx = bases[g] if max_lr is None else per_group(max_lr, g)
        return get_lr(n, style, mx, per_group(min_lr, g), per_group(init_lr, g), warmup, decay, wsd, wsd_style)

    bounds = [warmup, decay]
    if wsd is not None:
        bounds.append(decay - wsd)
    ref = reference or f"OptimizerParamScheduler(lr_decay_style={style!r}, {kw})"
    return case(name, {"megatron": spec}, bases, ref, steps_near(bounds), value)


def wd_case(name, bases, **kw):
    spec = {"name": "weight_decay"}
    for key, value in kw.items():
        spec[key] = [value] if key in ("start_wd", "end_wd", "wd_mult") and not isinstance(value, list) else value
    style = kw.get("wd_incr_style", "constant")
    incr = kw.get("wd_incr_steps", 0)

    def value(n, g):
        start = per_group(kw["start_wd"], g) if "start_wd" in kw else bases[g]
        end = per_group(kw["end_wd"], g) if "end_wd" in kw else bases[g]
        mult = per_group(kw.get("wd_mult", 1.0), g)
        # OptimizerParamScheduler.step: param_group['weight_decay'] = get_wd(group) * group.get('wd_mult', 1.0)
        return get_wd(n, style, start, end, incr) * mult

    return case(name, {"megatron": spec}, bases, f"OptimizerParamScheduler get_wd * wd_mult, {kw}",
                steps_near([incr]), value)


def main():
    cases = [
        lr_case("linear_warmup100_decay1000", [3e-4], "linear", max_lr=3e-4, min_lr=3e-5, lr_warmup_steps=100,
                lr_decay_steps=1000),
        lr_case("linear_default_max_b_no_warmup", [0.1, 0.02], "linear", lr_decay_steps=500),
        lr_case("cosine_warmup10_decay200_init1e-6", [1e-3], "cosine", max_lr=1e-3, min_lr=1e-5, init_lr=1e-6,
                lr_warmup_steps=10, lr_decay_steps=200),
        lr_case("cosine_per_group_max_min", [1.0, 2.0, 3.0], "cosine", max_lr=[0.5, 0.25, 0.125],
                min_lr=[0.05, 0.0, 0.01], lr_warmup_steps=7, lr_decay_steps=97),
        lr_case("isr_warmup100_decay10000", [6e-4], "inverse-square-root", max_lr=6e-4, min_lr=6e-6,
                lr_warmup_steps=100, lr_decay_steps=10000),
        lr_case("isr_no_warmup", [1.0, 0.5], "inverse-square-root", lr_decay_steps=2000000, min_lr=1e-4),
        lr_case("cosine_decay_only_defaults", [0.1, 0.2], "cosine", lr_decay_steps=300),
        lr_case("isr_decay_only_defaults", [0.1], "inverse-square-root", lr_decay_steps=10**6),
        lr_case("constant_defaults", [0.1, 0.01], "constant"),
        lr_case("constant_warmup50", [0.01], "constant", lr_warmup_steps=50, init_lr=0.001),
        lr_case("constant_no_warmup_decay_checked", [0.01, 0.3], "constant", lr_decay_steps=10),
    ]
    for wsd_style in ["exponential", "linear", "cosine", "minus_sqrt"]:
        cases.append(lr_case(f"wsd_{wsd_style}_warmup20_decay300_wsd60", [2e-3, 1e-3], "WSD", min_lr=1e-5,
                             lr_warmup_steps=20, lr_decay_steps=300, wsd_decay_steps=60,
                             lr_wsd_decay_style=wsd_style))
    cases.append(lr_case("wsd_default_style_no_warmup", [1.0], "WSD", lr_decay_steps=1000, wsd_decay_steps=100))
    cases.append(lr_case("wsd_decay_longer_than_schedule", [1.0], "WSD", lr_warmup_steps=10, lr_decay_steps=50,
                         wsd_decay_steps=80, lr_wsd_decay_style="linear", min_lr=0.1))
    cases += [
        wd_case("wd_constant_default", [0.1]),
        wd_case("wd_linear_0.01_to_0.1", [0.05], start_wd=0.01, end_wd=0.1, wd_incr_steps=1000,
                wd_incr_style="linear"),
        wd_case("wd_cosine_per_group_mult", [0.1, 0.1], start_wd=0.0, end_wd=[0.1, 0.2], wd_incr_steps=77,
                wd_incr_style="cosine", wd_mult=[1.0, 0.0]),
        wd_case("wd_constant_steps_mult", [0.04, 0.02], wd_incr_steps=10, wd_mult=0.5),
    ]
    write(OUT, "Megatron-LM OptimizerParamScheduler (NVIDIA/Megatron-LM megatron/core/optimizer_param_scheduler.py, "
          "commit 00caa53) get_lr / get_wd transcribed in tests/golden/gen_megatron_golden.py; step N = num_steps N",
          cases)


if __name__ == "__main__":
    main()
