"""The syscall connection: syscalls in another process, over a socket.

The other process runs the C server loop (rsyscall/_native/server.c): it
reads one request (a syscall number and six 64-bit arguments), makes the
syscall, and writes back the 64-bit result, over and over.  Our end of the
socket is a non-blocking fd in the Python process.

* **Pipelined.**  Requests are written as they are made, without waiting
  for earlier answers; answers come back in request order and are matched
  to a FIFO of pending calls.  One queue of unwritten bytes keeps requests
  whole and in order however the writes are split.
* **Fair.**  Calls are answered in the order they were made; whoever waits
  for an answer and finds nobody reading becomes the reader for everyone,
  then hands over, as the epoller's driver does.
* **Cancellation-safe.**  A request, once queued, is always answered and
  the answer applied: the wait is shielded (DESIGN.md section 3).  The one
  exception is `syscall_pokeable`, for the epoller's blocking epoll_wait:
  cancelling it queues a cheap request that wakes the epoll_wait, and the
  real answer is still collected.
* **Hangup.**  When the process dies or execs (EOF on the socket, or the
  process watch calls `hangup`), answers already sent are still delivered,
  and every other pending and later call fails with `SyscallHangup`.
"""

from __future__ import annotations

import operator
import os
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from rsyscall._native import _raw
from rsyscall.epoller import Epoller, FDClosedWhileWaiting
from rsyscall.near.interface import SyscallHangup, SyscallInterface, syscall_error
from rsyscall.near.sysnum import SYS
from rsyscall.sys.epoll import EpollEvent

if TYPE_CHECKING:
    from rsyscall.epoller import AsyncFileDescriptor

__all__ = ["EXEC_OR_EXIT", "ConnectionSyscall", "wait_remote"]

_REQUEST = struct.Struct("<7Q")
_RESPONSE = struct.Struct("<q")
_MASK = (1 << 64) - 1
_READ_SIZE = 64 * 1024
_SYS_getpid = int(SYS.getpid)
_EXEC_MARKER = _raw.EXEC_MARKER
EXEC_OR_EXIT = "the process called exec or exited"
"""The hangup reason when the exec watcher reports."""
_SYS_close = int(SYS.close)
_MAX_EVENTS = 64
_EVENT_SIZE = EpollEvent.sizeof()


class _Slot:
    """One request's place in line, and its answer once it comes."""

    __slots__ = ("done", "error", "event", "keep", "result")

    def __init__(self, keep: object = None) -> None:
        self.done = False
        self.result = 0
        self.error: BaseException | None = None
        self.event: anyio.Event | None = None
        # Memory or handles the request refers to, held until it is answered.
        self.keep = keep

    def finish(self, result: int) -> None:
        self.done = True
        self.result = result
        self.keep = None
        if self.event is not None:
            self.event.set()

    def fail(self, error: BaseException) -> None:
        self.done = True
        self.error = error
        self.keep = None
        if self.event is not None:
            self.event.set()


def _register(value: int) -> int:
    """An argument as the 64-bit register the server will load: the same
    checks the local C entry makes (ints only, -2**63 to 2**64-1)."""
    value = operator.index(value)
    if not -(1 << 63) <= value <= _MASK:
        raise ValueError(f"syscall argument {value} does not fit in 64 bits")
    return value & _MASK


def _outcome(slot: _Slot) -> int:
    if slot.error is not None:
        raise slot.error
    result = slot.result
    if -4096 < result < 0:
        # The error names the syscall (rsyscall.near.interface), once the
        # slot remembers its number.
        raise syscall_error(getattr(slot, "number", -1), -result)
    return result


class ConnectionSyscall(SyscallInterface):
    """Syscalls in the process at the other end of `afd`, a connected
    socket whose peer runs the syscall server loop."""

    def __init__(self, afd: AsyncFileDescriptor, name: str) -> None:
        self._afd = afd
        self._fd = afd.handle.number
        self.name = name
        self._pending: deque[_Slot] = deque()
        self._outbox = bytearray()
        self._partial = b""
        self._reading = False
        self._submitting = False
        self._deferred: list[tuple[int, tuple[int, ...], object]] = []
        self._hangup: str | None = None
        self._on_hangup: list[Callable[[str], None]] = []

    def __repr__(self) -> str:
        state = f", hung up: {self._hangup}" if self._hangup else ""
        return f"ConnectionSyscall({self.name!r}, {len(self._pending)} pending{state})"

    @property
    def hung_up(self) -> str | None:
        """Why the connection is gone (a short reason), or None while it works."""
        return self._hangup

    # ---- making requests ----

    async def syscall(self, number: int, /, *args: int) -> int:
        slot = self._submit(number, args)
        with anyio.CancelScope(shield=True):
            await self._wait(slot)
        return _outcome(slot)

    def start(self, number: int, /, *args: int) -> _Slot:
        """Send a request now and return its place in line; `finish` it
        later.  Lets the caller work while the process runs the syscall."""
        return self._submit(number, args)

    async def finish(self, slot: _Slot) -> int:
        """The answer to a `start`ed request (a shielded wait, as `syscall`'s)."""
        with anyio.CancelScope(shield=True):
            await self._wait(slot)
        return _outcome(slot)

    async def syscall_pokeable(self, number: int, /, *args: int) -> int:
        """A syscall that may block in the other process until woken by the
        next request (epoll_wait with the request fd registered).  If the
        caller is cancelled, a no-op request wakes it; the answer is still
        returned, and the caller must checkpoint to see the cancellation."""
        slot = self._submit(number, args)
        try:
            await self._wait(slot)
        except anyio.get_cancelled_exc_class():
            if not slot.done and self._hangup is None:
                self.submit_discard(_SYS_getpid)
            with anyio.CancelScope(shield=True):
                await self._wait(slot)
        return _outcome(slot)

    def syscall_later(self, number: int, /, *args: int, keep: object = None) -> None:
        self.submit_discard(number, *args, keep=keep)

    def submit_discard(self, number: int, *args: int, keep: object = None) -> None:
        """Queue a request whose answer nobody needs (a close from a
        finalizer, a wake-up), holding `keep` alive until it is answered.
        Never waits; safe to call from a finalizer."""
        if self._hangup is not None:
            return
        if self._submitting:
            # A finalizer ran in the middle of another submit: queue it
            # behind, so requests and their slots stay in the same order.
            self._deferred.append((number, args, keep))
            return
        self._submit(number, args, keep)

    def close_later(self, number: int) -> None:
        """The FDTable closer for a table only this connection reaches."""
        self.submit_discard(_SYS_close, number)

    def _submit(self, number: int, args: tuple[int, ...], keep: object = None) -> _Slot:
        if self._hangup is not None:
            raise SyscallHangup(f"{self.name}: {self._hangup}")
        if len(args) > 6:
            raise TypeError(f"a syscall takes at most 6 arguments, got {len(args)}")
        values = [_register(number)] + [_register(arg) for arg in args]
        values += [0] * (7 - len(values))
        request = _REQUEST.pack(*values)
        slot = _Slot(keep)
        self._submitting = True
        try:
            self._pending.append(slot)
            self._outbox += request
        finally:
            self._submitting = False
        while self._deferred:
            number, args, keep = self._deferred.pop(0)
            self._submit(number, args, keep)
        self._flush_now()
        return slot

    def _flush_now(self) -> None:
        """Write as much of the outbox as the socket takes, without waiting."""
        outbox = self._outbox
        while outbox:
            try:
                written = os.write(self._fd, outbox)
            except BlockingIOError:
                return
            except OSError as error:
                # EPIPE and the like: the other end is gone.
                self.hangup(f"writing a request failed: {error.strerror}")
                return
            del outbox[:written]

    # ---- waiting for answers ----

    async def _wait(self, slot: _Slot) -> None:
        afd = self._afd
        while not slot.done:
            if self._outbox:
                seen = afd._status.writes
                self._flush_now()
                if self._outbox and not slot.done:
                    await afd.epoller.wait(afd._status, True, seen)
                continue
            if self._reading:
                if slot.event is None:
                    slot.event = anyio.Event()
                await slot.event.wait()
                slot.event = None
                continue
            self._reading = True
            try:
                await self._read_answers()
            finally:
                self._reading = False
                # Whoever is still waiting takes over the reading.
                for other in self._pending:
                    if other.event is not None:
                        other.event.set()
                        break

    async def _read_answers(self) -> None:
        try:
            data = await self._afd.read_some_bytes(_READ_SIZE)
        except FDClosedWhileWaiting:
            return  # hangup() closed it under us; our slot is failed already
        except OSError as error:
            # ECONNRESET: it died with requests unread.
            self.hangup(f"reading answers failed: {error.strerror}")
            return
        if not data:
            self.hangup("the process closed the connection")
            return
        self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        data = self._partial + data
        usable = len(data) - len(data) % _RESPONSE.size
        self._partial = data[usable:]
        pending = self._pending
        for (result,) in _RESPONSE.iter_unpack(data[:usable]):
            if result == _EXEC_MARKER:
                # From the exec watcher: the process is gone or exec'd.
                self.hangup(EXEC_OR_EXIT)
                return
            if not pending:
                self.hangup("protocol error: an answer with no request")
                return
            pending.popleft().finish(result)

    # ---- the end ----

    def hangup(self, reason: str) -> None:
        """The process is gone (or exec'd): deliver the answers it sent,
        fail everything else with SyscallHangup.  Synchronous, so a process
        watch can call it from the epoller's dispatch."""
        if self._hangup is not None:
            return
        self._hangup = reason
        # Whatever it answered before going is in our socket buffer.
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except OSError:
                break
            if not data:
                break
            self._dispatch(data)
        error_text = f"{self.name}: {reason}"
        while self._pending:
            self._pending.popleft().fail(SyscallHangup(error_text))
        self._outbox.clear()
        self._deferred.clear()
        # Wake a reader blocked on the socket; it finds its slot failed.
        self._afd.epoller.forget(self._afd._ident)
        callbacks, self._on_hangup = self._on_hangup, []
        for callback in callbacks:
            callback(reason)

    def on_hangup(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` when the connection hangs up."""
        if self._hangup is not None:
            callback(self._hangup)
        else:
            self._on_hangup.append(callback)



_SYS_epoll_pwait = int(SYS.epoll_pwait)


async def wait_remote(epoller: Epoller) -> None:
    """How a child thread's epoller waits: epoll_wait blocks in the child,
    whose request fd is in its epoll set, so any new request wakes it.
    Cancelled, it pokes the child awake and still dispatches what came."""
    task = epoller.thread.task
    sysif = task.sysif
    if not isinstance(sysif, ConnectionSyscall):
        raise TypeError("wait_remote needs a thread reached over a connection")
    buffer = await epoller.event_buffer()
    count = await sysif.syscall_pokeable(
        _SYS_epoll_pwait, epoller.epfd.number, buffer.address, _MAX_EVENTS, -1, 0, 0
    )
    if count:
        epoller.dispatch(await task.space.transport.read(buffer.address, count * _EVENT_SIZE))
    await anyio.lowlevel.checkpoint_if_cancelled()
