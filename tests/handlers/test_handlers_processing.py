"""The processing handler against moto S3: records/ → aggregates/."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from handler_support import ANALYTICS, PROCESSED, event_of, get_bytes, gz, jsonl, keys, put, record

from handlers import processing


def aggregates(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(get_bytes(s3, ANALYTICS, key))


def test_records_are_aggregated_per_window_and_dimensions(processing_env: Any) -> None:
    # GIVEN normalised records in two hours and two types
    body = jsonl(
        record(1, timestamp="2024-05-01T12:00:00Z"),
        record(3, timestamp="2024-05-01T12:59:59.999999Z"),
        record(5, timestamp="2024-05-01T13:00:00Z"),
        record(7, timestamp="2024-05-01T12:30:00Z", type="view", source=None),
    )
    ref = put(processing_env, PROCESSED, "records/day one.jsonl.jsonl.gz", gz(body))
    # WHEN processed
    processing.handler(event_of(ref), None)
    # THEN one document lists the groups in order with count/sum/min/max
    document = aggregates(processing_env, "aggregates/day one.jsonl.json")
    assert [(g["window_start"], g["dimensions"], g["records"], g["metrics"]) for g in document["groups"]] == [
        (
            "2024-05-01T12:00:00Z",
            {"type": "click", "source": "web"},
            2,
            {"value": {"count": 2, "sum": 4, "min": 1, "max": 3}},
        ),
        (
            "2024-05-01T12:00:00Z",
            {"type": "view", "source": None},
            1,
            {"value": {"count": 1, "sum": 7, "min": 7, "max": 7}},
        ),
        (
            "2024-05-01T13:00:00Z",
            {"type": "click", "source": "web"},
            1,
            {"value": {"count": 1, "sum": 5, "min": 5, "max": 5}},
        ),
    ]
    assert document["counts"] == {
        "records_read": 4,
        "records_valid": 4,
        "records_quarantined": 0,
        "blank_lines": 0,
    }
    assert document["source"] == {
        "bucket": PROCESSED,
        "key": "records/day one.jsonl.jsonl.gz",
        "sha256": hashlib.sha256(gz(body)).hexdigest(),
    }


def test_bad_lines_are_listed_as_rejected_not_dropped(processing_env: Any) -> None:
    body = jsonl(record(1), record(2, value="two")) + b"{oops\n\n"
    processing.handler(event_of(put(processing_env, PROCESSED, "records/bad.jsonl.gz", gz(body))), None)
    document = aggregates(processing_env, "aggregates/bad.json")
    assert [(r["line"], r["reason"]) for r in document["rejected"]] == [
        (2, "metric_not_numeric"),
        (3, "invalid_json"),
    ]
    assert document["counts"] == {
        "records_read": 4,
        "records_valid": 1,
        "records_quarantined": 2,
        "blank_lines": 1,
    }
    head = processing_env.head_object(Bucket=ANALYTICS, Key="aggregates/bad.json")
    assert head["Metadata"]["records-quarantined"] == "2"


def test_unreadable_records_object_is_one_rejection(processing_env: Any) -> None:
    processing.handler(event_of(put(processing_env, PROCESSED, "records/x.jsonl.gz", b"plain text\n")), None)
    document = aggregates(processing_env, "aggregates/x.json")
    assert (document["groups"], [(r["line"], r["reason"]) for r in document["rejected"]]) == (
        [],
        [(0, "not_gzip")],
    )


def test_configured_window_dimensions_and_metrics_are_used(
    processing_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGGREGATION_WINDOW", "1d")
    monkeypatch.setenv("AGGREGATION_DIMENSIONS", "source")
    monkeypatch.setenv("AGGREGATION_METRICS", "value,latency")
    body = jsonl(record(1, latency=10), record(2, timestamp="2024-05-01T23:00:00Z", type="view"))
    processing.handler(event_of(put(processing_env, PROCESSED, "records/c.jsonl.gz", gz(body))), None)
    [group] = aggregates(processing_env, "aggregates/c.json")["groups"]
    assert (group["window_start"], group["dimensions"], group["records"]) == (
        "2024-05-01T00:00:00Z",
        {"source": "web"},
        2,
    )
    assert group["metrics"]["latency"] == {"count": 1, "sum": 10, "min": 10, "max": 10}


def test_redelivery_rewrites_identical_aggregates(processing_env: Any) -> None:
    event = event_of(
        put(processing_env, PROCESSED, "records/r.jsonl.gz", gz(jsonl(*(record(n) for n in range(20)))))
    )
    processing.handler(event, None)
    first = get_bytes(processing_env, ANALYTICS, "aggregates/r.json")
    processing.handler(event, None)
    assert get_bytes(processing_env, ANALYTICS, "aggregates/r.json") == first
    assert keys(processing_env, ANALYTICS) == ["aggregates/r.json"]


def test_identical_records_rewritten_as_a_new_version_give_identical_aggregates(processing_env: Any) -> None:
    # GIVEN a versioned processed bucket, where a redelivered ingestion event writes the same
    # records/ bytes again as a new version
    processing_env.put_bucket_versioning(Bucket=PROCESSED, VersioningConfiguration={"Status": "Enabled"})
    body = gz(jsonl(record(1), record(2)))
    first_ref = put(processing_env, PROCESSED, "records/v.jsonl.gz", body)
    second_ref = put(processing_env, PROCESSED, "records/v.jsonl.gz", body)
    assert first_ref["s3"]["object"]["versionId"] != second_ref["s3"]["object"]["versionId"]
    # WHEN processing runs for each version
    processing.handler(event_of(first_ref), None)
    first = get_bytes(processing_env, ANALYTICS, "aggregates/v.json")
    processing.handler(event_of(second_ref), None)
    # THEN the aggregates bytes, whose hash is analytics' duplicate check, are the same
    assert get_bytes(processing_env, ANALYTICS, "aggregates/v.json") == first


def test_a_metric_sum_beyond_float_range_rejects_the_record_that_would_overflow(processing_env: Any) -> None:
    # GIVEN valid records whose values are finite but whose sum is not, and an integer beyond float range
    body = jsonl(record(1e308), record(1e308), record(10**400), record(5))
    # WHEN processed
    processing.handler(event_of(put(processing_env, PROCESSED, "records/big.jsonl.gz", gz(body))), None)
    document = aggregates(processing_env, "aggregates/big.json")
    # THEN the records that would overflow are rejected with a reason, and the group is left as if
    # they had never been seen (no null sum, no half-counted record)
    assert [(r["line"], r["reason"]) for r in document["rejected"]] == [
        (2, "metric_out_of_range"),
        (3, "metric_out_of_range"),
    ]
    [group] = document["groups"]
    assert (group["records"], group["metrics"]["value"]) == (
        2,
        {"count": 2, "sum": 1e308 + 5, "min": 5, "max": 1e308},
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [(b'{"type": "\xff"}', "invalid_utf8"), (b"[" * 100_000 + b"]" * 100_000, "invalid_json")],
    ids=["invalid-utf8", "deep-nesting"],
)
def test_a_records_line_that_is_not_json_text_is_rejected_not_raised(
    processing_env: Any, line: bytes, reason: str
) -> None:
    # GIVEN a records/ object (written by something other than ingestion) with such a line
    body = jsonl(record(1)) + line + b"\n"
    # WHEN processed
    processing.handler(event_of(put(processing_env, PROCESSED, "records/odd.jsonl.gz", gz(body))), None)
    # THEN the line is rejected with its reason and the good one aggregated
    document = aggregates(processing_env, "aggregates/odd.json")
    assert [(r["line"], r["reason"]) for r in document["rejected"]] == [(2, reason)]
    assert document["counts"]["records_valid"] == 1


def test_the_document_names_the_whole_records_object_even_when_reading_stopped_early(
    processing_env: Any,
) -> None:
    # GIVEN a records object that is not gzip, larger than one read: processing stops at its first bytes
    body = b"not gzip\n" * (400 << 10)
    # WHEN processed
    processing.handler(event_of(put(processing_env, PROCESSED, "records/big.jsonl.gz", body)), None)
    # THEN the document's hash is of every byte of the object, as for one that was read to its end
    document = aggregates(processing_env, "aggregates/big.json")
    assert [r["reason"] for r in document["rejected"]] == ["not_gzip"]
    assert document["source"]["sha256"] == hashlib.sha256(body).hexdigest()
