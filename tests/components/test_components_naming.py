"""Physical names: the random bucket suffix, its stability, and AWS length limits."""

from __future__ import annotations

import re

import pytest

from handlers.contract import BUCKET_ROLES, BucketRole, Stage

RANDOM_ID = "random:index/randomId:RandomId"


def test_all_buckets_carry_the_one_random_suffix(dev_stack):
    (random_id,) = dev_stack.by_type(RANDOM_ID)
    suffix = random_id.outputs["hex"]
    assert re.fullmatch(r"[0-9a-f]{8}", suffix)
    assert dev_stack.buckets() == {role: f"data-pipeline-dev-{role}-{suffix}" for role in BUCKET_ROLES}


def test_the_suffix_is_stable_across_config_changes(dev_stack, evaluate):
    # GIVEN the dev stack re-evaluated with different base names and function sizes
    changed = evaluate(
        "dev",
        {
            "buckets": {
                BucketRole.RAW: "acme-landing",
                BucketRole.PROCESSED: "acme-clean",
                BucketRole.ANALYTICS: "acme-marts",
            },
            "stages": {Stage.INGESTION: {"memoryMb": 2048}},
        },
    )
    (before,) = dev_stack.by_type(RANDOM_ID)
    (after,) = changed.by_type(RANDOM_ID)
    # THEN the RandomId keeps its URN and inputs (no keepers), so Pulumi never replaces it: same suffix
    assert (
        (after.urn, dict(after.inputs))
        == (before.urn, dict(before.inputs))
        == (before.urn, {"byteLength": 4})
    )
    assert changed.buckets()[BucketRole.RAW] == f"acme-landing-{after.outputs['hex']}"


def test_without_suffix_the_base_names_are_used_verbatim(evaluate):
    stack = evaluate(
        "dev",
        {
            "bucketSuffix": False,
            "buckets": {role: f"acme-{role}" for role in BUCKET_ROLES},
        },
    )
    assert stack.by_type(RANDOM_ID) == []
    assert stack.buckets() == {role: f"acme-{role}" for role in BUCKET_ROLES}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_names_stay_within_aws_limits(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    for name in stack.buckets().values():
        assert 3 <= len(name) <= 63
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name)
    for stage, outputs in stack.outputs["stages"].items():
        assert len(outputs["functionName"]) <= 64
        assert re.fullmatch(r"[A-Za-z0-9_-]+", outputs["functionName"])
        assert len(outputs["failureQueueName"]) <= 80
        assert len(outputs["logGroupName"]) <= 512
        assert stage in outputs["functionName"]
    for role in stack.by_type("aws:iam/role:Role"):
        assert len(role.outputs["name"]) <= 64
    layer = stack.by_type("aws:lambda/layerVersion:LayerVersion")[0]
    assert len(layer.inputs["layerName"]) <= 140
