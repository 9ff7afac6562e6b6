"""The analytics database on SQLite and a real PostgreSQL: exact totals, contributions and overwrite modes,
concurrency, Alembic revisions and the upgrade of databases older versions created.

Expected totals are computed here independently, with ``fractions.Fraction``, from the values each test
document holds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from handler_support import alembic_config, at_revision
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, inspect, select, text

from handlers import contract, database
from handlers.errors import ConfigError
from handlers.events import order_key
from handlers.exact import exact_context
from handlers.groups import GroupStats, Stats
from handlers.rollups import start_text

REPLACE, APPEND = contract.OVERWRITE_REPLACE, contract.OVERWRITE_APPEND

H12, H13, H14 = "2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z", "2024-05-01T14:00:00Z"
SETTING = database.Setting("1h", ("type",), ("value", "other"))


def dims(kind: str) -> str:
    """A group's canonical dimensions text (ASCII values: compact JSON with sorted keys is canonical)."""
    return json.dumps({"type": kind}, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Doc:
    """One aggregates document's content: per group (window start, type), each metric's values."""

    rel: str
    sequencer: str
    groups: Mapping[tuple[str, str], Mapping[str, tuple[int | Decimal, ...]]]
    extra: str = ""  # other bytes for the same version (a re-processing)
    setting: database.Setting = field(default=SETTING)

    @property
    def sha(self) -> str:
        body = json.dumps(
            [
                sorted((k, {m: [str(v) for v in vs] for m, vs in g.items()}) for k, g in self.groups.items()),
                self.extra,
                self.setting.key,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def key(self) -> str:
        return f"{contract.AGGREGATES_PREFIX}{self.rel}/{self.sequencer}{contract.AGGREGATES_SUFFIX}"

    def stats(self) -> dict[tuple[str, str], GroupStats]:
        out = {}
        with exact_context():
            for (start, kind), metrics in self.groups.items():
                out[(start, dims(kind))] = GroupStats(
                    max(len(values) for values in metrics.values()),
                    {
                        name: Stats(len(values), sum(values[1:], values[0]), min(values), max(values))
                        for name, values in metrics.items()
                        if values
                    },
                )
        return out


def load(url_or_engine: Any, doc: Doc, mode: str = REPLACE) -> database.LoadResult:
    engine = url_or_engine
    if isinstance(url_or_engine, str):
        engine = database.connect(url_or_engine)
    try:
        return database.load(
            engine, doc.key, doc.sha, doc.setting, database.Origin(doc.rel, doc.sequencer), doc.stats(), mode
        )
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def expected(docs: Iterable[Doc], mode: str) -> dict[str, Any]:
    """The rollups ``docs`` must give in ``mode``: the latest version of each raw key (replace) or every
    version (append); for one version loaded with several contents, the last one listed."""
    chosen: dict[tuple[Any, ...], Doc] = {}
    for doc in docs:
        source = (doc.setting.key, doc.rel) if mode == REPLACE else (doc.setting.key, doc.rel, doc.sequencer)
        held = chosen.get(source)
        if held is None or order_key(doc.sequencer) >= order_key(held.sequencer):
            chosen[source] = doc
    groups: dict[tuple[str, str, str], int] = {}
    metrics: dict[tuple[str, str, str, str], list[Any]] = {}
    for doc in chosen.values():
        for (start, kind), values_by_metric in doc.groups.items():
            key = (doc.setting.key, start, dims(kind))
            groups[key] = groups.get(key, 0) + max(len(v) for v in values_by_metric.values())
            for metric, values in values_by_metric.items():
                if not values:
                    continue
                fractions = [Fraction(v) for v in values]
                entry = metrics.setdefault((*key, metric), [0, Fraction(0), min(fractions), max(fractions)])
                entry[0] += len(values)
                entry[1] += sum(fractions)
                entry[2], entry[3] = min(entry[2], *fractions), max(entry[3], *fractions)
    return {"groups": groups, "metrics": {k: tuple(v) for k, v in metrics.items()}}


def rollups(url: str) -> dict[str, Any]:
    """The rollup tables, exact: every stored number must come back as an int or a Decimal."""
    engine = create_engine(url)
    g, m = database.rollup_groups.c, database.rollup_metrics.c
    try:
        with engine.connect() as conn:
            groups = {
                (row.setting_key, start_text(row.window_start), row.dimensions): row.records
                for row in conn.execute(select(g.setting_key, g.window_start, g.dimensions, g.records))
            }
            metrics = {}
            for row in conn.execute(
                select(m.setting_key, m.window_start, m.dimensions, m.metric, m.count, m.sum, m.min, m.max)
            ):
                values = (row.sum, row.min, row.max)
                assert all(type(v) in (int, Decimal) for v in values), values
                key = (row.setting_key, start_text(row.window_start), row.dimensions, row.metric)
                metrics[key] = (row.count, *(Fraction(v) for v in values))
    finally:
        engine.dispose()
    return {"groups": groups, "metrics": metrics}


def clear(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in database.metadata.sorted_tables:
            conn.execute(delete(table))
    engine.dispose()


# Four documents: two versions of one raw key, two other keys; overlapping groups, decimals.
A1 = Doc("a", "0065A1", {(H12, "click"): {"value": (Decimal("0.1"), 3)}, (H13, "view"): {"value": (7,)}})
A2 = Doc("a", "0065A2", {(H12, "click"): {"value": (Decimal("19.99"),), "other": (1,)}})
B1 = Doc("b", "0065A1", {(H12, "click"): {"value": (Decimal("0.01"), -5)}, (H14, "buy"): {"value": (2,)}})
C7 = Doc(
    "c",
    "0065A7",
    {(H13, "view"): {"value": (Decimal("5.1"),)}, (H12, "click"): {"other": (Decimal("-2.5"),)}},
)
FOUR = (A1, A2, B1, C7)


@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_every_order_of_four_loads_gives_the_same_exact_totals(migrated_database: str, mode: str) -> None:
    engine = database.connect(migrated_database)
    seen = []
    try:
        # WHEN the four documents load in each of the 24 orders (the tables emptied in between)
        for order in itertools.permutations(FOUR):
            clear(migrated_database)
            for doc in order:
                load(engine, doc, mode)
            seen.append(rollups(migrated_database))
    finally:
        engine.dispose()
    # THEN every order left the same tables, and they are the exact totals of the mode's versions
    assert all(tables == seen[0] for tables in seen)
    assert seen[0] == expected(FOUR, mode)


@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_eight_concurrent_loaders_give_the_exact_totals(migrated_database: str, mode: str) -> None:
    # GIVEN versions of three keys, each document delivered twice, and eight workers starting together
    docs = [
        Doc(rel, f"0065B{n}", {(H12, "click"): {"value": (Decimal(n) / 10, n)}, (H13, kind): {"value": (n,)}})
        for n, (rel, kind) in enumerate(
            [("x", "view"), ("y", "view"), ("x", "buy"), ("z", "view"), ("y", "buy"), ("x", "view")], start=1
        )
    ]
    deliveries = docs * 2
    engine = database.connect(migrated_database)
    barrier = threading.Barrier(8)

    def worker(index: int) -> list[str]:
        barrier.wait()
        return [load(engine, doc, mode).state for doc in deliveries[index::8]]

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            states = [state for states in pool.map(worker, range(8)) for state in states]
    finally:
        engine.dispose()
    # THEN every delivery ended without an error or a deadlock, with the mode's exact totals
    assert len(states) == len(deliveries)
    assert rollups(migrated_database) == expected(docs, mode)


OVERWRITES = {
    "in order": ["v1", "v2"],
    "late": ["v2", "v1"],
    "retried": ["v1", "v1", "v2", "v2"],
    "redriven": ["v1", "v2", "v1", "v2", "v1"],
    "late and retried": ["v2", "v1", "v2", "v1"],
}
V1 = Doc("day", "0065C1", {(H12, "click"): {"value": (1, 2, 3)}})
V2 = Doc("day", "0065C2", {(H12, "click"): {"value": (10, 20)}})


@pytest.mark.parametrize(("mode", "totals"), [(REPLACE, (2, 30)), (APPEND, (5, 36))])
@pytest.mark.parametrize("sequence", OVERWRITES.values(), ids=OVERWRITES.keys())
def test_an_overwritten_key_gives_its_modes_totals_whatever_the_deliveries(
    migrated_database: str, mode: str, totals: tuple[int, int], sequence: list[str]
) -> None:
    # GIVEN v1 (count 3, sum 6) and v2 (count 2, sum 30) of one raw key
    engine = database.connect(migrated_database)
    try:
        # WHEN they are delivered late, retried or redriven
        for name in sequence:
            load(engine, {"v1": V1, "v2": V2}[name], mode)
    finally:
        engine.dispose()
    # THEN replace holds v2 alone and append both
    [(count, total, _low, _high)] = rollups(migrated_database)["metrics"].values()
    assert (count, total) == totals


@pytest.mark.parametrize(
    ("values", "total"),
    [
        (
            (
                Decimal("19.99"),
                Decimal("0.01"),
                Decimal("5.1"),
                Decimal("0.3"),
                Decimal("0.2"),
                Decimal("0.1"),
            ),
            "25.7",
        ),
        ((Decimal("0.1"),) * 10, "1"),
        ((2**53 + 1, 2**53 + 1), "18014398509481986"),
        (
            (10**38 - 1, 10**38 - 1, Decimal("0.000000000000000001")),
            "199999999999999999999999999999999999998.000000000000000001",
        ),
    ],
    ids=["cents", "ten-tenths", "past-double-precision", "widest-values"],
)
def test_sums_across_documents_are_exact_in_any_order(
    migrated_database: str, values: tuple[Any, ...], total: str
) -> None:
    # GIVEN one document per value, each from its own raw key
    docs = [Doc(f"k{n}", "0065D1", {(H12, "click"): {"value": (v,)}}) for n, v in enumerate(values)]
    engine = database.connect(migrated_database)
    sums = set()
    try:
        # WHEN they load forwards and backwards
        for order in (docs, docs[::-1]):
            clear(migrated_database)
            for doc in order:
                load(engine, doc)
            with engine.connect() as conn:
                sums.add(conn.execute(select(database.rollup_metrics.c.sum)).scalar_one())
    finally:
        engine.dispose()
    # THEN the stored sum is exactly the decimal sum, both times
    assert sums == {Decimal(total) if "." in total else int(total)}


def test_a_redelivery_reports_the_first_deliverys_state_and_changes_nothing(migrated_database: str) -> None:
    engine = database.connect(migrated_database)
    try:
        first = load(engine, A1)
        load(engine, A2)  # A1 is replaced by its newer version
        before = rollups(migrated_database)
        # WHEN A1 is delivered again
        again = load(engine, A1)
    finally:
        engine.dispose()
    # THEN it says what its first delivery did, that it is a repeat, and changes no total
    assert (first, again) == (database.LoadResult("loaded", False), database.LoadResult("loaded", True))
    assert rollups(migrated_database) == before


def test_an_older_version_arriving_late_is_superseded_and_changes_nothing(migrated_database: str) -> None:
    engine = database.connect(migrated_database)
    try:
        load(engine, A2)
        before = rollups(migrated_database)
        late = load(engine, A1)
    finally:
        engine.dispose()
    assert late == database.LoadResult("superseded", False)
    assert rollups(migrated_database) == before


def test_the_same_version_and_bytes_under_another_object_is_a_duplicate(migrated_database: str) -> None:
    engine = database.connect(migrated_database)
    try:
        load(engine, A1)
        before = rollups(migrated_database)
        # WHEN the same document is loaded from another key (a copy: the ledger has not seen that object)
        result = database.load(
            engine,
            f"{contract.AGGREGATES_PREFIX}copy/0065A1{contract.AGGREGATES_SUFFIX}",
            A1.sha,
            SETTING,
            database.Origin("a", "0065A1"),
            A1.stats(),
        )
    finally:
        engine.dispose()
    assert result == database.LoadResult("duplicate", False)
    assert rollups(migrated_database) == before


@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_the_same_version_with_other_bytes_replaces_its_earlier_load(
    migrated_database: str, mode: str
) -> None:
    # GIVEN a version loaded, then the same raw version processed again into other aggregates (a fix)
    fixed = Doc("a", A1.sequencer, {(H12, "click"): {"value": (4,)}}, extra="reprocessed")
    engine = database.connect(migrated_database)
    try:
        load(engine, A1, mode)
        result = load(engine, fixed, mode)
    finally:
        engine.dispose()
    # THEN the later load is the version's contribution, in either mode
    assert result.state == "loaded"
    assert rollups(migrated_database) == expected([fixed], mode)


def test_a_replaced_version_leaves_the_groups_only_it_had_and_their_extremes(migrated_database: str) -> None:
    # GIVEN another key in the same group holding the group's minimum once v1 is gone
    other = Doc("other", "0065E1", {(H12, "click"): {"value": (Decimal("2.5"),)}})
    v1 = Doc("k", "0065E1", {(H12, "click"): {"value": (-9, 50)}, (H13, "view"): {"value": (1,)}})
    v2 = Doc("k", "0065E2", {(H12, "click"): {"value": (Decimal("7.25"),)}})
    engine = database.connect(migrated_database)
    try:
        for doc in (other, v1, v2):
            load(engine, doc)
    finally:
        engine.dispose()
    # THEN v1's own group is gone and the shared group's min and max come from what remains
    tables = rollups(migrated_database)
    assert tables == expected([other, v2], REPLACE)
    assert set(tables["groups"]) == {(SETTING.key, H12, dims("click"))}
    assert tables["metrics"][(SETTING.key, H12, dims("click"), "value")] == (
        2,
        Fraction("9.75"),
        Fraction("2.5"),
        Fraction("7.25"),
    )


def test_a_version_without_records_retracts_the_key_in_replace_mode(migrated_database: str) -> None:
    engine = database.connect(migrated_database)
    try:
        load(engine, V1)
        load(engine, Doc("day", "0065C2", {}))  # the key overwritten with []
    finally:
        engine.dispose()
    assert rollups(migrated_database) == {"groups": {}, "metrics": {}}


def test_settings_never_share_rollups_or_contributions(migrated_database: str) -> None:
    # GIVEN the same raw version aggregated under two windows and under other dimension names
    daily = database.Setting("1d", ("type",), ("value", "other"))
    wider = database.Setting("1h", ("type", "source"), ("value", "other"))
    docs = [A1, Doc("a", "0065A1", A1.groups, setting=daily), Doc("a", "0065A1", A1.groups, setting=wider)]
    engine = database.connect(migrated_database)
    try:
        states = [load(engine, doc).state for doc in docs]
    finally:
        engine.dispose()
    # THEN each setting got its own rollups and its own contribution: nothing replaced anything
    assert states == ["loaded"] * 3
    tables = rollups(migrated_database)
    assert {key[0] for key in tables["groups"]} == {SETTING.key, daily.key, wider.key}
    assert tables == expected(docs, REPLACE)
    engine = create_engine(migrated_database)
    with engine.connect() as conn:
        contributions = conn.execute(select(database.contributions.c.setting_key)).scalars().all()
        names = conn.execute(select(database.settings.c.window_size, database.settings.c.dimensions)).all()
    engine.dispose()
    assert sorted(contributions) == sorted([SETTING.key, daily.key, wider.key])
    assert sorted(names) == [("1d", '["type"]'), ("1h", '["source","type"]'), ("1h", '["type"]')]


def test_a_group_counting_no_record_is_refused_and_loads_nothing(migrated_database: str) -> None:
    from handlers.errors import LoadRejectedError

    groups = {(H12, dims("click")): GroupStats(0, {})}
    engine = database.connect(migrated_database)
    try:
        with pytest.raises(LoadRejectedError) as raised:
            database.load(
                engine,
                f"{contract.AGGREGATES_PREFIX}z/0065A1{contract.AGGREGATES_SUFFIX}",
                "z",
                SETTING,
                database.Origin("z", "0065A1"),
                groups,
            )
    finally:
        engine.dispose()
    assert raised.value.reason == "empty_group"
    assert _table(migrated_database, "pipeline_ledger", "object_key") == []


def test_a_group_with_long_dimension_values_is_loaded(migrated_database: str) -> None:
    # GIVEN a group whose dimensions are long once written as JSON (control characters are escaped)
    long_kind = "\x01" * 256
    doc = Doc("long", "0065F1", {(H12, long_kind): {"value": (3,)}})
    load(migrated_database, doc)
    # THEN it is in the rollup whole, past what a B-tree key entry could hold
    [(_, _, text_), *_] = rollups(migrated_database)["groups"]
    assert json.loads(text_) == {"type": long_kind}
    assert len(text_) > 1500


# --- hypothesis: random document sets, with duplicates, in random order --------------------------------

VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False),
)
GROUPS = st.dictionaries(
    st.tuples(st.sampled_from([H12, H13]), st.sampled_from(["click", "view"])),
    st.fixed_dictionaries({"value": st.lists(VALUES, min_size=1, max_size=3)}),
    max_size=3,
)
DOCS = st.lists(
    st.builds(Doc, st.sampled_from(["p", "q", "r"]), st.sampled_from(["0065A1", "0065A2", "0065A3"]), GROUPS),
    min_size=1,
    max_size=6,
    unique_by=lambda doc: (doc.rel, doc.sequencer),  # one content per version: its order then does not matter
)


@pytest.fixture(scope="module")
def property_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('property') / 'analytics.sqlite'}"
    database.migrate(url)
    return url


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=DOCS, mode=st.sampled_from(contract.OVERWRITE_MODES), data=st.data())
def test_random_documents_in_random_order_with_duplicates_give_the_exact_totals(
    property_database: str, docs: list[Doc], mode: str, data: st.DataObject
) -> None:
    deliveries = data.draw(st.permutations(docs + data.draw(st.lists(st.sampled_from(docs), max_size=4))))
    clear(property_database)
    engine = database.connect(property_database)
    try:
        for doc in deliveries:
            load(engine, doc, mode)
    finally:
        engine.dispose()
    assert rollups(property_database) == expected(docs, mode)


# --- revisions --------------------------------------------------------------------------------------


def test_head_is_the_last_shipped_revision() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == database.HEAD


def test_migrate_builds_the_schema_the_code_uses_and_again_changes_nothing(empty_database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    # WHEN an empty database is migrated twice
    revisions = [database.migrate(empty_database), database.migrate(empty_database)]
    # THEN it is at the head, and its tables are exactly the ones the code declares
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), database.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert revisions == [database.HEAD] * 2
    assert differences == []
    assert tables == {table.name for table in database.metadata.sorted_tables} | {"alembic_version"}


@pytest.mark.postgres
def test_concurrent_migrations_take_turns(postgres_database: str) -> None:
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    with ThreadPoolExecutor(max_workers=4) as pool:
        revisions = list(pool.map(database.migrate, [postgres_database] * 4))
    assert revisions == [database.HEAD] * 4


KEY_COLUMNS = (
    "SELECT table_name || '.' || column_name, collation_name FROM information_schema.columns "
    "WHERE table_schema = 'public' AND column_name IN ('setting_key', 'dimensions_key', 'metric')"
)
ROLLUP_OPTIONS = (
    "SELECT relname, reloptions FROM pg_class "
    "WHERE relname IN ('pipeline_rollup_groups', 'pipeline_rollup_metrics')"
)


@pytest.mark.postgres
@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_revision_0004_keys_compare_bytewise_and_rollups_keep_room_and_its_downgrade_undoes_both(
    empty_database: str,
) -> None:
    from alembic import command

    def schema() -> tuple[dict[str, str | None], dict[str, Any], list[Any]]:
        engine = create_engine(empty_database)
        with engine.connect() as conn:
            found = (
                dict(conn.execute(text(KEY_COLUMNS)).all()),
                dict(conn.execute(text(ROLLUP_OPTIONS)).all()),
                [
                    index["column_names"]
                    for index in inspect(conn).get_indexes("pipeline_contribution_groups")
                ],
            )
        engine.dispose()
        return found

    database.migrate(empty_database)
    load(empty_database, Doc("k", "0065A1", {(H12, "a"): {"value": (Decimal("1.5"), 2)}}))
    rows = _rollup_rows(empty_database)
    collations, options, group_index = schema()
    # WHEN the head's revision is taken back to 0003
    engine = database.create(empty_database)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    engine.dispose()
    collations_0003, options_0003, group_index_0003 = schema()
    # THEN at the head the rollup and contribution keys were in the C collation (the settings' and
    # contributions' own keys not), the rollups at fillfactor 50; at 0003 all in the default again
    contribution_keys = {"pipeline_contributions.setting_key", "pipeline_settings.setting_key"}
    assert {column for column, collation in collations.items() if collation == "C"} == (
        collations.keys() - contribution_keys
    )
    assert len(collations) == 11
    assert options == {
        table: ["fillfactor=50"] for table in ("pipeline_rollup_groups", "pipeline_rollup_metrics")
    }
    assert set(collations_0003.values()) == {None}
    assert options_0003 == dict.fromkeys(("pipeline_rollup_groups", "pipeline_rollup_metrics"), None)
    # AND the contribution group index had the setting out of its key, and has it back at 0003
    assert group_index == [["window_start", "dimensions_key"]]
    assert group_index_0003 == [["setting_key", "window_start", "dimensions_key"]]
    # AND upgraded again, it holds the rows it held
    assert database.migrate(empty_database) == database.HEAD
    assert _rollup_rows(empty_database) == rows


def _rollup_rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(select(database.rollup_metrics))]
    engine.dispose()
    return rows


def test_the_runtime_refuses_a_database_without_the_schema(empty_database: str) -> None:
    with pytest.raises(ConfigError) as raised:
        database.connect(empty_database)
    message = str(raised.value)
    assert "no pipeline schema revision" in message
    assert '{"action": "migrate"}' in message
    assert "python -m devtools migrate --url URL" in message
    engine = create_engine(empty_database)
    assert inspect(engine).get_table_names() == []  # and it created nothing
    engine.dispose()


def test_the_runtime_refuses_a_database_at_an_older_revision(empty_database: str) -> None:
    with at_revision(empty_database, "0001"):
        pass
    with pytest.raises(
        ConfigError,
        match=rf"is at schema revision 0001, this version needs revision {database.HEAD}: .*pulumi up",
    ):
        database.connect(empty_database)


@pytest.mark.parametrize("url", ["mysql+pymysql://u:secret-password@db/x", "oracle://u:secret-password@db"])
def test_only_postgresql_and_sqlite_are_supported(url: str) -> None:
    with pytest.raises(ConfigError, match="must be PostgreSQL or SQLite") as raised:
        database.connect(url)
    assert "secret-password" not in str(raised.value)


# What handlers/database.py created at 4350ada (before revisions), as PostgreSQL and SQLite spell it.
TODAYS_SCHEMA = """
CREATE TABLE pipeline_rollup_groups (
    window_size VARCHAR(8) NOT NULL, window_start TIMESTAMP WITH TIME ZONE NOT NULL,
    dimensions_key VARCHAR(64) NOT NULL, dimensions TEXT NOT NULL, records BIGINT NOT NULL,
    PRIMARY KEY (window_size, window_start, dimensions_key));
CREATE TABLE pipeline_rollup_metrics (
    window_size VARCHAR(8) NOT NULL, window_start TIMESTAMP WITH TIME ZONE NOT NULL,
    dimensions_key VARCHAR(64) NOT NULL, dimensions TEXT NOT NULL, metric VARCHAR(256) NOT NULL,
    count BIGINT NOT NULL, sum {double} NOT NULL, min {double} NOT NULL, max {double} NOT NULL,
    PRIMARY KEY (window_size, window_start, dimensions_key, metric));
CREATE TABLE pipeline_ledger (
    object_key VARCHAR(1024) NOT NULL, content_sha256 VARCHAR(64) NOT NULL, groups BIGINT NOT NULL,
    records BIGINT NOT NULL, loaded_at {timestamp} DEFAULT {now} NOT NULL,
    PRIMARY KEY (object_key, content_sha256));
"""
CLICK, VIEW = '{"source":"web","type":"click"}', '{"source":"web","type":"view"}'


def _digest(text_: str) -> str:
    return hashlib.sha256(text_.encode()).hexdigest()


def _todays_rows(postgresql: bool) -> str:
    start = "'2024-05-01 12:00:00+00'" if postgresql else "'2024-05-01 12:00:00.000000'"
    day = "'2024-05-01 00:00:00+00'" if postgresql else "'2024-05-01 00:00:00.000000'"
    return f"""
INSERT INTO pipeline_rollup_groups VALUES
    ('1h', {start}, '{_digest(CLICK)}', '{CLICK}', 3), ('1h', {start}, '{_digest(VIEW)}', '{VIEW}', 1),
    ('1d', {day}, '{_digest(CLICK)}', '{CLICK}', 3);
INSERT INTO pipeline_rollup_metrics VALUES
    ('1h', {start}, '{_digest(CLICK)}', '{CLICK}', 'value', 3, 0.30000000000000004, 0.1, 0.2),
    ('1h', {start}, '{_digest(VIEW)}', '{VIEW}', 'value', 1, 6, 6, 6),
    ('1d', {day}, '{_digest(CLICK)}', '{CLICK}', 'value', 3, 1e20, -2.5, 1e20);
INSERT INTO pipeline_ledger (object_key, content_sha256, groups, records) VALUES
    ('aggregates/a.json', 'sha-a', 2, 4), ('aggregates/b.json', 'sha-b', 1, 3);
"""


def _create_todays_database(url: str) -> None:
    postgresql = url.startswith("postgresql")
    schema = TODAYS_SCHEMA.format(
        double="DOUBLE PRECISION" if postgresql else "FLOAT",
        timestamp="TIMESTAMP WITH TIME ZONE" if postgresql else "DATETIME",
        now="now()" if postgresql else "(CURRENT_TIMESTAMP)",
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in (schema + _todays_rows(postgresql)).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    engine.dispose()


def _table(url: str, name: str, columns: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(text(f"SELECT {columns} FROM {name} ORDER BY {columns}"))]
    engine.dispose()
    return rows


def test_a_database_of_todays_schema_without_revisions_upgrades_keeping_every_row(
    empty_database: str,
) -> None:
    # GIVEN the tables today's code created, populated, and no alembic_version table
    _create_todays_database(empty_database)
    hourly = database.Setting("1h", ("source", "type"), ("value",))
    daily = database.Setting("1d", ("source", "type"), ("value",))
    # WHEN it is migrated
    assert database.migrate(empty_database) == database.HEAD
    # THEN every rollup row is there under its legacy setting, its doubles as their shortest exact decimals
    tables = rollups(empty_database)
    assert tables["groups"] == {
        (hourly.key, H12, CLICK): 3,
        (hourly.key, H12, VIEW): 1,
        (daily.key, "2024-05-01T00:00:00Z", CLICK): 3,
    }
    assert tables["metrics"] == {
        (hourly.key, H12, CLICK, "value"): (
            3,
            Fraction("0.30000000000000004"),
            Fraction("0.1"),
            Fraction("0.2"),
        ),
        (hourly.key, H12, VIEW, "value"): (1, 6, 6, 6),
        (daily.key, "2024-05-01T00:00:00Z", CLICK, "value"): (3, 10**20, Fraction("-2.5"), 10**20),
    }
    # AND every ledger row, as loaded
    assert _table(
        empty_database, "pipeline_ledger", "object_key, content_sha256, groups, records, state"
    ) == [
        (f"{contract.AGGREGATES_PREFIX}a{contract.AGGREGATES_SUFFIX}", "sha-a", 2, 4, "loaded"),
        (f"{contract.AGGREGATES_PREFIX}b{contract.AGGREGATES_SUFFIX}", "sha-b", 1, 3, "loaded"),
    ]
    # AND each setting's old rows are one legacy contribution, which a later load adds to
    assert _table(empty_database, "pipeline_contributions", "rel, groups, records") == [
        ("", 1, 3),
        ("", 2, 4),
    ]
    later = Doc("new", "0065A1", {(H12, "click"): {"value": (Decimal("0.7"),)}}, setting=hourly)
    later_stats = {(H12, CLICK): later.stats()[(H12, dims("click"))]}
    engine = database.connect(empty_database)
    try:
        database.load(engine, later.key, later.sha, hourly, database.Origin("new", "0065A1"), later_stats)
    finally:
        engine.dispose()
    assert rollups(empty_database)["metrics"][(hourly.key, H12, CLICK, "value")] == (
        4,
        Fraction("1.00000000000000004"),
        Fraction("0.1"),
        Fraction("0.7"),
    )


# What handlers/database.py created before dimensions_key and content_sha256 (2026-11-26).
OLDER_SCHEMA = """
CREATE TABLE pipeline_rollup_groups (
    window_size VARCHAR(8) NOT NULL, window_start TIMESTAMP WITH TIME ZONE NOT NULL,
    dimensions VARCHAR(2048) NOT NULL, records BIGINT NOT NULL,
    PRIMARY KEY (window_size, window_start, dimensions));
CREATE TABLE pipeline_rollup_metrics (
    window_size VARCHAR(8) NOT NULL, window_start TIMESTAMP WITH TIME ZONE NOT NULL,
    dimensions VARCHAR(2048) NOT NULL, metric VARCHAR(256) NOT NULL, count BIGINT NOT NULL,
    sum DOUBLE PRECISION NOT NULL, min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (window_size, window_start, dimensions, metric));
CREATE TABLE pipeline_ledger (
    object_key VARCHAR(1024) NOT NULL, etag VARCHAR(128) NOT NULL, groups BIGINT NOT NULL,
    records BIGINT NOT NULL, loaded_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (object_key, etag));
INSERT INTO pipeline_rollup_groups VALUES
    ('1h', '2024-05-01T12:00:00Z', '{"source":"web","type":"click"}', 2);
INSERT INTO pipeline_rollup_metrics VALUES
    ('1h', '2024-05-01T12:00:00Z', '{"source":"web","type":"click"}', 'value', 2, 6, 2, 4);
INSERT INTO pipeline_ledger (object_key, etag, groups, records) VALUES ('aggregates/old.json', 'abc', 1, 2);
"""


def _load_one(
    url: str, setting: database.Setting, rel: str, sequencer: str, sha: str, group: Any, value: int
) -> None:
    """One document of ``rel``'s version ``sequencer``: one group with one value of ``value``."""
    engine = database.connect(url)
    try:
        database.load(
            engine,
            f"{contract.AGGREGATES_PREFIX}{rel}/{sequencer}{contract.AGGREGATES_SUFFIX}",
            sha,
            setting,
            database.Origin(rel, sequencer),
            {group: GroupStats(1, {"value": Stats(1, value, value, value)})},
        )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_tables_older_than_content_keys_upgrade_keeping_their_rows(postgres_database: str) -> None:
    # GIVEN the tables as the version before dimensions_key and content_sha256 created them
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        conn.exec_driver_sql(OLDER_SCHEMA)
    engine.dispose()
    # WHEN they are migrated, and the current code loads a new object into the same group
    assert database.migrate(postgres_database) == database.HEAD
    setting = database.Setting("1h", ("source", "type"), ("value",))
    _load_one(postgres_database, setting, "new", "0065A1", "n", (H12, CLICK), 5)
    # THEN it added to the migrated row (the digest SQL computed is the one Python computes)
    assert rollups(postgres_database)["metrics"] == {(setting.key, H12, CLICK, "value"): (3, 11, 2, 5)}
    assert _table(postgres_database, "pipeline_ledger", "object_key, content_sha256, state") == [
        (f"{contract.AGGREGATES_PREFIX}new/0065A1{contract.AGGREGATES_SUFFIX}", "n", "loaded"),
        (f"{contract.AGGREGATES_PREFIX}old{contract.AGGREGATES_SUFFIX}", "abc", "loaded"),
    ]


def test_an_overwrite_of_a_key_loaded_before_the_upgrade_cannot_take_its_old_rows_out(
    empty_database: str,
) -> None:
    # GIVEN a database upgraded from today's schema (its rows are one legacy contribution per setting)
    _create_todays_database(empty_database)
    database.migrate(empty_database)
    hourly = database.Setting("1h", ("source", "type"), ("value",))
    before = rollups(empty_database)["metrics"][(hourly.key, H12, VIEW, "value")]
    # WHEN a new version of the raw key behind those rows loads in replace mode
    _load_one(empty_database, hourly, "a", "0065A9", "v9", (H12, VIEW), 1)
    # THEN it adds to them: nothing names which old rows came from that key
    assert rollups(empty_database)["metrics"][(hourly.key, H12, VIEW, "value")] == (
        before[0] + 1,
        before[1] + 1,
        1,
        before[3],
    )
