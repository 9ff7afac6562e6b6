"""`PipelineStage`: one Lambda function and everything it needs to run, log, and keep failed events.

What the stage is (handler, buckets, keys, needs) comes from its `StageDescription` in the stage table; the
arguments add only what the stack config and the other components decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_aws import cloudwatch, iam, lambda_, sqs

from components.chain import StageNode
from components.component import Component, Opts
from components.config import StageSettings
from components.iam import PolicyDocument, StageGrants, lambda_trust_policy, stage_policy
from components.stage_table import Provided, StageDescription

# SQS keeps a message at most 14 days: the longest time to notice and redrive a failed event.
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class FunctionPackage:
    """What every stage's function shares: code, layer, platform and the handling of failed events."""

    code_archive: Path
    """The function code zip (every handler); must exist."""

    layer_arn: pulumi.Input[str]
    """The shared layer version."""

    runtime: str
    """python3.12 or python3.13."""

    architecture: str
    """x86_64 or arm64."""

    retry_attempts: int
    """Asynchronous retries before an event goes to the failure queue."""

    max_event_age_seconds: int
    """Age after which an unprocessed event goes to the failure queue."""


@dataclass(frozen=True)
class PipelineStageArgs:
    """Inputs of a `PipelineStage`."""

    stage: StageDescription
    """What the stage is: handler, source and destination, keys, needs (the stage table)."""

    node: StageNode
    """The stage in the declared chain: the locations that trigger it and those it writes."""

    function_name: str
    """The physical function name; its log group is /aws/lambda/<function_name>."""

    settings: StageSettings
    """Memory, timeout, reserved concurrency and log retention, from the stack config."""

    package: FunctionPackage
    """Code, layer, platform and failed-event handling, shared by every stage."""

    environment: Mapping[str, pulumi.Input[str]]
    """The function environment (`components.environment.stage_environment`)."""

    grants: StageGrants
    """The bucket ARNs, data key and partition the policy names; the stage adds its log group and queue."""

    account_id: pulumi.Input[str]
    """The account owning the source bucket (the invoke permission's confused-deputy guard)."""

    provided: Provided = dataclasses.field(default_factory=Provided)
    """What the stack provides; the stage uses only what its description needs (database, topic, VPC)."""


class PipelineStage(Component):
    """Role + inline policy, log group, function, failure queue, async-invoke config, S3 permission."""

    TYPE = "data-pipeline:stage:PipelineStage"

    role: iam.Role
    log_group: cloudwatch.LogGroup
    failure_queue: sqs.Queue
    policy: iam.RolePolicy
    function: lambda_.Function
    event_invoke_config: lambda_.FunctionEventInvokeConfig
    permission: lambda_.Permission
    policy_document: PolicyDocument
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    failure_queue_url: pulumi.Output[str]

    def __init__(self, name: str, args: PipelineStageArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)

        self.role = iam.Role(
            f"{name}-role",
            description=f"Execution role of the Lambda function {args.function_name}",
            assume_role_policy=lambda_trust_policy().to_json(),
            opts=self.child_opts,
        )
        self.log_group = cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.settings.log_retention_days,
            opts=self.child_opts,
        )
        kms_key_arn = args.grants.kms_key_arn
        queue_encryption: dict[str, Any] = (
            {"sqs_managed_sse_enabled": True}
            if kms_key_arn is None
            else {"kms_master_key_id": kms_key_arn, "kms_data_key_reuse_period_seconds": 3600}
        )
        self.failure_queue = sqs.Queue(
            f"{name}-failures",
            name=f"{args.function_name}-failures",
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            **queue_encryption,
            opts=self.child_opts,
        )
        needed = args.stage.needs.select(args.provided)
        self.policy_document = stage_policy(
            args.stage,
            args.node,
            dataclasses.replace(
                args.grants, log_group_arn=self.log_group.arn, failure_queue_arn=self.failure_queue.arn
            ),
            needed,
        )
        self.policy = iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=self.policy_document.to_json(),
            opts=self.child_opts,
        )
        self.function = lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            role=self.role.arn,
            runtime=args.package.runtime,
            architectures=[args.package.architecture],
            handler=args.stage.handler,
            code=pulumi.FileArchive(str(args.package.code_archive)),
            layers=[args.package.layer_arn],
            memory_size=args.settings.memory_mb,
            timeout=args.settings.timeout_seconds,
            reserved_concurrent_executions=args.settings.reserved_concurrency,
            # Outputs spill from memory to /tmp (handlers/s3io.py): its size is a stage setting.
            ephemeral_storage=lambda_.FunctionEphemeralStorageArgs(size=args.settings.ephemeral_storage_mb),
            environment=lambda_.FunctionEnvironmentArgs(variables=dict(args.environment)),
            logging_config=lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=self.log_group.name,
                application_log_level="INFO",
                # Lambda writes its START and REPORT lines (duration, billed duration, memory used) at INFO:
                # WARN would drop them, and with them the per-invocation cost and memory in the logs.
                system_log_level="INFO",
            ),
            vpc_config=None
            if needed.vpc is None
            else lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(needed.vpc.subnet_ids), security_group_ids=list(needed.vpc.security_group_ids)
            ),
            # Creating a VPC function checks the role's network-interface permissions, and the first
            # invocation needs its log and S3 permissions: the policy must exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        self.event_invoke_config = lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=args.package.retry_attempts,
            maximum_event_age_in_seconds=args.package.max_event_age_seconds,
            destination_config=lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.failure_queue.arn
                )
            ),
            # Lambda checks that the role may send to the destination when the config is saved.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        self.permission = lambda_.Permission(
            f"{name}-s3-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="s3.amazonaws.com",
            source_arn=args.grants.bucket_arns[args.stage.source],
            source_account=args.account_id,
            opts=self.child_opts,
        )
        self.function_name = self.function.name
        self.function_arn = self.function.arn
        self.failure_queue_url = self.failure_queue.url
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "failure_queue_url": self.failure_queue_url,
            }
        )
