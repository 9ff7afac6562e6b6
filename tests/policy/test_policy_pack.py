"""The pack's adapter: the engine's arguments, proxies and unknowns included, reach the rules intact."""

import json
import runpy
from pathlib import Path

import pytest
from pack_support import BRIEF_POLICIES
from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from handlers.contract import BucketRole

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"

# Run as the CLI would, minus the gRPC server, which only starts under the name "__main__".
PACK = runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="policy_pack")
POLICIES = {p.name: p for p in PACK["POLICIES"]}
OPTS = PolicyResourceOptions(False, [], None, [], None, [], None)


def engine_resource(kind: str, name: str, props: dict, deps: dict | None = None) -> PolicyResource:
    resource = PolicyResource(
        kind, unknown_checking_proxy(props), f"urn:{name}", name, OPTS, None, None, [], {}
    )
    return resource, deps or {}


def stack_args(*entries) -> StackValidationArgs:
    by_urn = {r.urn: r for r, _ in entries}
    for resource, deps in entries:
        resource.property_dependencies = {k: [by_urn[u] for u in v] for k, v in deps.items()}
    return StackValidationArgs([r for r, _ in entries])


def run(policy, args) -> list[tuple[str, str | None]]:
    reported = []
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))
    return reported


def test_pack_declares_every_policy_of_the_brief():
    assert set(POLICIES) == BRIEF_POLICIES
    assert isinstance(POLICIES["iam-no-wildcard-action"], ResourceValidationPolicy)
    assert isinstance(POLICIES["s3-notification-no-self-trigger"], StackValidationPolicy)


def test_preview_bucket_linked_by_dependency_is_checked_through_the_proxies():
    # GIVEN a preview where the bucket's name is unknown and its public access block leaves a flag off
    bucket = engine_resource("aws:s3/bucket:Bucket", BucketRole.RAW, {"bucket": UNKNOWN_STRING_VALUE})
    flags = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True}
    pab = engine_resource(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        f"{BucketRole.RAW}-pab",
        {"bucket": UNKNOWN_STRING_VALUE, **flags, "restrictPublicBuckets": False},
        {"bucket": [f"urn:{BucketRole.RAW}"]},
    )
    # WHEN the stack policy runs
    reported = run(POLICIES["s3-bucket-public-access-blocked"], stack_args(bucket, pab))
    # THEN the violation is reported against the bucket
    assert reported == [
        ("bucket raw: public access block leaves restrictPublicBuckets off", f"urn:{BucketRole.RAW}")
    ]


def test_unknown_value_becomes_the_sdks_cannot_run_during_preview():
    # GIVEN a role policy whose document holds ARNs not yet known
    props = unknown_checking_proxy({"policy": UNKNOWN_STRING_VALUE, "role": "r"})
    args = ResourceValidationArgs("aws:iam/rolePolicy:RolePolicy", props, "urn:p", "p", OPTS, None)
    # WHEN / THEN the SDK's UnknownValueError tells the engine to report it as advisory
    with pytest.raises(UnknownValueError):
        run(POLICIES["iam-no-wildcard-action"], args)


def test_resource_policy_reports_a_wildcard_action():
    document = {"Statement": [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}]}
    props = unknown_checking_proxy({"policy": json.dumps(document), "role": "r"})
    args = ResourceValidationArgs("aws:iam/policy:Policy", props, "urn:p", "p", OPTS, None)
    [(message, urn)] = run(POLICIES["iam-no-wildcard-action"], args)
    assert urn == "urn:p"
    assert "All" in message


def test_runtime_policy_reports_a_deprecated_runtime():
    props = unknown_checking_proxy({"runtime": "python3.8", "handler": "h"})
    args = ResourceValidationArgs("aws:lambda/function:Function", props, "urn:f", "f", OPTS, None)
    [(message, _)] = run(POLICIES["lambda-runtime-supported"], args)
    assert "deprecated" in message


def test_every_stack_policy_passes_the_declared_dev_stack_through_the_sdk(dev_stack):
    # GIVEN the mocked program's resources, wrapped the way the SDK wraps the engine's (proxied props)
    resources = [
        PolicyResource(
            r.type, unknown_checking_proxy(dict(r.outputs)), r.urn, r.name, OPTS, None, None, [], {}
        )
        for r in dev_stack.resources
        if r.custom
    ]
    # WHEN every stack policy of the pack runs
    stack_policies = [p for p in POLICIES.values() if isinstance(p, StackValidationPolicy)]
    reported = [v for policy in stack_policies for v in run(policy, StackValidationArgs(resources))]
    # THEN none reports anything
    assert len(stack_policies) == 7
    assert reported == []
