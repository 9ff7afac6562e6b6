"""handlers.reports and the documents' part fields: the report of a raw version of several parts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from handler_support import PROPERTY, record
from hypothesis import given
from hypothesis import strategies as st

from handlers import contract
from handlers.aggregation import aggregate_records
from handlers.documents import (
    MetricDocument,
    Origin,
    groups_from_document,
    metric_document,
    read_document,
    read_groups,
    to_document,
)
from handlers.groups import AggregateResult, Stats
from handlers.metrics import Counts
from handlers.reports import build_report, build_version_report, version_state

DIMENSIONS, METRICS = ("type", "source"), ("value",)


def marked(part: int) -> str:
    """The tag with part `part`'s marker (part 0's too: these sources need not be real part keys)."""
    return f"0065A1{contract.PART_MARKER}{part:0{contract.PART_DIGITS}d}"


def document(records: list[dict[str, Any]], part: int, parts: int | None, window: str = "1h") -> Any:
    groups = aggregate_records(records, 3600 if window == "1h" else 86400, DIMENSIONS, METRICS)
    result = AggregateResult(groups, Counts(len(records), len(records)), (), 0)
    source = {
        "bucket": "processed",
        "key": f"{contract.RECORDS_PREFIX}x/{marked(part)}{contract.RECORDS_SUFFIX}",
        "sha256": "0" * 64,
    }
    origin = Origin(rel="x", sequencer="0065A1", version_id=None, part=part, parts=parts)
    seconds = 3600 if window == "1h" else 86400
    return read_document(to_document(result, source, window, seconds, DIMENSIONS, METRICS, origin=origin))


def source(part: int) -> dict[str, str]:
    return {
        "bucket": "analytics",
        "key": f"{contract.AGGREGATES_PREFIX}x/{marked(part)}{contract.AGGREGATES_SUFFIX}",
        "sha256": str(part) * 64,
    }


records = st.lists(
    st.builds(
        lambda n, kind, value: record(n, type=kind, value=value),
        st.integers(0, 99),
        st.sampled_from(["click", "view"]),
        st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False),
    ),
    min_size=1,
    max_size=12,
)


@PROPERTY
@given(records, st.integers(min_value=1, max_value=4), st.data())
def test_a_version_report_over_its_parts_has_the_totals_of_the_version_in_one_part(
    all_records: list[dict[str, Any]], parts: int, data: st.DataObject
) -> None:
    # GIVEN the records of one version cut, in order, into parts at any points
    cuts = sorted(
        data.draw(st.lists(st.integers(0, len(all_records)), min_size=parts - 1, max_size=parts - 1))
    )
    pieces = [all_records[a:b] for a, b in zip([0, *cuts], [*cuts, len(all_records)], strict=True)]
    documents = [document(piece, i, parts if i == 0 else None) for i, piece in enumerate(pieces)]
    whole = document(all_records, 0, 1)
    # WHEN the version's report is built from the parts
    report = build_version_report(
        [(source(i), d) for i, d in enumerate(documents)], ["loaded"] * parts, top=100
    )
    # THEN its counts, totals and top groups are the whole version's
    single = build_report(source(0), whole, _groups(whole), "loaded", 100)
    for field in ("counts", "totals", "top_groups", "window", "dimensions", "metrics", "rejected_total"):
        assert _plain(report[field]) == _plain(single[field])
    assert report["origin"]["parts"] == parts
    assert [entry["records"] for entry in report["parts"]] == [len(piece) for piece in pieces]


def test_parts_aggregated_with_different_settings_are_reported_as_such() -> None:
    parts = [(source(0), document([record(1)], 0, 2)), (source(1), document([record(2)], 1, None, "1d"))]
    report = build_version_report(parts, ["loaded", "loaded"], top=3)
    assert (report["database"], report["reason"]) == ("rejected", "parts_disagree")


@pytest.mark.parametrize(
    ("states", "state"),
    [
        (["loaded", "loaded"], "loaded"),
        (["duplicate", "duplicate"], "duplicate"),
        (["loaded", "duplicate"], "loaded"),
        (["loaded", "superseded"], "superseded"),
        (["not_configured"] * 3, "not_configured"),
    ],
)
def test_a_version_has_one_state_from_its_parts(states: list[str], state: str) -> None:
    assert version_state(states) == state


@pytest.mark.parametrize(("part", "parts"), [(0, None), (1, 3)])
def test_only_part_0_names_the_number_of_parts(part: int, parts: int | None) -> None:
    raw = msgspec.json.encode(document([record(1)], 0, 1))  # a valid document, then its origin changed
    bad = raw.replace(
        b'"version_id":null',
        f'"version_id":null,"part":{part},"parts":{msgspec.json.encode(parts).decode()}'.encode(),
    )
    with pytest.raises(ValueError, match="part 0 names the number of parts"):
        read_document(bad)


def _groups(doc: Any) -> Any:
    from handlers.documents import groups_from_document

    return groups_from_document(doc)


def _plain(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


def test_a_document_read_with_its_groups_has_the_groups_read_from_it_afterwards() -> None:
    raw = msgspec.json.encode(document([record(1), record(2, type="view"), record(3)], 0, 1))
    read, groups = read_groups(raw)
    assert read == read_document(raw)
    assert groups == groups_from_document(read)
    assert len(groups) == 2


def test_a_metric_is_written_in_canonical_decimals_in_documents_and_reports() -> None:
    stats = Stats(2, Decimal("1.50"), Decimal("-0.0"), Decimal("1.00"))
    assert metric_document(stats) == MetricDocument(2, "1.5", "0", "1")
