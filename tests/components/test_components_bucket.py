"""`DataBucket` and `BucketTriggers` in the real program under mocks: each bucket's secure defaults and what
it keeps on destroy; one notification per triggering bucket, the chain's filters, the permissions it waits
for."""

from __future__ import annotations

from collections import Counter

import pytest
from component_support import BUCKET, bucket_child, child_types

from components.stage_table import STAGE_TABLE
from handlers import contract
from handlers.contract import BucketRole, Stage

NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
PERMISSION = "aws:lambda/permission:Permission"
BUCKETS = contract.BUCKET_ROLES

BUCKET_CHILDREN = Counter(
    {
        "aws:s3/bucket:Bucket": 1,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
        "aws:s3/bucketVersioning:BucketVersioning": 1,
        "aws:s3/bucketPolicy:BucketPolicy": 1,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
    }
)


def bucket_settings(stack, role):
    """The resources a DataBucket declares besides the bucket itself (its settings)."""
    component = stack.get(role, "data-pipeline:bucket:DataBucket")
    return [r for r in stack.children(component) if r.type != "aws:s3/bucket:Bucket"]


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
        BucketRole.RAW: sorted(
            (functions[Stage.INGESTION], contract.INPUT_PREFIX, suffix, created)
            for suffix in contract.INPUT_SUFFIXES
        ),
        BucketRole.PROCESSED: [
            (functions[Stage.PROCESSING], contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX, created)
        ],
        BucketRole.ANALYTICS: [
            (functions[Stage.ANALYTICS], contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX, created)
        ],
    }


def test_custom_prefix_and_suffixes_reach_the_filters_and_the_policy(evaluate):
    # GIVEN another input prefix and two suffixes
    stack = evaluate("dev", {"inputPrefix": "landing/", "inputSuffixes": [".csv.json", ".log"]})
    # THEN the raw notification, the ingestion policy and its environment all use them
    raw = stack.notifications()[BucketRole.RAW]
    assert sorted((t["prefix"], t["suffix"]) for t in raw) == [
        ("landing/", ".csv.json"),
        ("landing/", ".log"),
    ]
    read = stack.role_policies()[Stage.INGESTION]["Statement"][0]
    raw_bucket = stack.buckets()[BucketRole.RAW]
    assert read["Resource"] == [
        f"arn:aws:s3:::{raw_bucket}/landing/*.csv.json",
        f"arn:aws:s3:::{raw_bucket}/landing/*.log",
    ]
    assert stack.functions()[Stage.INGESTION]["environment"][contract.Env.INPUT_PREFIX] == "landing/"


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_each_notification_depends_on_its_lambda_permissions(request, stack_name):
    # GIVEN every notification and the permission of the stage it targets
    stack = request.getfixturevalue(stack_name + "_stack")
    stage_of_bucket = {stage.source: stage.name for stage in STAGE_TABLE}
    names = {v: k for k, v in stack.buckets().items()}
    for notification in stack.by_type(NOTIFICATION):
        stage = stage_of_bucket[names[notification.inputs["bucket"]]]
        (permission,) = [r for r in stack.by_type(PERMISSION) if r.parent.endswith(f"PipelineStage::{stage}")]
        (invoke_config,) = [
            r for r in stack.by_type(INVOKE_CONFIG) if r.parent.endswith(f"PipelineStage::{stage}")
        ]
        # THEN the permission is an explicit dependency, so S3 can validate the destination when it saves,
        # and so is the stage's async-invoke config, so the first events find their failure destination
        # (the analytics bucket's also waits for the schema migration, where the stack has a database, and
        # for the VPC endpoints the stack creates, where the function is in a VPC)
        migrations = tuple(
            r.urn for r in stack.by_type("aws:lambda/invocation:Invocation") if stage == Stage.ANALYTICS
        )
        endpoints = tuple(
            r.urn
            for r in stack.resources
            if stage == Stage.ANALYTICS and r.custom and "data-pipeline:network:ServiceEndpoints" in r.urn
        )
        # (the SDK sends a resource's dependencies as a set: their order means nothing)
        assert sorted(notification.depends_on) == sorted(
            (permission.urn, invoke_config.urn, *migrations, *endpoints)
        )


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_permissions_name_the_source_bucket_and_account(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    source = {stage.name: stage.source for stage in STAGE_TABLE}
    buckets = stack.buckets()
    for permission in stack.by_type(PERMISSION):
        stage = permission.parent.rsplit("::", 1)[1]
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["principal"] == "s3.amazonaws.com"
        assert permission.inputs["function"] == stack.functions()[stage]["name"]
        assert permission.inputs["sourceArn"] == f"arn:aws:s3:::{buckets[source[stage]]}"
        assert permission.inputs["sourceAccount"] == "123456789012"


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
@pytest.mark.parametrize("role", BUCKETS)
def test_each_bucket_has_exactly_its_secure_defaults(request, stack_name, role):
    # GIVEN the evaluated stack
    stack = request.getfixturevalue(f"{stack_name}_stack")
    # WHEN the DataBucket's children are counted THEN they are the bucket and its six configuration resources
    assert child_types(stack, role, BUCKET) == BUCKET_CHILDREN


def test_dev_buckets_are_force_destroyed_and_not_retained(dev_stack):
    for role in BUCKETS:
        bucket = dev_stack.get(role, "aws:s3/bucket:Bucket")
        assert bucket.inputs["forceDestroy"] is True
        assert bucket.retain_on_delete is False
        assert not [r.name for r in bucket_settings(dev_stack, role) if r.retain_on_delete]


def test_prod_buckets_are_retained_on_delete_and_never_emptied(prod_stack):
    for role in BUCKETS:
        bucket = prod_stack.get(role, "aws:s3/bucket:Bucket")
        assert bucket.inputs["forceDestroy"] is False
        assert bucket.retain_on_delete is True


def test_prod_buckets_keep_their_security_settings_on_destroy(prod_stack):
    # GIVEN the prod stack, whose buckets outlive `pulumi destroy`
    for role in BUCKETS:
        settings = bucket_settings(prod_stack, role)
        # THEN every setting of a kept bucket is kept with it: destroying the public access block, the
        # TLS-only policy, the encryption, versioning or lifecycle would strip them from the kept data
        assert {r.type.rsplit(":", 1)[1] for r in settings} >= {
            "BucketPublicAccessBlock",
            "BucketOwnershipControls",
            "BucketServerSideEncryptionConfiguration",
            "BucketVersioning",
            "BucketPolicy",
            "BucketLifecycleConfiguration",
        }
        assert [r.name for r in settings if not r.retain_on_delete] == []


def test_public_access_is_blocked_by_all_four_flags(dev_stack):
    block = bucket_child(dev_stack, BucketRole.RAW, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert {f: block.inputs[f] for f in flags} == dict.fromkeys(flags, True)


def test_ownership_is_bucket_owner_enforced(dev_stack):
    controls = bucket_child(
        dev_stack, BucketRole.PROCESSED, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    )
    assert controls.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_dev_buckets_use_sse_s3(dev_stack):
    sse = bucket_child(
        dev_stack,
        BucketRole.RAW,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    (rule,) = sse.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_prod_buckets_use_sse_kms_with_a_bucket_key(prod_stack):
    kms_key = prod_stack.config["data-pipeline:kmsKeyArn"]
    for role in BUCKETS:
        sse = bucket_child(
            prod_stack,
            role,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        )
        (rule,) = sse.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": kms_key,
        }
        assert rule["bucketKeyEnabled"] is True


def test_versioning_is_on_for_raw_only_by_default(dev_stack):
    status = {
        role: bucket_child(dev_stack, role, "aws:s3/bucketVersioning:BucketVersioning").inputs[
            "versioningConfiguration"
        ]["status"]
        for role in BUCKETS
    }
    assert status == {
        BucketRole.RAW: "Enabled",
        BucketRole.PROCESSED: "Suspended",
        BucketRole.ANALYTICS: "Suspended",
    }


def test_lifecycle_aborts_uploads_and_expires_noncurrent_versions(prod_stack):
    lifecycle = bucket_child(
        prod_stack, BucketRole.RAW, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 7
    }
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    versioning = bucket_child(prod_stack, BucketRole.RAW, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.urn in lifecycle.depends_on


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_only_the_processed_bucket_expires_what_ingestion_left_staged(request, stack_name):
    # GIVEN the evaluated stack (ingestion stages records/ parts in the processed bucket)
    stack = request.getfixturevalue(f"{stack_name}_stack")
    kind = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    rules = {role: bucket_child(stack, role, kind).inputs["rules"] for role in BUCKETS}
    # WHEN the lifecycle rules on a prefix are read
    prefixed = {role: [r for r in found if r["filter"].get("prefix")] for role, found in rules.items()}
    # THEN the processed bucket's staging prefix expires after a day, current and noncurrent versions
    assert prefixed == {
        BucketRole.RAW: [],
        BucketRole.ANALYTICS: [],
        BucketRole.PROCESSED: [
            {
                "id": "expire-staged-0",
                "status": "Enabled",
                "filter": {"prefix": contract.STAGING_PREFIX},
                "expiration": {"days": contract.STAGING_EXPIRATION_DAYS},
                "noncurrentVersionExpiration": {"noncurrentDays": contract.STAGING_EXPIRATION_DAYS},
            }
        ],
    }
    # AND every bucket still aborts incomplete multipart uploads, the staging prefix's included
    assert all("abort-incomplete-multipart-uploads" in {r["id"] for r in found} for found in rules.values())
