"""<sys/wait.h>: waitid(2), its P_* and W* constants, and child states.

`ChildState` is what a child's change of state looks like (the `siginfo_t`
waitid fills, interpreted); `CalledProcessError` is raised by
`AsyncChildProcess.check` when a child did not exit 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self, overload

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, check_points_to, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG
from rsyscall.struct import Layout, PidT, Struct, check_fields
from rsyscall.sys.resource import Rusage

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["CLD", "P", "W", "CalledProcessError", "ChildState", "Siginfo", "WaitTask"]


class P(IntEnum):
    """waitid(2) idtype: which children `id` names."""

    ALL = 0
    PID = 1
    PGID = 2
    PIDFD = 3


class W(IntFlag):
    """waitid(2) options."""

    NONE = 0
    NOHANG = 1
    STOPPED = 2
    EXITED = 4
    CONTINUED = 8
    NOWAIT = 0x01000000
    NOTHREAD = 0x20000000
    ALL = 0x40000000
    CLONE = 0x80000000


class CLD(IntEnum):
    """si_code values of a SIGCHLD siginfo: how the child's state changed."""

    EXITED = 1
    KILLED = 2
    DUMPED = 3
    TRAPPED = 4
    STOPPED = 5
    CONTINUED = 6


_SIGINFO_FIELDS = (
    ("signo", "i"), ("errno", "i"), ("code", "i"), ("pid", "i"), ("uid", "I"), ("status", "i"),
    ("utime", "q"), ("stime", "q"),
)


class Siginfo(Struct):
    """`siginfo_t` as waitid(2) fills it for a child: the fields that
    SIGCHLD defines (signo, errno, code, pid, uid, status, utime, stime)."""

    __slots__ = ("code", "errno", "pid", "signo", "status", "stime", "uid", "utime")
    layout: ClassVar[Layout] = Layout(
        "siginfo_t",
        [
            ("si_signo", "i"),
            ("si_errno", "i"),
            ("si_code", "i"),
            ("_pad", "4x"),
            ("si_pid", "i"),
            ("si_uid", "I"),
            ("si_status", "i"),
            ("_pad2", "4x"),
            ("si_utime", "q"),
            ("si_stime", "q"),
            ("_rest", "80x"),
        ],
    )

    def __init__(
        self, signo: int = 0, errno: int = 0, code: int = 0, pid: int = 0, uid: int = 0,
        status: int = 0, utime: int = 0, stime: int = 0,
    ) -> None:
        self.signo = signo
        self.errno = errno
        self.code = code
        self.pid = pid
        self.uid = uid
        self.status = status
        self.utime = utime
        self.stime = stime
        check_fields(self, _SIGINFO_FIELDS)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            self.signo, self.errno, self.code, self.pid, self.uid, self.status, self.utime,
            self.stime,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a siginfo_t is {cls.layout.size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Siginfo) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return (f"Siginfo(signo={self.signo}, code={self.code}, pid={self.pid}, "
                f"status={self.status})")


class ChildState:
    """A child's change of state, as waitid reported it.

    `code` says what happened (exited, killed, dumped core, stopped,
    continued); `status` is the exit status or the signal number."""

    __slots__ = ("code", "pid", "status", "stderr", "stdout", "uid")

    def __init__(self, code: CLD, pid: int, uid: int, status: int) -> None:
        self.code = code
        self.pid = pid
        self.uid = uid
        self.status = status
        # What `Thread.run` captured of the child's output, if it did.
        self.stdout: bytes | None = None
        self.stderr: bytes | None = None

    @classmethod
    def from_siginfo(cls, info: Siginfo) -> ChildState:
        return cls(CLD(info.code), info.pid, info.uid, info.status)

    def died(self) -> bool:
        """Whether the child is gone: it exited, was killed, or dumped core."""
        return self.code in (CLD.EXITED, CLD.KILLED, CLD.DUMPED)

    def clean(self) -> bool:
        """Whether the child exited with status 0."""
        return self.code == CLD.EXITED and self.status == 0

    @property
    def exit_status(self) -> int | None:
        """The exit status, if the child exited."""
        return self.status if self.code == CLD.EXITED else None

    def killed_with(self) -> SIG | None:
        """The signal that killed the child, if one did."""
        if self.code in (CLD.KILLED, CLD.DUMPED):
            return SIG(self.status)
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChildState) and (self.code, self.pid, self.status) == (
            other.code, other.pid, other.status)

    def __hash__(self) -> int:
        return hash((self.code, self.pid, self.status))

    def __repr__(self) -> str:
        if self.code == CLD.EXITED:
            what = f"exited with {self.status}"
        elif self.code in (CLD.KILLED, CLD.DUMPED):
            what = f"killed by {SIG(self.status).name}"
        else:
            what = f"{self.code.name.lower()} (status {self.status})"
        return f"ChildState(pid {self.pid} {what})"


class CalledProcessError(Exception):
    """A child did not exit with status 0 (from `AsyncChildProcess.check`)."""

    def __init__(self, state: ChildState, command: object = None) -> None:
        self.state = state
        self.command = command
        # The captured output, as subprocess.CalledProcessError has it.
        self.stdout = state.stdout
        self.stderr = state.stderr
        where = f" {command}" if command is not None else ""
        message = f"child{where} did not exit cleanly: {state!r}"
        if state.stderr:
            tail = state.stderr[-500:].decode(errors="replace").rstrip()
            message += f"; its stderr ends: {tail}"
        super().__init__(message)


_SYS_waitid = int(SYS.waitid)


class WaitTask(BaseTask):
    __slots__ = ()

    @overload
    async def waitid(
        self, idtype: P, id: PidT | FileDescriptor, infop: Pointer[Siginfo], options: W,
        rusage: None = None,
    ) -> ReadablePointer[Siginfo]: ...

    @overload
    async def waitid(
        self, idtype: P, id: PidT | FileDescriptor, infop: Pointer[Siginfo], options: W,
        rusage: Pointer[Rusage],
    ) -> tuple[ReadablePointer[Siginfo], ReadablePointer[Rusage]]: ...

    async def waitid(
        self, idtype: P, id: PidT | FileDescriptor, infop: Pointer[Siginfo], options: W,
        rusage: Pointer[Rusage] | None = None,
    ) -> ReadablePointer[Siginfo] | tuple[ReadablePointer[Siginfo], ReadablePointer[Rusage]]:
        """waitid(2): wait for a child (`idtype` and `id` say which; for
        P.PIDFD, `id` is the pidfd) to change state, and fill `infop`.

        With W.NOHANG and no child ready, the siginfo read back has pid 0.
        Given `rusage` (the raw syscall's fifth argument), the kernel also
        writes the child's resource use there (zeros if none was ready);
        both pointers are consumed and returned, filled."""
        if isinstance(id, BaseFileDescriptor):
            number = id.number
        elif isinstance(id, int) and not isinstance(id, bool):
            number = id
        else:
            raise TypeError(f"id must be an int or a FileDescriptor, not {type(id).__name__}")
        if rusage is not None:
            check_points_to(rusage, Rusage)
        alloc = take(infop, self, Siginfo.sizeof())
        try:
            usage = None if rusage is None else take(rusage, self, Rusage.sizeof())
        except BaseException:
            restore(infop, alloc)
            raise
        try:
            # With WNOHANG and nothing to report the kernel leaves the
            # buffer alone, so clear si_pid first to make "nothing" readable.
            await self.space.transport.write(alloc.address, bytes(Siginfo.sizeof()))
            await self.sysif.syscall(
                _SYS_waitid, idtype, number, alloc.address, options,
                0 if usage is None else usage.address,
            )
        except BaseException:
            restore(infop, alloc)
            if rusage is not None and usage is not None:
                restore(rusage, usage)
            raise
        info = infop._readable(alloc, self)
        if rusage is None or usage is None:
            return info
        return info, rusage._readable(usage, self)


class WaitProcess(BaseProcess):
    __slots__ = ()
