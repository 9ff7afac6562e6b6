"""An overwritten raw key, through the three real handlers on moto: the same uploads give the same totals
whatever the order, retries and redrives of their events, in both overwrite modes.

Two versions of one key: v1 holds 0.1, 0.2 and 5.7 (sum 6.0), v2 holds 10.05 and 19.95 (sum 30.00). Each
version's events form a chain (ingestion → processing → analytics); every interleaving of the two chains
that respects each chain's own order is delivered, each event twice (a retry after a lost response), and
v1's whole chain once more at the end (a redrive from the failure queues). ``replace`` must hold v2 alone,
``append`` both, in every case. Only the raw bucket is versioned, the default.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from handler_support import ANALYTICS, PROCESSED, RAW, event_of, put, rollup_totals, s3_record

from handlers import analytics_handler as analytics
from handlers import contract, database
from handlers import ingestion_handler as ingestion
from handlers import processing_handler as processing

REPLACE, APPEND = contract.OVERWRITE_REPLACE, contract.OVERWRITE_APPEND

V1 = (Decimal("0.1"), Decimal("0.2"), Decimal("5.7"))
V2 = (Decimal("10.05"), Decimal("19.95"))
EXPECTED = {
    REPLACE: {
        "records": 2,
        "count": 2,
        "sum": Decimal("30"),
        "min": Decimal("10.05"),
        "max": Decimal("19.95"),
    },
    APPEND: {
        "records": 5,
        "count": 5,
        "sum": Decimal("36"),
        "min": Decimal("0.1"),
        "max": Decimal("19.95"),
    },
}
STAGES = {"I": ingestion, "P": processing, "A": analytics}
NEXT_BUCKET = {"I": PROCESSED, "P": ANALYTICS}


def interleavings(a: list[str], b: list[str]) -> Iterator[list[str]]:
    """Every merge of ``a`` and ``b`` that keeps each one's order."""
    for positions in itertools.combinations(range(len(a) + len(b)), len(a)):
        left, right = iter(a), iter(b)
        yield [next(left) if i in positions else next(right) for i in range(len(a) + len(b))]


ORDERS = list(interleavings(["I1", "P1", "A1"], ["I2", "P2", "A2"]))


def body(values: tuple[Decimal, ...], group: str) -> bytes:
    lines = [
        f'{{"id": "e{n}", "timestamp": "2024-05-01T12:00:00Z", "type": "{group}", "value": {value}}}'
        for n, value in enumerate(values)
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def chain(aws: Any, stage_env: pytest.MonkeyPatch, database_url: str) -> Any:
    """The three stages' runtimes, each built once from its own environment, over one database."""
    secret = boto3_client("secretsmanager").create_secret(Name="db", SecretString=database_url)["ARN"]
    environments = {
        "I": {
            contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
            contract.Env.DEST_BUCKET: PROCESSED,
            contract.Env.INPUT_PREFIX: contract.INPUT_PREFIX,
            contract.Env.MAX_RECORD_BYTES: "4096",
        },
        "P": {
            contract.Env.PIPELINE_STAGE: contract.Stage.PROCESSING,
            contract.Env.DEST_BUCKET: ANALYTICS,
            contract.Env.AGGREGATION_WINDOW: contract.DEFAULT_WINDOW,
            contract.Env.AGGREGATION_DIMENSIONS: "type",
            contract.Env.AGGREGATION_METRICS: ",".join(contract.DEFAULT_METRICS),
        },
        "A": {
            contract.Env.PIPELINE_STAGE: contract.Stage.ANALYTICS,
            contract.Env.DEST_BUCKET: ANALYTICS,
            contract.Env.DATABASE_SECRET_ARN: secret,
        },
    }
    database.migrate(database_url)

    def configure(mode: str, max_record_bytes: int = 4096) -> None:
        for name, module in STAGES.items():
            module.runtime.cache_clear()
            with pytest.MonkeyPatch.context() as env:
                settings = {**environments[name], contract.Env.OVERWRITE_MODE: mode}
                if name == "I":
                    settings[contract.Env.MAX_RECORD_BYTES] = str(max_record_bytes)
                for key, value in settings.items():
                    env.setenv(key, value)
                module.runtime()  # the container's cold start reads its environment once

    return configure


def boto3_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=os.environ["AWS_DEFAULT_REGION"])


@pytest.fixture
def database_url(empty_database: str) -> str:
    """An empty SQLite and, on the throwaway server, PostgreSQL database (tests/handlers/conftest.py)."""
    return empty_database


def run_order(s3: Any, order: list[str], group: str) -> None:
    """Upload both versions, then deliver their events in ``order``, each twice, then redrive v1's."""
    key = f"{contract.INPUT_PREFIX}{group}.jsonl"
    pending = {
        "I1": event_of(put(s3, RAW, key, body(V1, group))),
        "I2": event_of(put(s3, RAW, key, body(V2, group))),
    }
    delivered: list[tuple[str, dict[str, Any]]] = []

    def deliver(step: str) -> None:
        stage, version = step[0], step[1]
        event = pending[step]
        results = [STAGES[stage].handler(event, None) for _ in range(2)]  # a retry after a lost response
        assert results[0] == results[1]
        delivered.append((step, event))
        if stage in NEXT_BUCKET:
            [obj] = results[0]["objects"]
            [written] = [k for k in obj["written"] if not k.startswith(contract.QUARANTINE_PREFIX)]
            size = s3.head_object(Bucket=NEXT_BUCKET[stage], Key=written)["ContentLength"]
            following = "P" if stage == "I" else "A"
            pending[f"{following}{version}"] = event_of(
                s3_record(NEXT_BUCKET[stage], written, size, None, None)
            )

    for step in order:
        deliver(step)
    for step, event in delivered:  # a redrive of everything v1 ever sent
        if step.endswith("1"):
            STAGES[step[0]].handler(event, None)


def totals(url: str) -> dict[str, dict[str, Any]]:
    return rollup_totals(url)


@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_every_order_of_events_retries_and_redrives_gives_the_same_totals(
    aws: Any, chain: Any, database_url: str, mode: str
) -> None:
    # GIVEN the chain in one overwrite mode
    chain(mode)
    # WHEN the two versions' events arrive in each of the 20 orders (one group per order), with retries
    # and a redrive
    for number, order in enumerate(ORDERS):
        run_order(aws, order, f"order{number}")
    # THEN every order stored exactly the mode's totals
    assert totals(database_url) == {f"order{number}": EXPECTED[mode] for number in range(len(ORDERS))}


def test_retracting_a_key_in_replace_mode_is_a_new_version_without_records(
    aws: Any, chain: Any, database_url: str
) -> None:
    # GIVEN a key loaded in replace mode
    chain(REPLACE)
    run_order(aws, ["I1", "P1", "A1", "I2", "P2", "A2"], "retracted")
    assert totals(database_url)["retracted"]["count"] == 2
    # WHEN a new version holding an empty array goes through the chain
    event = event_of(put(aws, RAW, f"{contract.INPUT_PREFIX}retracted.jsonl", b"[]"))
    for stage in "IPA":
        result = STAGES[stage].handler(event, None)
        if stage in NEXT_BUCKET:
            [written] = [
                k for k in result["objects"][0]["written"] if not k.startswith(contract.QUARANTINE_PREFIX)
            ]
            event = event_of(s3_record(NEXT_BUCKET[stage], written, 0, None, None))
    # THEN the key contributes nothing any more
    assert totals(database_url).get("retracted", {"count": 0})["count"] == 0


def test_deleting_a_raw_object_changes_no_total(aws: Any, chain: Any, database_url: str) -> None:
    # GIVEN a key loaded in replace mode
    chain(REPLACE)
    run_order(aws, ["I1", "P1", "A1", "I2", "P2", "A2"], "deleted")
    before = totals(database_url)
    # WHEN the raw object is deleted (S3 sends no ObjectCreated event: the stages are not invoked)
    aws.delete_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}deleted.jsonl")
    # THEN the totals are what they were: the database keeps history, deletion is not retraction
    assert totals(database_url) == before == {"deleted": EXPECTED[REPLACE]}


def chain_through(s3: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Deliver ``event`` to ingestion, then each output to the next stage; returns the events sent."""
    sent = [event]
    for stage in "IPA":
        result = STAGES[stage].handler(event, None)
        if stage in NEXT_BUCKET:
            [written] = [
                k for k in result["objects"][0]["written"] if not k.startswith(contract.QUARANTINE_PREFIX)
            ]
            head = s3.head_object(Bucket=NEXT_BUCKET[stage], Key=written)
            event = event_of(
                s3_record(NEXT_BUCKET[stage], written, head["ContentLength"], None, head.get("VersionId"))
            )
            sent.append(event)
    return sent


@pytest.mark.parametrize("body", [b"", b"[1, 2", b"7"], ids=["empty", "truncated", "scalar"])
def test_an_unreadable_new_version_replaces_the_old_contribution(
    aws: Any, chain: Any, database_url: str, body: bytes
) -> None:
    # GIVEN a key whose first version is loaded in replace mode
    chain(REPLACE)
    chain_through(
        aws,
        event_of(
            put(
                aws,
                RAW,
                f"{contract.INPUT_PREFIX}broken.json",
                b'[{"id": "a", "timestamp": 0, "type": "broken", "value": 1.5}]',
            )
        ),
    )
    assert totals(database_url)["broken"]["sum"] == Decimal("1.5")
    # WHEN its new version cannot be read at all
    chain_through(aws, event_of(put(aws, RAW, f"{contract.INPUT_PREFIX}broken.json", body)))
    # THEN the key holds the latest version, which holds nothing (its quarantine entry says why)
    assert "broken" not in totals(database_url)


def test_a_late_event_for_an_earlier_processing_of_a_version_changes_nothing(
    aws: Any, chain: Any, database_url: str
) -> None:
    # GIVEN versioned processed and analytics buckets, and one raw version ingested twice: first with a
    # record-size limit that quarantines its large record, then (after the fix) with one that takes it
    for bucket in (PROCESSED, ANALYTICS):
        aws.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    big = '{"id": "' + "b" * 300 + '", "timestamp": 0, "type": "late", "value": 100}'
    raw = event_of(
        put(
            aws,
            RAW,
            f"{contract.INPUT_PREFIX}late.jsonl",
            f'{big}\n{{"id": "s", "timestamp": 0, "type": "late", "value": 1}}\n'.encode(),
        )
    )
    chain(REPLACE, max_record_bytes=200)
    first = chain_through(aws, raw)
    chain(REPLACE, max_record_bytes=4096)
    chain_through(aws, raw)
    assert (totals(database_url)["late"]["count"], totals(database_url)["late"]["sum"]) == (2, Decimal(101))
    # WHEN the first processing's events arrive late (a retry or a redrive, naming the old versions)
    for stage, event in zip("PA", first[1:], strict=True):
        STAGES[stage].handler(event, None)
    # THEN the newer processing still stands
    assert (totals(database_url)["late"]["count"], totals(database_url)["late"]["sum"]) == (2, Decimal(101))
