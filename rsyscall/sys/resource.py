"""<sys/resource.h>: scheduling priority (nice values) and resource limits.

Each syscall that can name another process is a method on both `Task`
(the calling process: `who` or `pid` 0) and `Process` (that pid):
`task.setpriority(PRIO.PROCESS, 10)` and `process.setpriority(10)`,
`task.prlimit(...)` and `process.prlimit(...)`.

Limits are `rlim_t`, unsigned 64-bit: `RLIM_INFINITY` is 2**64-1 here
(Python's `resource` module shows it as -1).
"""

from __future__ import annotations

from typing import Self, overload

from rsyscall._enum import IntEnum
from rsyscall.base import BaseProcess, BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import CInt, Layout, Struct, int_arg
from rsyscall.sys.time import Timeval

__all__ = [
    "PRIO",
    "RUSAGE",
    "Rusage",
    "RLIMIT",
    "RLIM_INFINITY",
    "ResourceProcess",
    "ResourceTask",
    "Rlimit",
]

RLIM_INFINITY = (1 << 64) - 1
"""No limit: C's RLIM_INFINITY, `(rlim_t) -1`."""


class PRIO(IntEnum):
    """getpriority(2)/setpriority(2) `which`."""

    PROCESS = 0
    PGRP = 1
    USER = 2


class RLIMIT(IntEnum):
    """getrlimit(2) resources.  OFILE is the old BSD name of NOFILE."""

    CPU = 0
    FSIZE = 1
    DATA = 2
    STACK = 3
    CORE = 4
    RSS = 5
    NPROC = 6
    NOFILE = 7
    OFILE = 7
    MEMLOCK = 8
    AS = 9
    LOCKS = 10
    SIGPENDING = 11
    MSGQUEUE = 12
    NICE = 13
    RTPRIO = 14
    RTTIME = 15


def _limit(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= RLIM_INFINITY:
        raise ValueError(f"{name} {value} outside 0..RLIM_INFINITY")
    return value


class Rlimit(Struct):
    """`struct rlimit`: the soft limit `cur` and the hard limit `max`
    (each a number or `RLIM_INFINITY`)."""

    __slots__ = ("cur", "max")
    layout = Layout("struct rlimit", [("rlim_cur", "Q"), ("rlim_max", "Q")])

    def __init__(self, cur: int, max: int) -> None:
        self.cur = _limit("cur", cur)
        self.max = _limit("max", max)

    def __repr__(self) -> str:
        def show(value: int) -> str:
            return "RLIM_INFINITY" if value == RLIM_INFINITY else str(value)

        return f"Rlimit(cur={show(self.cur)}, max={show(self.max)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rlimit):
            return NotImplemented
        return (self.cur, self.max) == (other.cur, other.max)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(_limit("cur", self.cur), _limit("max", self.max))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"an Rlimit needs {size} bytes, got {len(data)}")
        cur, max_ = cls.layout.struct.unpack(data[:size])
        return cls(cur, max_)



_RLIMIT_SIZE = Rlimit.sizeof()
# The raw getpriority returns 20 - nice, so that no success is negative.
_NICE_BASE = 20


async def _prlimit(
    task: BaseTask,
    pid: int,
    resource: RLIMIT,
    new_limit: ReadablePointer[Rlimit] | None,
    old_limit: Pointer[Rlimit] | None,
) -> ReadablePointer[Rlimit] | None:
    number = int_arg("resource", resource)
    new_address = 0
    if new_limit is not None:
        check_points_to(new_limit, Rlimit)
        new_address = borrow(new_limit, task, _RLIMIT_SIZE).address
    if old_limit is None:
        await task.sysif.syscall(SYS.prlimit64, pid, number, new_address, 0)
        return None
    check_points_to(old_limit, Rlimit)
    alloc = take(old_limit, task, _RLIMIT_SIZE)
    try:
        await task.sysif.syscall(SYS.prlimit64, pid, number, new_address, alloc.address)
    except BaseException:
        restore(old_limit, alloc)
        raise
    return old_limit._readable(alloc, task)


class RUSAGE(IntEnum):
    """getrusage(2) `who`: this process, its reaped children, this thread."""

    SELF = 0
    CHILDREN = -1
    THREAD = 1


_RUSAGE_COUNTS = (
    "maxrss", "ixrss", "idrss", "isrss", "minflt", "majflt", "nswap", "inblock", "oublock",
    "msgsnd", "msgrcv", "nsignals", "nvcsw", "nivcsw",
)


class Rusage(Struct):
    """`struct rusage`: user and system CPU time (`utime`, `stime`, as
    `Timeval`s) and the counters, named as in C without `ru_`: `maxrss`
    (KiB), `minflt`, `majflt`, `inblock`, `oublock`, `nvcsw`, `nivcsw`, and
    the ones Linux leaves 0."""

    __slots__ = ("stime", "utime", *_RUSAGE_COUNTS)
    utime: Timeval
    stime: Timeval
    maxrss: int
    ixrss: int
    idrss: int
    isrss: int
    minflt: int
    majflt: int
    nswap: int
    inblock: int
    oublock: int
    msgsnd: int
    msgrcv: int
    nsignals: int
    nvcsw: int
    nivcsw: int
    layout = Layout(
        "struct rusage",
        [("ru_utime", "16s"), ("ru_stime", "16s"),
         *((f"ru_{name}", "q") for name in _RUSAGE_COUNTS)],
    )

    def __init__(self, utime: Timeval, stime: Timeval, **counts: int) -> None:
        for name, value in (("utime", utime), ("stime", stime)):
            if not isinstance(value, Timeval):
                raise TypeError(f"Rusage.{name} must be a Timeval, not {type(value).__name__}")
        unknown = set(counts) - set(_RUSAGE_COUNTS)
        if unknown:
            raise TypeError(f"Rusage has no counters {sorted(unknown)}")
        self.utime = utime
        self.stime = stime
        for name in _RUSAGE_COUNTS:
            count = int_arg(f"Rusage.{name}", counts.get(name, 0), (-(1 << 63), (1 << 63) - 1))
            setattr(self, name, count)

    def __repr__(self) -> str:
        return (f"Rusage(utime={self.utime.to_float():.6f}s, stime={self.stime.to_float():.6f}s, "
                f"maxrss={self.maxrss} KiB, minflt={self.minflt}, majflt={self.majflt})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rusage):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            self.utime.to_bytes(), self.stime.to_bytes(),
            *(getattr(self, name) for name in _RUSAGE_COUNTS),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a Rusage needs {size} bytes, got {len(data)}")
        utime, stime, *counts = cls.layout.struct.unpack(data[:size])
        return cls(Timeval.from_bytes(utime), Timeval.from_bytes(stime),
                   **dict(zip(_RUSAGE_COUNTS, counts, strict=True)))


class ResourceTask(BaseTask):
    __slots__ = ()

    async def getrusage(self, who: RUSAGE, usage: Pointer[Rusage]) -> ReadablePointer[Rusage]:
        """getrusage(2): fill `usage` (consumed) with the resource use of
        this process (RUSAGE.SELF), of its children that have been reaped
        (CHILDREN), or of the calling thread (THREAD)."""
        if not isinstance(who, RUSAGE):
            raise TypeError(f"who must be a RUSAGE, not {type(who).__name__}")
        check_points_to(usage, Rusage)
        alloc = take(usage, self, Rusage.sizeof())
        try:
            await self.sysif.syscall(SYS.getrusage, int(who), alloc.address)
        except BaseException:
            restore(usage, alloc)
            raise
        return usage._readable(alloc, self)

    async def setpriority(self, which: PRIO, prio: CInt) -> None:
        """setpriority(2) with `who` 0: set the nice value of this process
        (PRIO.PROCESS), its process group (PGRP) or its real user (USER)."""
        await self.sysif.syscall(SYS.setpriority, int_arg("which", which), 0, int_arg("prio", prio))

    async def getpriority(self, which: PRIO) -> int:
        """getpriority(2) with `who` 0: the nice value (-20..19) of this
        process, its process group, or its real user's processes (the
        highest priority among them), as getpriority(2) returns it."""
        return _NICE_BASE - await self.sysif.syscall(SYS.getpriority, int_arg("which", which), 0)

    async def getrlimit(self, resource: RLIMIT, rlim: Pointer[Rlimit]) -> ReadablePointer[Rlimit]:
        """getrlimit(2): fill `rlim` (consumed) with this process's limits
        for `resource`."""
        number = int_arg("resource", resource)
        check_points_to(rlim, Rlimit)
        alloc = take(rlim, self, _RLIMIT_SIZE)
        try:
            await self.sysif.syscall(SYS.getrlimit, number, alloc.address)
        except BaseException:
            restore(rlim, alloc)
            raise
        return rlim._readable(alloc, self)

    async def setrlimit(self, resource: RLIMIT, rlim: ReadablePointer[Rlimit]) -> None:
        """setrlimit(2): set this process's limits for `resource` to `rlim`.

        `rlim` may be any readable pointer to an Rlimit, such as one
        getrlimit returned, to restore those limits."""
        number = int_arg("resource", resource)
        check_points_to(rlim, Rlimit)
        address = borrow(rlim, self, _RLIMIT_SIZE).address
        await self.sysif.syscall(SYS.setrlimit, number, address)

    @overload
    async def prlimit(
        self,
        resource: RLIMIT,
        new_limit: ReadablePointer[Rlimit] | None = None,
        old_limit: None = None,
    ) -> None: ...
    @overload
    async def prlimit(
        self,
        resource: RLIMIT,
        new_limit: ReadablePointer[Rlimit] | None,
        old_limit: Pointer[Rlimit],
    ) -> ReadablePointer[Rlimit]: ...
    async def prlimit(
        self,
        resource: RLIMIT,
        new_limit: ReadablePointer[Rlimit] | None = None,
        old_limit: Pointer[Rlimit] | None = None,
    ) -> ReadablePointer[Rlimit] | None:
        """prlimit(2) of this process (pid 0): set the limits for `resource`
        to `new_limit` (None: leave them) and fill `old_limit` (consumed)
        with the limits from before."""
        return await _prlimit(self, 0, resource, new_limit, old_limit)


class ResourceProcess(BaseProcess):
    __slots__ = ()

    async def setpriority(self, prio: CInt) -> None:
        """setpriority(2) with PRIO_PROCESS: set this process's nice value."""
        prio = int_arg("prio", prio)
        await self.task.sysif.syscall(SYS.setpriority, PRIO.PROCESS, self.pid, prio)

    async def getpriority(self) -> int:
        """getpriority(2) with PRIO_PROCESS: this process's nice value
        (-20..19), as getpriority(2) returns it."""
        return _NICE_BASE - await self.task.sysif.syscall(SYS.getpriority, PRIO.PROCESS, self.pid)

    @overload
    async def prlimit(
        self,
        resource: RLIMIT,
        new_limit: ReadablePointer[Rlimit] | None = None,
        old_limit: None = None,
    ) -> None: ...
    @overload
    async def prlimit(
        self,
        resource: RLIMIT,
        new_limit: ReadablePointer[Rlimit] | None,
        old_limit: Pointer[Rlimit],
    ) -> ReadablePointer[Rlimit]: ...
    async def prlimit(
        self,
        resource: RLIMIT,
        new_limit: ReadablePointer[Rlimit] | None = None,
        old_limit: Pointer[Rlimit] | None = None,
    ) -> ReadablePointer[Rlimit] | None:
        """prlimit(2) of this process: set its limits for `resource` to
        `new_limit` (None: leave them) and fill `old_limit` (consumed) with
        the limits from before."""
        return await _prlimit(self.task, self.pid, resource, new_limit, old_limit)
