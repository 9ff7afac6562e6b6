"""The six alarms of a stage, as plain data (`alarm_specs`) that the tests read without the Pulumi runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.observability.stages import MonitoredStage
from handlers.contract import METRICS_NAMESPACE, OVER_BUDGET_METRIC, OVER_BUDGET_REASON, STAGE_DIMENSION

DEFAULT_OLDEST_FAILURE_AGE_SECONDS = 3600
RUNBOOK = "README.md"


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm, as plain data."""

    key: str
    """Short name: errors, throttles, delivery-failures, failures-visible, failures-age, over-budget."""

    namespace: str
    """The metric's namespace."""

    metric_name: str
    """The metric."""

    dimensions: Mapping[str, pulumi.Input[str]]
    """The metric's dimensions."""

    statistic: str
    """Sum or Maximum."""

    threshold: float
    """The alarm fires when the statistic is greater than this."""

    period_seconds: int
    """One datapoint per period."""

    description: str
    """What it means; the action is in the runbook."""

    evaluation_periods: int = 1
    """How many recent periods the alarm looks at."""

    datapoints_to_alarm: int = 1
    """How many of them must breach: equal to evaluation_periods for a condition that must last."""


# A stage capped by reserved concurrency is throttled by design during a burst: its events are asynchronous
# and Lambda retries a throttled one for up to maxEventAgeSeconds, so nothing is lost. Its throttles alarm
# fires only when throttling lasts this many consecutive minutes (the cap does not keep up).
SUSTAINED_THROTTLE_MINUTES = 15


def alarm_specs(
    stage: MonitoredStage, oldest_failure_age_seconds: int, metrics_namespace: str = METRICS_NAMESPACE
) -> list[AlarmSpec]:
    """The six alarms of one stage."""
    function = {"FunctionName": stage.function_name}
    queue = {"QueueName": stage.failure_queue_name}
    where = f"{stage.stage} stage"
    return [
        AlarmSpec(
            "errors",
            "AWS/Lambda",
            "Errors",
            function,
            "Sum",
            0,
            60,
            f"The {where} function raised. Lambda retries; see {RUNBOOK}#errors.",
        ),
        _throttles_alarm(stage, function, where),
        AlarmSpec(
            "delivery-failures",
            "AWS/Lambda",
            "DestinationDeliveryFailures",
            function,
            "Sum",
            0,
            60,
            # The only trace of an event that exhausted its retries and then could not be queued (the
            # queue's KMS key disabled, say): no failure-queue alarm can see it.
            f"Lambda could not put a failed event of the {where} into its failure queue: the event is "
            f"lost unless the cause is fixed now. See {RUNBOOK}#delivery-failures.",
        ),
        AlarmSpec(
            "failures-visible",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            queue,
            "Maximum",
            0,
            300,
            f"An event of the {where} exhausted its retries and waits in the failure queue. "
            f"Fix the cause, then redrive: {RUNBOOK}#redrive.",
        ),
        AlarmSpec(
            "failures-age",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            queue,
            "Maximum",
            oldest_failure_age_seconds,
            300,
            f"A failed event of the {where} has waited over {oldest_failure_age_seconds} s; the queue "
            f"drops it after 14 days. See {RUNBOOK}#failure-queue-age.",
        ),
        AlarmSpec(
            "over-budget",
            metrics_namespace,
            OVER_BUDGET_METRIC,
            {STAGE_DIMENSION: stage.stage},
            "Sum",
            0,
            60,
            # Without it the same object would show only as errors, and after the retries in the queue.
            f"The {where} gave up on an object it cannot finish before its timeout at its memory's CPU "
            f"share ({OVER_BUDGET_REASON}); after the retries the event waits in the failure queue. Raise "
            f"the stage's memoryMb or timeoutSeconds, then redrive: {RUNBOOK}#objects-over-budget.",
        ),
    ]


def _throttles_alarm(stage: MonitoredStage, function: Mapping[str, Any], where: str) -> AlarmSpec:
    """Uncapped, a throttle means the account's unreserved pool ran dry (every function in the account
    suffers): any throttle alarms. Capped, bursts are throttled by design: only sustained throttling does."""
    if stage.reserved_concurrency is None:
        minutes = 1
        description = (
            f"Lambda refused to run the {where} function: the account's unreserved concurrency is used up. "
            f"See {RUNBOOK}#throttles."
        )
    else:
        minutes = SUSTAINED_THROTTLE_MINUTES
        description = (
            f"The {where} function, capped at {stage.reserved_concurrency} concurrent executions, was "
            f"throttled in each of the last {minutes} minutes: the cap does not keep up, and events wait "
            f"in Lambda's retries until maxEventAgeSeconds, then go to the failure queue. "
            f"See {RUNBOOK}#throttles."
        )
    return AlarmSpec(
        "throttles",
        "AWS/Lambda",
        "Throttles",
        function,
        "Sum",
        0,
        60,
        description,
        evaluation_periods=minutes,
        datapoints_to_alarm=minutes,
    )
