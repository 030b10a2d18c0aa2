"""<sys/epoll.h>: epoll_create1(2), epoll_ctl(2), epoll_wait(2), epoll_pwait(2).

Most code wants `thread.make_afd(fd)` (rsyscall.epoller) rather than these:
every thread has one epoll instance that waits for all its
AsyncFileDescriptors.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Self

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, WrittenPointer, borrow, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.struct import CInt, HasSerializer, Layout, Serializer, Struct, check_fields

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.signal import Sigset

__all__ = [
    "EPOLL",
    "EPOLL_CREATE",
    "EPOLL_CTL",
    "EpollEvent",
    "EpollEventList",
    "EpollTask",
    "EpollFileDescriptor",
]


class EPOLL(IntFlag):
    """Event bits of `struct epoll_event` (C: EPOLLIN, EPOLLOUT...)."""

    NONE = 0
    IN = 0x001
    PRI = 0x002
    OUT = 0x004
    ERR = 0x008
    HUP = 0x010
    RDNORM = 0x040
    RDBAND = 0x080
    WRNORM = 0x100
    WRBAND = 0x200
    MSG = 0x400
    RDHUP = 0x2000
    EXCLUSIVE = 1 << 28
    WAKEUP = 1 << 29
    ONESHOT = 1 << 30
    ET = 1 << 31


class EPOLL_CREATE(IntFlag):
    """epoll_create1(2) flags: C's EPOLL_CLOEXEC (the only one)."""

    NONE = 0
    CLOEXEC = 0o2000000


_EPOLL_CLOEXEC = int(EPOLL_CREATE.CLOEXEC)


class EPOLL_CTL(IntEnum):
    """epoll_ctl(2) operations."""

    ADD = 1
    DEL = 2
    MOD = 3


class EpollEvent(Struct):
    """`struct epoll_event` (packed on x86_64): the `events` bits and the
    caller's 64-bit `data`."""

    __slots__ = ("data", "events")
    layout: ClassVar[Layout] = Layout("struct epoll_event", [("events", "I"), ("data", "Q")])

    def __init__(self, events: EPOLL, data: int) -> None:
        self.events = events
        self.data = data
        check_fields(self, (("events", "I"), ("data", "Q")))
        self.events = EPOLL(events)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.events, self.data)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        events, value = cls.layout.struct.unpack(data[: cls.layout.size])
        return cls(EPOLL(events), value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EpollEvent) and (self.events, self.data) == (
            other.events, other.data)

    def __hash__(self) -> int:
        return hash((self.events, self.data))

    def __repr__(self) -> str:
        return f"EpollEvent({self.events!r}, {self.data})"


_EVENT = struct.Struct("<IQ")


class _EpollEventListSerializer(Serializer["EpollEventList"]):
    __slots__ = ()

    def to_bytes(self, value: EpollEventList) -> bytes:
        return b"".join(event.to_bytes() for event in value)

    def from_bytes(self, data: bytes) -> EpollEventList:
        usable = len(data) - len(data) % _EVENT.size
        return EpollEventList(
            EpollEvent(EPOLL(events), value) for events, value in _EVENT.iter_unpack(data[:usable])
        )


_LIST_SERIALIZER = _EpollEventListSerializer()


class EpollEventList(list[EpollEvent], HasSerializer):
    """An array of `struct epoll_event`: `thread.malloc(EpollEventList, n *
    EpollEvent.sizeof())` makes room for n events."""

    def __init__(self, events: Iterable[EpollEvent] = ()) -> None:
        super().__init__(events)

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[EpollEventList]:
        return _LIST_SERIALIZER


_SYS_epoll_pwait = int(SYS.epoll_pwait)


class EpollTask(BaseTask):
    __slots__ = ()

    async def epoll_create1(
        self, flags: EPOLL_CREATE = EPOLL_CREATE.CLOEXEC
    ) -> FileDescriptor:
        """epoll_create1(2): a new epoll instance.  `EPOLL_CREATE.CLOEXEC`
        is always added, as for every fd the library makes (see
        rsyscall.fcntl); `fd.disable_cloexec()` clears it."""
        number = await self.sysif.syscall(SYS.epoll_create1, int(flags) | _EPOLL_CLOEXEC)
        return self.make_fd(number)


class EpollFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def epoll_ctl(
        self, op: EPOLL_CTL, fd: FileDescriptor, event: WrittenPointer[EpollEvent] | None = None
    ) -> None:
        """epoll_ctl(2): add, modify or delete `fd` in this epoll instance's
        interest list; `event` is required for ADD and MOD."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"fd must be a FileDescriptor, not {type(fd).__name__}")
        if fd.task.fd_table is not self.task.fd_table:
            raise ValueError("fd belongs to a different fd table than this epoll fd")
        if event is None:
            if op != EPOLL_CTL.DEL:
                raise ValueError(f"{EPOLL_CTL(op).name} needs an event")
            address = 0
        else:
            address = borrow(event, self.task, EpollEvent.sizeof()).address
        await self.task.sysif.syscall(SYS.epoll_ctl, self.number, op, fd.number, address)

    async def epoll_wait(
        self, events: Pointer[EpollEventList], timeout: CInt
    ) -> tuple[ReadablePointer[EpollEventList], Pointer[EpollEventList]]:
        """epoll_wait(2): wait up to `timeout` ms (-1: forever, 0: poll) for
        events; returns the part of `events` that was filled and the rest."""
        return await self.epoll_pwait(events, timeout, None)

    async def epoll_pwait(
        self,
        events: Pointer[EpollEventList],
        timeout: CInt,
        sigmask: WrittenPointer[Sigset] | None,
    ) -> tuple[ReadablePointer[EpollEventList], Pointer[EpollEventList]]:
        """epoll_pwait(2): epoll_wait with `sigmask` as the signal mask
        while waiting (None: unchanged)."""
        task = self.task
        number = self.number
        mask_address = mask_size = 0
        if sigmask is not None:
            mask_alloc = borrow(sigmask, task)
            mask_address, mask_size = mask_alloc.address, mask_alloc.size
        alloc = take(events, task, EpollEvent.sizeof())
        try:
            count = await task.sysif.syscall(
                _SYS_epoll_pwait, number, alloc.address, alloc.size // _EVENT.size, timeout,
                mask_address, mask_size,
            )
        except BaseException:
            restore(events, alloc)
            raise
        return events._readable_split(alloc, count * _EVENT.size, task)
