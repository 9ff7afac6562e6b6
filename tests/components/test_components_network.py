"""`ServiceEndpoints` and `vpc.serviceAccess`: a function in private subnets has a path to S3, Secrets Manager
and SNS, either endpoints the stack creates or a NAT/endpoints the user states; a VPC config stating neither
is refused."""

from __future__ import annotations

import pytest
from component_support import stage_child

from components.config import ConfigError, parse_config
from components.network import services_used
from devtools.harness.mocks import has_own_route_table, main_route_table, mock_vpc_id, own_route_table
from handlers.contract import Stage

ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
COMPONENT = "data-pipeline:network:ServiceEndpoints"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"]
GROUPS = ["sg-0c3d4e5f607182930"]
SECRET = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:data-pipeline/prod/database-AbCdEf"


def _endpoints(stack) -> dict[str, dict]:
    return {e.inputs["serviceName"].rsplit(".", 1)[1]: e.inputs for e in stack.by_type(ENDPOINT)}


def test_prod_creates_an_s3_gateway_and_private_dns_interfaces_for_what_analytics_calls(prod_stack):
    endpoints = _endpoints(prod_stack)
    # prod's analytics has a database secret and a summary topic: S3, Secrets Manager and SNS
    assert set(endpoints) == {"s3", "secretsmanager", "sns"}
    region = prod_stack.config["aws:region"]
    assert {e["serviceName"] for e in endpoints.values()} == {
        f"com.amazonaws.{region}.{s}" for s in ("s3", "secretsmanager", "sns")
    }
    s3 = endpoints["s3"]
    assert s3["vpcEndpointType"] == "Gateway"
    assert s3["vpcId"] == "vpc-0d4e5f60718293a4b"
    assert s3["routeTableIds"] == ["rtb-0e5f60718293a4b5c", "rtb-0f60718293a4b5c6d"]
    (group,) = prod_stack.by_type(SECURITY_GROUP)
    assert group.inputs["vpcId"] == "vpc-0d4e5f60718293a4b"
    assert not group.inputs.get("ingress")  # rules are separate resources, below
    for service in ("secretsmanager", "sns"):
        interface = endpoints[service]
        assert interface["vpcEndpointType"] == "Interface"
        assert interface["privateDnsEnabled"] is True
        assert interface["subnetIds"] == SUBNETS
        assert interface["securityGroupIds"] == [group.id]


def test_interface_endpoints_admit_https_from_the_functions_security_groups_only(prod_stack):
    (group,) = prod_stack.by_type(SECURITY_GROUP)
    rules = prod_stack.by_type(INGRESS)
    assert [
        (r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"], r.inputs["ipProtocol"])
        for r in rules
    ] == [(group.id, GROUPS[0], "tcp")]
    assert (rules[0].inputs["fromPort"], rules[0].inputs["toPort"]) == (443, 443)
    assert "cidrIpv4" not in rules[0].inputs
    # AND each interface endpoint is created after the rules that let the function in
    for endpoint in prod_stack.by_type(ENDPOINT):
        if endpoint.inputs["vpcEndpointType"] == "Interface":
            assert {r.urn for r in rules} <= set(endpoint.depends_on)


def test_nothing_invokes_analytics_before_its_endpoints_exist(prod_stack):
    endpoint_urns = {r.urn for r in prod_stack.by_type(ENDPOINT)}
    (migration,) = prod_stack.by_type("aws:lambda/invocation:Invocation")
    assert endpoint_urns <= set(migration.depends_on)
    function = stage_child(prod_stack, Stage.ANALYTICS, "aws:lambda/function:Function")
    assert migration.inputs["functionName"] == function.outputs["name"]


def test_dev_without_a_vpc_creates_no_endpoints(dev_stack):
    assert not dev_stack.by_type(ENDPOINT)
    assert not [r for r in dev_stack.resources if r.type == COMPONENT]


@pytest.mark.parametrize("access", ["nat", "existingEndpoints"])
def test_a_stated_nat_or_existing_endpoints_creates_none(evaluate, access):
    stack = evaluate(
        "prod", {"vpc": {"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "serviceAccess": access}}
    )
    assert not stack.by_type(ENDPOINT)
    assert not stack.by_type(SECURITY_GROUP)
    vpc = stage_child(stack, Stage.ANALYTICS, "aws:lambda/function:Function").inputs["vpcConfig"]
    assert vpc == {"subnetIds": SUBNETS, "securityGroupIds": GROUPS}


def test_endpoints_follow_what_the_stage_uses(evaluate):
    # GIVEN a VPC stack without a summary topic
    stack = evaluate("prod", {"summaryTopicArn": None})
    # THEN no SNS endpoint is created
    assert set(_endpoints(stack)) == {"s3", "secretsmanager"}
    assert services_used(database=False, summary_topic=False) == ("s3",)


def test_only_s3_needs_no_security_group(evaluate):
    stack = evaluate("prod", {"summaryTopicArn": None, "database": None})
    assert set(_endpoints(stack)) == {"s3"}
    assert not stack.by_type(SECURITY_GROUP)
    assert not stack.by_type(INGRESS)


def _problems(vpc: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        parse_config({"vpc": vpc}, project="data-pipeline", stack="prod")
    return {p.key: p.message for p in raised.value.problems}


def test_a_vpc_config_stating_no_path_to_aws_is_refused_with_the_fix():
    problems = _problems({"subnetIds": SUBNETS, "securityGroupIds": GROUPS})
    message = problems["data-pipeline:vpc.serviceAccess"]
    assert message.startswith("is required when vpc is set")
    assert "'endpoints'" in message
    assert "'nat'" in message
    assert "'existingEndpoints'" in message
    assert "pulumi config set --path vpc.serviceAccess endpoints" in message


def test_an_unknown_service_access_is_refused():
    problems = _problems({"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "serviceAccess": "internet"})
    assert problems["data-pipeline:vpc.serviceAccess"].startswith("'internet' is not allowed")


def test_endpoints_may_leave_the_vpc_and_its_route_tables_to_the_program():
    cfg = parse_config(
        {"vpc": {"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "serviceAccess": "endpoints"}},
        project="data-pipeline",
        stack="prod",
        region="eu-west-1",
    )
    assert cfg.vpc is not None
    assert (cfg.vpc.vpc_id, cfg.vpc.route_table_ids) == (None, ())


@pytest.fixture(scope="module")
def looked_up(evaluate):
    """prod with endpoints, its VPC and route tables left unset: the program looks them up."""
    return evaluate(
        "prod", {"vpc": {"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "serviceAccess": "endpoints"}}
    )


def test_an_unset_vpc_id_is_the_subnets_vpc(looked_up):
    vpc = mock_vpc_id("prod")
    assert _endpoints(looked_up)["s3"]["vpcId"] == vpc
    (group,) = looked_up.by_type(SECURITY_GROUP)
    assert group.inputs["vpcId"] == vpc


def test_unset_route_tables_are_each_subnets_own_table_or_else_the_main_table(looked_up):
    # under the mocks the first subnet has a table of its own and the second uses the VPC's main table
    assert (has_own_route_table(SUBNETS[0]), has_own_route_table(SUBNETS[1])) == (True, False)
    assert _endpoints(looked_up)["s3"]["routeTableIds"] == [
        own_route_table(SUBNETS[0]),
        main_route_table(mock_vpc_id("prod")),
    ]


def test_subnets_sharing_a_table_name_it_once(evaluate):
    shared = ["subnet-0a1b2c3d4e5f60719", "subnet-0b2c3d4e5f6071829"]  # both on the main table
    stack = evaluate(
        "prod", {"vpc": {"subnetIds": shared, "securityGroupIds": GROUPS, "serviceAccess": "endpoints"}}
    )
    assert _endpoints(stack)["s3"]["routeTableIds"] == [main_route_table(mock_vpc_id("prod"))]


def test_route_tables_and_vpc_id_only_with_endpoints():
    problems = _problems(
        {
            "subnetIds": SUBNETS,
            "securityGroupIds": GROUPS,
            "serviceAccess": "nat",
            "vpcId": "vpc-0d4e5f60718293a4b",
            "routeTableIds": ["rtb-0e5f60718293a4b5c"],
        }
    )
    assert set(problems) == {"data-pipeline:vpc.vpcId", "data-pipeline:vpc.routeTableIds"}


def test_ids_are_checked():
    problems = _problems(
        {
            "subnetIds": SUBNETS,
            "securityGroupIds": GROUPS,
            "serviceAccess": "endpoints",
            "vpcId": "vpc_1",
            "routeTableIds": ["rt-1"],
        }
    )
    assert "is not a VPC ID" in problems["data-pipeline:vpc.vpcId"]
    assert "a route table ID (rtb-...)" in problems["data-pipeline:vpc.routeTableIds"]


def test_database_secret_arn_is_passed_where_endpoints_are_declared():
    cfg = parse_config(
        {
            "database": {"secretArn": SECRET},
            "vpc": {
                "subnetIds": SUBNETS,
                "securityGroupIds": GROUPS,
                "serviceAccess": "endpoints",
                "vpcId": "vpc-0d4e5f60718293a4b",
                "routeTableIds": ["rtb-0e5f60718293a4b5c"],
            },
        },
        project="data-pipeline",
        stack="prod",
    )
    assert cfg.vpc is not None
    assert cfg.vpc.service_access == "endpoints"
    assert cfg.vpc.route_table_ids == ("rtb-0e5f60718293a4b5c",)
