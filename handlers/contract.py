"""The pipeline's contract: every name and default the program, the handlers and the tools share.

One source for the stages, the bucket roles, the keys each stage writes and reads, the function
environment's variable names and defaults, the EMF metrics and their namespace, and the schema-migration
event (docs/architecture.md, "The contract"). The Pulumi program (`components/`), the handlers, the
development tools, the policy pack and the tests import it; nothing else writes these literals.

Standard library only: it ships in the function code, and the Pulumi program (whose requirements hold
no msgspec or jsonschema-rs) imports it too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Stage(StrEnum):
    """The pipeline's stages, in chain order: each one's `PIPELINE_STAGE` and EMF `Stage` dimension."""

    INGESTION = "ingestion"
    PROCESSING = "processing"
    ANALYTICS = "analytics"


STAGES: Final = tuple(Stage)
"""The stages in chain order."""


class BucketRole(StrEnum):
    """The pipeline's buckets, in chain order."""

    RAW = "raw"
    PROCESSED = "processed"
    ANALYTICS = "analytics"


BUCKET_ROLES: Final = tuple(BucketRole)
"""The bucket roles in chain order."""

# Keys. The raw input (`inputPrefix`, `inputSuffixes` in the stack config) has these defaults; every other
# prefix is fixed by the chain: a stage is triggered by exactly the keys the one before it writes.
INPUT_PREFIX: Final = "incoming/"
INPUT_SUFFIXES: Final = (".json", ".jsonl", ".ndjson", ".gz")
RECORDS_PREFIX: Final = "records/"
RECORDS_SUFFIX: Final = ".jsonl.gz"
QUARANTINE_PREFIX: Final = "quarantine/"
QUARANTINE_SUFFIX: Final = ".jsonl"
AGGREGATES_PREFIX: Final = "aggregates/"
AGGREGATES_SUFFIX: Final = ".json"
REPORTS_PREFIX: Final = "reports/"
REPORTS_SUFFIX: Final = ".json"

# User metadata ingestion puts on its outputs: the raw version they come from.
SOURCE_VERSION_METADATA: Final = "source-version-id"
SOURCE_SEQUENCER_METADATA: Final = "source-sequencer"

# records/ parts (docs/architecture.md, "Parts"): ingestion cuts a raw version's valid records into parts of
# at most RECORDS_PART_BYTES uncompressed bytes (a single longer record is a part of its own). Part 0 has
# the version's key; part k >= 1 has PART_MARKER and k in PART_DIGITS digits before the suffix
# (``records/<rel>/<TAG>.p00001.jsonl.gz``), and so has every later stage's output for it. A version of
# more than one part carries PART_METADATA (its index) on every records/ part, and PARTS_METADATA (how
# many parts) on part 0, which is written last.
PART_MARKER: Final = ".p"
PART_DIGITS: Final = 5
PART_METADATA: Final = "records-part"
PARTS_METADATA: Final = "records-parts"
# The SHA-256 of an aggregates document of a version of several parts, as its user metadata: analytics
# HEADs the other parts' documents, so a version with a part processed again and not loaded yet waits
# without reading any document's body.
DOCUMENT_SHA256_METADATA: Final = "document-sha256"
# Where ingestion stages a version's records/ parts k >= 1 in the processed bucket while it reads the raw
# object: nothing triggers on it. Once the whole object is read, each staged part is copied to its records/
# key and deleted, and part 0 goes last, so no part of a version is processed before ingestion has read
# all of it. An ingestion that fails leaves only staged objects, which the bucket expires after
# STAGING_EXPIRATION_DAYS.
STAGING_PREFIX: Final = "staging/"
STAGING_EXPIRATION_DAYS: Final = 1


class Env:
    """The function environment's variable names (docs/architecture.md, "Function environment")."""

    # every stage
    PIPELINE_STAGE: Final = "PIPELINE_STAGE"
    DEST_BUCKET: Final = "DEST_BUCKET"
    METRICS_NAMESPACE: Final = "METRICS_NAMESPACE"
    # ingestion
    RECORDS_PREFIX: Final = "RECORDS_PREFIX"
    QUARANTINE_PREFIX: Final = "QUARANTINE_PREFIX"
    INPUT_PREFIX: Final = "INPUT_PREFIX"
    INPUT_SUFFIXES: Final = "INPUT_SUFFIXES"
    MAX_RECORD_BYTES: Final = "MAX_RECORD_BYTES"
    RECORDS_PART_BYTES: Final = "RECORDS_PART_BYTES"
    RECORD_SCHEMA: Final = "RECORD_SCHEMA"
    # processing
    AGGREGATES_PREFIX: Final = "AGGREGATES_PREFIX"
    AGGREGATION_WINDOW: Final = "AGGREGATION_WINDOW"
    AGGREGATION_DIMENSIONS: Final = "AGGREGATION_DIMENSIONS"
    AGGREGATION_METRICS: Final = "AGGREGATION_METRICS"
    # analytics
    REPORTS_PREFIX: Final = "REPORTS_PREFIX"
    REPORT_TOP_GROUPS: Final = "REPORT_TOP_GROUPS"
    OVERWRITE_MODE: Final = "OVERWRITE_MODE"
    DATABASE_SECRET_ARN: Final = "DATABASE_SECRET_ARN"  # noqa: S105 (a variable name)
    DATABASE_ENDPOINT: Final = "DATABASE_ENDPOINT"  # host:port/dbname of a database the stack creates
    DATABASE_APP_USER: Final = "DATABASE_APP_USER"  # the role loads sign in as, with IAM tokens
    SUMMARY_TOPIC_ARN: Final = "SUMMARY_TOPIC_ARN"


# The variables that name a key prefix a stage writes under (the policy pack checks them).
WRITE_PREFIX_VARIABLES: Final = (
    Env.RECORDS_PREFIX,
    Env.QUARANTINE_PREFIX,
    Env.AGGREGATES_PREFIX,
    Env.REPORTS_PREFIX,
)

# Defaults of the function environment and of the stack config keys that set it.
METRICS_NAMESPACE: Final = "DataPipeline"
WINDOWS: Final = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
DEFAULT_WINDOW: Final = "1h"
DEFAULT_DIMENSIONS: Final = ("type", "source")
DEFAULT_METRICS: Final = ("value",)
DEFAULT_MAX_RECORD_BYTES: Final = 1_048_576
DEFAULT_RECORDS_PART_BYTES: Final = 64 << 20  # uncompressed records/ bytes per part (PART_MARKER)
REPORT_TOP_GROUPS: Final = 10
# What a new version of a raw key does to the totals: replaces its earlier version's contribution, or adds.
OVERWRITE_REPLACE: Final = "replace"
OVERWRITE_APPEND: Final = "append"
OVERWRITE_MODES: Final = (OVERWRITE_REPLACE, OVERWRITE_APPEND)
DEFAULT_OVERWRITE_MODE: Final = OVERWRITE_REPLACE
MAX_FIELD_NAME: Final = 256  # characters of a dimension or metric name (the database's metric column)
RECORDS_LINE_LIMIT: Final = 16 << 20  # the longest records/ line the processing stage reads
# Ingestion writes a valid unit of n bytes as at most 9n // 5 + 28 bytes (ingestion_core.output_bound,
# proved in that module's docstring), so a larger limit could write a line processing cannot read.
MAX_RECORD_BYTES_LIMIT: Final = (RECORDS_LINE_LIMIT - 28) * 5 // 9

# The EMF metrics of each stage's one log line (unit Count, dimension `Stage`), keyed by the field of
# `handlers.metrics.Counts` they report. Ingestion and processing count records (lines); analytics counts
# the groups of an aggregates document, and the objects it rejects.
RECORD_METRIC_NAMES: Final = {
    "records_read": "RecordsRead",
    "records_valid": "RecordsValid",
    "records_quarantined": "RecordsQuarantined",
    "blank_lines": "BlankLines",
    "objects_written": "ObjectsWritten",
}
GROUP_METRIC_NAMES: Final = {
    "records_read": "GroupsRead",
    "records_valid": "GroupsLoaded",
    "records_quarantined": "ObjectsRejected",
    "blank_lines": "BlankLines",
    "objects_written": "ObjectsWritten",
}
STAGE_METRIC_NAMES: Final = {
    Stage.INGESTION: RECORD_METRIC_NAMES,
    Stage.PROCESSING: RECORD_METRIC_NAMES,
    Stage.ANALYTICS: GROUP_METRIC_NAMES,
}
METRIC_NAMES: Final = tuple(dict.fromkeys([*RECORD_METRIC_NAMES.values(), *GROUP_METRIC_NAMES.values()]))
"""Every count metric any stage reports; each line also carries OVER_BUDGET_METRIC."""

STAGE_DIMENSION: Final = "Stage"

# Failing early (handlers/deadline.py): an object a stage cannot finish before its timeout fails at once,
# with this reason and metric, instead of running the whole timeout on each of Lambda's three attempts.
OVER_BUDGET_REASON: Final = "object_exceeds_time_budget"
OVER_BUDGET_METRIC: Final = "ObjectsOverBudget"  # 1 on the log line of an invocation that failed early
LAMBDA_MEMORY_VARIABLE: Final = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"  # Lambda sets it on every function
# Lambda gives a function one vCPU's worth of CPU at 1,769 MB and a share in proportion below that
# (docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The handlers are single-threaded:
# more memory than this buys no speed.
FULL_VCPU_MEMORY_MB: Final = 1769
# Bytes of each stage's input object (its size in the S3 event) a stage gets through per second of one
# vCPU: ingestion's raw JSON Lines, processing's records/ gzip, analytics' aggregates JSON. Measured by
# benchmarks/capacity.py (docs/capacity.md): the lowest of its runs there, rounded down.
PLANNING_RATES: Final = {
    Stage.INGESTION: 30_000_000,
    Stage.PROCESSING: 10_000_000,
    Stage.ANALYTICS: 900_000,
}
# Ingestion of a gzip raw object (a key ending in .gz), in compressed bytes: each holds several of JSON.
GZIP_INPUT_PLANNING_RATE: Final = 4_000_000
# The analytics invocation that completes a raw version of several parts reads and merges the other
# parts' aggregates documents (handlers/versions.py): bytes of those documents per vCPU-second.
GATHER_PLANNING_RATE: Final = 2_000_000
# Ingestion's release of a version's staged records/ parts (a CopyObject and a delete each, in parallel
# threads): seconds planned per round of parallel releases. S3's time, not ours, so not scaled by memory;
# a planning assumption (the local run cannot measure S3), generous for parts of at most 64 MiB.
RELEASE_PLANNING_SECONDS: Final = 2.0
# Time kept back from the timeout to log the error and its metric: this many seconds, or this share of a
# short timeout.
DEADLINE_MARGIN_SECONDS: Final = 5.0
DEADLINE_MARGIN_SHARE: Final = 0.1

# The event `pulumi up` sends the stage that needs the database (`{"action": "migrate"}`).
ACTION_FIELD: Final = "action"
MIGRATE_ACTION: Final = "migrate"
MIGRATE_EVENT: Final = {ACTION_FIELD: MIGRATE_ACTION}

# The least-privilege role the schema migration creates in a database the stack owns (`database.create`):
# loads sign in as it with RDS IAM tokens, and only the migration uses the master user (handlers/app_user.py).
APP_USER: Final = "pipeline_app"
