"""The one place the tests evaluate the real Pulumi program under mocks.

`pulumi.runtime.set_mocks` is process-global, so every evaluation goes through
`devtools.harness.evaluate_stack` (which resets the runtime each time) from the fixtures below. The layer
zip is a tiny stub made here: building the real layer needs PyPI, and tests/layer tests the layer itself.
Every tier's throwaway PostgreSQL databases come from the `postgres` plugin (tests/postgres.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.harness import DeclaredStack, evaluate_stack, make_stub_layer  # noqa: E402

pytest_plugins = ("postgres", "parallel")

Evaluate = Callable[..., DeclaredStack]


@pytest.fixture(scope="session")
def stub_layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_stub_layer(tmp_path_factory.mktemp("layer"))


@pytest.fixture(scope="session")
def evaluate(stub_layer_zip: Path) -> Evaluate:
    """evaluate(stack="dev", config=None) -> DeclaredStack; config overrides win over Pulumi.<stack>.yaml."""

    def run(stack: str = "dev", config: Mapping[str, Any] | None = None) -> DeclaredStack:
        merged: dict[str, Any] = {"layer": {"archive": str(stub_layer_zip)}}
        merged.update(config or {})
        return evaluate_stack(stack, merged)

    return run


@pytest.fixture(scope="session")
def dev_stack(evaluate: Evaluate) -> DeclaredStack:
    return evaluate("dev")


@pytest.fixture(scope="session")
def prod_stack(evaluate: Evaluate) -> DeclaredStack:
    return evaluate("prod")
