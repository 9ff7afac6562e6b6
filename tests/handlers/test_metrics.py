"""handlers.metrics: the invocation's EMF line, and the handler body that holds each object to the
invocation's time."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from handler_support import RAW, s3_record

from handlers import contract
from handlers.contract import OVER_BUDGET_METRIC, OVER_BUDGET_REASON, Stage
from handlers.errors import DeadlineError
from handlers.events import ObjectRef
from handlers.metrics import (
    Counts,
    emf_document,
    handle_objects,
    invocation_budget,
    log_invocation,
    memory_mb,
)


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def event(size: int) -> dict[str, Any]:
    return {"Records": [s3_record(RAW, f"{contract.INPUT_PREFIX}a.jsonl", size, None, None)]}


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_line_declares_and_carries_objects_over_budget() -> None:
    document = emf_document(contract.METRICS_NAMESPACE, Stage.PROCESSING, Counts(2, 2), {})
    declared = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert declared == [*contract.RECORD_METRIC_NAMES.values(), OVER_BUDGET_METRIC]
    assert document[OVER_BUDGET_METRIC] == 0


def test_log_invocation_writes_one_json_line_with_over_budget() -> None:
    stream = io.StringIO()
    log_invocation(contract.METRICS_NAMESPACE, Stage.ANALYTICS, Counts(), {"x": 1}, stream, over_budget=1)
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    assert (document[OVER_BUDGET_METRIC], document["x"], document[contract.STAGE_DIMENSION]) == (
        1,
        1,
        Stage.ANALYTICS,
    )


@pytest.mark.parametrize(("value", "expected"), [("1769", 1769), ("128", 128), ("", None), ("lots", None)])
def test_memory_comes_from_lambdas_variable(value: str, expected: int | None) -> None:
    assert memory_mb({contract.LAMBDA_MEMORY_VARIABLE: value}) == expected
    assert memory_mb({}) is None


def test_no_context_no_budget() -> None:
    assert invocation_budget(Stage.INGESTION, None) is None
    assert invocation_budget(Stage.INGESTION, object()) is None


def test_the_budget_takes_the_memory_and_remaining_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.LAMBDA_MEMORY_VARIABLE, "512")
    budget = invocation_budget(Stage.PROCESSING, Context(30_000))
    assert budget is not None
    assert (budget.stage, budget.memory_mb, budget.remaining()) == (Stage.PROCESSING, 512, 30.0)


def test_an_object_over_budget_is_not_processed_and_the_line_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(contract.LAMBDA_MEMORY_VARIABLE, "128")
    seen: list[ObjectRef] = []

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        seen.append(ref)
        return Counts(1, 1), {}

    with pytest.raises(DeadlineError):
        handle_objects(contract.METRICS_NAMESPACE, Stage.INGESTION, event(10 << 30), Context(10_000), process)
    assert seen == []
    (line,) = lines(capsys)
    assert line[OVER_BUDGET_METRIC] == 1
    assert line["objects"][0]["error"] == OVER_BUDGET_REASON
    assert line["objects"][0]["remainingSeconds"] == pytest.approx(10, abs=0.5)


def test_other_errors_still_propagate_without_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handle_objects(contract.METRICS_NAMESPACE, Stage.INGESTION, event(10), Context(10_000), process)
    assert lines(capsys) == []


def test_without_a_context_any_size_is_processed(capsys: pytest.CaptureFixture[str]) -> None:
    result = handle_objects(
        contract.METRICS_NAMESPACE, Stage.INGESTION, event(10 << 30), None, lambda ref: (Counts(1, 1), {})
    )
    assert result["counts"]["records_valid"] == 1
    assert lines(capsys)[0][OVER_BUDGET_METRIC] == 0


def test_a_count_s_metadata_name_is_its_field_s_and_an_unknown_field_is_refused() -> None:
    assert Counts.metadata_name("records_quarantined") in Counts(records_quarantined=1).as_metadata()
    with pytest.raises(ValueError, match="no count named"):
        Counts.metadata_name("records_lost")
