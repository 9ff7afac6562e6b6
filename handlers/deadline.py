"""Fail early: an object a stage cannot finish before its timeout fails at once, with a named reason.

Lambda stops an invocation at its timeout and retries an asynchronous one twice, so an object too large for
the stage's memory and timeout would cost three full timeouts before its event reached the failure queue,
and say only "Task timed out". Instead, a stage gives up as soon as it can tell:

- before reading, ``check_fits`` predicts the object's time from its size (the S3 event's) and the
  stage's planning rate (``planning_rate``: ``handlers.contract.PLANNING_RATES``, bytes per vCPU-second,
  measured by benchmarks/capacity.py, docs/capacity.md) at the CPU share of the function's memory (one vCPU at
  ``FULL_VCPU_MEMORY_MB``, a proportional share below), and raises ``DeadlineError`` when it does not fit
  in the remaining time less a margin;
- while reading, ``Watchdog`` measures the rate the stage actually consumes its input at, every
  ``WATCH_BYTES``, and raises the same error once the rest cannot be read before the deadline less the
  margin (a slower CPU than planned, a compressed input whose size understates its work); it judges from
  its second look and a share of the object on, so an early stall is not projected over the whole object.

The margin leaves time to log the error with its reason and the ``ObjectsOverBudget`` metric. Pure: the
clock is passed in, and nothing here reads the environment or touches AWS. Without a budget (no Lambda
context: tests, tools) every check passes. ``handlers.metrics.handle_objects`` sets the budget for each
object (``guarding``); ``handlers.s3io`` wraps the input's reads (``watched``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from handlers.contract import (
    DEADLINE_MARGIN_SECONDS,
    DEADLINE_MARGIN_SHARE,
    FULL_VCPU_MEMORY_MB,
    GZIP_INPUT_PLANNING_RATE,
    OVER_BUDGET_REASON,
    PLANNING_RATES,
    Stage,
)
from handlers.errors import DeadlineError
from handlers.events import is_gzip

Clock = Callable[[], float]
Read = Callable[[int], bytes]

WATCH_BYTES = 4 << 20  # how often the watchdog looks at the rate: rare enough to cost nothing
WATCH_MIN_LOOKS = 2  # the first decision has a window that excludes the first WATCH_BYTES
WATCH_MIN_SHARE = 0.05  # ... and has seen this share of the object


def cpu_share(memory_mb: int | None) -> float:
    """The share of one vCPU a function of ``memory_mb`` runs at; unknown memory: a whole one."""
    if memory_mb is None:
        return 1.0
    return min(1.0, max(memory_mb, 1) / FULL_VCPU_MEMORY_MB)


def predicted_seconds(size: int, rate: float, memory_mb: int | None) -> float:
    """Seconds to get through ``size`` bytes at ``rate`` bytes per vCPU-second and ``memory_mb``'s share."""
    return size / (rate * cpu_share(memory_mb))


def margin_seconds(budget_seconds: float) -> float:
    """What is kept back of a budget for the error's log line: a few seconds, less of a short budget."""
    return min(DEADLINE_MARGIN_SECONDS, DEADLINE_MARGIN_SHARE * max(budget_seconds, 0.0))


def planning_rate(stage: str, key: str) -> float:
    """The stage's planning rate for the object at ``key``: a gzip raw object's size understates the
    ingestion stage's work several times over, so it has a rate of its own; 0 (no check) for an unknown
    stage. Compressed or not is ``handlers.framing``'s reading of the key, which the stage reads it by."""
    if stage == Stage.INGESTION and is_gzip(key):
        return GZIP_INPUT_PLANNING_RATE
    return PLANNING_RATES.get(stage, 0)


def largest_object(rate: float, memory_mb: int, timeout_seconds: float) -> float:
    """The largest object ``check_fits`` lets a fresh invocation of ``timeout_seconds`` start on."""
    return rate * cpu_share(memory_mb) * (timeout_seconds - margin_seconds(timeout_seconds))


@dataclass(frozen=True)
class Budget:
    """One invocation's time: when it ends, and what to keep back."""

    stage: str  # for the error message
    memory_mb: int | None  # the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE); None: unknown
    deadline: float  # the clock's reading at which Lambda stops the invocation
    margin: float  # seconds kept back before the deadline
    clock: Clock = time.monotonic

    @classmethod
    def start(
        cls, stage: str, memory_mb: int | None, remaining_seconds: float, clock: Clock = time.monotonic
    ) -> Budget:
        """The budget of an invocation with ``remaining_seconds`` left now."""
        return cls(stage, memory_mb, clock() + remaining_seconds, margin_seconds(remaining_seconds), clock)

    @classmethod
    def of_context(cls, stage: str, memory_mb: int | None, context: Any) -> Budget | None:
        """The budget of the invocation ``context`` belongs to, on its own clock (``context_clock``)."""
        clock = context_clock(context)
        if clock is None:
            return None
        now = clock()
        return cls(stage, memory_mb, 0.0, margin_seconds(-now), clock)

    def remaining(self) -> float:
        return self.deadline - self.clock()


def over_budget(budget: Budget, size: int, predicted: float, remaining: float, how: str) -> DeadlineError:
    return DeadlineError(
        OVER_BUDGET_REASON,
        f"the {budget.stage} stage cannot finish an object of {size:,} bytes in time: {how} it needs "
        f"{predicted:.1f} s, {remaining:.1f} s remain of which {budget.margin:.1f} s are kept to report this "
        f"(memory {budget.memory_mb or 'unknown'} MB: {cpu_share(budget.memory_mb):.2f} vCPU); raise the "
        f"stage's memoryMb or timeoutSeconds, or split the object",
        size=size,
        predicted_seconds=predicted,
        remaining_seconds=remaining,
    )


def check_fits(budget: Budget | None, size: int | None, rate: float) -> None:
    """Raise ``DeadlineError`` when ``size`` bytes cannot be done at ``rate`` (bytes per vCPU-second: the
    stage's planning rate) before the budget's deadline less its margin. No budget, no size or no rate:
    nothing to check."""
    if budget is None or size is None or rate <= 0:
        return
    predicted = predicted_seconds(size, rate, budget.memory_mb)
    remaining = budget.remaining()
    if predicted > remaining - budget.margin:
        raise over_budget(budget, size, predicted, remaining, "at the planned rate")


def check_seconds(budget: Budget | None, size: int, needed: float, how: str) -> None:
    """Raise ``DeadlineError`` when ``needed`` seconds of work that CPU does not govern (S3's own, say)
    cannot be done before the budget's deadline less its margin. No budget: nothing to check."""
    if budget is None:
        return
    remaining = budget.remaining()
    if needed > remaining - budget.margin:
        raise over_budget(budget, size, needed, remaining, how)


class Watchdog:
    """A ``read(n)`` that raises ``DeadlineError`` as soon as the rate it is consumed at shows that the
    rest of ``size`` bytes cannot be read before the budget's deadline less its margin.

    The rate is the faster of the whole read's and the last window's (the bytes since the previous look),
    and it decides nothing before ``WATCH_MIN_LOOKS`` looks and ``WATCH_MIN_SHARE`` of the object, unless
    the time left is within the margin: a stall early in a large object (a slow first byte, a cold
    connection) would otherwise be multiplied by the object's size over the bytes read so far. A stall
    confined to the first window never counts: every later window measures the read's own pace.
    """

    def __init__(self, read: Read, size: int, budget: Budget, every: int = WATCH_BYTES) -> None:
        self._read, self._size, self._budget, self._every = read, size, budget, every
        self._started = budget.clock()
        self._done = 0
        self._next_check = every
        self._looks = 0
        self._last = (0, self._started)  # bytes done and the clock at the previous look

    def read(self, n: int | None = None) -> bytes:
        chunk = self._read(n) if n is not None else self._read()  # type: ignore[call-arg]
        self._done += len(chunk)
        if self._done >= self._next_check:
            self._next_check = self._done + self._every
            self._check()
        return chunk

    def _check(self) -> None:
        now = self._budget.clock()
        self._looks += 1
        (last_done, last_now), self._last = self._last, (self._done, now)
        elapsed = now - self._started
        if elapsed <= 0:
            return
        seconds_per_byte = elapsed / self._done
        if now > last_now and self._done > last_done:
            seconds_per_byte = min(seconds_per_byte, (now - last_now) / (self._done - last_done))
        rest = max(self._size - self._done, 0) * seconds_per_byte
        remaining = self._budget.deadline - now
        spent = remaining <= self._budget.margin and self._done < self._size
        early = self._looks < WATCH_MIN_LOOKS or self._done < WATCH_MIN_SHARE * self._size
        if spent or (not early and rest > remaining - self._budget.margin):
            raise over_budget(
                self._budget, self._size, elapsed + rest, remaining + elapsed, "at the measured rate"
            )


_current: ContextVar[Budget | None] = ContextVar("deadline_budget", default=None)


@contextlib.contextmanager
def guarding(budget: Budget | None) -> Iterator[None]:
    """Within the block, ``watched`` reads are held to ``budget`` (None: no guard)."""
    token = _current.set(budget)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Budget | None:
    """The budget ``guarding`` holds this object's work to (None: no guard)."""
    return _current.get()


def watched(read: Read, size: int | None) -> Read:
    """``read`` held to the current budget, if there is one and the size is known; else ``read`` itself."""
    budget = _current.get()
    if budget is None or size is None:
        return read
    return Watchdog(read, size, budget).read


def context_clock(context: Any) -> Clock | None:
    """A clock that reads the invocation's own: minus the seconds its Lambda context says remain, so that its
    deadline is 0 and it runs at whatever pace the timeout does (wall time on Lambda; the local run's CPU
    time scaled to the declared memory). None without a context: the guard is then off."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return lambda: -remaining() / 1000
