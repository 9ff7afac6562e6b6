"""A function image whose handler burns CPU, run by this interpreter (the handler imports nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devtools.localrun.lambda_runtime import FunctionImage, Interpreter
from handlers.contract import LAMBDA_MEMORY_VARIABLE

BURNER = """
import os, time

def handler(event, context):
    # Burns CPU (not sleep: only CPU time is scaled) for event["burn"] seconds of this process.
    end = time.process_time() + event.get("burn", 0)
    while time.process_time() < end:
        pass
    return {
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
    }
"""


@pytest.fixture(scope="session")
def burner(tmp_path_factory: pytest.TempPathFactory) -> FunctionImage:
    """128 MB, 30 s; ``{"burn": seconds}`` is the event."""
    root = tmp_path_factory.mktemp("burner")
    (root / "task").mkdir()
    (root / "task" / "burn.py").write_text(BURNER)
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return FunctionImage(
        name="burner",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:burner",
        handler="burn.handler",
        task_root=root / "task",
        opt_dir=root,  # no layer, no runtime boto3: the handler needs neither
        runtime_dir=root,
        interpreter=Interpreter(Path(sys.executable), here, matches_runtime=True),
        environment={LAMBDA_MEMORY_VARIABLE: "10240"},  # a wrong value: the declared memory wins
        timeout_seconds=30,
        memory_mb=128,
    )
