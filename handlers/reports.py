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
find the version complete write the same bytes. A version of one part has today's report, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from handlers.documents import COUNT_NAMES, AggregatesDocument, groups_from_document
from handlers.exact import Number, canonical, exact_context
from handlers.groups import GroupKey, GroupStats
from handlers.metrics import Counts

REPORT_FORMAT = "data-pipeline/report@2"


def _stats_json(count: int, total: Number, low: Number, high: Number) -> dict[str, Any]:
    return {"count": count, "sum": canonical(total), "min": canonical(low), "max": canonical(high)}


def build_report(
    source: Mapping[str, Any],
    document: AggregatesDocument,
    groups: Mapping[GroupKey, GroupStats],
    database: str,
    top: int,
) -> dict[str, Any]:
    """The report: what was loaded, exact totals, and the ``top`` groups by record count (pure)."""
    totals: dict[str, list[Any]] = {}
    with exact_context():
        for stats in groups.values():
            for name, s in stats.metrics.items():
                if name in totals:
                    count, total, low, high = totals[name]
                    totals[name] = [count + s.count, total + s.sum, min(low, s.min), max(high, s.max)]
                else:
                    totals[name] = [s.count, s.sum, s.min, s.max]
    ranked = sorted(groups.items(), key=lambda item: (-item[1].records, item[0][0], item[0][1]))
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
            "groups": len(groups),
            "records": sum(stats.records for stats in groups.values()),
            "metrics": {name: _stats_json(*values) for name, values in sorted(totals.items())},
        },
        "top_groups": [
            {
                "window_start": start,
                "dimensions": msgspec.Raw(dimensions.encode()),  # canonical already: kept as it is
                "records": stats.records,
                "metrics": {
                    name: _stats_json(s.count, s.sum, s.min, s.max)
                    for name, s in sorted(stats.metrics.items())
                },
            }
            for (start, dimensions), stats in ranked[:top]
        ],
    }


def version_state(states: Sequence[str]) -> str:
    """One state for a version from its parts' states: theirs if they agree; ``superseded`` if any part
    is (in replace mode a newer version then holds the key, which took every part of this one out);
    else ``loaded`` (some parts loaded, some found in the totals already)."""
    distinct = set(states)
    if len(distinct) == 1:
        return distinct.pop()
    return "superseded" if "superseded" in distinct else "loaded"


def build_version_report(
    parts: Sequence[tuple[Mapping[str, Any], AggregatesDocument]], states: Sequence[str], top: int
) -> dict[str, Any]:
    """The report of a version of several parts: ``parts`` is each part's (source, document) in part
    order, ``states`` what loading each did (pure; see the module docstring)."""
    first_source, first = parts[0]
    setting = (first.window, first.dimensions, first.metrics)
    if any((d.window, d.dimensions, d.metrics) != setting for _, d in parts):
        report, _ = rejected(
            first_source, "parts_disagree", "the parts were aggregated with different settings"
        )
        return report
    groups: dict[GroupKey, GroupStats] = {}
    for _, document in parts:
        for key, stats in groups_from_document(document).items():
            groups[key] = groups[key].merge(stats) if key in groups else stats
    whole = msgspec.structs.replace(
        first,
        counts={name: sum(d.counts[name] for _, d in parts) for name in COUNT_NAMES},
        rejected_total=sum(d.rejected_total for _, d in parts),
    )
    report = build_report(first_source, whole, groups, version_state(states), top)
    report["origin"]["parts"] = len(parts)
    report["parts"] = [
        {
            "part": index,
            "key": source["key"],
            "sha256": source["sha256"],
            "database": state,
            "groups": len(document.groups),
            "records": document.counts["records_valid"],
        }
        for index, ((source, document), state) in enumerate(zip(parts, states, strict=True))
    ]
    return report


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
