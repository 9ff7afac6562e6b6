"""Build the shared Lambda layer for the Lambda target, reproducibly, and cache it.

The layer is installed for the *function's* platform, not for the machine running Pulumi: pip is told
the Lambda runtime's Python version, CPython, and the manylinux tags that Lambda's glibc (2.34, Amazon
Linux 2023) accepts for the stack's architecture, and is allowed binary wheels only. A layer built
that way on a laptop imports on Lambda; one built with a plain ``pip install`` fails there with
``No module named 'psycopg2._psycopg'``.

Lambda mounts layers read-only under ``/opt``, so Python cannot cache bytecode there: without
``.pyc`` files every cold start compiles SQLAlchemy again. When the runtime's interpreter exists on
this machine the build precompiles with it, using unchecked-hash pycs (no timestamps inside) and a
fixed hash seed so the bytes do not change from one build to the next.

The zip is reproducible (see :mod:`artifacts.reproducible_zip`) and cached under a key of everything
that decides its content, so a second ``pulumi preview`` finds it and runs no pip at all. Each build
works in a temporary directory inside the cache directory and only a final rename publishes the
zip, so a failed or interrupted build never leaves a cache entry behind.

CLI: ``python -m layer.build --runtime python3.13 --architecture x86_64 [--include-boto3]`` prints
the zip's path on stdout and its progress on stderr.
"""

from __future__ import annotations

import argparse
import email.parser
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from artifacts.reproducible_zip import iter_tree, write_zip

__all__ = [
    "ARCHITECTURES",
    "BUILDER_VERSION",
    "DEFAULT_CACHE_DIR",
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "SUPPORTED_RUNTIMES",
    "LayerBuildError",
    "LayerContentError",
    "LayerSpec",
    "LayerSpecError",
    "LayerTooLargeError",
    "PackageIndexError",
    "build_layer",
    "cache_key",
    "check_size_budget",
    "elf_machine",
    "find_interpreter",
    "pip_install_command",
    "platform_tags",
    "unzipped_size",
]

BUILDER_VERSION = "2"
"""Part of the cache key: bump it when a change here changes the zip's content."""

LAYER_DIR = Path(__file__).resolve().parent
PROJECT_DIR = LAYER_DIR.parent
DEFAULT_REQUIREMENTS = LAYER_DIR / "requirements.txt"
BOTO3_REQUIREMENTS = LAYER_DIR / "requirements-boto3.txt"
DEFAULT_CACHE_DIR = PROJECT_DIR / ".build" / "layers"

SUPPORTED_RUNTIMES = ("python3.12", "python3.13")
RUNNING_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
"""Accepted as well, so the layer can be import-tested by the interpreter running the build."""

ARCHITECTURES: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}
"""Lambda's architecture name → the machine name in manylinux tags and ELF headers."""

_ELF_MACHINES: Mapping[int, str] = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i386", 0x28: "arm"}

LAMBDA_GLIBC_MINOR = 34
"""Amazon Linux 2023 (the python3.12 and python3.13 runtimes) ships glibc 2.34."""

MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
"""Lambda's limit for the function code and all its layers together, unzipped."""

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
"""Lambda's limit for a zip uploaded directly (PublishLayerVersion without S3)."""

OPT_PYTHON = "/opt/python"
"""Where Lambda mounts the layer's ``python/``; the path recorded in the pycs for tracebacks."""

_HOST_ARTEFACTS = frozenset({"INSTALLER", "REQUESTED", "direct_url.json"})
_BOTO3_FAMILY = frozenset({"boto3", "botocore", "s3transfer"})
_INDEX_UNREACHABLE = re.compile(
    r"NewConnectionError|ConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|timed out|Could not fetch URL|"
    r"SSLError|ProxyError",
    re.IGNORECASE,
)

Progress = Callable[[str], None]
Runner = Callable[[Sequence[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]


class LayerBuildError(RuntimeError):
    """The layer could not be built; the message says what failed, why, and what to do."""


class LayerSpecError(LayerBuildError, ValueError):
    """A LayerSpec names a runtime, architecture or requirements file the build cannot serve."""


class PackageIndexError(LayerBuildError):
    """pip could not get the layer's wheels (index unreachable, or no wheel for the Lambda target)."""


class LayerContentError(LayerBuildError):
    """The installed layer is not what Lambda needs: wrong-architecture binaries, unpinned packages."""


class LayerTooLargeError(LayerBuildError):
    """The layer breaks one of Lambda's size limits."""


@dataclass(frozen=True)
class LayerSpec:
    """What to build; every field is part of the cache key."""

    runtime: str = "python3.13"
    """Lambda runtime identifier, ``python3.12`` or ``python3.13`` (or the running interpreter's)."""
    architecture: str = "x86_64"
    """Lambda architecture, ``x86_64`` or ``arm64``."""
    include_boto3: bool = False
    """Pin boto3/botocore in the layer (``layer/requirements-boto3.txt``) instead of the runtime's."""
    requirements: Path = field(default=DEFAULT_REQUIREMENTS)
    """The pinned requirements file of the layer's content."""
    compile_bytecode: bool = True
    """Precompile .pyc when the runtime's interpreter is on this machine (off only to measure)."""

    def __post_init__(self) -> None:
        problems = []
        if self.runtime not in (*SUPPORTED_RUNTIMES, RUNNING_RUNTIME):
            problems.append(f"runtime {self.runtime!r} is not one of {', '.join(SUPPORTED_RUNTIMES)}")
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        if not Path(self.requirements).is_file():
            problems.append(f"requirements file {self.requirements} does not exist")
        if problems:
            raise LayerSpecError("invalid layer spec: " + "; ".join(problems))
        object.__setattr__(self, "requirements", Path(self.requirements).resolve())

    @property
    def python_version(self) -> str:
        """``"3.13"`` for ``python3.13``."""
        return self.runtime.removeprefix("python")

    @property
    def machine(self) -> str:
        """``"aarch64"`` for ``arm64``."""
        return ARCHITECTURES[self.architecture]

    @property
    def requirement_files(self) -> tuple[Path, ...]:
        """The requirement files pip installs, in order."""
        return (self.requirements, BOTO3_REQUIREMENTS) if self.include_boto3 else (self.requirements,)


# --------------------------------------------------------------------------------------------------
# Pure pieces: platform tags, the pip command, the cache key, ELF headers, size accounting.


def platform_tags(architecture: str) -> tuple[str, ...]:
    """Every manylinux tag Lambda's glibc 2.34 runs, newest first (pip prefers earlier tags).

    pip does not expand ``manylinux_2_34`` to the older glibc versions it implies, so each is named:
    some pinned wheels carry only ``manylinux_2_28`` (psycopg2-binary on aarch64), most ``2_17``.
    ``manylinux2014`` lets pip add the legacy ``manylinux2010``/``manylinux1`` aliases itself.
    """
    machine = ARCHITECTURES[architecture]
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(LAMBDA_GLIBC_MINOR, 16, -1)]
    return (*tags, f"manylinux2014_{machine}")


def pip_install_command(spec: LayerSpec, target: Path, python: str = sys.executable) -> list[str]:
    """The pip command that installs the layer's wheels for the Lambda target into ``target``."""
    command = [python, "-m", "pip", "install", "--target", str(target), "--only-binary=:all:"]
    command += ["--implementation", "cp", "--python-version", spec.python_version]
    for tag in platform_tags(spec.architecture):
        command += ["--platform", tag]
    command += ["--no-compile", "--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    for requirements in spec.requirement_files:
        command += ["--requirement", str(requirements)]
    return command


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


def elf_machine(path: Path) -> str | None:
    """The machine an ELF file is built for (``x86_64``, ``aarch64``...), or None if not ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    byteorder = "little" if header[5] == 1 else "big"
    code = int.from_bytes(header[18:20], byteorder)
    return _ELF_MACHINES.get(code, f"unknown(0x{code:x})")


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


# --------------------------------------------------------------------------------------------------
# Edges: running commands and finding interpreters.


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``env``, capturing its output; never raises on a non-zero exit."""
    return subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)


def _stderr_progress(message: str) -> None:
    print(f"[layer] {message}", file=sys.stderr, flush=True)


def _probe_version(executable: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def find_interpreter(python_version: str) -> tuple[str, str] | None:
    """``(executable, full version)`` of a CPython ``python_version`` on this machine, or None.

    Looks at the running interpreter, then pyenv's versions, then ``pythonX.Y`` on PATH; every
    candidate is run once, because a pyenv shim on PATH exists but may exit 127.
    """
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python_version == running:
        return sys.executable, ".".join(map(str, sys.version_info[:3]))
    pattern = _pyenv_root() / "versions" / f"{python_version}.*" / "bin" / f"python{python_version}"
    candidates = sorted(glob.glob(str(pattern)), reverse=True)
    on_path = shutil.which(f"python{python_version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        version = _probe_version(candidate)
        if version and ".".join(version.split(".")[:2]) == python_version:
            return candidate, version
    return None


# --------------------------------------------------------------------------------------------------
# The build.


def _requirement_pins(paths: Iterable[Path]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for path in paths:
        for number, raw in enumerate(path.read_text().splitlines(), start=1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement as exc:
                raise LayerSpecError(
                    f"{path}:{number}: {line!r} is not a requirement the layer build understands ({exc}); "
                    "list one pinned package per line, e.g. 'SQLAlchemy==2.0.58'"
                ) from exc
            specifiers = list(requirement.specifier)
            if len(specifiers) != 1 or specifiers[0].operator != "==":
                raise LayerSpecError(
                    f"{path}:{number}: {line!r} is not pinned; the layer must be reproducible, "
                    f"so pin an exact version ('{requirement.name}==X.Y.Z')"
                )
            pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def _installed_distributions(site: Path) -> dict[str, str]:
    installed = {}
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        headers = email.parser.HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
        installed[canonicalize_name(headers["Name"])] = headers["Version"]
    return installed


def _strip_host_artefacts(site: Path) -> None:
    """Remove what pip writes about *this* machine, so the tree depends on the wheels alone."""
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.is_file() and (path.suffix in {".pyc", ".pyo"} or path.name in _HOST_ARTEFACTS):
            path.unlink()
    # Console scripts: their shebang names this machine's interpreter, and nothing on Lambda runs them.
    shutil.rmtree(site / "bin", ignore_errors=True)
    # C headers (greenlet's): pip files them under include/site/python<this interpreter's X.Y>, and
    # nothing on Lambda compiles against them.
    shutil.rmtree(site / "include", ignore_errors=True)
    for record in sorted(site.glob("*.dist-info/RECORD")):
        kept = [
            line
            for line in record.read_text(encoding="utf-8").splitlines()
            if line and (site / line.split(",", 1)[0]).is_file()
        ]
        record.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def _check_content(spec: LayerSpec, site: Path) -> None:
    problems = []
    pins = _requirement_pins(spec.requirement_files)
    installed = _installed_distributions(site)
    unpinned = {name: version for name, version in installed.items() if pins.get(name) != version}
    if unpinned:
        lines = ", ".join(f"{name}=={version}" for name, version in sorted(unpinned.items()))
        problems.append(
            f"pip installed packages the requirements do not pin exactly: {lines} (a dependency of a pinned "
            f"package); add these pins to {spec.requirements.name} so the layer stays reproducible"
        )
    if not spec.include_boto3 and (leaked := sorted(_BOTO3_FAMILY & installed.keys())):
        problems.append(
            f"{', '.join(leaked)} ended up in the layer though include_boto3 is off: a requirement depends "
            "on it; the runtime provides boto3, so drop that requirement or set layer.includeBoto3"
        )
    wrong = []
    for path in sorted(site.rglob("*.so*")):
        machine = elf_machine(path) if path.is_file() else None
        if machine is not None and machine != spec.machine:
            wrong.append(f"{path.relative_to(site)} ({machine})")
    if wrong:
        problems.append(
            f"shared objects for the wrong machine (expected {spec.machine}): {', '.join(wrong[:5])}"
            f"{' ...' if len(wrong) > 5 else ''}"
        )
    if problems:
        raise LayerContentError("layer content check failed: " + "; ".join(problems))


def _pip_failure(spec: LayerSpec, result: subprocess.CompletedProcess[str]) -> PackageIndexError:
    output = (result.stderr or "") + (result.stdout or "")
    tail = "\n".join(
        line for line in output.strip().splitlines()[-12:] if "is ignored: it is neither a file" not in line
    )
    target = f"{spec.runtime} on {spec.architecture} (manylinux, glibc <= 2.{LAMBDA_GLIBC_MINOR})"
    if _INDEX_UNREACHABLE.search(output):
        why = "the package index is unreachable"
        todo = (
            "connect to PyPI (or set PIP_INDEX_URL to a reachable mirror) and run again; or build on a "
            "connected machine with `python -m layer.build` and copy .build/layers/ here; or point the "
            "stack at a prebuilt zip with `pulumi config set data-pipeline:layer.archive <path>`"
        )
    elif "(from versions: none)" in output:
        why = (
            "pip saw no versions at all of a requirement: the package index is unreachable (with retries "
            "off pip does not say so) or it does not carry that package"
        )
        todo = (
            "check that the package index is reachable (PIP_INDEX_URL) and that every package in "
            f"{spec.requirements.name} publishes a binary wheel for {target} at the pinned version"
        )
    else:
        why = "pip found no matching wheel for the Lambda target or rejected a requirement"
        todo = (
            f"check that every package in {spec.requirements.name} publishes a binary wheel for {target} "
            "at the pinned version (the layer never builds from source, since the result must run on Lambda)"
        )
    return PackageIndexError(
        f"layer build failed: pip could not install the layer's requirements for {target}: {why}.\n"
        f"What to do: {todo}.\npip said (exit {result.returncode}):\n{tail}"
    )


def _pip_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def _compile_env(environ: Mapping[str, str]) -> dict[str, str]:
    # A fixed hash seed fixes the order of set and frozenset constants in the marshalled code.
    env = {key: environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in environ}
    env.update({"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"})
    return env


def _compile(site: Path, interpreter: str, runner: Runner, progress: Progress) -> None:
    # -s strips the temporary build path and -p records /opt/python, the layer's path on Lambda:
    # tracebacks then point at real files and no host path ends up in the bytes. One process, files
    # in compileall's sorted order, so the interning that marshal records is the same every build.
    command = [interpreter, "-s", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
    command += ["-s", str(site), "-p", OPT_PYTHON, str(site)]
    result = runner(command, _compile_env(os.environ))
    if result.returncode != 0:
        failed = (result.stdout or result.stderr or "").strip().splitlines()[:6]
        progress(
            "warning: some modules did not compile (they will be compiled at import instead): "
            + " | ".join(failed)
        )


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
    progress: Progress = _stderr_progress,
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
        result = runner(pip_install_command(spec, site), _pip_env(os.environ))
        if result.returncode != 0:
            raise _pip_failure(spec, result)
        _strip_host_artefacts(site)
        _check_content(spec, site)
        if not spec.compile_bytecode:
            progress("bytecode: off (compile_bytecode=False)")
        elif found is None:
            progress(
                f"bytecode: no python{spec.python_version} on this machine, so the layer has no .pyc and "
                "every cold start compiles its imports; install that Python (e.g. with pyenv) and rebuild"
            )
        else:
            progress(f"bytecode: compiling with {found[0]} ({found[1]}), unchecked-hash pycs")
            _compile(site, found[0], runner, progress)
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
