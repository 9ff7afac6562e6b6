"""The analytics stage's report (``reports/<rel>/<TAG>.json``, ``REPORT_FORMAT``) and SNS summary (pure).

The report states what was loaded and the document's exact totals (``count`` an integer, ``sum``,
``min``, ``max`` canonical decimal strings), with the top groups by record count; a rejected object's
report names the reason. Nothing in it depends on the wall clock or the delivery, so a retry writes the
same bytes (``handlers.analytics_handler``).

A raw version of several ``records/`` parts (``handlers.parts``) has one report too, written once every
part is loaded (``build_version_report``): the same fields over all its parts' documents (counts and
totals added up, groups merged across parts), ``origin.parts`` their number, ``database`` one state for
the version (``version_state``), and ``parts`` listing each part's document, state, groups and records.
It is a function of the parts' documents and their ledger states alone, so two invocations that both
find the version complete write the same bytes. ``VersionTotals`` builds it one part at a time, keeping
each merged group compactly (its records and its metrics' JSON) rather than every part's document. A
version of one part has today's report, unchanged.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

import msgspec

from handlers.documents import (
    COUNT_NAMES,
    AggregatesDocument,
    MetricDocument,
    groups_from_document,
    metric_document,
)
from handlers.exact import exact_context, parse
from handlers.groups import GroupKey, GroupStats, Stats
from handlers.metrics import Counts

REPORT_FORMAT = "data-pipeline/report@2"
_Group = TypeVar("_Group")  # a group as kept: GroupStats, or VersionTotals' (records, metrics' JSON)


def _add_totals(totals: dict[str, list[Any]], groups: Iterable[GroupStats]) -> None:
    """Add ``groups``' metric stats into ``totals`` (name → [count, sum, min, max]), exactly."""
    with exact_context():
        for stats in groups:
            for name, s in stats.metrics.items():
                if name in totals:
                    count, total, low, high = totals[name]
                    totals[name] = [count + s.count, total + s.sum, min(low, s.min), max(high, s.max)]
                else:
                    totals[name] = [s.count, s.sum, s.min, s.max]


def _top(
    groups: Mapping[GroupKey, _Group], records: Callable[[_Group], int], top: int
) -> list[tuple[GroupKey, _Group]]:
    """The ``top`` groups in the report's order: most records (``records`` of a group) first, then window
    start and dimensions (unique)."""
    return heapq.nsmallest(top, groups.items(), key=lambda item: (-records(item[1]), *item[0]))


def _report(
    source: Mapping[str, Any],
    document: AggregatesDocument,
    database: str,
    size: tuple[int, int],
    totals: Mapping[str, list[Any]],
    top: Iterable[tuple[GroupKey, GroupStats]],
) -> dict[str, Any]:
    """The report's fields; ``size`` is (groups, records), ``top`` the listed groups in order."""
    origin = document.origin
    return {
        "format": REPORT_FORMAT,
        "source": dict(source),
        "origin": {"rel": origin.rel, "sequencer": origin.sequencer, "version_id": origin.version_id},
        "database": database,
        "window": document.window,
        "dimensions": list(document.dimensions),
        "metrics": list(document.metrics),
        "counts": dict(document.counts),
        "rejected_total": document.rejected_total,
        "totals": {
            "groups": size[0],
            "records": size[1],
            "metrics": {name: metric_document(Stats(*values)) for name, values in sorted(totals.items())},
        },
        "top_groups": [
            {
                "window_start": start,
                "dimensions": msgspec.Raw(dimensions.encode()),  # canonical already: kept as it is
                "records": stats.records,
                "metrics": {name: metric_document(s) for name, s in sorted(stats.metrics.items())},
            }
            for (start, dimensions), stats in top
        ],
    }


def build_report(
    source: Mapping[str, Any],
    document: AggregatesDocument,
    groups: Mapping[GroupKey, GroupStats],
    database: str,
    top: int,
) -> dict[str, Any]:
    """The report: what was loaded, exact totals, and the ``top`` groups by record count (pure)."""
    totals: dict[str, list[Any]] = {}
    _add_totals(totals, groups.values())
    size = (len(groups), sum(stats.records for stats in groups.values()))
    return _report(source, document, database, size, totals, _top(groups, attrgetter("records"), top))


def version_state(states: Sequence[str]) -> str:
    """One state for a version from its parts' states: theirs if they agree; ``superseded`` if any part
    is (in replace mode a newer version then holds the key, which took every part of this one out);
    else ``loaded`` (some parts loaded, some found in the totals already)."""
    distinct = set(states)
    if len(distinct) == 1:
        return distinct.pop()
    return "superseded" if "superseded" in distinct else "loaded"


class VersionTotals:
    """A version's report built part by part (``add`` each part's document in part order, then
    ``report``): what it keeps grows with the version's distinct groups, never with its documents.

    Each group is kept as its record count and its metrics' canonical JSON (what the document says,
    re-encoded only when a later part has the same group and the two are merged, exactly); the metric
    totals are added up as each part comes. The report is the one ``build_report`` would write over the
    merged groups: same totals, same top groups in the same order."""

    def __init__(self) -> None:
        self.first: tuple[Mapping[str, Any], AggregatesDocument] | None = None
        self.disagree = False  # a part aggregated with other settings than part 0's
        self.counts = dict.fromkeys(COUNT_NAMES, 0)
        self.rejected_total = 0
        self.totals: dict[str, list[Any]] = {}
        self.groups: dict[GroupKey, tuple[int, bytes]] = {}
        self.parts: list[dict[str, Any]] = []
        self._texts: dict[str, str] = {}  # one copy of each window start and dimensions text

    def add(
        self,
        source: Mapping[str, Any],
        document: AggregatesDocument,
        groups: Mapping[GroupKey, GroupStats],
        state: str,
    ) -> None:
        """Count in the next part: its checked document, its groups (``groups_from_document``), and
        what loading it did."""
        if self.first is None:  # part 0's fields, without its groups, name the version's setting
            self.first = (dict(source), msgspec.structs.replace(document, groups=[]))
        first = self.first[1]
        if (document.window, document.dimensions, document.metrics) != (
            first.window,
            first.dimensions,
            first.metrics,
        ):
            self.disagree = True
        self.parts.append(
            {
                "part": len(self.parts),
                "key": source["key"],
                "sha256": source["sha256"],
                "database": state,
                "groups": len(document.groups),
                "records": document.counts["records_valid"],
            }
        )
        for name in COUNT_NAMES:
            self.counts[name] += document.counts[name]
        self.rejected_total += document.rejected_total
        if self.disagree:
            return
        _add_totals(self.totals, groups.values())
        kept, texts = self.groups, self._texts
        for group, ((start, dimensions), stats) in zip(document.groups, groups.items(), strict=True):
            key = (texts.setdefault(start, start), texts.setdefault(dimensions, dimensions))
            if key in kept:
                records, metrics = kept[key]
                merged = GroupStats(records, _unpack(metrics)).merge(stats)
                kept[key] = (merged.records, _pack(merged.metrics))
            else:  # the document's own canonical strings, as they are
                kept[key] = (stats.records, _encode(group.metrics))

    def report(self, states: Sequence[str], top: int) -> dict[str, Any]:
        """The version's report (see the module docstring); ``states`` each part's, in part order."""
        assert self.first is not None, "no part was added"
        first_source, first = self.first
        if self.disagree:
            report, _ = rejected(
                first_source, "parts_disagree", "the parts were aggregated with different settings"
            )
            return report
        whole = msgspec.structs.replace(first, counts=dict(self.counts), rejected_total=self.rejected_total)
        ranked = _top(self.groups, itemgetter(0), top)
        size = (len(self.groups), sum(records for records, _ in self.groups.values()))
        listed = [(key, GroupStats(records, _unpack(metrics))) for key, (records, metrics) in ranked]
        report = _report(first_source, whole, version_state(states), size, self.totals, listed)
        report["origin"]["parts"] = len(self.parts)
        report["parts"] = self.parts
        return report


_encode = msgspec.json.Encoder().encode
_decode_metrics = msgspec.json.Decoder(dict[str, MetricDocument]).decode


def _pack(metrics: Mapping[str, Stats]) -> bytes:
    return _encode({name: metric_document(s) for name, s in metrics.items()})


def _unpack(raw: bytes) -> dict[str, Stats]:
    return {
        name: Stats(m.count, parse(m.sum), parse(m.min), parse(m.max))
        for name, m in _decode_metrics(raw).items()
    }


def build_version_report(
    parts: Sequence[tuple[Mapping[str, Any], AggregatesDocument]], states: Sequence[str], top: int
) -> dict[str, Any]:
    """The report of a version of several parts: ``parts`` is each part's (source, document) in part
    order, ``states`` what loading each did (pure; see the module docstring)."""
    version = VersionTotals()
    for (source, document), state in zip(parts, states, strict=True):
        version.add(source, document, groups_from_document(document), state)
    return version.report(states, top)


def summary(report: Mapping[str, Any], rel: str, repeated: bool) -> tuple[str, str]:
    subject = f"data-pipeline report: {rel}".encode("ascii", "replace").decode()
    subject = "".join(ch if ch.isprintable() else "?" for ch in subject)[:100]
    message = {
        "report": rel,
        "database": report["database"],
        "duplicate_delivery": repeated,
        "groups": report["totals"]["groups"] if "totals" in report else 0,
        "records": report["totals"]["records"] if "totals" in report else 0,
        "rejected_total": report.get("rejected_total", 0),
    }
    return subject, json.dumps(message, sort_keys=True)


def rejected(source: Mapping[str, Any], reason: str, detail: str) -> tuple[dict[str, Any], Counts]:
    """The report of an object that was not loaded, and its counts (one object quarantined)."""
    report = {
        "format": REPORT_FORMAT,
        "source": dict(source),
        "database": "rejected",
        "reason": reason,
        "detail": detail,
    }
    return report, Counts(records_read=1, records_quarantined=1)
