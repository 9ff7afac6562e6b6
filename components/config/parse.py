"""`parse_config`: the raw values of the `data-pipeline:` namespace into a validated `PipelineConfig`.

It is pure: it takes the raw values (strings as Pulumi hands them over, or already-parsed JSON values) and
returns a frozen `PipelineConfig`, or raises `ConfigError` listing every problem at once, each with its full
key and what is allowed. The buckets, database and VPC sections are read by their own modules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.config.buckets import adopted_buckets, bucket_names
from components.config.collector import Collector, ConfigError, Problem, allowed_range, coerce
from components.config.database import database_settings
from components.config.model import Aggregation, LayerSettings, PipelineConfig, StageSettings
from components.config.schema import (
    AGGREGATION_WINDOWS,
    ARCHITECTURES,
    BUCKET_NAME_MAX,
    BUCKET_ROLES,
    EMAIL,
    FUNCTION_NAME_MAX,
    KEPT_SECRET_KEYS,
    KMS_KEY_ARN,
    LAMBDA_ENV_MAX_BYTES,
    LOG_RETENTION_DAYS,
    MAX_RECORD_BYTES_LIMIT,
    NAME_TOKEN,
    NOT_SECRET_REASONS,
    RESOURCE_NAME,
    RUNTIMES,
    STAGE_KEYS,
    STAGES,
    TOP_LEVEL_KEYS,
    TOPIC_ARN,
)
from components.config.vpc import vpc_settings
from components.stage_table import STAGE_TABLE, describe
from handlers import contract
from handlers.contract import DEFAULT_OVERWRITE_MODE, OVERWRITE_MODES, RECORDS_LINE_LIMIT


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
    c = Collector(secret_keys)
    values = {k: coerce(v) for k, v in raw.items()}
    for name in values:
        if name not in TOP_LEVEL_KEYS:
            c.unknown(name, name, TOP_LEVEL_KEYS)
        elif name in secret_keys and name not in KEPT_SECRET_KEYS:
            reason = NOT_SECRET_REASONS.get(name, "it is a setting of the stack, not a secret")
            c.fail(
                name,
                f"is set with --secret, but the stack cannot keep it secret: {reason}; set it in plain text "
                f"(`pulumi config set [--path] {name} ...` without --secret). Keys kept secret: "
                f"{', '.join(KEPT_SECRET_KEYS)}",
            )

    force_destroy = c.boolean("forceDestroy", values.get("forceDestroy"), False)
    retain = c.boolean("retainBucketsOnDelete", values.get("retainBucketsOnDelete"), not force_destroy)
    bucket_suffix = c.boolean("bucketSuffix", values.get("bucketSuffix"), True)

    base_names = bucket_names(
        c, values.get("buckets"), project=project, stack=stack, bucket_suffix=bucket_suffix
    )

    versioning_raw = c.mapping("versioning", values.get("versioning"))
    versioning = {
        role: c.boolean(f"versioning.{role}", versioning_raw.get(role), role == contract.BucketRole.RAW)
        for role in BUCKET_ROLES
    }
    noncurrent_days = c.integer(
        "noncurrentVersionExpirationDays", values.get("noncurrentVersionExpirationDays"), 30, 1, 3650
    )
    kms_key_arn = c.string(
        "kmsKeyArn",
        values.get("kmsKeyArn"),
        KMS_KEY_ARN,
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
            c.fail(key, f"{c.show(key, one)} is not an object; allowed keys: {', '.join(STAGE_KEYS)}")
            one = {}
        c.check_keys(key, one, STAGE_KEYS)
        reserved = one.get("reservedConcurrency")
        described = describe(stage)
        stages[stage] = StageSettings(
            memory_mb=c.integer(f"{key}.memoryMb", one.get("memoryMb"), described.memory_mb, 128, 10240),
            timeout_seconds=c.integer(
                f"{key}.timeoutSeconds", one.get("timeoutSeconds"), described.timeout_seconds, 1, 900
            ),
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
            f"{allowed_range(1, MAX_RECORD_BYTES_LIMIT)} (ingestion may write a record as 9/5 of its size "
            "plus 28 bytes, and the processing stage reads records/ lines of at most "
            f"{RECORDS_LINE_LIMIT} bytes)",
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
        "aggregation.dimensions", agg_raw.get("dimensions"), NAME_TOKEN.match, field_name, allow_empty=True
    )
    metrics = c.string_list("aggregation.metrics", agg_raw.get("metrics"), NAME_TOKEN.match, field_name)
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

    database = database_settings(c, values.get("database"), "database" in secret_keys)
    summary_topic_arn = c.string(
        "summaryTopicArn", values.get("summaryTopicArn"), TOPIC_ARN, "an SNS topic ARN (standard topic)"
    )
    summary_topic_kms_key_arn = c.string(
        "summaryTopicKmsKeyArn",
        values.get("summaryTopicKmsKeyArn"),
        KMS_KEY_ARN,
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
    vpc = vpc_settings(c, values.get("vpc"), needs_vpc_id=creates_database)
    if creates_database and vpc is None and "vpc" not in values:
        c.fail(
            "database.create",
            "needs vpc (vpc.subnetIds in two availability zones, vpc.securityGroupIds of the analytics "
            "function, vpc.vpcId and vpc.serviceAccess): the database lives in private subnets",
        )
    layer = _layer(c, values.get("layer"), project_dir)
    alarm_email = c.string("alarmEmail", values.get("alarmEmail"), EMAIL, "an email address")
    overwrites = c.choice("overwrites", values.get("overwrites"), DEFAULT_OVERWRITE_MODE, OVERWRITE_MODES)

    # Function, queue and layer names derive from project and stack: no config key can fix them.
    prefix = f"{project}-{stack}".replace(".", "-")
    if not RESOURCE_NAME.match(prefix):
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
        records_part_bytes=None
        if values.get("recordsPartBytes") is None
        else c.integer(
            "recordsPartBytes", values["recordsPartBytes"], contract.DEFAULT_RECORDS_PART_BYTES, 1, None
        ),
        adopted_buckets=adopted_buckets(c, values.get("adoptBuckets")),
        summary_topic_kms_key_arn=summary_topic_kms_key_arn,
        region=region,
        secret_keys=frozenset(k for k in secret_keys if k in values),
    )
    _check_environment_size(c, cfg)
    if c.problems:
        raise ConfigError(c.problems)
    return cfg


def _check_environment_size(c: Collector, cfg: PipelineConfig) -> None:
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


def _check_regions(c: Collector, region: str, arns: Mapping[str, str | None]) -> None:
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


def _layer(c: Collector, value: Any, project_dir: Path | None) -> LayerSettings:
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
