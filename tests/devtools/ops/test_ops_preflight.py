"""`devtools.ops.preflight` on moto (botocore's Stubber for what moto lacks: GetAccountSettings, and a
HeadBucket 403 from a bucket another account owns): each failure names its config key and the fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto_clients import fresh_client, mocked_aws, shared_client

from components.config import parse_config
from devtools.ops import preflight as pf
from handlers.contract import BucketRole, Stage

REGION = "eu-west-1"
TODAY = dt.date(2026, 12, 3)


class Session:
    """boto3 clients on moto (shared between tests: none of them is stubbed), with some replaced by
    stubbed ones."""

    def __init__(self, **replaced: Any) -> None:
        self.replaced = replaced

    def client(self, name: str, region_name: str) -> Any:
        return self.replaced.get(name) or shared_client(name, region_name=region_name)


def config(**raw: Any):
    return parse_config(raw, project="data-pipeline", stack="prod", region=REGION)


def findings_of(check: Any, *args: Any) -> Any:
    """What one of preflight's checks finds, given its arguments (the findings come last)."""
    out = pf.Findings()
    check(*args, out)
    return out


def failures(findings, key: str) -> list[str]:
    return [f.message for f in findings if not f.ok and f.key == f"data-pipeline:{key}"]


def stubbed_lambda(total: int, unreserved: int, held: dict[str, int] | None = None) -> Any:
    client = fresh_client("lambda", region_name=REGION)  # its own: the stub stays on the client
    stub = Stubber(client)
    stub.add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved}},
    )
    for name, value in (held or {}).items():
        if value:
            stub.add_response(
                "get_function_concurrency", {"ReservedConcurrentExecutions": value}, {"FunctionName": name}
            )
        else:
            stub.add_client_error(
                "get_function_concurrency", "ResourceNotFoundException", http_status_code=404
            )
    stub.activate()
    return client


@pytest.fixture
def aws(monkeypatch):
    # moto's EC2 otherwise makes ~36,000 stock AMIs (a volume and a snapshot each) for every region it
    # serves, twice per test (created, then re-created by the reset); preflight reads no AMI.
    # (a client a test stubs comes from fresh_client)
    with mocked_aws(monkeypatch, REGION, MOTO_EC2_LOAD_DEFAULT_AMIS="false"):
        yield


# --- buckets ---------------------------------------------------------------------------------------------


def test_bucket_names_free_owned_or_taken_by_another_account(aws):
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="pipeline-raw", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    cfg = config(
        bucketSuffix=False,
        buckets={
            BucketRole.RAW: "pipeline-raw",
            BucketRole.PROCESSED: "pipeline-processed",
            BucketRole.ANALYTICS: "pipeline-analytics",
        },
    )
    s3 = boto3.client("s3", region_name=REGION)
    out = pf.Findings()
    pf.check_buckets(cfg, s3, out)
    by_key = {f.key: f for f in out}
    assert by_key[f"data-pipeline:buckets.{BucketRole.RAW}"].ok
    assert "exists in this account" in by_key[f"data-pipeline:buckets.{BucketRole.RAW}"].message
    assert by_key[f"data-pipeline:buckets.{BucketRole.PROCESSED}"].message == "pipeline-processed: free"


def test_a_name_another_account_owns_fails_with_the_fix():
    cfg = config(
        bucketSuffix=False,
        buckets={BucketRole.RAW: "taken-raw", BucketRole.PROCESSED: "p-1", BucketRole.ANALYTICS: "a-1"},
    )
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(s3)
    stub.add_client_error("head_bucket", "403", http_status_code=403, expected_params={"Bucket": "taken-raw"})
    stub.add_client_error("head_bucket", "404", http_status_code=404)
    stub.add_client_error("head_bucket", "404", http_status_code=404)
    stub.activate()
    out = findings_of(pf.check_buckets, cfg, s3)
    (message,) = failures(out, f"buckets.{BucketRole.RAW}")
    assert "another AWS account owns this name" in message
    assert "BucketAlreadyExists" in message
    assert "pulumi config set --path buckets.raw" in message
    assert not failures(out, f"buckets.{BucketRole.PROCESSED}")


def test_suffixed_names_are_not_checked():
    out = pf.Findings()
    pf.check_buckets(config(), None, out)
    assert [f.ok for f in out] == [True]


# --- concurrency -----------------------------------------------------------------------------------------


def test_reservations_a_new_account_cannot_hold_fail_with_the_quota_to_request():
    cfg = config(
        stages={Stage.ANALYTICS: {"reservedConcurrency": 5}, Stage.INGESTION: {"reservedConcurrency": 50}}
    )
    lambda_ = stubbed_lambda(
        10, 10, {f"data-pipeline-prod-{Stage.INGESTION}": 0, f"data-pipeline-prod-{Stage.ANALYTICS}": 0}
    )
    (message,) = failures(findings_of(pf.check_concurrency, cfg, lambda_), "stages")
    assert "stages.ingestion.reservedConcurrency=50" in message
    assert "Lambda keeps at least 100" in message
    assert "L-B99A9384" in message
    assert "of at least 155" in message


def test_reservations_that_fit_pass_and_the_stack_s_own_count_as_available():
    cfg = config(stages={Stage.ANALYTICS: {"reservedConcurrency": 5}})
    # 1000 in all, 100 unreserved, of which the analytics function already holds 5
    lambda_ = stubbed_lambda(1000, 100, {f"data-pipeline-prod-{Stage.ANALYTICS}": 5})
    out = pf.Findings()
    pf.check_concurrency(cfg, lambda_, out)
    assert [f.ok for f in out] == [True]


def test_no_reservations_need_nothing():
    out = pf.Findings()
    pf.check_concurrency(config(), stubbed_lambda(10, 10), out)
    assert [f.ok for f in out] == [True]


# --- network ---------------------------------------------------------------------------------------------


def _vpc(ec2, *, dns_hostnames: bool = True) -> dict[str, Any]:
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": dns_hostnames})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    group = ec2.create_security_group(GroupName="fn", Description="fn", VpcId=vpc_id)["GroupId"]
    return {"vpc": vpc_id, "subnets": subnets, "table": table, "group": group}


def _vpc_config(net, access: str, **extra: Any) -> dict[str, Any]:
    return {"subnetIds": net["subnets"], "securityGroupIds": [net["group"]], "serviceAccess": access, **extra}


def test_endpoints_need_the_subnets_route_tables_and_private_dns(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    net = _vpc(ec2, dns_hostnames=False)
    wrong = config(
        vpc=_vpc_config(net, "endpoints", vpcId=net["vpc"], routeTableIds=["rtb-0123456789abcdef0"])
    )
    out = pf.Findings()
    pf.check_network(wrong, ec2, out)
    (tables,) = failures(out, "vpc.routeTableIds")
    assert f"the subnets use the route tables {net['table']}" in tables
    (dns,) = failures(out, "vpc.vpcId")
    assert "enableDnsHostnames off" in dns
    assert "--enable-dns-hostnames" in dns

    ec2.modify_vpc_attribute(VpcId=net["vpc"], EnableDnsHostnames={"Value": True})
    right = config(vpc=_vpc_config(net, "endpoints", vpcId=net["vpc"], routeTableIds=[net["table"]]))
    out = pf.Findings()
    pf.check_network(right, ec2, out)
    assert all(f.ok for f in out), out


def test_nat_needs_a_default_route_to_a_nat_gateway(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    net = _vpc(ec2)
    out = pf.Findings()
    pf.check_network(config(vpc=_vpc_config(net, "nat")), ec2, out)
    messages = failures(out, "vpc.serviceAccess")
    assert len(messages) == 2
    assert "no 0.0.0.0/0 route to a NAT gateway" in messages[0]
    assert "set vpc.serviceAccess to 'endpoints'" in messages[0]

    public = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.9.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=net["table"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    out = pf.Findings()
    pf.check_network(config(vpc=_vpc_config(net, "nat")), ec2, out)
    assert all(f.ok for f in out), out


def test_existing_endpoints_must_cover_the_services_the_stage_uses(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    net = _vpc(ec2)
    ec2.create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[net["table"]],
    )
    topic = f"arn:aws:sns:{REGION}:123456789012:summaries"
    out = pf.Findings()
    pf.check_network(config(vpc=_vpc_config(net, "existingEndpoints"), summaryTopicArn=topic), ec2, out)
    (message,) = failures(out, "vpc.serviceAccess")
    assert (
        "no an interface endpoint for sns with private DNS" in message
        or "interface endpoint for sns" in message
    )

    ec2.create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName=f"com.amazonaws.{REGION}.sns",
        VpcEndpointType="Interface",
        SubnetIds=net["subnets"],
        PrivateDnsEnabled=True,
    )
    out = pf.Findings()
    pf.check_network(config(vpc=_vpc_config(net, "existingEndpoints"), summaryTopicArn=topic), ec2, out)
    assert all(f.ok for f in out), out


# --- keys, secret, topic, runtime ------------------------------------------------------------------------


def test_keys_must_exist_be_enabled_and_symmetric(aws):
    kms = boto3.client("kms", region_name=REGION)
    good = kms.create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    disabled_key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=disabled_key["KeyId"])
    disabled = disabled_key["Arn"]
    topic = f"arn:aws:sns:{REGION}:123456789012:summaries"
    out = pf.Findings()
    pf.check_keys(
        config(kmsKeyArn=good, summaryTopicArn=topic, summaryTopicKmsKeyArn=disabled), kms, REGION, out
    )
    assert not failures(out, "kmsKeyArn")
    (message,) = failures(out, "summaryTopicKmsKeyArn")
    assert "the key is Disabled" in message

    missing = good.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    out = pf.Findings()
    pf.check_keys(config(kmsKeyArn=missing), kms, REGION, out)
    assert "DescribeKey failed" in failures(out, "kmsKeyArn")[0]


def test_the_secret_and_the_topic_must_exist(aws):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    arn = secrets.create_secret(Name="db", SecretString="postgresql://u:p@h/db")["ARN"]
    topic = sns.create_topic(Name="summaries")["TopicArn"]
    out = pf.Findings()
    pf.check_secret_and_topic(config(database={"secretArn": arn}, summaryTopicArn=topic), secrets, sns, out)
    assert all(f.ok for f in out)

    gone = arn[:-6] + "zzzzzz"
    out = pf.Findings()
    pf.check_secret_and_topic(
        config(database={"secretArn": gone}, summaryTopicArn=topic + "-gone"), secrets, sns, out
    )
    assert "create the secret" in failures(out, "database.secretArn")[0]
    assert "create the topic" in failures(out, "summaryTopicArn")[0]


def test_the_runtime_is_offered_and_not_deprecated(aws):
    ssm = boto3.client("ssm", region_name=REGION)
    out = pf.Findings()
    pf.check_runtime(config(runtime="python3.13"), ssm, REGION, TODAY, out)
    assert [f.ok for f in out] == [True]
    out = pf.Findings()
    pf.check_runtime(config(runtime="python3.12"), ssm, REGION, dt.date(2029, 1, 1), out)
    assert "deprecated since 2028-10-31" in failures(out, "runtime")[0]


def test_a_region_without_lambda_fails():
    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(ssm)
    stub.add_client_error("get_parameter", "ParameterNotFound", http_status_code=400)
    stub.activate()
    out = pf.Findings()
    pf.check_runtime(config(), ssm, REGION, TODAY, out)
    assert "Lambda is not offered" in failures(out, "runtime")[0]


def test_the_whole_preflight_of_a_clean_stack_passes(aws):
    findings = pf.preflight(config(), Session(**{"lambda": stubbed_lambda(1000, 1000)}), REGION, today=TODAY)
    assert all(f.ok for f in findings), findings


def test_the_prod_stack_file_loads_with_its_region():
    cfg, region = pf.load("prod", None)
    assert region == "eu-west-1"
    assert cfg.vpc is not None
    assert cfg.vpc.service_access == "endpoints"


def test_the_command_is_wired(monkeypatch, capsys):
    from devtools.__main__ import main

    called = {}
    monkeypatch.setattr(pf, "main", lambda argv: called.setdefault("argv", argv) and 0)
    main(["preflight", "--stack", "prod"])
    assert called["argv"] == ["--stack", "prod"]


def test_a_vpc_the_stack_creates_needs_no_network_check():
    out = pf.Findings()
    pf.check_network(config(vpc={"create": {"availabilityZones": ["eu-west-1a", "eu-west-1b"]}}), None, out)
    assert [(f.key, f.ok) for f in out] == [("data-pipeline:vpc.create", True)]


def test_database_create_needs_subnets_in_two_zones(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    net = _vpc(ec2)
    one_zone = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.7.0/24", AvailabilityZone=f"{REGION}a")
    vpc = {
        "subnetIds": [net["subnets"][0], one_zone["Subnet"]["SubnetId"]],
        "securityGroupIds": [net["group"]],
        "serviceAccess": "nat",
        "vpcId": net["vpc"],
    }
    out = pf.Findings()
    pf.check_network(config(vpc=vpc, database={"create": True}), ec2, out)
    assert "at least two availability zones" in failures(out, "vpc.subnetIds")[0]


# --- the database's IAM authentication -------------------------------------------------------------------


def _owned(**create: Any):
    net = {
        "subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"],
        "securityGroupIds": ["sg-0c3d4e5f607182930"],
        "serviceAccess": "nat",
        "vpcId": "vpc-0d4e5f60718293a4b",
    }
    return config(vpc=net, database={"create": create or True})


def _instance(rds: Any, identifier: str, *, iam: bool) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="pipeline_admin",
        MasterUserPassword="not-a-real-one",
        AllocatedStorage=20,
        EnableIAMDatabaseAuthentication=iam,
    )


def test_an_existing_instance_without_iam_auth_fails_unless_applied_immediately(aws):
    rds = boto3.client("rds", region_name=REGION)
    cfg = _owned()
    _instance(rds, cfg.resource_prefix.lower(), iam=False)
    (message,) = failures(findings_of(pf.check_database_auth, cfg, rds), "database.create.applyImmediately")
    assert "next maintenance window" in message
    assert "--enable-iam-database-authentication --apply-immediately" in message
    now = findings_of(pf.check_database_auth, _owned(applyImmediately=True), rds)
    assert [f.ok for f in now] == [True]


def test_an_instance_with_iam_auth_or_none_yet_passes(aws):
    rds = boto3.client("rds", region_name=REGION)
    cfg = _owned()
    assert [f.ok for f in findings_of(pf.check_database_auth, cfg, rds)] == [True]  # created by this up
    _instance(rds, cfg.resource_prefix.lower(), iam=True)
    (found,) = findings_of(pf.check_database_auth, cfg, rds)
    assert found.ok
    assert "is on" in found.message
