"""Throwaway PostgreSQL databases for every test tier (a pytest plugin; tests/conftest.py loads it).

The server is the one ``scripts/with-throwaway-postgres`` starts and exports as ``TEST_DATABASE_URL``.
Without it a test that needs PostgreSQL is skipped on a workstation and fails in CI (``CI`` or
``REQUIRE_ALL_RUNTIMES`` set), where the server must exist. Each database is created for its user and
dropped afterwards, so tests (and parallel test processes) never share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

NewDatabase = Callable[[str], AbstractContextManager[str]]


def required_in_ci() -> bool:
    """True in CI: there a missing server (or interpreter) is a failure, not a reason to skip."""
    return any(
        os.environ.get(flag, "").lower() in ("1", "true", "yes") for flag in ("CI", "REQUIRE_ALL_RUNTIMES")
    )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The throwaway server's URL (its ``postgres`` database), for administration only."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if required_in_ci():
            pytest.fail("TEST_DATABASE_URL is required in CI (run under scripts/with-throwaway-postgres)")
        pytest.skip("TEST_DATABASE_URL not set: run under scripts/with-throwaway-postgres")
    return url


@pytest.fixture(scope="session")
def new_postgres_database(postgres_server: str) -> Iterator[NewDatabase]:
    """``with new_postgres_database("tier") as url:`` an empty database of its own, dropped on exit
    (``WITH (FORCE)``: a pool the code under test left open cannot keep it alive)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")

    def execute(statement: str) -> None:
        with admin.connect() as conn:
            conn.execute(text(statement))

    @contextmanager
    def new(prefix: str) -> Iterator[str]:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        finally:
            execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    yield new
    admin.dispose()
