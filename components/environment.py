"""The environment each stage's function gets: the variables `handlers/config.py` reads.

Kept apart from `components.stage` (no Pulumi import), so that `components.config` can measure the
real environment against Lambda's 4 KB limit while it validates the stack config.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from components import chain

if TYPE_CHECKING:
    from components.config import PipelineConfig

METRICS_NAMESPACE = "DataPipeline"
REPORT_TOP_GROUPS = 10


def stage_environment(
    stage: str,
    cfg: PipelineConfig,
    dest_bucket: Any,
    secret_arn: Any = None,
) -> dict[str, Any]:
    """The variables `handlers/config.py` reads (docs/architecture.md, "Function environment")."""
    env: dict[str, Any] = {
        "PIPELINE_STAGE": stage,
        "DEST_BUCKET": dest_bucket,
        "METRICS_NAMESPACE": METRICS_NAMESPACE,
    }
    if stage == "ingestion":
        env |= {
            "RECORDS_PREFIX": chain.RECORDS_PREFIX,
            "QUARANTINE_PREFIX": chain.QUARANTINE_PREFIX,
            "INPUT_PREFIX": cfg.input_prefix,
            "INPUT_SUFFIXES": ",".join(cfg.input_suffixes),
            "MAX_RECORD_BYTES": str(cfg.max_record_bytes),
        }
        if cfg.record_schema is not None:
            env["RECORD_SCHEMA"] = cfg.record_schema
    elif stage == "processing":
        env |= {
            "AGGREGATES_PREFIX": chain.AGGREGATES_PREFIX,
            "AGGREGATION_WINDOW": cfg.aggregation.window,
            "AGGREGATION_DIMENSIONS": ",".join(cfg.aggregation.dimensions),
            "AGGREGATION_METRICS": ",".join(cfg.aggregation.metrics),
        }
    elif stage == "analytics":
        env |= {
            "REPORTS_PREFIX": chain.REPORTS_PREFIX,
            "REPORT_TOP_GROUPS": str(REPORT_TOP_GROUPS),
            "OVERWRITE_MODE": cfg.overwrites,
        }
        if secret_arn is not None:
            env["DATABASE_SECRET_ARN"] = secret_arn
        if cfg.summary_topic_arn is not None:
            env["SUMMARY_TOPIC_ARN"] = cfg.summary_topic_arn
    else:
        raise ValueError(f"unknown stage {stage!r}")
    return env


def environment_bytes(env: dict[str, str]) -> int:
    """The size Lambda counts against its 4 KB limit: the variables as one compact JSON object, so every
    quote inside a value (a JSON schema is full of them) counts twice."""
    return len(json.dumps(env, separators=(",", ":")).encode())
