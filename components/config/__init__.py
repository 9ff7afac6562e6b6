"""Typed, validated stack configuration (namespace ``data-pipeline:``).

`parse_config` is pure: it takes the raw values of the namespace (strings as Pulumi hands them over, or
already-parsed JSON values) and returns a frozen `PipelineConfig`, or raises `ConfigError` listing every
problem at once, each with its full key and what is allowed. This package is the single source of truth
for defaults and limits; docs/configuration.md documents the same table.

- `schema`: the keys, what each allows, and which may be secret;
- `model`: the frozen settings dataclasses;
- `collector`: reading typed values while recording every problem (`ConfigError`);
- `buckets`, `database`, `vpc`: the sections with rules of their own;
- `parse`: `parse_config`, which assembles them;
- `reading`: the Pulumi runtime's config through its public API, and `load_stack_config`.
"""

from components.config.buckets import bucket_name_problems
from components.config.collector import ConfigError, Problem
from components.config.model import (
    AdoptedBucket,
    Aggregation,
    Database,
    LayerSettings,
    ManagedDatabaseSettings,
    PipelineConfig,
    StageSettings,
    Vpc,
    VpcCreate,
)
from components.config.parse import overlapping_suffixes, parse_config
from components.config.reading import load_stack_config, read_stack_config
from components.config.schema import (
    ADOPTABLE_SETTINGS,
    AGGREGATION_WINDOWS,
    ARCHITECTURES,
    BUCKET_NAME_MAX,
    BUCKET_ROLES,
    DEFAULT_IMPORTED_SETTINGS,
    FUNCTION_NAME_MAX,
    KEPT_SECRET_KEYS,
    KNOWN_KEYS,
    LAMBDA_ENV_MAX_BYTES,
    LOG_RETENTION_DAYS,
    MAX_RECORD_BYTES_LIMIT,
    NAMESPACE,
    POSTGRES_MAJOR_VERSION,
    RUNTIMES,
    SERVICE_ACCESS_ENDPOINTS,
    SERVICE_ACCESS_EXISTING,
    SERVICE_ACCESS_MODES,
    SERVICE_ACCESS_NAT,
    STAGES,
    SUFFIX_HEX_CHARS,
    SUFFIX_PLACEHOLDER,
)

__all__ = [
    "ADOPTABLE_SETTINGS",
    "AGGREGATION_WINDOWS",
    "ARCHITECTURES",
    "BUCKET_NAME_MAX",
    "BUCKET_ROLES",
    "DEFAULT_IMPORTED_SETTINGS",
    "FUNCTION_NAME_MAX",
    "KEPT_SECRET_KEYS",
    "KNOWN_KEYS",
    "LAMBDA_ENV_MAX_BYTES",
    "LOG_RETENTION_DAYS",
    "MAX_RECORD_BYTES_LIMIT",
    "NAMESPACE",
    "POSTGRES_MAJOR_VERSION",
    "RUNTIMES",
    "SERVICE_ACCESS_ENDPOINTS",
    "SERVICE_ACCESS_EXISTING",
    "SERVICE_ACCESS_MODES",
    "SERVICE_ACCESS_NAT",
    "STAGES",
    "SUFFIX_HEX_CHARS",
    "SUFFIX_PLACEHOLDER",
    "AdoptedBucket",
    "Aggregation",
    "ConfigError",
    "Database",
    "LayerSettings",
    "ManagedDatabaseSettings",
    "PipelineConfig",
    "Problem",
    "StageSettings",
    "Vpc",
    "VpcCreate",
    "bucket_name_problems",
    "load_stack_config",
    "overlapping_suffixes",
    "parse_config",
    "read_stack_config",
]
