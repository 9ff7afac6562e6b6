"""The stage table: one description per stage, and everything per stage derived from it."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from components import config
from components.chain import declared_chain
from components.config import Vpc, parse_config
from components.environment import stage_environment
from components.iam import StageGrants, stage_policy
from components.stage_table import (
    CONFIGURED_INPUT,
    STAGE_TABLE,
    Needs,
    Provided,
    Setting,
    describe,
)
from handlers import contract
from handlers.contract import PLANNING_RATES, BucketRole, Stage
from handlers.deadline import largest_object

ARN = {
    BucketRole.RAW: "arn:aws:s3:::r",
    BucketRole.PROCESSED: "arn:aws:s3:::p",
    BucketRole.ANALYTICS: "arn:aws:s3:::a",
}
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:summaries"
EVERYTHING = Provided(
    database_secret_arn=SECRET,
    summary_topic_arn=TOPIC,
    vpc=Vpc(subnet_ids=("subnet-0a1b2c3d",), security_group_ids=("sg-0a1b2c3d",)),
    region="eu-west-1",
)


def test_the_table_holds_the_three_stages_in_chain_order():
    assert [s.name for s in STAGE_TABLE] == [Stage.INGESTION, Stage.PROCESSING, Stage.ANALYTICS]
    assert config.STAGES == (Stage.INGESTION, Stage.PROCESSING, Stage.ANALYTICS)
    assert describe(Stage.PROCESSING) is STAGE_TABLE[1]
    # each stage reads its own bucket, in chain order (the on-program tests look stages up by it)
    assert [s.source for s in STAGE_TABLE] == [BucketRole.RAW, BucketRole.PROCESSED, BucketRole.ANALYTICS]
    with pytest.raises(KeyError):
        describe("reporting")


def test_each_stage_is_triggered_by_what_the_stage_before_it_writes():
    # The chain in the table itself: only the first stage reads the configured input.
    assert STAGE_TABLE[0].triggers is CONFIGURED_INPUT
    for producer, consumer in itertools.pairwise(STAGE_TABLE):
        assert consumer.source == producer.destination, consumer.name
        assert set(consumer.triggers) <= set(producer.writes), consumer.name


def test_the_graph_is_the_table_with_the_configured_input():
    graph = declared_chain("landing/", (".json", ".gz"))
    for stage in STAGE_TABLE:
        node = graph.node(stage.name)
        assert {t.bucket for t in node.triggers} == {stage.source}
        assert {w.bucket for w in node.writes} == {stage.destination}
    assert [(t.prefix, t.suffix) for t in graph.node(Stage.INGESTION).triggers] == [
        ("landing/", ".json"),
        ("landing/", ".gz"),
    ]


def test_every_setting_names_a_config_key_the_config_has():
    # GIVEN the default config WHEN every Setting of the table is resolved THEN each names a real attribute
    cfg = parse_config({}, project="data-pipeline", stack="dev")
    for stage in STAGE_TABLE:
        for variable, value in stage.environment.items():
            if isinstance(value, Setting):
                target = cfg
                for part in value.attribute().split("."):
                    assert hasattr(target, part), (stage.name, variable, value.key)
                    target = getattr(target, part)
                assert value.key.split(".")[0] in config.KNOWN_KEYS, (stage.name, variable)
        assert stage.size_hint.key in config.KNOWN_KEYS, stage.name


def test_settings_are_rendered_as_lambda_needs_strings():
    cfg = parse_config(
        {"aggregation": {"dimensions": [], "metrics": ["value", "count"]}, "maxRecordBytes": 2048},
        project="data-pipeline",
        stack="dev",
    )
    assert stage_environment(Stage.PROCESSING, cfg, "b")[contract.Env.AGGREGATION_DIMENSIONS] == ""
    assert stage_environment(Stage.PROCESSING, cfg, "b")[contract.Env.AGGREGATION_METRICS] == "value,count"
    assert stage_environment(Stage.INGESTION, cfg, "b")[contract.Env.MAX_RECORD_BYTES] == "2048"
    # an unset setting leaves its variable out
    assert contract.Env.RECORD_SCHEMA not in stage_environment(Stage.INGESTION, cfg, "b")


@pytest.mark.parametrize("stage", [s.name for s in STAGE_TABLE])
def test_a_stage_uses_only_what_its_description_needs(stage):
    # GIVEN a stack that provides a database, a summary topic and a VPC to every stage
    description = describe(stage)
    cfg = parse_config(
        {"summaryTopicArn": TOPIC, "database": {"secretArn": SECRET}}, project="data-pipeline", stack="dev"
    )
    node = declared_chain(cfg.input_prefix, cfg.input_suffixes).node(stage)
    grants = StageGrants(bucket_arns=ARN, log_group_arn="arn:aws:logs:x", failure_queue_arn="arn:aws:sqs:x")
    # WHEN its policy and environment are built
    sids = {s.sid for s in stage_policy(description, node, grants, EVERYTHING).statements}
    env = stage_environment(description, cfg, "b", SECRET)
    # THEN each need shows in both exactly when the table says the stage has it
    needs = description.needs
    assert ("ReadDatabaseSecret" in sids, contract.Env.DATABASE_SECRET_ARN in env) == (
        needs.database,
        needs.database,
    )
    assert ("PublishSummary" in sids, contract.Env.SUMMARY_TOPIC_ARN in env) == (
        needs.summary_topic,
        needs.summary_topic,
    )
    assert ("CreateNetworkInterfaces" in sids) == needs.vpc


def test_a_need_declared_in_the_table_reaches_that_stage():
    # GIVEN processing described as needing the summary topic
    processing = dataclasses.replace(describe(Stage.PROCESSING), needs=Needs(summary_topic=True))
    cfg = parse_config({"summaryTopicArn": TOPIC}, project="data-pipeline", stack="dev")
    node = declared_chain(cfg.input_prefix, cfg.input_suffixes).node(Stage.PROCESSING)
    grants = StageGrants(bucket_arns=ARN, log_group_arn="arn:aws:logs:x", failure_queue_arn="arn:aws:sqs:x")
    # THEN its policy and environment follow, with nothing else the stack provides
    statements = {s.sid: s for s in stage_policy(processing, node, grants, EVERYTHING).statements}
    assert statements["PublishSummary"].resources == (TOPIC,)
    assert "ReadDatabaseSecret" not in statements
    assert stage_environment(processing, cfg, "b", SECRET)[contract.Env.SUMMARY_TOPIC_ARN] == TOPIC
    assert contract.Env.DATABASE_SECRET_ARN not in stage_environment(processing, cfg, "b", SECRET)


def test_the_program_follows_the_table(dev_stack):
    functions = dev_stack.functions()
    buckets = dev_stack.buckets()
    for stage in STAGE_TABLE:
        assert functions[stage.name]["handler"] == stage.handler
        assert functions[stage.name]["environment"][contract.Env.DEST_BUCKET] == buckets[stage.destination]
        assert functions[stage.name]["environment"][contract.Env.PIPELINE_STAGE] == stage.name
        policy = {s["Sid"] for s in functions[stage.name]["policy"]["Statement"]}
        assert {stage.read_sid, stage.write_sid} <= policy


GIGABYTE = 10**9


@pytest.mark.parametrize("stage", [Stage.INGESTION, Stage.PROCESSING])
def test_default_size_gets_a_gigabyte_through_with_room_to_spare(stage):
    # A stage that reads a raw object's bytes (ingestion; processing its records/, a fifth of them) takes a
    # 1 GB input object at its default memory and timeout in at most half the time, at the measured rate
    # (handlers.contract.PLANNING_RATES, docs/capacity.md).
    described = describe(stage)
    largest = largest_object(PLANNING_RATES[stage], described.memory_mb, described.timeout_seconds)
    assert largest >= 2 * GIGABYTE
