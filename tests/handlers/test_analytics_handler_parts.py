"""The analytics handler on a part of a raw version of several parts (handlers.versions gathers them)."""

from __future__ import annotations

from typing import Any

import pytest
from handler_support import ANALYTICS, event_of, put, record

from handlers import analytics_handler as analytics
from handlers import contract
from handlers.aggregation import aggregate_records
from handlers.documents import Origin, to_document
from handlers.events import part_key
from handlers.groups import AggregateResult
from handlers.metrics import Counts


def put_later_part(s3: Any) -> dict[str, Any]:
    """Part 1 of a version of several parts, written as processing would; returns its event record."""
    groups = aggregate_records([record(1)], 3600, ("type",), ("value",))
    origin = Origin(rel="x", sequencer="0065A1", version_id=None, part=1, parts=None)
    raw = to_document(
        AggregateResult(groups, Counts(1, 1), (), 0),
        {"bucket": "processed", "key": "k", "sha256": "0" * 64},
        "1h",
        3600,
        ("type",),
        ("value",),
        origin=origin,
    )
    key = part_key(contract.AGGREGATES_PREFIX, "x", "0065A1", 1, contract.AGGREGATES_SUFFIX)
    return put(s3, ANALYTICS, key, raw)


def test_a_part_of_several_builds_no_report_of_its_own(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN part 1 of a version of several parts, and the report builder counted
    built = []
    real = analytics.build_report
    monkeypatch.setattr(analytics, "build_report", lambda *args: built.append(args) or real(*args))
    ref = put_later_part(analytics_env)
    # WHEN it is delivered
    result = analytics.handler(event_of(ref), None)
    # THEN it is counted towards its version, which waits for part 0, and no report of its own is built
    assert result["objects"][0]["report"] == "waiting for part 0"
    assert built == []
