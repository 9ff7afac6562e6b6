"""A raw version cut into records/ parts, through the three real handlers on moto: the same totals and
one report as the version in one part, whatever the order and repetition of the parts' events, in both
overwrite modes, on SQLite and PostgreSQL, and without a database.

The part size is tiny (``RECORDS_PART_BYTES``), so a handful of records make several parts.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest
from handler_support import ANALYTICS, PROCESSED, RAW, event_of, keys, put, rollup_totals, s3_record

from handlers import analytics_handler as analytics
from handlers import contract, database
from handlers import ingestion_handler as ingestion
from handlers import processing_handler as processing
from handlers.contract import Env, Stage

VALUES = [Decimal(v) for v in ("0.1", "0.2", "5.7", "10.05", "19.95", "-3", "7.125", "1e2")]
PART_BYTES = 150  # two or so of these records' lines in records/: eight records make several parts


def body(values: list[Decimal], group: str, start: int = 0) -> bytes:
    lines = [
        f'{{"id": "e{start + n}", "timestamp": "2024-05-01T12:00:00Z", "type": "{group}", "value": {value}}}'
        for n, value in enumerate(values)
    ]
    return ("\n".join(lines) + "\n").encode()


def expected(values: list[Decimal]) -> dict[str, Any]:
    return {
        "records": len(values),
        "count": len(values),
        "sum": sum(values, Decimal(0)),
        "min": min(values),
        "max": max(values),
    }


@pytest.fixture
def chain(aws: Any, stage_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """Configure the three stages' runtimes (a cold start each) with a part size and overwrite mode."""
    url = None

    def configure(part_bytes: int, mode: str = "replace", database_url: str | None = None) -> None:
        nonlocal url
        url = database_url
        secret = None
        if database_url:
            database.migrate(database_url)
            secret = aws_client("secretsmanager").create_secret(
                Name=f"db-{random.randrange(1 << 30)}", SecretString=database_url
            )["ARN"]
        environments = {
            ingestion: {
                Env.PIPELINE_STAGE: Stage.INGESTION,
                Env.DEST_BUCKET: PROCESSED,
                Env.RECORDS_PART_BYTES: str(part_bytes),
            },
            processing: {
                Env.PIPELINE_STAGE: Stage.PROCESSING,
                Env.DEST_BUCKET: ANALYTICS,
                Env.AGGREGATION_DIMENSIONS: "type",
                Env.AGGREGATION_METRICS: "value",
            },
            analytics: {
                Env.PIPELINE_STAGE: Stage.ANALYTICS,
                Env.DEST_BUCKET: ANALYTICS,
                Env.OVERWRITE_MODE: mode,
                **({Env.DATABASE_SECRET_ARN: secret} if secret else {}),
            },
        }
        for module, settings in environments.items():
            module.runtime.cache_clear()
            with pytest.MonkeyPatch.context() as env:
                for key, value in settings.items():
                    env.setenv(key, value)
                module.runtime()

    return configure


def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1")


def ingest(s3: Any, key: str, data: bytes) -> list[dict[str, Any]]:
    """Upload and ingest one raw version; returns the processing events of its records/ parts."""
    result = ingestion.handler(event_of(put(s3, RAW, key, data)), None)
    written = [k for k in result["objects"][0]["written"] if k.startswith(contract.RECORDS_PREFIX)]
    return [event_of(s3_record(PROCESSED, k, 0, None, None)) for k in written]


def process(event: dict[str, Any]) -> dict[str, Any]:
    [written] = processing.handler(event, None)["objects"][0]["written"]
    return event_of(s3_record(ANALYTICS, written, 0, None, None))


def reports(s3: Any) -> dict[str, dict[str, Any]]:
    return {
        key: json.loads(s3.get_object(Bucket=ANALYTICS, Key=key)["Body"].read())
        for key in keys(s3, ANALYTICS)
        if key.startswith(contract.REPORTS_PREFIX)
    }


def totals(url: str) -> dict[str, dict[str, Any]]:
    return rollup_totals(url)


def test_a_version_in_parts_gives_the_totals_and_report_of_one_part(
    aws: Any, chain: Any, empty_database: str
) -> None:
    # GIVEN the same records once in one part and once (another key) in parts of two lines each
    chain(1 << 20, database_url=empty_database)
    whole = [process(event) for event in ingest(aws, "incoming/whole.jsonl", body(VALUES, "whole"))]
    for event in whole:
        analytics.handler(event, None)
    chain(PART_BYTES, database_url=empty_database)
    parted = [process(event) for event in ingest(aws, "incoming/parted.jsonl", body(VALUES, "parted"))]
    results = [analytics.handler(event, None) for event in parted]
    # THEN the parted version has several parts, the same totals, and one report like the whole one's
    assert len(whole) == 1
    assert len(parted) > 2
    assert totals(empty_database) == {"whole": expected(VALUES), "parted": expected(VALUES)}
    assert sum(len(r["objects"][0]["written"]) for r in results) == 1
    found = reports(aws)
    assert len(found) == 2
    [whole_report] = [r for k, r in found.items() if "/whole.jsonl/" in k]
    [parted_report] = [r for k, r in found.items() if "/parted.jsonl/" in k]
    assert parted_report["origin"]["parts"] == len(parted_report["parts"]) == len(parted)
    assert parted_report["database"] == "loaded"
    assert parted_report["counts"] == whole_report["counts"]
    assert parted_report["totals"]["metrics"] == whole_report["totals"]["metrics"]
    assert parted_report["totals"]["records"] == whole_report["totals"]["records"] == len(VALUES)
