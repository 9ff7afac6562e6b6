"""The policy pack's rules against the real program, evaluated under mocks (tests/conftest.py fixtures).

The compliant case is each stack as declared; the non-compliant cases are that same stack with one
resource taken away or changed, as a careless edit of the program would.
"""

import dataclasses
import datetime as dt
import json

import pipeline_rules as rules
import pytest
from pipeline_rules import Resource

from handlers import contract
from handlers.contract import Stage

TODAY = dt.date(2026, 11, 25)


def as_policy_resources(stack) -> list[Resource]:
    """The declared resources as the pack sees them: outputs (inputs + computed), camelCase keys."""
    return [Resource(r.type, r.name, r.urn, dict(r.outputs)) for r in stack.resources if r.custom]


@pytest.fixture(scope="module")
def dev(dev_stack):
    return as_policy_resources(dev_stack)


def only(resources, kind, name=None):
    found = [r for r in resources if r.type == kind and (name is None or r.name == name)]
    assert found, (kind, name)
    return found


def changed(resources, target: Resource, **props):
    return [dataclasses.replace(r, props={**r.props, **props}) if r is target else r for r in resources]


@pytest.mark.parametrize("stack_fixture", ["dev_stack", "prod_stack"])
def test_declared_stack_passes_every_policy(stack_fixture, request):
    # GIVEN the program evaluated for the stack
    resources = as_policy_resources(request.getfixturevalue(stack_fixture))
    # WHEN every rule runs over it THEN nothing is reported, not even as undetermined
    assert rules.check_stack(resources, TODAY) == []


def test_the_rules_see_what_they_check(dev):
    # a vacuous pass (no buckets, no functions found) would prove nothing
    assert len(only(dev, rules.BUCKET)) == 3
    assert len(only(dev, rules.FUNCTION)) == 3
    assert len(only(dev, rules.NOTIFICATION)) == 3
    assert len(only(dev, rules.ROLE_POLICY)) == 3


def test_dropping_a_public_access_block_is_caught(dev):
    pab = only(dev, rules.PUBLIC_ACCESS_BLOCK)[0]
    violations = rules.check_buckets_block_public_access([r for r in dev if r is not pab])
    assert len(violations) == 1
    assert "has no BucketPublicAccessBlock" in violations[0].message


def test_dropping_an_encryption_configuration_is_caught(dev):
    sse = only(dev, rules.ENCRYPTION)[1]
    assert len(rules.check_buckets_encrypted([r for r in dev if r is not sse])) == 1


def test_a_bucket_policy_without_the_tls_deny_is_caught(dev):
    policy = only(dev, rules.BUCKET_POLICY)[0]
    document = json.loads(policy.props["policy"])
    document["Statement"] = [s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s)]
    violations = rules.check_buckets_deny_insecure_transport(
        changed(dev, policy, policy=json.dumps(document))
    )
    assert len(violations) == 1


def test_a_wildcard_added_to_a_stage_policy_is_caught(dev):
    role_policy = only(dev, rules.ROLE_POLICY)[0]
    document = json.loads(role_policy.props["policy"])
    document["Statement"][0]["Action"] = "s3:*"
    resource = dataclasses.replace(role_policy, props={**role_policy.props, "policy": json.dumps(document)})
    assert len(rules.check_iam_no_wildcard_action(resource)) == 1


def test_a_deprecated_runtime_is_caught(dev):
    function = only(dev, rules.FUNCTION)[0]
    resource = dataclasses.replace(function, props={**function.props, "runtime": "python3.9"})
    assert len(rules.check_runtime_supported(resource, TODAY)) == 1


def test_a_log_group_without_retention_is_caught(dev):
    group = only(dev, rules.LOG_GROUP)[0]
    stack = [
        dataclasses.replace(r, props={k: v for k, v in r.props.items() if k != "retentionInDays"})
        if r is group
        else r
        for r in dev
    ]
    assert len(rules.check_functions_log_retention(stack)) == 1


def test_dropping_a_failure_destination_is_caught(dev):
    config = only(dev, rules.INVOKE_CONFIG)[0]
    assert len(rules.check_functions_failure_destination([r for r in dev if r is not config])) == 1


def test_a_notification_widened_to_every_key_of_a_bucket_its_function_writes_is_caught(dev):
    # GIVEN the analytics bucket's notification, which invokes the analytics function (writer of reports/)
    functions = {f.props["arn"]: f for f in only(dev, rules.FUNCTION)}
    analytics_fn = next(
        f
        for f in functions.values()
        if f.props["environment"]["variables"][contract.Env.PIPELINE_STAGE] == Stage.ANALYTICS
    )
    [notification] = [
        n
        for n in only(dev, rules.NOTIFICATION)
        if any(e["lambdaFunctionArn"] == analytics_fn.props["arn"] for e in n.props["lambdaFunctions"])
    ]
    entries = [{**e, "filterPrefix": ""} for e in notification.props["lambdaFunctions"]]
    # WHEN its prefix filter is dropped
    violations = rules.check_no_self_trigger(changed(dev, notification, lambdaFunctions=entries))
    # THEN the loop through reports/ is reported
    assert violations
    assert all(f"'{contract.REPORTS_PREFIX}'" in v.message for v in violations)
