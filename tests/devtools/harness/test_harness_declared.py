"""devtools.harness: the mocked evaluation itself (stack files, overrides, secrets, repeated runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.harness import StackEvaluationError, evaluate_stack, load_stack_config


def probe_project(tmp_path: Path, stack_yaml: str, program: str = "") -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: probe\nruntime: python\n")
    (tmp_path / "Pulumi.probe.yaml").write_text(stack_yaml)
    (tmp_path / "__main__.py").write_text(program)
    return tmp_path


def test_a_missing_stack_file_is_a_clear_error(tmp_path):
    probe_project(tmp_path, "config: {}\n")
    with pytest.raises(StackEvaluationError, match=r"no stack config .*Pulumi\.other\.yaml"):
        evaluate_stack("other", project_dir=tmp_path)


def test_an_encrypted_value_asks_for_an_override(tmp_path):
    probe_project(tmp_path, "config:\n  probe:password:\n    secure: AAABAxyz\n")
    with pytest.raises(StackEvaluationError, match="probe:password is encrypted; pass it as an override"):
        load_stack_config("probe", tmp_path)


def test_a_program_error_is_raised_with_the_program_s_message(tmp_path):
    probe_project(tmp_path, "config: {}\n", "raise RuntimeError('boom from the program')\n")
    with pytest.raises(StackEvaluationError, match="stack 'probe': boom from the program"):
        evaluate_stack("probe", project_dir=tmp_path)


def test_overrides_win_and_none_removes_a_key(evaluate):
    # GIVEN Pulumi.dev.yaml sets logRetentionDays 7 and retryAttempts 1
    stack = evaluate("dev", {"logRetentionDays": 14, "retryAttempts": None})
    # THEN the override is used and the removed key falls back to the program's default (2)
    assert stack.config["data-pipeline:logRetentionDays"] == 14
    assert "data-pipeline:retryAttempts" not in stack.config
    config = stack.by_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")[0]
    assert config.inputs["maximumRetryAttempts"] == 2
    log_group = stack.by_type("aws:cloudwatch/logGroup:LogGroup")[0]
    assert log_group.inputs["retentionInDays"] == 14


def test_evaluations_do_not_leak_into_each_other(dev_stack, prod_stack, evaluate):
    # GIVEN a failed evaluation between two good ones
    with pytest.raises(StackEvaluationError):
        evaluate("dev", {"runtime": "python2.7"})
    again = evaluate("dev")
    # THEN the next evaluation declares exactly what the first one did
    # (registration order follows Output resolution, so the URNs are compared as sets)
    assert sorted(r.urn for r in again.resources) == sorted(r.urn for r in dev_stack.resources)
    assert again.outputs == dev_stack.outputs
    assert {r.urn.split("::")[0] for r in prod_stack.resources} == {"urn:pulumi:prod"}
