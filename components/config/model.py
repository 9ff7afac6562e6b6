"""The typed settings `parse_config` returns: frozen dataclasses, one per part of the stack config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.config.schema import DEFAULT_IMPORTED_SETTINGS, SERVICE_ACCESS_NAT
from handlers import contract
from handlers.contract import DEFAULT_OVERWRITE_MODE


@dataclass(frozen=True)
class StageSettings:
    """Size and limits of one Lambda stage."""

    memory_mb: int
    """Lambda memory, 128-10240 MB (default: the stage table's, `components.stage_table`)."""

    timeout_seconds: int
    """Lambda timeout, 1-900 s (default: the stage table's)."""

    reserved_concurrency: int | None = None
    """Reserved concurrent executions; None: unreserved (the account pool)."""

    log_retention_days: int = 30
    """CloudWatch retention of the stage's log group, in days."""

    ephemeral_storage_mb: int = 512
    """The function's /tmp, 512-10240 MB: outputs larger than the spool's memory spill there
    (handlers/s3io.py)."""


@dataclass(frozen=True)
class Aggregation:
    """How the processing stage rolls records up."""

    window: str = contract.DEFAULT_WINDOW
    """The time window records are rolled up in; one of AGGREGATION_WINDOWS."""

    dimensions: tuple[str, ...] = contract.DEFAULT_DIMENSIONS
    """Record fields to group by."""

    metrics: tuple[str, ...] = contract.DEFAULT_METRICS
    """Numeric record fields to sum."""


@dataclass(frozen=True)
class ManagedDatabaseSettings:
    """`database.create`: an RDS for PostgreSQL instance the stack owns (`ManagedDatabase`)."""

    instance_class: str = "db.t4g.micro"
    """The instance class."""

    allocated_storage_gb: int = 20
    """gp3 storage, 20-65536 GiB."""

    multi_az: bool = False
    """A standby in a second availability zone."""

    name: str = "pipeline"
    """The database created in the instance."""

    apply_immediately: bool = False
    """Apply this `pulumi up`'s changes to an existing instance now, not in its next maintenance window
    (RDS's ApplyImmediately; every pending modification goes with it, some of which restart the instance)."""


@dataclass(frozen=True)
class Database:
    """Where the analytics stage loads rollups; exactly one of secret_arn, url and create is set."""

    secret_arn: str | None = None
    """The full ARN of an existing Secrets Manager secret."""

    url: str | None = field(default=None, repr=False)
    """The SQLAlchemy URL, a secret config value; the stack creates the secret."""

    kms_key_arn: str | None = None
    """The customer managed key an existing secret is encrypted with, when it is not `kmsKeyArn`: the
    stage that reads the secret is granted kms:Decrypt on it, through Secrets Manager only."""

    create: ManagedDatabaseSettings | None = None
    """`database.create`: the stack owns the database; its master password is the secret RDS manages."""


@dataclass(frozen=True)
class Vpc:
    """Network placement of the analytics function (to reach a private database), and how it reaches AWS."""

    subnet_ids: tuple[str, ...]
    """Private subnets, ideally in several availability zones."""

    security_group_ids: tuple[str, ...]
    """Security groups allowed to reach the database."""

    service_access: str = SERVICE_ACCESS_NAT
    """`vpc.serviceAccess`, one of SERVICE_ACCESS_MODES (parse_config requires it to be stated)."""

    vpc_id: str | None = None
    """The VPC of the subnets, where endpoints (`endpoints`) and a `database.create` security group go; None:
    the program looks it up from the first subnet."""

    route_table_ids: tuple[str, ...] = ()
    """The subnets' route tables, which the S3 gateway endpoint is added to (`endpoints`); empty: the program
    looks them up (each subnet's explicit table, else the VPC's main table)."""

    create: VpcCreate | None = None
    """`vpc.create`: the stack builds the VPC (`components.network.PrivateNetwork`); the IDs above are then
    empty here, and the program fills them in with the created resources'."""


@dataclass(frozen=True)
class VpcCreate:
    """`vpc.create`: a minimal VPC for the analytics function and its database: two private subnets in two
    availability zones, no NAT and no internet gateway (AWS's services through the endpoints)."""

    availability_zones: tuple[str, str]
    """The two zones of the subnets (`vpc.create.availabilityZones`)."""

    cidr: str = "10.42.0.0/16"
    """The VPC's IPv4 range (`vpc.create.cidr`); the subnets are its first two quarters."""

    def subnet_cidrs(self) -> tuple[str, str]:
        import ipaddress

        first, second, *_ = ipaddress.ip_network(self.cidr).subnets(prefixlen_diff=2)
        return str(first), str(second)


@dataclass(frozen=True)
class LayerSettings:
    """Where the shared layer zip comes from."""

    archive: Path | None = None
    """A prebuilt layer zip; None: build it with `layer.build`."""

    include_boto3: bool = False
    """Bundle boto3 instead of using the runtime's."""


@dataclass(frozen=True)
class PipelineConfig:
    """The validated configuration of one stack."""

    project: str
    """Pulumi project name."""

    stack: str
    """Pulumi stack name."""

    bucket_base_names: Mapping[str, str]
    """Raw/processed/analytics -> name without suffix."""

    bucket_suffix: bool
    """Append a stable random 8-hex suffix."""

    force_destroy: bool
    """Let `pulumi destroy` empty the buckets."""

    retain_buckets_on_delete: bool
    """Keep the buckets (and data) when the stack is destroyed."""

    versioning: Mapping[str, bool]
    """Raw/processed/analytics -> versioning on."""

    noncurrent_version_expiration_days: int
    """Lifecycle expiry of noncurrent versions."""

    kms_key_arn: str | None
    """SSE-KMS key; None: SSE-S3."""

    runtime: str
    """Lambda runtime of all functions and the layer."""

    architecture: str
    """Lambda architecture of all functions and the layer."""

    retry_attempts: int
    """Async invoke retries before the failure queue."""

    max_event_age_seconds: int
    """Async event age before the failure queue."""

    stages: Mapping[str, StageSettings]
    """Ingestion/processing/analytics -> settings."""

    input_prefix: str
    """Raw key prefix that triggers ingestion."""

    input_suffixes: tuple[str, ...]
    """Raw key suffixes that trigger ingestion."""

    max_record_bytes: int
    """Longest accepted input line."""

    record_schema: str | None
    """JSON Schema as compact JSON text; None: the shipped schema."""

    aggregation: Aggregation
    """Processing settings."""

    database: Database | None
    """Analytics database; None: no database."""

    summary_topic_arn: str | None
    """SNS topic for report summaries."""

    vpc: Vpc | None
    """Analytics VPC placement."""

    layer: LayerSettings
    """Shared layer source."""

    alarm_email: str | None
    """Alarm subscription address."""

    overwrites: str = DEFAULT_OVERWRITE_MODE
    """What a new version of a raw key does: replace or append."""

    records_part_bytes: int | None = None
    """Uncompressed records/ bytes per part (`recordsPartBytes`, `RECORDS_PART_BYTES`): a larger raw object
    is cut into parts, each one processing invocation (handlers/parts.py). None: the handler's default,
    `DEFAULT_RECORDS_PART_BYTES`, and no variable (the environment's 4 KB stay the schema's)."""

    summary_topic_kms_key_arn: str | None = None
    """The customer managed key of an encrypted summary topic, when it is not `kmsKeyArn`: the stage that
    publishes is granted kms:GenerateDataKey and kms:Decrypt on it, through SNS only."""

    region: str | None = None
    """The stack's region (`aws:region`), when known: every configured ARN must be in it."""

    secret_keys: frozenset[str] = frozenset()
    """The top-level keys set with `--secret` (all in KEPT_SECRET_KEYS): the program wraps their values in
    `pulumi.Output.secret` wherever they reach a resource."""

    def is_secret(self, key: str) -> bool:
        """Whether the top-level key of `key` (dotted) was set with `--secret`."""
        return key.split(".", 1)[0] in self.secret_keys

    adopted_buckets: Mapping[str, AdoptedBucket] = field(default_factory=dict)
    """Role -> an existing bucket the stack adopts (imports) instead of creating one (`adoptBuckets`)."""

    @property
    def resource_prefix(self) -> str:
        """Prefix of explicit physical names (functions, layer): `<project>-<stack>`."""
        return f"{self.project}-{self.stack}".replace(".", "-")

    def function_name(self, stage: str) -> str:
        return f"{self.resource_prefix}-{stage}"


@dataclass(frozen=True)
class AdoptedBucket:
    """An existing bucket the stack takes over (Pulumi `import_`) instead of creating."""

    name: str
    """Its full, existing name (no suffix is appended)."""

    imported_settings: tuple[str, ...] = DEFAULT_IMPORTED_SETTINGS
    """The settings resources imported with it (the others are created over the bucket's)."""
