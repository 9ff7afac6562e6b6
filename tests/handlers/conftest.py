"""Shared set-up of the handlers tier: moto-backed AWS and stage environments (helpers: handler_support)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from handler_support import ANALYTICS, PROCESSED, RAW, REGION
from moto import mock_aws

from handlers import analytics, ingestion, processing

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
