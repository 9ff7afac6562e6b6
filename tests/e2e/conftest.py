"""Fixtures of the end-to-end tier: one real layer build, one declared stack, one run per scenario.

The stack is evaluated once through the shared ``evaluate`` fixture (tests/conftest.py owns the mocked
evaluation), with the database URL as a secret override exactly as ``python -m devtools run`` passes it;
each scenario then points the declared secret at its own fresh database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from parallel import one_worker_at_a_time
from postgres import NewDatabase, required_in_ci

from devtools.harness import Secret
from devtools.localrun.command import WORK_ROOT, build_local_layer, stack_runtime
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.lambda_runtime import Interpreter, find_interpreter
from devtools.localrun.pipeline import LocalPipeline
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec

PLACEHOLDER_URL = "sqlite:////placeholder/replaced-per-run.sqlite"

Run = Callable[..., RunResult]


@pytest.fixture(scope="session")
def interpreter() -> Interpreter:
    runtime, _ = stack_runtime("dev")
    found = find_interpreter(runtime)
    if not found.matches_runtime and required_in_ci():
        pytest.fail(f"CI/REQUIRE_ALL_RUNTIMES set but no {runtime} interpreter was found (pyenv or PATH)")
    return found


@pytest.fixture(scope="session")
def local_layer(interpreter: Interpreter, pytestconfig: pytest.Config) -> Path:
    """The real layer for the interpreter that plays Lambda (cached in .build/layers once built)."""
    with one_worker_at_a_time(pytestconfig, "local-layer"):
        return build_local_layer(interpreter.runtime, lambda _: None)


@pytest.fixture(scope="session")
def dev_spec(evaluate: Callable[..., object], local_layer: Path) -> PipelineSpec:
    declared = evaluate(
        "dev", {"database": Secret({"url": PLACEHOLDER_URL}), "layer": {"archive": str(local_layer)}}
    )
    return pipeline_spec(declared)


def with_database(spec: PipelineSpec, url: str) -> PipelineSpec:
    """The spec whose declared database secret holds ``url`` (the program declared the secret, we fill it)."""
    assert len(spec.secrets) == 1, f"expected the one database secret, got {spec.secrets}"
    return replace(spec, secrets=(replace(spec.secrets[0], value=url),))


@pytest.fixture(scope="session")
def runtime_cache() -> Path:
    """The local run's own cache (runtime boto3, unpacked layers): content-keyed and written atomically."""
    return WORK_ROOT / "cache"


@pytest.fixture(scope="session")
def run_pipeline(
    interpreter: Interpreter, local_layer: Path, runtime_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """run_pipeline(spec, files, database_url=None, duplicate_deliveries=False, migrate_database=True)."""

    def run(
        spec: PipelineSpec,
        files: list[Path],
        database_url: str | None = None,
        duplicate_deliveries: bool = False,
        migrate_database: bool = True,
    ) -> RunResult:
        work = tmp_path_factory.mktemp("local-run")
        url = database_url or f"sqlite:///{work / 'pipeline.sqlite'}"
        return LocalPipeline(
            with_database(spec, url),
            layer_archive=local_layer,
            interpreter=interpreter,
            work_dir=work / spec.stack,
            database_url=url,
            cache_dir=runtime_cache,
            duplicate_deliveries=duplicate_deliveries,
            migrate_database=migrate_database,
        ).run(files)

    return run


@pytest.fixture
def postgres_database(new_postgres_database: NewDatabase) -> Iterator[str]:
    """A fresh database on the throwaway server (tests/postgres.py), dropped afterwards."""
    with new_postgres_database("e2e") as url:
        yield url
