"""The declared stack provisioned on the emulator, without the handlers: what S3 notifies, and what Lambda
does with an invocation stopped at its timeout (retries, then the stage's failure queue)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from devtools.harness import DeclaredStack
from devtools.localrun.delivery import Dispatcher
from devtools.localrun.emulator import AwsEmulator
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.lambda_runtime import TIMED_OUT, ContainerPool, FunctionImage
from devtools.localrun.provision import Deployment, provision
from devtools.localrun.spec import PipelineSpec
from handlers.contract import Stage

MB = 1024 * 1024


@dataclass
class Provisioned:
    aws: AwsEmulator
    deployment: Deployment
    events: list[tuple[str, dict[str, Any]]]  # (function ARN, event) as the emulator handed them over

    @property
    def spec(self) -> PipelineSpec:
        return self.deployment.spec

    def events_for(self, stage: str) -> list[dict[str, Any]]:
        arn = self.deployment.function_arn(self.spec.stage(stage))
        return [event for target, event in self.events if target == arn]


@pytest.fixture(scope="module")
def provisioned(dev_stack: DeclaredStack) -> Iterator[Provisioned]:
    spec = pipeline_spec(dev_stack)
    events: list[tuple[str, dict[str, Any]]] = []
    with AwsEmulator(spec.region, lambda arn, event: events.append((arn, event))) as aws:
        yield Provisioned(aws, provision(aws, spec), events)


def test_a_multipart_upload_notifies_ingestion_once(provisioned: Provisioned) -> None:
    # GIVEN an 11 MB object, uploaded in three parts of at most 5 MB (S3's smallest part but the last)
    s3 = provisioned.aws.client("s3")
    key = f"{provisioned.spec.input_prefix}multipart/big.jsonl"
    parts = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    provisioned.events.clear()
    # WHEN it is uploaded as boto3 uploads large files
    body = io.BytesIO(b'{"n": 1}\n' * (11 * MB // 9))
    s3.upload_fileobj(body, provisioned.spec.input_bucket, key, Config=parts)
    # THEN ingestion got one event for it, the completion's, as S3 sends
    events = provisioned.events_for(Stage.INGESTION)
    assert [e["Records"][0]["eventName"] for e in events] == ["ObjectCreated:CompleteMultipartUpload"]
    assert events[0]["Records"][0]["s3"]["object"]["size"] > 10 * MB


def test_a_single_put_still_notifies_ingestion_once(provisioned: Provisioned) -> None:
    s3 = provisioned.aws.client("s3")
    provisioned.events.clear()
    key = f"{provisioned.spec.input_prefix}one.jsonl"
    s3.put_object(Bucket=provisioned.spec.input_bucket, Key=key, Body=b"{}\n")
    events = provisioned.events_for(Stage.INGESTION)
    assert [e["Records"][0]["eventName"] for e in events] == ["ObjectCreated:Put"]


def test_an_invocation_past_its_scaled_timeout_is_retried_then_sent_to_the_failure_queue(
    provisioned: Provisioned, burner: FunctionImage
) -> None:
    # GIVEN the ingestion stage at 128 MB and a 1 s timeout, whose handler burns CPU well past that
    stage = replace(provisioned.spec.stage(Stage.INGESTION), memory_mb=128, timeout_seconds=1)
    arn = provisioned.deployment.function_arn(stage)
    image = replace(burner, name=stage.function_name, arn=arn, timeout_seconds=1, memory_mb=128)
    spec = provisioned.spec.with_stage(stage)
    deployment = replace(provisioned.deployment, spec=spec, pools={Stage.INGESTION: ContainerPool(image)})
    dispatcher = Dispatcher(spec, duplicate_deliveries=False, concurrency=1, echo=lambda _: None)
    key = f"{spec.input_prefix}slow.jsonl"
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key}}}], "burn": 20}
    dispatcher.start(deployment, provisioned.aws)
    try:
        # WHEN S3's event for one object is delivered to it
        dispatcher.on_s3_event(deployment.function_arn(stage), event)
        dispatcher.wait_idle(60)
    finally:
        dispatcher.stop()
        deployment.close()
    # THEN every attempt timed out, the declared retries were made, and the failure queue holds the event
    attempts = stage.max_retry_attempts + 1
    stats = dispatcher.stats[Stage.INGESTION]
    assert (stats.invocations, stats.retries, stats.timed_out) == (attempts, attempts - 1, attempts)
    assert stats.longest_lambda_seconds == 1.0
    [failure] = dispatcher.failures
    assert (failure.error_type, failure.attempts) == (TIMED_OUT, attempts)
    assert failure.destination == "failure-queue"
    sqs = provisioned.aws.client("sqs")
    url = deployment.failure_queue_url(stage)
    assert url is not None
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    record = json.loads(message["Body"])
    assert record["responsePayload"]["errorType"] == TIMED_OUT
    assert "Task timed out after 1.00 seconds" in record["responsePayload"]["errorMessage"]
    assert record["requestPayload"] == event
