"""The alarm topic's key policy and topic policy, typed (`components.iam`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.iam import (
    PolicyDocument,
    Statement,
    account_key_delegation,
    deny_insecure_transport_statement,
)


def alarm_key_policy(
    partition: pulumi.Input[str], account_id: pulumi.Input[str], cloudwatch_may_use: Mapping[str, Any]
) -> PolicyDocument:
    """The alarm topic key's policy: the account's IAM policies manage it; the stack's alarms may use it."""
    return PolicyDocument(
        statements=(
            account_key_delegation(partition, account_id),
            Statement(
                sid="CloudWatchAlarmsEncryptNotifications",
                principals={"Service": "cloudwatch.amazonaws.com"},
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                # In a key policy "*" is the key itself.
                resources=("*",),
                any_resource=True,
                conditions=cloudwatch_may_use,
            ),
        )
    )


def alarm_topic_policy(topic_arn: pulumi.Input[str], cloudwatch_may_use: Mapping[str, Any]) -> PolicyDocument:
    """The alarm topic's policy: the stack's alarms may publish; nobody may use it without TLS."""
    return PolicyDocument(
        statements=(
            Statement(
                sid="CloudWatchAlarmsPublish",
                principals={"Service": "cloudwatch.amazonaws.com"},
                actions=("sns:Publish",),
                resources=(topic_arn,),
                conditions=cloudwatch_may_use,
            ),
            deny_insecure_transport_statement(("sns:Publish", "sns:Subscribe", "sns:Receive"), (topic_arn,)),
        )
    )
