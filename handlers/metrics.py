"""Conservation counts and the one-line-per-invocation log that is also a CloudWatch EMF document.

The embedded metric format is a JSON object with an ``_aws`` member; CloudWatch Logs extracts the
metrics from it, so no PutMetricData call (and no extra client or permission) is needed. Written by
hand rather than with aws-lambda-powertools' ``Metrics``: the format is a dozen lines, and importing
powertools' metrics module pulls in its logger, tracer-free but still several modules (cold start and
layer size: docs/benchmarks.md, "Figures behind the code") for what one ``json.dumps`` does here.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from handlers.contract import RECORD_METRIC_NAMES, STAGE_DIMENSION, STAGE_METRIC_NAMES
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
            name.replace("_", "-"): str(value)
            for name, value in asdict(self).items()
            if name != "objects_written"
        }


def emf_document(namespace: str, stage: str, counts: Counts, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The EMF document for one invocation; ``extra`` adds searchable, non-metric fields."""
    names = metric_names(stage)
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[STAGE_DIMENSION]],
                    "Metrics": [{"Name": metric, "Unit": "Count"} for metric in names.values()],
                }
            ],
        },
        STAGE_DIMENSION: stage,
    }
    counts_by_name = asdict(counts)
    for field, metric in names.items():
        document[metric] = counts_by_name[field]
    document.update(extra)
    return document


def log_invocation(
    namespace: str, stage: str, counts: Counts, extra: Mapping[str, Any], stream: TextIO | None = None
) -> None:
    """Print the invocation's single log line (Lambda sends stdout to CloudWatch Logs)."""
    line = json.dumps(emf_document(namespace, stage, counts, extra), separators=(",", ":"), default=str)
    print(line, file=stream or sys.stdout, flush=True)


def handle_objects(
    namespace: str,
    stage: str,
    event: Mapping[str, Any],
    context: Any,
    process: Callable[[ObjectRef], tuple[Counts, Mapping[str, Any]]],
) -> dict[str, Any]:
    """Every stage's handler body: ``process`` each S3 object of the event, then log one line with the totals.

    ``process`` returns the object's counts and what to say about it (the keys it wrote, ...). An error
    propagates before the line is logged, so Lambda retries the whole event.
    """
    total = Counts()
    objects = []
    for ref in object_refs(event):
        counts, details = process(ref)
        total += counts
        objects.append({"bucket": ref.bucket, "key": ref.key, **details})
    log_invocation(
        namespace, stage, total, {"requestId": getattr(context, "aws_request_id", None), "objects": objects}
    )
    return {"objects": objects, "counts": total.__dict__}
