"""Each stage's function environment in the real program under mocks: the contract of docs/architecture.md
("Function environment"), rendered from the stage table."""

from __future__ import annotations

from handlers import contract


def test_environment_follows_the_architecture_contract(dev_stack):
    env = {stage: f["environment"] for stage, f in dev_stack.functions().items()}
    buckets = dev_stack.buckets()
    assert env["ingestion"] == {
        contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
        contract.Env.DEST_BUCKET: buckets["processed"],
        contract.Env.METRICS_NAMESPACE: contract.METRICS_NAMESPACE,
        contract.Env.RECORDS_PREFIX: contract.RECORDS_PREFIX,
        contract.Env.QUARANTINE_PREFIX: contract.QUARANTINE_PREFIX,
        contract.Env.INPUT_PREFIX: contract.INPUT_PREFIX,
        contract.Env.INPUT_SUFFIXES: ",".join(contract.INPUT_SUFFIXES),
        contract.Env.MAX_RECORD_BYTES: str(contract.DEFAULT_MAX_RECORD_BYTES),
    }
    assert env["processing"] == {
        contract.Env.PIPELINE_STAGE: contract.Stage.PROCESSING,
        contract.Env.DEST_BUCKET: buckets["analytics"],
        contract.Env.METRICS_NAMESPACE: contract.METRICS_NAMESPACE,
        contract.Env.AGGREGATES_PREFIX: contract.AGGREGATES_PREFIX,
        contract.Env.AGGREGATION_WINDOW: contract.DEFAULT_WINDOW,
        contract.Env.AGGREGATION_DIMENSIONS: ",".join(contract.DEFAULT_DIMENSIONS),
        contract.Env.AGGREGATION_METRICS: ",".join(contract.DEFAULT_METRICS),
    }
    assert env["analytics"] == {
        contract.Env.PIPELINE_STAGE: contract.Stage.ANALYTICS,
        contract.Env.DEST_BUCKET: buckets["analytics"],
        contract.Env.METRICS_NAMESPACE: contract.METRICS_NAMESPACE,
        contract.Env.REPORTS_PREFIX: contract.REPORTS_PREFIX,
        contract.Env.REPORT_TOP_GROUPS: str(contract.REPORT_TOP_GROUPS),
        contract.Env.OVERWRITE_MODE: contract.DEFAULT_OVERWRITE_MODE,
    }


def test_prod_analytics_gets_the_existing_secret_and_topic(prod_stack):
    env = prod_stack.functions()["analytics"]["environment"]
    assert env[contract.Env.DATABASE_SECRET_ARN] == prod_stack.config["data-pipeline:database"]["secretArn"]
    assert env[contract.Env.SUMMARY_TOPIC_ARN] == prod_stack.config["data-pipeline:summaryTopicArn"]
    assert contract.Env.RECORD_SCHEMA not in prod_stack.functions()["ingestion"]["environment"]
