"""The function code archive: the ``handlers/`` package, zipped reproducibly, named by its hash.

``__main__.py`` calls :func:`build_function_archive` on every preview, so it stays cheap: the
handlers are a few dozen small files, zipped in memory (a few ms) and written only when no file of
that content exists yet. Naming the file by the hash of its bytes makes the path itself a content
address: the same sources give the same path and the same bytes, so Pulumi sees no diff.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from artifacts.reproducible_zip import iter_tree, write_bytes_atomic, zip_bytes

__all__ = ["FUNCTIONS_DIR", "HASH_PREFIX_LENGTH", "PACKAGE", "FunctionCodeError", "build_function_archive"]

PACKAGE = "handlers"
FUNCTIONS_DIR = PurePosixPath(".build/functions")
HASH_PREFIX_LENGTH = 16
"""64 bits of sha256: collisions between versions of one package are not a practical concern."""

_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


class FunctionCodeError(FileNotFoundError):
    """The handlers package to archive is missing or empty."""


def _include(rel: PurePosixPath) -> bool:
    name = rel.name
    if name.startswith("."):  # .DS_Store, editor state, .gitignore: host artefacts, not code.
        return False
    if name in _EXCLUDED_DIRS:
        return False
    if name.endswith(_EXCLUDED_SUFFIXES):
        return False
    return not (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py")


def build_function_archive(project_dir: Path) -> Path:
    """Zip ``project_dir/handlers`` into ``project_dir/.build/functions/handlers-<sha256 prefix>.zip``.

    Entries are named ``handlers/...`` so the handler strings are ``handlers.<module>.handler``.
    Returns the archive's path; an existing file with the same name is reused untouched.
    """
    package_dir = project_dir / PACKAGE
    if not (package_dir / "__init__.py").is_file():
        raise FunctionCodeError(
            f"cannot build the function archive: {package_dir}/__init__.py not found; "
            "pass the project directory (the one holding Pulumi.yaml and handlers/)"
        )
    entries = dict(iter_tree(package_dir, prefix=f"{PACKAGE}/", include=_include))
    data = zip_bytes(entries)
    digest = hashlib.sha256(data).hexdigest()[:HASH_PREFIX_LENGTH]
    dest = project_dir / FUNCTIONS_DIR / f"{PACKAGE}-{digest}.zip"
    if dest.is_file() and dest.stat().st_size == len(data):
        return dest
    return write_bytes_atomic(dest, data)
