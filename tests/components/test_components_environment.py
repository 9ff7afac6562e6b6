"""Each stage's function environment in the real program under mocks: the contract of docs/architecture.md
("Function environment"), rendered from the stage table."""

from __future__ import annotations

from handlers import contract
from handlers.contract import BucketRole, Env, Stage

# Each stage's own variables, beside the ones every stage has (its name, its destination, the namespace).
OWN_VARIABLES = {
    Stage.INGESTION: {
        Env.RECORDS_PREFIX: contract.RECORDS_PREFIX,
        Env.QUARANTINE_PREFIX: contract.QUARANTINE_PREFIX,
        Env.INPUT_PREFIX: contract.INPUT_PREFIX,
        Env.INPUT_SUFFIXES: ",".join(contract.INPUT_SUFFIXES),
        Env.MAX_RECORD_BYTES: str(contract.DEFAULT_MAX_RECORD_BYTES),
    },
    Stage.PROCESSING: {
        Env.AGGREGATES_PREFIX: contract.AGGREGATES_PREFIX,
        Env.AGGREGATION_WINDOW: contract.DEFAULT_WINDOW,
        Env.AGGREGATION_DIMENSIONS: ",".join(contract.DEFAULT_DIMENSIONS),
        Env.AGGREGATION_METRICS: ",".join(contract.DEFAULT_METRICS),
    },
    Stage.ANALYTICS: {
        Env.REPORTS_PREFIX: contract.REPORTS_PREFIX,
        Env.REPORT_TOP_GROUPS: str(contract.REPORT_TOP_GROUPS),
        Env.OVERWRITE_MODE: contract.DEFAULT_OVERWRITE_MODE,
    },
}
DESTINATION = {
    Stage.INGESTION: BucketRole.PROCESSED,
    Stage.PROCESSING: BucketRole.ANALYTICS,
    Stage.ANALYTICS: BucketRole.ANALYTICS,
}


def test_environment_follows_the_architecture_contract(dev_stack):
    env = {stage: f["environment"] for stage, f in dev_stack.functions().items()}
    buckets = dev_stack.buckets()
    assert set(env) == set(contract.STAGES)
    for stage in contract.STAGES:
        every_stage = {
            Env.PIPELINE_STAGE: stage,
            Env.DEST_BUCKET: buckets[DESTINATION[stage]],
            Env.METRICS_NAMESPACE: contract.METRICS_NAMESPACE,
        }
        assert env[stage] == every_stage | OWN_VARIABLES[stage], stage


def test_prod_analytics_gets_the_existing_secret_and_topic(prod_stack):
    env = prod_stack.functions()[Stage.ANALYTICS]["environment"]
    assert env[Env.DATABASE_SECRET_ARN] == prod_stack.config["data-pipeline:database"]["secretArn"]
    assert env[Env.SUMMARY_TOPIC_ARN] == prod_stack.config["data-pipeline:summaryTopicArn"]
    assert Env.RECORD_SCHEMA not in prod_stack.functions()[Stage.INGESTION]["environment"]
