"""The network the pipeline's VPC stages run in: the VPC the stack creates (`vpc.create`), the IDs left unset
looked up, and the service endpoints those stages reach AWS through (`vpc.serviceAccess: endpoints`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi

from components import config
from components.component import Component
from components.config import PipelineConfig, Vpc
from components.network import (
    PrivateNetwork,
    PrivateNetworkArgs,
    ServiceEndpoints,
    ServiceEndpointsArgs,
    services_used,
    subnet_route_tables,
    subnet_vpc,
)
from components.stage_table import StageDescription


def declare_network(owner: Component, cfg: PipelineConfig) -> tuple[PrivateNetwork | None, Vpc | None]:
    """The VPC `vpc.create` asks for (None otherwise), and the VPC settings the rest of the program uses:
    the created resources' IDs as if configured, or the config's own."""
    if cfg.vpc is None or cfg.vpc.create is None:
        return None, cfg.vpc
    network = PrivateNetwork(
        "network",
        PrivateNetworkArgs(
            cidr=cfg.vpc.create.cidr,
            subnets=tuple(zip(cfg.vpc.create.availability_zones, cfg.vpc.create.subnet_cidrs(), strict=True)),
            name_prefix=cfg.resource_prefix,
        ),
        opts=owner.child_opts,
    )
    return network, dataclasses.replace(
        cfg.vpc,
        subnet_ids=tuple(subnet.id for subnet in network.subnets),
        security_group_ids=(network.function_security_group.id,),
        vpc_id=network.vpc.id,
        route_table_ids=(network.route_table.id,),
    )


def creates_endpoints(vpc_cfg: Vpc | None, in_vpc: Sequence[StageDescription]) -> bool:
    """Whether the stack creates service endpoints: `vpc.serviceAccess: endpoints`, and a stage in the VPC."""
    return vpc_cfg is not None and vpc_cfg.service_access == config.SERVICE_ACCESS_ENDPOINTS and bool(in_vpc)


def looked_up(vpc_cfg: Vpc | None, *, endpoints: bool, database: bool) -> Vpc | None:
    """`vpc_cfg` with the IDs the endpoints or a created database need and the config left unset: the VPC and
    the route tables are the subnets' own, looked up (docs/configuration.md)."""
    if vpc_cfg is not None and vpc_cfg.vpc_id is None and (endpoints or database):
        vpc_cfg = dataclasses.replace(vpc_cfg, vpc_id=subnet_vpc(vpc_cfg.subnet_ids[0]))
    if vpc_cfg is not None and endpoints and not vpc_cfg.route_table_ids:
        vpc_cfg = dataclasses.replace(
            vpc_cfg, route_table_ids=subnet_route_tables(vpc_cfg.vpc_id, vpc_cfg.subnet_ids)
        )
    return vpc_cfg


def declare_service_endpoints(
    owner: Component,
    cfg: PipelineConfig,
    vpc_cfg: Vpc,
    in_vpc: Sequence[StageDescription],
    has_database: bool,
    region: pulumi.Input[str],
) -> ServiceEndpoints:
    """The endpoints of the services the stages in the VPC use: S3, and Secrets Manager and SNS when
    `has_database` and a summary topic make those stages call them."""
    assert vpc_cfg.vpc_id is not None  # configured, created or looked up
    return ServiceEndpoints(
        "service-endpoints",
        ServiceEndpointsArgs(
            vpc_id=vpc_cfg.vpc_id,
            subnet_ids=vpc_cfg.subnet_ids,
            route_table_ids=vpc_cfg.route_table_ids,
            client_security_group_ids=vpc_cfg.security_group_ids,
            services=services_used(
                database=has_database and any(s.needs.database for s in in_vpc),
                summary_topic=cfg.summary_topic_arn is not None
                and any(s.needs.summary_topic for s in in_vpc),
            ),
            region=region,
            name_prefix=cfg.resource_prefix,
        ),
        opts=owner.child_opts,
    )
