"""`MonitoredStage`: what the alarms and the dashboard know of one pipeline stage."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class MonitoredStage:
    """The names an alarm or a widget needs of one pipeline stage."""

    stage: str
    """The stage's name: ingestion, processing or analytics (the EMF `Stage` dimension)."""

    function_name: pulumi.Input[str]
    """The Lambda function's name."""

    failure_queue_name: pulumi.Input[str]
    """The name of its on-failure SQS queue."""

    reserved_concurrency: int | None = None
    """The stage's reserved concurrency (`stages.<stage>.reservedConcurrency`); None: the account's pool."""
