"""A Lambda-like execution environment on this machine: layout, interpreter, warm containers.

Each function gets the layout Lambda gives it: its code archive unpacked as the code root (``task/``),
its layer unpacked as ``opt/`` (the zip's ``python/`` becomes ``opt/python``), and a ``runtime/`` directory
holding boto3 and its dependencies, which Lambda's Python runtime provides and the layer leaves out. A
container is one ``python -I -S`` process (no site-packages, no user site, no environment-driven paths)
running :mod:`devtools.localrun._bootstrap`, with exactly the function's environment: what the stack declares,
the variables Lambda reserves, the stage role's temporary credentials and the endpoint of the emulator.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
BOTO3_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
"""What Lambda's runtime ships for ``import boto3`` (the same versions as this virtualenv's pins)."""


class LambdaRuntimeError(RuntimeError):
    """The local Lambda environment could not be prepared."""


@dataclass(frozen=True)
class Interpreter:
    """The Python that plays the Lambda runtime."""

    path: Path
    version: str  # "3.13"
    matches_runtime: bool  # False: the stack's runtime was not found here, the current interpreter stands in

    @property
    def runtime(self) -> str:
        return f"python{self.version}"


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    found = shutil.which("pyenv")
    if found:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([found, "root"], capture_output=True, text=True, check=True, timeout=10)
            return Path(out.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def find_interpreter(runtime: str) -> Interpreter:
    """The machine's CPython for ``runtime`` (e.g. ``python3.13``): pyenv's, then PATH's, else this one."""
    match = re.fullmatch(r"python(3\.\d+)", runtime)
    if not match:
        raise LambdaRuntimeError(f"unsupported Lambda runtime {runtime!r}: expected pythonX.Y")
    version = match.group(1)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return Interpreter(Path(sys.executable), version, matches_runtime=True)
    candidates: list[Path] = []
    root = _pyenv_root()
    if root is not None:
        candidates += sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        # pyenv shims exit 127 when the version is not selected: only a binary that really runs counts.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([str(candidate), "-I", "-S", "-c", "pass"], check=True, timeout=30)
            return Interpreter(candidate, version, matches_runtime=True)
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return Interpreter(Path(sys.executable), here, matches_runtime=False)


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


@dataclass(frozen=True)
class FunctionImage:
    """Everything needed to start a container of one function."""

    name: str
    arn: str
    handler: str
    task_root: Path
    opt_dir: Path
    runtime_dir: Path
    interpreter: Interpreter
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    log_group: str = ""


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation returned: a payload or a Lambda-shaped error, and its log lines."""

    request_id: str
    ok: bool
    payload: object = None
    error: dict | None = None
    log_lines: tuple[str, ...] = ()
    duration_ms: float = 0.0

    @property
    def function_error(self) -> str:
        return "Unhandled"


@dataclass
class LambdaContainer:
    """One warm execution environment: a Python process serving invocations one after another."""

    image: FunctionImage
    _process: subprocess.Popen | None = field(default=None, init=False)
    _lines: queue.Queue = field(default_factory=queue.Queue, init=False)
    _results: object = field(default=None, init=False)
    _counter: itertools.count = field(default_factory=itertools.count, init=False)
    starts: int = field(default=0, init=False)  # processes started: cold starts
    _initialised: bool = field(default=False, init=False)  # its process has answered an invocation

    def start(self) -> None:
        self.stop(kill=True)  # a container that died (exit, timeout) is replaced, never reused
        self.starts += 1
        self._initialised = False
        self._lines = queue.Queue()  # its own queue: lines of a killed process never leak into the next
        read_fd, write_fd = os.pipe()
        image = self.image
        args = [
            str(image.interpreter.path),
            "-I",
            "-S",
            "-B",  # the code root is read-only in Lambda: nothing is written next to the code
            str(BOOTSTRAP),
            # absolute: the process starts in the code root, where relative paths would mean something else
            str(image.task_root.resolve()),
            str(image.opt_dir.resolve()),
            str(image.runtime_dir.resolve()),
            image.handler,
            str(write_fd),
        ]
        try:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=image.environment,
                cwd=image.task_root,
                pass_fds=(write_fd,),
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        finally:
            os.close(write_fd)
        self._results = os.fdopen(read_fd, "r", encoding="utf-8")
        threading.Thread(target=self._pump, args=(self._process.stdout, self._lines), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def invoke(
        self, event: object, request_id: str | None = None, init_seconds: float = 5.0
    ) -> InvocationResult:
        """One invocation. The first one of a process gets ``init_seconds`` beyond the declared timeout
        for importing the handler, which Lambda does not count against the timeout either (the
        bootstrap starts the function's own clock after the import); warm ones get the timeout alone."""
        if not self.alive:
            self.start()
        assert self._process is not None
        assert self._process.stdin is not None
        request_id = request_id or str(uuid.uuid4())
        request = {
            "requestId": request_id,
            "event": event,
            "timeoutSeconds": self.image.timeout_seconds,
            "invokedFunctionArn": self.image.arn,
        }
        started = time.monotonic()
        # Warm: the timeout plus a quarter second for the pipes between this process and the container.
        deadline = started + self.image.timeout_seconds + (0.25 if self._initialised else init_seconds)
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        lines: list[str] = []
        end_marker = f"END RequestId: {request_id}"
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop(kill=True)  # Lambda stops a timed-out sandbox; the next event gets a fresh one
                lines.append(f"{request_id} Task timed out after {self.image.timeout_seconds:.2f} seconds")
                return InvocationResult(
                    request_id,
                    ok=False,
                    error={"errorType": "Sandbox.Timedout", "errorMessage": lines[-1]},
                    log_lines=tuple(lines),
                    duration_ms=(time.monotonic() - started) * 1000,
                )
            if line is None:
                code = self._process.wait()
                self._process = None
                message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
                lines.append(message)
                return InvocationResult(
                    request_id,
                    ok=False,
                    error={"errorType": "Runtime.ExitError", "errorMessage": message},
                    log_lines=tuple(lines),
                    duration_ms=(time.monotonic() - started) * 1000,
                )
            if line == end_marker:
                break
            if not line.startswith(f"START RequestId: {request_id}"):
                lines.append(line)
        response = json.loads(self._results.readline())  # type: ignore[attr-defined]
        self._initialised = True
        return InvocationResult(
            request_id,
            ok=response["ok"],
            payload=response.get("payload"),
            error=response.get("error"),
            log_lines=tuple(lines),
            duration_ms=response.get("durationMs", 0.0),
        )

    def stop(self, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin:
                    process.stdin.close()
            if kill:
                process.kill()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._results is not None:
            with contextlib.suppress(OSError):
                self._results.close()  # type: ignore[attr-defined]
            self._results = None


class ContainerPool:
    """Warm containers of one function, reused like Lambda reuses execution environments."""

    def __init__(self, image: FunctionImage) -> None:
        self.image = image
        self._idle: list[LambdaContainer] = []
        self._all: list[LambdaContainer] = []
        self._lock = threading.Lock()

    def invoke(self, event: object, request_id: str | None = None) -> InvocationResult:
        with self._lock:
            container = self._idle.pop() if self._idle else None
            if container is None:
                container = LambdaContainer(self.image)
                self._all.append(container)
        try:
            return container.invoke(event, request_id)
        finally:
            with self._lock:
                self._idle.append(container)

    @property
    def cold_starts(self) -> int:
        """Execution environments started, a container's restart after a timeout or a crash included."""
        return sum(container.starts for container in self._all)

    def close(self) -> None:
        with self._lock:
            for container in self._all:
                container.stop()
            self._idle.clear()
