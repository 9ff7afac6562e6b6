"""The resources the program declares: the full set per bucket and per stage, options, nothing deprecated."""

from __future__ import annotations

import textwrap
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from devtools.declared import DeclaredStack, StackEvaluationError, evaluate_stack

STAGES = ("ingestion", "processing", "analytics")
BUCKETS = ("raw", "processed", "analytics")

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
STAGE_CHILDREN = Counter(
    {
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
        "aws:cloudwatch/logGroup:LogGroup": 1,
        "aws:lambda/function:Function": 1,
        "aws:sqs/queue:Queue": 1,
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": 1,
        "aws:lambda/permission:Permission": 1,
    }
)


def child(stack: DeclaredStack, component: str, component_type: str, type_: str):
    parent = stack.get(component, component_type)
    (found,) = [r for r in stack.children(parent) if r.type == type_]
    return found


def stage_child(stack: DeclaredStack, stage: str, type_: str):
    return child(stack, stage, "data-pipeline:stage:PipelineStage", type_)


def bucket_child(stack: DeclaredStack, role: str, type_: str):
    return child(stack, role, "data-pipeline:bucket:DataBucket", type_)


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
@pytest.mark.parametrize("role", BUCKETS)
def test_each_bucket_has_exactly_its_secure_defaults(request, stack_name, role):
    # GIVEN the evaluated stack
    stack = request.getfixturevalue(f"{stack_name}_stack")
    # WHEN the DataBucket's children are listed
    component = stack.get(role, "data-pipeline:bucket:DataBucket")
    # THEN it holds exactly the bucket and its six configuration resources
    assert Counter(r.type for r in stack.children(component)) == BUCKET_CHILDREN


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_exactly_what_it_needs(request, stack_name, stage):
    stack = request.getfixturevalue(f"{stack_name}_stack")
    component = stack.get(stage, "data-pipeline:stage:PipelineStage")
    assert Counter(r.type for r in stack.children(component)) == STAGE_CHILDREN


def test_dev_stack_declares_no_database_secret_and_one_notification_per_bucket(dev_stack):
    counts = Counter(r.type for r in dev_stack.resources)
    assert counts["aws:secretsmanager/secret:Secret"] == 0
    assert counts["aws:s3/bucketNotification:BucketNotification"] == 3
    assert counts["aws:lambda/layerVersion:LayerVersion"] == 1
    assert counts["random:index/randomId:RandomId"] == 1


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_no_deprecated_resource_type_or_argument(request, stack_name):
    # GIVEN the evaluated stack
    stack = request.getfixturevalue(stack_name + "_stack")
    # THEN no *V2 class is used and no deprecated class or argument was recorded
    assert [r.type for r in stack.resources if r.type.split(":")[-1].endswith("V2")] == []
    assert [w for w in stack.warnings if "deprecated" in w.lower()] == []


def test_deprecation_check_catches_a_deprecated_class_and_argument(tmp_path: Path):
    # GIVEN a program using s3.BucketV2 and the deprecated inline `acl` argument
    (tmp_path / "Pulumi.yaml").write_text("name: deprecated-probe\nruntime: python\n")
    (tmp_path / "Pulumi.probe.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(
        textwrap.dedent(
            """
            from pulumi_aws import s3
            s3.BucketV2("old", acl="private")
            """
        )
    )
    # WHEN it is evaluated the same way
    stack = evaluate_stack("probe", project_dir=tmp_path)
    # THEN the recorded type token and warnings reveal both
    assert stack.types() == {"aws:s3/bucketV2:BucketV2"}
    assert any("BucketV2 is deprecated" in w for w in stack.warnings)
    assert any("acl is deprecated" in w for w in stack.warnings)


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_every_archive_the_program_references_exists(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    paths = stack.archive_paths()
    # Three function codes and the layer: mocks never open them, a missing one fails the first deploy.
    assert len(paths) == 4
    missing = [p for p in paths if not p.is_file()]
    assert missing == []


def test_functions_share_one_code_archive_and_the_layer(dev_stack):
    functions = dev_stack.functions()
    assert len({f["code_path"] for f in functions.values()}) == 1
    layer_arn = dev_stack.outputs["layerArn"]
    assert all(f["layers"] == [layer_arn] for f in functions.values())


def bucket_settings(stack, role):
    """The resources a DataBucket declares besides the bucket itself (its settings)."""
    component = stack.get(role, "data-pipeline:bucket:DataBucket")
    return [r for r in stack.children(component) if r.type != "aws:s3/bucket:Bucket"]


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
    block = bucket_child(dev_stack, "raw", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert {f: block.inputs[f] for f in flags} == dict.fromkeys(flags, True)


def test_ownership_is_bucket_owner_enforced(dev_stack):
    controls = bucket_child(dev_stack, "processed", "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert controls.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_dev_buckets_use_sse_s3(dev_stack):
    sse = bucket_child(
        dev_stack,
        "raw",
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
    assert status == {"raw": "Enabled", "processed": "Suspended", "analytics": "Suspended"}


def test_lifecycle_aborts_uploads_and_expires_noncurrent_versions(prod_stack):
    lifecycle = bucket_child(
        prod_stack, "raw", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 7
    }
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    versioning = bucket_child(prod_stack, "raw", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.urn in lifecycle.depends_on


def test_failure_queues_are_encrypted_and_keep_messages_14_days(dev_stack, prod_stack):
    dev_queue = stage_child(dev_stack, "ingestion", "aws:sqs/queue:Queue")
    assert dev_queue.inputs["sqsManagedSseEnabled"] is True
    prod_queue = stage_child(prod_stack, "ingestion", "aws:sqs/queue:Queue")
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
    expected = 365 if stage == "analytics" else 90
    assert log_group.inputs["retentionInDays"] == expected


@pytest.mark.parametrize("stage", STAGES)
def test_function_waits_for_its_policy(dev_stack, stage):
    function = stage_child(dev_stack, stage, "aws:lambda/function:Function")
    policy = stage_child(dev_stack, stage, "aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in function.depends_on


def test_prod_function_settings_follow_the_stack_config(prod_stack):
    functions = prod_stack.functions()
    assert {s: (f["memory_mb"], f["timeout_seconds"]) for s, f in functions.items()} == {
        "ingestion": (1024, 300),
        "processing": (1024, 300),
        "analytics": (512, 120),
    }
    reserved = {
        s: stage_child(prod_stack, s, "aws:lambda/function:Function").inputs["reservedConcurrentExecutions"]
        for s in STAGES
    }
    assert reserved == {"ingestion": 50, "processing": 20, "analytics": 5}
    assert {f["runtime"] for f in functions.values()} == {"python3.13"}
    assert {tuple(f["architectures"]) for f in functions.values()} == {("arm64",)}
    layer = prod_stack.by_type("aws:lambda/layerVersion:LayerVersion")[0]
    assert layer.inputs["compatibleRuntimes"] == ["python3.13"]
    assert layer.inputs["compatibleArchitectures"] == ["arm64"]


def test_only_the_analytics_function_is_in_the_vpc(prod_stack):
    in_vpc = {
        s: "vpcConfig" in stage_child(prod_stack, s, "aws:lambda/function:Function").inputs for s in STAGES
    }
    assert in_vpc == {"ingestion": False, "processing": False, "analytics": True}
    vpc = stage_child(prod_stack, "analytics", "aws:lambda/function:Function").inputs["vpcConfig"]
    assert vpc == {
        "subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"],
        "securityGroupIds": ["sg-0c3d4e5f607182930"],
    }


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


def test_handler_strings_match_the_code_archive(dev_stack):
    handlers = {stage: f["handler"] for stage, f in dev_stack.functions().items()}
    assert handlers == {s: f"handlers.{s}.handler" for s in STAGES}


def test_prod_analytics_gets_the_existing_secret_and_topic(prod_stack):
    env = prod_stack.functions()["analytics"]["environment"]
    assert env["DATABASE_SECRET_ARN"] == prod_stack.config["data-pipeline:database"]["secretArn"]
    assert env["SUMMARY_TOPIC_ARN"] == prod_stack.config["data-pipeline:summaryTopicArn"]
    assert "RECORD_SCHEMA" not in prod_stack.functions()["ingestion"]["environment"]


def test_database_url_becomes_a_stack_owned_secret_kept_secret(evaluate):
    # GIVEN the database URL set as a secret config value
    from devtools.declared import Secret

    stack = evaluate(
        "dev", {"database": Secret({"url": "postgresql+psycopg2://app:pw@db.internal/pipeline"})}
    )
    # THEN the stack creates one secret, its version's value stays a Pulumi secret, and analytics reads it
    (secret,) = stack.by_type("aws:secretsmanager/secret:Secret")
    (version,) = stack.by_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == secret.outputs["arn"]
    assert version.inputs["secretString"] == {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",  # Pulumi's secret marker
        "value": "postgresql+psycopg2://app:pw@db.internal/pipeline",
    }
    assert stack.functions()["analytics"]["environment"]["DATABASE_SECRET_ARN"] == secret.outputs["arn"]
    assert stack.outputs["databaseSecretArn"] == secret.outputs["arn"]
    # Forcing destruction (dev) deletes the secret at once instead of holding its name for 30 days.
    assert secret.inputs["recoveryWindowInDays"] == 0


def test_outputs_name_every_bucket_function_queue_and_the_layer(dev_stack):
    out = dev_stack.outputs
    assert set(out) >= {"buckets", "stages", "layerArn", "alarmTopicArn", "dashboardName"}
    assert set(out["buckets"]) == set(BUCKETS)
    assert out["buckets"]["raw"]["arn"] == f"arn:aws:s3:::{out['buckets']['raw']['name']}"
    for stage in STAGES:
        queue = stage_child(dev_stack, stage, "aws:sqs/queue:Queue")
        function = stage_child(dev_stack, stage, "aws:lambda/function:Function")
        assert out["stages"][stage]["functionName"] == function.outputs["name"]
        assert out["stages"][stage]["functionArn"] == function.outputs["arn"]
        assert out["stages"][stage]["failureQueueUrl"] == queue.outputs["url"]
        assert out["stages"][stage]["failureQueueName"] == queue.outputs["name"]
    assert out["layerArn"].startswith("arn:aws:lambda:eu-west-1:123456789012:layer:data-pipeline-dev-shared:")


def test_a_layer_over_lambdas_unzipped_limit_stops_the_preview(evaluate, tmp_path):
    # GIVEN a layer archive that unzips past Lambda's 250 MB (zeros compress to almost nothing)
    huge = tmp_path / "huge-layer.zip"
    with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("python/blob.bin", "w") as blob:
        chunk = bytes(16 * 1024 * 1024)
        for _ in range(16):
            blob.write(chunk)
    # WHEN the program is evaluated with it
    with pytest.raises(StackEvaluationError) as raised:
        evaluate("dev", {"layer": {"archive": str(huge)}})
    # THEN it stops before any deploy, naming the limit and the function code it counted
    assert "250" in str(raised.value)
    assert "function code" in str(raised.value)
