"""A minimal program wiring `Observability` as __main__.py is asked to: three stages' functions and queues.

Evaluated by tests/ops under devtools.declared's mocks until the real program declares the component.
"""

import pulumi
import pulumi_aws as aws

from components.observability import MonitoredStage, Observability, ObservabilityArgs

config = pulumi.Config("observability-under-test")
prefix = f"data-pipeline-{pulumi.get_stack()}"
monitored = []
for stage in ("ingestion", "processing", "analytics"):
    queue = aws.sqs.Queue(f"{stage}-failures", sqs_managed_sse_enabled=True)
    function = aws.lambda_.Function(
        f"{stage}-function",
        name=f"{prefix}-{stage}",
        role="arn:aws:iam::123456789012:role/r",
        runtime="python3.13",
        handler=f"handlers.{stage}.handler",
        code=pulumi.AssetArchive({"handlers/__init__.py": pulumi.StringAsset("")}),
    )
    monitored.append(MonitoredStage(stage, function.name, queue.name))

observability = Observability(
    "observability",
    ObservabilityArgs(
        name_prefix=prefix,
        stages=monitored,
        account_id=aws.get_caller_identity_output().account_id,
        region=aws.get_region_output().region,
        alarm_email=config.get("alarmEmail"),
        oldest_failure_age_seconds=config.get_int("oldestFailureAgeSeconds") or 3600,
    ),
)
pulumi.export("alarmTopicArn", observability.topic_arn)
pulumi.export("dashboardName", observability.dashboard_name)
