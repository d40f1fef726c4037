"""hpsched.Client: typed calls to hpsched.v1.SchedulerService.

Every call has a deadline (`timeout` seconds, retries included) and is retried with exponential backoff and full
jitter while the server answers UNAVAILABLE, up to `max_attempts` attempts. CreateJob always carries a request_id
(generated when the caller gives none), so a retried create never creates twice. Errors are raised as HpschedError,
which carries the gRPC status code and the server's message. A Client is thread-safe: one channel, shared by every
thread.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from hpsched.v1 import job_pb2, schedule_pb2, scheduler_service_pb2, scheduler_service_pb2_grpc

__all__ = ["Client", "HpschedError", "Values", "job_name"]

DEFAULT_TARGET = "localhost:50051"


class HpschedError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the server's (or gRPC's) message.

    `method` is the RPC's name and `attempts` how many attempts were made (more than 1 only after UNAVAILABLE).
    """

    def __init__(self, code: grpc.StatusCode, message: str, method: str = "", attempts: int = 1):
        self.code = code
        self.message = message
        self.method = method
        self.attempts = attempts
        where = f"{method}: " if method else ""
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"{where}{code.name}: {message}{tries}")

    @property
    def details(self) -> str:
        """The message, under grpc.RpcError's name for it."""
        return self.message


class Values(dict):
    """GetValues' answer: {(hyperparameter, group): [value for step start_step + i, ...]}.

    Also carries `job` (the resource name), `version` (the job's version the values come from), `start_step` and
    `count` (the number of steps of every series).
    """

    def __init__(self, job: str, version: int, start_step: int, series: Iterable[tuple[tuple[str, int], list]]):
        super().__init__(series)
        self.job = job
        self.version = version
        self.start_step = start_step
        self.count = len(next(iter(self.values()))) if self else 0

    @classmethod
    def from_response(cls, response: scheduler_service_pb2.GetValuesResponse) -> "Values":
        return cls(response.job, response.version, response.start_step,
                   (((s.hyperparameter, s.group), list(s.values)) for s in response.series))

    @property
    def hyperparameters(self) -> list[str]:
        """The hyperparameters' names, in the job's order."""
        return list(dict.fromkeys(name for name, _ in self))

    def groups(self, hyperparameter: str) -> int:
        """How many parameter groups `hyperparameter` has."""
        return sum(1 for name, _ in self if name == hyperparameter)

    def value(self, hyperparameter: str, group: int, step: int) -> float:
        """The value of (hyperparameter, group) at `step`; KeyError/IndexError outside the response."""
        if not self.start_step <= step < self.start_step + self.count:
            raise IndexError(f"step {step} is outside [{self.start_step}, {self.start_step + self.count})")
        return self[(hyperparameter, group)][step - self.start_step]

    def __repr__(self) -> str:
        return (f"Values(job={self.job!r}, version={self.version}, start_step={self.start_step}, "
                f"count={self.count}, {dict.__repr__(self)})")


def job_name(job: Any) -> str:
    """"jobs/{job_id}" for a bare id; a resource name, or a Job message's name, as it is."""
    if isinstance(job, job_pb2.Job):
        job = job.name
    if not isinstance(job, str) or not job:
        raise ValueError(f"a job id or name is required, got {job!r}")
    return job if job.startswith("jobs/") else f"jobs/{job}"


def _parse(value: Any, message_type: type, what: str) -> Message:
    """A message from a message of that type, a dict in the protobuf JSON mapping, or a JSON string."""
    if isinstance(value, message_type):
        out = message_type()
        out.CopyFrom(value)
        return out
    try:
        if isinstance(value, Mapping):
            return json_format.ParseDict(value, message_type())
        if isinstance(value, (str, bytes)):
            return json_format.Parse(value, message_type())
    except json_format.ParseError as e:
        raise ValueError(f"{what}: {e}") from None
    raise TypeError(f"{what}: expected a {message_type.__name__}, a dict or a JSON string, got {type(value).__name__}")


def _hyperparameter(name: Optional[str], spec: Any, where: str) -> job_pb2.Hyperparameter:
    """A Hyperparameter from a message or a dict {"name"?, "base_values": [..] or a number, "schedule": {...}}."""
    if isinstance(spec, job_pb2.Hyperparameter):
        hp = job_pb2.Hyperparameter()
        hp.CopyFrom(spec)
    elif isinstance(spec, Mapping):
        spec = dict(spec)
        hp = job_pb2.Hyperparameter()
        bases = spec.pop("base_values", spec.pop("baseValues", None))
        if isinstance(bases, (int, float)):
            bases = [bases]
        if bases is not None:
            hp.base_values.extend(float(b) for b in bases)
        schedule = spec.pop("schedule", None)
        if schedule is not None:
            hp.schedule.CopyFrom(_parse(schedule, schedule_pb2.Schedule, f"{where}.schedule"))
        if "name" in spec:
            hp.name = spec.pop("name")
        if spec:
            raise ValueError(f"{where}: unknown keys {sorted(spec)} (expected name, base_values, schedule)")
    else:
        raise TypeError(f"{where}: expected a Hyperparameter or a dict, got {type(spec).__name__}")
    if name is not None:
        hp.name = name
    return hp


def _build_job(hyperparameters: Any, job: Any, labels: Optional[Mapping[str, str]]) -> job_pb2.Job:
    if (hyperparameters is None) == (job is None):
        raise TypeError("create_job needs exactly one of hyperparameters and job")
    if job is not None or isinstance(hyperparameters, job_pb2.Job):
        out = _parse(job if job is not None else hyperparameters, job_pb2.Job, "job")
    elif isinstance(hyperparameters, Mapping):
        # {name: {"base_values": ..., "schedule": ...}}, in order.
        out = job_pb2.Job()
        for name, spec in hyperparameters.items():
            out.hyperparameters.append(_hyperparameter(name, spec, f"hyperparameters[{name!r}]"))
    elif isinstance(hyperparameters, Iterable) and not isinstance(hyperparameters, (str, bytes)):
        out = job_pb2.Job()
        for i, spec in enumerate(hyperparameters):
            out.hyperparameters.append(_hyperparameter(None, spec, f"hyperparameters[{i}]"))
    else:
        raise TypeError("hyperparameters: expected {name: spec}, a list of specs or a Job, "
                        f"got {type(hyperparameters).__name__}")
    if labels:
        out.labels.update(labels)
    return out


class Client:
    """A client of hpsched.v1.SchedulerService.

    target: gRPC target, e.g. "localhost:50051". timeout: deadline of each call in seconds, retries included.
    max_attempts: attempts per call while the server is UNAVAILABLE (1 = no retry). initial_backoff, max_backoff:
    the backoff before the second attempt, doubling up to max_backoff; each sleep is a uniformly random fraction of
    it (full jitter) and never runs past the deadline. channel: an existing grpc.Channel to use instead of opening
    one (the client does not close it). channel_options: gRPC channel arguments.
    """

    def __init__(self, target: str = DEFAULT_TARGET, timeout: float = 10.0, max_attempts: int = 5, *,
                 initial_backoff: float = 0.1, max_backoff: float = 2.0, channel: Optional[grpc.Channel] = None,
                 channel_options: Sequence[tuple[str, Any]] = ()):
        if timeout <= 0:
            raise ValueError(f"timeout: must be > 0, got {timeout}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts}")
        if initial_backoff < 0 or max_backoff < 0:
            raise ValueError("initial_backoff and max_backoff must be >= 0")
        self.target = target
        self.timeout = float(timeout)
        self.max_attempts = int(max_attempts)
        self.initial_backoff = float(initial_backoff)
        self.max_backoff = float(max_backoff)
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else grpc.insecure_channel(target, options=list(channel_options))
        self._stub = scheduler_service_pb2_grpc.SchedulerServiceStub(self._channel)
        self._random = random.Random()
        self._random_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the channel (if the client opened it). Calls in flight are cancelled."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r}, timeout={self.timeout}, max_attempts={self.max_attempts})"

    # --- the calls ---------------------------------------------------------------------------------------------------

    def _jitter(self, backoff: float) -> float:
        with self._random_lock:
            return backoff * self._random.random()

    def _call(self, method: str, request: Message) -> Any:
        rpc = getattr(self._stub, method)
        deadline = time.monotonic() + self.timeout
        backoff = self.initial_backoff
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HpschedError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the call was sent",
                                   method, attempt - 1 or 1)
            try:
                return rpc(request, timeout=remaining)
            except grpc.RpcError as e:
                code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
                message = e.details() if callable(getattr(e, "details", None)) else str(e)
                if code != grpc.StatusCode.UNAVAILABLE or attempt >= self.max_attempts:
                    raise HpschedError(code, message or "", method, attempt) from None
                sleep = min(self._jitter(backoff), deadline - time.monotonic())
                if sleep <= 0:
                    raise HpschedError(code, message or "", method, attempt) from None
                time.sleep(sleep)
                backoff = min(backoff * 2, self.max_backoff)

    def create_job(self, job_id: str, hyperparameters: Any = None, *, job: Any = None,
                   labels: Optional[Mapping[str, str]] = None, request_id: Optional[str] = None) -> job_pb2.Job:
        """Creates the job `job_id` and returns it (idempotent: an identical spec returns the existing job).

        hyperparameters: {name: {"base_values": [...], "schedule": {...}}} (schedules in the protobuf JSON mapping,
        e.g. {"step": {"step_size": 10, "gamma": 0.5}}, or Schedule messages), a list of such dicts with a "name",
        or Hyperparameter messages. Or job: a Job message or a dict in the JSON mapping of Job. labels are added
        to the job's. request_id: the idempotency key; one is generated when None, so retries are safe.
        """
        request = scheduler_service_pb2.CreateJobRequest(
            job_id=job_id, job=_build_job(hyperparameters, job, labels),
            request_id=request_id if request_id else uuid.uuid4().hex)
        return self._call("CreateJob", request)

    def get_job(self, job: str) -> job_pb2.Job:
        """The job named `job` ("jobs/{id}" or a bare id)."""
        return self._call("GetJob", scheduler_service_pb2.GetJobRequest(name=job_name(job)))

    def list_jobs(self, page_size: int = 0) -> Iterator[job_pb2.Job]:
        """Every job in order of their ids, fetched page by page (page_size 0 = the server's default, 100)."""
        token = ""
        while True:
            page = self._call("ListJobs", scheduler_service_pb2.ListJobsRequest(page_size=page_size, page_token=token))
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def delete_job(self, job: str) -> None:
        """Deletes the job named `job`."""
        self._call("DeleteJob", scheduler_service_pb2.DeleteJobRequest(name=job_name(job)))

    @staticmethod
    def _values_request(job: str, step: int, count: int,
                        hyperparameters: Union[None, str, Iterable[str]]) -> scheduler_service_pb2.GetValuesRequest:
        if isinstance(hyperparameters, str):
            hyperparameters = [hyperparameters]
        return scheduler_service_pb2.GetValuesRequest(job=job_name(job), step=step, count=count,
                                                      hyperparameters=list(hyperparameters or ()))

    def get_values(self, job: str, step: int, count: int = 1,
                   hyperparameters: Union[None, str, Iterable[str]] = None) -> Values:
        """The values of the job's hyperparameters (all, or the named ones) for the steps [step, step + count)."""
        return Values.from_response(self._call("GetValues", self._values_request(job, step, count, hyperparameters)))

    def get_values_response(self, job: str, step: int, count: int = 1,
                            hyperparameters: Union[None, str, Iterable[str]] = None
                            ) -> scheduler_service_pb2.GetValuesResponse:
        """Like get_values, but returns the GetValuesResponse message."""
        return self._call("GetValues", self._values_request(job, step, count, hyperparameters))

    def batch_get_values(self, requests: Iterable[Union[tuple, Mapping[str, Any]]]) -> list[Values]:
        """Many get_values in one call, all-or-nothing. Each request is (job, step[, count[, hyperparameters]])
        or a dict with those keys."""
        built = []
        for r in requests:
            args = dict(r) if isinstance(r, Mapping) else dict(zip(("job", "step", "count", "hyperparameters"), r))
            built.append(self._values_request(args["job"], args.get("step", 0), args.get("count", 1),
                                              args.get("hyperparameters")))
        response = self._call("BatchGetValues", scheduler_service_pb2.BatchGetValuesRequest(requests=built))
        return [Values.from_response(r) for r in response.responses]

    def preview(self, schedule: Any, base_values: Union[None, float, Sequence[float]] = None, start_step: int = 0,
                count: int = 1, hyperparameter: str = "") -> list[list[float]]:
        """Evaluates a schedule that is not stored: values[group][i] is the value for step start_step + i.

        schedule: a Schedule message, a dict in its JSON mapping or a JSON string. base_values: one per group
        (a number for one group); None means one group with base value 1. hyperparameter: the one the schedule is
        for ("" means "lr"; `cyclic` and `one_cycle` give the momentum curve for "momentum" and "beta1").
        """
        if isinstance(base_values, (int, float)):
            base_values = [base_values]
        request = scheduler_service_pb2.PreviewRequest(
            schedule=_parse(schedule, schedule_pb2.Schedule, "schedule"),
            base_values=[float(b) for b in (base_values or ())], start_step=start_step, count=count,
            hyperparameter=hyperparameter)
        return [list(s.values) for s in self._call("Preview", request).series]
