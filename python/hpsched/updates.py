"""The changes Client.update_job applies to a running job: one HyperparameterUpdate per (hyperparameter, segment).

    from hpsched import scale, pin, reschedule
    client.update_job("resnet-1", scale("lr", 0.5, from_step=5000))             # halve the lr from step 5000 on
    client.update_job("resnet-1", pin("momentum", 0.9, from_step=5000))          # fixed value(s) from step 5000
    client.update_job("resnet-1", reschedule("lr", {"cosine_annealing": {"t_max": 2000}}, from_step=5000,
                                             anchor=True))                       # cosine from wherever lr is
    client.update_job("resnet-1", [scale("lr", 0.5, from_step=5000), pin("momentum", 0.95, from_step=5000)])

A segment applies from its `from_step` (the proto's effective_step) on; values of earlier steps never change.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from hpsched.spec import SpecError, check_keys, to_message, unknown_name
from hpsched.v1 import job_pb2, schedule_pb2, scheduler_service_pb2

__all__ = ["scale", "pin", "reschedule", "build_updates"]

_TIMES = {
    None: job_pb2.SEGMENT_TIME_UNSPECIFIED,
    "local": job_pb2.SEGMENT_TIME_LOCAL,
    "global": job_pb2.SEGMENT_TIME_GLOBAL,
}


def _update(hyperparameter: str, from_step: int) -> scheduler_service_pb2.HyperparameterUpdate:
    if not isinstance(hyperparameter, str) or not hyperparameter:
        raise SpecError("hyperparameter", f"a name is required, got {hyperparameter!r}")
    if isinstance(from_step, bool) or not isinstance(from_step, int):
        raise SpecError("from_step", f"expected an int, got {type(from_step).__name__} {from_step!r}")
    update = scheduler_service_pb2.HyperparameterUpdate(hyperparameter=hyperparameter)
    update.segment.effective_step = from_step
    return update


def scale(hyperparameter: str, factor: float, from_step: int) -> scheduler_service_pb2.HyperparameterUpdate:
    """From `from_step` on, the values `hyperparameter` had before this change times `factor` (> 0), every group."""
    update = _update(hyperparameter, from_step)
    if not isinstance(factor, (int, float)) or isinstance(factor, bool):
        raise SpecError("scale", f"expected a number, got {type(factor).__name__} {factor!r}")
    update.segment.scale = float(factor)
    return update


def pin(hyperparameter: str, values: Union[float, Sequence[float]],
        from_step: int) -> scheduler_service_pb2.HyperparameterUpdate:
    """From `from_step` on, fixed values: one number for every group, or one per group."""
    update = _update(hyperparameter, from_step)
    if isinstance(values, (int, float)):
        values = [values]
    try:
        update.segment.pin.values.extend(float(v) for v in values)
    except (TypeError, ValueError):
        raise SpecError("pin", f"expected a number or a list of numbers, got {values!r}") from None
    return update


def reschedule(hyperparameter: str, schedule: Any, from_step: int, *, time: Union[None, str, int] = "local",
               anchor: bool = False) -> scheduler_service_pb2.HyperparameterUpdate:
    """From `from_step` on, a new schedule (a Schedule message or a dict in its JSON mapping).

    time: "local" (the schedule starts at its own step 0 at from_step; the default) or "global" (it sees the global
    step), or a SegmentTime value. anchor: evaluate the schedule with each group's base value replaced by the value the
    hyperparameter had at from_step, so it continues from there instead of jumping.
    """
    update = _update(hyperparameter, from_step)
    update.segment.schedule.CopyFrom(to_message(schedule, schedule_pb2.Schedule, f"{hyperparameter}.schedule"))
    update.segment.time = _segment_time(time)
    update.segment.anchor = bool(anchor)
    return update


def _segment_time(time: Union[None, str, int]) -> int:
    if isinstance(time, str):
        time = time.lower()
    if time in _TIMES:
        return _TIMES[time]
    if isinstance(time, int) and time in _TIMES.values():
        return time
    raise SpecError("time", unknown_name(time, ("local", "global"), "time"))


# The keys of the short dict form of an update (see _from_dict).
_DICT_KEYS = ("hyperparameter", "from_step", "effective_step", "scale", "pin", "schedule", "time", "anchor")


def _from_dict(spec: Mapping[str, Any], where: str) -> scheduler_service_pb2.HyperparameterUpdate:
    """{"hyperparameter", "from_step" (or "effective_step"), one of "scale" / "pin" / "schedule", "time"?, "anchor"?}
    or the JSON mapping of HyperparameterUpdate ({"hyperparameter", "segment": {...}})."""
    if "segment" in spec:
        return to_message(spec, scheduler_service_pb2.HyperparameterUpdate, where)
    check_keys(spec, _DICT_KEYS, where)
    spec = dict(spec)
    hyperparameter = spec.pop("hyperparameter", None)
    step = spec.pop("from_step", spec.pop("effective_step", None))
    if step is None:
        raise SpecError(f"{where}.from_step", "required")
    changes = [key for key in ("scale", "pin", "schedule") if key in spec]
    if len(changes) != 1:
        raise SpecError(where, f"exactly one of scale, pin and schedule is required, got {changes}")
    change = changes[0]
    value = spec.pop(change)
    time = spec.pop("time", "local")
    anchor = spec.pop("anchor", False)
    if change != "schedule" and (time != "local" or anchor):
        raise SpecError(where, "time and anchor apply to a schedule only")
    try:
        if change == "scale":
            return scale(hyperparameter, value, step)
        if change == "pin":
            return pin(hyperparameter, value, step)
        value = to_message(value, schedule_pb2.Schedule, f"{where}.schedule")
        return reschedule(hyperparameter, value, step, time=time, anchor=anchor)
    except SpecError as e:
        if e.path.startswith(where):
            raise
        raise SpecError(f"{where}.{e.path}", e.rule) from None  # the same rule, under this update's path


def build_updates(updates: Any) -> list[scheduler_service_pb2.HyperparameterUpdate]:
    """HyperparameterUpdates from one update or a list of them, each a HyperparameterUpdate (e.g. from scale, pin,
    reschedule) or a dict (see _from_dict)."""
    if isinstance(updates, (scheduler_service_pb2.HyperparameterUpdate, Mapping)):
        updates = [updates]
    if not isinstance(updates, Iterable) or isinstance(updates, (str, bytes)):
        raise SpecError("updates", "expected a HyperparameterUpdate, a dict or a list of them, "
                                   f"got {type(updates).__name__}")
    out = []
    for i, update in enumerate(updates):
        if isinstance(update, scheduler_service_pb2.HyperparameterUpdate):
            copy = scheduler_service_pb2.HyperparameterUpdate()
            copy.CopyFrom(update)
            out.append(copy)
        elif isinstance(update, Mapping):
            out.append(_from_dict(update, f"updates[{i}]"))
        else:
            raise SpecError(f"updates[{i}]", f"expected a HyperparameterUpdate or a dict, got {type(update).__name__}")
    if not out:
        raise SpecError("updates", "at least one change is required")
    return out
