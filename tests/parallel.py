"""Running the suite on several cores with pytest-xdist (a pytest plugin; tests/conftest.py loads it).

``make test`` runs ``pytest -n auto --dist loadscope``: one worker per core, each module's (or class's)
tests in one worker, so a module-scoped fixture is still set up once. Work that must happen once per run
whatever the number of workers (the real layer builds, tests/layer/conftest.py) goes through the
directory the controller makes here for the run and removes after it. Without xdist every process is
"the first worker" and has no shared directory.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

SHARED_KEY = "data_pipeline_shared_directory"  # in each worker's workerinput
_SHARED = pytest.StashKey[Path]()


def shared_directory(config: pytest.Config) -> Path | None:
    """The run's directory shared by every xdist worker; None outside xdist."""
    workerinput = getattr(config, "workerinput", None)
    return Path(workerinput[SHARED_KEY]) if workerinput and SHARED_KEY in workerinput else None


def is_first_worker(config: pytest.Config) -> bool:
    """True in worker gw0, and in a run without xdist."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput is None or workerinput.get("workerid") == "gw0"


@contextmanager
def one_worker_at_a_time(config: pytest.Config, name: str) -> Iterator[None]:
    """Held by one xdist worker at a time (a lock named ``name`` in the shared directory), so that work
    the first one caches (a layer build) is not done again by the others meanwhile; free outside xdist."""
    shared = shared_directory(config)
    if shared is None:
        yield
        return
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist's controller, once per worker: hand it the run's shared directory."""
    config = node.config
    if _SHARED not in config.stash:
        config.stash[_SHARED] = Path(tempfile.mkdtemp(prefix="pytest-shared-"))
    node.workerinput[SHARED_KEY] = str(config.stash[_SHARED])


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED, None)
    if shared is not None:
        shutil.rmtree(shared, ignore_errors=True)
