"""Adopting an existing bucket (`adoptBuckets.<role>`), under Pulumi's mocks: the bucket and the settings
resources it owns are imported with their real import IDs (the bucket name, pulumi-aws's documented ID of
each), nothing of it is deleted by `pulumi destroy`, nothing touches its objects, and a later `up`
declares the same resource with the same name (no replacement)."""

from __future__ import annotations

from typing import Any

import pytest
from component_support import BUCKET, bucket_child

from components.config import ConfigError, parse_config
from devtools.harness import DeclaredStack
from handlers.contract import BucketRole

ADOPTED = "acme-legacy-landing"
SETTINGS = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "publicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "ownershipControls",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "encryption",
    "aws:s3/bucketVersioning:BucketVersioning": "versioning",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
}
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


@pytest.fixture(scope="module")
def adopted(evaluate: Any) -> DeclaredStack:
    return evaluate("dev", {"adoptBuckets": {BucketRole.RAW: ADOPTED}})


@pytest.fixture(scope="module")
def adopted_all(evaluate: Any) -> DeclaredStack:
    return evaluate(
        "dev", {"adoptBuckets": {BucketRole.RAW: {"name": ADOPTED, "import": list(SETTINGS.values())}}}
    )


def test_the_adopted_bucket_is_imported_by_its_name_and_never_deleted(adopted: DeclaredStack) -> None:
    bucket = bucket_child(adopted, BucketRole.RAW, "aws:s3/bucket:Bucket")
    assert bucket.import_id == ADOPTED
    assert bucket["bucket"] == ADOPTED  # its own name: no suffix
    assert bucket.retain_on_delete  # even though dev sets forceDestroy and retainBucketsOnDelete false
    assert bucket["forceDestroy"] is False  # destroy never empties it
    # the settings every bucket has since April 2023 are imported; versioning and policy are written
    for type_, setting in SETTINGS.items():
        resource = bucket_child(adopted, BucketRole.RAW, type_)
        assert resource.retain_on_delete, setting
        expected = ADOPTED if setting in ("publicAccessBlock", "ownershipControls", "encryption") else None
        assert resource.import_id == expected, setting
        assert resource["bucket"] == ADOPTED


def test_every_setting_listed_is_imported_with_the_bucket_name(adopted_all: DeclaredStack) -> None:
    for type_ in SETTINGS:
        assert bucket_child(adopted_all, BucketRole.RAW, type_).import_id == ADOPTED


def test_adopting_touches_no_object(adopted: DeclaredStack) -> None:
    # no lifecycle configuration (its expiry rule would delete the bucket's noncurrent versions), and the
    # versioning the stack declares only applies to new writes (raw: Enabled, existing objects keep theirs)
    parent = adopted.get(BucketRole.RAW, BUCKET)
    assert [r for r in adopted.children(parent) if r.type == LIFECYCLE] == []
    assert bucket_child(adopted, BucketRole.RAW, "aws:s3/bucketVersioning:BucketVersioning")[
        "versioningConfiguration"
    ] == {"status": "Enabled"}
    assert not [r for r in adopted.resources if r.type.startswith("aws:s3/bucketObject")]


def test_the_other_buckets_are_created_as_before(adopted: DeclaredStack, dev_stack: DeclaredStack) -> None:
    for role in (BucketRole.PROCESSED, BucketRole.ANALYTICS):
        bucket = bucket_child(adopted, role, "aws:s3/bucket:Bucket")
        assert bucket.import_id is None
        assert bucket.inputs == bucket_child(dev_stack, role, "aws:s3/bucket:Bucket").inputs
        assert bucket_child(adopted, role, LIFECYCLE).import_id is None
    # the chain still notifies the stages from the adopted bucket
    notifications = [r for r in adopted.resources if r.type == "aws:s3/bucketNotification:BucketNotification"]
    assert ADOPTED in {n["bucket"] for n in notifications}


def test_a_later_up_declares_the_same_resource_so_nothing_is_replaced(
    adopted: DeclaredStack, evaluate: Any, dev_stack: DeclaredStack
) -> None:
    again = evaluate("dev", {"adoptBuckets": {BucketRole.RAW: ADOPTED}})
    first, second = (bucket_child(s, BucketRole.RAW, "aws:s3/bucket:Bucket") for s in (adopted, again))
    # the same URN (as the created bucket had: switching to adoption keeps the stack's resource) and the
    # same known inputs, so the engine diffs nothing that forces a replacement (`bucket` is the name
    # S3 replaces on); the import ID of a resource already in the state is not imported again
    assert first.urn == second.urn == bucket_child(dev_stack, BucketRole.RAW, "aws:s3/bucket:Bucket").urn
    assert first.inputs == second.inputs
    assert second.import_id == ADOPTED


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Not_A_Bucket", f"adoptBuckets.{BucketRole.RAW}"),
        ({"name": ADOPTED, "import": ["lifecycle"]}, f"adoptBuckets.{BucketRole.RAW}.import"),
        ({"name": ADOPTED, "extra": 1}, f"adoptBuckets.{BucketRole.RAW}.extra"),
        (7, f"adoptBuckets.{BucketRole.RAW}"),
    ],
)
def test_bad_adoption_config_is_refused(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"adoptBuckets": {BucketRole.RAW: value}}, project="data-pipeline", stack="dev")
    assert any(message in p.key for p in caught.value.problems), caught.value


def test_one_bucket_cannot_be_adopted_twice() -> None:
    with pytest.raises(ConfigError, match="adopted twice"):
        parse_config(
            {"adoptBuckets": {BucketRole.RAW: ADOPTED, BucketRole.PROCESSED: ADOPTED}},
            project="data-pipeline",
            stack="dev",
        )
