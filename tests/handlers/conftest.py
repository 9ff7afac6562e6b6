"""Shared set-up of the handlers tier: moto-backed AWS and stage environments (helpers: handler_support)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from handler_support import ANALYTICS, PROCESSED, RAW, REGION
from moto import mock_aws

from handlers import analytics_handler as analytics
from handlers import contract
from handlers import ingestion_handler as ingestion
from handlers import processing_handler as processing
from handlers.contract import Env, Stage

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
    if analytics.runtime.cache_info().currsize and analytics.runtime()._engine is not None:
        analytics.runtime()._engine.dispose()  # its pooled connections would outlive the test's database
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
    monkeypatch.setenv(Env.METRICS_NAMESPACE, contract.METRICS_NAMESPACE)
    _clear_runtimes()
    yield monkeypatch
    _clear_runtimes()


@pytest.fixture
def ingestion_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv(Env.PIPELINE_STAGE, Stage.INGESTION)
    stage_env.setenv(Env.DEST_BUCKET, PROCESSED)
    stage_env.setenv(Env.RECORDS_PREFIX, contract.RECORDS_PREFIX)
    stage_env.setenv(Env.QUARANTINE_PREFIX, contract.QUARANTINE_PREFIX)
    stage_env.setenv(Env.INPUT_PREFIX, contract.INPUT_PREFIX)
    stage_env.setenv(Env.INPUT_SUFFIXES, ",".join(contract.INPUT_SUFFIXES))
    stage_env.setenv(Env.MAX_RECORD_BYTES, "4096")
    return aws


@pytest.fixture
def processing_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv(Env.PIPELINE_STAGE, Stage.PROCESSING)
    stage_env.setenv(Env.DEST_BUCKET, ANALYTICS)
    stage_env.setenv(Env.AGGREGATES_PREFIX, contract.AGGREGATES_PREFIX)
    stage_env.setenv(Env.AGGREGATION_WINDOW, "1h")
    stage_env.setenv(Env.AGGREGATION_DIMENSIONS, "type,source")
    stage_env.setenv(Env.AGGREGATION_METRICS, "value")
    return aws


@pytest.fixture
def analytics_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv(Env.PIPELINE_STAGE, Stage.ANALYTICS)
    stage_env.setenv(Env.DEST_BUCKET, ANALYTICS)
    stage_env.setenv(Env.REPORTS_PREFIX, contract.REPORTS_PREFIX)
    stage_env.setenv(Env.REPORT_TOP_GROUPS, "3")
    return aws


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A database of its own on the throwaway server (TEST_DATABASE_URL), dropped afterwards."""
    import uuid

    from handler_support import must_have
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        must_have("TEST_DATABASE_URL (run under scripts/with-throwaway-postgres)")
    name = f"handlers_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """An empty analytics database of each supported kind (PostgreSQL's schema emptied for each test)."""
    from sqlalchemy import create_engine

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'analytics.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_database")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()
    yield url
    _clear_runtimes()


@pytest.fixture
def migrated_database(empty_database: str) -> str:
    """``empty_database`` at the head revision."""
    from handlers import database

    database.migrate(empty_database)
    return empty_database
