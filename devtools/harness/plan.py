"""``python -m devtools plan``: the declared resources as a tree, like ``pulumi preview`` (no AWS needed)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from devtools.harness.declared import is_secret, plain

KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket", "forceDestroy"),
    "aws:s3/bucketVersioning:BucketVersioning": ("versioningConfiguration",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ("rules",),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ),
    "aws:s3/bucketNotification:BucketNotification": ("lambdaFunctions",),
    "aws:lambda/function:Function": ("name", "handler", "runtime", "architectures", "memorySize", "timeout"),
    "aws:lambda/layerVersion:LayerVersion": ("layerName", "compatibleRuntimes", "code"),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": (
        "maximumRetryAttempts",
        "maximumEventAgeInSeconds",
        "destinationConfig",
    ),
    "aws:lambda/permission:Permission": ("action", "principal", "sourceArn"),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/role:Role": ("description",),
    "aws:sqs/queue:Queue": ("messageRetentionSeconds", "sqsManagedSseEnabled", "kmsMasterKeyId"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:secretsmanager/secret:Secret": ("description",),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretString",),
}


def _notification_lines(value: Any) -> str | None:
    if not isinstance(value, list) or not all(
        isinstance(v, Mapping) and "lambdaFunctionArn" in v for v in value
    ):
        return None
    return "\n".join(
        f"{','.join(v.get('events', []))} {v.get('filterPrefix', '')}*{v.get('filterSuffix', '')} -> "
        f"{v['lambdaFunctionArn']}"
        for v in value
    )


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        return [item for k, v in value.items() for item in _flatten(f"{prefix}.{k}", v)]
    return [(prefix, value)]


def _render(value: Any, secret: bool = False) -> str:
    if secret or is_secret(value):
        return "[secret]"
    path = getattr(value, "path", None)
    if isinstance(path, str):
        return f"archive({path})"
    notifications = _notification_lines(value)
    if notifications is not None:
        return notifications
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        try:  # rendered policy documents: one line per statement (Sid, actions, resources)
            doc = json.loads(value)
            lines = []
            for s in doc.get("Statement", []):
                actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
                resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
                lines.append(
                    f"{s.get('Effect')} {s.get('Sid', '?')}: {', '.join(actions)} on {', '.join(resources)}"
                )
            return "\n".join(lines)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    text = (
        json.dumps(_ints(plain(value)), default=str, ensure_ascii=False)
        if not isinstance(value, str)
        else value
    )
    return text if len(text) <= 120 else text[:119] + "…"


def _ints(value: Any) -> Any:
    """Protobuf carries every number as a float; show 512, not 512.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_ints(v) for v in value]
    return value


def render_plan(declared: Any) -> str:
    resources = list(declared.resources)
    urns = {r.urn for r in resources}
    children: dict[str | None, list[Any]] = {}
    for r in resources:
        parent = r.parent if r.parent in urns else None
        children.setdefault(parent, []).append(r)
    lines: list[str] = [
        f"Stack {declared.stack}: {len(resources)} resources (mocked evaluation, nothing deployed)"
    ]

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            kind = "" if r.custom else " (component)"
            lines.append(f"{'    ' * depth}+ {r.type}  {r.name}{kind}")
            if r.custom:
                for key in KEY_INPUTS.get(r.type, ()):
                    if key in r.inputs:
                        rendered = _render(r.inputs[key]).split("\n")
                        pad = "    " * depth + "      "
                        if len(rendered) == 1:
                            lines.append(f"{pad}{key}: {rendered[0]}")
                        else:
                            lines.append(f"{pad}{key}:")
                            lines.extend(f"{pad}    {line}" for line in rendered)
                options = [
                    o for o, on in (("protect", r.protect), ("retainOnDelete", r.retain_on_delete)) if on
                ]
                if r.depends_on:
                    names = ", ".join(u.rsplit("::", 1)[-1] for u in r.depends_on)
                    options.append(f"dependsOn=[{names}]")
                if options:
                    lines.append(f"{'    ' * depth}      options: {' '.join(options)}")
            walk(r.urn, depth + 1)

    walk(None, 0)
    if declared.outputs:
        lines.append("")
        lines.append("Outputs:")
        for key, value in declared.outputs.items():
            for name, leaf in _flatten(key, value):
                lines.append(f"    {name}: {_render(leaf)}")
    return "\n".join(lines)


def main(args: Any) -> int:
    import tempfile
    from pathlib import Path

    from devtools.harness.declared import evaluate_stack, make_stub_layer

    overrides: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.stub_layer:
            overrides["layer"] = {"archive": str(make_stub_layer(Path(tmp)))}
        declared = evaluate_stack(args.stack, overrides)
        print(render_plan(declared))
        if args.stub_layer:
            print("\n(the layer archive is a stub zip here; --build-layer declares the real build)")
    return 0
