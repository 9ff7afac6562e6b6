"""How the analytics stage signs in to PostgreSQL: credentials taken afresh for every new connection.

The engine lives as long as the container, but what signs a connection in does not:

- **IAM tokens** (a database the stack owns, ``DATABASE_APP_USER``): each new connection gets a token
  generated for it, so none is older than its connection. "Each token has a lifetime of 15 minutes ... The
  token is only used for authentication and doesn't affect the session after it is established"
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.html). boto3's
  ``RDS.Client.generate_db_auth_token(DBHostname, Port, DBUsername, Region=None)`` signs it locally with the
  function's role (no call to RDS, so no VPC endpoint), in the client's region. IAM authentication needs TLS:
  the URL carries ``sslmode=require``.
- **A password from the secret** (``database.url``, ``database.secretArn``): RDS rotates a master password it
  manages (every seven days by default), and "during rotation, new connections that retrieve the secret may
  get the previous version of the credentials"
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_managed.html). A connection
  refused for its password reads the secret once more and tries once more.

Both go through SQLAlchemy's ``DialectEvents.do_connect`` hook, which receives a mutable copy of the
connection arguments before each DBAPI ``connect()`` (the arguments an engine parses from its URL are computed
once, when it is created: sqlalchemy/engine/create.py) and may make the connection itself. Established,
pooled connections are unaffected by either change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from handlers.errors import ConfigError

# What PostgreSQL answers a wrong password (SQLSTATE 28P01) and RDS a refused IAM token ("PAM authentication
# failed for user", https://repost.aws/knowledge-center/aurora-postgresql-connect-iam): libpq reports both as
# text at connect time, without a SQLSTATE psycopg2 could expose.
AUTH_FAILURES = ("password authentication failed", "PAM authentication failed")


class Credentials(Protocol):
    def current(self) -> Mapping[str, str]:
        """``user`` and ``password`` for the next connection."""

    def refreshed(self) -> Mapping[str, str]:
        """The same, read again from their source after the database refused `current`."""


@dataclass
class IamToken:
    """A token per connection for `user` at `host`:`port` (`rds`: a boto3 RDS client)."""

    rds: Any
    host: str
    port: int
    user: str

    def current(self) -> Mapping[str, str]:
        token = self.rds.generate_db_auth_token(DBHostname=self.host, Port=self.port, DBUsername=self.user)
        return {"user": self.user, "password": token}

    def refreshed(self) -> Mapping[str, str]:
        return self.current()


@dataclass
class SecretPassword:
    """The user and password of the URL in the database secret; `read(refresh)` returns that URL."""

    read: Callable[[bool], str]
    _url: URL | None = field(default=None, repr=False)

    def _credentials(self, refresh: bool) -> Mapping[str, str]:
        if self._url is None or refresh:
            self._url = make_url(self.read(refresh))
        return {"user": self._url.username or "", "password": self._url.password or ""}

    def current(self) -> Mapping[str, str]:
        return self._credentials(refresh=False)

    def refreshed(self) -> Mapping[str, str]:
        return self._credentials(refresh=True)


def is_auth_failure(error: BaseException) -> bool:
    """The database refused the credentials (not: unreachable, overloaded, unknown database)."""
    return any(marker in str(error) for marker in AUTH_FAILURES)


def sign_in_per_connection(engine: Engine, credentials: Credentials) -> None:
    """Every new connection of `engine` signs in with `credentials.current()`, and once more with
    `credentials.refreshed()` if the database refuses them; any other failure is the DBAPI's own."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        cparams.update(credentials.current())
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as error:
            if not is_auth_failure(error):
                raise
        cparams.update(credentials.refreshed())
        return dialect.connect(*cargs, **cparams)


def split_endpoint(endpoint: str) -> tuple[str, int, str]:
    """``host:port/dbname`` (``DATABASE_ENDPOINT``) into its parts."""
    address, _, dbname = endpoint.partition("/")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not dbname:
        raise ConfigError(f"DATABASE_ENDPOINT must be host:port/dbname, got {endpoint[:128]!r}")
    return host, int(port), dbname


def iam_url(endpoint: str, user: str, token: str) -> str:
    """The URL of `user` at `endpoint` over TLS, signed in with `token` (its first connection's)."""
    host, port, dbname = split_endpoint(endpoint)
    url = URL.create(
        "postgresql+psycopg2",
        username=user,
        password=token,
        host=host,
        port=port,
        database=dbname,
        query={"sslmode": "require"},
    )
    return url.render_as_string(hide_password=False)


def open_engine(
    read_url: Callable[[bool], str],
    *,
    app_user: str | None = None,
    endpoint: str | None = None,
    rds: Callable[[], Any] | None = None,
) -> Engine:
    """The stage's engine, at the head revision (``database.connect``), whose new connections sign in
    afresh: as `app_user` with IAM tokens when the stack names one (with `endpoint` and `rds`, a factory of
    the boto3 RDS client), else with the secret's credentials (`read_url(refresh)`). The sign-in hook is in
    place before the revision check opens the first connection, so that one too retries a rotated password."""
    from handlers import database

    if app_user is not None:
        if endpoint is None or rds is None:
            raise ConfigError("DATABASE_APP_USER needs DATABASE_ENDPOINT (host:port/dbname)")
        host, port, _ = split_endpoint(endpoint)
        tokens = IamToken(rds(), host, port, app_user)
        return database.connect(
            iam_url(endpoint, app_user, tokens.current()["password"]),
            lambda engine: sign_in_per_connection(engine, tokens),
        )
    url = read_url(False)

    def sign_in(engine: Engine) -> None:
        if engine.dialect.name == "postgresql":
            sign_in_per_connection(engine, SecretPassword(read_url, make_url(url)))

    return database.connect(url, sign_in)
