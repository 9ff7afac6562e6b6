"""The analytics handler: aggregates/ → database (SQLite and a real PostgreSQL), reports/, SNS."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from handler_support import ANALYTICS, REGION, event_of, get_bytes, keys, must_have, put, record
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from handlers import analytics, database
from handlers.aggregate import AggregateResult, aggregate_records, to_document
from handlers.errors import ConfigError, DatabaseUnavailableError, LoadRejectedError
from handlers.metrics import Counts

DIMENSIONS, METRICS = ("type", "source"), ("value",)


def aggregates_document(*records: dict[str, Any], key: str = "records/x.jsonl.gz") -> bytes:
    groups = aggregate_records(records, 3600, DIMENSIONS, METRICS)
    result = AggregateResult(groups, Counts(len(records), len(records)), (), 0)
    return to_document(result, {"bucket": "processed", "key": key}, "1h", 3600, DIMENSIONS, METRICS)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh database on the throwaway server (TEST_DATABASE_URL), dropped afterwards."""
    import os

    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        must_have("TEST_DATABASE_URL (run under scripts/with-throwaway-postgres)")
    name = f"handlers_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    url = (
        f"sqlite:///{tmp_path}/analytics.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = create_engine(url)
    database.metadata.drop_all(engine)
    engine.dispose()
    yield url
    if analytics.runtime.cache_info().currsize and analytics.runtime()._engine is not None:
        analytics.runtime()._engine.dispose()


def use_database(s3: Any, monkeypatch: pytest.MonkeyPatch, url: str, as_json: bool = False) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secret = json.dumps({"url": url, "note": "extra members are ignored"}) if as_json else url
    arn = secrets.create_secret(Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=secret)["ARN"]
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = {
            table.name: [
                tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in database.metadata.sorted_tables
        }
    engine.dispose()
    return tables


def rollup(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                database.rollup_metrics.c.dimensions,
                database.rollup_metrics.c["count", "sum", "min", "max"],
            ).order_by(database.rollup_metrics.c.dimensions)
        )
        result = [tuple(row) for row in rows]
    engine.dispose()
    return result


@pytest.mark.parametrize("as_json", [False, True])
def test_aggregates_are_loaded_from_the_secret_url(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, db_url: str, as_json: bool
) -> None:
    # GIVEN the database URL in a secret (plain or JSON) and an aggregates object
    use_database(analytics_env, monkeypatch, db_url, as_json)
    body = aggregates_document(record(2), record(4), record(9, type="view"))
    ref = put(analytics_env, ANALYTICS, "aggregates/x.json", body)
    # WHEN the handler runs
    analytics.handler(event_of(ref), None)
    # THEN the rollup holds the groups and the ledger the object
    assert rollup(db_url) == [
        ('{"source":"web","type":"click"}', 2, 6.0, 2.0, 4.0),
        ('{"source":"web","type":"view"}', 1, 9.0, 9.0, 9.0),
    ]
    [ledger] = snapshot(db_url)["pipeline_ledger"]
    assert ledger[:4] == ("aggregates/x.json", hashlib.sha256(body).hexdigest(), 2, 3)


def test_duplicate_delivery_leaves_every_table_unchanged(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    use_database(analytics_env, monkeypatch, db_url)
    event = event_of(
        put(analytics_env, ANALYTICS, "aggregates/d.json", aggregates_document(record(1), record(5)))
    )
    analytics.handler(event, None)
    before = snapshot(db_url)
    report = get_bytes(analytics_env, ANALYTICS, "reports/d.json")
    # WHEN the same event is delivered again
    result = analytics.handler(event, None)
    # THEN nothing in the database changed and the report is rewritten identically
    assert snapshot(db_url) == before
    assert get_bytes(analytics_env, ANALYTICS, "reports/d.json") == report
    assert result["objects"][0]["duplicate"] is True


def test_later_objects_add_counts_and_sums_and_keep_min_and_max(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    use_database(analytics_env, monkeypatch, db_url)
    first = put(analytics_env, ANALYTICS, "aggregates/a.json", aggregates_document(record(3), record(5)))
    second = put(analytics_env, ANALYTICS, "aggregates/b.json", aggregates_document(record(-1), record(4)))
    analytics.handler(event_of(first, second), None)
    assert rollup(db_url) == [('{"source":"web","type":"click"}', 4, 11.0, -1.0, 5.0)]
    assert [row[0] for row in snapshot(db_url)["pipeline_ledger"]] == [
        "aggregates/a.json",
        "aggregates/b.json",
    ]


def test_portable_fallback_merges_like_on_conflict(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # GIVEN a dialect without a known ON CONFLICT form (SQLite renamed, so the portable branch runs)
    url = f"sqlite:///{tmp_path}/portable.db"
    engine = database.connect(url)
    monkeypatch.setattr(engine.dialect, "name", "portable")
    groups = aggregate_records([record(3), record(5)], 3600, DIMENSIONS, METRICS)
    more = aggregate_records([record(-2), record(9, type="view")], 3600, DIMENSIONS, METRICS)
    # WHEN two objects load and the first is delivered twice
    assert database.load(engine, "aggregates/1.json", "e1", "1h", DIMENSIONS, groups) is True
    assert database.load(engine, "aggregates/2.json", "e2", "1h", DIMENSIONS, more) is True
    assert database.load(engine, "aggregates/1.json", "e1", "1h", DIMENSIONS, groups) is False
    engine.dispose()
    # THEN the merge matches the ON CONFLICT one and the duplicate changed nothing
    assert rollup(url) == [
        ('{"source":"web","type":"click"}', 3, 6.0, -2.0, 5.0),
        ('{"source":"web","type":"view"}', 1, 9.0, 9.0, 9.0),
    ]


def test_database_outage_raises_and_writes_no_report(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # GIVEN a secret naming a server that is not there
    use_database(analytics_env, monkeypatch, "postgresql+psycopg2://nobody@127.0.0.1:9/none")
    event = event_of(put(analytics_env, ANALYTICS, "aggregates/o.json", aggregates_document(record(1))))
    # WHEN the handler runs THEN it raises so that Lambda retries, and writes nothing
    with pytest.raises(DatabaseUnavailableError, match="cannot reach the database"):
        analytics.handler(event, None)
    assert keys(analytics_env, ANALYTICS) == ["aggregates/o.json"]


def test_failure_inside_the_transaction_loads_nothing(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    use_database(analytics_env, monkeypatch, db_url)
    event = event_of(put(analytics_env, ANALYTICS, "aggregates/f.json", aggregates_document(record(1))))
    real_upsert = database._upsert

    def failing_upsert(conn: Any, table: Any, *args: Any, **kwargs: Any) -> None:
        if table is database.rollup_metrics:  # after the ledger claim and the group upsert
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        real_upsert(conn, table, *args, **kwargs)

    monkeypatch.setattr(database, "_upsert", failing_upsert)
    # WHEN the connection drops mid-load THEN the error is transient and every table is still empty
    with pytest.raises(DatabaseUnavailableError, match="nothing loaded"):
        analytics.handler(event, None)
    assert snapshot(db_url) == {table.name: [] for table in database.metadata.sorted_tables}
    # AND a retry once the database is back loads the object exactly once
    monkeypatch.setattr(database, "_upsert", real_upsert)
    analytics.handler(event, None)
    assert rollup(db_url) == [('{"source":"web","type":"click"}', 1, 1.0, 1.0, 1.0)]


def test_without_a_database_the_report_is_still_written(analytics_env: Any) -> None:
    body = aggregates_document(
        record(1), record(2), record(3, type="view"), record(4, type="buy"), record(5, type="x")
    )
    analytics.handler(event_of(put(analytics_env, ANALYTICS, "aggregates/sub dir/ünï.json", body)), None)
    report = json.loads(get_bytes(analytics_env, ANALYTICS, "reports/sub dir/ünï.json"))
    assert report["database"] == "not_configured"
    assert report["totals"]["records"] == 5
    assert report["totals"]["metrics"]["value"] == {"count": 5, "sum": 15, "min": 1, "max": 5}
    # top groups: by records, then window and dimensions; REPORT_TOP_GROUPS is 3 here
    assert [(g["dimensions"]["type"], g["records"]) for g in report["top_groups"]] == [
        ("click", 2),
        ("buy", 1),
        ("view", 1),
    ]


def test_summary_is_published_to_the_topic(analytics_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a topic with a queue subscribed to read what was published
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="summaries")["TopicArn"]
    queue = sqs.create_queue(QueueName="summaries")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    monkeypatch.setenv("SUMMARY_TOPIC_ARN", topic)
    analytics.handler(
        event_of(put(analytics_env, ANALYTICS, "aggregates/s.json", aggregates_document(record(1)))), None
    )
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"]) == {
        "database": "not_configured",
        "duplicate_delivery": False,
        "groups": 1,
        "records": 1,
        "rejected_total": 0,
        "report": "s",
    }


def test_object_that_is_not_an_aggregates_document_is_reported_not_raised(analytics_env: Any) -> None:
    result = analytics.handler(
        event_of(put(analytics_env, ANALYTICS, "aggregates/junk.json", b'{"hello": 1}')), None
    )
    report = json.loads(get_bytes(analytics_env, ANALYTICS, "reports/junk.json"))
    assert (report["database"], report["reason"]) == ("rejected", "not_an_aggregates_document")
    assert result["counts"]["records_quarantined"] == 1


def test_secret_without_a_url_is_a_config_error() -> None:
    from handlers.errors import ConfigError

    with pytest.raises(ConfigError, match='without a "url"'):
        analytics.database_url('{"username": "x"}')


def test_concurrent_deliveries_load_once_and_concurrent_objects_all_add(postgres_url: str) -> None:
    # GIVEN a real PostgreSQL and eight workers
    from concurrent.futures import ThreadPoolExecutor

    engine = database.connect(postgres_url)
    database.metadata.drop_all(engine)
    database.metadata.create_all(engine)
    groups = aggregate_records([record(2), record(9, type="view")], 3600, DIMENSIONS, METRICS)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            # WHEN the same object is delivered eight times at once
            same = list(
                pool.map(
                    lambda _: database.load(engine, "aggregates/c.json", "e", "1h", DIMENSIONS, groups),
                    range(8),
                )
            )
            # AND eight different objects with the same groups load at once
            different = list(
                pool.map(
                    lambda n: database.load(engine, f"aggregates/{n}.json", "e", "1h", DIMENSIONS, groups),
                    range(8),
                )
            )
    finally:
        engine.dispose()
    # THEN exactly one of the duplicates loaded, and every distinct object added its counts once
    assert (same.count(True), different) == (1, [True] * 8)
    assert rollup(postgres_url) == [
        ('{"source":"web","type":"click"}', 9, 18.0, 2.0, 2.0),
        ('{"source":"web","type":"view"}', 9, 81.0, 9.0, 9.0),
    ]


def test_schema_created_concurrently_by_another_cold_start_is_tolerated(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN another container creates the tables between this one's check and its CREATE TABLE
    real_create_all = database.metadata.create_all
    raced = []

    def create_all_losing_the_race(bind: Any, checkfirst: bool = True) -> None:
        if not raced:
            raced.append(True)
            real_create_all(bind, checkfirst=True)  # the other container wins
            real_create_all(bind, checkfirst=False)  # this one's CREATE then fails: "already exists"
        real_create_all(bind, checkfirst=checkfirst)

    monkeypatch.setattr(database.metadata, "create_all", create_all_losing_the_race)
    # WHEN this container connects
    engine = database.connect(db_url)
    engine.dispose()
    # THEN it carried on with the tables in place instead of failing the event
    assert raced == [True]
    assert set(snapshot(db_url)) >= {"pipeline_rollup_groups", "pipeline_rollup_metrics", "pipeline_ledger"}


def test_a_group_with_long_dimension_values_is_loaded(db_url: str) -> None:
    # GIVEN a group whose dimensions are long once written as JSON: the default schema allows a
    # 256-character type and source, and each control character is escaped as six characters
    long_type, long_source = "\x01" * 256, "\x02" * 256
    groups = aggregate_records([record(3, type=long_type, source=long_source)], 3600, DIMENSIONS, METRICS)
    engine = database.connect(db_url)
    try:
        # WHEN it is loaded
        loaded = database.load(engine, "aggregates/long.json", "e", "1h", DIMENSIONS, groups)
    finally:
        engine.dispose()
    # THEN it is in the rollup whole
    [(dimensions, *stats)] = rollup(db_url)
    assert (loaded, json.loads(dimensions), stats) == (
        True,
        {"source": long_source, "type": long_type},
        [1, 3.0, 3.0, 3.0],
    )
    assert len(dimensions) > 3000  # past the 2 048 characters the key column once held


def _document_with(**changes: Any) -> bytes:
    document = json.loads(aggregates_document(record(2)))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _MISSING:
            del target[last]
        else:
            target[last] = value
    return json.dumps(document).encode()


_MISSING = object()


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"window": _MISSING}, "missing required field `window`"),
        ({"window": "2h"}, "window '2h' is not one of"),
        ({"counts": "all"}, "Expected `object`, got `str` - at `$.counts`"),
        ({"groups__0__window_start": "yesterday"}, "at `$.groups[0].window_start`"),
        (
            {"groups__0__window_start": "2024-02-30T00:00:00Z"},
            "$.groups[0].window_start: day is out of range",
        ),
        ({"groups__0__records": "1"}, "Expected `int`, got `str` - at `$.groups[0].records`"),
        ({"groups__0__metrics__value__sum": None}, "got `null` - at `$.groups[0].metrics[...].sum`"),
        ({"rejected_total": -1}, "Expected `int` >= 0 - at `$.rejected_total`"),
    ],
    ids=[
        "no-window",
        "unknown-window",
        "counts-not-object",
        "bad-window-start",
        "impossible-date",
        "records-as-string",
        "null-sum",
        "negative-rejected",
    ],
)
def test_a_malformed_aggregates_document_is_reported_not_raised(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, changes: dict[str, Any], detail: str
) -> None:
    # GIVEN a database and an aggregates document with the right format but one bad field
    url = f"sqlite:///{tmp_path}/analytics.db"
    use_database(analytics_env, monkeypatch, url)
    ref = put(analytics_env, ANALYTICS, "aggregates/bad.json", _document_with(**changes))
    # WHEN the handler runs
    result = analytics.handler(event_of(ref), None)
    # THEN it is reported as rejected with the problem, counted, and nothing is loaded
    report = json.loads(get_bytes(analytics_env, ANALYTICS, "reports/bad.json"))
    assert (report["database"], report["reason"]) == ("rejected", "not_an_aggregates_document")
    assert detail in report["detail"]
    assert result["counts"]["records_quarantined"] == 1
    assert not [row for rows in _tables_if_any(url).values() for row in rows]


def _tables_if_any(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(conn.dialect.get_table_names(conn))
    finally:
        engine.dispose()
    return snapshot(url) if names else {}


def test_sums_that_would_pass_float_range_across_objects_are_rejected_and_load_nothing(db_url: str) -> None:
    # GIVEN a loaded object whose group sum is near the top of float range
    groups = aggregate_records([record(1e308)], 3600, DIMENSIONS, METRICS)
    engine = database.connect(db_url)
    try:
        assert database.load(engine, "aggregates/a.json", "a", "1h", DIMENSIONS, groups)
        before = snapshot(db_url)
        # WHEN another object adds to the same group's sum past float range
        with pytest.raises(LoadRejectedError) as raised:
            database.load(engine, "aggregates/b.json", "b", "1h", DIMENSIONS, groups)
    finally:
        engine.dispose()
    # THEN it is rejected with a reason and the whole load is rolled back, ledger row included
    assert raised.value.reason == "sum_out_of_range"
    assert snapshot(db_url) == before


def test_an_object_the_database_rejects_is_reported_not_raised(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # GIVEN a database already holding a sum of 1e308 for a group
    url = f"sqlite:///{tmp_path}/analytics.db"
    use_database(analytics_env, monkeypatch, url)
    analytics.handler(
        event_of(put(analytics_env, ANALYTICS, "aggregates/a.json", aggregates_document(record(1e308)))), None
    )
    # WHEN an object adding another 1e308 to it arrives
    body = aggregates_document(record(1e308), key="records/b.jsonl.gz")
    result = analytics.handler(event_of(put(analytics_env, ANALYTICS, "aggregates/b.json", body)), None)
    # THEN its report says why it was not loaded, and the event succeeds instead of failing every retry
    report = json.loads(get_bytes(analytics_env, ANALYTICS, "reports/b.json"))
    assert (report["database"], report["reason"]) == ("rejected", "sum_out_of_range")
    assert result["counts"]["records_quarantined"] == 1
    assert rollup(url) == [('{"source":"web","type":"click"}', 1, 1e308, 1e308, 1e308)]


# What handlers/database.py created before dimensions_key and content_sha256 (2026-11-26).
OLD_SCHEMA = """
CREATE TABLE pipeline_rollup_groups (
    window_size VARCHAR(8) NOT NULL, window_start TIMESTAMP WITH TIME ZONE NOT NULL,
    dimensions VARCHAR(2048) NOT NULL, records BIGINT NOT NULL,
    PRIMARY KEY (window_size, window_start, dimensions));
CREATE TABLE pipeline_rollup_metrics (
    window_size VARCHAR(8) NOT NULL, window_start TIMESTAMP WITH TIME ZONE NOT NULL,
    dimensions VARCHAR(2048) NOT NULL, metric VARCHAR(256) NOT NULL, count BIGINT NOT NULL,
    sum DOUBLE PRECISION NOT NULL, min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (window_size, window_start, dimensions, metric));
CREATE TABLE pipeline_ledger (
    object_key VARCHAR(1024) NOT NULL, etag VARCHAR(128) NOT NULL, groups BIGINT NOT NULL,
    records BIGINT NOT NULL, loaded_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (object_key, etag));
INSERT INTO pipeline_rollup_groups VALUES
    ('1h', '2024-05-01T12:00:00Z', '{"source":"web","type":"click"}', 2);
INSERT INTO pipeline_rollup_metrics VALUES
    ('1h', '2024-05-01T12:00:00Z', '{"source":"web","type":"click"}', 'value', 2, 6, 2, 4);
INSERT INTO pipeline_ledger (object_key, etag, groups, records) VALUES ('aggregates/old.json', 'abc', 1, 2);
"""


def test_tables_of_an_older_version_stop_the_load_naming_the_migration(postgres_url: str) -> None:
    # GIVEN the analytics tables as an older version created them
    engine = create_engine(postgres_url)
    database.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(OLD_SCHEMA)
    engine.dispose()
    # WHEN the function connects
    with pytest.raises(ConfigError) as raised:
        database.connect(postgres_url)
    # THEN it refuses, naming the missing columns and the migration
    assert "pipeline_rollup_groups.dimensions_key" in str(raised.value)
    assert "pipeline_ledger.content_sha256" in str(raised.value)
    assert database.MIGRATION in str(raised.value)


def test_the_migration_brings_old_tables_to_the_current_schema_keeping_their_rows(postgres_url: str) -> None:
    from pathlib import Path

    # GIVEN old tables holding a group, migrated with the shipped script, twice
    engine = create_engine(postgres_url)
    database.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(OLD_SCHEMA)
    migration = (Path(__file__).resolve().parents[2] / database.MIGRATION).read_text()
    for _ in range(2):  # an operator unsure whether it ran may run it again
        with engine.connect() as conn:
            conn.exec_driver_sql(migration)  # the script holds its own BEGIN/COMMIT
    engine.dispose()
    # WHEN the current code loads a new object with the same group
    engine = database.connect(postgres_url)
    groups = aggregate_records([record(5, timestamp="2024-05-01T12:30:00Z")], 3600, DIMENSIONS, METRICS)
    try:
        assert database.load(engine, "aggregates/new.json", "n", "1h", DIMENSIONS, groups)
    finally:
        engine.dispose()
    # THEN it adds to the migrated row (the digest SQL computed is the one Python computes)
    assert rollup(postgres_url) == [('{"source":"web","type":"click"}', 3, 11.0, 2.0, 5.0)]
    assert [row[:2] for row in snapshot(postgres_url)["pipeline_ledger"]] == [
        ("aggregates/new.json", "n"),
        ("aggregates/old.json", "abc"),
    ]


def test_new_content_under_a_key_already_loaded_is_loaded_too(db_url: str) -> None:
    # GIVEN an object loaded once
    groups = aggregate_records([record(2)], 3600, DIMENSIONS, METRICS)
    engine = database.connect(db_url)
    try:
        assert database.load(engine, "aggregates/day.json", "sha-v1", "1h", DIMENSIONS, groups)
        # WHEN the same key arrives with other bytes (its raw object was overwritten)
        loaded = database.load(engine, "aggregates/day.json", "sha-v2", "1h", DIMENSIONS, groups)
    finally:
        engine.dispose()
    # THEN it is a new load, not a duplicate: the ledger tells contents apart, not keys
    assert loaded is True
    assert rollup(db_url) == [('{"source":"web","type":"click"}', 2, 4.0, 2.0, 2.0)]
