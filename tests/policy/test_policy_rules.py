"""The policy pack's rules against hand-built stacks: one compliant stack, and one defect per test."""

import dataclasses
import datetime as dt
import json

import pipeline_rules as rules
import pytest
from pipeline_rules import UNKNOWN, Resource

from handlers import contract
from handlers.contract import BUCKET_ROLES, BucketRole, Stage

TODAY = dt.date(2026, 11, 25)


def urn(kind: str, name: str) -> str:
    return f"urn:pulumi:dev::data-pipeline::{kind}::{name}"


def bucket(name: str) -> Resource:
    return Resource(rules.BUCKET, name, urn("aws:s3/bucket:Bucket", name), {"bucket": f"{name}-1a2b3c4d"})


def attached(kind: str, name: str, target: Resource, **props) -> Resource:
    return Resource(kind, name, urn(kind, name), {"bucket": target.props["bucket"], **props})


def tls_policy(bucket_name: str) -> str:
    arn = f"arn:aws:s3:::{bucket_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


STAGES = {
    # stage: (source bucket, trigger prefix, destination bucket, env of written prefixes)
    Stage.INGESTION: (
        BucketRole.RAW,
        contract.INPUT_PREFIX,
        BucketRole.PROCESSED,
        {
            contract.Env.RECORDS_PREFIX: contract.RECORDS_PREFIX,
            contract.Env.QUARANTINE_PREFIX: contract.QUARANTINE_PREFIX,
        },
    ),
    Stage.PROCESSING: (
        BucketRole.PROCESSED,
        contract.RECORDS_PREFIX,
        BucketRole.ANALYTICS,
        {contract.Env.AGGREGATES_PREFIX: contract.AGGREGATES_PREFIX},
    ),
    Stage.ANALYTICS: (
        BucketRole.ANALYTICS,
        contract.AGGREGATES_PREFIX,
        BucketRole.ANALYTICS,
        {contract.Env.REPORTS_PREFIX: contract.REPORTS_PREFIX},
    ),
}


def function(stage: str, dest: Resource, prefixes: dict[str, str]) -> Resource:
    name = f"data-pipeline-{stage}"
    return Resource(
        rules.FUNCTION,
        f"{stage}-fn",
        urn(rules.FUNCTION, stage),
        {
            "name": name,
            "arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{name}",
            "runtime": "python3.13",
            "environment": {
                "variables": {
                    contract.Env.PIPELINE_STAGE: stage,
                    contract.Env.DEST_BUCKET: dest.props["bucket"],
                    **prefixes,
                }
            },
            "loggingConfig": {"logFormat": "JSON", "logGroup": f"/aws/lambda/{name}"},
        },
    )


def compliant_stack() -> list[Resource]:
    buckets = {n: bucket(n) for n in BUCKET_ROLES}
    resources = list(buckets.values())
    for n, b in buckets.items():
        flags = dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)
        resources.append(attached(rules.PUBLIC_ACCESS_BLOCK, f"{n}-pab", b, **flags))
        sse = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": True}]
        resources.append(attached(rules.ENCRYPTION, f"{n}-sse", b, rules=sse))
        resources.append(
            attached(rules.BUCKET_POLICY, f"{n}-policy", b, policy=tls_policy(b.props["bucket"]))
        )
    for stage, (source, prefix, dest, prefixes) in STAGES.items():
        fn = function(stage, buckets[dest], prefixes)
        resources.append(fn)
        name = fn.props["name"]
        resources.append(
            Resource(
                rules.LOG_GROUP,
                f"{stage}-logs",
                urn(rules.LOG_GROUP, stage),
                {"name": f"/aws/lambda/{name}", "retentionInDays": 30},
            )
        )
        resources.append(
            Resource(
                rules.INVOKE_CONFIG,
                f"{stage}-invoke",
                urn(rules.INVOKE_CONFIG, stage),
                {
                    "functionName": name,
                    "destinationConfig": {
                        "onFailure": {"destination": f"arn:aws:sqs:eu-west-1:123456789012:{stage}-dlq"}
                    },
                },
            )
        )
        resources.append(
            Resource(
                rules.NOTIFICATION,
                f"{source}-notification",
                urn(rules.NOTIFICATION, source),
                {
                    "bucket": buckets[source].props["bucket"],
                    "lambdaFunctions": [
                        {
                            "lambdaFunctionArn": fn.props["arn"],
                            "events": ["s3:ObjectCreated:*"],
                            "filterPrefix": prefix,
                        }
                    ],
                },
            )
        )
    return resources


def replace(resources: list[Resource], name: str, **props) -> list[Resource]:
    """The stack with resource `name`'s props updated (a value of None removes the prop)."""
    out = []
    for r in resources:
        if r.name == name:
            merged = {**r.props, **props}
            r = dataclasses.replace(r, props={k: v for k, v in merged.items() if v is not None})
        out.append(r)
    return out


def without(resources: list[Resource], name: str) -> list[Resource]:
    return [r for r in resources if r.name != name]


def messages(violations: list[rules.Violation]) -> list[str]:
    return [v.message for v in violations]


def test_compliant_stack_passes_every_rule():
    # GIVEN the stack the program is meant to declare
    # WHEN every rule runs
    violations = rules.check_stack(compliant_stack(), TODAY)
    # THEN nothing is reported
    assert violations == []


def test_bucket_without_public_access_block_is_reported():
    stack = without(compliant_stack(), f"{BucketRole.PROCESSED}-pab")
    violations = rules.check_buckets_block_public_access(stack)
    assert messages(violations) == ["bucket processed has no BucketPublicAccessBlock"]
    assert violations[0].urn == urn(rules.BUCKET, BucketRole.PROCESSED)


def test_public_access_block_with_a_flag_off_is_reported():
    stack = replace(compliant_stack(), f"{BucketRole.RAW}-pab", restrictPublicBuckets=False)
    violations = rules.check_buckets_block_public_access(stack)
    assert messages(violations) == ["bucket raw: public access block leaves restrictPublicBuckets off"]


def test_bucket_without_encryption_is_reported():
    stack = without(compliant_stack(), f"{BucketRole.ANALYTICS}-sse")
    assert messages(rules.check_buckets_encrypted(stack)) == [
        "bucket analytics has no BucketServerSideEncryptionConfiguration"
    ]


def test_encryption_without_default_algorithm_is_reported():
    stack = replace(compliant_stack(), f"{BucketRole.RAW}-sse", rules=[{"bucketKeyEnabled": True}])
    assert messages(rules.check_buckets_encrypted(stack)) == [
        "bucket raw: encryption configuration sets no default algorithm"
    ]


def test_kms_encryption_passes():
    sse = [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:k"}}
    ]
    stack = replace(compliant_stack(), f"{BucketRole.RAW}-sse", rules=sse)
    assert rules.check_buckets_encrypted(stack) == []


def test_bucket_without_tls_policy_is_reported():
    stack = without(compliant_stack(), f"{BucketRole.RAW}-policy")
    assert len(rules.check_buckets_deny_insecure_transport(stack)) == 1


@pytest.mark.parametrize(
    "mutation",
    [
        {"Effect": "Allow"},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Action": "s3:GetObject"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
    ],
    ids=["allow", "secure-true", "one-action", "one-principal"],
)
def test_tls_statement_that_does_not_deny_everything_insecure_is_reported(mutation):
    document = json.loads(tls_policy(f"{BucketRole.RAW}-1a2b3c4d"))
    document["Statement"][0].update(mutation)
    stack = replace(compliant_stack(), f"{BucketRole.RAW}-policy", policy=json.dumps(document))
    violations = rules.check_buckets_deny_insecure_transport(stack)
    assert [v.urn for v in violations] == [urn(rules.BUCKET, BucketRole.RAW)]


def test_wildcard_action_in_role_policy_is_reported():
    document = {"Statement": [{"Sid": "ReadRaw", "Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}]}
    resource = Resource(rules.ROLE_POLICY, "ingestion-policy", "u", {"policy": json.dumps(document)})
    violations = rules.check_iam_no_wildcard_action(resource)
    assert len(violations) == 1
    assert "ReadRaw" in violations[0].message


@pytest.mark.parametrize("action", ["*", "sqs:*", ["s3:GetObject", "logs:*"]])
def test_every_wildcard_action_form_is_reported(action):
    document = {
        "Statement": [{"Sid": "X", "Effect": "Allow", "Action": action, "Resource": "arn:aws:s3:::b/*"}]
    }
    resource = Resource(rules.MANAGED_POLICY, "p", "u", {"policy": json.dumps(document)})
    assert rules.wildcard_actions(resource.props["policy"]) == ["X"]


def test_named_actions_and_wildcard_deny_pass():
    document = {
        "Statement": [
            {"Sid": "ReadRaw", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "DenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"},
        ]
    }
    resource = Resource(rules.ROLE_POLICY, "p", "u", {"policy": json.dumps(document)})
    assert rules.check_iam_no_wildcard_action(resource) == []


def test_allow_with_not_action_is_reported():
    document = {
        "Statement": [{"Sid": "Everything", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    }
    assert rules.wildcard_actions(document) == ["Everything"]


def test_wildcard_in_a_role_inline_policy_is_reported():
    document = json.dumps({"Statement": [{"Sid": "Y", "Effect": "Allow", "Action": "*", "Resource": "*"}]})
    role = Resource(rules.ROLE, "role", "u", {"inlinePolicies": [{"name": "inline", "policy": document}]})
    assert len(rules.check_iam_no_wildcard_action(role)) == 1


def test_unknown_policy_document_is_undetermined_not_passed():
    resource = Resource(rules.ROLE_POLICY, "p", "u", {"policy": UNKNOWN})
    [violation] = rules.check_iam_no_wildcard_action(resource)
    assert violation.undetermined


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_supported_runtime_passes(runtime):
    fn = Resource(rules.FUNCTION, "f", "u", {"runtime": runtime})
    assert rules.check_runtime_supported(fn, TODAY) == []


@pytest.mark.parametrize("runtime", ["python3.9", "python3.10", "python2.7", "nodejs18.x"])
def test_deprecated_or_unknown_runtime_is_reported(runtime):
    fn = Resource(rules.FUNCTION, "f", "u", {"runtime": runtime})
    assert len(rules.check_runtime_supported(fn, TODAY)) == 1


def test_runtime_is_judged_on_the_given_day():
    fn = Resource(rules.FUNCTION, "f", "u", {"runtime": "python3.12"})
    assert rules.check_runtime_supported(fn, dt.date(2028, 10, 30)) == []
    assert len(rules.check_runtime_supported(fn, dt.date(2028, 10, 31))) == 1


def test_function_without_log_group_is_reported():
    stack = without(compliant_stack(), f"{Stage.PROCESSING}-logs")
    violations = rules.check_functions_log_retention(stack)
    assert [v.urn for v in violations] == [urn(rules.FUNCTION, Stage.PROCESSING)]


def test_log_group_without_retention_is_reported():
    stack = replace(compliant_stack(), f"{Stage.INGESTION}-logs", retentionInDays=None)
    violations = rules.check_functions_log_retention(stack)
    assert "keeps logs forever" in violations[0].message


def test_retention_given_as_a_json_number_counts():
    # the engine (and the mocks) deliver numbers through protobuf Struct, i.e. as floats
    stack = replace(compliant_stack(), f"{Stage.INGESTION}-logs", retentionInDays=30.0)
    assert rules.check_functions_log_retention(stack) == []


def test_default_log_group_name_counts_without_logging_config():
    stack = replace(compliant_stack(), f"{Stage.ANALYTICS}-fn", loggingConfig=None)
    assert rules.check_functions_log_retention(stack) == []


def test_function_without_failure_destination_is_reported():
    stack = without(compliant_stack(), f"{Stage.ANALYTICS}-invoke")
    violations = rules.check_functions_failure_destination(stack)
    assert [v.urn for v in violations] == [urn(rules.FUNCTION, Stage.ANALYTICS)]


def test_invoke_config_without_on_failure_is_reported():
    stack = replace(
        compliant_stack(), f"{Stage.INGESTION}-invoke", destinationConfig={"onSuccess": {"destination": "x"}}
    )
    assert len(rules.check_functions_failure_destination(stack)) == 1


def test_notification_on_a_prefix_the_function_writes_is_reported():
    # GIVEN the analytics bucket notifies the analytics function for every key, reports/ included
    stack = compliant_stack()
    fn = next(r for r in stack if r.name == f"{Stage.ANALYTICS}-fn")
    entry = {"lambdaFunctionArn": fn.props["arn"], "events": ["s3:ObjectCreated:*"], "filterPrefix": ""}
    stack = replace(stack, f"{BucketRole.ANALYTICS}-notification", lambdaFunctions=[entry])
    # WHEN the loop rule runs
    violations = rules.check_no_self_trigger(stack)
    # THEN the notification is reported, naming the prefix written
    assert len(violations) == 1
    assert f"'{contract.REPORTS_PREFIX}'" in violations[0].message
    assert violations[0].urn == urn(rules.NOTIFICATION, BucketRole.ANALYTICS)


def test_notification_on_a_prefix_of_another_bucket_is_not_a_loop():
    # processing writes aggregates/ to analytics; a records/ trigger on processed is no loop
    stack = compliant_stack()
    assert rules.check_no_self_trigger(stack) == []


def test_property_dependencies_link_resources_whose_names_are_unknown():
    # GIVEN a preview: names unknown, but the engine's property dependencies say what refers to what
    raw = Resource(rules.BUCKET, BucketRole.RAW, "urn:raw", {"bucket": UNKNOWN})
    pab = Resource(
        rules.PUBLIC_ACCESS_BLOCK,
        f"{BucketRole.RAW}-pab",
        "urn:pab",
        {"bucket": UNKNOWN, **dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)},
        deps={"bucket": ("urn:raw",)},
    )
    # WHEN / THEN the block is found for the bucket
    assert rules.check_buckets_block_public_access([raw, pab]) == []
    # and without the dependency the rule cannot decide, so it says so instead of passing
    [violation] = rules.check_buckets_block_public_access([raw, dataclasses.replace(pab, deps={})])
    assert violation.undetermined


def preview_chain(trigger: dict[str, object]) -> list[Resource]:
    """A preview of the analytics stage: names, ARN and DEST_BUCKET unknown, only dependencies known."""
    bucket = Resource(rules.BUCKET, BucketRole.ANALYTICS, "urn:bucket", {"bucket": UNKNOWN})
    fn = Resource(
        rules.FUNCTION,
        f"{Stage.ANALYTICS}-fn",
        "urn:fn",
        {
            "arn": UNKNOWN,
            "environment": {
                "variables": {
                    contract.Env.DEST_BUCKET: UNKNOWN,
                    contract.Env.REPORTS_PREFIX: contract.REPORTS_PREFIX,
                }
            },
        },
        deps={"environment": ("urn:bucket",)},
    )
    notification = Resource(
        rules.NOTIFICATION,
        f"{BucketRole.ANALYTICS}-notification",
        "urn:n",
        {"bucket": UNKNOWN, "lambdaFunctions": [{"lambdaFunctionArn": UNKNOWN, **trigger}]},
        deps={"bucket": ("urn:bucket",), "lambdaFunctions": ("urn:fn",)},
    )
    return [bucket, fn, notification]


def test_loop_is_found_during_preview_through_property_dependencies():
    # GIVEN a preview whose trigger is on the prefix the function writes
    stack = preview_chain({"events": ["s3:ObjectCreated:*"], "filterPrefix": contract.REPORTS_PREFIX})
    # WHEN the loop rule runs THEN the loop is reported as a definite violation
    [violation] = rules.check_no_self_trigger(stack)
    assert not violation.undetermined
    assert f"'{contract.REPORTS_PREFIX}'" in violation.message


def test_preview_of_the_real_chain_shape_reports_no_loop():
    # the same preview, the trigger on aggregates/: no overlap with reports/
    assert rules.check_no_self_trigger(preview_chain({"filterPrefix": contract.AGGREGATES_PREFIX})) == []


def test_policy_that_is_not_json_is_reported_as_such():
    resource = Resource(rules.ROLE_POLICY, "p", "u", {"policy": "{not json"})
    assert messages(rules.check_iam_no_wildcard_action(resource)) == [
        "p: policy is not a JSON policy document"
    ]


def test_bucket_policy_that_is_not_json_has_no_tls_deny():
    stack = replace(compliant_stack(), f"{BucketRole.RAW}-policy", policy="{not json")
    assert [v.urn for v in rules.check_buckets_deny_insecure_transport(stack)] == [
        urn(rules.BUCKET, BucketRole.RAW)
    ]


def test_a_notification_on_the_staging_prefix_of_the_records_bucket_is_reported():
    # GIVEN the processed bucket (ingestion writes records/ there) notifying processing on every key
    stack = compliant_stack()
    fn = next(r for r in stack if r.name == f"{Stage.PROCESSING}-fn")
    entry = {"lambdaFunctionArn": fn.props["arn"], "events": ["s3:ObjectCreated:*"], "filterPrefix": ""}
    stack = replace(stack, f"{BucketRole.PROCESSED}-notification", lambdaFunctions=[entry])
    # WHEN the staging rule runs
    [violation] = rules.check_staging_triggers_nothing(stack)
    # THEN the notification is reported, naming the staging prefix
    assert f"'{contract.STAGING_PREFIX}'" in violation.message
    assert violation.urn == urn(rules.NOTIFICATION, BucketRole.PROCESSED)
    assert not violation.undetermined


def test_the_chain_s_notifications_leave_the_staging_prefix_alone():
    # records/ on processed, aggregates/ on analytics, and the raw input where ingestion writes nothing
    assert rules.check_staging_triggers_nothing(compliant_stack()) == []
