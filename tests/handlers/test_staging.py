"""The PostgreSQL write of a load (handlers/staging.py): COPY text, the session's staging tables, and
the extremes a replacement recomputes, against a real PostgreSQL (and SQLite for the same totals)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import DataError

from handlers import contract, database, staging
from handlers.exact import exact_context
from handlers.groups import GroupStats, Stats

H12 = "2024-05-01T12:00:00Z"
SETTING = database.Setting("1h", ("type",), ("value",))


def _unescape(field: str) -> str:
    """PostgreSQL's reading of a COPY text field (the escapes copy_field writes)."""
    out, chars = [], iter(field)
    for char in chars:
        if char == "\\":
            char = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[next(chars)]
        out.append(char)
    return "".join(out)


@given(st.text())
def test_a_copy_field_reads_back_as_its_value_and_never_ends_a_field_or_row(value: str) -> None:
    field = staging.copy_field(value)
    assert not {"\t", "\n", "\r"} & set(field)
    assert _unescape(field) == value


# The tests below need PostgreSQL: the handlers tier's empty_database, at its PostgreSQL value only.
POSTGRESQL = pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)


def _load(engine: Engine, rel: str, sequencer: str, groups: dict[tuple[str, str], GroupStats]) -> None:
    origin = database.Origin(rel, sequencer)
    database.load(
        engine,
        f"{contract.AGGREGATES_PREFIX}{rel}/{sequencer}{contract.AGGREGATES_SUFFIX}",
        f"{rel}{sequencer}",
        SETTING,
        origin,
        groups,
    )


def _one(value: int) -> GroupStats:
    return GroupStats(1, {"value": Stats(1, value, value, value)})


@pytest.mark.postgres
@POSTGRESQL
def test_dimensions_with_copy_escapes_are_stored_as_they_are(migrated_database: str) -> None:
    # GIVEN dimension texts holding a tab, a newline, a return, backslashes and a \N lookalike
    kinds = ["a\tb", "line\nbreak", "cr\rhere", "back\\slash", "\\N", 'quo"te', "ünï"]
    texts = [json.dumps({"type": kind}, separators=(",", ":"), ensure_ascii=False) for kind in kinds]
    engine = database.connect(migrated_database)
    try:
        # WHEN one document of those groups loads
        _load(engine, "esc", "0065A1", {(H12, dims): _one(n) for n, dims in enumerate(texts)})
        with engine.connect() as conn:
            stored = conn.execute(select(database.rollup_metrics.c.dimensions, database.rollup_metrics.c.sum))
            got = {row.dimensions: row.sum for row in stored}
    finally:
        engine.dispose()
    # THEN each group's dimensions came back byte for byte, with its own sum
    assert got == {dims: n for n, dims in enumerate(texts)}


@pytest.mark.postgres
@POSTGRESQL
def test_a_session_keeps_its_staging_tables_and_each_commit_empties_them(migrated_database: str) -> None:
    engine = create_engine(migrated_database, pool_size=1, max_overflow=0)
    try:
        # WHEN two loads run on the one connection of a pool
        _load(engine, "a", "0065A1", {(H12, '{"type":"x"}'): _one(1)})
        _load(engine, "b", "0065A1", {(H12, '{"type":"x"}'): _one(2)})
        with engine.connect() as conn:
            left = [conn.execute(text(f"SELECT count(*) FROM pg_temp.{t}")).scalar() for t in STAGING]
    finally:
        engine.dispose()
    # THEN the session still has the staging tables, and nothing in them
    assert left == [0, 0]


STAGING = ("load_groups", "load_metrics")

# One group: a source "other" holds 3..5; "key" replaces its version 1 (values 1 and 9) by version 2.
REPLACEMENTS = {
    "reaching past the old extremes": ((0, 10), (0, 10)),
    "reaching exactly as far": ((1, 9), (1, 9)),
    "inside them (both recomputed)": ((4, 4), (3, 5)),
    "below, not above (the max recomputed)": ((0, 4), (0, 5)),
    "above, not below (the min recomputed)": ((6, 12), (3, 12)),
}


@pytest.mark.parametrize(("values", "extremes"), REPLACEMENTS.values(), ids=REPLACEMENTS.keys())
def test_a_replacement_leaves_the_extremes_of_what_remains(
    migrated_database: str, values: tuple[int, int], extremes: tuple[int, int]
) -> None:
    group = (H12, '{"type":"x"}')

    def stats(low: int, high: int) -> dict[tuple[str, str], GroupStats]:
        return {group: GroupStats(2, {"value": Stats(2, low + high, low, high)})}

    engine = database.connect(migrated_database)
    try:
        _load(engine, "other", "0065A1", {group: GroupStats(2, {"value": Stats(2, 8, 3, 5)})})
        _load(engine, "key", "0065A1", stats(1, 9))
        # WHEN version 2 of "key" replaces version 1
        _load(engine, "key", "0065A2", stats(*values))
        with engine.connect() as conn:
            m = database.rollup_metrics.c
            row = conn.execute(select(m.count, m.sum, m.min, m.max)).one()
    finally:
        engine.dispose()
    # THEN the rollup is "other" plus version 2: counts and sums added, extremes of the two
    assert tuple(row) == (4, 8 + sum(values), *extremes)


@pytest.mark.postgres
@POSTGRESQL
def test_a_replacement_of_decimals_keeps_them_exact(migrated_database: str) -> None:
    group = (H12, '{"type":"x"}')
    tiny, big = Decimal("0.000000000000000001"), Decimal("12345678901234567890123456789.5")
    with exact_context():
        total = big + tiny
    engine = database.connect(migrated_database)
    try:
        _load(engine, "k", "0065A1", {group: GroupStats(1, {"value": Stats(1, big, big, big)})})
        # WHEN a version with a value no float holds replaces it
        _load(engine, "k", "0065A2", {group: GroupStats(2, {"value": Stats(2, total, tiny, big)})})
        with engine.connect() as conn:
            m = database.rollup_metrics.c
            row = conn.execute(select(m.count, m.sum, m.min, m.max)).one()
    finally:
        engine.dispose()
    # THEN the rollup holds exactly version 2
    assert tuple(row) == (2, total, tiny, big)


@pytest.mark.postgres
@POSTGRESQL
def test_a_row_copy_refuses_is_a_database_error_and_loads_nothing(migrated_database: str) -> None:
    engine = database.connect(migrated_database)
    try:
        # WHEN a document's window start is no timestamp PostgreSQL reads
        with pytest.raises(DataError):
            _load(engine, "bad", "0065A1", {("2024-13-45T99:00:00Z", '{"type":"x"}'): _one(1)})
        with engine.connect() as conn:
            counts = [conn.execute(select(func.count()).select_from(t)).scalar() for t in TABLES]
    finally:
        engine.dispose()
    # THEN SQLAlchemy's error came out (as for any statement), and the transaction left nothing behind
    assert counts == [0] * len(TABLES)


TABLES = (database.ledger, database.contributions, database.rollup_groups, database.rollup_metrics)


# Decimal spellings the COPY text carries as Python writes them (trailing zeros, exponents, a negative zero).
SPELLINGS = {
    "trailing zero": (Decimal("1.50"), Decimal("1.5")),
    "positive exponent": (Decimal("1E+3"), 1000),
    "zero with an exponent": (Decimal("0E-7"), 0),
    "negative zero": (Decimal("-0"), 0),
    "tiny negative": (Decimal("-2.5E-20"), Decimal("-0.000000000000000000025")),
}


@pytest.mark.postgres
@POSTGRESQL
def test_numbers_in_any_decimal_spelling_load_exactly(migrated_database: str) -> None:
    groups = {
        (H12, json.dumps({"type": name})): GroupStats(1, {"value": Stats(1, value, value, value)})
        for name, (value, _) in SPELLINGS.items()
    }
    engine = database.connect(migrated_database)
    try:
        # WHEN one document holds a value in each spelling
        _load(engine, "spell", "0065A1", groups)
        with engine.connect() as conn:
            m = database.rollup_metrics.c
            stored = conn.execute(select(m.dimensions, m.sum, m.min, m.max))
            got = {json.loads(row.dimensions)["type"]: tuple(row[1:]) for row in stored}
    finally:
        engine.dispose()
    # THEN each comes back as the number it is, canonical (an int where it has no fraction)
    assert got == {name: (number,) * 3 for name, (_, number) in SPELLINGS.items()}
    assert all(type(got[name][0]) is type(number) for name, (_, number) in SPELLINGS.items())


@pytest.mark.postgres
@POSTGRESQL
def test_a_replacement_that_empties_rollup_rows_deletes_only_those(migrated_database: str) -> None:
    keep, gone = (H12, '{"type":"keep"}'), (H12, '{"type":"gone"}')
    engine = database.connect(migrated_database)
    try:
        _load(engine, "other", "0065A1", {keep: _one(5)})
        _load(engine, "key", "0065A1", {keep: _one(1), gone: _one(2)})
        # WHEN version 2 of "key" leaves "gone" out and "keep" at another value
        _load(engine, "key", "0065A2", {keep: _one(3)})
        with engine.connect() as conn:
            g, m = database.rollup_groups.c, database.rollup_metrics.c
            groups = conn.execute(select(g.dimensions, g.records)).all()
            metrics = conn.execute(select(m.dimensions, m.count, m.sum, m.min, m.max)).all()
    finally:
        engine.dispose()
    # THEN the group only version 1 had is gone from both rollups; the other is "other" plus version 2
    assert groups == [('{"type":"keep"}', 2)]
    assert metrics == [('{"type":"keep"}', 2, 8, 3, 5)]


@pytest.mark.postgres
@POSTGRESQL
def test_a_replacement_leaves_the_rollup_rows_it_does_not_change_unwritten(migrated_database: str) -> None:
    same, other = (H12, '{"type":"same"}'), (H12, '{"type":"other"}')
    engine = database.connect(migrated_database)

    def versions() -> dict[str, tuple[str, str]]:
        """Each group's rollup row versions (xmin: the transaction that wrote them)."""
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT g.dimensions, g.xmin::text, m.xmin::text FROM pipeline_rollup_groups AS g "
                    "JOIN pipeline_rollup_metrics AS m USING (setting_key, window_start, dimensions_key)"
                )
            )
            return {row[0]: (row[1], row[2]) for row in rows}

    try:
        _load(engine, "key", "0065A1", {same: _one(1), other: _one(2)})
        before = versions()
        # WHEN version 2 brings one group as it was and the other with another value
        _load(engine, "key", "0065A2", {same: _one(1), other: _one(3)})
        after = versions()
        with engine.connect() as conn:
            m = database.rollup_metrics.c
            totals = dict(conn.execute(select(m.dimensions, m.sum)).all())
    finally:
        engine.dispose()
    # THEN the unchanged group's rows are the ones version 1 wrote; of the other group (one record in
    # either version), only the metric row was rewritten
    assert after['{"type":"same"}'] == before['{"type":"same"}']
    assert after['{"type":"other"}'][0] == before['{"type":"other"}'][0]
    assert after['{"type":"other"}'][1] != before['{"type":"other"}'][1]
    assert totals == {'{"type":"same"}': 1, '{"type":"other"}': 3}
