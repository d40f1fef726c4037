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

From PyTorch: `spec_from_scheduler(scheduler)` turns a constructed torch.optim.lr_scheduler object into a job spec,
`job_spec(optimizer, schedule)` a spec plus an optimizer (see hpsched.torch_convert); a one_cycle or cyclic schedule
that cycles the momentum then also schedules "momentum" or "beta1", which this scheduler writes into the groups.

Live jobs: the scheduler caches only final values (never provisional ones that wait for metric reports), and a
background WatchJob stream drops cached values that an update or a plateau reduction made stale. For a job with a
reduce_on_plateau schedule, `scheduler.report(val_loss=...)` after the epoch's last `scheduler.step()` sends the
metric for the step just finished, as `ReduceLROnPlateau.step(val_loss)` would take it.
"""
# This module is hpsched.torch; `import torch` below is the real PyTorch because imports are absolute (Python 3).
from __future__ import annotations

import functools
import logging
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any, Optional, Union

import torch

if not hasattr(torch, "optim"):  # Only if this file was run as a script from inside the package directory.
    raise ImportError(f"`import torch` found {getattr(torch, '__file__', torch)!r}, not PyTorch: do not put the "
                      "hpsched package directory itself on sys.path; put its parent there")

from torch.optim import Optimizer
from torch.optim.lr_scheduler import _LRScheduler

import grpc

from hpsched import watch as _watch
from hpsched.client import DEFAULT_TARGET, Client, Values, job_name
from hpsched.errors import HpschedError
from hpsched.torch_convert import _cycles_momentum, job_spec, spec_from_scheduler

__all__ = ["RemoteScheduler", "SCHEDULED_HYPERPARAMETERS", "job_spec", "spec_from_scheduler"]

# The hyperparameters a RemoteScheduler applies when the job schedules them; others in the job are left alone.
#   lr            param_group["lr"] (required)
#   momentum      param_group["momentum"], or betas[0] for optimizers with betas (Adam, AdamW, ...), like OneCycleLR
#   beta1, beta2  param_group["betas"][0], [1]
#   weight_decay  param_group["weight_decay"]
SCHEDULED_HYPERPARAMETERS = ("lr", "momentum", "beta1", "beta2", "weight_decay")

_MAX_COUNT = 100_000  # GetValuesRequest.count
_MAX_VALUES = 400_000  # values per GetValues response
_MAX_STEP = 2 ** 53  # step + count must not exceed it
_WATCH_BACKOFF = (0.1, 5.0)  # seconds before reopening a WatchJob stream that ended: initial, maximum
_MAX_REMEMBERED_CHANGES = 256  # (version, effective_step) of recent updates, to check windows fetched meanwhile

_log = logging.getLogger(__name__)


class RemoteScheduler(_LRScheduler):
    """Sets every param group's lr (and momentum / betas / weight_decay when the job schedules them) from an hpsched
    job at each `step()`.

    optimizer: the wrapped optimizer; it must have as many param groups as the job's hyperparameters have base
    values. job: the job's id or name ("jobs/{id}"); it must exist and schedule "lr". client: an hpsched.Client
    (one is opened on `target` when None, and closed by `close()`). window: steps fetched per GetValues; one call
    serves `window` consecutive steps, so a loop that steps forward makes one call every `window` steps.
    last_epoch: as in PyTorch, the index of the last step done; -1 starts from step 0.
    watch: follow the job with a WatchJob stream in a background thread (reopened when it ends) and drop prefetched
    values that a change made stale (an UpdateJob with allow_rewrite, a plateau reduction). wait_timeout: seconds a
    step may wait for the metric reports its values depend on (default: the client's timeout); past it the wait
    raises HpschedError DEADLINE_EXCEEDED.

    Only final values are prefetched. When the values of the step `step()` moves to still wait for a metric report
    (reduce_on_plateau), the groups get the provisional values and `pending` is True until the report arrives: by
    `report()` from this process, or at the next `optimizer.step()`, which first waits for the final values. So the
    optimizer never steps with a provisional value.

    `state_dict()` is the job and the step; `load_state_dict()` moves to that step and applies its values to the
    optimizer at once, so a resumed run continues exactly like an uninterrupted one.
    """

    def __init__(self, optimizer: Optimizer, job: str, client: Optional[Client] = None, target: str = DEFAULT_TARGET,
                 window: int = 64, last_epoch: int = -1, verbose: bool = False, *, watch: bool = True,
                 wait_timeout: Optional[float] = None):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if int(window) < 1:
            raise ValueError(f"window: must be >= 1, got {window}")
        self.job = job_name(job)
        self.window = int(window)
        self._owns_client = client is None
        self.client = client if client is not None else Client(target)
        self.wait_timeout = wait_timeout
        self.rpc_count = 0  # GetValues calls made
        self.stale_drops = 0  # times the watch dropped prefetched values
        self._last_values: dict[str, list[float]] = {}
        self._pending: Optional[int] = None  # the step whose applied values are provisional
        self._optimizer_steps = 0  # the optimizer's step count at the last scheduler step
        # Shared with the watch thread.
        self._lock = threading.Lock()
        self._cache: Optional[Values] = None  # final values only; guarded by _lock
        self._changes: deque = deque(maxlen=_MAX_REMEMBERED_CHANGES)  # (version, effective_step); guarded by _lock
        self._closed = threading.Event()
        self._watch: Optional[_watch.JobWatch] = None  # guarded by _lock
        self._watch_thread: Optional[threading.Thread] = None

        spec = self.client.get_job(self.job)
        self.job_version = spec.version
        self.metrics = [m.name for m in spec.metrics]  # the metrics the job declares, for report()
        groups = len(optimizer.param_groups)
        counts = {hp.name: len(hp.base_values) for hp in spec.hyperparameters}
        if "lr" not in counts:
            raise ValueError(f"{self.job} has no 'lr' hyperparameter (it schedules {sorted(counts)})")
        self.hyperparameters = [name for name in SCHEDULED_HYPERPARAMETERS if name in counts]
        self._warn_if_momentum_not_scheduled(spec)
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
        self._wrap_optimizer_step()
        if watch:
            self._watch_thread = threading.Thread(target=_follow, args=(weakref.ref(self), self.client, self.job,
                                                                         self._closed),
                                                  name=f"hpsched-watch-{self.job}", daemon=True)
            self._watch_thread.start()

    def _warn_if_momentum_not_scheduled(self, spec: Any) -> None:
        """PyTorch's OneCycleLR and CyclicLR cycle the momentum by default; a job whose lr does so without a
        "momentum" or "beta1" hyperparameter leaves the optimizer's momentum alone, which is rarely what was meant."""
        if "momentum" in self.hyperparameters or "beta1" in self.hyperparameters:
            return
        lr = next(hp for hp in spec.hyperparameters if hp.name == "lr")
        kind = _cycles_momentum(lr.schedule)
        if kind is not None:
            warnings.warn(f"{self.job}: lr's {kind} schedule cycles the momentum (cycle_momentum, PyTorch's "
                          "default) but the job schedules no 'momentum' or 'beta1', so the optimizer's momentum "
                          "stays as it is; create the job from hpsched.torch.job_spec(optimizer, schedule) or "
                          "spec_from_scheduler(scheduler) to follow PyTorch, or set cycle_momentum to false",
                          UserWarning, stacklevel=3)

    def _wrap_optimizer_step(self) -> None:
        """Makes optimizer.step() first wait for the final values of a pending step (see `pending`).

        Wraps PyTorch's own counting wrapper (which _LRScheduler installed), and keeps its `_with_counter` mark so
        PyTorch does not warn that optimizer.step was overridden. Holds the scheduler weakly, like PyTorch's wrapper.
        """
        step = self.optimizer.step
        scheduler_ref = weakref.ref(self)

        @functools.wraps(step)
        def step_with_final_values(*args, **kwargs):
            scheduler = scheduler_ref()
            if scheduler is not None:
                scheduler._resolve_pending()
            return step(*args, **kwargs)

        step_with_final_values._with_counter = getattr(step, "_with_counter", False)
        self.optimizer.step = step_with_final_values

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

    def _row(self, values: Values, step: int) -> dict[str, list[float]]:
        groups = len(self.optimizer.param_groups)
        i = step - values.start_step
        return {name: [values[(name, g)][i] for g in range(groups)] for name in self.hyperparameters}

    def _fetch(self, step: int, count: int, pending_policy: Optional[str]) -> Values:
        groups = len(self.optimizer.param_groups)
        timeout = self.wait_timeout if pending_policy is None else None
        values = self.client.get_values(self.job, step, count, self.hyperparameters, pending_policy=pending_policy,
                                        timeout=timeout)
        self.rpc_count += 1
        for name in self.hyperparameters:
            if values.groups(name) != groups:
                raise ValueError(f"{self.job}: hyperparameter {name!r} has {values.groups(name)} groups, the "
                                 f"optimizer {groups} param groups (did the job change?)")
        if values.start_step != step or values.count < 1:
            raise RuntimeError(f"{self.job}: GetValues(step={step}, count={count}) answered start_step "
                               f"{values.start_step}, {values.count} steps")
        return values

    def _values_at(self, step: int, wait: bool = True) -> tuple[dict[str, list[float]], bool]:
        """({hyperparameter: [value per group]} at `step`, whether they are final).

        From the prefetched window, else from a new window fetched with PROVISIONAL_NOW, of which only the final
        steps are kept. When `step` itself is provisional: with `wait`, the step alone with the waiting policy (final,
        or HpschedError DEADLINE_EXCEEDED after wait_timeout); without, the provisional values.
        """
        with self._lock:
            cache = self._cache
        if cache is not None and cache.start_step <= step < cache.start_step + cache.count:
            return self._row(cache, step), True
        if not 0 <= step < _MAX_STEP:
            raise ValueError(f"step {step} is outside [0, 2^53)")
        groups = len(self.optimizer.param_groups)
        count = min(self.window, _MAX_COUNT, max(1, _MAX_VALUES // (len(self.hyperparameters) * groups)),
                    _MAX_STEP - step)
        window = self._fetch(step, count, "provisional_now")
        if window.final_count > 0:
            self._install(window.head(window.final_count))
            return self._row(window, step), True
        if not wait:
            return self._row(window, step), False
        final = self._fetch(step, 1, None)
        if final.provisional_from is not None:  # the waiting policy answers final values or fails
            raise RuntimeError(f"{self.job}: GetValues(step={step}) answered provisional values")
        self._install(final)
        return self._row(final, step), True

    def _install(self, values: Values) -> None:
        """Caches final values, minus the steps that a change newer than them (seen by the watch) made stale."""
        with self._lock:
            stale = [step for version, step in self._changes if version > values.version]
            if stale:
                values = values.head(min(stale) - values.start_step)
            self._cache = values if values.count > 0 else None

    def _invalidate(self, from_step: int, version: Optional[int]) -> None:
        """Drops the prefetched values of the steps from `from_step` on if they are older than `version` (None:
        whatever their version); remembers the change for windows being fetched meanwhile."""
        with self._lock:
            if version is not None:
                self._changes.append((version, from_step))
            cache = self._cache
            if cache is None or from_step >= cache.start_step + cache.count:
                return
            if version is not None and cache.version >= version:
                return
            self._cache = cache.head(from_step - cache.start_step) if from_step > cache.start_step else None
            if self._cache is not None and self._cache.count == 0:
                self._cache = None
            self.stale_drops += 1

    def _on_event(self, event: "_watch.JobEvent") -> None:
        """Called by the watch thread for each event of the job."""
        if event.type == _watch.SNAPSHOT:
            # Changes made while no stream was open (before the first, or between two): every segment of a
            # scheduled hyperparameter newer than the cached values makes them stale from its step.
            for hp in event.job.hyperparameters:
                if hp.name in self.hyperparameters:
                    for segment in hp.segments:
                        self._invalidate(segment.effective_step, segment.version)
        elif event.type == _watch.UPDATED:
            self._invalidate(event.effective_step, event.job.version)
        elif event.type == _watch.PLATEAU_REDUCED:
            # By the proto's contract a report never changes a final value (and only final values are cached): the
            # values from effective_step on were fetched after the report. Reports do not change the job's version,
            # so nothing tells a window fetched before from one fetched after: drop from effective_step anyway, at
            # the cost of at most one GetValues per reduction, so a server that broke the contract is not trusted.
            self._invalidate(event.effective_step, None)
        elif event.type == _watch.DELETED:
            self._invalidate(0, None)

    @property
    def prefetched_steps(self) -> range:
        """The steps whose (final) values are prefetched."""
        with self._lock:
            cache = self._cache
        return range(0) if cache is None else range(cache.start_step, cache.start_step + cache.count)

    @property
    def pending(self) -> bool:
        """True while the groups hold provisional values: the current step's values wait for a metric report."""
        return self._pending is not None

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
        """The job's lr of every group at step `last_epoch`; also applies the other scheduled hyperparameters.

        Never waits for a metric report: provisional values are applied and marked pending (see `pending`).
        """
        values, final = self._values_at(self.last_epoch, wait=False)
        self._pending = None if final else self.last_epoch
        self._apply(values)
        return list(values["lr"])

    def step(self, epoch: Optional[int] = None) -> None:
        """Moves to the next step (or to `epoch`, as PyTorch's deprecated form) and applies its values."""
        super().step(epoch)
        self._optimizer_steps = getattr(self.optimizer, "_step_count", 0)

    def _set_final(self, values: dict[str, list[float]]) -> None:
        self._apply(values)
        for group, lr in zip(self.optimizer.param_groups, values["lr"]):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        self._pending = None

    def _resolve_pending(self, wait: bool = True) -> None:
        """Replaces the provisional values of the current step by its final ones (waiting for them with `wait`)."""
        if self._pending is None:
            return
        if self._pending != self.last_epoch:
            self._pending = None
            return
        values, final = self._values_at(self.last_epoch, wait=wait)
        if final:
            self._set_final(values)

    # --- metrics -----------------------------------------------------------------------------------------------------

    def report(self, metrics: Union[None, float, Mapping[str, float]] = None, /, *, step: Optional[int] = None,
               next_step: Optional[int] = None, **named: float) -> Any:
        """Reports metrics measured after the step the optimizer just finished, for the job's reduce_on_plateau
        schedules: the counterpart of `ReduceLROnPlateau.step(val_loss)`.

            scheduler.report(val_loss)                 # the job declares one metric
            scheduler.report(val_loss=0.31)            # by name; or scheduler.report({"val_loss": 0.31})

        Call it where ReduceLROnPlateau.step(val_loss) would go: at the end of the epoch, after its last
        `scheduler.step()` (it then reports for step last_epoch - 1), or between `optimizer.step()` and
        `scheduler.step()` (it reports for last_epoch). step: report for this step instead. next_step: for metrics
        with announced reports (first_step cadence). Values may be Python numbers or one-element tensors.
        Then applies the final values of the current step if the report made them final. Returns the
        ReportMetricsResponse (duplicate, reduction_steps); a repeated identical report is a no-op.
        """
        if metrics is not None and named:
            raise TypeError("report: give the metrics as one dict or value, or as keywords, not both")
        if isinstance(metrics, Mapping):
            values = dict(metrics)
        elif metrics is not None:
            if len(self.metrics) != 1:
                raise ValueError(f"report: {self.job} declares metrics {self.metrics}; name the metric, e.g. "
                                 "report(val_loss=...)")
            values = {self.metrics[0]: metrics}
        else:
            values = dict(named)
        if not values:
            raise ValueError("report: no metric given")
        values = {name: float(value.item() if isinstance(value, torch.Tensor) else value)
                  for name, value in values.items()}
        if step is None:
            stepped = getattr(self.optimizer, "_step_count", 0) > self._optimizer_steps
            step = self.last_epoch if stepped else self.last_epoch - 1
        response = self.client.report_metrics(self.job, step, values, next_step=next_step)
        self._resolve_pending(wait=False)
        return response

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
        self._optimizer_steps = getattr(self.optimizer, "_step_count", 0)
        values, _ = self._values_at(self.last_epoch, wait=True)
        self._set_final(values)

    def close(self) -> None:
        """Stops the watch thread, and closes the client if the scheduler opened it."""
        self._stop_watch()
        if self._watch_thread is not None and self._watch_thread is not threading.current_thread():
            self._watch_thread.join(5.0)
        if self._owns_client:
            self.client.close()

    def _stop_watch(self) -> None:
        self._closed.set()
        with self._lock:
            watch = self._watch
        if watch is not None:
            watch.cancel()

    def __del__(self) -> None:
        closed = getattr(self, "_closed", None)
        if closed is not None and not closed.is_set():
            self._stop_watch()

    def __repr__(self) -> str:
        return (f"RemoteScheduler(job={self.job!r}, step={self.last_epoch}, hyperparameters={self.hyperparameters}, "
                f"window={self.window})")


def _follow(scheduler_ref: "weakref.ref[RemoteScheduler]", client: Client, job: str, closed: threading.Event) -> None:
    """The watch thread: WatchJob events of `job` to the scheduler, reopening the stream when it ends, until the
    scheduler is closed or collected, or the job is deleted. Holds the scheduler weakly, so an unclosed scheduler can
    still be collected (its __del__ ends the stream)."""
    backoff = _WATCH_BACKOFF[0]
    while not closed.is_set():
        watch = client.watch_job(job)
        scheduler = scheduler_ref()
        if scheduler is None:
            return
        with scheduler._lock:
            scheduler._watch = watch
        del scheduler
        if closed.is_set():
            watch.cancel()
            return
        try:
            for event in watch:
                backoff = _WATCH_BACKOFF[0]
                scheduler = scheduler_ref()
                if scheduler is None:
                    watch.cancel()
                    return
                scheduler._on_event(event)
                del scheduler
                if event.type == _watch.DELETED:
                    return
        except HpschedError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                scheduler = scheduler_ref()
                if scheduler is not None:
                    scheduler._invalidate(0, None)
                return
            _log.debug("WatchJob %s ended: %s; reopening in %.1f s", job, e, backoff)
        except ValueError:  # grpc: "Cannot invoke RPC on closed channel!" - the caller closed the client
            return
        except Exception:  # noqa: BLE001 - the thread must not die silently with a live scheduler
            _log.exception("WatchJob %s: unexpected error; reopening in %.1f s", job, backoff)
        closed.wait(backoff)
        backoff = min(backoff * 2, _WATCH_BACKOFF[1])
