"""`PipelineStage`: in the real program under mocks, each stage's role, policy, log group, function, failure
queue, async-invoke config and invoke permission, with their options."""

from __future__ import annotations

from collections import Counter

import pytest
from component_support import STAGE, child_types, stage_child

from handlers.contract import STAGES, Stage

# One child of each of these types.
STAGE_CHILDREN = Counter(
    [
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:lambda/function:Function",
        "aws:sqs/queue:Queue",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:lambda/permission:Permission",
    ]
)


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_exactly_what_it_needs(request, stack_name, stage):
    stack = request.getfixturevalue(f"{stack_name}_stack")
    assert child_types(stack, stage, STAGE) == STAGE_CHILDREN


def test_failure_queues_are_encrypted_and_keep_messages_14_days(dev_stack, prod_stack):
    dev_queue = stage_child(dev_stack, Stage.INGESTION, "aws:sqs/queue:Queue")
    assert dev_queue.inputs["sqsManagedSseEnabled"] is True
    prod_queue = stage_child(prod_stack, Stage.INGESTION, "aws:sqs/queue:Queue")
    assert prod_queue.inputs["kmsMasterKeyId"] == prod_stack.config["data-pipeline:kmsKeyArn"]
    assert dev_queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600


@pytest.mark.parametrize("stage", STAGES)
def test_failed_events_go_to_the_stage_failure_queue(dev_stack, stage):
    config = stage_child(dev_stack, stage, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    queue = stage_child(dev_stack, stage, "aws:sqs/queue:Queue")
    policy = stage_child(dev_stack, stage, "aws:iam/rolePolicy:RolePolicy")
    assert config.inputs["destinationConfig"] == {"onFailure": {"destination": queue.outputs["arn"]}}
    # Pulumi.dev.yaml: one retry, one hour.
    assert config.inputs["maximumRetryAttempts"] == 1
    assert config.inputs["maximumEventAgeInSeconds"] == 3600
    assert policy.urn in config.depends_on


@pytest.mark.parametrize("stage", STAGES)
def test_function_logs_json_to_its_own_log_group(prod_stack, stage):
    function = stage_child(prod_stack, stage, "aws:lambda/function:Function")
    log_group = stage_child(prod_stack, stage, "aws:cloudwatch/logGroup:LogGroup")
    assert function.inputs["loggingConfig"]["logFormat"] == "JSON"
    assert function.inputs["loggingConfig"]["logGroup"] == log_group.outputs["name"]
    assert log_group.inputs["name"] == f"/aws/lambda/{function.inputs['name']}"
    expected = 365 if stage == Stage.ANALYTICS else 90
    assert log_group.inputs["retentionInDays"] == expected


@pytest.mark.parametrize("stage", STAGES)
def test_function_waits_for_its_policy(dev_stack, stage):
    function = stage_child(dev_stack, stage, "aws:lambda/function:Function")
    policy = stage_child(dev_stack, stage, "aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in function.depends_on


def test_prod_function_settings_follow_the_stack_config(prod_stack):
    functions = prod_stack.functions()
    assert {s: (f["memory_mb"], f["timeout_seconds"]) for s, f in functions.items()} == {
        Stage.INGESTION: (1769, 900),
        Stage.PROCESSING: (1769, 300),
        Stage.ANALYTICS: (1024, 300),
    }
    reserved = {
        s: stage_child(prod_stack, s, "aws:lambda/function:Function").inputs.get(
            "reservedConcurrentExecutions"
        )
        for s in STAGES
    }
    # None reserved: a new account's concurrency quota (often 10) could not hold any reservation
    assert reserved == {Stage.INGESTION: None, Stage.PROCESSING: None, Stage.ANALYTICS: None}
    storage = {
        s: stage_child(prod_stack, s, "aws:lambda/function:Function").inputs["ephemeralStorage"]["size"]
        for s in STAGES
    }
    assert storage == {Stage.INGESTION: 2048, Stage.PROCESSING: 512, Stage.ANALYTICS: 512}
    assert {f["runtime"] for f in functions.values()} == {"python3.13"}
    assert {tuple(f["architectures"]) for f in functions.values()} == {("arm64",)}
    layer = prod_stack.by_type("aws:lambda/layerVersion:LayerVersion")[0]
    assert layer.inputs["compatibleRuntimes"] == ["python3.13"]
    assert layer.inputs["compatibleArchitectures"] == ["arm64"]


def test_only_the_analytics_function_is_in_the_vpc(prod_stack):
    in_vpc = {
        s: "vpcConfig" in stage_child(prod_stack, s, "aws:lambda/function:Function").inputs for s in STAGES
    }
    assert in_vpc == {Stage.INGESTION: False, Stage.PROCESSING: False, Stage.ANALYTICS: True}
    vpc = stage_child(prod_stack, Stage.ANALYTICS, "aws:lambda/function:Function").inputs["vpcConfig"]
    assert vpc == {
        "subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"],
        "securityGroupIds": ["sg-0c3d4e5f607182930"],
    }


def test_handler_strings_match_the_code_archive(dev_stack):
    import zipfile

    from components.stage_table import describe

    for stage, function in dev_stack.functions().items():
        # the handler the stage table names, in a module the code archive ships
        assert function["handler"] == describe(stage).handler
        module, _, name = function["handler"].rpartition(".")
        assert module.startswith("handlers.")
        assert name == "handler"
        with zipfile.ZipFile(function["code_path"]) as archive:
            assert module.replace(".", "/") + ".py" in archive.namelist(), function["handler"]


@pytest.mark.parametrize("stage", STAGES)
def test_system_logs_keep_the_report_lines(prod_stack, stage):
    # Lambda's START and REPORT lines (duration, memory used) are INFO system logs: WARN would drop them
    function = stage_child(prod_stack, stage, "aws:lambda/function:Function")
    assert function.inputs["loggingConfig"]["systemLogLevel"] == "INFO"
    assert function.inputs["loggingConfig"]["applicationLogLevel"] == "INFO"


def test_ephemeral_storage_is_a_stage_setting(evaluate):
    stack = evaluate("dev", {"stages": {Stage.PROCESSING: {"ephemeralStorageMb": 10240}}})
    function = stage_child(stack, Stage.PROCESSING, "aws:lambda/function:Function")
    assert function.inputs["ephemeralStorage"] == {"size": 10240}
    assert stage_child(stack, Stage.INGESTION, "aws:lambda/function:Function").inputs["ephemeralStorage"] == {
        "size": 512
    }
