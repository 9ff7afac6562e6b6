"""Shared pieces of the layer tests: a fake pip for the offline tests, real builds for the network ones.

The real builds are the slow part (pip, then compileall, then a 30-50 MB zip), so each distinct layer is
built once per session, in the background from the moment collection shows that a selected test needs
one: worker processes at a lower priority, a few at a time, while the other tiers' tests run. Every test
that needs a layer waits only for its own. pip's own download cache (~/.cache/pip) is shared on purpose;
each build gets its own cache directory, so no test can pass by hitting another test's cache entry.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pytest

from layer.build import RUNNING_RUNTIME, LayerSpec
from tests.layer.support import HOST_ARCHITECTURE, REAL_SPECS, build_in_background


@pytest.fixture
def demo_requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# the fake pip's one package\ndemo==1.0\n")
    return path


@pytest.fixture
def demo_spec(demo_requirements: Path) -> LayerSpec:
    """A spec for the running interpreter, so compileall runs for real and fast."""
    return LayerSpec(runtime=RUNNING_RUNTIME, architecture=HOST_ARCHITECTURE, requirements=demo_requirements)


class _RealBuilds:
    """Every REAL_SPECS build, started at once on a small pool of worker processes, each in its own cache
    directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="real-layers-"))
        self.pool = ProcessPoolExecutor(
            max_workers=min(len(REAL_SPECS), os.cpu_count() or 2),
            mp_context=multiprocessing.get_context("spawn"),
        )
        self.futures: dict[str, Future[Path]] = {
            name: self.pool.submit(build_in_background, spec, self.root / name)
            for name, spec in REAL_SPECS.items()
        }

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


_BUILDS = pytest.StashKey[_RealBuilds]()


def _builds(config: pytest.Config) -> _RealBuilds:
    if _BUILDS not in config.stash:
        config.stash[_BUILDS] = _RealBuilds()
    return config.stash[_BUILDS]


def pytest_collection_finish(session: pytest.Session) -> None:
    # pip mostly waits on the network and its subprocesses run beside the interpreter, so builds started
    # now are done (or nearly) by the time the layer tests run.
    if any("real_layers" in getattr(item, "fixturenames", ()) for item in session.items):
        _builds(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    builds = session.config.stash.get(_BUILDS, None)
    if builds is not None:
        builds.close()


@pytest.fixture(scope="session")
def real_layers(pytestconfig: pytest.Config) -> Callable[[str], Path]:
    """real_layers(name) -> the zip of REAL_SPECS[name], each built in its own cache directory."""
    futures = _builds(pytestconfig).futures
    return lambda name: futures[name].result()


@pytest.fixture(scope="session")
def real_cache_dir(real_layers: Callable[[str], Path]) -> Callable[[str], Path]:
    """The cache directory a real build used."""
    return lambda name: real_layers(name).parent
