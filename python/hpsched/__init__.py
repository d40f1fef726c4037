"""Python client of hpsched, the service that owns the hyperparameter schedules of training jobs.

    from hpsched import Client, scale
    client = Client("localhost:50051")
    client.create_job("demo", {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": 10, "gamma": 0.5}}}})
    client.get_values("demo", step=0, count=30)[("lr", 0)]
    client.update_job("demo", scale("lr", 0.5, from_step=100))      # live change: halve the lr from step 100 on
    for event in client.watch_job("demo"): ...                      # SNAPSHOT, UPDATED, PLATEAU_REDUCED, DELETED

`hpsched.torch.RemoteScheduler` (imported on demand, it needs torch) drives a PyTorch optimizer from a job;
`hpsched.torch.spec_from_scheduler(scheduler)` turns a PyTorch scheduler into a job spec. An invalid spec raises
`SpecError` (an HpschedError and a ValueError) before anything is sent.
The generated gRPC stubs live in `hpsched.v1` (built by CMake into build/python/hpsched/v1).
"""
from hpsched.client import (PENDING_POLICIES, Client, HpschedError, MetricReports, MetricSeries, Values, job_name,
                            served_through, watchers)
from hpsched.spec import SpecError
from hpsched.updates import pin, reschedule, scale
from hpsched.watch import DELETED, PLATEAU_REDUCED, SNAPSHOT, UPDATED, JobEvent, JobWatch

__all__ = ["Client", "HpschedError", "SpecError", "Values", "MetricReports", "MetricSeries", "job_name",
           "served_through", "watchers", "PENDING_POLICIES", "scale", "pin", "reschedule", "JobEvent", "JobWatch",
           "SNAPSHOT", "UPDATED", "PLATEAU_REDUCED", "DELETED"]
__version__ = "0.3.0"
