"""Client.watch_job's stream: JobEvent (one WatchJobResponse) and JobWatch (the cancellable iterator of them)."""
from __future__ import annotations

import dataclasses
import datetime
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from hpsched.errors import HpschedError
from hpsched.v1 import job_pb2, scheduler_service_pb2

__all__ = ["JobEvent", "JobWatch", "SNAPSHOT", "UPDATED", "PLATEAU_REDUCED", "DELETED"]

# JobEvent.type: the JobEventType names without their prefix.
SNAPSHOT = "SNAPSHOT"  # the job as it was when the watch started; always the first event
UPDATED = "UPDATED"  # UpdateJob changed the job
PLATEAU_REDUCED = "PLATEAU_REDUCED"  # a metric report made a reduce_on_plateau schedule reduce its value
DELETED = "DELETED"  # the job was deleted; the stream ends

_PREFIX = "JOB_EVENT_TYPE_"


@dataclasses.dataclass(frozen=True, repr=False)
class JobEvent:
    """One event of a WatchJob stream.

    type: SNAPSHOT, UPDATED, PLATEAU_REDUCED or DELETED. job: the job after the event (after a delete, only its
    name). effective_step: the first step whose values the event changed (0 for a snapshot and a delete).
    event_time: when the server observed it (UTC). response: the WatchJobResponse itself.
    """

    type: str
    job: job_pb2.Job
    effective_step: int
    event_time: datetime.datetime
    response: scheduler_service_pb2.WatchJobResponse = dataclasses.field(compare=False)

    def __repr__(self) -> str:
        return (f"JobEvent(type={self.type!r}, job={self.job.name!r}, version={self.job.version}, "
                f"effective_step={self.effective_step}, event_time={self.event_time.isoformat()!r})")

    @classmethod
    def from_response(cls, response: scheduler_service_pb2.WatchJobResponse) -> "JobEvent":
        name = scheduler_service_pb2.JobEventType.Name(response.type)
        return cls(type=name[len(_PREFIX):] if name.startswith(_PREFIX) else name, job=response.job,
                   effective_step=response.effective_step,
                   event_time=response.event_time.ToDatetime().replace(tzinfo=datetime.timezone.utc),
                   response=response)


class JobWatch(Iterator[JobEvent]):
    """The events of one WatchJob stream, in order; iteration ends after DELETED or when the server ends the stream.

    `cancel()` (or `close()`, or leaving a `with` block) ends the stream, from any thread: an iteration blocked in
    another thread then ends quietly (StopIteration). Other failures raise HpschedError: NOT_FOUND for an unknown
    job, DEADLINE_EXCEEDED when the watch's timeout passes, UNAVAILABLE when the server goes away. The stream is
    opened lazily by the first `next()`, with the Client's retries (UNAVAILABLE, and CANCELLED unless cancel() was
    called) until the first event.
    """

    def __init__(self, open_stream: Callable[["JobWatch"], tuple[Any, Any]]):
        # open_stream(watch) starts the stream (with retries), registers its grpc call with watch._register, and
        # returns (call, first response).
        self._open_stream = open_stream
        self._lock = threading.Lock()
        self._call: Any = None  # guarded by _lock
        self._cancelled = False  # guarded by _lock
        self._opened = False
        self._done = False

    def _register(self, call: Any) -> None:
        """Called by open_stream with each attempt's call; cancels it at once if the watch was cancelled."""
        with self._lock:
            self._call = call
            cancelled = self._cancelled
        if cancelled:
            call.cancel()

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def cancel(self) -> None:
        """Ends the stream; safe from any thread, and more than once."""
        with self._lock:
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()

    close = cancel

    def __enter__(self) -> "JobWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()

    def __iter__(self) -> "JobWatch":
        return self

    def __next__(self) -> JobEvent:
        if self._done or self.cancelled:
            self._done = True
            raise StopIteration
        try:
            if not self._opened:
                self._opened = True
                _, response = self._open_stream(self)
            else:
                with self._lock:
                    call = self._call
                response = next(call)
        except StopIteration:
            self._done = True
            raise
        except (grpc.RpcError, HpschedError) as e:
            self._done = True
            if self.cancelled:
                raise StopIteration from None
            if isinstance(e, HpschedError):
                raise
            raise HpschedError.from_rpc_error(e, "WatchJob") from None
        event = JobEvent.from_response(response)
        if event.type == DELETED:
            self._done = True  # the server ends the stream after a delete: no need to wait for it
            self.cancel()
        return event
