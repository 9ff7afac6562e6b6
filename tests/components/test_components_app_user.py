"""`database.create`: loads sign in as the application user with IAM tokens, under Pulumi's mocks. IAM
authentication on the instance, `rds-db:connect` on that one user of that one instance for the analytics role
only, `DATABASE_APP_USER` in its environment, and a migration that runs again when the user's code changes."""

from __future__ import annotations

import pytest

from components import migration
from handlers import contract
from handlers.contract import Env, Stage

INSTANCE = "aws:rds/instance:Instance"
INVOCATION = "aws:lambda/invocation:Invocation"


@pytest.fixture(scope="module")
def owned(evaluate):
    return evaluate("prod-owned")


def statements(stack, stage):
    return {s["Sid"]: s for s in stack.role_policies()[stage]["Statement"]}


def test_the_instance_has_iam_database_authentication_on(owned):
    (instance,) = owned.by_type(INSTANCE)
    assert instance.inputs["iamDatabaseAuthenticationEnabled"] is True


def test_analytics_may_connect_as_the_app_user_of_this_instance_only(owned):
    (instance,) = owned.by_type(INSTANCE)
    resource_id = instance.outputs["resourceId"]
    grant = statements(owned, Stage.ANALYTICS)["ConnectAsAppUser"]
    assert grant["Action"] == ["rds-db:connect"]
    user = f"arn:aws:rds-db:eu-west-1:123456789012:dbuser:{resource_id}/{contract.APP_USER}"
    assert grant["Resource"] == [user]
    for stage in (Stage.INGESTION, Stage.PROCESSING):
        assert "ConnectAsAppUser" not in statements(owned, stage)


def test_analytics_is_told_the_app_user(owned):
    env = owned.functions()[Stage.ANALYTICS]["environment"]
    assert env[Env.DATABASE_APP_USER] == contract.APP_USER
    assert Env.DATABASE_APP_USER not in owned.functions()[Stage.PROCESSING]["environment"]


def test_the_migration_runs_again_when_the_app_users_code_changes(owned):
    (invocation,) = owned.by_type(INVOCATION)
    assert invocation.inputs["triggers"]["appUser"] == f"{contract.APP_USER}#{migration.app_user_digest()}"


def test_a_database_behind_a_secret_has_no_app_user(evaluate):
    stack = evaluate(
        "dev",
        {"database": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}},
    )
    assert "ConnectAsAppUser" not in statements(stack, Stage.ANALYTICS)
    assert Env.DATABASE_APP_USER not in stack.functions()[Stage.ANALYTICS]["environment"]
    (invocation,) = stack.by_type(INVOCATION)
    assert "appUser" not in invocation.inputs["triggers"]
