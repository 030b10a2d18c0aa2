"""Memory in an address space we cannot touch: a stub's.

The target moves the bytes itself, with syscalls on a data socket whose
other end is ours:

* To write `data` at `address`, it is asked to `recvfrom(datafd, address,
  len, MSG_WAITALL)` while we send the bytes on our end.
* To read `size` bytes at `address`, it is asked to `sendto(datafd,
  address, size)` while we receive them.

Both are requests on the thread's connection like any other, pipelined
with them.  A copy, once asked for, runs to completion even if the caller
is cancelled (half a copy would leave memory and socket out of step, and a
caller that just read data into memory must not lose it); the cancellation
then comes at the caller's next checkpoint.
Copies take turns (a FIFO), since their bytes share one socket.

Reads go in chunks no bigger than the data socket's buffer, all requested
at once: each chunk's sendto completes without waiting for us, so its
answer comes, and we then take exactly as many bytes as it says it sent.
Writes are one recvfrom per 64 MiB.  A count short of what was asked (a
signal cut the syscall short) is completed with a request for the rest.

A target on this host that we may ptrace (the same user) is reached
faster, with process_vm_readv(2) and process_vm_writev(2) from our own
process: one syscall here, no round trip.  The first refusal (EPERM, or a
short copy) switches to the socket for good.  A copy by socket in progress
is waited for first, so copies never overtake each other.

The allocator maps its arenas with the target's own mmap.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from typing import TYPE_CHECKING

import anyio

from rsyscall._native import _raw
from rsyscall.epoller import FDClosedWhileWaiting
from rsyscall.memory.allocator import Mapper
from rsyscall.memory.transport import MemoryTransport
from rsyscall.near.interface import SyscallHangup
from rsyscall.near.sysnum import SYS
from rsyscall.tasks.connection import (
    ConnectionSyscall,
    _is_cancellation,
    _rearm_native_cancellation,
)

if TYPE_CHECKING:
    from rsyscall.epoller import AsyncFileDescriptor, _Status
    from rsyscall.tasks.connection import _Slot

__all__ = ["DATA_BUFFER", "RemoteMapper", "SocketMemoryTransport"]

DATA_BUFFER = 1 << 20
"""SO_SNDBUF and SO_RCVBUF of the data socket pair (set by whoever makes
it); read chunks stay below it."""
_READ_CHUNK = 256 * 1024
_WRITE_CHUNK = 64 << 20
_MSG_WAITALL = 0x100
_SYS_recvfrom = int(SYS.recvfrom)
_SYS_sendto = int(SYS.sendto)
_SYS_mmap = int(SYS.mmap)
_SYS_munmap = int(SYS.munmap)
_PROT_READ_WRITE = 0x1 | 0x2
_MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20


class _Turns:
    """A FIFO lock made of per-waiter events (usable from any event loop)."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: deque[anyio.Event] = deque()

    async def acquire(self) -> None:
        if not self._busy and not self._waiting:
            self._busy = True
            return
        event = anyio.Event()
        self._waiting.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # handed to us as we left: pass it on
            else:
                self._waiting.remove(event)
            raise

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._waiting)

    def release(self) -> None:
        if self._waiting:
            self._waiting.popleft().set()  # stays busy: handed over
        else:
            self._busy = False


class SocketMemoryTransport(MemoryTransport):
    """The memory of the process at the other end of `connection`, moved
    through the data socket whose ends are `data` (ours, non-blocking, an
    AsyncFileDescriptor of the local thread) and `remote_fd` (its number in
    the target, blocking)."""

    __slots__ = ("_absorbed", "_turns", "connection", "data", "direct_pid", "remote_fd")

    def __init__(self, connection: ConnectionSyscall, data: AsyncFileDescriptor, remote_fd: int):
        self.connection = connection
        self.data = data
        self.remote_fd = remote_fd
        self._turns = _Turns()
        self._absorbed = False
        # The target's pid in our pid namespace, if process_vm_readv(2) and
        # process_vm_writev(2) may reach it (same host, same user): the
        # fast path, given up for good at the first refusal.
        self.direct_pid: int | None = None

    def _direct(self) -> int | None:
        pid = self.direct_pid
        if pid is not None and self.connection.hung_up is not None:
            return None  # the pid may name another process by now
        return pid

    async def write(self, address: int, data: bytes) -> None:
        if not data:
            return
        pid = self._direct()
        if pid is not None and not self._turns.busy:
            try:
                _raw.process_vm_write(pid, address, data)
                return
            except OSError:
                self.direct_pid = None
        self._absorbed = await self._take_turn()
        try:
            with anyio.CancelScope(shield=True):
                await self._write(address, memoryview(data))
        finally:
            self._turns.release()
        if self._absorbed:
            _rearm_native_cancellation()

    async def read(self, address: int, size: int) -> bytes:
        if size == 0:
            return b""
        pid = self._direct()
        if pid is not None and not self._turns.busy:
            try:
                return _raw.process_vm_read(pid, address, size)
            except OSError:
                self.direct_pid = None
        self._absorbed = await self._take_turn()
        result: list[bytes] = []
        try:
            with anyio.CancelScope(shield=True):
                await self._read(address, size, result)
        finally:
            self._turns.release()
        if self._absorbed:
            _rearm_native_cancellation()
        return result[0]

    async def _take_turn(self) -> bool:
        """Wait for our turn, whatever cancellation comes: a copy, once
        asked for, is made (a caller that has just read data into memory
        must not lose it to a cancellation here), and the cancellation
        comes after.  Returns whether a native one was absorbed."""
        absorbed = False
        with anyio.CancelScope(shield=True):
            while True:
                try:
                    await self._turns.acquire()
                    break
                except BaseException as error:
                    if not _is_cancellation(error):
                        raise
                    absorbed = True
        return absorbed

    async def _write(self, address: int, data: memoryview) -> None:
        connection = self.connection
        offset = 0
        while offset < len(data):
            chunk = data[offset : offset + _WRITE_CHUNK]
            slot = connection.start(
                _SYS_recvfrom, self.remote_fd, address + offset, len(chunk), _MSG_WAITALL, 0, 0
            )
            await self._send(chunk)
            done = await connection.finish(slot, interruptible=False)
            # A signal may cut it short; the rest of the bytes are in the
            # socket already, for the next request.
            while done < len(chunk):
                if done <= 0:
                    raise OSError(errno.EIO, "the memory transport lost bytes (EOF)")
                chunk = chunk[done:]
                offset += done
                slot = connection.start(
                    _SYS_recvfrom, self.remote_fd, address + offset, len(chunk), _MSG_WAITALL,
                    0, 0,
                )
                done = await connection.finish(slot, interruptible=False)
            offset += len(chunk)

    async def _read(self, address: int, size: int, result: list[bytes]) -> None:
        connection = self.connection
        parts: list[bytes] = []
        pending: deque[tuple[_Slot, int, int]] = deque()
        for offset in range(0, size, _READ_CHUNK):
            length = min(_READ_CHUNK, size - offset)
            slot = connection.start(_SYS_sendto, self.remote_fd, address + offset, length, 0, 0, 0)
            pending.append((slot, offset, length))
        received: dict[int, bytes] = {}
        while pending:
            slot, offset, length = pending.popleft()
            sent = await connection.finish(slot, interruptible=False)
            if sent <= 0:
                raise OSError(errno.EIO, "the memory transport lost bytes (EOF)")
            received[offset] = await self._receive(sent)
            if sent < length:
                rest = connection.start(
                    _SYS_sendto, self.remote_fd, address + offset + sent, length - sent, 0, 0, 0
                )
                pending.appendleft((rest, offset + sent, length - sent))
        for offset in sorted(received):
            parts.append(received[offset])
        result.append(b"".join(parts))

    async def _send(self, data: memoryview) -> None:
        afd = self.data
        status = afd._status
        number = afd.handle.number
        while data:
            seen = status.writes
            try:
                written = os.write(number, data)
            except BlockingIOError:
                await self._wait(status, True, seen)
                continue
            except OSError as error:
                raise SyscallHangup(f"{self.connection.name}: memory socket: {error}") from None
            data = data[written:]

    async def _receive(self, count: int) -> bytes:
        afd = self.data
        status = afd._status
        number = afd.handle.number
        parts: list[bytes] = []
        while count:
            seen = status.reads
            try:
                part = os.read(number, count)
            except BlockingIOError:
                await self._wait(status, False, seen)
                continue
            if not part:
                raise SyscallHangup(f"{self.connection.name}: the memory socket closed")
            parts.append(part)
            count -= len(part)
        return b"".join(parts)

    async def _wait(self, status: _Status, write: bool, seen: int) -> None:
        """Wait for an edge of the data socket, whatever cancellation comes:
        a copy once begun is finished (asyncio's own Task.cancel gets
        through the shield; it is absorbed here and re-armed after)."""
        while True:
            try:
                await self.data.epoller.wait(status, write, seen)
                return
            except FDClosedWhileWaiting:
                raise SyscallHangup(f"{self.connection.name}: the memory socket closed") from None
            except BaseException as error:
                if not _is_cancellation(error):
                    raise
                self._absorbed = True


class RemoteMapper(Mapper):
    """Maps arenas in another process with its own mmap(2)."""

    __slots__ = ("connection",)

    def __init__(self, connection: ConnectionSyscall) -> None:
        self.connection = connection

    async def map(self, size: int) -> int:
        return await self.connection.syscall(
            _SYS_mmap, 0, size, _PROT_READ_WRITE, _MAP_PRIVATE_ANONYMOUS, -1, 0
        )

    def unmap(self, address: int, size: int) -> None:
        self.connection.syscall_later(_SYS_munmap, address, size)
