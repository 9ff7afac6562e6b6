"""``python -m devtools run``: evaluate the stack, build what it needs, run it on moto, summarise.

The dev stack declares no database; the local run adds one through the program's own config: it passes
``database.url`` as a *secret* override (as ``pulumi config set --secret --path database.url`` would), so
the program itself declares the secret, grants the analytics role ``GetSecretValue`` on it and puts
``DATABASE_SECRET_ARN`` in the analytics environment. The URL is a SQLite file under ``.local-run/`` unless
``--database-url`` names another SQLAlchemy URL.

``--replay STAGE`` demonstrates ``python -m devtools replay`` (devtools/ops/replay/) on the same moto:
after the chain is idle, the stack is evaluated again with ``--replay-config`` changes (``pulumi config
set`` then ``pulumi up``: only the stage's environment changes), the stage's warm containers are
replaced by ones with the new environment (a configuration update starts new execution environments),
and the stage's existing objects are replayed, with the replay's own listing, sequencers and skip rules,
into the emulator's hand-off (``InvocationType=Event``).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any, TypeVar

from devtools.localrun.errors import LocalRunError
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.lambda_runtime import Interpreter, find_interpreter
from devtools.localrun.pipeline import LocalPipeline
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec
from devtools.localrun.uploads import collect_uploads
from handlers.contract import Env

P = TypeVar("P", bound=LocalPipeline)
PROJECT_DIR = Path(__file__).resolve().parents[2]
WORK_ROOT = PROJECT_DIR / ".local-run"
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def host_architecture() -> str:
    return _MACHINES.get(platform.machine().lower(), platform.machine())


def default_database_url(stack: str, work_root: Path = WORK_ROOT) -> tuple[str, Path]:
    path = (work_root / stack / "pipeline.sqlite").resolve()
    return f"sqlite:///{path}", path


def stack_runtime(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[str, str]:
    """The stack's (runtime, architecture) from its config file, with the program's defaults."""
    from devtools.harness import load_stack_config

    config = load_stack_config(stack, project_dir)
    return (
        str(config.get("data-pipeline:runtime", "python3.13")),
        str(config.get("data-pipeline:architecture", "x86_64")),
    )


def build_local_layer(runtime: str, echo: Callable[[str], None]) -> Path:
    """The real layer, built (or taken from the cache) for this machine's interpreter and architecture."""
    from layer.build import LayerSpec, build_layer

    arch = host_architecture()
    echo(f"layer: for {runtime}/{arch}, built unless cached under .build/layers")
    return build_layer(LayerSpec(runtime=runtime, architecture=arch, include_boto3=False))


def evaluate_for_local_run(
    stack: str, database_url: str, layer_archive: Path, overrides: Mapping[str, Any] | None = None
) -> Any:
    """The stack as the program declares it with the local database and the local layer."""
    from devtools.harness import Secret, evaluate_stack

    return evaluate_stack(
        stack,
        {
            **(overrides or {}),
            "database": Secret({"url": database_url}),
            "layer": {"archive": str(layer_archive)},
        },
    )


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs, before it starts."""

    spec: PipelineSpec
    interpreter: Interpreter
    layer_archive: Path
    database_url: str
    work_dir: Path

    def pipeline(self, kind: type[P] = LocalPipeline, **options: Any) -> P:  # type: ignore[assignment]
        """A ``kind`` (LocalPipeline or a subclass) of this run; ``options`` are its other keywords."""
        return kind(
            self.spec,
            layer_archive=self.layer_archive,
            interpreter=self.interpreter,
            work_dir=self.work_dir,
            database_url=self.database_url,
            **options,
        )


def prepare(
    stack: str,
    *,
    database_url: str | None = None,
    layer_archive: Path | None = None,
    work_root: Path = WORK_ROOT,
    echo: Callable[[str], None] = lambda _: None,
) -> Prepared:
    runtime, arch = stack_runtime(stack)
    interpreter = find_interpreter(runtime)
    if interpreter.matches_runtime:
        echo(f"interpreter: {interpreter.path} plays the stack's {runtime}")
    else:
        echo(
            f"interpreter: {runtime} not found on this machine; {interpreter.path} ({interpreter.runtime}) "
            f"stands in, with a layer built for {interpreter.runtime}"
        )
    if arch != host_architecture():
        echo(f"architecture: the stack declares {arch}; this machine runs {host_architecture()} binaries")
    layer = layer_archive or build_local_layer(interpreter.runtime, echo)
    if database_url is None:
        database_url, path = default_database_url(stack, work_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # each run starts from empty buckets; so does its own database
        echo(f"database: SQLite file {path}")
    declared = evaluate_for_local_run(stack, database_url, layer)
    spec = pipeline_spec(declared)
    return Prepared(spec, interpreter, layer, database_url, work_root / stack)


@dataclass(frozen=True)
class ReplayStep:
    """After the run: change the stage's environment (``environment``, the changed stack's), replay it."""

    stage: str  # ingestion | processing | analytics
    environment: Mapping[str, str] = field(default_factory=dict)  # the stage's new declared environment
    quarantined: bool = False  # ingestion: only raw versions with quarantine entries


@dataclass(frozen=True)
class ReplayOutcome:
    first: RunResult  # the run before the change
    summary: Any  # devtools.ops.replay.Summary
    second: RunResult  # everything after the replay


def replay_target(deployment: Any, stage_name: str) -> Any:
    """The stage's source bucket and trigger from the declared notifications, as a ReplayTarget."""
    from devtools.ops.replay import ReplayTarget

    stage = deployment.spec.stage(stage_name)
    for bucket in deployment.spec.buckets:
        found = [n for n in bucket.notifications if n.function_arn == stage.function_arn]
        if found:
            environment = {k: deployment.map(str(v)) for k, v in stage.environment.items()}
            return ReplayTarget(
                stage=stage_name,
                function_name=stage.function_name,
                bucket=bucket.name,
                prefix=found[0].prefix,
                suffixes=tuple(n.suffix for n in found),
                dest_bucket=environment.get(Env.DEST_BUCKET, ""),
                environment=environment,
                region=deployment.spec.region,
            )
    raise LocalRunError(f"no bucket notifies the {stage_name} stage")


class ReplayingPipeline(LocalPipeline):
    """A local run, then a replay of one stage (optionally after changing its environment)."""

    def run_and_replay(self, files: Sequence[Path], step: ReplayStep, rate: float = 50.0) -> ReplayOutcome:
        from devtools.localrun.lambda_runtime import ContainerPool
        from devtools.ops.replay import InvokeOutcome, Options, replay

        def then(
            aws: Any, deployment: Any, dispatcher: Any, result: Callable[[], RunResult]
        ) -> ReplayOutcome:
            first = result()
            stage = self.spec.stage(step.stage)
            if step.environment:
                pool = deployment.pools[step.stage]
                changed = {k: deployment.map(str(v)) for k, v in step.environment.items()}
                image = dc_replace(pool.image, environment={**pool.image.environment, **changed})
                deployment.pools[step.stage] = ContainerPool(image)
                pool.close()
                deployment.spec = dc_replace(
                    deployment.spec,
                    stages=tuple(
                        dc_replace(s, environment=dict(step.environment)) if s.stage == step.stage else s
                        for s in deployment.spec.stages
                    ),
                )
            target = replay_target(deployment, step.stage)
            arn = deployment.function_arn(stage)

            def invoke(event: Mapping[str, Any]) -> Any:
                dispatcher.on_s3_event(arn, json.loads(json.dumps(event)))
                return InvokeOutcome(True)

            self.echo(f"replay: {step.stage} from s3://{target.bucket}/{target.prefix}")
            summary = replay(
                aws.client("s3"),
                target,
                invoke,
                Options(rate=rate, concurrency=1, quarantined=step.quarantined),
            )
            self.echo(f"replay: {summary.text(False)}")
            dispatcher.wait_idle(self.idle_timeout)
            return ReplayOutcome(first, summary, result())

        return self.run_then(files, then)


def config_with(stack: str, changes: Sequence[str], project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """Top-level config overrides that apply ``path=value`` changes (``aggregation.window=5m``; a list
    value with commas) to Pulumi.<stack>.yaml's values, as ``pulumi config set --path`` would."""
    import copy

    from devtools.harness import load_stack_config

    current = load_stack_config(stack, project_dir)
    overrides: dict[str, Any] = {}
    for change in changes:
        path, sep, value = change.partition("=")
        if not sep or not path:
            raise LocalRunError(f"--replay-config wants PATH=VALUE, got {change!r}")
        top, *rest = path.split(".")
        full = f"data-pipeline:{top}"
        node = overrides.setdefault(top, copy.deepcopy(current.get(full, {})) if rest else None)
        parsed: Any = value.split(",") if "," in value else value
        if not rest:
            overrides[top] = parsed
            continue
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = (
            [parsed] if rest[-1] in ("dimensions", "metrics") and isinstance(parsed, str) else parsed
        )
    return overrides


def run(
    files: Sequence[Path],
    *,
    stack: str = "dev",
    database_url: str | None = None,
    duplicate_deliveries: bool = False,
    cpu_scaling: bool = True,
    echo: Callable[[str], None] = lambda _: None,
) -> RunResult:
    collect_uploads(files)  # a wrong path is reported before any set-up work
    prepared = prepare(stack, database_url=database_url, echo=echo)
    return prepared.pipeline(
        duplicate_deliveries=duplicate_deliveries, cpu_scaling=cpu_scaling, echo=echo
    ).run(files)


def main(args: Any) -> int:
    from devtools.localrun.report import render_text

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if getattr(args, "replay", None):
        return _main_replay(args, echo)
    result = run(
        [Path(f) for f in args.files],
        stack=args.stack,
        database_url=args.database_url,
        duplicate_deliveries=args.duplicate_deliveries,
        cpu_scaling=not args.no_cpu_scaling,
        echo=echo,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str, ensure_ascii=False))
    else:
        print(render_text(result))
    return 0 if result.ok else 1


def _main_replay(args: Any, echo: Callable[[str], None]) -> int:
    """``devtools run FILES --replay STAGE [--replay-config PATH=VALUE ...]``."""
    from devtools.localrun.report import render_text

    files = [Path(f) for f in args.files]
    collect_uploads(files)
    prepared = prepare(args.stack, database_url=args.database_url, echo=echo)
    environment: dict[str, str] = {}
    if args.replay_config:
        overrides = config_with(args.stack, args.replay_config)
        changed = pipeline_spec(
            evaluate_for_local_run(args.stack, prepared.database_url, prepared.layer_archive, overrides)
        )
        environment = dict(changed.stage(args.replay).environment)
        echo(f"replay: {args.replay} after {', '.join(args.replay_config)}")
    outcome = prepared.pipeline(
        ReplayingPipeline,
        duplicate_deliveries=args.duplicate_deliveries,
        cpu_scaling=not args.no_cpu_scaling,
        echo=echo,
    ).run_and_replay(files, ReplayStep(args.replay, environment, args.replay_quarantined))
    if args.json:
        document = {
            "before_replay": outcome.first.to_json(),
            "replay": outcome.summary.__dict__,
            "after_replay": outcome.second.to_json(),
        }
        print(json.dumps(document, indent=2, default=str, ensure_ascii=False))
    else:
        print(render_text(outcome.second))
        print(f"replay of {args.replay}: {outcome.summary.text(False)}")
    return 0 if outcome.second.ok and not outcome.summary.failed else 1
