"""hpsched.torch.RemoteScheduler: a PyTorch learning-rate scheduler whose values come from an hpsched job.

    from hpsched.torch import RemoteScheduler
    scheduler = RemoteScheduler(optimizer, "my-job", target="localhost:50051")
    for batch in data:
        loss(model(batch)).backward()
        optimizer.step()
        scheduler.step()

Step convention: the job's value for step N is what a local PyTorch scheduler gives after N calls of
`scheduler.step()`. As every PyTorch scheduler, construction performs the initial step, so the optimizer's first
`step()` uses the value for step 0, and after N calls of `scheduler.step()` the groups hold the values for step N.
"""
# This module is hpsched.torch; `import torch` below is the real PyTorch because imports are absolute (Python 3).
from __future__ import annotations

from typing import Any, Optional

import torch

if not hasattr(torch, "optim"):  # Only if this file was run as a script from inside the package directory.
    raise ImportError(f"`import torch` found {getattr(torch, '__file__', torch)!r}, not PyTorch: do not put the "
                      "hpsched package directory itself on sys.path; put its parent there")

from torch.optim import Optimizer
from torch.optim.lr_scheduler import _LRScheduler

from hpsched.client import DEFAULT_TARGET, Client, Values, job_name

__all__ = ["RemoteScheduler", "SCHEDULED_HYPERPARAMETERS"]

# The hyperparameters a RemoteScheduler applies when the job schedules them; others in the job are left alone.
#   lr            param_group["lr"] (required)
#   momentum      param_group["momentum"], or betas[0] for optimizers with betas (Adam, AdamW, ...), like OneCycleLR
#   beta1, beta2  param_group["betas"][0], [1]
#   weight_decay  param_group["weight_decay"]
SCHEDULED_HYPERPARAMETERS = ("lr", "momentum", "beta1", "beta2", "weight_decay")

_MAX_COUNT = 100_000  # GetValuesRequest.count
_MAX_VALUES = 400_000  # values per GetValues response
_MAX_STEP = 2 ** 53  # step + count must not exceed it


class RemoteScheduler(_LRScheduler):
    """Sets every param group's lr (and momentum / betas / weight_decay when the job schedules them) from an hpsched
    job at each `step()`.

    optimizer: the wrapped optimizer; it must have as many param groups as the job's hyperparameters have base
    values. job: the job's id or name ("jobs/{id}"); it must exist and schedule "lr". client: an hpsched.Client
    (one is opened on `target` when None, and closed by `close()`). window: steps fetched per GetValues; one call
    serves `window` consecutive steps, so a loop that steps forward makes one call every `window` steps.
    last_epoch: as in PyTorch, the index of the last step done; -1 starts from step 0.

    `state_dict()` is the job and the step; `load_state_dict()` moves to that step and applies its values to the
    optimizer at once, so a resumed run continues exactly like an uninterrupted one.
    """

    def __init__(self, optimizer: Optimizer, job: str, client: Optional[Client] = None, target: str = DEFAULT_TARGET,
                 window: int = 64, last_epoch: int = -1, verbose: bool = False):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if int(window) < 1:
            raise ValueError(f"window: must be >= 1, got {window}")
        self.job = job_name(job)
        self.window = int(window)
        self._owns_client = client is None
        self.client = client if client is not None else Client(target)
        self.rpc_count = 0  # GetValues calls made
        self._cache: Optional[Values] = None
        self._last_values: dict[str, list[float]] = {}

        spec = self.client.get_job(self.job)
        self.job_version = spec.version
        groups = len(optimizer.param_groups)
        counts = {hp.name: len(hp.base_values) for hp in spec.hyperparameters}
        if "lr" not in counts:
            raise ValueError(f"{self.job} has no 'lr' hyperparameter (it schedules {sorted(counts)})")
        self.hyperparameters = [name for name in SCHEDULED_HYPERPARAMETERS if name in counts]
        for name in self.hyperparameters:
            if counts[name] != groups:
                raise ValueError(f"{self.job}: hyperparameter {name!r} has {counts[name]} base values (one per "
                                 f"parameter group) but the optimizer has {groups} param groups")
        self._check_optimizer(optimizer)

        # PyTorch's base class wants 'initial_lr' in every group when resuming (last_epoch != -1). The job holds the
        # base values, so the optimizer's own lr does not matter.
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        if verbose:
            super().__init__(optimizer, last_epoch, verbose)
        else:
            super().__init__(optimizer, last_epoch)

    def _check_optimizer(self, optimizer: Optimizer) -> None:
        names = set(self.hyperparameters)
        for i, group in enumerate(optimizer.param_groups):
            has_betas = "betas" in group
            if "momentum" in names and "momentum" not in group and not has_betas:
                raise ValueError(f"{self.job} schedules 'momentum' but param group {i} of {type(optimizer).__name__} "
                                 "has neither 'momentum' nor 'betas'")
            if "momentum" in names and "momentum" not in group and "beta1" in names:
                raise ValueError(f"{self.job} schedules both 'momentum' and 'beta1', which are the same betas[0] of "
                                 f"{type(optimizer).__name__}")
            for name in ("beta1", "beta2"):
                if name in names and not has_betas:
                    raise ValueError(f"{self.job} schedules {name!r} but param group {i} of "
                                     f"{type(optimizer).__name__} has no 'betas'")
            if "weight_decay" in names and "weight_decay" not in group:
                raise ValueError(f"{self.job} schedules 'weight_decay' but param group {i} of "
                                 f"{type(optimizer).__name__} has no 'weight_decay'")

    # --- values ------------------------------------------------------------------------------------------------------

    def _values_at(self, step: int) -> dict[str, list[float]]:
        """{hyperparameter: [value per group]} at `step`, from the prefetched window (fetching a new one if needed)."""
        groups = len(self.optimizer.param_groups)
        cache = self._cache
        if cache is None or not cache.start_step <= step < cache.start_step + cache.count:
            if not 0 <= step < _MAX_STEP:
                raise ValueError(f"step {step} is outside [0, 2^53)")
            count = min(self.window, _MAX_COUNT, max(1, _MAX_VALUES // (len(self.hyperparameters) * groups)),
                        _MAX_STEP - step)
            cache = self.client.get_values(self.job, step, count, self.hyperparameters)
            self.rpc_count += 1
            for name in self.hyperparameters:
                if cache.groups(name) != groups:
                    raise ValueError(f"{self.job}: hyperparameter {name!r} has {cache.groups(name)} groups, the "
                                     f"optimizer {groups} param groups (did the job change?)")
            if cache.start_step != step or cache.count < 1:
                raise RuntimeError(f"{self.job}: GetValues(step={step}, count={count}) answered start_step "
                                   f"{cache.start_step}, {cache.count} steps")
            self._cache = cache
        i = step - cache.start_step
        return {name: [cache[(name, g)][i] for g in range(groups)] for name in self.hyperparameters}

    def _apply(self, values: dict[str, list[float]]) -> None:
        """Sets every scheduled hyperparameter but lr (PyTorch's step() sets lr from get_lr())."""
        for g, group in enumerate(self.optimizer.param_groups):
            if "momentum" in values:
                if "momentum" in group:
                    group["momentum"] = values["momentum"][g]
                else:
                    group["betas"] = (values["momentum"][g], *tuple(group["betas"])[1:])
            if "beta1" in values:
                group["betas"] = (values["beta1"][g], *tuple(group["betas"])[1:])
            if "beta2" in values:
                group["betas"] = (tuple(group["betas"])[0], values["beta2"][g], *tuple(group["betas"])[2:])
            if "weight_decay" in values:
                group["weight_decay"] = values["weight_decay"][g]
        self._last_values = values

    def get_lr(self) -> list[float]:
        """The job's lr of every group at step `last_epoch`; also applies the other scheduled hyperparameters."""
        values = self._values_at(self.last_epoch)
        self._apply(values)
        return list(values["lr"])

    def get_last_values(self) -> dict[str, list[float]]:
        """{hyperparameter: [value per group]} last applied, e.g. {"lr": [0.1], "momentum": [0.9]}."""
        return {name: list(v) for name, v in self._last_values.items()}

    # --- checkpoints -------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The job's name and the step (`last_epoch`); the values are the server's."""
        return {"job": self.job, "last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Moves to the saved step and applies its values to the optimizer now."""
        saved = job_name(state_dict.get("job", self.job))
        if saved != self.job:
            raise ValueError(f"the state is of job {saved}, this scheduler reads {self.job}")
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self._step_count))
        values = self._values_at(self.last_epoch)
        self._apply(values)
        for group, lr in zip(self.optimizer.param_groups, values["lr"]):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def close(self) -> None:
        """Closes the client if the scheduler opened it."""
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return (f"RemoteScheduler(job={self.job!r}, step={self.last_epoch}, hyperparameters={self.hyperparameters}, "
                f"window={self.window})")
