"""`SchemaMigration`: `pulumi up` brings the analytics database to the schema the deployed code needs.

The database is usually reachable only from inside the VPC, so the migration runs there: an invocation
of the analytics function itself with the event ``{"action": "migrate"}``
(`handlers.analytics_handler`), which runs Alembic's ``upgrade head`` under a PostgreSQL advisory lock
and returns the revision. Pulumi invokes it synchronously (RequestResponse) once the function's new code
is in place, again whenever the revisions shipped in the code or the database change, and an error it
returns fails the update, so a stack never reports success over a database it could not migrate. Until
it has run, the analytics stage refuses the database (it never loads into an older schema), and Lambda's
retries keep the events.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi_aws import lambda_

from components.component import Component, Opts
from handlers import contract

MIGRATE_EVENT = contract.MIGRATE_EVENT
APP_USER_MODULE = Path(contract.__file__).with_name("app_user.py")


def revisions_digest(migrations_dir: Path) -> str:
    """SHA-256 over the revision scripts (names and bytes): it changes exactly when a revision does."""
    digest = hashlib.sha256()
    for path in sorted(migrations_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(migrations_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def app_user_digest(module: Path = APP_USER_MODULE) -> str:
    """SHA-256 of the code that sets the application user's privileges: a change migrates again."""
    return hashlib.sha256(module.read_bytes()).hexdigest()


@dataclass(frozen=True)
class SchemaMigrationArgs:
    """Inputs of a `SchemaMigration`."""

    function_name: pulumi.Input[str]
    """The analytics function, whose code ships the Alembic revisions."""

    revisions_digest: str
    """`revisions_digest` of the shipped revisions: a new revision invokes the migration again."""

    database: pulumi.Input[str]
    """What names the database (the secret ARN, with the URL's secret version or the instance's endpoint
    where the stack owns them): a new database is migrated too."""

    depends_on: tuple[pulumi.Resource, ...] = ()
    """Resources the invocation needs in place: the function's policy, network and async settings."""

    app_user: str | None = None
    """The application user the migration creates (`database.create`); None: none. Its name, and the code
    that sets its privileges (`handlers/app_user.py`), invoke the migration again when they change."""


class SchemaMigration(Component):
    """One synchronous invocation of the analytics function that upgrades the database schema."""

    TYPE = "data-pipeline:database:SchemaMigration"

    invocation: lambda_.Invocation
    result: pulumi.Output[str]

    def __init__(self, name: str, args: SchemaMigrationArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        self.invocation = lambda_.Invocation(
            f"{name}-invoke",
            function_name=args.function_name,
            input=json.dumps(MIGRATE_EVENT),
            triggers={
                "revisions": args.revisions_digest,
                "database": args.database,
                **({"appUser": f"{args.app_user}#{app_user_digest()}"} if args.app_user else {}),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.result = self.invocation.result
        self.register_outputs({"result": self.result})
