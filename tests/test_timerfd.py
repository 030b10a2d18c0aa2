"""rsyscall.sys.timerfd: timers as file descriptors, read through an
AsyncFileDescriptor; the `sleep` and `AsyncTimer` helpers."""

from __future__ import annotations

import errno
import gc
import math
import os
import time

import anyio
import pytest

import rsyscall.time
from rsyscall import FileDescriptor, Thread, UseAfterConsumeError
from rsyscall.fcntl import FD, F, O
from rsyscall.struct import UInt64
from rsyscall.sys.eventfd import EFD
from rsyscall.sys.timerfd import TFD, TFD_TIMER, AsyncTimer, Itimerspec, sleep
from rsyscall.time import CLOCK, Timespec

from .util import fd_path, thread_fds

pytestmark = pytest.mark.anyio

ZERO = Timespec(0, 0)


async def settime(
    thread: Thread, fd: FileDescriptor, spec: Itimerspec, flags: TFD_TIMER = TFD_TIMER.NONE
) -> None:
    await fd.timerfd_settime(flags, await thread.ptr(spec))


async def gettime(thread: Thread, fd: FileDescriptor) -> Itimerspec:
    return await (await fd.timerfd_gettime(await thread.malloc(Itimerspec))).read()


def test_itimerspec_is_times() -> None:
    # One struct, defined where C defines it (<time.h>), importable from both.
    assert Itimerspec is rsyscall.time.Itimerspec


async def test_create_flags(thread: Thread) -> None:
    fd = await thread.task.timerfd_create(CLOCK.MONOTONIC)
    assert await fd.fcntl(F.GETFD) & FD.CLOEXEC
    assert not await fd.fcntl(F.GETFL) & O.NONBLOCK
    assert os.readlink(fd_path(thread, fd)) == "anon_inode:[timerfd]"
    await fd.close()
    for clock in (CLOCK.REALTIME, CLOCK.BOOTTIME):
        fd = await thread.task.timerfd_create(clock, TFD.NONBLOCK | TFD.CLOEXEC)
        assert await fd.fcntl(F.GETFL) & O.NONBLOCK
        await fd.close()


async def test_periodic_timer(thread: Thread) -> None:
    fd = await thread.task.timerfd_create(CLOCK.MONOTONIC, TFD.NONBLOCK)
    afd = await thread.make_afd(fd)
    try:
        # Not armed: nothing to read.
        with pytest.raises(BlockingIOError):
            await fd.read(await thread.malloc(UInt64))
        start = time.monotonic()
        await settime(thread, fd, Itimerspec.from_float(0.02, 0.02))
        counts = []
        buf = await thread.malloc(UInt64)
        for _ in range(5):
            valid, rest = await afd.read(buf)
            counts.append(await valid.read())
            buf = valid + rest
        elapsed = time.monotonic() - start
        assert all(count >= 1 for count in counts)
        # Each expiration took 20 ms; none were lost.
        assert 0.02 * sum(counts) <= elapsed + 0.001
        assert elapsed < 0.02 * (sum(counts) + 1) + 0.2
        # Late reads collect the expirations they missed.
        await anyio.sleep(0.07)
        valid, _ = await fd.read(buf)
        assert 3 <= await valid.read() <= 10
    finally:
        await afd.close()


async def test_gettime_shows_remaining_time(thread: Thread) -> None:
    fd = await thread.task.timerfd_create(CLOCK.MONOTONIC, TFD.NONBLOCK)
    assert await gettime(thread, fd) == Itimerspec(ZERO, ZERO)  # disarmed
    await settime(thread, fd, Itimerspec(Timespec(0, 500), Timespec(10, 0)))
    current = await gettime(thread, fd)
    assert current.interval == Timespec(0, 500)
    assert 9 < current.value.to_float() <= 10
    # settime gives back the setting it replaced.
    old = await thread.malloc(Itimerspec)
    previous = await fd.timerfd_settime(
        TFD_TIMER.NONE, await thread.ptr(Itimerspec(ZERO, ZERO)), old
    )
    assert old.consumed
    before = await previous.read()
    assert before.interval == Timespec(0, 500)
    assert 9 < before.value.to_float() <= current.value.to_float()
    assert await gettime(thread, fd) == Itimerspec(ZERO, ZERO)
    # What gettime filled can be passed back to settime.
    await settime(thread, fd, Itimerspec.from_float(0, 5))
    saved = await fd.timerfd_gettime(await thread.malloc(Itimerspec))
    await settime(thread, fd, Itimerspec(ZERO, ZERO))
    await fd.timerfd_settime(TFD_TIMER.NONE, saved)
    assert 4 < (await gettime(thread, fd)).value.to_float() <= 5
    await fd.close()


async def test_absolute_timer(thread: Thread) -> None:
    fd = await thread.task.timerfd_create(CLOCK.MONOTONIC, TFD.NONBLOCK)
    afd = await thread.make_afd(fd)
    try:
        deadline = time.clock_gettime(time.CLOCK_MONOTONIC) + 0.03
        at = Itimerspec(ZERO, Timespec.from_float(deadline))
        await settime(thread, fd, at, TFD_TIMER.ABSTIME)
        # Read back as time remaining, not as the absolute time.
        assert 0 < (await gettime(thread, fd)).value.to_float() <= 0.03
        valid, _ = await afd.read(await thread.malloc(UInt64))
        assert await valid.read() == 1
        assert time.clock_gettime(time.CLOCK_MONOTONIC) >= deadline - 1e-6
        # CANCEL_ON_SET is for absolute REALTIME timers: accepted there.
        rt = await thread.task.timerfd_create(CLOCK.REALTIME, TFD.NONBLOCK)
        later = Timespec.from_float(time.time() + 100)
        flags = TFD_TIMER.ABSTIME | TFD_TIMER.CANCEL_ON_SET
        await settime(thread, rt, Itimerspec(ZERO, later), flags)
        await rt.close()
    finally:
        await afd.close()


# ---- sleep and AsyncTimer ----


async def test_sleep_takes_the_time_and_no_cpu(thread: Thread) -> None:
    await sleep(thread, 0)  # warm up: the thread's epoll fd
    cpu = time.process_time()
    start = time.monotonic()
    await sleep(thread, 0.05)
    elapsed = time.monotonic() - start
    used = time.process_time() - cpu
    assert 0.05 <= elapsed < 0.5
    assert used < 0.02, f"sleeping used {used} s of CPU"


async def test_other_coroutines_run_while_sleeping(thread: Thread) -> None:
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await sleep(thread, 0.06)
        done = True
    assert ticks >= 4


async def test_concurrent_sleeps(thread: Thread) -> None:
    ended: list[float] = []

    async def sleeper(seconds: float) -> None:
        await sleep(thread, seconds)
        ended.append(seconds)

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for seconds in (0.06, 0.02, 0.04):
            tg.start_soon(sleeper, seconds)
    assert ended == [0.02, 0.04, 0.06]
    assert time.monotonic() - start < 0.5


async def test_cancelled_sleep_leaves_nothing_open(thread: Thread) -> None:
    await sleep(thread, 0)
    before = await thread_fds(thread)
    start = time.monotonic()
    with anyio.move_on_after(0.02) as scope:
        await sleep(thread, 10)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 1
    assert await thread_fds(thread) == before
    with anyio.move_on_after(0.01):
        await sleep(thread, math.inf)
    assert await thread_fds(thread) == before


async def test_async_timer_repeated_sleeps(thread: Thread) -> None:
    await sleep(thread, 0)  # warm up: the thread's epoll fd
    before = await thread_fds(thread)
    timer = await AsyncTimer.make(thread)
    try:
        for seconds in (0.01, 0.02, 0, 0.01):
            start = time.monotonic()
            await timer.sleep(seconds)
            assert seconds <= time.monotonic() - start < seconds + 0.3
        # Cancelled, then used again: the leftover timer does not end the
        # next sleep early.
        with anyio.move_on_after(0.01):
            await timer.sleep(0.03)
        await anyio.sleep(0.04)  # the cancelled timer expires meanwhile
        start = time.monotonic()
        await timer.sleep(0.03)
        assert time.monotonic() - start >= 0.03
        with anyio.move_on_after(0.01):
            await timer.sleep(math.inf)
        await timer.sleep(0.001)
    finally:
        await timer.close()
    await timer.close()  # twice is fine
    assert await thread_fds(thread) == before
    async with await AsyncTimer.make(thread, CLOCK.BOOTTIME) as timer:
        await timer.sleep(0.005)
    assert await thread_fds(thread) == before


async def test_async_timer_one_sleeper_at_a_time(thread: Thread) -> None:
    async with await AsyncTimer.make(thread) as timer:
        async with anyio.create_task_group() as tg:
            tg.start_soon(timer.sleep, 0.05)
            await anyio.sleep(0.01)
            with pytest.raises(anyio.BusyResourceError):
                await timer.sleep(0.01)
        await timer.sleep(0.001)  # free again


async def test_thousand_sleeps_leak_nothing(thread: Thread) -> None:
    allocator = thread.task.space.allocator
    await sleep(thread, 0)
    gc.collect()
    fds_before = await thread_fds(thread)
    mapped_before = allocator.mapped_bytes()
    for _ in range(1000):
        await sleep(thread, 0.00001)
    gc.collect()
    assert await thread_fds(thread) == fds_before
    assert allocator.mapped_bytes() == mapped_before


# ---- bad input ----


async def still_works(thread: Thread) -> None:
    fd = await thread.task.timerfd_create(CLOCK.MONOTONIC, TFD.NONBLOCK)
    await settime(thread, fd, Itimerspec.from_float(0, 1))
    assert 0 < (await gettime(thread, fd)).value.to_float() <= 1
    await fd.close()


async def test_bad_sleeps(thread: Thread) -> None:
    await sleep(thread, 0)  # warm up: the thread's epoll fd
    before = await thread_fds(thread)
    for bad in (-1, -0.001, math.nan, -math.inf):
        with pytest.raises(ValueError):
            await sleep(thread, bad)
    for wrong in ("1", None, True):
        with pytest.raises(TypeError):
            await sleep(thread, wrong)  # type: ignore[arg-type]
    async with await AsyncTimer.make(thread) as timer:
        with pytest.raises(ValueError):
            await timer.sleep(-1)
        with pytest.raises(TypeError):
            await timer.sleep("1")  # type: ignore[arg-type]
        await timer.sleep(0.001)
    assert await thread_fds(thread) == before


async def test_bad_create(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(TypeError):
        await task.timerfd_create("monotonic")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.timerfd_create(CLOCK.MONOTONIC, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.timerfd_create(CLOCK.MONOTONIC, 2**32)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.timerfd_create(2**31)
    for clock in (99, CLOCK.PROCESS_CPUTIME_ID, CLOCK.MONOTONIC_RAW):
        with pytest.raises(OSError) as info:
            await task.timerfd_create(clock)
        assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.timerfd_create(CLOCK.MONOTONIC, 0x10)  # type: ignore[arg-type]
    await still_works(thread)


async def test_bad_settime_and_gettime(thread: Thread) -> None:
    fd = await thread.task.timerfd_create(CLOCK.MONOTONIC, TFD.NONBLOCK)
    good = await thread.ptr(Itimerspec.from_float(0, 1))
    # Wrong pointer types.
    with pytest.raises(TypeError):
        await fd.timerfd_settime(TFD_TIMER.NONE, await thread.malloc(Itimerspec))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await fd.timerfd_settime(TFD_TIMER.NONE, await thread.ptr(Timespec(1, 0)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.timerfd_settime(TFD_TIMER.NONE, Itimerspec.from_float(0, 1))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await fd.timerfd_gettime(await thread.malloc(bytes, 32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.timerfd_settime("abs", good)  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        await fd.timerfd_settime(-(2**31) - 1, good)  # type: ignore[call-overload]
    # Too small.
    short, _ = (await thread.malloc(Itimerspec)).split(16)
    with pytest.raises(ValueError):
        await fd.timerfd_gettime(short)
    with pytest.raises(ValueError):
        await fd.timerfd_settime(TFD_TIMER.NONE, good, short)
    # Consumed.
    curr = await thread.malloc(Itimerspec)
    await fd.timerfd_gettime(curr)
    with pytest.raises(UseAfterConsumeError):
        await fd.timerfd_gettime(curr)
    with pytest.raises(UseAfterConsumeError):
        await fd.timerfd_settime(TFD_TIMER.NONE, good, curr)
    # The kernel's refusals: out-of-range times, unknown flags.
    old = await thread.malloc(Itimerspec)
    for bad in (
        Itimerspec(ZERO, Timespec(-1, 0)),
        Itimerspec(Timespec(-1, 5), Timespec(1, 0)),
    ):
        with pytest.raises(OSError) as info:
            await fd.timerfd_settime(TFD_TIMER.NONE, await thread.ptr(bad), old)
        assert info.value.errno == errno.EINVAL
        assert not old.consumed  # a failed syscall gives it back
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await fd.timerfd_settime(0x10, good)  # type: ignore[call-overload]
    # CANCEL_ON_SET means something only with ABSTIME on REALTIME; elsewhere
    # the kernel ignores it.
    await fd.timerfd_settime(TFD_TIMER.CANCEL_ON_SET, good)
    # Reading needs 8 bytes.
    await settime(thread, fd, Itimerspec(ZERO, Timespec(0, 1)))
    with pytest.raises(OSError) as info:
        await fd.read(await thread.malloc(bytes, 4))
    assert info.value.errno == errno.EINVAL
    # Not a timerfd.
    efd = await thread.task.eventfd(0, EFD.NONBLOCK)
    with pytest.raises(OSError) as info:
        await efd.timerfd_settime(TFD_TIMER.NONE, good)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await efd.timerfd_gettime(await thread.malloc(Itimerspec))
    assert info.value.errno == errno.EINVAL
    await efd.close()
    # Closed.
    await fd.close()
    with pytest.raises(UseAfterConsumeError):
        await fd.timerfd_settime(TFD_TIMER.NONE, good)
    with pytest.raises(UseAfterConsumeError):
        await fd.timerfd_gettime(await thread.malloc(Itimerspec))
    await still_works(thread)
