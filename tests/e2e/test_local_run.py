"""The declared pipeline run on moto with IAM enforced: what `pulumi up` would deploy works together."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from e2e_expected import SAMPLES, expected_from, input_files
from sqlalchemy import create_engine, text

from devtools.localrun.errors import LocalRunError
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec
from handlers import contract
from handlers.contract import BUCKET_ROLES, Stage

Run = Callable[..., RunResult]
pytestmark = pytest.mark.network  # the real layer is built from PyPI unless .build/layers already holds it

ODD_KEY = "clickstream/week 48 + café résumé.ndjson"
ONE_FILE = SAMPLES / "orders" / "late-order.json"


def db_totals(url: str) -> dict[str, Any]:
    """Every total the analytics tables hold (row counts, records, per-metric count/sum/min/max).

    Summed here, exactly: SQLite keeps exact values as canonical text, which SQL's SUM would turn into
    floats."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            groups, records = conn.execute(
                text("SELECT COUNT(*), COALESCE(SUM(records), 0) FROM pipeline_rollup_groups")
            ).one()
            metrics: dict[str, dict[str, Any]] = {}
            for row in conn.execute(text("SELECT metric, count, sum, min, max FROM pipeline_rollup_metrics")):
                low, high = Decimal(str(row.min)), Decimal(str(row.max))
                total = metrics.setdefault(row.metric, {"rows": 0, "count": 0, "sum": Decimal(0)})
                total["rows"] += 1
                total["count"] += row.count
                total["sum"] += Decimal(str(row.sum))
                total["min"] = min(total.get("min", low), low)
                total["max"] = max(total.get("max", high), high)
            ledger, ledger_records = conn.execute(
                text("SELECT COUNT(*), COALESCE(SUM(records), 0) FROM pipeline_contributions")
            ).one()
    finally:
        engine.dispose()
    return {
        "groups": groups,
        "records": records,
        "metrics": metrics,
        "ledger": ledger,
        "ledger_records": ledger_records,
    }


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('samples-db') / 'pipeline.sqlite'}"


@pytest.fixture(scope="module")
def samples_run(dev_spec: PipelineSpec, run_pipeline: Run, sqlite_url: str) -> RunResult:
    return run_pipeline(dev_spec, [SAMPLES], database_url=sqlite_url)


def test_chain_completes_on_the_samples_with_sqlite(samples_run: RunResult) -> None:
    # GIVEN the samples  WHEN they run through the declared pipeline
    inputs = input_files(SAMPLES)
    # THEN no event failed, every stage succeeded once per object, and every input object has its report
    # (an error a retry recovers from is allowed: two analytics containers starting at once may race to
    # create the schema, as they can in AWS)
    assert samples_run.ok, samples_run.failures
    for stage, stats in samples_run.stages.items():
        assert stats.succeeded == len(inputs), (stage, stats)
        assert stats.errors == stats.retries, (stage, samples_run.logs[stage][-20:])
    # one report per input object, under its version's sequencer
    assert sorted(key.rsplit("/", 1)[0] for key in samples_run.reports) == sorted(
        f"{contract.REPORTS_PREFIX}{rel}" for rel in inputs
    )
    assert all(report["database"] == "loaded" for report in samples_run.reports.values())


def test_database_totals_equal_the_sums_of_the_valid_input_records(
    samples_run: RunResult, sqlite_url: str
) -> None:
    # GIVEN expectations computed from the files alone
    expected = expected_from(input_files(SAMPLES))
    # WHEN the database is read after the run
    totals = db_totals(sqlite_url)
    # THEN it holds every valid record once, and the metric totals are the sums over those records
    assert totals["records"] == expected.valid
    assert totals["ledger_records"] == expected.valid
    assert totals["metrics"]["value"]["count"] == expected.value_count
    assert totals["metrics"]["value"]["sum"] == expected.value_sum  # exactly


def test_quarantined_records_are_exactly_the_known_bad_ones(samples_run: RunResult) -> None:
    expected = expected_from(input_files(SAMPLES))
    prefix = contract.INPUT_PREFIX
    quarantined = {
        (entry["source"]["key"].removeprefix(prefix), entry["line"]) for entry in samples_run.quarantine
    }
    assert quarantined == expected.bad
    ingestion = samples_run.stages[Stage.INGESTION].metrics
    names = contract.RECORD_METRIC_NAMES
    assert ingestion[names["records_quarantined"]] == len(expected.bad)
    assert ingestion[names["records_valid"]] == expected.valid
    assert ingestion[names["blank_lines"]] == expected.blank_lines
    assert ingestion[names["records_read"]] == expected.valid + len(expected.bad) + expected.blank_lines


def test_key_with_spaces_plus_and_unicode_goes_through_every_stage(
    samples_run: RunResult, dev_spec: PipelineSpec, sqlite_url: str
) -> None:
    # GIVEN a sample whose key has spaces, '+' and non-ASCII letters
    assert ODD_KEY in input_files(SAMPLES)
    raw, processed, analytics = (dev_spec.bucket(role).name for role in BUCKET_ROLES)
    # THEN each stage wrote its output under the same relative key
    assert f"{contract.INPUT_PREFIX}{ODD_KEY}" in samples_run.objects[raw]

    def versions(bucket: str, prefix: str, suffix: str) -> list[str]:
        return [
            key[len(prefix) : -len(suffix)]
            for key in samples_run.objects[bucket]
            if key.startswith(prefix) and key.endswith(suffix)
        ]

    [tag] = versions(processed, f"{contract.RECORDS_PREFIX}{ODD_KEY}/", contract.RECORDS_SUFFIX)
    assert versions(analytics, f"{contract.AGGREGATES_PREFIX}{ODD_KEY}/", contract.AGGREGATES_SUFFIX) == [tag]
    assert versions(analytics, f"{contract.REPORTS_PREFIX}{ODD_KEY}/", contract.REPORTS_SUFFIX) == [tag]
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        loaded = conn.execute(text("SELECT rel, sequencer FROM pipeline_contributions")).all()
    engine.dispose()
    assert (ODD_KEY, tag) in loaded


def test_duplicate_deliveries_leave_every_database_total_unchanged(
    samples_run: RunResult,
    sqlite_url: str,
    dev_spec: PipelineSpec,
    run_pipeline: Run,
    tmp_path: Path,
) -> None:
    # GIVEN a second run of the same files where every S3 event is delivered twice
    dup_url = f"sqlite:///{tmp_path / 'duplicates.sqlite'}"
    duplicated = run_pipeline(dev_spec, [SAMPLES], database_url=dup_url, duplicate_deliveries=True)
    # THEN ingestion saw each upload twice and, since each duplicate rewrites its (identical) outputs and so
    # notifies again, later stages saw more; nothing failed and the database totals match the single run
    assert duplicated.ok, duplicated.failures
    inputs = len(input_files(SAMPLES))
    assert duplicated.stages[Stage.INGESTION].events == 2 * inputs
    assert duplicated.stages[Stage.PROCESSING].events >= 2 * inputs
    assert duplicated.stages[Stage.ANALYTICS].events >= 2 * inputs
    assert db_totals(dup_url) == db_totals(sqlite_url)


@pytest.mark.postgres
def test_chain_completes_on_the_samples_with_postgresql(
    dev_spec: PipelineSpec, run_pipeline: Run, postgres_database: str
) -> None:
    expected = expected_from(input_files(SAMPLES))
    result = run_pipeline(dev_spec, [SAMPLES], database_url=postgres_database)
    assert result.ok, result.failures
    totals = db_totals(postgres_database)
    assert totals["records"] == expected.valid
    assert totals["metrics"]["value"]["count"] == expected.value_count
    assert totals["metrics"]["value"]["sum"] == expected.value_sum


@pytest.mark.parametrize(
    ("stage", "action"),
    [
        (Stage.PROCESSING, "s3:PutObject"),
        # the raw bucket is versioned, so ingestion reads the exact version its event names
        (Stage.INGESTION, "s3:GetObjectVersion"),
    ],
)
def test_removing_one_needed_action_fails_the_run_with_access_denied_naming_the_stage(
    dev_spec: PipelineSpec, run_pipeline: Run, stage: str, action: str
) -> None:
    # GIVEN the stage role's declared policy without one action its handler needs (a negative control)
    declared = dev_spec.stage(stage)
    assert action in declared.allowed_actions()
    broken = dev_spec.with_stage(declared.without_action(action))
    # WHEN one file runs
    result = run_pipeline(broken, [ONE_FILE])
    # THEN that stage fails with AccessDenied, its event ends in its failure queue and nothing runs after it
    assert not result.ok
    assert [f.stage for f in result.failures] == [stage]
    assert "AccessDenied" in result.failures[0].error_message
    assert result.failures[0].destination == "failure-queue"
    later = [Stage.INGESTION, Stage.PROCESSING, Stage.ANALYTICS]
    for other in later[: later.index(stage)]:
        assert result.stages[other].errors == 0, other
    for other in later[later.index(stage) + 1 :]:
        assert result.stages[other].invocations == 0, other


def test_a_handler_that_keeps_failing_leaves_the_event_in_its_failure_queue_after_the_retries(
    dev_spec: PipelineSpec, run_pipeline: Run
) -> None:
    # GIVEN an analytics database nobody listens on: the analytics handler raises on every attempt
    with socket.socket() as probe:  # a port that was free a moment ago: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = f"postgresql+psycopg2://nobody@127.0.0.1:{port}/nowhere"
    analytics = dev_spec.stage(Stage.ANALYTICS)
    # WHEN one file runs
    result = run_pipeline(dev_spec, [ONE_FILE], database_url=unreachable, migrate_database=False)
    # THEN the event was tried 1 + maximum_retry_attempts times, then kept as Lambda's on-failure record
    stats = result.stages[Stage.ANALYTICS]
    assert stats.invocations == analytics.max_retry_attempts + 1
    assert stats.retries == analytics.max_retry_attempts
    assert stats.failure_queue == 1
    [record] = result.failure_queue_messages[Stage.ANALYTICS]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == analytics.max_retry_attempts + 1
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "DatabaseUnavailableError"
    key = unquote_plus(record["requestPayload"]["Records"][0]["s3"]["object"]["key"])
    rel, _, tag = (
        key.removeprefix(contract.AGGREGATES_PREFIX).removesuffix(contract.AGGREGATES_SUFFIX).rpartition("/")
    )
    assert (rel, bool(re.fullmatch("[0-9A-F]+", tag))) == ("late-order.json", True)
    assert result.failure_queue_messages[Stage.INGESTION] == []
    assert result.failure_queue_messages[Stage.PROCESSING] == []


def test_a_database_the_migration_cannot_reach_stops_the_run_before_any_upload(
    dev_spec: PipelineSpec, run_pipeline: Run
) -> None:
    # GIVEN an analytics database nobody listens on, and the migration `pulumi up` runs first
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = f"postgresql+psycopg2://nobody@127.0.0.1:{port}/nowhere"
    # WHEN one file runs THEN the run stops at the migration, as `pulumi up` would fail, naming the cause
    with pytest.raises(LocalRunError, match="schema migration failed: DatabaseUnavailableError"):
        run_pipeline(dev_spec, [ONE_FILE], database_url=unreachable)


def test_a_notification_filter_that_misses_the_previous_stages_keys_fails_the_run(
    dev_spec: PipelineSpec, run_pipeline: Run
) -> None:
    # GIVEN the processed bucket's notification with a typo in its suffix (a negative control)
    processed = dev_spec.bucket(dev_spec.stage(Stage.INGESTION).environment[contract.Env.DEST_BUCKET])
    typo = tuple(replace(n, suffix=n.suffix + "z") for n in processed.notifications)
    broken = replace(
        dev_spec,
        buckets=tuple(replace(b, notifications=typo) if b is processed else b for b in dev_spec.buckets),
    )
    # WHEN one file runs
    result = run_pipeline(broken, [ONE_FILE])
    # THEN the run fails, naming the stage that was never invoked and the key it never got
    assert not result.ok
    assert [(f.stage, f.error_type) for f in result.failures] == [
        (Stage.PROCESSING, "LocalRunner.ChainStopped")
    ]
    assert result.failures[0].key.startswith(contract.RECORDS_PREFIX)
    assert result.stages[Stage.PROCESSING].invocations == 0


def test_cli_json_prints_one_document_with_the_per_stage_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from devtools.__main__ import main

    # GIVEN one input file and a database of our own
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    # WHEN the command line runs with --json
    status = main(["run", "--json", "--database-url", url, str(ONE_FILE)])
    # THEN stdout is exactly one JSON document, progress went to stderr, and the exit status says OK
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert status == 0
    assert document["ok"] is True
    assert document["stack"] == "dev"
    assert {stage: s["invocations"] for stage, s in document["stages"].items()} == {
        Stage.INGESTION: 1,
        Stage.PROCESSING: 1,
        Stage.ANALYTICS: 1,
    }
    assert document["stages"][Stage.INGESTION]["metrics"][contract.RECORD_METRIC_NAMES["records_valid"]] == 1
    assert document["database"]["pipeline_contributions"]["rows"] == 1
    assert "uploaded s3://" in captured.err
