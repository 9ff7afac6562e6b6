"""Evaluate the real Pulumi program offline and record what it declares.

`evaluate_stack("dev")` runs `__main__.py` under `pulumi.runtime.set_mocks` with `Pulumi.dev.yaml` (plus
overrides, which win) and returns a `DeclaredStack`: every registered resource with its type, name, URN,
parent, inputs, mock outputs and options (`depends_on`, `protect`, `retain_on_delete`, `aliases`,
`import_`, read from the RegisterResource request, since `MockResourceArgs` lacks them), the stack outputs,
and every warning the program or the provider SDK emitted (deprecations included). It may be called many
times in one process.

The mocks' outputs are in `devtools.harness.mocks`; the SDK internals this needs, and why, in
`devtools.harness._pulumi_internals`.

    python -m devtools.harness --stack dev --timing --stub-layer
"""

from __future__ import annotations

import contextlib
import importlib
import json
import keyword
import logging
import runpy
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devtools.harness import _pulumi_internals
from devtools.harness.mocks import DEFAULT_REGION, RealisticMocks
from handlers.contract import BUCKET_ROLES

PROJECT_DIR = Path(__file__).resolve().parents[2]
NAMESPACE = "data-pipeline"

_TYPE_FUNCTION = "aws:lambda/function:Function"


class StackEvaluationError(RuntimeError):
    """The program failed under mocks (config errors included); the message carries the program's own."""


@dataclass(frozen=True)
class Secret:
    """Marks a config override as secret, like `pulumi config set --secret`."""

    value: Any = field(repr=False)  # the plain value


@dataclass(frozen=True)
class DeclaredResource:
    """One registered resource."""

    type: str  # type token, e.g. aws:s3/bucket:Bucket
    name: str  # logical name
    urn: str  # URN, parent types included
    parent: str | None  # parent URN (the stack for top-level resources)
    custom: bool  # a provider resource (not a component)
    inputs: Mapping[str, Any]  # inputs as the provider would receive them (camelCase keys)
    outputs: Mapping[str, Any]  # what the mocks returned (inputs plus computed values)
    id: str | None  # mock physical ID
    dependencies: tuple[str, ...]  # every URN it waits for (explicit and through inputs)
    depends_on: tuple[str, ...]  # URNs named only through the depends_on option
    protect: bool  # protect option
    retain_on_delete: bool  # retain_on_delete option
    aliases: tuple[Mapping[str, Any], ...] = ()  # aliases option as sent: {"urn": ...} or {"spec": {...}}
    import_id: str | None = None  # import_ option (the request's importId): adopt this existing resource

    def __getitem__(self, key: str) -> Any:
        return self.inputs[key]


@dataclass(frozen=True)
class DeclaredStack:
    """Everything one evaluation declared."""

    stack: str  # stack name
    config: Mapping[str, Any]  # the config the program saw (full keys, secret values shown as "[secret]")
    resources: tuple[DeclaredResource, ...]  # in registration order
    outputs: Mapping[str, Any]  # stack outputs, resolved
    warnings: tuple[str, ...]  # warnings the program and the SDK logged (deprecations included)
    seconds: float  # wall time of the program run

    # --- lookups -------------------------------------------------------------------------------

    def by_type(self, type_: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_]

    def get(self, name: str, type_: str | None = None) -> DeclaredResource:
        """The one resource with this logical name (and type); KeyError otherwise."""
        found = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}" + (f" of type {type_}" if type_ else ""))
        return found[0]

    def by_urn(self, urn: str) -> DeclaredResource:
        return next(r for r in self.resources if r.urn == urn)

    def children(self, parent: DeclaredResource | str) -> list[DeclaredResource]:
        urn = parent if isinstance(parent, str) else parent.urn
        return [r for r in self.resources if r.parent == urn]

    def descendants(self, parent: DeclaredResource | str) -> list[DeclaredResource]:
        out = []
        for child in self.children(parent):
            out.append(child)
            out.extend(self.descendants(child))
        return out

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    # --- the graph, for devtools (local run, plan) ------------------------------------------------

    def component(self, type_: str, name: str) -> DeclaredResource:
        return self.get(name, type_)

    def buckets(self) -> dict[str, str]:
        """bucket role (raw/processed/analytics) -> physical bucket name."""
        return {role: self.get(role, "aws:s3/bucket:Bucket").outputs["bucket"] for role in BUCKET_ROLES}

    def functions(self) -> dict[str, dict[str, Any]]:
        """stage -> {name, arn, handler, runtime, environment, layers, code_path, role_arn, policy}."""
        out = {}
        for stage_res in self.by_type("data-pipeline:stage:PipelineStage"):
            fn = next(r for r in self.descendants(stage_res) if r.type == _TYPE_FUNCTION)
            out[stage_res.name] = {
                "name": fn.outputs["name"],
                "arn": fn.outputs["arn"],
                "handler": fn.inputs["handler"],
                "runtime": fn.inputs["runtime"],
                "architectures": list(fn.inputs.get("architectures", [])),
                "memory_mb": fn.inputs.get("memorySize"),
                "timeout_seconds": fn.inputs.get("timeout"),
                "environment": dict(fn.inputs.get("environment", {}).get("variables", {})),
                "layers": list(fn.inputs.get("layers", [])),
                "code_path": Path(fn.inputs["code"].path),
                "role_arn": fn.inputs["role"],
                "policy": self.role_policies()[stage_res.name],
            }
        return out

    def notifications(self) -> dict[str, list[dict[str, Any]]]:
        """bucket role -> [{function_arn, events, prefix, suffix}] as declared in its BucketNotification."""
        names = {v: k for k, v in self.buckets().items()}
        out: dict[str, list[dict[str, Any]]] = {}
        for n in self.by_type("aws:s3/bucketNotification:BucketNotification"):
            out[names[n.inputs["bucket"]]] = [
                {
                    "function_arn": f["lambdaFunctionArn"],
                    "events": list(f["events"]),
                    "prefix": f.get("filterPrefix", ""),
                    "suffix": f.get("filterSuffix", ""),
                }
                for f in n.inputs.get("lambdaFunctions", [])
            ]
        return out

    def role_policies(self) -> dict[str, dict[str, Any]]:
        """stage -> its role's inline policy document (parsed JSON)."""
        out = {}
        for stage_res in self.by_type("data-pipeline:stage:PipelineStage"):
            policy = next(r for r in self.descendants(stage_res) if r.type == "aws:iam/rolePolicy:RolePolicy")
            out[stage_res.name] = json.loads(policy.inputs["policy"])
        return out

    def layer_archive(self) -> Path:
        return Path(self.by_type("aws:lambda/layerVersion:LayerVersion")[0].inputs["code"].path)

    def archive_paths(self) -> list[Path]:
        """Every FileArchive/FileAsset path any resource references."""
        paths: list[Path] = []

        def walk(value: Any) -> None:
            path = getattr(value, "path", None)
            if isinstance(path, str):
                paths.append(Path(path))
            elif isinstance(value, Mapping):
                for v in value.values():
                    walk(v)
            elif isinstance(value, list | tuple):
                for v in value:
                    walk(v)

        for r in self.resources:
            walk(dict(r.inputs))
        return paths


# --- values ---------------------------------------------------------------------------------------


def is_secret(value: Any) -> bool:
    """Whether a recorded input is a secret (Pulumi keeps secret inputs wrapped in the request)."""
    from pulumi.runtime import rpc

    return rpc.is_rpc_secret(value)


def plain(value: Any) -> Any:
    """``value`` with Pulumi's secret wrappers removed (the local run needs the real value)."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --- config -----------------------------------------------------------------------------------------


def _full_key(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def _wire(value: Any) -> str:
    """Config values as the Pulumi CLI hands them to the program: strings, structured values as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """`config:` of Pulumi.<stack>.yaml, full keys; encrypted values cannot be read offline."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackEvaluationError(f"no stack config {path}")
    data = yaml.safe_load(path.read_text()) or {}
    config = dict(data.get("config") or {})
    for key, value in config.items():
        if isinstance(value, Mapping) and "secure" in value:
            raise StackEvaluationError(
                f"{path.name}: {key} is encrypted; pass it as an override: config={{{key!r}: Secret(...)}}"
            )
    return config


# --- evaluation -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _on_path(project_dir: Path) -> Iterator[None]:
    added = str(project_dir) not in sys.path
    if added:
        sys.path.insert(0, str(project_dir))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(project_dir))


def evaluate_stack(
    stack: str,
    config: Mapping[str, Any] | None = None,
    project_dir: Path = PROJECT_DIR,
    *,
    use_stack_file: bool = True,
) -> DeclaredStack:
    """Run the real program for `stack` under mocks and return what it declared.

    `config` overrides (or adds) keys of Pulumi.<stack>.yaml; a key without namespace is in
    `data-pipeline:`; wrap a value in `Secret` to mark it secret; a value of None removes the key.
    Raises `StackEvaluationError` if the program fails.
    """
    import pulumi

    merged: dict[str, Any] = load_stack_config(stack, project_dir) if use_stack_file else {}
    secret_keys: list[str] = []
    for key, value in (config or {}).items():
        full = _full_key(key)
        if value is None:
            merged.pop(full, None)
            continue
        if isinstance(value, Secret):
            secret_keys.append(full)
            value = value.value
        merged[full] = value
    region = str(merged.get("aws:region", DEFAULT_REGION))
    wire = {k: _wire(v) for k, v in merged.items()}
    shown = {k: ("[secret]" if k in secret_keys else v) for k, v in merged.items()}

    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    mocks = RealisticMocks(stack, region)
    monitor = _pulumi_internals.recording_monitor(mocks)
    handler = _ListHandler()
    logger = logging.getLogger(f"devtools.harness.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)

    # A fresh runtime each time: no root stack, no outputs a failed evaluation left behind (they would be
    # awaited, and re-raise, in this one), then this stack's config and the mocks.
    pulumi.runtime.reset_options(project=project, stack=stack, root_directory=str(project_dir), preview=False)
    pulumi.runtime.set_all_config(wire, secret_keys)
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        logger=logger,
        monitor=monitor,
    )
    outputs: dict[str, Any] = {}

    def program() -> Any:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")
        exports = _pulumi_internals.stack_exports()
        names = list(exports)
        # `pulumi.runtime.test` awaits the Output returned here, i.e. every exported value.
        return pulumi.Output.all(*(exports[name] for name in names)).apply(
            lambda values: outputs.update(zip(names, values, strict=True))
        )

    started = time.perf_counter()
    with _on_path(project_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            pulumi.runtime.test(program)()
        except Exception as exc:
            raise StackEvaluationError(f"stack {stack!r}: {exc}") from exc
    seconds = time.perf_counter() - started

    # The SDK logs a warning when a deprecated class is instantiated or a deprecated argument is set
    # (its Python DeprecationWarnings also fire at import time for classes never used, so they are no signal).
    warned = list(handler.messages)
    resources = tuple(_record(registration) for registration in monitor.registrations())
    for r in resources:
        warned += deprecated_arguments(r.type, set(r.inputs)) if r.custom else []
    return DeclaredStack(
        stack=stack,
        config=shown,
        resources=resources,
        outputs=outputs,
        warnings=tuple(warned),
        seconds=seconds,
    )


def deprecated_arguments(type_token: str, input_names: set[str]) -> list[str]:
    """The given inputs that the resource's SDK class marks deprecated.

    The SDK logs a deprecation for a deprecated class and for deprecated fields of nested `*Args` objects,
    but not for a deprecated top-level keyword argument: that needs the `*Args` class's property markers.
    """
    package, module_path, class_name = type_token.split(":")
    sdk = {"aws": "pulumi_aws", "random": "pulumi_random"}.get(package)
    if sdk is None:
        return []
    module = module_path.split("/")[0]
    module = module + "_" if keyword.iskeyword(module) else module
    try:
        mod = importlib.import_module(sdk if module == "index" else f"{sdk}.{module}")
    except ImportError:
        return []
    args_class = getattr(mod, f"{class_name}Args", None)
    return [
        f"{type_token}: argument {wire} is deprecated"
        for wire in _pulumi_internals.deprecated_wire_names(args_class)
        if wire in input_names
    ]


def _record(registration: _pulumi_internals.Registration) -> DeclaredResource:
    r = registration
    return DeclaredResource(
        type=r.type,
        name=r.name,
        urn=r.urn,
        parent=r.parent,
        custom=r.custom,
        inputs=r.inputs,
        outputs=r.state,
        id=r.id,
        dependencies=r.dependencies,
        depends_on=tuple(u for u in r.dependencies if u not in r.property_dependencies),
        protect=r.protect,
        retain_on_delete=r.retain_on_delete,
        aliases=r.aliases,
        import_id=r.import_id,
    )


def make_stub_layer(directory: Path) -> Path:
    """A tiny valid layer zip (python/ at its root), for runs that must not build the real layer."""
    path = directory / "stub-layer.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("python/stub_layer_marker.py", (1980, 1, 1, 0, 0, 0)), "")
    return path
