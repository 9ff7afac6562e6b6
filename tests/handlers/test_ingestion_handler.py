"""The ingestion handler against moto S3, driven by real S3 notification shapes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from handler_support import (
    PROCESSED,
    RAW,
    event_of,
    get_bytes,
    get_lines,
    gz,
    jsonl,
    keys,
    put,
    quarantine_of,
    record,
    records_of,
    tag_of,
)

from handlers import contract
from handlers import ingestion_handler as ingestion
from handlers.contract import Stage
from handlers.errors import ConfigError, EventError


@pytest.mark.parametrize(
    "key",
    [
        f"{contract.INPUT_PREFIX}with space.jsonl",
        f"{contract.INPUT_PREFIX}plus+sign.jsonl",
        f"{contract.INPUT_PREFIX}ünïcødé/日本.jsonl",
        f"{contract.INPUT_PREFIX}a%20b.jsonl",
    ],
)
def test_url_encoded_keys_are_decoded(ingestion_env: Any, key: str) -> None:
    # GIVEN an object whose key needs URL encoding in the event
    ref = put(ingestion_env, RAW, key, jsonl(record(1)))
    # WHEN the handler runs
    ingestion.handler(event_of(ref), None)
    # THEN the records land under the decoded relative key, named by the raw version
    rel = key.removeprefix(contract.INPUT_PREFIX)
    assert keys(ingestion_env, PROCESSED) == [
        f"{contract.RECORDS_PREFIX}{rel}/{tag_of(ref)}{contract.RECORDS_SUFFIX}"
    ]


@pytest.mark.parametrize(
    ("key", "body"),
    [
        (f"{contract.INPUT_PREFIX}a.jsonl", jsonl(record(1), record(2))),
        (f"{contract.INPUT_PREFIX}a.ndjson", jsonl(record(1), record(2))),
        (f"{contract.INPUT_PREFIX}a.jsonl.gz", gz(jsonl(record(1), record(2)))),
        (f"{contract.INPUT_PREFIX}a.json", json.dumps([record(1), record(2)], indent=2).encode()),
        (f"{contract.INPUT_PREFIX}a.json.gz", gz(json.dumps([record(1), record(2)]).encode())),
        (f"{contract.INPUT_PREFIX}a.gz", gz(jsonl(record(1), record(2)))),
    ],
)
def test_every_input_format_yields_the_same_records(ingestion_env: Any, key: str, body: bytes) -> None:
    # GIVEN two valid records in one of the supported formats
    ref = put(ingestion_env, RAW, key, body)
    # WHEN ingested
    result = ingestion.handler(event_of(ref), None)
    # THEN both are written, normalised, as gzip JSON Lines
    assert [r["id"] for r in get_lines(ingestion_env, PROCESSED, records_of(ref))] == [
        "evt-1",
        "evt-2",
    ]
    assert result["counts"]["records_valid"] == 2


def test_single_object_json_document_is_one_record(ingestion_env: Any) -> None:
    ref = put(
        ingestion_env, RAW, f"{contract.INPUT_PREFIX}one.json", json.dumps(record(7), indent=2).encode()
    )
    ingestion.handler(event_of(ref), None)
    assert [r["id"] for r in get_lines(ingestion_env, PROCESSED, records_of(ref))] == ["evt-7"]


def test_timestamps_are_normalised_to_rfc3339_utc(ingestion_env: Any) -> None:
    # GIVEN timestamps as an offset string, epoch seconds and epoch milliseconds
    body = jsonl(
        record(1, timestamp="2024-05-01T14:34:56.5+02:00"),
        record(2, timestamp=1714566896),
        record(3, timestamp=1714566896250),
    )
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}t.jsonl", body)
    ingestion.handler(event_of(ref), None)
    # THEN each is UTC with a Z
    stamps = [r["timestamp"] for r in get_lines(ingestion_env, PROCESSED, records_of(ref))]
    assert stamps == ["2024-05-01T12:34:56.500000Z", "2024-05-01T12:34:56Z", "2024-05-01T12:34:56.250000Z"]


def test_multi_record_event_processes_every_object(ingestion_env: Any) -> None:
    records = [
        put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}part-{n}.jsonl", jsonl(record(n))) for n in range(3)
    ]
    result = ingestion.handler(event_of(*records), None)
    assert keys(ingestion_env, PROCESSED) == [records_of(ref) for ref in records]
    assert result["counts"]["records_read"] == 3


def test_s3_test_event_is_acknowledged_and_writes_nothing(ingestion_env: Any) -> None:
    event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-25T12:00:00Z", "Bucket": RAW}
    result = ingestion.handler(event, None)
    assert result["objects"] == []
    assert keys(ingestion_env, PROCESSED) == []


def test_non_s3_event_raises_event_error(ingestion_env: Any) -> None:
    with pytest.raises(EventError, match="no Records"):
        ingestion.handler({"detail": {}}, None)


def test_redelivery_rewrites_identical_bytes(ingestion_env: Any) -> None:
    # GIVEN an object with good and bad lines, ingested once
    body = jsonl(record(1), record(2, value="x")) + b"not json\n"
    event = event_of(put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}r.jsonl", body))
    ingestion.handler(event, None)
    first = {key: get_bytes(ingestion_env, PROCESSED, key) for key in keys(ingestion_env, PROCESSED)}
    # WHEN the same event is delivered again
    ingestion.handler(event, None)
    # THEN both outputs are byte-identical
    assert {key: get_bytes(ingestion_env, PROCESSED, key) for key in keys(ingestion_env, PROCESSED)} == first
    assert len(first) == 2


def test_outputs_carry_conservation_counts_as_metadata(ingestion_env: Any) -> None:
    body = jsonl(record(1)) + b"\n" + b"{broken\n"
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}m.jsonl", body)
    ingestion.handler(event_of(ref), None)
    head = ingestion_env.head_object(Bucket=PROCESSED, Key=records_of(ref))
    assert head["Metadata"] == {
        "records-read": "3",
        "records-valid": "1",
        "records-quarantined": "1",
        "blank-lines": "1",
        contract.SOURCE_VERSION_METADATA: ref["s3"]["object"]["versionId"],
        contract.SOURCE_SEQUENCER_METADATA: tag_of(ref),
    }


def test_quarantine_entry_names_source_version_line_and_reason(ingestion_env: Any) -> None:
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}q.jsonl", jsonl(record(1)) + b'{"id": 5}\n')
    ingestion.handler(event_of(ref), None)
    [entry] = get_lines(ingestion_env, PROCESSED, quarantine_of(ref))
    assert entry["source"] == {
        "bucket": RAW,
        "key": f"{contract.INPUT_PREFIX}q.jsonl",
        "version_id": ref["s3"]["object"]["versionId"],
        "sequencer": tag_of(ref),
    }
    assert (entry["line"], entry["reason"], entry["original"]) == (2, "schema_violation", '{"id": 5}')


def test_old_version_named_by_the_event_is_the_one_read(ingestion_env: Any) -> None:
    # GIVEN an event for version 1 of a key that has since been overwritten
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}v.jsonl", jsonl(record(1)))
    put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}v.jsonl", jsonl(record(2)))
    ingestion.handler(event_of(ref), None)
    # THEN the records come from version 1
    assert [r["id"] for r in get_lines(ingestion_env, PROCESSED, records_of(ref))] == ["evt-1"]


def test_each_version_of_a_key_has_outputs_of_its_own(ingestion_env: Any) -> None:
    # GIVEN two versions of one key, ingested newest first (a late event for the first)
    first = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}w.jsonl", jsonl(record(1)))
    second = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}w.jsonl", jsonl(record(2)))
    ingestion.handler(event_of(second), None)
    ingestion.handler(event_of(first), None)
    # THEN each version's records stand under its own sequencer, neither overwriting the other
    assert [
        [r["id"] for r in get_lines(ingestion_env, PROCESSED, records_of(ref))] for ref in (first, second)
    ] == [["evt-1"], ["evt-2"]]


def test_an_event_without_a_sequencer_is_an_event_error(ingestion_env: Any) -> None:
    # GIVEN an event record that S3 would never send: no sequencer to order the version by
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}n.jsonl", jsonl(record(1)))
    del ref["s3"]["object"]["sequencer"]
    # WHEN the handler runs THEN it refuses the event (to the failure queue) and writes nothing
    with pytest.raises(EventError, match="no valid sequencer"):
        ingestion.handler(event_of(ref), None)
    assert keys(ingestion_env, PROCESSED) == []


def test_invocation_logs_one_emf_line(ingestion_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ingestion.handler(
        event_of(put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}l.jsonl", jsonl(record(1)) + b"x\n")), None
    )
    [line] = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == contract.METRICS_NAMESPACE
    assert directive["Dimensions"] == [[contract.STAGE_DIMENSION]]
    names = contract.RECORD_METRIC_NAMES
    # ObjectsOverBudget is 0 here (handlers.deadline)
    assert {m["Name"] for m in directive["Metrics"]} == {*names.values(), contract.OVER_BUDGET_METRIC}
    assert (document[contract.STAGE_DIMENSION], document[names["records_read"]]) == (Stage.INGESTION, 2)
    assert (document[names["records_valid"]], document[names["records_quarantined"]]) == (1, 1)
    assert document[names["objects_written"]] == 2


def test_s3_server_error_raises_and_writes_nothing(ingestion_env: Any) -> None:
    # GIVEN S3 answers the read with a 500
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}e.jsonl", jsonl(record(1)))
    rt = ingestion.runtime()
    with Stubber(rt.s3) as stub:
        stub.add_client_error("get_object", service_error_code="InternalError", http_status_code=500)
        # WHEN the handler runs THEN the fault propagates so that Lambda retries
        with pytest.raises(ClientError) as caught:
            ingestion.handler(event_of(ref), None)
    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert keys(ingestion_env, PROCESSED) == []


def test_missing_environment_is_one_config_error_naming_every_variable(
    ingestion_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(contract.Env.DEST_BUCKET)
    monkeypatch.setenv(contract.Env.MAX_RECORD_BYTES, "lots")
    with pytest.raises(ConfigError) as caught:
        ingestion.handler({"Records": []}, None)
    assert "DEST_BUCKET is required" in str(caught.value)
    assert "MAX_RECORD_BYTES must be an integer" in str(caught.value)


def test_max_record_bytes_past_what_a_records_line_can_hold_is_a_config_error() -> None:
    from handlers.config import MAX_RECORD_BYTES_LIMIT, load_ingestion

    environ = {
        contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
        contract.Env.DEST_BUCKET: "b",
        contract.Env.MAX_RECORD_BYTES: str(MAX_RECORD_BYTES_LIMIT + 1),
    }
    with pytest.raises(ConfigError) as caught:
        load_ingestion(environ)
    assert (
        f"MAX_RECORD_BYTES must be at most {MAX_RECORD_BYTES_LIMIT}, got {MAX_RECORD_BYTES_LIMIT + 1}"
        in str(caught.value)
    )


def test_max_record_bytes_at_the_limit_is_accepted() -> None:
    from handlers.config import MAX_RECORD_BYTES_LIMIT, load_ingestion

    environ = {
        contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
        contract.Env.DEST_BUCKET: "b",
        contract.Env.MAX_RECORD_BYTES: str(MAX_RECORD_BYTES_LIMIT),
    }
    assert load_ingestion(environ).max_record_bytes == MAX_RECORD_BYTES_LIMIT


def test_decimal_metrics_reach_the_records_object_as_written(ingestion_env: Any) -> None:
    # GIVEN metrics a float cannot hold exactly
    body = (
        b'{"id":"a","timestamp":"2024-05-01T12:34:56Z","type":"t","value":0.1,'
        b'"total":12345678901234567890.123456789,"ratio":1.50,"tiny":1E-999999999}\n'
    )
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}d.jsonl", body)
    # WHEN ingested
    ingestion.handler(event_of(ref), None)
    # THEN the records object holds the same decimals, digit for digit
    line = gzip.decompress(get_bytes(ingestion_env, PROCESSED, records_of(ref)))
    assert line == body.replace(b" ", b"")


def test_custom_schema_from_environment_is_enforced(
    ingestion_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack schema requiring a "tenant" field
    schema = {
        "type": "object",
        "required": ["id", "timestamp", "tenant"],
        "properties": {"tenant": {"type": "string"}},
    }
    monkeypatch.setenv(contract.Env.RECORD_SCHEMA, json.dumps(schema))
    body = jsonl(record(1, tenant="a"), record(2))
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}s.jsonl", body)
    ingestion.handler(event_of(ref), None)
    assert [r["id"] for r in get_lines(ingestion_env, PROCESSED, records_of(ref))] == ["evt-1"]
    [entry] = get_lines(ingestion_env, PROCESSED, quarantine_of(ref))
    assert entry["reason"] == "schema_violation"


def test_gzip_output_is_deterministic_without_name_or_mtime(ingestion_env: Any) -> None:
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}g.jsonl", jsonl(record(1)))
    ingestion.handler(event_of(ref), None)
    data = get_bytes(ingestion_env, PROCESSED, records_of(ref))
    # gzip header: magic, method, flags (no FNAME), mtime 0
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[3] & 0x08 == 0
    assert data[4:8] == b"\0\0\0\0"
    assert gzip.decompress(data).endswith(b"\n")


def test_a_raw_key_near_the_s3_limit_gives_output_keys_within_it(ingestion_env: Any) -> None:
    # GIVEN a valid raw key of 1 019 bytes (with multi-byte characters), which the records/ and
    # quarantine/ prefixes and suffixes would push past S3's 1 024-byte limit
    key = contract.INPUT_PREFIX + "é" * 502 + ".jsonl"
    assert len(key.encode()) == 1019
    event = event_of(put(ingestion_env, RAW, key, jsonl(record(1), {"id": "bad"})))
    # WHEN the handler runs, twice (a redelivery)
    ingestion.handler(event, None)
    first = keys(ingestion_env, PROCESSED)
    ingestion.handler(event, None)
    # THEN both outputs fit the limit, keep the key's start, and are the same keys the second time
    assert [k.split("/")[0] for k in first] == ["quarantine", "records"]
    assert all(len(k.encode()) <= 1024 and "é" * 400 in k for k in first)
    assert keys(ingestion_env, PROCESSED) == first
