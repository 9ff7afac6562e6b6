"""Each stage's environment, parsed once per container into a frozen dataclass.

The variables are the contract in docs/architecture.md ("Function environment"). Every problem is
collected and reported in one ``ConfigError`` at cold start, so a misconfigured function fails on its
first invocation with a message naming every bad variable, before it touches any data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

from handlers import contract as c
from handlers.contract import (
    MAX_FIELD_NAME,
    MAX_RECORD_BYTES_LIMIT,
    OVERWRITE_MODES,
    RECORDS_LINE_LIMIT,
    STAGES,
    WINDOWS,
    Env,
    Stage,
)
from handlers.errors import ConfigError

__all__ = [
    "MAX_FIELD_NAME",
    "MAX_RECORD_BYTES_LIMIT",
    "OVERWRITE_MODES",
    "RECORDS_LINE_LIMIT",
    "STAGES",
    "WINDOWS",
    "AnalyticsConfig",
    "CommonConfig",
    "ConfigError",
    "IngestionConfig",
    "ProcessingConfig",
    "default_record_schema",
    "load_analytics",
    "load_ingestion",
    "load_processing",
]

T = TypeVar("T")


@dataclass(frozen=True)
class CommonConfig:
    """What every stage reads."""

    stage: str  # PIPELINE_STAGE: which stage this function is
    dest_bucket: str  # DEST_BUCKET: the bucket this stage writes to
    metrics_namespace: str  # METRICS_NAMESPACE: CloudWatch namespace of the EMF log line


@dataclass(frozen=True)
class IngestionConfig:
    """Ingestion: raw object → processed ``records/`` and ``quarantine/``."""

    common: CommonConfig  # the variables every stage reads
    records_prefix: str  # RECORDS_PREFIX: where valid records go
    quarantine_prefix: str  # QUARANTINE_PREFIX: where bad records go, with reasons
    input_prefix: str  # INPUT_PREFIX: stripped from the raw key to form the output keys
    input_suffixes: tuple[str, ...]  # INPUT_SUFFIXES: accepted raw object suffixes
    max_record_bytes: int  # MAX_RECORD_BYTES: longer records are quarantined unparsed
    record_schema: Mapping[str, Any]  # RECORD_SCHEMA or the shipped default schema
    # RECORDS_PART_BYTES: uncompressed records/ bytes per part (handlers.parts)
    records_part_bytes: int = c.DEFAULT_RECORDS_PART_BYTES


@dataclass(frozen=True)
class ProcessingConfig:
    """Processing: ``records/`` → analytics ``aggregates/``."""

    common: CommonConfig  # the variables every stage reads
    aggregates_prefix: str  # AGGREGATES_PREFIX: where aggregates objects go
    window: str  # AGGREGATION_WINDOW: one of WINDOWS
    dimensions: tuple[str, ...]  # AGGREGATION_DIMENSIONS: record fields that form the group key
    metrics: tuple[str, ...]  # AGGREGATION_METRICS: numeric record fields aggregated per group

    @property
    def window_seconds(self) -> int:
        return WINDOWS[self.window]


@dataclass(frozen=True)
class AnalyticsConfig:
    """Analytics: ``aggregates/`` → database rollup + ledger, ``reports/``, SNS summary."""

    common: CommonConfig  # the variables every stage reads
    reports_prefix: str  # REPORTS_PREFIX: where reports go
    database_secret_arn: str | None  # DATABASE_SECRET_ARN: secret with the database URL, or None
    summary_topic_arn: str | None  # SUMMARY_TOPIC_ARN: SNS topic for the summary; None → no summary
    report_top_groups: int  # REPORT_TOP_GROUPS: how many groups the report lists
    overwrite_mode: str = (
        c.DEFAULT_OVERWRITE_MODE
    )  # OVERWRITE_MODE: replace (latest version of a raw key) or append


def default_record_schema() -> dict[str, Any]:
    """The JSON Schema shipped in ``handlers/record.schema.json``."""
    return json.loads(resources.files("handlers").joinpath("record.schema.json").read_text("utf-8"))


class _Reader:
    """Reads variables and collects every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def required(self, name: str) -> str:
        value = self.environ.get(name, "").strip()
        if not value:
            self.problems.append(f"{name} is required")
        return value

    def optional(self, name: str) -> str | None:
        return self.environ.get(name, "").strip() or None

    def prefix(self, name: str, default: str | None = None) -> str:
        value = self.environ.get(name, "").strip() or default
        if value is None:
            self.problems.append(f"{name} is required")
            return ""
        if value.startswith("/") or (value and not value.endswith("/")):
            self.problems.append(
                f"{name} must be a key prefix ending in '/', not starting with it: {value!r}"
            )
        return value

    def listing(self, name: str, default: str | None = None) -> tuple[str, ...]:
        raw = self.environ.get(name)
        if raw is None or not raw.strip():
            if default is None:
                self.problems.append(f"{name} is required")
                return ()
            raw = default
        items = tuple(item.strip() for item in raw.split(","))
        if any(not item for item in items):
            self.problems.append(f"{name} has an empty item: {raw!r}")
        if len(set(items)) != len(items):
            self.problems.append(f"{name} has a duplicate item: {raw!r}")
        return items

    def integer(self, name: str, default: int, minimum: int) -> int:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be an integer, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {value}")
        return value

    def parsed(self, name: str, parse: Callable[[str], T], default: Callable[[], T]) -> T | None:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default()
        try:
            return parse(raw)
        except (ValueError, TypeError) as exc:
            self.problems.append(f"{name} is invalid: {exc}")
            return None

    def done(self) -> None:
        if self.problems:
            raise ConfigError("invalid function environment: " + "; ".join(self.problems))


def _common(reader: _Reader, expected_stage: str) -> CommonConfig:
    stage = reader.required(Env.PIPELINE_STAGE)
    if stage and stage != expected_stage:
        reader.problems.append(f"{Env.PIPELINE_STAGE} is {stage!r} but this is the {expected_stage} handler")
    return CommonConfig(
        stage=expected_stage,
        dest_bucket=reader.required(Env.DEST_BUCKET),
        metrics_namespace=reader.optional(Env.METRICS_NAMESPACE) or c.METRICS_NAMESPACE,
    )


def _schema(raw: str) -> dict[str, Any]:
    schema = json.loads(raw)
    if not isinstance(schema, dict):
        raise ValueError("RECORD_SCHEMA must be a JSON object")
    return schema


def load_ingestion(environ: Mapping[str, str] | None = None) -> IngestionConfig:
    reader = _Reader(os.environ if environ is None else environ)
    common = _common(reader, Stage.INGESTION)
    suffixes = reader.listing(Env.INPUT_SUFFIXES, ",".join(c.INPUT_SUFFIXES))
    if any(not s.startswith(".") for s in suffixes):
        reader.problems.append(f"{Env.INPUT_SUFFIXES} items must start with '.': {suffixes}")
    config = IngestionConfig(
        common=common,
        records_prefix=reader.prefix(Env.RECORDS_PREFIX, c.RECORDS_PREFIX),
        quarantine_prefix=reader.prefix(Env.QUARANTINE_PREFIX, c.QUARANTINE_PREFIX),
        input_prefix=reader.prefix(Env.INPUT_PREFIX, c.INPUT_PREFIX),
        input_suffixes=suffixes,
        max_record_bytes=reader.integer(Env.MAX_RECORD_BYTES, c.DEFAULT_MAX_RECORD_BYTES, minimum=1),
        record_schema=reader.parsed(Env.RECORD_SCHEMA, _schema, default_record_schema) or {},
        records_part_bytes=reader.integer(Env.RECORDS_PART_BYTES, c.DEFAULT_RECORDS_PART_BYTES, minimum=1),
    )
    if config.max_record_bytes > MAX_RECORD_BYTES_LIMIT:
        reader.problems.append(
            f"{Env.MAX_RECORD_BYTES} must be at most {MAX_RECORD_BYTES_LIMIT}, "
            f"got {config.max_record_bytes}: a longer record can be written as a records/ line over the "
            f"{RECORDS_LINE_LIMIT} bytes the processing stage reads"
        )
    reader.done()
    return config


def load_processing(environ: Mapping[str, str] | None = None) -> ProcessingConfig:
    reader = _Reader(os.environ if environ is None else environ)
    common = _common(reader, Stage.PROCESSING)
    window = reader.optional(Env.AGGREGATION_WINDOW) or c.DEFAULT_WINDOW
    if window not in WINDOWS:
        reader.problems.append(
            f"{Env.AGGREGATION_WINDOW} must be one of {', '.join(WINDOWS)}, got {window!r}"
        )
    config = ProcessingConfig(
        common=common,
        aggregates_prefix=reader.prefix(Env.AGGREGATES_PREFIX, c.AGGREGATES_PREFIX),
        window=window,
        dimensions=reader.listing(Env.AGGREGATION_DIMENSIONS, ",".join(c.DEFAULT_DIMENSIONS)),
        metrics=reader.listing(Env.AGGREGATION_METRICS, ",".join(c.DEFAULT_METRICS)),
    )
    for name, items in (
        (Env.AGGREGATION_DIMENSIONS, config.dimensions),
        (Env.AGGREGATION_METRICS, config.metrics),
    ):
        if any(len(item) > MAX_FIELD_NAME for item in items):
            reader.problems.append(f"{name} has an item longer than {MAX_FIELD_NAME} characters")
    reader.done()
    return config


def load_analytics(environ: Mapping[str, str] | None = None) -> AnalyticsConfig:
    reader = _Reader(os.environ if environ is None else environ)
    common = _common(reader, Stage.ANALYTICS)
    config = AnalyticsConfig(
        common=common,
        reports_prefix=reader.prefix(Env.REPORTS_PREFIX, c.REPORTS_PREFIX),
        database_secret_arn=reader.optional(Env.DATABASE_SECRET_ARN),
        summary_topic_arn=reader.optional(Env.SUMMARY_TOPIC_ARN),
        report_top_groups=reader.integer(Env.REPORT_TOP_GROUPS, c.REPORT_TOP_GROUPS, minimum=0),
        overwrite_mode=reader.optional(Env.OVERWRITE_MODE) or c.DEFAULT_OVERWRITE_MODE,
    )
    if config.overwrite_mode not in OVERWRITE_MODES:
        reader.problems.append(
            f"{Env.OVERWRITE_MODE} must be one of {', '.join(OVERWRITE_MODES)}, got {config.overwrite_mode!r}"
        )
    reader.done()
    return config
