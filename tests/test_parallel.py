"""The xdist plumbing of the suite itself (tests/parallel.py): what a worker and a plain run see."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import parallel


def worker(shared: Path, workerid: str) -> Any:
    return SimpleNamespace(workerinput={"workerid": workerid, parallel.SHARED_KEY: str(shared)})


def test_a_plain_run_is_the_first_worker_and_shares_no_directory() -> None:
    plain = SimpleNamespace()
    assert parallel.is_first_worker(plain)  # type: ignore[arg-type]
    assert parallel.shared_directory(plain) is None  # type: ignore[arg-type]


def test_only_gw0_is_the_first_worker_and_every_worker_sees_the_controllers_directory(tmp_path: Path) -> None:
    first, second = worker(tmp_path, "gw0"), worker(tmp_path, "gw1")
    assert [parallel.is_first_worker(first), parallel.is_first_worker(second)] == [True, False]
    assert parallel.shared_directory(first) == parallel.shared_directory(second) == tmp_path


def test_two_workers_never_hold_the_same_lock_at_once(tmp_path: Path) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def hold(workerid: str) -> None:
        with parallel.one_worker_at_a_time(worker(tmp_path, workerid), "build"):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=hold, args=(f"gw{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert (tmp_path / "build.lock").exists()
