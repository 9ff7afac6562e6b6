"""Analytics load benchmark: groups per second into PostgreSQL, the previous load against the current one.

Run beside a throwaway server:
``scripts/with-throwaway-postgres .venv/bin/python benchmarks/analytics.py [--documents 20] [--groups 5000]``
(or ``--url postgresql+psycopg2://...`` for a server you have; the script creates its own databases on
it and drops them afterwards).

It builds ``--documents`` aggregates documents of ``--groups`` groups each (dimensions ``type`` and
``source``, one metric ``value``). Each document comes from its own raw key, and each covers 50 hourly
windows shifted by half from the previous document's, so half of a document's groups are new rollup
rows and half add to existing ones. Then, in one run, for ``--repeats`` rounds:

* ``old``: the load of commit 4350ada (``git show 4350ada:handlers/database.py`` imported as a temporary
  module): a ledger row and a ``DOUBLE PRECISION`` rollup upsert, into a fresh database;
* ``new``: ``handlers.database.load`` in replace mode: ledger, the document's rows by ``COPY`` into the
  session's staging tables, contribution rows and the exact ``NUMERIC`` rollup upserts in set statements
  (``handlers.staging``), into a fresh database at the head revision;
* ``new, replacing``: the same documents again as the next version of each raw key, into that
  database: each load takes the previous version's contribution out before it adds its own;
* ``COPY floor``: ``COPY`` of the same group and metric rows into unlogged tables without keys, the
  fastest PostgreSQL takes rows in (for reference: no upsert can reach it).

Time is wall-clock (``time.perf_counter``) around the loads only: the database server works for the
load as much as the client does. Each figure is the best of the rounds; the rounds alternate which load
goes first. Prints a table of groups/s, the ratios new / old, and each new load's rate as a share of the
COPY floor's (measured in the same run, so a busy machine moves both). Figures go to docs/benchmarks.md;
this is not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from handlers import database  # noqa: E402
from handlers.groups import GroupStats, Stats  # noqa: E402

OLD_COMMIT = "4350ada"
TYPES = ("click", "view", "buy", "scroll", "share", "like", "hover", "copy", "paste", "close")
SOURCES = tuple(f"site-{n:02d}" for n in range(10))


def old_module() -> Any:
    """The load of ``OLD_COMMIT``, as a module of its own (its float limit defined here: the current
    processing core no longer has one)."""
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:handlers/database.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    source = source.replace(
        "from handlers.aggregate import FLOAT_MAX, GroupKey, GroupStats",
        "import sys as _sys\nFLOAT_MAX = _sys.float_info.max\nGroupKey = GroupStats = Any",
    )
    path = Path(tempfile.mkdtemp(prefix="analytics-bench-")) / "old_database.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_database", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Document = tuple[dict[Any, GroupStats], dict[Any, GroupStats]]  # (old-style groups, new-style groups)


def documents(count: int, groups: int) -> list[Document]:
    """``count`` documents of ``groups`` groups: 50 windows by ``groups // 50`` dimension pairs."""
    pairs = [(t, s) for s in SOURCES for t in TYPES] * (groups // 100 + 1)
    pairs = [(t if n < 100 else f"{t}-{n // 100}", s) for n, (t, s) in enumerate(pairs)][: groups // 50]
    out = []
    for number in range(count):
        old, new = {}, {}
        for hour in range(50):
            epoch = 1_714_521_600 + (number * 25 + hour) * 3600
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
            for index, (kind, source) in enumerate(pairs):
                cents = (number * 7 + hour * 13 + index) % 10_000
                total, low, high = (
                    Decimal(cents) / 100 + 10,
                    Decimal(cents % 97) / 100,
                    Decimal(cents) / 100 + 5,
                )
                old[(start, (kind, source))] = GroupStats(
                    10, {"value": Stats(10, float(total), float(low), float(high))}
                )
                dimensions = msgspec.json.encode({"source": source, "type": kind}, order="sorted").decode()
                new[(start, dimensions)] = GroupStats(10, {"value": Stats(10, total, low, high)})
        out.append((old, new))
    return out


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def timed(loads: Callable[[], None]) -> float:
    started = time.perf_counter()
    loads()
    return time.perf_counter() - started


def run_old(server: str, module: Any, docs: list[Document]) -> float:
    with fresh_database(server) as url:
        engine = module.connect(url)
        try:
            return timed(
                lambda: [
                    module.load(engine, f"aggregates/k{n}.json", f"sha{n}", "1h", ("type", "source"), old)
                    for n, (old, _new) in enumerate(docs)
                ]
            )
        finally:
            engine.dispose()


SETTING = database.Setting("1h", ("type", "source"), ("value",))


def run_new(server: str, docs: list[Document]) -> tuple[float, float]:
    """Seconds for the first versions, then for the next versions replacing them."""
    with fresh_database(server) as url:
        database.migrate(url)
        engine = database.connect(url)

        def version(sequencer: str) -> None:
            for n, (_old, new) in enumerate(docs):
                origin = database.Origin(f"k{n}", sequencer)
                database.load(
                    engine, f"aggregates/k{n}/{sequencer}.json", f"{sequencer}{n}", SETTING, origin, new
                )

        try:
            return timed(lambda: version("0065A1")), timed(lambda: version("0065A2"))
        finally:
            engine.dispose()


def run_copy(server: str, docs: list[Document]) -> float:
    with fresh_database(server) as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE UNLOGGED TABLE copy_groups (setting_key varchar(64), window_start timestamptz, "
                "dimensions_key varchar(64), window_size varchar(8), dimensions text, records bigint);"
                "CREATE UNLOGGED TABLE copy_metrics (setting_key varchar(64), window_start timestamptz, "
                "dimensions_key varchar(64), window_size varchar(8), dimensions text, metric varchar(256), "
                "count bigint, sum numeric, min numeric, max numeric)"
            )

        def copy() -> None:
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                for _old, new in docs:
                    groups, metrics = io.StringIO(), io.StringIO()
                    for (start, dimensions), stats in new.items():
                        key = database.dimensions_key(dimensions)
                        escaped = dimensions.replace("\\", "\\\\")
                        head = f"{SETTING.key}\t{start}\t{key}\t1h\t{escaped}"
                        groups.write(f"{head}\t{stats.records}\n")
                        for metric, s in stats.metrics.items():
                            metrics.write(f"{head}\t{metric}\t{s.count}\t{s.sum}\t{s.min}\t{s.max}\n")
                    groups.seek(0)
                    metrics.seek(0)
                    cursor.copy_expert("COPY copy_groups FROM STDIN", groups)
                    cursor.copy_expert("COPY copy_metrics FROM STDIN", metrics)
                    raw.commit()
            finally:
                raw.close()

        try:
            return timed(copy)
        finally:
            engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("TEST_DATABASE_URL"), help="a PostgreSQL server URL")
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--groups", type=int, default=5000, help="groups per document (a multiple of 50)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.url or make_url(args.url).get_backend_name() != "postgresql":
        parser.error(
            "needs a PostgreSQL server: --url, or TEST_DATABASE_URL (scripts/with-throwaway-postgres)"
        )
    docs = documents(args.documents, args.groups)
    total = sum(len(new) for _old, new in docs)
    module = old_module()
    best: dict[str, float] = {}
    for round_ in range(args.repeats):
        order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
        for which in order:
            if which == "old":
                seconds = {"old": run_old(args.url, module, docs)}
            else:
                first, replacing = run_new(args.url, docs)
                seconds = {"new": first, "new, replacing": replacing}
            for name, value in seconds.items():
                best[name] = min(best.get(name, value), value)
        copy = run_copy(args.url, docs)
        best["COPY floor"] = min(best.get("COPY floor", copy), copy)
    print(
        f"{args.documents} documents x {args.groups} groups = {total} groups, best of {args.repeats} rounds"
    )
    print()
    print("| load | seconds | groups/s |")
    print("| --- | ---: | ---: |")
    for name in ("old", "new", "new, replacing", "COPY floor"):
        print(f"| {name} | {best[name]:.2f} | {total / best[name]:,.0f} |")
    print()
    print(f"new / old: {best['old'] / best['new']:.2f}")
    print(f"new, replacing / old: {best['old'] / best['new, replacing']:.2f}")
    print(f"new / COPY floor: {best['COPY floor'] / best['new']:.3f}")
    print(f"new, replacing / COPY floor: {best['COPY floor'] / best['new, replacing']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
