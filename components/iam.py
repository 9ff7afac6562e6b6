"""Typed IAM policies: `Statement`, `PolicyDocument`, the one stage-policy builder, the shared statements.

`Statement` and `PolicyDocument` are frozen and check themselves when built: every statement has a Sid, an
Allow never names a wildcard action, and a `*` resource is allowed only where AWS offers nothing narrower
(`any_resource=True`: the VPC Describe actions, and a KMS key policy, where `*` means the key itself). The
one wildcard an Allow may name is a KMS key policy's delegation to the account (`account_key_delegation`).
Builders take plain strings or Pulumi Outputs; `to_dict` renders plain values for tests, `to_json` renders
with `Output.json_dumps` for the program. Every policy of the stack is built here: the stage roles'
(`stage_policy`, from the stage table), their trust policy, the buckets' and the alarm topic's TLS-only
statement (`deny_insecure_transport_statement`) and the alarm key's policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.chain import Location, StageNode
from components.stage_table import Keys, Provided, StageDescription

_SID = re.compile(r"^[A-Za-z0-9]+$")
_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


class PolicyError(ValueError):
    """A statement or document breaks the house rules."""


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement."""

    sid: str
    """Alphanumeric, unique within the document."""

    actions: tuple[str, ...]
    """`service:Action` names; no wildcard in an Allow (but see `account_delegation`)."""

    resources: tuple[Any, ...] = ()
    """ARNs (str or Output[str]); "*" only with `any_resource`."""

    effect: Literal["Allow", "Deny"] = "Allow"
    """Allow or Deny."""

    principals: Mapping[str, Any] | str | None = None
    """Who the statement is about; resource, key and trust policies only."""

    conditions: Mapping[str, Mapping[str, Any]] | None = None
    """Condition operator -> {condition key: value}."""

    any_resource: bool = False
    """Allows the resource "*": for actions without resource-level control (the VPC Describe actions), and
    in a KMS key policy, where "*" means the key the policy is attached to."""

    account_delegation: bool = False
    """Allows `<service>:*` to an `AWS` principal: only for a KMS key policy's delegation to the account's IAM
    policies (`account_key_delegation`), without which nobody could manage or delete the key."""

    def __post_init__(self) -> None:
        if not _SID.match(self.sid):
            raise PolicyError(f"statement Sid {self.sid!r} must be alphanumeric")
        if not self.actions:
            raise PolicyError(f"statement {self.sid} has no action")
        if self.account_delegation and not (
            self.effect == "Allow"
            and isinstance(self.principals, Mapping)
            and set(self.principals) == {"AWS"}
            and len(self.actions) == 1
            and self.actions[0].endswith(":*")
        ):
            raise PolicyError(
                f"statement {self.sid}: an account delegation allows exactly one '<service>:*' "
                "to an AWS principal"
            )
        for action in self.actions:
            wildcard = "*" in action
            if self.effect == "Allow" and wildcard and not self.account_delegation:
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

    statements: tuple[Statement, ...]
    """At least one; Sids unique."""

    version: str = field(default="2012-10-17")
    """The policy language version (2012-10-17 is the only current one)."""

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


def deny_insecure_transport_statement(actions: tuple[str, ...], resources: tuple[Any, ...]) -> Statement:
    """The statement that refuses `actions` on `resources` to anyone, for every request made without TLS."""
    return Statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        principals="*",
        actions=actions,
        resources=resources,
        conditions={"Bool": {"aws:SecureTransport": "false"}},
    )


def deny_insecure_transport(bucket_arn: Any) -> PolicyDocument:
    """Bucket policy refusing every request made without TLS."""
    return PolicyDocument(
        statements=(deny_insecure_transport_statement(("s3:*",), (bucket_arn, _join(bucket_arn, "/*"))),)
    )


def account_key_delegation(partition: Any, account_id: Any) -> Statement:
    """The key policy statement that lets the account's IAM policies manage the key (AWS's default key
    policy); without it nobody could ever manage or delete the key."""
    return Statement(
        sid="AccountIamPoliciesManageKey",
        principals={"AWS": _format("arn:{0}:iam::{1}:root", partition, account_id)},
        actions=("kms:*",),
        resources=("*",),
        any_resource=True,
        account_delegation=True,
    )


@dataclass(frozen=True)
class StageGrants:
    """The ARNs every stage's policy names; plain strings in tests, Outputs in the program."""

    bucket_arns: Mapping[str, Any]
    """Bucket role (raw/processed/analytics) -> bucket ARN."""

    log_group_arn: Any = None
    """The stage's own log group (filled in by `PipelineStage`)."""

    failure_queue_arn: Any = None
    """The stage's own failure queue (filled in by `PipelineStage`)."""

    kms_key_arn: str | None = None
    """The SSE-KMS key of the buckets and queues, if any."""

    partition: Any = "aws"
    """The ARN partition."""

    database_user_arn: Any = None
    """The `rds-db:connect` resource of the application user of a database the stack owns (`database.create`);
    granted to the stage that needs the database."""


def _join(arn: Any, suffix: str) -> Any:
    if isinstance(arn, str):
        return arn + suffix
    return _format("{0}{1}", arn, suffix)


def _format(template: str, *parts: Any) -> Any:
    """`template` with `parts`: a string when every part is one, else an `Output.format`."""
    if all(isinstance(p, str) for p in parts):
        return template.format(*parts)
    import pulumi

    return pulumi.Output.format(template, *parts)


def _objects(grants: StageGrants, locations: tuple[Location, ...]) -> tuple[Any, ...]:
    return tuple(_join(grants.bucket_arns[loc.bucket], "/" + loc.key_pattern) for loc in locations)


def _on_own_output(
    stage: StageDescription, grants: StageGrants, keys: Keys, sid: str, actions: tuple[str, ...]
) -> Statement:
    """More actions on one of the keys `stage` writes; keys it does not write are refused."""
    if keys not in stage.writes:
        raise PolicyError(f"stage {stage.name} is granted {sid} on keys it does not write")
    return Statement(
        sid=sid, actions=actions, resources=_objects(grants, (Location.of(stage.destination, keys),))
    )


def stage_policy(
    stage: StageDescription, node: StageNode, grants: StageGrants, provided: Provided | None = None
) -> PolicyDocument:
    """The inline policy of `stage`'s role: exactly what its handler does.

    It reads the objects that trigger it and writes its own (`node`), logs to its own log group, sends to its
    own failure queue, uses the data key if there is one, and uses what the stack provides only where the
    stage table says the stage needs it (`Needs`).
    """
    statements = [
        Statement(
            sid=stage.read_sid,
            # GetObjectVersion: a handler may read the exact version named in the event of a versioned bucket.
            actions=("s3:GetObject", "s3:GetObjectVersion"),
            resources=_objects(grants, node.triggers),
        ),
        Statement(
            sid=stage.write_sid,
            # AbortMultipartUpload lets a failed streaming (multipart) upload clean up its parts.
            actions=("s3:PutObject", "s3:AbortMultipartUpload")
            if stage.multipart_writes
            else ("s3:PutObject",),
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
    if stage.staging is not None:
        # Writing there is `write_sid`'s; a release copies (GetObject on the source) and deletes.
        statements.append(
            _on_own_output(
                stage, grants, stage.staging, "ReleaseStagedObjects", ("s3:GetObject", "s3:DeleteObject")
            )
        )
    if stage.reads_back is not None:
        statements.append(_on_own_output(stage, grants, stage.reads_back, "ReadOwnOutput", ("s3:GetObject",)))
    # Without s3:ListBucket, S3 answers a read of a missing (deleted) object with 403 instead of 404, and the
    # runbook would send operators after an IAM problem that does not exist. No condition narrows it: the
    # s3:prefix key is present only in a listing request, so a conditioned grant would not reach GetObject.
    statements.append(
        Statement(
            sid="ListSourceBucket",
            actions=("s3:ListBucket",),
            resources=tuple(dict.fromkeys(grants.bucket_arns[loc.bucket] for loc in node.triggers)),
        )
    )
    if grants.kms_key_arn is not None:
        statements.append(
            Statement(
                sid="UseDataKey",
                # Decrypt reads SSE-KMS objects; GenerateDataKey writes objects and queue messages.
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                resources=(grants.kms_key_arn,),
            )
        )
    needed = stage.needs.select(provided or Provided())
    if needed.database_kms_key_arn is not None and needed.database_kms_key_arn != grants.kms_key_arn:
        statements.append(
            _key_via_service(
                "DecryptDatabaseSecret",
                ("kms:Decrypt",),
                needed.database_kms_key_arn,
                "secretsmanager",
                needed,
            )
        )
    if (
        needed.summary_topic_kms_key_arn is not None
        and needed.summary_topic_kms_key_arn != grants.kms_key_arn
    ):
        statements.append(
            _key_via_service(
                "EncryptSummaryMessages",
                ("kms:Decrypt", "kms:GenerateDataKey"),
                needed.summary_topic_kms_key_arn,
                "sns",
                needed,
            )
        )
    if needed.database_secret_arn is not None:
        statements.append(
            Statement(
                sid="ReadDatabaseSecret",
                actions=("secretsmanager:GetSecretValue",),
                resources=(needed.database_secret_arn,),
            )
        )
    if needed.database_secret_arn is not None and grants.database_user_arn is not None:
        statements.append(
            Statement(
                sid="ConnectAsAppUser",
                # The IAM authentication token of the one database user loads sign in as.
                actions=("rds-db:connect",),
                resources=(grants.database_user_arn,),
            )
        )
    if needed.summary_topic_arn is not None:
        statements.append(
            Statement(sid="PublishSummary", actions=("sns:Publish",), resources=(needed.summary_topic_arn,))
        )
    if needed.vpc is not None:
        statements += _network_interface_statements(grants, needed)
    return PolicyDocument(statements=tuple(statements))


def _key_via_service(
    sid: str, actions: tuple[str, ...], key_arn: str, service: str, needed: Provided
) -> Statement:
    """Use of another resource's key, only through that resource's service in the stack's region."""
    conditions = (
        None
        if needed.region is None
        else {"StringEquals": {"kms:ViaService": _format("{0}.{1}.amazonaws.com", service, needed.region)}}
    )
    return Statement(sid=sid, actions=actions, resources=(key_arn,), conditions=conditions)


def _network_interface_statements(grants: StageGrants, needed: Provided) -> list[Statement]:
    """What Lambda needs to place the function in the configured subnets with the configured groups."""
    assert needed.vpc is not None
    if needed.region is None:
        raise PolicyError("a VPC-attached stage needs the region to scope its network-interface statements")

    def ec2(resource: str, ident: Any = "") -> Any:
        # `ident` may be an Output: the IDs of a VPC the stack creates (vpc.create).
        return _format("arn:{0}:ec2:{1}:*:{2}{3}", grants.partition, needed.region, resource, ident)

    return [
        Statement(
            sid="CreateNetworkInterfaces",
            # Lambda creates the function's ENIs with this role: only in the configured subnets, with the
            # configured security groups. The account stays open so subnets shared through RAM work.
            actions=("ec2:CreateNetworkInterface",),
            resources=(
                ec2("network-interface/*"),
                *(ec2("subnet/", s) for s in needed.vpc.subnet_ids),
                *(ec2("security-group/", g) for g in needed.vpc.security_group_ids),
            ),
        ),
        Statement(
            sid="ManageNetworkInterfaces",
            actions=(
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ),
            resources=(ec2("network-interface/*"),),
        ),
        Statement(
            sid="DescribeVpcNetwork",
            # The documented exception: these Describe calls support no resource-level scoping at all.
            actions=("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
            resources=("*",),
            any_resource=True,
        ),
    ]
