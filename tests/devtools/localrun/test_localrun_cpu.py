"""Lambda's CPU in the local run: the factor, the scaled time, the timeout it enforces, and the flag."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from devtools.__main__ import _parser
from devtools.localrun.cpu import cpu_factor
from devtools.localrun.lambda_runtime import TIMED_OUT, FunctionImage, LambdaContainer
from handlers.contract import FULL_VCPU_MEMORY_MB


@contextmanager
def running(image: FunctionImage) -> Iterator[LambdaContainer]:
    """A container of ``image``, killed afterwards."""
    container = LambdaContainer(image)
    try:
        yield container
    finally:
        container.stop(kill=True)


@pytest.mark.parametrize(
    ("memory_mb", "factor"),
    [
        (128, FULL_VCPU_MEMORY_MB / 128),
        (512, FULL_VCPU_MEMORY_MB / 512),
        (FULL_VCPU_MEMORY_MB, 1.0),
        (3008, 1.0),
    ],
)
def test_the_factor_is_the_full_vcpu_memory_over_the_memory_and_never_below_one(
    memory_mb: int, factor: float
) -> None:
    assert cpu_factor(memory_mb) == pytest.approx(factor)


def test_a_memory_that_is_not_positive_has_no_factor() -> None:
    with pytest.raises(ValueError, match="positive"):
        cpu_factor(0)


def test_a_handler_whose_scaled_cpu_passes_the_timeout_is_stopped_with_sandbox_timedout(
    burner: FunctionImage,
) -> None:
    # GIVEN 128 MB (a 13.8x CPU factor) and a 1 s timeout: a CPU budget of about 72 ms here
    with running(replace(burner, timeout_seconds=1)) as short:
        # WHEN the handler would burn 20 s of CPU
        result = short.invoke({"burn": 20})
        # THEN the sandbox is replaced, as Lambda replaces a timed-out one
        assert not short.alive
        assert short.invoke({}).ok
        assert short.starts == 2
    # AND it was stopped long before it would have finished, as Lambda's timeout would stop it
    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == TIMED_OUT
    assert result.error["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds"
    )
    # (stopped by its CPU budget inside the container, not killed from outside at the wall-clock deadline)
    assert 0 < result.cpu_ms < 5000, "the handler was not stopped at its CPU budget"
    assert result.duration_ms < 5000
    assert result.lambda_ms == 1000.0
    assert any("Task timed out after 1.00 seconds" in line for line in result.log_lines)


def test_without_scaling_the_same_cpu_fits_the_timeout_and_no_lambda_time_is_claimed(
    burner: FunctionImage,
) -> None:
    # GIVEN 0.3 s of CPU, which at 128 MB would be about 4 s on Lambda, over a 2 s timeout
    with running(replace(burner, timeout_seconds=2)) as container:
        scaled = container.invoke({"burn": 0.3})
    with running(replace(burner, timeout_seconds=2, cpu_scaling=False)) as container:
        unscaled = container.invoke({"burn": 0.3})
    # THEN scaled it times out; unscaled (--no-cpu-scaling) it succeeds with its CPU time measured
    assert (scaled.error or {}).get("errorType") == TIMED_OUT
    assert unscaled.ok, unscaled.error
    assert unscaled.lambda_ms is None
    assert unscaled.cpu_ms >= 300


def test_the_remaining_time_counts_the_scaled_cpu_time(burner: FunctionImage) -> None:
    # GIVEN 128 MB (factor 13.8) and a 10 s timeout
    image = replace(burner, timeout_seconds=10)
    # WHEN the handler burns 0.3 s of CPU (about 4.1 s on Lambda), then asks for its remaining time
    with running(image) as container:
        result = container.invoke({"burn": 0.3})
    # THEN the remaining time is the timeout minus the scaled CPU used: far less than the wall clock says
    # (it is the smaller of the two, and here the wall time would have to be 13.8 times the CPU time)
    assert result.ok, result.error
    assert result.lambda_ms is not None
    remaining = result.payload["remaining_ms"]
    # (the wall clock's remaining time is the bound instead when a busy machine made the wall the longer)
    used_ms = max(result.lambda_ms, result.duration_ms)
    assert 10_000 - used_ms - 1 <= remaining <= 10_000 - 300 * cpu_factor(image.memory_mb)
    assert f"Scaled CPU Duration: {result.lambda_ms:.2f} ms" in result.log_lines[-1]


def test_the_handler_sees_the_declared_memory_and_lambdas_variables(
    burner: FunctionImage,
) -> None:
    with running(burner) as container:
        result = container.invoke({})
    assert result.ok, result.error
    assert result.payload["memory"] == str(burner.memory_mb)
    assert result.payload["function"] == burner.name
    assert result.payload["task_root"] == str(burner.task_root)
    assert result.max_memory_mb > 0
    assert result.max_memory_mb < 1024, "the peak is the container's own, not the runner's"


class _Called(Exception):
    pass


def test_the_no_cpu_scaling_flag_reaches_the_run_and_is_documented(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devtools.localrun import command

    def run(files: object, **options: object) -> None:
        raise _Called(options)

    monkeypatch.setattr(command, "run", run)
    for argv, expected in ((["run", "samples/"], True), (["run", "samples/", "--no-cpu-scaling"], False)):
        with pytest.raises(_Called) as called:
            command.main(_parser().parse_args(argv))
        assert called.value.args[0]["cpu_scaling"] is expected
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--help"])
    assert "--no-cpu-scaling" in capsys.readouterr().out
