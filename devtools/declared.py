"""Evaluate the real Pulumi program offline and record what it declares.

`evaluate_stack("dev")` runs `__main__.py` under `pulumi.runtime.set_mocks` with `Pulumi.dev.yaml` (plus
overrides, which win) and returns a `DeclaredStack`: every registered resource with its type, name, URN,
parent, inputs, mock outputs and options (`depends_on`, `protect`, `retain_on_delete`, read from the
RegisterResource request, since `MockResourceArgs` lacks them), the stack outputs, and every warning the
program or the provider SDK emitted (deprecations included). It may be called many times in one process.

    python -m devtools.declared --stack dev --timing --stub-layer
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import keyword
import logging
import runpy
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
NAMESPACE = "data-pipeline"
MOCK_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "eu-west-1"

# Outputs of the program come back through the mocks: realistic values make Output.format/json_dumps render
# real-looking ARNs, so the rendered policies can be checked (and analysed by parliament) as deployed.
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
        return {
            role: self.get(role, "aws:s3/bucket:Bucket").outputs["bucket"]
            for role in ("raw", "processed", "analytics")
        }

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


# --- mocks ------------------------------------------------------------------------------------------


def _hex(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _computed(
    typ: str, name: str, inputs: dict[str, Any], stack: str, region: str
) -> tuple[str, dict[str, Any]]:
    """The ID and computed outputs AWS (or random) would return for a created resource."""
    acct = MOCK_ACCOUNT_ID
    # Pulumi auto-names resources without an explicit name: logical name + 7 random characters.
    auto = f"{name}-{_hex(stack, typ, name, length=7)}"
    state: dict[str, Any] = {}
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or auto
        state = {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": region}
        return bucket, state
    if typ == "aws:sqs/queue:Queue":
        qname = inputs.get("name") or auto
        url = f"https://sqs.{region}.amazonaws.com/{acct}/{qname}"
        return url, {"name": qname, "arn": f"arn:aws:sqs:{region}:{acct}:{qname}", "url": url}
    if typ == "aws:iam/role:Role":
        rname = inputs.get("name") or auto
        return rname, {
            "name": rname,
            "arn": f"arn:aws:iam::{acct}:role/{rname}",
            "uniqueId": "AROA" + _hex(rname, length=17).upper(),
        }
    if typ == "aws:iam/rolePolicy:RolePolicy":
        pname = inputs.get("name") or auto
        return f"{inputs.get('role')}:{pname}", {"name": pname}
    if typ == _TYPE_FUNCTION:
        fname = inputs.get("name") or auto
        arn = f"arn:aws:lambda:{region}:{acct}:function:{fname}"
        return fname, {
            "name": fname,
            "arn": arn,
            "qualifiedArn": f"{arn}:$LATEST",
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
            "version": "$LATEST",
        }
    if typ == "aws:lambda/layerVersion:LayerVersion":
        layer_arn = f"arn:aws:lambda:{region}:{acct}:layer:{inputs.get('layerName')}"
        return f"{layer_arn}:1", {"arn": f"{layer_arn}:1", "layerArn": layer_arn, "version": "1"}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        gname = inputs.get("name") or auto
        return gname, {"name": gname, "arn": f"arn:aws:logs:{region}:{acct}:log-group:{gname}"}
    if typ == "aws:secretsmanager/secret:Secret":
        sname = inputs.get("name") or auto
        arn = f"arn:aws:secretsmanager:{region}:{acct}:secret:{sname}-{_hex(sname, length=6)}"
        return arn, {"name": sname, "arn": arn}
    if typ == "random:index/randomId:RandomId":
        hex_ = _hex(stack, name, length=2 * int(inputs.get("byteLength", 4)))
        raw = bytes.fromhex(hex_)
        import base64

        b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return b64, {
            "hex": hex_,
            "b64Url": b64,
            "b64Std": base64.b64encode(raw).decode(),
            "dec": str(int(hex_, 16)),
        }
    if typ == "aws:sns/topic:Topic":
        tname = inputs.get("name") or auto
        return f"arn:aws:sns:{region}:{acct}:{tname}", {
            "name": tname,
            "arn": f"arn:aws:sns:{region}:{acct}:{tname}",
        }
    if typ == "aws:kms/key:Key":
        h = _hex(stack, name, length=32)
        key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{acct}:key/{key_id}"}
    if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        aname = inputs.get("name") or auto
        return aname, {"name": aname, "arn": f"arn:aws:cloudwatch:{region}:{acct}:alarm:{aname}"}
    if typ == "aws:cloudwatch/dashboard:Dashboard":
        dname = inputs.get("dashboardName") or auto
        return dname, {"dashboardArn": f"arn:aws:cloudwatch::{acct}:dashboard/{dname}"}
    if typ == "aws:lambda/permission:Permission":
        return inputs.get("statementId") or auto, {"statementId": inputs.get("statementId") or auto}
    return f"{name}-id", state


class _Mocks:
    """pulumi.runtime.Mocks: realistic computed outputs, caller identity and region."""

    def __init__(self, stack: str, region: str) -> None:
        self.stack = stack
        self.region = region

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        id_, computed = _computed(args.typ, args.name, inputs, self.stack, self.region)
        return id_, {**inputs, **computed}

    def call(self, args: Any) -> tuple[dict[str, Any], list[Any]]:
        function = args.token
        if function == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/preview",
                "userId": "AIDAPREVIEW",
                "id": MOCK_ACCOUNT_ID,
            }, []
        if function == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if function == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        raise NotImplementedError(f"the mocks do not implement the call {args.token}")


def _make_monitor(mocks: _Mocks) -> Any:
    from pulumi.runtime import mocks as pulumi_mocks

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        """Keeps each RegisterResource request's options, which MockResourceArgs does not carry."""

        def __init__(self) -> None:
            super().__init__(mocks)  # type: ignore[arg-type]
            self.lock = threading.Lock()
            self.requests: list[tuple[str, Any]] = []

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack":
                return response
            with self.lock:
                self.requests.append((response.urn, request))
            return response

    return RecordingMonitor()


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
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

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
    mocks = _Mocks(stack, region)
    monitor = _make_monitor(mocks)
    handler = _ListHandler()
    logger = logging.getLogger(f"devtools.declared.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)

    pulumi.runtime.set_all_config(wire, secret_keys)
    pulumi_settings.ROOT.set(None)
    # Tasks a failed evaluation left behind would otherwise be awaited (and re-raise) in this one.
    pulumi_settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, logger=logger, monitor=monitor
    )  # type: ignore[arg-type]
    root = pulumi_settings.get_root_resource()

    started = time.perf_counter()
    with _on_path(project_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            _sync_await(
                run_pulumi_func(lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__"))
            )
            outputs = {
                name: _sync_await(pulumi.Output.from_input(value).future())
                for name, value in root.outputs.items()  # type: ignore[union-attr]
            }
        except Exception as exc:
            raise StackEvaluationError(f"stack {stack!r}: {exc}") from exc
    seconds = time.perf_counter() - started

    # The SDK logs a warning when a deprecated class is instantiated or a deprecated argument is set
    # (its Python DeprecationWarnings also fire at import time for classes never used, so they are no signal).
    warned = list(handler.messages)
    resources = tuple(_record(urn, request, monitor) for urn, request in monitor.requests)
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
    found = []
    for attr in vars(args_class or object).values():
        getter = attr.fget if isinstance(attr, property) else None
        if getter is not None and "_pulumi_deprecated_callable" in getter.__dict__:
            wire = getter.__dict__.get("_pulumi_name")
            if wire in input_names:
                found.append(f"{type_token}: argument {wire} is deprecated")
    return found


def _record(urn: str, request: Any, monitor: Any) -> DeclaredResource:
    from pulumi.runtime import rpc

    registration = monitor.resources.get(urn)
    inputs = rpc.deserialize_properties(request.object)
    property_deps = {u for deps in request.propertyDependencies.values() for u in deps.urns}
    dependencies = tuple(request.dependencies)
    return DeclaredResource(
        type=request.type,
        name=request.name,
        urn=urn,
        parent=request.parent or None,
        custom=bool(request.custom),
        inputs=inputs,
        outputs=dict(registration.state) if registration is not None else {},
        id=registration.id if registration is not None else None,
        dependencies=dependencies,
        depends_on=tuple(u for u in dependencies if u not in property_deps),
        protect=bool(request.protect),
        retain_on_delete=bool(request.retainOnDelete),
    )


def make_stub_layer(directory: Path) -> Path:
    """A tiny valid layer zip (python/ at its root), for runs that must not build the real layer."""
    path = directory / "stub-layer.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("python/stub_layer_marker.py", (1980, 1, 1, 0, 0, 0)), "")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.declared", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument(
        "--timing", action="store_true", help="evaluate several times and print the wall times"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--stub-layer", action="store_true", help="use a tiny layer zip instead of building it"
    )
    parser.add_argument("--json", action="store_true", help="print the resources and outputs as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"layer": {"archive": str(make_stub_layer(Path(tmp)))}} if args.stub_layer else {}
        if args.timing:
            t0 = time.perf_counter()
            import pulumi_aws  # noqa: F401  (import cost reported separately)
            import pulumi_random  # noqa: F401

            print(f"import pulumi, pulumi_aws, pulumi_random: {time.perf_counter() - t0:.2f} s")
            times = []
            for _ in range(args.runs):
                times.append(evaluate_stack(args.stack, overrides).seconds)
            first, rest = times[0], sorted(times[1:])
            print(f"stack {args.stack}: first evaluation {first:.2f} s (includes importing the components)")
            if rest:
                print(
                    f"stack {args.stack}: next {len(rest)} evaluations min {rest[0]:.2f} s, "
                    f"median {rest[len(rest) // 2]:.2f} s, max {rest[-1]:.2f} s"
                )
            return 0
        declared = evaluate_stack(args.stack, overrides)
        if args.json:
            doc = {
                "resources": [{"type": r.type, "name": r.name, "urn": r.urn} for r in declared.resources],
                "outputs": declared.outputs,
            }
            print(json.dumps(doc, indent=2, default=str))
        else:
            for r in declared.resources:
                print(f"{r.type:55} {r.name}")
            print(json.dumps(declared.outputs, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
