"""hpsched.Client: typed calls to hpsched.v1.SchedulerService.

Every call has a deadline (`timeout` seconds, retries included) and is retried with exponential backoff and full
jitter while the server answers UNAVAILABLE or CANCELLED, up to `max_attempts` attempts. CANCELLED counts because the
client never cancels a call of its own (only close() and JobWatch.cancel() do, and those are not retried): it is a
server ending the call, e.g. a replica stopping past its shutdown grace, and every call is safe to repeat. CreateJob
and UpdateJob always carry a request_id (generated when the caller gives none), so a retried create or update is never
applied twice; a retried ReportMetrics is a no-op on the server; a retried DeleteJob whose first attempt was applied
answers NOT_FOUND. The target may name several replicas (a comma-separated list, or dns:///name:port with an address
record per replica): calls go round-robin over them, and gRPC itself retries UNAVAILABLE on the next replica for the
calls that are safe to repeat (see service_config). This is the C++ client's policy (client/client.cc,
client/channel.cc). Errors are raised as HpschedError, which carries the gRPC status code and the server's message.
A Client is thread-safe: one channel, shared by every thread.
"""
from __future__ import annotations

import ipaddress
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Optional, Union

import grpc
from google.protobuf.message import Message

from hpsched.errors import HpschedError
from hpsched.spec import SpecError, to_message, unknown_name
from hpsched.updates import build_updates
from hpsched.v1 import job_pb2, schedule_pb2, scheduler_service_pb2, scheduler_service_pb2_grpc
from hpsched.watch import JobWatch

__all__ = ["Client", "HpschedError", "SpecError", "Values", "MetricReports", "MetricSeries", "job_name",
           "served_through", "watchers", "PENDING_POLICIES", "channel_target", "service_config", "RETRIED_METHODS",
           "RETRIED_CODES"]

# GetValuesRequest.pending_policy by name: what GetValues does with values that wait for metric reports.
PENDING_POLICIES = {
    "wait": scheduler_service_pb2.PENDING_POLICY_UNSPECIFIED,
    "wait_then_provisional": scheduler_service_pb2.PENDING_POLICY_WAIT_THEN_PROVISIONAL,
    "provisional_now": scheduler_service_pb2.PENDING_POLICY_PROVISIONAL_NOW,
}

DEFAULT_TARGET = "localhost:50051"

# The methods gRPC retries on UNAVAILABLE by itself, on the next replica: the reads, and the mutations safe to send
# twice (CreateJob and UpdateJob carry a request_id; a repeated metric report is recognized and changes nothing).
# Not DeleteJob (no request_id: a repeat after a lost answer says NOT_FOUND) nor WatchJob (a stream: reopen it).
RETRIED_METHODS = ("GetJob", "ListJobs", "GetValues", "BatchGetValues", "Preview", "CreateJob", "UpdateJob",
                   "ReportMetrics")

# The codes the client's own backoff loop retries, for every method (as the C++ client's Client::Call): UNAVAILABLE
# (no server, or one going away) and CANCELLED (a server ended the call: the client cancels none of its own, except on
# close() and JobWatch.cancel(), which are not retried). gRPC's retry in the service config stays on UNAVAILABLE.
RETRIED_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def channel_target(addresses: str) -> str:
    """The gRPC target for `addresses`: a target URI (dns:///name:port, ipv4:..., unix:...) or one HOST:PORT as it
    is; a comma-separated list of HOST:PORT as one ipv4: (or ipv6:) target of every address, names resolved now.
    Raises ValueError naming the entry for an empty entry, a missing port or mixed address families."""
    target = addresses.strip()
    if not target:
        raise ValueError("target: must not be empty")
    if ":/" in target or target.startswith(("ipv4:", "ipv6:", "unix:")):
        return target
    entries = [e.strip() for e in target.split(",")]
    if len(entries) == 1:
        return target
    v4, v6 = [], []
    all_v4 = all_v6 = True
    for entry in entries:
        if not entry:
            raise ValueError(f'target: "{target}" has an empty address in its list')
        if entry.startswith("["):
            host, _, port = entry[1:].partition("]:")
        else:
            host, sep, port = entry.rpartition(":")
            if not sep:
                raise ValueError(f'target: "{entry}" must be HOST:PORT (a list needs every port)')
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f'target: "{entry}" must be HOST:PORT with a port in 1..65535')
        try:
            found = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        except socket.gaierror as e:
            raise ValueError(f'target: cannot resolve "{host}": {e}') from None
        ips4 = sorted(a for a in found if ipaddress.ip_address(a.split("%")[0]).version == 4)
        ips6 = sorted(a for a in found if ipaddress.ip_address(a.split("%")[0]).version == 6)
        all_v4, all_v6 = all_v4 and bool(ips4), all_v6 and bool(ips6)
        v4 += [f"{a}:{port}" for a in ips4]
        v6 += [f"[{a}]:{port}" for a in ips6]
    if all_v4:
        return "ipv4:" + ",".join(v4)
    if all_v6:
        return "ipv6:" + ",".join(v6)
    raise ValueError(f'target: "{target}" mixes IPv4-only and IPv6-only addresses; list one family (or use dns:///)')


def service_config(max_attempts: int = 5, initial_backoff: float = 0.1, max_backoff: float = 2.0) -> str:
    """The channel's gRPC service config (JSON): round_robin over every address, and with max_attempts > 1 gRPC's
    retry on UNAVAILABLE (up to 3 tries, each on the next replica) for RETRIED_METHODS. The client's own backoff loop
    (max_attempts) covers longer outages."""
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if max_attempts > 1:
        config["methodConfig"] = [{
            "name": [{"service": "hpsched.v1.SchedulerService", "method": m} for m in RETRIED_METHODS],
            "retryPolicy": {"maxAttempts": min(max_attempts, 3),
                            "initialBackoff": f"{max(initial_backoff / 2, 0.001):.3f}s",
                            "maxBackoff": f"{max(max_backoff, 0.001):.3f}s", "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}]
    return json.dumps(config, separators=(",", ":"))


class Values(dict):
    """GetValues' answer: {(hyperparameter, group): [value for step start_step + i, ...]}.

    Also carries `job` (the resource name), `version` (the job's version the values come from), `start_step`,
    `count` (the number of steps of every series) and `provisional_from`: None when every value is final, else the
    first step whose values are provisional (they wait for metric reports and may change; see pending_policy).
    """

    def __init__(self, job: str, version: int, start_step: int, series: Iterable[tuple[tuple[str, int], list]],
                 provisional_from: Optional[int] = None):
        super().__init__(series)
        self.job = job
        self.version = version
        self.start_step = start_step
        self.count = len(next(iter(self.values()))) if self else 0
        self.provisional_from = provisional_from

    @classmethod
    def from_response(cls, response: scheduler_service_pb2.GetValuesResponse) -> "Values":
        return cls(response.job, response.version, response.start_step,
                   (((s.hyperparameter, s.group), list(s.values)) for s in response.series),
                   response.provisional_from if response.HasField("provisional_from") else None)

    @property
    def final_count(self) -> int:
        """How many steps from start_step on are final (all of them when provisional_from is None)."""
        if self.provisional_from is None:
            return self.count
        return max(0, min(self.count, self.provisional_from - self.start_step))

    def head(self, count: int) -> "Values":
        """The first `count` steps (at most self.count) of every series, as Values."""
        count = max(0, min(count, self.count))
        provisional = self.provisional_from
        if provisional is not None and provisional >= self.start_step + count:
            provisional = None
        out = Values(self.job, self.version, self.start_step, ((k, v[:count]) for k, v in self.items()), provisional)
        out.count = count
        return out

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
        provisional = f", provisional_from={self.provisional_from}" if self.provisional_from is not None else ""
        return (f"Values(job={self.job!r}, version={self.version}, start_step={self.start_step}, "
                f"count={self.count}{provisional}, {dict.__repr__(self)})")


class MetricSeries(NamedTuple):
    """The reports of one metric: steps[i] is the step after which values[i] was measured (increasing); truncated
    when the range held more than max_reports reports (ask again from the step after the last one)."""

    steps: list[int]
    values: list[float]
    truncated: bool


class MetricReports(dict):
    """GetMetricReports' answer: {metric: MetricSeries}, one entry per metric the job declares, in the order of
    Job.metrics (empty lists when none was reported in the range). Also carries `job` (the resource name) and
    `response` (the GetMetricReportsResponse).
    """

    def __init__(self, response: scheduler_service_pb2.GetMetricReportsResponse):
        super().__init__((m.metric, MetricSeries(list(m.steps), list(m.values), m.truncated))
                         for m in response.metrics)
        self.job = response.job
        self.response = response

    def __repr__(self) -> str:
        return f"MetricReports(job={self.job!r}, {dict.__repr__(self)})"


def served_through(job: job_pb2.Job) -> Optional[int]:
    """Job.served_through: the highest step GetValues has served for the job (the trainer's progress, and the step at
    or below which update_job needs allow_rewrite); None when no step has been served. Set in the jobs that
    create_job, get_job, list_jobs and update_job return (not in watch events)."""
    return job.served_through if job.HasField("served_through") else None


def watchers(job: job_pb2.Job) -> int:
    """Job.watchers: the WatchJob streams (dashboard pages included) open on the job at the server that answered, as
    list_jobs reports them; 0 when none. Only list_jobs sets it: a job from get_job, create_job or update_job always
    says 0 (a watcher's get_job equals its stream's view of the job)."""
    return job.watchers if job.HasField("watchers") else 0


def _pem(value: Union[None, str, bytes]) -> Optional[bytes]:
    return value.encode() if isinstance(value, str) else value


def job_name(job: Any) -> str:
    """"jobs/{job_id}" for a bare id; a resource name, or a Job message's name, as it is."""
    if isinstance(job, job_pb2.Job):
        job = job.name
    if not isinstance(job, str) or not job:
        raise ValueError(f"a job id or name is required, got {job!r}")
    return job if job.startswith("jobs/") else f"jobs/{job}"


def _parse(value: Any, message_type: type, what: str) -> Message:
    """A message from a message of that type, a dict in the protobuf JSON mapping, or a JSON string (see
    hpsched.spec: plain numbers for per-group lists, PyTorch's spellings, SpecError naming the field)."""
    return to_message(value, message_type, what)


def _hyperparameter(name: Optional[str], spec: Any, where: str) -> job_pb2.Hyperparameter:
    """A Hyperparameter from a message or a dict {"name"?, "base_values": [..] or a number, "schedule": {...}}."""
    if not isinstance(spec, (job_pb2.Hyperparameter, Mapping)):
        raise SpecError(where, f"expected a Hyperparameter or a dict {{\"base_values\", \"schedule\"}}, "
                               f"got {type(spec).__name__}")
    hp = to_message(spec, job_pb2.Hyperparameter, where)
    if name is not None:
        hp.name = name
    return hp


def _metric_specs(metrics: Any) -> list[job_pb2.MetricSpec]:
    """MetricSpecs from {name: every_steps}, {name: {"every_steps": K} or {"first_step": F}}, or a list of
    MetricSpec messages / dicts {"name", "every_steps" or "first_step"}."""
    out = []
    if isinstance(metrics, Mapping):
        for name, cadence in metrics.items():
            where = f"metrics[{name!r}]"
            if isinstance(cadence, int) and not isinstance(cadence, bool):
                out.append(job_pb2.MetricSpec(name=name, every_steps=cadence))
            elif isinstance(cadence, Mapping):
                out.append(_parse(dict(cadence, name=name), job_pb2.MetricSpec, where))
            else:
                raise SpecError(where, "expected every_steps (an int) or a dict with every_steps or first_step, "
                                       f"got {type(cadence).__name__}")
    elif isinstance(metrics, Iterable) and not isinstance(metrics, (str, bytes)):
        out.extend(_parse(m, job_pb2.MetricSpec, f"metrics[{i}]") for i, m in enumerate(metrics))
    else:
        raise SpecError("metrics", "expected {name: every_steps} or a list of MetricSpecs, "
                                   f"got {type(metrics).__name__}")
    return out


def _pending_policy(policy: Union[None, str, int]) -> int:
    """The PendingPolicy value of a name in PENDING_POLICIES, an enum value, or None (wait)."""
    if policy is None:
        return scheduler_service_pb2.PENDING_POLICY_UNSPECIFIED
    if isinstance(policy, str):
        key = policy.lower()
        if key in PENDING_POLICIES:
            return PENDING_POLICIES[key]
        try:
            return scheduler_service_pb2.PendingPolicy.Value(policy.upper())
        except ValueError:
            raise SpecError("pending_policy", unknown_name(policy, PENDING_POLICIES, "policy")) from None
    if isinstance(policy, int) and policy in scheduler_service_pb2.PendingPolicy.values():
        return policy
    raise SpecError("pending_policy", unknown_name(policy, PENDING_POLICIES, "policy"))


def _build_job(hyperparameters: Any, job: Any, labels: Optional[Mapping[str, str]],
               metrics: Any = None) -> job_pb2.Job:
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
        raise SpecError("hyperparameters", "expected {name: spec}, a list of specs or a Job, "
                                           f"got {type(hyperparameters).__name__}")
    if labels:
        out.labels.update(labels)
    if metrics is not None:
        out.metrics.extend(_metric_specs(metrics))
    return out


class Client:
    """A client of hpsched.v1.SchedulerService.

    target: where the server or its replicas are: "localhost:50051", a comma-separated list of HOST:PORT, or
    "dns:///name:port" (see channel_target); calls go round-robin. timeout: deadline of each call in seconds, retries
    included.
    max_attempts: attempts per call while the server answers UNAVAILABLE or CANCELLED (1 = no retry).
    initial_backoff, max_backoff: the backoff before the second attempt, doubling up to max_backoff; each sleep is a
    uniformly random fraction of it (full jitter) and never runs past the deadline. channel: an existing grpc.Channel
    to use instead of opening one (the client does not close it). channel_options: gRPC channel arguments (they
    override the service config).
    token: a bearer token (a line of the server's --auth_token_file), sent as "authorization: Bearer <token>" with
    every call, also on a given channel. tls: speak TLS, verifying the server with tls_ca (PEM, str or bytes; None:
    the system's roots); tls_cert and tls_key (PEM) present a client certificate, for a server with --tls_client_ca.
    Giving any tls_* turns TLS on. As the C++ client's ClientOptions (bearer_token, use_tls, tls_*_pem).
    """

    def __init__(self, target: str = DEFAULT_TARGET, timeout: float = 10.0, max_attempts: int = 5, *,
                 initial_backoff: float = 0.1, max_backoff: float = 2.0, channel: Optional[grpc.Channel] = None,
                 channel_options: Sequence[tuple[str, Any]] = (), token: Optional[str] = None, tls: bool = False,
                 tls_ca: Union[None, str, bytes] = None, tls_cert: Union[None, str, bytes] = None,
                 tls_key: Union[None, str, bytes] = None):
        if timeout <= 0:
            raise ValueError(f"timeout: must be > 0, got {timeout}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts}")
        if initial_backoff < 0 or max_backoff < 0:
            raise ValueError("initial_backoff and max_backoff must be >= 0")
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key: give both (the client certificate and its key) or neither")
        use_tls = bool(tls) or any(pem is not None for pem in (tls_ca, tls_cert, tls_key))
        if channel is not None and use_tls:
            raise ValueError("tls: a given channel has its own credentials")
        if token is not None:
            token = token.strip()
            if not token or any(c.isspace() for c in token):
                raise ValueError("token: must be one non-empty word (a token of the server's --auth_token_file)")
        # Per call, not as call credentials: gRPC sends those on TLS channels only, and loopback servers may be
        # plaintext with tokens on.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.target = target
        self.timeout = float(timeout)
        self.max_attempts = int(max_attempts)
        self.initial_backoff = float(initial_backoff)
        self.max_backoff = float(max_backoff)
        self._owns_channel = channel is None
        self._closed = False  # set by close(): a CANCELLED call is then ours, not the server's, and is not retried
        if channel is None:
            resolved = channel_target(target)
            options: list[tuple[str, Any]] = [
                ("grpc.service_config", service_config(self.max_attempts, self.initial_backoff, self.max_backoff)),
                ("grpc.enable_retries", 1)]
            if resolved != target.strip() and not target.strip().startswith("ipv"):
                options.append(("grpc.default_authority", target.split(",")[0].strip()))
            if use_tls:
                credentials = grpc.ssl_channel_credentials(root_certificates=_pem(tls_ca), private_key=_pem(tls_key),
                                                           certificate_chain=_pem(tls_cert))
                channel = grpc.secure_channel(resolved, credentials, options=options + list(channel_options))
            else:
                channel = grpc.insecure_channel(resolved, options=options + list(channel_options))
        self._channel = channel
        self._stub = scheduler_service_pb2_grpc.SchedulerServiceStub(self._channel)
        self._random = random.Random()
        self._random_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the channel (if the client opened it). Calls in flight end with CANCELLED, not retried."""
        self._closed = True
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

    def _call(self, method: str, request: Message, timeout: Optional[float] = None,
              invoke: Optional[Callable[[float], Any]] = None,
              cancelled_by_caller: Optional[Callable[[], bool]] = None) -> Any:
        """Calls `method` with retries on RETRIED_CODES within `timeout` (default self.timeout); invoke(remaining
        seconds) makes one attempt (default: the unary call). A CANCELLED is not retried after close(), nor when
        cancelled_by_caller() says the caller cancelled the call itself (JobWatch.cancel)."""
        rpc = getattr(self._stub, method)
        if invoke is None:
            def invoke(remaining: float) -> Any:
                return rpc(request, timeout=remaining, metadata=self._metadata)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        backoff = self.initial_backoff
        attempt = 0
        error: Optional[HpschedError] = None
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HpschedError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the call was sent",
                                   method, attempt - 1 or 1)
            try:
                return invoke(remaining)
            except ValueError:
                # grpc: "Cannot invoke RPC on closed channel!": closed (by a caller owning the channel) while the
                # previous attempt ended; that attempt's error is the answer.
                if error is not None:
                    raise error from None
                raise
            except grpc.RpcError as e:
                error = HpschedError.from_rpc_error(e, method, attempt)
                ours = error.code == grpc.StatusCode.CANCELLED and (
                    self._closed or (cancelled_by_caller is not None and cancelled_by_caller()))
                if error.code not in RETRIED_CODES or ours or attempt >= self.max_attempts:
                    raise error from None
                sleep = min(self._jitter(backoff), deadline - time.monotonic())
                if sleep <= 0:
                    raise error from None
                time.sleep(sleep)
                backoff = min(backoff * 2, self.max_backoff)

    def create_job(self, job_id: str, hyperparameters: Any = None, *, job: Any = None,
                   labels: Optional[Mapping[str, str]] = None, metrics: Any = None,
                   request_id: Optional[str] = None) -> job_pb2.Job:
        """Creates the job `job_id` and returns it (idempotent: an identical spec returns the existing job).

        hyperparameters: {name: {"base_values": [...], "schedule": {...}}} (schedules in the protobuf JSON mapping,
        e.g. {"step": {"step_size": 10, "gamma": 0.5}}, or Schedule messages), a list of such dicts with a "name",
        or Hyperparameter messages. Or job: a Job message or a dict in the JSON mapping of Job. labels are added
        to the job's. metrics: the metrics reduce_on_plateau schedules follow (Job.metrics), added to the job's:
        {"val_loss": 500} (a report every 500 steps, at steps 499, 999, ...), {"val_loss": {"first_step": 99}}
        (announced reports, see report_metrics' next_step), or a list of MetricSpec messages or dicts.
        request_id: the idempotency key; one is generated when None, so retries are safe.
        """
        request = scheduler_service_pb2.CreateJobRequest(
            job_id=job_id, job=_build_job(hyperparameters, job, labels, metrics),
            request_id=request_id if request_id else uuid.uuid4().hex)
        return self._call("CreateJob", request)

    def get_job(self, job: str) -> job_pb2.Job:
        """The job named `job` ("jobs/{id}" or a bare id)."""
        return self._call("GetJob", scheduler_service_pb2.GetJobRequest(name=job_name(job)))

    def list_jobs(self, page_size: int = 0, filter: str = "") -> Iterator[job_pb2.Job]:  # noqa: A002 (the field)
        """Every job (or those `filter` matches) in order of their ids, fetched page by page (page_size 0 = the
        server's default, 100). filter: ListJobsRequest.filter, e.g. 'labels.team = "vision" AND id:"exp-*"' (label
        equality, id and id prefix, AND; anything else is INVALID_ARGUMENT naming the position). The jobs carry
        served_through and watchers (see those functions)."""
        token = ""
        while True:
            page = self._call("ListJobs", scheduler_service_pb2.ListJobsRequest(page_size=page_size, page_token=token,
                                                                               filter=filter))
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def delete_job(self, job: str) -> None:
        """Deletes the job named `job`."""
        self._call("DeleteJob", scheduler_service_pb2.DeleteJobRequest(name=job_name(job)))

    @staticmethod
    def _values_request(job: str, step: int, count: int, hyperparameters: Union[None, str, Iterable[str]],
                        pending_policy: Union[None, str, int] = None,
                        peek: bool = False) -> scheduler_service_pb2.GetValuesRequest:
        if isinstance(hyperparameters, str):
            hyperparameters = [hyperparameters]
        return scheduler_service_pb2.GetValuesRequest(job=job_name(job), step=step, count=count,
                                                      hyperparameters=list(hyperparameters or ()),
                                                      pending_policy=_pending_policy(pending_policy), peek=bool(peek))

    def get_values(self, job: str, step: int, count: int = 1, hyperparameters: Union[None, str, Iterable[str]] = None,
                   pending_policy: Union[None, str, int] = None, timeout: Optional[float] = None, *,
                   peek: bool = False) -> Values:
        """The values of the job's hyperparameters (all, or the named ones) for the steps [step, step + count).

        pending_policy, for values that wait for metric reports (reduce_on_plateau): "wait" (None, the default:
        the call waits for the reports, and fails with DEADLINE_EXCEEDED when they do not come within the deadline),
        "wait_then_provisional" (wait, then answer with provisional values) or "provisional_now" (answer at once);
        or a PendingPolicy value. Values.provisional_from says from which step the values are provisional.
        timeout: this call's deadline in seconds (default: the client's).
        peek: read without marking the steps served (dashboards, inspection): the same values a trainer would get
        now, but the read neither raises the job's served_through nor makes a later update_job of these steps need
        allow_rewrite. The default (False) is a trainer's read, which marks what it was served.
        """
        return Values.from_response(self.get_values_response(job, step, count, hyperparameters, pending_policy,
                                                             timeout, peek=peek))

    def get_values_response(self, job: str, step: int, count: int = 1,
                            hyperparameters: Union[None, str, Iterable[str]] = None,
                            pending_policy: Union[None, str, int] = None, timeout: Optional[float] = None, *,
                            peek: bool = False) -> scheduler_service_pb2.GetValuesResponse:
        """Like get_values, but returns the GetValuesResponse message."""
        return self._call("GetValues", self._values_request(job, step, count, hyperparameters, pending_policy, peek),
                          timeout)

    def batch_get_values(self, requests: Iterable[Union[tuple, Mapping[str, Any]]]) -> list[Values]:
        """Many get_values in one call, all-or-nothing. Each request is (job, step[, count[, hyperparameters]])
        or a dict with those keys (and pending_policy, peek)."""
        built = []
        for r in requests:
            args = dict(r) if isinstance(r, Mapping) else dict(zip(("job", "step", "count", "hyperparameters"), r))
            built.append(self._values_request(args["job"], args.get("step", 0), args.get("count", 1),
                                              args.get("hyperparameters"), args.get("pending_policy"),
                                              args.get("peek", False)))
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

    # --- live jobs ---------------------------------------------------------------------------------------------------

    def update_job(self, job: str, updates: Any, *, etag: Optional[str] = None, request_id: Optional[str] = None,
                   allow_rewrite: bool = False) -> job_pb2.Job:
        """Changes hyperparameters of a running job from given steps on, as one new version; returns the job.

        updates: one change or a list of them, each from hpsched.scale / pin / reschedule, e.g.
        `scale("lr", 0.5, from_step=5000)`, a HyperparameterUpdate message, or a dict {"hyperparameter",
        "from_step", "scale" | "pin" | "schedule", "time"?, "anchor"?}. Values of steps before each change's step
        never change. etag: the etag of the version the change is based on (ABORTED if the job changed since).
        request_id: the idempotency key; one is generated when None, so a retried call is applied once.
        allow_rewrite: allow a change at or below a step GetValues has already served (FAILED_PRECONDITION
        otherwise).
        """
        request = scheduler_service_pb2.UpdateJobRequest(
            name=job_name(job), updates=build_updates(updates), etag=etag or "",
            request_id=request_id if request_id else uuid.uuid4().hex, allow_rewrite=bool(allow_rewrite))
        return self._call("UpdateJob", request)

    def report_metrics(self, job: str, step: int, metrics: Mapping[str, float], next_step: Optional[int] = None
                       ) -> scheduler_service_pb2.ReportMetricsResponse:
        """Reports metric values measured after `step` (e.g. the validation loss after the last step of an epoch),
        for the job's reduce_on_plateau schedules.

        metrics: {name: value}, each declared in the job's metrics, finite. next_step: for metrics with announced
        reports (first_step cadence), the step of the next report, or -1 when none follows. The same report again is
        a no-op (the response says duplicate=True), so retries are safe; the same (step, metric) with another value
        raises HpschedError FAILED_PRECONDITION. The response's reduction_steps are the steps at which this report
        made a schedule reduce its value.
        """
        if not isinstance(metrics, Mapping) or not metrics:
            raise SpecError("metrics", f"a non-empty {{name: value}} dict is required, got {metrics!r}")
        request = scheduler_service_pb2.ReportMetricsRequest(
            job=job_name(job), step=step, metrics={str(k): float(v) for k, v in metrics.items()})
        if next_step is not None:
            request.next_step = next_step
        return self._call("ReportMetrics", request)

    def get_metric_reports(self, job: str, start_step: int = 0, end_step: int = 0, max_reports: int = 0
                           ) -> MetricReports:
        """The metric values reported for the job (report_metrics), by metric, in step order: the reports at steps
        in [start_step, end_step) (end_step 0: no end), at most max_reports per metric (0: the server's 10000; at
        most 100000; a MetricSeries says truncated when its metric had more). NOT_FOUND for an unknown job,
        INVALID_ARGUMENT naming the field for a bad range."""
        request = scheduler_service_pb2.GetMetricReportsRequest(job=job_name(job), start_step=start_step,
                                                                end_step=end_step, max_reports=max_reports)
        return MetricReports(self._call("GetMetricReports", request))

    def watch_job(self, job: str, timeout: Optional[float] = None) -> JobWatch:
        """The job's changes as they happen: an iterator of JobEvent, first a SNAPSHOT of the job, then UPDATED,
        PLATEAU_REDUCED and finally DELETED, after which it ends.

        timeout: the stream's deadline in seconds (None: none; iteration then raises DEADLINE_EXCEEDED). The stream
        is opened by the first next(), retrying UNAVAILABLE like every call until the first event. `close()` /
        `cancel()` (from any thread) or a `with` block end it.
        """
        request = scheduler_service_pb2.WatchJobRequest(job=job_name(job))
        deadline = None if timeout is None else time.monotonic() + timeout

        def open_stream(watch: JobWatch) -> tuple[Any, Any]:
            def attempt(remaining: float) -> tuple[Any, Any]:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                call = self._stub.WatchJob(request, timeout=left, metadata=self._metadata)
                watch._register(call)
                return call, next(call)

            # The retries until the first event are bounded by the client's timeout (and the watch's); a CANCELLED
            # after watch.cancel() is the caller's, not retried.
            budget = self.timeout if deadline is None else min(self.timeout, max(0.0, deadline - time.monotonic()))
            return self._call("WatchJob", request, budget, attempt, lambda: watch.cancelled)

        return JobWatch(open_stream)
