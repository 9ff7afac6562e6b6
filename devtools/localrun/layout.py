"""The function layout on disk, as Lambda lays it out: the code root, the layer, the runtime's boto3.

Each function gets its code archive unpacked as the code root (``task/``), its layer unpacked as ``opt/``
(read-only in Lambda, so unpacked once per content and shared) and a ``runtime/`` directory holding boto3
and its dependencies, which Lambda's Python runtime provides and the layer leaves out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path

from devtools.localrun.lambda_runtime import Interpreter, LambdaRuntimeError

BOTO3_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
"""What Lambda's runtime ships for ``import boto3`` (the same versions as this virtualenv's pins)."""


def _copy_distribution_files(name: str, dest: Path) -> None:
    dist = importlib.metadata.distribution(name)
    for file in dist.files or []:
        parts = Path(str(file)).parts
        if parts[0] == ".." or "__pycache__" in parts or str(file).endswith(".pyc"):
            continue  # console scripts and bytecode are host artefacts, not the library
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            target = dest / Path(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def boto3_runtime_dir(cache_dir: Path) -> Path:
    """A directory holding only boto3 and its dependencies, as Lambda's ``/var/runtime`` does.

    Copied from this virtualenv's pinned distributions (pure Python, so valid for every runtime version),
    so the local run needs no network and uses the same boto3 the tests pin.
    """
    versions = {name: importlib.metadata.version(name) for name in BOTO3_DISTRIBUTIONS}
    key = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:16]
    dest = cache_dir / f"boto3-{key}"
    if (dest / ".complete").is_file():
        return dest
    tmp = cache_dir / f".boto3-{key}-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        for name in BOTO3_DISTRIBUTIONS:
            _copy_distribution_files(name, tmp)
        (tmp / ".complete").write_text(json.dumps(versions, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def precompile(directory: Path, interpreter: Interpreter) -> None:
    """Byte-compile ``directory`` once for ``interpreter``, as Lambda's runtime ships compiled boto3.

    Without it every cold start would compile boto3 (about a second); the containers run with ``-B``
    and so never write bytecode themselves.
    """
    marker = directory / f".compiled-{interpreter.version}"
    if marker.is_file():
        return
    subprocess.run(
        [
            str(interpreter.path),
            "-I",
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(directory),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    marker.write_text(str(interpreter.path))


def unpack_zip(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into ``dest`` (replacing it); refuses entries that would escape ``dest``."""
    if not archive.is_file():
        raise LambdaRuntimeError(f"declared archive {archive} does not exist")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(root):
                raise LambdaRuntimeError(f"{archive}: entry {info.filename!r} escapes the archive root")
        zf.extractall(dest)
    return dest


def unpack_cached(archive: Path, cache_dir: Path) -> Path:
    """``archive`` unpacked once under ``cache_dir``, keyed by content (a layer is read-only in Lambda)."""
    if not archive.is_file():
        raise LambdaRuntimeError(f"declared archive {archive} does not exist")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    dest = cache_dir / digest
    if (dest / ".complete").is_file():
        return dest
    tmp = unpack_zip(archive, cache_dir / f".{digest}-{uuid.uuid4().hex}")
    (tmp / ".complete").write_text(str(archive))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest
