"""The handlers' error hierarchy.

Bad *data* never raises: it becomes a quarantine entry (ingestion) or a ``rejected`` entry (processing).
What raises is a problem with the function itself (configuration, an unexpected event) or a transient
fault, so that Lambda retries and the stage's failure queue keeps the event after the last retry.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the handlers raise on purpose."""


class ConfigError(PipelineError):
    """The function's environment is missing or invalid; raised at cold start, before any I/O."""


class EventError(PipelineError):
    """The Lambda event is not an S3 notification this stage can act on."""


class UnreadableObjectError(PipelineError):
    """An input object cannot be read at all (not gzip, truncated, not UTF-8, empty, unsupported suffix).

    ``reason`` is the machine-readable code written to the quarantine entry.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class LoadRejectedError(PipelineError):
    """An aggregates object the database cannot take as it is (an origin it cannot place, a group that
    counts nothing); nothing was loaded, and analytics reports it as rejected rather than failing every
    retry."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TransientError(PipelineError):
    """A fault that a retry may cure (database unreachable); raised so that Lambda retries."""


class DatabaseUnavailableError(TransientError):
    """The analytics database could not be reached or the transaction failed; nothing was loaded."""


class DeadlineError(PipelineError):
    """A stage cannot finish an object before its timeout at its memory's CPU share (``handlers.deadline``);
    raised early instead of running into the timeout on every attempt. ``reason`` is
    ``handlers.contract.OVER_BUDGET_REASON``; the event ends in the failure queue after Lambda's retries,
    to be redriven once the stage has more memory or time."""

    def __init__(
        self, reason: str, detail: str, *, size: int, predicted_seconds: float, remaining_seconds: float
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.size = size
        self.predicted_seconds = predicted_seconds
        self.remaining_seconds = remaining_seconds
