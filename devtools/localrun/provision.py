"""Provisioning: what the stack declares, created on moto, and one Lambda-like image per stage.

:func:`provision` creates, as the emulator's admin, the declared buckets (versioning as declared) with
their notification configurations, the failure queues, the secrets, a stand-in for each SNS topic the
stack references without owning it, and per stage an IAM role holding exactly the declared inline
policies, whose temporary credentials the stage's processes get. ARNs computed by the mocks are rewritten
to moto's (:meth:`Deployment.map`). :func:`prepare_images` lays out each function (code, layer, runtime
boto3, environment) and :func:`migrate` upgrades the database as ``pulumi up`` does before any event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.localrun.emulator import AwsEmulator, Credentials
from devtools.localrun.errors import LocalRunError
from devtools.localrun.lambda_runtime import ContainerPool, FunctionImage, Interpreter
from devtools.localrun.layout import boto3_runtime_dir, precompile, unpack_cached, unpack_zip
from devtools.localrun.spec import BucketSpec, PipelineSpec, StageSpec
from handlers.contract import MIGRATE_EVENT, Env, Stage


@dataclass
class Deployment:
    """The declared stack as provisioned on moto."""

    spec: PipelineSpec
    arn_map: dict[str, str] = field(default_factory=dict)  # declared (mock) ARN -> moto's
    queue_urls: dict[str, str] = field(default_factory=dict)  # moto queue ARN -> its URL
    stage_by_function_arn: dict[str, StageSpec] = field(default_factory=dict)  # moto function ARN -> stage
    credentials: dict[str, Credentials] = field(default_factory=dict)  # stage -> its role's credentials
    pools: dict[str, ContainerPool] = field(default_factory=dict)  # stage -> its warm containers

    def map(self, value: str) -> str:
        """``value`` with every declared ARN replaced by moto's."""
        for declared in sorted(self.arn_map, key=len, reverse=True):
            value = value.replace(declared, self.arn_map[declared])
        return value

    def function_arn(self, stage: StageSpec) -> str:
        """The ARN moto's S3 notifications name for the stage's function."""
        return f"arn:aws:lambda:{self.spec.region}:{self.spec.account_id}:function:{stage.function_name}"

    def failure_queue_url(self, stage: StageSpec) -> str | None:
        """The URL of the stage's failure destination, if it is a declared queue."""
        return self.queue_urls.get(self.map(stage.failure_destination_arn))

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def maybe_stage(spec: PipelineSpec, name: str) -> StageSpec | None:
    try:
        return spec.stage(name)
    except KeyError:
        return None


def provision(aws: AwsEmulator, spec: PipelineSpec) -> Deployment:
    deployment = Deployment(spec)
    arn_map = deployment.arn_map
    s3, sqs, iam = aws.client("s3"), aws.client("sqs"), aws.client("iam")
    for bucket in spec.buckets:
        kwargs: dict[str, Any] = {"Bucket": bucket.name}
        if spec.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": spec.region}
        s3.create_bucket(**kwargs)
        if bucket.versioned:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        arn_map[bucket.arn] = f"arn:aws:s3:::{bucket.name}"
    for q in spec.queues:
        url = sqs.create_queue(QueueName=q.name, Attributes=dict(q.attributes))["QueueUrl"]
        moto_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        arn_map[q.arn] = moto_arn
        deployment.queue_urls[moto_arn] = url
    if spec.secrets:
        secretsmanager = aws.client("secretsmanager")
        for secret in spec.secrets:
            created = secretsmanager.create_secret(
                Name=secret.name, **({"SecretString": secret.value} if secret.value is not None else {})
            )
            arn_map[secret.arn] = created["ARN"]
    topics = {
        value
        for stage in spec.stages
        for value in stage.environment.values()
        if value.startswith("arn:aws:sns:")
    }
    if topics:
        # Topics the stack references but does not own (e.g. summaryTopicArn): a local stand-in each.
        sns = aws.client("sns")
        for topic in sorted(topics):
            arn_map[topic] = sns.create_topic(Name=topic.rsplit(":", 1)[-1])["TopicArn"]
    for stage in spec.stages:
        arn_map[stage.function_arn] = deployment.function_arn(stage)
        arn_map[stage.role_arn] = f"arn:aws:iam::{aws.account_id}:role/{stage.role_name}"
    for stage in spec.stages:
        # The declared trust policy names lambda.amazonaws.com (checked in preflight); here the local
        # Lambda service user stands in for that principal, since moto cannot be the Lambda service.
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": aws.lambda_service_principal()},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam.create_role(RoleName=stage.role_name, AssumeRolePolicyDocument=json.dumps(trust))
        for policy in stage.policies:
            iam.put_role_policy(
                RoleName=stage.role_name,
                PolicyName=policy.name,
                PolicyDocument=deployment.map(json.dumps(policy.document)),
            )
        deployment.stage_by_function_arn[deployment.function_arn(stage)] = stage
    for bucket in spec.buckets:
        if bucket.notifications:
            _put_notifications(s3, bucket, deployment)
    for stage in spec.stages:
        deployment.credentials[stage.stage] = aws.assume_role(
            arn_map[stage.role_arn], f"{stage.function_name}"[:64]
        )
    return deployment


def _put_notifications(s3: Any, bucket: BucketSpec, deployment: Deployment) -> None:
    configs = []
    for i, n in enumerate(bucket.notifications):
        rules = [{"Name": "prefix", "Value": n.prefix}] if n.prefix else []
        rules += [{"Name": "suffix", "Value": n.suffix}] if n.suffix else []
        config: dict[str, Any] = {
            "Id": n.id or f"{bucket.resource_name}-{i}",
            "LambdaFunctionArn": deployment.map(n.function_arn),
            "Events": list(n.events),
        }
        if rules:
            config["Filter"] = {"Key": {"FilterRules": rules}}
        configs.append(config)
    s3.put_bucket_notification_configuration(
        Bucket=bucket.name, NotificationConfiguration={"LambdaFunctionConfigurations": configs}
    )


def prepare_images(
    deployment: Deployment,
    aws: AwsEmulator,
    *,
    layer_archive: Path,
    interpreter: Interpreter,
    work_dir: Path,
    cache_dir: Path,
    cpu_scaling: bool = True,
) -> None:
    """A warm-container pool per stage: its code, the layer, the runtime's boto3 and its environment.

    The declared timeout and memory come with it; with ``cpu_scaling`` each invocation's CPU time counts
    at the memory's CPU share (devtools/localrun/cpu.py)."""
    spec = deployment.spec
    root = work_dir / "functions"
    runtime_dir = boto3_runtime_dir(cache_dir / "runtime")
    precompile(runtime_dir, interpreter)
    # What every stage's image shares: the layer (read-only, unpacked once), the runtime and the CPU rule.
    shared = {
        "opt_dir": unpack_cached(layer_archive, cache_dir / "layers"),
        "runtime_dir": runtime_dir,
        "interpreter": interpreter,
        "cpu_scaling": cpu_scaling,
    }
    for stage in spec.stages:
        if stage.layer_archives and layer_archive.resolve() not in {
            p.resolve() for p in stage.layer_archives
        }:
            raise LocalRunError(
                f"stage {stage.stage} declares the layer {', '.join(map(str, stage.layer_archives))}, "
                f"but the run was given {layer_archive} (evaluate the stack with layer.archive = it)"
            )
        # The image adds what Lambda sets from the function itself (FunctionImage.lambda_environment).
        environment = {k: deployment.map(str(v)) for k, v in stage.environment.items()}
        environment.update(
            {
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{stage.stage}",
                "AWS_ENDPOINT_URL": aws.endpoint,
                # No host AWS configuration may leak in: the role's credentials are the only ones.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
                **deployment.credentials[stage.stage].as_env(),
            }
        )
        deployment.pools[stage.stage] = ContainerPool(
            FunctionImage(
                name=stage.function_name,
                arn=deployment.function_arn(stage),
                handler=stage.handler,
                task_root=unpack_zip(stage.code_archive, root / stage.stage / "task"),
                environment=environment,
                timeout_seconds=stage.timeout_seconds,
                memory_mb=stage.memory_mb,
                log_group=stage.log_group,
                **shared,
            )
        )


def migrate(deployment: Deployment, echo: Callable[[str], None]) -> None:
    """What `pulumi up` does before the analytics bucket notifies anyone (components/migration.py):
    one synchronous invocation of the analytics function that upgrades its database."""
    stage = maybe_stage(deployment.spec, Stage.ANALYTICS)
    if stage is None or Env.DATABASE_SECRET_ARN not in stage.environment:
        return
    result = deployment.pools[stage.stage].invoke(MIGRATE_EVENT)
    if not result.ok:
        error = result.error or {}
        message = (str(error.get("errorMessage", "")).splitlines() or [""])[0]
        raise LocalRunError(f"the schema migration failed: {error.get('errorType')}: {message}")
    revision = result.payload.get("revision") if isinstance(result.payload, dict) else None
    echo(f"migrated the analytics database to revision {revision}")
