"""I/O on the Python process's own fds that may block, without blocking it.

The local thread's helpers (`Thread.read_to_eof`, `spit`...) take fds and
paths the user chose, which are usually blocking: a read(2) from an empty
pipe would stop the event loop, and every task on it, until data came.  An
AsyncFileDescriptor avoids that with O_NONBLOCK, but O_NONBLOCK belongs to
the open file description, shared by every fd and process that refers to
it (fcntl(2)): setting it on a user's fd would change their file too.  So
here, with the file description left as it is:

* A file that epoll cannot watch never waits for readiness: epoll_ctl(2)
  refuses regular files and directories (and /dev/null, and most /proc
  files) with EPERM.  Those are read and written directly.
* Any other (pipes, FIFOs, sockets, ttys, eventfds...) is registered in
  the local thread's epoller, as a dup(2) of the fd (so a registration of
  the fd itself, by an AsyncFileDescriptor, is no obstacle), and each read
  or write is made so that it cannot block:

  - preadv2(2) / pwritev2(2) with RWF_NOWAIT, which fail with EAGAIN
    instead of waiting, for that call only, where the file supports it
    (sockets, and pipes and FIFOs on recent kernels);
  - elsewhere (EOPNOTSUPP: ttys, and pipes on older kernels), poll(2) with
    a zero timeout first, then read(2) (which a readable fd answers at
    once) or a write(2) of at most PIPE_BUF bytes (which a pipe or FIFO
    that polls writable takes whole, at once; a tty polls writable with
    any room at all, and a write(2) bigger than its room waits there for
    the reader: the helpers never write to a blocking tty, see below).

  The fd's edge count is noted before each try; when the try would block,
  the epoller wakes us at the next edge after the one noted, so an edge
  that comes between the try and the wait is not lost.

  The poll way has one window RWF_NOWAIT has not: another reader (writer)
  of the same file taking the data (the room) between our poll and our
  read (write), which then waits for more.

Opening a path for writing (`open_for_writing`, for `spit`) adds
O_NONBLOCK, so that open(2) of a FIFO does not wait for a reader; the file
description is our own, so its O_NONBLOCK harms nobody, and writes to it
just fail with EAGAIN when they would wait.  When a FIFO has no reader
yet, the open(2) is made blocking in a child process that shares our fd
table: it waits there, we wait for its answer, and then set O_NONBLOCK.

Only for fds of the Python process: in any other thread's process, a
blocking call blocks that process, not ours, and is fine.
"""

from __future__ import annotations

import errno
import os
import select
import stat
from typing import TYPE_CHECKING, Self

import anyio

from rsyscall.base import BaseFileDescriptor
from rsyscall.fcntl import F, O
from rsyscall.near.interface import SyscallHangup
from rsyscall.sched import CLONE
from rsyscall.signal import SIG
from rsyscall.sys.stat import S
from rsyscall.tasks.local import LocalSyscall

if TYPE_CHECKING:
    from types import TracebackType

    from rsyscall.epoller import Epoller, _Status
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = ["LocalFile", "open_for_writing", "read_to_eof", "write_all", "write_file"]

# preadv2/pwritev2 errors that mean "not with RWF_NOWAIT here": the file
# lacks it (EOPNOTSUPP), or the kernel lacks the flag or the syscall.  A
# real error shows again in the plain read(2) or write(2) that follows.
_NO_NOWAIT = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})
_PIPE_BUF = select.PIPE_BUF
_MODE_644 = S(0o644)


class LocalFile:
    """An fd of the Python process, read and written without blocking it
    however its file description is set (see the module docstring).

    `make` registers it in the local thread's epoller if epoll can watch
    it; `close` (or leaving `async with`) removes that, and leaves the fd
    itself open."""

    def __init__(
        self,
        number: int,
        epoller: Epoller | None = None,
        dup: FileDescriptor | None = None,
        ident: int = 0,
        status: _Status | None = None,
    ) -> None:
        self.number = number
        self._epoller = epoller
        self._dup = dup
        self._ident = ident
        self._status = status
        self._nowait = True  # until the file says EOPNOTSUPP
        self._buffer = bytearray()

    @classmethod
    async def make(cls, thread: Thread, fd: FileDescriptor) -> LocalFile:
        """Prepare `fd` (of `thread`, the local thread) for I/O here."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"fd must be a FileDescriptor, not {type(fd).__name__}")
        if not isinstance(fd.task.sysif, LocalSyscall):
            raise ValueError(f"{fd!r} is not an fd of the Python process")
        number = fd.number  # raises if the handle is closed
        kind = stat.S_IFMT(os.fstat(number).st_mode)
        if kind in (stat.S_IFREG, stat.S_IFDIR):
            return cls(number)  # epoll would refuse it; it never waits anyway
        epoller = await thread.epoller()
        dup = await fd.dup()
        try:
            ident, status = await epoller.register(dup)
        except OSError as error:
            await dup.close()
            if error.errno != errno.EPERM:
                raise
            return cls(number)  # epoll cannot watch it: it does not wait
        except BaseException:
            await dup.close()
            raise
        return cls(dup.number, epoller, dup, ident, status)

    @property
    def watched(self) -> bool:
        """Whether the fd is registered in the epoller (else it never waits)."""
        return self._status is not None

    def _ready(self, events: int) -> bool:
        """poll(2) with a zero timeout: does the fd show `events` (or an
        error or hangup, which the next syscall reports) right now?"""
        poller = select.poll()
        poller.register(self.number, events)
        return bool(poller.poll(0))

    def _try_read(self, count: int) -> bytes | None:
        """Read at most `count` bytes if that does not wait; None if it would."""
        number = self.number
        if self._nowait:
            if len(self._buffer) < count:
                self._buffer = bytearray(count)
            view = memoryview(self._buffer)[:count]
            try:
                got = os.preadv(number, [view], -1, os.RWF_NOWAIT)
            except BlockingIOError:
                return None
            except OSError as error:
                if error.errno not in _NO_NOWAIT:
                    raise
                self._nowait = False
            else:
                return bytes(view[:got])
        if not self._ready(select.POLLIN):
            return None
        try:
            return os.read(number, count)
        except BlockingIOError:  # O_NONBLOCK, and another reader took it
            return None

    def _try_write(self, data: memoryview) -> int | None:
        """Write a prefix of `data` if that does not wait; its length, or
        None if it would wait."""
        number = self.number
        if self._nowait:
            try:
                return os.pwritev(number, [data], -1, os.RWF_NOWAIT)
            except BlockingIOError:
                return None
            except OSError as error:
                if error.errno not in _NO_NOWAIT:
                    raise
                self._nowait = False
        if not self._ready(select.POLLOUT):
            return None
        try:
            return os.write(number, data[:_PIPE_BUF])
        except BlockingIOError:
            return None

    async def read(self, count: int) -> bytes:
        """At most `count` bytes, waiting (in the epoller) until some are
        there; b"" at end of file."""
        status = self._status
        if status is None:
            return os.read(self.number, count)
        assert self._epoller is not None
        while True:
            seen = status.reads
            data = self._try_read(count)
            if data is not None:
                return data
            await self._epoller.wait(status, False, seen)

    async def write(self, data: memoryview) -> int:
        """Write a prefix of `data` (not empty), waiting until there is room;
        returns its length."""
        status = self._status
        if status is None:
            return os.write(self.number, data)
        assert self._epoller is not None
        while True:
            seen = status.writes
            written = self._try_write(data)
            if written is not None:
                return written
            await self._epoller.wait(status, True, seen)

    async def write_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of `data`, waiting for room as often as needed."""
        view = memoryview(data).cast("B")
        while view:
            view = view[await self.write(view) :]

    async def close(self) -> None:
        """Remove the registration (and the dup); the fd stays open."""
        dup, self._dup = self._dup, None
        self._status = None
        if dup is not None and self._epoller is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self._epoller.unregister(self._ident, dup)
                finally:
                    await dup.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def read_to_eof(thread: Thread, fd: FileDescriptor, chunk: int) -> bytes:
    """Everything `fd` (local) gives until end of file, `chunk` bytes at most
    per read(2), waiting for data in `thread`'s (the local thread's) epoller."""
    parts: list[bytes] = []
    async with await LocalFile.make(thread, fd) as file:
        while True:
            data = await file.read(chunk)
            if not data:
                return b"".join(parts)
            parts.append(data)


async def write_all(thread: Thread, fd: FileDescriptor, data: bytes) -> None:
    """Write all of `data` to `fd` (local), waiting for room in `thread`'s
    (the local thread's) epoller."""
    async with await LocalFile.make(thread, fd) as file:
        await file.write_all(data)


async def open_for_writing(
    thread: Thread, path: str | os.PathLike[str], flags: O, mode: S = _MODE_644
) -> FileDescriptor:
    """open(2) `path` with `flags` (O.WRONLY or O.RDWR and others) in the
    local `thread`, without waiting in our process.

    O.NONBLOCK is added, so a FIFO's open does not wait for a reader; the
    new file description is ours alone, so that harms nobody, and it
    keeps O_NONBLOCK.  With no reader, a FIFO fails that open with ENXIO;
    then the open is made again without O.NONBLOCK in a child process
    that shares our fd table (clone(2) with CLONE_FILES), which waits
    there for a reader as open(2) does, while we wait for its answer;
    then O_NONBLOCK is set (fcntl(2)).  Cancelled, it kills the child.
    (ENXIO also means a socket or a device that is not there; the child's
    open fails the same way for those, and that error is raised.)"""
    try:
        return await thread.task.open(await thread.ptr(path), flags | O.NONBLOCK, mode)
    except OSError as error:
        if error.errno != errno.ENXIO:
            raise
    fd = await _open_in_child(thread, path, flags, mode)
    try:
        await fd.fcntl(F.SETFL, await fd.fcntl(F.GETFL) | O.NONBLOCK)
    except BaseException:
        await fd.close()
        raise
    return fd


async def _open_in_child(
    thread: Thread, path: str | os.PathLike[str], flags: O, mode: S
) -> FileDescriptor:
    child = await thread.clone(CLONE.FILES)
    opened: list[FileDescriptor] = []
    failed: list[Exception] = []
    done = anyio.Event()

    async def opener() -> None:
        try:
            fd = await child.task.open(await child.ptr(path), flags, mode)
            # The table is shared: our own handle, then drop the child's.
            opened.append(fd.for_task(thread.task))
            await fd.close()
        except (OSError, SyscallHangup) as error:
            failed.append(error)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(opener)
        try:
            await done.wait()
        except BaseException:
            # Cancelled: the open may wait for ever.  Killing the child
            # ends it (the opener gets SyscallHangup); it is reaped when
            # dropped.
            with anyio.CancelScope(shield=True):
                await child.process.kill(SIG.KILL)
            raise
    await child.exit(0)
    if failed:
        raise failed[0]
    return opened[0]


async def write_file(
    thread: Thread, path: str | os.PathLike[str], data: bytes, flags: O, mode: S = _MODE_644
) -> None:
    """Open `path` with `flags` (see `open_for_writing`), write all of
    `data`, close it: in the local `thread`, without blocking it."""
    fd = await open_for_writing(thread, path, flags, mode)
    try:
        if data:
            await write_all(thread, fd, data)
    finally:
        await fd.close()
