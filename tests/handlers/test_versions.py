"""handlers.versions on moto: when a raw version of several parts counts as complete."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from handler_support import ANALYTICS, record

from handlers import contract, database, deadline
from handlers.aggregation import aggregate_records
from handlers.contract import Stage
from handlers.documents import Origin, groups_from_document, read_document, to_document
from handlers.errors import DeadlineError
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


def test_a_version_whose_parts_cannot_be_gathered_in_time_fails_early_with_the_reason(aws: Any) -> None:
    # GIVEN a complete version of two parts and an invocation with a millisecond left at 128 MB
    own = put_part(aws, "00AB", 0, 2)
    put_part(aws, "00AB", 1, None)
    budget = deadline.Budget.start(Stage.ANALYTICS, 128, 0.001, clock=lambda: 0.0)
    # WHEN it gathers THEN it refuses before reading, at the planning rate for the other part's bytes
    with deadline.guarding(budget), pytest.raises(DeadlineError) as raised:
        gather(aws, ANALYTICS, own, None, TOP)
    assert raised.value.reason == contract.OVER_BUDGET_REASON
    other = part_key(contract.AGGREGATES_PREFIX, "x", "00AB", 1, contract.AGGREGATES_SUFFIX)
    assert raised.value.size == aws.head_object(Bucket=ANALYTICS, Key=other)["ContentLength"]


def test_a_version_gathered_within_its_budget_is_reported(aws: Any) -> None:
    own = put_part(aws, "00AB", 0, 2)
    put_part(aws, "00AB", 1, None)
    budget = deadline.Budget.start(Stage.ANALYTICS, 1769, 60.0)
    with deadline.guarding(budget):
        report = gather(aws, ANALYTICS, own, None, TOP)
    assert report["totals"]["records"] == 2
