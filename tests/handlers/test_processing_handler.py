"""The processing handler against moto S3: records/<rel>/<TAG>.jsonl.gz → aggregates/<rel>/<TAG>.json."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from handler_support import ANALYTICS, PROCESSED, event_of, get_bytes, gz, jsonl, keys, put, record, s3_record

from handlers import contract
from handlers import processing_handler as processing
from handlers.documents import groups_from_document, read_document
from handlers.errors import EventError
from handlers.events import part_key, versioned_key
from handlers.groups import FORMAT

TAG = "0065A1B2C3D4E5F6A7"


def records_key(rel: str, tag: str = TAG) -> str:
    return versioned_key(contract.RECORDS_PREFIX, rel, tag, contract.RECORDS_SUFFIX)


def aggregates_key(rel: str, tag: str = TAG) -> str:
    return versioned_key(contract.AGGREGATES_PREFIX, rel, tag, contract.AGGREGATES_SUFFIX)


def aggregates(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(get_bytes(s3, ANALYTICS, key), parse_float=Decimal)


def test_records_are_aggregated_per_window_and_dimensions(processing_env: Any) -> None:
    # GIVEN normalised records in two hours and two types
    body = jsonl(
        record(1, timestamp="2024-05-01T12:00:00Z"),
        record(3, timestamp="2024-05-01T12:59:59.999999Z"),
        record(5, timestamp="2024-05-01T13:00:00Z"),
        record(7, timestamp="2024-05-01T12:30:00Z", type="view", source=None),
    )
    ref = put(processing_env, PROCESSED, records_key("day one.jsonl"), gz(body))
    # WHEN processed
    processing.handler(event_of(ref), None)
    # THEN one document per raw version lists the groups in order with count/sum/min/max
    document = aggregates(
        processing_env,
        f"{contract.AGGREGATES_PREFIX}day one.jsonl/0065A1B2C3D4E5F6A7{contract.AGGREGATES_SUFFIX}",
    )
    assert document["format"] == FORMAT
    assert [(g["window_start"], g["dimensions"], g["records"], g["metrics"]) for g in document["groups"]] == [
        (
            "2024-05-01T12:00:00Z",
            {"type": "click", "source": "web"},
            2,
            {"value": {"count": 2, "sum": "4", "min": "1", "max": "3"}},
        ),
        (
            "2024-05-01T12:00:00Z",
            {"type": "view", "source": None},
            1,
            {"value": {"count": 1, "sum": "7", "min": "7", "max": "7"}},
        ),
        (
            "2024-05-01T13:00:00Z",
            {"type": "click", "source": "web"},
            1,
            {"value": {"count": 1, "sum": "5", "min": "5", "max": "5"}},
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
        "key": records_key("day one.jsonl"),
        "sha256": hashlib.sha256(gz(body)).hexdigest(),
    }
    # AND the raw version it came from, from the key (no version id without the metadata)
    assert document["origin"] == {"rel": "day one.jsonl", "sequencer": TAG, "version_id": None}


def test_the_origin_names_the_raw_version_id_from_the_records_metadata(processing_env: Any) -> None:
    # GIVEN a records object as ingestion writes it for a versioned raw bucket
    key = records_key("v/file.json", "0066AA")
    processing_env.put_object(
        Bucket=PROCESSED,
        Key=key,
        Body=gz(jsonl(record(1))),
        Metadata={contract.SOURCE_VERSION_METADATA: "3HL4kqtJlcpXroDT"},
    )
    head = processing_env.head_object(Bucket=PROCESSED, Key=key)
    event = event_of(s3_record(PROCESSED, key, head["ContentLength"], head["ETag"].strip('"'), None))
    # WHEN processed
    result = processing.handler(event, None)
    # THEN the document, under the same version tag, names that raw version
    assert result["objects"][0]["written"] == [aggregates_key("v/file.json", "0066AA")]
    document = read_document(get_bytes(processing_env, ANALYTICS, aggregates_key("v/file.json", "0066AA")))
    assert (document.origin.rel, document.origin.sequencer, document.origin.version_id) == (
        "v/file.json",
        "0066AA",
        "3HL4kqtJlcpXroDT",
    )


def test_bad_lines_are_listed_as_rejected_not_dropped(processing_env: Any) -> None:
    body = jsonl(record(1), record(2, value="two")) + b"{oops\n\n\x0b\n"
    processing.handler(event_of(put(processing_env, PROCESSED, records_key("bad"), gz(body))), None)
    document = aggregates(processing_env, aggregates_key("bad"))
    assert [(r["line"], r["reason"]) for r in document["rejected"]] == [
        (2, "metric_not_numeric"),
        (3, "invalid_json"),
        (5, "invalid_json"),  # a vertical tab is not JSON whitespace: not a blank line
    ]
    assert document["counts"] == {
        "records_read": 5,
        "records_valid": 1,
        "records_quarantined": 3,
        "blank_lines": 1,
    }
    head = processing_env.head_object(Bucket=ANALYTICS, Key=aggregates_key("bad"))
    assert head["Metadata"]["records-quarantined"] == "3"


def test_unreadable_records_object_is_one_rejection(processing_env: Any) -> None:
    processing.handler(event_of(put(processing_env, PROCESSED, records_key("x"), b"plain text\n")), None)
    document = aggregates(processing_env, aggregates_key("x"))
    assert (document["groups"], [(r["line"], r["reason"]) for r in document["rejected"]]) == (
        [],
        [(0, "not_gzip")],
    )


def test_configured_window_dimensions_and_metrics_are_used(
    processing_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(contract.Env.AGGREGATION_WINDOW, "1d")
    monkeypatch.setenv(contract.Env.AGGREGATION_DIMENSIONS, "source")
    monkeypatch.setenv(contract.Env.AGGREGATION_METRICS, "value,latency")
    body = jsonl(record(1, latency=10), record(2, timestamp="2024-05-01T23:00:00Z", type="view"))
    processing.handler(event_of(put(processing_env, PROCESSED, records_key("c"), gz(body))), None)
    [group] = aggregates(processing_env, aggregates_key("c"))["groups"]
    assert (group["window_start"], group["dimensions"], group["records"]) == (
        "2024-05-01T00:00:00Z",
        {"source": "web"},
        2,
    )
    assert group["metrics"]["latency"] == {"count": 1, "sum": "10", "min": "10", "max": "10"}


def test_decimal_metrics_are_summed_exactly_and_equal_dimension_numbers_are_one_group(
    processing_env: Any,
) -> None:
    # GIVEN decimal literals as ingestion now writes them (0.1 stays 0.1), and one dimension value
    # written as 1, 1.0 and 1e0, and as true
    lines = [
        b'{"timestamp":"2024-05-01T12:00:00Z","type":1,"source":"web","value":0.1}',
        b'{"timestamp":"2024-05-01T12:00:00Z","type":1.0,"source":"web","value":0.2}',
        b'{"timestamp":"2024-05-01T12:00:00Z","type":1e0,"source":"web","value":0.3}',
        b'{"timestamp":"2024-05-01T12:00:00Z","type":true,"source":"web","value":12345678901234567890.000000000000000001}',
    ]
    processing.handler(
        event_of(put(processing_env, PROCESSED, records_key("d"), gz(b"\n".join(lines)))), None
    )
    # THEN the sum is 0.6, not 0.6000000000000001, and true is not the number 1
    raw = get_bytes(processing_env, ANALYTICS, aggregates_key("d"))
    groups = {
        (g["dimensions"]["type"], g["records"]): g["metrics"]["value"] for g in json.loads(raw)["groups"]
    }
    assert groups == {
        (1, 3): {"count": 3, "sum": "0.6", "min": "0.1", "max": "0.3"},
        (True, 1): {
            "count": 1,
            "sum": "12345678901234567890.000000000000000001",
            "min": "12345678901234567890.000000000000000001",
            "max": "12345678901234567890.000000000000000001",
        },
    }
    assert set(groups_from_document(read_document(raw))) == {
        ("2024-05-01T12:00:00Z", '{"source":"web","type":1}'),
        ("2024-05-01T12:00:00Z", '{"source":"web","type":true}'),
    }


def test_a_metric_outside_the_supported_range_rejects_its_record(processing_env: Any) -> None:
    # GIVEN values past 38 integer digits or 18 decimals, an integer of any size, and good ones
    body = (
        jsonl(record(1e38), record(10**400), record(1), record(5))
        + b'{"timestamp":"2024-05-01T12:00:00Z","value":1e-19}\n'
    )
    # WHEN processed
    processing.handler(event_of(put(processing_env, PROCESSED, records_key("big"), gz(body))), None)
    document = aggregates(processing_env, aggregates_key("big"))
    # THEN those records are rejected with a reason, and the group is as if they had never been seen
    assert [(r["line"], r["reason"]) for r in document["rejected"]] == [
        (1, "metric_out_of_range"),
        (2, "metric_out_of_range"),
        (5, "metric_too_precise"),
    ]
    [group] = document["groups"]
    assert (group["records"], group["metrics"]["value"]) == (
        2,
        {"count": 2, "sum": "6", "min": "1", "max": "5"},
    )


def test_redelivery_rewrites_identical_aggregates(processing_env: Any) -> None:
    event = event_of(
        put(processing_env, PROCESSED, records_key("r"), gz(jsonl(*(record(n) for n in range(20)))))
    )
    processing.handler(event, None)
    first = get_bytes(processing_env, ANALYTICS, aggregates_key("r"))
    processing.handler(event, None)
    assert get_bytes(processing_env, ANALYTICS, aggregates_key("r")) == first
    assert keys(processing_env, ANALYTICS) == [aggregates_key("r")]


def test_identical_records_rewritten_as_a_new_version_give_identical_aggregates(processing_env: Any) -> None:
    # GIVEN a versioned processed bucket, where a redelivered ingestion event writes the same
    # records/ bytes again as a new version
    processing_env.put_bucket_versioning(Bucket=PROCESSED, VersioningConfiguration={"Status": "Enabled"})
    body = gz(jsonl(record(1), record(2)))
    first_ref = put(processing_env, PROCESSED, records_key("v"), body)
    second_ref = put(processing_env, PROCESSED, records_key("v"), body)
    assert first_ref["s3"]["object"]["versionId"] != second_ref["s3"]["object"]["versionId"]
    # WHEN processing runs for each version
    processing.handler(event_of(first_ref), None)
    first = get_bytes(processing_env, ANALYTICS, aggregates_key("v"))
    processing.handler(event_of(second_ref), None)
    # THEN the aggregates bytes, whose hash is analytics' duplicate check, are the same
    assert get_bytes(processing_env, ANALYTICS, aggregates_key("v")) == first


def test_each_raw_version_gets_its_own_aggregates(processing_env: Any) -> None:
    # GIVEN two raw versions of one key, as two records objects
    older = put(processing_env, PROCESSED, records_key("k", "0065"), gz(jsonl(record(1))))
    newer = put(processing_env, PROCESSED, records_key("k", "0066"), gz(jsonl(record(2), record(3))))
    # WHEN the newer is processed first
    processing.handler(event_of(newer), None)
    processing.handler(event_of(older), None)
    # THEN each has its document, and neither overwrote the other
    assert keys(processing_env, ANALYTICS) == [aggregates_key("k", "0065"), aggregates_key("k", "0066")]
    assert aggregates(processing_env, aggregates_key("k", "0065"))["counts"]["records_valid"] == 1
    assert aggregates(processing_env, aggregates_key("k", "0066"))["counts"]["records_valid"] == 2


@pytest.mark.parametrize(
    "key",
    [
        f"{contract.RECORDS_PREFIX}x{contract.RECORDS_SUFFIX}",
        f"{contract.RECORDS_PREFIX}x/not-hex{contract.RECORDS_SUFFIX}",
        f"{contract.RECORDS_PREFIX}0065A1{contract.RECORDS_SUFFIX}",
    ],
)
def test_a_records_key_this_pipeline_did_not_write_fails_the_event(processing_env: Any, key: str) -> None:
    event = event_of(put(processing_env, PROCESSED, key, gz(jsonl(record(1)))))
    with pytest.raises(EventError):
        processing.handler(event, None)
    assert keys(processing_env, ANALYTICS) == []


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
    processing.handler(event_of(put(processing_env, PROCESSED, records_key("odd"), gz(body))), None)
    # THEN the line is rejected with its reason and the good one aggregated
    document = aggregates(processing_env, aggregates_key("odd"))
    assert [(r["line"], r["reason"]) for r in document["rejected"]] == [(2, reason)]
    assert document["counts"]["records_valid"] == 1


def test_the_document_names_the_whole_records_object_even_when_reading_stopped_early(
    processing_env: Any,
) -> None:
    # GIVEN a records object that is not gzip, larger than one read: processing stops at its first bytes
    body = b"not gzip\n" * (400 << 10)
    # WHEN processed
    processing.handler(event_of(put(processing_env, PROCESSED, records_key("big"), body)), None)
    # THEN the document's hash is of every byte of the object, as for one that was read to its end
    document = aggregates(processing_env, aggregates_key("big"))
    assert [r["reason"] for r in document["rejected"]] == ["not_gzip"]
    assert document["source"]["sha256"] == hashlib.sha256(body).hexdigest()


def process_part(s3: Any, part: int, metadata: dict[str, str]) -> dict[str, Any]:
    key = part_key(contract.RECORDS_PREFIX, "big.jsonl", TAG, part, contract.RECORDS_SUFFIX)
    s3.put_object(Bucket=PROCESSED, Key=key, Body=gz(jsonl(record(part))), Metadata=metadata)
    return processing.handler(event_of(s3_record(PROCESSED, key, 0, None, None)), None)


def test_each_records_part_has_its_own_document_naming_the_part_and_part_0_their_number(
    processing_env: Any,
) -> None:
    # GIVEN part 0 of three parts (its metadata says so) and part 2 of the same raw version
    process_part(processing_env, 0, {contract.PART_METADATA: "0", contract.PARTS_METADATA: "3"})
    result = process_part(processing_env, 2, {contract.PART_METADATA: "2"})
    # THEN part 2's document is at its part's key and names its part, not their number (it cannot know it)
    [written] = result["objects"][0]["written"]
    assert written == part_key(contract.AGGREGATES_PREFIX, "big.jsonl", TAG, 2, contract.AGGREGATES_SUFFIX)
    assert aggregates(processing_env, written)["origin"] == {
        "rel": "big.jsonl",
        "sequencer": TAG,
        "version_id": None,
        "part": 2,
        "parts": None,
    }
    # AND part 0's document (at the version's key) names their number, in its body and its metadata
    first = aggregates_key("big.jsonl")
    assert aggregates(processing_env, first)["origin"]["parts"] == 3
    assert "part" not in aggregates(processing_env, first)["origin"]
    head = processing_env.head_object(Bucket=ANALYTICS, Key=first)
    assert head["Metadata"][contract.PARTS_METADATA] == "3"


def test_a_part_count_that_is_not_a_count_fails_the_event(processing_env: Any) -> None:
    with pytest.raises(EventError, match=contract.PARTS_METADATA):
        process_part(processing_env, 0, {contract.PARTS_METADATA: "0"})


def test_each_document_of_a_version_of_several_parts_names_its_sha256_for_analytics_heads(
    processing_env: Any,
) -> None:
    # GIVEN part 2 of a version of several parts, and a version of one part
    [later] = process_part(processing_env, 2, {contract.PART_METADATA: "2"})["objects"][0]["written"]
    [single] = processing.handler(
        event_of(put(processing_env, PROCESSED, records_key("one"), gz(jsonl(record(1))))), None
    )["objects"][0]["written"]
    # THEN the part's document carries its bytes' SHA-256 as metadata; the one part's stays as it was
    body = get_bytes(processing_env, ANALYTICS, later)
    head = processing_env.head_object(Bucket=ANALYTICS, Key=later)["Metadata"]
    assert head[contract.DOCUMENT_SHA256_METADATA] == hashlib.sha256(body).hexdigest()
    assert (
        contract.DOCUMENT_SHA256_METADATA
        not in processing_env.head_object(Bucket=ANALYTICS, Key=single)["Metadata"]
    )
