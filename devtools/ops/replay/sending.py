"""Sending the planned versions as S3 events: rate limit, concurrency, checkpoint and progress."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from devtools.ops.replay.events import s3_event
from devtools.ops.replay.model import Invoke, InvokeOutcome, Options, ReplayError, ReplayTarget, Summary
from devtools.ops.replay.planning import Planned, plan


class RateLimiter:
    """At most `rate` acquisitions per second on average, with bursts of one (a token bucket of size 1)."""

    def __init__(
        self,
        rate: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.interval = 1.0 / rate
        self.now, self.sleep = now, sleep
        self._next = None  # type: float | None
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            current = self.now()
            if self._next is not None and current < self._next:
                self.sleep(self._next - current)
                current = self._next
            self._next = current + self.interval


class Checkpoint:
    """An append-only JSON Lines file: a header with the run's options, then one line per outcome."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def open(self, fingerprint: Mapping[str, Any], resume: bool) -> set[str]:
        """The idents already done (sent or skipped) when resuming; starts a new file otherwise."""
        if self.path is None:
            return set()
        done: set[str] = set()
        if resume and self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("options") != dict(fingerprint):
                raise ReplayError(
                    f"{self.path} was written by a replay with other options ({header.get('options')}); "
                    "run without --resume to start again"
                )
            for line in lines[1:]:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the last line of an interrupted write
                if entry.get("outcome") in ("sent", "skipped"):
                    done.add(entry["id"])
            self._file = self.path.open("a", encoding="utf-8")
            return done
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._file.write(json.dumps({"options": dict(fingerprint)}) + "\n")
        self._file.flush()
        return done

    def record(self, ident: str, outcome: str, tag: str, detail: str = "") -> None:
        if self._file is None:
            return
        with self._lock:
            self._file.write(
                json.dumps({"id": ident, "outcome": outcome, "tag": tag, "detail": detail}) + "\n"
            )
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Progress:
    """A one-line progress bar on a terminal stream (nothing when it is not a terminal, unless forced)."""

    def __init__(self, total: int, stream: TextIO | None, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.done = 0

    def step(self, summary: Summary) -> None:
        self.done += 1
        if self.stream is None:
            return
        filled = self.width * self.done // max(1, self.total)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"sent {summary.sent} skipped {summary.skipped} failed {summary.failed}"
        )
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def effective_limits(target: ReplayTarget, options: Options) -> tuple[float, int]:
    """(rate, concurrency) capped by the function's reserved concurrency, when it has one."""
    rate, concurrency = options.rate, max(1, options.concurrency)
    if target.reserved_concurrency is not None:
        cap = max(1, target.reserved_concurrency)
        rate, concurrency = min(rate, float(cap)), min(concurrency, cap)
    return rate, concurrency


def replay(
    s3: Any,
    target: ReplayTarget,
    invoke: Invoke,
    options: Options,
    *,
    checkpoint: Checkpoint | None = None,
    progress: TextIO | None = None,
    limiter: RateLimiter | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> Summary:
    """Send every planned object version once; returns the counts."""
    checkpoint = checkpoint or Checkpoint(None)
    planned = plan(s3, target, options)
    summary = Summary(seen=len(planned))
    rate, concurrency = effective_limits(target, options)
    limiter = limiter or RateLimiter(rate)
    done = set() if options.dry_run else checkpoint.open(options.fingerprint(target), options.resume)
    bar = Progress(len(planned), progress)
    lock = threading.Lock()

    def settle(entry: Planned, outcome: str, detail: str = "") -> None:
        with lock:
            if outcome == "sent":
                summary.sent += 1
            elif outcome == "skipped":
                summary.skipped += 1
            elif outcome == "failed":
                summary.failed += 1
                summary.failures.append(f"{entry.item.ident}: {detail}")
            elif outcome == "would-send":
                summary.would_send += 1
            if not options.dry_run and outcome != "resumed":
                checkpoint.record(entry.item.ident, outcome, entry.item.tag, detail)
            bar.step(summary)

    def send(entry: Planned) -> None:
        try:
            outcome = invoke(s3_event(target, entry.item))
        except Exception as exc:  # one bad send is reported, the rest go on
            outcome = InvokeOutcome(False, f"{type(exc).__name__}: {exc}")
        settle(entry, "sent" if outcome.ok else "failed", outcome.detail)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            slots = threading.BoundedSemaphore(concurrency)
            for entry in planned:
                echo(
                    f"  {entry.action:<5} {entry.item.ident} sequencer {entry.item.tag or '-'} {entry.detail}"
                )
                if entry.item.ident in done:
                    summary.resumed += 1
                    with lock:
                        bar.step(summary)
                    continue
                if entry.action == "fail":
                    settle(entry, "failed", entry.detail)
                elif entry.action == "skip":
                    settle(entry, "skipped", entry.detail)
                elif options.dry_run:
                    settle(entry, "would-send")
                else:
                    limiter.acquire()
                    slots.acquire()

                    def run(e: Planned = entry) -> None:
                        try:
                            send(e)
                        finally:
                            slots.release()

                    if concurrency == 1:
                        run()
                    else:
                        pool.submit(run)
    finally:
        checkpoint.close()
    return summary
