"""What the local run needs to know about the declared stack, as plain frozen data.

:func:`devtools.localrun.graph.pipeline_spec` fills these from the program evaluated under Pulumi's mocks;
tests may alter them (``dataclasses.replace``) to prove that a broken declaration breaks the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from handlers.contract import INPUT_PREFIX


@dataclass(frozen=True)
class NotificationSpec:
    """One Lambda notification of a bucket."""

    function_arn: str  # the declared (mock) ARN of the target function
    events: tuple[str, ...]  # e.g. ("s3:ObjectCreated:*",)
    prefix: str = ""  # filter_prefix, "" when absent
    suffix: str = ""  # filter_suffix, "" when absent
    id: str = ""  # the declared configuration id: S3 sends it as the event's configurationId


@dataclass(frozen=True)
class BucketSpec:
    """A declared bucket and the notifications the program puts on it."""

    resource_name: str  # Pulumi resource name of the aws:s3/bucket:Bucket
    name: str  # the physical bucket name
    arn: str  # the declared (mock) ARN
    notifications: tuple[NotificationSpec, ...] = ()
    versioned: bool = False  # a BucketVersioning with status Enabled is declared for it


@dataclass(frozen=True)
class PolicySpec:
    """An inline policy of a role, as the program renders it."""

    name: str  # policy name
    document: dict[str, Any]  # the parsed JSON policy document

    def without_action(self, action: str) -> PolicySpec:
        """This policy with ``action`` removed from every statement (statements left empty are dropped)."""
        statements = []
        for statement in self.document.get("Statement", []):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else list(actions)
            kept = [a for a in actions if a != action]
            if kept:
                statements.append({**statement, "Action": kept})
        return replace(self, document={**self.document, "Statement": statements})


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage: its function, role and failure destination."""

    stage: str  # ingestion | processing | analytics (the function's PIPELINE_STAGE)
    function_name: str  # physical function name
    function_arn: str  # declared (mock) function ARN
    handler: str  # e.g. handlers.ingestion_handler.handler
    runtime: str  # e.g. python3.13
    architecture: str  # x86_64 | arm64
    code_archive: Path  # the declared FileArchive path of the function code
    layer_archives: tuple[Path, ...]  # the declared layer zips, in the function's layer order
    environment: dict[str, str]  # the declared environment variables
    timeout_seconds: int  # declared timeout
    memory_mb: int  # declared memory size
    role_name: str  # physical name of the execution role
    role_arn: str  # declared (mock) role ARN
    assume_role_policy: dict[str, Any]  # the role's trust policy
    policies: tuple[PolicySpec, ...]  # the role's inline policies
    max_retry_attempts: int  # FunctionEventInvokeConfig.maximum_retry_attempts (Lambda's default: 2)
    max_event_age_seconds: int  # FunctionEventInvokeConfig.maximum_event_age_in_seconds
    failure_destination_arn: str  # on_failure destination (the stage's failure queue), declared ARN
    log_group: str = ""  # declared log group name
    s3_invoke_sources: tuple[str, ...] = ()  # source ARNs of its lambda Permissions for s3.amazonaws.com

    def without_action(self, action: str) -> StageSpec:
        """This stage with ``action`` removed from all its role's policies (a negative control for tests)."""
        return replace(self, policies=tuple(p.without_action(action) for p in self.policies))

    def allowed_actions(self) -> set[str]:
        found: set[str] = set()
        for policy in self.policies:
            for statement in policy.document.get("Statement", []):
                if statement.get("Effect") == "Allow":
                    actions = statement.get("Action", [])
                    found.update([actions] if isinstance(actions, str) else actions)
        return found


@dataclass(frozen=True)
class QueueSpec:
    """A declared SQS queue (the stages' failure queues)."""

    name: str  # physical queue name
    arn: str  # declared (mock) ARN
    attributes: dict[str, str] = field(default_factory=dict)  # e.g. MessageRetentionPeriod


@dataclass(frozen=True)
class SecretSpec:
    """A secret the stack creates (the database URL); its value comes from the secret config."""

    name: str  # secret name
    arn: str  # declared (mock) ARN
    value: str | None  # the SecretString the stack stores (None: declared without a version)


@dataclass(frozen=True)
class PipelineSpec:
    """The declared graph of one stack, as the local run uses it."""

    stack: str  # stack name, e.g. dev
    region: str  # aws:region
    account_id: str  # account of the mock ARNs
    buckets: tuple[BucketSpec, ...]
    stages: tuple[StageSpec, ...]  # in chain order
    queues: tuple[QueueSpec, ...]
    secrets: tuple[SecretSpec, ...] = ()
    input_bucket: str = ""  # physical name of the bucket users upload to (raw)
    input_prefix: str = INPUT_PREFIX  # the raw bucket's trigger prefix

    def stage(self, name: str) -> StageSpec:
        for stage in self.stages:
            if stage.stage == name:
                return stage
        raise KeyError(f"no stage {name!r} in the declared stack (have: {[s.stage for s in self.stages]})")

    def with_stage(self, stage: StageSpec) -> PipelineSpec:
        return replace(self, stages=tuple(stage if s.stage == stage.stage else s for s in self.stages))

    def bucket(self, name: str) -> BucketSpec:
        for bucket in self.buckets:
            if name in (bucket.name, bucket.resource_name):
                return bucket
        raise KeyError(f"no bucket {name!r} in the declared stack")


def policy_json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)
