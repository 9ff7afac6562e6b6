"""`devtools.ops.redrive` against moto's SQS: what is re-sent, what is deleted, what stays."""

import io
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devtools.ops import redrive as rd
from handlers import contract
from handlers.contract import Stage

REGION = "eu-west-1"
# The command line redrives the ingestion stage of dev (a shell passes plain strings).
INGESTION_ARGV = ["--stack", "dev", "--stage", str(Stage.INGESTION)]


def invocation_record(key: str, request_id: str) -> str:
    """What Lambda sends to an on-failure destination after the last retry."""
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "raw"}, "object": {"key": key}},
            }
        ]
    }
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-25T12:00:00.000Z",
            "requestContext": {
                "requestId": request_id,
                "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:ingestion:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": "boom", "errorType": "TransientError"},
        }
    )


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


@pytest.fixture
def queue_url(sqs):
    return sqs.create_queue(QueueName="ingestion-failures")["QueueUrl"]


def remaining_bodies(sqs, queue_url) -> list[str]:
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return sorted(bodies)
        bodies += [m["Body"] for m in messages]


class Recorder:
    """An injected invoke that records payloads and fails for the keys it is told to."""

    def __init__(self, failing_keys=()):
        self.payloads = []
        self.failing_keys = set(failing_keys)

    def __call__(self, payload):
        self.payloads.append(payload)
        key = payload["Records"][0]["s3"]["object"]["key"]
        if key in self.failing_keys:
            return rd.InvokeOutcome(False, "Unhandled: still broken")
        return rd.InvokeOutcome(True)


def keys(payloads):
    return sorted(p["Records"][0]["s3"]["object"]["key"] for p in payloads)


def test_succeeding_events_are_resent_with_their_original_payload_and_deleted(sqs, queue_url):
    # GIVEN two failed invocations in the queue
    for n in range(2):
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=invocation_record(f"{contract.INPUT_PREFIX}{n}.json", f"req-{n}")
        )
    invoke = Recorder()
    # WHEN they are redriven
    result = rd.redrive(sqs, queue_url, invoke, dry_run=False, wait_seconds=0)
    # THEN each original event was invoked once, and the queue is empty
    assert keys(invoke.payloads) == [f"{contract.INPUT_PREFIX}0.json", f"{contract.INPUT_PREFIX}1.json"]
    assert result.redriven == 2
    assert result.kept == 0
    assert remaining_bodies(sqs, queue_url) == []


def test_an_event_that_fails_again_stays_in_the_queue_and_visible(sqs, queue_url):
    # GIVEN one event that will succeed and one that still fails
    good, bad = (
        invocation_record(f"{contract.INPUT_PREFIX}good.json", "r1"),
        invocation_record(f"{contract.INPUT_PREFIX}bad.json", "r2"),
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody=good)
    sqs.send_message(QueueUrl=queue_url, MessageBody=bad)
    invoke = Recorder(failing_keys={f"{contract.INPUT_PREFIX}bad.json"})
    # WHEN redriven
    result = rd.redrive(sqs, queue_url, invoke, dry_run=False, wait_seconds=0)
    # THEN the failing one is reported, invoked only once, and immediately receivable again
    assert [(m.request_id, m.action, m.detail) for m in result.messages if m.action == "failed"] == [
        ("r2", "failed", "Unhandled: still broken")
    ]
    assert keys(invoke.payloads) == [f"{contract.INPUT_PREFIX}bad.json", f"{contract.INPUT_PREFIX}good.json"]
    assert remaining_bodies(sqs, queue_url) == [bad]


def test_dry_run_invokes_nothing_and_keeps_every_message(sqs, queue_url):
    body = invocation_record(f"{contract.INPUT_PREFIX}a.json", "r1")
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    invoke = Recorder()
    result = rd.redrive(sqs, queue_url, invoke, dry_run=True, wait_seconds=0)
    assert invoke.payloads == []
    assert [(m.request_id, m.action) for m in result.messages] == [("r1", "would-redrive")]
    assert remaining_bodies(sqs, queue_url) == [body]


def test_dry_run_reports_each_events_objects_error_age_and_receives(sqs, queue_url):
    # GIVEN a failed invocation of a versioned object, already read once before
    # URL-encoded, as S3 sends it
    body = json.loads(invocation_record(f"{contract.INPUT_PREFIX}a+b%2Bc.json", "r1"))
    body["requestPayload"]["Records"][0]["s3"]["object"]["versionId"] = "v1"
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)
    sent = int(
        sqs.receive_message(
            QueueUrl=queue_url, VisibilityTimeout=0, MessageSystemAttributeNames=["SentTimestamp"]
        )["Messages"][0]["Attributes"]["SentTimestamp"]
    )
    # WHEN a dry run reads it, 2 hours and 5 minutes after it was sent
    result = rd.redrive(
        sqs, queue_url, Recorder(), dry_run=True, wait_seconds=0, now=lambda: sent / 1000 + 7500
    )
    # THEN its report names the object and version, the last error, its age and every receive so far
    [report] = result.messages
    assert (report.objects, report.error, report.age_seconds, report.receives) == (
        (f"raw/{contract.INPUT_PREFIX}a b+c.json@v1",),
        "TransientError: boom",
        7500,
        3,
    )
    assert "age 2h05m received 3x  raw/incoming/a b+c.json@v1  was: TransientError: boom" in report.line()


def test_a_message_that_is_not_an_invocation_record_is_kept_with_a_reason(sqs, queue_url):
    # GIVEN a bare event, as a dead-letter queue (not a destination) would hold it
    bare = json.dumps({"Records": []})
    sqs.send_message(QueueUrl=queue_url, MessageBody=bare)
    invoke = Recorder()
    result = rd.redrive(sqs, queue_url, invoke, dry_run=False, wait_seconds=0)
    assert invoke.payloads == []
    assert [(m.action, m.detail) for m in result.messages] == [
        ("unreadable", "not a Lambda invocation record: no requestPayload")
    ]
    assert remaining_bodies(sqs, queue_url) == [bare]


def test_messages_are_released_even_when_invoke_raises(sqs, queue_url):
    # GIVEN an invoke that crashes (the tool itself failing mid-run)
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=invocation_record(f"{contract.INPUT_PREFIX}b.json", "r0")
    )
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=invocation_record(f"{contract.INPUT_PREFIX}a.json", "r1")
    )
    calls = []

    def crashing(payload):
        calls.append(payload)
        if len(calls) == 1:
            return rd.InvokeOutcome(False, "first fails")
        raise RuntimeError("network down")

    # WHEN the crash propagates
    with pytest.raises(RuntimeError):
        rd.redrive(sqs, queue_url, crashing, dry_run=False, wait_seconds=0)
    # THEN nothing was deleted: the failed message is visible again, the one in flight hides until its
    # visibility timeout ends
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_lambda_invoker_turns_a_function_error_into_a_failure():
    class FakeLambda:
        def invoke(self, **kwargs):
            assert kwargs["InvocationType"] == "RequestResponse"
            assert json.loads(kwargs["Payload"]) == {"k": 1}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(b'{"errorMessage":"x"}'),
            }

    outcome = rd.lambda_invoker(FakeLambda(), "fn")({"k": 1})
    assert not outcome.ok
    assert outcome.detail.startswith("Unhandled:")


def test_main_resolves_the_target_from_stack_outputs_and_keeps_events_of_a_missing_function(
    sqs, queue_url, capsys
):
    # GIVEN stack outputs naming a queue holding one event, and a function that does not exist in moto
    body = invocation_record(f"{contract.INPUT_PREFIX}a.json", "r1")
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    outputs = {"stages": {Stage.INGESTION: {"functionName": "missing-fn", "failureQueueUrl": queue_url}}}
    session = boto3.session.Session(region_name=REGION)
    # WHEN redriven through main (boto3 Lambda client, RequestResponse)
    code = rd.main(INGESTION_ARGV, outputs=lambda stack: outputs, session=session)
    # THEN the invoke failed with Lambda's error code and the event stayed queued
    assert code == 1
    assert "ResourceNotFoundException" in capsys.readouterr().out
    assert remaining_bodies(sqs, queue_url) == [body]


def test_invoke_of_a_missing_function_reports_lambdas_error_code():
    with mock_aws():
        client = boto3.client("lambda", region_name=REGION)
        with pytest.raises(ClientError) as raised:
            client.get_function(FunctionName="missing-fn")
        outcome = rd.lambda_invoker(client, "missing-fn")({"Records": []})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert not outcome.ok
    assert "ResourceNotFoundException" in outcome.detail


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "the stack has no `stages` output"),
        ({"stages": {Stage.PROCESSING: {}}}, "has no stage 'ingestion'"),
        ({"stages": {Stage.INGESTION: {"functionName": "f"}}}, "stages.ingestion lacks failureQueueUrl"),
    ],
)
def test_main_explains_outputs_it_cannot_use(outputs, message, capsys):
    code = rd.main(INGESTION_ARGV, outputs=lambda stack: outputs)
    assert code == 2
    assert message in capsys.readouterr().err


def test_main_reports_sqs_refusal_with_its_error_code(sqs, capsys):
    # GIVEN outputs naming a queue that does not exist (deleted, or the wrong account's credentials)
    url = f"https://sqs.{REGION}.amazonaws.com/123456789012/gone"
    outputs = {"stages": {Stage.INGESTION: {"functionName": "fn", "failureQueueUrl": url}}}
    session = boto3.session.Session(region_name=REGION)
    # WHEN redriven
    code = rd.main(INGESTION_ARGV, outputs=lambda stack: outputs, session=session)
    # THEN it stops with SQS's error code, not a traceback
    assert code == 2
    assert "AWS.SimpleQueueService.NonExistentQueue" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/q", "eu-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1"),
        ("http://localhost:4566/000000000000/q", None),
    ],
)
def test_region_is_read_from_the_queue_url(url, region):
    assert rd.queue_region(url) == region


def test_lambda_client_waits_out_the_longest_invocation_and_never_retries_it():
    config = rd.lambda_client_config()
    assert config.read_timeout > 900
    assert config.retries == {"total_max_attempts": 1}
    assert config.read_timeout < rd.DEFAULT_VISIBILITY_SECONDS
