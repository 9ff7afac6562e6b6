"""The environment each stage's function gets: the variables `handlers/config.py` reads.

Rendered from the stage table (`components.stage_table`), with no Pulumi import, so that `components.config`
can measure the real environment against Lambda's 4 KB limit while it validates the stack config.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from components.stage_table import (
    DATABASE_ENDPOINT_VARIABLE,
    DATABASE_SECRET_VARIABLE,
    SUMMARY_TOPIC_VARIABLE,
    Provided,
    Setting,
    StageDescription,
    describe,
)
from handlers.contract import APP_USER, METRICS_NAMESPACE, Env

if TYPE_CHECKING:
    from components.config import PipelineConfig

__all__ = ["METRICS_NAMESPACE", "environment_bytes", "secret_variables", "stage_environment"]


def stage_environment(
    stage: str | StageDescription,
    cfg: PipelineConfig,
    dest_bucket: Any,
    secret_arn: Any = None,
    database_endpoint: Any = None,
) -> dict[str, Any]:
    """The variables `handlers/config.py` reads (docs/architecture.md, "Function environment").

    `dest_bucket` is the destination bucket's name, `secret_arn` the database secret's ARN and
    `database_endpoint` the `host:port/dbname` of a database the stack creates (plain strings, or Outputs in
    the program); the database and the summary topic reach only a stage that needs them.
    """
    description = describe(stage) if isinstance(stage, str) else stage
    env: dict[str, Any] = {
        Env.PIPELINE_STAGE: str(description.name),
        Env.DEST_BUCKET: dest_bucket,
        Env.METRICS_NAMESPACE: METRICS_NAMESPACE,
    }
    for name, value in description.environment.items():
        rendered = _render(cfg, value) if isinstance(value, Setting) else value
        if rendered is not None:
            env[name] = rendered
    provided = description.needs.select(
        Provided(database_secret_arn=secret_arn, summary_topic_arn=cfg.summary_topic_arn)
    )
    if provided.database_secret_arn is not None:
        env[DATABASE_SECRET_VARIABLE] = provided.database_secret_arn
        if database_endpoint is not None:
            env[DATABASE_ENDPOINT_VARIABLE] = database_endpoint
            # A database the stack owns: loads sign in as its application user (handlers/app_user.py).
            env[Env.DATABASE_APP_USER] = APP_USER
    if provided.summary_topic_arn is not None:
        env[SUMMARY_TOPIC_VARIABLE] = provided.summary_topic_arn
    return env


def secret_variables(stage: str | StageDescription, cfg: PipelineConfig) -> frozenset[str]:
    """The variables of `stage`'s environment whose value comes from a key set with `--secret`: the program
    wraps them in `pulumi.Output.secret`, so neither the state nor a preview shows them."""
    description = describe(stage) if isinstance(stage, str) else stage
    names = {
        name
        for name, value in description.environment.items()
        if isinstance(value, Setting) and cfg.is_secret(value.key)
    }
    if cfg.is_secret("database") and cfg.database is not None and cfg.database.secret_arn is not None:
        # (the ARN of a secret the stack creates from database.url is not config: nothing to hide)
        names.add(DATABASE_SECRET_VARIABLE)
    if cfg.is_secret("summaryTopicArn"):
        names.add(SUMMARY_TOPIC_VARIABLE)
    return frozenset(names)


def _render(cfg: PipelineConfig, setting: Setting) -> str | None:
    value: Any = cfg
    for part in setting.attribute().split("."):
        value = getattr(value, part)
    if value is None:
        return None
    if isinstance(value, tuple | list):
        return ",".join(value)
    return str(value)


def environment_bytes(env: dict[str, str]) -> int:
    """The size Lambda counts against its 4 KB limit: the variables as one compact JSON object, so every
    quote inside a value (a JSON schema is full of them) counts twice."""
    return len(json.dumps(env, separators=(",", ":")).encode())
