"""Preflight with `vpc.serviceAccess: endpoints` and `vpc.vpcId`/`vpc.routeTableIds` left unset, on moto: the
checks pass and name the VPC and the route tables the stack will look up (each subnet's explicit table, else
the VPC's main table)."""

from __future__ import annotations

from typing import Any

import boto3
from test_ops_preflight import REGION, _vpc, aws, config, failures  # noqa: F401 (aws: the moto fixture)

from devtools.ops import preflight as pf


def _network(ec2: Any) -> dict[str, Any]:
    """Two subnets in two zones: the first on a table of its own, the second back on the VPC's main table."""
    net = _vpc(ec2)
    (own,) = ec2.describe_route_tables(RouteTableIds=[net["table"]])["RouteTables"]
    (second,) = [a for a in own["Associations"] if a.get("SubnetId") == net["subnets"][1]]
    ec2.disassociate_route_table(AssociationId=second["RouteTableAssociationId"])
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])["RouteTables"]
    (main,) = [t["RouteTableId"] for t in tables if any(a.get("Main") for a in t.get("Associations", []))]
    return {**net, "own": net["table"], "main": main}


def _endpoints(net: dict[str, Any], **extra: Any) -> Any:
    return config(
        vpc={
            "subnetIds": net["subnets"],
            "securityGroupIds": [net["group"]],
            "serviceAccess": "endpoints",
            **extra,
        }
    )


def test_unset_vpc_and_route_tables_pass_and_name_what_the_stack_will_use(aws):  # noqa: F811
    ec2 = boto3.client("ec2", region_name=REGION)
    net = _network(ec2)
    out = pf.Findings()
    pf.check_network(_endpoints(net), ec2, out)
    assert all(f.ok for f in out), out
    found = {f.key.removeprefix("data-pipeline:"): f.message for f in out}
    assert net["vpc"] in found["vpc.vpcId"]
    assert found["vpc.routeTableIds"].startswith("unset:")
    assert net["own"] in found["vpc.routeTableIds"]
    assert net["main"] in found["vpc.routeTableIds"]


def test_route_tables_set_without_the_main_table_of_a_subnet_on_it_fail(aws):  # noqa: F811
    ec2 = boto3.client("ec2", region_name=REGION)
    net = _network(ec2)
    out = pf.Findings()
    pf.check_network(_endpoints(net, vpcId=net["vpc"], routeTableIds=[net["own"]]), ec2, out)
    (message,) = failures(out, "vpc.routeTableIds")
    assert net["main"] in message
