"""``python -m devtools run``: evaluate the stack, build what it needs, run it on moto, summarise.

The dev stack declares no database; the local run adds one through the program's own config: it passes
``database.url`` as a *secret* override (as ``pulumi config set --secret --path database.url`` would), so
the program itself declares the secret, grants the analytics role ``GetSecretValue`` on it and puts
``DATABASE_SECRET_ARN`` in the analytics environment. The URL is a SQLite file under ``.local-run/`` unless
``--database-url`` names another SQLAlchemy URL.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.localrun.graph import pipeline_spec
from devtools.localrun.lambda_runtime import Interpreter, find_interpreter
from devtools.localrun.pipeline import LocalPipeline
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec
from devtools.localrun.uploads import collect_uploads

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


def evaluate_for_local_run(stack: str, database_url: str, layer_archive: Path) -> Any:
    """The stack as the program declares it with the local database and the local layer."""
    from devtools.harness import Secret, evaluate_stack

    return evaluate_stack(
        stack,
        {"database": Secret({"url": database_url}), "layer": {"archive": str(layer_archive)}},
    )


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs, before it starts."""

    spec: PipelineSpec
    interpreter: Interpreter
    layer_archive: Path
    database_url: str
    work_dir: Path


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


def run(
    files: Sequence[Path],
    *,
    stack: str = "dev",
    database_url: str | None = None,
    duplicate_deliveries: bool = False,
    echo: Callable[[str], None] = lambda _: None,
) -> RunResult:
    collect_uploads(files)  # a wrong path is reported before any set-up work
    prepared = prepare(stack, database_url=database_url, echo=echo)
    return LocalPipeline(
        prepared.spec,
        layer_archive=prepared.layer_archive,
        interpreter=prepared.interpreter,
        work_dir=prepared.work_dir,
        database_url=prepared.database_url,
        duplicate_deliveries=duplicate_deliveries,
        echo=echo,
    ).run(files)


def main(args: Any) -> int:
    from devtools.localrun.report import render_text

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run(
        [Path(f) for f in args.files],
        stack=args.stack,
        database_url=args.database_url,
        duplicate_deliveries=args.duplicate_deliveries,
        echo=echo,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str, ensure_ascii=False))
    else:
        print(render_text(result))
    return 0 if result.ok else 1
