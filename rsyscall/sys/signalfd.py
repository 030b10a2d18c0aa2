"""<sys/signalfd.h>: signalfd(2), as the raw signalfd4 syscall, and
`struct signalfd_siginfo`.

A signalfd is a file descriptor that signals can be read from: each read
takes pending signals of its mask, one `SignalfdSiginfo` (128 bytes) each.
The signals must be blocked with sigprocmask(2), or they are delivered as
usual before anyone reads them.  `AsyncSignalQueue` does all of it: it
blocks the signals, makes a non-blocking signalfd, and reads it through the
thread's epoll.

    queue = await AsyncSignalQueue.make(thread, Sigset({SIG.USR1}))
    info = await queue.read()          # waits for a SIGUSR1
    await queue.close()                # unblocks SIGUSR1 again

On `rsyscall.local_thread`, a queue also forwards its signals from the
process's other OS threads to the thread that reads it: see
`AsyncSignalQueue` for how, and for what that means for Python's own
signal handlers.

Deviation from glibc: the mask is the kernel's 8-byte signal set (`Sigset`,
see rsyscall.signal), which is what the signalfd4 syscall takes.
"""

from __future__ import annotations

import builtins
import dataclasses
import struct
import threading
import weakref
from collections import Counter
from typing import TYPE_CHECKING, ClassVar, Self

import anyio

from rsyscall._enum import IntFlag
from rsyscall._native import _raw
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    UseAfterConsumeError,
    borrow,
    check_points_to,
)
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG, HowSIG, Sigset
from rsyscall.struct import Layout, Struct, check_fields, int_arg
from rsyscall.sys.eventfd import EFD
from rsyscall.tasks.local import LocalSyscall

if TYPE_CHECKING:
    from types import TracebackType

    from rsyscall.epoller import AsyncFileDescriptor
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = [
    "SFD",
    "AsyncSignalQueue",
    "SignalfdFileDescriptor",
    "SignalfdSiginfo",
    "SignalfdTask",
]


class SFD(IntFlag):
    """signalfd(2) flags (C: SFD_CLOEXEC, SFD_NONBLOCK)."""

    NONE = 0
    NONBLOCK = 0o4000
    CLOEXEC = 0o2000000


# (attribute, C field, struct code) of every named field, in C order.
_FIELDS = (
    ("signo", "ssi_signo", "I"),
    ("errno", "ssi_errno", "i"),
    ("code", "ssi_code", "i"),
    ("pid", "ssi_pid", "I"),
    ("uid", "ssi_uid", "I"),
    ("fd", "ssi_fd", "i"),
    ("tid", "ssi_tid", "I"),
    ("band", "ssi_band", "I"),
    ("overrun", "ssi_overrun", "I"),
    ("trapno", "ssi_trapno", "I"),
    ("status", "ssi_status", "i"),
    ("int", "ssi_int", "i"),
    ("ptr", "ssi_ptr", "Q"),
    ("utime", "ssi_utime", "Q"),
    ("stime", "ssi_stime", "Q"),
    ("addr", "ssi_addr", "Q"),
    ("addr_lsb", "ssi_addr_lsb", "H"),
    ("syscall", "ssi_syscall", "i"),
    ("call_addr", "ssi_call_addr", "Q"),
    ("arch", "ssi_arch", "I"),
)
_NAMES = tuple(name for name, _, _ in _FIELDS)
_FIELD_CODES = tuple((name, code) for name, _, code in _FIELDS)


def _layout() -> Layout:
    fields = [(c_name, code) for _, c_name, code in _FIELDS]
    # Explicit padding, as in the header: __pad2 after ssi_addr_lsb, and
    # __pad up to 128 bytes (room the kernel keeps for new fields).
    fields.insert(_NAMES.index("addr_lsb") + 1, ("__pad2", "2x"))
    fields.append(("__pad", "28x"))
    return Layout("struct signalfd_siginfo", fields)


def _signal(value: int) -> SIG | int:
    try:
        return SIG(value)
    except ValueError:
        return value  # a real-time signal, or a number SIG has no name for


@dataclasses.dataclass(frozen=True, slots=True)
class SignalfdSiginfo(Struct):
    """`struct signalfd_siginfo`: one signal read from a signalfd.

    The fields are C's with the `ssi_` prefix dropped; see signalfd(2) and,
    for what each means for which signal (`code` tells which are valid),
    sigaction(2).  `signo` is a `SIG` when it has a name.  Only `signo` is
    required: the rest default to 0, as a signal without them reads."""

    # After the field named `int`, the builtin is spelled builtins.int.
    signo: SIG | int
    errno: int = 0
    code: int = 0
    pid: int = 0
    uid: int = 0
    fd: int = 0
    tid: int = 0
    band: int = 0
    overrun: int = 0
    trapno: int = 0
    status: int = 0
    int: builtins.int = 0
    ptr: builtins.int = 0
    utime: builtins.int = 0
    stime: builtins.int = 0
    addr: builtins.int = 0
    addr_lsb: builtins.int = 0
    syscall: builtins.int = 0
    call_addr: builtins.int = 0
    arch: builtins.int = 0
    layout: ClassVar[Layout] = _layout()

    def __post_init__(self) -> None:
        # An int of the right type and in its C field's range, or raise.
        check_fields(self, _FIELD_CODES)
        object.__setattr__(self, "signo", _signal(self.signo))

    def to_bytes(self) -> bytes:
        try:
            return self.layout.struct.pack(*(getattr(self, name) for name in _NAMES))
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in a struct signalfd_siginfo: {e}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct signalfd_siginfo needs {size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))


_SIGSET_SIZE = Sigset.sizeof()
_SYS_signalfd4 = int(SYS.signalfd4)


def _mask_address(task: BaseTask, mask: object) -> int:
    """The address of a Sigset for signalfd4 in `task`."""
    check_points_to(mask, Sigset)
    return borrow(mask, task, _SIGSET_SIZE).address  # type: ignore[arg-type]




class SignalfdTask(BaseTask):
    __slots__ = ()

    async def signalfd(
        self, mask: ReadablePointer[Sigset], flags: SFD = SFD.NONE
    ) -> FileDescriptor:
        """signalfd(2), as the raw signalfd4 syscall: a new signalfd that
        reads the signals in `mask`.  `SFD.CLOEXEC` is always added.

        Block the signals too (sigprocmask(2)), or they are delivered before
        they can be read; `AsyncSignalQueue` does both."""
        address = _mask_address(self, mask)
        number = await self.sysif.syscall(
            _SYS_signalfd4, -1, address, _SIGSET_SIZE, int_arg("flags", flags) | SFD.CLOEXEC
        )
        return self.make_fd(number)


class SignalfdFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def signalfd(self, mask: ReadablePointer[Sigset], flags: SFD = SFD.NONE) -> None:
        """signalfd(2) on this existing signalfd: replace its mask with `mask`.

        The kernel checks `flags` but otherwise ignores them here: they
        only apply to a new signalfd.  EINVAL if this is not a signalfd."""
        task = self.task
        number = self.number
        address = _mask_address(task, mask)
        flag_bits = int_arg("flags", flags)
        await task.sysif.syscall(_SYS_signalfd4, number, address, _SIGSET_SIZE, flag_bits)


class _Blocked:
    """The signals queues of one task have blocked: how many open queues
    want each, and which ones the queues blocked (rather than finding them
    blocked already), so only those are unblocked, by the last queue out."""

    __slots__ = ("counts", "ours")

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.ours: set[int] = set()


_blocked: weakref.WeakKeyDictionary[BaseTask, _Blocked] = weakref.WeakKeyDictionary()

# What the local thread's queues forward (see AsyncSignalQueue): every
# signal but the two that cannot be caught.
_FORWARDABLE = frozenset(range(1, 65)) - {SIG.KILL, SIG.STOP}


def _check_reader(mask: Sigset) -> None:
    """Refuse a local queue in another OS thread than the open queues for
    the same signals: there is one reader thread per signal."""
    tid = threading.get_native_id()
    for sig in sorted(mask):
        if sig in _FORWARDABLE:
            reader = _raw.forwarding_thread(sig)
            if reader not in (0, tid):
                raise RuntimeError(
                    f"a queue for signal {sig!r} is open in OS thread {reader}; "
                    "every queue for it must be made in that thread"
                )


class AsyncSignalQueue:
    """Signals of a thread, read one at a time without blocking its process.

    `make` blocks the signals in the thread (sigprocmask(2)) and makes a
    non-blocking signalfd for them, read through the thread's epoll; `read`
    waits for the next one; `close` closes the signalfd and unblocks the
    signals that `make` blocked, putting back the mask from before.

    Queues may overlap: a signal blocked by several queues stays blocked
    until the last of them closes (each signal is read by only one of
    them), and a signal that was blocked before any queue is never
    unblocked by one.  Signals still pending at `close` are delivered when
    unblocked, by their dispositions.  A queue that is garbage collected
    without `close` closes its fd but leaves the signals blocked (and, on
    the local thread, forwarded).  Closing a queue ends reads in progress
    with UseAfterConsumeError.

    **On `rsyscall.local_thread`** the Python process may have other OS
    threads (anyio's and trio's worker threads, any `threading.Thread`),
    and a signal sent to the process (kill(2)) goes to a thread that does
    not block it.  So while a queue for a signal is open, a small C handler
    is that signal's disposition (sigaction(2)), for the whole process:

    * The OS thread that called `make` is the queue's reader: the signal
      is blocked there, and the signalfd, read there, takes it.  Every
      queue for a signal must be made in the same OS thread (RuntimeError
      otherwise); the event loop's thread, as usual.
    * In any other thread (those that existed before `make`, those started
      after it from a thread that does not block the signal), the handler
      re-queues the signal to the reader with rt_tgsigqueueinfo(2), so it
      is read from the queue too, and never takes its old action.  (A
      real-time signal past RLIMIT_SIGPENDING cannot be queued again, as
      sigqueue(3) cannot, and is lost.)  Threads started from the reader
      while the queue is open inherit its mask (pthread_sigmask(3)), and
      keep the signal blocked after `close`; one sent to such a thread
      alone (tgkill(2)) stays pending there, out of the queue's reach.
    * A forwarded signal reads differently: the kernel takes only a
      negative `si_code` other than SI_TKILL from another thread, so the
      `code` of a signal sent by kill(2), tgkill(2) or the kernel (0, -6,
      or positive) reads as SI_QUEUE (-1); `signo`, `errno`, `pid` and
      `uid` are kept, and `int`/`ptr` are the siginfo's first union word
      (0 after kill(2); the exit status, for SIGCHLD; utime and stime are
      lost).  Other negative codes (sigqueue(3)'s SI_QUEUE, timers,
      SIGIO) are kept with all their fields.  Which signals go through
      another thread is the kernel's choice, so do not count on `code`
      saying SI_USER.
    * If the signal reaches the reader unblocked (someone unblocked it
      there), the handler blocks it again and queues it to the reader.
    * A fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS sent by
      the kernel) is not forwarded: the action from before is put back,
      and the faulting instruction runs again under it.  If the reader
      thread is gone (or in a fork(2)ed child) the action from before is
      put back too, and takes the signal.  SIGKILL and SIGSTOP are never
      forwarded (signalfd(2) ignores them too).
    * The last `close` for a signal puts back the action from before (if
      the handler is still the disposition), then unblocks it.

    Python signal handlers (`signal.signal`) and a queue for the same
    signal do not mix.  A handler set before `make` does not run while the
    queue is open (`signal.getsignal` still names it, and it is back after
    `close`).  One set while the queue is open replaces the forwarding:
    the signals that reach other threads then go to it (run in the main
    thread, as Python does), those that reach the reader still go to the
    queue, and `close` leaves that handler in place.  SIGINT is such a
    signal: a queue for it means no KeyboardInterrupt while it is open.

    In other threads (a ChildThread is a process of one thread), only the
    signal mask changes."""

    def __init__(self, thread: Thread, afd: AsyncFileDescriptor, mask: Sigset) -> None:
        self.thread = thread
        self.afd = afd
        self.mask = mask
        self._buffer: Pointer[SignalfdSiginfo] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else repr(self.afd.handle)
        return f"AsyncSignalQueue({self.mask!r}, {state})"

    @classmethod
    async def make(cls, thread: Thread, mask: Sigset) -> AsyncSignalQueue:
        """Block `mask` in `thread` and make a queue that reads those signals."""
        if not isinstance(mask, Sigset):
            raise TypeError(f"mask must be a Sigset, not {type(mask).__name__}")
        task = thread.task
        local = isinstance(task.sysif, LocalSyscall)
        if local:
            _check_reader(mask)
        mask_ptr = await thread.ptr(mask)
        old_ptr = await thread.malloc(Sigset)
        # Once blocked, the bookkeeping must happen, or close could not unblock.
        with anyio.CancelScope(shield=True):
            state = _blocked.setdefault(task, _Blocked())
            if local:
                # The mask from before, then the forwarding, then the block:
                # a signal arriving in between is forwarded (or, reaching
                # this thread, blocked by the handler), never lost.
                old_ptr = await task.sigprocmask(HowSIG.BLOCK, None, old_ptr)
                forwarded: list[int] = []
                try:
                    for sig in mask:
                        if state.counts[sig] == 0 and sig in _FORWARDABLE:
                            _raw.forward_signal(sig)
                            forwarded.append(sig)
                except BaseException:
                    for sig in forwarded:
                        _raw.unforward_signal(sig)
                    raise
                await task.sigprocmask(HowSIG.BLOCK, mask_ptr)
            else:
                old_ptr = await task.sigprocmask(HowSIG.BLOCK, mask_ptr, old_ptr)
            before = await old_ptr.read()
            for sig in mask:
                if state.counts[sig] == 0 and sig not in before:
                    state.ours.add(sig)
                state.counts[sig] += 1
        try:
            fd = await task.signalfd(mask_ptr, SFD.NONBLOCK)
            try:
                afd = await thread.make_afd(fd)
            except BaseException:
                await fd.close()
                raise
        except BaseException:
            await _release(thread, mask)
            raise
        queue = cls(thread, afd, mask)
        if local:
            _local_queues.add(queue)
            await _ensure_wakeup(thread)
        return queue

    async def read(self) -> SignalfdSiginfo:
        """The next signal, waiting for one if none is pending."""
        if self._closed:
            raise UseAfterConsumeError("the AsyncSignalQueue is closed")
        buf = self._buffer
        self._buffer = None  # a concurrent read allocates its own
        if buf is None:
            buf = await self.thread.malloc(SignalfdSiginfo)
        # A buffer of one struct: each read takes exactly one signal.  Closing
        # the fd wakes this with FDClosedWhileWaiting (a UseAfterConsumeError).
        valid, rest = await self.afd.read(buf)
        info = await valid.read()
        self._buffer = valid + rest
        return info

    async def close(self) -> None:
        """Close the signalfd and unblock the signals this queue blocked."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.afd.close()
        finally:
            await _release(self.thread, self.mask)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# The local queues, and the eventfd the forwarding handler writes after
# each forward.  The event loop may wait for our epoll fd in another OS
# thread (trio's guest mode, which anyio's pytest plugin uses, does), and
# there a signal pending for the reader thread alone does not make the
# signalfd readable; the eventfd's edge wakes the queues instead, which
# then read in the reader.  (A signal sent to the reader thread by others,
# tgkill(2), pends for it alone the same way; with such a loop it is read
# only at the next read or wakeup.)
_local_queues: weakref.WeakSet[AsyncSignalQueue] = weakref.WeakSet()
_wakeup: list[FileDescriptor] = []


async def _ensure_wakeup(thread: Thread) -> None:
    if _wakeup:
        return
    fd = await thread.task.eventfd(0, EFD.NONBLOCK)
    thread.task.fd_table.mark_private(fd.number)
    epoller = await thread.epoller()

    def woken() -> None:
        for queue in list(_local_queues):
            if not queue._closed and not queue.afd._status.closed:
                epoller.poke(queue.afd._status)

    await epoller.watch(fd, woken)
    if _wakeup:  # made meanwhile by another queue
        return
    _wakeup.append(fd)
    _raw.set_forward_wakeup(fd.number)


async def _release(thread: Thread, mask: Sigset) -> None:
    """One queue for `mask` is gone: stop forwarding and unblock what no
    queue needs any more (in that order: a signal unblocked first would
    reach the handler in the reader, which would block it again)."""
    task = thread.task
    local = isinstance(task.sysif, LocalSyscall)
    state = _blocked[task]
    unblock: list[int] = []
    for sig in mask:
        state.counts[sig] -= 1
        if state.counts[sig] == 0:
            del state.counts[sig]
            if local and sig in _FORWARDABLE:
                _raw.unforward_signal(sig)
            if sig in state.ours:
                state.ours.discard(sig)
                unblock.append(sig)
    if unblock:
        await task.sigprocmask(HowSIG.UNBLOCK, await thread.ptr(Sigset(unblock)))
