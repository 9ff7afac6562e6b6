"""Build the shared Lambda layer for the Lambda target, reproducibly, and cache it.

The build runs pip for the *function's* platform (:mod:`layer.install`), removes what pip wrote about
this machine and checks the content (:mod:`layer.content`), precompiles the bytecode with the runtime's
interpreter when this machine has it (:mod:`layer.bytecode`, :mod:`layer.host`), and checks Lambda's size
limits. What is built is a :class:`~layer.spec.LayerSpec`; its errors are in :mod:`layer.errors`.

The zip is reproducible (see :mod:`artifacts.reproducible_zip`) and cached under a key of everything
that decides its content, so a second ``pulumi preview`` finds it and runs no pip at all. Each build
works in a temporary directory inside the cache directory and only a final rename publishes the
zip, so a failed or interrupted build never leaves a cache entry behind.

CLI: ``python -m layer.build --runtime python3.13 --architecture x86_64 [--include-boto3]`` prints
the zip's path on stdout and its progress on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from artifacts.reproducible_zip import iter_tree, write_zip
from layer.bytecode import compile_site
from layer.content import check_content, elf_machine, strip_host_artefacts
from layer.errors import (
    LayerBuildError,
    LayerContentError,
    LayerSpecError,
    LayerTooLargeError,
    PackageIndexError,
)
from layer.host import Progress, Runner, find_interpreter, run_command, stderr_progress
from layer.install import pip_env, pip_failure, pip_install_command
from layer.spec import (
    ARCHITECTURES,
    BOTO3_REQUIREMENTS,
    DEFAULT_REQUIREMENTS,
    PROJECT_DIR,
    RUNNING_RUNTIME,
    SUPPORTED_RUNTIMES,
    LayerSpec,
    platform_tags,
)

__all__ = [
    "ARCHITECTURES",
    "BOTO3_REQUIREMENTS",
    "BUILDER_VERSION",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_REQUIREMENTS",
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "RUNNING_RUNTIME",
    "SUPPORTED_RUNTIMES",
    "LayerBuildError",
    "LayerContentError",
    "LayerSpec",
    "LayerSpecError",
    "LayerTooLargeError",
    "PackageIndexError",
    "Progress",
    "Runner",
    "build_layer",
    "cache_key",
    "check_size_budget",
    "elf_machine",
    "find_interpreter",
    "pip_install_command",
    "platform_tags",
    "run_command",
    "unzipped_size",
]

BUILDER_VERSION = "2"
"""Part of the cache key: bump it when a change to any ``layer/*.py`` module changes the zip's content.

CI caches the layer under a hash of the requirements and of ``layer/*.py`` (``.github/workflows/pulumi.yml``),
so it builds again after any change here; the local cache (``.build/layers``) has only this key to go by.
"""

DEFAULT_CACHE_DIR = PROJECT_DIR / ".build" / "layers"

MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
"""Lambda's limit for the function code and all its layers together, unzipped."""

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
"""Lambda's limit for a zip uploaded directly (PublishLayerVersion without S3)."""


def cache_key(spec: LayerSpec, interpreter_version: str | None) -> str:
    """A file-name-safe key of everything that decides the layer's bytes.

    ``interpreter_version`` is the full version of the interpreter that compiles the bytecode
    (``None``: no bytecode), since the pycs it writes are part of the zip.
    """
    material = {
        "builder": BUILDER_VERSION,
        "runtime": spec.runtime,
        "architecture": spec.architecture,
        "include_boto3": spec.include_boto3,
        "bytecode": interpreter_version if spec.compile_bytecode else None,
        "platforms": platform_tags(spec.architecture),
        "requirements": [hashlib.sha256(path.read_bytes()).hexdigest() for path in spec.requirement_files],
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"{spec.runtime}-{spec.architecture}-{digest[:20]}"


def unzipped_size(archive: Path) -> int:
    """The bytes the zip occupies once Lambda extracts it."""
    with zipfile.ZipFile(archive) as zf:
        return sum(info.file_size for info in zf.infolist())


def check_size_budget(layer_zip: Path, function_zip: Path | None = None) -> tuple[int, int]:
    """Raise LayerTooLargeError if the layer breaks Lambda's limits; return (zipped, unzipped) bytes.

    The 250 MB unzipped limit counts the function code too, so pass its zip when it is known.
    """
    zipped = layer_zip.stat().st_size
    unzipped = unzipped_size(layer_zip)
    code = unzipped_size(function_zip) if function_zip is not None else 0
    problems = []
    if zipped > MAX_ZIPPED_BYTES:
        problems.append(
            f"the layer zip is {_mb(zipped)}, "
            f"over the {_mb(MAX_ZIPPED_BYTES)} Lambda accepts for a direct upload"
        )
    if unzipped + code > MAX_UNZIPPED_BYTES:
        problems.append(
            f"the layer ({_mb(unzipped)}) and function code ({_mb(code)}) unzip to {_mb(unzipped + code)}, "
            f"over Lambda's {_mb(MAX_UNZIPPED_BYTES)} limit"
        )
    if problems:
        raise LayerTooLargeError(
            f"layer {layer_zip.name} is too large: {'; '.join(problems)}. "
            "What to do: drop requirements the handlers do not import from layer/requirements.txt, "
            "leave boto3 out (layer.includeBoto3: false), or ship the code as a container image."
        )
    return zipped, unzipped


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _tree_size(site: Path) -> int:
    return sum(path.stat().st_size for _, path in iter_tree(site))


STALE_WORKDIR_SECONDS = 6 * 3600
"""A work directory this old was left by a killed build (SIGKILL skips the cleanup), not a running one."""


def _remove_abandoned_workdirs(cache_dir: Path) -> None:
    cutoff = time.time() - STALE_WORKDIR_SECONDS
    for workdir in cache_dir.glob(".building-*"):
        if workdir.is_dir() and workdir.stat().st_mtime < cutoff:
            shutil.rmtree(workdir, ignore_errors=True)


def build_layer(
    spec: LayerSpec,
    *,
    cache_dir: Path | None = None,
    progress: Progress = stderr_progress,
    runner: Runner = run_command,
) -> Path:
    """Return the path of the layer zip for ``spec``, building it unless the cache holds it.

    ``runner`` runs pip and compileall (injectable so tests can count or fake those calls).
    Raises LayerBuildError (PackageIndexError, LayerContentError, LayerTooLargeError) with a message
    that says what failed, why, and what to do.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    found = find_interpreter(spec.python_version) if spec.compile_bytecode else None
    key = cache_key(spec, found[1] if found else None)
    dest = cache_dir / f"{key}.zip"
    boto3 = "boto3 pinned in the layer" if spec.include_boto3 else "boto3 from the runtime"
    if dest.is_file():
        progress(f"{spec.runtime}/{spec.architecture} ({boto3}): cached {dest}")
        return dest

    started = time.monotonic()
    progress(f"{spec.runtime}/{spec.architecture} ({boto3}): not cached, building {dest.name}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_workdirs(cache_dir)
    workdir = Path(tempfile.mkdtemp(prefix=f".building-{key}-", dir=cache_dir))
    try:
        site = workdir / "python"
        progress(f"pip: installing {', '.join(p.name for p in spec.requirement_files)} for the Lambda target")
        result = runner(pip_install_command(spec, site), pip_env(os.environ))
        if result.returncode != 0:
            raise pip_failure(spec, result)
        strip_host_artefacts(site)
        check_content(spec, site)
        if not spec.compile_bytecode:
            progress("bytecode: off (compile_bytecode=False)")
        elif found is None:
            progress(
                f"bytecode: no python{spec.python_version} on this machine, so the layer has no .pyc and "
                "every cold start compiles its imports; install that Python (e.g. with pyenv) and rebuild"
            )
        else:
            progress(f"bytecode: compiling with {found[0]} ({found[1]}), unchecked-hash pycs")
            compile_site(site, found[0], runner, progress)
        size = _tree_size(site)
        if size > MAX_UNZIPPED_BYTES:
            raise LayerTooLargeError(
                f"layer for {spec.runtime}/{spec.architecture} unzips to {_mb(size)}, over Lambda's "
                f"{_mb(MAX_UNZIPPED_BYTES)} limit for code and layers together. What to do: drop "
                "requirements the handlers do not import, or leave boto3 out (layer.includeBoto3: false)."
            )
        progress(f"zip: writing {size / 1024 / 1024:.1f} MB of files")
        staged = write_zip(workdir / "layer.zip", dict(iter_tree(site, prefix="python/")))
        zipped, unzipped = check_size_budget(staged)
        os.replace(staged, dest)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    progress(
        f"done in {time.monotonic() - started:.1f}s: {dest} ({_mb(zipped)} zipped, {_mb(unzipped)} unzipped)"
    )
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layer.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", default="python3.13", help="python3.12 or python3.13")
    parser.add_argument("--architecture", default="x86_64", choices=sorted(ARCHITECTURES))
    parser.add_argument("--include-boto3", action="store_true", help="pin boto3/botocore in the layer")
    parser.add_argument("--no-bytecode", action="store_true", help="skip .pyc precompilation")
    parser.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    try:
        spec = LayerSpec(
            runtime=args.runtime,
            architecture=args.architecture,
            include_boto3=args.include_boto3,
            requirements=args.requirements,
            compile_bytecode=not args.no_bytecode,
        )
        path = build_layer(spec, cache_dir=args.cache_dir)
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
