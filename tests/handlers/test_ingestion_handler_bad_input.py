"""The bad-input corpus: every case runs through the ingestion handler on moto S3.

For each case: the handler does not raise, conservation holds (read = valid + quarantined + blank, in
the handler's result and in the outputs' metadata), and exactly the expected units are in quarantine
with their line numbers and machine-readable reasons (line 0: the object as a whole).
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any, NamedTuple

import handler_support as support
import pytest
from handler_support import PROCESSED, RAW, event_of, get_lines, gz, jsonl, put, record

from handlers import contract
from handlers import ingestion_handler as ingestion

GOOD = json.dumps(record(1)).encode()


class Case(NamedTuple):
    key: str  # raw key under incoming/
    body: bytes  # the object's bytes
    valid: int  # records expected in records/
    quarantined: list[tuple[int, str]]  # (line, reason) expected in quarantine/, in order
    blank: int = 0  # blank lines expected


def lines(*parts: bytes) -> bytes:
    return b"\n".join(parts) + b"\n"


def line_with(fields: bytes) -> bytes:
    """One line of a record with a valid id, timestamp and type, then ``fields``."""
    return lines(b'{"id":"a","timestamp":"2024-05-01T00:00:00Z","type":"t",' + fields + b"}")


def deep(levels: int) -> bytes:
    head = b'{"id":"d","timestamp":"2024-05-01T00:00:00Z","type":"t","attributes":{"a":'
    return head + b"[" * levels + b"1" + b"]" * levels + b"}}"


def truncated_gzip() -> bytes:
    return gz(jsonl(*(record(n) for n in range(200))))[:-40]


def corrupt_gzip() -> bytes:
    data = bytearray(gz(jsonl(*(record(n) for n in range(50)))))
    data[-6] ^= 0xFF  # inside the CRC/length trailer
    return bytes(data)


CASES: dict[str, Case] = {
    "truncated gzip": Case("t.jsonl.gz", truncated_gzip(), 0, [(0, "truncated_gzip")]),
    "not gzip despite .gz": Case("n.jsonl.gz", lines(GOOD), 0, [(0, "not_gzip")]),
    "corrupt gzip trailer": Case("c.jsonl.gz", corrupt_gzip(), 0, [(0, "corrupt_gzip")]),
    "zero-byte file": Case("z.jsonl", b"", 0, [(0, "empty_object")]),
    "gzip of nothing": Case("z.jsonl.gz", gz(b""), 0, [(0, "empty_object")]),
    "unsupported suffix": Case("data.csv", b"id,timestamp\n", 0, [(0, "unsupported_suffix")]),
    "UTF-16 file": Case(
        "u16.jsonl",
        "\ufeff".encode("utf-16-le") + GOOD.decode().encode("utf-16-le"),
        0,
        [(0, "unsupported_encoding")],
    ),
    "UTF-16 BE file": Case("u16be.jsonl", "\ufeff{}".encode("utf-16-be"), 0, [(0, "unsupported_encoding")]),
    "UTF-32 LE file": Case("u32le.jsonl", "\ufeff{}".encode("utf-32-le"), 0, [(0, "unsupported_encoding")]),
    "UTF-32 BE file": Case("u32be.jsonl", "\ufeff{}".encode("utf-32-be"), 0, [(0, "unsupported_encoding")]),
    "invalid UTF-8 line": Case("u8.jsonl", lines(GOOD, b'{"id":"\xff\xfe"}'), 1, [(2, "invalid_utf8")]),
    "UTF-8 BOM at start is dropped": Case("bom.jsonl", b"\xef\xbb\xbf" + lines(GOOD), 1, []),
    "BOM in a later line": Case("bom2.jsonl", lines(GOOD, b"\xef\xbb\xbf" + GOOD), 1, [(2, "invalid_json")]),
    "invalid JSON": Case("ij.jsonl", lines(b'{"id": ', GOOD), 1, [(1, "invalid_json")]),
    "number as string": Case("ns.jsonl", jsonl(record(1, value="12")), 0, [(1, "schema_violation")]),
    "epoch as string": Case(
        "es.jsonl", jsonl(record(1, timestamp="1714566896")), 0, [(1, "invalid_timestamp")]
    ),
    "NaN": Case("nan.jsonl", line_with(b'"value":NaN'), 0, [(1, "invalid_json")]),
    "Infinity": Case("inf.jsonl", line_with(b'"value":Infinity'), 0, [(1, "invalid_json")]),
    "-Infinity": Case("ninf.jsonl", line_with(b'"value":-Infinity'), 0, [(1, "invalid_json")]),
    "number beyond float range is an exact decimal": Case("big.jsonl", line_with(b'"value":1e400'), 1, []),
    "exponent beyond any decimal": Case(
        "bigexp.jsonl", line_with(b'"value":1e1000000000000000000'), 0, [(1, "invalid_json")]
    ),
    "integer timestamp of 400 digits": Case(
        "bigts.jsonl",
        lines(b'{"id":"a","timestamp":' + b"9" * 400 + b',"type":"t"}'),
        0,
        [(1, "invalid_timestamp")],
    ),
    "nesting beyond parser limit": Case("deep.jsonl", lines(deep(1100)), 0, [(1, "invalid_json")]),
    "nesting beyond parser limit, with a duplicate key": Case(
        "deepdup.jsonl", lines(deep(2000).replace(b'"a":', b'"a":1,"a":')), 0, [(1, "invalid_json")]
    ),
    "deep nesting with a duplicate key": Case(
        "deepdup2.jsonl", lines(deep(800).replace(b'"a":', b'"a":1,"a":')), 0, [(1, "duplicate_key")]
    ),
    "deep but allowed nesting": Case("deep-ok.jsonl", lines(deep(200)), 1, []),
    "a schema error in a value nested 300 levels deep": Case(
        "deep-bad.jsonl", lines(deep(300).replace(b'"type":"t"', b'"type":[]')), 0, [(1, "schema_violation")]
    ),
    "huge line": Case(
        "huge.jsonl", lines(GOOD, b'{"id":"' + b"x" * 100_000 + b'"}', GOOD), 2, [(2, "record_too_large")]
    ),
    "huge final line without newline": Case(
        "huge2.jsonl", GOOD + b"\n" + b"y" * 10_000, 1, [(2, "record_too_large")]
    ),
    "duplicate top-level key": Case(
        "dup.jsonl",
        lines(b'{"id":"a","id":"b","timestamp":"2024-05-01T00:00:00Z","type":"t"}'),
        0,
        [(1, "duplicate_key")],
    ),
    "duplicate nested key": Case(
        "dup2.jsonl", line_with(b'"attributes":{"k":1,"k":2}'), 0, [(1, "duplicate_key")]
    ),
    "duplicate key with spaces": Case(
        "dup3.jsonl",
        lines(b'{"id" : "a", "type" : "t", "timestamp" : "2024-05-01T00:00:00Z", "type" : "u"}'),
        0,
        [(1, "duplicate_key")],
    ),
    "colon inside string is no duplicate": Case(
        "colon.jsonl", jsonl(record(1, attributes={"note": 'a":b', "url": "http://x"})), 1, []
    ),
    "only blank lines": Case("blank.jsonl", b"\n  \n\t\r\n", 0, [], blank=3),
    "vertical tab line is not blank": Case("vt.jsonl", lines(GOOD, b"\v", GOOD), 2, [(2, "invalid_json")]),
    "form feed line is not blank": Case("ff.jsonl", lines(b" \f ", GOOD), 1, [(1, "invalid_json")]),
    "top-level scalar document": Case("scalar.json", b"42", 0, [(0, "invalid_json")]),
    "top-level string document": Case("string.json", b'"hello"', 0, [(0, "invalid_json")]),
    "top-level true document": Case("true.json", b" true\n", 0, [(0, "invalid_json")]),
    "top-level null document": Case("null.json", b"null", 0, [(0, "invalid_json")]),
    "scalar line": Case(
        "scalar.jsonl", lines(b"42", b"null", GOOD), 1, [(1, "not_an_object"), (2, "not_an_object")]
    ),
    "array element that is a scalar": Case("arr.json", b"[" + GOOD + b", 7]", 1, [(2, "not_an_object")]),
    "missing id": Case(
        "mid.jsonl", jsonl({"timestamp": "2024-05-01T00:00:00Z", "type": "t"}), 0, [(1, "schema_violation")]
    ),
    "id of the wrong type": Case("idt.jsonl", jsonl(record(1, id=5)), 0, [(1, "schema_violation")]),
    "missing type": Case(
        "mt.jsonl", jsonl({"id": "a", "timestamp": "2024-05-01T00:00:00Z"}), 0, [(1, "schema_violation")]
    ),
    "unknown string field": Case("extra.jsonl", jsonl(record(1, extra="x")), 0, [(1, "schema_violation")]),
    "boolean metric": Case("bool.jsonl", jsonl(record(1, value=True)), 0, [(1, "schema_violation")]),
    "attributes not an object": Case(
        "attr.jsonl", jsonl(record(1, attributes=[1])), 0, [(1, "schema_violation")]
    ),
    "boolean timestamp": Case("tb.jsonl", jsonl(record(1, timestamp=True)), 0, [(1, "schema_violation")]),
    "null timestamp": Case("tn.jsonl", jsonl(record(1, timestamp=None)), 0, [(1, "schema_violation")]),
    "February 30": Case(
        "feb.jsonl", jsonl(record(1, timestamp="2024-02-30T00:00:00Z")), 0, [(1, "invalid_timestamp")]
    ),
    "hour 25": Case(
        "h25.jsonl", jsonl(record(1, timestamp="2024-05-01T25:00:00Z")), 0, [(1, "invalid_timestamp")]
    ),
    "leap second": Case(
        "leap.jsonl", jsonl(record(1, timestamp="2016-12-31T23:59:60Z")), 0, [(1, "invalid_timestamp")]
    ),
    "no offset": Case(
        "nooff.jsonl", jsonl(record(1, timestamp="2024-05-01T12:00:00")), 0, [(1, "invalid_timestamp")]
    ),
    "epoch out of range": Case("eor.jsonl", jsonl(record(1, timestamp=1e20)), 0, [(1, "invalid_timestamp")]),
    "truncated array": Case("ta.json", b"[" + GOOD + b", " + GOOD[:20], 0, [(0, "invalid_json")]),
    "array trailing comma": Case("tc.json", b"[" + GOOD + b",]", 1, [(2, "invalid_json")]),
    "data after the array": Case("after.json", b"[" + GOOD + b"] []", 0, [(0, "invalid_json")]),
    "two objects in a .json": Case("two.json", GOOD + b"\n" + GOOD, 0, [(1, "invalid_json")]),
    "pretty-printed object in JSON Lines": Case(
        "pretty.jsonl",
        json.dumps(record(1), indent=1).encode(),
        0,
        [(n, "invalid_json") for n in range(1, 8)],
    ),
    "raw control character in a string": Case(
        "ctl.jsonl",
        lines(b'{"id":"a\tb","timestamp":"2024-05-01T00:00:00Z","type":"t"}'),
        0,
        [(1, "invalid_json")],
    ),
    "lone surrogate escape": Case(
        "sur.jsonl",
        lines(b'{"id":"\\ud800","timestamp":"2024-05-01T00:00:00Z","type":"t"}'),
        0,
        [(1, "invalid_json")],
    ),
    "CRLF line endings": Case("crlf.jsonl", GOOD + b"\r\n" + GOOD + b"\r\n", 2, []),
    "escaped quotes and brackets in an array": Case(
        "esc.json", json.dumps([record(1, attributes={"s": '",[]{}\\'}), record(2)]).encode(), 2, []
    ),
}


@pytest.fixture(scope="module")
def s3(module_ingestion_env: Any) -> Any:
    return module_ingestion_env


def test_corpus_has_at_least_thirty_bad_cases() -> None:
    assert sum(1 for case in CASES.values() if case.quarantined) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_quarantined_with_its_reason(s3: Any, name: str) -> None:
    case = CASES[name]
    key = f"{contract.INPUT_PREFIX}{case.key}"
    # GIVEN the case's object in the raw bucket
    ref = put(s3, RAW, key, case.body)
    # WHEN the handler ingests it
    result = ingestion.handler(event_of(ref), None)
    # THEN nothing raised, conservation holds, and quarantine holds exactly the expected units
    counts = result["counts"]
    assert (
        counts["records_read"]
        == counts["records_valid"] + counts["records_quarantined"] + counts["blank_lines"]
    )
    assert (counts["records_valid"], counts["blank_lines"]) == (case.valid, case.blank)
    written = set(support.keys(s3, PROCESSED))
    quarantine_key = support.quarantine_of(ref)
    entries = get_lines(s3, PROCESSED, quarantine_key) if quarantine_key in written else []
    assert [(e["line"], e["reason"]) for e in entries] == case.quarantined
    assert all(e["source"]["version_id"] == ref["s3"]["object"]["versionId"] and e["detail"] for e in entries)
    records_key = support.records_of(ref)
    if case.quarantined[:1] and case.quarantined[0][0] == 0:
        # unreadable: an empty records object (the version replaces its key's earlier one), no partial data
        assert get_lines(s3, PROCESSED, records_key) == []
        assert counts["records_read"] == 1
    else:
        assert len(get_lines(s3, PROCESSED, records_key)) == case.valid
        metadata = s3.head_object(Bucket=PROCESSED, Key=records_key)["Metadata"]
        assert int(metadata["records-read"]) == counts["records_read"]


def test_oversize_entry_keeps_a_prefix_and_the_size(s3: Any) -> None:
    body = lines(b'{"id":"' + b"x" * 100_000 + b'"}')
    ref = put(s3, RAW, f"{contract.INPUT_PREFIX}big-prefix.jsonl", body)
    ingestion.handler(event_of(ref), None)
    [entry] = get_lines(s3, PROCESSED, support.quarantine_of(ref))
    assert (entry["original_bytes"], entry["original_truncated"], len(entry["original"])) == (
        100_009,
        True,
        1024,
    )


def test_non_utf8_line_is_kept_as_base64(s3: Any) -> None:
    ref = put(s3, RAW, f"{contract.INPUT_PREFIX}b64.jsonl", lines(GOOD, b"\xc3\x28"))
    ingestion.handler(event_of(ref), None)
    [entry] = get_lines(s3, PROCESSED, support.quarantine_of(ref))
    assert (entry["reason"], entry["original_base64"]) == ("invalid_utf8", "wyg=")


def test_unreadable_object_discards_partial_records(s3: Any) -> None:
    # GIVEN a gzip whose first 100+ lines decompress fine before the truncation
    body = truncated_gzip()
    readable = gzip.GzipFile(fileobj=io.BytesIO(body)).read1(1 << 20)
    assert readable.count(b"\n") > 100
    ref = put(s3, RAW, f"{contract.INPUT_PREFIX}partial.jsonl.gz", body)
    result = ingestion.handler(event_of(ref), None)
    # THEN the records object holds none of them and the one quarantine entry names the object: whole or
    # nothing (the empty records object lets this version replace the key's earlier one in the totals)
    assert get_lines(s3, PROCESSED, support.records_of(ref)) == []
    assert result["counts"]["records_valid"] == 0
    [entry] = get_lines(s3, PROCESSED, support.quarantine_of(ref))
    assert (entry["line"], entry["reason"], entry["source"]["key"]) == (
        0,
        "truncated_gzip",
        f"{contract.INPUT_PREFIX}partial.jsonl.gz",
    )
