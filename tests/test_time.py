"""rsyscall.time: the clock syscalls compared with the stdlib `time` module,
the sleeps, and `Itimerspec`'s byte layout."""

from __future__ import annotations

import errno
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import UseAfterConsumeError, local_thread
from rsyscall.time import CLOCK, TIMER, Itimerspec, SleepInterrupted, Timespec

pytestmark = pytest.mark.anyio

INT64 = st.integers(-(2**63), 2**63 - 1)
TIMESPECS = st.builds(Timespec, INT64, st.integers(0, 999_999_999))


# ---- Itimerspec ----


@given(TIMESPECS, TIMESPECS)
def test_itimerspec_bytes_roundtrip(interval: Timespec, value: Timespec) -> None:
    spec = Itimerspec(interval, value)
    data = spec.to_bytes()
    assert len(data) == Itimerspec.sizeof() == 32
    assert Itimerspec.from_bytes(data) == spec
    # it_interval first, then it_value, each a struct timespec.
    assert data == interval.to_bytes() + value.to_bytes()


def test_itimerspec_values() -> None:
    assert Itimerspec.from_float(0.5, 2) == Itimerspec(Timespec(0, 500_000_000), Timespec(2, 0))
    with pytest.raises(TypeError):
        Itimerspec(1, Timespec(0, 0))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Itimerspec(Timespec(0, 0), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Itimerspec(Timespec(2**63, 0), Timespec(0, 0)).to_bytes()
    with pytest.raises(ValueError):
        Itimerspec.from_bytes(b"\0" * 31)
    with pytest.raises(ValueError):
        Itimerspec.from_float(float("nan"), 0)


# ---- clocks ----


async def read_clock(clock: CLOCK | int) -> float:
    tp = await local_thread.malloc(Timespec)
    result = await local_thread.task.clock_gettime(clock, tp)
    assert tp.consumed
    return (await result.read()).to_float()


@pytest.mark.parametrize(
    ("clock", "stdlib"),
    [
        (CLOCK.REALTIME, time.CLOCK_REALTIME),
        (CLOCK.MONOTONIC, time.CLOCK_MONOTONIC),
        (CLOCK.BOOTTIME, time.CLOCK_BOOTTIME),
        (CLOCK.PROCESS_CPUTIME_ID, time.CLOCK_PROCESS_CPUTIME_ID),
    ],
)
async def test_clock_gettime_matches_stdlib(clock: CLOCK, stdlib: int) -> None:
    before = time.clock_gettime(stdlib)
    ours = await read_clock(clock)
    after = time.clock_gettime(stdlib)
    # Floats of ~1.7e9 seconds lose some nanoseconds: allow a microsecond.
    assert before - 1e-6 <= ours <= after + 1e-6


async def test_clock_getres_matches_stdlib() -> None:
    for clock in (CLOCK.REALTIME, CLOCK.MONOTONIC, CLOCK.MONOTONIC_COARSE):
        res = await local_thread.task.clock_getres(clock, await local_thread.malloc(Timespec))
        assert (await res.read()).to_float() == time.clock_getres(clock)
    # Without a buffer it only checks that the clock exists.
    await local_thread.task.clock_getres(CLOCK.MONOTONIC)
    with pytest.raises(OSError) as info:
        await local_thread.task.clock_getres(99)
    assert info.value.errno == errno.EINVAL


async def test_dynamic_clock_id() -> None:
    # A thread's CPU-time clock has a dynamic (negative) id, not in CLOCK.
    clock = time.pthread_getcpuclockid(threading.get_ident())
    assert clock < 0
    before = time.clock_gettime(clock)
    ours = await read_clock(clock)
    assert before <= ours <= time.clock_gettime(clock)


# ---- sleeps ----


async def test_nanosleep() -> None:
    request = await local_thread.ptr(Timespec.from_float(0.005))
    start = time.monotonic()
    await local_thread.task.nanosleep(request)
    elapsed = time.monotonic() - start
    assert 0.005 <= elapsed < 0.5
    # A `remain` the sleep did not need is not consumed.
    remain = await local_thread.malloc(Timespec)
    await local_thread.task.nanosleep(request, remain)
    assert not remain.consumed
    assert not request.consumed


async def test_clock_nanosleep_relative() -> None:
    request = await local_thread.ptr(Timespec(0, 5_000_000))
    start = time.monotonic()
    await local_thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.NONE, request)
    assert 0.005 <= time.monotonic() - start < 0.5


async def test_clock_nanosleep_absolute() -> None:
    tp = await local_thread.malloc(Timespec)
    now = await local_thread.task.clock_gettime(CLOCK.MONOTONIC, tp)
    deadline = (await now.read()).to_float() + 0.005
    request = await local_thread.ptr(Timespec.from_float(deadline))
    await local_thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.ABSTIME, request)
    assert time.clock_gettime(time.CLOCK_MONOTONIC) >= deadline - 1e-6
    # A deadline in the past returns at once.
    await local_thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.ABSTIME, request)


@pytest.fixture
def alarm_in_20ms() -> Iterator[list[int]]:
    """SIGALRM to this (the main) thread 20 ms from now, with a Python
    handler, so a syscall sleeping here fails with EINTR."""
    caught: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda signum, frame: caught.append(signum))
    main = threading.get_ident()
    timer = threading.Timer(0.02, signal.pthread_kill, (main, signal.SIGALRM))
    timer.start()
    try:
        yield caught
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGALRM, old)


async def test_interrupted_sleep_reports_remaining_time(alarm_in_20ms: list[int]) -> None:
    request = await local_thread.ptr(Timespec(2, 0))
    remain = await local_thread.malloc(Timespec)
    start = time.monotonic()
    with pytest.raises(SleepInterrupted) as info:
        await local_thread.task.nanosleep(request, remain)
    assert time.monotonic() - start < 1.5
    assert isinstance(info.value, InterruptedError)
    assert info.value.errno == errno.EINTR
    assert remain.consumed
    left = info.value.remain
    assert left is not None
    assert 0.5 < (await left.read()).to_float() < 2
    assert alarm_in_20ms == [signal.SIGALRM]


async def test_interrupted_absolute_sleep_writes_nothing(alarm_in_20ms: list[int]) -> None:
    tp = await local_thread.malloc(Timespec)
    now = await local_thread.task.clock_gettime(CLOCK.MONOTONIC, tp)
    request = await local_thread.ptr(Timespec((await now.read()).sec + 2, 0))
    remain = await local_thread.malloc(Timespec)
    with pytest.raises(SleepInterrupted) as info:
        await local_thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.ABSTIME, request, remain)
    assert info.value.remain is None
    assert not remain.consumed


async def test_interrupted_sleep_without_remain(alarm_in_20ms: list[int]) -> None:
    request = await local_thread.ptr(Timespec(2, 0))
    with pytest.raises(SleepInterrupted) as info:
        await local_thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.NONE, request)
    assert info.value.remain is None


# ---- bad input ----


async def still_works() -> None:
    assert abs(await read_clock(CLOCK.MONOTONIC) - time.monotonic()) < 1


async def test_bad_arguments() -> None:
    task = local_thread.task
    with pytest.raises(TypeError):
        await task.clock_gettime("monotonic", await local_thread.malloc(Timespec))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.clock_gettime(2**40, await local_thread.malloc(Timespec))
    # The pointer must point to a Timespec.
    with pytest.raises(TypeError):
        await task.clock_gettime(CLOCK.MONOTONIC, await local_thread.malloc(bytes, 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.clock_gettime(CLOCK.MONOTONIC, await local_thread.malloc(Itimerspec))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.clock_gettime(CLOCK.MONOTONIC, Timespec(0, 0))  # type: ignore[arg-type]
    # Too small.
    short, _ = (await local_thread.malloc(Timespec)).split(8)
    with pytest.raises(ValueError):
        await task.clock_gettime(CLOCK.MONOTONIC, short)
    # Consumed.
    tp = await local_thread.malloc(Timespec)
    await task.clock_gettime(CLOCK.MONOTONIC, tp)
    with pytest.raises(UseAfterConsumeError):
        await task.clock_gettime(CLOCK.MONOTONIC, tp)
    # The kernel's refusal leaves the pointer usable.
    tp = await local_thread.malloc(Timespec)
    with pytest.raises(OSError) as info:
        await task.clock_gettime(99, tp)
    assert info.value.errno == errno.EINVAL
    assert not tp.consumed
    await task.clock_gettime(CLOCK.MONOTONIC, tp)
    await still_works()


async def test_bad_sleeps() -> None:
    task = local_thread.task
    # An uninitialized request: TypeError before any syscall.
    with pytest.raises(TypeError):
        await task.nanosleep(await local_thread.malloc(Timespec))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.nanosleep(await local_thread.ptr(b"\0" * 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.clock_nanosleep(
            CLOCK.MONOTONIC, "abs", await local_thread.ptr(Timespec(0, 1))  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        await task.clock_nanosleep(
            CLOCK.MONOTONIC, 2**32, await local_thread.ptr(Timespec(0, 1))  # type: ignore[arg-type]
        )
    # Nanoseconds out of range are refused before any syscall.
    for nsec in (1_000_000_000, -1, 2**62):
        with pytest.raises(ValueError):
            Timespec(0, nsec)
    # A negative time: the kernel says EINVAL.
    remain = await local_thread.malloc(Timespec)
    for bad in (Timespec(-1, 0), Timespec(-5, 10)):
        with pytest.raises(OSError) as info:
            await task.nanosleep(await local_thread.ptr(bad), remain)
        assert info.value.errno == errno.EINVAL
        assert not remain.consumed
        with pytest.raises(OSError) as info:
            await task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.NONE, await local_thread.ptr(bad))
        assert info.value.errno == errno.EINVAL
    # A clock one cannot sleep on, and no clock at all.
    with pytest.raises(OSError) as info:
        await task.clock_nanosleep(
            CLOCK.THREAD_CPUTIME_ID, TIMER.NONE, await local_thread.ptr(Timespec(0, 1))
        )
    assert info.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as info:
        await task.clock_nanosleep(99, TIMER.NONE, await local_thread.ptr(Timespec(0, 1)))
    assert info.value.errno == errno.EINVAL
    # A consumed request.
    request = await local_thread.ptr(Timespec(0, 1))
    parts = request.split(8)
    with pytest.raises(UseAfterConsumeError):
        await task.nanosleep(request)
    del parts
    await task.nanosleep(await local_thread.ptr(Timespec(0, 1)))
    await still_works()
