"""Fixtures of the end-to-end tier: one real layer build, one declared stack, one run per scenario.

The stack is evaluated once through the shared ``evaluate`` fixture (tests/conftest.py owns the mocked
evaluation), with the database URL as a secret override exactly as ``python -m devtools run`` passes it;
each scenario then points the declared secret at its own fresh database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from devtools.harness import Secret
from devtools.localrun.command import WORK_ROOT, build_local_layer, stack_runtime
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.lambda_runtime import Interpreter, find_interpreter
from devtools.localrun.pipeline import LocalPipeline
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec

PLACEHOLDER_URL = "sqlite:////placeholder/replaced-per-run.sqlite"

Run = Callable[..., RunResult]


def _required() -> bool:
    """True in CI: either flag makes a missing interpreter or database a failure, as in the other tiers."""
    return any(
        os.environ.get(flag, "").lower() in ("1", "true", "yes") for flag in ("CI", "REQUIRE_ALL_RUNTIMES")
    )


@pytest.fixture(scope="session")
def interpreter() -> Interpreter:
    runtime, _ = stack_runtime("dev")
    found = find_interpreter(runtime)
    if not found.matches_runtime and _required():
        pytest.fail(f"CI/REQUIRE_ALL_RUNTIMES set but no {runtime} interpreter was found (pyenv or PATH)")
    return found


@pytest.fixture(scope="session")
def local_layer(interpreter: Interpreter) -> Path:
    """The real layer for the interpreter that plays Lambda (cached in .build/layers once built)."""
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
def postgres_database() -> Iterator[str]:
    """A fresh database on the throwaway server (TEST_DATABASE_URL), dropped afterwards."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        if _required():
            pytest.fail(
                "CI/REQUIRE_ALL_RUNTIMES set but TEST_DATABASE_URL is not set "
                "(run under scripts/with-throwaway-postgres)"
            )
        pytest.skip("TEST_DATABASE_URL not set: run under scripts/with-throwaway-postgres")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
