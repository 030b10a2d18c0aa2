"""The syscall connection: syscalls in another process, over a socket.

The other process runs the C server loop (rsyscall/_native/server.c): it
reads one request (a syscall number and six 64-bit arguments), makes the
syscall, and writes back the 64-bit result, over and over.  Our end of the
socket is a non-blocking fd in the Python process.

* **Pipelined.**  Requests are written as they are made, without waiting
  for earlier answers; answers come back in request order and are matched
  to a FIFO of pending calls.  One queue of unwritten bytes keeps requests
  whole and in order however the writes are split.  Both ends number the
  requests from 1 in that order (`_Slot.seq`), which is how a cancellation
  names one.
* **Fair.**  Calls are answered in the order they were made; whoever waits
  for an answer and finds nobody reading becomes the reader for everyone,
  then hands over, as the epoller's driver does.
* **Cancellation that works, and loses nothing.**
  A request, once queued, is always answered and its answer applied.  When
  the caller is cancelled (an anyio cancel scope, the loop's native
  cancellation such as asyncio's `Task.cancel`, or KeyboardInterrupt), the
  connection's `Interrupter` stops the request: one that has not started is
  skipped by the server (which answers -EINTR without running it), one that
  is running is interrupted by a signal (a blocking syscall returns EINTR).
  Then the answer is collected, shielded.  If the request was skipped or
  interrupted, the cancellation is raised at once and nothing happened; if
  it completed anyway, its result is returned and the cancellation comes
  at the caller's next checkpoint (anyio scopes do that by themselves; a
  native asyncio cancellation is re-armed with `Task.cancel` once the task
  next waits, unless someone uncancelled it in between).  The epoller's
  blocking epoll_wait (`syscall_pokeable`) is woken with a cheap request
  instead.
* **Hangup.**  When the process dies or execs (EOF on the socket, or the
  process watch calls `hangup`), answers already sent are still delivered,
  every other pending and later call fails with `SyscallHangup`, and our
  end of the socket is closed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import operator
import os
import struct
from asyncio import _get_running_loop
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.lowlevel
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from rsyscall._native import _raw
from rsyscall.epoller import Epoller, FDClosedWhileWaiting
from rsyscall.near.interface import SyscallHangup, SyscallInterface, syscall_error
from rsyscall.near.sysnum import SYS
from rsyscall.sys.epoll import EPOLL_CTL, EpollEvent

if TYPE_CHECKING:
    from rsyscall.epoller import AsyncFileDescriptor

__all__ = ["EXEC_OR_EXIT", "ConnectionSyscall", "Interrupter", "wait_remote"]

EXEC_OR_EXIT = "the process called exec or exited"
"""The hangup reason when a child's exec watch reports."""

_REQUEST = struct.Struct("<7Q")
_RESPONSE = struct.Struct("<q")
_RESPONSE_SIZE = _RESPONSE.size
_MASK = (1 << 64) - 1
_READ_SIZE = 64 * 1024
_SYS_getpid = int(SYS.getpid)
_SYS_close = int(SYS.close)
_SYS_epoll_ctl = int(SYS.epoll_ctl)
_MAX_EVENTS = 64
_EVENT_SIZE = EpollEvent.sizeof()
_EINTR = -errno.EINTR
# How long to wait for an interrupted call before interrupting it again
# (a signal that lands just before the syscall starts interrupts nothing),
# growing to the last value.
_INTERRUPT_DELAYS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


class Interrupter(Protocol):
    """Stops a request the server has not answered yet (see the module
    docstring).  `interrupt` must not wait; it is called again after a
    while if the answer has not come."""

    def interrupt(self, seq: int) -> bool:
        """Stop request `seq`; True if it will certainly not run (it was
        skipped before it started), so nobody needs to wait for it."""
        ...


class _Slot:
    """One request's place in line, and its answer once it comes."""

    __slots__ = ("done", "error", "event", "keep", "number", "result", "seq")

    def __init__(self, seq: int, number: int, keep: object = None) -> None:
        self.seq = seq
        self.number = number
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


_NO_ARGS = (0,) * 6


def _pack_checked(number: int, args: tuple[int, ...]) -> bytes:
    """The request for what the plain pack refused: negative arguments
    (as two's complement), or a clear error."""
    if len(args) > 6:
        raise TypeError(f"a syscall takes at most 6 arguments, got {len(args)}")
    values = [_register(number)] + [_register(arg) for arg in args]
    values += [0] * (7 - len(values))
    return _REQUEST.pack(*values)


# DEBUG traces every request and answer of every connection (child, stub
# and ssh threads): off unless the application turns it on.
_log = logging.getLogger("rsyscall.connection")


def _syscall_name(number: int) -> str:
    try:
        return SYS(number).name
    except ValueError:
        return f"syscall{number}"


def _outcome(slot: _Slot) -> int:
    if slot.error is not None:
        raise slot.error
    result = slot.result
    if -4096 < result < 0:
        raise syscall_error(slot.number, -result)  # named, as local errors are
    return result


async def _trio_checkpoint_if_cancelled() -> None:
    """trio's own checkpoint_if_cancelled, without anyio's lookup of the
    running library on each call (the call's commonest cost after the
    syscall itself).  Used where no asyncio loop runs: under anyio, trio."""
    global _trio_checkpoint_if_cancelled
    from trio.lowlevel import checkpoint_if_cancelled as trio_checkpoint_if_cancelled

    _trio_checkpoint_if_cancelled = trio_checkpoint_if_cancelled
    await trio_checkpoint_if_cancelled()


try:
    # anyio's asyncio backend itself: the same check, without the lookup of
    # the running library on each call.
    from anyio._backends._asyncio import AsyncIOBackend as _AsyncIOBackend

    _asyncio_checkpoint_if_cancelled = _AsyncIOBackend.checkpoint_if_cancelled
except (ImportError, AttributeError):  # another anyio: its public function
    _asyncio_checkpoint_if_cancelled = checkpoint_if_cancelled


def _anyio_cancelled() -> bool:
    """Whether an anyio cancel scope around us has been cancelled (it will
    deliver the cancellation again by itself at the next checkpoint)."""
    try:
        return anyio.current_effective_deadline() == -math.inf
    except Exception:
        return False


# Tasks with a native asyncio cancellation that was absorbed (so that a
# completed syscall's result could be returned) and is due again.  The next
# syscall such a task starts raises it before sending anything; if the
# task waits elsewhere first, `Task.cancel` delivers it there.  Without
# this, a task that only made syscalls that complete would absorb its
# cancellation again and again.
# (A plain set: each entry leaves at the loop's next turn, when `rearm` runs.)
_rearmed: set[asyncio.Task[object]] = set()


def _rearm_native_cancellation() -> None:
    """A native asyncio cancellation was absorbed so that a completed
    syscall's result could be returned: make it come back at the task's
    next checkpoint (see `_rearmed`), unless it is withdrawn meanwhile
    (asyncio.timeout and TaskGroup uncancel what they handled) or the task
    finishes (wait_for's inner task does, with the result)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return  # not asyncio: trio's cancellations are all scoped
    if task is None:
        return
    _rearmed.add(task)

    def rearm() -> None:
        if task not in _rearmed:
            return  # raised already, by the next syscall
        _rearmed.discard(task)
        if not task.done() and task.cancelling() > 0:
            task.uncancel()  # keep the count as it was: this is the same request
            task.cancel()

    task.get_loop().call_soon(rearm)


def _raise_if_rearmed() -> None:
    """The checkpoint at the start of a syscall: a cancellation absorbed
    earlier in this task is raised now, before anything is sent."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return
    if task is not None and task in _rearmed:
        _rearmed.discard(task)
        if task.cancelling() > 0:
            raise asyncio.CancelledError()


def _is_cancellation(error: BaseException) -> bool:
    return isinstance(error, anyio.get_cancelled_exc_class())


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
        self._seq = 0
        self._calls = 0
        self._hangup: str | None = None
        self._on_hangup: list[Callable[[str], None]] = []
        self.interrupter: Interrupter | None = None

    def __repr__(self) -> str:
        state = f", hung up: {self._hangup}" if self._hangup else ""
        return f"ConnectionSyscall({self.name!r}, {len(self._pending)} pending{state})"

    @property
    def hung_up(self) -> str | None:
        """Why the connection is gone (a short reason), or None while it works."""
        return self._hangup

    @property
    def last_seq(self) -> int:
        """The number of the last request queued."""
        return self._seq

    # ---- making requests ----

    async def syscall(self, number: int, /, *args: int) -> int:
        if _rearmed:
            _raise_if_rearmed()
        # A cancellation point before anything is sent, as a call that
        # waits would be; and, now and then, a turn for the other tasks
        # (the fast path below may not wait at all).
        self._calls += 1
        if not self._calls & 15:
            await checkpoint()
        elif _get_running_loop() is None:
            await _trio_checkpoint_if_cancelled()
        else:
            await _asyncio_checkpoint_if_cancelled()
        if (not self._pending and not self._reading and not self._outbox
                and self._hangup is None and not _log.isEnabledFor(logging.DEBUG)):
            # The fastest path, with nothing else in flight: send, and take
            # the answer if it is there already (a server on another CPU)
            # or comes as soon as we give up the CPU (one on ours, waiting
            # for this request), all in one C call; a slot only if it has
            # not come.
            # A finalizer's request (a close, from gc) made meanwhile waits
            # in _deferred, so it cannot come between ours and its answer.
            self._submitting = True
            try:
                try:
                    request = _REQUEST.pack(number, *args, *_NO_ARGS[len(args):])
                except (struct.error, TypeError):
                    request = _pack_checked(number, args)
                self._seq += 1
                failed: OSError | None = None
                try:
                    got = _raw.exchange(self._fd, request)
                except OSError as error:
                    got, failed = None, error
                answer = got if isinstance(got, bytes) and len(got) == _RESPONSE_SIZE else None
                if answer is None:
                    slot = _Slot(self._seq, number)
                    self._pending.append(slot)
            finally:
                self._submitting = False
            if answer is not None:
                if self._deferred:
                    self._submit_deferred()
                result: int = _RESPONSE.unpack(answer)[0]
                if -4096 < result < 0:
                    raise syscall_error(number, -result)
                return result
            if failed is not None:
                self._hangup_after_write(failed)  # fails the slot
            elif isinstance(got, int):
                self._outbox += request[got:]
            elif got:
                self._dispatch(got)
            elif got is not None:
                self.hangup("the process closed the connection")
            if self._deferred:
                self._submit_deferred()
        else:
            slot = self._submit(number, args)
            if not self._reading and not self._outbox and self._hangup is None:
                # The fast path: the answer may be there already, or come
                # as soon as we give up the CPU, as above.
                self._try_answers()
        if slot.done:
            return _outcome(slot)
        try:
            await self._wait(slot)
        except BaseException as error:
            return await self._after_cancel(slot, error)
        return _outcome(slot)

    async def syscall_to_completion(self, number: int, /, *args: int) -> int:
        slot = self._submit(number, args)
        try:
            await self._wait(slot)
        except BaseException as error:
            native = not _anyio_cancelled()
            absorbed = await self._collect(slot, poke=None)
            if not _is_cancellation(error) or slot.error is not None:
                raise
            if native or absorbed:
                _rearm_native_cancellation()
        return _outcome(slot)

    def start(self, number: int, /, *args: int) -> _Slot:
        """Send a request now and return its place in line; `finish` it
        later.  Lets the caller work while the process runs the syscall."""
        return self._submit(number, args)

    async def finish(self, slot: _Slot, interruptible: bool = True) -> int:
        """The answer to a `start`ed request, with the same cancellation
        handling as `syscall`; not `interruptible`, it is waited for as
        `syscall_to_completion` waits (the memory transport's copies)."""
        try:
            await self._wait(slot)
        except BaseException as error:
            if interruptible:
                return await self._after_cancel(slot, error)
            native = not _anyio_cancelled()
            absorbed = await self._collect(slot, poke=None)
            if not _is_cancellation(error) or slot.error is not None:
                raise
            if native or absorbed:
                _rearm_native_cancellation()
        return _outcome(slot)

    async def syscall_pokeable(
        self, number: int, /, *args: int
    ) -> tuple[int, BaseException | None]:
        """A syscall that may block in the other process until woken by the
        next request (epoll_wait with the request fd registered).  If the
        caller is cancelled, a no-op request wakes it; the answer is still
        returned (the events it reports must not be lost), with the
        cancellation, which the caller raises once it has used the answer."""
        if _rearmed:
            _raise_if_rearmed()
        slot = self._submit(number, args)
        cancelled: BaseException | None = None
        try:
            await self._wait(slot)
        except BaseException as error:
            if not slot.done and self._hangup is None:
                self.submit_discard(_SYS_getpid)
            if await self._collect(slot, poke=None):
                pass  # a second native cancellation: the same outcome
            if not _is_cancellation(error):
                raise
            cancelled = error
        return _outcome(slot), cancelled

    async def _after_cancel(self, slot: _Slot, error: BaseException) -> int:
        """The caller was cancelled (or interrupted) while waiting for
        `slot`: stop the request, collect its answer, and raise or return
        as the module docstring says."""
        if slot.done or self._hangup is not None:
            if not _is_cancellation(error) or slot.error is not None:
                raise error
            if not _anyio_cancelled():
                _rearm_native_cancellation()
            return _outcome(slot)
        interrupter = self.interrupter
        if interrupter is not None and interrupter.interrupt(slot.seq):
            # Skipped for certain: it will be answered -EINTR without
            # running, and nobody needs that answer.
            slot.keep = None
            raise error
        native = not _anyio_cancelled()
        absorbed = await self._collect(slot, poke=interrupter)
        if not _is_cancellation(error):
            raise error  # KeyboardInterrupt and the like: after the answer came
        if slot.error is None and slot.result == _EINTR:
            raise error  # interrupted: it did nothing
        if native or absorbed:
            _rearm_native_cancellation()
        return _outcome(slot)

    async def _collect(self, slot: _Slot, poke: Interrupter | None) -> bool:
        """Wait for `slot`'s answer whatever happens, interrupting it again
        now and then if `poke` is given.  Returns whether a further native
        cancellation arrived meanwhile (absorbed here)."""
        absorbed = False
        pending_error: BaseException | None = None
        with anyio.CancelScope(shield=True):
            attempt = 0
            while not slot.done:
                delay = _INTERRUPT_DELAYS[min(attempt, len(_INTERRUPT_DELAYS) - 1)]
                attempt += 1
                try:
                    if poke is None:
                        await self._wait(slot)
                    else:
                        with anyio.move_on_after(delay):
                            await self._wait(slot)
                        if not slot.done and self._hangup is None:
                            poke.interrupt(slot.seq)
                except BaseException as again:
                    # A shield stops anyio's scopes, not asyncio's own
                    # Task.cancel, nor KeyboardInterrupt: keep collecting,
                    # and let the caller re-raise.
                    if _is_cancellation(again):
                        absorbed = True
                    elif isinstance(again, KeyboardInterrupt):
                        pending_error = again
                    else:
                        raise
        if pending_error is not None:
            raise pending_error
        return absorbed

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

    def close_later(self, number: int) -> bool:
        """The FDTable closer for tables this connection's process uses:
        False once the process is gone."""
        if self._hangup is not None:
            return False
        self.submit_discard(_SYS_close, number)
        return True

    def _submit(self, number: int, args: tuple[int, ...], keep: object = None) -> _Slot:
        if self._hangup is not None:
            raise SyscallHangup(f"{self.name}: {self._hangup}")
        try:
            # Non-negative ints below 2**64, at most six: packed as they are.
            request = _REQUEST.pack(number, *args, *_NO_ARGS[len(args):])
        except (struct.error, TypeError):
            request = _pack_checked(number, args)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("%s: #%d %s%r", self.name, self._seq + 1, _syscall_name(number), args)
        self._submitting = True
        try:
            self._seq += 1
            slot = _Slot(self._seq, number, keep)
            self._pending.append(slot)
            self._outbox += request
        finally:
            self._submitting = False
        self._submit_deferred()
        self._flush_now()
        return slot

    def _submit_deferred(self) -> None:
        """Send the requests finalizers made while another was being sent."""
        while self._deferred:
            if self._hangup is not None:
                self._deferred.clear()  # nothing more can be sent
                return
            number, args, keep = self._deferred.pop(0)
            self._submit(number, args, keep)

    def _flush_now(self) -> None:
        """Write as much of the outbox as the socket takes, without waiting."""
        outbox = self._outbox
        while outbox:
            try:
                written = os.write(self._fd, outbox)
            except BlockingIOError:
                return
            except OSError as error:
                self._hangup_after_write(error)
                return
            del outbox[:written]

    def _hangup_after_write(self, error: OSError) -> None:
        if isinstance(error, BrokenPipeError | ConnectionResetError):
            # It closed its end (exec, exit, death): as EOF would say.
            self.hangup("the process closed the connection")
        else:
            self.hangup(f"writing a request failed: {error.strerror}")

    # ---- waiting for answers ----

    async def _wait(self, slot: _Slot) -> None:
        afd = self._afd
        while not slot.done:
            if self._outbox:
                status = afd._status
                seen_reads, seen_writes = status.reads, status.writes
                self._flush_now()
                if self._outbox and not slot.done:
                    # The server answers each request before it reads the
                    # next: if nobody reads its answers, it stops reading
                    # requests, and our writes wait forever.  Take what it
                    # answered, and wait for room or for more answers.
                    self._read_answers_now()
                    if self._outbox and not slot.done and self._hangup is None:
                        await afd.epoller.wait(status, None, seen_reads, seen_writes)
                continue
            if self._reading:
                if slot.event is None:
                    slot.event = anyio.Event()
                try:
                    await slot.event.wait()
                finally:
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

    def _try_answers(self) -> None:
        """Take the answers already in our socket; if there are none, give
        up the CPU once (a server on this CPU, waiting for the request just
        sent, runs now) and look again.  One read each: the caller wants
        one answer, and a short read says there is no more."""
        for attempt in (0, 1):
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                if attempt == 0:
                    os.sched_yield()
                continue
            except OSError:
                self._read_answers_now()  # it says what went wrong
                return
            if not data:
                self.hangup("the process closed the connection")
            else:
                self._dispatch(data)
            return

    def _read_answers_now(self) -> None:
        """Take and apply the answers already in our socket, without
        waiting."""
        while self._hangup is None:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return
            except ConnectionResetError:
                data = b""  # closed with requests unread: see _read_answers
            except OSError as error:
                self.hangup(f"reading answers failed: {error.strerror}")
                return
            if not data:
                self.hangup("the process closed the connection")
                return
            self._dispatch(data)

    async def _read_answers(self) -> None:
        try:
            data = await self._afd.read_some_bytes(_READ_SIZE)
        except FDClosedWhileWaiting:
            return  # hangup() closed it under us; our slot is failed already
        except ConnectionResetError:
            # It closed its end (exec, exit, death) with requests unread:
            # the same end as EOF, for exec's success too.  (A finalizer's
            # close can come just after an execve request, from gc.)
            data = b""
        except OSError as error:
            self.hangup(f"reading answers failed: {error.strerror}")
            return
        if not data:
            self.hangup("the process closed the connection")
            return
        self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        traced = _log.isEnabledFor(logging.DEBUG)
        if len(data) == _RESPONSE.size and not self._partial and self._pending and not traced:
            self._pending.popleft().finish(_RESPONSE.unpack(data)[0])
            return
        data = self._partial + data
        usable = len(data) - len(data) % _RESPONSE.size
        self._partial = data[usable:]
        pending = self._pending
        for (result,) in _RESPONSE.iter_unpack(data[:usable]):
            if not pending:
                self.hangup("protocol error: an answer with no request")
                return
            slot = pending.popleft()
            if traced:
                failed = -4096 < result < 0
                shown = f"-{errno.errorcode.get(-result, -result)}" if failed else result
                _log.debug("%s: #%d %s -> %s", self.name, slot.seq, _syscall_name(slot.number),
                           shown)
            slot.finish(result)

    # ---- the end ----

    def hangup(self, reason: str) -> None:
        """The process is gone (or exec'd): deliver the answers it sent,
        fail everything else with SyscallHangup, close our end.
        Synchronous, so a process watch can call it from the epoller's
        dispatch."""
        if self._hangup is not None:
            return
        self._hangup = reason
        _log.debug("%s: hung up: %s (%d pending)", self.name, reason, len(self._pending))
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
        # Our end lives in the local process, whose syscalls take no
        # waiting: take it out of the epoll set, wake a reader blocked on
        # it (it finds its slot failed), and close it.
        afd = self._afd
        epoller = afd.epoller
        epoller.forget(afd._ident)
        try:
            _raw.syscall(_SYS_epoll_ctl, epoller.epfd.number, EPOLL_CTL.DEL, self._fd, 0)
        except OSError:
            pass
        afd.handle.drop()
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
    count, cancelled = await sysif.syscall_pokeable(
        _SYS_epoll_pwait, epoller.epfd.number, buffer.address, _MAX_EVENTS, -1, 0, 0
    )
    if count:
        epoller.dispatch(await task.space.transport.read(buffer.address, count * _EVENT_SIZE))
    if cancelled is not None:
        raise cancelled  # now that what it reported is dispatched
    await anyio.lowlevel.checkpoint_if_cancelled()

