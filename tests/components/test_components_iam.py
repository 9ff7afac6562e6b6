"""IAM: the typed policy objects, each stage's exact rendered policy, and parliament's verdict on them."""

from __future__ import annotations

import dataclasses
import fnmatch
import json

import parliament
import pytest

from components.chain import declared_chain
from components.config import Vpc
from components.iam import (
    PolicyDocument,
    PolicyError,
    StageGrants,
    Statement,
    deny_insecure_transport,
    lambda_trust_policy,
    stage_policy,
)
from components.stage_table import Keys, Provided, describe
from handlers import contract
from handlers.contract import STAGES, BucketRole, Stage

ARN = {
    BucketRole.RAW: "arn:aws:s3:::r",
    BucketRole.PROCESSED: "arn:aws:s3:::p",
    BucketRole.ANALYTICS: "arn:aws:s3:::a",
}
# Each stage's keys in the bucket ARNs above, as the policies name them.
RECORDS_OBJECTS = f"arn:aws:s3:::p/{contract.RECORDS_PREFIX}*{contract.RECORDS_SUFFIX}"
AGGREGATES_OBJECTS = f"arn:aws:s3:::a/{contract.AGGREGATES_PREFIX}*{contract.AGGREGATES_SUFFIX}"
REPORTS_OBJECTS = f"arn:aws:s3:::a/{contract.REPORTS_PREFIX}*{contract.REPORTS_SUFFIX}"
GRAPH = declared_chain(contract.INPUT_PREFIX, (".json", ".gz"))
LOGS = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f"
QUEUE = "arn:aws:sqs:eu-west-1:123456789012:f-failures"


def grants(**extra) -> StageGrants:
    return StageGrants(bucket_arns=ARN, log_group_arn=LOGS, failure_queue_arn=QUEUE, **extra)


def policy(stage: str, g: StageGrants, provided: Provided | None = None) -> PolicyDocument:
    """The stage's policy as the program builds it: its description, its node of the declared chain."""
    return stage_policy(describe(stage), GRAPH.node(stage), g, provided)


# What every stage's policy holds after its data path: its logs, its failure queue, listing its source.
EVERY_STAGE_SIDS = ("WriteOwnLogs", "SendToOwnFailureQueue", "ListSourceBucket")


def by_sid(doc: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in doc["Statement"]}


# --- the typed objects --------------------------------------------------------------------------------


REFUSED_STATEMENTS = {
    "an allow with a wildcard action": ("TooBroad", "s3:*", "arn:aws:s3:::b/*", "wildcard action 's3:\\*'"),
    "a partial wildcard action": ("TooBroad", "s3:Get*", "arn:aws:s3:::b/*", "wildcard action 's3:Get\\*'"),
    "a star resource without the explicit exception": ("Anything", "s3:GetObject", "*", "resource '\\*'"),
    "a statement without sid": ("", "s3:GetObject", "arn:aws:s3:::b/*", "Sid '' must be alphanumeric"),
}


@pytest.mark.parametrize("case", list(REFUSED_STATEMENTS))
def test_a_statement_breaking_a_rule_is_refused_when_built(case):
    sid, action, resource, refusal = REFUSED_STATEMENTS[case]
    with pytest.raises(PolicyError, match=refusal):
        Statement(sid=sid, actions=(action,), resources=(resource,))


def test_duplicate_sids_are_refused():
    one = Statement(sid="Read", actions=("s3:GetObject",), resources=("arn:aws:s3:::b/*",))
    with pytest.raises(PolicyError, match="duplicate statement Sids: Read"):
        PolicyDocument(statements=(one, one))


def test_a_deny_may_name_every_action_of_a_service():
    doc = deny_insecure_transport("arn:aws:s3:::b").to_dict()
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:*"],
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


# --- the pure builders ----------------------------------------------------------------------------------


def test_ingestion_policy_is_exact():
    doc = policy(Stage.INGESTION, grants()).to_dict()
    assert doc["Statement"] == [
        {
            "Sid": "ReadRawInput",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [
                f"arn:aws:s3:::r/{contract.INPUT_PREFIX}*.json",
                f"arn:aws:s3:::r/{contract.INPUT_PREFIX}*.gz",
            ],
        },
        {
            "Sid": "WriteProcessedRecords",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": [
                RECORDS_OBJECTS,
                f"arn:aws:s3:::p/{contract.QUARANTINE_PREFIX}*{contract.QUARANTINE_SUFFIX}",
                f"arn:aws:s3:::p/{contract.STAGING_PREFIX}*",
            ],
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [LOGS + ":*"],
        },
        {
            "Sid": "SendToOwnFailureQueue",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [QUEUE],
        },
        {
            # records/ parts wait under the staging prefix until the whole raw object is read: the
            # release copies each (GetObject on the source, PutObject above on the records/ key) and
            # deletes it, on exactly that prefix
            "Sid": "ReleaseStagedObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::p/{contract.STAGING_PREFIX}*"],
        },
        {
            # a deleted object reads as 404, not 403
            "Sid": "ListSourceBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": ["arn:aws:s3:::r"],
        },
    ]


def test_processing_policy_is_exact():
    doc = policy(Stage.PROCESSING, grants()).to_dict()
    statements = by_sid(doc)
    assert list(statements) == [
        "ReadProcessedRecords",
        "WriteAnalyticsAggregates",
        *EVERY_STAGE_SIDS,
    ]
    assert statements["ReadProcessedRecords"]["Resource"] == [RECORDS_OBJECTS]
    assert statements["WriteAnalyticsAggregates"]["Resource"] == [AGGREGATES_OBJECTS]
    # one PUT per object: no multipart upload to abort
    assert statements["WriteAnalyticsAggregates"]["Action"] == ["s3:PutObject"]


def test_analytics_policy_adds_only_the_secret_topic_and_network_it_uses():
    # GIVEN a secret, a topic and a VPC
    kms = "arn:aws:kms:eu-west-1:123456789012:key/0f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
    topic = "arn:aws:sns:eu-west-1:123456789012:summaries"
    g = grants(kms_key_arn=kms)
    provided = Provided(
        database_secret_arn=secret,
        summary_topic_arn=topic,
        vpc=Vpc(subnet_ids=("subnet-0a1b2c3d",), security_group_ids=("sg-0a1b2c3d",)),
        region="eu-west-1",
    )
    # WHEN the analytics policy is built
    statements = by_sid(policy(Stage.ANALYTICS, g, provided).to_dict())
    # THEN it holds these statements and no others, and each extra grant names exactly its one resource
    assert list(statements) == [
        "ReadAnalyticsAggregates",
        "WriteAnalyticsReports",
        "WriteOwnLogs",
        "SendToOwnFailureQueue",
        "ReadOwnOutput",
        "ListSourceBucket",
        "UseDataKey",
        "ReadDatabaseSecret",
        "PublishSummary",
        "CreateNetworkInterfaces",
        "ManageNetworkInterfaces",
        "DescribeVpcNetwork",
    ]
    assert statements["ReadAnalyticsAggregates"]["Resource"] == [AGGREGATES_OBJECTS]
    assert statements["WriteAnalyticsReports"]["Resource"] == [REPORTS_OBJECTS]
    assert statements["WriteAnalyticsReports"]["Action"] == ["s3:PutObject"]
    # a version's report is read back to tell whether it holds the invoking part's current document
    assert statements["ReadOwnOutput"]["Action"] == ["s3:GetObject"]
    assert statements["ReadOwnOutput"]["Resource"] == [REPORTS_OBJECTS]
    assert statements["UseDataKey"] == {
        "Sid": "UseDataKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": [kms],
    }
    assert statements["ReadDatabaseSecret"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert statements["ReadDatabaseSecret"]["Resource"] == [secret]
    assert statements["PublishSummary"] == {
        "Sid": "PublishSummary",
        "Effect": "Allow",
        "Action": ["sns:Publish"],
        "Resource": [topic],
    }
    assert statements["CreateNetworkInterfaces"]["Resource"] == [
        "arn:aws:ec2:eu-west-1:*:network-interface/*",
        "arn:aws:ec2:eu-west-1:*:subnet/subnet-0a1b2c3d",
        "arn:aws:ec2:eu-west-1:*:security-group/sg-0a1b2c3d",
    ]
    assert statements["ManageNetworkInterfaces"] == {
        "Sid": "ManageNetworkInterfaces",
        "Effect": "Allow",
        "Action": [
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
        "Resource": ["arn:aws:ec2:eu-west-1:*:network-interface/*"],
    }
    assert statements["DescribeVpcNetwork"] == {
        "Sid": "DescribeVpcNetwork",
        "Effect": "Allow",
        "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
        "Resource": ["*"],
    }


def test_a_stage_reading_back_keys_it_does_not_write_is_refused():
    # GIVEN analytics described as reading back a prefix it never writes
    stage = dataclasses.replace(describe(Stage.ANALYTICS), reads_back=Keys("elsewhere/", ".json"))
    # WHEN its policy is built THEN it is refused rather than granting reads beyond its own output
    with pytest.raises(PolicyError, match="is granted ReadOwnOutput on keys it does not write"):
        stage_policy(stage, GRAPH.node(Stage.ANALYTICS), grants())


def test_analytics_without_extras_has_only_the_data_path():
    statements = by_sid(policy(Stage.ANALYTICS, grants()).to_dict())
    assert list(statements) == [
        "ReadAnalyticsAggregates",
        "WriteAnalyticsReports",
        "WriteOwnLogs",
        "SendToOwnFailureQueue",
        "ReadOwnOutput",
        "ListSourceBucket",
    ]


def test_trust_policy_lets_only_lambda_assume_the_role():
    assert lambda_trust_policy().to_dict() == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": ["sts:AssumeRole"],
            }
        ],
    }


# --- the rendered policies of the evaluated program --------------------------------------------------


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_rendered_role_policies_have_no_star_except_the_describe_exception(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    for stage, doc in stack.role_policies().items():
        for statement in doc["Statement"]:
            assert all("*" not in a for a in statement["Action"]), (stage, statement["Sid"])
            if statement["Sid"] != "DescribeVpcNetwork":
                assert "*" not in statement["Resource"], (stage, statement["Sid"])


WRITE_ACTIONS = {"s3:PutObject", "s3:AbortMultipartUpload"}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_no_stage_may_read_or_write_another_stage_s_input(request, stack_name):
    # GIVEN the rendered policies and the object ARN patterns that trigger each stage
    stack = request.getfixturevalue(stack_name + "_stack")
    buckets = stack.buckets()
    triggers = {
        Stage.INGESTION: [f"arn:aws:s3:::{buckets[BucketRole.RAW]}/{contract.INPUT_PREFIX}*"],
        Stage.PROCESSING: [f"arn:aws:s3:::{buckets[BucketRole.PROCESSED]}/{contract.RECORDS_PREFIX}*"],
        Stage.ANALYTICS: [f"arn:aws:s3:::{buckets[BucketRole.ANALYTICS]}/{contract.AGGREGATES_PREFIX}*"],
    }
    policies = stack.role_policies()
    for stage, doc in policies.items():
        s3_resources = [
            (statement["Sid"], statement["Action"], r)
            for statement in doc["Statement"]
            if any(a.startswith("s3:") for a in statement["Action"])
            for r in statement["Resource"]
        ]
        for other, patterns in triggers.items():
            if other == stage:
                continue
            # A grant reaches another stage's input when either ARN pattern covers the other (a
            # bucket-wide "<bucket>/*" covers "<bucket>/records/*" as much as the reverse).
            touching = [
                (sid, actions, r)
                for sid, actions, r in s3_resources
                for p in patterns
                if fnmatch.fnmatchcase(p, r) or fnmatch.fnmatchcase(r, p)
            ]
            # THEN a stage's only access to another stage's input is writing it as that stage's producer
            producer = {Stage.PROCESSING: Stage.INGESTION, Stage.ANALYTICS: Stage.PROCESSING}.get(other)
            if stage == producer:
                assert touching, (stage, other)
                assert all(set(actions) <= WRITE_ACTIONS for _, actions, _ in touching), (stage, other)
            else:
                assert touching == [], (stage, other)


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_each_stage_writes_only_its_own_log_group_and_queue(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    for stage, doc in stack.role_policies().items():
        statements = by_sid(doc)
        outputs = stack.outputs["stages"][stage]
        assert statements["WriteOwnLogs"]["Resource"] == [
            f"arn:aws:logs:eu-west-1:123456789012:log-group:{outputs['logGroupName']}:*"
        ]
        assert statements["SendToOwnFailureQueue"]["Resource"] == [outputs["failureQueueArn"]]


def test_prod_analytics_reads_only_the_configured_secret(prod_stack):
    statements = by_sid(prod_stack.role_policies()[Stage.ANALYTICS])
    configured = prod_stack.config["data-pipeline:database"]["secretArn"]
    assert statements["ReadDatabaseSecret"]["Resource"] == [configured]
    assert all(
        "secretsmanager:GetSecretValue" not in s["Action"]
        for s in prod_stack.role_policies()[Stage.INGESTION]["Statement"]
    )


def test_prod_stages_may_use_only_the_configured_kms_key(prod_stack):
    key = prod_stack.config["data-pipeline:kmsKeyArn"]
    for doc in prod_stack.role_policies().values():
        kms_statements = [s for s in doc["Statement"] if any(a.startswith("kms:") for a in s["Action"])]
        assert kms_statements == [
            {
                "Sid": "UseDataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [key],
            }
        ]


def parliament_findings(policy_json: str) -> list[tuple[str, object]]:
    return [(f.issue, f.detail) for f in parliament.analyze_policy_string(policy_json).findings]


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_parliament_finds_nothing_in_any_role_or_bucket_policy(request, stack_name):
    stack = request.getfixturevalue(stack_name + "_stack")
    rendered = [r.inputs["policy"] for r in stack.by_type("aws:iam/rolePolicy:RolePolicy")]
    rendered += [r.inputs["policy"] for r in stack.by_type("aws:s3/bucketPolicy:BucketPolicy")]
    assert len(rendered) == 6
    assert {p: parliament_findings(p) for p in rendered} == {p: [] for p in rendered}


def test_parliament_would_report_a_mismatched_resource():
    # GIVEN an S3 action on a queue ARN: proof the analysis above can fail
    bad = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Bad", "Effect": "Allow", "Action": "s3:GetObject", "Resource": QUEUE}],
    }
    assert [issue for issue, _ in parliament_findings(json.dumps(bad))] == ["RESOURCE_MISMATCH"]


def test_trust_policies_are_rendered_exactly(dev_stack):
    # parliament reads identity policies only (a trust policy has no Resource), so they are compared exactly.
    for role in dev_stack.by_type("aws:iam/role:Role"):
        assert json.loads(role.inputs["assumeRolePolicy"]) == lambda_trust_policy().to_dict()


@pytest.mark.parametrize("stage", STAGES)
def test_the_program_renders_exactly_the_builders_policy(dev_stack, stage):
    # GIVEN the ARNs the dev stack declared
    outputs = dev_stack.outputs
    arns = StageGrants(
        bucket_arns={role: b["arn"] for role, b in outputs["buckets"].items()},
        log_group_arn=f"arn:aws:logs:eu-west-1:123456789012:log-group:{outputs['stages'][stage]['logGroupName']}",
        failure_queue_arn=outputs["stages"][stage]["failureQueueArn"],
    )
    expected = stage_policy(
        describe(stage),
        declared_chain(contract.INPUT_PREFIX, contract.INPUT_SUFFIXES).node(stage),
        arns,
    )
    # THEN the rendered inline policy is the pure builder's document, statement for statement
    assert dev_stack.role_policies()[stage] == expected.to_dict()


def test_only_an_account_delegation_may_allow_a_whole_service():
    # the key policy's delegation to the account's IAM policies is the one wildcard an Allow may name
    delegation = Statement(
        sid="Delegate",
        principals={"AWS": "arn:aws:iam::123456789012:root"},
        actions=("kms:*",),
        resources=("*",),
        any_resource=True,
        account_delegation=True,
    )
    assert delegation.to_dict()["Action"] == ["kms:*"]
    # and only as exactly that: one whole service, to an AWS principal
    for wrong in (
        {"principals": {"Service": "cloudwatch.amazonaws.com"}, "actions": ("kms:*",)},
        {"principals": {"AWS": "arn:aws:iam::123456789012:root"}, "actions": ("kms:*", "s3:*")},
        {"principals": {"AWS": "arn:aws:iam::123456789012:root"}, "actions": ("kms:Get*",)},
    ):
        with pytest.raises(PolicyError):
            Statement(sid="Delegate", resources=("*",), any_resource=True, account_delegation=True, **wrong)


def test_a_secret_and_a_topic_under_their_own_keys_are_usable_through_their_service_only():
    # GIVEN an existing secret and a topic each under a customer managed key other than kmsKeyArn
    kms = "arn:aws:kms:eu-west-1:123456789012:key/0f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    secret_key = "arn:aws:kms:eu-west-1:123456789012:key/1f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    topic_key = "arn:aws:kms:eu-west-1:123456789012:key/2f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    provided = Provided(
        database_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        summary_topic_arn="arn:aws:sns:eu-west-1:123456789012:summaries",
        region="eu-west-1",
        database_kms_key_arn=secret_key,
        summary_topic_kms_key_arn=topic_key,
    )
    statements = by_sid(policy(Stage.ANALYTICS, grants(kms_key_arn=kms), provided).to_dict())
    # THEN analytics may decrypt the secret through Secrets Manager, and encrypt messages through SNS
    assert statements["DecryptDatabaseSecret"] == {
        "Sid": "DecryptDatabaseSecret",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [secret_key],
        "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}},
    }
    assert statements["EncryptSummaryMessages"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statements["EncryptSummaryMessages"]["Resource"] == [topic_key]
    assert statements["EncryptSummaryMessages"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}
    }
    # AND the other stages get neither key
    for stage in (Stage.INGESTION, Stage.PROCESSING):
        other = by_sid(policy(stage, grants(kms_key_arn=kms), provided).to_dict())
        assert not {"DecryptDatabaseSecret", "EncryptSummaryMessages"} & set(other)


def test_a_secret_under_the_stack_key_needs_no_second_grant():
    kms = "arn:aws:kms:eu-west-1:123456789012:key/0f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    provided = Provided(
        database_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        region="eu-west-1",
        database_kms_key_arn=kms,
    )
    statements = by_sid(policy(Stage.ANALYTICS, grants(kms_key_arn=kms), provided).to_dict())
    assert "DecryptDatabaseSecret" not in statements
    assert "UseDataKey" in statements


SECRET_PROD = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:data-pipeline/prod/database-AbCdEf"


def test_the_declared_analytics_policy_names_the_secret_and_topic_keys(evaluate):
    secret_key = "arn:aws:kms:eu-west-1:111122223333:key/1f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    topic_key = "arn:aws:kms:eu-west-1:111122223333:key/2f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"
    stack = evaluate(
        "prod",
        {
            "database": {
                "secretArn": SECRET_PROD,
                "kmsKeyArn": secret_key,
            },
            "summaryTopicKmsKeyArn": topic_key,
        },
    )
    statements = by_sid(stack.role_policies()[Stage.ANALYTICS])
    assert statements["DecryptDatabaseSecret"]["Resource"] == [secret_key]
    assert statements["EncryptSummaryMessages"]["Resource"] == [topic_key]
