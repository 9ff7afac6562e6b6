"""The application user on a real PostgreSQL: created by the migration with the loads' privileges only, the
same after every run, and able to load but not to change the schema. ``rds_iam`` exists only on RDS; a test
creates a role of that name to see the grant follow it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from handler_support import REGION, event_of
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from test_analytics_handler import CLICK, put_document, record, rollup

from handlers import analytics_handler as analytics
from handlers import app_user, connections, contract, database
from handlers.contract import Env
from handlers.errors import ConfigError
from handlers.groups import GroupStats, Stats

pytestmark = pytest.mark.postgres
INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def migrated(postgres_database: str) -> str:
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    database.migrate(postgres_database)
    return postgres_database


@pytest.fixture
def role(migrated: str) -> Iterator[str]:
    """A role name of this test's own (roles belong to the whole server), dropped afterwards."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    yield name
    engine = create_engine(migrated, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
            conn.exec_driver_sql(f"DROP OWNED BY {name}; DROP ROLE {name}")
    engine.dispose()


def as_user(url: str, name: str) -> str:
    """The same database as `name` (the test server trusts local connections: no password)."""
    return make_url(url).set(username=name, password=None).render_as_string(hide_password=False)


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql), params).scalar()
    engine.dispose()
    return value


def refused(url: str, sql: str) -> str:
    """The SQLSTATE PostgreSQL refuses `sql` with."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn, pytest.raises(ProgrammingError) as caught:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
    return caught.value.orig.pgcode


def test_the_migration_creates_a_login_role_without_elevated_attributes(migrated: str, role: str) -> None:
    user = app_user.apply(migrated, role)
    assert (user.created, user.iam) == (True, False)
    attributes = scalar(
        migrated,
        "SELECT ARRAY[rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls] "
        "FROM pg_roles WHERE rolname = :n",
        n=role,
    )
    assert attributes == [True, False, False, False, False, False]


def load_as(url: str) -> Any:
    """One contribution loaded through an engine for `url`, which must pass the revision check."""
    engine = database.connect(url)  # reads alembic_version
    stats = {
        (datetime(2024, 5, 1, 12, tzinfo=UTC).isoformat(), '{"type":"click"}'): GroupStats(
            2, {"value": Stats(2, Decimal("3.5"), Decimal("1"), Decimal("2.5"))}
        )
    }
    result = database.load(
        engine,
        f"{contract.AGGREGATES_PREFIX}x/0065A1{contract.AGGREGATES_SUFFIX}",
        "0" * 64,
        database.Setting("1h", ("type",), ("value",)),
        database.Origin("x", "0065A1"),
        stats,
        contract.DEFAULT_OVERWRITE_MODE,
    )
    engine.dispose()
    return result


def test_the_app_user_loads_and_passes_the_revision_check(migrated: str, role: str) -> None:
    app_user.apply(migrated, role)
    assert load_as(as_user(migrated, role)).state == database.LOADED
    assert scalar(migrated, "SELECT sum FROM pipeline_rollup_metrics") == Decimal("3.5")


@pytest.fixture
def no_public_temporary(migrated: str) -> Iterator[str]:
    """The database with PUBLIC's default TEMPORARY privilege revoked (as a hardened server has it)."""
    engine = create_engine(migrated, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        current = conn.execute(text("SELECT current_database()")).scalar()
        name = conn.dialect.identifier_preparer.quote(current)
        conn.exec_driver_sql(f"REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC")
    try:
        yield migrated
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"GRANT TEMPORARY ON DATABASE {name} TO PUBLIC")
        engine.dispose()


def test_the_app_user_stages_its_loads_without_publics_temporary_privilege(
    no_public_temporary: str, role: str
) -> None:
    app_user.apply(no_public_temporary, role)
    temporary = "SELECT has_database_privilege(:n, current_database(), 'TEMP')"
    assert scalar(no_public_temporary, temporary, n=role)
    assert load_as(as_user(no_public_temporary, role)).state == database.LOADED


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE pipeline_ledger",
        "ALTER TABLE pipeline_ledger ADD COLUMN extra integer",
        "CREATE TABLE pipeline_extra (id integer)",
        "TRUNCATE pipeline_ledger",
        "UPDATE alembic_version SET version_num = '0001'",
        "CREATE ROLE someone_else",
    ],
    ids=["drop", "alter", "create", "truncate", "revision", "create-role"],
)
def test_the_app_user_cannot_change_the_schema(migrated: str, role: str, statement: str) -> None:
    app_user.apply(migrated, role)
    assert refused(as_user(migrated, role), statement) == INSUFFICIENT_PRIVILEGE


def test_the_app_user_owns_nothing_and_may_use_the_contribution_ids(migrated: str, role: str) -> None:
    app_user.apply(migrated, role)
    owned = scalar(migrated, "SELECT count(*) FROM pg_class WHERE relowner = CAST(:n AS regrole)", n=role)
    sequence = scalar(migrated, "SELECT pg_get_serial_sequence('pipeline_contributions', 'contribution_id')")
    usable = scalar(migrated, "SELECT has_sequence_privilege(:n, :s, 'USAGE')", n=role, s=sequence)
    assert (owned, usable) == (0, True)


def test_a_second_run_changes_nothing_and_takes_back_extra_privileges(migrated: str, role: str) -> None:
    first = app_user.apply(migrated, role)
    engine = create_engine(migrated)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"GRANT TRUNCATE, REFERENCES ON pipeline_ledger TO {role}")
    engine.dispose()
    second = app_user.apply(migrated, role)
    assert (first.tables, second.created) == (second.tables, False)
    assert refused(as_user(migrated, role), "TRUNCATE pipeline_ledger") == INSUFFICIENT_PRIVILEGE


def test_a_role_with_elevated_attributes_is_refused_not_used(migrated: str, role: str) -> None:
    engine = create_engine(migrated)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN CREATEDB")
    engine.dispose()
    with pytest.raises(ConfigError, match="rolcreatedb"):
        app_user.apply(migrated, role)


def test_where_rds_iam_exists_the_app_user_is_granted_it(migrated: str, role: str) -> None:
    admin = create_engine(migrated, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        existed = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'")).first()
        if not existed:
            conn.exec_driver_sql("CREATE ROLE rds_iam NOLOGIN")  # as RDS has it
    try:
        user = app_user.apply(migrated, role)
        member = scalar(migrated, "SELECT pg_has_role(:n, 'rds_iam', 'MEMBER')", n=role)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"REVOKE rds_iam FROM {role}")
            if not existed:
                conn.exec_driver_sql("DROP ROLE rds_iam")
        admin.dispose()
    assert (user.iam, member) == (True, True)


@pytest.mark.parametrize("name", ["Pipeline", "app; DROP TABLE x", "", "a" * 64])
def test_a_name_that_is_not_a_plain_identifier_is_refused(migrated: str, name: str) -> None:
    with pytest.raises(ConfigError, match="not a plain lowercase identifier"):
        app_user.apply(migrated, name)


def test_the_migrate_action_creates_the_app_user_named_by_the_stack(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, postgres_database: str, role: str
) -> None:
    # GIVEN the master URL in the secret and the stack's DATABASE_APP_USER
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=postgres_database
    )["ARN"]
    monkeypatch.setenv(Env.DATABASE_SECRET_ARN, arn)
    monkeypatch.setenv(Env.DATABASE_APP_USER, role)
    # WHEN pulumi up's invocation arrives twice
    results = [analytics.handler(contract.MIGRATE_EVENT, None) for _ in range(2)]
    # THEN the schema is at the head and the user exists, created once
    assert [r["revision"] for r in results] == [database.HEAD] * 2
    assert [r["appUser"]["created"] for r in results] == [True, False]
    assert scalar(postgres_database, "SELECT count(*) FROM pg_roles WHERE rolname = :n", n=role) == 1


def test_loads_sign_in_as_the_app_user_with_a_token_and_never_read_the_secret(
    analytics_env: Any, monkeypatch: pytest.MonkeyPatch, postgres_database: str, role: str
) -> None:
    # GIVEN a stack-owned database: the master URL in the secret, the endpoint and the app user named
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=postgres_database)["ARN"]
    url = make_url(postgres_database)
    monkeypatch.setenv(Env.DATABASE_SECRET_ARN, arn)
    monkeypatch.setenv(Env.DATABASE_APP_USER, role)
    monkeypatch.setenv(Env.DATABASE_ENDPOINT, f"{url.host}:{url.port}/{url.database}")
    analytics.handler(contract.MIGRATE_EVENT, None)
    analytics.runtime.cache_clear()  # a new container
    # (the test server speaks no TLS; connections.iam_url's sslmode=require has a test of its own)
    tls_url = connections.iam_url
    monkeypatch.setattr(connections, "iam_url", lambda *args: tls_url(*args).replace("?sslmode=require", ""))
    reads = []
    monkeypatch.setattr(analytics.Runtime, "url", lambda self, refresh=False: reads.append(refresh))
    # WHEN an aggregates object arrives
    analytics.handler(event_of(put_document(analytics_env, record(3))), None)
    # THEN it was loaded by the app user, signed in with a token, without reading the master secret
    with analytics.runtime().engine().connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == role
    assert "Action=connect" in analytics.runtime().engine().url.password
    assert reads == []
    assert rollup(postgres_database) == [(CLICK, 1, 3, 3, 3)]
