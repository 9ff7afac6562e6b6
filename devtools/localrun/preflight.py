"""The checks AWS makes when the declared graph is deployed, made before the local run starts.

Pure: a :class:`PipelineSpec` in, a list of problems out (empty when the stack would deploy). Each problem
names the resource and quotes the error AWS would give, so a broken declaration fails here, with the
same explanation, rather than as a mysterious silence later in the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from devtools.localrun.spec import PipelineSpec

RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
"""Keys Lambda refuses in a function's environment (CreateFunction fails with InvalidParameterValue)."""


def _overlap(a_prefix: str, a_suffix: str, b_prefix: str, b_suffix: str) -> bool:
    prefixes = a_prefix.startswith(b_prefix) or b_prefix.startswith(a_prefix)
    suffixes = a_suffix.endswith(b_suffix) or b_suffix.endswith(a_suffix)
    return prefixes and suffixes


def _event_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    def family(name: str) -> str:
        return ":".join(name.split(":")[:2])

    return any(x == y or (family(x) == family(y) and "*" in (x[-1], y[-1])) for x in a for y in b)


def preflight(spec: PipelineSpec) -> list[str]:
    """Problems AWS would report when deploying the declared graph (empty when it deploys)."""
    problems: list[str] = []
    stages_by_arn = {s.function_arn: s for s in spec.stages}
    for bucket in spec.buckets:
        for i, n in enumerate(bucket.notifications):
            stage = stages_by_arn.get(n.function_arn)
            if stage is None:
                problems.append(
                    f"bucket {bucket.name}: notification targets {n.function_arn}, which the stack does not "
                    "declare (S3: Unable to validate the following destination configurations)"
                )
                continue
            if bucket.arn not in stage.s3_invoke_sources:
                problems.append(
                    f"bucket {bucket.name}: function {stage.function_name} has no lambda Permission for "
                    f"principal s3.amazonaws.com with source_arn {bucket.arn} "
                    "(S3: Unable to validate the following destination configurations)"
                )
            for m in bucket.notifications[i + 1 :]:
                if _event_overlap(n.events, m.events) and _overlap(n.prefix, n.suffix, m.prefix, m.suffix):
                    problems.append(
                        f"bucket {bucket.name}: notification ({n.prefix!r}, {n.suffix!r}) overlaps "
                        f"({m.prefix!r}, {m.suffix!r}) (S3: Configurations overlap)"
                    )
    for stage in spec.stages:
        if not _trusts_lambda(stage.assume_role_policy):
            problems.append(
                f"stage {stage.stage}: role {stage.role_name} does not trust lambda.amazonaws.com "
                "(Lambda: The role defined for the function cannot be assumed by Lambda)"
            )
        reserved = sorted(RESERVED_ENV.intersection(stage.environment))
        if reserved:
            problems.append(
                f"stage {stage.stage}: environment sets reserved keys {reserved} "
                "(Lambda: InvalidParameterValueException)"
            )
    return problems


def _trusts_lambda(policy: dict[str, Any]) -> bool:
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        services = (statement.get("Principal") or {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if (
            statement.get("Effect") == "Allow"
            and "sts:AssumeRole" in actions
            and "lambda.amazonaws.com" in services
        ):
            return True
    return False
