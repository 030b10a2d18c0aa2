"""<signal.h>: sending signals, the signal mask, and signal actions.

kill(2) is a method on what it signals: `Process.kill` (a pid > 0),
`ProcessGroup.kill` (kill(-pgid), or kill(0) for the caller's own group:
`task.make_process_group(pgid)` makes the handle) and `Task.kill_all`
(kill(-1): every process the caller may signal).  rt_sigqueueinfo(2) is a
method on `Process`; tgkill(2), rt_tgsigqueueinfo(2), sigprocmask(2),
sigaction(2), sigpending(2), sigsuspend(2), sigtimedwait(2) and
sigaltstack(2) are methods on `Task`, since they act on the calling process
(or thread) or name their targets by number.

`Siginfo` here is the whole `siginfo_t` as a signal carries it (signo,
errno, code, the sender's pid and uid, the sigval of a queued signal, and
the rest of the union as bytes), for sigtimedwait(2) to fill and
rt_sigqueueinfo(2) to send; rsyscall.sys.wait has its own, for what
waitid(2) reports of a child.


Deviations from glibc, all because the library makes the raw syscalls:

* `Sigset` is the kernel's signal set, 8 bytes on x86_64 (one bit per
  signal 1..64), which is what rt_sigprocmask(2) and rt_sigaction(2) take
  with `sigsetsize` 8.  glibc's `sigset_t` is 128 bytes, and no glibc
  function ever hands the kernel's layout to user code, so `Sigset` does
  not claim a glibc C type.
* `Sigaction` is the kernel's `struct sigaction` for rt_sigaction(2) (the
  one in <asm/signal.h>, 32 bytes: handler, flags, restorer, mask).
  glibc's `struct sigaction` in <signal.h> has another order and a
  128-byte mask, and the two headers cannot be included together, so
  `Sigaction` does not claim a C type either.  glibc's sigaction()
  translates between the two and fills in `sa_restorer` itself.  Here
  nothing is translated: on x86_64 a handler that is a function address
  needs `SA.RESTORER` and a restorer that calls rt_sigreturn, or the
  process crashes when the handler returns.  `Sighandler.DFL` and
  `Sighandler.IGN` need neither, and they are all `Task.sigaction`
  installs; a function address (a handler in C, or an action saved
  earlier) goes through `Task.unsafe_sigaction`, whose caller vouches for
  it.
* The `how` of sigprocmask(2) (SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK) is the
  enum `HowSIG`, named after the argument: the SIG_ prefix is shared with
  SIG_DFL/SIG_IGN (`Sighandler`), and `SIG` holds the signal numbers.
* glibc's SIGRTMIN and SIGRTMAX are functions (glibc keeps the first
  real-time signals for itself), so `SIG` has no real-time signals.  Pass
  them, and the null signal 0 of kill(2), as plain ints.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, ClassVar, Self, overload

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseProcess, BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_ULONG, FixedSize, Layout, PidT, Serializable, Struct, int_arg
from rsyscall.time import Timespec

__all__ = [
    "MINSIGSTKSZ",
    "NSIG",
    "SA",
    "SI",
    "SIG",
    "SIGSTKSZ",
    "SS",
    "Siginfo",
    "Stack",
    "HowSIG",
    "KillTask",
    "ProcessGroup",
    "Sigaction",
    "Sighandler",
    "SignalProcess",
    "SignalTask",
    "Sigset",
]

NSIG = 65
"""One more than the highest signal number (the kernel's _NSIG is 64, glibc's NSIG 65)."""


class SIG(IntEnum):
    """Signal numbers (C: SIGHUP...).  Aliases as in the headers."""

    HUP = 1
    INT = 2
    QUIT = 3
    ILL = 4
    TRAP = 5
    ABRT = 6
    IOT = 6
    BUS = 7
    FPE = 8
    KILL = 9
    USR1 = 10
    SEGV = 11
    USR2 = 12
    PIPE = 13
    ALRM = 14
    TERM = 15
    STKFLT = 16
    CHLD = 17
    CLD = 17
    CONT = 18
    STOP = 19
    TSTP = 20
    TTIN = 21
    TTOU = 22
    URG = 23
    XCPU = 24
    XFSZ = 25
    VTALRM = 26
    PROF = 27
    WINCH = 28
    IO = 29
    POLL = 29
    PWR = 30
    SYS = 31


class SA(IntFlag):
    """sigaction(2) flags (`sa_flags`).  RESTORER is from the kernel's
    <asm/signal.h>; glibc sets it itself and does not define it."""

    NONE = 0
    NOCLDSTOP = 0x00000001
    NOCLDWAIT = 0x00000002
    SIGINFO = 0x00000004
    RESTORER = 0x04000000
    ONSTACK = 0x08000000
    RESTART = 0x10000000
    NODEFER = 0x40000000
    RESETHAND = 0x80000000


class SI(IntEnum):
    """`si_code` values any signal may carry: who sent it (C: SI_USER...).
    Values below 0 come from user space; rt_sigqueueinfo(2) takes only
    those (others are refused with EPERM)."""

    USER = 0
    KERNEL = 0x80
    QUEUE = -1
    TIMER = -2
    MESGQ = -3
    ASYNCIO = -4
    SIGIO = -5
    TKILL = -6
    DETHREAD = -7
    ASYNCNL = -60


class SS(IntFlag):
    """sigaltstack(2) `ss_flags`.  AUTODISARM is from the kernel's
    <linux/signal.h>; glibc does not define it."""

    NONE = 0
    ONSTACK = 1
    DISABLE = 2
    AUTODISARM = 1 << 31


MINSIGSTKSZ = 2048
"""The smallest alternate signal stack sigaltstack(2) accepts (ENOMEM
below), the kernel's constant.  (glibc's MINSIGSTKSZ is sysconf(_SC_MINSIGSTKSZ)
with _GNU_SOURCE: what this CPU's signal frame needs, which may be more.)"""

SIGSTKSZ = 8192
"""The kernel's suggested alternate signal stack size."""


class HowSIG(IntEnum):
    """sigprocmask(2) `how` (C: SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK)."""

    BLOCK = 0
    UNBLOCK = 1
    SETMASK = 2


class Sighandler(IntEnum):
    """The special handler values (C: SIG_DFL, SIG_IGN)."""

    DFL = 0
    IGN = 1


_SIGSET_SIZE = 8


def _signum(sig: object) -> int:
    """Check a signal argument of a syscall; the kernel judges its value."""
    if not isinstance(sig, int) or isinstance(sig, bool):
        raise TypeError(f"a signal must be a SIG or an int, not {type(sig).__name__}")
    return sig


def _as_signal(sig: object) -> SIG | int:
    if not isinstance(sig, int) or isinstance(sig, bool):
        raise TypeError(f"a Sigset holds signal numbers, not {type(sig).__name__}")
    if not 1 <= sig < NSIG:
        raise ValueError(f"signal {sig} outside 1..{NSIG - 1}")
    try:
        return SIG(sig)
    except ValueError:
        return int(sig)  # a real-time signal


class Sigset(frozenset[int], Serializable, FixedSize):
    """A set of signals, as the kernel's 8-byte signal set (bit n-1 for signal n).

    Holds `SIG` members, and plain ints for the real-time signals (32..64)
    `SIG` has no names for.  Immutable, so a `WrittenPointer`'s `.value`
    stays true.  Set operators return plain frozensets: wrap the result in
    `Sigset(...)` to write it."""

    __slots__ = ()

    def __new__(cls, signals: Iterable[SIG | int] = ()) -> Self:
        return super().__new__(cls, [_as_signal(sig) for sig in signals])

    def __repr__(self) -> str:
        names = ", ".join(
            f"SIG.{sig.name}" if isinstance(sig, SIG) else str(sig) for sig in sorted(self)
        )
        return f"Sigset({{{names}}})" if names else "Sigset()"

    @classmethod
    def sizeof(cls) -> int:
        return _SIGSET_SIZE

    def bits(self) -> int:
        """The set as the kernel's bitmask: bit n-1 for signal n."""
        bits = 0
        for sig in self:
            bits |= 1 << (sig - 1)
        return bits

    @classmethod
    def from_bits(cls, bits: int) -> Self:
        """The set of the kernel's bitmask `bits`."""
        return cls(n + 1 for n in range(NSIG - 1) if bits >> n & 1)

    def to_bytes(self) -> bytes:
        return self.bits().to_bytes(_SIGSET_SIZE, "little")

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < _SIGSET_SIZE:
            raise ValueError(f"a Sigset needs {_SIGSET_SIZE} bytes, got {len(data)}")
        return cls.from_bits(int.from_bytes(data[:_SIGSET_SIZE], "little"))


def _handler(value: int) -> Sighandler | int:
    return Sighandler(value) if value in (Sighandler.DFL, Sighandler.IGN) else value



class Sigaction(Serializable, FixedSize):
    """The kernel's `struct sigaction` for rt_sigaction(2), from <asm/signal.h>.

    `handler` is `Sighandler.DFL`, `Sighandler.IGN` or a function address
    (which only `Task.unsafe_sigaction` installs); `mask` is the `Sigset`
    blocked while the handler runs.  This is not glibc's `struct
    sigaction` (see the module docstring)."""

    __slots__ = ("flags", "handler", "mask", "restorer")
    # sa_handler, sa_flags, sa_restorer, sa_mask at offsets 0, 8, 16, 24.
    _packer = struct.Struct("<QQQQ")

    def __init__(
        self,
        handler: Sighandler | int,
        flags: SA = SA.NONE,
        restorer: int = 0,
        mask: Iterable[SIG | int] = (),
    ) -> None:
        self.handler = _handler(int_arg("handler", handler, C_ULONG))
        self.flags = SA(int_arg("flags", flags, C_ULONG))
        self.restorer = int_arg("restorer", restorer, C_ULONG)
        self.mask = mask if isinstance(mask, Sigset) else Sigset(mask)

    def __repr__(self) -> str:
        handler = self.handler
        shown = f"Sighandler.{handler.name}" if isinstance(handler, Sighandler) else hex(handler)
        return (
            f"Sigaction({shown}, flags={self.flags!r}, "
            f"restorer={self.restorer:#x}, mask={self.mask!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sigaction):
            return NotImplemented
        return (self.handler, self.flags, self.restorer, self.mask) == (
            other.handler,
            other.flags,
            other.restorer,
            other.mask,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    @classmethod
    def sizeof(cls) -> int:
        return cls._packer.size

    def to_bytes(self) -> bytes:
        if not isinstance(self.mask, Sigset):
            raise TypeError(f"mask must be a Sigset, not {type(self.mask).__name__}")
        return self._packer.pack(
            int_arg("handler", self.handler, C_ULONG),
            int_arg("flags", self.flags, C_ULONG),
            int_arg("restorer", self.restorer, C_ULONG),
            self.mask.bits(),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls._packer.size
        if len(data) < size:
            raise ValueError(f"a Sigaction needs {size} bytes, got {len(data)}")
        handler, flags, restorer, mask = cls._packer.unpack(data[:size])
        return cls(handler, SA(flags), restorer, Sigset.from_bits(mask))




_SIGINFO_TAIL = 96


class Siginfo(Struct):
    """`siginfo_t` as a signal carries it: `signo`, `errno`, `code` (an
    `SI` value, or a signal-specific one such as rsyscall.sys.wait.CLD for
    SIGCHLD), the sender's `pid` and `uid`, `value` (the `union sigval`
    of a queued signal, as the 64-bit `sival_ptr`: `sival_int` is its low
    32 bits), and `rest`, the 96 bytes of the union after those (the
    fields of other kinds of signal: a SIGCHLD's status is the low half of
    `value`, see `status`).

    Write one with code SI.QUEUE for rt_sigqueueinfo(2); read one that
    sigtimedwait(2) filled."""

    __slots__ = ("code", "errno", "pid", "rest", "signo", "uid", "value")
    layout: ClassVar[Layout] = Layout(
        "siginfo_t",
        [
            ("si_signo", "i"),
            ("si_errno", "i"),
            ("si_code", "i"),
            ("_pad", "4x"),
            ("si_pid", "i"),
            ("si_uid", "I"),
            ("si_value", "Q"),
            ("_rest", f"{_SIGINFO_TAIL}s"),
        ],
    )

    def __init__(
        self,
        signo: SIG | int,
        code: SI | int = SI.QUEUE,
        pid: int = 0,
        uid: int = 0,
        value: int = 0,
        errno: int = 0,
        rest: bytes = bytes(_SIGINFO_TAIL),
    ) -> None:
        self.signo = _as_number(signo)
        self.code = _code(int_arg("code", code, (-(1 << 31), (1 << 31) - 1)))
        self.pid = int_arg("pid", pid, (-(1 << 31), (1 << 31) - 1))
        self.uid = int_arg("uid", uid, (0, (1 << 32) - 1))
        self.value = int_arg("value", value, C_ULONG)
        self.errno = int_arg("errno", errno, (-(1 << 31), (1 << 31) - 1))
        if not isinstance(rest, bytes) or len(rest) > _SIGINFO_TAIL:
            raise TypeError(f"rest must be bytes, at most {_SIGINFO_TAIL} of them")
        self.rest = rest.ljust(_SIGINFO_TAIL, b"\0")

    @property
    def status(self) -> int:
        """`si_status` of a SIGCHLD: the low, signed, 32 bits of `value`."""
        low = self.value & 0xFFFFFFFF
        return low - (1 << 32) if low >= 1 << 31 else low

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            int_arg("signo", self.signo, (-(1 << 31), (1 << 31) - 1)),
            int_arg("errno", self.errno, (-(1 << 31), (1 << 31) - 1)),
            int_arg("code", self.code, (-(1 << 31), (1 << 31) - 1)),
            int_arg("pid", self.pid, (-(1 << 31), (1 << 31) - 1)),
            int_arg("uid", self.uid, (0, (1 << 32) - 1)),
            int_arg("value", self.value, C_ULONG),
            self.rest,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a siginfo_t is {size} bytes, got {len(data)}")
        signo, errno, code, pid, uid, value, rest = cls.layout.struct.unpack(data[:size])
        return cls(signo, code, pid, uid, value, errno, rest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Siginfo):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (f"Siginfo(signo={self.signo!r}, code={self.code!r}, pid={self.pid}, "
                f"uid={self.uid}, value={self.value:#x})")


def _as_number(sig: object) -> SIG | int:
    value = int_arg("signo", sig, (0, NSIG - 1))
    try:
        return SIG(value)
    except ValueError:
        return value


def _code(code: int) -> SI | int:
    try:
        return SI(code)
    except ValueError:
        return code


class Stack(Struct):
    """`stack_t` for sigaltstack(2): the alternate signal stack's lowest
    address `sp`, its `flags` (SS) and its `size`.

    `sp` is a plain address (the kernel reports one back); `Stack.of`
    makes one for the memory of a pointer."""

    __slots__ = ("flags", "size", "sp")
    layout: ClassVar[Layout] = Layout(
        "stack_t", [("ss_sp", "Q"), ("ss_flags", "i"), ("_pad", "4x"), ("ss_size", "Q")]
    )

    def __init__(self, sp: int, flags: SS = SS.NONE, size: int = 0) -> None:
        self.sp = int_arg("sp", sp, C_ULONG)
        self.flags = SS(int_arg("flags", flags, (-(1 << 31), (1 << 32) - 1)) & 0xFFFFFFFF)
        self.size = int_arg("size", size, C_ULONG)

    @classmethod
    def of(cls, memory: Pointer[Any], flags: SS = SS.NONE) -> Self:
        """A Stack for the memory `memory` points to (not consumed: it must
        stay allocated as long as the stack is installed)."""
        if not isinstance(memory, Pointer):
            raise TypeError(f"memory must be a Pointer, not {type(memory).__name__}")
        return cls(memory.address, flags, memory.size())

    def to_bytes(self) -> bytes:
        flags = int(self.flags)
        return self.layout.struct.pack(
            self.sp, flags - (1 << 32) if flags >= 1 << 31 else flags, self.size)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a stack_t is {size} bytes, got {len(data)}")
        sp, flags, length = cls.layout.struct.unpack(data[:size])
        return cls(sp, SS(flags & 0xFFFFFFFF), length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stack):
            return NotImplemented
        return (self.sp, self.flags, self.size) == (other.sp, other.flags, other.size)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Stack(sp={self.sp:#x}, flags={self.flags!r}, size={self.size})"


_SYS_rt_sigprocmask = int(SYS.rt_sigprocmask)
_SYS_rt_sigaction = int(SYS.rt_sigaction)
_SYS_rt_sigpending = int(SYS.rt_sigpending)
_SYS_rt_sigsuspend = int(SYS.rt_sigsuspend)
_SYS_rt_sigtimedwait = int(SYS.rt_sigtimedwait)


class SignalTask(BaseTask):
    __slots__ = ()

    async def tgkill(self, tgid: PidT, tid: PidT, sig: SIG | int) -> None:
        """tgkill(2): send `sig` to thread `tid` of thread group `tgid`."""
        await self.sysif.syscall(SYS.tgkill, tgid, tid, _signum(sig))

    async def _in_out(
        self,
        number: int,
        first: int,
        new: ReadablePointer[Any] | None,
        old: Pointer[Any] | None,
        cls: type,
        size: int,
    ) -> ReadablePointer[Any] | None:
        """A syscall(first, new, old, sizeof(sigset)) that reads `new` and
        fills `old`, either of which may be absent."""
        new_address = 0
        if new is not None:
            check_points_to(new, cls)
            new_address = borrow(new, self, size).address
        if old is None:
            await self.sysif.syscall(number, first, new_address, 0, _SIGSET_SIZE)
            return None
        check_points_to(old, cls)
        alloc = take(old, self, size)
        try:
            await self.sysif.syscall(number, first, new_address, alloc.address, _SIGSET_SIZE)
        except BaseException:
            restore(old, alloc)
            raise
        return old._readable(alloc, self)

    @overload
    async def sigprocmask(
        self, how: HowSIG, newset: ReadablePointer[Sigset] | None = None, oldset: None = None
    ) -> None: ...
    @overload
    async def sigprocmask(
        self, how: HowSIG, newset: ReadablePointer[Sigset] | None, oldset: Pointer[Sigset]
    ) -> ReadablePointer[Sigset]: ...
    async def sigprocmask(
        self,
        how: HowSIG,
        newset: ReadablePointer[Sigset] | None = None,
        oldset: Pointer[Sigset] | None = None,
    ) -> ReadablePointer[Sigset] | None:
        """sigprocmask(2), as the raw rt_sigprocmask: change the signal mask
        of the calling thread by `how` with `newset` (None: leave it), and
        fill `oldset` (consumed) with the mask from before.

        `newset` may be any readable pointer to a Sigset, such as an
        `oldset` returned earlier, to restore that mask."""
        if not isinstance(how, int) or isinstance(how, bool):
            raise TypeError(f"how must be a HowSIG, not {type(how).__name__}")
        return await self._in_out(_SYS_rt_sigprocmask, how, newset, oldset, Sigset, _SIGSET_SIZE)

    @overload
    async def sigaction(
        self, signum: SIG | int, act: ReadablePointer[Sigaction] | None, oldact: None = None
    ) -> None: ...
    @overload
    async def sigaction(
        self, signum: SIG | int, act: ReadablePointer[Sigaction] | None, oldact: Pointer[Sigaction]
    ) -> ReadablePointer[Sigaction]: ...
    async def sigaction(
        self,
        signum: SIG | int,
        act: ReadablePointer[Sigaction] | None,
        oldact: Pointer[Sigaction] | None = None,
    ) -> ReadablePointer[Sigaction] | None:
        """sigaction(2), as the raw rt_sigaction: set the action for
        `signum` to `act` (None: leave it), and fill `oldact` (consumed)
        with the action from before.

        `act` must hold `Sighandler.DFL` or `Sighandler.IGN` (ValueError
        otherwise, before any syscall): a handler that is a function
        address runs on the signal's arrival in whatever thread takes it,
        and a wrong one crashes the process, so installing one is
        `unsafe_sigaction`'s.  An `oldact` returned earlier can be passed
        as `act` to restore it, if it is DFL or IGN.  This is the kernel's
        call, not glibc's: see `Sigaction`."""
        number = _signum(signum)
        if act is not None and isinstance(act, ReadablePointer):
            check_points_to(act, Sigaction)
            handler = await _handler_of(self, act)
            if handler not in (Sighandler.DFL, Sighandler.IGN):
                raise ValueError(
                    f"act's handler {handler:#x} is a function address; sigaction installs only "
                    "Sighandler.DFL and Sighandler.IGN (unsafe_sigaction installs handlers)"
                )
        return await self._in_out(
            _SYS_rt_sigaction, number, act, oldact, Sigaction, Sigaction.sizeof()
        )

    @overload
    async def unsafe_sigaction(
        self, signum: SIG | int, act: ReadablePointer[Sigaction] | None, oldact: None = None
    ) -> None: ...
    @overload
    async def unsafe_sigaction(
        self, signum: SIG | int, act: ReadablePointer[Sigaction] | None, oldact: Pointer[Sigaction]
    ) -> ReadablePointer[Sigaction]: ...
    async def unsafe_sigaction(
        self,
        signum: SIG | int,
        act: ReadablePointer[Sigaction] | None,
        oldact: Pointer[Sigaction] | None = None,
    ) -> ReadablePointer[Sigaction] | None:
        """sigaction(2), as the raw rt_sigaction, with any handler: as
        `sigaction`, but `act` may name a function address (to restore an
        action saved earlier, such as the Python interpreter's own, or to
        install a handler written in C).

        Unsafe: the caller must make sure that `act.handler` is the address
        of a function in this task's address space that stays there as
        long as it is installed, that is safe to run at any instruction of
        any thread of the process (async-signal-safe, on whatever stack
        SA.ONSTACK and the thread's sigaltstack choose), and that with a
        handler on x86_64 `flags` has SA.RESTORER and `restorer` is the
        address of code that makes the rt_sigreturn syscall (glibc's
        __restore_rt; the kernel has no default).  A wrong address or a
        missing restorer crashes the process when the signal arrives: the
        Python interpreter, from the local thread or a child thread that
        shares its memory."""
        return await self._in_out(
            _SYS_rt_sigaction, _signum(signum), act, oldact, Sigaction, Sigaction.sizeof()
        )


    async def sigpending(self, set: Pointer[Sigset]) -> ReadablePointer[Sigset]:
        """sigpending(2), as the raw rt_sigpending: fill `set` (consumed)
        with the signals pending for the calling thread or its process
        (blocked ones that have arrived)."""
        check_points_to(set, Sigset)
        alloc = take(set, self, _SIGSET_SIZE)
        try:
            await self.sysif.syscall(_SYS_rt_sigpending, alloc.address, _SIGSET_SIZE)
        except BaseException:
            restore(set, alloc)
            raise
        return set._readable(alloc, self)

    async def sigsuspend(self, mask: ReadablePointer[Sigset]) -> None:
        """sigsuspend(2), as the raw rt_sigsuspend: replace the calling
        thread's signal mask with `mask` and wait until a signal handler
        has run (then the old mask is back).  The syscall always fails with
        EINTR, which is its success here: this returns.  A signal whose
        action ends the process ends it (the call never returns), and an
        ignored one does not wake it."""
        check_points_to(mask, Sigset)
        address = borrow(mask, self, _SIGSET_SIZE).address
        try:
            await self.sysif.syscall(_SYS_rt_sigsuspend, address, _SIGSET_SIZE)
        except InterruptedError:
            return

    @overload
    async def sigtimedwait(
        self, set: ReadablePointer[Sigset], info: None = None,
        timeout: ReadablePointer[Timespec] | None = None,
    ) -> SIG | int: ...
    @overload
    async def sigtimedwait(
        self, set: ReadablePointer[Sigset], info: Pointer[Siginfo],
        timeout: ReadablePointer[Timespec] | None = None,
    ) -> tuple[SIG | int, ReadablePointer[Siginfo]]: ...
    async def sigtimedwait(
        self,
        set: ReadablePointer[Sigset],
        info: Pointer[Siginfo] | None = None,
        timeout: ReadablePointer[Timespec] | None = None,
    ) -> SIG | int | tuple[SIG | int, ReadablePointer[Siginfo]]:
        """sigtimedwait(2), as the raw rt_sigtimedwait: take one pending
        signal of `set` (which should be blocked, or it may be delivered
        instead), waiting for one for at most `timeout` (None: without a
        limit; a zero Timespec: only look).  Returns its number, and with
        `info` (consumed) the pointer to its `Siginfo`.

        With nothing pending by the timeout it raises BlockingIOError
        (EAGAIN); a handler running meanwhile gives InterruptedError."""
        check_points_to(set, Sigset)
        set_address = borrow(set, self, _SIGSET_SIZE).address
        timeout_address = 0
        if timeout is not None:
            check_points_to(timeout, Timespec)
            timeout_address = borrow(timeout, self, Timespec.sizeof()).address
        if info is None:
            number = await self.sysif.syscall(
                _SYS_rt_sigtimedwait, set_address, 0, timeout_address, _SIGSET_SIZE)
            return _as_number(number)
        check_points_to(info, Siginfo)
        alloc = take(info, self, Siginfo.sizeof())
        try:
            number = await self.sysif.syscall(
                _SYS_rt_sigtimedwait, set_address, alloc.address, timeout_address, _SIGSET_SIZE)
        except BaseException:
            restore(info, alloc)
            raise
        return _as_number(number), info._readable(alloc, self)

    async def rt_tgsigqueueinfo(
        self, tgid: PidT, tid: PidT, sig: SIG | int, info: ReadablePointer[Siginfo]
    ) -> None:
        """rt_tgsigqueueinfo(2): queue `sig` with the data of `info` (its
        code must be negative, such as SI.QUEUE: EPERM otherwise, unless
        sending to oneself) to thread `tid` of thread group `tgid`."""
        check_points_to(info, Siginfo)
        address = borrow(info, self, Siginfo.sizeof()).address
        await self.sysif.syscall(SYS.rt_tgsigqueueinfo, tgid, tid, _signum(sig), address)

    @overload
    async def sigaltstack(
        self, ss: ReadablePointer[Stack] | None, old_ss: None = None
    ) -> None: ...
    @overload
    async def sigaltstack(
        self, ss: ReadablePointer[Stack] | None, old_ss: Pointer[Stack]
    ) -> ReadablePointer[Stack]: ...
    async def sigaltstack(
        self, ss: ReadablePointer[Stack] | None, old_ss: Pointer[Stack] | None = None
    ) -> ReadablePointer[Stack] | None:
        """sigaltstack(2): set the calling thread's alternate signal stack
        to `ss` (None: leave it; flags SS.DISABLE: none), where handlers
        installed with SA.ONSTACK run, and fill `old_ss` (consumed) with
        the one from before (flags SS.DISABLE if there was none,
        SS.ONSTACK if the thread is running on it).

        The memory `ss` names must stay allocated while it is installed
        and a handler may run on it; a stack smaller than MINSIGSTKSZ is
        refused with ENOMEM."""
        new_address = 0
        if ss is not None:
            check_points_to(ss, Stack)
            new_address = borrow(ss, self, Stack.sizeof()).address
        if old_ss is None:
            await self.sysif.syscall(SYS.sigaltstack, new_address, 0)
            return None
        check_points_to(old_ss, Stack)
        alloc = take(old_ss, self, Stack.sizeof())
        try:
            await self.sysif.syscall(SYS.sigaltstack, new_address, alloc.address)
        except BaseException:
            restore(old_ss, alloc)
            raise
        return old_ss._readable(alloc, self)


async def _handler_of(task: BaseTask, act: ReadablePointer[Sigaction]) -> int:
    """The handler `act` holds: its `.value`'s for a WrittenPointer, read
    from memory for another readable pointer (without consuming a
    LinearPointer)."""
    if isinstance(act, WrittenPointer) and isinstance(act.value, Sigaction):
        return act.value.handler
    alloc = borrow(act, task, Sigaction.sizeof())
    data = await task.space.transport.read(alloc.address, Sigaction.sizeof())
    return Sigaction.from_bytes(data).handler


class SignalProcess(BaseProcess):
    __slots__ = ()

    async def kill(self, sig: SIG | int) -> None:
        """kill(2): send `sig` to this process (0 only checks that it exists)."""
        await self.task.sysif.syscall(SYS.kill, self.pid, _signum(sig))

    async def rt_sigqueueinfo(self, sig: SIG | int, info: ReadablePointer[Siginfo]) -> None:
        """rt_sigqueueinfo(2): queue `sig` to this process with the data of
        `info` (`value` arrives with it; its code must be negative, such as
        SI.QUEUE, or the kernel refuses with EPERM, unless the process is
        the caller)."""
        check_points_to(info, Siginfo)
        address = borrow(info, self.task, Siginfo.sizeof()).address
        await self.task.sysif.syscall(SYS.rt_sigqueueinfo, self.pid, _signum(sig), address)

# ---- kill(2) of a process group, and of every process ----


class ProcessGroup:
    """A process group, as seen from one task: the target of kill(2) with
    a negative pid (`-pgid`), or with pid 0 for `pgid` 0, which means the
    calling process's own group whatever its id.  Make one with
    `task.make_process_group(pgid)`."""

    __slots__ = ("pgid", "task")

    def __init__(self, task: BaseTask, pgid: int) -> None:
        if not isinstance(pgid, int) or isinstance(pgid, bool):
            raise TypeError(f"a process group id is an int, not {type(pgid).__name__}")
        if not 0 <= pgid < 1 << 31:
            raise ValueError(f"not a process group id: {pgid!r}")
        self.task = task
        self.pgid = int(pgid)

    def __repr__(self) -> str:
        return f"ProcessGroup(pgid={self.pgid})" if self.pgid else "ProcessGroup(own)"

    async def kill(self, sig: SIG | int) -> None:
        """kill(2) of this process group: send `sig` to every process in it
        that the task may signal (0 only checks that one exists)."""
        await self.task.sysif.syscall(SYS.kill, -self.pgid, _signum(sig))


class KillTask(BaseTask):
    __slots__ = ()

    def make_process_group(self, pgid: int = 0) -> ProcessGroup:
        """A `ProcessGroup` handle for group `pgid` as this task's pid
        namespace sees it; 0 (the default): this process's own group."""
        return ProcessGroup(self, pgid)

    async def kill_all(self, sig: SIG | int) -> None:
        """kill(2) with pid -1: send `sig` to every process this one may
        signal, except itself and the init process of its pid namespace
        (processes outside that namespace are not reached).  Raises
        ProcessLookupError if there is none."""
        await self.sysif.syscall(SYS.kill, -1, _signum(sig))


# ---- end of kill(2) of groups ----
