"""`Observability`: the alarms, the alarm topic and the dashboard of the pipeline's stages.

Per stage, six alarms tell an operator that events are being lost or delayed: the function fails
(`Errors`), Lambda refuses to run it (`Throttles`), an event has exhausted its retries and could not be
put into the failure queue (`DestinationDeliveryFailures`), or it waits there
(`ApproximateNumberOfMessagesVisible`), such an event has waited too long
(`ApproximateAgeOfOldestMessage`), and the stage gave up on an object it cannot finish before its timeout
at its memory's CPU share (`ObjectsOverBudget`, from the handlers' EMF line: handlers/deadline.py). Every
alarm notifies one SNS topic when it fires and when it clears.

The topic is encrypted with a key of its own: CloudWatch cannot publish to a topic encrypted with the
AWS-managed `alias/aws/sns` key, whose policy cannot grant it `kms:GenerateDataKey`
(docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services), so such an
alarm would deploy cleanly and never notify anyone.

What to do when an alarm fires is in README.md, section "Operating". The alarm specs and the dashboard
body are built by pure functions (`alarm_specs`, `dashboard_body`) that the tests read without the
Pulumi runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import cloudwatch, kms, sns

from components.component import Component, Opts
from components.iam import (
    PolicyDocument,
    Statement,
    account_key_delegation,
    deny_insecure_transport_statement,
)
from handlers.contract import (
    METRICS_NAMESPACE,
    OVER_BUDGET_METRIC,
    OVER_BUDGET_REASON,
    RECORD_METRIC_NAMES,
    STAGE_DIMENSION,
    STAGE_METRIC_NAMES,
)

# The EMF counts of handlers/metrics.py that the dashboard charts per stage (dimension Stage), each under
# the name its stage reports it (records for ingestion and processing, groups for analytics).
CHARTED_COUNTS = ("records_valid", "records_quarantined")
RECORD_METRICS = tuple(RECORD_METRIC_NAMES[count] for count in CHARTED_COUNTS)


def _spaced(metric: str) -> str:
    """`RecordsValid` -> `records valid`: a widget title."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in metric).strip()


def charted_metrics(stage: str) -> tuple[str, ...]:
    """The metrics the dashboard charts for `stage`, as that stage names them."""
    names = STAGE_METRIC_NAMES.get(stage, RECORD_METRIC_NAMES)
    return tuple(names[count] for count in CHARTED_COUNTS)


DEFAULT_OLDEST_FAILURE_AGE_SECONDS = 3600
RUNBOOK = "README.md"


@dataclass(frozen=True)
class MonitoredStage:
    """The names an alarm or a widget needs of one pipeline stage."""

    stage: str
    """The stage's name: ingestion, processing or analytics (the EMF `Stage` dimension)."""

    function_name: pulumi.Input[str]
    """The Lambda function's name."""

    failure_queue_name: pulumi.Input[str]
    """The name of its on-failure SQS queue."""

    reserved_concurrency: int | None = None
    """The stage's reserved concurrency (`stages.<stage>.reservedConcurrency`); None: the account's pool."""


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


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm, as plain data."""

    key: str
    """Short name: errors, throttles, delivery-failures, failures-visible, failures-age, over-budget."""

    namespace: str
    """The metric's namespace."""

    metric_name: str
    """The metric."""

    dimensions: Mapping[str, pulumi.Input[str]]
    """The metric's dimensions."""

    statistic: str
    """Sum or Maximum."""

    threshold: float
    """The alarm fires when the statistic is greater than this."""

    period_seconds: int
    """One datapoint per period."""

    description: str
    """What it means; the action is in the runbook."""

    evaluation_periods: int = 1
    """How many recent periods the alarm looks at."""

    datapoints_to_alarm: int = 1
    """How many of them must breach: equal to evaluation_periods for a condition that must last."""


# A stage capped by reserved concurrency is throttled by design during a burst: its events are asynchronous
# and Lambda retries a throttled one for up to maxEventAgeSeconds, so nothing is lost. Its throttles alarm
# fires only when throttling lasts this many consecutive minutes (the cap does not keep up).
SUSTAINED_THROTTLE_MINUTES = 15


def alarm_specs(
    stage: MonitoredStage, oldest_failure_age_seconds: int, metrics_namespace: str = METRICS_NAMESPACE
) -> list[AlarmSpec]:
    """The six alarms of one stage."""
    function = {"FunctionName": stage.function_name}
    queue = {"QueueName": stage.failure_queue_name}
    where = f"{stage.stage} stage"
    return [
        AlarmSpec(
            "errors",
            "AWS/Lambda",
            "Errors",
            function,
            "Sum",
            0,
            60,
            f"The {where} function raised. Lambda retries; see {RUNBOOK}#errors.",
        ),
        _throttles_alarm(stage, function, where),
        AlarmSpec(
            "delivery-failures",
            "AWS/Lambda",
            "DestinationDeliveryFailures",
            function,
            "Sum",
            0,
            60,
            # The only trace of an event that exhausted its retries and then could not be queued (the
            # queue's KMS key disabled, say): no failure-queue alarm can see it.
            f"Lambda could not put a failed event of the {where} into its failure queue: the event is "
            f"lost unless the cause is fixed now. See {RUNBOOK}#delivery-failures.",
        ),
        AlarmSpec(
            "failures-visible",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            queue,
            "Maximum",
            0,
            300,
            f"An event of the {where} exhausted its retries and waits in the failure queue. "
            f"Fix the cause, then redrive: {RUNBOOK}#redrive.",
        ),
        AlarmSpec(
            "failures-age",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            queue,
            "Maximum",
            oldest_failure_age_seconds,
            300,
            f"A failed event of the {where} has waited over {oldest_failure_age_seconds} s; the queue "
            f"drops it after 14 days. See {RUNBOOK}#failure-queue-age.",
        ),
        AlarmSpec(
            "over-budget",
            metrics_namespace,
            OVER_BUDGET_METRIC,
            {STAGE_DIMENSION: stage.stage},
            "Sum",
            0,
            60,
            # Without it the same object would show only as errors, and after the retries in the queue.
            f"The {where} gave up on an object it cannot finish before its timeout at its memory's CPU "
            f"share ({OVER_BUDGET_REASON}); after the retries the event waits in the failure queue. Raise "
            f"the stage's memoryMb or timeoutSeconds, then redrive: {RUNBOOK}#objects-over-budget.",
        ),
    ]


def _throttles_alarm(stage: MonitoredStage, function: Mapping[str, Any], where: str) -> AlarmSpec:
    """Uncapped, a throttle means the account's unreserved pool ran dry (every function in the account
    suffers): any throttle alarms. Capped, bursts are throttled by design: only sustained throttling does."""
    if stage.reserved_concurrency is None:
        minutes = 1
        description = (
            f"Lambda refused to run the {where} function: the account's unreserved concurrency is used up. "
            f"See {RUNBOOK}#throttles."
        )
    else:
        minutes = SUSTAINED_THROTTLE_MINUTES
        description = (
            f"The {where} function, capped at {stage.reserved_concurrency} concurrent executions, was "
            f"throttled in each of the last {minutes} minutes: the cap does not keep up, and events wait "
            f"in Lambda's retries until maxEventAgeSeconds, then go to the failure queue. "
            f"See {RUNBOOK}#throttles."
        )
    return AlarmSpec(
        "throttles",
        "AWS/Lambda",
        "Throttles",
        function,
        "Sum",
        0,
        60,
        description,
        evaluation_periods=minutes,
        datapoints_to_alarm=minutes,
    )


def _metric(namespace: str, name: str, dimension: str, value: pulumi.Input[str], **options: Any) -> list[Any]:
    return [namespace, name, dimension, value, *([options] if options else [])]


def dashboard_body(
    stages: Sequence[MonitoredStage],
    region: pulumi.Input[str],
    alarm_arns: Sequence[pulumi.Input[str]],
    metrics_namespace: str = METRICS_NAMESPACE,
) -> dict[str, Any]:
    """The dashboard: the alarms' state, then one row of four graphs per stage."""
    width, height = 6, 6

    def graph(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": width,
            "height": height,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": stat,
                "period": 300,
                "metrics": metrics,
            },
        }

    widgets: list[dict[str, Any]] = [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 3,
            "properties": {"title": "Alarms (what to do: README.md, Operating)", "alarms": list(alarm_arns)},
        }
    ]
    for row, stage in enumerate(stages):
        y = 3 + row * height
        fn, queue, name = stage.function_name, stage.failure_queue_name, stage.stage
        widgets += [
            graph(
                f"{name}: invocations and errors",
                [
                    _metric("AWS/Lambda", "Invocations", "FunctionName", fn),
                    _metric("AWS/Lambda", "Errors", "FunctionName", fn),
                    _metric("AWS/Lambda", "Throttles", "FunctionName", fn),
                ],
                0,
                y,
            ),
            graph(
                f"{name}: duration (ms)",
                [
                    _metric("AWS/Lambda", "Duration", "FunctionName", fn, stat="p50", label="p50"),
                    _metric("AWS/Lambda", "Duration", "FunctionName", fn, stat="p99", label="p99"),
                ],
                width,
                y,
                stat="p50",
            ),
            graph(
                f"{name}: {' and '.join(_spaced(metric) for metric in charted_metrics(name))}",
                [
                    _metric(metrics_namespace, metric, STAGE_DIMENSION, name)
                    for metric in charted_metrics(name)
                ],
                2 * width,
                y,
            ),
            graph(
                f"{name}: failure queue",
                [
                    _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue),
                    _metric("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue, yAxis="right"),
                ],
                3 * width,
                y,
                stat="Maximum",
            ),
        ]
    return {"widgets": widgets}


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
