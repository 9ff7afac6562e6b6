"""`PipelineStage`: one Lambda function and everything it needs to run, log, and keep failed events."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_aws import cloudwatch, iam, lambda_, sqs

from components.config import Vpc
from components.iam import PolicyDocument, StageGrants, lambda_trust_policy

HANDLERS = {
    "ingestion": "handlers.ingestion.handler",
    "processing": "handlers.processing.handler",
    "analytics": "handlers.analytics.handler",
}
DEST_BUCKET = {"ingestion": "processed", "processing": "analytics", "analytics": "analytics"}
SOURCE_BUCKET = {"ingestion": "raw", "processing": "processed", "analytics": "analytics"}
# SQS keeps a message at most 14 days: the longest time to notice and redrive a failed event.
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class PipelineStageArgs:
    """Inputs of a `PipelineStage`."""

    stage: str  # ingestion, processing or analytics
    function_name: str  # physical function name; its log group is /aws/lambda/<function_name>
    handler: str  # module.function inside the code archive
    code_archive: Path  # the function code zip; must exist
    layer_arn: pulumi.Input[str]  # the shared layer version
    runtime: str  # python3.12 or python3.13
    architecture: str  # x86_64 or arm64
    memory_mb: int  # Lambda memory
    timeout_seconds: int  # Lambda timeout
    reserved_concurrency: int | None  # None: unreserved
    log_retention_days: int  # retention of the function's log group
    environment: Mapping[str, pulumi.Input[str]]  # function environment
    retry_attempts: int  # async retries before the failure queue
    max_event_age_seconds: int  # async event age before the failure queue
    source_bucket_arn: pulumi.Input[str]  # the bucket whose notifications invoke the function
    account_id: pulumi.Input[str]  # the account owning the source bucket (confused-deputy guard)
    policy: Callable[[StageGrants], PolicyDocument]  # the stage's pure policy builder, bound to its node
    grants: StageGrants  # ARNs for the policy; its log group, queue and VPC entries are filled in here
    kms_key_arn: str | None = None  # encrypt the failure queue with this key; None: SQS-managed SSE
    vpc: Vpc | None = None  # attach the function to these subnets and security groups


class PipelineStage(pulumi.ComponentResource):
    """Role + inline policy, log group, function, failure queue, async-invoke config, S3 permission."""

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

    def __init__(
        self, name: str, args: PipelineStageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("data-pipeline:stage:PipelineStage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.role = iam.Role(
            f"{name}-role",
            description=f"Execution role of the Lambda function {args.function_name}",
            assume_role_policy=pulumi.Output.json_dumps(lambda_trust_policy().to_dict()),
            opts=child,
        )
        self.log_group = cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        queue_encryption: dict[str, Any] = (
            {"sqs_managed_sse_enabled": True}
            if args.kms_key_arn is None
            else {"kms_master_key_id": args.kms_key_arn, "kms_data_key_reuse_period_seconds": 3600}
        )
        self.failure_queue = sqs.Queue(
            f"{name}-failures",
            name=f"{args.function_name}-failures",
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            **queue_encryption,
            opts=child,
        )
        vpc = args.vpc
        self.policy_document = args.policy(
            dataclasses.replace(
                args.grants,
                log_group_arn=self.log_group.arn,
                failure_queue_arn=self.failure_queue.arn,
                in_vpc=vpc is not None,
                vpc_subnet_ids=vpc.subnet_ids if vpc else (),
                vpc_security_group_ids=vpc.security_group_ids if vpc else (),
            )
        )
        self.policy = iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=self.policy_document.to_json(),
            opts=child,
        )
        self.function = lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            role=self.role.arn,
            runtime=args.runtime,
            architectures=[args.architecture],
            handler=args.handler,
            code=pulumi.FileArchive(str(args.code_archive)),
            layers=[args.layer_arn],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment=lambda_.FunctionEnvironmentArgs(variables=dict(args.environment)),
            logging_config=lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=self.log_group.name,
                application_log_level="INFO",
                system_log_level="WARN",
            ),
            vpc_config=None
            if args.vpc is None
            else lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(args.vpc.subnet_ids), security_group_ids=list(args.vpc.security_group_ids)
            ),
            # Creating a VPC function checks the role's network-interface permissions, and the first
            # invocation needs its log and S3 permissions: the policy must exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        self.event_invoke_config = lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=args.retry_attempts,
            maximum_event_age_in_seconds=args.max_event_age_seconds,
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
            source_arn=args.source_bucket_arn,
            source_account=args.account_id,
            opts=child,
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
