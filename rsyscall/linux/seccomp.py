"""<linux/seccomp.h>: seccomp(2), filtering the calling process's syscalls
with a classic BPF program (rsyscall.linux.filter), and the user
notification listener of seccomp_unotify(2).

A filter cannot be removed, and applies to the process that installs it
and everything it later starts: install one in a child (`thread.clone()`),
after `prctl_set_no_new_privs()` (or with CAP_SYS_ADMIN).  The program sees
a `struct seccomp_data` (`SeccompData`); `bpf_load_nr`, `bpf_load_arch`,
`bpf_load_arg` load its fields and `bpf_return` ends with an action:

    insns = SockFilterList([
        bpf_load_arch(),
        bpf_jump(BPF_CLASS.JMP | BPF_JMP_OP.JEQ | BPF_SRC.K, AUDIT_ARCH.X86_64, 1, 0),
        bpf_return(SECCOMP_RET.KILL_PROCESS),
        bpf_load_nr(),
        bpf_jump(BPF_CLASS.JMP | BPF_JMP_OP.JEQ | BPF_SRC.K, SYS.mkdirat, 0, 1),
        bpf_return(SECCOMP_RET.ERRNO, errno.EPERM),
        bpf_return(SECCOMP_RET.ALLOW),
    ])
    prog = await child.ptr(SockFprog(await child.ptr(insns)))
    await child.task.prctl_set_no_new_privs()
    await child.task.seccomp_set_mode_filter(prog)

The process's own syscall server runs under the filter too: a filter that
refuses what it needs (read, write, recvmsg, epoll_pwait, futex...) cuts
the thread off.

With `seccomp_set_mode_filter_listener`, SECCOMP_RET.USER_NOTIF hands the
syscall to a supervisor holding the listener fd: it receives a
`SeccompNotif` (`fd.seccomp_notif_recv`, or `seccomp_notif_recv_async` on
an AsyncFileDescriptor, which waits in the epoll loop), and answers with a
`SeccompNotifResp` (`fd.seccomp_notif_send`): a made-up result, an error,
or SECCOMP_USER_NOTIF_FLAG.CONTINUE to let the syscall run.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Self

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.fcntl import O
from rsyscall.linux.audit import AUDIT_ARCH
from rsyscall.linux.filter import (
    BPF_CLASS,
    BPF_MODE,
    BPF_RVAL,
    BPF_SIZE,
    SockFilter,
    SockFprog,
    bpf_stmt,
    check_program,
)
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
from rsyscall.struct import Immutable, Layout, Struct, UInt64, check_fields, int_arg
from rsyscall.sys.ioctl import _IN, _INOUT, IOC, _define, _Spec, ioc

if TYPE_CHECKING:
    from rsyscall.epoller import AsyncFileDescriptor
    from rsyscall.handle import FileDescriptor

__all__ = [
    "AUDIT_ARCH",
    "SECCOMP",
    "SECCOMP_ADDFD_FLAG",
    "SECCOMP_FILTER_FLAG",
    "SECCOMP_IOCTL",
    "SECCOMP_MODE",
    "SECCOMP_RET",
    "SECCOMP_RET_ACTION",
    "SECCOMP_RET_ACTION_FULL",
    "SECCOMP_RET_DATA",
    "SECCOMP_USER_NOTIF_FLAG",
    "SeccompData",
    "SeccompFileDescriptor",
    "SeccompNotif",
    "SeccompNotifAddfd",
    "SeccompNotifResp",
    "SeccompNotifSizes",
    "SeccompTask",
    "bpf_load_arch",
    "bpf_load_arg",
    "bpf_load_instruction_pointer",
    "bpf_load_nr",
    "bpf_return",
    "seccomp_notif_recv_async",
]


class SECCOMP(IntEnum):
    """The operations of seccomp(2) (C: SECCOMP_SET_MODE_STRICT...); each
    is its own method of Task."""

    SET_MODE_STRICT = 0
    SET_MODE_FILTER = 1
    GET_ACTION_AVAIL = 2
    GET_NOTIF_SIZES = 3


class SECCOMP_MODE(IntEnum):
    """A process's seccomp mode, as prctl(2) PR_GET_SECCOMP and the Seccomp
    line of /proc/PID/status report it (C: SECCOMP_MODE_*)."""

    DISABLED = 0
    STRICT = 1
    FILTER = 2


class SECCOMP_FILTER_FLAG(IntFlag):
    """Flags of SECCOMP_SET_MODE_FILTER (C: SECCOMP_FILTER_FLAG_*)."""

    NONE = 0
    TSYNC = 1 << 0
    LOG = 1 << 1
    SPEC_ALLOW = 1 << 2
    NEW_LISTENER = 1 << 3
    TSYNC_ESRCH = 1 << 4
    WAIT_KILLABLE_RECV = 1 << 5


class SECCOMP_RET(IntEnum):
    """The action a filter returns, in the high 16 bits of its result (C:
    SECCOMP_RET_*; SECCOMP_RET_KILL is KILL_THREAD).  The low 16 bits
    (SECCOMP_RET_DATA) are the errno of ERRNO, or data for TRAP and TRACE:
    `bpf_return(action, data)`."""

    KILL_PROCESS = 0x80000000
    KILL_THREAD = 0x00000000
    TRAP = 0x00030000
    ERRNO = 0x00050000
    USER_NOTIF = 0x7FC00000
    TRACE = 0x7FF00000
    LOG = 0x7FFC0000
    ALLOW = 0x7FFF0000


SECCOMP_RET_ACTION_FULL = 0xFFFF0000
"""The mask of the action part of a filter's result."""
SECCOMP_RET_ACTION = 0x7FFF0000
"""The action mask without the sign bit (older kernels' mask)."""
SECCOMP_RET_DATA = 0x0000FFFF
"""The mask of the data part of a filter's result."""


class SECCOMP_USER_NOTIF_FLAG(IntFlag):
    """Flags of a `SeccompNotifResp` (C: SECCOMP_USER_NOTIF_FLAG_*)."""

    NONE = 0
    CONTINUE = 1 << 0


class SECCOMP_ADDFD_FLAG(IntFlag):
    """Flags of a `SeccompNotifAddfd` (C: SECCOMP_ADDFD_FLAG_*)."""

    NONE = 0
    SETFD = 1 << 0
    SEND = 1 << 1


# ---- structs ----


class SeccompData(Struct, Immutable):
    """`struct seccomp_data`: what a filter program sees of a syscall (and
    what a `SeccompNotif` reports): its number `nr`, the `arch`
    (AUDIT_ARCH) it was made with, the `instruction_pointer` and the six
    `args`."""

    __slots__ = ("arch", "args", "instruction_pointer", "nr")
    layout = Layout("struct seccomp_data", [
        ("nr", "i"), ("arch", "I"), ("instruction_pointer", "Q"), ("args", "6Q"),
    ])
    nr: int
    arch: int
    instruction_pointer: int
    args: tuple[int, int, int, int, int, int]

    def __init__(
        self, nr: int, arch: int, instruction_pointer: int = 0,
        args: tuple[int, ...] = (0, 0, 0, 0, 0, 0),
    ) -> None:
        args = tuple(args)
        if len(args) != 6:
            raise ValueError(f"a SeccompData has 6 args, not {len(args)}")
        for i, arg in enumerate(args):
            int_arg(f"SeccompData.args[{i}]", arg, (0, (1 << 64) - 1))
        object.__setattr__(self, "nr", nr)
        try:
            arch = AUDIT_ARCH(arch)
        except ValueError:
            pass
        object.__setattr__(self, "arch", arch)
        object.__setattr__(self, "instruction_pointer", instruction_pointer)
        object.__setattr__(self, "args", args)
        check_fields(self, (("nr", "i"), ("arch", "I"), ("instruction_pointer", "Q")))

    def __repr__(self) -> str:
        try:
            nr: object = SYS(self.nr)
        except ValueError:
            nr = self.nr
        return (f"SeccompData(nr={nr!r}, arch={self.arch!r}, "
                f"instruction_pointer={self.instruction_pointer:#x}, args={self.args!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeccompData):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            self.nr, int(self.arch), self.instruction_pointer, *self.args
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a SeccompData needs {size} bytes, got {len(data)}")
        nr, arch, ip, *args = cls.layout.struct.unpack(data[:size])
        return cls(nr, arch, ip, tuple(args))


_LOAD_WORD = BPF_CLASS.LD | BPF_SIZE.W | BPF_MODE.ABS
_OFFSETS = SeccompData.layout.offsets


def bpf_load_nr() -> SockFilter:
    """The instruction that loads the syscall number (`SeccompData.nr`)
    into the accumulator."""
    return bpf_stmt(_LOAD_WORD, _OFFSETS["nr"])


def bpf_load_arch() -> SockFilter:
    """The instruction that loads `SeccompData.arch` (an AUDIT_ARCH)."""
    return bpf_stmt(_LOAD_WORD, _OFFSETS["arch"])


def bpf_load_arg(index: int, high: bool = False) -> SockFilter:
    """The instruction that loads the low 32 bits of argument `index` (0 to
    5), or with `high` its high 32 bits: BPF words are 32 bits."""
    int_arg("index", index, (0, 5))
    return bpf_stmt(_LOAD_WORD, _OFFSETS["args"] + 8 * index + (4 if high else 0))


def bpf_load_instruction_pointer(high: bool = False) -> SockFilter:
    """The instruction that loads the low (or `high`) 32 bits of
    `SeccompData.instruction_pointer`."""
    return bpf_stmt(_LOAD_WORD, _OFFSETS["instruction_pointer"] + (4 if high else 0))


def bpf_return(action: SECCOMP_RET, data: int = 0) -> SockFilter:
    """The instruction that ends the program with `action`, and `data` in
    the low 16 bits (the errno for SECCOMP_RET.ERRNO)."""
    if not isinstance(action, SECCOMP_RET):
        raise TypeError(f"action must be a SECCOMP_RET, not {type(action).__name__}")
    int_arg("data", data, (0, SECCOMP_RET_DATA))
    return bpf_stmt(BPF_CLASS.RET | BPF_RVAL.K, int(action) | data)


class SeccompNotifSizes(Struct, Immutable):
    """`struct seccomp_notif_sizes`: the sizes, in this kernel, of `struct
    seccomp_notif`, `struct seccomp_notif_resp` and `struct seccomp_data`
    (SECCOMP_GET_NOTIF_SIZES)."""

    __slots__ = ("seccomp_data", "seccomp_notif", "seccomp_notif_resp")
    layout = Layout("struct seccomp_notif_sizes", [
        ("seccomp_notif", "H"), ("seccomp_notif_resp", "H"), ("seccomp_data", "H"),
    ])
    seccomp_notif: int
    seccomp_notif_resp: int
    seccomp_data: int

    def __init__(self, seccomp_notif: int, seccomp_notif_resp: int, seccomp_data: int) -> None:
        object.__setattr__(self, "seccomp_notif", seccomp_notif)
        object.__setattr__(self, "seccomp_notif_resp", seccomp_notif_resp)
        object.__setattr__(self, "seccomp_data", seccomp_data)
        check_fields(self, [(name, "H") for name in self.__slots__])

    def __repr__(self) -> str:
        return (f"SeccompNotifSizes(seccomp_notif={self.seccomp_notif}, "
                f"seccomp_notif_resp={self.seccomp_notif_resp}, seccomp_data={self.seccomp_data})")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            self.seccomp_notif, self.seccomp_notif_resp, self.seccomp_data
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a SeccompNotifSizes needs {size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack(data[:size]))


_DATA_SIZE = SeccompData.layout.size


class SeccompNotif(Struct, Immutable):
    """`struct seccomp_notif`: a syscall waiting for the supervisor, with
    the cookie `id` to answer it by, the `pid` of the process that made it
    (in the listener's pid namespace; 0 if not visible there), `flags`
    (none defined) and the syscall's `data`."""

    __slots__ = ("data", "flags", "id", "pid")
    layout = Layout("struct seccomp_notif", [
        ("id", "Q"), ("pid", "I"), ("flags", "I"), ("data", f"{_DATA_SIZE}s"),
    ])
    id: int
    pid: int
    flags: int
    data: SeccompData

    def __init__(
        self, id: int = 0, pid: int = 0, flags: int = 0,
        data: SeccompData | None = None,
    ) -> None:
        if data is None:
            data = SeccompData(0, 0)
        if not isinstance(data, SeccompData):
            raise TypeError(f"data must be a SeccompData, not {type(data).__name__}")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "pid", pid)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "data", data)
        check_fields(self, (("id", "Q"), ("pid", "I"), ("flags", "I")))

    def __repr__(self) -> str:
        return (f"SeccompNotif(id={self.id:#x}, pid={self.pid}, flags={self.flags}, "
                f"data={self.data!r})")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.id, self.pid, self.flags, self.data.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a SeccompNotif needs {size} bytes, got {len(data)}")
        id_, pid, flags, raw = cls.layout.struct.unpack(data[:size])
        return cls(id_, pid, flags, SeccompData.from_bytes(raw))


class SeccompNotifResp(Struct, Immutable):
    """`struct seccomp_notif_resp`: the answer to notification `id`.  With
    `flags` SECCOMP_USER_NOTIF_FLAG.CONTINUE the syscall runs (then `val`
    and `error` must be 0); otherwise it returns `val`, or, if `error` is
    nonzero, fails with errno `-error` (a negated errno, as in C)."""

    __slots__ = ("error", "flags", "id", "val")
    layout = Layout("struct seccomp_notif_resp", [
        ("id", "Q"), ("val", "q"), ("error", "i"), ("flags", "I"),
    ])
    id: int
    val: int
    error: int
    flags: SECCOMP_USER_NOTIF_FLAG

    def __init__(
        self, id: int, val: int = 0, error: int = 0,
        flags: SECCOMP_USER_NOTIF_FLAG = SECCOMP_USER_NOTIF_FLAG.NONE,
    ) -> None:
        if not isinstance(flags, SECCOMP_USER_NOTIF_FLAG) and not (
            isinstance(flags, int) and not isinstance(flags, bool) and flags == 0
        ):
            raise TypeError(f"flags must be SECCOMP_USER_NOTIF_FLAG, not {type(flags).__name__}")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "val", val)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "flags", SECCOMP_USER_NOTIF_FLAG(flags))
        check_fields(self, (("id", "Q"), ("val", "q"), ("error", "i")))
        if error > 0:
            raise ValueError(f"error is a negated errno (-errno.EPERM), not {error}")

    def __repr__(self) -> str:
        return (f"SeccompNotifResp(id={self.id:#x}, val={self.val}, error={self.error}, "
                f"flags={self.flags!r})")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.id, self.val, self.error, int(self.flags))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a SeccompNotifResp needs {size} bytes, got {len(data)}")
        id_, val, error, flags = cls.layout.struct.unpack(data[:size])
        return cls(id_, val, error, SECCOMP_USER_NOTIF_FLAG(flags))


class SeccompNotifAddfd(Struct, Immutable):
    """`struct seccomp_notif_addfd`: put a copy of the supervisor's `srcfd`
    (a FileDescriptor in the listener's fd table, held by this value) into
    the fd table of the process behind notification `id`.  With
    SECCOMP_ADDFD_FLAG.SETFD at number `newfd` there (replacing what was
    there), else at the lowest free number; `newfd_flags` may be O.CLOEXEC.
    With SECCOMP_ADDFD_FLAG.SEND the notified syscall also returns the new
    number (and the notification is answered)."""

    __slots__ = ("flags", "id", "newfd", "newfd_flags", "srcfd")
    layout = Layout("struct seccomp_notif_addfd", [
        ("id", "Q"), ("flags", "I"), ("srcfd", "I"), ("newfd", "I"), ("newfd_flags", "I"),
    ])
    id: int
    flags: SECCOMP_ADDFD_FLAG
    srcfd: FileDescriptor
    newfd: int
    newfd_flags: O

    def __init__(
        self, id: int, srcfd: FileDescriptor, newfd: int = 0,
        newfd_flags: O = O.RDONLY, flags: SECCOMP_ADDFD_FLAG = SECCOMP_ADDFD_FLAG.NONE,
    ) -> None:
        if not isinstance(srcfd, BaseFileDescriptor):
            raise TypeError(f"srcfd must be a FileDescriptor, not {type(srcfd).__name__}")
        if not isinstance(flags, SECCOMP_ADDFD_FLAG) and not (
            isinstance(flags, int) and not isinstance(flags, bool) and flags == 0
        ):
            raise TypeError(f"flags must be SECCOMP_ADDFD_FLAG, not {type(flags).__name__}")
        if not isinstance(newfd_flags, O) and not (
            isinstance(newfd_flags, int) and not isinstance(newfd_flags, bool) and newfd_flags == 0
        ):
            raise TypeError(f"newfd_flags must be O flags, not {type(newfd_flags).__name__}")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "srcfd", srcfd)
        object.__setattr__(self, "newfd", newfd)
        object.__setattr__(self, "newfd_flags", O(newfd_flags))
        object.__setattr__(self, "flags", SECCOMP_ADDFD_FLAG(flags))
        check_fields(self, (("id", "Q"), ("newfd", "I")))

    def __repr__(self) -> str:
        return (f"SeccompNotifAddfd(id={self.id:#x}, srcfd={self.srcfd!r}, newfd={self.newfd}, "
                f"newfd_flags={self.newfd_flags!r}, flags={self.flags!r})")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            self.id, int(self.flags), self.srcfd.number, self.newfd, int(self.newfd_flags)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        raise TypeError(
            "a SeccompNotifAddfd names a FileDescriptor handle and cannot be read back "
            "from memory; use the WrittenPointer's .value"
        )


# ---- ioctls of the listener ----

_MAGIC = ord("!")


class SECCOMP_IOCTL(IntEnum):
    """The ioctl requests of a listener fd (C: SECCOMP_IOCTL_NOTIF_*).  Each
    has a method: `seccomp_notif_recv`, `seccomp_notif_send`,
    `seccomp_notif_id_valid`, `seccomp_notif_addfd`."""

    NOTIF_RECV = ioc(IOC.READ | IOC.WRITE, _MAGIC, 0, SeccompNotif.layout.size)
    NOTIF_SEND = ioc(IOC.READ | IOC.WRITE, _MAGIC, 1, SeccompNotifResp.layout.size)
    NOTIF_ID_VALID = ioc(IOC.WRITE, _MAGIC, 2, 8)
    NOTIF_ADDFD = ioc(IOC.WRITE, _MAGIC, 3, SeccompNotifAddfd.layout.size)


# fd.ioctl with these requests takes pointers to these types only.  SEND
# is _IOWR in its number but the kernel only reads the response; ADDFD's
# struct holds an fd handle (checked by the method, not by fd.ioctl).
_define({
    SECCOMP_IOCTL.NOTIF_RECV: _Spec(_INOUT, SeccompNotif.layout.size, (SeccompNotif,)),
    SECCOMP_IOCTL.NOTIF_SEND: _Spec(_IN, SeccompNotifResp.layout.size, (SeccompNotifResp,)),
    SECCOMP_IOCTL.NOTIF_ID_VALID: _Spec(_IN, 8, (UInt64,)),
    SECCOMP_IOCTL.NOTIF_ADDFD: _Spec(_IN, SeccompNotifAddfd.layout.size, (SeccompNotifAddfd,)),
})

_SYS_seccomp = int(SYS.seccomp)
_SYS_ioctl = int(SYS.ioctl)
_SYS_poll = int(SYS.poll)
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_POLLFD = struct.Struct("<ihh")
_POLLIN, _POLLERR, _POLLHUP = 0x001, 0x008, 0x010


def _filter_flags(flags: object) -> SECCOMP_FILTER_FLAG:
    if isinstance(flags, bool) or not isinstance(flags, int) or (
        not isinstance(flags, SECCOMP_FILTER_FLAG) and isinstance(flags, IntEnum | IntFlag)
    ):
        raise TypeError(f"flags must be SECCOMP_FILTER_FLAG, not {type(flags).__name__}")
    return SECCOMP_FILTER_FLAG(flags)


class SeccompTask(BaseTask):
    __slots__ = ()

    async def seccomp_set_mode_strict(self) -> None:
        """`seccomp(2)` SECCOMP_SET_MODE_STRICT: from now on this process
        may only read(2), write(2), _exit(2) and sigreturn(2); any other
        syscall kills it with SIGKILL.  Its syscall server needs more than
        that, so the thread is cut off at its next syscall or sooner."""
        await self.sysif.syscall(_SYS_seccomp, SECCOMP.SET_MODE_STRICT, 0, 0)

    async def _set_mode_filter(
        self, prog: WrittenPointer[SockFprog], flags: SECCOMP_FILTER_FLAG
    ) -> int:
        address = check_program(prog, self)
        result = await self.sysif.syscall(_SYS_seccomp, SECCOMP.SET_MODE_FILTER, flags, address)
        if flags & SECCOMP_FILTER_FLAG.TSYNC and not flags & SECCOMP_FILTER_FLAG.NEW_LISTENER \
                and result > 0:
            raise OSError(errno.ESRCH, f"thread {result} of the process could not be "
                          "synchronized to the filter (SECCOMP_FILTER_FLAG_TSYNC)")
        return result

    async def seccomp_set_mode_filter(
        self, prog: WrittenPointer[SockFprog], flags: SECCOMP_FILTER_FLAG = SECCOMP_FILTER_FLAG.NONE
    ) -> None:
        """`seccomp(2)` SECCOMP_SET_MODE_FILTER: add the BPF program `prog`
        to the filters of this process's syscalls, for good (it is
        inherited by children and kept across execve).  Needs no_new_privs
        (`prctl_set_no_new_privs`) or CAP_SYS_ADMIN, else EACCES; a program
        the kernel refuses (a jump past its end, no final return) is
        EINVAL.  With SECCOMP_FILTER_FLAG.TSYNC, a thread of this process
        that cannot follow makes it fail (ESRCH).  For NEW_LISTENER, use
        `seccomp_set_mode_filter_listener`, which returns the listener."""
        flags = _filter_flags(flags)
        if flags & SECCOMP_FILTER_FLAG.NEW_LISTENER:
            raise ValueError(
                "SECCOMP_FILTER_FLAG.NEW_LISTENER makes a listener fd: "
                "use seccomp_set_mode_filter_listener"
            )
        await self._set_mode_filter(prog, flags)

    async def seccomp_set_mode_filter_listener(
        self, prog: WrittenPointer[SockFprog], flags: SECCOMP_FILTER_FLAG = SECCOMP_FILTER_FLAG.NONE
    ) -> FileDescriptor:
        """`seccomp(2)` SECCOMP_SET_MODE_FILTER with
        SECCOMP_FILTER_FLAG_NEW_LISTENER: install `prog` as
        `seccomp_set_mode_filter` does, and return the listener fd (in this
        task's table, close-on-exec) on which the syscalls the program
        answers with SECCOMP_RET.USER_NOTIF wait for a supervisor (see
        seccomp_unotify(2)).  Only one listener per process's filter
        stack: a second is EBUSY."""
        flags = _filter_flags(flags) | SECCOMP_FILTER_FLAG.NEW_LISTENER
        number = await self._set_mode_filter(prog, flags)
        return self.make_fd(number)

    async def seccomp_get_action_avail(self, action: SECCOMP_RET) -> bool:
        """`seccomp(2)` SECCOMP_GET_ACTION_AVAIL: whether this kernel knows
        filter result `action` (False where it says EOPNOTSUPP)."""
        alloc = await self.space.stage(_U32.pack(int(action)))
        try:
            await self.sysif.syscall(_SYS_seccomp, SECCOMP.GET_ACTION_AVAIL, 0, alloc.address)
        except OSError as e:
            if e.errno == errno.EOPNOTSUPP:
                return False
            raise
        return True

    async def seccomp_get_notif_sizes(
        self, sizes: Pointer[SeccompNotifSizes]
    ) -> ReadablePointer[SeccompNotifSizes]:
        """`seccomp(2)` SECCOMP_GET_NOTIF_SIZES: the sizes of the user
        notification structs in this kernel, written to `sizes` (consumed;
        read the returned pointer)."""
        check_points_to(sizes, SeccompNotifSizes)
        alloc = take(sizes, self, SeccompNotifSizes.layout.size)
        try:
            await self.sysif.syscall(_SYS_seccomp, SECCOMP.GET_NOTIF_SIZES, 0, alloc.address)
        except BaseException:
            restore(sizes, alloc)
            raise
        return sizes._readable(alloc, self)


class SeccompFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def seccomp_notif_recv(
        self, notif: Pointer[SeccompNotif]
    ) -> ReadablePointer[SeccompNotif]:
        """`seccomp_unotify(2)` SECCOMP_IOCTL_NOTIF_RECV: the next syscall
        waiting on this listener, written to `notif` (consumed; zeroed
        first, as the kernel requires).  Blocks this fd's process until a
        notification comes, whatever O_NONBLOCK says: in the local thread
        that is the interpreter, so wait with `seccomp_notif_recv_async`
        instead.  ENOENT: the process that made the syscall went away."""
        check_points_to(notif, SeccompNotif)
        task = self.task
        size = SeccompNotif.layout.size
        alloc = take(notif, task, size)
        try:
            await task.space.transport.write(alloc.address, bytes(size))
            await task.sysif.syscall(
                _SYS_ioctl, self.number, SECCOMP_IOCTL.NOTIF_RECV, alloc.address
            )
        except BaseException:
            restore(notif, alloc)
            raise
        return notif._readable(alloc, task)

    async def seccomp_notif_send(self, resp: WrittenPointer[SeccompNotifResp]) -> None:
        """`seccomp_unotify(2)` SECCOMP_IOCTL_NOTIF_SEND: answer a
        notification with `resp`.  ENOENT: no such notification is waiting
        (already answered, or its process went away); EINPROGRESS: an
        ADDFD for it is still running."""
        if not isinstance(resp, WrittenPointer) or not isinstance(resp.value, SeccompNotifResp):
            raise TypeError("resp must be a written pointer to a SeccompNotifResp")
        alloc = borrow(resp, self.task, SeccompNotifResp.layout.size)
        await self.task.sysif.syscall(
            _SYS_ioctl, self.number, SECCOMP_IOCTL.NOTIF_SEND, alloc.address
        )

    async def seccomp_notif_id_valid(self, id: int) -> bool:
        """`seccomp_unotify(2)` SECCOMP_IOCTL_NOTIF_ID_VALID: whether
        notification `id` still waits for an answer, that is, whether its
        process is still in that syscall (False where the kernel says
        ENOENT).  Check it after reading the target's memory, before acting
        on what was read."""
        value = int_arg("id", id, (0, (1 << 64) - 1))
        task = self.task
        alloc = await task.space.stage(_U64.pack(value))
        try:
            await task.sysif.syscall(
                _SYS_ioctl, self.number, SECCOMP_IOCTL.NOTIF_ID_VALID, alloc.address
            )
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    async def seccomp_notif_addfd(self, addfd: WrittenPointer[SeccompNotifAddfd]) -> int:
        """`seccomp_unotify(2)` SECCOMP_IOCTL_NOTIF_ADDFD: copy
        `addfd.srcfd` into the fd table of the process behind notification
        `addfd.id`; returns the new fd's number there (a number in another
        process's table, which no handle here can own).  ENOENT: no such
        notification waits."""
        if not isinstance(addfd, WrittenPointer) or not isinstance(addfd.value, SeccompNotifAddfd):
            raise TypeError("addfd must be a written pointer to a SeccompNotifAddfd")
        task = self.task
        src = addfd.value.srcfd
        if src.closed:
            raise ValueError("addfd.srcfd is closed")
        if src.task.fd_table is not task.fd_table:
            raise ValueError("addfd.srcfd is not in the listener's fd table")
        alloc = borrow(addfd, task, SeccompNotifAddfd.layout.size)
        return await task.sysif.syscall(
            _SYS_ioctl, self.number, SECCOMP_IOCTL.NOTIF_ADDFD, alloc.address
        )


async def seccomp_notif_recv_async(
    listener: AsyncFileDescriptor, notif: Pointer[SeccompNotif]
) -> ReadablePointer[SeccompNotif]:
    """`seccomp_unotify(2)` SECCOMP_IOCTL_NOTIF_RECV on an AsyncFileDescriptor
    of a listener: wait in the thread's epoll loop until a notification is
    pending (the listener polls readable), then receive it into `notif`
    (consumed).  ProcessLookupError (ESRCH) when no process uses the
    filter any more, so none can come.  Another reader of the same
    listener could take the notification between the two steps and leave
    this one blocked: receive from one place only."""
    handle = listener.handle
    task = handle.task

    async def attempt() -> ReadablePointer[SeccompNotif]:
        pollfd = await task.space.stage(_POLLFD.pack(handle.number, _POLLIN, 0))
        count = await task.sysif.syscall(_SYS_poll, pollfd.address, 1, 0)
        if count:
            _, _, revents = _POLLFD.unpack(await task.space.transport.read(pollfd.address, 8))
            if revents & _POLLIN:
                return await handle.seccomp_notif_recv(notif)
            if revents & (_POLLHUP | _POLLERR):
                raise ProcessLookupError(
                    errno.ESRCH, "no process uses this seccomp filter any more"
                )
        raise BlockingIOError(errno.EAGAIN, "no notification yet")

    return await listener.retry(False, attempt)
