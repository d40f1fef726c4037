"""PyTorch schedulers and optimizers to hpsched job specs (imported by hpsched.torch; it needs torch).

    spec = spec_from_scheduler(L.OneCycleLR(optimizer, max_lr=0.1, total_steps=1000))
    client.create_job("run-1", spec)        # {"lr": {...}, "momentum": {...}}: what OneCycleLR would do
    spec = job_spec(optimizer, {"one_cycle": {"max_lr": 0.1, "total_steps": 1000}})   # the same from a spec

Both give a {hyperparameter: {"base_values", "schedule"}} dict for Client.create_job. A `one_cycle` or `cyclic`
schedule that cycles the momentum (cycle_momentum, PyTorch's default) adds a second hyperparameter with the same
schedule, "momentum" (SGD-style optimizers) or "beta1" (Adam-style, betas[0]), as PyTorch's schedulers set them; a
RemoteScheduler then writes both into the param groups.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from torch.optim import Optimizer
from torch.optim import lr_scheduler as L

from hpsched.spec import SpecError, to_message
from hpsched.v1 import schedule_pb2

__all__ = ["spec_from_scheduler", "job_spec"]

_MOMENTUM_KINDS = ("one_cycle", "cyclic")


def _momentum_name(optimizer: Optimizer, path: str) -> str:
    """"beta1" for optimizers with betas (PyTorch cycles betas[0]), "momentum" for those with momentum."""
    group = optimizer.param_groups[0]
    if "betas" in group:
        return "beta1"
    if "momentum" in group:
        return "momentum"
    raise SpecError(path, f"cycle_momentum (PyTorch's default) needs an optimizer with momentum or betas, and "
                          f"{type(optimizer).__name__} has neither: set cycle_momentum to false")


def _momentum_bases(optimizer: Optimizer, name: str) -> list[float]:
    if name == "beta1":
        return [float(g["betas"][0]) for g in optimizer.param_groups]
    return [float(g["momentum"]) for g in optimizer.param_groups]


def _cycles_momentum(schedule: schedule_pb2.Schedule) -> Optional[str]:
    """The kind, when `schedule` is a one_cycle or cyclic that cycles the momentum (unset means true)."""
    kind = schedule.WhichOneof("kind")
    if kind not in _MOMENTUM_KINDS:
        return None
    spec = getattr(schedule, kind)
    return kind if not spec.HasField("cycle_momentum") or spec.cycle_momentum else None


def job_spec(optimizer: Optimizer, schedule: Any, *, name: str = "lr") -> dict[str, dict[str, Any]]:
    """{name: {"base_values": each group's lr, "schedule": schedule}} for create_job, plus, when `schedule` is a
    one_cycle or cyclic that cycles the momentum (its cycle_momentum unset or true, as in PyTorch), the same schedule
    under "momentum" or "beta1" with the optimizer's momentum / betas[0] as base values, so that a RemoteScheduler
    sets the momentum as OneCycleLR / CyclicLR would.

    schedule: a Schedule message, a dict in its JSON mapping or a JSON string. The base values are each group's
    "initial_lr" (set by any PyTorch scheduler built on the optimizer), else its "lr". SpecError for an invalid
    schedule, or an optimizer without momentum or betas under a schedule that cycles it.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    message = to_message(schedule, schedule_pb2.Schedule, "schedule")
    bases = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
    out = {name: {"base_values": bases, "schedule": schedule}}
    kind = _cycles_momentum(message)
    if name == "lr" and kind is not None:
        momentum = _momentum_name(optimizer, f"schedule.{kind}.cycle_momentum")
        out[momentum] = {"base_values": _momentum_bases(optimizer, momentum), "schedule": schedule}
    return out


def spec_from_scheduler(scheduler: Any, *, metric: Optional[str] = None) -> dict[str, dict[str, Any]]:
    """The job spec of a constructed torch.optim.lr_scheduler object: {"lr": {"base_values", "schedule"}, ...} for
    Client.create_job, with one base value per param group and per-group parameters (max_lr, base_lr, min_lr, the
    momenta) as lists. OneCycleLR and CyclicLR with cycle_momentum (PyTorch's default) add "momentum" or "beta1"
    (see job_spec).

    The spec is the schedule from step 0, read from the constructor's arguments as the scheduler keeps them and the
    groups' "initial_lr": a scheduler that has already stepped gives the same spec as a fresh one (resume with
    RemoteScheduler(..., last_epoch=N - 1) or load_state_dict). ReduceLROnPlateau is the exception: PyTorch keeps
    no initial lr for it, so it must be converted before its first step(metric).

    Kinds: StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, CosineAnnealingLR,
    CosineAnnealingWarmRestarts, CyclicLR (built-in modes), OneCycleLR, SequentialLR and ChainedScheduler of those
    (a ChainedScheduler of multiplicative ones: StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR,
    PolynomialLR, as hpsched's `chained` multiplies), and ReduceLROnPlateau when `metric` names the metric its
    reports will carry (declare it in create_job's metrics=). SpecError, naming the scheduler's place ("scheduler",
    "scheduler._schedulers[1]") and why, for what no spec can express: a LambdaLR or MultiplicativeLR (a Python
    function: write it as {"lambda": {"expression": ...}} or {"multiplicative": {"lr_lambda": ...}}), a CyclicLR with
    a custom scale_fn, ReduceLROnPlateau without `metric`, any other class (subclasses included, whose values may
    differ), and momentum cycling inside a SequentialLR or ChainedScheduler.
    """
    optimizer = getattr(scheduler, "optimizer", None)
    if not isinstance(optimizer, Optimizer):
        raise SpecError("scheduler", f"expected a torch.optim.lr_scheduler object, got {type(scheduler).__name__}")
    groups = optimizer.param_groups
    schedule = _convert(scheduler, "scheduler", top=True, metric=metric)
    bases = [float(g.get("initial_lr", g["lr"])) for g in groups]
    out: dict[str, dict[str, Any]] = {"lr": {"base_values": bases, "schedule": schedule}}
    kind = next(iter(schedule))
    if kind in _MOMENTUM_KINDS and schedule[kind].get("cycle_momentum"):
        name = "beta1" if getattr(scheduler, "use_beta1", False) else "momentum"
        # The momentum at step 0 is max_momentum (PyTorch sets it there), whatever the scheduler did since.
        out[name] = {"base_values": list(schedule[kind]["max_momentum"]), "schedule": schedule}
    return out


def _refuse(path: str, scheduler: Any, why: str) -> SpecError:
    return SpecError(path, f"{type(scheduler).__name__}: {why}")


def _integer(value: Any, path: str, scheduler: Any, what: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise _refuse(path, scheduler, f"{what} must be an integer for hpsched, got {value!r}")
    return int(value)


def _same_for_every_group(values: list[float], path: str, scheduler: Any, what: str) -> float:
    first = values[0]
    for v in values[1:]:
        if not math.isclose(v, first, rel_tol=1e-12, abs_tol=0.0):
            raise _refuse(path, scheduler, f"{what} differs between param groups ({values}); hpsched takes one")
    return first


def _step(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"step": {"step_size": _integer(s.step_size, path, s, "step_size"), "gamma": float(s.gamma)}}


def _multi_step(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"multi_step": {"milestones": sorted(int(m) for m in s.milestones.elements()), "gamma": float(s.gamma)}}


def _constant(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"constant": {"factor": float(s.factor), "total_iters": _integer(s.total_iters, path, s, "total_iters")}}


def _linear(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"linear": {"start_factor": float(s.start_factor), "end_factor": float(s.end_factor),
                       "total_iters": _integer(s.total_iters, path, s, "total_iters")}}


def _exponential(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"exponential": {"gamma": float(s.gamma)}}


def _polynomial(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"polynomial": {"total_iters": _integer(s.total_iters, path, s, "total_iters"), "power": float(s.power)}}


def _cosine_annealing(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"cosine_annealing": {"t_max": _integer(s.T_max, path, s, "T_max"), "eta_min": float(s.eta_min)}}


def _warm_restarts(s: Any, path: str, metric: Optional[str]) -> dict:
    return {"cosine_annealing_warm_restarts": {"t_0": int(s.T_0), "t_mult": int(s.T_mult), "eta_min": float(s.eta_min)}}


def _cyclic(s: Any, path: str, metric: Optional[str]) -> dict:
    if getattr(s, "_scale_fn_custom", None) is not None:
        raise _refuse(path, s, "a custom scale_fn is a Python function; use mode triangular, triangular2 or exp_range")
    # PyTorch keeps total_size = up + down and step_ratio = up / total_size, not the two sizes.
    up = s.total_size * s.step_ratio
    spec = {"base_lr": [float(v) for v in s.base_lrs], "max_lr": [float(v) for v in s.max_lrs],
            "step_size_up": up, "step_size_down": s.total_size - up, "mode": s.mode, "gamma": float(s.gamma),
            "scale_mode": s.scale_mode, "cycle_momentum": bool(s.cycle_momentum)}
    if s.cycle_momentum:
        spec["base_momentum"] = [float(v) for v in s.base_momentums]
        spec["max_momentum"] = [float(v) for v in s.max_momentums]
    return {"cyclic": spec}


def _one_cycle(s: Any, path: str, metric: Optional[str]) -> dict:
    groups = s.optimizer.param_groups
    phases = s._schedule_phases
    # PyTorch keeps each group's max_lr, initial_lr = max_lr / div_factor and min_lr = initial_lr / final_div_factor.
    div = _same_for_every_group([g["max_lr"] / g["initial_lr"] for g in groups], path, s, "div_factor")
    final_div = _same_for_every_group([g["initial_lr"] / g["min_lr"] for g in groups], path, s, "final_div_factor")
    anneal = getattr(s, "_anneal_func_type", None) or getattr(getattr(s, "anneal_func", None), "__name__", "")
    spec = {"max_lr": [float(g["max_lr"]) for g in groups], "total_steps": int(s.total_steps),
            "pct_start": (phases[0]["end_step"] + 1) / s.total_steps,
            "anneal_strategy": "linear" if "linear" in anneal else "cos", "div_factor": div,
            "final_div_factor": final_div, "three_phase": len(phases) == 3,
            "cycle_momentum": bool(s.cycle_momentum)}
    if s.cycle_momentum:
        spec["base_momentum"] = [float(g["base_momentum"]) for g in groups]
        spec["max_momentum"] = [float(g["max_momentum"]) for g in groups]
    return {"one_cycle": spec}


def _function(s: Any, path: str, metric: Optional[str]) -> dict:
    form = ('{"lambda": {"expression": "..."}}' if isinstance(s, L.LambdaLR)
            else '{"multiplicative": {"lr_lambda": "...", "total_iters": N}}')
    raise _refuse(path, s, f"its lr_lambda is a Python function, which hpsched cannot run; write it as an "
                           f"expression over `step`: {form} (see schedule.proto)")


def _sequential(s: Any, path: str, metric: Optional[str]) -> dict:
    schedules = [_convert(child, f"{path}._schedulers[{i}]", top=False, metric=None)
                 for i, child in enumerate(s._schedulers)]
    return {"sequential": {"schedules": schedules, "milestones": [int(m) for m in s._milestones]}}


_CHAINABLE = (L.StepLR, L.MultiStepLR, L.ConstantLR, L.LinearLR, L.ExponentialLR, L.PolynomialLR)


def _chained(s: Any, path: str, metric: Optional[str]) -> dict:
    schedules = []
    for i, child in enumerate(s._schedulers):
        where = f"{path}._schedulers[{i}]"
        if type(child) not in _CHAINABLE:
            raise _refuse(where, child, "in a ChainedScheduler PyTorch applies its recursive form to the product so "
                                        "far, which is not a factor; hpsched chains "
                                        f"{', '.join(c.__name__ for c in _CHAINABLE)}")
        schedules.append(_convert(child, where, top=False, metric=None))
    return {"chained": {"schedules": schedules}}


def _plateau(s: Any, path: str, metric: Optional[str]) -> dict:
    if not metric:
        raise _refuse(path, s, "its decisions follow metric reports: pass metric=\"val_loss\" (the name your "
                               "reports will use) and declare it in create_job(metrics=...)")
    if s.last_epoch > 0 and any("initial_lr" not in g for g in s.optimizer.param_groups):
        # PyTorch keeps no initial lr for it: after a reduction the groups' lr is no longer the base value.
        raise _refuse(path, s, "it has already stepped, and PyTorch keeps no initial lr for it; convert it before "
                               "its first step(metric)")
    return {"reduce_on_plateau": {"metric": metric, "mode": s.mode, "factor": float(s.factor),
                                  "patience": int(s.patience), "threshold": float(s.threshold),
                                  "threshold_mode": s.threshold_mode, "cooldown": int(s.cooldown),
                                  "min_lr": [float(v) for v in s.min_lrs], "eps": float(s.eps)}}


_CONVERTERS: dict[type, Callable[[Any, str, Optional[str]], dict]] = {
    L.StepLR: _step, L.MultiStepLR: _multi_step, L.ConstantLR: _constant, L.LinearLR: _linear,
    L.ExponentialLR: _exponential, L.PolynomialLR: _polynomial, L.CosineAnnealingLR: _cosine_annealing,
    L.CosineAnnealingWarmRestarts: _warm_restarts, L.CyclicLR: _cyclic, L.OneCycleLR: _one_cycle,
    L.LambdaLR: _function, L.MultiplicativeLR: _function, L.SequentialLR: _sequential,
    L.ChainedScheduler: _chained, L.ReduceLROnPlateau: _plateau,
}


def _convert(scheduler: Any, path: str, *, top: bool, metric: Optional[str]) -> dict:
    convert = _CONVERTERS.get(type(scheduler))
    if convert is None:
        known = ", ".join(sorted(c.__name__ for c, f in _CONVERTERS.items() if f is not _function))
        raise _refuse(path, scheduler, f"not a scheduler hpsched knows (it converts {known}; a subclass may "
                                       "compute other values)")
    if not top and convert is _plateau:
        raise _refuse(path, scheduler, "only at the top level")
    schedule = convert(scheduler, path, metric)
    kind = next(iter(schedule))
    if not top and kind in _MOMENTUM_KINDS and schedule[kind].get("cycle_momentum"):
        raise _refuse(path, scheduler, "cycles the momentum inside a SequentialLR or ChainedScheduler, which one "
                                       "momentum hyperparameter cannot follow; build it with cycle_momentum=False")
    return schedule
