"""The function code archive: the handlers package, reproducibly zipped, named by content hash."""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pytest

from artifacts.function_code import FunctionCodeError, build_function_archive

PROJECT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path) -> Path:
    pkg = tmp_path / "handlers"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ingestion.py").write_text("def handler(event, context):\n    return None\n")
    (pkg / "record.schema.json").write_text("{}")
    (pkg / "__pycache__" / "ingestion.cpython-311.pyc").write_bytes(b"\x00")
    (pkg / "stale.pyc").write_bytes(b"\x00")
    (pkg / "tests" / "test_x.py").write_text("")
    (pkg / "test_local.py").write_text("")
    (pkg / ".DS_Store").write_bytes(b"\x00")
    return tmp_path


def test_archive_holds_the_package_under_handlers_without_bytecode_or_tests(tmp_path: Path) -> None:
    # GIVEN a handlers package with bytecode, tests and host litter beside the code
    project = _project(tmp_path)
    # WHEN the archive is built
    archive = build_function_archive(project)
    # THEN it holds only the code and data files, under handlers/, in .build/functions
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert names == ["handlers/__init__.py", "handlers/ingestion.py", "handlers/record.schema.json"]
    assert archive.parent == project / ".build" / "functions"
    assert archive.name.startswith("handlers-")
    assert archive.suffix == ".zip"


def test_unchanged_sources_reuse_the_same_file(tmp_path: Path) -> None:
    # GIVEN an archive already built
    project = _project(tmp_path)
    first = build_function_archive(project)
    mtime = first.stat().st_mtime_ns
    # WHEN the sources are touched but not changed, and the archive is built again
    time.sleep(0.01)
    (project / "handlers" / "ingestion.py").touch()
    second = build_function_archive(project)
    # THEN the same path comes back and the file was not rewritten
    assert second == first
    assert second.stat().st_mtime_ns == mtime


def test_a_source_change_gives_a_new_name(tmp_path: Path) -> None:
    # GIVEN an archive already built
    project = _project(tmp_path)
    first = build_function_archive(project)
    # WHEN a handler changes
    (project / "handlers" / "ingestion.py").write_text("def handler(event, context):\n    return 1\n")
    second = build_function_archive(project)
    # THEN the archive has a different content-addressed name
    assert second != first
    assert second.is_file()
    assert first.is_file()


def test_a_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    # GIVEN a directory without handlers/
    # WHEN / THEN the error names the missing file and what to pass
    with pytest.raises(FunctionCodeError, match=r"handlers/__init__\.py not found"):
        build_function_archive(tmp_path)


def test_the_real_handlers_package_is_archived_once_and_then_reused(tmp_path: Path) -> None:
    # GIVEN a copy of this repository's handlers package (archived on every `pulumi preview`), built once
    shutil.copytree(PROJECT / "handlers", tmp_path / "handlers")
    first = build_function_archive(tmp_path)
    written = first.stat().st_mtime_ns
    # WHEN it is built again with nothing changed
    archive = build_function_archive(tmp_path)
    # THEN the same archive is reused, not rewritten, and it holds the package
    assert (archive, archive.stat().st_mtime_ns) == (first, written)
    with zipfile.ZipFile(archive) as zf:
        assert "handlers/__init__.py" in zf.namelist()
