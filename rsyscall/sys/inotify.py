"""<sys/inotify.h>: inotify_init1(2), inotify_add_watch(2),
inotify_rm_watch(2), and the events read from an inotify fd (inotify(7)).

An inotify instance is a file descriptor; each watch added to it has a
`WatchDescriptor`, and reading the fd gives `InotifyEvent`s, a buffer of
variable-length `struct inotify_event` records (`InotifyEventList`).
`Inotify` does the reading through the thread's epoll:

    inotify = await Inotify.make(thread)
    wd = await inotify.add_watch("/tmp", IN.CREATE | IN.DELETE)
    for event in await inotify.read_events():   # waits for at least one
        print(event.name, event.mask)
    await inotify.close()
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import PathPointer, Pointer, UseAfterConsumeError, path_address
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Layout, Serializable, check_fields

if TYPE_CHECKING:
    from types import TracebackType

    from rsyscall.epoller import AsyncFileDescriptor
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = [
    "IN",
    "NAME_MAX",
    "Inotify",
    "InotifyEvent",
    "InotifyEventList",
    "InotifyFileDescriptor",
    "InotifyTask",
    "WatchDescriptor",
]

NAME_MAX = 255
"""The longest file name, in bytes, an event can carry (from <linux/limits.h>)."""


class IN(IntFlag):
    """inotify event bits and watch flags (the `mask` of
    inotify_add_watch(2) and of `InotifyEvent`), and the inotify_init1(2)
    flags.

    Value collisions: the inotify_init1 flags are O_CLOEXEC and O_NONBLOCK,
    and O_NONBLOCK (0x800) is IN_MOVE_SELF, so `IN.NONBLOCK` is an alias of
    `IN.MOVE_SELF` (and prints as that).  Each call gives the bit its own
    meaning.  CLOSE, MOVE and ALL_EVENTS are unions of event bits, as in C."""

    NONE = 0
    ACCESS = 0x00000001
    MODIFY = 0x00000002
    ATTRIB = 0x00000004
    CLOSE_WRITE = 0x00000008
    CLOSE_NOWRITE = 0x00000010
    OPEN = 0x00000020
    MOVED_FROM = 0x00000040
    MOVED_TO = 0x00000080
    CREATE = 0x00000100
    DELETE = 0x00000200
    DELETE_SELF = 0x00000400
    MOVE_SELF = 0x00000800
    # Sent by the kernel whether asked for or not.
    UNMOUNT = 0x00002000
    Q_OVERFLOW = 0x00004000
    IGNORED = 0x00008000
    # Flags of inotify_add_watch, and ISDIR: the event's file is a directory.
    ONLYDIR = 0x01000000
    DONT_FOLLOW = 0x02000000
    EXCL_UNLINK = 0x04000000
    MASK_CREATE = 0x10000000
    MASK_ADD = 0x20000000
    ISDIR = 0x40000000
    ONESHOT = 0x80000000
    CLOSE = CLOSE_WRITE | CLOSE_NOWRITE
    MOVE = MOVED_FROM | MOVED_TO
    ALL_EVENTS = (
        ACCESS | MODIFY | ATTRIB | CLOSE_WRITE | CLOSE_NOWRITE | OPEN
        | MOVED_FROM | MOVED_TO | CREATE | DELETE | DELETE_SELF | MOVE_SELF
    )
    # Flags of inotify_init1 (O_CLOEXEC, O_NONBLOCK); NONBLOCK is MOVE_SELF's value.
    CLOEXEC = 0o2000000
    NONBLOCK = 0o4000


class WatchDescriptor(int):
    """A watch descriptor: an int that inotify_add_watch(2) returned, and
    `InotifyEvent.wd`.  It only means something to its inotify instance.
    The queue-overflow event has wd -1."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"WatchDescriptor({int(self)})"


# wd, mask, cookie, len; the name follows at once.
_HEADER = struct.Struct("<iIII")
_HEADER_SIZE = _HEADER.size
_MIN_BUFFER = _HEADER_SIZE + NAME_MAX + 1


@dataclasses.dataclass(frozen=True, slots=True)
class InotifyEvent(Serializable):
    """One `struct inotify_event`: the watch `wd` it is for, the event
    bits `mask`, the `cookie` pairing the two halves of a rename, and the
    `name` of the file in a watched directory (None for the watched file
    or directory itself).

    The record is as long as its name needs: C's `len` is the name's size
    with its NUL and padding, which the kernel rounds up to a multiple of
    sizeof(struct inotify_event); it is computed when writing."""

    wd: WatchDescriptor
    mask: IN
    cookie: int = 0
    name: str | None = None
    layout: ClassVar[Layout] = Layout(
        "struct inotify_event",
        [("wd", "i"), ("mask", "I"), ("cookie", "I"), ("len", "I"), ("name", "0s")],
    )

    def __post_init__(self) -> None:
        check_fields(self, (("wd", "i"), ("mask", "I"), ("cookie", "I")))
        name = self.name
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(
                    f"InotifyEvent.name must be a str or None, not {type(name).__name__}"
                )
            if "\0" in name:
                raise ValueError("an InotifyEvent name cannot contain a NUL byte")
        # Frozen: set through object to give the ints their types.
        object.__setattr__(self, "wd", WatchDescriptor(self.wd))
        object.__setattr__(self, "mask", IN(self.mask))

    def to_bytes(self) -> bytes:
        if self.name is None:
            encoded = b""
            length = 0
        else:
            encoded = os.fsencode(self.name)
            # Room for the NUL, rounded up as the kernel does.
            length = -(-(len(encoded) + 1) // _HEADER_SIZE) * _HEADER_SIZE
        try:
            header = _HEADER.pack(self.wd, self.mask, self.cookie, length)
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in a struct inotify_event: {e}") from None
        return header + encoded + bytes(length - len(encoded))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """The first record in `data`."""
        return _parse(cls, data, 0)[0]


E = TypeVar("E", bound=InotifyEvent)


def _parse(cls: type[E], data: bytes, offset: int) -> tuple[E, int]:
    """The record at `offset` in `data`, and the offset of the next."""
    if len(data) - offset < _HEADER_SIZE:
        raise ValueError(f"truncated inotify event at offset {offset}")
    wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER_SIZE
    end = start + length
    if end > len(data):
        raise ValueError(f"inotify event name of {length} bytes at offset {offset} is truncated")
    name = None if length == 0 else os.fsdecode(data[start:end].split(b"\0", 1)[0])
    return cls(wd, mask, cookie, name), end


class InotifyEventList(list[InotifyEvent], Serializable):
    """The events in a buffer read from an inotify fd, in order.

    Variable-size: allocate room with `thread.malloc(InotifyEventList,
    size)`, at least sizeof(struct inotify_event) + NAME_MAX + 1 bytes so
    that any one event fits."""

    def __init__(self, events: Iterable[InotifyEvent] = ()) -> None:
        super().__init__(events)
        for event in self:
            if not isinstance(event, InotifyEvent):
                raise TypeError(
                    f"an InotifyEventList holds InotifyEvents, not {type(event).__name__}"
                )

    def to_bytes(self) -> bytes:
        parts = []
        for event in self:
            if not isinstance(event, InotifyEvent):
                raise TypeError(
                    f"an InotifyEventList holds InotifyEvents, not {type(event).__name__}"
                )
            parts.append(event.to_bytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        events = []
        offset = 0
        while offset < len(data):
            event, offset = _parse(InotifyEvent, data, offset)
            events.append(event)
        return cls(events)


_SYS_inotify_init1 = int(SYS.inotify_init1)
_SYS_inotify_add_watch = int(SYS.inotify_add_watch)
_SYS_inotify_rm_watch = int(SYS.inotify_rm_watch)
_U32_MAX = (1 << 32) - 1


def _mask(mask: object) -> int:
    if not isinstance(mask, int) or isinstance(mask, bool):
        raise TypeError(f"mask must be IN flags, not {type(mask).__name__}")
    if not 0 <= mask <= _U32_MAX:
        raise ValueError(f"mask {mask:#x} does not fit in 32 bits")
    return mask


class InotifyTask(BaseTask):
    __slots__ = ()

    async def inotify_init1(self, flags: IN = IN.NONE) -> FileDescriptor:
        """inotify_init1(2): a new inotify instance.  `flags` may hold
        IN.NONBLOCK; IN.CLOEXEC is always added."""
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be IN flags, not {type(flags).__name__}")
        return self.make_fd(await self.sysif.syscall(_SYS_inotify_init1, flags | IN.CLOEXEC))


class InotifyFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def inotify_add_watch(self, pathname: PathPointer, mask: IN) -> WatchDescriptor:
        """inotify_add_watch(2): watch `pathname` for the events in `mask`
        (or change the existing watch of that file); returns its descriptor."""
        task = self.task
        number = self.number
        address = path_address(task, pathname)
        wd = await task.sysif.syscall(_SYS_inotify_add_watch, number, address, _mask(mask))
        return WatchDescriptor(wd)

    async def inotify_rm_watch(self, wd: WatchDescriptor) -> None:
        """inotify_rm_watch(2): remove watch `wd`; an IN.IGNORED event for
        it follows."""
        if not isinstance(wd, int) or isinstance(wd, bool):
            raise TypeError(f"wd must be a WatchDescriptor, not {type(wd).__name__}")
        if not -(1 << 31) <= wd < 1 << 31:
            raise ValueError(f"watch descriptor {wd} does not fit in a C int")
        await self.task.sysif.syscall(_SYS_inotify_rm_watch, self.number, wd)


class Inotify:
    """An inotify instance of a thread, read through the thread's epoll.

    `add_watch` and `rm_watch` change what it watches; `read_events` waits
    for events and returns those that are ready, and `async for event in
    inotify` gives them one by one, until the Inotify is closed.  Closing
    it ends reads in progress with UseAfterConsumeError."""

    def __init__(self, thread: Thread, afd: AsyncFileDescriptor, buffer_size: int) -> None:
        self.thread = thread
        self.afd = afd
        self._buffer_size = buffer_size
        self._buffer: Pointer[InotifyEventList] | None = None
        self._pending: deque[InotifyEvent] = deque()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else repr(self.afd.handle)
        return f"Inotify({state})"

    @classmethod
    async def make(cls, thread: Thread, buffer_size: int = 4096) -> Inotify:
        """A new inotify instance in `thread`, non-blocking and close-on-exec.

        Each read takes up to `buffer_size` bytes of events; it must be at
        least sizeof(struct inotify_event) + NAME_MAX + 1, so that any one
        event fits."""
        if not isinstance(buffer_size, int) or isinstance(buffer_size, bool):
            raise TypeError(f"buffer_size must be an int, not {type(buffer_size).__name__}")
        if buffer_size < _MIN_BUFFER:
            raise ValueError(f"buffer_size {buffer_size} is below the minimum {_MIN_BUFFER}")
        fd = await thread.task.inotify_init1(IN.NONBLOCK)
        try:
            afd = await thread.make_afd(fd)
        except BaseException:
            await fd.close()
            raise
        return cls(thread, afd, buffer_size)

    async def add_watch(self, path: str | os.PathLike[str], mask: IN) -> WatchDescriptor:
        """Watch `path` for the events in `mask` (inotify_add_watch(2))."""
        return await self.afd.handle.inotify_add_watch(await self.thread.ptr(path), mask)

    async def rm_watch(self, wd: WatchDescriptor) -> None:
        """Stop watch `wd` (inotify_rm_watch(2)); an IN.IGNORED event follows."""
        await self.afd.handle.inotify_rm_watch(wd)

    async def read_events(self) -> list[InotifyEvent]:
        """The events that are ready, waiting until there is at least one."""
        if self._pending:
            events = list(self._pending)
            self._pending.clear()
            return events
        if self._closed:
            raise UseAfterConsumeError("the Inotify is closed")
        buf = self._buffer
        self._buffer = None  # a concurrent read allocates its own
        if buf is None:
            buf = await self.thread.malloc(InotifyEventList, self._buffer_size)
        # Closing the fd wakes this with FDClosedWhileWaiting (a
        # UseAfterConsumeError).
        valid, rest = await self.afd.read(buf)
        events = await valid.read()
        self._buffer = valid + rest
        return list(events)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> InotifyEvent:
        if not self._pending:
            if self._closed:
                raise StopAsyncIteration
            try:
                self._pending.extend(await self.read_events())
            except UseAfterConsumeError:
                if self._closed:  # closed while we waited: the end of the events
                    raise StopAsyncIteration from None
                raise
        return self._pending.popleft()

    async def close(self) -> None:
        """Close the inotify fd, which removes all its watches."""
        if self._closed:
            return
        self._closed = True
        await self.afd.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
