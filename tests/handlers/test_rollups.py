"""The rollup statements' pure parts (handlers/rollups.py): window start texts, and the per-row
difference SQLite's load writes (``deltas``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from handlers import loading, rollups
from handlers.groups import GroupStats, Stats
from handlers.schema import dimensions_key

KEYS = [("2024-05-01T12:00:00Z", '{"type":"a"}'), ("2024-05-01T13:00:00Z", '{"type":"b"}')]


def test_a_start_reads_back_as_its_text_whatever_the_sessions_time_zone() -> None:
    start = rollups._start_time("2024-05-01T12:00:00Z")
    assert start == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert rollups.start_text(start.astimezone(timezone(timedelta(hours=-7)))) == "2024-05-01T12:00:00Z"
    assert rollups.start_text(datetime(2024, 5, 1, 12)) == "2024-05-01T12:00:00Z"  # SQLite's


VALUES = st.one_of(st.integers(-(10**6), 10**6), st.decimals(-1000, 1000, places=3).map(Decimal))


@given(
    new=st.dictionaries(st.sampled_from(KEYS), st.tuples(st.integers(1, 5), VALUES, VALUES)),
    old=st.dictionaries(st.sampled_from(KEYS), st.tuples(st.integers(1, 5), VALUES, VALUES)),
)
def test_deltas_are_the_document_minus_the_removed_rows_per_rollup_row(
    new: dict[tuple[str, str], tuple[int, Decimal, Decimal]],
    old: dict[tuple[str, str], tuple[int, Decimal, Decimal]],
) -> None:
    # GIVEN a document and the rows of a removed contribution, one metric per group
    document = loading._prepare(
        {key: GroupStats(n, {"m": Stats(n, a + b, min(a, b), max(a, b))}) for key, (n, a, b) in new.items()}
    )
    digests = {key: dimensions_key(key[1]) for key in KEYS}
    old_groups = [(start, digests[(start, d)], n) for (start, d), (n, _a, _b) in old.items()]
    old_metrics = [
        (start, digests[(start, d)], "m", n, a + b, min(a, b), max(a, b))
        for (start, d), (n, a, b) in old.items()
    ]
    # WHEN their difference is taken
    groups, metrics = rollups.deltas(document, old_groups, old_metrics)
    # THEN each rollup row gets the document's counts and sums less the removed ones, and a row only the
    # removed side had keeps the removed min and max (within the rollup's, so the rollup's stay)
    expected_records = {digests[k]: new.get(k, (0,))[0] - old.get(k, (0,))[0] for k in set(new) | set(old)}
    assert {key: records for _s, key, _d, records in groups} == expected_records
    for _start, key, _d, _metric, count, total, low, high in metrics:
        (source,) = [k for k in set(new) | set(old) if digests[k] == key]
        n_new, a_new, b_new = new.get(source, (0, 0, 0))
        n_old, a_old, b_old = old.get(source, (0, 0, 0))
        assert (count, total) == (n_new - n_old, (a_new + b_new) - (a_old + b_old))
        if source not in new:
            assert (low, high) == (min(a_old, b_old), max(a_old, b_old))
