"""HpschedError: how every failed call of the Python client is raised."""
from __future__ import annotations

import grpc

__all__ = ["HpschedError"]


class HpschedError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the server's (or gRPC's) message.

    `method` is the RPC's name and `attempts` how many attempts were made (more than 1 only after UNAVAILABLE or a
    CANCELLED the server ended the call with, the codes the client retries).
    """

    def __init__(self, code: grpc.StatusCode, message: str, method: str = "", attempts: int = 1):
        self.code = code
        self.message = message
        self.method = method
        self.attempts = attempts
        where = f"{method}: " if method else ""
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"{where}{code.name}: {message}{tries}")

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, method: str, attempts: int = 1) -> "HpschedError":
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
        message = error.details() if callable(getattr(error, "details", None)) else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, message or "", method, attempts)

    @property
    def details(self) -> str:
        """The message, under grpc.RpcError's name for it."""
        return self.message
