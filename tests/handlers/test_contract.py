"""The contract's literal values, written out once: every other test imports them from handlers.contract,
so a rename there would pass unnoticed everywhere else. A deployed pipeline's keys, variables and metrics
depend on these strings (dashboards, alarms, notification filters, data already in the buckets)."""

from __future__ import annotations

from handlers import contract
from handlers.contract import Env, Stage


def test_the_stages_in_chain_order() -> None:
    assert [str(stage) for stage in contract.STAGES] == ["ingestion", "processing", "analytics"]
    assert Stage.INGESTION == "ingestion"
    assert [str(role) for role in contract.BUCKET_ROLES] == ["raw", "processed", "analytics"]


def test_the_keys_each_stage_reads_and_writes() -> None:
    assert (contract.INPUT_PREFIX, contract.INPUT_SUFFIXES) == (
        "incoming/",
        (".json", ".jsonl", ".ndjson", ".gz"),
    )
    assert (contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX) == ("records/", ".jsonl.gz")
    assert (contract.QUARANTINE_PREFIX, contract.QUARANTINE_SUFFIX) == ("quarantine/", ".jsonl")
    assert (contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX) == ("aggregates/", ".json")
    assert (contract.REPORTS_PREFIX, contract.REPORTS_SUFFIX) == ("reports/", ".json")


def test_each_environment_variable_is_named_as_its_attribute() -> None:
    names = {name: value for name, value in vars(Env).items() if not name.startswith("_")}
    assert names == {name: name for name in names}
    assert {"PIPELINE_STAGE", "DEST_BUCKET", "METRICS_NAMESPACE", "DATABASE_SECRET_ARN"} <= set(names)


def test_the_defaults() -> None:
    assert contract.METRICS_NAMESPACE == "DataPipeline"
    assert (contract.DEFAULT_WINDOW, contract.DEFAULT_DIMENSIONS, contract.DEFAULT_METRICS) == (
        "1h",
        ("type", "source"),
        ("value",),
    )
    assert (contract.DEFAULT_MAX_RECORD_BYTES, contract.REPORT_TOP_GROUPS) == (1_048_576, 10)
    assert contract.OVERWRITE_MODES == ("replace", "append")
    assert contract.DEFAULT_OVERWRITE_MODE == contract.OVERWRITE_REPLACE == "replace"


def test_the_metric_names_of_each_stage() -> None:
    records = ["RecordsRead", "RecordsValid", "RecordsQuarantined", "BlankLines", "ObjectsWritten"]
    groups = ["GroupsRead", "GroupsLoaded", "ObjectsRejected", "BlankLines", "ObjectsWritten"]
    assert list(contract.STAGE_METRIC_NAMES[Stage.INGESTION].values()) == records
    assert list(contract.STAGE_METRIC_NAMES[Stage.PROCESSING].values()) == records
    assert list(contract.STAGE_METRIC_NAMES[Stage.ANALYTICS].values()) == groups
    assert (contract.OVER_BUDGET_METRIC, contract.STAGE_DIMENSION) == ("ObjectsOverBudget", "Stage")


def test_the_migrate_event() -> None:
    assert contract.MIGRATE_EVENT == {"action": "migrate"}


def test_the_metadata_ingestion_puts_on_its_outputs() -> None:
    assert (contract.SOURCE_VERSION_METADATA, contract.SOURCE_SEQUENCER_METADATA) == (
        "source-version-id",
        "source-sequencer",
    )
    assert (contract.PART_METADATA, contract.PARTS_METADATA, contract.DOCUMENT_SHA256_METADATA) == (
        "records-part",
        "records-parts",
        "document-sha256",
    )
    assert (contract.STAGING_PREFIX, contract.PART_MARKER, contract.PART_DIGITS) == ("staging/", ".p", 5)
