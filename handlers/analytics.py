"""Analytics stage: analytics ``aggregates/<rel>.json`` → database rollup, ``reports/<rel>.json``, SNS.

Order matters for retries: the database transaction commits first, then the report is written, then
the summary is published. A retry after any later failure finds the ledger row (the load is not
repeated) and rewrites the same report bytes: the report describes the aggregates object and the
database's state after this invocation (``loaded`` whether now or by an earlier delivery), never the
wall clock. The SNS summary is at-least-once and says whether this delivery was a duplicate.

Counts here are in groups: ``RecordsRead`` = groups in the document, ``RecordsValid`` = groups
loaded or reported, ``RecordsQuarantined`` = 1 for an object that is not an aggregates document
(reported as ``rejected``, never raised), or an object whose sums would take a stored sum past float
range (``sum_out_of_range``, nothing loaded).

The database URL comes from the Secrets Manager secret ``DATABASE_SECRET_ARN`` names (``SecretString``
is the URL, or JSON ``{"url": ...}``), read on first use and kept for the container's life together
with the engine; a failed read is not cached, so the next invocation tries again.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import msgspec

from handlers.aggregate import (
    AggregatesDocument,
    GroupKey,
    GroupStats,
    Stats,
    groups_from_document,
    read_document,
)
from handlers.config import AnalyticsConfig, load_analytics
from handlers.errors import ConfigError, LoadRejectedError
from handlers.events import ObjectRef, output_key, relative_key
from handlers.metrics import Counts, handle_objects

INPUT_PREFIX = "aggregates/"  # the processing stage's AGGREGATES_PREFIX, fixed by the chain
INPUT_SUFFIX = ".json"
REPORT_FORMAT = "data-pipeline/report@1"


def database_url(secret_string: str) -> str:
    """The SQLAlchemy URL in a secret: the string itself, or the ``url`` member of a JSON object."""
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            url = json.loads(text).get("url")
        except (ValueError, AttributeError) as exc:
            raise ConfigError("the database secret is JSON but not an object") from exc
        if not isinstance(url, str) or not url:
            raise ConfigError('the database secret is JSON without a "url" string')
        return url
    if "://" not in text:
        raise ConfigError("the database secret is neither a URL nor JSON with a url")
    return text


@dataclass
class Runtime:
    """Everything built once per container; the engine on first use."""

    config: AnalyticsConfig  # parsed environment
    s3: Any  # boto3 S3 client
    sns: Any  # boto3 SNS client (None without a topic)
    secrets: Any  # boto3 Secrets Manager client (None without a database)
    _engine: Any = field(default=None, repr=False)

    def engine(self) -> Any:
        if self._engine is None:
            from handlers import database  # SQLAlchemy only when a database is configured

            secret = self.secrets.get_secret_value(SecretId=self.config.database_secret_arn)
            self._engine = database.connect(database_url(secret["SecretString"]))
        return self._engine


@functools.cache
def runtime() -> Runtime:
    config = load_analytics()
    return Runtime(
        config=config,
        s3=boto3.client("s3"),
        sns=boto3.client("sns") if config.summary_topic_arn else None,
        secrets=boto3.client("secretsmanager") if config.database_secret_arn else None,
    )


def _stats_json(stats: Stats) -> dict[str, Any]:
    return {"count": stats.count, "sum": stats.sum, "min": stats.min, "max": stats.max}


def build_report(
    source: Mapping[str, Any],
    document: AggregatesDocument,
    groups: Mapping[GroupKey, GroupStats],
    database: str,
    top: int,
) -> dict[str, Any]:
    """The report: what was loaded, totals, and the ``top`` groups by record count (pure)."""
    dimensions = document.dimensions
    totals: dict[str, Stats] = {}
    for stats in groups.values():
        for name, s in stats.metrics.items():
            totals[name] = totals[name].merge(s) if name in totals else s
    ranked = sorted(
        groups.items(), key=lambda item: (-item[1].records, item[0][0], msgspec.json.encode(item[0][1]))
    )
    return {
        "format": REPORT_FORMAT,
        "source": dict(source),
        "database": database,
        "window": document.window,
        "dimensions": dimensions,
        "counts": document.counts,
        "rejected_total": document.rejected_total,
        "totals": {
            "groups": len(groups),
            "records": sum(stats.records for stats in groups.values()),
            "metrics": {name: _stats_json(s) for name, s in sorted(totals.items())},
        },
        "top_groups": [
            {
                "window_start": start,
                "dimensions": dict(zip(dimensions, values, strict=True)),
                "records": stats.records,
                "metrics": {name: _stats_json(s) for name, s in sorted(stats.metrics.items())},
            }
            for (start, values), stats in ranked[:top]
        ],
    }


def _summary(report: Mapping[str, Any], rel: str, duplicate: bool) -> tuple[str, str]:
    subject = f"data-pipeline report: {rel}".encode("ascii", "replace").decode()
    subject = "".join(ch if ch.isprintable() else "?" for ch in subject)[:100]
    message = {
        "report": rel,
        "database": report["database"],
        "duplicate_delivery": duplicate,
        "groups": report["totals"]["groups"] if "totals" in report else 0,
        "records": report["totals"]["records"] if "totals" in report else 0,
        "rejected_total": report.get("rejected_total", 0),
    }
    return subject, json.dumps(message, sort_keys=True)


def _rejected(source: Mapping[str, Any], reason: str, detail: str) -> tuple[dict[str, Any], Counts]:
    """The report of an object that was not loaded, and its counts (one object quarantined)."""
    report = {
        "format": REPORT_FORMAT,
        "source": dict(source),
        "database": "rejected",
        "reason": reason,
        "detail": detail,
    }
    return report, Counts(records_read=1, records_quarantined=1)


def analyse_object(rt: Runtime, ref: ObjectRef) -> tuple[Counts, str, dict[str, Any]]:
    """Load and report one aggregates object; returns counts, the report key and log fields."""
    config = rt.config
    kwargs = {"Bucket": ref.bucket, "Key": ref.key} | (
        {"VersionId": ref.version_id} if ref.version_id else {}
    )
    response = rt.s3.get_object(**kwargs)
    raw = response["Body"].read()  # our own document: its size grows with groups, not records
    # The content's hash, not the ETag, names what was loaded: under SSE-KMS an ETag is not an MD5 of
    # the bytes, so identical documents written twice may carry different ETags.
    content_sha256 = hashlib.sha256(raw).hexdigest()
    source = {"bucket": ref.bucket, "key": ref.key, "sha256": content_sha256}
    rel = relative_key(ref.key, INPUT_PREFIX, INPUT_SUFFIX)
    duplicate = False
    report: dict[str, Any] | None = None
    try:
        document = read_document(raw)
    except ValueError as exc:
        report, counts = _rejected(source, "not_an_aggregates_document", str(exc))
    else:
        groups = groups_from_document(document)
        state = "not_configured"
        if config.database_secret_arn:
            from handlers import database

            try:  # anything else the load raises (an outage, a config error) fails the event
                loaded = database.load(
                    rt.engine(), ref.key, content_sha256, document.window, document.dimensions, groups
                )
            except LoadRejectedError as exc:
                report, counts = _rejected(source, exc.reason, exc.detail)
            else:
                duplicate, state = not loaded, "loaded"
        if report is None:
            report = build_report(source, document, groups, state, config.report_top_groups)
            counts = Counts(records_read=len(groups), records_valid=len(groups))
    key = output_key(config.reports_prefix, rel, ".json")
    rt.s3.put_object(
        Bucket=config.common.dest_bucket,
        Key=key,
        Body=msgspec.json.format(msgspec.json.encode(report, order="sorted"), indent=2),
        ContentType="application/json",
        Metadata=counts.as_metadata(),
    )
    if rt.sns is not None:
        subject, message = _summary(report, rel, duplicate)
        rt.sns.publish(TopicArn=config.summary_topic_arn, Subject=subject, Message=message)
    return Counts(**{**counts.__dict__, "objects_written": 1}), key, {"duplicate": duplicate}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        counts, written, extra = analyse_object(rt, ref)
        return counts, {"written": [written], **extra}

    return handle_objects(rt.config.common.metrics_namespace, "analytics", event, context, process)
