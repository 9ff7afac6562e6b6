"""The dashboard's body (`dashboard_body`): the alarms' state, then one row of graphs per stage; pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from components.observability.stages import MonitoredStage
from handlers.contract import METRICS_NAMESPACE, RECORD_METRIC_NAMES, STAGE_DIMENSION, STAGE_METRIC_NAMES

# The EMF counts of handlers/metrics.py that the dashboard charts per stage (dimension Stage), each under
# the name its stage reports it (records for ingestion and processing, groups for analytics).
CHARTED_COUNTS = ("records_valid", "records_quarantined")
RECORD_METRICS = tuple(RECORD_METRIC_NAMES[count] for count in CHARTED_COUNTS)


def _spaced(metric: str) -> str:
    """`RecordsValid` -> `records valid`: a widget title."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in metric).strip()


def charted_metrics(stage: str) -> tuple[str, ...]:
    """The metrics the dashboard charts for `stage`, as that stage names them."""
    names = STAGE_METRIC_NAMES.get(stage, RECORD_METRIC_NAMES)
    return tuple(names[count] for count in CHARTED_COUNTS)


def _metric(namespace: str, name: str, dimension: str, value: pulumi.Input[str], **options: Any) -> list[Any]:
    return [namespace, name, dimension, value, *([options] if options else [])]


def dashboard_body(
    stages: Sequence[MonitoredStage],
    region: pulumi.Input[str],
    alarm_arns: Sequence[pulumi.Input[str]],
    metrics_namespace: str = METRICS_NAMESPACE,
) -> dict[str, Any]:
    """The dashboard: the alarms' state, then one row of four graphs per stage."""
    width, height = 6, 6

    def graph(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": width,
            "height": height,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": stat,
                "period": 300,
                "metrics": metrics,
            },
        }

    widgets: list[dict[str, Any]] = [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 3,
            "properties": {"title": "Alarms (what to do: README.md, Operating)", "alarms": list(alarm_arns)},
        }
    ]
    for row, stage in enumerate(stages):
        y = 3 + row * height
        fn, queue, name = stage.function_name, stage.failure_queue_name, stage.stage
        widgets += [
            graph(
                f"{name}: invocations and errors",
                [
                    _metric("AWS/Lambda", "Invocations", "FunctionName", fn),
                    _metric("AWS/Lambda", "Errors", "FunctionName", fn),
                    _metric("AWS/Lambda", "Throttles", "FunctionName", fn),
                ],
                0,
                y,
            ),
            graph(
                f"{name}: duration (ms)",
                [
                    _metric("AWS/Lambda", "Duration", "FunctionName", fn, stat="p50", label="p50"),
                    _metric("AWS/Lambda", "Duration", "FunctionName", fn, stat="p99", label="p99"),
                ],
                width,
                y,
                stat="p50",
            ),
            graph(
                f"{name}: {' and '.join(_spaced(metric) for metric in charted_metrics(name))}",
                [
                    _metric(metrics_namespace, metric, STAGE_DIMENSION, name)
                    for metric in charted_metrics(name)
                ],
                2 * width,
                y,
            ),
            graph(
                f"{name}: failure queue",
                [
                    _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue),
                    _metric("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue, yAxis="right"),
                ],
                3 * width,
                y,
                stat="Maximum",
            ),
        ]
    return {"widgets": widgets}
