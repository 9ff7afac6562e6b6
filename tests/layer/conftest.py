"""Shared pieces of the layer tests: a fake pip for the offline tests, real builds for the network ones.

The real builds are the slow part (pip, then compileall, then a 30-50 MB zip), so each distinct layer is
built once per session, in the background from the moment collection shows that a selected test needs
one: worker processes at a lower priority, a few at a time, while the other tiers' tests run. Every test
that needs a layer waits only for its own. pip's own download cache (~/.cache/pip) is shared on purpose;
each build gets its own cache directory, so no test can pass by hitting another test's cache entry.

Under pytest-xdist (``make test`` runs one worker per core) the builds still happen once: worker ``gw0``
starts them in the directory the controller made for the run (``tests/parallel.py``) and marks each one
done or failed there; a worker that runs a layer test waits for that mark.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from pathlib import Path

import parallel
import pytest

from layer.build import RUNNING_RUNTIME, LayerSpec
from tests.layer.support import HOST_ARCHITECTURE, REAL_SPECS, build_in_background

WAIT_SECONDS = 900  # builds at a low priority on a busy machine: minutes, never this long


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
    directory under ``root``; ``owned``: the directory is this process's to remove."""

    def __init__(self, root: Path, owned: bool) -> None:
        self.root, self.owned = root, owned
        self.pool = ProcessPoolExecutor(
            max_workers=min(len(REAL_SPECS), os.cpu_count() or 2),
            mp_context=multiprocessing.get_context("spawn"),
        )
        self.futures: dict[str, Future[Path]] = {}
        for name, spec in REAL_SPECS.items():
            future = self.pool.submit(build_in_background, spec, self.root / name)
            future.add_done_callback(partial(_mark, self.root, name))
            self.futures[name] = future

    def close(self) -> None:
        # Builds other workers may still wait for are finished, not cancelled.
        self.pool.shutdown(wait=True, cancel_futures=self.owned)
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)


def _mark(root: Path, name: str, future: Future[Path]) -> None:
    """Tell the other xdist workers how build ``name`` ended (written whole, then renamed)."""
    error = future.exception() if not future.cancelled() else RuntimeError("cancelled")
    mark = root / (f"{name}.failed" if error else f"{name}.done")
    partial_mark = mark.with_suffix(".tmp")
    partial_mark.write_text(repr(error) if error else str(future.result()))
    partial_mark.rename(mark)


def _wait_for(root: Path, name: str) -> Path:
    """The zip another xdist worker built, once its mark is there."""
    deadline = time.monotonic() + WAIT_SECONDS
    done, failed = root / f"{name}.done", root / f"{name}.failed"
    while time.monotonic() < deadline:
        if done.exists():
            return Path(done.read_text())
        if failed.exists():
            raise RuntimeError(f"layer build {name} failed in worker gw0: {failed.read_text()}")
        time.sleep(0.5)
    raise TimeoutError(f"layer build {name} not done in {WAIT_SECONDS} s (built by worker gw0 under {root})")


_BUILDS = pytest.StashKey[_RealBuilds]()


def _builds(config: pytest.Config) -> _RealBuilds:
    if _BUILDS not in config.stash:
        shared = parallel.shared_directory(config)
        root = shared / "real-layers" if shared else Path(tempfile.mkdtemp(prefix="real-layers-"))
        root.mkdir(exist_ok=True)
        config.stash[_BUILDS] = _RealBuilds(root, owned=shared is None)
    return config.stash[_BUILDS]


def pytest_collection_finish(session: pytest.Session) -> None:
    # pip mostly waits on the network and its subprocesses run beside the interpreter, so builds started
    # now are done (or nearly) by the time the layer tests run. Every xdist worker collects every test,
    # so each one decides alike; only the first builds. A run that only collects (--collect-only) runs no
    # test, so it builds nothing (it would otherwise wait for every build at its end).
    if session.config.option.collectonly:
        return
    if parallel.is_first_worker(session.config) and any(
        "real_layers" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        _builds(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    builds = session.config.stash.get(_BUILDS, None)
    if builds is not None:
        builds.close()


@pytest.fixture(scope="session")
def real_layers(pytestconfig: pytest.Config) -> Callable[[str], Path]:
    """real_layers(name) -> the zip of REAL_SPECS[name], each built in its own cache directory."""
    if not parallel.is_first_worker(pytestconfig):
        root = parallel.shared_directory(pytestconfig)
        assert root is not None
        return lambda name: _wait_for(root / "real-layers", name)
    futures = _builds(pytestconfig).futures
    return lambda name: futures[name].result()


@pytest.fixture(scope="session")
def real_cache_dir(real_layers: Callable[[str], Path]) -> Callable[[str], Path]:
    """The cache directory a real build used."""
    return lambda name: real_layers(name).parent
