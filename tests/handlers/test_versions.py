"""handlers.versions on moto: when a raw version of several parts counts as complete."""

from __future__ import annotations

import hashlib
from typing import Any

from handler_support import ANALYTICS, record

from handlers import contract, database
from handlers.aggregation import aggregate_records
from handlers.documents import Origin, groups_from_document, read_document, to_document
from handlers.events import part_key
from handlers.groups import AggregateResult
from handlers.metrics import Counts
from handlers.versions import gather

DIMENSIONS, METRICS = ("type", "source"), ("value",)
TOP = 3


def put_part(s3: Any, tag: str, part: int, parts: int | None, value: int = 1) -> tuple[dict[str, str], Any]:
    """Write part ``part`` of version ``tag`` of ``x`` as processing would; returns (source, document)."""
    records = [record(value)]
    result = AggregateResult(aggregate_records(records, 3600, DIMENSIONS, METRICS), Counts(1, 1), (), 0)
    origin = Origin(rel="x", sequencer=tag, version_id=None, part=part, parts=parts)
    raw = to_document(
        result,
        {"bucket": "p", "key": "k", "sha256": "0" * 64},
        "1h",
        3600,
        DIMENSIONS,
        METRICS,
        origin=origin,
    )
    key = part_key(contract.AGGREGATES_PREFIX, "x", tag, part, contract.AGGREGATES_SUFFIX)
    metadata = {contract.PARTS_METADATA: str(parts)} if part == 0 and parts != 1 else {}
    s3.put_object(Bucket=ANALYTICS, Key=key, Body=raw, Metadata=metadata)
    return {"bucket": ANALYTICS, "key": key, "sha256": hashlib.sha256(raw).hexdigest()}, read_document(raw)


def test_without_part_0_a_later_part_waits(aws: Any) -> None:
    own = put_part(aws, "00AB", 1, None)
    assert gather(aws, ANALYTICS, own, None, TOP) == "waiting for part 0"


def test_a_part_past_the_number_part_0_names_is_left_over(aws: Any) -> None:
    put_part(aws, "00AB", 0, 2)
    own = put_part(aws, "00AB", 2, None)
    assert gather(aws, ANALYTICS, own, None, TOP) == "left over: part 0 names 2 parts"


def test_without_a_database_a_version_is_complete_when_every_document_exists(aws: Any) -> None:
    # GIVEN parts 0 and 2 of three, and part 1 of another version whose tag starts with this one's
    own = put_part(aws, "00AB", 0, 3)
    put_part(aws, "00AB", 2, None)
    put_part(aws, "00ABC", 1, None)
    # THEN it waits for its own part 1, and is complete once it is there
    assert gather(aws, ANALYTICS, own, None, TOP) == "waiting for 1 of 3 parts"
    put_part(aws, "00AB", 1, None)
    report = gather(aws, ANALYTICS, own, None, TOP)
    assert [(p["key"], p["database"]) for p in report["parts"]] == [
        (part_key(contract.AGGREGATES_PREFIX, "x", "00AB", n, contract.AGGREGATES_SUFFIX), "not_configured")
        for n in range(3)
    ]


def test_with_a_database_a_part_processed_again_and_not_loaded_yet_keeps_the_version_waiting(
    aws: Any, migrated_database: str
) -> None:
    # GIVEN both parts of a version loaded, then part 1 processed again into other bytes
    engine = database.connect(migrated_database)
    setting = database.Setting("1h", DIMENSIONS, METRICS)
    own = put_part(aws, "00AB", 0, 2)
    loaded = [own, put_part(aws, "00AB", 1, None)]
    for (source, document), part in zip(loaded, (0, 1), strict=True):
        origin = database.Origin("x", "00AB", None, part, document.origin.parts)
        database.load(
            engine, source["key"], source["sha256"], setting, origin, groups_from_document(document)
        )
    assert [p["database"] for p in gather(aws, ANALYTICS, own, engine, TOP)["parts"]] == ["loaded", "loaded"]
    put_part(aws, "00AB", 1, None, value=2)
    # THEN the version waits for that load
    assert gather(aws, ANALYTICS, own, engine, TOP) == "waiting for 1 of 2 parts processed again"
    engine.dispose()
