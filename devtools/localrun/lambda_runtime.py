"""A Lambda-like execution environment on this machine: the interpreter and the warm containers.

A container is one ``python -I -S`` process (no site-packages, no user site, no environment-driven paths)
running :mod:`devtools.localrun._bootstrap` in the function's layout (:mod:`devtools.localrun.layout`), with
exactly the function's environment: what the stack declares, the variables Lambda sets, the stage role's
temporary credentials and the endpoint of the emulator. Its CPU time is scaled to the declared memory's
CPU share (:mod:`devtools.localrun.cpu`) unless the image says otherwise, and a scaled time past the
timeout stops the invocation as Lambda's wall clock would.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.localrun.cpu import cpu_factor, timed_out_message
from handlers.contract import LAMBDA_MEMORY_VARIABLE

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
TIMED_OUT = "Sandbox.Timedout"  # Lambda's errorType of an invocation stopped at its timeout


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
    cpu_scaling: bool = True  # False: CPU time is measured, not scaled to the memory's share nor limited

    @property
    def cpu_factor(self) -> float | None:
        """Seconds on Lambda per CPU second here (devtools/localrun/cpu.py), or None without scaling."""
        return cpu_factor(self.memory_mb) if self.cpu_scaling else None

    def lambda_environment(self) -> dict[str, str]:
        """The declared environment over the variables Lambda sets on every function, as far as the image
        knows them; the memory size is always the declared one (handlers read it to plan their time)."""
        defaults = {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group or f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{self.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.interpreter.runtime}",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
            "_HANDLER": self.handler,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LD_LIBRARY_PATH": f"{self.opt_dir}/lib",
        }
        return {**defaults, **self.environment, LAMBDA_MEMORY_VARIABLE: str(self.memory_mb)}


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation returned: a payload or a Lambda-shaped error, its log lines and its times."""

    request_id: str
    ok: bool
    payload: object = None
    error: dict | None = None
    log_lines: tuple[str, ...] = ()
    duration_ms: float = 0.0  # wall time here
    cpu_ms: float = 0.0  # CPU time here (the container process, every thread)
    lambda_ms: float | None = None  # CPU time at the declared memory's CPU share; None without scaling
    max_memory_mb: int = 0  # the container's peak resident memory so far

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
            # stderr into stdout, as CloudWatch merges them; a log line that is not UTF-8 must not stop it.
            self._process = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=image.lambda_environment(), cwd=image.task_root, pass_fds=(write_fd,),
                text=True, encoding="utf-8", errors="replace",
            )  # fmt: skip
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
            "cpuFactor": self.image.cpu_factor,
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
                return self._timed_out(request_id, lines, {"durationMs": (time.monotonic() - started) * 1000})
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
        if response.get("timedOut"):
            return self._timed_out(request_id, lines, response)
        return self._result(request_id, response, lines)

    def _result(
        self, request_id: str, response: dict[str, Any], lines: list[str], timed_out: bool = False
    ) -> InvocationResult:
        """The response with its times, and Lambda's REPORT line (with the CPU figures) closing its log."""
        cpu_ms = float(response.get("cpuMs", 0.0))
        factor = self.image.cpu_factor
        timeout_ms = self.image.timeout_seconds * 1000.0
        # A timed-out invocation lasted the timeout on Lambda, whatever CPU it had used when stopped.
        lambda_ms = None
        if factor is not None:
            lambda_ms = timeout_ms if timed_out else min(cpu_ms * factor, timeout_ms)
        memory = int(response.get("maxMemoryMB", 0))
        scaled = "" if lambda_ms is None else f"\tScaled CPU Duration: {lambda_ms:.2f} ms"
        lines.append(
            f"REPORT RequestId: {request_id}\tDuration: {response.get('durationMs', 0.0):.2f} ms"
            f"\tCPU Duration: {cpu_ms:.2f} ms{scaled}\tMemory Size: {self.image.memory_mb} MB"
            f"\tMax Memory Used: {memory} MB"
        )
        return InvocationResult(
            request_id,
            ok=response["ok"],
            payload=response.get("payload"),
            error=response.get("error"),
            log_lines=tuple(lines),
            duration_ms=float(response.get("durationMs", 0.0)),
            cpu_ms=cpu_ms,
            lambda_ms=lambda_ms,
            max_memory_mb=memory,
        )

    def _timed_out(self, request_id: str, lines: list[str], response: dict[str, Any]) -> InvocationResult:
        """Lambda's timeout, on the wall clock or on the scaled CPU time: the sandbox is stopped (the next
        event gets a fresh one) and the invocation fails with ``Sandbox.Timedout``."""
        self.stop(kill=True)
        timeout = self.image.timeout_seconds
        lines.append(f"{request_id} Task timed out after {timeout:.2f} seconds")
        error = {"errorType": TIMED_OUT, "errorMessage": timed_out_message(request_id, timeout)}
        return self._result(request_id, {**response, "ok": False, "error": error}, lines, timed_out=True)

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
