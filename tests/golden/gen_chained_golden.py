#!/usr/bin/env python3
"""Generates chained_golden.json: `chained` over a kind of each library (transformers, keras, optax, timm, deepspeed,
megatron), each chained with a PyTorch kind, as PyTorch's ChainedScheduler composes chainable schedulers:

    value(N) = b * child_0(N) * child_1(N)     (each child with base value 1, multiplied in this order)

No number here comes from hpsched:
  * child_0, the library kind, is read from that library's golden file (tests/golden/<library>_golden.json, made by
    gen_<library>_golden.py from the library itself): group 0 of a case whose base value for group 0 is 1.0 and whose
    spec sets no per-group list of more than one value, so the library's value there is child_0 with base value 1 for
    every group;
  * child_1, the PyTorch kind, is computed here with real torch (SGD with lr = 1, get_last_lr() after N step() calls);
  * the product follows torch.optim.lr_scheduler.ChainedScheduler, which steps each chainable scheduler in turn on the
    same lr, so that the lr is b times the product of the schedulers' factors; the script checks that semantics on
    torch itself (ChainedScheduler([ExponentialLR, StepLR]) against the product of the two run alone).

Run with /usr/bin/python3 (torch) from the repository root: python3 tests/golden/gen_chained_golden.py
"""

import json
import os

import torch

import golden_common

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_STEP = 2000  # torch's step() loop runs to the largest sampled step
BASES = [0.5, 0.02]

# (library, source case, PyTorch kind spec, torch scheduler factory, its reference text)
CASES = [
    ("transformers", "cosine_w0_t1000_cycles2", {"exponential": {"gamma": 0.99}},
     lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99), "ExponentialLR(opt, gamma=0.99)"),
    ("keras", "cosine_decay_restarts_tmul3_fds10", {"exponential": {"gamma": 0.99}},
     lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99), "ExponentialLR(opt, gamma=0.99)"),
    ("optax", "warmup_cosine_basic", {"exponential": {"gamma": 0.99}},
     lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99), "ExponentialLR(opt, gamma=0.99)"),
    ("timm", "cosine_cycle_mul1.5", {"step": {"step_size": 10, "gamma": 0.5}},
     lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5), "StepLR(opt, step_size=10, gamma=0.5)"),
    ("deepspeed", "one_cycle_stairs", {"exponential": {"gamma": 0.99}},
     lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99), "ExponentialLR(opt, gamma=0.99)"),
    ("megatron", "wsd_default_style_no_warmup", {"exponential": {"gamma": 0.995}},
     lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.995), "ExponentialLR(opt, gamma=0.995)"),
]


def optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def torch_values(make, last):
    """get_last_lr()[0] after N step() calls, N = 0..last, lr = 1."""
    opt = optimizer()
    sched = make(opt)
    values = [sched.get_last_lr()[0]]
    for _ in range(last):
        opt.step()
        sched.step()
        values.append(sched.get_last_lr()[0])
    return values


def check_chained_scheduler_multiplies():
    """ChainedScheduler over chainable schedulers is the product of their factors."""
    exponential = torch_values(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.99), 100)
    step = torch_values(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5), 100)
    opt = optimizer()
    chained = torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99),
        torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)])
    for n in range(101):
        actual = opt.param_groups[0]["lr"]
        expected = exponential[n] * step[n]
        assert abs(actual - expected) <= 1e-12 * abs(expected), (n, actual, expected)
        opt.step()
        chained.step()


def has_multi_value_list(spec):
    if isinstance(spec, dict):
        return any(has_multi_value_list(v) for v in spec.values())
    if isinstance(spec, list):
        return (len(spec) > 1 and not isinstance(spec[0], dict)) or any(has_multi_value_list(v) for v in spec)
    return False


def main():
    check_chained_scheduler_multiplies()
    cases = []
    for library, source_name, torch_spec, make, torch_reference in CASES:
        with open(os.path.join(HERE, f"{library}_golden.json")) as f:
            source = next(c for c in json.load(f)["cases"] if c["name"] == source_name)
        assert source["base_values"][0] == 1.0 and not has_multi_value_list(source["schedule"]), source_name
        library_values = {int(p["step"]): p["values"][0] for p in source["points"] if int(p["step"]) <= MAX_STEP}
        steps = sorted(library_values)
        torch_child = torch_values(make, steps[-1])
        spec = {"chained": {"schedules": [source["schedule"], torch_spec]}}
        reference = (f"ChainedScheduler([<{library} {source_name}: {source['reference']}>, {torch_reference}]); "
                     f"{library} values from {library}_golden.json, torch {torch.__version__}")
        cases.append(golden_common.case(
            f"{library}_{source_name}_x_{next(iter(torch_spec))}", spec, BASES, reference, steps,
            lambda s, g: BASES[g] * library_values[s] * torch_child[s]))
    golden_common.write(
        os.path.join(HERE, "chained_golden.json"),
        f"tests/golden/gen_chained_golden.py: chained over each library's kind (values from <library>_golden.json) and "
        f"a PyTorch kind (torch {torch.__version__}, SGD with lr = 1, get_last_lr() after N step() calls), multiplied "
        f"as ChainedScheduler multiplies chainable schedulers: b * library(N) * torch(N)", cases)


if __name__ == "__main__":
    main()
