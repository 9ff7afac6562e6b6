"""The pipeline's stages, each described once: the source of everything the program knows about a stage.

`STAGE_TABLE` holds one `StageDescription` per stage, in chain order: the handler it runs, the bucket that
triggers it and the keys that do, the bucket and keys it writes, what else it needs (a database, the
summary topic, a place in the VPC) and its environment. Everything per stage is derived from it, and from
nothing else:

- the trigger/write graph and its loop check (`components.chain.declared_chain`);
- the function environment (`components.environment.stage_environment`) and its 4 KB check
  (`components.config`);
- the role policy (`components.iam.stage_policy`);
- the resources (`components.pipeline.DataPipeline`, `components.stage.PipelineStage`).

Pure (no Pulumi import): the config validation and the tests read it without the Pulumi runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handlers import contract
from handlers.contract import FULL_VCPU_MEMORY_MB, BucketRole, Env, Stage

if TYPE_CHECKING:
    from components.config import Vpc


@dataclass(frozen=True)
class Keys:
    """A set of object keys: every key starting with `prefix` and ending with `suffix`."""

    prefix: str
    """Key prefix ("" matches every key)."""

    suffix: str = ""
    """Key suffix ("" matches every key)."""


# The keys each stage writes; the next stage is triggered by exactly the keys its producer writes.
RECORDS = Keys(contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)
QUARANTINE = Keys(contract.QUARANTINE_PREFIX, contract.QUARANTINE_SUFFIX)
AGGREGATES = Keys(contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX)
REPORTS = Keys(contract.REPORTS_PREFIX, contract.REPORTS_SUFFIX)
# Where ingestion holds records/ parts until the whole raw object is read; nothing triggers on it.
STAGING = Keys(contract.STAGING_PREFIX)

# How many groups the analytics report lists (REPORT_TOP_GROUPS).
REPORT_TOP_GROUPS = contract.REPORT_TOP_GROUPS


@dataclass(frozen=True)
class ConfiguredInput:
    """The trigger of the first stage: `inputPrefix` followed by each of `inputSuffixes` (stack config)."""


CONFIGURED_INPUT = ConfiguredInput()


@dataclass(frozen=True)
class Setting:
    """An environment value read from the stack config.

    Rendered as Lambda needs a string: a list joined with commas, a number in decimal, text as it is;
    a setting that is unset (None) leaves the variable out.
    """

    key: str
    """The config key without namespace, dotted for a nested one (`aggregation.window`)."""

    def attribute(self) -> str:
        """The `PipelineConfig` attribute path holding the value (`inputPrefix` -> `input_prefix`)."""
        return ".".join(_snake(part) for part in self.key.split("."))


EnvValue = str | Setting


@dataclass(frozen=True)
class Needs:
    """What a stage may use besides its buckets, when the stack provides it.

    Each need reaches only the stages that declare it: the function environment, the role policy and the
    function's network placement follow this, and nothing else decides it.
    """

    database: bool = False
    """The database secret: `DATABASE_SECRET_ARN` and `secretsmanager:GetSecretValue` on that secret only.
    The one stage that needs the database also runs its schema migration (`SchemaMigration`)."""

    summary_topic: bool = False
    """The summary topic (`summaryTopicArn`): `SUMMARY_TOPIC_ARN` and `sns:Publish` on that topic only."""

    vpc: bool = False
    """The configured subnets and security groups (`vpc`): the function's VpcConfig and the
    network-interface statements Lambda needs to place it there."""

    def select(self, provided: Provided) -> Provided:
        """What of `provided` this stage may use."""
        return Provided(
            database_secret_arn=provided.database_secret_arn if self.database else None,
            summary_topic_arn=provided.summary_topic_arn if self.summary_topic else None,
            vpc=provided.vpc if self.vpc else None,
            region=provided.region,
            database_kms_key_arn=provided.database_kms_key_arn if self.database else None,
            summary_topic_kms_key_arn=provided.summary_topic_kms_key_arn if self.summary_topic else None,
        )


@dataclass(frozen=True)
class Provided:
    """What the stack provides that a stage may need (`Needs`): plain strings in tests, Outputs in the
    program."""

    database_secret_arn: Any = None
    """The database secret's full ARN (an existing secret, or the one the stack creates); None: no
    database."""

    summary_topic_arn: str | None = None
    """The summary topic's ARN; None: no topic."""

    vpc: Vpc | None = None
    """The subnets and security groups a stage in the VPC is placed in; None: no VPC."""

    region: Any = None
    """The deployment region: scopes the network-interface statements of a stage in the VPC, and the
    kms:ViaService conditions."""

    database_kms_key_arn: str | None = None
    """The key of an existing database secret, when it is not the stack's `kmsKeyArn`."""

    summary_topic_kms_key_arn: str | None = None
    """The key of an encrypted summary topic, when it is not the stack's `kmsKeyArn`."""


# The environment variables the needs set (docs/architecture.md, "Function environment").
DATABASE_SECRET_VARIABLE = Env.DATABASE_SECRET_ARN
SUMMARY_TOPIC_VARIABLE = Env.SUMMARY_TOPIC_ARN
# host:port/dbname of a database the stack creates (database.create): its secret holds only the credentials.
DATABASE_ENDPOINT_VARIABLE = Env.DATABASE_ENDPOINT


@dataclass(frozen=True)
class SizeHint:
    """What to tell the user when a stage's environment would pass Lambda's 4 KB."""

    key: str
    """The config key the problem is reported under."""

    shorten: str
    """The config keys that make the environment grow, as the message names them."""


@dataclass(frozen=True)
class StageDescription:
    """One stage of the pipeline: everything the program needs to know about it."""

    name: str
    """The stage's name: its `PIPELINE_STAGE`, the EMF `Stage` dimension and part of every physical name."""

    handler: str
    """The entry point inside the function code archive (`module.function`)."""

    source: str
    """The bucket role whose object-created notifications invoke the stage."""

    triggers: tuple[Keys, ...] | ConfiguredInput
    """The keys of `source` that invoke the stage: fixed ones, or the configured input."""

    destination: str
    """The bucket role the stage writes to (`DEST_BUCKET`)."""

    writes: tuple[Keys, ...]
    """The keys of `destination` the stage puts objects at."""

    read_sid: str
    """The Sid of the role-policy statement that reads the triggering objects."""

    write_sid: str
    """The Sid of the role-policy statement that writes the stage's objects."""

    environment: Mapping[str, EnvValue]
    """The stage's own variables (besides `PIPELINE_STAGE`, `DEST_BUCKET`, `METRICS_NAMESPACE` and what its
    needs set): a fixed value, or a `Setting` read from the stack config."""

    size_hint: SizeHint
    """Which config keys to name when the stage's environment would pass Lambda's 4 KB."""

    memory_mb: int
    """The default of `stages.<stage>.memoryMb`: the function's memory, and with it its CPU share."""

    timeout_seconds: int
    """The default of `stages.<stage>.timeoutSeconds`."""

    multipart_writes: bool = False
    """The stage streams its output as multipart uploads, so its role may abort them."""

    staging: Keys | None = None
    """One of `writes` where the stage holds objects before releasing them (a copy to their final key,
    then a delete), so its role may read and delete there too; its bucket expires what a failed
    invocation leaves there. None: the stage writes each object at its final key."""

    reads_back: Keys | None = None
    """One of `writes` the stage reads again, so its role may get objects there too (analytics reads a
    version's report to tell whether it holds the invoking part's current document). None: it never
    reads what it wrote."""

    needs: Needs = field(default_factory=Needs)
    """What else the stage may use when the stack provides it."""

    def trigger_keys(self, input_prefix: str, input_suffixes: tuple[str, ...]) -> tuple[Keys, ...]:
        """The keys that invoke the stage, given the configured input."""
        if isinstance(self.triggers, ConfiguredInput):
            return tuple(Keys(input_prefix, suffix) for suffix in input_suffixes)
        return self.triggers


STAGE_TABLE: tuple[StageDescription, ...] = (
    StageDescription(
        name=Stage.INGESTION,
        handler="handlers.ingestion_handler.handler",
        source=BucketRole.RAW,
        triggers=CONFIGURED_INPUT,
        destination=BucketRole.PROCESSED,
        writes=(RECORDS, QUARANTINE, STAGING),
        read_sid="ReadRawInput",
        write_sid="WriteProcessedRecords",
        # Only ingestion streams its output; the other stages write each object in one PUT.
        multipart_writes=True,
        # records/ parts k >= 1 wait here until the whole raw object is read (docs/architecture.md, "Parts").
        staging=STAGING,
        environment={
            Env.RECORDS_PREFIX: RECORDS.prefix,
            Env.QUARANTINE_PREFIX: QUARANTINE.prefix,
            Env.INPUT_PREFIX: Setting("inputPrefix"),
            Env.INPUT_SUFFIXES: Setting("inputSuffixes"),
            Env.MAX_RECORD_BYTES: Setting("maxRecordBytes"),
            Env.RECORDS_PART_BYTES: Setting("recordsPartBytes"),
            Env.RECORD_SCHEMA: Setting("recordSchema"),
        },
        size_hint=SizeHint(
            "recordSchema", "recordSchema (RECORD_SCHEMA holds it), inputPrefix or inputSuffixes"
        ),
        # One whole vCPU (more buys nothing: the handler uses one core) costs the same per GB as less, and
        # gets a 1 GB object through in a fraction of the timeout (docs/capacity.md).
        memory_mb=FULL_VCPU_MEMORY_MB,
        timeout_seconds=300,
    ),
    StageDescription(
        name=Stage.PROCESSING,
        handler="handlers.processing_handler.handler",
        source=BucketRole.PROCESSED,
        triggers=(RECORDS,),
        destination=BucketRole.ANALYTICS,
        writes=(AGGREGATES,),
        read_sid="ReadProcessedRecords",
        write_sid="WriteAnalyticsAggregates",
        environment={
            Env.AGGREGATES_PREFIX: AGGREGATES.prefix,
            Env.AGGREGATION_WINDOW: Setting("aggregation.window"),
            Env.AGGREGATION_DIMENSIONS: Setting("aggregation.dimensions"),
            Env.AGGREGATION_METRICS: Setting("aggregation.metrics"),
        },
        size_hint=SizeHint("aggregation", "aggregation.dimensions or aggregation.metrics"),
        memory_mb=FULL_VCPU_MEMORY_MB,
        timeout_seconds=300,
    ),
    StageDescription(
        name=Stage.ANALYTICS,
        handler="handlers.analytics_handler.handler",
        source=BucketRole.ANALYTICS,
        triggers=(AGGREGATES,),
        destination=BucketRole.ANALYTICS,
        writes=(REPORTS,),
        read_sid="ReadAnalyticsAggregates",
        write_sid="WriteAnalyticsReports",
        reads_back=REPORTS,
        environment={
            Env.REPORTS_PREFIX: REPORTS.prefix,
            Env.REPORT_TOP_GROUPS: str(REPORT_TOP_GROUPS),
            Env.OVERWRITE_MODE: Setting("overwrites"),
        },
        size_hint=SizeHint("database", "database.secretArn or summaryTopicArn"),
        # Its input is one document per records/ part, sized by groups, but the invocation that completes
        # a raw version reads every part's document again for the version's report: 80 parts (a 5 GB
        # object) take about 30 CPU s, which at 1024 MB (0.58 vCPU) and 300 s leave the deadline guard's
        # planning rate room, and memory several times the merged groups' (docs/capacity.md).
        memory_mb=1024,
        timeout_seconds=300,
        needs=Needs(database=True, summary_topic=True, vpc=True),
    ),
)


def stage_names() -> tuple[str, ...]:
    """The stages' names, in chain order."""
    return tuple(stage.name for stage in STAGE_TABLE)


def staging_prefixes(bucket: str) -> tuple[str, ...]:
    """The staging prefixes of the stages that write to the bucket with role `bucket`."""
    return tuple(
        stage.staging.prefix
        for stage in STAGE_TABLE
        if stage.staging is not None and stage.destination == bucket
    )


def describe(name: str) -> StageDescription:
    """The description of the stage called `name`; KeyError if there is none."""
    for stage in STAGE_TABLE:
        if stage.name == name:
            return stage
    raise KeyError(name)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
