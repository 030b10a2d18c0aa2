"""rsyscall.time: the clock syscalls compared with the stdlib `time` module,
the sleeps, and `Itimerspec`'s byte layout."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import Thread, UseAfterConsumeError, local_thread
from rsyscall.time import CLOCK, TIMER, Itimerspec, SleepInterrupted, Timespec

from .util import thread_pid

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


def process_cpu_clock(pid: int) -> int:
    """The dynamic clock id of process `pid`'s CPU time (the kernel's
    make_process_cpuclock(pid, CPUCLOCK_SCHED)), as clock_getcpuclockid(3)
    gives it."""
    return (~pid << 3) | 2


async def read_clock(thread: Thread, clock: CLOCK | int) -> float:
    tp = await thread.malloc(Timespec)
    result = await thread.task.clock_gettime(clock, tp)
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
async def test_clock_gettime_matches_stdlib(thread: Thread, clock: CLOCK, stdlib: int) -> None:
    if clock == CLOCK.PROCESS_CPUTIME_ID and thread is not local_thread:
        # The CPU time of the thread's process, read from outside.
        stdlib = process_cpu_clock(thread_pid(thread))
    before = time.clock_gettime(stdlib)
    ours = await read_clock(thread, clock)
    after = time.clock_gettime(stdlib)
    # Floats of ~1.7e9 seconds lose some nanoseconds: allow a microsecond.
    assert before - 1e-6 <= ours <= after + 1e-6


async def test_clock_getres_matches_stdlib(thread: Thread) -> None:
    for clock in (CLOCK.REALTIME, CLOCK.MONOTONIC, CLOCK.MONOTONIC_COARSE):
        res = await thread.task.clock_getres(clock, await thread.malloc(Timespec))
        assert (await res.read()).to_float() == time.clock_getres(clock)
    # Without a buffer it only checks that the clock exists.
    await thread.task.clock_getres(CLOCK.MONOTONIC)
    with pytest.raises(OSError) as info:
        await thread.task.clock_getres(99)
    assert info.value.errno == errno.EINVAL


# An OS thread's CPU-time clock is readable only in its own process: local only.
async def test_dynamic_clock_id() -> None:
    # A thread's CPU-time clock has a dynamic (negative) id, not in CLOCK.
    clock = time.pthread_getcpuclockid(threading.get_ident())
    assert clock < 0
    before = time.clock_gettime(clock)
    ours = await read_clock(local_thread, clock)
    assert before <= ours <= time.clock_gettime(clock)


async def test_dynamic_process_clock_id(thread: Thread) -> None:
    # Another process's CPU-time clock, here the test's own: a dynamic id too.
    clock = process_cpu_clock(os.getpid())
    assert clock < 0
    before = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
    ours = await read_clock(thread, clock)
    assert before <= ours <= time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)


# ---- sleeps ----


async def test_nanosleep(thread: Thread) -> None:
    request = await thread.ptr(Timespec.from_float(0.005))
    start = time.monotonic()
    await thread.task.nanosleep(request)
    elapsed = time.monotonic() - start
    assert 0.005 <= elapsed < 0.5
    # A `remain` the sleep did not need is not consumed.
    remain = await thread.malloc(Timespec)
    await thread.task.nanosleep(request, remain)
    assert not remain.consumed
    assert not request.consumed


async def test_clock_nanosleep_relative(thread: Thread) -> None:
    request = await thread.ptr(Timespec(0, 5_000_000))
    start = time.monotonic()
    await thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.NONE, request)
    assert 0.005 <= time.monotonic() - start < 0.5


async def test_clock_nanosleep_absolute(thread: Thread) -> None:
    tp = await thread.malloc(Timespec)
    now = await thread.task.clock_gettime(CLOCK.MONOTONIC, tp)
    deadline = (await now.read()).to_float() + 0.005
    request = await thread.ptr(Timespec.from_float(deadline))
    await thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.ABSTIME, request)
    assert time.clock_gettime(time.CLOCK_MONOTONIC) >= deadline - 1e-6
    # A deadline in the past returns at once.
    await thread.task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.ABSTIME, request)


# The interrupted sleeps need a handler in the sleeping process, Python's in
# ours: local only.
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


async def still_works(thread: Thread) -> None:
    assert abs(await read_clock(thread, CLOCK.MONOTONIC) - time.monotonic()) < 1


async def test_bad_arguments(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(TypeError):
        await task.clock_gettime("monotonic", await thread.malloc(Timespec))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.clock_gettime(2**40, await thread.malloc(Timespec))
    # The pointer must point to a Timespec.
    with pytest.raises(TypeError):
        await task.clock_gettime(CLOCK.MONOTONIC, await thread.malloc(bytes, 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.clock_gettime(CLOCK.MONOTONIC, await thread.malloc(Itimerspec))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.clock_gettime(CLOCK.MONOTONIC, Timespec(0, 0))  # type: ignore[arg-type]
    # Too small.
    short, _ = (await thread.malloc(Timespec)).split(8)
    with pytest.raises(ValueError):
        await task.clock_gettime(CLOCK.MONOTONIC, short)
    # Consumed.
    tp = await thread.malloc(Timespec)
    await task.clock_gettime(CLOCK.MONOTONIC, tp)
    with pytest.raises(UseAfterConsumeError):
        await task.clock_gettime(CLOCK.MONOTONIC, tp)
    # The kernel's refusal leaves the pointer usable.
    tp = await thread.malloc(Timespec)
    with pytest.raises(OSError) as info:
        await task.clock_gettime(99, tp)
    assert info.value.errno == errno.EINVAL
    assert not tp.consumed
    await task.clock_gettime(CLOCK.MONOTONIC, tp)
    await still_works(thread)


async def test_bad_sleeps(thread: Thread) -> None:
    task = thread.task
    # An uninitialized request: TypeError before any syscall.
    with pytest.raises(TypeError):
        await task.nanosleep(await thread.malloc(Timespec))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.nanosleep(await thread.ptr(b"\0" * 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.clock_nanosleep(
            CLOCK.MONOTONIC, "abs", await thread.ptr(Timespec(0, 1))  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        await task.clock_nanosleep(
            CLOCK.MONOTONIC, 2**32, await thread.ptr(Timespec(0, 1))  # type: ignore[arg-type]
        )
    # Nanoseconds out of range are refused before any syscall.
    for nsec in (1_000_000_000, -1, 2**62):
        with pytest.raises(ValueError):
            Timespec(0, nsec)
    # A negative time: the kernel says EINVAL.
    remain = await thread.malloc(Timespec)
    for bad in (Timespec(-1, 0), Timespec(-5, 10)):
        with pytest.raises(OSError) as info:
            await task.nanosleep(await thread.ptr(bad), remain)
        assert info.value.errno == errno.EINVAL
        assert not remain.consumed
        with pytest.raises(OSError) as info:
            await task.clock_nanosleep(CLOCK.MONOTONIC, TIMER.NONE, await thread.ptr(bad))
        assert info.value.errno == errno.EINVAL
    # A clock one cannot sleep on, and no clock at all.
    with pytest.raises(OSError) as info:
        await task.clock_nanosleep(
            CLOCK.THREAD_CPUTIME_ID, TIMER.NONE, await thread.ptr(Timespec(0, 1))
        )
    assert info.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as info:
        await task.clock_nanosleep(99, TIMER.NONE, await thread.ptr(Timespec(0, 1)))
    assert info.value.errno == errno.EINVAL
    # A consumed request.
    request = await thread.ptr(Timespec(0, 1))
    parts = request.split(8)
    with pytest.raises(UseAfterConsumeError):
        await task.nanosleep(request)
    del parts
    await task.nanosleep(await thread.ptr(Timespec(0, 1)))
    await still_works(thread)
