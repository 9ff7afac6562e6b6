"""A stack in cn-north-1 (partition aws-cn), under Pulumi's mocks: every ARN the program renders is in the
aws-cn partition, and the endpoints carry the China regions' service names (S3's gateway is
`com.amazonaws.cn-north-1.s3` as everywhere; only some interface services, S3's among them, are
`cn.com.amazonaws.<region>.<service>`; Secrets Manager's keeps `com.amazonaws`)."""

from __future__ import annotations

import json
import re

import pytest

from components.network import S3, SECRETS_MANAGER, SNS, service_name
from handlers import contract
from handlers.contract import Stage

REGION = "cn-north-1"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"]
ARN = re.compile(r"arn:[a-z-]+:[^\"\s,]*")


@pytest.fixture(scope="module")
def china(evaluate):
    return evaluate(
        "dev",
        {
            "aws:region": REGION,
            "database": {"create": True},
            "vpc": {
                "subnetIds": SUBNETS,
                "securityGroupIds": ["sg-0c3d4e5f607182930"],
                "serviceAccess": "endpoints",
            },
        },
    )


def test_the_china_regions_name_s3s_interface_endpoint_service_their_own_way():
    assert service_name(S3, "cn-north-1") == "cn.com.amazonaws.cn-north-1.s3"
    assert service_name(S3, "cn-northwest-1") == "cn.com.amazonaws.cn-northwest-1.s3"
    assert service_name(SECRETS_MANAGER, "cn-north-1") == "com.amazonaws.cn-north-1.secretsmanager"
    assert service_name(SNS, "cn-northwest-1") == "com.amazonaws.cn-northwest-1.sns"
    assert service_name(S3, "eu-west-1") == "com.amazonaws.eu-west-1.s3"


def test_a_gateway_endpoint_keeps_com_amazonaws_in_every_partition():
    assert service_name(S3, "cn-north-1", gateway=True) == "com.amazonaws.cn-north-1.s3"
    assert service_name(S3, "cn-northwest-1", gateway=True) == "com.amazonaws.cn-northwest-1.s3"
    assert service_name(S3, "eu-west-1", gateway=True) == "com.amazonaws.eu-west-1.s3"


def test_the_endpoints_use_the_china_service_names(china):
    names = {
        e.inputs["vpcEndpointType"]: e.inputs["serviceName"]
        for e in china.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert names == {
        "Gateway": "com.amazonaws.cn-north-1.s3",
        "Interface": "com.amazonaws.cn-north-1.secretsmanager",
    }


def test_every_rendered_policy_names_arns_of_the_aws_cn_partition(china):
    rendered = json.dumps(china.role_policies())
    arns = ARN.findall(rendered)
    assert arns  # the buckets, queues, log groups, subnets, the database user...
    assert {arn.split(":")[1] for arn in arns} == {"aws-cn"}
    grant = {s["Sid"]: s for s in china.role_policies()[Stage.ANALYTICS]["Statement"]}["ConnectAsAppUser"]
    assert grant["Resource"][0].startswith(f"arn:aws-cn:rds-db:{REGION}:")
    assert grant["Resource"][0].endswith(f"/{contract.APP_USER}")


def test_the_alarm_key_policy_delegates_to_the_aws_cn_account_root(china):
    (key,) = china.by_type("aws:kms/key:Key")
    principals = [s.get("Principal") for s in json.loads(key.inputs["policy"])["Statement"]]
    roots = [p["AWS"] for p in principals if isinstance(p, dict) and "AWS" in p]
    assert roots
    assert all(root.startswith("arn:aws-cn:iam::") for root in roots)
