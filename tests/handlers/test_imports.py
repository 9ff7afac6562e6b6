"""Cold-start and runtime-compatibility checks of the shipped package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from handler_support import must_have

from handlers import contract
from layer.build import find_interpreter

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"


def imported_modules(*modules: str) -> set[str]:
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=HANDLERS.parent
    )
    return set(result.stdout.split())


def test_ingestion_and_processing_do_not_import_sqlalchemy() -> None:
    modules = imported_modules("handlers.ingestion_handler", "handlers.processing_handler")
    assert "handlers.ingestion_core" in modules
    assert not {m for m in modules if m.split(".")[0] in ("sqlalchemy", "psycopg2")}


def test_processing_imports_neither_the_ingestion_core_nor_jsonschema_rs() -> None:
    # the processing stage's cold start: framing is its own module, the record checks are ingestion's
    modules = imported_modules("handlers.processing_handler")
    assert {"handlers.framing", "handlers.aggregation", "handlers.documents"} <= modules
    assert not modules & {
        "handlers.ingestion_core",
        "handlers.records",
        "handlers.timestamps",
        "jsonschema_rs",
    }


def test_analytics_imports_sqlalchemy_only_when_a_database_is_used() -> None:
    modules = imported_modules("handlers.analytics_handler")
    assert "sqlalchemy" not in modules


def test_analytics_does_not_import_the_raw_framing() -> None:
    # the deadline guard every stage loads asks only whether a key is gzip (handlers.events.is_gzip)
    modules = imported_modules("handlers.analytics_handler")
    assert "handlers.deadline" in modules
    assert "handlers.framing" not in modules


def test_package_ships_its_default_schema() -> None:
    assert (HANDLERS / "record.schema.json").is_file()


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_handlers_compile_on_the_lambda_runtimes(version: str) -> None:
    found = find_interpreter(version)
    if found is None:
        must_have(f"a CPython {version} interpreter (pyenv's versions or python{version} on PATH)")
    interpreter = found[0]
    # -W error: 3.12+ turns invalid escape sequences into SyntaxWarnings; here they fail the test.
    files = sorted(str(path) for path in HANDLERS.glob("*.py"))
    compiled = subprocess.run(
        [interpreter, "-W", "error", "-c", COMPILE, *files], capture_output=True, text=True, check=False
    )
    assert compiled.returncode == 0, compiled.stderr
    # The standard-library-only modules run there too: config, events, metrics.
    ran = subprocess.run(
        [interpreter, "-c", SMOKE], capture_output=True, text=True, check=False, cwd=HANDLERS.parent
    )
    assert (ran.returncode, ran.stdout.strip()) == (0, f"{contract.INPUT_PREFIX}a b+c.json True"), ran.stderr


COMPILE = "import sys; [compile(open(f, encoding='utf-8').read(), f, 'exec') for f in sys.argv[1:]]"
SMOKE = """
from handlers.config import load_processing, default_record_schema
from handlers.events import object_refs
from handlers.metrics import Counts, emf_document
from handlers.contract import Env, Stage, INPUT_PREFIX, RECORD_METRIC_NAMES
config = load_processing({Env.PIPELINE_STAGE: Stage.PROCESSING, Env.DEST_BUCKET: "b"})
event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
          "s3": {"bucket": {"name": "b"}, "object": {"key": INPUT_PREFIX + "a+b%2Bc.json"}}}]}
[ref] = object_refs(event)
assert emf_document("N", Stage.PROCESSING, Counts(1, 1), {})[RECORD_METRIC_NAMES["records_read"]] == 1
print(ref.key, config.window_seconds == 3600 and "id" in default_record_schema()["required"])
"""
