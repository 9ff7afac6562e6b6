"""`ServiceEndpoints`: the VPC endpoints through which a stage in private subnets reaches AWS's services.

A Lambda function placed in a VPC has no route to the internet: without a NAT gateway or VPC endpoints, its
calls to S3, Secrets Manager and SNS hang until the function times out. With `vpc.serviceAccess: endpoints`
the stack creates, in `vpc.vpcId` (unset: the subnets' VPC, looked up with `subnet_vpc`):

- an S3 *gateway* endpoint added to `vpc.routeTableIds` (the subnets' route tables, looked up with
  `subnet_route_tables` when unset; gateway endpoints are free and are reached through a prefix-list route,
  so no security group is involved);
- one *interface* endpoint per other service the stages in the VPC use (Secrets Manager for the database
  secret, SNS for the summary topic), in `vpc.subnetIds`, with private DNS so the SDK's default endpoint
  names resolve to them;
- a security group on the interface endpoints admitting HTTPS (443) only from the functions' security groups
  (`vpc.securityGroupIds`).

What is left to the user, and documented in docs/configuration.md: the VPC must have DNS support and DNS
hostnames enabled (private DNS needs both), the functions' security groups must allow outbound 443 (the
default egress rule does), and an interface endpoint takes one subnet per availability zone.
`python -m devtools preflight` checks these before `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import ec2, vpc

from components.component import Component, Opts

# The services a stage may call, by the need that makes it call them (components.stage_table.Needs).
S3 = "s3"
SECRETS_MANAGER = "secretsmanager"
SNS = "sns"
HTTPS = 443


@dataclass(frozen=True)
class ServiceEndpointsArgs:
    """Inputs of a `ServiceEndpoints`."""

    vpc_id: pulumi.Input[str]
    """The VPC of the subnets (`vpc.vpcId`, or `subnet_vpc`)."""

    subnet_ids: tuple[str, ...]
    """Where the interface endpoints' network interfaces go (`vpc.subnetIds`), one per availability zone."""

    route_table_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The subnets' route tables, which get the S3 gateway endpoint's route (`vpc.routeTableIds`, or
    `subnet_route_tables`)."""

    client_security_group_ids: tuple[str, ...]
    """The functions' security groups (`vpc.securityGroupIds`): the only sources the endpoints admit."""

    services: tuple[str, ...]
    """The services the stages in the VPC call (`services_used`); S3 is a gateway, the others interfaces."""

    region: pulumi.Input[str]
    """The deployment region, part of every endpoint's service name."""

    name_prefix: str
    """`<project>-<stack>`: the security group's name prefix."""


def services_used(*, database: bool, summary_topic: bool) -> tuple[str, ...]:
    """The services a stage in the VPC calls: S3 always (it reads and writes its buckets), Secrets Manager
    with a database secret, SNS with a summary topic.

    KMS needs no endpoint: S3 and Secrets Manager call it on the function's behalf (`kms:ViaService`), and
    Lambda itself ships the function's logs and metrics (EMF), outside the VPC.
    """
    return (S3,) + ((SECRETS_MANAGER,) if database else ()) + ((SNS,) if summary_topic else ())


# The China regions (partition aws-cn) name some *interface* endpoint services
# `cn.com.amazonaws.<region>.<service>`; of the services a stage here calls, S3's interface service is one,
# Secrets Manager and SNS keep `com.amazonaws`. AWS lists a region's names with
# `aws ec2 describe-vpc-endpoint-services`; this table follows the AWS CDK's, kept from that listing
# (aws-cdk-lib/aws-ec2/lib/vpc-endpoint.ts, `getDefaultEndpointPrefix`). A *gateway* endpoint is named
# `com.amazonaws.<region>.<service>` in every partition (the CDK's `GatewayVpcEndpointAwsService` takes no
# regional prefix): S3's gateway in cn-north-1 is `com.amazonaws.cn-north-1.s3`.
CHINA_PREFIXED: dict[str, frozenset[str]] = {
    "cn-north-1": frozenset({S3}),
    "cn-northwest-1": frozenset({S3}),
}


def service_name(service: str, region: str, *, gateway: bool = False) -> str:
    """The endpoint service name of `service` in `region`: `com.amazonaws.<region>.<service>`, or for an
    interface endpoint `cn.com.amazonaws.<region>.<service>` where a China region names it so
    (`CHINA_PREFIXED`); a gateway endpoint keeps `com.amazonaws` everywhere."""
    prefixed = not gateway and service in CHINA_PREFIXED.get(region, frozenset())
    return f"{'cn.com.amazonaws' if prefixed else 'com.amazonaws'}.{region}.{service}"


def subnet_vpc(subnet_id: str) -> pulumi.Output[str]:
    """The VPC of `subnet_id` (`vpc.vpcId` left unset): pulumi-aws's `ec2.getSubnet` invoke."""
    return ec2.get_subnet_output(id=subnet_id).vpc_id


def subnet_route_tables(vpc_id: pulumi.Input[str], subnet_ids: Sequence[str]) -> pulumi.Output[list[str]]:
    """The route tables `subnet_ids` use (`vpc.routeTableIds` left unset), in subnet order without repeats:
    each subnet's explicitly associated table, else the VPC's main table, which "implicitly" serves every
    subnet without an association of its own (DescribeRouteTables filters `association.subnet-id` and
    `association.main`). pulumi-aws's `ec2.getRouteTables` returns no IDs, rather than failing, for a
    subnet without an explicit association; its singular `ec2.getRouteTable(subnet_id=...)` would fail."""
    main = ec2.get_route_table_output(
        vpc_id=vpc_id, filters=[{"name": "association.main", "values": ["true"]}]
    ).route_table_id
    explicit = [
        ec2.get_route_tables_output(filters=[{"name": "association.subnet-id", "values": [subnet]}]).ids
        for subnet in subnet_ids
    ]

    def tables(found: list[Any]) -> list[str]:
        main_table, *per_subnet = found
        return list(dict.fromkeys(table for ids in per_subnet for table in (ids or [main_table])))

    return pulumi.Output.all(main, *explicit).apply(tables)


def ingress_from(
    name: str,
    security_group: ec2.SecurityGroup,
    sources: Sequence[pulumi.Input[str]],
    port: int,
    description: Callable[[pulumi.Input[str]], str],
    opts: pulumi.ResourceOptions,
) -> list[vpc.SecurityGroupIngressRule]:
    """The only way into `security_group`: TCP `port` from each of the `sources` security groups, one rule
    each, named `<name>-<index>`."""
    return [
        vpc.SecurityGroupIngressRule(
            f"{name}-{index}",
            security_group_id=security_group.id,
            referenced_security_group_id=source,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description(source),
            opts=opts,
        )
        for index, source in enumerate(sources)
    ]


class ServiceEndpoints(Component):
    """S3 gateway endpoint, interface endpoints with private DNS, and their HTTPS-only security group."""

    TYPE = "data-pipeline:network:ServiceEndpoints"

    security_group: ec2.SecurityGroup | None
    ingress: list[vpc.SecurityGroupIngressRule]
    endpoints: dict[str, ec2.VpcEndpoint]

    def __init__(self, name: str, args: ServiceEndpointsArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        region = pulumi.Output.from_input(args.region)
        self.endpoints = {}
        self.ingress = []
        self.security_group = None
        if S3 in args.services:
            self.endpoints[S3] = ec2.VpcEndpoint(
                f"{name}-s3",
                vpc_id=args.vpc_id,
                service_name=region.apply(lambda r: service_name(S3, r, gateway=True)),
                vpc_endpoint_type="Gateway",
                route_table_ids=list(args.route_table_ids)
                if isinstance(args.route_table_ids, list | tuple)
                else args.route_table_ids,
                tags={"Name": f"{args.name_prefix}-s3"},
                opts=self.child_opts,
            )
        interfaces = [s for s in args.services if s != S3]
        if not interfaces:
            self.register_outputs({})
            return
        self.security_group = ec2.SecurityGroup(
            f"{name}-sg",
            name_prefix=f"{args.name_prefix}-endpoints-",
            description="HTTPS to the pipeline's interface VPC endpoints, from its functions only",
            vpc_id=args.vpc_id,
            tags={"Name": f"{args.name_prefix}-endpoints"},
            opts=self.child_opts,
        )
        self.ingress.extend(
            ingress_from(
                f"{name}-https",
                self.security_group,
                args.client_security_group_ids,
                HTTPS,
                lambda source: f"HTTPS from the functions' security group {source}",
                self.child_opts,
            )
        )
        for service in interfaces:
            self.endpoints[service] = ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=args.vpc_id,
                service_name=region.apply(lambda r, s=service: service_name(s, r)),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=list(args.subnet_ids),
                security_group_ids=[self.security_group.id],
                tags={"Name": f"{args.name_prefix}-{service}"},
                # The endpoint admits no one until its ingress rules exist.
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.ingress)),
            )
        self.register_outputs({service: endpoint.id for service, endpoint in self.endpoints.items()})


@dataclass(frozen=True)
class PrivateNetworkArgs:
    """Inputs of a `PrivateNetwork` (`vpc.create`)."""

    cidr: str
    """The VPC's IPv4 range."""

    subnets: tuple[tuple[str, str], ...]
    """(availability zone, IPv4 range) of each private subnet."""

    name_prefix: str
    """`<project>-<stack>`: the Name tags."""


class PrivateNetwork(Component):
    """A minimal VPC: DNS on (private DNS endpoints need it), private subnets in two zones sharing one route
    table with no route out (no NAT, no internet gateway), and the functions' security group, which admits
    nothing and may send anywhere inside the VPC (the endpoints, the database) and to S3's gateway."""

    TYPE = "data-pipeline:network:PrivateNetwork"

    vpc: ec2.Vpc
    subnets: list[ec2.Subnet]
    route_table: ec2.RouteTable
    associations: list[ec2.RouteTableAssociation]
    function_security_group: ec2.SecurityGroup

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        self.vpc = ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": args.name_prefix},
            opts=self.child_opts,
        )
        self.route_table = ec2.RouteTable(
            f"{name}-private",
            vpc_id=self.vpc.id,
            tags={"Name": f"{args.name_prefix}-private"},
            opts=self.child_opts,
        )
        self.subnets = []
        self.associations = []
        for zone, cidr in args.subnets:
            subnet = ec2.Subnet(
                f"{name}-{zone}",
                vpc_id=self.vpc.id,
                availability_zone=zone,
                cidr_block=cidr,
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.name_prefix}-{zone}"},
                opts=self.child_opts,
            )
            self.subnets.append(subnet)
            self.associations.append(
                ec2.RouteTableAssociation(
                    f"{name}-{zone}-private",
                    subnet_id=subnet.id,
                    route_table_id=self.route_table.id,
                    opts=self.child_opts,
                )
            )
        self.function_security_group = ec2.SecurityGroup(
            f"{name}-functions",
            name_prefix=f"{args.name_prefix}-functions-",
            description="The pipeline's functions in the VPC: no inbound; outbound within the VPC and to S3",
            vpc_id=self.vpc.id,
            egress=[
                ec2.SecurityGroupEgressArgs(
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=["0.0.0.0/0"],
                    description="Nothing routes out of the VPC but the S3 gateway endpoint",
                )
            ],
            opts=self.child_opts,
        )
        self.register_outputs({"vpc_id": self.vpc.id})
