"""data-pipeline: raw -> processed -> analytics buckets chained by three Lambda stages.

Wiring only: read and validate the stack config, check the chain cannot loop, declare the components,
export the outputs. Everything else lives in components/.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_random

from artifacts.function_code import build_function_archive
from components import chain, config
from components.bucket import BucketTriggers, BucketTriggersArgs, DataBucket, DataBucketArgs, Trigger
from components.database import DatabaseSecret, DatabaseSecretArgs
from components.environment import stage_environment
from components.iam import StageGrants, policy_builder
from components.layer import SharedLayer, SharedLayerArgs
from components.migration import SchemaMigration, SchemaMigrationArgs, revisions_digest
from components.observability import MonitoredStage, Observability, ObservabilityArgs
from components.stage import DEST_BUCKET, HANDLERS, SOURCE_BUCKET, PipelineStage, PipelineStageArgs
from layer.build import LayerSpec, build_layer, check_size_budget

PROJECT_DIR = Path(__file__).resolve().parent

raw_config, secret_keys = config.read_stack_config()
cfg = config.parse_config(
    raw_config,
    project=pulumi.get_project(),
    stack=pulumi.get_stack(),
    secret_keys=secret_keys,
    project_dir=PROJECT_DIR,
)
graph = chain.declared_chain(cfg.input_prefix, cfg.input_suffixes)
chain.check_loop_free(graph)

account_id = aws.get_caller_identity_output().account_id
region = aws.get_region_output().region
partition = aws.get_partition_output().partition

# One suffix for all three buckets, generated once and kept in state: stable for the stack's lifetime.
suffix = (
    pulumi_random.RandomId("bucket-suffix", byte_length=config.SUFFIX_HEX_CHARS // 2)
    if cfg.bucket_suffix
    else None
)
buckets = {
    role: DataBucket(
        role,
        DataBucketArgs(
            bucket_name=pulumi.Output.format("{0}-{1}", base, suffix.hex) if suffix else base,
            force_destroy=cfg.force_destroy,
            retain_on_delete=cfg.retain_buckets_on_delete,
            versioning=cfg.versioning[role],
            noncurrent_version_expiration_days=cfg.noncurrent_version_expiration_days,
            kms_key_arn=cfg.kms_key_arn,
        ),
    )
    for role, base in cfg.bucket_base_names.items()
}

code_archive = build_function_archive(PROJECT_DIR)
if cfg.layer.archive is not None:
    layer_archive = cfg.layer.archive
else:
    layer_archive = build_layer(
        LayerSpec(runtime=cfg.runtime, architecture=cfg.architecture, include_boto3=cfg.layer.include_boto3)
    )
# Lambda's 250 MB unzipped limit counts the layer and the function code together: fail at preview, not at up.
check_size_budget(layer_archive, code_archive)
layer = SharedLayer(
    "shared-layer",
    SharedLayerArgs(
        layer_name=f"{cfg.resource_prefix}-shared",
        archive=layer_archive,
        runtime=cfg.runtime,
        architecture=cfg.architecture,
    ),
)

secret_arn: pulumi.Input[str] | None = None
database_secret = None
if cfg.database is not None and cfg.database.url is not None:
    database_secret = DatabaseSecret(
        "database-secret",
        DatabaseSecretArgs(
            url=cfg.database.url,
            kms_key_arn=cfg.kms_key_arn,
            recovery_window_days=0 if cfg.force_destroy else 30,
        ),
    )
    secret_arn = database_secret.arn
elif cfg.database is not None:
    secret_arn = cfg.database.secret_arn

bucket_arns = {role: b.arn for role, b in buckets.items()}
stages = {}
for stage in config.STAGES:
    settings = cfg.stages[stage]
    is_analytics = stage == "analytics"
    stages[stage] = PipelineStage(
        stage,
        PipelineStageArgs(
            stage=stage,
            function_name=cfg.function_name(stage),
            handler=HANDLERS[stage],
            code_archive=code_archive,
            layer_arn=layer.arn,
            runtime=cfg.runtime,
            architecture=cfg.architecture,
            memory_mb=settings.memory_mb,
            timeout_seconds=settings.timeout_seconds,
            reserved_concurrency=settings.reserved_concurrency,
            log_retention_days=settings.log_retention_days,
            environment=stage_environment(
                stage, cfg, buckets[DEST_BUCKET[stage]].name, secret_arn if is_analytics else None
            ),
            retry_attempts=cfg.retry_attempts,
            max_event_age_seconds=cfg.max_event_age_seconds,
            source_bucket_arn=buckets[SOURCE_BUCKET[stage]].arn,
            account_id=account_id,
            policy=policy_builder(graph.node(stage)),
            grants=StageGrants(
                bucket_arns=bucket_arns,
                kms_key_arn=cfg.kms_key_arn,
                secret_arn=secret_arn if is_analytics else None,
                topic_arn=cfg.summary_topic_arn if is_analytics else None,
                region=region,
                partition=partition,
            ),
            kms_key_arn=cfg.kms_key_arn,
            vpc=cfg.vpc if is_analytics else None,
        ),
    )

# The analytics stage refuses a database below the shipped revision: migrate before its events flow.
migration = None
if secret_arn is not None:
    migration = SchemaMigration(
        "schema-migration",
        SchemaMigrationArgs(
            function_name=stages["analytics"].function.name,
            revisions_digest=revisions_digest(PROJECT_DIR / "handlers" / "migrations"),
            database=secret_arn,
            depends_on=tuple(r for r in (stages["analytics"].function, database_secret) if r is not None),
        ),
    )

for role, targets in graph.triggers_by_bucket().items():
    feeds_analytics = migration is not None and any(stage == "analytics" for stage, _ in targets)
    BucketTriggers(
        f"{role}-triggers",
        BucketTriggersArgs(
            bucket=buckets[role].bucket,
            triggers=[
                Trigger(
                    function=stages[stage].function,
                    permission=stages[stage].permission,
                    prefix=location.prefix,
                    suffix=location.suffix,
                )
                for stage, location in targets
            ],
            wait_for=[migration] if feeds_analytics else [],
        ),
    )

observability = Observability(
    "observability",
    ObservabilityArgs(
        name_prefix=cfg.resource_prefix,
        stages=[MonitoredStage(stage, s.function.name, s.failure_queue.name) for stage, s in stages.items()],
        account_id=account_id,
        region=region,
        alarm_email=cfg.alarm_email,
        partition=partition,
    ),
)

pulumi.export("buckets", {role: {"name": b.name, "arn": b.arn} for role, b in buckets.items()})
pulumi.export(
    "stages",
    {
        stage: {
            "functionName": s.function.name,
            "functionArn": s.function.arn,
            "failureQueueUrl": s.failure_queue.url,
            "failureQueueName": s.failure_queue.name,
            "failureQueueArn": s.failure_queue.arn,
            "logGroupName": s.log_group.name,
        }
        for stage, s in stages.items()
    },
)
pulumi.export("layerArn", layer.arn)
pulumi.export("alarmTopicArn", observability.topic_arn)
pulumi.export("dashboardName", observability.dashboard_name)
if database_secret is not None:
    pulumi.export("databaseSecretArn", database_secret.arn)
