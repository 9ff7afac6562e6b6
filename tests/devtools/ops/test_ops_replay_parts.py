"""`devtools.ops.replay` with records/ parts (the chain of tests/devtools/ops/test_ops_replay.py): a
version in parts is ingested, processed and loaded once, later replays skip every part, and a version
of which only later parts exist (an ingestion that stopped before part 0) is ingested again."""

from __future__ import annotations

from decimal import Decimal

from test_ops_replay import Chain, body, chain, database_url, run, set_ingestion_env, totals

from handlers import contract
from handlers.contract import Stage
from handlers.events import split_part

__all__ = ["chain", "database_url"]  # the fixtures this module uses

VALUES = ("1.5", "2", "3.25", "4", "5", "6.5")


def records_parts(chain: Chain) -> list[int]:
    listed = chain.s3.list_objects_v2(Bucket=chain.env[Stage.INGESTION][contract.Env.DEST_BUCKET])
    return sorted(
        split_part(o["Key"], contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)[2]
        for o in listed.get("Contents", [])
        if o["Key"].startswith(contract.RECORDS_PREFIX)
    )


def test_a_version_in_parts_is_replayed_once_and_every_part_is_skipped_after(chain: Chain) -> None:
    # GIVEN a raw object that ingestion cuts into parts of two records
    set_ingestion_env(chain, **{contract.Env.RECORDS_PART_BYTES: "160"})
    chain.s3.put_object(Bucket="replay-raw", Key=f"{contract.INPUT_PREFIX}p.jsonl", Body=body(*VALUES))
    # WHEN ingestion is replayed
    assert run(chain, Stage.INGESTION).sent == 1
    parts = records_parts(chain)
    # THEN it was cut into parts and loaded whole
    assert len(parts) > 1
    expected = {"records": 6, "count": 6, "sum": sum((Decimal(v) for v in VALUES), Decimal(0))}
    assert totals(chain.url) == {("1h", "a"): expected}
    # AND later replays of every stage skip every part (each part's document, each part's load)
    for stage in (Stage.INGESTION, Stage.PROCESSING, Stage.ANALYTICS):
        again = run(chain, stage)
        assert (again.sent, again.skipped) == (0, again.seen)
    assert run(chain, Stage.PROCESSING).seen == len(parts)
    assert totals(chain.url) == {("1h", "a"): expected}


def test_later_parts_without_part_0_do_not_count_as_ingested(chain: Chain) -> None:
    # GIVEN a version ingested in parts, then its part 0 lost (as if ingestion had stopped before it)
    set_ingestion_env(chain, **{contract.Env.RECORDS_PART_BYTES: "160"})
    chain.s3.put_object(Bucket="replay-raw", Key=f"{contract.INPUT_PREFIX}q.jsonl", Body=body(*VALUES))
    run(chain, Stage.INGESTION)
    assert len(records_parts(chain)) > 1
    processed = chain.env[Stage.INGESTION][contract.Env.DEST_BUCKET]
    chain.s3.delete_object(Bucket=processed, Key=f"{contract.RECORDS_PREFIX}q.jsonl/{_tag(chain)}.jsonl.gz")
    # WHEN ingestion is replayed again THEN the version is sent again
    assert run(chain, Stage.INGESTION).sent == 1


def _tag(chain: Chain) -> str:
    listed = chain.s3.list_objects_v2(Bucket=chain.env[Stage.INGESTION][contract.Env.DEST_BUCKET])
    [tag] = {
        split_part(o["Key"], contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)[1]
        for o in listed.get("Contents", [])
        if o["Key"].startswith(contract.RECORDS_PREFIX)
    }
    return tag
