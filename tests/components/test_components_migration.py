"""The schema migration `pulumi up` runs: one synchronous invocation of the analytics function, before
the analytics bucket notifies it, and the overwrite mode the analytics stage is given."""

from __future__ import annotations

import json
from pathlib import Path

from components.migration import MIGRATE_EVENT, revisions_digest
from handlers import contract
from handlers.contract import BucketRole, Stage

APPEND = contract.OVERWRITE_APPEND

PROJECT_DIR = Path(__file__).resolve().parents[2]
MIGRATION = "data-pipeline:database:SchemaMigration"
INVOCATION = "aws:lambda/invocation:Invocation"
ROLES = contract.BUCKET_ROLES


def test_prod_invokes_the_analytics_function_with_the_migrate_event(prod_stack):
    component = prod_stack.get("schema-migration", MIGRATION)
    [invocation] = [r for r in prod_stack.children(component) if r.type == INVOCATION]
    assert (
        json.loads(invocation["input"]) == MIGRATE_EVENT == {contract.ACTION_FIELD: contract.MIGRATE_ACTION}
    )
    assert invocation["functionName"] == prod_stack.functions()[Stage.ANALYTICS]["name"]


def test_the_migration_runs_again_when_a_revision_or_the_database_changes(prod_stack):
    [invocation] = prod_stack.by_type(INVOCATION)
    assert invocation["triggers"] == {
        "revisions": revisions_digest(PROJECT_DIR / "handlers" / "migrations"),
        "database": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:data-pipeline/prod/database-AbCdEf",
    }


def test_only_the_analytics_bucket_waits_for_the_migration(prod_stack):
    migration = prod_stack.get("schema-migration", MIGRATION)
    [invocation] = prod_stack.children(migration)
    triggers = {
        role: prod_stack.get(f"{role}-triggers", "data-pipeline:bucket:BucketTriggers") for role in ROLES
    }
    # the notification itself must wait: a component's depends_on does not reach its children
    waits = {
        role: invocation.urn in prod_stack.children(component)[0].depends_on
        for role, component in triggers.items()
    }
    assert waits == {BucketRole.RAW: False, BucketRole.PROCESSED: False, BucketRole.ANALYTICS: True}


def test_a_stack_without_a_database_declares_no_migration(dev_stack):
    assert dev_stack.by_type(MIGRATION) == []
    assert dev_stack.by_type(INVOCATION) == []


def test_a_database_url_in_config_is_migrated_after_its_secret_exists(evaluate):
    from devtools.harness import Secret

    stack = evaluate("dev", {"database": Secret({"url": "postgresql://u:p@db.internal/analytics"})})
    [invocation] = stack.by_type(INVOCATION)
    [version] = stack.by_type("aws:secretsmanager/secretVersion:SecretVersion")
    # the secret's ARN exists before its value: the invocation must wait for the version too
    assert version.urn in invocation.dependencies


def test_revisions_digest_changes_with_a_revision(tmp_path):
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "0001_a.py").write_text("revision = '0001'\n")
    before = revisions_digest(tmp_path)
    (tmp_path / "versions" / "0002_b.py").write_text("revision = '0002'\n")
    assert revisions_digest(tmp_path) != before


def test_append_mode_reaches_the_analytics_function(evaluate):
    stack = evaluate("dev", {"overwrites": APPEND})
    assert stack.functions()[Stage.ANALYTICS]["environment"][contract.Env.OVERWRITE_MODE] == APPEND


def test_a_new_database_url_behind_the_same_secret_is_migrated_again(evaluate):
    from devtools.harness import Secret

    def trigger(url: str) -> str:
        stack = evaluate("dev", {"database": Secret({"url": url})})
        [invocation] = stack.by_type(INVOCATION)
        return invocation["triggers"]["database"]

    # the secret's ARN stays; its version (the URL) changes, and so must the trigger
    first, second = trigger("postgresql://u:p@db-1.internal/a"), trigger("postgresql://u:p@db-2.internal/a")
    assert first != second
