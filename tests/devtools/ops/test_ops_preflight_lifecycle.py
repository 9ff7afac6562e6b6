"""Preflight of an adopted bucket's lifecycle, on moto: the stack declares no lifecycle configuration on an
adopted bucket, so a bucket a stage stages objects in must already hold a rule that expires them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from test_ops_preflight import (  # noqa: F401 (aws: the moto fixture)
    REGION,
    TODAY,
    Session,
    aws,
    config,
    failures,
    stubbed_lambda,
)

from components.stage_table import staging_prefixes
from devtools.ops import preflight as pf
from handlers.contract import STAGING_PREFIX, BucketRole

ADOPTED = "acme-curated"
ROLE = BucketRole.PROCESSED


def _adopted(**lifecycle: Any) -> Any:
    """The processed bucket adopted, with `lifecycle` (S3's LifecycleConfiguration) if given."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ADOPTED, CreateBucketConfiguration={"LocationConstraint": REGION})
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(Bucket=ADOPTED, LifecycleConfiguration=lifecycle)
    return s3


def _check(s3: Any) -> pf.Findings:
    out = pf.Findings()
    pf.check_adopted_lifecycle(config(adoptBuckets={ROLE: ADOPTED}), s3, out)
    return out


def _rule(**changes: Any) -> dict[str, Any]:
    return {**pf.staging_rule(STAGING_PREFIX), **changes}


def test_the_stage_table_stages_in_the_processed_bucket_only():
    # the check's premise: which adopted buckets it has to read
    assert staging_prefixes(ROLE) == (STAGING_PREFIX,)
    assert staging_prefixes(BucketRole.RAW) == staging_prefixes(BucketRole.ANALYTICS) == ()


def test_a_bucket_without_lifecycle_configuration_fails_with_the_rule_to_add(aws):  # noqa: F811
    (message,) = failures(_check(_adopted()), f"adoptBuckets.{ROLE}")
    assert "expire its objects" in message
    assert f'"Prefix": "{STAGING_PREFIX}"' in message
    assert "put-bucket-lifecycle-configuration" in message


def test_the_rule_a_created_bucket_holds_passes(aws):  # noqa: F811
    out = _check(_adopted(Rules=[_rule()]))
    assert [f.ok for f in out] == [True]


def test_a_rule_on_the_whole_bucket_covers_the_staging_prefix(aws):  # noqa: F811
    out = _check(_adopted(Rules=[_rule(Filter={"Prefix": ""})]))
    assert [f.ok for f in out] == [True]


@pytest.mark.parametrize(
    "changes",
    [
        {"Status": "Disabled"},
        {"Filter": {"Prefix": "other/"}},
        {"Filter": {"And": {"Prefix": STAGING_PREFIX, "Tags": [{"Key": "k", "Value": "v"}]}}},
    ],
    ids=["disabled", "another-prefix", "tag-filter"],
)
def test_a_rule_that_leaves_staged_objects_out_fails(aws, changes):  # noqa: F811
    assert failures(_check(_adopted(Rules=[_rule(**changes)])), f"adoptBuckets.{ROLE}")


def test_a_versioned_bucket_also_needs_its_noncurrent_versions_expired(aws):  # noqa: F811
    rule = _rule()
    del rule["NoncurrentVersionExpiration"]
    s3 = _adopted(Rules=[rule])
    assert [f.ok for f in _check(s3)] == [True]  # unversioned: expiring objects is enough
    s3.put_bucket_versioning(Bucket=ADOPTED, VersioningConfiguration={"Status": "Enabled"})
    (message,) = failures(_check(s3), f"adoptBuckets.{ROLE}")
    assert "expire their noncurrent versions" in message


def test_an_adopted_bucket_no_stage_stages_in_is_not_read():
    out = pf.Findings()
    pf.check_adopted_lifecycle(config(adoptBuckets={BucketRole.RAW: ADOPTED}), None, out)
    assert list(out) == []


def test_a_lifecycle_the_credentials_cannot_read_fails_with_the_error_code():
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(s3)
    stub.add_client_error("get_bucket_lifecycle_configuration", "AccessDenied", http_status_code=403)
    stub.activate()
    (message,) = failures(_check(s3), f"adoptBuckets.{ROLE}")
    assert "(AccessDenied)" in message


def test_the_whole_preflight_reads_an_adopted_buckets_lifecycle(aws):  # noqa: F811
    _adopted()
    session = Session(**{"lambda": stubbed_lambda(1000, 1000)})
    findings = pf.preflight(config(adoptBuckets={ROLE: ADOPTED}), session, REGION, today=TODAY)
    assert failures(findings, f"adoptBuckets.{ROLE}")


def test_a_suspended_bucket_still_needs_its_noncurrent_versions_expired(aws):  # noqa: F811
    rule = _rule()
    del rule["NoncurrentVersionExpiration"]
    s3 = _adopted(Rules=[rule])
    s3.put_bucket_versioning(Bucket=ADOPTED, VersioningConfiguration={"Status": "Suspended"})
    (message,) = failures(_check(s3), f"adoptBuckets.{ROLE}")
    assert "expire their noncurrent versions" in message
