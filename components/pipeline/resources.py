"""`DataPipeline`, the ComponentResource, and its args: the stages, the notifications, the migration and the
alarms, declared around the buckets (`storage`), the network (`vpc`) and the database (`database`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_random

from components import chain, stage_table
from components.bucket import BucketTriggers, BucketTriggersArgs, DataBucket, Trigger
from components.component import Component, Opts
from components.config import PipelineConfig
from components.database import DatabaseSecret, ManagedDatabase
from components.environment import secret_variables, stage_environment
from components.iam import StageGrants
from components.layer import SharedLayer, SharedLayerArgs
from components.migration import SchemaMigration, SchemaMigrationArgs
from components.network import PrivateNetwork, ServiceEndpoints
from components.observability import MonitoredStage, Observability, ObservabilityArgs
from components.pipeline.database import (
    database_identity,
    database_secret_arn,
    declare_database_secret,
    declare_managed_database,
)
from components.pipeline.options import kept_secret, moved_from_root, secret_environment
from components.pipeline.storage import declare_buckets
from components.pipeline.vpc import creates_endpoints, declare_network, declare_service_endpoints, looked_up
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

        self.bucket_suffix, self.buckets = declare_buckets(self, cfg)
        self.layer = SharedLayer(
            "shared-layer",
            SharedLayerArgs(
                layer_name=f"{cfg.resource_prefix}-shared",
                archive=args.layer_archive,
                runtime=cfg.runtime,
                architecture=cfg.architecture,
            ),
            opts=moved_from_root(self),
        )

        self.database_secret = declare_database_secret(self, cfg)
        self.network, vpc_cfg = declare_network(self, cfg)
        in_vpc = [stage for stage in descriptions.values() if stage.needs.vpc]
        endpoints = creates_endpoints(vpc_cfg, in_vpc)
        creates_database = cfg.database is not None and cfg.database.create is not None
        vpc_cfg = looked_up(vpc_cfg, endpoints=endpoints, database=creates_database)
        self.managed_database = declare_managed_database(self, cfg, vpc_cfg)
        database_endpoint = self.managed_database.endpoint if self.managed_database is not None else None
        secret_arn = database_secret_arn(cfg, self.database_secret, self.managed_database)

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
            summary_topic_arn=kept_secret(cfg, "summaryTopicArn", cfg.summary_topic_arn),
            vpc=vpc_cfg,
            region=region,
            database_kms_key_arn=kept_secret(
                cfg, "database", cfg.database.kms_key_arn if cfg.database is not None else None
            ),
            summary_topic_kms_key_arn=kept_secret(
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
                    environment=secret_environment(
                        stage_environment(
                            stage, cfg, self.buckets[stage.destination].name, secret_arn, database_endpoint
                        ),
                        secret_variables(stage, cfg),
                    ),
                    grants=grants,
                    account_id=account_id,
                    provided=provided,
                ),
                opts=moved_from_root(self),
            )
            for stage in descriptions.values()
        }

        # A stage in private subnets reaches S3, Secrets Manager and SNS only through endpoints or a NAT
        # (`vpc.serviceAccess`); with `endpoints` the stack creates them for the services those stages use,
        # and nothing invokes such a stage (its migration, its bucket's notification) before they exist.
        self.service_endpoints = (
            declare_service_endpoints(self, cfg, vpc_cfg, in_vpc, secret_arn is not None, region)
            if vpc_cfg is not None and endpoints
            else None
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
                    database=database_identity(secret_arn, self.database_secret, self.managed_database),
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
                opts=moved_from_root(self),
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
                opts=moved_from_root(self),
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
                alarm_email=kept_secret(cfg, "alarmEmail", cfg.alarm_email),
                partition=partition,
            ),
            opts=moved_from_root(self),
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
