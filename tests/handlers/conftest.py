"""Shared set-up of the handlers tier: moto-backed AWS and stage environments (helpers: handler_support)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from handler_support import ANALYTICS, PROCESSED, RAW, REGION
from moto_clients import create_chain_buckets, mocked_aws
from postgres import NewDatabase

from handlers import analytics_handler as analytics
from handlers import contract
from handlers import ingestion_handler as ingestion
from handlers import processing_handler as processing
from handlers.contract import Env, Stage


@contextmanager
def _moto_buckets(patch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's AWS with the three buckets (raw versioned); yields the S3 client."""
    with mocked_aws(patch, REGION):
        s3 = boto3.client("s3", region_name=REGION)
        create_chain_buckets(s3, RAW, PROCESSED, ANALYTICS)
        yield s3


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with _moto_buckets(monkeypatch) as s3:
        yield s3


def _clear_runtimes() -> None:
    if analytics.runtime.cache_info().currsize and analytics.runtime()._engine is not None:
        analytics.runtime()._engine.dispose()  # its pooled connections would outlive the test's database
    for module in (ingestion, processing, analytics):
        module.runtime.cache_clear()


@contextmanager
def _cold_stage(patch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No stage's optional variables, and the per-container runtimes cleared before and after."""
    for name in list(os.environ):
        if name in (Env.DATABASE_SECRET_ARN, Env.SUMMARY_TOPIC_ARN, Env.RECORD_SCHEMA) or name.startswith(
            "AGGREGATION_"
        ):
            patch.delenv(name)
    patch.setenv(Env.METRICS_NAMESPACE, contract.METRICS_NAMESPACE)
    _clear_runtimes()
    yield patch
    _clear_runtimes()


@pytest.fixture
def stage_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Clears the per-container runtimes before and after, so each test is a cold start."""
    with _cold_stage(monkeypatch) as patch:
        yield patch


# Each stage's function environment in these tests (the program's defaults, but smaller limits).
STAGE_ENVIRONMENTS: dict[Stage, dict[str, str]] = {
    Stage.INGESTION: {
        Env.DEST_BUCKET: PROCESSED,
        Env.RECORDS_PREFIX: contract.RECORDS_PREFIX,
        Env.QUARANTINE_PREFIX: contract.QUARANTINE_PREFIX,
        Env.INPUT_PREFIX: contract.INPUT_PREFIX,
        Env.INPUT_SUFFIXES: ",".join(contract.INPUT_SUFFIXES),
        Env.MAX_RECORD_BYTES: "4096",
    },
    Stage.PROCESSING: {
        Env.DEST_BUCKET: ANALYTICS,
        Env.AGGREGATES_PREFIX: contract.AGGREGATES_PREFIX,
        Env.AGGREGATION_WINDOW: contract.DEFAULT_WINDOW,
        Env.AGGREGATION_DIMENSIONS: ",".join(contract.DEFAULT_DIMENSIONS),
        Env.AGGREGATION_METRICS: ",".join(contract.DEFAULT_METRICS),
    },
    Stage.ANALYTICS: {
        Env.DEST_BUCKET: ANALYTICS,
        Env.REPORTS_PREFIX: contract.REPORTS_PREFIX,
        Env.REPORT_TOP_GROUPS: "3",
    },
}


def _as_stage(stage: Stage, stage_env: pytest.MonkeyPatch) -> None:
    stage_env.setenv(Env.PIPELINE_STAGE, stage)
    for name, value in STAGE_ENVIRONMENTS[stage].items():
        stage_env.setenv(name, value)


@pytest.fixture
def ingestion_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    _as_stage(Stage.INGESTION, stage_env)
    return aws


@pytest.fixture(scope="module")
def module_ingestion_env() -> Iterator[Any]:
    """``ingestion_env`` shared by a whole module: one moto world and one warm runtime for a corpus of
    cases, each of which writes under its own keys."""
    with pytest.MonkeyPatch.context() as patch, _moto_buckets(patch) as s3, _cold_stage(patch):
        _as_stage(Stage.INGESTION, patch)
        yield s3


@pytest.fixture
def processing_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    _as_stage(Stage.PROCESSING, stage_env)
    return aws


@pytest.fixture
def analytics_env(aws: Any, stage_env: pytest.MonkeyPatch) -> Any:
    _as_stage(Stage.ANALYTICS, stage_env)
    return aws


@pytest.fixture(scope="module")
def postgres_database(new_postgres_database: NewDatabase) -> Iterator[str]:
    """A database of the module's own on the throwaway server (tests/postgres.py)."""
    with new_postgres_database("handlers") as url:
        yield url


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
