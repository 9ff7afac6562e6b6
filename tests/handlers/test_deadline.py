"""handlers.deadline: the prediction before reading, the watchdog while reading, and a stage that fails
early on an object it cannot finish, with the reason and the metric."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from handler_support import PROCESSED, RAW, event_of, jsonl, keys, put, record
from hypothesis import given
from hypothesis import strategies as st

from handlers import contract, deadline
from handlers import ingestion_handler as ingestion
from handlers.contract import FULL_VCPU_MEMORY_MB, OVER_BUDGET_METRIC, OVER_BUDGET_REASON, Stage
from handlers.deadline import Budget, Watchdog, check_fits, cpu_share, largest_object, predicted_seconds
from handlers.errors import DeadlineError

sizes = st.integers(min_value=0, max_value=5 << 30)
memories = st.integers(min_value=128, max_value=10240)
rates = st.floats(min_value=1e3, max_value=1e9)


class FakeClock:
    """A clock the test moves: ``advance`` per read stands for the time a read and its processing take."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now


def budget(remaining: float, memory_mb: int | None = FULL_VCPU_MEMORY_MB, clock: Any = None) -> Budget:
    return Budget.start(Stage.INGESTION, memory_mb, remaining, clock or FakeClock())


@given(smaller=sizes, larger=sizes, rate=rates, memory=memories)
def test_prediction_grows_with_size(smaller: int, larger: int, rate: float, memory: int) -> None:
    smaller, larger = sorted((smaller, larger))
    assert predicted_seconds(smaller, rate, memory) <= predicted_seconds(larger, rate, memory)


@given(size=sizes, rate=rates, less=memories, more=memories)
def test_more_memory_never_predicts_more_time(size: int, rate: float, less: int, more: int) -> None:
    less, more = sorted((less, more))
    assert predicted_seconds(size, rate, more) <= predicted_seconds(size, rate, less)


@pytest.mark.parametrize(
    ("memory", "share"),
    [
        (128, 128 / FULL_VCPU_MEMORY_MB),
        (FULL_VCPU_MEMORY_MB, 1.0),
        (3008, 1.0),
        (10240, 1.0),
        (None, 1.0),
    ],
)
def test_cpu_share_is_proportional_up_to_one_vcpu(memory: int | None, share: float) -> None:
    assert cpu_share(memory) == pytest.approx(share)


@given(size=sizes, rate=rates, memory=memories, spare=st.floats(min_value=0, max_value=1e6))
def test_never_raises_when_the_budget_is_ample(size: int, rate: float, memory: int, spare: float) -> None:
    needed = predicted_seconds(size, rate, memory)
    # enough for the object, the margin kept back (at most DEADLINE_MARGIN_SECONDS) and some to spare
    ample = (needed + contract.DEADLINE_MARGIN_SECONDS) * (1 + 1e-9) + spare  # past float rounding
    check_fits(budget(ample, memory), size, rate)


@given(rate=rates, memory=memories, timeout=st.integers(min_value=1, max_value=900))
def test_largest_object_is_where_a_fresh_invocation_stops_starting(
    rate: float, memory: int, timeout: int
) -> None:
    largest = largest_object(rate, memory, timeout)
    check_fits(budget(timeout, memory), int(largest * 0.999), rate)
    with pytest.raises(DeadlineError):
        check_fits(budget(timeout, memory), int(largest * 1.001) + 1, rate)


def test_an_object_that_cannot_fit_fails_with_its_reason_and_figures() -> None:
    # 100 MB at 1 MB per vCPU-second and half a vCPU: 200 s, with 60 s left
    with pytest.raises(DeadlineError) as caught:
        check_fits(budget(60, FULL_VCPU_MEMORY_MB // 2), 100_000_000, 1e6)
    error = caught.value
    assert error.reason == OVER_BUDGET_REASON
    assert (error.size, round(error.remaining_seconds)) == (100_000_000, 60)
    assert error.predicted_seconds == pytest.approx(100 / ((FULL_VCPU_MEMORY_MB // 2) / FULL_VCPU_MEMORY_MB))
    assert "100,000,000 bytes" in str(error)
    assert "60.0 s remain" in str(error)


def test_seconds_of_s3_work_are_not_scaled_by_memory() -> None:
    # 10 s of S3's work fits 60 s at any memory, and 70 s does not, with the reason and the figures
    deadline.check_seconds(budget(60, 128), 1, 10.0, "to release its parts")
    with pytest.raises(DeadlineError) as caught:
        deadline.check_seconds(budget(60, FULL_VCPU_MEMORY_MB), 1, 70.0, "to release its parts")
    assert caught.value.reason == OVER_BUDGET_REASON
    assert caught.value.predicted_seconds == 70.0
    assert "to release its parts" in str(caught.value)


def test_seconds_are_not_checked_without_a_budget() -> None:
    deadline.check_seconds(None, 1, 1e9, "to release its parts")


@pytest.mark.parametrize(
    ("stage", "key", "rate"),
    [
        (Stage.INGESTION, f"{contract.INPUT_PREFIX}a.jsonl", contract.PLANNING_RATES[Stage.INGESTION]),
        (Stage.INGESTION, f"{contract.INPUT_PREFIX}a.jsonl.gz", contract.GZIP_INPUT_PLANNING_RATE),
        (Stage.INGESTION, f"{contract.INPUT_PREFIX}A.JSONL.GZ", contract.GZIP_INPUT_PLANNING_RATE),
        (Stage.INGESTION, f"{contract.INPUT_PREFIX}a.Json.Gz", contract.GZIP_INPUT_PLANNING_RATE),
        (
            Stage.PROCESSING,
            f"{contract.RECORDS_PREFIX}a/1{contract.RECORDS_SUFFIX}",
            contract.PLANNING_RATES[Stage.PROCESSING],
        ),
        ("another", "k", 0),
    ],
)
def test_a_gzip_raw_object_is_planned_at_its_own_rate(stage: str, key: str, rate: float) -> None:
    assert deadline.planning_rate(stage, key) == rate


@pytest.mark.parametrize("size", [None, 10**12])
def test_without_a_budget_nothing_is_checked(size: int | None) -> None:
    check_fits(None, size, 1e6)
    check_fits(budget(0.001), None, 1e6)
    check_fits(budget(0.001), 10**12, 0)  # a stage without a rate


def stream(size: int, clock: FakeClock, seconds_per_mb: float) -> Any:
    """A read over ``size`` bytes during which the clock moves ``seconds_per_mb`` for each MiB read."""
    body = io.BytesIO(b"x" * size)

    def read(n: int) -> bytes:
        chunk = body.read(n)
        clock.now += len(chunk) / (1 << 20) * seconds_per_mb
        return chunk

    return read


def drain(read: Any) -> int:
    total = 0
    while chunk := read(1 << 20):
        total += len(chunk)
    return total


def test_watchdog_lets_a_read_that_keeps_pace_finish() -> None:
    clock = FakeClock()
    size = 64 << 20
    # 64 MiB at 1 s per MiB with 100 s left: done at 64 s, well before 100 s less the margin
    watched = Watchdog(stream(size, clock, 1.0), size, budget(100, clock=clock), every=4 << 20)
    assert drain(watched.read) == size


def test_watchdog_stops_a_read_too_slow_to_finish_at_its_first_deciding_look() -> None:
    clock = FakeClock()
    size = 64 << 20
    # 64 MiB at 2 s per MiB with 100 s left: 128 s; the second look, after 8 MiB (16 s), sees it
    read = stream(size, clock, 2.0)
    watched = Watchdog(read, size, budget(100, clock=clock), every=4 << 20)
    with pytest.raises(DeadlineError) as caught:
        drain(watched.read)
    error = caught.value
    assert error.reason == OVER_BUDGET_REASON
    assert error.predicted_seconds == pytest.approx(128)
    assert error.remaining_seconds == pytest.approx(100)
    assert clock.now - 1000.0 == pytest.approx(16.0)  # it gave up after 16 s, not at the timeout


MIB = 1 << 20
_CHUNK = b"x" * MIB


def paced(size: int, clock: FakeClock, seconds_per_mib: float, stall: float = 0.0, stall_at: int = 0) -> Any:
    """A read of ``size`` bytes (1 MiB at a time is what ``drain`` asks) taking ``seconds_per_mib``, and
    ``stall`` seconds more in the read that covers byte ``stall_at``; no body is held."""
    done = 0

    def read(n: int) -> bytes:
        nonlocal done
        chunk = _CHUNK[: min(n, size - done)]
        if done <= stall_at < done + len(chunk):
            clock.now += stall
        done += len(chunk)
        clock.now += len(chunk) / MIB * seconds_per_mib
        return chunk

    return read


def time_for(need: float) -> float:
    """A budget whose time less its margin exceeds ``need`` seconds, by a hair for the float sums."""
    needed = need * (1 + 1e-9) + 1e-6
    return max(needed + contract.DEADLINE_MARGIN_SECONDS, needed / (1 - contract.DEADLINE_MARGIN_SHARE))


@given(
    size=st.integers(min_value=0, max_value=5 << 30),
    seconds_per_mib=st.floats(min_value=1e-4, max_value=1.0),
    stall=st.floats(min_value=0.0, max_value=30.0),
    stall_at=st.integers(min_value=0, max_value=deadline.WATCH_BYTES - 1),
)
def test_a_stall_in_the_first_window_never_refuses_an_object_that_fits_with_it(
    size: int, seconds_per_mib: float, stall: float, stall_at: int
) -> None:
    clock = FakeClock()
    left = time_for(size / MIB * seconds_per_mib + (stall if stall_at < size else 0.0))
    read = paced(size, clock, seconds_per_mib, stall, stall_at)
    assert drain(Watchdog(read, size, budget(left, clock=clock)).read) == size


@given(
    size=st.integers(min_value=2 * deadline.WATCH_BYTES + 1, max_value=5 << 30),  # decides before the end
    seconds_per_mib=st.floats(min_value=1e-4, max_value=1.0),
    short=st.floats(min_value=0.01, max_value=0.9),
)
def test_a_steady_read_that_cannot_finish_is_refused_before_its_end(
    size: int, seconds_per_mib: float, short: float
) -> None:
    clock = FakeClock()
    need = size / MIB * seconds_per_mib
    watched = Watchdog(paced(size, clock, seconds_per_mib), size, budget(need * (1 - short), clock=clock))
    with pytest.raises(DeadlineError):
        drain(watched.read)
    assert clock.now - 1000.0 < need


def test_an_early_stall_is_not_projected_over_a_large_object() -> None:
    # 5 GB at 170 s, with a 0.6 s stall in its first 4 MiB and 180 s left: it fits, and is read to the end
    clock, size = FakeClock(), 5 * 10**9
    read = paced(size, clock, 170 / (size / MIB), stall=0.6, stall_at=1 << 20)
    assert drain(Watchdog(read, size, budget(180, clock=clock)).read) == size


def test_watchdog_looks_at_the_clock_only_every_few_megabytes() -> None:
    clock = FakeClock()
    size = 16 << 20
    watched = Watchdog(stream(size, clock, 0.0), size, budget(100, clock=clock), every=4 << 20)
    before = clock.readings
    drain(watched.read)
    assert clock.readings - before == 4  # 16 reads of 1 MiB, one look per 4 MiB


def test_watchdog_keeps_the_margin_back() -> None:
    clock = FakeClock()
    size = 40 << 20
    # 40 s of reading with 42 s left: it would end inside the 4.2 s margin (10% of 42 s), so it stops
    watched = Watchdog(stream(size, clock, 1.0), size, budget(42, clock=clock), every=4 << 20)
    with pytest.raises(DeadlineError):
        drain(watched.read)


def test_watched_is_the_plain_read_without_a_budget() -> None:
    read = io.BytesIO(b"abc").read
    assert deadline.watched(read, 3) is read
    with deadline.guarding(budget(100)):
        assert deadline.watched(read, None) is read
        assert deadline.watched(read, 3) is not read
    assert deadline.watched(read, 3) is read


class LambdaContext:
    """The part of Lambda's context object the handlers use: the time left counts down as time passes."""

    def __init__(self, remaining_ms: int, clock: Any = time.monotonic) -> None:
        self.deadline, self.clock = clock() + remaining_ms / 1000, clock
        self.aws_request_id = "c0ffee00-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self.clock()) * 1000)


def test_the_budget_runs_on_the_contexts_clock() -> None:
    clock = FakeClock()
    context = LambdaContext(12_500, clock)
    budget = Budget.of_context(Stage.PROCESSING, 1024, context)
    assert budget is not None
    assert (budget.remaining(), budget.margin) == (12.5, pytest.approx(1.25))
    clock.now += 2.5  # the context's time passes (on Lambda, the wall clock; locally, scaled CPU)
    assert budget.remaining() == 10.0
    assert Budget.of_context(Stage.PROCESSING, 1024, None) is None


def log_line(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    return json.loads(lines[0])


def test_ingestion_fails_early_on_an_object_it_cannot_finish(
    ingestion_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a 128 MB function with 3 s left, and an event for an object the planning rate needs far longer for
    monkeypatch.setenv(contract.LAMBDA_MEMORY_VARIABLE, "128")
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}big.jsonl", jsonl(record(1)))
    ref["s3"]["object"]["size"] = 5 << 30  # as the event of a 5 GB upload says
    # WHEN the handler runs
    with pytest.raises(DeadlineError) as caught:
        ingestion.handler(event_of(ref), LambdaContext(3_000))
    # THEN it fails before reading or writing anything, with the reason, and logs the metric
    assert caught.value.reason == OVER_BUDGET_REASON
    assert keys(ingestion_env, PROCESSED) == []
    line = log_line(capsys)
    assert line[OVER_BUDGET_METRIC] == 1
    assert OVER_BUDGET_METRIC in {m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    failed = line["objects"][-1]
    assert (failed["key"], failed["error"], failed["size"]) == (
        f"{contract.INPUT_PREFIX}big.jsonl",
        OVER_BUDGET_REASON,
        5 << 30,
    )


def test_ingestion_stops_reading_once_the_rest_cannot_be_read_in_time(
    ingestion_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an event that understates its object (as a gzip's size understates its work) and no time left
    body = jsonl(*(record(n) for n in range(1000))) * 100
    assert len(body) > 2 * deadline.WATCH_BYTES
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}slow.jsonl", body)
    ref["s3"]["object"]["size"] = 1
    # WHEN the handler runs with a few milliseconds left
    with pytest.raises(DeadlineError) as caught:
        ingestion.handler(event_of(ref), LambdaContext(5))
    # THEN the watchdog stops it on the stream, with the reason and the metric, and nothing is written
    assert caught.value.size == len(body)  # the read's own length, not the event's
    assert "measured rate" in str(caught.value)
    assert keys(ingestion_env, PROCESSED) == []
    assert log_line(capsys)[OVER_BUDGET_METRIC] == 1


def test_ingestion_with_time_to_spare_reports_no_object_over_budget(
    ingestion_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}small.jsonl", jsonl(record(1), record(2)))
    ingestion.handler(event_of(ref), LambdaContext(60_000))
    line = log_line(capsys)
    assert (line[OVER_BUDGET_METRIC], line[contract.RECORD_METRIC_NAMES["records_valid"]]) == (0, 2)
