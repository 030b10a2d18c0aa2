"""The per-thread epoll loop, and AsyncFileDescriptor.

Blocking a process in read(2) or accept(2) would stop every coroutine that
uses it, so each thread has one epoll instance, and an
`AsyncFileDescriptor` makes its syscalls non-blocking, waiting for
readiness there when they would block.

**Edge-triggered.**  Every fd is registered once, when its
AsyncFileDescriptor is made, for EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, and
never modified again: no syscall per wait.  The price of edge triggering is
that an edge must never be missed, so each fd's status counts the edges
seen; an operation notes the counts, tries its syscall, and on EAGAIN
waits until the count moves past what it noted.  An edge that arrives
between the attempt and the wait is therefore not lost.  (Level triggering
would need an epoll_ctl per wait, or would wake us over and over for data
nobody is reading yet.)

**One waiter drives.**  There is no background task: when coroutines wait,
one of them (the driver) waits for the epoll fd and calls epoll_wait, and
wakes the others whose fds became ready.  When the driver is done, it hands
the job to another waiter.  One epoll_wait serves every fd of the thread.

How the driver waits depends on where the epoll fd lives:

* In the Python process (`local_thread`), the epoll fd is handed to the
  event loop (anyio's `wait_readable`) and epoll_wait is called with a zero
  timeout, so the loop's own sockets and tasks run alongside.
* In another process, epoll_wait blocks there, with that process's syscall
  request fd registered too: a new syscall request wakes it, so other
  syscalls are never starved.
"""

from __future__ import annotations

import errno
import itertools
import os
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from rsyscall.base import BaseFileDescriptor
from rsyscall.fcntl import F, O
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.pointer import Pointer, ReadablePointer, UseAfterConsumeError, WrittenPointer
from rsyscall.near.interface import syscall_error
from rsyscall.near.sysnum import SYS
from rsyscall.sys.epoll import EPOLL, EPOLL_CTL, EpollEvent
from rsyscall.sys.socket import MSG, SO, SOCK, SOL, Sockaddr
from rsyscall.tasks.local import LocalSyscall

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = ["AsyncFileDescriptor", "Epoller", "FDClosedWhileWaiting"]

T = TypeVar("T")
A = TypeVar("A", bound=Sockaddr)

# What an edge of each direction looks like.  Errors and hangups wake both
# readers and writers: their next syscall reports the condition.
# (Plain ints: these are tested for every event, and enum arithmetic is slow.)
_READABLE = int(EPOLL.IN | EPOLL.PRI | EPOLL.RDHUP | EPOLL.HUP | EPOLL.ERR)
_WRITABLE = int(EPOLL.OUT | EPOLL.HUP | EPOLL.ERR)
_REGISTER = EPOLL.IN | EPOLL.OUT | EPOLL.RDHUP | EPOLL.PRI | EPOLL.ET
_MAX_EVENTS = 64
_SCRATCH_MAX = 1 << 20
_SYS_read = int(SYS.read)
_SYS_connect = int(SYS.connect)
_SYS_write = int(SYS.write)
_SYS_epoll_pwait = int(SYS.epoll_pwait)
_SYS_epoll_ctl = int(SYS.epoll_ctl)
_EVENT_SIZE = EpollEvent.sizeof()
# Registration ids start above 0; 0 is the request fd of a remote thread.
REQUEST_FD_ID = 0


class FDClosedWhileWaiting(UseAfterConsumeError):
    """The AsyncFileDescriptor was closed while a coroutine waited on it."""


class _Status:
    """Edges epoll has reported for one registered fd."""

    __slots__ = ("callback", "closed", "reads", "waiters", "writes")

    def __init__(self, callback: Callable[[], None] | None = None) -> None:
        self.reads = 0
        self.writes = 0
        self.closed = False
        self.waiters: list[_Waiter] = []
        # For watches: called (synchronously, from dispatch) on every edge.
        self.callback = callback


class _Waiter:
    __slots__ = ("event", "seen", "seen_other", "status", "write")

    def __init__(self, status: _Status, write: bool | None, seen: int, seen_other: int = 0):
        self.status = status
        # True: a write edge; False: a read edge; None: either (`seen` the
        # reads, `seen_other` the writes).
        self.write = write
        self.seen = seen
        self.seen_other = seen_other
        self.event: anyio.Event | None = None  # made when it has to sleep

    def ready(self) -> bool:
        status = self.status
        if status.closed:
            return True
        write = self.write
        if write is None:
            return status.reads != self.seen or status.writes != self.seen_other
        return (status.writes if write else status.reads) != self.seen


class Epoller:
    """The epoll instance of one thread, and the waiting on it.

    `poll` is how the driver waits for and collects events; see the module
    docstring for the local and remote ways."""

    def __init__(
        self,
        thread: Thread,
        epfd: FileDescriptor,
        wait_for_events: Callable[[Epoller], Awaitable[None]],
    ) -> None:
        # Weak: a thread holds its epoller, and a cycle would leave both
        # (and their fds) to the cyclic garbage collector.
        self._thread = weakref.ref(thread)
        self.task = thread.task
        self.epfd = epfd
        self._wait_for_events = wait_for_events
        self._statuses: dict[int, _Status] = {}
        self._ids = itertools.count(REQUEST_FD_ID + 1)
        self._waiters: dict[_Waiter, None] = {}
        self._driving = False
        # The fd the driver itself waits for: closing it must interrupt the
        # driver's wait, which `interrupt` does (it makes the epoll fd ready).
        self._driver_status: _Status | None = None
        self.interrupt: Callable[[], None] = _no_interrupt
        self._buffer: Allocation | None = None

    @property
    def thread(self) -> Thread:
        """The thread this epoller belongs to."""
        thread = self._thread()
        if thread is None:
            raise RuntimeError("the epoller's thread is gone")
        return thread

    async def register(
        self, fd: FileDescriptor, callback: Callable[[], None] | None = None,
        events: EPOLL = _REGISTER,
    ) -> tuple[int, _Status]:
        """Add `fd` to the interest list, edge-triggered, for good.  With a
        `callback`, it is called on each edge (a watch, see `watch`)."""
        ident = next(self._ids)
        status = _Status(callback)
        self._statuses[ident] = status
        task = self.task
        try:
            if fd.task.fd_table is not task.fd_table:
                raise ValueError("fd belongs to a different fd table than this epoller")
            # Every new fd and child comes through here: a raw epoll_ctl on
            # staged bytes, not the pointer objects of epfd.epoll_ctl.
            event = await task.space.stage(EpollEvent(events, ident).to_bytes())
            await task.sysif.syscall(
                _SYS_epoll_ctl, self.epfd.number, EPOLL_CTL.ADD, fd.number, event.address
            )
        except BaseException:
            del self._statuses[ident]
            raise
        return ident, status

    async def watch(self, fd: FileDescriptor, callback: Callable[[], None]) -> int:
        """Call `callback` from the epoll loop whenever `fd` becomes
        readable (a pidfd: when its process exits).  It runs only while
        some coroutine waits on this epoller; returns the id to `forget`."""
        ident, _ = await self.register(fd, callback, EPOLL.IN | EPOLL.ET)
        return ident

    async def event_buffer(self) -> Allocation:
        """The memory epoll_wait fills, allocated once."""
        if self._buffer is None:
            space = self.task.space
            self._buffer = await space.allocator.allocate(_MAX_EVENTS * _EVENT_SIZE)
        return self._buffer

    async def unregister(self, ident: int, fd: FileDescriptor) -> None:
        """Remove `fd`, and wake its waiters to fail (the fd is closing)."""
        status = self._statuses.pop(ident, None)
        if status is not None:
            self._forget(status)
        await self.epfd.epoll_ctl(EPOLL_CTL.DEL, fd)

    def forget(self, ident: int) -> None:
        """Drop a registration whose fd is gone without an epoll_ctl."""
        status = self._statuses.pop(ident, None)
        if status is not None:
            self._forget(status)

    def _forget(self, status: _Status) -> None:
        status.closed = True
        for waiter in status.waiters:
            if waiter.event is not None:
                waiter.event.set()
        if status is self._driver_status:
            # The driver waits for events on this fd, which will never come.
            self.interrupt()

    def poke(self, status: _Status) -> None:
        """Count a read edge for `status` that epoll cannot report, and wake
        its waiters (they retry their syscall)."""
        status.reads += 1
        for waiter in status.waiters:
            if waiter.event is not None and waiter.ready():
                waiter.event.set()

    async def wait(
        self, status: _Status, write: bool | None, seen: int, seen_other: int = 0
    ) -> None:
        """Wait until `status` shows a new edge in the given direction since
        the count `seen` (or its fd is closed, which raises).  With `write`
        None, an edge in either: reads since `seen`, writes since
        `seen_other`."""
        waiter = _Waiter(status, write, seen, seen_other)
        while not waiter.ready():
            if self._driving:
                event = waiter.event = anyio.Event()
                status.waiters.append(waiter)
                self._waiters[waiter] = None
                try:
                    await event.wait()
                finally:
                    status.waiters.remove(waiter)
                    del self._waiters[waiter]
                    # We may have been woken to take over the driving, and
                    # be leaving instead: pass it on.
                    self._hand_off()
            else:
                self._driving = True
                self._driver_status = status
                try:
                    await self._wait_for_events(self)
                finally:
                    self._driving = False
                    self._driver_status = None
                    self._hand_off()
        if status.closed:
            raise FDClosedWhileWaiting("the AsyncFileDescriptor was closed while waiting on it")

    def _hand_off(self) -> None:
        """With nobody driving, wake a waiter that still needs an event, to
        drive.  (Not one that is ready: it is about to leave, and would take
        the job with it.)"""
        if self._driving:
            return
        for other in self._waiters:
            if other.event is not None and not other.ready():
                other.event.set()
                return

    async def collect(self, timeout: int) -> None:
        """Call epoll_wait with `timeout` and dispatch what it returns; with
        a zero timeout, repeat while the buffer comes back full."""
        task = self.task
        buffer = await self.event_buffer()
        # This runs on every wakeup, so it makes the syscall on a raw
        # buffer rather than through pointer objects.
        epfd = self.epfd.number
        while True:
            count = await task.sysif.syscall(
                _SYS_epoll_pwait, epfd, buffer.address, _MAX_EVENTS, timeout, 0, 0
            )
            if count:
                self.dispatch(await task.space.transport.read(buffer.address, count * _EVENT_SIZE))
            if count < _MAX_EVENTS or timeout != 0:
                return

    def dispatch(self, data: bytes) -> None:
        """Count the edges in a buffer of epoll_events and wake their waiters."""
        statuses = self._statuses
        for events, ident in EpollEvent.layout.struct.iter_unpack(data):
            status = statuses.get(ident)
            if status is None:
                continue  # the request fd, or an fd already unregistered
            if events & _READABLE:
                status.reads += 1
            if events & _WRITABLE:
                status.writes += 1
            if status.callback is not None:
                status.callback()
            for waiter in status.waiters:
                if waiter.event is not None and waiter.ready():
                    waiter.event.set()


async def wait_local(epoller: Epoller) -> None:
    """The local way: let the event loop wait for the epoll fd, then collect
    without blocking."""
    await anyio.wait_readable(epoller.epfd.number)
    await epoller.collect(0)


async def wait_blocking(epoller: Epoller) -> None:
    """The remote way: block in epoll_wait in the thread's own process,
    which a new syscall request also wakes."""
    await epoller.collect(-1)


def _no_interrupt() -> None:
    pass


class AsyncFileDescriptor:
    """A non-blocking fd whose syscalls wait for readiness in the owning
    thread's epoll instead of blocking its process.

    The methods have the shapes of FileDescriptor's; `handle` is the
    FileDescriptor itself.  Cancelling a waiting call leaves the fd usable
    and loses no data: the syscall is only made when the fd is ready."""

    def __init__(self, epoller: Epoller, handle: FileDescriptor, ident: int, status: _Status):
        self.epoller = epoller
        self.handle = handle
        self._ident = ident
        self._status = status
        self._scratch_alloc: Allocation | None = None
        self._local = isinstance(handle.task.sysif, LocalSyscall)
        # However the handle gets closed, waiters wake (FDClosedWhileWaiting)
        # and the fd leaves the epoll set before the close.
        handle.on_close(_closing_callback(epoller, ident, handle.number))

    def __repr__(self) -> str:
        return f"AsyncFileDescriptor({self.handle!r})"

    def __del__(self) -> None:
        # The fd may outlive us (other handles); stop tracking it either way.
        epoller = getattr(self, "epoller", None)
        if epoller is not None:
            epoller.forget(self._ident)

    @classmethod
    async def make(
        cls, epoller: Epoller, handle: FileDescriptor, set_nonblock: bool = False
    ) -> AsyncFileDescriptor:
        """An AsyncFileDescriptor for `handle` in `epoller` (which must be
        its thread's); `thread.make_afd(fd)` is the usual way."""
        if not isinstance(epoller, Epoller):
            raise TypeError(f"epoller must be an Epoller, not {type(epoller).__name__}")
        if not isinstance(handle, BaseFileDescriptor):
            raise TypeError(f"handle must be a FileDescriptor, not {type(handle).__name__}")
        if set_nonblock:
            flags = await handle.fcntl(F.GETFL)
            await handle.fcntl(F.SETFL, flags | O.NONBLOCK)
        ident, status = await epoller.register(handle)
        return cls(epoller, handle, ident, status)

    async def retry(self, write: bool, call: Callable[[], Awaitable[T]]) -> T:
        """Call `call` until it does not raise BlockingIOError, waiting for
        the fd to become readable (or, with `write`, writable) in between.

        This is how every method here works; use it for syscalls on this fd
        that have no method here (waitid on a pidfd, say)."""
        status = self._status
        while True:
            if status.closed:
                raise FDClosedWhileWaiting("the AsyncFileDescriptor is closed")
            seen = status.writes if write else status.reads
            try:
                return await call()
            except BlockingIOError:
                pass
            await self.epoller.wait(status, write, seen)

    async def read(self, buf: Pointer[T]) -> tuple[ReadablePointer[T], Pointer[T]]:
        """read(2), waiting until the fd is readable."""
        return await self.retry(False, lambda: self.handle.read(buf))

    async def write(self, buf: ReadablePointer[T]) -> tuple[ReadablePointer[T], ReadablePointer[T]]:
        """write(2), waiting until the fd is writable."""
        return await self.retry(True, lambda: self.handle.write(buf))

    async def recv(
        self, buf: Pointer[T], flags: MSG = MSG.NONE
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """recv(2), waiting until the socket is readable."""
        return await self.retry(False, lambda: self.handle.recv(buf, flags))

    async def send(
        self, buf: ReadablePointer[T], flags: MSG = MSG.NONE
    ) -> tuple[ReadablePointer[T], ReadablePointer[T]]:
        """send(2), waiting until the socket is writable."""
        return await self.retry(True, lambda: self.handle.send(buf, flags))

    async def accept(self, flags: SOCK = SOCK.NONE) -> FileDescriptor:
        """accept4(2), waiting for a connection; the new fd is close-on-exec
        (add SOCK.NONBLOCK to `flags` to make an AsyncFileDescriptor of it)."""
        return await self.retry(False, lambda: self.handle.accept(flags))

    async def accept_addr(self, flags: SOCK = SOCK.NONE) -> tuple[FileDescriptor, Sockaddr]:
        """accept4(2), waiting for a connection: the new fd (close-on-exec;
        `flags` may add SOCK.NONBLOCK) and the peer's address."""
        thread = self.epoller.thread

        async def attempt() -> tuple[FileDescriptor, Sockaddr]:
            fd, valid, _ = await self.handle.accept4(await thread.malloc(Sockaddr), flags)
            return fd, await valid.read()

        return await self.retry(False, attempt)

    def with_handle(self, fd: FileDescriptor) -> AsyncFileDescriptor:
        """An AsyncFileDescriptor for `fd`, another handle for this one's fd
        (same table, same number: one kept when this handle is closed or
        handed on), sharing this one's registration."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"with_handle needs a FileDescriptor, not {type(fd).__name__}")
        if fd.task.fd_table is not self.handle.task.fd_table or fd.number != self.handle.number:
            raise ValueError("with_handle needs a handle for the same fd in the same fd table")
        return AsyncFileDescriptor(self.epoller, fd, self._ident, self._status)

    async def connect(self, addr: WrittenPointer[A]) -> None:
        """connect(2), waiting for a non-blocking connect to finish; raises
        OSError if it failed."""
        try:
            await self.handle.connect(addr)
            return
        except BlockingIOError as error:
            if error.errno != errno.EINPROGRESS:
                raise
        status = self._status
        await self.epoller.wait(status, True, status.writes)
        result, _ = await self.handle.getsockopt(
            SOL.SOCKET, SO.ERROR, await self.epoller.thread.malloc(bytes, 4)
        )
        code = int.from_bytes(await result.read(), "little")
        if code:
            raise syscall_error(_SYS_connect, code)

    async def read_some_bytes(self, count: int = 4096) -> bytes:
        """Read at most `count` bytes (and at most 1 MiB at a time),
        waiting until some are available; b"" at end of file."""
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"count must be an int, not {type(count).__name__}")
        if count <= 0:
            raise ValueError(f"count must be positive, not {count}")
        count = min(count, _SCRATCH_MAX)
        status = self._status
        while True:
            if status.closed:
                raise FDClosedWhileWaiting("the AsyncFileDescriptor is closed")
            seen = status.reads
            try:
                return await self._read_bytes(count)
            except BlockingIOError:
                pass
            await self.epoller.wait(status, False, seen)

    async def write_all_bytes(self, data: bytes) -> None:
        """Write all of `data`, waiting for room as often as needed."""
        view = memoryview(data).cast("B")
        status = self._status
        while view:
            if status.closed:
                raise FDClosedWhileWaiting("the AsyncFileDescriptor is closed")
            seen = status.writes
            try:
                view = view[await self._write_bytes(view) :]
                continue
            except BlockingIOError:
                pass
            await self.epoller.wait(status, True, seen)

    # The bytes helpers are conveniences, not syscall mirrors, so they skip
    # the pointer objects: in our own process, os.read/os.write move the
    # bytes with no copy through an arena; elsewhere, one scratch buffer per
    # fd is reused.

    async def _read_bytes(self, count: int) -> bytes:
        number = self.handle.number
        if self._local:
            return os.read(number, count)
        alloc = await self._scratch(count)
        try:
            task = self.handle.task
            got = await task.sysif.syscall(_SYS_read, number, alloc.address, count)
            # The bytes are read: copying them out must not be cut short.
            with anyio.CancelScope(shield=True):
                data = await task.space.transport.read(alloc.address, got)
            return data
        finally:
            self._scratch_done(alloc)

    async def _write_bytes(self, data: memoryview) -> int:
        number = self.handle.number
        if self._local:
            return os.write(number, data)
        data = data[:_SCRATCH_MAX]
        alloc = await self._scratch(len(data))
        try:
            task = self.handle.task
            await task.space.transport.write(alloc.address, bytes(data))
            return await task.sysif.syscall(_SYS_write, number, alloc.address, len(data))
        finally:
            self._scratch_done(alloc)

    async def _scratch(self, size: int) -> Allocation:
        """A buffer for one read or write: the fd's own, kept for reuse, or
        a new one if it is in use (concurrent calls must not share it)."""
        alloc = self._scratch_alloc
        if alloc is None or alloc.size < size:
            alloc = await self.handle.task.space.allocator.allocate(
                max(size, alloc.size if alloc else 0))
        self._scratch_alloc = None
        return alloc

    def _scratch_done(self, alloc: Allocation) -> None:
        kept = self._scratch_alloc
        if kept is None or kept.size < alloc.size:
            self._scratch_alloc = alloc

    async def close(self) -> None:
        """Remove the fd from epoll, then close it; waiters get FDClosedWhileWaiting."""
        if self._status.closed:
            return
        await self.epoller.unregister(self._ident, self.handle)
        await self.handle.close()


def _closing_callback(epoller: Epoller, ident: int, number: int) -> Callable[[], None]:
    """What closing an AsyncFileDescriptor's handle does first: wake the
    waiters and take the fd out of the epoll set (unless `unregister`
    already did), queued before the close itself."""
    # Weak: the handle must not keep the epoller alive.
    epoller_ref = weakref.ref(epoller)

    def closing() -> None:
        live = epoller_ref()
        if live is None or ident not in live._statuses:
            return
        live.forget(ident)
        live.task.sysif.syscall_later(_SYS_epoll_ctl, live.epfd.number, EPOLL_CTL.DEL, number, 0)

    return closing

