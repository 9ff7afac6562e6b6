"""Environment parsing: every problem reported at once, in one ConfigError, before any I/O."""

from __future__ import annotations

import pytest

from handlers import contract
from handlers.config import load_analytics, load_ingestion, load_processing
from handlers.errors import ConfigError
from handlers.records import RecordChecker


def test_processing_reports_every_bad_variable_at_once() -> None:
    environ = {
        contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
        contract.Env.AGGREGATION_WINDOW: "2h",
        contract.Env.AGGREGATION_DIMENSIONS: "type,,type",
        contract.Env.AGGREGATES_PREFIX: "/aggregates",
    }
    with pytest.raises(ConfigError) as caught:
        load_processing(environ)
    message = str(caught.value)
    for fragment in (
        "PIPELINE_STAGE is 'ingestion' but this is the processing handler",
        "DEST_BUCKET is required",
        "AGGREGATION_WINDOW must be one of 1m, 5m, 15m, 1h, 1d, got '2h'",
        "AGGREGATION_DIMENSIONS has an empty item",
        "AGGREGATION_DIMENSIONS has a duplicate item",
        "AGGREGATES_PREFIX must be a key prefix ending in '/'",
    ):
        assert fragment in message


def test_defaults_follow_the_architecture_contract() -> None:
    config = load_processing(
        {contract.Env.PIPELINE_STAGE: contract.Stage.PROCESSING, contract.Env.DEST_BUCKET: "b"}
    )
    assert (config.window, config.dimensions, config.metrics, config.aggregates_prefix) == (
        contract.DEFAULT_WINDOW,
        contract.DEFAULT_DIMENSIONS,
        contract.DEFAULT_METRICS,
        contract.AGGREGATES_PREFIX,
    )
    ingestion = load_ingestion(
        {contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION, contract.Env.DEST_BUCKET: "b"}
    )
    assert ingestion.input_suffixes == contract.INPUT_SUFFIXES
    assert ingestion.max_record_bytes == contract.DEFAULT_MAX_RECORD_BYTES
    assert ingestion.record_schema["required"] == ["id", "timestamp", "type"]
    analytics = load_analytics(
        {contract.Env.PIPELINE_STAGE: contract.Stage.ANALYTICS, contract.Env.DEST_BUCKET: "b"}
    )
    assert (analytics.database_secret_arn, analytics.summary_topic_arn, analytics.report_top_groups) == (
        None,
        None,
        contract.REPORT_TOP_GROUPS,
    )


@pytest.mark.parametrize(
    ("value", "fragment"), [("[1]", "must be a JSON object"), ("{oops", "RECORD_SCHEMA is invalid")]
)
def test_record_schema_must_be_a_json_object(value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="RECORD_SCHEMA is invalid") as caught:
        load_ingestion(
            {
                contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
                contract.Env.DEST_BUCKET: "b",
                contract.Env.RECORD_SCHEMA: value,
            }
        )
    assert fragment in str(caught.value)


def test_schema_that_is_not_a_json_schema_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        RecordChecker({"type": "nonsense"})


def test_max_record_bytes_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="MAX_RECORD_BYTES must be at least 1, got 0"):
        load_ingestion(
            {
                contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
                contract.Env.DEST_BUCKET: "b",
                contract.Env.MAX_RECORD_BYTES: "0",
            }
        )


def test_a_metric_name_longer_than_the_database_column_is_a_config_error() -> None:
    # GIVEN a metric name of 257 characters, which analytics could not store
    environ = {
        contract.Env.PIPELINE_STAGE: contract.Stage.PROCESSING,
        contract.Env.DEST_BUCKET: "b",
        contract.Env.AGGREGATION_METRICS: "m" * (contract.MAX_FIELD_NAME + 1),
    }
    # WHEN the processing config is read THEN it is refused at cold start
    with pytest.raises(ConfigError, match="AGGREGATION_METRICS has an item longer than 256 characters"):
        load_processing(environ)
