"""Typed IAM policies and one pure policy builder per stage.

`Statement` and `PolicyDocument` are frozen and check themselves when built: every statement has a Sid,
an Allow never names a wildcard action, and a `*` resource is allowed only where AWS offers nothing
narrower (`any_resource=True`, used once: the VPC network-interface actions). Builders take plain strings
or Pulumi Outputs; `to_dict` renders plain values for tests, `to_json` renders with `Output.json_dumps`
for the program.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.chain import Location, StageNode

_SID = re.compile(r"^[A-Za-z0-9]+$")
_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


class PolicyError(ValueError):
    """A statement or document breaks the house rules."""


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement."""

    sid: str  # alphanumeric, unique within the document
    actions: tuple[str, ...]  # service:Action; no wildcard in an Allow
    resources: tuple[Any, ...] = ()  # ARNs (str or Output[str]); "*" only with any_resource
    effect: Literal["Allow", "Deny"] = "Allow"  # Allow or Deny
    principals: Mapping[str, Any] | str | None = None  # resource and trust policies only
    conditions: Mapping[str, Mapping[str, Any]] | None = None  # operator -> {key: value}
    any_resource: bool = False  # the one documented exception: actions without resource-level control

    def __post_init__(self) -> None:
        if not _SID.match(self.sid):
            raise PolicyError(f"statement Sid {self.sid!r} must be alphanumeric")
        if not self.actions:
            raise PolicyError(f"statement {self.sid} has no action")
        for action in self.actions:
            wildcard = "*" in action
            if self.effect == "Allow" and wildcard:
                raise PolicyError(f"statement {self.sid} allows the wildcard action {action!r}")
            if not wildcard and not _ACTION.match(action):
                raise PolicyError(f"statement {self.sid} names a malformed action {action!r}")
        if not self.resources and self.principals is None:
            raise PolicyError(f"statement {self.sid} names no resource")
        if "*" in [r for r in self.resources if isinstance(r, str)] and not self.any_resource:
            raise PolicyError(f"statement {self.sid} names the resource '*' without any_resource=True")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals is not None:
            out["Principal"] = self.principals if isinstance(self.principals, str) else dict(self.principals)
        out["Action"] = list(self.actions)
        if self.resources:
            out["Resource"] = list(self.resources)
        if self.conditions:
            out["Condition"] = {op: dict(kv) for op, kv in self.conditions.items()}
        return out


@dataclass(frozen=True)
class PolicyDocument:
    """An IAM policy document (version 2012-10-17)."""

    statements: tuple[Statement, ...]  # at least one; Sids unique
    version: str = field(default="2012-10-17")  # the only current policy language version

    def __post_init__(self) -> None:
        if not self.statements:
            raise PolicyError("a policy document needs at least one statement")
        sids = [s.sid for s in self.statements]
        duplicates = sorted({s for s in sids if sids.count(s) > 1})
        if duplicates:
            raise PolicyError(f"duplicate statement Sids: {', '.join(duplicates)}")

    def to_dict(self) -> dict[str, Any]:
        return {"Version": self.version, "Statement": [s.to_dict() for s in self.statements]}

    def to_json(self) -> Any:
        """The document as an `Output[str]` (resolves the Output ARNs inside)."""
        import pulumi

        return pulumi.Output.json_dumps(self.to_dict())

    def statement(self, sid: str) -> Statement:
        return next(s for s in self.statements if s.sid == sid)


def lambda_trust_policy() -> PolicyDocument:
    """Only the Lambda service may assume a stage role."""
    return PolicyDocument(
        statements=(
            Statement(
                sid="LambdaAssumeRole",
                actions=("sts:AssumeRole",),
                principals={"Service": "lambda.amazonaws.com"},
            ),
        )
    )


def deny_insecure_transport(bucket_arn: Any) -> PolicyDocument:
    """Bucket policy refusing every request made without TLS."""
    return PolicyDocument(
        statements=(
            Statement(
                sid="DenyInsecureTransport",
                effect="Deny",
                principals="*",
                actions=("s3:*",),
                resources=(bucket_arn, _join(bucket_arn, "/*")),
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            ),
        )
    )


@dataclass(frozen=True)
class StageGrants:
    """The ARNs a stage's policy refers to; plain strings in tests, Outputs in the program."""

    bucket_arns: Mapping[str, Any]  # bucket role (raw/processed/analytics) -> bucket ARN
    log_group_arn: Any = None  # the stage's own log group (filled in by PipelineStage)
    failure_queue_arn: Any = None  # the stage's own failure queue (filled in by PipelineStage)
    kms_key_arn: str | None = None  # SSE-KMS key of buckets and queues, if any
    secret_arn: Any = None  # analytics: the database secret, if any
    topic_arn: str | None = None  # analytics: the summary topic, if any
    in_vpc: bool = False  # analytics: attached to a VPC
    vpc_subnet_ids: tuple[str, ...] = ()  # analytics in a VPC: where Lambda may create ENIs
    vpc_security_group_ids: tuple[str, ...] = ()  # analytics in a VPC: the groups those ENIs may use
    region: Any = None  # analytics in a VPC: the deployment region (scopes the ENI statement)
    partition: Any = "aws"  # ARN partition


def _join(arn: Any, suffix: str) -> Any:
    if isinstance(arn, str):
        return arn + suffix
    import pulumi

    return pulumi.Output.format("{0}{1}", arn, suffix)


def _ec2_arn(grants: StageGrants, resource: str) -> Any:
    if grants.region is None:
        raise PolicyError("a VPC-attached stage needs the region to scope its network-interface statements")
    if isinstance(grants.region, str) and isinstance(grants.partition, str):
        return f"arn:{grants.partition}:ec2:{grants.region}:*:{resource}"
    import pulumi

    return pulumi.Output.format("arn:{0}:ec2:{1}:*:{2}", grants.partition, grants.region, resource)


def _objects(grants: StageGrants, locations: tuple[Location, ...]) -> tuple[Any, ...]:
    return tuple(_join(grants.bucket_arns[loc.bucket], "/" + loc.key_pattern) for loc in locations)


def _common_statements(
    node: StageNode, grants: StageGrants, reads: str, writes: str, multipart: bool = False
) -> list[Statement]:
    statements = [
        Statement(
            sid=f"Read{reads}",
            # GetObjectVersion: a handler may read the exact version named in the event of a versioned bucket.
            actions=("s3:GetObject", "s3:GetObjectVersion"),
            resources=_objects(grants, node.triggers),
        ),
        Statement(
            sid=f"Write{writes}",
            # AbortMultipartUpload lets a failed streaming (multipart) upload clean up its parts; only
            # ingestion streams its output, the other stages write each object in one PUT.
            actions=("s3:PutObject", "s3:AbortMultipartUpload") if multipart else ("s3:PutObject",),
            resources=_objects(grants, node.writes),
        ),
        Statement(
            sid="WriteOwnLogs",
            actions=("logs:CreateLogStream", "logs:PutLogEvents"),
            resources=(_join(grants.log_group_arn, ":*"),),
        ),
        Statement(
            sid="SendToOwnFailureQueue",
            actions=("sqs:SendMessage",),
            resources=(grants.failure_queue_arn,),
        ),
    ]
    if grants.kms_key_arn is not None:
        statements.append(
            Statement(
                sid="UseDataKey",
                # Decrypt reads SSE-KMS objects; GenerateDataKey writes objects and queue messages.
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                resources=(grants.kms_key_arn,),
            )
        )
    return statements


def ingestion_policy(node: StageNode, grants: StageGrants) -> PolicyDocument:
    """Reads raw input; writes processed records/ and quarantine/."""
    return PolicyDocument(
        statements=tuple(_common_statements(node, grants, "RawInput", "ProcessedRecords", multipart=True))
    )


def processing_policy(node: StageNode, grants: StageGrants) -> PolicyDocument:
    """Reads processed records/; writes analytics aggregates/."""
    return PolicyDocument(
        statements=tuple(_common_statements(node, grants, "ProcessedRecords", "AnalyticsAggregates"))
    )


def analytics_policy(node: StageNode, grants: StageGrants) -> PolicyDocument:
    """Reads analytics aggregates/; writes reports/, plus only the secret and topic it uses."""
    statements = _common_statements(node, grants, "AnalyticsAggregates", "AnalyticsReports")
    if grants.secret_arn is not None:
        statements.append(
            Statement(
                sid="ReadDatabaseSecret",
                actions=("secretsmanager:GetSecretValue",),
                resources=(grants.secret_arn,),
            )
        )
    if grants.topic_arn is not None:
        statements.append(
            Statement(sid="PublishSummary", actions=("sns:Publish",), resources=(grants.topic_arn,))
        )
    if grants.in_vpc:
        statements += [
            Statement(
                sid="CreateNetworkInterfaces",
                # Lambda creates the function's ENIs with this role: only in the configured subnets, with the
                # configured security groups. The account stays open so subnets shared through RAM work.
                actions=("ec2:CreateNetworkInterface",),
                resources=(
                    _ec2_arn(grants, "network-interface/*"),
                    *(_ec2_arn(grants, f"subnet/{s}") for s in grants.vpc_subnet_ids),
                    *(_ec2_arn(grants, f"security-group/{g}") for g in grants.vpc_security_group_ids),
                ),
            ),
            Statement(
                sid="ManageNetworkInterfaces",
                actions=(
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ),
                resources=(_ec2_arn(grants, "network-interface/*"),),
            ),
            Statement(
                sid="DescribeVpcNetwork",
                # The documented exception: these Describe calls support no resource-level scoping at all.
                actions=("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
                resources=("*",),
                any_resource=True,
            ),
        ]
    return PolicyDocument(statements=tuple(statements))


POLICY_BUILDERS = {
    "ingestion": ingestion_policy,
    "processing": processing_policy,
    "analytics": analytics_policy,
}


def policy_builder(node: StageNode) -> Callable[[StageGrants], PolicyDocument]:
    """The stage's builder bound to its node of the declared graph."""
    return functools.partial(POLICY_BUILDERS[node.stage], node)
