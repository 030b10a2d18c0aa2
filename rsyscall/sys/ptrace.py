"""<sys/ptrace.h>: ptrace(2), one method per request.

The requests that act on a tracee are methods of `Process`, made by the
process handle's task, which is the tracer: `await process.ptrace_seize(
PTRACE_O.TRACESYSGOOD)`, `await process.ptrace_syscall()`, `await
process.ptrace_getregs(await thread.malloc(UserRegsStruct))`.  The kernel
accepts them only from the OS thread that attached, so the tracer is best
a thread of its own (a child thread: `thread.clone()`): the local thread's
syscalls come from whichever OS thread runs the event loop, and its
blocking waitid would block the loop.  PTRACE_TRACEME is a
method of `Task`; `Task.unsafe_ptrace` is the raw call for the rest.

**Stops.**  A tracee's stops (signal-delivery, group, syscall-entry and
-exit, PTRACE_EVENT stops) are reported to the tracer by waitid(2) with
code `CLD.TRAPPED` and, as `status`, what waitpid(2) would put in bits 8
and up of its status: the signal, with PTRACE_EVENT_* << 8 for an event
stop and 0x80 added for a syscall stop under PTRACE_O.TRACESYSGOOD (see
`stop_signal`, `stop_event`).  The kernel reports them to the tracer
with or without W.STOPPED.  `AsyncChildProcess.waitpid` does not take a
stop notification meant for the tracer's own waitid, as long as the child
was attached through these methods on its `ChildProcess` handle.  A
tracer thread blocked in waitid makes no other syscall meanwhile; where
the tracee's own calls may need its parent (a child thread on another
host makes its new connections through its parent), poll with W.NOHANG.

**Registers and memory.**  Reading them is safe; writing them is not:
every child the library makes shares the memory of its parent, so a
tracee's registers or memory changed at random can crash or corrupt the
tracer's process (the Python interpreter itself, for children of the
local thread).  Those requests are `unsafe_`.

Structs are the x86_64 ones of <sys/user.h> (`UserRegsStruct`,
`UserFpregsStruct`) and of <sys/ptrace.h> (`PtraceSyscallInfo`, glibc's
`struct __ptrace_syscall_info`, the kernel's `struct ptrace_syscall_info`);
the note types of PTRACE_GETREGSET are `NT`, from <elf.h>.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Self, TypeVar

from rsyscall._enum import IntEnum, IntFlag
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
from rsyscall.signal import SIG, Siginfo, Sigset
from rsyscall.struct import C_ULONG, Layout, Serializable, Struct, UInt64, int_arg

__all__ = [
    "NT",
    "PTRACE",
    "PTRACE_EVENT",
    "PTRACE_O",
    "PTRACE_PEEKSIGINFO",
    "PTRACE_SYSCALL_INFO",
    "PtracePeeksiginfoArgs",
    "PtraceProcess",
    "SiginfoList",
    "PtraceSyscallInfo",
    "PtraceTask",
    "UserFpregsStruct",
    "UserRegsStruct",
    "stop_event",
    "stop_signal",
]

T = TypeVar("T")


class PTRACE(IntEnum):
    """ptrace(2) requests (C: PTRACE_TRACEME...), for `Task.unsafe_ptrace`;
    the methods of `PtraceProcess` make them typed."""

    TRACEME = 0
    PEEKTEXT = 1
    PEEKDATA = 2
    PEEKUSER = 3
    POKETEXT = 4
    POKEDATA = 5
    POKEUSER = 6
    CONT = 7
    KILL = 8
    SINGLESTEP = 9
    GETREGS = 12
    SETREGS = 13
    GETFPREGS = 14
    SETFPREGS = 15
    ATTACH = 16
    DETACH = 17
    GETFPXREGS = 18
    SETFPXREGS = 19
    SYSCALL = 24
    GET_THREAD_AREA = 25
    SET_THREAD_AREA = 26
    ARCH_PRCTL = 30
    SYSEMU = 31
    SYSEMU_SINGLESTEP = 32
    SINGLEBLOCK = 33
    SETOPTIONS = 0x4200
    GETEVENTMSG = 0x4201
    GETSIGINFO = 0x4202
    SETSIGINFO = 0x4203
    GETREGSET = 0x4204
    SETREGSET = 0x4205
    SEIZE = 0x4206
    INTERRUPT = 0x4207
    LISTEN = 0x4208
    PEEKSIGINFO = 0x4209
    GETSIGMASK = 0x420A
    SETSIGMASK = 0x420B
    SECCOMP_GET_FILTER = 0x420C
    SECCOMP_GET_METADATA = 0x420D
    GET_SYSCALL_INFO = 0x420E
    GET_RSEQ_CONFIGURATION = 0x420F


class PTRACE_O(IntFlag):
    """PTRACE_SETOPTIONS / PTRACE_SEIZE options (C: PTRACE_O_*)."""

    NONE = 0
    TRACESYSGOOD = 0x00000001
    TRACEFORK = 0x00000002
    TRACEVFORK = 0x00000004
    TRACECLONE = 0x00000008
    TRACEEXEC = 0x00000010
    TRACEVFORKDONE = 0x00000020
    TRACEEXIT = 0x00000040
    TRACESECCOMP = 0x00000080
    EXITKILL = 0x00100000
    SUSPEND_SECCOMP = 0x00200000


class PTRACE_EVENT(IntEnum):
    """The event of a PTRACE_EVENT stop, in bits 8-15 of its stop status
    (C: PTRACE_EVENT_*); STOP is the stop of PTRACE_INTERRUPT and of group
    stops of a seized tracee."""

    FORK = 1
    VFORK = 2
    CLONE = 3
    EXEC = 4
    VFORK_DONE = 5
    EXIT = 6
    SECCOMP = 7
    STOP = 128


class PTRACE_SYSCALL_INFO(IntEnum):
    """`PtraceSyscallInfo.op`: which kind of stop the tracee is in."""

    NONE = 0
    ENTRY = 1
    EXIT = 2
    SECCOMP = 3


class NT(IntEnum):
    """ELF note types (<elf.h>): the register sets of PTRACE_GETREGSET."""

    PRSTATUS = 1
    PRFPREG = 2
    PRPSINFO = 3
    TASKSTRUCT = 4
    AUXV = 6
    SIGINFO = 0x53494749
    FILE = 0x46494C45
    PRXFPREG = 0x46E62B7F
    X86_XSTATE = 0x202


def stop_signal(status: int) -> SIG | int:
    """The signal of a ptrace stop, from the `status` waitid reported for
    it (CLD.TRAPPED): SIGTRAP for syscall and event stops (with the 0x80
    of PTRACE_O.TRACESYSGOOD taken off), the delivered signal otherwise."""
    number = status & 0x7F
    try:
        return SIG(number)
    except ValueError:
        return number


def stop_event(status: int) -> PTRACE_EVENT | None:
    """The PTRACE_EVENT of an event stop, from its waitid `status`, or None
    for another kind of stop."""
    event = (status >> 8) & 0xFF
    try:
        return PTRACE_EVENT(event) if event else None
    except ValueError:
        return None


_REGS = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
    "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
    "es", "fs", "gs",
)


class UserRegsStruct(Struct):
    """`struct user_regs_struct` (<sys/user.h>, x86_64): the general
    registers, as PTRACE_GETREGS and NT.PRSTATUS give them.  At a syscall
    stop `orig_rax` is the syscall number, `rax` its result at the exit
    stop (-ENOSYS at the entry stop), and `rdi`, `rsi`, `rdx`, `r10`,
    `r8`, `r9` its arguments.  Fields not given are 0."""

    __slots__ = _REGS
    r15: int
    r14: int
    r13: int
    r12: int
    rbp: int
    rbx: int
    r11: int
    r10: int
    r9: int
    r8: int
    rax: int
    rcx: int
    rdx: int
    rsi: int
    rdi: int
    orig_rax: int
    rip: int
    cs: int
    eflags: int
    rsp: int
    ss: int
    fs_base: int
    gs_base: int
    ds: int
    es: int
    fs: int
    gs: int
    layout: ClassVar[Layout] = Layout(
        "struct user_regs_struct", [(name, "Q") for name in _REGS]
    )

    def __init__(self, **registers: int) -> None:
        unknown = set(registers) - set(_REGS)
        if unknown:
            raise TypeError(f"UserRegsStruct has no registers {sorted(unknown)}")
        for name in _REGS:
            setattr(self, name, int_arg(f"UserRegsStruct.{name}", registers.get(name, 0), C_ULONG))

    def signed(self, name: str) -> int:
        """Register `name` as a signed 64-bit value (a syscall's result in
        `rax`: -errno on failure)."""
        value = int(getattr(self, name))
        return value - (1 << 64) if value >= 1 << 63 else value

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            *(int_arg(f"UserRegsStruct.{name}", getattr(self, name), C_ULONG) for name in _REGS)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a user_regs_struct is {size} bytes, got {len(data)}")
        return cls(**dict(zip(_REGS, cls.layout.struct.unpack(data[:size]), strict=True)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserRegsStruct):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (f"UserRegsStruct(orig_rax={self.orig_rax}, rax={self.signed('rax')}, "
                f"rip={self.rip:#x}, rsp={self.rsp:#x})")


class UserFpregsStruct(Struct):
    """`struct user_fpregs_struct` (<sys/user.h>, x86_64): the x87 and SSE
    state, as PTRACE_GETFPREGS gives it (the FXSAVE area).  `st_space`
    holds the eight x87 registers (16 bytes each), `xmm_space` the sixteen
    XMM registers (16 bytes each), as bytes."""

    __slots__ = ("cwd", "fop", "ftw", "mxcr_mask", "mxcsr", "rdp", "rip", "st_space", "swd",
                 "xmm_space")
    cwd: int
    swd: int
    ftw: int
    fop: int
    rip: int
    rdp: int
    mxcsr: int
    mxcr_mask: int
    st_space: bytes
    xmm_space: bytes
    layout: ClassVar[Layout] = Layout(
        "struct user_fpregs_struct",
        [
            ("cwd", "H"), ("swd", "H"), ("ftw", "H"), ("fop", "H"), ("rip", "Q"), ("rdp", "Q"),
            ("mxcsr", "I"), ("mxcr_mask", "I"), ("st_space", "128s"), ("xmm_space", "256s"),
            ("padding", "96s"),
        ],
    )
    _INTS: ClassVar[tuple[tuple[str, tuple[int, int]], ...]] = (
        ("cwd", (0, 0xFFFF)), ("swd", (0, 0xFFFF)), ("ftw", (0, 0xFFFF)), ("fop", (0, 0xFFFF)),
        ("rip", C_ULONG), ("rdp", C_ULONG), ("mxcsr", (0, 0xFFFFFFFF)),
        ("mxcr_mask", (0, 0xFFFFFFFF)),
    )

    def __init__(
        self, cwd: int = 0, swd: int = 0, ftw: int = 0, fop: int = 0, rip: int = 0,
        rdp: int = 0, mxcsr: int = 0, mxcr_mask: int = 0, st_space: bytes = bytes(128),
        xmm_space: bytes = bytes(256),
    ) -> None:
        for (name, limits), value in zip(
            self._INTS, (cwd, swd, ftw, fop, rip, rdp, mxcsr, mxcr_mask), strict=True
        ):
            setattr(self, name, int_arg(f"UserFpregsStruct.{name}", value, limits))
        for name, space, size in (("st_space", st_space, 128), ("xmm_space", xmm_space, 256)):
            if not isinstance(space, bytes) or len(space) != size:
                raise TypeError(f"UserFpregsStruct.{name} must be {size} bytes")
            setattr(self, name, space)

    def xmm(self, n: int) -> bytes:
        """The 16 bytes of register XMMn."""
        if not 0 <= n < 16:
            raise ValueError(f"no XMM{n} on x86_64")
        return bytes(self.xmm_space[16 * n:16 * n + 16])

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            *(getattr(self, name) for name, _ in self._INTS), self.st_space, self.xmm_space,
            bytes(96),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a user_fpregs_struct is {size} bytes, got {len(data)}")
        *values, _padding = cls.layout.struct.unpack(data[:size])
        return cls(*values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserFpregsStruct):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"UserFpregsStruct(cwd={self.cwd:#x}, mxcsr={self.mxcsr:#x}, rip={self.rip:#x})"


_ENTRY = struct.Struct("<Q6Q")
_EXIT = struct.Struct("<qB")
_SECCOMP = struct.Struct("<Q6QI")


class PtraceSyscallInfo(Struct):
    """`struct ptrace_syscall_info` (glibc: `struct __ptrace_syscall_info`),
    what PTRACE_GET_SYSCALL_INFO tells of the stop the tracee is in.

    `op` says which member of its union holds: at a syscall-entry stop
    (ENTRY) and a seccomp stop (SECCOMP) `nr` and `args`, the syscall and
    its six arguments (`ret_data`: the SECCOMP_RET_DATA of the filter's
    answer); at a syscall-exit stop (EXIT) `rval`, the result (-errno if
    `is_error`).  The fields of the other members are 0.  `arch` is the
    AUDIT_ARCH_* value (0xC000003E for x86_64)."""

    __slots__ = ("arch", "args", "instruction_pointer", "is_error", "nr", "op", "ret_data",
                 "rval", "stack_pointer")
    layout: ClassVar[Layout] = Layout(
        "struct __ptrace_syscall_info",
        [
            ("op", "B"), ("_pad", "3x"), ("arch", "I"), ("instruction_pointer", "Q"),
            ("stack_pointer", "Q"), ("entry", "64s"),
        ],
    )

    def __init__(
        self,
        op: PTRACE_SYSCALL_INFO,
        arch: int = 0,
        instruction_pointer: int = 0,
        stack_pointer: int = 0,
        nr: int = 0,
        args: tuple[int, ...] = (0,) * 6,
        rval: int = 0,
        is_error: bool = False,
        ret_data: int = 0,
    ) -> None:
        self.op = _op(int_arg("op", op, (0, 0xFF)))
        self.arch = int_arg("arch", arch, (0, 0xFFFFFFFF))
        self.instruction_pointer = int_arg("instruction_pointer", instruction_pointer, C_ULONG)
        self.stack_pointer = int_arg("stack_pointer", stack_pointer, C_ULONG)
        self.nr = int_arg("nr", nr, C_ULONG)
        args = tuple(args)
        if len(args) != 6:
            raise ValueError(f"a syscall has six arguments, not {len(args)}")
        self.args = tuple(int_arg("args", arg, C_ULONG) for arg in args)
        self.rval = int_arg("rval", rval, (-(1 << 63), (1 << 63) - 1))
        self.is_error = bool(is_error)
        self.ret_data = int_arg("ret_data", ret_data, (0, 0xFFFFFFFF))

    def _union(self) -> bytes:
        if self.op == PTRACE_SYSCALL_INFO.ENTRY:
            data = _ENTRY.pack(self.nr, *self.args)
        elif self.op == PTRACE_SYSCALL_INFO.EXIT:
            data = _EXIT.pack(self.rval, self.is_error)
        elif self.op == PTRACE_SYSCALL_INFO.SECCOMP:
            data = _SECCOMP.pack(self.nr, *self.args, self.ret_data)
        else:
            data = b""
        return data.ljust(64, b"\0")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            self.op, self.arch, self.instruction_pointer, self.stack_pointer, self._union())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a ptrace_syscall_info is {size} bytes, got {len(data)}")
        op, arch, ip, sp, union = cls.layout.struct.unpack(data[:size])
        if op == PTRACE_SYSCALL_INFO.ENTRY:
            nr, *args = _ENTRY.unpack_from(union)
            return cls(op, arch, ip, sp, nr=nr, args=tuple(args))
        if op == PTRACE_SYSCALL_INFO.EXIT:
            rval, is_error = _EXIT.unpack_from(union)
            return cls(op, arch, ip, sp, rval=rval, is_error=bool(is_error))
        if op == PTRACE_SYSCALL_INFO.SECCOMP:
            nr, *args, ret_data = _SECCOMP.unpack_from(union)
            return cls(op, arch, ip, sp, nr=nr, args=tuple(args), ret_data=ret_data)
        return cls(op, arch, ip, sp)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PtraceSyscallInfo):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        op = self.op
        if op in (PTRACE_SYSCALL_INFO.ENTRY, PTRACE_SYSCALL_INFO.SECCOMP):
            what = f"nr={self.nr}, args={self.args}"
        elif op == PTRACE_SYSCALL_INFO.EXIT:
            what = f"rval={self.rval}, is_error={self.is_error}"
        else:
            what = ""
        name = op.name if isinstance(op, PTRACE_SYSCALL_INFO) else str(op)
        return f"PtraceSyscallInfo({name}, {what})"


class PTRACE_PEEKSIGINFO(IntFlag):
    """`PtracePeeksiginfoArgs.flags`: SHARED reads the process's queue of
    pending signals rather than the thread's own."""

    NONE = 0
    SHARED = 1


class PtracePeeksiginfoArgs(Struct):
    """`struct ptrace_peeksiginfo_args` (glibc: `struct
    __ptrace_peeksiginfo_args`) for PTRACE_PEEKSIGINFO: read `nr` pending
    signals from position `off` of the thread's queue (or the process's,
    with PTRACE_PEEKSIGINFO.SHARED)."""

    __slots__ = ("flags", "nr", "off")
    layout: ClassVar[Layout] = Layout(
        "struct __ptrace_peeksiginfo_args", [("off", "Q"), ("flags", "I"), ("nr", "i")]
    )

    def __init__(self, off: int = 0, flags: PTRACE_PEEKSIGINFO = PTRACE_PEEKSIGINFO.NONE,
                 nr: int = 1) -> None:
        self.off = int_arg("off", off, C_ULONG)
        self.flags = PTRACE_PEEKSIGINFO(int_arg("flags", flags, (0, 0xFFFFFFFF)))
        self.nr = int_arg("nr", nr, (-(1 << 31), (1 << 31) - 1))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.off, self.flags, self.nr)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a ptrace_peeksiginfo_args is {cls.layout.size} bytes")
        off, flags, nr = cls.layout.struct.unpack_from(data)
        return cls(off, PTRACE_PEEKSIGINFO(flags), nr)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PtracePeeksiginfoArgs):
            return NotImplemented
        return (self.off, self.flags, self.nr) == (other.off, other.flags, other.nr)

    def __hash__(self) -> int:
        return hash((self.off, self.flags, self.nr))

    def __repr__(self) -> str:
        return f"PtracePeeksiginfoArgs(off={self.off}, flags={self.flags!r}, nr={self.nr})"


class SiginfoList(list[Siginfo], Serializable):
    """An array of `siginfo_t` (rsyscall.signal.Siginfo), as
    PTRACE_PEEKSIGINFO fills it: `thread.malloc(SiginfoList, n *
    Siginfo.sizeof())` makes room for n."""

    def to_bytes(self) -> bytes:
        return b"".join(info.to_bytes() for info in self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = Siginfo.sizeof()
        return cls(Siginfo.from_bytes(data[n:n + size])
                   for n in range(0, len(data) - len(data) % size, size))


def _op(value: int) -> PTRACE_SYSCALL_INFO | int:
    try:
        return PTRACE_SYSCALL_INFO(value)
    except ValueError:
        return value


def _sig(sig: object) -> int:
    if not isinstance(sig, int) or isinstance(sig, bool):
        raise TypeError(f"a signal must be a SIG or an int, not {type(sig).__name__}")
    return int(sig)


_NR = int(SYS.ptrace)  # each method names it, for the syscall index
_IOVEC = struct.Struct("<QQ")


def _mark(process: BaseProcess, traced: bool) -> None:
    # A ChildProcess remembers that it is traced, so that the library's
    # own waits leave its stop notifications to the tracer.
    if hasattr(type(process), "traced"):
        process.traced = traced  # type: ignore[attr-defined]


class PtraceTask(BaseTask):
    __slots__ = ()

    async def ptrace_traceme(self) -> None:
        """ptrace(2) PTRACE_TRACEME: make this process's parent its tracer
        (the parent then sees its stops; its next execve stops it with
        SIGTRAP).  Irreversible from here: only the tracer can detach."""
        await self.sysif.syscall(_NR, PTRACE.TRACEME, 0, 0, 0)

    async def unsafe_ptrace(self, request: PTRACE, pid: int, addr: int, data: int) -> int:
        """ptrace(2), the raw syscall: `request` on tracee `pid` with `addr`
        and `data` as they are, returning what the syscall returns (for
        PEEK requests the kernel stores the word at address `data`).

        Unsafe: addresses and register or memory contents are taken as
        they are, so the caller must make sure that `addr` and `data` are
        what `request` needs: addresses of live memory of the right size
        in this address space where the kernel writes, and registers or
        words a tracee that shares our memory may run with.  A wrong one
        writes our memory, or makes the tracee run anywhere.  Use the
        `Process.ptrace_*` methods."""
        return await self.sysif.syscall(_NR, int_arg("request", request, C_ULONG),
                                        int_arg("pid", pid, (-(1 << 31), (1 << 31) - 1)),
                                        int_arg("addr", addr, C_ULONG),
                                        int_arg("data", data, C_ULONG))


class PtraceProcess(BaseProcess):
    __slots__ = ()

    async def _request(self, number: int, request: PTRACE, addr: int = 0, data: int = 0) -> int:
        return await self.task.sysif.syscall(number, request, self.pid, addr, data)

    async def _fill(self, number: int, request: PTRACE, addr: int, ptr: Pointer[T], cls: type,
                    size: int) -> ReadablePointer[T]:
        check_points_to(ptr, cls)
        alloc = take(ptr, self.task, size)
        try:
            await self._request(number, request, addr, alloc.address)
        except BaseException:
            restore(ptr, alloc)
            raise
        return ptr._readable(alloc, self.task)

    async def ptrace_seize(self, options: PTRACE_O = PTRACE_O.NONE) -> None:
        """ptrace(2) PTRACE_SEIZE: become this process's tracer, without
        stopping it, with `options` (PTRACE_O).  A seized tracee stops
        for PTRACE_INTERRUPT and reports group stops as PTRACE_EVENT.STOP.
        Needs the right to trace it (ptrace(2): same uid or CAP_SYS_PTRACE,
        and Yama's ptrace_scope)."""
        await self._request(_NR, PTRACE.SEIZE, 0, int_arg("options", options, C_ULONG))
        _mark(self, True)

    async def ptrace_attach(self) -> None:
        """ptrace(2) PTRACE_ATTACH: become this process's tracer; it is
        sent SIGSTOP, whose stop the tracer's waitid reports."""
        await self._request(_NR, PTRACE.ATTACH)
        _mark(self, True)

    async def ptrace_setoptions(self, options: PTRACE_O) -> None:
        """ptrace(2) PTRACE_SETOPTIONS: replace the tracing options."""
        await self._request(_NR, PTRACE.SETOPTIONS, 0, int_arg("options", options, C_ULONG))

    async def ptrace_interrupt(self) -> None:
        """ptrace(2) PTRACE_INTERRUPT: stop a seized tracee (it reports a
        PTRACE_EVENT.STOP stop); a blocking syscall it was in is restarted
        when it goes on (or fails with EINTR, as for a signal)."""
        await self._request(_NR, PTRACE.INTERRUPT)

    async def ptrace_cont(self, sig: SIG | int = 0) -> None:
        """ptrace(2) PTRACE_CONT: restart the stopped tracee, delivering
        `sig` (0: none; at a signal-delivery stop, the signal to deliver
        instead of the one that stopped it)."""
        await self._request(_NR, PTRACE.CONT, 0, _sig(sig))

    async def ptrace_syscall(self, sig: SIG | int = 0) -> None:
        """ptrace(2) PTRACE_SYSCALL: as `ptrace_cont`, but stop at the next
        syscall entry or exit."""
        await self._request(_NR, PTRACE.SYSCALL, 0, _sig(sig))

    async def ptrace_singlestep(self, sig: SIG | int = 0) -> None:
        """ptrace(2) PTRACE_SINGLESTEP: as `ptrace_cont`, but stop after one
        instruction."""
        await self._request(_NR, PTRACE.SINGLESTEP, 0, _sig(sig))

    async def ptrace_listen(self) -> None:
        """ptrace(2) PTRACE_LISTEN: let a seized tracee in a group stop stay
        stopped but report (as a waitid stop) when it is continued or
        killed."""
        await self._request(_NR, PTRACE.LISTEN)

    async def ptrace_detach(self, sig: SIG | int = 0) -> None:
        """ptrace(2) PTRACE_DETACH: stop tracing the (stopped) tracee and
        restart it, delivering `sig` (0: none)."""
        await self._request(_NR, PTRACE.DETACH, 0, _sig(sig))
        _mark(self, False)

    async def ptrace_getregs(
        self, regs: Pointer[UserRegsStruct]
    ) -> ReadablePointer[UserRegsStruct]:
        """ptrace(2) PTRACE_GETREGS: fill `regs` (consumed) with the
        stopped tracee's general registers."""
        return await self._fill(
            _NR, PTRACE.GETREGS, 0, regs, UserRegsStruct, UserRegsStruct.sizeof())

    async def unsafe_ptrace_setregs(self, regs: ReadablePointer[UserRegsStruct]) -> None:
        """ptrace(2) PTRACE_SETREGS: set the stopped tracee's general
        registers from `regs`.

        Unsafe: a tracee cloned by the library shares its parent's memory,
        and runs wherever `rip` and `rsp` say; the caller must make sure
        the registers are ones it may run with (such as those
        ptrace_getregs read, with only `rax` at a syscall-exit stop or
        `orig_rax` at an entry stop changed)."""
        check_points_to(regs, UserRegsStruct)
        address = borrow(regs, self.task, UserRegsStruct.sizeof()).address
        await self._request(_NR, PTRACE.SETREGS, 0, address)

    async def ptrace_getfpregs(
        self, regs: Pointer[UserFpregsStruct]
    ) -> ReadablePointer[UserFpregsStruct]:
        """ptrace(2) PTRACE_GETFPREGS: fill `regs` (consumed) with the
        stopped tracee's x87 and SSE registers."""
        return await self._fill(
            _NR, PTRACE.GETFPREGS, 0, regs, UserFpregsStruct, UserFpregsStruct.sizeof())

    async def ptrace_getregset(
        self, nt: NT, buf: Pointer[T]
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """ptrace(2) PTRACE_GETREGSET: fill `buf` (consumed) with the
        stopped tracee's register set `nt` (NT.PRSTATUS: a
        UserRegsStruct; NT.PRFPREG: a UserFpregsStruct; NT.X86_XSTATE:
        the XSAVE area, as bytes).  The kernel says how much it wrote (the
        iovec the raw call takes is the library's): returns that part and
        the rest."""
        if not isinstance(nt, int) or isinstance(nt, bool):
            raise TypeError(f"nt must be an NT, not {type(nt).__name__}")
        task = self.task
        alloc = take(buf, task)
        try:
            iov = await task.space.stage(_IOVEC.pack(alloc.address, alloc.size))
            await self._request(_NR, PTRACE.GETREGSET, int(nt), iov.address)
            _, written = _IOVEC.unpack(await task.space.transport.read(iov.address, 16))
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, written, task)

    async def ptrace_get_syscall_info(
        self, info: Pointer[PtraceSyscallInfo]
    ) -> ReadablePointer[PtraceSyscallInfo]:
        """ptrace(2) PTRACE_GET_SYSCALL_INFO: fill `info` (consumed) with
        what the stopped tracee's stop is about: a syscall's entry, exit or
        seccomp stop, or NONE.  (The kernel writes only the part of the
        union `op` needs; the rest reads as 0.)"""
        check_points_to(info, PtraceSyscallInfo)
        task = self.task
        size = PtraceSyscallInfo.sizeof()
        alloc = take(info, task, size)
        try:
            await task.space.transport.write(alloc.address, bytes(size))
            await self._request(_NR, PTRACE.GET_SYSCALL_INFO, size, alloc.address)
        except BaseException:
            restore(info, alloc)
            raise
        return info._readable(alloc, task)

    async def ptrace_getsiginfo(self, info: Pointer[Siginfo]) -> ReadablePointer[Siginfo]:
        """ptrace(2) PTRACE_GETSIGINFO: fill `info` (consumed) with the
        siginfo of the signal that stopped the tracee (for a syscall stop,
        a SIGTRAP one)."""
        return await self._fill(_NR, PTRACE.GETSIGINFO, 0, info, Siginfo, Siginfo.sizeof())

    async def ptrace_setsiginfo(self, info: ReadablePointer[Siginfo]) -> None:
        """ptrace(2) PTRACE_SETSIGINFO: replace the siginfo of the signal
        the tracee is stopped for (delivered when it is continued with it)."""
        check_points_to(info, Siginfo)
        address = borrow(info, self.task, Siginfo.sizeof()).address
        await self._request(_NR, PTRACE.SETSIGINFO, 0, address)

    async def ptrace_geteventmsg(self, msg: Pointer[UInt64]) -> ReadablePointer[UInt64]:
        """ptrace(2) PTRACE_GETEVENTMSG: fill `msg` (consumed) with the
        message of the last PTRACE_EVENT stop: the new child's pid for
        FORK/VFORK/CLONE, the former thread id for EXEC, the exit status
        for EXIT, the filter's SECCOMP_RET_DATA for SECCOMP; and at a
        syscall stop 1 (entry) or 2 (exit)."""
        return await self._fill(_NR, PTRACE.GETEVENTMSG, 0, msg, UInt64, 8)

    async def ptrace_getsigmask(self, mask: Pointer[Sigset]) -> ReadablePointer[Sigset]:
        """ptrace(2) PTRACE_GETSIGMASK: fill `mask` (consumed) with the
        stopped tracee's signal mask."""
        size = Sigset.sizeof()
        return await self._fill(_NR, PTRACE.GETSIGMASK, size, mask, Sigset, size)

    async def ptrace_setsigmask(self, mask: ReadablePointer[Sigset]) -> None:
        """ptrace(2) PTRACE_SETSIGMASK: set the stopped tracee's signal
        mask (SIGKILL and SIGSTOP cannot be blocked)."""
        check_points_to(mask, Sigset)
        size = Sigset.sizeof()
        address = borrow(mask, self.task, size).address
        await self._request(_NR, PTRACE.SETSIGMASK, size, address)

    async def ptrace_peeksiginfo(
        self, args: ReadablePointer[PtracePeeksiginfoArgs], buf: Pointer[SiginfoList]
    ) -> tuple[ReadablePointer[SiginfoList], Pointer[SiginfoList]]:
        """ptrace(2) PTRACE_PEEKSIGINFO: copy the stopped tracee's pending
        signals that `args` names into `buf` (consumed), without taking
        them off the queue.  Returns the part filled (one Siginfo per
        signal found, maybe fewer than `args.nr`) and the rest.  `buf`
        must have room for `args.nr` of them (ValueError otherwise)."""
        check_points_to(args, PtracePeeksiginfoArgs)
        check_points_to(buf, SiginfoList)
        task = self.task
        size = PtracePeeksiginfoArgs.sizeof()
        args_alloc = borrow(args, task, size)
        value = getattr(args, "value", None)
        if not isinstance(value, PtracePeeksiginfoArgs):
            value = PtracePeeksiginfoArgs.from_bytes(
                await task.space.transport.read(args_alloc.address, size))
        needed = max(value.nr, 0) * Siginfo.sizeof()
        if needed > buf.size():
            raise ValueError(f"buf has room for {buf.size() // Siginfo.sizeof()} siginfos, "
                             f"args asks for {value.nr}")
        alloc = take(buf, task)
        try:
            count = await self._request(_NR, PTRACE.PEEKSIGINFO, args_alloc.address,
                                        alloc.address)
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count * Siginfo.sizeof(), task)

    async def ptrace_peekdata(self, addr: int, data: Pointer[UInt64]) -> ReadablePointer[UInt64]:
        """ptrace(2) PTRACE_PEEKDATA: fill `data` (consumed) with the word
        at address `addr` of the stopped tracee's memory (an address there,
        so a plain int; EIO or EFAULT if nothing is mapped)."""
        address = int_arg("addr", addr, C_ULONG)
        return await self._fill(_NR, PTRACE.PEEKDATA, address, data, UInt64, 8)

    async def unsafe_ptrace_pokedata(self, addr: int, word: int) -> None:
        """ptrace(2) PTRACE_POKEDATA: write the 64-bit `word` at address
        `addr` of the stopped tracee's memory.

        Unsafe: a tracee cloned by the library shares its parent's memory,
        so this writes there too: the caller must know what `addr` holds."""
        await self._request(_NR, PTRACE.POKEDATA, int_arg("addr", addr, C_ULONG),
                            int_arg("word", word, C_ULONG))
