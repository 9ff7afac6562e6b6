"""The ingestion handler on moto, writing records/ in parts (``RECORDS_PART_BYTES``): keys, bounds, order
of the uploads, and each part's metadata."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from handler_support import (
    PROCESSED,
    RAW,
    event_of,
    get_bytes,
    jsonl,
    put,
    quarantine_of,
    record,
    records_of,
    tag_of,
)

from handlers import contract
from handlers import ingestion_handler as ingestion
from handlers.contract import Env
from handlers.events import split_part

PART_BYTES = 300


@pytest.fixture
def parted(ingestion_env: Any, stage_env: pytest.MonkeyPatch) -> Any:
    stage_env.setenv(Env.RECORDS_PART_BYTES, str(PART_BYTES))
    return ingestion_env


def test_records_are_written_in_bounded_parts_and_part_0_last_with_their_number(parted: Any) -> None:
    # GIVEN 20 valid records, a bad one and a blank line: more than one part's worth
    body = jsonl(*(record(n) for n in range(20))) + b"{broken\n\n"
    ref = put(parted, RAW, f"{contract.INPUT_PREFIX}big.jsonl", body)
    # WHEN it is ingested
    result = ingestion.handler(event_of(ref), None)
    written = result["objects"][0]["written"]
    records = [key for key in written if key.startswith(contract.RECORDS_PREFIX)]
    # THEN the parts 1..N-1 came first, in order, then part 0 at the version's one-part key
    parts = [split_part(key, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)[2] for key in records]
    assert parts == [*range(1, len(records)), 0]
    assert records[-1] == records_of(ref)
    assert len(records) > 2
    # AND every part holds whole lines within the bound, and together every valid record once, in order
    lines = [gzip.decompress(get_bytes(parted, PROCESSED, key)) for key in sorted(records, key=_part)]
    assert all(len(data) <= PART_BYTES for data in lines)
    ids = [json.loads(line)["id"] for data in lines for line in data.splitlines()]
    assert ids == [record(n)["id"] for n in range(20)]
    # AND each part's metadata carries its index and counts; part 0 the number of parts and the rest
    heads = {_part(key): parted.head_object(Bucket=PROCESSED, Key=key)["Metadata"] for key in records}
    assert heads[0][contract.PARTS_METADATA] == str(len(records))
    assert {int(m[contract.PART_METADATA]) for m in heads.values()} == set(range(len(records)))
    assert all(m[contract.SOURCE_SEQUENCER_METADATA] == tag_of(ref) for m in heads.values())
    names = ("records-read", "records-valid", "records-quarantined", "blank-lines")
    totals = {name: sum(int(m[name]) for m in heads.values()) for name in names}
    assert totals == {"records-read": 22, "records-valid": 20, "records-quarantined": 1, "blank-lines": 1}
    assert (heads[0]["records-quarantined"], heads[0]["blank-lines"]) == ("1", "1")
    # AND the handler counts the object as a whole, and every object it wrote
    assert result["counts"]["records_valid"] == 20
    assert result["counts"]["objects_written"] == len(records) + 1  # and the quarantine object


def test_a_version_within_one_part_is_written_as_before(parted: Any) -> None:
    ref = put(parted, RAW, f"{contract.INPUT_PREFIX}small.jsonl", jsonl(record(1)))
    result = ingestion.handler(event_of(ref), None)
    assert result["objects"][0]["written"] == [records_of(ref)]
    metadata = parted.head_object(Bucket=PROCESSED, Key=records_of(ref))["Metadata"]
    assert contract.PARTS_METADATA not in metadata
    assert contract.PART_METADATA not in metadata


def _part(key: str) -> int:
    return split_part(key, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)[2]


def test_quarantine_entries_are_written_in_bounded_parts_too(parted: Any) -> None:
    # GIVEN 20 records that fail the schema: more than one part's worth of quarantine entries
    body = b"".join(b'{"id": %d}\n' % n for n in range(20))
    ref = put(parted, RAW, f"{contract.INPUT_PREFIX}bad.jsonl", body)
    # WHEN it is ingested
    written = ingestion.handler(event_of(ref), None)["objects"][0]["written"]
    quarantine = [key for key in written if key.startswith(contract.QUARANTINE_PREFIX)]
    # THEN the quarantine parts 1..N-1 came first and part 0 last, at the version's quarantine key
    parts = [split_part(key, contract.QUARANTINE_PREFIX, contract.QUARANTINE_SUFFIX)[2] for key in quarantine]
    assert parts == [*range(1, len(quarantine)), 0]
    assert quarantine[-1] == quarantine_of(ref)
    # AND every entry is in exactly one part, in order, each part within the bound but for a longer entry
    ordered = sorted(
        quarantine, key=lambda k: split_part(k, contract.QUARANTINE_PREFIX, contract.QUARANTINE_SUFFIX)[2]
    )
    data = [get_bytes(parted, PROCESSED, key) for key in ordered]
    assert all(len(part) <= PART_BYTES or part.count(b"\n") == 1 for part in data)
    assert [json.loads(line)["line"] for part in data for line in part.splitlines()] == list(range(1, 21))
    # AND part 0 carries the object's counts and the number of parts
    metadata = parted.head_object(Bucket=PROCESSED, Key=quarantine_of(ref))["Metadata"]
    assert metadata["records-quarantined"] == "20"
    assert metadata[contract.PARTS_METADATA] == str(len(quarantine))
