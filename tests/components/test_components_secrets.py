"""Every key set with `--secret` stays secret: the keys whose values only reach the function environment,
the role policy, the migration and the alarm subscription are wrapped as Pulumi secrets there; a key that
becomes a name, ID or filter AWS shows is refused with `--secret`, with the reason."""

from __future__ import annotations

import json

import pytest
from component_support import stage_child

from components.config import KEPT_SECRET_KEYS, ConfigError, parse_config
from devtools.harness import Secret, StackEvaluationError
from devtools.harness.declared import is_secret, plain
from handlers import contract
from handlers.contract import BucketRole, Stage

APPEND = contract.OVERWRITE_APPEND

TOPIC = "arn:aws:sns:eu-west-1:111122223333:data-pipeline-dev-summaries"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:data-pipeline/dev/database-AbCdEf"
FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def secret_stack(evaluate):
    return evaluate(
        "dev",
        {
            "summaryTopicArn": Secret(TOPIC),
            "database": Secret({"secretArn": SECRET_ARN}),
            "alarmEmail": Secret("oncall@example.com"),
            "recordSchema": Secret({"type": "object"}),
            "aggregation": Secret({"window": "1h", "dimensions": ["tenant"], "metrics": ["value"]}),
        },
    )


def _environment(stack, stage):
    return stage_child(stack, stage, FUNCTION).inputs["environment"]


def test_environment_variables_from_secret_keys_are_secret(secret_stack):
    # (the SDK sends a function's whole environment as one secret when any variable in it is one)
    for stage in (Stage.INGESTION, Stage.PROCESSING, Stage.ANALYTICS):
        assert is_secret(_environment(secret_stack, stage)), stage
    analytics = plain(_environment(secret_stack, Stage.ANALYTICS))["variables"]
    assert analytics[contract.Env.SUMMARY_TOPIC_ARN] == TOPIC
    assert analytics[contract.Env.DATABASE_SECRET_ARN] == SECRET_ARN
    assert (
        plain(_environment(secret_stack, Stage.PROCESSING))["variables"][contract.Env.AGGREGATION_DIMENSIONS]
        == "tenant"
    )


def test_only_the_stages_a_secret_reaches_get_a_secret_environment(evaluate):
    stack = evaluate("dev", {"summaryTopicArn": Secret(TOPIC)})
    assert is_secret(_environment(stack, Stage.ANALYTICS))
    assert not is_secret(_environment(stack, Stage.INGESTION))
    assert not is_secret(_environment(stack, Stage.PROCESSING))


def test_the_policy_naming_a_secret_topic_or_secret_is_secret(secret_stack):
    policy = stage_child(secret_stack, Stage.ANALYTICS, "aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    assert is_secret(policy)
    statements = {s["Sid"]: s for s in json.loads(plain(policy))["Statement"]}
    assert statements["PublishSummary"]["Resource"] == [TOPIC]
    # the stages that do not use them keep a plain policy
    ingestion = stage_child(secret_stack, Stage.INGESTION, "aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    assert not is_secret(ingestion)


def test_the_migration_and_the_subscription_keep_them_secret(secret_stack):
    (migration,) = secret_stack.by_type("aws:lambda/invocation:Invocation")
    assert is_secret(migration.inputs["triggers"]) or is_secret(migration.inputs["triggers"]["database"])
    (subscription,) = secret_stack.by_type("aws:sns/topicSubscription:TopicSubscription")
    assert is_secret(subscription.inputs["endpoint"])


def test_without_secret_nothing_is_wrapped(prod_stack):
    assert not is_secret(_environment(prod_stack, Stage.ANALYTICS))


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("buckets", {BucketRole.RAW: "my-raw"}, "bucket names are public"),
        (
            "kmsKeyArn",
            "arn:aws:kms:eu-west-1:111122223333:key/0f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f",
            "key ARN",
        ),
        ("inputPrefix", "landing/", "notification filter"),
        ("runtime", "python3.12", "a setting of the stack, not a secret"),
    ],
)
def test_a_key_the_stack_cannot_keep_secret_is_refused_with_secret(key, value, reason):
    with pytest.raises(ConfigError) as raised:
        parse_config({key: value}, project="data-pipeline", stack="dev", secret_keys=frozenset({key}))
    (problem,) = raised.value.problems
    assert problem.key == f"data-pipeline:{key}"
    assert "is set with --secret, but the stack cannot keep it secret" in problem.message
    assert reason in problem.message
    assert "without --secret" in problem.message


def test_the_program_refuses_it_too(evaluate):
    with pytest.raises(StackEvaluationError, match="data-pipeline:buckets: is set with --secret"):
        evaluate("dev", {"buckets": Secret({BucketRole.RAW: "my-raw-data"})})


def test_the_kept_keys_parse_as_secrets():
    cfg = parse_config(
        {"alarmEmail": "a@example.com", "overwrites": APPEND},
        project="data-pipeline",
        stack="dev",
        secret_keys=frozenset({"alarmEmail", "overwrites"}),
    )
    assert cfg.secret_keys == {"alarmEmail", "overwrites"}
    assert set(cfg.secret_keys) <= set(KEPT_SECRET_KEYS)
