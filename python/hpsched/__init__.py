"""Python client of hpsched, the service that owns the hyperparameter schedules of training jobs.

    from hpsched import Client
    client = Client("localhost:50051")
    client.create_job("demo", {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": 10, "gamma": 0.5}}}})
    client.get_values("demo", step=0, count=30)[("lr", 0)]

`hpsched.torch.RemoteScheduler` (imported on demand, it needs torch) drives a PyTorch optimizer from a job.
The generated gRPC stubs live in `hpsched.v1` (built by CMake into build/python/hpsched/v1).
"""
from hpsched.client import Client, HpschedError, Values, job_name

__all__ = ["Client", "HpschedError", "Values", "job_name"]
__version__ = "0.1.0"
