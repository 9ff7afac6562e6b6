"""The real layer, built with pip from PyPI for the Lambda target, then taken apart and imported.

Marked ``network`` (pip needs the index) except the offline test, which needs none by design.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from artifacts.function_code import build_function_archive
from layer.build import (
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_BYTES,
    LayerSpec,
    build_layer,
    check_size_budget,
    elf_machine,
)
from tests.layer.support import REAL_SPECS, extract, refused_build, require_interpreter

ROOT = Path(__file__).resolve().parents[2]
Layers = Callable[[str], Path]

# Runs under `python -I -S`: no site-packages, no PYTHONPATH, no user site; the layer goes on the path
# by hand, so whatever imports came from the layer or from the standard library, nothing else.
IMPORT_PROBE = r"""
import importlib, json, pkgutil, sys
layer = sys.argv[1]
sys.path.insert(0, layer)
leaks = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
import psycopg2, psycopg2._psycopg, sqlalchemy
from sqlalchemy.dialects.postgresql import psycopg2 as dialect
engine = sqlalchemy.create_engine("postgresql+psycopg2://user@localhost/db")
top = sorted(m.name for m in pkgutil.iter_modules([layer]) if not m.name.startswith("_"))
files = {name: importlib.import_module(name).__file__ for name in top}
files["psycopg2._psycopg"] = psycopg2._psycopg.__file__
print(json.dumps({"leaks": leaks, "files": files, "driver": engine.dialect.driver,
                  "libpq": psycopg2.__libpq_version__}))
"""


def _import_in_isolation(python: str, site: Path) -> dict:
    result = subprocess.run(
        [python, "-I", "-S", "-c", IMPORT_PROBE, str(site)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _assert_imported_from_layer(report: dict, site: Path) -> None:
    assert report["leaks"] == []
    assert report["driver"] == "psycopg2"
    assert {"psycopg2", "psycopg2._psycopg", "sqlalchemy"} <= report["files"].keys()
    outside = {name: path for name, path in report["files"].items() if not path.startswith(str(site))}
    assert outside == {}


def _shared_objects(archive: Path) -> dict[str, str | None]:
    machines = {}
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if ".so" in Path(info.filename).name:
                header = zf.read(info.filename)[:20]
                probe = archive.parent / ".elf-probe"
                probe.write_bytes(header)
                machines[info.filename] = elf_machine(probe)
                probe.unlink()
    return machines


@pytest.mark.network
def test_layer_for_the_running_interpreter_imports_with_only_the_stdlib_beside_it(
    real_layers: Layers, tmp_path: Path
) -> None:
    # GIVEN the layer built for the interpreter running the tests, unzipped
    site = extract(real_layers("running"), tmp_path)
    # WHEN psycopg2 (with its C extension) and SQLAlchemy are imported in an isolated interpreter
    report = _import_in_isolation(sys.executable, site)
    # THEN every module came from the layer, none from the virtualenv
    _assert_imported_from_layer(report, site)


@pytest.mark.network
@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_layer_imports_under_the_lambda_runtimes_interpreter(
    real_layers: Layers, tmp_path: Path, runtime: str
) -> None:
    # GIVEN that runtime's interpreter and its x86_64 layer, unzipped
    python = require_interpreter(runtime.removeprefix("python"))
    site = extract(real_layers(runtime), tmp_path)
    # WHEN the layer's modules are imported with that interpreter, in isolation
    report = _import_in_isolation(python, site)
    # THEN they import from the layer, the C extensions included
    _assert_imported_from_layer(report, site)
    assert report["files"]["psycopg2._psycopg"].endswith(
        f"cpython-{runtime[6:].replace('.', '')}-x86_64-linux-gnu.so"
    )


@pytest.mark.network
def test_runtime_layers_carry_bytecode_for_their_own_python_only(real_layers: Layers) -> None:
    # GIVEN the python3.13 layer, built where python3.13 exists
    require_interpreter("3.13")
    with zipfile.ZipFile(real_layers("python3.13")) as zf:
        pycs = [name for name in zf.namelist() if name.endswith(".pyc")]
    # WHEN / THEN SQLAlchemy is precompiled, and only for CPython 3.13
    assert "python/sqlalchemy/__pycache__/__init__.cpython-313.pyc" in pycs
    assert all(".cpython-313." in name for name in pycs)


@pytest.mark.network
@pytest.mark.parametrize(("name", "machine"), [("python3.13", "x86_64"), ("arm64", "aarch64")])
def test_shared_objects_are_built_for_the_layers_architecture_only(
    real_layers: Layers, name: str, machine: str
) -> None:
    # GIVEN a layer built for one architecture
    # WHEN every ELF shared object in it is read
    machines = _shared_objects(real_layers(name))
    # THEN there are some (psycopg2's C extension and libpq at least), all for that machine
    assert any("psycopg2/_psycopg" in path for path in machines)
    assert set(machines.values()) == {machine}


@pytest.mark.network
def test_two_builds_in_separate_caches_have_the_same_sha256(real_layers: Layers) -> None:
    # GIVEN the same spec built twice from scratch, each into its own cache
    first, second = real_layers("python3.12"), real_layers("python3.12-again")
    assert first.parent != second.parent
    # WHEN / THEN the zips are byte-identical (pycs included)
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(second.read_bytes()).hexdigest()


@pytest.mark.network
def test_a_cache_hit_on_the_real_layer_runs_no_pip(real_layers: Layers) -> None:
    # GIVEN a real layer in its cache
    archive = real_layers("python3.13")
    calls: list[list[str]] = []

    def refuse(argv, env):  # any command at all means the cache was missed
        calls.append(list(argv))
        raise AssertionError(f"unexpected command {argv}")

    # WHEN it is asked for again
    again = build_layer(REAL_SPECS["python3.13"], cache_dir=archive.parent, runner=refuse, progress=print)
    # THEN the same file comes back and nothing ran
    assert again == archive
    assert calls == []


@pytest.mark.network
def test_the_default_layer_leaves_boto3_to_the_runtime(real_layers: Layers) -> None:
    # GIVEN the default python3.13 layer WHEN its top-level entries are listed
    with zipfile.ZipFile(real_layers("python3.13")) as zf:
        top = {name.split("/")[1] for name in zf.namelist()}
    # THEN boto3 and botocore are absent, the handlers' dependencies present
    assert not {"boto3", "botocore", "s3transfer"} & top
    assert {"psycopg2", "sqlalchemy"} <= top


@pytest.mark.network
@pytest.mark.parametrize("name", ["python3.13", "arm64"])
def test_layer_and_function_code_fit_lambdas_limits(real_layers: Layers, name: str) -> None:
    # GIVEN a real layer and the real function code archive
    layer_zip = real_layers(name)
    function_zip = build_function_archive(ROOT)
    # WHEN the budget is checked
    zipped, unzipped = check_size_budget(layer_zip, function_zip)
    # THEN both limits hold, with room to spare for the handlers' growth
    assert zipped < MAX_ZIPPED_BYTES * 0.6
    assert unzipped < MAX_UNZIPPED_BYTES * 0.4


def test_offline_without_a_cache_entry_fails_with_what_why_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a package index nothing listens on, no pip config or find-links, and an empty cache
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip names the connection error only when it retries
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("orjson==3.13.0\n")
    spec = LayerSpec(runtime="python3.13", requirements=requirements, compile_bytecode=False)
    cache = tmp_path / "cache"
    # WHEN the layer is built THEN it fails, and the message names the failure, the cause and the ways
    # out; nothing is cached
    message = refused_build(spec, cache)
    assert "pip could not install the layer's requirements for python3.13 on x86_64" in message
    assert "the package index is unreachable" in message
    assert "data-pipeline:layer.archive" in message
    assert "127.0.0.1" in message
    assert list(cache.iterdir()) == []
