"""From the declared stack (``devtools.harness.DeclaredStack``) to the local run's :class:`PipelineSpec`.

Pure: reads the resources the program registered under Pulumi's mocks (their inputs, and the mocks'
outputs for names and ARNs AWS would compute) and never the program's own modules, so the local run
checks what would be deployed, not what the components meant to declare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devtools.harness import plain
from devtools.localrun.spec import (
    BucketSpec,
    NotificationSpec,
    PipelineSpec,
    PolicySpec,
    QueueSpec,
    SecretSpec,
    StageSpec,
)
from handlers.contract import STAGES, Env

T_BUCKET = "aws:s3/bucket:Bucket"
T_NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
T_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
T_FUNCTION = "aws:lambda/function:Function"
T_LAYER = "aws:lambda/layerVersion:LayerVersion"
T_ROLE = "aws:iam/role:Role"
T_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
T_QUEUE = "aws:sqs/queue:Queue"
T_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
T_PERMISSION = "aws:lambda/permission:Permission"
T_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
T_SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
T_SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"  # noqa: S105
CHAIN_ORDER = tuple(str(stage) for stage in STAGES)
LAMBDA_DEFAULT_RETRIES = 2
LAMBDA_DEFAULT_EVENT_AGE = 21600


class GraphError(ValueError):
    """The declared stack lacks something the pipeline needs (named in the message)."""


def _json(value: Any) -> dict[str, Any]:
    value = plain(value)
    return json.loads(value) if isinstance(value, str) else dict(value)


def _path(archive: Any, what: str) -> Path:
    path = getattr(archive, "path", None)
    if not isinstance(path, str):
        raise GraphError(f"{what}: code is not a FileArchive with a path ({archive!r})")
    return Path(path)


def pipeline_spec(declared: Any) -> PipelineSpec:
    """The pipeline as declared by one evaluation of the program."""
    resources = list(declared.resources)

    def of_type(type_: str) -> list[Any]:
        return [r for r in resources if r.type == type_]

    region = str(declared.config.get("aws:region", "us-east-1"))

    layers = {
        str(r.outputs.get("arn")): _path(r.inputs.get("code"), f"layer {r.name}") for r in of_type(T_LAYER)
    }
    roles = {str(r.outputs.get("arn")): r for r in of_type(T_ROLE)}
    queues = tuple(
        QueueSpec(
            name=str(r.outputs["name"]),
            arn=str(r.outputs["arn"]),
            attributes=(
                {"MessageRetentionPeriod": str(int(r.inputs["messageRetentionSeconds"]))}
                if "messageRetentionSeconds" in r.inputs
                else {}
            ),
        )
        for r in of_type(T_QUEUE)
    )
    invoke_configs = {str(plain(r.inputs.get("functionName"))): r for r in of_type(T_INVOKE_CONFIG)}
    permissions: dict[str, list[str]] = {}
    for r in of_type(T_PERMISSION):
        if (
            r.inputs.get("principal") == "s3.amazonaws.com"
            and r.inputs.get("action") == "lambda:InvokeFunction"
        ):
            permissions.setdefault(str(plain(r.inputs.get("function"))), []).append(
                str(r.inputs.get("sourceArn", ""))
            )

    stages: list[StageSpec] = []
    for fn in of_type(T_FUNCTION):
        name = str(fn.outputs.get("name") or fn.inputs.get("name"))
        arn = str(fn.outputs["arn"])
        environment = {
            k: str(v) for k, v in plain(fn.inputs.get("environment", {})).get("variables", {}).items()
        }
        stage_name = environment.get(Env.PIPELINE_STAGE, fn.name)
        role_arn = str(fn.inputs.get("role", ""))
        role = roles.get(role_arn)
        if role is None:
            raise GraphError(f"function {name}: its role {role_arn} is not declared in the stack")
        role_id = str(role.id or role.outputs.get("name"))
        policies = tuple(
            PolicySpec(name=str(p.outputs.get("name") or p.name), document=_json(p.inputs["policy"]))
            for p in of_type(T_ROLE_POLICY)
            if str(plain(p.inputs.get("role"))) in (role_id, str(role.outputs.get("name")))
        )
        config = invoke_configs.get(name) or invoke_configs.get(arn)
        destination = ""
        retries, max_age = LAMBDA_DEFAULT_RETRIES, LAMBDA_DEFAULT_EVENT_AGE
        if config is not None:
            retries = int(config.inputs.get("maximumRetryAttempts", LAMBDA_DEFAULT_RETRIES))
            max_age = int(config.inputs.get("maximumEventAgeInSeconds", LAMBDA_DEFAULT_EVENT_AGE))
            destination = str(
                plain(config.inputs.get("destinationConfig", {})).get("onFailure", {}).get("destination", "")
            )
        layer_paths = []
        for layer_arn in fn.inputs.get("layers", []) or []:
            if str(layer_arn) not in layers:
                raise GraphError(f"function {name}: layer {layer_arn} is not declared in the stack")
            layer_paths.append(layers[str(layer_arn)])
        log_group = ""
        logging_config = plain(fn.inputs.get("loggingConfig", {})) or {}
        if logging_config.get("logGroup"):
            log_group = str(logging_config["logGroup"])
        stages.append(
            StageSpec(
                stage=stage_name,
                function_name=name,
                function_arn=arn,
                handler=str(fn.inputs.get("handler", "")),
                runtime=str(fn.inputs.get("runtime", "")),
                architecture=str((fn.inputs.get("architectures") or ["x86_64"])[0]),
                code_archive=_path(fn.inputs.get("code"), f"function {name}"),
                layer_archives=tuple(layer_paths),
                environment=environment,
                timeout_seconds=int(fn.inputs.get("timeout", 3)),
                memory_mb=int(fn.inputs.get("memorySize", 128)),
                role_name=str(role.outputs.get("name") or role_id),
                role_arn=role_arn,
                assume_role_policy=_json(role.inputs.get("assumeRolePolicy", "{}")),
                policies=policies,
                max_retry_attempts=retries,
                max_event_age_seconds=max_age,
                failure_destination_arn=destination,
                log_group=log_group,
                s3_invoke_sources=tuple(permissions.get(name, []) + permissions.get(arn, [])),
            )
        )
    stages.sort(key=lambda s: CHAIN_ORDER.index(s.stage) if s.stage in CHAIN_ORDER else len(CHAIN_ORDER))

    notifications: dict[str, list[NotificationSpec]] = {}
    for n in of_type(T_NOTIFICATION):
        notifications.setdefault(str(plain(n.inputs.get("bucket"))), []).extend(
            NotificationSpec(
                function_arn=str(f.get("lambdaFunctionArn", "")),
                events=tuple(f.get("events", ())),
                prefix=str(f.get("filterPrefix", "") or ""),
                suffix=str(f.get("filterSuffix", "") or ""),
                id=str(f.get("id", "") or ""),
            )
            for f in plain(n.inputs.get("lambdaFunctions", []))
        )
    versioned = {
        str(plain(v.inputs.get("bucket")))
        for v in of_type(T_VERSIONING)
        if (plain(v.inputs.get("versioningConfiguration")) or {}).get("status") == "Enabled"
    }
    buckets = tuple(
        BucketSpec(
            resource_name=r.name,
            name=str(r.outputs["bucket"]),
            arn=str(r.outputs["arn"]),
            notifications=tuple(notifications.get(str(r.outputs["bucket"]), ()))
            + tuple(notifications.get(str(r.id), ()) if r.id != r.outputs["bucket"] else ()),
            versioned=bool({str(r.outputs["bucket"]), str(r.id)} & versioned),
        )
        for r in of_type(T_BUCKET)
    )

    secret_values = {
        str(plain(v.inputs.get("secretId"))): plain(v.inputs.get("secretString"))
        for v in of_type(T_SECRET_VERSION)
    }
    secrets = tuple(
        SecretSpec(
            name=str(r.outputs.get("name")),
            arn=str(r.outputs["arn"]),
            value=secret_values.get(str(r.id), secret_values.get(str(r.outputs["arn"]))),
        )
        for r in of_type(T_SECRET)
    )

    input_bucket, input_prefix = "", ""
    first = stages[0] if stages else None
    for bucket in buckets:
        for n in bucket.notifications:
            if first is not None and n.function_arn == first.function_arn:
                input_bucket, input_prefix = bucket.name, n.prefix
    if not input_bucket:
        raise GraphError("no bucket notification invokes the first stage: nowhere to upload input")
    account = stages[0].function_arn.split(":")[4] if stages else "123456789012"
    return PipelineSpec(
        stack=str(declared.stack),
        region=region,
        account_id=account,
        buckets=buckets,
        stages=tuple(stages),
        queues=queues,
        secrets=secrets,
        input_bucket=input_bucket,
        input_prefix=input_prefix,
    )
