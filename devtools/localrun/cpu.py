"""Lambda's CPU, played on this machine: each invocation's CPU time scaled to its memory's CPU share.

Lambda allocates CPU in proportion to the configured memory, one vCPU's worth at 1,769 MB
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html; the constant is
``handlers.contract.FULL_VCPU_MEMORY_MB``). A function of ``m`` MB below that gets ``m / 1769`` of a vCPU, so
a second of CPU here takes ``1769 / m`` seconds there. Above it a function gets more than one vCPU, which a
single-threaded Python handler cannot use: the factor is 1. This machine's core counts as one vCPU.

The factor goes to the container with each invocation; the bootstrap (``_bootstrap.py``, standard library
only) stops a handler whose scaled CPU time passes the declared timeout, and the context's
``get_remaining_time_in_millis()`` counts the scaled time.
"""

from __future__ import annotations

from handlers.deadline import cpu_share


def cpu_factor(memory_mb: int) -> float:
    """Seconds on Lambda per CPU second here, for a function of ``memory_mb`` (at least 1): the inverse of
    the CPU share the handlers' deadline guard plans with (``handlers.deadline.cpu_share``)."""
    if memory_mb <= 0:
        raise ValueError(f"a function's memory is a positive number of MB, not {memory_mb}")
    return 1 / cpu_share(memory_mb)


def timed_out_message(request_id: str, timeout_seconds: float) -> str:
    """The error message of an invocation Lambda stopped at its timeout (errorType ``Sandbox.Timedout``)."""
    return f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds"
