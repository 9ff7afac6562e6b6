"""Conservation counts and the one-line-per-invocation log that is also a CloudWatch EMF document.

The embedded metric format is a JSON object with an ``_aws`` member; CloudWatch Logs extracts the
metrics from it, so no PutMetricData call (and no extra client or permission) is needed. Written by
hand rather than with aws-lambda-powertools' ``Metrics``: the format is a dozen lines, and importing
powertools' metrics module pulls in its logger, tracer-free but still several modules (cold start and
layer size: docs/benchmarks.md, "Figures behind the code") for what one ``json.dumps`` does here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from handlers import deadline
from handlers.contract import (
    LAMBDA_MEMORY_VARIABLE,
    OVER_BUDGET_METRIC,
    RECORD_METRIC_NAMES,
    STAGE_DIMENSION,
    STAGE_METRIC_NAMES,
)
from handlers.errors import DeadlineError
from handlers.events import ObjectRef, object_refs

METRIC_NAMES = RECORD_METRIC_NAMES  # the record stages' names; analytics names groups (contract)


def metric_names(stage: str) -> dict[str, str]:
    """``Counts`` field → the EMF metric ``stage`` reports it as (``handlers.contract``)."""
    return STAGE_METRIC_NAMES.get(stage, RECORD_METRIC_NAMES)


@dataclass(frozen=True)
class Counts:
    """Conservation counts: records_read == records_valid + records_quarantined (+ blank_lines apart)."""

    records_read: int = 0  # lines, array elements, or 1 for an unreadable object
    records_valid: int = 0  # units written onward (ingestion: records; processing: aggregated)
    records_quarantined: int = 0  # kept aside with a reason (quarantine / rejected)
    blank_lines: int = 0  # empty or whitespace-only lines, counted apart and not written anywhere
    objects_written: int = 0  # S3 objects this invocation wrote

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)))

    @property
    def conserved(self) -> bool:
        return self.records_read == self.records_valid + self.records_quarantined + self.blank_lines

    def as_metadata(self) -> dict[str, str]:
        """S3 user metadata (ASCII header values) carrying the counts on every output object."""
        return {
            self.metadata_name(name): str(value)
            for name, value in asdict(self).items()
            if name != "objects_written"
        }

    @staticmethod
    def metadata_name(field: str) -> str:
        """The S3 user metadata name that carries count ``field`` (``records-quarantined``)."""
        if field not in Counts.__dataclass_fields__:
            raise ValueError(f"no count named {field!r}")
        return field.replace("_", "-")


def emf_document(
    namespace: str, stage: str, counts: Counts, extra: Mapping[str, Any], over_budget: int = 0
) -> dict[str, Any]:
    """The EMF document for one invocation; ``extra`` adds searchable, non-metric fields.

    ``over_budget`` (``ObjectsOverBudget``) is 1 when the invocation gave up on an object it could not
    finish in time (``handlers.deadline``), and 0 otherwise, so that its alarm sees a healthy stage too.
    """
    names = metric_names(stage)
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[STAGE_DIMENSION]],
                    "Metrics": [
                        {"Name": metric, "Unit": "Count"} for metric in (*names.values(), OVER_BUDGET_METRIC)
                    ],
                }
            ],
        },
        STAGE_DIMENSION: stage,
    }
    counts_by_name = asdict(counts)
    for field, metric in names.items():
        document[metric] = counts_by_name[field]
    document[OVER_BUDGET_METRIC] = over_budget
    document.update(extra)
    return document


def log_invocation(
    namespace: str,
    stage: str,
    counts: Counts,
    extra: Mapping[str, Any],
    stream: TextIO | None = None,
    over_budget: int = 0,
) -> None:
    """Print the invocation's single log line (Lambda sends stdout to CloudWatch Logs)."""
    document = emf_document(namespace, stage, counts, extra, over_budget)
    print(json.dumps(document, separators=(",", ":"), default=str), file=stream or sys.stdout, flush=True)


def memory_mb(environ: Mapping[str, str]) -> int | None:
    """The function's memory as Lambda sets it (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``); None if unset or not a
    number. Read on each invocation, not once: the local run calls every stage in one process, each with
    its own memory."""
    try:
        return int(environ[LAMBDA_MEMORY_VARIABLE])
    except (KeyError, ValueError):
        return None


def invocation_budget(stage: str, context: Any) -> deadline.Budget | None:
    """The time this invocation has for its objects, from its Lambda context; None (no guard) without one."""
    return deadline.Budget.of_context(stage, memory_mb(os.environ), context)


def handle_objects(
    namespace: str,
    stage: str,
    event: Mapping[str, Any],
    context: Any,
    process: Callable[[ObjectRef], tuple[Counts, Mapping[str, Any]]],
) -> dict[str, Any]:
    """Every stage's handler body: ``process`` each S3 object of the event, then log one line with the totals.

    ``process`` returns the object's counts and what to say about it (the keys it wrote, ...). An error
    propagates before the line is logged, so Lambda retries the whole event. An object the stage cannot
    finish before its timeout (``handlers.deadline``: checked before it is read, and while it is read) is
    the exception: the line is logged with the error's reason and ``ObjectsOverBudget`` 1, then the error
    propagates.
    """
    budget = invocation_budget(stage, context)
    total = Counts()
    objects = []
    for ref in object_refs(event):
        try:
            with deadline.guarding(budget):
                deadline.check_fits(budget, ref.size, deadline.planning_rate(stage, ref.key))
                counts, details = process(ref)
        except DeadlineError as error:
            failed = {
                "bucket": ref.bucket,
                "key": ref.key,
                "error": error.reason,
                "size": error.size,
                "predictedSeconds": round(error.predicted_seconds, 1),
                "remainingSeconds": round(error.remaining_seconds, 1),
                "message": str(error),
            }
            extra = {"requestId": getattr(context, "aws_request_id", None), "objects": [*objects, failed]}
            log_invocation(namespace, stage, total, extra, over_budget=1)
            raise
        total += counts
        objects.append({"bucket": ref.bucket, "key": ref.key, **details})
    log_invocation(
        namespace, stage, total, {"requestId": getattr(context, "aws_request_id", None), "objects": objects}
    )
    return {"objects": objects, "counts": total.__dict__}
