"""VPC settings: the analytics function's subnets and security groups and how it reaches AWS's services, or
a VPC the stack creates (`vpc.create`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from components.config.collector import Collector
from components.config.model import Vpc, VpcCreate
from components.config.schema import (
    ROUTE_TABLE_ID,
    SECURITY_GROUP_ID,
    SERVICE_ACCESS_ENDPOINTS,
    SERVICE_ACCESS_EXISTING,
    SERVICE_ACCESS_MODES,
    SERVICE_ACCESS_NAT,
    SUBNET_ID,
    VPC_ID,
)


def vpc_settings(c: Collector, value: Any, needs_vpc_id: bool = False) -> Vpc | None:
    """`needs_vpc_id`: the stack creates a database in the VPC (database.create), whose security group goes in
    `vpc.vpcId` whatever `vpc.serviceAccess` is (the subnets' VPC when it is unset)."""
    raw = c.mapping("vpc", value)
    if not raw:
        return None
    if "create" in raw:
        return _vpc_create(c, raw)
    subnets = c.string_list(
        "vpc.subnetIds", raw.get("subnetIds"), SUBNET_ID.match, "a subnet ID (subnet-...)"
    )
    groups = c.string_list(
        "vpc.securityGroupIds",
        raw.get("securityGroupIds"),
        SECURITY_GROUP_ID.match,
        "a security group ID (sg-...)",
    )
    for name, got in (("subnetIds", subnets), ("securityGroupIds", groups)):
        if name not in raw:
            c.fail(f"vpc.{name}", "is required when vpc is set")
        elif got is not None and len(got) > (16 if name == "subnetIds" else 5):
            c.fail(f"vpc.{name}", "Lambda allows at most 16 subnets and 5 security groups")
    access = raw.get("serviceAccess")
    how = (
        f"'{SERVICE_ACCESS_ENDPOINTS}' (the stack creates an S3 gateway endpoint on vpc.routeTableIds and "
        f"interface endpoints for Secrets Manager and SNS in vpc.vpcId), '{SERVICE_ACCESS_NAT}' (the "
        f"subnets already route to a NAT gateway) or '{SERVICE_ACCESS_EXISTING}' (the VPC already has "
        "those endpoints, with private DNS)"
    )
    if access is None:
        # Without a path, every invocation in the VPC hangs until its timeout and the event ends in the
        # failure queue: refuse the config instead.
        c.fail(
            "vpc.serviceAccess",
            "is required when vpc is set: a function in private subnets reaches S3, Secrets Manager and SNS "
            f"only through a NAT gateway or VPC endpoints; set it to {how}, e.g. "
            f"`pulumi config set --path vpc.serviceAccess {SERVICE_ACCESS_ENDPOINTS}`",
        )
    elif access not in SERVICE_ACCESS_MODES:
        c.fail("vpc.serviceAccess", f"{c.show('vpc.serviceAccess', access)} is not allowed; set it to {how}")
        access = None
    vpc_id = c.string("vpc.vpcId", raw.get("vpcId"), VPC_ID, "a VPC ID (vpc-...)")
    route_tables = c.string_list(
        "vpc.routeTableIds", raw.get("routeTableIds"), ROUTE_TABLE_ID.match, "a route table ID (rtb-...)"
    )
    # With `endpoints`, an unset vpc.vpcId is the subnets' VPC and unset vpc.routeTableIds are the subnets'
    # route tables, both looked up at deploy time (components.network.subnet_vpc, subnet_route_tables).
    if access is not None and access != SERVICE_ACCESS_ENDPOINTS:
        for name in ("routeTableIds",) if "vpcId" in raw and needs_vpc_id else ("vpcId", "routeTableIds"):
            if name in raw:
                c.fail(
                    f"vpc.{name}",
                    f"is used only when vpc.serviceAccess is '{SERVICE_ACCESS_ENDPOINTS}'; remove it",
                )
    if subnets is None or groups is None or access is None:
        return None
    return Vpc(
        subnet_ids=subnets,
        security_group_ids=groups,
        service_access=access,
        vpc_id=vpc_id,
        route_table_ids=route_tables or (),
    )


def _vpc_create(c: Collector, raw: Mapping[str, Any]) -> Vpc | None:
    """`vpc.create`: `{availabilityZones: [two zones], cidr}`; the stack owns the VPC and its endpoints."""
    given = [name for name in ("subnetIds", "securityGroupIds", "vpcId", "routeTableIds") if name in raw]
    for name in given:
        c.fail(f"vpc.{name}", "is set by the stack with vpc.create; remove it")
    access = raw.get("serviceAccess", SERVICE_ACCESS_ENDPOINTS)
    if access != SERVICE_ACCESS_ENDPOINTS:
        c.fail(
            "vpc.serviceAccess",
            f"must be '{SERVICE_ACCESS_ENDPOINTS}' (or unset) with vpc.create: the VPC it creates has no NAT",
        )
    value = raw.get("create")
    if not isinstance(value, Mapping):
        c.fail("vpc.create", "is an object: {availabilityZones: [<zone>, <zone>], cidr: <IPv4 range>}")
        return None
    c.check_keys("vpc.create", value, ("availabilityZones", "cidr"))
    zones = c.string_list(
        "vpc.create.availabilityZones",
        value.get("availabilityZones"),
        lambda z: bool(re.match(r"^[a-z]{2}(?:-[a-z]+)+-\d[a-z]$", z)),
        "an availability zone name such as eu-west-1a",
    )
    if "availabilityZones" not in value:
        c.fail(
            "vpc.create.availabilityZones",
            "is required: two zones of the stack's region, e.g. [eu-west-1a, eu-west-1b]",
        )
    elif zones is not None and len(zones) != 2:
        c.fail("vpc.create.availabilityZones", "name exactly two zones (RDS needs two)")
        zones = None
    cidr = value.get("cidr", VpcCreate.cidr)
    try:
        network = ipaddress.ip_network(cidr) if isinstance(cidr, str) else None
    except ValueError:
        network = None
    if network is None or network.version != 4 or not 16 <= network.prefixlen <= 22:
        c.fail("vpc.create.cidr", f"{c.show('vpc.create.cidr', cidr)} is not an IPv4 range from /16 to /22")
        return None
    if zones is None or given or access != SERVICE_ACCESS_ENDPOINTS:
        return None
    return Vpc(
        subnet_ids=(),
        security_group_ids=(),
        service_access=SERVICE_ACCESS_ENDPOINTS,
        create=VpcCreate(availability_zones=(zones[0], zones[1]), cidr=str(network)),
    )
