"""handlers.versions on moto: when a raw version of several parts counts as complete."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import moto.s3.models
import msgspec
import pytest
from handler_support import ANALYTICS, record

from handlers import contract, database, deadline
from handlers.aggregation import aggregate_records
from handlers.contract import Stage
from handlers.documents import Origin, groups_from_document, head_metadata, read_document, to_document
from handlers.errors import DeadlineError
from handlers.events import part_key
from handlers.groups import AggregateResult
from handlers.metrics import Counts
from handlers.versions import gather

DIMENSIONS, METRICS = ("type", "source"), ("value",)
TOP = 3
REPORT = (ANALYTICS, part_key(contract.REPORTS_PREFIX, "x", "00AB", 0, contract.REPORTS_SUFFIX))


def put_part(
    s3: Any, tag: str, part: int, parts: int | None, value: int = 1, heads: bool = True
) -> tuple[dict[str, str], Any]:
    """Write part ``part`` of version ``tag`` of ``x`` as processing would (``heads``: with the metadata
    for analytics' HEADs, as processing has written since it had them); returns (source, document)."""
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
    metadata = head_metadata(origin, raw) if heads else {}
    s3.put_object(Bucket=ANALYTICS, Key=key, Body=raw, Metadata=metadata)
    return {"bucket": ANALYTICS, "key": key, "sha256": hashlib.sha256(raw).hexdigest()}, read_document(raw)


def test_without_part_0_a_later_part_waits(aws: Any) -> None:
    own = put_part(aws, "00AB", 1, None)
    assert gather(aws, ANALYTICS, own, None, TOP, report=REPORT) == "waiting for part 0"


def test_a_part_past_the_number_part_0_names_is_left_over(aws: Any) -> None:
    put_part(aws, "00AB", 0, 2)
    own = put_part(aws, "00AB", 2, None)
    assert gather(aws, ANALYTICS, own, None, TOP, report=REPORT) == "left over: part 0 names 2 parts"


def test_without_a_database_a_version_is_complete_when_every_document_exists(aws: Any) -> None:
    # GIVEN parts 0 and 2 of three, and part 1 of another version whose tag starts with this one's
    own = put_part(aws, "00AB", 0, 3)
    put_part(aws, "00AB", 2, None)
    put_part(aws, "00ABC", 1, None)
    # THEN it waits for its own part 1, and is complete once it is there
    assert gather(aws, ANALYTICS, own, None, TOP, report=REPORT) == "waiting for 1 of 3 parts"
    put_part(aws, "00AB", 1, None)
    report = gather(aws, ANALYTICS, own, None, TOP, report=REPORT)
    assert [(p["key"], p["database"]) for p in report["parts"]] == [
        (part_key(contract.AGGREGATES_PREFIX, "x", "00AB", n, contract.AGGREGATES_SUFFIX), "not_configured")
        for n in range(3)
    ]


def load_parts(engine: Any, parts: list[tuple[dict[str, str], Any]]) -> list[tuple[dict[str, str], Any]]:
    """Load each (source, document) as analytics would; returns ``parts``."""
    setting = database.Setting("1h", DIMENSIONS, METRICS)
    for source, document in parts:
        o = document.origin
        origin = database.Origin(o.rel, o.sequencer, o.version_id, o.part, o.parts)
        database.load(
            engine, source["key"], source["sha256"], setting, origin, groups_from_document(document)
        )
    return parts


def test_with_a_database_a_part_processed_again_and_not_loaded_yet_keeps_the_version_waiting(
    aws: Any, migrated_database: str
) -> None:
    # GIVEN both parts of a version loaded, then part 1 processed again into other bytes
    engine = database.connect(migrated_database)
    own = load_parts(engine, [put_part(aws, "00AB", 0, 2), put_part(aws, "00AB", 1, None)])[0]
    assert [p["database"] for p in gather(aws, ANALYTICS, own, engine, TOP, report=REPORT)["parts"]] == [
        "loaded",
        "loaded",
    ]
    put_part(aws, "00AB", 1, None, value=2)
    # THEN the version waits for that load
    assert (
        gather(aws, ANALYTICS, own, engine, TOP, report=REPORT) == "waiting for 1 of 2 parts processed again"
    )
    engine.dispose()


def test_a_version_whose_parts_cannot_be_gathered_in_time_fails_early_with_the_reason(aws: Any) -> None:
    # GIVEN a complete version of two parts and an invocation with a millisecond left at 128 MB
    own = put_part(aws, "00AB", 0, 2)
    put_part(aws, "00AB", 1, None)
    budget = deadline.Budget.start(Stage.ANALYTICS, 128, 0.001, clock=lambda: 0.0)
    # WHEN it gathers THEN it refuses before reading, at the planning rate for the other part's bytes
    with deadline.guarding(budget), pytest.raises(DeadlineError) as raised:
        gather(aws, ANALYTICS, own, None, TOP, report=REPORT)
    assert raised.value.reason == contract.OVER_BUDGET_REASON
    other = part_key(contract.AGGREGATES_PREFIX, "x", "00AB", 1, contract.AGGREGATES_SUFFIX)
    assert raised.value.size == aws.head_object(Bucket=ANALYTICS, Key=other)["ContentLength"]


def test_a_version_gathered_within_its_budget_is_reported(aws: Any) -> None:
    own = put_part(aws, "00AB", 0, 2)
    put_part(aws, "00AB", 1, None)
    budget = deadline.Budget.start(Stage.ANALYTICS, contract.FULL_VCPU_MEMORY_MB, 60.0)
    with deadline.guarding(budget):
        report = gather(aws, ANALYTICS, own, None, TOP, report=REPORT)
    assert report["totals"]["records"] == 2


class CountingReads:
    """An S3 client that counts the document bodies read through it (``get_object``)."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.reads = s3, 0

    def get_object(self, **kwargs: Any) -> Any:
        self.reads += kwargs["Key"].startswith(contract.AGGREGATES_PREFIX)
        return self.s3.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def write_report(s3: Any, own: tuple[dict[str, str], Any]) -> None:
    """The version's report as ``own``'s invocation gathers and writes it."""
    report = gather(s3, ANALYTICS, own, None, TOP, report=REPORT)
    assert not isinstance(report, str), report
    s3.put_object(Bucket=REPORT[0], Key=REPORT[1], Body=msgspec.json.encode(report))


def test_without_a_database_a_part_not_the_newest_reads_nothing_once_the_report_exists(aws: Any) -> None:
    # GIVEN every part of a version, part 2's document written last, and the version's report
    own = put_part(aws, "00AB", 0, 3)
    put_part(aws, "00AB", 1, None)
    write_report(aws, put_part(aws, "00AB", 2, None))
    # WHEN part 0's invocation (a late delivery) checks the version
    s3 = CountingReads(aws)
    # THEN it finds its document in the report, leaves the version to the newest part's invocation, and
    # reads no document
    left = gather(s3, ANALYTICS, own, None, TOP, report=REPORT)
    assert (left, s3.reads) == ("reported: part 2's document is the newest", 0)


def processed_again_in_one_second(aws: Any, monkeypatch: pytest.MonkeyPatch, parts: int) -> tuple[Any, Any]:
    """Part 1's new document, then part 0's naming ``parts``, stamped in one second; part 1's invocation
    (the newest by key) reports what it lists meanwhile. Returns part 0's (source, document)."""
    with monkeypatch.context() as patched:
        patched.setattr(moto.s3.models, "utcnow", lambda: datetime.datetime(2030, 1, 1, 0, 0, 0, 100000))
        write_report(aws, put_part(aws, "00AB", 1, None, value=5))
        patched.setattr(moto.s3.models, "utcnow", lambda: datetime.datetime(2030, 1, 1, 0, 0, 0, 700000))
        return put_part(aws, "00AB", 0, parts, value=5)


def test_without_a_database_a_part_whose_earlier_bytes_are_in_the_report_gathers_again(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a reported version of two parts, processed again (another window, say) in one second: part 1's
    # document first, and its invocation, the newest by key, reported part 0's earlier bytes
    put_part(aws, "00AB", 0, 2)
    write_report(aws, put_part(aws, "00AB", 1, None))
    own = processed_again_in_one_second(aws, monkeypatch, parts=2)
    # WHEN part 0's invocation checks the version
    report = gather(aws, ANALYTICS, own, None, TOP, report=REPORT)
    # THEN it gathers it again, from both parts' current documents
    assert report["parts"][0]["sha256"] == own[0]["sha256"]
    assert report["totals"]["metrics"]["value"].sum == "10"


def test_without_a_database_a_version_cut_into_fewer_parts_than_its_report_names_is_gathered_again(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a reported version of three parts, then cut anew into two in one second: part 1's document
    # first, and its invocation, the newest by key, reported the three parts part 0 still named
    put_part(aws, "00AB", 0, 3)
    put_part(aws, "00AB", 1, None)
    write_report(aws, put_part(aws, "00AB", 2, None))
    own = processed_again_in_one_second(aws, monkeypatch, parts=2)
    # WHEN part 0's invocation checks the version
    report = gather(aws, ANALYTICS, own, None, TOP, report=REPORT)
    # THEN it gathers the two parts it names
    assert (report["origin"]["parts"], [p["part"] for p in report["parts"]]) == (2, [0, 1])
    assert report["totals"]["metrics"]["value"].sum == "10"


def test_with_a_database_a_version_waiting_for_a_part_processed_again_reads_no_document(
    aws: Any, migrated_database: str
) -> None:
    # GIVEN the three parts of a version loaded, then part 1 processed again into other bytes
    engine = database.connect(migrated_database)
    own = load_parts(engine, [put_part(aws, "00AB", 0, 3), put_part(aws, "00AB", 1, None)])[0]
    load_parts(engine, [put_part(aws, "00AB", 2, None)])
    put_part(aws, "00AB", 1, None, value=2)
    # WHEN part 0's invocation checks the version
    s3 = CountingReads(aws)
    # THEN it waits for that load without reading any other part's document
    waiting = gather(s3, ANALYTICS, own, engine, TOP, report=REPORT)
    assert (waiting, s3.reads) == ("waiting for 1 of 3 parts processed again", 0)
    engine.dispose()


def test_with_a_database_a_part_processed_again_without_its_sha256_metadata_is_found_when_read(
    aws: Any, migrated_database: str
) -> None:
    # GIVEN both parts of a version loaded, then part 1 processed again into other bytes by a processing
    # stage that did not name a document's SHA-256 in its metadata yet
    engine = database.connect(migrated_database)
    own = load_parts(engine, [put_part(aws, "00AB", 0, 2), put_part(aws, "00AB", 1, None)])[0]
    put_part(aws, "00AB", 1, None, value=2, heads=False)
    # THEN the version waits for that load, found once part 1's document is read
    waiting = gather(aws, ANALYTICS, own, engine, TOP, report=REPORT)
    assert waiting == "waiting for part 1, processed again"
    engine.dispose()


def test_without_a_database_a_document_stamped_before_the_newest_but_listed_after_its_check_is_gathered(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN parts 0 and 2 of three, part 2's invocation already waiting for part 1
    put_part(aws, "00AB", 0, 3)
    newest = put_part(aws, "00AB", 2, None)
    assert gather(aws, ANALYTICS, newest, None, TOP, report=REPORT) == "waiting for 1 of 3 parts"
    # WHEN part 1's document comes in stamped earlier (S3 may stamp a PUT when it starts), and no report
    with monkeypatch.context() as patched:
        patched.setattr(moto.s3.models, "utcnow", lambda: datetime.datetime(2024, 5, 1))
        late = put_part(aws, "00AB", 1, None)
    # THEN its own invocation gathers the version, although its document is not the newest
    assert gather(aws, ANALYTICS, late, None, TOP, report=REPORT)["origin"]["parts"] == 3
