"""Typed, validated stack configuration (namespace ``data-pipeline:``).

`parse_config` is pure: it takes the raw values of the namespace (strings as Pulumi hands them over, or
already-parsed JSON values) and returns a frozen `PipelineConfig`, or raises `ConfigError` listing every
problem at once, each with its full key and what is allowed. This module is the single source of truth
for defaults and limits; docs/configuration.md documents the same table.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.stage_table import STAGE_TABLE, stage_names
from handlers import contract
from handlers.contract import DEFAULT_OVERWRITE_MODE, OVERWRITE_MODES, RECORDS_LINE_LIMIT

NAMESPACE = "data-pipeline"
STAGES = stage_names()
BUCKET_ROLES = tuple(str(role) for role in contract.BUCKET_ROLES)
BUCKET_NAME_MAX = 63

RUNTIMES = ("python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")
# The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
AGGREGATION_WINDOWS = tuple(contract.WINDOWS)

# bucketSuffix appends "-" + 8 hex characters (random.RandomId, 4 bytes).
SUFFIX_HEX_CHARS = 8
SUFFIX_PLACEHOLDER = "-" + "0" * SUFFIX_HEX_CHARS
FUNCTION_NAME_MAX = 64
# Lambda rejects a function whose environment variables exceed 4 KB in total (keys and values).
LAMBDA_ENV_MAX_BYTES = 4096
# The largest maxRecordBytes whose records/ lines the processing stage can always read: ingestion may
# write a record longer than its input (handlers/contract.py, handlers.ingestion_core.output_bound).
MAX_RECORD_BYTES_LIMIT = contract.MAX_RECORD_BYTES_LIMIT

_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
_ARN_PARTITION = r"arn:aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
_KMS_KEY_ARN = re.compile(
    rf"^{_ARN_PARTITION}:kms:{_REGION}:\d{{12}}:key/(?:mrk-[0-9a-f]{{32}}|[0-9a-f]{{8}}(?:-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}})$"
)
# The full ARN, with the six characters Secrets Manager appends to the name: IAM matches a policy's
# Resource against the full ARN, so a grant naming a partial ARN would never apply.
_SECRET_ARN = re.compile(
    rf"^{_ARN_PARTITION}:secretsmanager:{_REGION}:\d{{12}}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{{6}}$"
)
_TOPIC_ARN = re.compile(rf"^{_ARN_PARTITION}:sns:{_REGION}:\d{{12}}:[A-Za-z0-9_-]{{1,256}}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
_ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A field name: the analytics database keeps metric names in a 256-character column.
_NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
_DB_URL = re.compile(r"^[a-z][a-z0-9+]*://\S+$")
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class StageSettings:
    """Size and limits of one Lambda stage."""

    memory_mb: int = 512
    """Lambda memory, 128-10240 MB."""

    timeout_seconds: int = 120
    """Lambda timeout, 1-900 s."""

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


# RDS for PostgreSQL, current major version (database.create).
POSTGRES_MAJOR_VERSION = "17"
_DB_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_DATABASE_CREATE_KEYS = ("instanceClass", "allocatedStorageGb", "multiAz", "name")


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


# How a function in the VPC reaches S3, Secrets Manager and SNS (`vpc.serviceAccess`).
SERVICE_ACCESS_ENDPOINTS = "endpoints"  # the stack creates the endpoints (components/network.py)
SERVICE_ACCESS_NAT = "nat"  # the subnets route 0.0.0.0/0 to a NAT gateway the user owns
SERVICE_ACCESS_EXISTING = "existingEndpoints"  # the VPC already has the endpoints, with private DNS
SERVICE_ACCESS_MODES = (SERVICE_ACCESS_ENDPOINTS, SERVICE_ACCESS_NAT, SERVICE_ACCESS_EXISTING)


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
    """The VPC of the subnets: required to create endpoints (`endpoints`)."""

    route_table_ids: tuple[str, ...] = ()
    """The subnets' route tables, which the S3 gateway endpoint is added to (`endpoints`)."""

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
class Problem:
    """One invalid key and what is allowed."""

    key: str
    """The full key, e.g. data-pipeline:stages.ingestion.memoryMb."""

    message: str
    """What is wrong and what is allowed."""


class ConfigError(ValueError):
    """The stack configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p.key}: {p.message}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"invalid stack configuration ({count} problem{'s' * (count != 1)}):\n{lines}")


# --- schema -----------------------------------------------------------------------------------------

_TOP_LEVEL_KEYS = (
    "buckets",
    "bucketSuffix",
    "forceDestroy",
    "retainBucketsOnDelete",
    "versioning",
    "noncurrentVersionExpirationDays",
    "kmsKeyArn",
    "runtime",
    "architecture",
    "logRetentionDays",
    "retryAttempts",
    "maxEventAgeSeconds",
    "stages",
    "inputPrefix",
    "inputSuffixes",
    "maxRecordBytes",
    "recordSchema",
    "aggregation",
    "database",
    "summaryTopicArn",
    "summaryTopicKmsKeyArn",
    "vpc",
    "layer",
    "alarmEmail",
    "overwrites",
    "adoptBuckets",
)
_STAGE_KEYS = ("memoryMb", "timeoutSeconds", "reservedConcurrency", "logRetentionDays", "ephemeralStorageMb")
_NESTED_KEYS: dict[str, tuple[str, ...]] = {
    "buckets": BUCKET_ROLES,
    "adoptBuckets": BUCKET_ROLES,
    "versioning": BUCKET_ROLES,
    "stages": STAGES,
    "aggregation": ("window", "dimensions", "metrics"),
    "database": ("secretArn", "url", "kmsKeyArn", "create"),
    "vpc": ("subnetIds", "securityGroupIds", "serviceAccess", "vpcId", "routeTableIds", "create"),
    "layer": ("archive", "includeBoto3"),
}
KNOWN_KEYS = _TOP_LEVEL_KEYS

# The keys a stack may set with `--secret`: their values reach only the function environment, the role
# policy, the migration's triggers and the alarm subscription, where the program keeps them secret
# (`PipelineConfig.secret_keys`). Every other key becomes a name, ID or filter that AWS shows to anyone who
# can read the resource (and Pulumi in its URNs and outputs), so `--secret` on it would be a false promise:
# refused, with the reason (`_NOT_SECRET_REASONS`).
KEPT_SECRET_KEYS = (
    "database",
    "summaryTopicArn",
    "summaryTopicKmsKeyArn",
    "alarmEmail",
    "recordSchema",
    "aggregation",
    "maxRecordBytes",
    "overwrites",
)
_NOT_SECRET_REASONS = {
    "buckets": "bucket names are public: they are in every ARN, stack output and S3 event",
    "kmsKeyArn": "the key ARN is part of every bucket's encryption settings and every queue's attributes",
    "vpc": "the subnet, security group, VPC and route table IDs are part of the function's VpcConfig and "
    "the endpoints",
    "inputPrefix": "it is the raw bucket's notification filter and part of the role policy's ARNs",
    "inputSuffixes": "they are the raw bucket's notification filters and part of the role policy's ARNs",
    "layer": "it is a path on the machine that runs Pulumi, read to publish the layer",
}


class _Collector:
    """Reads typed values out of the raw mapping, recording problems instead of stopping at the first."""

    def __init__(self, secret_keys: frozenset[str] = frozenset()) -> None:
        self.problems: list[Problem] = []
        self.secret_keys = secret_keys  # top-level keys Pulumi holds encrypted: never echoed

    def show(self, key: str, value: Any) -> str:
        """``value`` for an error message, unless it belongs to a secret key (a URL with a password)."""
        if key.split(".", 1)[0] in self.secret_keys:
            return f"a secret {type(value).__name__}"
        return _show(value)

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(f"{NAMESPACE}:{key}", message))

    def unknown(self, key_path: str, name: str, known: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        self.fail(key_path, f"unknown key; {hint}known keys: {', '.join(known)}")

    def check_keys(self, path: str, value: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for name in value:
            if name not in known:
                self.unknown(f"{path}.{name}", name, known)

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.fail(key, f"{self.show(key, value)} is not a boolean; allowed: true, false")
        return default

    def integer(self, key: str, value: Any, default: int, low: int, high: int | None) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{self.show(key, value)} is not an integer; allowed: {_range(low, high)}")
            return default
        if value < low or (high is not None and value > high):
            self.fail(key, f"{self.show(key, value)} is out of range; allowed: {_range(low, high)}")
            return default
        return value

    def choice(self, key: str, value: Any, default: Any, allowed: tuple[Any, ...]) -> Any:
        if value is None:
            return default
        if value not in allowed or isinstance(value, bool):
            shown = ", ".join(str(a) for a in allowed)
            self.fail(key, f"{self.show(key, value)} is not allowed; allowed: {shown}")
            return default
        return value

    def string(self, key: str, value: Any, pattern: re.Pattern[str] | None, what: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            self.fail(key, f"{self.show(key, value)} is not {what}")
            return None
        return value

    def mapping(self, key: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(
                key, f"{self.show(key, value)} is not an object; allowed keys: {', '.join(_NESTED_KEYS[key])}"
            )
            return {}
        self.check_keys(key, value, _NESTED_KEYS[key])
        return value

    def string_list(
        self, key: str, value: Any, check: Callable[[str], bool], what: str, *, allow_empty: bool = False
    ) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"{self.show(key, value)} is not a list of strings")
            return None
        if not value and not allow_empty:
            self.fail(key, "must not be empty")
            return None
        bad = [v for v in value if not check(v)]
        if bad:
            self.fail(key, f"{', '.join(self.show(key, b) for b in bad)}: each must be {what}")
            return None
        if len(set(value)) != len(value):
            self.fail(key, "contains duplicates")
            return None
        return tuple(value)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _range(low: int, high: int | None) -> str:
    return f"{low}-{high}" if high is not None else f">= {low}"


def _coerce(raw: Any) -> Any:
    """Pulumi hands config values over as strings; structured values and scalars arrive JSON-encoded."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def bucket_name_problems(name: str) -> list[str]:
    """S3 general purpose bucket naming rules, checked on the full name (suffix included)."""
    problems = []
    if not 3 <= len(name) <= BUCKET_NAME_MAX:
        problems.append(f"is {len(name)} characters long; allowed: 3-{BUCKET_NAME_MAX}")
    if not _BUCKET_CHARS.match(name):
        problems.append("may contain only lowercase letters, digits, hyphens and dots")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("must begin and end with a lowercase letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        problems.append("must not contain '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(name)
        problems.append("must not be formatted as an IP address")
    except ValueError:
        pass
    for prefix in _BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            problems.append(f"must not start with the reserved prefix '{prefix}'")
    for suffix in _BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            problems.append(f"must not end with the reserved suffix '{suffix}'")
    return problems


def overlapping_suffixes(suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Pairs (a, b) where a ends with b: S3 refuses such notification filters at deploy time."""
    return [(a, b) for a in suffixes for b in suffixes if a != b and a.endswith(b)]


def parse_config(
    raw: Mapping[str, Any],
    *,
    project: str,
    stack: str,
    secret_keys: frozenset[str] = frozenset(),
    project_dir: Path | None = None,
    region: str | None = None,
) -> PipelineConfig:
    """Validate the raw `data-pipeline:` values (keys without the namespace) into a `PipelineConfig`.

    `secret_keys` names the keys Pulumi holds encrypted (without namespace); `project_dir` resolves a
    relative `layer.archive`; `region` (`aws:region`), when given, must be the region of every configured
    KMS key, secret and topic. Raises `ConfigError` with every problem found.
    """
    c = _Collector(secret_keys)
    values = {k: _coerce(v) for k, v in raw.items()}
    for name in values:
        if name not in _TOP_LEVEL_KEYS:
            c.unknown(name, name, _TOP_LEVEL_KEYS)
        elif name in secret_keys and name not in KEPT_SECRET_KEYS:
            reason = _NOT_SECRET_REASONS.get(name, "it is a setting of the stack, not a secret")
            c.fail(
                name,
                f"is set with --secret, but the stack cannot keep it secret: {reason}; set it in plain text "
                f"(`pulumi config set [--path] {name} ...` without --secret). Keys kept secret: "
                f"{', '.join(KEPT_SECRET_KEYS)}",
            )

    force_destroy = c.boolean("forceDestroy", values.get("forceDestroy"), False)
    retain = c.boolean("retainBucketsOnDelete", values.get("retainBucketsOnDelete"), not force_destroy)
    bucket_suffix = c.boolean("bucketSuffix", values.get("bucketSuffix"), True)

    buckets_raw = c.mapping("buckets", values.get("buckets"))
    base_names: dict[str, str] = {}
    for role in BUCKET_ROLES:
        key = f"buckets.{role}"
        name = buckets_raw.get(role, f"{project}-{stack}-{role}")
        if not isinstance(name, str):
            c.fail(key, f"{c.show(key, name)} is not a string")
            continue
        full = name + (SUFFIX_PLACEHOLDER if bucket_suffix else "")
        shown = f"bucket name {c.show(key, name)}" + (
            f" (with the {SUFFIX_HEX_CHARS}-hex suffix)" if bucket_suffix else ""
        )
        for problem in bucket_name_problems(full):
            origin = (
                "" if role in buckets_raw else f" (default from project and stack; set {NAMESPACE}:{key})"
            )
            c.fail(key, f"{shown} {problem}{origin}")
        base_names[role] = name
    if len(set(base_names.values())) != len(base_names):
        c.fail("buckets", "the raw, processed and analytics buckets need three different names")

    versioning_raw = c.mapping("versioning", values.get("versioning"))
    versioning = {
        role: c.boolean(f"versioning.{role}", versioning_raw.get(role), role == "raw")
        for role in BUCKET_ROLES
    }
    noncurrent_days = c.integer(
        "noncurrentVersionExpirationDays", values.get("noncurrentVersionExpirationDays"), 30, 1, 3650
    )
    kms_key_arn = c.string(
        "kmsKeyArn",
        values.get("kmsKeyArn"),
        _KMS_KEY_ARN,
        "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
    )

    runtime = c.choice("runtime", values.get("runtime"), "python3.13", RUNTIMES)
    architecture = c.choice("architecture", values.get("architecture"), "x86_64", ARCHITECTURES)
    log_retention = c.choice("logRetentionDays", values.get("logRetentionDays"), 30, LOG_RETENTION_DAYS)
    retry_attempts = c.integer("retryAttempts", values.get("retryAttempts"), 2, 0, 2)
    max_event_age = c.integer("maxEventAgeSeconds", values.get("maxEventAgeSeconds"), 21600, 60, 21600)

    stages_raw = c.mapping("stages", values.get("stages"))
    stages: dict[str, StageSettings] = {}
    for stage in STAGES:
        key = f"stages.{stage}"
        one = stages_raw.get(stage) or {}
        if not isinstance(one, Mapping):
            c.fail(key, f"{c.show(key, one)} is not an object; allowed keys: {', '.join(_STAGE_KEYS)}")
            one = {}
        c.check_keys(key, one, _STAGE_KEYS)
        reserved = one.get("reservedConcurrency")
        stages[stage] = StageSettings(
            memory_mb=c.integer(f"{key}.memoryMb", one.get("memoryMb"), 512, 128, 10240),
            timeout_seconds=c.integer(f"{key}.timeoutSeconds", one.get("timeoutSeconds"), 120, 1, 900),
            reserved_concurrency=None
            if reserved is None
            else c.integer(f"{key}.reservedConcurrency", reserved, 0, 0, None),
            log_retention_days=c.choice(
                f"{key}.logRetentionDays", one.get("logRetentionDays"), log_retention, LOG_RETENTION_DAYS
            ),
            ephemeral_storage_mb=c.integer(
                f"{key}.ephemeralStorageMb", one.get("ephemeralStorageMb"), 512, 512, 10240
            ),
        )

    input_prefix = values.get("inputPrefix", contract.INPUT_PREFIX)
    if not isinstance(input_prefix, str) or not re.match(r"^[A-Za-z0-9!_.'()/-]{1,512}/$", input_prefix):
        # No '*': S3 filters take it literally, but in the IAM read grant built from the prefix it is a
        # wildcard that would widen what the ingestion function may read.
        c.fail(
            "inputPrefix",
            f"{c.show('inputPrefix', input_prefix)} is not a key prefix of letters, digits and !_.'()/-"
            " ending in '/' (e.g. 'incoming/')",
        )
        input_prefix = contract.INPUT_PREFIX
    elif input_prefix.startswith("/") or "//" in input_prefix:
        c.fail(
            "inputPrefix", f"{c.show('inputPrefix', input_prefix)} must not start with '/' or contain '//'"
        )

    suffixes = c.string_list(
        "inputSuffixes",
        values.get("inputSuffixes"),
        lambda s: bool(re.match(r"^\.[A-Za-z0-9._-]{1,63}$", s)),
        "a key suffix starting with '.', such as '.json'",
    )
    if suffixes is None:
        suffixes = contract.INPUT_SUFFIXES
    else:
        for longer, shorter in overlapping_suffixes(suffixes):
            c.fail(
                "inputSuffixes",
                f"{c.show('inputSuffixes', longer)} ends with {c.show('inputSuffixes', shorter)}: S3 refuses "
                "overlapping suffix filters; keep only one",
            )

    raw_max_record_bytes = values.get("maxRecordBytes")
    if type(raw_max_record_bytes) is int and raw_max_record_bytes > MAX_RECORD_BYTES_LIMIT:
        c.fail(
            "maxRecordBytes",
            f"{c.show('maxRecordBytes', raw_max_record_bytes)} is out of range; allowed: "
            f"{_range(1, MAX_RECORD_BYTES_LIMIT)} (ingestion may write a record as 9/5 of its size plus 28 "
            f"bytes, and the processing stage reads records/ lines of at most {RECORDS_LINE_LIMIT} bytes)",
        )
        max_record_bytes = contract.DEFAULT_MAX_RECORD_BYTES
    else:
        max_record_bytes = c.integer(
            "maxRecordBytes",
            raw_max_record_bytes,
            contract.DEFAULT_MAX_RECORD_BYTES,
            1,
            MAX_RECORD_BYTES_LIMIT,
        )

    schema = values.get("recordSchema")
    record_schema = None
    if schema is not None:
        if not isinstance(schema, Mapping) or not schema:
            c.fail("recordSchema", 'is not a JSON Schema object (e.g. {"type": "object", ...})')
        else:
            record_schema = json.dumps(schema, separators=(",", ":"), sort_keys=True)

    agg_raw = c.mapping("aggregation", values.get("aggregation"))
    field_name = "a field name (letters, digits, underscores; at most 256 characters)"
    dimensions = c.string_list(
        "aggregation.dimensions", agg_raw.get("dimensions"), _NAME_TOKEN.match, field_name, allow_empty=True
    )
    metrics = c.string_list("aggregation.metrics", agg_raw.get("metrics"), _NAME_TOKEN.match, field_name)
    aggregation = Aggregation(
        window=c.choice(
            "aggregation.window", agg_raw.get("window"), contract.DEFAULT_WINDOW, AGGREGATION_WINDOWS
        ),
        dimensions=dimensions if dimensions is not None else Aggregation.dimensions,
        metrics=metrics if metrics is not None else Aggregation.metrics,
    )
    both = set(aggregation.dimensions) & set(aggregation.metrics)
    if both:
        shown = ", ".join(c.show("aggregation", name) for name in sorted(both))
        c.fail("aggregation", f"{shown} cannot be both a dimension and a metric")

    database = _database(c, values.get("database"), "database" in secret_keys)
    summary_topic_arn = c.string(
        "summaryTopicArn", values.get("summaryTopicArn"), _TOPIC_ARN, "an SNS topic ARN (standard topic)"
    )
    summary_topic_kms_key_arn = c.string(
        "summaryTopicKmsKeyArn",
        values.get("summaryTopicKmsKeyArn"),
        _KMS_KEY_ARN,
        "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
    )
    if summary_topic_kms_key_arn is not None and summary_topic_arn is None:
        c.fail(
            "summaryTopicKmsKeyArn", "is the key of the summary topic: set summaryTopicArn too, or remove it"
        )
    if region is not None:
        _check_regions(
            c,
            region,
            {
                "kmsKeyArn": kms_key_arn,
                "database.secretArn": database.secret_arn if database else None,
                "database.kmsKeyArn": database.kms_key_arn if database else None,
                "summaryTopicArn": summary_topic_arn,
                "summaryTopicKmsKeyArn": summary_topic_kms_key_arn,
            },
        )
    creates_database = database is not None and database.create is not None
    vpc = _vpc(c, values.get("vpc"), needs_vpc_id=creates_database)
    if creates_database and vpc is None and "vpc" not in values:
        c.fail(
            "database.create",
            "needs vpc (vpc.subnetIds in two availability zones, vpc.securityGroupIds of the analytics "
            "function, vpc.vpcId and vpc.serviceAccess): the database lives in private subnets",
        )
    layer = _layer(c, values.get("layer"), project_dir)
    alarm_email = c.string("alarmEmail", values.get("alarmEmail"), _EMAIL, "an email address")
    overwrites = c.choice("overwrites", values.get("overwrites"), DEFAULT_OVERWRITE_MODE, OVERWRITE_MODES)

    # Function, queue and layer names derive from project and stack: no config key can fix them.
    prefix = f"{project}-{stack}".replace(".", "-")
    if not _RESOURCE_NAME.match(prefix):
        c.problems.append(
            Problem(f"stack {stack!r}", f"'{prefix}' may contain only letters, digits, '-', '_' and '.'")
        )
    longest = f"{prefix}-{max(STAGES, key=len)}"
    if len(longest) > FUNCTION_NAME_MAX:
        c.problems.append(
            Problem(
                f"stack {stack!r}",
                f"function name '{longest}' is over {FUNCTION_NAME_MAX} characters; use a shorter stack name",
            )
        )

    if c.problems:
        raise ConfigError(c.problems)
    cfg = PipelineConfig(
        project=project,
        stack=stack,
        bucket_base_names=base_names,
        bucket_suffix=bucket_suffix,
        force_destroy=force_destroy,
        retain_buckets_on_delete=retain,
        versioning=versioning,
        noncurrent_version_expiration_days=noncurrent_days,
        kms_key_arn=kms_key_arn,
        runtime=runtime,
        architecture=architecture,
        retry_attempts=retry_attempts,
        max_event_age_seconds=max_event_age,
        stages=stages,
        input_prefix=input_prefix,
        input_suffixes=suffixes,
        max_record_bytes=max_record_bytes,
        record_schema=record_schema,
        aggregation=aggregation,
        database=database,
        summary_topic_arn=summary_topic_arn,
        vpc=vpc,
        layer=layer,
        alarm_email=alarm_email,
        overwrites=overwrites,
        adopted_buckets=_adopted_buckets(c, values.get("adoptBuckets")),
        summary_topic_kms_key_arn=summary_topic_kms_key_arn,
        region=region,
        secret_keys=frozenset(k for k in secret_keys if k in values),
    )
    _check_environment_size(c, cfg)
    if c.problems:
        raise ConfigError(c.problems)
    return cfg


def _check_environment_size(c: _Collector, cfg: PipelineConfig) -> None:
    """Lambda refuses a function whose environment passes 4 KB: measure each stage's real one.

    The bucket name and secret ARN are counted at their longest, since they are not known yet.
    """
    from components.environment import environment_bytes, stage_environment

    # A secret the stack creates gets its ARN at deploy time: count it as long as Secrets Manager allows.
    created_secret_arn = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:" + "x" * 519
    secret_arn = (cfg.database.secret_arn or created_secret_arn) if cfg.database else None
    # host:port/dbname of a database the stack creates: an RDS endpoint is at most ~90 characters.
    endpoint = (
        "x" * 100 + ":5432/" + cfg.database.create.name if cfg.database and cfg.database.create else None
    )
    for stage in STAGE_TABLE:
        size = environment_bytes(stage_environment(stage, cfg, "x" * BUCKET_NAME_MAX, secret_arn, endpoint))
        if size > LAMBDA_ENV_MAX_BYTES:
            c.fail(
                stage.size_hint.key,
                f"the {stage.name} function's environment would be {size} bytes and Lambda allows "
                f"{LAMBDA_ENV_MAX_BYTES}: shorten {stage.size_hint.shorten}",
            )


def _check_regions(c: _Collector, region: str, arns: Mapping[str, str | None]) -> None:
    """A key, secret or topic in another region is not usable from the stack's functions and resources:
    SSE-KMS, SQS and Secrets Manager accept only a key of their own region, and the SDK calls the function's
    region."""
    for key, arn in arns.items():
        if arn is None:
            continue
        arn_region = arn.split(":")[3]
        if arn_region != region:
            c.fail(
                key,
                f"is in {arn_region} but the stack deploys to {region} (aws:region): use a key, secret or "
                f"topic in {region} (a multi-Region key's replica there, for a key)",
            )


def _database(c: _Collector, value: Any, is_secret: bool) -> Database | None:
    raw = c.mapping("database", value)
    if not raw:
        return None
    secret_arn = c.string(
        "database.secretArn",
        raw.get("secretArn"),
        _SECRET_ARN,
        "a full Secrets Manager secret ARN, ending in the six characters AWS adds to the name "
        "(arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf)",
    )
    kms_key_arn = c.string(
        "database.kmsKeyArn",
        raw.get("kmsKeyArn"),
        _KMS_KEY_ARN,
        "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
    )
    if kms_key_arn is not None and "secretArn" not in raw:
        c.fail(
            "database.kmsKeyArn",
            "is the key of an existing secret (database.secretArn); "
            "a secret the stack creates uses kmsKeyArn",
        )
    url = raw.get("url")
    if url is not None:
        if not isinstance(url, str) or not _DB_URL.match(url):
            # Never echo the value: it holds a password.
            c.fail("database.url", "is not a database URL such as postgresql+psycopg2://user:pass@host/db")
            url = None
        elif not is_secret:
            c.fail(
                "database.url",
                "holds a password in plain text; set it with "
                "`pulumi config set --secret --path database.url <url>`",
            )
            url = None
    create = _database_create(c, raw.get("create")) if "create" in raw else None
    if sum(name in raw for name in ("secretArn", "url", "create")) != 1:
        c.fail("database", "set exactly one of database.secretArn, database.url and database.create")
        return None
    if secret_arn is None and url is None and create is None:
        return None
    return Database(secret_arn=secret_arn, url=url, kms_key_arn=kms_key_arn, create=create)


def _database_create(c: _Collector, value: Any) -> ManagedDatabaseSettings | None:
    key = "database.create"
    if value is True:
        return ManagedDatabaseSettings()
    if not isinstance(value, Mapping):
        c.fail(key, f"is true or an object with {', '.join(_DATABASE_CREATE_KEYS)}")
        return None
    c.check_keys(key, value, _DATABASE_CREATE_KEYS)
    defaults = ManagedDatabaseSettings()
    instance_class = c.string(
        f"{key}.instanceClass",
        value.get("instanceClass"),
        _DB_INSTANCE_CLASS,
        "an RDS instance class (db.t4g.micro)",
    )
    name = c.string(
        f"{key}.name", value.get("name"), _DB_NAME, "a database name (a letter, then letters, digits or _)"
    )
    return ManagedDatabaseSettings(
        instance_class=instance_class or defaults.instance_class,
        allocated_storage_gb=c.integer(
            f"{key}.allocatedStorageGb", value.get("allocatedStorageGb"), 20, 20, 65536
        ),
        multi_az=c.boolean(f"{key}.multiAz", value.get("multiAz"), False),
        name=name or defaults.name,
    )


def _vpc(c: _Collector, value: Any, needs_vpc_id: bool = False) -> Vpc | None:
    """`needs_vpc_id`: the stack creates a database in the VPC (database.create), whose security group needs
    `vpc.vpcId` whatever `vpc.serviceAccess` is."""
    raw = c.mapping("vpc", value)
    if not raw:
        return None
    if "create" in raw:
        return _vpc_create(c, raw)
    if needs_vpc_id and "vpcId" not in raw and raw.get("serviceAccess") != SERVICE_ACCESS_ENDPOINTS:
        c.fail(
            "vpc.vpcId", "is required with database.create: the VPC of vpc.subnetIds, where the database goes"
        )
    subnets = c.string_list(
        "vpc.subnetIds", raw.get("subnetIds"), _SUBNET_ID.match, "a subnet ID (subnet-...)"
    )
    groups = c.string_list(
        "vpc.securityGroupIds",
        raw.get("securityGroupIds"),
        _SECURITY_GROUP_ID.match,
        "a security group ID (sg-...)",
    )
    for name, got in (("subnetIds", subnets), ("securityGroupIds", groups)):
        if name not in raw:
            c.fail(f"vpc.{name}", "is required when vpc is set")
        elif got is not None and len(got) > (16 if name == "subnetIds" else 5):
            c.fail(f"vpc.{name}", "Lambda allows at most 16 subnets and 5 security groups")
    access = raw.get("serviceAccess")
    how = (
        f"'{SERVICE_ACCESS_ENDPOINTS}' (the stack creates an S3 gateway endpoint on vpc.routeTableIds and "
        f"interface endpoints for Secrets Manager and SNS in vpc.vpcId), '{SERVICE_ACCESS_NAT}' (the "
        f"subnets already route to a NAT gateway) or '{SERVICE_ACCESS_EXISTING}' (the VPC already has "
        "those endpoints, with private DNS)"
    )
    if access is None:
        # Without a path, every invocation in the VPC hangs until its timeout and the event ends in the
        # failure queue: refuse the config instead.
        c.fail(
            "vpc.serviceAccess",
            "is required when vpc is set: a function in private subnets reaches S3, Secrets Manager and SNS "
            f"only through a NAT gateway or VPC endpoints; set it to {how}, e.g. "
            f"`pulumi config set --path vpc.serviceAccess {SERVICE_ACCESS_ENDPOINTS}`",
        )
    elif access not in SERVICE_ACCESS_MODES:
        c.fail("vpc.serviceAccess", f"{c.show('vpc.serviceAccess', access)} is not allowed; set it to {how}")
        access = None
    vpc_id = c.string("vpc.vpcId", raw.get("vpcId"), _VPC_ID, "a VPC ID (vpc-...)")
    route_tables = c.string_list(
        "vpc.routeTableIds", raw.get("routeTableIds"), _ROUTE_TABLE_ID.match, "a route table ID (rtb-...)"
    )
    if access == SERVICE_ACCESS_ENDPOINTS:
        if "vpcId" not in raw:
            c.fail(
                "vpc.vpcId",
                f"is required when vpc.serviceAccess is '{SERVICE_ACCESS_ENDPOINTS}': the VPC of "
                "vpc.subnetIds, where the interface endpoints and their security group are created",
            )
        if "routeTableIds" not in raw:
            c.fail(
                "vpc.routeTableIds",
                f"is required when vpc.serviceAccess is '{SERVICE_ACCESS_ENDPOINTS}': the route tables of "
                "vpc.subnetIds (a subnet without its own table uses the VPC's main table), which the S3 "
                "gateway endpoint is added to; `python -m devtools preflight` checks them",
            )
    elif access is not None:
        for name in ("routeTableIds",) if "vpcId" in raw and needs_vpc_id else ("vpcId", "routeTableIds"):
            if name in raw:
                c.fail(
                    f"vpc.{name}",
                    f"is used only when vpc.serviceAccess is '{SERVICE_ACCESS_ENDPOINTS}'; remove it",
                )
    if subnets is None or groups is None or access is None:
        return None
    return Vpc(
        subnet_ids=subnets,
        security_group_ids=groups,
        service_access=access,
        vpc_id=vpc_id,
        route_table_ids=route_tables or (),
    )


def _vpc_create(c: _Collector, raw: Mapping[str, Any]) -> Vpc | None:
    """`vpc.create`: `{availabilityZones: [two zones], cidr}`; the stack owns the VPC and its endpoints."""
    given = [name for name in ("subnetIds", "securityGroupIds", "vpcId", "routeTableIds") if name in raw]
    for name in given:
        c.fail(f"vpc.{name}", "is set by the stack with vpc.create; remove it")
    access = raw.get("serviceAccess", SERVICE_ACCESS_ENDPOINTS)
    if access != SERVICE_ACCESS_ENDPOINTS:
        c.fail(
            "vpc.serviceAccess",
            f"must be '{SERVICE_ACCESS_ENDPOINTS}' (or unset) with vpc.create: the VPC it creates has no NAT",
        )
    value = raw.get("create")
    if not isinstance(value, Mapping):
        c.fail("vpc.create", "is an object: {availabilityZones: [<zone>, <zone>], cidr: <IPv4 range>}")
        return None
    c.check_keys("vpc.create", value, ("availabilityZones", "cidr"))
    zones = c.string_list(
        "vpc.create.availabilityZones",
        value.get("availabilityZones"),
        lambda z: bool(re.match(r"^[a-z]{2}(?:-[a-z]+)+-\d[a-z]$", z)),
        "an availability zone name such as eu-west-1a",
    )
    if "availabilityZones" not in value:
        c.fail(
            "vpc.create.availabilityZones",
            "is required: two zones of the stack's region, e.g. [eu-west-1a, eu-west-1b]",
        )
    elif zones is not None and len(zones) != 2:
        c.fail("vpc.create.availabilityZones", "name exactly two zones (RDS needs two)")
        zones = None
    cidr = value.get("cidr", VpcCreate.cidr)
    try:
        network = ipaddress.ip_network(cidr) if isinstance(cidr, str) else None
    except ValueError:
        network = None
    if network is None or network.version != 4 or not 16 <= network.prefixlen <= 22:
        c.fail("vpc.create.cidr", f"{c.show('vpc.create.cidr', cidr)} is not an IPv4 range from /16 to /22")
        return None
    if zones is None or given or access != SERVICE_ACCESS_ENDPOINTS:
        return None
    return Vpc(
        subnet_ids=(),
        security_group_ids=(),
        service_access=SERVICE_ACCESS_ENDPOINTS,
        create=VpcCreate(availability_zones=(zones[0], zones[1]), cidr=str(network)),
    )


def _layer(c: _Collector, value: Any, project_dir: Path | None) -> LayerSettings:
    raw = c.mapping("layer", value)
    include_boto3 = c.boolean("layer.includeBoto3", raw.get("includeBoto3"), False)
    archive = raw.get("archive")
    if archive is None:
        return LayerSettings(include_boto3=include_boto3)
    if not isinstance(archive, str) or not archive.endswith(".zip"):
        c.fail("layer.archive", f"{c.show('layer.archive', archive)} is not a path to a .zip file")
        return LayerSettings(include_boto3=include_boto3)
    path = Path(archive)
    if not path.is_absolute() and project_dir is not None:
        path = project_dir / path
    if not path.is_file():
        where = "" if "layer" in c.secret_keys else f" (resolved to {path})"
        c.fail("layer.archive", f"{c.show('layer.archive', archive)} does not exist{where}")
        return LayerSettings(include_boto3=include_boto3)
    return LayerSettings(archive=path, include_boto3=include_boto3)


def load_stack_config(project_dir: Path) -> PipelineConfig:
    """The validated config of the stack being deployed (`read_stack_config`, then `parse_config`)."""
    import pulumi

    raw, secret_keys = read_stack_config(project_dir)
    return parse_config(
        raw,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        secret_keys=secret_keys,
        project_dir=project_dir,
        # The AWS provider's region: aws:region, else the environment (as the provider reads it).
        region=pulumi.Config("aws").get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION"),
    )


def read_stack_config(project_dir: Path | None = None) -> tuple[dict[str, Any], frozenset[str]]:
    """Every `data-pipeline:` value the program was given (keys without namespace), and which are secret.

    The adapter between the Pulumi runtime and `parse_config`. Values are read with `pulumi.Config`, secrecy
    with `pulumi.runtime.is_config_secret` and `get_config_secret_keys_env`. Unknown keys can be refused only
    if the program knows every key it was given, and the SDK has no public call that lists them, so the names
    come from where the config is handed over (`_config_names`).
    """
    import pulumi
    from pulumi import runtime

    config = pulumi.Config(NAMESPACE)
    names = _config_names(project_dir) | set(_TOP_LEVEL_KEYS)
    raw = {name: value for name in sorted(names) if (value := config.get(name)) is not None}
    secret_full_keys = set(runtime.get_config_secret_keys_env())
    secrets = frozenset(
        name
        for name in raw
        if config.full_key(name) in secret_full_keys or runtime.is_config_secret(config.full_key(name))
    )
    return raw, secrets


def _config_names(project_dir: Path | None) -> set[str]:
    """The names (without namespace) of the `data-pipeline:` keys the program was given.

    - `pulumi up` / `preview` (the Pulumi CLI and the Automation API's local programs): the language host
      hands the program the stack's whole resolved config (the stack file, ESC environments, `--config`) as
      `PULUMI_CONFIG`, which the public `pulumi.runtime.get_config_env()` parses. That is the deploy path, and
      it needs nothing else.
    - Run in-process (Pulumi's mocks, as `devtools.harness` runs the program; an Automation API inline
      program), the program is given its config through the public `pulumi.runtime.set_all_config`, and no
      public call lists what it set. The keys of the stack file, `Pulumi.<stack>.yaml`, are listed (its format
      is documented), and the keys set in-process besides, from `_in_process_config_keys`.
    """
    import pulumi
    from pulumi import runtime

    if os.environ.get("PULUMI_CONFIG"):
        full_keys = set(runtime.get_config_env())
    else:
        full_keys = _stack_file_keys(project_dir, pulumi.get_stack()) | _in_process_config_keys()
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix) :] for key in full_keys if key.startswith(prefix)}


def _stack_file_keys(project_dir: Path | None, stack: str) -> set[str]:
    """The full keys of `Pulumi.<stack>.yaml`'s `config:` (none without a project directory or stack file)."""
    import yaml

    path = None if project_dir is None else project_dir / f"Pulumi.{stack}.yaml"
    if path is None or not path.is_file():
        return set()
    document = yaml.safe_load(path.read_text()) or {}
    return {str(key) for key in (document.get("config") or {})}


def _in_process_config_keys() -> set[str]:
    """The full keys `pulumi.runtime.set_all_config` set, for a program run in-process only.

    pulumi 3.272 keeps them in `pulumi.runtime.config.CONFIG`, a module attribute without an underscore that
    `pulumi.runtime` does not export and no document describes; nothing public lists them. Never read on
    `pulumi up` (see `_config_names`). Should an SDK upgrade drop it, this returns nothing: keys of the stack
    file are still checked, and the canary (tests/components/test_components_config_reading.py) fails.
    """
    from pulumi.runtime import config as runtime_config

    holder = getattr(runtime_config, "CONFIG", None)
    values = holder.get() if holder is not None and hasattr(holder, "get") else {}
    return {str(key) for key in values} if isinstance(values, dict) else set()


# --- adoptBuckets (issue 14) -------------------------------------------------------------------------

# The settings resources a `DataBucket` declares for an adopted bucket, by their config name. Each one
# listed in `adoptBuckets.<role>.import` is imported (its import ID is the bucket name); the others are
# created, which writes the stack's setting over whatever the bucket has (S3 keeps one of each).
ADOPTABLE_SETTINGS = ("publicAccessBlock", "ownershipControls", "encryption", "versioning", "policy")
# What every bucket created since April 2023 has (S3's defaults: all four public access flags on,
# BucketOwnerEnforced, SSE-S3), so an import of it cannot fail for want of the setting.
DEFAULT_IMPORTED_SETTINGS = ("publicAccessBlock", "ownershipControls", "encryption")
_ADOPT_KEYS = ("name", "import")


@dataclass(frozen=True)
class AdoptedBucket:
    """An existing bucket the stack takes over (Pulumi `import_`) instead of creating."""

    name: str
    """Its full, existing name (no suffix is appended)."""

    imported_settings: tuple[str, ...] = DEFAULT_IMPORTED_SETTINGS
    """The settings resources imported with it (the others are created over the bucket's)."""


def _adopted_buckets(c: _Collector, value: Any) -> dict[str, AdoptedBucket]:
    """`adoptBuckets.<role>`: a bucket name, or `{name, import: [settings]}`."""
    raw = c.mapping("adoptBuckets", value)
    adopted: dict[str, AdoptedBucket] = {}
    for role, entry in raw.items():
        key = f"adoptBuckets.{role}"
        if role not in BUCKET_ROLES:
            continue  # reported by mapping()
        settings: Any = DEFAULT_IMPORTED_SETTINGS
        if isinstance(entry, Mapping):
            c.check_keys(key, entry, _ADOPT_KEYS)
            name, settings = entry.get("name"), entry.get("import", DEFAULT_IMPORTED_SETTINGS)
        else:
            name = entry
        if not isinstance(name, str):
            c.fail(key, f"{c.show(key, name)} is not a bucket name (a string, or an object with name)")
            continue
        problems = bucket_name_problems(name)
        for problem in problems:
            c.fail(key, f"bucket name {c.show(key, name)} {problem}")
        if not isinstance(settings, list | tuple) or not all(s in ADOPTABLE_SETTINGS for s in settings):
            c.fail(
                f"{key}.import",
                f"{c.show(key, settings)} is not a list of settings; "
                f"allowed: {', '.join(ADOPTABLE_SETTINGS)}",
            )
            continue
        if not problems:
            adopted[role] = AdoptedBucket(name, tuple(dict.fromkeys(settings)))
    names = [a.name for a in adopted.values()]
    if len(set(names)) != len(names):
        c.fail("adoptBuckets", "each role needs its own bucket: the same bucket is adopted twice")
    return adopted
