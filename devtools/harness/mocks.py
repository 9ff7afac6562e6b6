"""The mocks of the harness: what AWS (or random) would return for each resource the program creates.

Outputs of the program come back through the mocks: realistic values make ``Output.format``/``json_dumps``
render real-looking ARNs, so the rendered policies can be checked (and analysed by parliament) as deployed.
Only the public ``pulumi.runtime.Mocks`` interface (``new_resource``, ``call``) is implemented here.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

MOCK_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "eu-west-1"
_TYPE_FUNCTION = "aws:lambda/function:Function"


def _hex(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def partition_of(region: str) -> tuple[str, str]:
    """(partition, DNS suffix) of `region`, as `aws.getPartition` answers: aws-cn for the China regions,
    aws-us-gov for GovCloud, aws elsewhere."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def _computed(
    typ: str, name: str, inputs: dict[str, Any], stack: str, region: str
) -> tuple[str, dict[str, Any]]:
    """The ID and computed outputs AWS (or random) would return for a created resource, with ARNs in the
    region's partition."""
    ident, computed = _computed_in_aws(typ, name, inputs, stack, region)
    partition, _ = partition_of(region)
    if partition == "aws":
        return ident, computed
    return _repartition(ident, partition), {k: _repartition(v, partition) for k, v in computed.items()}


def _repartition(value: Any, partition: str) -> Any:
    if isinstance(value, str):
        return value.replace("arn:aws:", f"arn:{partition}:")
    if isinstance(value, list):
        return [_repartition(v, partition) for v in value]
    if isinstance(value, dict):
        return {k: _repartition(v, partition) for k, v in value.items()}
    return value


def _computed_in_aws(
    typ: str, name: str, inputs: dict[str, Any], stack: str, region: str
) -> tuple[str, dict[str, Any]]:
    acct = MOCK_ACCOUNT_ID
    # Pulumi auto-names resources without an explicit name: logical name + 7 random characters.
    auto = f"{name}-{_hex(stack, typ, name, length=7)}"
    state: dict[str, Any] = {}
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or auto
        state = {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": region}
        return bucket, state
    if typ == "aws:sqs/queue:Queue":
        qname = inputs.get("name") or auto
        url = f"https://sqs.{region}.amazonaws.com/{acct}/{qname}"
        return url, {"name": qname, "arn": f"arn:aws:sqs:{region}:{acct}:{qname}", "url": url}
    if typ == "aws:iam/role:Role":
        rname = inputs.get("name") or auto
        return rname, {
            "name": rname,
            "arn": f"arn:aws:iam::{acct}:role/{rname}",
            "uniqueId": "AROA" + _hex(rname, length=17).upper(),
        }
    if typ == "aws:iam/rolePolicy:RolePolicy":
        pname = inputs.get("name") or auto
        return f"{inputs.get('role')}:{pname}", {"name": pname}
    if typ == _TYPE_FUNCTION:
        fname = inputs.get("name") or auto
        arn = f"arn:aws:lambda:{region}:{acct}:function:{fname}"
        return fname, {
            "name": fname,
            "arn": arn,
            "qualifiedArn": f"{arn}:$LATEST",
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
            "version": "$LATEST",
        }
    if typ == "aws:lambda/layerVersion:LayerVersion":
        layer_arn = f"arn:aws:lambda:{region}:{acct}:layer:{inputs.get('layerName')}"
        return f"{layer_arn}:1", {"arn": f"{layer_arn}:1", "layerArn": layer_arn, "version": "1"}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        gname = inputs.get("name") or auto
        return gname, {"name": gname, "arn": f"arn:aws:logs:{region}:{acct}:log-group:{gname}"}
    if typ == "aws:secretsmanager/secret:Secret":
        sname = inputs.get("name") or auto
        arn = f"arn:aws:secretsmanager:{region}:{acct}:secret:{sname}-{_hex(sname, length=6)}"
        return arn, {"name": sname, "arn": arn}
    if typ == "random:index/randomId:RandomId":
        hex_ = _hex(stack, name, length=2 * int(inputs.get("byteLength", 4)))
        raw = bytes.fromhex(hex_)
        b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return b64, {
            "hex": hex_,
            "b64Url": b64,
            "b64Std": base64.b64encode(raw).decode(),
            "dec": str(int(hex_, 16)),
        }
    if typ == "aws:sns/topic:Topic":
        tname = inputs.get("name") or auto
        return f"arn:aws:sns:{region}:{acct}:{tname}", {
            "name": tname,
            "arn": f"arn:aws:sns:{region}:{acct}:{tname}",
        }
    if typ == "aws:kms/key:Key":
        h = _hex(stack, name, length=32)
        key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{acct}:key/{key_id}"}
    if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        aname = inputs.get("name") or auto
        return aname, {"name": aname, "arn": f"arn:aws:cloudwatch:{region}:{acct}:alarm:{aname}"}
    if typ == "aws:cloudwatch/dashboard:Dashboard":
        dname = inputs.get("dashboardName") or auto
        return dname, {"dashboardArn": f"arn:aws:cloudwatch::{acct}:dashboard/{dname}"}
    if typ == "aws:secretsmanager/secretVersion:SecretVersion":
        # Secrets Manager gives every new value a new version id.
        version = f"{_hex(str(inputs.get('secretString')), length=8)}-{_hex(name, length=4)}"
        return f"{inputs.get('secretId')}|{version}", {"versionId": version, "arn": inputs.get("secretId")}
    if typ == "aws:rds/instance:Instance":
        ident = inputs.get("identifier") or auto
        address = f"{ident}.c{_hex(ident, length=11)}.{region}.rds.{partition_of(region)[1]}"
        secret = f"arn:aws:secretsmanager:{region}:{acct}:secret:rds!db-{_hex(ident, length=8)}-AbCdEf"
        return ident, {
            "identifier": ident,
            "arn": f"arn:aws:rds:{region}:{acct}:db:{ident}",
            "address": address,
            "endpoint": f"{address}:5432",
            "port": 5432,
            "resourceId": "db-" + _hex(stack, ident, length=26).upper(),
            "masterUserSecrets": [{"secretArn": secret, "secretStatus": "active"}]
            if inputs.get("manageMasterUserPassword")
            else [],
        }
    if typ == "aws:lambda/permission:Permission":
        return inputs.get("statementId") or auto, {"statementId": inputs.get("statementId") or auto}
    return f"{name}-id", state


def mock_vpc_id(stack: str) -> str:
    """The VPC every configured subnet of `stack` is in, as `ec2.getSubnet` answers under the mocks."""
    return f"vpc-{_hex(stack, 'vpc', length=17)}"


def has_own_route_table(subnet_id: str) -> bool:
    """Whether a subnet has a route table associated explicitly, under the mocks: one whose ID ends in an even
    hex digit; any other uses its VPC's main table (both cases occur in real VPCs)."""
    return int(subnet_id[-1], 16) % 2 == 0


def own_route_table(subnet_id: str) -> str:
    return f"rtb-{_hex(subnet_id, 'own', length=17)}"


def main_route_table(vpc_id: str) -> str:
    return f"rtb-{_hex(vpc_id, 'main', length=17)}"


def _filter(args: dict[str, Any], name: str) -> list[str]:
    return [v for f in args.get("filters") or [] if f.get("name") == name for v in f.get("values", [])]


def _get_subnet(stack: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": args["id"], "vpcId": mock_vpc_id(stack)}


def _get_route_tables(stack: str, args: dict[str, Any]) -> dict[str, Any]:
    subnets = _filter(args, "association.subnet-id")
    return {"id": "route-tables", "ids": [own_route_table(s) for s in subnets if has_own_route_table(s)]}


def _get_route_table(stack: str, args: dict[str, Any]) -> dict[str, Any]:
    if _filter(args, "association.main") != ["true"]:
        raise NotImplementedError("the mocks look up a VPC's main route table only")
    table = main_route_table(args["vpcId"])
    return {"id": table, "routeTableId": table, "vpcId": args["vpcId"]}


# The invokes behind an unset vpc.vpcId and vpc.routeTableIds (components.network).
_NETWORK_LOOKUPS = {
    "aws:ec2/getSubnet:getSubnet": _get_subnet,
    "aws:ec2/getRouteTables:getRouteTables": _get_route_tables,
    "aws:ec2/getRouteTable:getRouteTable": _get_route_table,
}


class RealisticMocks:
    """A ``pulumi.runtime.Mocks`` (by its interface: importing pulumi here would slow every devtools
    command down): realistic computed outputs, caller identity and region."""

    def __init__(self, stack: str, region: str) -> None:
        self.stack = stack
        self.region = region

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        id_, computed = _computed(args.typ, args.name, inputs, self.stack, self.region)
        return id_, {**inputs, **computed}

    def call(self, args: Any) -> tuple[dict[str, Any], list[Any]]:
        function = args.token
        if function == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:{partition_of(self.region)[0]}:iam::{MOCK_ACCOUNT_ID}:user/preview",
                "userId": "AIDAPREVIEW",
                "id": MOCK_ACCOUNT_ID,
            }, []
        if function == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if function == "aws:index/getPartition:getPartition":
            partition, dns_suffix = partition_of(self.region)
            return {"partition": partition, "dnsSuffix": dns_suffix, "id": partition}, []
        if function in _NETWORK_LOOKUPS:
            return _NETWORK_LOOKUPS[function](self.stack, dict(args.args)), []
        raise NotImplementedError(f"the mocks do not implement the call {args.token}")
