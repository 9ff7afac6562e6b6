"""The SQLite write of a load: contribution rows in and out, rollups added in Python, extremes recomputed.

SQLite cannot add decimal text exactly, so there ``RollupStatements``, the part of a load
(``handlers.loading._Load``) below its decision, reads the rollup rows the load touches, adds in Python
(``exact_context``) and writes the results, inside the transaction whose ``BEGIN IMMEDIATE`` holds the
database's write lock. The min and max of a group a removed contribution held are recomputed from the
contributions that remain (an extreme cannot be subtracted). ``deltas`` nets a document's rows against
the removed ones. The PostgreSQL write is ``handlers.staging``; the row shapes (``GroupRow``, ``MetricRow``,
a load's ``Document``) and window start conversions here serve both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from handlers.exact import Number, exact_context
from handlers.schema import (
    Exact,
    Setting,
    contribution_groups,
    contribution_metrics,
    rollup_groups,
    rollup_metrics,
)


@functools.lru_cache(maxsize=4096)
def _start_time(start: str) -> datetime:
    return datetime.fromisoformat(start.replace("Z", "+00:00"))


def start_text(value: datetime) -> str:
    """A stored window start as a GroupKey's text (PostgreSQL answers in the session's time zone,
    SQLite without one)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: Sequence[Any], size: int = 400) -> Iterator[Sequence[Any]]:
    """Slices short enough for one statement's parameters (SQLite allows 32 766)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


GroupRow = tuple[str, str, str, int]  # window start, dimensions_key, dimensions, records
MetricRow = tuple[str, str, str, str, int, Number, Number, Number]  # + metric, count, sum, min, max


@dataclass(frozen=True)
class Document:
    """A document's rows, prepared before the transaction (``handlers.loading``)."""

    groups: list[GroupRow]
    metrics: list[MetricRow]
    records: int


class RollupStatements:
    """Methods of ``_Load`` that write contributions and rollups on SQLite; ``_Load`` sets ``conn``,
    ``setting``, ``postgresql`` and ``insert``."""

    conn: Connection
    setting: Setting
    postgresql: bool
    insert: Any

    def _group_row(self, start: str, key: str, dimensions: str) -> dict[str, Any]:
        return {
            "setting_key": self.setting.key,
            "window_start": _start_time(start),
            "dimensions_key": key,
            "window_size": self.setting.window,
            "dimensions": dimensions,
        }

    def _group_filter(self, table: Table, keys: Sequence[tuple[str, str]]) -> Any:
        return (table.c.setting_key == self.setting.key) & tuple_(
            table.c.window_start, table.c.dimensions_key
        ).in_([(_start_time(start), key) for start, key in keys])

    def _rollup_groups(self, keys: set[tuple[str, str]]) -> Iterator[tuple[str, str, str, int]]:
        g = rollup_groups.c
        for chunk in _chunks(sorted(keys)):
            for row in self.conn.execute(
                select(g.window_start, g.dimensions_key, g.dimensions, g.records).where(
                    self._group_filter(rollup_groups, chunk)
                )
            ):
                yield start_text(row.window_start), row.dimensions_key, row.dimensions, row.records

    def _rollup_metrics(self, keys: set[tuple[str, str]]) -> Iterator[tuple[Any, ...]]:
        m = rollup_metrics.c
        for chunk in _chunks(sorted(keys)):
            for row in self.conn.execute(
                select(m.window_start, m.dimensions_key, m.metric, m.count, m.sum, m.min, m.max).where(
                    self._group_filter(rollup_metrics, chunk)
                )
            ):
                yield (start_text(row.window_start), row.dimensions_key, row.metric, *row[3:])

    def _recompute(self, group_keys: set[tuple[str, str]], metric_keys: set[tuple[str, str, str]]) -> None:
        """SQLite: min and max of the metrics a removed contribution had, from the contributions that
        remain (compared in Python: text does not compare as numbers); rollup rows no contribution
        remains in are deleted."""
        g, m = contribution_groups.c, contribution_metrics.c
        remaining: set[tuple[str, str]] = set()
        extremes: dict[tuple[str, str, str], list[Number]] = {}
        joined = contribution_groups.outerjoin(
            contribution_metrics,
            (m.contribution_id == g.contribution_id)
            & (m.window_start == g.window_start)
            & (m.dimensions_key == g.dimensions_key),
        )
        for chunk in _chunks(sorted(group_keys)):
            query = select(g.window_start, g.dimensions_key, m.metric, m.min, m.max).select_from(joined)
            for row in self.conn.execute(query.where(self._group_filter(contribution_groups, chunk))):
                group = (start_text(row.window_start), row.dimensions_key)
                remaining.add(group)
                key = (*group, row.metric)
                if row.metric is None or key not in metric_keys:
                    continue
                if key in extremes:
                    low, high = extremes[key]
                    extremes[key] = [min(low, row.min), max(high, row.max)]
                else:
                    extremes[key] = [row.min, row.max]
        setting_key = self.setting.key
        gone = [{"s": _start_time(s), "k": k} for s, k in sorted(group_keys - remaining)]
        gone_metrics = [
            {"s": _start_time(s), "k": k, "m": x} for s, k, x in sorted(metric_keys - extremes.keys())
        ]
        for table, rows in ((rollup_metrics, gone_metrics), (rollup_groups, gone)):
            if rows:
                where = [table.c.setting_key == setting_key]
                where += [table.c.window_start == bindparam("s"), table.c.dimensions_key == bindparam("k")]
                if table is rollup_metrics:
                    where.append(table.c.metric == bindparam("m"))
                self.conn.execute(delete(table).where(*where), rows)
        if extremes:
            r = rollup_metrics.c
            self.conn.execute(
                update(rollup_metrics)
                .where(
                    r.setting_key == setting_key,
                    r.window_start == bindparam("s"),
                    r.dimensions_key == bindparam("k"),
                    r.metric == bindparam("m"),
                )
                .values(min=bindparam("lo", type_=Exact()), max=bindparam("hi", type_=Exact())),
                [
                    {"s": _start_time(s), "k": k, "m": x, "lo": low, "hi": high}
                    for (s, k, x), (low, high) in sorted(extremes.items())
                ],
            )

    def _take_out(
        self, removed: list[int]
    ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, str, int, Number, Number, Number]]]:
        """Delete the removed contributions' rows, returning them (SQLite)."""
        g, m = contribution_groups.c, contribution_metrics.c
        old_groups = [
            (start_text(row.window_start), row.dimensions_key, row.records)
            for row in self.conn.execute(
                delete(contribution_groups)
                .where(g.contribution_id.in_(removed))
                .returning(g.window_start, g.dimensions_key, g.records)
            )
        ]
        old_metrics = [
            (
                start_text(row.window_start),
                row.dimensions_key,
                row.metric,
                row.count,
                row.sum,
                row.min,
                row.max,
            )
            for row in self.conn.execute(
                delete(contribution_metrics)
                .where(m.contribution_id.in_(removed))
                .returning(m.window_start, m.dimensions_key, m.metric, m.count, m.sum, m.min, m.max)
            )
        ]
        return old_groups, old_metrics

    def _put_in(self, new_id: int, document: Document) -> None:
        """The document's rows as contribution ``new_id`` (SQLite)."""
        if document.groups:
            self.conn.execute(
                contribution_groups.insert(),
                [
                    {
                        "contribution_id": new_id,
                        "window_start": _start_time(start),
                        "dimensions_key": key,
                        "setting_key": self.setting.key,
                        "records": records,
                    }
                    for start, key, _dimensions, records in document.groups
                ],
            )
        if document.metrics:
            self.conn.execute(
                contribution_metrics.insert(),
                [
                    {
                        "contribution_id": new_id,
                        "window_start": _start_time(start),
                        "dimensions_key": key,
                        "metric": metric,
                        "count": count,
                        "sum": total,
                        "min": low,
                        "max": high,
                    }
                    for start, key, _dimensions, metric, count, total, low, high in document.metrics
                ],
            )

    def _add_in_python(self, groups: Sequence[GroupRow], metrics: Sequence[MetricRow]) -> None:
        """SQLite: read the rollups the deltas touch, add in Python, write the results (the write lock
        is this transaction's since its BEGIN IMMEDIATE)."""
        current_groups = {
            (start, key): (dimensions, records)
            for start, key, dimensions, records in self._rollup_groups(
                {(start, key) for start, key, *_ in groups}
            )
        }
        rows = []
        for start, key, dimensions, records in groups:
            dimensions, before = current_groups.get((start, key), (dimensions, 0))
            rows.append(self._group_row(start, key, dimensions) | {"records": before + records})
        if rows:
            stmt = sqlite.insert(rollup_groups)
            self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.name for c in rollup_groups.primary_key],
                    set_={"records": stmt.excluded.records},
                ),
                rows,
            )
        current_metrics = {
            (start, key, metric): values
            for start, key, metric, *values in self._rollup_metrics(
                {(start, key) for start, key, *_ in metrics}
            )
        }
        rows = []
        with exact_context():
            for start, key, dimensions, metric, count, total, low, high in metrics:
                before = current_metrics.get((start, key, metric))
                if before is not None:
                    count, total = before[0] + count, before[1] + total
                    low, high = min(before[2], low), max(before[3], high)
                row = self._group_row(start, key, dimensions)
                rows.append(row | {"metric": metric, "count": count, "sum": total, "min": low, "max": high})
        if rows:
            stmt = sqlite.insert(rollup_metrics)
            self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.name for c in rollup_metrics.primary_key],
                    set_={name: stmt.excluded[name] for name in ("count", "sum", "min", "max")},
                ),
                rows,
            )


def deltas(
    document: Document,
    old_groups: Iterable[tuple[str, str, int]],
    old_metrics: Iterable[tuple[str, str, str, int, Number, Number, Number]],
) -> tuple[list[GroupRow], list[MetricRow]]:
    """The document's rows minus the removed contributions', per rollup row (SQLite).

    A row only the removed side has keeps the removed min and max as its own: they are within the
    rollup's, so taking the smaller and the larger leaves the rollup's extremes as they are until
    ``_recompute`` sets them.
    """
    groups: dict[tuple[str, str], list[Any]] = {(s, k): [d, r] for s, k, d, r in document.groups}
    dimensions = {(s, k): d for s, k, d, _r in document.groups}
    metrics: dict[tuple[str, str, str], list[Any]] = {
        (s, k, x): [d, c, su, lo, hi] for s, k, d, x, c, su, lo, hi in document.metrics
    }
    with exact_context():
        for start, key, records in old_groups:
            entry = groups.setdefault((start, key), ["", 0])
            entry[1] -= records
        for start, key, metric, count, total, low, high in old_metrics:
            entry = metrics.get((start, key, metric))
            if entry is None:
                metrics[(start, key, metric)] = [dimensions.get((start, key), ""), -count, -total, low, high]
            else:
                entry[1] -= count
                entry[2] -= total
    group_rows = sorted((s, k, d, r) for (s, k), (d, r) in groups.items())
    metric_rows = sorted(
        ((s, k, d, x, c, su, lo, hi) for (s, k, x), (d, c, su, lo, hi) in metrics.items()),
        key=lambda row: (row[0], row[1], row[3]),
    )
    return group_rows, metric_rows
