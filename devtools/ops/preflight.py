"""Read-only checks of a stack's config against the real account, before `pulumi up`.

`python -m devtools preflight --stack STACK [--region REGION] [--profile PROFILE]`

With the user's credentials (the default boto3 chain, or `--profile`), each check reads what `pulumi up`
would trip over halfway through an apply, and names the config key and the fix when it fails:

- `buckets.<role>`: the bucket name is free. HeadBucket 404: free; 403: another account owns it (the
  `BucketAlreadyExists` that would stop the apply); 200: this account has it (fine if this stack created
  it). A name with `bucketSuffix` (the default) gets a random suffix and is not checked.
- `stages.<stage>.reservedConcurrency`: the account's concurrency covers the reservations plus the 100 Lambda
  keeps unreserved (GetAccountSettings; this stack's functions' current reservations count as available).
- `vpc.*`: the subnets exist; their route tables are `vpc.routeTableIds` when it is set (`endpoints`;
  unset, the stack looks up the same tables: each subnet's own, else the VPC's main one); the VPC resolves
  private DNS (`endpoints`); each subnet routes 0.0.0.0/0 to a NAT gateway (`nat`); the VPC has the
  endpoints of the services the stage uses (`existingEndpoints`); one subnet per availability zone
  (`endpoints`); two zones at least (`database.create`). Nothing to check with `vpc.create`.
- `kmsKeyArn`, `database.kmsKeyArn`, `summaryTopicKmsKeyArn`: each key is in the stack's region, enabled,
  and for encryption (DescribeKey).
- `database.secretArn`, `summaryTopicArn`: the secret and the topic exist (DescribeSecret,
  GetTopicAttributes).
- `runtime`: Lambda is offered in the region (the public SSM parameter of AWS's global infrastructure) and
  the runtime is not past the date AWS deprecates it (Lambda has no API listing the runtimes of a region).

The config comes from `pulumi config --json --show-secrets` when the Pulumi CLI is on PATH, else from
`Pulumi.<stack>.yaml` (an encrypted value cannot be read offline: the checks needing it say so). The core,
`preflight`, takes a `PipelineConfig` and a boto3 session, and is tested on moto (with botocore's Stubber for
GetAccountSettings, which moto lacks). Nothing here writes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from components.config import (
    NAMESPACE,
    SERVICE_ACCESS_ENDPOINTS,
    SERVICE_ACCESS_EXISTING,
    SERVICE_ACCESS_NAT,
    ConfigError,
    PipelineConfig,
    parse_config,
)
from components.network import S3, services_used
from components.stage_table import STAGE_TABLE

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Lambda keeps this much of the account's concurrency unreserved.
UNRESERVED_MINIMUM = 100
# AWS's documented deprecation dates of the runtimes the config allows (Lambda runtimes page).
RUNTIME_DEPRECATION = {"python3.12": dt.date(2028, 10, 31), "python3.13": dt.date(2029, 6, 30)}


@dataclass(frozen=True)
class Finding:
    """The result of one check."""

    key: str
    """The config key the check is about (full, `data-pipeline:...`)."""

    ok: bool
    """Passed (or skipped with a note)."""

    message: str
    """What was found; on failure, also the fix."""


class _Findings(list[Finding]):
    def ok(self, key: str, message: str) -> None:
        self.append(Finding(f"{NAMESPACE}:{key}", True, message))

    def fail(self, key: str, message: str) -> None:
        self.append(Finding(f"{NAMESPACE}:{key}", False, message))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def check_buckets(cfg: PipelineConfig, s3: Any, out: _Findings) -> None:
    if cfg.bucket_suffix:
        out.ok("buckets", "bucketSuffix adds a random suffix to every name: no collision to check")
        return
    for role, name in cfg.bucket_base_names.items():
        key = f"buckets.{role}"
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            code = _code(error)
            if code in ("404", "NoSuchBucket", "NotFound"):
                out.ok(key, f"{name}: free")
            elif code in ("403", "AccessDenied", "Forbidden"):
                out.fail(
                    key,
                    f"{name}: another AWS account owns this name (HeadBucket 403), so creating it would fail "
                    f"with BucketAlreadyExists halfway through the apply; choose another name with "
                    f"`pulumi config set --path {key} <name>`, or turn bucketSuffix on",
                )
            else:
                out.fail(key, f"{name}: HeadBucket failed ({code}); check the credentials and retry")
            continue
        out.ok(key, f"{name}: exists in this account (fine if this stack created it; otherwise rename it)")


def check_concurrency(cfg: PipelineConfig, lambda_: Any, out: _Findings) -> None:
    reserved = {s: st.reserved_concurrency for s, st in cfg.stages.items() if st.reserved_concurrency}
    key = "stages"
    try:
        limit = lambda_.get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as error:
        out.fail(key, f"could not read the account's Lambda concurrency (GetAccountSettings): {error}")
        return
    total = int(limit["ConcurrentExecutions"])
    unreserved = int(limit["UnreservedConcurrentExecutions"])
    # This stack's functions, if deployed, already hold reservations that the new ones replace.
    held = 0
    for stage in reserved:
        try:
            answer = lambda_.get_function_concurrency(FunctionName=cfg.function_name(stage))
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise
            continue
        held += int(answer.get("ReservedConcurrentExecutions") or 0)
    need = sum(reserved.values())
    if not reserved:
        out.ok(key, f"no reserved concurrency; the account allows {total} concurrent executions")
    elif unreserved + held - need >= UNRESERVED_MINIMUM:
        out.ok(key, f"reservations {need} leave {unreserved + held - need} unreserved of {total}")
    else:
        stages = ", ".join(f"stages.{s}.reservedConcurrency={n}" for s, n in reserved.items())
        out.fail(
            key,
            f"the reservations ({stages}; {need} in all) would leave {unreserved + held - need} of the "
            f"account's {total} concurrent executions unreserved, and Lambda keeps at least "
            f"{UNRESERVED_MINIMUM}: lower or remove them (`pulumi config rm --path stages.<stage>."
            f"reservedConcurrency`), or request a higher quota (Service Quotas, Lambda, L-B99A9384) of at "
            f"least {total - unreserved - held + need + UNRESERVED_MINIMUM}",
        )


def _route_tables_of(ec2: Any, vpc_id: str, subnet_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """subnet -> its route table: the one explicitly associated, else the VPC's main table."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    explicit = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    return {s: t for s in subnet_ids if (t := explicit.get(s, main)) is not None}


def check_network(cfg: PipelineConfig, ec2: Any, out: _Findings) -> None:
    vpc = cfg.vpc
    if vpc is None:
        return
    if vpc.create is not None:
        out.ok("vpc.create", "the stack creates the VPC, its subnets and the endpoints: nothing to check")
        return
    try:
        subnets = ec2.describe_subnets(SubnetIds=list(vpc.subnet_ids))["Subnets"]
    except ClientError as error:
        out.fail("vpc.subnetIds", f"{_code(error)}: {error}; name subnets of this account and region")
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
    tables = _route_tables_of(ec2, vpc_id, vpc.subnet_ids)
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


def check_keys(cfg: PipelineConfig, kms: Any, region: str, out: _Findings) -> None:
    keys = {
        "kmsKeyArn": cfg.kms_key_arn,
        "database.kmsKeyArn": cfg.database.kms_key_arn if cfg.database else None,
        "summaryTopicKmsKeyArn": cfg.summary_topic_kms_key_arn,
    }
    for key, arn in keys.items():
        if arn is None:
            continue
        if arn.split(":")[3] != region:
            out.fail(key, f"is in {arn.split(':')[3]}, the stack in {region}: use a key in {region}")
            continue
        try:
            meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
        except ClientError as error:
            out.fail(
                key,
                f"DescribeKey failed ({_code(error)}): the key does not exist or its policy does not let you "
                "use it; fix the ARN or the key policy",
            )
            continue
        if meta.get("KeyState") != "Enabled":
            out.fail(key, f"the key is {meta.get('KeyState')}: enable it (or cancel its deletion)")
        elif meta.get("KeyUsage") != "ENCRYPT_DECRYPT" or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != (
            "SYMMETRIC_DEFAULT"
        ):
            out.fail(key, "is not a symmetric encryption key: S3, SQS and Secrets Manager need one")
        else:
            out.ok(key, "enabled symmetric key in the stack's region")


def check_secret_and_topic(cfg: PipelineConfig, secrets: Any, sns: Any, out: _Findings) -> None:
    if cfg.database is not None and cfg.database.secret_arn is not None:
        try:
            secrets.describe_secret(SecretId=cfg.database.secret_arn)
            out.ok("database.secretArn", "the secret exists")
        except ClientError as error:
            out.fail(
                "database.secretArn",
                f"DescribeSecret failed ({_code(error)}): create the secret (its SecretString the SQLAlchemy "
                "URL) or fix the ARN",
            )
    if cfg.summary_topic_arn is not None:
        try:
            sns.get_topic_attributes(TopicArn=cfg.summary_topic_arn)
            out.ok("summaryTopicArn", "the topic exists")
        except ClientError as error:
            out.fail(
                "summaryTopicArn",
                f"GetTopicAttributes failed ({_code(error)}): create the topic or fix the ARN",
            )


def check_runtime(cfg: PipelineConfig, ssm: Any, region: str, today: dt.date, out: _Findings) -> None:
    try:
        ssm.get_parameter(Name=f"/aws/service/global-infrastructure/regions/{region}/services/lambda")
    except ClientError as error:
        if _code(error) == "ParameterNotFound":
            out.fail("runtime", f"Lambda is not offered in {region}: deploy to another region (aws:region)")
            return
        out.fail("runtime", f"could not read whether {region} offers Lambda ({_code(error)})")
        return
    deprecated = RUNTIME_DEPRECATION.get(cfg.runtime)
    if deprecated is not None and today >= deprecated:
        out.fail("runtime", f"{cfg.runtime} is deprecated since {deprecated}: set runtime to a newer one")
    else:
        out.ok("runtime", f"Lambda is offered in {region}; {cfg.runtime} is supported")


def preflight(
    cfg: PipelineConfig, session: Any, region: str, *, today: dt.date | None = None
) -> list[Finding]:
    """Every check, in order; reads only."""
    out = _Findings()
    client: Callable[[str], Any] = lambda name: session.client(name, region_name=region)  # noqa: E731
    check_buckets(cfg, client("s3"), out)
    check_concurrency(cfg, client("lambda"), out)
    check_network(cfg, client("ec2"), out)
    check_keys(cfg, client("kms"), region, out)
    check_secret_and_topic(cfg, client("secretsmanager"), client("sns"), out)
    check_runtime(cfg, client("ssm"), region, today or dt.date.today(), out)
    return list(out)


def read_config(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], frozenset[str]]:
    """The stack's `data-pipeline:` values (without namespace) and `aws:region` under "aws:region"."""
    if shutil.which("pulumi"):
        done = subprocess.run(
            ["pulumi", "config", "--stack", stack, "--json", "--show-secrets"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            entries = json.loads(done.stdout)
            values = {k: v.get("objectValue", v.get("value")) for k, v in entries.items()}
            secret = frozenset(k.removeprefix(f"{NAMESPACE}:") for k, v in entries.items() if v.get("secret"))
            return values, secret
    import yaml

    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise SystemExit(f"no stack config {path}")
    document = yaml.safe_load(path.read_text()) or {}
    values = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, Mapping) and "secure" in value:
            print(
                f"preflight: {key} is encrypted and the Pulumi CLI is not on PATH: not checked",
                file=sys.stderr,
            )
            continue
        values[key] = value
    return values, frozenset()


def load(stack: str, region: str | None, project_dir: Path = PROJECT_DIR) -> tuple[PipelineConfig, str]:
    import yaml

    values, secret = read_config(stack, project_dir)
    region = region or values.get("aws:region")
    if not region:
        raise SystemExit("preflight: no aws:region in the stack config; pass --region")
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    cfg = parse_config(
        raw, project=project, stack=stack, secret_keys=secret, project_dir=project_dir, region=str(region)
    )
    return cfg, str(region)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools preflight",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", required=True, help="the stack whose config is checked")
    parser.add_argument("--region", help="default: the stack's aws:region")
    parser.add_argument("--profile", help="AWS profile (default: the default credential chain)")
    args = parser.parse_args(argv)
    import boto3

    try:
        cfg, region = load(args.stack, args.region)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    findings = preflight(cfg, session, region)
    for finding in findings:
        print(f"{'ok  ' if finding.ok else 'FAIL'} {finding.key}: {finding.message}")
    failed = [f for f in findings if not f.ok]
    print(f"\n{len(failed)} problem{'s' * (len(failed) != 1)} before `pulumi up --stack {args.stack}`")
    return 1 if failed else 0
