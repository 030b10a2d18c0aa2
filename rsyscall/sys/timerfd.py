"""<sys/timerfd.h>: timers that expire as a readable file descriptor:
timerfd_create(2), timerfd_settime(2), timerfd_gettime(2).

Reading a timerfd gives the number of expirations since the last read or
settime, as 8 bytes (`UInt64`): `await fd.read(await thread.malloc(UInt64))`.
A blocking read waits for the next expiration; through an
AsyncFileDescriptor, it waits without blocking the process.

`Itimerspec` is defined in `rsyscall.time` (C defines `struct itimerspec`
in <time.h>, which <sys/timerfd.h> includes) and re-exported here.

`sleep(thread, seconds)` and `AsyncTimer` are the helpers built on these:
waiting in any thread's epoll loop, so other coroutines keep running.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, overload

import anyio

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_INT, UInt64, int_arg
from rsyscall.time import CLOCK, Itimerspec, Timespec

if TYPE_CHECKING:
    from types import TracebackType

    from rsyscall.epoller import AsyncFileDescriptor
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = [
    "TFD",
    "TFD_TIMER",
    "AsyncTimer",
    "Itimerspec",
    "TimerfdFileDescriptor",
    "TimerfdTask",
    "sleep",
]


class TFD(IntFlag):
    """timerfd_create(2) flags."""

    NONE = 0
    NONBLOCK = 0o4000
    CLOEXEC = 0o2000000


class TFD_TIMER(IntFlag):
    """timerfd_settime(2) flags (C: TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET)."""

    NONE = 0
    ABSTIME = 1
    CANCEL_ON_SET = 2





_SYS_timerfd_settime = int(SYS.timerfd_settime)
_TFD_CLOEXEC = int(TFD.CLOEXEC)
_ITIMERSPEC_SIZE = Itimerspec.sizeof()


class TimerfdTask(BaseTask):
    __slots__ = ()

    async def timerfd_create(
        self, clockid: CLOCK | int, flags: TFD = TFD.NONE
    ) -> FileDescriptor:
        """timerfd_create(2): a new timer on clock `clockid` (REALTIME,
        MONOTONIC, BOOTTIME or their _ALARM versions), disarmed.
        `TFD.CLOEXEC` is always added to `flags`."""
        clock = int_arg("clockid", clockid, C_INT)
        number = await self.sysif.syscall(
            SYS.timerfd_create, clock, int_arg("flags", flags, C_INT) | _TFD_CLOEXEC
        )
        return self.make_fd(number)


class TimerfdFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    @overload
    async def timerfd_settime(
        self, flags: TFD_TIMER, new_value: ReadablePointer[Itimerspec], old_value: None = None
    ) -> None: ...
    @overload
    async def timerfd_settime(
        self,
        flags: TFD_TIMER,
        new_value: ReadablePointer[Itimerspec],
        old_value: Pointer[Itimerspec],
    ) -> ReadablePointer[Itimerspec]: ...
    async def timerfd_settime(
        self,
        flags: TFD_TIMER,
        new_value: ReadablePointer[Itimerspec],
        old_value: Pointer[Itimerspec] | None = None,
    ) -> ReadablePointer[Itimerspec] | None:
        """timerfd_settime(2): arm this timer to expire after `new_value.value`
        (with TFD_TIMER.ABSTIME: when the clock reads it), then every
        `new_value.interval`; a zero `value` disarms it.  Fills `old_value`
        (consumed) with the setting from before.

        `new_value` may be any readable pointer to an Itimerspec, such as
        one timerfd_gettime returned."""
        task = self.task
        number = self.number
        flag_bits = int_arg("flags", flags, C_INT)
        check_points_to(new_value, Itimerspec)
        new_address = borrow(new_value, task, _ITIMERSPEC_SIZE).address
        if old_value is None:
            await task.sysif.syscall(_SYS_timerfd_settime, number, flag_bits, new_address, 0)
            return None
        check_points_to(old_value, Itimerspec)
        alloc = take(old_value, task, _ITIMERSPEC_SIZE)
        try:
            await task.sysif.syscall(
                _SYS_timerfd_settime, number, flag_bits, new_address, alloc.address
            )
        except BaseException:
            restore(old_value, alloc)
            raise
        return old_value._readable(alloc, task)

    async def timerfd_gettime(
        self, curr_value: Pointer[Itimerspec]
    ) -> ReadablePointer[Itimerspec]:
        """timerfd_gettime(2): fill `curr_value` (consumed) with this timer's
        interval and the time left to its next expiration (always relative,
        zero if disarmed)."""
        task = self.task
        number = self.number
        check_points_to(curr_value, Itimerspec)
        alloc = take(curr_value, task, _ITIMERSPEC_SIZE)
        try:
            await task.sysif.syscall(SYS.timerfd_gettime, number, alloc.address)
        except BaseException:
            restore(curr_value, alloc)
            raise
        return curr_value._readable(alloc, task)


# ---- the helpers ----

_ZERO = Timespec(0, 0)
# A zero it_value would disarm the timer, so a zero sleep waits 1 ns.
_SHORTEST = Itimerspec(_ZERO, Timespec(0, 1))
_FOREVER = Itimerspec(_ZERO, _ZERO)


def _one_shot(seconds: float) -> Itimerspec:
    """The setting of a timer that fires once, `seconds` from now;
    infinity never fires."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise TypeError(f"seconds must be a float, not {type(seconds).__name__}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a non-negative number, not {seconds}")
    if seconds == math.inf:
        return _FOREVER
    value = Timespec.from_float(seconds)
    if value == _ZERO:
        return _SHORTEST
    return Itimerspec(_ZERO, value)


class AsyncTimer:
    """A non-blocking timerfd in a thread's epoll loop, for repeated sleeps.

    Making a timerfd costs several syscalls (create, register with epoll,
    then unregister and close); an AsyncTimer pays that once, and each
    `sleep` costs one timerfd_settime and the read that waits.  One
    coroutine at a time may sleep on it.

        timer = await AsyncTimer.make(thread)
        try:
            await timer.sleep(0.1)
            await timer.sleep(0.2)
        finally:
            await timer.close()

    or `async with await AsyncTimer.make(thread) as timer: ...`."""

    def __init__(self, thread: Thread, afd: AsyncFileDescriptor) -> None:
        self.thread = thread
        self.afd = afd
        self._setting: Pointer[Itimerspec] | None = None
        self._count: Pointer[UInt64] | None = None
        self._busy = False

    @classmethod
    async def make(cls, thread: Thread, clockid: CLOCK = CLOCK.MONOTONIC) -> AsyncTimer:
        """A new, disarmed timer on `clockid` in `thread`."""
        fd = await thread.task.timerfd_create(clockid, TFD.NONBLOCK)
        try:
            afd = await thread.make_afd(fd)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await fd.close()
            raise
        return cls(thread, afd)

    def __repr__(self) -> str:
        return f"AsyncTimer({self.afd.handle!r})"

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (`math.inf`: until cancelled) without blocking the
        thread's process.  A cancelled sleep leaves the timer usable."""
        setting = _one_shot(seconds)
        if self._busy:
            raise anyio.BusyResourceError("sleeping on this AsyncTimer")
        self._busy = True
        try:
            await self._sleep(setting)
        finally:
            self._busy = False

    async def _sleep(self, setting: Itimerspec) -> None:
        thread = self.thread
        # The buffers are reused from sleep to sleep; one that an
        # interrupted call left consumed is replaced.
        buf = self._setting
        if buf is None or buf.consumed:
            new_value = await thread.ptr(setting)
        else:
            new_value = await buf.write(setting)
        self._setting = new_value
        # Rearming also resets the count of expirations, so one left over
        # from a cancelled sleep does not end this one early.
        await self.afd.handle.timerfd_settime(TFD_TIMER.NONE, new_value)
        count = self._count
        if count is None or count.consumed:
            count = await thread.malloc(UInt64)
        valid, rest = await self.afd.read(count)
        self._count = valid + rest

    async def close(self) -> None:
        """Close the timer, even in a cancelled scope; closing twice is allowed."""
        with anyio.CancelScope(shield=True):
            await self.afd.close()

    async def __aenter__(self) -> AsyncTimer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def sleep(thread: Thread, seconds: float) -> None:
    """Wait `seconds` (`math.inf`: until cancelled) on CLOCK.MONOTONIC in
    `thread`'s epoll loop, without blocking its process: a one-use
    `AsyncTimer`, closed however the sleep ends.  For many sleeps, an
    AsyncTimer saves the syscalls of making one each time."""
    _one_shot(seconds)  # bad arguments fail before any syscall
    timer = await AsyncTimer.make(thread)
    try:
        await timer.sleep(seconds)
    finally:
        await timer.close()
