"""`vpc.create`: the stack builds a minimal VPC (components/network.py `PrivateNetwork`): private subnets in
two zones, no NAT, endpoints for AWS's services, and the analytics function and database placed in it."""

from __future__ import annotations

import pytest
from component_support import stage_child

from components.config import ConfigError, parse_config
from handlers.contract import Stage

ZONES = ["eu-west-1a", "eu-west-1b"]
CREATE = {"create": {"availabilityZones": ZONES}}


@pytest.fixture(scope="module")
def created(evaluate):
    return evaluate("prod-owned", {"vpc": CREATE})


def created_subnets(stack):
    """The subnets in the order the config lists their zones: resources register concurrently under the
    mocks, so two siblings can reach the monitor in either order when the machine is busy."""
    return sorted(stack.by_type("aws:ec2/subnet:Subnet"), key=lambda s: s.inputs["availabilityZone"])


def test_a_vpc_with_dns_two_private_subnets_and_no_way_out(created):
    (vpc,) = created.by_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.42.0.0/16"
    assert (vpc.inputs["enableDnsSupport"], vpc.inputs["enableDnsHostnames"]) == (True, True)
    subnets = created_subnets(created)
    assert [(s.inputs["availabilityZone"], s.inputs["cidrBlock"]) for s in subnets] == [
        ("eu-west-1a", "10.42.0.0/18"),
        ("eu-west-1b", "10.42.64.0/18"),
    ]
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    (table,) = created.by_type("aws:ec2/routeTable:RouteTable")
    assert not table.inputs.get("routes")
    for kind in ("natGateway", "internetGateway", "eip"):
        assert not [r for r in created.resources if kind in r.type]


def test_the_function_database_and_endpoints_use_the_created_network(created):
    (vpc,) = created.by_type("aws:ec2/vpc:Vpc")
    subnets = [s.id for s in created_subnets(created)]
    (table,) = created.by_type("aws:ec2/routeTable:RouteTable")
    (functions_sg,) = [
        g for g in created.by_type("aws:ec2/securityGroup:SecurityGroup") if "functions" in g.name
    ]
    function = stage_child(created, Stage.ANALYTICS, "aws:lambda/function:Function")
    assert function.inputs["vpcConfig"] == {"subnetIds": subnets, "securityGroupIds": [functions_sg.id]}
    (gateway,) = [
        e
        for e in created.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Gateway"
    ]
    assert (gateway.inputs["vpcId"], gateway.inputs["routeTableIds"]) == (vpc.id, [table.id])
    (group,) = created.by_type("aws:rds/subnetGroup:SubnetGroup")
    assert group.inputs["subnetIds"] == subnets
    rules = created.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert {r.inputs["referencedSecurityGroupId"] for r in rules} == {functions_sg.id}
    # the role may place the function in exactly those subnets and that group
    statements = {s["Sid"]: s for s in created.role_policies()[Stage.ANALYTICS]["Statement"]}
    resources = statements["CreateNetworkInterfaces"]["Resource"]
    assert resources[1:] == [
        *(f"arn:aws:ec2:eu-west-1:*:subnet/{s}" for s in subnets),
        f"arn:aws:ec2:eu-west-1:*:security-group/{functions_sg.id}",
    ]


def _problems(vpc):
    with pytest.raises(ConfigError) as raised:
        parse_config({"vpc": vpc}, project="data-pipeline", stack="prod")
    return {p.key: p.message for p in raised.value.problems}


def test_vpc_create_refuses_ids_and_nat_and_needs_two_zones():
    problems = _problems(
        {
            "create": {"availabilityZones": ["eu-west-1a"]},
            "subnetIds": ["subnet-0a1b2c3d"],
            "serviceAccess": "nat",
        }
    )
    assert "name exactly two zones" in problems["data-pipeline:vpc.create.availabilityZones"]
    assert "is set by the stack with vpc.create" in problems["data-pipeline:vpc.subnetIds"]
    assert "has no NAT" in problems["data-pipeline:vpc.serviceAccess"]
    assert "is required" in _problems({"create": {}})["data-pipeline:vpc.create.availabilityZones"]
    assert (
        "from /16 to /22"
        in _problems({"create": {"availabilityZones": ZONES, "cidr": "10.0.0.0/28"}})[
            "data-pipeline:vpc.create.cidr"
        ]
    )
