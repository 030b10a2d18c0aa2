"""<time.h>: `struct timespec`, `struct itimerspec`, the clock ids, and the
clock syscalls: clock_gettime(2), clock_getres(2), clock_nanosleep(2),
nanosleep(2).

`Itimerspec` is defined here because <time.h> is where C defines `struct
itimerspec` and where timer_settime(2) declares its use of it; timerfd_create(2)
uses it too, and <sys/timerfd.h> includes <time.h> for it, so
`rsyscall.sys.timerfd` re-exports it.  Defining it below both users keeps
imports going downward.

The sleeps here block the process that makes them (the local thread's
event loop too, for `local_thread`).  To wait without blocking, use
`rsyscall.sys.timerfd.sleep`.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import struct
from typing import TYPE_CHECKING, Self, overload

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_INT, Layout, Struct, check_fields, int_arg

if TYPE_CHECKING:
    from rsyscall.memory.allocator import Allocation

__all__ = ["CLOCK", "TIMER", "Itimerspec", "SleepInterrupted", "TimeTask", "Timespec"]

_NSEC_PER_SEC = 1_000_000_000


class CLOCK(IntEnum):
    """Clock ids of clock_gettime(2) and the timer syscalls."""

    REALTIME = 0
    MONOTONIC = 1
    PROCESS_CPUTIME_ID = 2
    THREAD_CPUTIME_ID = 3
    MONOTONIC_RAW = 4
    REALTIME_COARSE = 5
    MONOTONIC_COARSE = 6
    BOOTTIME = 7
    REALTIME_ALARM = 8
    BOOTTIME_ALARM = 9
    TAI = 11


# utimensat(2)'s special nsec values (<sys/stat.h>).
_UTIME_SPECIAL = frozenset({(1 << 30) - 1, (1 << 30) - 2})


@dataclasses.dataclass(frozen=True)
class Timespec(Struct):
    """`struct timespec`: a time as whole seconds `sec` and nanoseconds `nsec`.

    `nsec` is 0 to 999,999,999, or one of the two values utimensat(2)
    gives a meaning (UTIME_NOW, UTIME_OMIT); anything else is a ValueError
    here rather than EINVAL from the kernel.  `sec` may be negative (a time
    before the epoch); the syscalls that refuse that say EINVAL.
    """

    __slots__ = ("nsec", "sec")

    sec: int
    nsec: int
    layout = Layout("struct timespec", [("tv_sec", "q"), ("tv_nsec", "q")])

    def __post_init__(self) -> None:
        check_fields(self, (("sec", "q"), ("nsec", "q")))
        if not 0 <= self.nsec < _NSEC_PER_SEC and self.nsec not in _UTIME_SPECIAL:
            raise ValueError(
                f"Timespec nsec {self.nsec} outside 0..{_NSEC_PER_SEC - 1} "
                "(and not UTIME_NOW or UTIME_OMIT)"
            )

    @classmethod
    def from_float(cls, seconds: float) -> Self:
        """The Timespec nearest to `seconds` (nanosecond resolution);
        a negative time has a negative `sec` and `0 <= nsec < 10**9`."""
        if not isinstance(seconds, int | float):
            raise TypeError(f"seconds must be a float, not {type(seconds).__name__}")
        if not math.isfinite(seconds):
            raise ValueError(f"seconds must be finite, not {seconds}")
        sec = math.floor(seconds)
        # seconds - sec is exact for a float, so only this rounding loses anything.
        nsec = round((seconds - sec) * _NSEC_PER_SEC)
        if nsec >= _NSEC_PER_SEC:
            sec += 1
            nsec -= _NSEC_PER_SEC
        return cls(sec, nsec)

    def to_float(self) -> float:
        """This time in seconds, as a float."""
        return self.sec + self.nsec / _NSEC_PER_SEC

    def to_bytes(self) -> bytes:
        try:
            return self.layout.struct.pack(self.sec, self.nsec)
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in a struct timespec: {e}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct timespec needs {size} bytes, got {len(data)}")
        sec, nsec = cls.layout.struct.unpack_from(data)
        return cls(sec, nsec)


class TIMER(IntFlag):
    """clock_nanosleep(2) flags (C: TIMER_ABSTIME)."""

    NONE = 0
    ABSTIME = 1


@dataclasses.dataclass(frozen=True)
class Itimerspec(Struct):
    """`struct itimerspec`: a timer's period `interval` (zero: it fires once)
    and the time to its next expiration `value` (zero: disarmed).

    As in C, `interval` comes first: `Itimerspec(Timespec(0, 0),
    Timespec(1, 0))` fires once, a second from now."""

    __slots__ = ("interval", "value")

    interval: Timespec
    value: Timespec
    layout = Layout("struct itimerspec", [("it_interval", "16s"), ("it_value", "16s")])

    def __post_init__(self) -> None:
        for name in ("interval", "value"):
            field = getattr(self, name)
            if not isinstance(field, Timespec):
                raise TypeError(
                    f"Itimerspec.{name} must be a Timespec, not {type(field).__name__}"
                )

    @classmethod
    def from_float(cls, interval: float, value: float) -> Self:
        """An Itimerspec of `interval` and `value` in seconds (see
        `Timespec.from_float`)."""
        return cls(Timespec.from_float(interval), Timespec.from_float(value))

    def to_bytes(self) -> bytes:
        # Timespec.to_bytes raises ValueError for out-of-range fields.
        return self.interval.to_bytes() + self.value.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct itimerspec needs {size} bytes, got {len(data)}")
        interval, value = cls.layout.struct.unpack_from(data)
        return cls(Timespec.from_bytes(interval), Timespec.from_bytes(value))


class SleepInterrupted(InterruptedError):
    """clock_nanosleep(2) or nanosleep(2) was interrupted by a signal
    handler (EINTR).

    `remain` is the `remain` pointer the call was given, now a
    ReadablePointer to the time that was left, if the kernel wrote it (a
    relative sleep given a `remain`); otherwise None, and the `remain`
    pointer, if any, was not consumed."""

    remain: ReadablePointer[Timespec] | None = None





_SYS_clock_gettime = int(SYS.clock_gettime)
_SYS_clock_nanosleep = int(SYS.clock_nanosleep)
_TIMESPEC_SIZE = Timespec.sizeof()


class TimeTask(BaseTask):
    __slots__ = ()

    async def _fill_timespec(
        self, number: int, clockid: int, tp: Pointer[Timespec]
    ) -> ReadablePointer[Timespec]:
        clock = int_arg("clockid", clockid, C_INT)
        check_points_to(tp, Timespec)
        alloc = take(tp, self, _TIMESPEC_SIZE)
        try:
            await self.sysif.syscall(number, clock, alloc.address)
        except BaseException:
            restore(tp, alloc)
            raise
        return tp._readable(alloc, self)

    async def clock_gettime(
        self, clockid: CLOCK | int, tp: Pointer[Timespec]
    ) -> ReadablePointer[Timespec]:
        """clock_gettime(2): write the time of clock `clockid` into `tp`;
        consumes it.  `clockid` may also be a dynamic clock id (an int)."""
        return await self._fill_timespec(_SYS_clock_gettime, clockid, tp)

    @overload
    async def clock_getres(self, clockid: CLOCK | int, res: None = None) -> None: ...
    @overload
    async def clock_getres(
        self, clockid: CLOCK | int, res: Pointer[Timespec]
    ) -> ReadablePointer[Timespec]: ...
    async def clock_getres(
        self, clockid: CLOCK | int, res: Pointer[Timespec] | None = None
    ) -> ReadablePointer[Timespec] | None:
        """clock_getres(2): write the resolution of clock `clockid` into
        `res` (consumed).  With no `res`, only checks that the clock
        exists (OSError EINVAL if not)."""
        if res is None:
            await self.sysif.syscall(SYS.clock_getres, int_arg("clockid", clockid, C_INT), 0)
            return None
        return await self._fill_timespec(SYS.clock_getres, clockid, res)

    async def clock_nanosleep(
        self,
        clockid: CLOCK | int,
        flags: TIMER,
        request: ReadablePointer[Timespec],
        remain: Pointer[Timespec] | None = None,
    ) -> None:
        """clock_nanosleep(2): block this process for the time `request` on
        clock `clockid`, or with TIMER.ABSTIME until that clock reads
        `request`.

        A signal handler cuts the sleep short with `SleepInterrupted` (an
        InterruptedError); for a relative sleep given `remain`, the kernel
        writes the time left there, and the exception's `remain` is the
        ReadablePointer to it.  `remain` is consumed only then."""
        clock = int_arg("clockid", clockid, C_INT)
        flag_bits = int_arg("flags", flags, C_INT)
        await _sleep(
            self, _SYS_clock_nanosleep, (clock, flag_bits), request, remain,
            not flag_bits & TIMER.ABSTIME,
        )

    async def nanosleep(
        self, request: ReadablePointer[Timespec], remain: Pointer[Timespec] | None = None
    ) -> None:
        """nanosleep(2): block this process for the time `request`
        (measured on CLOCK.MONOTONIC).

        A signal handler cuts the sleep short with `SleepInterrupted` (an
        InterruptedError); given `remain`, the kernel writes the time left
        there, and the exception's `remain` is the ReadablePointer to it.
        `remain` is consumed only then."""
        await _sleep(self, SYS.nanosleep, (), request, remain, True)


async def _sleep(
    task: TimeTask,
    number: int,
    leading: tuple[int, ...],
    request: ReadablePointer[Timespec],
    remain: Pointer[Timespec] | None,
    writes_remain: bool,
) -> None:
    check_points_to(request, Timespec)
    request_address = borrow(request, task, _TIMESPEC_SIZE).address
    if remain is None:
        try:
            await task.sysif.syscall(number, *leading, request_address, 0)
        except InterruptedError as error:
            raise _interrupted(error, None) from None
        return
    check_points_to(remain, Timespec)
    alloc: Allocation = take(remain, task, _TIMESPEC_SIZE)
    try:
        await task.sysif.syscall(number, *leading, request_address, alloc.address)
    except InterruptedError as error:
        if not writes_remain:
            restore(remain, alloc)
            raise _interrupted(error, None) from None
        raise _interrupted(error, remain._readable(alloc, task)) from None
    except BaseException:
        restore(remain, alloc)
        raise
    # Only an interrupted sleep writes `remain`: give it back as it was.
    restore(remain, alloc)


def _interrupted(
    error: InterruptedError, remain: ReadablePointer[Timespec] | None
) -> SleepInterrupted:
    code = error.errno or errno.EINTR
    result = SleepInterrupted(code, error.strerror or os.strerror(code))
    result.remain = remain
    return result
