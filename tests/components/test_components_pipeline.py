"""`DataPipeline` in the real program under mocks: what the stack declares as a whole, nothing deprecated,
the archives it references, the database secret, the outputs, and the layer size check before anything is
declared."""

from __future__ import annotations

import textwrap
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from component_support import stage_child

from devtools.harness import StackEvaluationError, evaluate_stack
from handlers import contract
from handlers.contract import BUCKET_ROLES, STAGES, BucketRole, Stage


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


def test_database_url_becomes_a_stack_owned_secret_kept_secret(evaluate):
    # GIVEN the database URL set as a secret config value
    from devtools.harness import Secret

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
    assert (
        stack.functions()[Stage.ANALYTICS]["environment"][contract.Env.DATABASE_SECRET_ARN]
        == secret.outputs["arn"]
    )
    assert stack.outputs["databaseSecretArn"] == secret.outputs["arn"]
    # Forcing destruction (dev) deletes the secret at once instead of holding its name for 30 days.
    assert secret.inputs["recoveryWindowInDays"] == 0


def test_outputs_name_every_bucket_function_queue_and_the_layer(dev_stack):
    out = dev_stack.outputs
    assert set(out) >= {"buckets", "stages", "layerArn", "alarmTopicArn", "dashboardName"}
    assert set(out["buckets"]) == set(BUCKET_ROLES)
    raw = out["buckets"][BucketRole.RAW]
    assert raw["arn"] == f"arn:aws:s3:::{raw['name']}"
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
