"""The load (handlers/loading.py): a document's rows prepared before the transaction, and concurrent
loads of large documents that share every group, on SQLite and a real PostgreSQL.

Expected totals are computed here from the values each document holds.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from handlers import contract, database, loading, rollups
from handlers.errors import LoadRejectedError
from handlers.groups import GroupStats, Stats

REPLACE, APPEND = contract.OVERWRITE_REPLACE, contract.OVERWRITE_APPEND

SETTING = database.Setting("1h", ("type",), ("value",))
STARTS = [f"2024-05-01T{hour:02d}:00:00Z" for hour in range(12)]
GROUPS = [(start, f'{{"type":"t{n}"}}') for start in STARTS for n in range(25)]  # 300 groups


def test_prepare_puts_rows_in_key_order_with_their_digests() -> None:
    groups = {
        ("2024-05-01T13:00:00Z", '{"type":"b"}'): GroupStats(2, {"value": Stats(2, 3, 1, 2)}),
        ("2024-05-01T12:00:00Z", '{"type":"a"}'): GroupStats(
            1, {"w": Stats(1, 5, 5, 5), "v": Stats(1, 1, 1, 1)}
        ),
    }
    document = loading._prepare(groups)
    assert [row[0] for row in document.groups] == ["2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z"]
    assert [(row[0][11:13], row[3]) for row in document.metrics] == [
        ("12", "v"),
        ("12", "w"),
        ("13", "value"),
    ]
    assert document.groups[0][1] == database.dimensions_key('{"type":"a"}')
    assert document.records == 3


@pytest.mark.parametrize("stats", [GroupStats(0, {}), GroupStats(1, {"value": Stats(0, 0, 0, 0)})])
def test_a_group_counting_nothing_is_rejected_before_any_statement(stats: GroupStats) -> None:
    with pytest.raises(LoadRejectedError) as raised:
        loading._prepare({("2024-05-01T12:00:00Z", '{"type":"a"}'): stats})
    assert raised.value.reason == "empty_group"


def _document(seed: int) -> dict[tuple[str, str], GroupStats]:
    """Every one of GROUPS, each with values of its own."""
    out = {}
    for index, group in enumerate(GROUPS):
        low = (seed * 7 + index) % 50 - 25
        out[group] = GroupStats(2, {"value": Stats(2, 2 * low + seed, low, low + seed)})
    return out


# Three raw keys in two versions each: every document has every group, so every load of one wants all
# the rollup rows another holds.
VERSIONS = [(rel, f"0065D{v}", 3 * v + n) for v in (1, 2) for n, rel in enumerate(("x", "y", "z"))]


def _expected(mode: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    chosen = [seed for _rel, sequencer, seed in VERSIONS if mode == APPEND or sequencer == "0065D2"]
    totals: dict[tuple[str, str], list[Any]] = {}
    for seed in chosen:
        for group, stats in _document(seed).items():
            s = stats.metrics["value"]
            entry = totals.setdefault(group, [0, 0, s.min, s.max])
            entry[0] += s.count
            entry[1] += s.sum
            entry[2], entry[3] = min(entry[2], s.min), max(entry[3], s.max)
    return {group: tuple(entry) for group, entry in totals.items()}


@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_concurrent_loads_of_documents_sharing_every_group_neither_deadlock_nor_lose_an_update(
    migrated_database: str, mode: str
) -> None:
    # GIVEN six loaders starting together, half of them going through the versions backwards, and
    # every version delivered twice
    deliveries = [VERSIONS, VERSIONS[::-1]] * 3
    engine = database.connect(migrated_database)
    barrier = threading.Barrier(len(deliveries))

    def worker(order: list[tuple[str, str, int]]) -> list[str]:
        barrier.wait()
        states = []
        for rel, sequencer, seed in order[:4]:
            origin = database.Origin(rel, sequencer)
            key = f"{contract.AGGREGATES_PREFIX}{rel}/{sequencer}{contract.AGGREGATES_SUFFIX}"
            states.append(database.load(engine, key, str(seed), SETTING, origin, _document(seed), mode).state)
        return states

    try:
        with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
            states = [state for result in pool.map(worker, deliveries) for state in result]
        # a second pass, one at a time, brings in the versions no worker's first four held
        for rel, sequencer, seed in VERSIONS:
            origin = database.Origin(rel, sequencer)
            key = f"{contract.AGGREGATES_PREFIX}{rel}/{sequencer}{contract.AGGREGATES_SUFFIX}"
            database.load(engine, key, str(seed), SETTING, origin, _document(seed), mode)
        m = database.rollup_metrics.c
        with engine.connect() as conn:
            rows = conn.execute(select(m.window_start, m.dimensions, m.count, m.sum, m.min, m.max)).all()
    finally:
        engine.dispose()
    # THEN every load ended without an error (a deadlock would have raised), and the totals are exact
    assert len(states) == 4 * len(deliveries)
    got = {(rollups.start_text(row[0]), row[1]): tuple(row[2:]) for row in rows}
    assert got == _expected(mode)
