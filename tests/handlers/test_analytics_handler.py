"""The analytics handler: aggregates/ → database (SQLite and a real PostgreSQL), reports/, SNS, and the
``{"action": "migrate"}`` event."""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import boto3
import pytest
from handler_support import ANALYTICS, REGION, event_of, get_bytes, keys, put, record
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from handlers import analytics_handler as analytics
from handlers import contract, database, loading
from handlers.aggregation import aggregate_records
from handlers.documents import Origin, to_document
from handlers.errors import ConfigError, DatabaseUnavailableError, EventError, LoadRejectedError
from handlers.groups import AggregateResult
from handlers.metrics import Counts

APPEND = contract.OVERWRITE_APPEND

DIMENSIONS, METRICS = ("type", "source"), ("value",)
CLICK, VIEW = '{"source":"web","type":"click"}', '{"source":"web","type":"view"}'


def aggregates_document(*records: dict[str, Any], rel: str = "x", sequencer: str = "0065A1") -> bytes:
    groups = aggregate_records(records, 3600, DIMENSIONS, METRICS)
    result = AggregateResult(groups, Counts(len(records), len(records)), (), 0)
    source = {
        "bucket": "processed",
        "key": f"{contract.RECORDS_PREFIX}{rel}/{sequencer}{contract.RECORDS_SUFFIX}",
        "sha256": "0" * 64,
    }
    origin = Origin(rel=rel, sequencer=sequencer, version_id=f"v-{sequencer}")
    return to_document(result, source, "1h", 3600, DIMENSIONS, METRICS, origin=origin)


def put_document(
    s3: Any, *records: dict[str, Any], rel: str = "x", sequencer: str = "0065A1"
) -> dict[str, Any]:
    """Write an aggregates document where the processing stage would, and return its event record."""
    body = aggregates_document(*records, rel=rel, sequencer=sequencer)
    return put(
        s3, ANALYTICS, f"{contract.AGGREGATES_PREFIX}{rel}/{sequencer}{contract.AGGREGATES_SUFFIX}", body
    )


def report_of(s3: Any, rel: str = "x", sequencer: str = "0065A1") -> dict[str, Any]:
    return json.loads(
        get_bytes(s3, ANALYTICS, f"{contract.REPORTS_PREFIX}{rel}/{sequencer}{contract.REPORTS_SUFFIX}")
    )


def use_database(monkeypatch: pytest.MonkeyPatch, url: str, as_json: bool = False) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secret = json.dumps({"url": url, "note": "extra members are ignored"}) if as_json else url
    arn = secrets.create_secret(Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=secret)["ARN"]
    monkeypatch.setenv(contract.Env.DATABASE_SECRET_ARN, arn)


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
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str, as_json: bool
) -> None:
    # GIVEN the database URL in a secret (plain or JSON) and an aggregates object
    use_database(monkeypatch, migrated_database, as_json)
    ref = put_document(analytics_env, record(2), record(4), record(9, type="view"))
    # WHEN the handler runs
    analytics.handler(event_of(ref), None)
    # THEN the rollup holds the groups, exactly, and the ledger the object
    assert rollup(migrated_database) == [(CLICK, 2, 6, 2, 4), (VIEW, 1, 9, 9, 9)]
    [ledger] = snapshot(migrated_database)["pipeline_ledger"]
    body = get_bytes(
        analytics_env, ANALYTICS, f"{contract.AGGREGATES_PREFIX}x/0065A1{contract.AGGREGATES_SUFFIX}"
    )
    assert (ledger[:4], ledger[-1]) == (
        (
            f"{contract.AGGREGATES_PREFIX}x/0065A1{contract.AGGREGATES_SUFFIX}",
            hashlib.sha256(body).hexdigest(),
            2,
            3,
        ),
        "loaded",
    )


def test_a_repeated_delivery_changes_no_table_and_writes_the_same_report_and_result(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    use_database(monkeypatch, migrated_database)
    event = event_of(put_document(analytics_env, record(1), record(5)))
    first = analytics.handler(event, None)
    before = snapshot(migrated_database)
    report = get_bytes(
        analytics_env, ANALYTICS, f"{contract.REPORTS_PREFIX}x/0065A1{contract.REPORTS_SUFFIX}"
    )
    # WHEN the same event is delivered again
    again = analytics.handler(event, None)
    # THEN nothing in the database changed, and the report and the result are the same bytes and values
    assert snapshot(migrated_database) == before
    assert (
        get_bytes(analytics_env, ANALYTICS, f"{contract.REPORTS_PREFIX}x/0065A1{contract.REPORTS_SUFFIX}")
        == report
    )
    assert again == first
    assert json.loads(report)["database"] == "loaded"


def test_the_report_states_exact_totals_the_state_and_the_origin(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    # GIVEN decimals a float sum would not give exactly
    use_database(monkeypatch, migrated_database)
    values = ["19.99", "0.01", "5.1", "0.3", "0.2", "0.1"]
    ref = put_document(analytics_env, *(record(n, value=Decimal(v)) for n, v in enumerate(values)), rel="d/e")
    # WHEN the handler loads them
    analytics.handler(event_of(ref), None)
    # THEN the report says so with exact strings, its state and the raw version it came from
    report = report_of(analytics_env, rel="d/e")
    assert (report["format"], report["database"]) == ("data-pipeline/report@2", "loaded")
    assert report["origin"] == {"rel": "d/e", "sequencer": "0065A1", "version_id": "v-0065A1"}
    assert report["totals"]["metrics"]["value"] == {"count": 6, "sum": "25.7", "min": "0.01", "max": "19.99"}
    assert report["top_groups"][0]["dimensions"] == {"source": "web", "type": "click"}
    assert rollup(migrated_database) == [(CLICK, 6, Decimal("25.7"), Decimal("0.01"), Decimal("19.99"))]


def test_the_reports_of_loaded_documents_add_up_to_the_database_totals(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    # GIVEN three raw keys' documents, with overlapping groups
    use_database(monkeypatch, migrated_database)
    refs = [
        put_document(analytics_env, record(1, value=Decimal("0.1")), record(2, value=7), rel="a"),
        put_document(analytics_env, record(3, value=Decimal("-2.25")), rel="b"),
        put_document(analytics_env, record(4, value=Decimal("0.2"), type="view"), rel="c"),
    ]
    # WHEN they are loaded
    analytics.handler(event_of(*refs), None)
    # THEN the totals the reports state add up to the database's
    count, total = 0, Fraction(0)
    for rel in "abc":
        stats = report_of(analytics_env, rel=rel)["totals"]["metrics"]["value"]
        count, total = count + stats["count"], total + Fraction(stats["sum"])
    rows = rollup(migrated_database)
    assert (count, total) == (sum(row[1] for row in rows), sum(Fraction(row[2]) for row in rows))
    assert total == Fraction("5.05")


def test_an_older_version_arriving_after_a_newer_one_is_reported_superseded(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    use_database(monkeypatch, migrated_database)
    older = put_document(analytics_env, record(1), record(2), sequencer="0065A1")
    newer = put_document(analytics_env, record(30), sequencer="0065A2")
    # WHEN the newer version's document is delivered first
    analytics.handler(event_of(newer, older), None)
    # THEN the older one changed nothing and says why
    assert [report_of(analytics_env, sequencer=s)["database"] for s in ("0065A2", "0065A1")] == [
        "loaded",
        "superseded",
    ]
    assert rollup(migrated_database) == [(CLICK, 1, 30, 30, 30)]


def test_in_append_mode_every_version_adds(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    use_database(monkeypatch, migrated_database)
    monkeypatch.setenv(contract.Env.OVERWRITE_MODE, APPEND)
    older = put_document(analytics_env, record(1), record(2), sequencer="0065A1")
    newer = put_document(analytics_env, record(30), sequencer="0065A2")
    analytics.handler(event_of(newer, older), None)
    assert rollup(migrated_database) == [(CLICK, 3, 33, 1, 30)]


def test_database_outage_raises_and_writes_no_report(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a secret naming a server that is not there
    use_database(monkeypatch, "postgresql+psycopg2://nobody@127.0.0.1:9/none")
    event = event_of(put_document(analytics_env, record(1)))
    # WHEN the handler runs THEN it raises so that Lambda retries, and writes nothing
    with pytest.raises(DatabaseUnavailableError, match="cannot reach the database"):
        analytics.handler(event, None)
    assert keys(analytics_env, ANALYTICS) == [
        f"{contract.AGGREGATES_PREFIX}x/0065A1{contract.AGGREGATES_SUFFIX}"
    ]


def test_failure_inside_the_transaction_loads_nothing(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    use_database(monkeypatch, migrated_database)
    event = event_of(put_document(analytics_env, record(1)))
    real = loading._Load._replace

    def failing(self: Any, *args: Any) -> None:  # after the ledger claim and the setting
        raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(loading._Load, "_replace", failing)
    # WHEN the connection drops mid-load THEN the error is transient and every table is still empty
    with pytest.raises(DatabaseUnavailableError, match="nothing loaded"):
        analytics.handler(event, None)
    assert [rows for name, rows in snapshot(migrated_database).items() if rows] == []
    # AND a retry once the database is back loads the object exactly once
    monkeypatch.setattr(loading._Load, "_replace", real)
    analytics.handler(event, None)
    analytics.handler(event, None)
    assert rollup(migrated_database) == [(CLICK, 1, 1, 1, 1)]


def test_without_a_database_the_report_is_still_written(analytics_env: Any) -> None:
    ref = put_document(
        analytics_env,
        record(1),
        record(2),
        record(3, type="view"),
        record(4, type="buy"),
        record(5, type="x"),
        rel="sub dir/ünï",
    )
    analytics.handler(event_of(ref), None)
    report = report_of(analytics_env, rel="sub dir/ünï")
    assert report["database"] == "not_configured"
    assert report["totals"]["records"] == 5
    assert report["totals"]["metrics"]["value"] == {"count": 5, "sum": "15", "min": "1", "max": "5"}
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
    monkeypatch.setenv(contract.Env.SUMMARY_TOPIC_ARN, topic)
    analytics.handler(event_of(put_document(analytics_env, record(1), rel="s")), None)
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
    ref = put(
        analytics_env,
        ANALYTICS,
        f"{contract.AGGREGATES_PREFIX}junk/0065A1{contract.AGGREGATES_SUFFIX}",
        b'{"hello": 1}',
    )
    result = analytics.handler(event_of(ref), None)
    report = report_of(analytics_env, rel="junk")
    assert (report["database"], report["reason"]) == ("rejected", "not_an_aggregates_document")
    assert result["counts"]["records_quarantined"] == 1


def test_a_key_the_processing_stage_never_writes_is_reported_not_raised(analytics_env: Any) -> None:
    # GIVEN an aggregates document under a key without a version (not aggregates/<rel>/<sequencer>.json)
    ref = put(
        analytics_env,
        ANALYTICS,
        f"{contract.AGGREGATES_PREFIX}by-hand{contract.AGGREGATES_SUFFIX}",
        aggregates_document(record(1)),
    )
    # WHEN the handler runs THEN the object is reported rejected next to where its key points
    result = analytics.handler(event_of(ref), None)
    report = json.loads(
        get_bytes(analytics_env, ANALYTICS, f"{contract.REPORTS_PREFIX}by-hand{contract.REPORTS_SUFFIX}")
    )
    assert (report["database"], report["reason"]) == ("rejected", "not_a_versioned_key")
    assert result["counts"]["records_quarantined"] == 1


def test_secret_without_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match='without a "url"'):
        analytics.database_url('{"username": "x"}')


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
        ({"window": "2h"}, "'2h' is not one of"),
        ({"counts": "all"}, "Expected `object`, got `str` - at `$.counts`"),
        ({"groups__0__window_start": "yesterday"}, "at `$.groups[0].window_start`"),
        (
            {"groups__0__window_start": "2024-02-30T00:00:00Z"},
            "$.groups[0].window_start: day is out of range",
        ),
        ({"groups__0__records": "1"}, "Expected `int`, got `str` - at `$.groups[0].records`"),
        ({"groups__0__metrics__value__sum": None}, "got `null` - at `$.groups[0].metrics[...].sum`"),
        ({"groups__0__metrics__value__sum": 2.0}, "Expected `str`, got `float`"),
        ({"rejected_total": -1}, "Expected `int` >= 0 - at `$.rejected_total`"),
        ({"origin": _MISSING}, "missing required field `origin`"),
        ({"origin__sequencer": "not hex"}, "at `$.origin.sequencer`"),
    ],
    ids=[
        "no-window",
        "unknown-window",
        "counts-not-object",
        "bad-window-start",
        "impossible-date",
        "records-as-string",
        "null-sum",
        "float-sum",
        "negative-rejected",
        "no-origin",
        "bad-sequencer",
    ],
)
def test_a_malformed_aggregates_document_is_reported_not_raised(
    analytics_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    migrated_database: str,
    changes: dict[str, Any],
    detail: str,
) -> None:
    # GIVEN a database and an aggregates document with the right format but one bad field
    use_database(monkeypatch, migrated_database)
    ref = put(
        analytics_env,
        ANALYTICS,
        f"{contract.AGGREGATES_PREFIX}bad/0065A1{contract.AGGREGATES_SUFFIX}",
        _document_with(**changes),
    )
    # WHEN the handler runs
    result = analytics.handler(event_of(ref), None)
    # THEN it is reported as rejected with the problem, counted, and nothing is loaded
    report = report_of(analytics_env, rel="bad")
    assert (report["database"], report["reason"]) == ("rejected", "not_an_aggregates_document")
    assert detail in report["detail"]
    assert result["counts"]["records_quarantined"] == 1
    assert [rows for rows in snapshot(migrated_database).values() if rows] == []


def test_an_object_the_database_rejects_is_reported_not_raised(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    # GIVEN a load that refuses the document (nothing loaded) rather than failing
    use_database(monkeypatch, migrated_database)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise LoadRejectedError("invalid_origin", "sequencer 'xyz' is not an S3 sequencer")

    monkeypatch.setattr(database, "load", refuse)
    # WHEN the handler runs
    result = analytics.handler(event_of(put_document(analytics_env, record(1))), None)
    # THEN its report says why it was not loaded, and the event succeeds instead of failing every retry
    report = report_of(analytics_env)
    assert (report["database"], report["reason"]) == ("rejected", "invalid_origin")
    assert result["counts"]["records_quarantined"] == 1


def test_the_migrate_action_upgrades_the_configured_database(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, empty_database: str
) -> None:
    # GIVEN a database without the schema
    use_database(monkeypatch, empty_database)
    # WHEN pulumi up's invocation arrives, twice (a retry)
    results = [analytics.handler(contract.MIGRATE_EVENT, None) for _ in range(2)]
    # THEN it reports the head revision, and objects load afterwards
    assert results == [{"revision": database.HEAD}] * 2
    analytics.handler(event_of(put_document(analytics_env, record(3))), None)
    assert rollup(empty_database) == [(CLICK, 1, 3, 3, 3)]


def test_the_migrate_action_without_a_database_is_a_config_error(analytics_env: Any) -> None:
    with pytest.raises(ConfigError, match="no database is configured"):
        analytics.handler(contract.MIGRATE_EVENT, None)


def test_an_unknown_action_is_an_event_error(analytics_env: Any) -> None:
    with pytest.raises(EventError, match="unknown action 'vacuum'"):
        analytics.handler({contract.ACTION_FIELD: "vacuum"}, None)


def test_a_database_without_the_current_schema_fails_the_event_naming_how_to_upgrade(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, empty_database: str
) -> None:
    use_database(monkeypatch, empty_database)
    event = event_of(put_document(analytics_env, record(1)))
    with pytest.raises(ConfigError, match=r"pulumi up.*python -m devtools migrate"):
        analytics.handler(event, None)
    assert keys(analytics_env, ANALYTICS) == [
        f"{contract.AGGREGATES_PREFIX}x/0065A1{contract.AGGREGATES_SUFFIX}"
    ]


def test_an_rds_managed_secret_with_the_endpoint_gives_a_tls_url() -> None:
    # the secret RDS manages for database.create holds only the credentials; the stack names the endpoint
    secret = json.dumps({"username": "pipeline_admin", "password": "p@ss/w:rd"})
    url = analytics.database_url(secret, "db.abc.eu-west-1.rds.amazonaws.com:5432/pipeline")
    assert url == (
        "postgresql+psycopg2://pipeline_admin:p%40ss%2Fw%3Ard@db.abc.eu-west-1.rds.amazonaws.com:5432/pipeline"
        "?sslmode=require"
    )


def test_credentials_without_an_endpoint_are_still_a_config_error() -> None:
    with pytest.raises(ConfigError, match='without a "url"'):
        analytics.database_url(json.dumps({"username": "u", "password": "p"}))
