"""The VPC checks: the subnets, their route tables and zones, DNS, and how the functions reach AWS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from components.config import (
    SERVICE_ACCESS_ENDPOINTS,
    SERVICE_ACCESS_EXISTING,
    SERVICE_ACCESS_NAT,
    PipelineConfig,
)
from components.network import S3, services_used
from components.stage_table import STAGE_TABLE
from devtools.ops.preflight.findings import Findings, error_code


def route_tables_of(ec2: Any, vpc_id: str, subnet_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """subnet -> its route table: the one explicitly associated, else the VPC's main table."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    explicit = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    return {s: t for s in subnet_ids if (t := explicit.get(s, main)) is not None}


def check_network(cfg: PipelineConfig, ec2: Any, out: Findings) -> None:
    vpc = cfg.vpc
    if vpc is None:
        return
    if vpc.create is not None:
        out.ok("vpc.create", "the stack creates the VPC, its subnets and the endpoints: nothing to check")
        return
    try:
        subnets = ec2.describe_subnets(SubnetIds=list(vpc.subnet_ids))["Subnets"]
    except ClientError as error:
        out.fail("vpc.subnetIds", f"{error_code(error)}: {error}; name subnets of this account and region")
        return
    vpc_ids = {s["VpcId"] for s in subnets}
    if len(vpc_ids) != 1:
        out.fail("vpc.subnetIds", f"the subnets are in {len(vpc_ids)} VPCs; name subnets of one VPC")
        return
    (vpc_id,) = vpc_ids
    zones = [s["AvailabilityZone"] for s in subnets]
    if len(set(zones)) < len(zones) and vpc.service_access == SERVICE_ACCESS_ENDPOINTS:
        out.fail(
            "vpc.subnetIds",
            "two subnets share an availability zone, and an interface endpoint takes one subnet per zone: "
            "keep one subnet per zone",
        )
    elif cfg.database is not None and cfg.database.create is not None and len(set(zones)) < 2:
        out.fail(
            "vpc.subnetIds",
            "database.create needs subnets in at least two availability zones (an RDS subnet group does): "
            "add a subnet in another zone",
        )
    else:
        out.ok("vpc.subnetIds", f"{len(subnets)} subnets in {vpc_id}, zones {', '.join(sorted(set(zones)))}")
    tables = route_tables_of(ec2, vpc_id, vpc.subnet_ids)
    stage = next(s for s in STAGE_TABLE if s.needs.vpc)
    services = services_used(
        database=cfg.database is not None and stage.needs.database,
        summary_topic=cfg.summary_topic_arn is not None and stage.needs.summary_topic,
    )
    if vpc.service_access == SERVICE_ACCESS_ENDPOINTS:
        if vpc.vpc_id is None:
            out.ok("vpc.vpcId", f"unset: the stack creates the endpoints in the subnets' VPC, {vpc_id}")
        elif vpc.vpc_id != vpc_id:
            out.fail("vpc.vpcId", f"is {vpc.vpc_id} but the subnets are in {vpc_id}: set it to {vpc_id}")
        wanted = sorted({t["RouteTableId"] for t in tables.values()})
        if not vpc.route_table_ids:
            # The program looks up the same tables (components.network.subnet_route_tables).
            out.ok(
                "vpc.routeTableIds",
                "unset: the stack adds the S3 gateway endpoint to the subnets' route tables, "
                + ", ".join(wanted),
            )
        elif sorted(vpc.route_table_ids) != wanted:
            out.fail(
                "vpc.routeTableIds",
                f"the subnets use the route tables {', '.join(wanted)}: set exactly these, or the S3 gateway "
                "endpoint misses a subnet",
            )
        else:
            out.ok("vpc.routeTableIds", f"the subnets' route tables: {', '.join(wanted)}")
        for attribute, field, flag in (
            ("enableDnsSupport", "EnableDnsSupport", "--enable-dns-support"),
            ("enableDnsHostnames", "EnableDnsHostnames", "--enable-dns-hostnames"),
        ):
            if not ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[field]["Value"]:
                out.fail(
                    "vpc.vpcId",
                    f"{vpc_id} has {attribute} off, and interface endpoints with private DNS need it: "
                    f"`aws ec2 modify-vpc-attribute --vpc-id {vpc_id} {flag}`",
                )
        return
    if vpc.service_access == SERVICE_ACCESS_NAT:
        for subnet in vpc.subnet_ids:
            routes = tables.get(subnet, {}).get("Routes", [])
            if any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId") for r in routes):
                out.ok("vpc.serviceAccess", f"{subnet} routes 0.0.0.0/0 to a NAT gateway")
            else:
                out.fail(
                    "vpc.serviceAccess",
                    f"{subnet} has no 0.0.0.0/0 route to a NAT gateway, so the function cannot reach "
                    f"{', '.join(services)}: add the route, or set vpc.serviceAccess to 'endpoints'",
                )
        return
    if vpc.service_access == SERVICE_ACCESS_EXISTING:
        endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "VpcEndpoints"
        ]
        endpoints = [e for e in endpoints if e.get("State", "available").lower() == "available"]
        for service in services:
            name_end = f".{service}"
            found = [e for e in endpoints if e["ServiceName"].endswith(name_end)]
            if service == S3:
                table_ids = {t["RouteTableId"] for t in tables.values()}
                usable = any(
                    e["VpcEndpointType"] == "Gateway" and table_ids <= set(e.get("RouteTableIds", []))
                    for e in found
                ) or any(e["VpcEndpointType"] == "Interface" and e.get("PrivateDnsEnabled") for e in found)
            else:
                usable = any(
                    e["VpcEndpointType"] == "Interface" and e.get("PrivateDnsEnabled") for e in found
                )
            if usable:
                out.ok("vpc.serviceAccess", f"{vpc_id} has an endpoint for {service}")
            else:
                what = (
                    "S3 gateway endpoint on the subnets' route tables"
                    if service == S3
                    else f"interface endpoint for {service} with private DNS"
                )
                out.fail(
                    "vpc.serviceAccess",
                    f"{vpc_id} has no {what}: create it, or set vpc.serviceAccess to 'endpoints' to have the "
                    "stack create the endpoints",
                )
