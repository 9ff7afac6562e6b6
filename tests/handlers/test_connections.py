"""Signing in per connection: an IAM token generated for each new connection (the RDS client stubbed), and a
password that RDS rotated read again once, then tried once more (the refusal simulated at the DBAPI)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import psycopg2
import pytest
from handler_support import REGION, event_of
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from handlers import analytics_handler as analytics
from handlers import connections, database
from handlers.contract import Env
from handlers.errors import ConfigError, DatabaseUnavailableError

REFUSED = 'connection to server failed: FATAL:  password authentication failed for user "pipeline_admin"'


class StubRds:
    """The one RDS call the stage makes, recorded; each token is new."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generate_db_auth_token(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        host, port, user = kwargs["DBHostname"], kwargs["Port"], kwargs["DBUsername"]
        return f"{host}:{port}/?Action=connect&DBUser={user}&n={len(self.calls)}"


class Refusing:
    """A DBAPI ``connect`` refusing the passwords in `refused` as PostgreSQL does; it records every one."""

    def __init__(self, refused: set[str], error: str = REFUSED) -> None:
        self.refused, self.error = refused, error
        self.passwords: list[str] = []

    def __call__(self, *_args: Any, **kwargs: Any) -> Any:
        self.passwords.append(kwargs.get("password", ""))
        if kwargs.get("password") in self.refused:
            raise psycopg2.OperationalError(self.error)
        return _FakeConnection()


class _FakeConnection:
    def close(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def engine_with(connect: Any) -> Any:
    engine = create_engine("postgresql+psycopg2://pipeline_admin@db.example:5432/pipeline", poolclass=None)
    engine.dialect.connect = connect  # the DBAPI call do_connect's listener makes
    return engine


def raw(engine: Any) -> Any:
    """A new DBAPI connection of `engine`, made through its pool's creator (the do_connect hook included)."""
    return engine.pool._creator()


def test_every_new_connection_gets_a_token_of_its_own() -> None:
    rds, connect = StubRds(), Refusing(set())
    engine = engine_with(connect)
    connections.sign_in_per_connection(engine, connections.IamToken(rds, "db.example", 5432, "pipeline_app"))
    raw(engine), raw(engine)
    assert rds.calls == [{"DBHostname": "db.example", "Port": 5432, "DBUsername": "pipeline_app"}] * 2
    assert len(set(connect.passwords)) == 2
    assert all("DBUser=pipeline_app" in p for p in connect.passwords)


def test_a_rotated_password_is_read_again_once_and_tried_once_more() -> None:
    reads: list[bool] = []

    def read(refresh: bool) -> str:
        reads.append(refresh)
        return f"postgresql+psycopg2://pipeline_admin:{'new' if refresh else 'old'}@db.example:5432/pipeline"

    connect = Refusing({"old"})
    engine = engine_with(connect)
    connections.sign_in_per_connection(engine, connections.SecretPassword(read))
    raw(engine)
    assert (reads, connect.passwords) == ([False, True], ["old", "new"])
    raw(engine)  # the next connection signs in with the password read last
    assert (reads, connect.passwords[2:]) == ([False, True], ["new"])


def test_a_password_refused_again_after_the_new_read_fails_without_a_third_try() -> None:
    reads: list[bool] = []

    def read(refresh: bool) -> str:
        reads.append(refresh)
        return "postgresql+psycopg2://pipeline_admin:old@db.example:5432/pipeline"

    engine = engine_with(Refusing({"old"}))
    connections.sign_in_per_connection(engine, connections.SecretPassword(read))
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        raw(engine)
    assert reads == [False, True]


def test_a_failure_that_is_not_about_credentials_reads_nothing_again() -> None:
    reads: list[bool] = []

    def read(refresh: bool) -> str:
        reads.append(refresh)
        return "postgresql+psycopg2://pipeline_admin:old@db.example:5432/pipeline"

    engine = engine_with(Refusing({"old"}, error="could not connect to server: Connection timed out"))
    connections.sign_in_per_connection(engine, connections.SecretPassword(read))
    with pytest.raises(psycopg2.OperationalError, match="timed out"):
        raw(engine)
    assert reads == [False]


def test_an_iam_url_requires_tls_and_carries_the_token_quoted() -> None:
    token = "db.example:5432/?Action=connect&DBUser=pipeline_app&X-Amz-Signature=a/b+c"
    url = make_url(connections.iam_url("db.example:5432/pipeline", "pipeline_app", token))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "pipeline_app",
        token,
        "db.example",
        5432,
        "pipeline",
    )
    assert url.query == {"sslmode": "require"}


@pytest.mark.parametrize("endpoint", ["db.example/pipeline", "db.example:5432", ":5432/pipeline", "db:x/p"])
def test_an_endpoint_that_is_not_host_port_dbname_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="host:port/dbname"):
        connections.split_endpoint(endpoint)


def test_the_app_user_needs_the_endpoint() -> None:
    with pytest.raises(ConfigError, match="DATABASE_APP_USER needs DATABASE_ENDPOINT"):
        connections.open_engine(lambda _refresh: "unused", app_user="pipeline_app", rds=StubRds)


def secret_with_password(migrated_database: str, password: str) -> tuple[Any, str, Any]:
    """The database emptied and migrated, and a moto secret holding its URL with `password`: the Secrets
    Manager client, the secret's ARN and the URL."""
    engine = create_engine(migrated_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    database.migrate(migrated_database)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    url = make_url(migrated_database).set(password=password)
    arn = secrets.create_secret(
        Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=url.render_as_string(hide_password=False)
    )["ARN"]
    return secrets, arn, url


def rotate(secrets: Any, arn: str, url: Any, password: str) -> None:
    secrets.put_secret_value(
        SecretId=arn, SecretString=url.set(password=password).render_as_string(hide_password=False)
    )


def accepting_only(password: str, seen: list[str], real: Any, on_refusal: Any = None) -> Any:
    """A DBAPI connect that refuses every password but `password`, as PostgreSQL does, recording each; the
    test server trusts local connections, so the accepted one connects without it."""

    def connect(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["password"])
        if kwargs["password"] != password:
            if on_refusal is not None:
                on_refusal()
            raise psycopg2.OperationalError(REFUSED)
        return real(*args, **{**kwargs, "password": None})

    return connect


@pytest.mark.postgres
def test_the_stage_keeps_loading_after_the_master_password_rotates(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    # GIVEN a warm container whose engine signed in with the secret's password
    secrets, arn, old = secret_with_password(postgres_database, "before-rotation")
    monkeypatch.setenv(Env.DATABASE_SECRET_ARN, arn)
    engine = analytics.runtime().engine()
    # WHEN RDS rotates the password, the pooled connections are gone, and the database refuses the old one
    rotate(secrets, arn, old, "after-rotation")
    engine.dispose()
    seen: list[str] = []
    monkeypatch.setattr(
        engine.dialect, "connect", accepting_only("after-rotation", seen, engine.dialect.connect)
    )
    # THEN the next load reads the secret again, signs in with the new password and loads
    from test_analytics_handler import CLICK, put_document, record, rollup

    analytics.handler(event_of(put_document(analytics_env, record(3))), None)
    assert seen == ["before-rotation", "after-rotation"]
    assert rollup(postgres_database) == [(CLICK, 1, 3, 3, 3)]


def cold_container(
    monkeypatch: pytest.MonkeyPatch, migrated_database: str, *, rotation_ends_at_refusal: bool
) -> tuple[Any, str, Any, list[str]]:
    """A container not yet connected, whose secret holds the password being rotated away; the database
    accepts only the new one (and, with `rotation_ends_at_refusal`, the secret gets it at the first refusal).
    Returns the Secrets Manager client, the secret's ARN, its URL and the passwords tried."""
    secrets, arn, old = secret_with_password(migrated_database, "before-rotation")
    monkeypatch.setenv(Env.DATABASE_SECRET_ARN, arn)
    seen: list[str] = []
    ends = (lambda: rotate(secrets, arn, old, "after-rotation")) if rotation_ends_at_refusal else None
    monkeypatch.setattr(psycopg2, "connect", accepting_only("after-rotation", seen, psycopg2.connect, ends))
    return secrets, arn, old, seen


@pytest.mark.postgres
def test_the_containers_first_connection_reads_a_rotated_password_again(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    # GIVEN a cold container that reads the secret while RDS rotates it: the first read is the old version
    *_, seen = cold_container(monkeypatch, postgres_database, rotation_ends_at_refusal=True)
    # WHEN its first connection (the revision check's) is refused
    engine = analytics.runtime().engine()
    # THEN it read the secret again and signed in with the new password
    assert seen == ["before-rotation", "after-rotation"]
    with engine.connect() as conn:
        assert database.revision(conn) == database.HEAD


@pytest.mark.postgres
def test_a_first_sign_in_refused_twice_leaves_no_cached_password_behind(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    # GIVEN a cold container whose two reads of the secret both return the password being rotated away
    secrets, arn, old, seen = cold_container(monkeypatch, postgres_database, rotation_ends_at_refusal=False)
    with pytest.raises(DatabaseUnavailableError, match="password authentication failed"):
        analytics.runtime().engine()
    assert seen == ["before-rotation", "before-rotation"]
    # WHEN the rotation finishes before Lambda retries the event in the same container
    rotate(secrets, arn, old, "after-rotation")
    seen.clear()
    # THEN the retry reads the secret anew: its first sign-in uses the new password
    analytics.runtime().engine()
    assert seen == ["after-rotation"]


def test_database_connect_errors_are_not_auth_failures() -> None:
    assert not connections.is_auth_failure(OperationalError("SELECT 1", {}, Exception("server closed")))
    refused_token = psycopg2.OperationalError('FATAL:  PAM authentication failed for user "pipeline_app"')
    assert connections.is_auth_failure(refused_token)


def test_sqlite_urls_get_no_credentials_hook(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    database.migrate(url)
    engine = connections.open_engine(lambda _refresh: url)
    assert not engine.dialect.dispatch.do_connect
    engine.dispose()
