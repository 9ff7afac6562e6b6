"""S3 notifications: one per triggering bucket, the chain's filters, and the permissions they wait for."""

from __future__ import annotations

import pytest

NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
PERMISSION = "aws:lambda/permission:Permission"


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_exactly_one_notification_per_triggering_bucket(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    buckets = [n.inputs["bucket"] for n in stack.by_type(NOTIFICATION)]
    assert sorted(buckets) == sorted(stack.buckets().values())


def test_notification_filters_follow_the_chain(dev_stack):
    functions = {stage: f["arn"] for stage, f in dev_stack.functions().items()}
    targets = {
        role: sorted((t["function_arn"], t["prefix"], t["suffix"], tuple(t["events"])) for t in entries)
        for role, entries in dev_stack.notifications().items()
    }
    created = ("s3:ObjectCreated:*",)
    assert targets == {
        "raw": sorted(
            (functions["ingestion"], "incoming/", suffix, created)
            for suffix in (".json", ".jsonl", ".ndjson", ".gz")
        ),
        "processed": [(functions["processing"], "records/", ".jsonl.gz", created)],
        "analytics": [(functions["analytics"], "aggregates/", ".json", created)],
    }


def test_custom_prefix_and_suffixes_reach_the_filters_and_the_policy(evaluate):
    # GIVEN another input prefix and two suffixes
    stack = evaluate("dev", {"inputPrefix": "landing/", "inputSuffixes": [".csv.json", ".log"]})
    # THEN the raw notification, the ingestion policy and its environment all use them
    raw = stack.notifications()["raw"]
    assert sorted((t["prefix"], t["suffix"]) for t in raw) == [
        ("landing/", ".csv.json"),
        ("landing/", ".log"),
    ]
    read = stack.role_policies()["ingestion"]["Statement"][0]
    raw_bucket = stack.buckets()["raw"]
    assert read["Resource"] == [
        f"arn:aws:s3:::{raw_bucket}/landing/*.csv.json",
        f"arn:aws:s3:::{raw_bucket}/landing/*.log",
    ]
    assert stack.functions()["ingestion"]["environment"]["INPUT_PREFIX"] == "landing/"


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_each_notification_depends_on_its_lambda_permissions(request, stack_name):
    # GIVEN every notification and the permission of the stage it targets
    stack = request.getfixturevalue(stack_name + "_stack")
    stage_of_bucket = {"raw": "ingestion", "processed": "processing", "analytics": "analytics"}
    names = {v: k for k, v in stack.buckets().items()}
    for notification in stack.by_type(NOTIFICATION):
        stage = stage_of_bucket[names[notification.inputs["bucket"]]]
        (permission,) = [r for r in stack.by_type(PERMISSION) if r.parent.endswith(f"PipelineStage::{stage}")]
        # THEN the permission is an explicit dependency, so S3 can validate the destination when it saves
        # (the analytics bucket's also waits for the schema migration, where the stack has a database)
        migrations = tuple(
            r.urn for r in stack.by_type("aws:lambda/invocation:Invocation") if stage == "analytics"
        )
        # (the SDK sends a resource's dependencies as a set: their order means nothing)
        assert sorted(notification.depends_on) == sorted((permission.urn, *migrations))


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_permissions_name_the_source_bucket_and_account(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    source = {"ingestion": "raw", "processing": "processed", "analytics": "analytics"}
    buckets = stack.buckets()
    for permission in stack.by_type(PERMISSION):
        stage = permission.parent.rsplit("::", 1)[1]
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["principal"] == "s3.amazonaws.com"
        assert permission.inputs["function"] == stack.functions()[stage]["name"]
        assert permission.inputs["sourceArn"] == f"arn:aws:s3:::{buckets[source[stage]]}"
        assert permission.inputs["sourceAccount"] == "123456789012"
