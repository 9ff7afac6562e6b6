"""`Observability`, the ComponentResource: the alarm topic and its key, the alarms, the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_aws import cloudwatch, kms, sns

from components.component import Component, Opts
from components.observability.alarms import DEFAULT_OLDEST_FAILURE_AGE_SECONDS, alarm_specs
from components.observability.dashboard import dashboard_body
from components.observability.policies import alarm_key_policy, alarm_topic_policy
from components.observability.stages import MonitoredStage
from handlers.contract import METRICS_NAMESPACE


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of `Observability`."""

    name_prefix: str
    """Physical-name prefix unique per stack, e.g. data-pipeline-dev."""

    stages: tuple[MonitoredStage, ...]
    """The stages to watch, in pipeline order."""

    account_id: pulumi.Input[str]
    """The stack's account: key policy and confused-deputy conditions."""

    region: pulumi.Input[str]
    """The stack's region: dashboard widgets and alarm ARNs."""

    alarm_email: str | None = None
    """Subscribe this address to the alarm topic; None: no subscription."""

    oldest_failure_age_seconds: int = DEFAULT_OLDEST_FAILURE_AGE_SECONDS
    """Threshold of the age alarm: how long a failed event may wait in its failure queue."""

    partition: pulumi.Input[str] = "aws"
    """The AWS partition of the ARNs."""

    metrics_namespace: str = METRICS_NAMESPACE
    """The handlers' METRICS_NAMESPACE."""


class Observability(Component):
    """Alarm topic (own KMS key, optional e-mail subscription), six alarms per stage, one dashboard."""

    TYPE = "data-pipeline:observability:Observability"

    key: kms.Key
    topic: sns.Topic
    topic_policy: sns.TopicPolicy
    subscription: sns.TopicSubscription | None
    alarms: dict[str, dict[str, cloudwatch.MetricAlarm]]
    dashboard: cloudwatch.Dashboard
    topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        alarm_arn_pattern = pulumi.Output.format(
            "arn:{0}:cloudwatch:{1}:{2}:alarm:{3}-*",
            args.partition,
            args.region,
            args.account_id,
            args.name_prefix,
        )
        cloudwatch_may_use = {
            "StringEquals": {"aws:SourceAccount": args.account_id},
            "ArnLike": {"aws:SourceArn": alarm_arn_pattern},
        }

        self.key = kms.Key(
            f"{name}-alarm-key",
            description=f"Encrypts the {args.name_prefix} alarm topic; usable by its CloudWatch alarms",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=alarm_key_policy(args.partition, args.account_id, cloudwatch_may_use).to_json(),
            opts=self.child_opts,
        )
        self.topic = sns.Topic(
            f"{name}-alarms",
            name=f"{args.name_prefix}-alarms",
            kms_master_key_id=self.key.arn,
            opts=self.child_opts,
        )
        self.topic_policy = sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=alarm_topic_policy(self.topic.arn, cloudwatch_may_use).to_json(),
            opts=self.child_opts,
        )
        self.subscription = None
        if args.alarm_email is not None:
            # E-mail subscriptions stay "pending confirmation" until the recipient clicks the link.
            self.subscription = sns.TopicSubscription(
                f"{name}-alarm-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=self.child_opts,
            )

        self.alarms = {}
        for stage in args.stages:
            self.alarms[stage.stage] = {}
            for spec in alarm_specs(stage, args.oldest_failure_age_seconds, args.metrics_namespace):
                alarm_name = f"{args.name_prefix}-{stage.stage}-{spec.key}"
                self.alarms[stage.stage][spec.key] = cloudwatch.MetricAlarm(
                    f"{name}-{stage.stage}-{spec.key}",
                    name=alarm_name,
                    alarm_description=spec.description,
                    namespace=spec.namespace,
                    metric_name=spec.metric_name,
                    dimensions=dict(spec.dimensions),
                    statistic=spec.statistic,
                    period=spec.period_seconds,
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    threshold=spec.threshold,
                    comparison_operator="GreaterThanThreshold",
                    # No datapoint means nothing ran or nothing is queued: healthy, not unknown.
                    treat_missing_data="notBreaching",
                    alarm_actions=[self.topic.arn],
                    ok_actions=[self.topic.arn],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.topic_policy]),
                )

        all_alarms = [alarm.arn for by_key in self.alarms.values() for alarm in by_key.values()]
        self.dashboard = cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.name_prefix,
            dashboard_body=pulumi.Output.json_dumps(
                dashboard_body(args.stages, args.region, all_alarms, args.metrics_namespace)
            ),
            opts=self.child_opts,
        )
        self.topic_arn = self.topic.arn
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs({"topic_arn": self.topic_arn, "dashboard_name": self.dashboard_name})
