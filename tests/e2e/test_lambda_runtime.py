"""The Lambda-like container: only the code root, the layer, the runtime's boto3 and the stdlib import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from e2e_expected import SAMPLES

from devtools.localrun.lambda_runtime import ContainerPool, FunctionImage, Interpreter, LambdaContainer
from devtools.localrun.layout import boto3_runtime_dir, precompile
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec
from handlers.contract import Stage

HANDLER = """
import json, sys, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    module_file = None
    if event.get("import"):
        module_file = getattr(__import__(event["import"]), "__file__", None)
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    print(json.dumps({"remaining_ms": context.get_remaining_time_in_millis()}))
    return {
        "path": sys.path,
        "function": context.function_name,
        "module_file": module_file,
        "request_id": context.aws_request_id,
    }
"""


def runtime_dir(cache: Path, interpreter: Interpreter) -> Path:
    directory = boto3_runtime_dir(cache / "runtime")
    precompile(directory, interpreter)
    return directory


@pytest.fixture(scope="module")
def image(
    tmp_path_factory: pytest.TempPathFactory, interpreter: Interpreter, runtime_cache: Path
) -> FunctionImage:
    root = tmp_path_factory.mktemp("container")
    (root / "task" / "app").mkdir(parents=True)
    (root / "task" / "app" / "__init__.py").write_text("")
    (root / "task" / "app" / "main.py").write_text(HANDLER)
    (root / "opt" / "python").mkdir(parents=True)
    return FunctionImage(
        name="probe",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:probe",
        handler="app.main.handler",
        task_root=root / "task",
        opt_dir=root / "opt",
        runtime_dir=runtime_dir(runtime_cache, interpreter),
        interpreter=interpreter,
        environment={"AWS_LAMBDA_FUNCTION_NAME": "probe"},
        timeout_seconds=30,
        memory_mb=128,
    )


@pytest.fixture
def container(image: FunctionImage) -> Iterator[Callable[[FunctionImage], LambdaContainer]]:
    started: list[LambdaContainer] = []

    def start(img: FunctionImage) -> LambdaContainer:
        started.append(LambdaContainer(img))
        return started[-1]

    yield start
    for c in started:
        c.stop()


def test_sys_path_is_code_root_then_layer_then_runtime_then_stdlib(image: FunctionImage, container) -> None:
    result = container(image).invoke({})
    assert result.ok, result.error
    path = result.payload["path"]
    assert path[:4] == [
        str(image.task_root),
        str(image.opt_dir / "python" / "lib" / image.interpreter.runtime / "site-packages"),
        str(image.opt_dir / "python"),
        str(image.runtime_dir),
    ]
    assert not any("site-packages" in p for p in path[4:]), path
    assert result.payload["function"] == "probe"


def test_a_package_of_the_virtualenv_is_not_importable(image: FunctionImage, container) -> None:
    # GIVEN sqlalchemy, installed in the test virtualenv but neither in the code root nor in this empty layer
    result = container(image).invoke({"import": "sqlalchemy"})
    assert not result.ok
    assert result.error["errorType"] == "ModuleNotFoundError"
    assert "sqlalchemy" in result.error["errorMessage"]


def test_boto3_comes_from_the_runtime_directory(image: FunctionImage, container) -> None:
    result = container(image).invoke({"import": "boto3"})
    assert result.ok, result.error
    assert Path(result.payload["module_file"]).resolve().is_relative_to(image.runtime_dir.resolve())


def test_a_wrong_handler_string_fails_as_lambda_does(image: FunctionImage, container) -> None:
    missing_function = container(replace(image, handler="app.main.nope")).invoke({})
    missing_module = container(replace(image, handler="app.absent.handler")).invoke({})
    assert missing_function.error["errorType"] == "Runtime.HandlerNotFound"
    assert missing_module.error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app.absent'" in missing_module.error["errorMessage"]


def test_a_container_stays_warm_between_invocations_and_frames_each_log(
    image: FunctionImage, container
) -> None:
    warm = container(image)
    first, failed, second = warm.invoke({}), warm.invoke({"fail": True}), warm.invoke({})
    assert first.ok
    assert second.ok
    assert failed.error["errorType"] == "RuntimeError"
    assert any("remaining_ms" in line for line in first.log_lines)
    assert any("[ERROR] RuntimeError: asked to fail" in line for line in failed.log_lines)
    assert not any("asked to fail" in line for line in second.log_lines)


@pytest.mark.network
def test_a_wrong_declared_handler_string_fails_the_stage_in_the_run(
    dev_spec: PipelineSpec, run_pipeline: Callable[..., RunResult]
) -> None:
    # GIVEN the ingestion function declared with a handler its archive does not define
    ingestion = replace(dev_spec.stage(Stage.INGESTION), handler="handlers.ingestion_handler.handle")
    result = run_pipeline(dev_spec.with_stage(ingestion), [SAMPLES / "orders" / "late-order.json"])
    # THEN the event fails in ingestion as in AWS and nothing downstream runs
    assert [(f.stage, f.error_type) for f in result.failures] == [
        (Stage.INGESTION, "Runtime.HandlerNotFound")
    ]
    assert result.stages[Stage.PROCESSING].invocations == 0


def test_a_timed_out_invocation_is_killed_and_the_next_gets_a_fresh_container(
    image: FunctionImage, container
) -> None:
    short = container(replace(image, timeout_seconds=1))
    timed_out = short.invoke({"sleep": 30}, init_seconds=0.5)
    after = short.invoke({})
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out.error["errorMessage"]
    assert after.ok, after.error


def test_without_the_stacks_runtime_the_current_interpreter_stands_in_and_says_so() -> None:
    import sys

    from devtools.localrun.lambda_runtime import find_interpreter

    found = find_interpreter("python3.99")
    assert found.path == Path(sys.executable)
    assert found.matches_runtime is False
    assert found.runtime == f"python{sys.version_info[0]}.{sys.version_info[1]}"


def test_a_pool_invokes_under_the_request_id_it_is_given(image: FunctionImage) -> None:
    # GIVEN a pool (the local run retries an event under the request id of its first attempt, as Lambda
    # does, so that the failure record names the id the handler saw)
    pool = ContainerPool(image)
    try:
        # WHEN an event is invoked twice under one request id
        results = [pool.invoke({}, "req-retried") for _ in range(2)]
    finally:
        pool.close()
    # THEN the handler saw that id both times
    assert [(r.request_id, r.payload["request_id"]) for r in results] == [("req-retried", "req-retried")] * 2


def test_a_warm_invocation_gets_the_declared_timeout_without_the_init_allowance(
    image: FunctionImage, container
) -> None:
    # GIVEN a warm container of a function with a 1 s timeout
    warm = container(replace(image, timeout_seconds=1))
    assert warm.invoke({}).ok
    # WHEN an invocation runs 3 s (within the 5 s the first invocation may spend importing)
    result = warm.invoke({"sleep": 3})
    # THEN it is timed out as Lambda would, its process killed, and the next event gets a new one
    assert result.error["errorType"] == "Sandbox.Timedout"
    assert not warm.alive
    assert warm.invoke({}).ok
    assert warm.starts == 2
