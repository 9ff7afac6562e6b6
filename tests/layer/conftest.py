"""Shared pieces of the layer tests: a fake pip for the offline tests, real builds for the network ones.

The real builds are the slow part (pip, then compileall, then a 30-50 MB zip), so each distinct layer
is built once per session, all of them concurrently (pip mostly waits on the network), and every test
that needs one waits only for its own. pip's own download cache (~/.cache/pip) is shared on purpose;
each build gets its own cache directory, so no test can pass by hitting another test's cache entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from layer.build import RUNNING_RUNTIME, LayerSpec, build_layer
from tests.layer.support import HOST_ARCHITECTURE, REAL_SPECS


@pytest.fixture
def demo_requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# the fake pip's one package\ndemo==1.0\n")
    return path


@pytest.fixture
def demo_spec(demo_requirements: Path) -> LayerSpec:
    """A spec for the running interpreter, so compileall runs for real and fast."""
    return LayerSpec(runtime=RUNNING_RUNTIME, architecture=HOST_ARCHITECTURE, requirements=demo_requirements)


@pytest.fixture(scope="session")
def real_layers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """real_layers(name) -> the zip of REAL_SPECS[name], each built in its own cache directory."""
    root = tmp_path_factory.mktemp("real-layers")
    quiet: Callable[[str], None] = lambda _message: None  # noqa: E731
    with ThreadPoolExecutor(max_workers=len(REAL_SPECS)) as pool:
        futures: dict[str, Future[Path]] = {
            name: pool.submit(build_layer, spec, cache_dir=root / name, progress=quiet)
            for name, spec in REAL_SPECS.items()
        }

        def get(name: str) -> Path:
            return futures[name].result()

        yield get


@pytest.fixture(scope="session")
def real_cache_dir(real_layers: Callable[[str], Path]) -> Callable[[str], Path]:
    """The cache directory a real build used."""
    return lambda name: real_layers(name).parent
