"""Each stage's function environment in the real program under mocks: the contract of docs/architecture.md
("Function environment"), rendered from the stage table."""

from __future__ import annotations


def test_environment_follows_the_architecture_contract(dev_stack):
    env = {stage: f["environment"] for stage, f in dev_stack.functions().items()}
    buckets = dev_stack.buckets()
    assert env["ingestion"] == {
        "PIPELINE_STAGE": "ingestion",
        "DEST_BUCKET": buckets["processed"],
        "METRICS_NAMESPACE": "DataPipeline",
        "RECORDS_PREFIX": "records/",
        "QUARANTINE_PREFIX": "quarantine/",
        "INPUT_PREFIX": "incoming/",
        "INPUT_SUFFIXES": ".json,.jsonl,.ndjson,.gz",
        "MAX_RECORD_BYTES": "1048576",
    }
    assert env["processing"] == {
        "PIPELINE_STAGE": "processing",
        "DEST_BUCKET": buckets["analytics"],
        "METRICS_NAMESPACE": "DataPipeline",
        "AGGREGATES_PREFIX": "aggregates/",
        "AGGREGATION_WINDOW": "1h",
        "AGGREGATION_DIMENSIONS": "type,source",
        "AGGREGATION_METRICS": "value",
    }
    assert env["analytics"] == {
        "PIPELINE_STAGE": "analytics",
        "DEST_BUCKET": buckets["analytics"],
        "METRICS_NAMESPACE": "DataPipeline",
        "REPORTS_PREFIX": "reports/",
        "REPORT_TOP_GROUPS": "10",
        "OVERWRITE_MODE": "replace",
    }


def test_prod_analytics_gets_the_existing_secret_and_topic(prod_stack):
    env = prod_stack.functions()["analytics"]["environment"]
    assert env["DATABASE_SECRET_ARN"] == prod_stack.config["data-pipeline:database"]["secretArn"]
    assert env["SUMMARY_TOPIC_ARN"] == prod_stack.config["data-pipeline:summaryTopicArn"]
    assert "RECORD_SCHEMA" not in prod_stack.functions()["ingestion"]["environment"]
