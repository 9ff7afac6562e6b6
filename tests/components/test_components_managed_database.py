"""`database.create`: an RDS for PostgreSQL instance the stack owns (`components.database.ManagedDatabase`),
through the example stack file Pulumi.prod-owned.yaml and under dev-like settings."""

from __future__ import annotations

import pytest
from component_support import stage_child

from components.config import ConfigError, parse_config
from devtools.harness.mocks import mock_vpc_id
from handlers import contract
from handlers.contract import Stage

INSTANCE = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"]
FUNCTION_GROUP = "sg-0c3d4e5f607182930"
KEY = "arn:aws:kms:eu-west-1:111122223333:key/0f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"


@pytest.fixture(scope="module")
def owned(evaluate):
    return evaluate("prod-owned")


def _instance(stack):
    (instance,) = stack.by_type(INSTANCE)
    return instance


def test_postgres_current_major_encrypted_with_the_stack_key(owned):
    inputs = _instance(owned).inputs
    assert (inputs["engine"], inputs["engineVersion"]) == ("postgres", "17")
    assert inputs["storageEncrypted"] is True
    assert inputs["kmsKeyId"] == KEY
    assert inputs["publiclyAccessible"] is False
    assert inputs["multiAz"] is True
    assert (inputs["instanceClass"], inputs["allocatedStorage"], inputs["dbName"]) == (
        "db.t4g.small",
        20,
        "pipeline",
    )


def test_outside_dev_backups_deletion_protection_and_a_final_snapshot(owned):
    inputs = _instance(owned).inputs
    assert inputs["backupRetentionPeriod"] == 7
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"] == "data-pipeline-prod-owned-final"


def test_the_master_password_is_managed_by_rds_and_analytics_reads_that_secret(owned):
    inputs = _instance(owned).inputs
    assert inputs["manageMasterUserPassword"] is True
    assert "password" not in inputs
    assert inputs["masterUserSecretKmsKeyId"] == KEY
    secret = _instance(owned).outputs["masterUserSecrets"][0]["secretArn"]
    env = owned.functions()[Stage.ANALYTICS]["environment"]
    assert env[contract.Env.DATABASE_SECRET_ARN] == secret
    address = _instance(owned).outputs["address"]
    assert env[contract.Env.DATABASE_ENDPOINT] == f"{address}:5432/pipeline"
    statements = {s["Sid"]: s for s in owned.role_policies()[Stage.ANALYTICS]["Statement"]}
    assert statements["ReadDatabaseSecret"]["Resource"] == [secret]
    # no stage but analytics learns of the database
    assert contract.Env.DATABASE_ENDPOINT not in owned.functions()[Stage.PROCESSING]["environment"]
    # and no hand-made secret is created
    assert not owned.by_type("aws:secretsmanager/secret:Secret")
    assert owned.outputs["databaseSecretArn"] == secret


def test_subnet_group_in_the_configured_subnets_and_only_the_function_admitted(owned):
    (group,) = owned.by_type(SUBNET_GROUP)
    assert group.inputs["subnetIds"] == SUBNETS
    instance = _instance(owned)
    assert instance.inputs["dbSubnetGroupName"] == "data-pipeline-prod-owned-database"
    assert group.inputs["name"] == "data-pipeline-prod-owned-database"
    (database_sg,) = [r for r in owned.by_type("aws:ec2/securityGroup:SecurityGroup") if "database" in r.name]
    assert instance.inputs["vpcSecurityGroupIds"] == [database_sg.id]
    rules = [r for r in owned.by_type(INGRESS) if r.inputs["securityGroupId"] == database_sg.id]
    assert [
        (r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"], r.inputs["toPort"]) for r in rules
    ] == [(FUNCTION_GROUP, 5432, 5432)]
    function = stage_child(owned, Stage.ANALYTICS, "aws:lambda/function:Function")
    assert function.inputs["vpcConfig"]["securityGroupIds"] == [FUNCTION_GROUP]


def test_the_migration_waits_for_the_database_and_its_network(owned):
    (migration,) = owned.by_type("aws:lambda/invocation:Invocation")
    needed = {_instance(owned).urn} | {r.urn for r in owned.by_type(INGRESS)}
    needed |= {r.urn for r in owned.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert needed <= set(migration.dependencies)


def test_endpoints_of_the_example_stack(owned):
    services = {
        e.inputs["serviceName"].rsplit(".", 1)[1] for e in owned.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    # no summary topic in the example: S3 and Secrets Manager only
    assert services == {"s3", "secretsmanager"}


def test_changes_to_an_existing_instance_wait_for_its_maintenance_window_by_default(owned):
    assert _instance(owned).inputs["applyImmediately"] is False


def test_apply_immediately_is_passed_to_rds(evaluate):
    create = {"instanceClass": "db.t4g.small", "multiAz": True, "applyImmediately": True}
    stack = evaluate("prod-owned", {"database": {"create": create}})
    assert _instance(stack).inputs["applyImmediately"] is True


def test_apply_immediately_is_a_boolean():
    problems = _problems({"database": {"create": {"applyImmediately": "now"}}})
    assert "data-pipeline:database.create.applyImmediately" in problems


def test_a_dev_like_stack_keeps_one_day_of_backups_and_deletes_without_snapshot(evaluate):
    stack = evaluate("prod-owned", {"forceDestroy": True, "retainBucketsOnDelete": False})
    inputs = _instance(stack).inputs
    assert inputs["backupRetentionPeriod"] == 1
    assert inputs["deletionProtection"] is False
    assert inputs["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in inputs


def _problems(raw):
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, project="data-pipeline", stack="prod", region="eu-west-1")
    return {p.key: p.message for p in raised.value.problems}


def test_database_create_needs_a_vpc():
    assert "needs vpc" in _problems({"database": {"create": True}})["data-pipeline:database.create"]


def test_without_vpc_id_the_database_goes_in_the_subnets_vpc(evaluate):
    stack = evaluate(
        "dev",
        {
            "database": {"create": True},
            "vpc": {"subnetIds": SUBNETS, "securityGroupIds": [FUNCTION_GROUP], "serviceAccess": "nat"},
        },
    )
    (database_sg,) = [r for r in stack.by_type("aws:ec2/securityGroup:SecurityGroup") if "database" in r.name]
    assert database_sg.inputs["vpcId"] == mock_vpc_id("dev")


def test_database_sources_are_exclusive_and_create_is_checked():
    problems = _problems(
        {"database": {"create": {"instanceClass": "large", "allocatedStorageGb": 5, "engine": "mysql"}}}
    )
    assert "an RDS instance class" in problems["data-pipeline:database.create.instanceClass"]
    assert "allowed: 20-65536" in problems["data-pipeline:database.create.allocatedStorageGb"]
    assert "unknown key" in problems["data-pipeline:database.create.engine"]
    both = _problems(
        {
            "database": {
                "create": True,
                "secretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db-AbCdEf",
            }
        }
    )
    assert (
        "exactly one of database.secretArn, database.url and database.create"
        in both["data-pipeline:database"]
    )


def test_create_true_takes_the_defaults():
    cfg = parse_config(
        {
            "database": {"create": True},
            "vpc": {
                "subnetIds": SUBNETS,
                "securityGroupIds": [FUNCTION_GROUP],
                "serviceAccess": "nat",
                "vpcId": "vpc-0d4e5f60718293a4b",
            },
        },
        project="data-pipeline",
        stack="prod",
    )
    assert cfg.database is not None
    assert cfg.database.create is not None
    assert (cfg.database.create.instance_class, cfg.database.create.multi_az) == ("db.t4g.micro", False)


def test_the_example_stacks_pass_the_policy_pack(owned, evaluate):
    import datetime as dt
    import sys
    from pathlib import Path

    policy_dir = Path(__file__).resolve().parents[2] / "policy"
    if str(policy_dir) not in sys.path:
        sys.path.insert(0, str(policy_dir))
    import pipeline_rules as rules

    created_vpc = evaluate(
        "prod-owned", {"vpc": {"create": {"availabilityZones": ["eu-west-1a", "eu-west-1b"]}}}
    )
    for stack in (owned, created_vpc):
        resources = [
            rules.Resource(r.type, r.name, r.urn, dict(r.outputs)) for r in stack.resources if r.custom
        ]
        assert rules.check_stack(resources, dt.date(2026, 12, 3)) == []
