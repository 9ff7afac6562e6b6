"""Helpers of the handlers tier: real S3 event shapes, object I/O on moto, sample records.

A module of its own (not conftest.py) so that test modules import it by a name no other tier uses.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st

from devtools.ops.replay.events import object_created_record
from handlers import contract
from handlers.config import default_record_schema
from handlers.records import RecordChecker

REGION = "us-east-1"
RAW, PROCESSED, ANALYTICS = "raw-bucket", "processed-bucket", "analytics-bucket"
_SEQUENCERS = itertools.count(0x0065A1B2C3D4E5F6A7)  # S3's grow with every PUT; tests read them from events


def must_have(what: str) -> None:
    """Skip without ``what`` on a workstation; fail in CI, where it must exist."""
    if os.environ.get("CI") or os.environ.get("REQUIRE_ALL_RUNTIMES"):
        pytest.fail(f"{what} is required in CI (CI/REQUIRE_ALL_RUNTIMES set)")
    pytest.skip(f"{what} is not available here")


def s3_record(bucket: str, key: str, size: int, etag: str | None, version_id: str | None) -> dict[str, Any]:
    """One record of an S3 ObjectCreated notification, as S3 sends it (key URL-encoded, + for space)."""
    return object_created_record(
        bucket,
        key,
        size=size,
        etag=etag,
        sequencer=f"{next(_SEQUENCERS):018X}",
        version_id=version_id,
        region=REGION,
        event_time=datetime(2026, 11, 25, 12, tzinfo=UTC),
        sender="AWS:AIDAEXAMPLE",
        request_id="EXAMPLE123",
    )


def event_of(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def put(s3: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    """Put an object and return the event record S3 would send for it."""
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return s3_record(bucket, key, len(body), response["ETag"].strip('"'), response.get("VersionId"))


def tag_of(record: dict[str, Any]) -> str:
    """The version tag (S3 sequencer) later stages' keys carry for the object an event record names."""
    return record["s3"]["object"]["sequencer"]


def output_of(
    prefix: str, ref: dict[str, Any], suffix: str, input_prefix: str = contract.INPUT_PREFIX
) -> str:
    """The key a stage writes under ``prefix`` for the raw object version ``ref`` names."""
    from urllib.parse import unquote_plus

    from handlers.events import relative_key, versioned_key

    rel = relative_key(unquote_plus(ref["s3"]["object"]["key"]), input_prefix)
    return versioned_key(prefix, rel, tag_of(ref), suffix)


def records_of(ref: dict[str, Any]) -> str:
    """The records/ key ingestion writes for the raw object version ``ref`` names."""
    return output_of(contract.RECORDS_PREFIX, ref, contract.RECORDS_SUFFIX)


def quarantine_of(ref: dict[str, Any]) -> str:
    """The quarantine/ key ingestion writes for the raw object version ``ref`` names."""
    return output_of(contract.QUARANTINE_PREFIX, ref, contract.QUARANTINE_SUFFIX)


def get_bytes(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def get_lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    data = get_bytes(s3, bucket, key)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines()]


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def gz(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(data)
    return buffer.getvalue()


def record(n: int, **overrides: Any) -> dict[str, Any]:
    base = {
        "id": f"evt-{n}",
        "timestamp": "2024-05-01T12:34:56Z",
        "type": "click",
        "source": "web",
        "value": n,
    }
    base.update(overrides)
    return base


def jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


class ListSink:
    """An ingestion ``Sink`` that keeps valid lines one per item, however they were handed over."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.quarantined: list[dict[str, Any]] = []

    def valid(self, line: bytes) -> None:
        self.written.append(line)

    def valid_lines(self, block: bytes, count: int) -> None:
        lines = block.split(b"\n")
        assert lines.pop() == b"", "every line of a block ends in a newline"
        assert len(lines) == count, "a block holds `count` lines"
        self.written += lines

    def quarantine(self, line: bytes) -> None:
        self.quarantined.append(json.loads(line))


# --- shared by the core tests (test_framing, test_timestamps, test_records, test_ingestion_core) ---------

CHECKER = RecordChecker(default_record_schema())
# No deadline: two shared cores make single examples slow at times; fewer examples keep the tier fast.
PROPERTY = settings(max_examples=50, deadline=None)
THOROUGH = settings(max_examples=150, deadline=None)  # the fast paths against their references
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
)


def reader(data: bytes) -> Any:
    return io.BytesIO(data).read


def rollup_totals(url: str) -> dict[str, dict[str, Any]]:
    """The ``value`` rollups of a database, by the group's ``type``: records, count, sum, min, max."""
    from decimal import Decimal

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            groups = dict(conn.execute(text("SELECT dimensions, records FROM pipeline_rollup_groups")).all())
            rows = conn.execute(
                text(
                    "SELECT dimensions, count, sum, min, max FROM pipeline_rollup_metrics"
                    " WHERE metric = 'value'"
                )
            ).all()
    finally:
        engine.dispose()
    return {
        json.loads(dimensions)["type"]: {
            "records": groups[dimensions],
            "count": count,
            "sum": Decimal(str(total)),
            "min": Decimal(str(low)),
            "max": Decimal(str(high)),
        }
        for dimensions, count, total, low, high in rows
    }


def alembic_config() -> Any:
    """Alembic's configuration of the shipped revisions (``handlers/migrations``)."""
    from alembic.config import Config

    from handlers import database

    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    return config


@contextmanager
def at_revision(url: str, revision: str) -> Iterator[Any]:
    """A connection to the database at ``url``, upgraded to ``revision`` (not the head) in its transaction,
    which commits when the block ends: for tests of what later revisions do to older schemas."""
    from alembic import command

    from handlers import database

    engine, config = database.create(url), alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            yield conn
    finally:
        engine.dispose()
