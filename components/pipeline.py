"""`DataPipeline`: the whole pipeline of one stack, declared from its validated config and the stage table.

Three buckets (raw -> processed -> analytics), the shared layer, one `PipelineStage` per row of the stage
table (`components.stage_table`), one notification per triggering bucket, the database secret and schema
migration when the stack has a database, and the alarms and dashboard. The chain is checked for loops before
anything is declared.

Existing stacks declared these components at the stack's root, before `DataPipeline` existed: each one carries
the alias `Alias(parent=ROOT_STACK_RESOURCE)`, and its children inherit it, so every resource's old URN is an
alias of its new one and `pulumi up` moves the resources under `DataPipeline` instead of replacing them
(tests/components/test_components_urns.py checks it against the URNs the old program declared).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random

from components import chain, config, stage_table
from components.bucket import BucketTriggers, BucketTriggersArgs, DataBucket, DataBucketArgs, Trigger
from components.component import Component, Opts
from components.config import PipelineConfig
from components.database import DatabaseSecret, DatabaseSecretArgs, ManagedDatabase, ManagedDatabaseArgs
from components.environment import secret_variables, stage_environment
from components.iam import StageGrants
from components.layer import SharedLayer, SharedLayerArgs
from components.migration import SchemaMigration, SchemaMigrationArgs
from components.network import (
    PrivateNetwork,
    PrivateNetworkArgs,
    ServiceEndpoints,
    ServiceEndpointsArgs,
    services_used,
    subnet_route_tables,
    subnet_vpc,
)
from components.observability import MonitoredStage, Observability, ObservabilityArgs
from components.stage import FunctionPackage, PipelineStage, PipelineStageArgs
from components.stage_table import Provided


@dataclass(frozen=True)
class DataPipelineArgs:
    """Inputs of a `DataPipeline`."""

    config: PipelineConfig
    """The validated stack config (`components.config.load_stack_config`)."""

    code_archive: Path
    """The function code zip every stage runs (`artifacts.function_code.build_function_archive`)."""

    layer_archive: Path
    """The shared layer zip, built for the config's runtime and architecture (`layer.build`)."""

    revisions_digest: str
    """`components.migration.revisions_digest` of the schema revisions the code ships: a new revision runs
    the migration again."""


def _kept_secret(cfg: PipelineConfig, key: str, value: Any) -> Any:
    """`value`, as a secret Output when `key` was set with `--secret` (config.KEPT_SECRET_KEYS)."""
    if value is None or not cfg.is_secret(key):
        return value
    return pulumi.Output.secret(value)


def _secret_environment(environment: dict[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    """The function environment, each variable that comes from a `--secret` key wrapped as a secret."""
    return {
        name: pulumi.Output.secret(value) if name in secret else value for name, value in environment.items()
    }


def _database_identity(
    secret_arn: pulumi.Input[str], secret: DatabaseSecret | None, managed: ManagedDatabase | None
) -> pulumi.Output[str]:
    """What names the database the migration must reach: a new URL behind the same secret (its version),
    or a new instance (its endpoint), invokes the migration again; an external secret is named by its ARN,
    so a database moved behind it is migrated with `python -m devtools migrate` (README, Operating)."""
    if secret is not None:
        return pulumi.Output.format("{0}#{1}", secret_arn, secret.version.version_id)
    if managed is not None:
        return pulumi.Output.format("{0}#{1}", secret_arn, managed.endpoint)
    return pulumi.Output.from_input(secret_arn)


def _moved_from_root(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of a component that existing stacks declared at the stack's root: its old URN, and through
    inheritance its children's, are aliases of the new ones."""
    return pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])


class DataPipeline(Component):
    """The pipeline of one stack: buckets, layer, stages, notifications, database, alarms and dashboard."""

    TYPE = "data-pipeline:pipeline:DataPipeline"

    bucket_suffix: pulumi_random.RandomId | None
    buckets: dict[str, DataBucket]
    layer: SharedLayer
    database_secret: DatabaseSecret | None
    managed_database: ManagedDatabase | None
    stages: dict[str, PipelineStage]
    migration: SchemaMigration | None
    service_endpoints: ServiceEndpoints | None
    network: PrivateNetwork | None
    triggers: dict[str, BucketTriggers]
    observability: Observability
    bucket_outputs: dict[str, dict[str, pulumi.Output[str]]]
    stage_outputs: dict[str, dict[str, pulumi.Output[str]]]
    layer_arn: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    database_secret_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: DataPipelineArgs, opts: Opts = None) -> None:
        cfg = args.config
        # Read at call time: the stage table is the one source (the tests replace it to break the chain).
        descriptions = {stage.name: stage for stage in stage_table.STAGE_TABLE}
        graph = chain.declared_chain(cfg.input_prefix, cfg.input_suffixes)
        # Before anything is declared: a recursive S3 -> Lambda loop costs real money.
        chain.check_loop_free(graph)
        super().__init__(name, opts)

        account_id = aws.get_caller_identity_output().account_id
        region = aws.get_region_output().region
        partition = aws.get_partition_output().partition

        # One suffix for all three buckets, generated once and kept in state: stable for the stack's lifetime.
        self.bucket_suffix = (
            pulumi_random.RandomId(
                "bucket-suffix",
                byte_length=config.SUFFIX_HEX_CHARS // 2,
                opts=_moved_from_root(self),
            )
            if cfg.bucket_suffix
            else None
        )
        suffix = self.bucket_suffix
        self.buckets = {
            role: DataBucket(
                role,
                DataBucketArgs(
                    bucket_name=pulumi.Output.format("{0}-{1}", base, suffix.hex) if suffix else base,
                    force_destroy=cfg.force_destroy,
                    retain_on_delete=cfg.retain_buckets_on_delete,
                    versioning=cfg.versioning[role],
                    noncurrent_version_expiration_days=cfg.noncurrent_version_expiration_days,
                    kms_key_arn=cfg.kms_key_arn,
                    staging_prefixes=stage_table.staging_prefixes(role),
                )
                if role not in cfg.adopted_buckets
                else _adopted_bucket_args(cfg, role),
                opts=_moved_from_root(self),
            )
            for role, base in cfg.bucket_base_names.items()
        }
        self.layer = SharedLayer(
            "shared-layer",
            SharedLayerArgs(
                layer_name=f"{cfg.resource_prefix}-shared",
                archive=args.layer_archive,
                runtime=cfg.runtime,
                architecture=cfg.architecture,
            ),
            opts=_moved_from_root(self),
        )

        self.database_secret = None
        secret_arn: Any = None
        if cfg.database is not None and cfg.database.url is not None:
            self.database_secret = DatabaseSecret(
                "database-secret",
                DatabaseSecretArgs(
                    url=cfg.database.url,
                    kms_key_arn=cfg.kms_key_arn,
                    recovery_window_days=0 if cfg.force_destroy else 30,
                ),
                opts=_moved_from_root(self),
            )
            secret_arn = self.database_secret.arn
        # vpc.create: the stack builds the VPC, and the rest of the program uses its IDs as if configured.
        self.network = None
        vpc_cfg = cfg.vpc
        if cfg.vpc is not None and cfg.vpc.create is not None:
            self.network = PrivateNetwork(
                "network",
                PrivateNetworkArgs(
                    cidr=cfg.vpc.create.cidr,
                    subnets=tuple(
                        zip(cfg.vpc.create.availability_zones, cfg.vpc.create.subnet_cidrs(), strict=True)
                    ),
                    name_prefix=cfg.resource_prefix,
                ),
                opts=self.child_opts,
            )
            vpc_cfg = dataclasses.replace(
                cfg.vpc,
                subnet_ids=tuple(subnet.id for subnet in self.network.subnets),
                security_group_ids=(self.network.function_security_group.id,),
                vpc_id=self.network.vpc.id,
                route_table_ids=(self.network.route_table.id,),
            )

        # Unset vpc.vpcId and vpc.routeTableIds are the subnets' own, looked up (docs/configuration.md).
        in_vpc = [stage for stage in descriptions.values() if stage.needs.vpc]
        creates_endpoints = (
            vpc_cfg is not None and vpc_cfg.service_access == config.SERVICE_ACCESS_ENDPOINTS and bool(in_vpc)
        )
        creates_database = cfg.database is not None and cfg.database.create is not None
        if vpc_cfg is not None and vpc_cfg.vpc_id is None and (creates_endpoints or creates_database):
            vpc_cfg = dataclasses.replace(vpc_cfg, vpc_id=subnet_vpc(vpc_cfg.subnet_ids[0]))
        if vpc_cfg is not None and creates_endpoints and not vpc_cfg.route_table_ids:
            vpc_cfg = dataclasses.replace(
                vpc_cfg, route_table_ids=subnet_route_tables(vpc_cfg.vpc_id, vpc_cfg.subnet_ids)
            )

        self.managed_database = None
        database_endpoint: Any = None
        if cfg.database is not None and cfg.database.create is not None:
            assert vpc_cfg is not None
            assert vpc_cfg.vpc_id is not None
            created = cfg.database.create
            self.managed_database = ManagedDatabase(
                "database",
                ManagedDatabaseArgs(
                    identifier=cfg.resource_prefix.lower(),
                    engine_version=config.POSTGRES_MAJOR_VERSION,
                    instance_class=created.instance_class,
                    allocated_storage_gb=created.allocated_storage_gb,
                    multi_az=created.multi_az,
                    apply_immediately=created.apply_immediately,
                    db_name=created.name,
                    vpc_id=vpc_cfg.vpc_id,
                    subnet_ids=vpc_cfg.subnet_ids,
                    client_security_group_ids=vpc_cfg.security_group_ids,
                    kms_key_arn=cfg.kms_key_arn,
                    production=not cfg.force_destroy,
                ),
                opts=self.child_opts,
            )
            secret_arn = self.managed_database.secret_arn
            database_endpoint = self.managed_database.endpoint
        elif cfg.database is not None and cfg.database.secret_arn is not None:
            # Set with --secret, the ARN stays secret in the environment, the policy and the migration.
            secret_arn = _kept_secret(cfg, "database", cfg.database.secret_arn)

        grants = StageGrants(
            bucket_arns={role: bucket.arn for role, bucket in self.buckets.items()},
            kms_key_arn=cfg.kms_key_arn,
            partition=partition,
            database_user_arn=self.managed_database.app_user_arn(partition, region, account_id)
            if self.managed_database is not None
            else None,
        )
        provided = Provided(
            database_secret_arn=secret_arn,
            summary_topic_arn=_kept_secret(cfg, "summaryTopicArn", cfg.summary_topic_arn),
            vpc=vpc_cfg,
            region=region,
            database_kms_key_arn=_kept_secret(
                cfg, "database", cfg.database.kms_key_arn if cfg.database is not None else None
            ),
            summary_topic_kms_key_arn=_kept_secret(
                cfg, "summaryTopicKmsKeyArn", cfg.summary_topic_kms_key_arn
            ),
        )
        package = FunctionPackage(
            code_archive=args.code_archive,
            layer_arn=self.layer.arn,
            runtime=cfg.runtime,
            architecture=cfg.architecture,
            retry_attempts=cfg.retry_attempts,
            max_event_age_seconds=cfg.max_event_age_seconds,
        )
        self.stages = {
            stage.name: PipelineStage(
                stage.name,
                PipelineStageArgs(
                    stage=stage,
                    node=graph.node(stage.name),
                    function_name=cfg.function_name(stage.name),
                    settings=cfg.stages[stage.name],
                    package=package,
                    environment=_secret_environment(
                        stage_environment(
                            stage, cfg, self.buckets[stage.destination].name, secret_arn, database_endpoint
                        ),
                        secret_variables(stage, cfg),
                    ),
                    grants=grants,
                    account_id=account_id,
                    provided=provided,
                ),
                opts=_moved_from_root(self),
            )
            for stage in descriptions.values()
        }

        # A stage in private subnets reaches S3, Secrets Manager and SNS only through endpoints or a NAT
        # (`vpc.serviceAccess`); with `endpoints` the stack creates them for the services those stages use,
        # and nothing invokes such a stage (its migration, its bucket's notification) before they exist.
        self.service_endpoints = None
        if vpc_cfg is not None and creates_endpoints:
            assert vpc_cfg.vpc_id is not None  # configured, created or looked up above
            self.service_endpoints = ServiceEndpoints(
                "service-endpoints",
                ServiceEndpointsArgs(
                    vpc_id=vpc_cfg.vpc_id,
                    subnet_ids=vpc_cfg.subnet_ids,
                    route_table_ids=vpc_cfg.route_table_ids,
                    client_security_group_ids=vpc_cfg.security_group_ids,
                    services=services_used(
                        database=secret_arn is not None and any(s.needs.database for s in in_vpc),
                        summary_topic=cfg.summary_topic_arn is not None
                        and any(s.needs.summary_topic for s in in_vpc),
                    ),
                    region=region,
                    name_prefix=cfg.resource_prefix,
                ),
                opts=self.child_opts,
            )
        network_ready: tuple[pulumi.Resource, ...] = (
            (self.service_endpoints,) if self.service_endpoints is not None else ()
        )

        # The stage that needs the database refuses one below the shipped revision: migrate it, through that
        # stage's function (it runs where the database is reachable), before its events flow.
        self.migration = None
        migrating = [stage.name for stage in descriptions.values() if stage.needs.database]
        if len(migrating) > 1:
            raise ValueError(
                f"one stage may run the schema migration; {', '.join(migrating)} need the database"
            )
        if secret_arn is not None and migrating:
            function = self.stages[migrating[0]].function
            self.migration = SchemaMigration(
                "schema-migration",
                SchemaMigrationArgs(
                    function_name=function.name,
                    revisions_digest=args.revisions_digest,
                    database=_database_identity(secret_arn, self.database_secret, self.managed_database),
                    app_user=self.managed_database.app_user if self.managed_database is not None else None,
                    depends_on=(
                        *(
                            r
                            for r in (function, self.database_secret, self.managed_database)
                            if r is not None
                        ),
                        *(network_ready if descriptions[migrating[0]].needs.vpc else ()),
                    ),
                ),
                opts=_moved_from_root(self),
            )

        self.triggers = {}
        for role, targets in graph.triggers_by_bucket().items():
            feeds_the_database = any(descriptions[stage].needs.database for stage, _ in targets)
            feeds_the_vpc = any(descriptions[stage].needs.vpc for stage, _ in targets)
            self.triggers[role] = BucketTriggers(
                f"{role}-triggers",
                BucketTriggersArgs(
                    bucket=self.buckets[role].bucket,
                    triggers=tuple(
                        Trigger(
                            function=self.stages[stage].function,
                            permission=self.stages[stage].permission,
                            prefix=location.prefix,
                            suffix=location.suffix,
                        )
                        for stage, location in targets
                    ),
                    # The first events must find their failure destination and retry settings in place.
                    wait_for=(
                        *(self.stages[stage].event_invoke_config for stage, _ in targets),
                        *((self.migration,) if self.migration is not None and feeds_the_database else ()),
                        *(network_ready if feeds_the_vpc else ()),
                    ),
                ),
                opts=_moved_from_root(self),
            )

        self.observability = Observability(
            "observability",
            ObservabilityArgs(
                name_prefix=cfg.resource_prefix,
                stages=tuple(
                    MonitoredStage(
                        name, s.function.name, s.failure_queue.name, cfg.stages[name].reserved_concurrency
                    )
                    for name, s in self.stages.items()
                ),
                account_id=account_id,
                region=region,
                alarm_email=_kept_secret(cfg, "alarmEmail", cfg.alarm_email),
                partition=partition,
            ),
            opts=_moved_from_root(self),
        )

        # The stack outputs README, docs/configuration.md and devtools read.
        self.bucket_outputs = {role: {"name": b.name, "arn": b.arn} for role, b in self.buckets.items()}
        self.stage_outputs = {
            name: {
                "functionName": s.function.name,
                "functionArn": s.function.arn,
                "failureQueueUrl": s.failure_queue.url,
                "failureQueueName": s.failure_queue.name,
                "failureQueueArn": s.failure_queue.arn,
                "logGroupName": s.log_group.name,
            }
            for name, s in self.stages.items()
        }
        self.layer_arn = self.layer.arn
        self.alarm_topic_arn = self.observability.topic_arn
        self.dashboard_name = self.observability.dashboard_name
        self.database_secret_arn = (
            self.database_secret.arn
            if self.database_secret is not None
            else self.managed_database.secret_arn
            if self.managed_database is not None
            else None
        )
        self.register_outputs(
            {
                "buckets": self.bucket_outputs,
                "stages": self.stage_outputs,
                "layerArn": self.layer_arn,
                "alarmTopicArn": self.alarm_topic_arn,
                "dashboardName": self.dashboard_name,
                **(
                    {"databaseSecretArn": self.database_secret_arn}
                    if self.database_secret_arn is not None
                    else {}
                ),
            }
        )


def _adopted_bucket_args(cfg: PipelineConfig, role: str) -> DataBucketArgs:
    """An existing bucket taken over by import (`adoptBuckets.<role>`): its own name, never emptied or
    deleted by the stack; the stack's versioning and encryption still apply (docs/configuration.md)."""
    adopted = cfg.adopted_buckets[role]
    return DataBucketArgs(
        bucket_name=adopted.name,
        force_destroy=False,
        retain_on_delete=True,
        versioning=cfg.versioning[role],
        noncurrent_version_expiration_days=cfg.noncurrent_version_expiration_days,
        kms_key_arn=cfg.kms_key_arn,
        adopted=True,
        imported_settings=adopted.imported_settings,
    )
