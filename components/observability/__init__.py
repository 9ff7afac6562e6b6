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

What to do when an alarm fires is in README.md, section "Operating". One job per module:

- `stages`: `MonitoredStage`, the names an alarm or a widget needs of one stage;
- `alarms`: `alarm_specs`, the six alarms of a stage as plain data (`AlarmSpec`);
- `dashboard`: `dashboard_body`, the dashboard as plain data;
- `policies`: the alarm topic's key policy and topic policy;
- `resources`: `Observability` and its args, which declare them.

The specs, the body and the policies are pure: the tests read them without the Pulumi runtime.
"""

from components.observability.alarms import (
    DEFAULT_OLDEST_FAILURE_AGE_SECONDS,
    RUNBOOK,
    SUSTAINED_THROTTLE_MINUTES,
    AlarmSpec,
    alarm_specs,
)
from components.observability.dashboard import CHARTED_COUNTS, RECORD_METRICS, charted_metrics, dashboard_body
from components.observability.policies import alarm_key_policy, alarm_topic_policy
from components.observability.resources import Observability, ObservabilityArgs
from components.observability.stages import MonitoredStage

__all__ = [
    "CHARTED_COUNTS",
    "DEFAULT_OLDEST_FAILURE_AGE_SECONDS",
    "RECORD_METRICS",
    "RUNBOOK",
    "SUSTAINED_THROTTLE_MINUTES",
    "AlarmSpec",
    "MonitoredStage",
    "Observability",
    "ObservabilityArgs",
    "alarm_key_policy",
    "alarm_specs",
    "alarm_topic_policy",
    "charted_metrics",
    "dashboard_body",
]
