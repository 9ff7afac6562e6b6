"""A raw version cut into records/ parts, through the three real handlers on moto: the same totals and
one report as the version in one part, whatever the order and repetition of the parts' events, in both
overwrite modes, on SQLite and PostgreSQL, and without a database.

The part size is tiny (``RECORDS_PART_BYTES``), so a handful of records make several parts.
"""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from handler_support import ANALYTICS, PROCESSED, RAW, event_of, keys, put, rollup_totals, s3_record

from handlers import analytics_handler as analytics
from handlers import contract, database
from handlers import ingestion_handler as ingestion
from handlers import processing_handler as processing
from handlers.contract import Env, Stage
from handlers.errors import DeadlineError
from handlers.events import part_key, split_part

REPLACE, APPEND = contract.OVERWRITE_REPLACE, contract.OVERWRITE_APPEND

# Literals of one length, so that every records/ line of a version has the same length (line_bytes).
VALUES = [Decimal(v) for v in ("0.125", "0.200", "5.700", "10.05", "19.95", "-3.50", "7.125", "100.0")]
NEW_VALUES = [Decimal(v) for v in ("2.500", "-1.00", "40.00", "0.250")]
RECORDS = (contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)
PART_BYTES = 150  # two or so of these records' lines in records/: eight records make several parts


def body(values: list[Decimal], group: str) -> bytes:
    lines = [
        f'{{"id": "e{n}", "timestamp": "2024-05-01T12:00:00Z", "type": "{group}", "value": {value}}}'
        for n, value in enumerate(values)
    ]
    return ("\n".join(lines) + "\n").encode()


def line_bytes(group: str) -> int:
    """The length of each records/ line of ``body(VALUES or NEW_VALUES, group)``, its newline included."""
    line = f'{{"id":"e0","timestamp":"2024-05-01T12:00:00Z","type":"{group}","value":0.125}}'
    return len(line) + 1


def expected(values: list[Decimal]) -> dict[str, Any]:
    return {
        "records": len(values),
        "count": len(values),
        "sum": sum(values, Decimal(0)),
        "min": min(values),
        "max": max(values),
    }


@pytest.fixture
def chain(aws: Any, stage_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """Configure the three stages' runtimes (a cold start each) with a part size and overwrite mode."""
    url = None
    migrated: set[str] = set()  # a database at the head revision stays there: upgrading it again is a no-op

    def configure(part_bytes: int, mode: str = REPLACE, database_url: str | None = None) -> None:
        nonlocal url
        url = database_url
        secret = None
        if database_url:
            if database_url not in migrated:
                database.migrate(database_url)
                migrated.add(database_url)
            secret = aws_client("secretsmanager").create_secret(
                Name=f"db-{random.randrange(1 << 30)}", SecretString=database_url
            )["ARN"]
        environments = {
            ingestion: {
                Env.PIPELINE_STAGE: Stage.INGESTION,
                Env.DEST_BUCKET: PROCESSED,
                Env.RECORDS_PART_BYTES: str(part_bytes),
            },
            processing: {
                Env.PIPELINE_STAGE: Stage.PROCESSING,
                Env.DEST_BUCKET: ANALYTICS,
                Env.AGGREGATION_DIMENSIONS: "type",
                Env.AGGREGATION_METRICS: "value",
            },
            analytics: {
                Env.PIPELINE_STAGE: Stage.ANALYTICS,
                Env.DEST_BUCKET: ANALYTICS,
                Env.OVERWRITE_MODE: mode,
                **({Env.DATABASE_SECRET_ARN: secret} if secret else {}),
            },
        }
        for module, settings in environments.items():
            module.runtime.cache_clear()
            with pytest.MonkeyPatch.context() as env:
                for key, value in settings.items():
                    env.setenv(key, value)
                module.runtime()

    return configure


def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1")


def ingest(s3: Any, key: str, data: bytes) -> list[dict[str, Any]]:
    """Upload and ingest one raw version; returns the processing events of its records/ parts."""
    result = ingestion.handler(event_of(put(s3, RAW, key, data)), None)
    written = [k for k in result["objects"][0]["written"] if k.startswith(contract.RECORDS_PREFIX)]
    return [event_of(s3_record(PROCESSED, k, 0, None, None)) for k in written]


def process(event: dict[str, Any]) -> dict[str, Any]:
    [written] = processing.handler(event, None)["objects"][0]["written"]
    return event_of(s3_record(ANALYTICS, written, 0, None, None))


def reports(s3: Any) -> dict[str, dict[str, Any]]:
    return {
        key: json.loads(s3.get_object(Bucket=ANALYTICS, Key=key)["Body"].read())
        for key in keys(s3, ANALYTICS)
        if key.startswith(contract.REPORTS_PREFIX)
    }


def totals(url: str) -> dict[str, dict[str, Any]]:
    return rollup_totals(url)


def test_a_version_in_parts_gives_the_totals_and_report_of_one_part(
    aws: Any, chain: Any, empty_database: str
) -> None:
    # GIVEN the same records once in one part and once (another key) in parts of two lines each
    chain(1 << 20, database_url=empty_database)
    whole = [
        process(event) for event in ingest(aws, f"{contract.INPUT_PREFIX}whole.jsonl", body(VALUES, "whole"))
    ]
    for event in whole:
        analytics.handler(event, None)
    chain(PART_BYTES, database_url=empty_database)
    parted = [
        process(event)
        for event in ingest(aws, f"{contract.INPUT_PREFIX}parted.jsonl", body(VALUES, "parted"))
    ]
    results = [analytics.handler(event, None) for event in parted]
    # THEN the parted version has several parts, the same totals, and one report like the whole one's
    assert len(whole) == 1
    assert len(parted) > 2
    assert totals(empty_database) == {"whole": expected(VALUES), "parted": expected(VALUES)}
    assert sum(len(r["objects"][0]["written"]) for r in results) == 1
    found = reports(aws)
    assert len(found) == 2
    [whole_report] = [r for k, r in found.items() if "/whole.jsonl/" in k]
    [parted_report] = [r for k, r in found.items() if "/parted.jsonl/" in k]
    assert parted_report["origin"]["parts"] == len(parted_report["parts"]) == len(parted)
    assert parted_report["database"] == "loaded"
    assert parted_report["counts"] == whole_report["counts"]
    assert parted_report["totals"]["metrics"] == whole_report["totals"]["metrics"]
    assert parted_report["totals"]["records"] == whole_report["totals"]["records"] == len(VALUES)


def orders(parts: int, how_many: int, seed: int) -> list[list[str]]:
    """A fixed sample of the orders of the parts' events that keep each part's P before its A."""
    every = [
        order
        for order in itertools.permutations([f"{stage}{n}" for n in range(parts) for stage in "PA"])
        if all(order.index(f"P{n}") < order.index(f"A{n}") for n in range(parts))
    ]
    return random.Random(seed).sample(every, min(how_many, len(every)))


def deliver(order: list[str], events: list[dict[str, Any]], times: int = 2) -> list[dict[str, Any]]:
    """Deliver the parts' events in ``order``, each ``times`` times; returns the analytics results."""
    analytics_events: dict[str, dict[str, Any]] = {}
    results = []
    for step in order:
        number = int(step[1:])
        for _ in range(times):
            if step[0] == "P":
                analytics_events[step] = process(events[number])
            else:
                results.append(analytics.handler(analytics_events[f"P{number}"], None))
    return results


def version_reports(s3: Any, group: str) -> list[dict[str, Any]]:
    return [report for key, report in reports(s3).items() if f"/{group}.jsonl/" in key]


@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_every_order_and_redelivery_of_the_parts_gives_the_same_totals_and_one_report(
    aws: Any, chain: Any, empty_database: str, mode: str
) -> None:
    # GIVEN a version of three parts
    for number, order in enumerate(orders(3, 8, seed=12)):
        group = f"order{number}"
        chain(3 * line_bytes(group), mode, database_url=empty_database)
        events = ingest(aws, f"{contract.INPUT_PREFIX}{group}.jsonl", body(VALUES, group))
        assert len(events) == 3
        # WHEN its parts' events arrive in this order, each twice, then all once more (a redrive)
        results = deliver(order, events)
        deliver(order, events, times=1)
        # THEN the totals are the version's, and exactly one report names all three parts
        assert totals(empty_database)[group] == expected(VALUES)
        [report] = version_reports(aws, group)
        assert (report["origin"]["parts"], report["database"]) == (3, "loaded")
        assert report["totals"]["records"] == len(VALUES)
        # AND no analytics delivery wrote a report before the version was complete: the last part's did
        # (and its repeat, the same bytes)
        assert [bool(r["objects"][0]["written"]) for r in results] == [False] * 4 + [True] * 2


def newest_part(s3: Any, group: str) -> int:
    """The part whose aggregates document S3 lists as written last (LastModified, then key)."""
    listed = s3.list_objects_v2(Bucket=ANALYTICS, Prefix=f"{contract.AGGREGATES_PREFIX}{group}.jsonl/")
    newest = max(listed["Contents"], key=lambda item: (item["LastModified"], item["Key"]))
    return split_part(newest["Key"], contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX)[2]


def test_without_a_database_the_first_delivery_to_find_every_part_and_the_newest_part_write_the_report(
    aws: Any, chain: Any
) -> None:
    # GIVEN a version of three parts and no database
    for number, order in enumerate(orders(3, 6, seed=7)):
        group = f"nodb{number}"
        chain(3 * line_bytes(group))
        events = ingest(aws, f"{contract.INPUT_PREFIX}{group}.jsonl", body(VALUES, group))
        # WHEN the parts' events arrive in this order, twice each
        results = deliver(order, events)
        # THEN no analytics delivery writes the version's report before every part's document exists; the
        # first after that does, and later only the deliveries of the newest document (the same bytes)
        newest = newest_part(aws, group)
        part_of = [split_part(e["Records"][0]["s3"]["object"]["key"], *RECORDS)[2] for e in events]
        complete = [
            (all(order.index(f"P{n}") < position for n in range(3)), part_of[int(step[1:])])
            for position, step in enumerate(order)
            if step[0] == "A"
        ]
        deliveries = [c for c in complete for _ in "12"]
        first = [done for done, _ in deliveries].index(True)
        want = [done and (at == first or part == newest) for at, (done, part) in enumerate(deliveries)]
        assert [bool(r["objects"][0]["written"]) for r in results] == want
        [report] = version_reports(aws, group)
        assert (report["database"], report["origin"]["parts"]) == ("not_configured", 3)
        assert report["totals"]["metrics"]["value"]["sum"] == str(sum(VALUES, Decimal(0)).normalize())


@pytest.mark.parametrize(
    ("mode", "first_parts", "second_parts"), [(REPLACE, 4, 2), (REPLACE, 2, 4), (APPEND, 4, 2)]
)
def test_an_overwrite_with_another_number_of_parts_replaces_every_old_part(
    aws: Any, chain: Any, empty_database: str, mode: str, first_parts: int, second_parts: int
) -> None:
    # GIVEN two versions of one key cut into different numbers of parts
    old, new = VALUES, NEW_VALUES
    for number, interleave in enumerate(["old first", "new first", "mixed"]):
        group = f"over{number}"
        chain(len(old) // first_parts * line_bytes(group), mode, database_url=empty_database)
        old_events = ingest(aws, f"{contract.INPUT_PREFIX}{group}.jsonl", body(old, group))
        chain(len(new) // second_parts * line_bytes(group), mode, database_url=empty_database)
        new_events = ingest(aws, f"{contract.INPUT_PREFIX}{group}.jsonl", body(new, group))
        assert (len(old_events), len(new_events)) == (first_parts, second_parts)
        # WHEN their parts are processed and loaded: the old version's first, the new one's, or alternately
        documents = {"old": [process(e) for e in old_events], "new": [process(e) for e in new_events]}
        if interleave == "old first":
            sequence = documents["old"] + documents["new"]
        elif interleave == "new first":
            sequence = documents["new"] + documents["old"]
        else:
            sequence = [
                e for pair in itertools.zip_longest(documents["old"], documents["new"]) for e in pair if e
            ]
        for event in sequence:
            analytics.handler(event, None)
        # THEN replace holds the new version alone, append both, and each version has one report
        want = expected(new) if mode == REPLACE else expected(old + new)
        assert totals(empty_database)[group] == want
        assert len(version_reports(aws, group)) == 2


COUNT = 1000


def test_an_unreadable_end_releases_no_part_and_its_empty_version_replaces_the_old(
    aws: Any, chain: Any, empty_database: str
) -> None:
    # GIVEN a key whose first version is loaded, and a new version that is a .json array cut off at its
    # end: ingestion staged parts of its first records before it found the end missing
    name = "cut"
    # Enough records for the ingestion core to hand whole batches over before it finds the end.
    records = ",".join(
        f'{{"id": "u{n}", "timestamp": 0, "type": "{name}", "value": {n}}}' for n in range(COUNT)
    )
    chain(16 << 10, database_url=empty_database)
    for event in ingest(aws, f"{contract.INPUT_PREFIX}{name}.json", f"[{records}]".encode()):
        analytics.handler(process(event), None)
    assert totals(empty_database)[name]["count"] == COUNT
    # WHEN the cut-off version is ingested, processed and loaded
    events = ingest(aws, f"{contract.INPUT_PREFIX}{name}.json", f"[{records}".encode())
    # THEN only its part 0 was released (empty: the version holds nothing), and nothing stays staged
    assert len(events) == 1
    assert split_part(events[0]["Records"][0]["s3"]["object"]["key"], *RECORDS)[2] == 0
    assert staged(aws) == []
    analytics.handler(process(events[0]), None)
    # AND the key holds the new version, which holds nothing, and its report is the one-part one
    assert name not in totals(empty_database)
    tag = split_part(events[0]["Records"][0]["s3"]["object"]["key"], *RECORDS)[1]
    new = [r for r in version_reports_of(aws, name) if r["origin"]["sequencer"] == tag]
    assert [(r["database"], "parts" in r["origin"]) for r in new] == [("loaded", False)]


def version_reports_of(s3: Any, name: str) -> list[dict[str, Any]]:
    return [report for key, report in reports(s3).items() if f"/{name}.json/" in key]


def staged(s3: Any) -> list[str]:
    """What is left under the staging prefix of the processed bucket."""
    return [key for key in keys(s3, PROCESSED) if key.startswith(contract.STAGING_PREFIX)]


def test_a_rejected_later_part_is_reported_at_its_own_key_and_the_version_waits(aws: Any, chain: Any) -> None:
    # GIVEN part 1 of a version whose document is not an aggregates document
    chain(3 * line_bytes("bad"))
    key = part_key(contract.AGGREGATES_PREFIX, "bad.jsonl", "0065A1", 1, contract.AGGREGATES_SUFFIX)
    aws.put_object(Bucket=ANALYTICS, Key=key, Body=b"{}")
    # WHEN it is delivered
    result = analytics.handler(event_of(s3_record(ANALYTICS, key, 2, None, None)), None)
    # THEN its rejection is at the part's report key, not the version's
    [written] = result["objects"][0]["written"]
    assert written == part_key(contract.REPORTS_PREFIX, "bad.jsonl", "0065A1", 1, contract.REPORTS_SUFFIX)
    assert reports(aws)[written]["database"] == "rejected"


def failing_open(after: int) -> Any:
    """``open_object`` whose read returns 64 bytes at a time and stops the attempt, as the deadline's
    watchdog does, once ``after`` bytes are read."""
    real = ingestion.open_object

    def open_object(s3: Any, ref: Any) -> Any:
        read, seen = real(s3, ref), 0

        def read_some(size: int) -> bytes:
            nonlocal seen
            if seen >= after:
                raise DeadlineError(
                    contract.OVER_BUDGET_REASON, "test", size=0, predicted_seconds=1.0, remaining_seconds=0.0
                )
            chunk = read(min(size, 64))
            seen += len(chunk)
            return chunk

        return read_some

    return open_object


def test_an_ingestion_stopped_part_way_releases_nothing_and_its_retry_every_part_once(
    aws: Any, chain: Any, empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a key whose first version is loaded (replace mode), and a new version of many parts
    # Enough records for the ingestion core to hand whole batches over before the read stops.
    group, new = "stopped", NEW_VALUES * 1000
    chain(16 << 10, database_url=empty_database)
    for event in ingest(aws, f"{contract.INPUT_PREFIX}{group}.jsonl", body(VALUES, group)):
        analytics.handler(process(event), None)
    assert totals(empty_database)[group] == expected(VALUES)
    before = [key for key in keys(aws, PROCESSED) if key.startswith(contract.RECORDS_PREFIX)]
    ref = put(aws, RAW, f"{contract.INPUT_PREFIX}{group}.jsonl", body(new, group))
    # WHEN its ingestion is stopped after several parts' worth of its bytes
    with monkeypatch.context() as patched:
        patched.setattr(ingestion, "open_object", failing_open(len(body(new, group)) // 2))
        with pytest.raises(DeadlineError):
            ingestion.handler(event_of(ref), None)
    # THEN its parts are staged only: no records/ object of the new version, and the totals unchanged
    left = staged(aws)
    assert len(left) > 1
    assert [key for key in keys(aws, PROCESSED) if key.startswith(contract.RECORDS_PREFIX)] == before
    assert totals(empty_database)[group] == expected(VALUES)
    # AND its retry releases every part exactly once, part 0 last, and leaves nothing staged of its own
    written = ingestion.handler(event_of(ref), None)["objects"][0]["written"]
    parts = [split_part(key, *RECORDS)[2] for key in written if key.startswith(contract.RECORDS_PREFIX)]
    assert parts == [*range(1, len(parts)), 0]
    assert len(parts) > len(left)
    assert staged(aws) == left  # the stopped attempt's own, which the bucket's lifecycle expires
    for key in written:
        analytics.handler(process(event_of(s3_record(PROCESSED, key, 0, None, None))), None)
    assert totals(empty_database)[group] == expected(new)
    assert len(version_reports(aws, group)) == 2


class _FrozenContext:
    """A Lambda context whose clock stands still with ``seconds`` left: the read always fits."""

    aws_request_id = "test-request"

    def __init__(self, seconds: float) -> None:
        self.millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_an_ingestion_without_time_to_release_its_parts_fails_before_the_first_copy(
    aws: Any, chain: Any
) -> None:
    # GIVEN a version of more parts than one round of parallel releases, and time for less than two rounds
    group, new = "late", NEW_VALUES * 1000
    chain(16 << 10)
    ref = put(aws, RAW, f"{contract.INPUT_PREFIX}{group}.jsonl", body(new, group))
    seconds = 2 * contract.RELEASE_PLANNING_SECONDS
    # WHEN it is ingested
    with pytest.raises(DeadlineError) as raised:
        ingestion.handler(event_of(ref), _FrozenContext(seconds))
    # THEN it fails with the named reason, its parts staged only: no records/ object at all
    assert raised.value.reason == contract.OVER_BUDGET_REASON
    assert len(staged(aws)) > ingestion.RELEASE_THREADS
    assert not [key for key in keys(aws, PROCESSED) if key.startswith(contract.RECORDS_PREFIX)]
