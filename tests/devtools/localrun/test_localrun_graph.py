"""The declared graph as the local run reads it: the spec, the deploy-time checks, the plan tree."""

from __future__ import annotations

from dataclasses import replace

import pytest

from components.stage_table import describe
from devtools.harness import DeclaredStack
from devtools.harness.plan import render_plan
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.preflight import preflight
from devtools.localrun.spec import NotificationSpec, PipelineSpec
from handlers import contract
from handlers.contract import STAGES, BucketRole, Stage


@pytest.fixture(scope="module")
def spec(dev_stack: DeclaredStack) -> PipelineSpec:
    return pipeline_spec(dev_stack)


def test_spec_holds_the_three_stages_in_chain_order_with_their_handlers(spec: PipelineSpec) -> None:
    assert [s.stage for s in spec.stages] == [Stage.INGESTION, Stage.PROCESSING, Stage.ANALYTICS]
    assert [s.handler for s in spec.stages] == [
        "handlers.ingestion_handler.handler",
        "handlers.processing_handler.handler",
        "handlers.analytics_handler.handler",
    ]
    for stage in spec.stages:
        assert stage.code_archive.is_file(), stage.code_archive
        assert stage.failure_destination_arn in {q.arn for q in spec.queues}
        assert stage.policies, f"{stage.stage} has no inline policy"


def test_spec_uploads_go_to_the_raw_bucket_under_the_input_prefix(spec: PipelineSpec) -> None:
    assert spec.input_bucket == spec.bucket(BucketRole.RAW).name
    assert spec.input_prefix == contract.INPUT_PREFIX


def test_the_declared_dev_stack_passes_the_deploy_time_checks(spec: PipelineSpec) -> None:
    assert preflight(spec) == []


def test_a_notification_without_an_invoke_permission_is_refused(spec: PipelineSpec) -> None:
    # GIVEN the processing function without its lambda Permission for S3
    processing = replace(spec.stage(Stage.PROCESSING), s3_invoke_sources=())
    # THEN the check names the bucket and the function, as S3 would refuse the notification
    [problem] = preflight(spec.with_stage(processing))
    assert spec.bucket(BucketRole.PROCESSED).name in problem
    assert processing.function_name in problem
    assert "Unable to validate the following destination configurations" in problem


def test_overlapping_notifications_on_one_bucket_are_refused(spec: PipelineSpec) -> None:
    raw = spec.bucket(BucketRole.RAW)
    first = raw.notifications[0]
    overlapping = NotificationSpec(first.function_arn, first.events, prefix="", suffix=first.suffix)
    buckets = tuple(
        replace(b, notifications=(*b.notifications, overlapping)) if b.name == raw.name else b
        for b in spec.buckets
    )
    problems = preflight(replace(spec, buckets=buckets))
    assert any("Configurations overlap" in p and raw.name in p for p in problems), problems


def test_a_role_that_does_not_trust_lambda_is_refused(spec: PipelineSpec) -> None:
    analytics = spec.stage(Stage.ANALYTICS)
    untrusting = replace(
        analytics,
        assume_role_policy={
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        },
    )
    [problem] = preflight(spec.with_stage(untrusting))
    assert "stage analytics" in problem
    assert "cannot be assumed by Lambda" in problem


def test_a_reserved_environment_key_is_refused(spec: PipelineSpec) -> None:
    ingestion = spec.stage(Stage.INGESTION)
    bad = replace(ingestion, environment={**ingestion.environment, "AWS_REGION": "us-east-1"})
    [problem] = preflight(spec.with_stage(bad))
    assert "AWS_REGION" in problem


def test_plan_prints_every_resource_under_its_component(dev_stack: DeclaredStack) -> None:
    plan = render_plan(dev_stack)
    lines = plan.splitlines()
    for resource in dev_stack.resources:
        assert any(f"{resource.type}  {resource.name}" in line for line in lines), resource.urn
    # each stage's function, with its handler, is in the block indented below its PipelineStage component
    for stage in STAGES:
        header = next(
            i for i, line in enumerate(lines) if f"data-pipeline:stage:PipelineStage  {stage} " in line
        )
        depth = len(lines[header]) - len(lines[header].lstrip())
        block = []
        for line in lines[header + 1 :]:
            if len(line) - len(line.lstrip()) <= depth:
                break
            block.append(line)
        assert any("aws:lambda/function:Function" in line for line in block), stage
        assert any(f"handler: {describe(stage).handler}" in line for line in block), stage
