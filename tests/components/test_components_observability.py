"""`Observability` in the real program under mocks (dev and prod): every alarm, its threshold and target;
every dashboard widget's references to the stack."""

import fnmatch
import json

import pytest

from components.iam import deny_insecure_transport, deny_insecure_transport_statement
from components.observability import (
    MonitoredStage,
    alarm_key_policy,
    alarm_specs,
    alarm_topic_policy,
    dashboard_body,
)
from devtools import harness
from handlers.contract import (
    METRIC_NAMES,
    METRICS_NAMESPACE,
    OVER_BUDGET_METRIC,
    OVER_BUDGET_REASON,
    STAGE_DIMENSION,
    STAGE_METRIC_NAMES,
    STAGES,
    Stage,
)

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
REGION = "eu-west-1"
ALARMS_PER_STAGE = len(alarm_specs(MonitoredStage(Stage.INGESTION, "fn", "queue"), 3600))


@pytest.fixture(params=["dev_stack", "prod_stack"])
def stack(request):
    return request.getfixturevalue(request.param)


def alarms_of(stack, stage):
    return {
        r.name.removeprefix(f"observability-{stage}-"): r
        for r in stack.by_type(ALARM)
        if f"-{stage}-" in r.name
    }


def function_name(stack, stage):
    return stack.outputs["stages"][stage]["functionName"]


def queue_name(stack, stage):
    return stack.outputs["stages"][stage]["failureQueueName"]


def topic(stack):
    [t] = stack.by_type("aws:sns/topic:Topic")
    return t


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_the_six_alarms(stack, stage):
    assert set(alarms_of(stack, stage)) == {
        "errors",
        "throttles",
        "delivery-failures",
        "failures-visible",
        "failures-age",
        "over-budget",
    }


@pytest.mark.parametrize(
    ("key", "namespace", "metric", "statistic", "threshold", "dimension"),
    [
        ("errors", "AWS/Lambda", "Errors", "Sum", 0, "function"),
        ("throttles", "AWS/Lambda", "Throttles", "Sum", 0, "function"),
        ("delivery-failures", "AWS/Lambda", "DestinationDeliveryFailures", "Sum", 0, "function"),
        ("failures-visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0, "queue"),
        ("failures-age", "AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 3600, "queue"),
    ],
)
@pytest.mark.parametrize("stage", STAGES)
def test_alarm_watches_the_stage_metric_with_its_threshold(
    stack, stage, key, namespace, metric, statistic, threshold, dimension
):
    alarm = alarms_of(stack, stage)[key].inputs
    expected_dimensions = (
        {"FunctionName": function_name(stack, stage)}
        if dimension == "function"
        else {"QueueName": queue_name(stack, stage)}
    )
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (namespace, metric, statistic)
    assert alarm["dimensions"] == expected_dimensions
    assert alarm["threshold"] == threshold
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm["evaluationPeriods"] == 1
    assert alarm["treatMissingData"] == "notBreaching"
    assert "README.md#" in alarm["alarmDescription"]


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(stack):
    topic_arn = topic(stack).outputs["arn"]
    alarms = stack.by_type(ALARM)
    assert len(alarms) == ALARMS_PER_STAGE * len(STAGES)
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic_arn], alarm.name
        assert alarm.inputs["okActions"] == [topic_arn], alarm.name


@pytest.mark.parametrize("stage", STAGES)
def test_over_budget_alarm_watches_the_stages_emf_metric(stack, stage):
    alarm = alarms_of(stack, stage)["over-budget"].inputs
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
        METRICS_NAMESPACE,
        OVER_BUDGET_METRIC,
        "Sum",
    )
    assert alarm["dimensions"] == {STAGE_DIMENSION: stage}
    assert (alarm["threshold"], alarm["comparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["treatMissingData"] == "notBreaching"
    assert OVER_BUDGET_REASON in alarm["alarmDescription"]
    assert "README.md#objects-over-budget" in alarm["alarmDescription"]


def test_over_budget_alarm_takes_the_handlers_namespace():
    stage = MonitoredStage(Stage.PROCESSING, "fn", "queue")
    [spec] = [s for s in alarm_specs(stage, 900, "Custom/Pipeline") if s.key == "over-budget"]
    assert (spec.namespace, spec.metric_name, dict(spec.dimensions)) == (
        "Custom/Pipeline",
        OVER_BUDGET_METRIC,
        {STAGE_DIMENSION: Stage.PROCESSING},
    )


def test_age_threshold_comes_from_the_arguments():
    stage = MonitoredStage(Stage.INGESTION, "fn", "queue")
    [age] = [s for s in alarm_specs(stage, 900) if s.key == "failures-age"]
    assert age.threshold == 900


def test_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack):
    [key] = stack.by_type("aws:kms/key:Key")
    assert topic(stack).inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    grant = statements["CloudWatchAlarmsEncryptNotifications"]
    assert grant["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": harness.MOCK_ACCOUNT_ID}


def test_topic_policy_lets_exactly_these_alarms_publish(stack):
    [policy] = stack.by_type("aws:sns/topicPolicy:TopicPolicy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    publish = statements["CloudWatchAlarmsPublish"]
    assert publish["Resource"] == [topic(stack).outputs["arn"]]
    pattern = publish["Condition"]["ArnLike"]["aws:SourceArn"]
    # every alarm's ARN matches the condition, or its notifications would be refused
    for alarm in stack.by_type(ALARM):
        assert fnmatch.fnmatchcase(alarm.outputs["arn"], pattern), (alarm.outputs["arn"], pattern)
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alarm_email_subscribes_to_the_topic(prod_stack):
    [subscription] = prod_stack.by_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == prod_stack.config["data-pipeline:alarmEmail"]
    assert subscription.inputs["topic"] == topic(prod_stack).outputs["arn"]


def test_no_subscription_without_alarm_email(dev_stack):
    assert "data-pipeline:alarmEmail" not in dev_stack.config
    assert dev_stack.by_type("aws:sns/topicSubscription:TopicSubscription") == []
    assert len(dev_stack.by_type(ALARM)) == ALARMS_PER_STAGE * len(STAGES)


def dashboard(stack):
    [board] = stack.by_type("aws:cloudwatch/dashboard:Dashboard")
    return json.loads(board.inputs["dashboardBody"])


def metric_widgets(stack):
    return [w for w in dashboard(stack)["widgets"] if w["type"] == "metric"]


def test_every_dashboard_metric_refers_to_something_in_the_stack(stack):
    functions = {function_name(stack, s) for s in STAGES}
    queues = {queue_name(stack, s) for s in STAGES}
    for widget in metric_widgets(stack):
        assert widget["properties"]["region"] == REGION
        for namespace, metric, dimension, value, *_ in widget["properties"]["metrics"]:
            if namespace == "AWS/Lambda":
                assert (dimension, value in functions) == ("FunctionName", True), widget["properties"][
                    "title"
                ]
                assert metric in {"Invocations", "Errors", "Throttles", "Duration"}
            elif namespace == "AWS/SQS":
                assert (dimension, value in queues) == ("QueueName", True), widget["properties"]["title"]
            else:
                # the handlers' EMF metrics: namespace DataPipeline, dimension Stage
                assert namespace == METRICS_NAMESPACE
                assert metric in METRIC_NAMES
                assert (dimension, value in STAGES) == (STAGE_DIMENSION, True)


def test_alarm_widget_lists_every_alarm_of_the_stack(stack):
    [widget] = [w for w in dashboard(stack)["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["properties"]["alarms"]) == sorted(a.outputs["arn"] for a in stack.by_type(ALARM))


@pytest.mark.parametrize("stage", STAGES)
def test_dashboard_shows_each_stage_invocations_errors_durations_and_records(stack, stage):
    charted = set()
    for widget in metric_widgets(stack):
        for _namespace, metric, _, value, *options in widget["properties"]["metrics"]:
            if value in (function_name(stack, stage), stage):
                charted.add((metric, (options or [{}])[0].get("stat", widget["properties"]["stat"])))
    assert {
        ("Invocations", "Sum"),
        ("Errors", "Sum"),
        ("Duration", "p50"),
        ("Duration", "p99"),
        (STAGE_METRIC_NAMES[stage]["records_valid"], "Sum"),
        (STAGE_METRIC_NAMES[stage]["records_quarantined"], "Sum"),
    } <= charted


def test_widgets_do_not_overlap():
    stages = [MonitoredStage(s, f"fn-{s}", f"q-{s}") for s in STAGES]
    cells = set()
    for widget in dashboard_body(stages, REGION, ["arn:a"])["widgets"]:
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells
                cells.add((x, y))
        assert widget["x"] + widget["width"] <= 24


def test_outputs_name_the_topic_and_dashboard(stack):
    assert stack.outputs["alarmTopicArn"] == topic(stack).outputs["arn"]
    assert stack.outputs["dashboardName"] == f"data-pipeline-{stack.stack}"


CLOUDWATCH_MAY_USE = {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_key_and_topic_policies_are_typed_documents_with_a_sid_on_every_statement():
    # GIVEN the alarm key's and topic's policies as the pure builders make them
    key = alarm_key_policy("aws", "123456789012", CLOUDWATCH_MAY_USE).to_dict()
    topic_doc = alarm_topic_policy("arn:aws:sns:eu-west-1:123456789012:t", CLOUDWATCH_MAY_USE).to_dict()
    # THEN every statement has a Sid, and the one wildcard action is the key's delegation to the account
    for doc in (key, topic_doc):
        assert doc["Version"] == "2012-10-17"
        assert all(s["Sid"] for s in doc["Statement"])
    wildcards = [
        (s["Sid"], a)
        for doc in (key, topic_doc)
        for s in doc["Statement"]
        if s["Effect"] == "Allow"
        for a in s["Action"]
        if "*" in a
    ]
    assert wildcards == [("AccountIamPoliciesManageKey", "kms:*")]
    assert key["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_the_topic_refuses_insecure_transport_with_the_statement_the_buckets_use():
    topic_arn = "arn:aws:sns:eu-west-1:123456789012:t"
    [_, deny] = alarm_topic_policy(topic_arn, CLOUDWATCH_MAY_USE).statements
    [bucket_deny] = deny_insecure_transport("arn:aws:s3:::b").statements
    assert deny == deny_insecure_transport_statement(
        ("sns:Publish", "sns:Subscribe", "sns:Receive"), (topic_arn,)
    )
    # the same statement but for what it denies, and on what
    assert (deny.sid, deny.effect, deny.principals, deny.conditions) == (
        bucket_deny.sid,
        bucket_deny.effect,
        bucket_deny.principals,
        bucket_deny.conditions,
    )


def test_an_uncapped_stage_alarms_on_any_throttle():
    # GIVEN a stage in the account's pool: a throttle means the unreserved concurrency is used up
    [throttles] = [
        s for s in alarm_specs(MonitoredStage(Stage.ANALYTICS, "fn", "q"), 900) if s.key == "throttles"
    ]
    assert (throttles.evaluation_periods, throttles.datapoints_to_alarm, throttles.period_seconds) == (
        1,
        1,
        60,
    )
    assert "unreserved concurrency" in throttles.description


def test_a_capped_stage_alarms_only_on_sustained_throttling():
    # GIVEN analytics capped at 5: a burst is throttled by design and Lambda retries its async events
    stage = MonitoredStage(Stage.ANALYTICS, "fn", "q", reserved_concurrency=5)
    [throttles] = [s for s in alarm_specs(stage, 900) if s.key == "throttles"]
    # THEN only throttling in each of 15 consecutive minutes alarms
    assert (throttles.evaluation_periods, throttles.datapoints_to_alarm, throttles.period_seconds) == (
        15,
        15,
        60,
    )
    assert "capped at 5" in throttles.description


def test_the_declared_throttles_alarm_follows_the_stage_cap(evaluate):
    stack = evaluate("dev", {"stages": {Stage.ANALYTICS: {"reservedConcurrency": 5}}})
    capped = alarms_of(stack, Stage.ANALYTICS)["throttles"].inputs
    assert (capped["evaluationPeriods"], capped["datapointsToAlarm"]) == (15, 15)
    uncapped = alarms_of(stack, Stage.PROCESSING)["throttles"].inputs
    assert (uncapped["evaluationPeriods"], uncapped["datapointsToAlarm"]) == (1, 1)
