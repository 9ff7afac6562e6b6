"""The local stand-in for Lambda's Python runtime interface client; runs *inside* the function's process.

It is started as ``python -I -S _bootstrap.py TASK_ROOT OPT_DIR RUNTIME_DIR HANDLER RESULT_FD``, so the
interpreter sees only its standard library until this file builds ``sys.path`` the way Lambda does:
the code root (``/var/task``), the layer (``/opt/python`` and its ``lib/pythonX.Y/site-packages``) and
the runtime's own boto3 (``/var/runtime``). Nothing of the developer's virtualenv is importable, so a
module left outside the code archive or the layer fails to import here as it would in AWS.

One process is one warm container: it serves invocations one at a time, read as JSON lines on stdin.
Each invocation's log lines are framed by ``START RequestId`` / ``END RequestId`` on stdout (stderr is
merged into it, as CloudWatch merges them); the response goes to RESULT_FD as one JSON line, written
after ``END`` so a large log never blocks on an unread result.

CPU as on Lambda (devtools/localrun/cpu.py): a request with a ``cpuFactor`` runs its handler with a CPU
budget of ``timeoutSeconds / cpuFactor`` seconds of this process (``ITIMER_PROF``: user and system time, all
threads). When it is spent, the handler is stopped by an exception in the main thread (where Python runs
signal handlers), derived from BaseException so that a handler's ``except Exception`` cannot swallow it,
and the response says ``timedOut``; the runner turns that into Lambda's ``Sandbox.Timedout``. Every
response carries the invocation's wall and CPU time and the process's peak resident memory.

Only the standard library may be imported at module level: this file runs under every Lambda Python
version (3.12, 3.13) and the test interpreter (3.11).
"""

import importlib
import json
import logging
import os
import resource
import signal
import sys
import time
import traceback

_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class _RequestIdFilter(logging.Filter):
    """Lambda's runtime stamps every log record with the current request id; so do we."""

    request_id = ""

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


class _CpuTimedOut(BaseException):
    """The handler's scaled CPU time passed the timeout: Lambda would have stopped it."""


def _on_cpu_budget_spent(signum, frame):
    raise _CpuTimedOut()


class _CpuClock:
    """The invocation's times; its CPU time as Lambda would have spent it (this process's times the factor).

    Both clocks restart once the handler is imported: Lambda reports the init phase apart."""

    def __init__(self, factor):
        self.factor = factor  # None: not scaled
        self.restart()

    def restart(self):
        self.started = time.process_time()
        self.wall_started = time.monotonic()

    def used(self):
        return time.process_time() - self.started

    def wall(self):
        return time.monotonic() - self.wall_started

    def scaled(self):
        return self.used() * (self.factor or 1.0)


class LambdaContext:
    """The attributes of Lambda's context object that handlers use."""

    def __init__(self, request, deadline, clock):
        env = os.environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = request.get("invokedFunctionArn", "")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request["requestId"]
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline = deadline
        self._timeout = request.get("timeoutSeconds", 900)
        self._clock = clock

    def get_remaining_time_in_millis(self):
        remaining = self._deadline - time.monotonic()
        if self._clock.factor:
            remaining = min(remaining, self._timeout - self._clock.scaled())
        return max(0, int(remaining * 1000))


def _peak_memory_mb():
    """This process's resident high-water mark, as Lambda's "Max Memory Used".

    Linux's VmHWM belongs to the process's own address space; ``ru_maxrss`` would also hold the RSS of the
    runner that forked it (it survives ``exec``), so it is only the fallback elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform != "darwin" else peak // (1024 * 1024)


def _error(error_type, message, tb=None):
    return {"errorType": error_type, "errorMessage": message, "stackTrace": tb or []}


def _load_handler(handler_string):
    """Resolve ``package.module.function`` exactly as Lambda's runtime does, with its error types."""
    module_name, _, function_name = handler_string.rpartition(".")
    if not module_name or not function_name:
        raise _InitError(
            _error(
                "Runtime.MalformedHandlerName", f"Bad handler '{handler_string}': not enough values to unpack"
            )
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _InitError(
            _error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
        ) from exc
    except SyntaxError as exc:
        raise _InitError(
            _error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
        ) from exc
    except Exception as exc:
        raise _InitError(
            _error(
                type(exc).__name__, str(exc), traceback.format_exception(type(exc), exc, exc.__traceback__)
            )
        ) from exc
    function = getattr(module, function_name, None)
    if function is None:
        raise _InitError(
            _error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
        )
    return function


class _InitError(Exception):
    def __init__(self, payload):
        super().__init__(payload["errorMessage"])
        self.payload = payload


def _call_within_cpu_budget(handler, request, clock):
    """The handler's result; raises _CpuTimedOut when its scaled CPU time passes the timeout."""
    timeout = request.get("timeoutSeconds", 900)
    deadline = time.monotonic() + timeout
    if not clock.factor:
        return handler(request["event"], LambdaContext(request, deadline, clock))
    previous = signal.signal(signal.SIGPROF, _on_cpu_budget_spent)
    signal.setitimer(signal.ITIMER_PROF, timeout / clock.factor)
    try:
        result = handler(request["event"], LambdaContext(request, deadline, clock))
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    if clock.scaled() > timeout:  # the handler swallowed the stop, or finished just past the budget
        raise _CpuTimedOut()
    return result


def _invoke(handler_string, state, request, clock):
    if state.get("handler") is None:
        # Lambda retries a failed init on the next invocation; so do we.
        state["handler"] = _load_handler(handler_string)
    # The timeout counts from here: the init phase (the import above) has its own budget in Lambda.
    clock.restart()
    result = _call_within_cpu_budget(state["handler"], request, clock)
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")}
    return {"ok": True, "payload": result}


def main(argv):
    task_root, opt_dir, runtime_dir, handler_string, result_fd = argv[1:6]
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    layer_paths = [
        os.path.join(opt_dir, "python", "lib", version, "site-packages"),
        os.path.join(opt_dir, "python"),
    ]
    sys.path[:0] = [task_root, *layer_paths, runtime_dir]
    os.chdir(task_root)

    request_filter = _RequestIdFilter()
    log_handler = logging.StreamHandler(sys.stdout)
    log_handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    log_handler.addFilter(request_filter)
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.addHandler(log_handler)
    root.setLevel(logging.WARNING)

    state = {}
    with os.fdopen(int(result_fd), "w", encoding="utf-8") as results:
        for line in sys.stdin:
            request = json.loads(line)
            request_id = request["requestId"]
            request_filter.request_id = request_id
            print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
            clock = _CpuClock(request.get("cpuFactor"))
            try:
                response = _invoke(handler_string, state, request, clock)
            except _CpuTimedOut:
                response = {"ok": False, "timedOut": True}
            except _InitError as exc:
                response = {"ok": False, "error": exc.payload}
            except Exception as exc:
                tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
                response = {"ok": False, "error": _error(type(exc).__name__, str(exc), tb)}
            if "error" in response:
                error = response["error"]
                print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", flush=True)
                for frame in error.get("stackTrace", []):
                    sys.stdout.write(frame)
            sys.stdout.flush()
            sys.stderr.flush()
            response["durationMs"] = round(clock.wall() * 1000, 2)
            response["cpuMs"] = round(clock.used() * 1000, 2)
            response["maxMemoryMB"] = _peak_memory_mb()
            print(f"END RequestId: {request_id}", flush=True)
            results.write(json.dumps(response) + "\n")
            results.flush()
    # Lambda ends an execution environment without running the interpreter's finalization, and that
    # finalization (every loaded module torn down) was most of the CPU a local run spent stopping a
    # container: leave as Lambda does, once everything written is flushed.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
