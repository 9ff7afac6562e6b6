"""`devtools.ops.replay` on moto, driving the three real handlers as Lambda would (the model of
tests/handlers/test_overwrites.py): what is listed and sent, skipped as already loaded, the
sequencers replayed events carry, rate, concurrency, checkpoint and resume, and that a second replay
changes nothing in the database."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto_clients import create_chain_buckets, mocked_aws

from devtools.ops import replay as rp
from handlers import analytics_handler as analytics
from handlers import contract, database
from handlers import ingestion_handler as ingestion
from handlers import processing_handler as processing
from handlers.contract import BucketRole, Stage
from handlers.events import object_refs, order_key

REPLACE, APPEND = contract.OVERWRITE_REPLACE, contract.OVERWRITE_APPEND

REGION = "us-east-1"
RAW, PROCESSED, ANALYTICS = "replay-raw", "replay-processed", "replay-analytics"
STAGE_MODULES = {Stage.INGESTION: ingestion, Stage.PROCESSING: processing, Stage.ANALYTICS: analytics}
NEXT = {Stage.INGESTION: (Stage.PROCESSING, PROCESSED), Stage.PROCESSING: (Stage.ANALYTICS, ANALYTICS)}
_LIVE = itertools.count(0x0065A1B2C3D4E5F6A7)  # what S3's sequencers look like: 00 + epoch seconds + ...


def environments(secret: str, window: str = "1h", dimensions: str = "type") -> dict[str, dict[str, str]]:
    return {
        Stage.INGESTION: {
            contract.Env.PIPELINE_STAGE: contract.Stage.INGESTION,
            contract.Env.DEST_BUCKET: PROCESSED,
            contract.Env.INPUT_PREFIX: contract.INPUT_PREFIX,
            contract.Env.INPUT_SUFFIXES: ",".join(contract.INPUT_SUFFIXES),
            contract.Env.MAX_RECORD_BYTES: "4096",
        },
        Stage.PROCESSING: {
            contract.Env.PIPELINE_STAGE: contract.Stage.PROCESSING,
            contract.Env.DEST_BUCKET: ANALYTICS,
            contract.Env.AGGREGATION_WINDOW: window,
            contract.Env.AGGREGATION_DIMENSIONS: dimensions,
            contract.Env.AGGREGATION_METRICS: ",".join(contract.DEFAULT_METRICS),
        },
        Stage.ANALYTICS: {
            contract.Env.PIPELINE_STAGE: contract.Stage.ANALYTICS,
            contract.Env.DEST_BUCKET: ANALYTICS,
            contract.Env.DATABASE_SECRET_ARN: secret,
        },
    }


class Chain:
    """The three functions on moto: `invoke` queues an asynchronous event, `drain` runs the queue as
    Lambda and the bucket notifications would (each output's event to the next stage)."""

    def __init__(self, s3: Any, url: str, secret: str) -> None:
        self.s3, self.url, self.secret = s3, url, secret
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        self.env: dict[str, dict[str, str]] = {}

    def configure(self, mode: str = REPLACE, **settings: str) -> None:
        self.env = environments(self.secret, **settings)
        self.env[Stage.ANALYTICS][contract.Env.OVERWRITE_MODE] = mode
        for stage, module in STAGE_MODULES.items():
            module.runtime.cache_clear()
            with pytest.MonkeyPatch.context() as env:
                for key, value in self.env[stage].items():
                    env.setenv(key, value)
                module.runtime()  # a cold start reads the environment once

    def target(self, stage: str, reserved: int | None = None) -> rp.ReplayTarget:
        bucket = {Stage.INGESTION: RAW, Stage.PROCESSING: PROCESSED, Stage.ANALYTICS: ANALYTICS}[stage]
        prefix, suffixes = {
            Stage.INGESTION: (contract.INPUT_PREFIX, contract.INPUT_SUFFIXES),
            Stage.PROCESSING: (contract.RECORDS_PREFIX, (contract.RECORDS_SUFFIX,)),
            Stage.ANALYTICS: (contract.AGGREGATES_PREFIX, (contract.AGGREGATES_SUFFIX,)),
        }[stage]
        return rp.ReplayTarget(
            stage,
            stage,
            bucket,
            prefix,
            suffixes,
            self.env[stage][contract.Env.DEST_BUCKET],
            self.env[stage],
            REGION,
            reserved,
        )

    def invoker(self, stage: str) -> rp.Invoke:
        def invoke(payload: Mapping[str, Any]) -> rp.InvokeOutcome:
            event = json.loads(json.dumps(payload))  # what Lambda hands the function: JSON
            self.invocations.append((stage, event))
            self.queue.append((stage, event))
            return rp.InvokeOutcome(True)

        return invoke

    def drain(self) -> None:
        while self.queue:
            stage, event = self.queue.pop(0)
            result = STAGE_MODULES[stage].handler(event, None)
            if stage in NEXT:
                following, bucket = NEXT[stage]
                for obj in result["objects"]:
                    for key in obj["written"]:
                        if key.startswith(contract.QUARANTINE_PREFIX):
                            continue
                        head = self.s3.head_object(Bucket=bucket, Key=key)
                        self.queue.append((following, notification(bucket, key, head["ContentLength"])))

    def put_live(self, key: str, body: bytes) -> None:
        """An upload the stack sees: S3's event, with a live sequencer, through the whole chain."""
        response = self.s3.put_object(Bucket=RAW, Key=key, Body=body)
        self.queue.append((Stage.INGESTION, notification(RAW, key, len(body), response.get("VersionId"))))
        self.drain()


def notification(bucket: str, key: str, size: int, version: str | None = None) -> dict[str, Any]:
    item = rp.Item(key, version, size, "etag", datetime.now(UTC), tag=f"{next(_LIVE):018X}")
    target = rp.ReplayTarget("x", "x", bucket, "", (), "", {}, REGION)
    return rp.s3_event(target, item)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """SQLite by default; ``indirect`` "postgresql" gives a fresh database on the throwaway server."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'replay.sqlite'}"
        return
    with request.getfixturevalue("new_postgres_database")("replay") as url:
        yield url
        if analytics.runtime.cache_info().currsize and analytics.runtime()._engine is not None:
            analytics.runtime()._engine.dispose()


BOTH_DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def chain(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Chain]:
    # each stage's cold start builds its clients: they are shared
    with mocked_aws(monkeypatch, REGION, **{contract.Env.METRICS_NAMESPACE: contract.METRICS_NAMESPACE}):
        s3 = boto3.client("s3", region_name=REGION)
        create_chain_buckets(s3, RAW, PROCESSED, ANALYTICS)
        url = database_url
        database.migrate(url)
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="db", SecretString=url)
        built = Chain(s3, url, secret["ARN"])
        built.configure()
        yield built
        if analytics.runtime.cache_info().currsize and analytics.runtime()._engine is not None:
            analytics.runtime()._engine.dispose()
        for module in STAGE_MODULES.values():
            module.runtime.cache_clear()


def body(*values: str, group: str = "a", hour: int = 12, minute: int = 0) -> bytes:
    return "".join(
        f'{{"id": "e{n}", "timestamp": "2024-05-01T{hour:02d}:{minute + n:02d}:00Z", "type": "{group}", '
        f'"value": {value}}}\n'
        for n, value in enumerate(values)
    ).encode()


def totals(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(window, group type) → records, count and exact sum, over every setting."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT g.window_size, g.dimensions, g.records, m.count, m.sum"
                    " FROM pipeline_rollup_groups g"
                    " JOIN pipeline_rollup_metrics m ON m.setting_key = g.setting_key"
                    " AND m.window_start = g.window_start AND m.dimensions_key = g.dimensions_key"
                    " WHERE m.metric = 'value'"
                )
            ).all()
    finally:
        engine.dispose()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for window, dimensions, records, count, total in rows:
        entry = found.setdefault(
            (str(window), json.loads(dimensions).get("type")), {"records": 0, "count": 0, "sum": Decimal(0)}
        )
        entry["records"] += records
        entry["count"] += count
        entry["sum"] += Decimal(str(total))
    return found


def run(chain: Chain, stage: str, **options: Any) -> rp.Summary:
    summary = rp.replay(
        chain.s3,
        chain.target(stage, options.pop("reserved", None)),
        chain.invoker(stage),
        rp.Options(rate=1000, concurrency=1, **options),
        limiter=rp.RateLimiter(1000, now=lambda: 0.0, sleep=lambda _: None),
    )
    chain.drain()
    return summary


# ---------------------------------------------------------------------------------------------------


@BOTH_DATABASES
@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_replaying_history_loads_each_version_once_and_a_second_replay_changes_nothing(
    chain: Chain, mode: str
) -> None:
    # GIVEN objects that were in the raw bucket before the stack: two versions of one key, one of another
    chain.configure(mode)
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1.5", "2"))
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("10", "20.25"))
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}b c+é.jsonl", Body=body("7", group="b"))
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}ignored.txt", Body=b"not a trigger suffix")
    # WHEN ingestion is replayed
    first = run(chain, Stage.INGESTION)
    # THEN every version was sent once, oldest first per key, and the totals are the mode's
    assert (first.seen, first.sent, first.skipped, first.failed) == (3, 3, 0, 0)
    expected_a = (
        {"records": 2, "count": 2, "sum": Decimal("30.25")}
        if mode == REPLACE
        else {"records": 4, "count": 4, "sum": Decimal("33.75")}
    )
    after_first = totals(chain.url)
    assert after_first == {
        ("1h", "a"): expected_a,
        ("1h", "b"): {"records": 1, "count": 1, "sum": Decimal("7")},
    }
    # AND a second replay sends nothing (already ingested), a forced one changes no total
    second = run(chain, Stage.INGESTION)
    assert (second.seen, second.sent, second.skipped) == (3, 0, 3)
    forced = run(chain, Stage.INGESTION, all=True)
    assert forced.sent == 3
    assert totals(chain.url) == after_first
    # AND so do replays of the later stages
    for stage in (Stage.PROCESSING, Stage.ANALYTICS):
        again = run(chain, stage)
        assert (again.sent, again.skipped) == (0, again.seen)
        assert run(chain, stage, all=True).sent == again.seen
    assert totals(chain.url) == after_first


def test_a_live_put_after_a_replay_out_ranks_every_replayed_version(chain: Chain) -> None:
    # GIVEN a key replayed from history in replace mode
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1"))
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("2"))
    run(chain, Stage.INGESTION)
    assert totals(chain.url)[("1h", "a")]["sum"] == Decimal("2")
    # WHEN a new version is uploaded live (S3's sequencer) and then the history is replayed again
    chain.put_live(f"{contract.INPUT_PREFIX}a.jsonl", body("100"))
    run(chain, Stage.INGESTION, all=True)
    # THEN the live version holds the key's totals
    assert totals(chain.url)[("1h", "a")] == {"records": 1, "count": 1, "sum": Decimal("100")}


def test_replay_sequencers_follow_the_version_order_and_known_sequencers() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    versions = [rp.Item("k", f"v{n}", 1, "e", t0 + timedelta(seconds=n)) for n in range(4)]
    # versions with LastModified out of order (a multipart upload keeps its initiation time)
    versions[2] = rp.Item("k", "v2", 1, "e", t0 - timedelta(days=1))
    tagged = rp.replay_tags(versions, {})
    tags = [order_key(item.tag) for item in tagged]
    assert tags == sorted(tags)
    assert len(set(tags)) == 4
    assert all(item.tag.startswith(rp.REPLAY_TAG_PREFIX) for item in tagged)
    assert all(t < order_key("0065A1B2C3D4E5F6A7") for t in tags)  # below S3's
    # a known (S3) sequencer for v1: v2 and v3 follow it, v0 stays before it
    known = rp.replay_tags(versions, {1: "0065A1B2C3D4E5F6A7"})
    ordered = [order_key(item.tag) for item in known]
    assert ordered == sorted(ordered)
    assert known[1].tag == "0065A1B2C3D4E5F6A7"
    # a known newer sequencer that leaves no room: the version between is unorderable, never sent
    squeezed = rp.replay_tags(versions[:3], {0: "0065A1B2C3D4E5F6A7", 2: "0065A1B2C3D4E5F6A7"})
    assert squeezed[1].problem.startswith("unorderable")


def test_events_are_shaped_as_s3s_and_decode_to_the_same_object(chain: Chain) -> None:
    key = f"{contract.INPUT_PREFIX}week 48 + café résumé.ndjson"
    version = chain.s3.put_object(Bucket=RAW, Key=key, Body=b"{}\n")["VersionId"]
    [entry] = rp.plan(chain.s3, chain.target(Stage.INGESTION), rp.Options())
    event = rp.s3_event(chain.target(Stage.INGESTION), entry.item)
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert (
        record["s3"]["object"]["key"]
        == f"{contract.INPUT_PREFIX}week+48+%2B+caf%C3%A9+r%C3%A9sum%C3%A9.ndjson"
    )
    [ref] = object_refs(event)
    assert (ref.bucket, ref.key, ref.version_id, ref.size) == (RAW, key, version, 3)
    assert record["eventTime"].endswith("Z")
    assert ref.sequencer == entry.item.tag


def test_prefix_since_and_until_select_objects(chain: Chain) -> None:
    for key in (
        f"{contract.INPUT_PREFIX}2024/a.jsonl",
        f"{contract.INPUT_PREFIX}2024/b.jsonl",
        f"{contract.INPUT_PREFIX}2025/c.jsonl",
    ):
        chain.s3.put_object(Bucket=RAW, Key=key, Body=body("1"))
    target = chain.target(Stage.INGESTION)
    keys = lambda **o: sorted(p.item.key for p in rp.plan(chain.s3, target, rp.Options(**o)))  # noqa: E731
    assert keys(prefix="2024/") == [
        f"{contract.INPUT_PREFIX}2024/a.jsonl",
        f"{contract.INPUT_PREFIX}2024/b.jsonl",
    ]
    assert keys(prefix=f"{contract.INPUT_PREFIX}2025/") == [f"{contract.INPUT_PREFIX}2025/c.jsonl"]
    now = datetime.now(UTC)
    assert len(keys(since=now - timedelta(hours=1))) == 3
    assert keys(since=now + timedelta(hours=1)) == []
    assert keys(until=now - timedelta(hours=1)) == []
    assert len(keys(until=now + timedelta(hours=1))) == 3


def test_a_dry_run_sends_nothing_and_writes_no_checkpoint(chain: Chain, tmp_path: Any) -> None:
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1"))
    checkpoint = rp.Checkpoint(tmp_path / "cp.jsonl")
    lines: list[str] = []
    summary = rp.replay(
        chain.s3,
        chain.target(Stage.INGESTION),
        chain.invoker(Stage.INGESTION),
        rp.Options(dry_run=True),
        checkpoint=checkpoint,
        echo=lines.append,
    )
    assert (summary.seen, summary.would_send, summary.sent) == (1, 1, 0)
    assert chain.invocations == []
    assert not (tmp_path / "cp.jsonl").exists()
    assert f"{contract.INPUT_PREFIX}a.jsonl" in lines[0]
    assert "dry run: 1 object(s) seen, 1 would be sent" in summary.text(True)


def test_the_rate_limit_spaces_sends_and_reserved_concurrency_caps_both(chain: Chain) -> None:
    for n in range(5):
        chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}{n}.jsonl", Body=body("1"))
    clock = [0.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    def invoke(payload: Mapping[str, Any]) -> rp.InvokeOutcome:
        sent_at.append(clock[0])
        return rp.InvokeOutcome(True)

    rp.replay(
        chain.s3,
        chain.target(Stage.INGESTION),
        invoke,
        rp.Options(rate=2, concurrency=1),
        limiter=rp.RateLimiter(2, now=lambda: clock[0], sleep=sleep),
    )
    assert sent_at == [0.0, 0.5, 1.0, 1.5, 2.0]
    # the function's reservation caps the rate and the senders
    assert rp.effective_limits(
        chain.target(Stage.INGESTION, reserved=3), rp.Options(rate=50, concurrency=10)
    ) == (
        3.0,
        3,
    )
    assert rp.effective_limits(chain.target(Stage.INGESTION), rp.Options(rate=50, concurrency=10)) == (
        50.0,
        10,
    )


def test_concurrent_senders_never_exceed_the_concurrency(chain: Chain) -> None:
    import threading
    import time

    for n in range(12):
        chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}{n}.jsonl", Body=body("1"))
    active, peak, lock = [0], [0], threading.Lock()

    def invoke(payload: Mapping[str, Any]) -> rp.InvokeOutcome:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return rp.InvokeOutcome(True)

    summary = rp.replay(chain.s3, chain.target(Stage.INGESTION), invoke, rp.Options(rate=1000, concurrency=3))
    assert summary.sent == 12
    assert 1 < peak[0] <= 3


def test_an_interrupted_replay_resumes_where_it_stopped(chain: Chain, tmp_path: Any) -> None:
    for n in range(6):
        chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}{n}.jsonl", Body=body(str(n + 1)))
    path = tmp_path / "cp.jsonl"
    sent: list[str] = []

    def interrupted(payload: Mapping[str, Any]) -> rp.InvokeOutcome:
        if len(sent) == 3:
            raise KeyboardInterrupt
        sent.append(payload["Records"][0]["s3"]["object"]["key"])
        return chain.invoker(Stage.INGESTION)(payload)

    options = rp.Options(rate=1000, concurrency=1)
    with pytest.raises(KeyboardInterrupt):
        rp.replay(
            chain.s3, chain.target(Stage.INGESTION), interrupted, options, checkpoint=rp.Checkpoint(path)
        )
    # a resume with other options is refused
    with pytest.raises(rp.ReplayError):
        rp.replay(
            chain.s3,
            chain.target(Stage.INGESTION),
            chain.invoker(Stage.INGESTION),
            rp.Options(prefix="1", resume=True),
            checkpoint=rp.Checkpoint(path),
        )
    resumed = rp.replay(
        chain.s3,
        chain.target(Stage.INGESTION),
        lambda p: (sent.append(p["Records"][0]["s3"]["object"]["key"]), chain.invoker(Stage.INGESTION)(p))[1],
        rp.Options(rate=1000, concurrency=1, resume=True),
        checkpoint=rp.Checkpoint(path),
    )
    assert (resumed.seen, resumed.resumed, resumed.sent) == (6, 3, 3)
    assert sorted(sent) == [f"{contract.INPUT_PREFIX}{n}.jsonl" for n in range(6)]  # each exactly once
    chain.drain()
    assert totals(chain.url)[("1h", "a")]["sum"] == Decimal(21)


def test_failures_are_counted_and_retried_on_resume(chain: Chain, tmp_path: Any) -> None:
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1"))
    path = tmp_path / "cp.jsonl"
    failing = rp.replay(
        chain.s3,
        chain.target(Stage.INGESTION),
        lambda p: rp.InvokeOutcome(False, "TooManyRequestsException"),
        rp.Options(concurrency=1),
        checkpoint=rp.Checkpoint(path),
    )
    assert (failing.sent, failing.failed) == (0, 1)
    assert "TooManyRequests" in failing.failures[0]
    again = rp.replay(
        chain.s3,
        chain.target(Stage.INGESTION),
        chain.invoker(Stage.INGESTION),
        rp.Options(concurrency=1, resume=True),
        checkpoint=rp.Checkpoint(path),
    )
    assert (again.sent, again.failed) == (1, 0)


@BOTH_DATABASES
def test_recompute_after_a_window_change_keeps_both_settings_apart(chain: Chain) -> None:
    # GIVEN history loaded with 1h windows
    chain.s3.put_object(
        Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1", "2.5", "3", minute=10)
    )
    run(chain, Stage.INGESTION)
    before = totals(chain.url)
    # WHEN the window becomes 5m and processing is replayed
    chain.configure(window="5m")
    summary = run(chain, Stage.PROCESSING)
    # THEN the new setting's rollups exist beside the old ones, each with the exact totals
    assert summary.sent == 1
    after = totals(chain.url)
    assert after[("1h", "a")] == before[("1h", "a")] == {"records": 3, "count": 3, "sum": Decimal("6.5")}
    assert after[("5m", "a")] == {"records": 3, "count": 3, "sum": Decimal("6.5")}
    # AND replaying processing again with the same setting sends nothing
    assert run(chain, Stage.PROCESSING).sent == 0


@BOTH_DATABASES
@pytest.mark.parametrize("mode", contract.OVERWRITE_MODES)
def test_quarantined_versions_are_taken_in_again_after_a_fix(chain: Chain, mode: str) -> None:
    # GIVEN one raw version with a record over the size limit (quarantined) and one clean key
    chain.configure(mode)
    set_ingestion_env(chain, MAX_RECORD_BYTES="200")
    big = '{"id": "%s", "timestamp": "2024-05-01T12:30:00Z", "type": "a", "value": 5}\n' % ("x" * 300)
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}q.jsonl", Body=body("1", "2") + big.encode())
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}clean.jsonl", Body=body("100", group="c"))
    run(chain, Stage.INGESTION)
    assert totals(chain.url)[("1h", "a")]["count"] == 2
    # WHEN the limit is raised and only quarantined raw versions are replayed
    set_ingestion_env(chain, MAX_RECORD_BYTES="4096")
    summary = run(chain, Stage.INGESTION, quarantined=True)
    # THEN only that version was sent, under its own sequencer, and its contribution is replaced (not
    # added to) in both modes: the same raw version is one source
    assert (summary.seen, summary.sent) == (1, 1)
    assert totals(chain.url)[("1h", "a")] == {"records": 3, "count": 3, "sum": Decimal("8")}
    assert totals(chain.url)[("1h", "c")]["count"] == 1
    # AND the stale quarantine entry (ingestion leaves it when nothing is quarantined any more) is not
    # selected again
    assert run(chain, Stage.INGESTION, quarantined=True).sent == 0


def set_ingestion_env(chain: Chain, **values: str) -> None:
    chain.env[Stage.INGESTION].update(values)
    ingestion.runtime.cache_clear()
    with pytest.MonkeyPatch.context() as env:
        for key, value in chain.env[Stage.INGESTION].items():
            env.setenv(key, value)
        ingestion.runtime()


def test_resolve_target_reads_the_function_and_caps_by_its_reservation() -> None:
    class FakeLambda:
        def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
            return {"Environment": {"Variables": environments("arn")[Stage.INGESTION]}}

        def get_function_concurrency(self, FunctionName: str) -> dict[str, Any]:
            return {"ReservedConcurrentExecutions": 2}

    outputs = {
        "stages": {Stage.INGESTION: {"functionName": "fn"}},
        "buckets": {BucketRole.RAW: {"name": RAW}},
    }
    target = rp.resolve_target(outputs, Stage.INGESTION, FakeLambda(), "eu-west-1")
    assert (target.bucket, target.prefix, target.dest_bucket, target.reserved_concurrency) == (
        RAW,
        contract.INPUT_PREFIX,
        PROCESSED,
        2,
    )
    with pytest.raises(rp.ReplayError):
        rp.resolve_target({}, Stage.INGESTION, FakeLambda(), "eu-west-1")


def test_the_subcommand_parses_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    args = rp.parse_args(
        [
            "--stack",
            "dev",
            "--stage",
            str(Stage.PROCESSING),
            "--rate",
            "10/s",
            "--since",
            "2026-01-01",
            "--dry-run",
        ]
    )
    assert args.rate == 10.0
    assert args.since == datetime(2026, 1, 1, tzinfo=UTC)
    assert args.dry_run
    with pytest.raises(SystemExit):
        rp.parse_args(["--stack", "dev", "--stage", str(Stage.PROCESSING), "--quarantined"])
    with pytest.raises(SystemExit):
        rp.parse_args(["--stack", "dev", "--stage", str(Stage.INGESTION), "--rate", "0"])
    progress = io.StringIO()
    bar = rp.Progress(2, progress)
    bar.step(rp.Summary(sent=1))
    bar.step(rp.Summary(sent=2))
    assert "2/2 sent 2" in progress.getvalue()
    assert progress.getvalue().endswith("\n")


def test_later_stages_replay_only_the_current_version_of_a_versioned_bucket(chain: Chain) -> None:
    # GIVEN a versioned processed bucket in which a raw version was ingested twice (before and after a
    # fix): its records/ key has two versions, the older one an outdated processing
    chain.s3.put_bucket_versioning(Bucket=PROCESSED, VersioningConfiguration={"Status": "Enabled"})
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1"))
    run(chain, Stage.INGESTION)
    run(chain, Stage.INGESTION, all=True)
    [records_key] = [
        o["Key"]
        for o in chain.s3.list_objects_v2(Bucket=PROCESSED)["Contents"]
        if o["Key"].startswith(contract.RECORDS_PREFIX)
    ]
    versions = chain.s3.list_object_versions(Bucket=PROCESSED, Prefix=records_key)["Versions"]
    assert len(versions) == 2
    # WHEN processing is replayed
    planned = rp.plan(chain.s3, chain.target(Stage.PROCESSING), rp.Options(all=True))
    # THEN only the current version is sent, with its version id
    [current] = [v["VersionId"] for v in versions if v["IsLatest"]]
    assert [(p.item.key, p.item.version_id) for p in planned] == [(records_key, current)]


def test_the_runbook_sql_drops_an_old_settings_rows_only(chain: Chain) -> None:
    from pathlib import Path

    from sqlalchemy import create_engine, text

    # GIVEN rollups of 1h and, after a replay of processing, of 5m
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1", "2.5", minute=10))
    run(chain, Stage.INGESTION)
    chain.configure(window="5m")
    run(chain, Stage.PROCESSING)
    # WHEN the README's statements run for the 1h setting
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    block = readme.split("DELETE FROM pipeline_contribution_metrics", 1)[1].split("COMMIT;", 1)[0]
    statements = [
        s.strip() for s in ("DELETE FROM pipeline_contribution_metrics" + block).split(";") if s.strip()
    ]
    assert len(statements) == 6
    engine = create_engine(chain.url)
    try:
        with engine.begin() as conn:
            [old] = conn.execute(
                text("SELECT setting_key FROM pipeline_settings WHERE window_size = '1h'")
            ).one()
            for statement in statements:
                conn.execute(text(statement), {"old": old})
            left = {
                table: conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE setting_key = :old"), {"old": old}
                ).one()[0]
                for table in (
                    "pipeline_settings",
                    "pipeline_rollup_groups",
                    "pipeline_rollup_metrics",
                    "pipeline_contributions",
                    "pipeline_contribution_groups",
                )
            }
            orphans = conn.execute(
                text(
                    "SELECT COUNT(*) FROM pipeline_contribution_metrics WHERE contribution_id NOT IN"
                    " (SELECT contribution_id FROM pipeline_contributions)"
                )
            ).one()[0]
    finally:
        engine.dispose()
    # THEN nothing of the old setting is left, and the new one's totals are untouched
    assert set(left.values()) == {0}
    assert orphans == 0
    assert totals(chain.url) == {("5m", "a"): {"records": 2, "count": 2, "sum": Decimal("3.5")}}


def test_main_wires_the_stack_outputs_the_function_and_s3(
    chain: Chain, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    chain.s3.put_object(Bucket=RAW, Key=f"{contract.INPUT_PREFIX}a.jsonl", Body=body("1"))
    sent: list[dict[str, Any]] = []

    class FakeLambda:
        def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
            assert FunctionName == "dev-ingestion"
            return {"Environment": {"Variables": chain.env[Stage.INGESTION]}}

        def get_function_concurrency(self, FunctionName: str) -> dict[str, Any]:
            return {"ReservedConcurrentExecutions": 2}

        def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
            assert InvocationType == "Event"
            sent.append(json.loads(Payload))
            return {"StatusCode": 202}

    class Session:
        region_name = REGION

        def client(self, service: str, **kwargs: Any) -> Any:
            return FakeLambda() if service == "lambda" else chain.s3

    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "stages": {Stage.INGESTION: {"functionName": "dev-ingestion"}},
                "buckets": {BucketRole.RAW: {"name": RAW}},
            }
        )
    )
    common = ["--stack", "dev", "--stage", str(Stage.INGESTION), "--outputs", str(outputs)]
    common += ["--checkpoint", str(tmp_path / "cp.jsonl")]
    assert rp.main([*common, "--dry-run"], session=Session()) == 0
    assert sent == []
    assert rp.main(common, session=Session()) == 0
    printed = capsys.readouterr().out
    assert "at most 2/s, 2 at a time (reserved concurrency 2)" in printed
    assert "1 object(s) seen, 1 sent, 0 skipped as already loaded, 0 failed" in printed
    assert [r["s3"]["object"]["key"] for e in sent for r in e["Records"]] == [
        f"{contract.INPUT_PREFIX}a.jsonl"
    ]
    assert (
        rp.main(["--stack", "dev", "--stage", str(Stage.INGESTION), "--outputs", str(tmp_path / "none.json")])
        == 2
    )
