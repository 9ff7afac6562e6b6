"""The application role: what the analytics stage's loads sign in as, created by the schema migration.

A database the stack owns (``database.create``) has one password, the master user's, which RDS keeps and
rotates in Secrets Manager. Loads do not use it: the migration (``{"action": "migrate"}``, the only code that
reads the master secret) connects as the master user and brings the role ``contract.APP_USER`` to exactly
what a load needs, in one transaction, however often it runs:

- LOGIN, and none of SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS (a role found with one of
  them is refused, not used);
- CONNECT and TEMPORARY on the database (a load stages its rows in temporary tables, ``handlers.staging``;
  granted explicitly, not left to PUBLIC's default) and USAGE on the schema of the pipeline tables;
- SELECT, INSERT, UPDATE and DELETE on the pipeline tables (``handlers.schema``), SELECT on
  ``alembic_version`` (the revision check of ``database.connect``), USAGE on the tables' sequences; every
  other table or sequence privilege it held in that schema is revoked first;
- no ownership and no CREATE: it cannot ALTER, DROP or create a table (PostgreSQL 15 and later, RDS's
  current major included, grant PUBLIC no CREATE on the ``public`` schema);
- on RDS, membership of ``rds_iam``, so it signs in with IAM authentication tokens only and has no password
  at all. "Creating a database account using IAM authentication", PostgreSQL: ``CREATE USER ...; GRANT
  rds_iam TO ...`` (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.DBAccounts.html).
  ``rds_iam`` exists only on RDS, so elsewhere (the tests' PostgreSQL) the grant is skipped and reported.

The stage builds each connection with a fresh token (``handlers.connections``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from handlers.errors import ConfigError, DatabaseUnavailableError
from handlers.schema import metadata

RDS_IAM = "rds_iam"
REVISION_TABLE = "alembic_version"
LOAD_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
_ROLE_LOCK = 0x6170707573657200  # pg_advisory_xact_lock(bigint): concurrent migrations take turns here too
# A role name that needs no quoting and fits PostgreSQL's 63 bytes (it is also the IAM policy's dbuser).
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ELEVATED = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")


@dataclass(frozen=True)
class AppUser:
    """What `ensure` left in place."""

    name: str
    """The role."""

    created: bool
    """It did not exist before."""

    iam: bool
    """It was granted ``rds_iam`` (RDS): it signs in with IAM tokens only."""

    tables: tuple[str, ...]
    """The tables it may load into (besides reading ``alembic_version``)."""

    def as_result(self) -> dict[str, object]:
        return {"name": self.name, "created": self.created, "iam": self.iam, "tables": len(self.tables)}


def ensure(conn: Connection, name: str) -> AppUser:
    """Create or update the role `name` with the load privileges only, inside the caller's transaction
    (the master user's, after the schema is at the head revision). PostgreSQL only."""
    if conn.dialect.name != "postgresql":
        raise ConfigError(f"the application user is a PostgreSQL role; this database is {conn.dialect.name}")
    if not _NAME.match(name):
        raise ConfigError(f"the application user name {name[:64]!r} is not a plain lowercase identifier")
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLE_LOCK})
    found = conn.execute(
        text(f"SELECT {', '.join(_ELEVATED)} FROM pg_roles WHERE rolname = :name"), {"name": name}
    ).first()
    if found is None:
        # The defaults are NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, and no password.
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN")
    else:
        elevated = [column for column, value in zip(_ELEVATED, found, strict=True) if value]
        if elevated:
            raise ConfigError(
                f"the role {name} exists with {', '.join(elevated)}; the application user may have none of "
                f"them: drop the role (or remove the attributes) and run the migration again"
            )
        conn.exec_driver_sql(f"ALTER ROLE {name} LOGIN")
    iam = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": RDS_IAM}).first() is not None
    if iam:
        conn.exec_driver_sql(f"GRANT {RDS_IAM} TO {name}")
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    quote = conn.dialect.identifier_preparer.quote
    # TEMPORARY: a load stages its rows in session temporary tables (handlers.staging); PUBLIC has it by
    # default, but a hardened server revokes that, and the loads must not depend on it.
    conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {quote(database)} TO {name}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {name}")
    # Exactly the privileges below, whatever an earlier version of this code (or a person) granted.
    conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA {quote(schema)} FROM {name}")
    conn.exec_driver_sql(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {quote(schema)} FROM {name}")
    tables = tuple(sorted(metadata.tables))
    conn.exec_driver_sql(f"GRANT {LOAD_PRIVILEGES} ON TABLE {', '.join(map(quote, tables))} TO {name}")
    conn.exec_driver_sql(f"GRANT SELECT ON TABLE {quote(REVISION_TABLE)} TO {name}")
    sequences = conn.execute(
        text(
            "SELECT DISTINCT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE s.relkind = 'S' AND t.relname = ANY(:tables) AND t.relnamespace = s.relnamespace "
            "AND s.relnamespace = CAST(current_schema() AS regnamespace) ORDER BY 1"
        ),
        {"tables": list(tables)},
    ).scalars()
    for sequence in sequences:
        conn.exec_driver_sql(f"GRANT USAGE ON SEQUENCE {quote(sequence)} TO {name}")
    return AppUser(name=name, created=found is None, iam=iam, tables=tables)


def apply(url: str, name: str) -> AppUser:
    """`ensure` in a transaction of its own on the database at `url` (the master user's)."""
    from handlers import database

    engine = database.create(url)
    try:
        with engine.begin() as conn:
            return ensure(conn, name)
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailableError(f"the application user was not updated: {exc.orig}") from exc
    finally:
        engine.dispose()
