"""Shared set-up of the handlers tier: moto-backed AWS, stage environments, real S3 event shapes."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from handlers import analytics, ingestion, processing

REGION = "us-east-1"
RAW, PROCESSED, ANALYTICS = "raw-bucket", "processed-bucket", "analytics-bucket"


def must_have(what: str) -> None:
    """Skip without ``what`` on a workstation; fail in CI, where it must exist."""
    if os.environ.get("CI") or os.environ.get("REQUIRE_ALL_RUNTIMES"):
        pytest.fail(f"{what} is required in CI (CI/REQUIRE_ALL_RUNTIMES set)")
    pytest.skip(f"{what} is not available here")


def s3_record(bucket: str, key: str, size: int, etag: str | None, version_id: str | None) -> dict[str, Any]:
    """One record of an S3 ObjectCreated notification, as S3 sends it (key URL-encoded, + for space)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "sequencer": "0065A1B2C3D4E5F6A7"}
    if etag is not None:
        obj["eTag"] = etag
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-25T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "198.51.100.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE123", "x-amz-id-2": "EXAMPLE456"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "pipeline-trigger",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def event_of(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def put(s3: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    """Put an object and return the event record S3 would send for it."""
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return s3_record(bucket, key, len(body), response["ETag"].strip('"'), response.get("VersionId"))


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


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_new_client = boto3.client


def _shared_client(service: str, *args: Any, **kwargs: Any) -> Any:
    """boto3.client, built once per service for the session: moto intercepts at the botocore layer,
    so one client serves every test's fresh mock, and building a client costs ~0.2-0.4 s here."""
    key = (service, args, tuple(sorted(kwargs.items())))
    if key not in _CLIENTS:
        _CLIENTS[key] = _new_client(service, *args, **kwargs)
    return _CLIENTS[key]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(boto3, "client", _shared_client)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (RAW, PROCESSED, ANALYTICS):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        yield s3


def _clear_runtimes() -> None:
    for module in (ingestion, processing, analytics):
        module.runtime.cache_clear()


@pytest.fixture
def stage_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Clears the per-container runtimes before and after, so each test is a cold start."""
    for name in list(os.environ):
        if name in ("DATABASE_SECRET_ARN", "SUMMARY_TOPIC_ARN", "RECORD_SCHEMA") or name.startswith(
            "AGGREGATION_"
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("METRICS_NAMESPACE", "DataPipeline")
    _clear_runtimes()
    yield monkeypatch
    _clear_runtimes()


@pytest.fixture
def ingestion_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv("PIPELINE_STAGE", "ingestion")
    stage_env.setenv("DEST_BUCKET", PROCESSED)
    stage_env.setenv("RECORDS_PREFIX", "records/")
    stage_env.setenv("QUARANTINE_PREFIX", "quarantine/")
    stage_env.setenv("INPUT_PREFIX", "incoming/")
    stage_env.setenv("INPUT_SUFFIXES", ".json,.jsonl,.ndjson,.gz")
    stage_env.setenv("MAX_RECORD_BYTES", "4096")
    return aws


@pytest.fixture
def processing_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv("PIPELINE_STAGE", "processing")
    stage_env.setenv("DEST_BUCKET", ANALYTICS)
    stage_env.setenv("AGGREGATES_PREFIX", "aggregates/")
    stage_env.setenv("AGGREGATION_WINDOW", "1h")
    stage_env.setenv("AGGREGATION_DIMENSIONS", "type,source")
    stage_env.setenv("AGGREGATION_METRICS", "value")
    return aws


@pytest.fixture
def analytics_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv("PIPELINE_STAGE", "analytics")
    stage_env.setenv("DEST_BUCKET", ANALYTICS)
    stage_env.setenv("REPORTS_PREFIX", "reports/")
    stage_env.setenv("REPORT_TOP_GROUPS", "3")
    return aws
