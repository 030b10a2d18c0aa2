"""<sched.h>: the CLONE_* flags with clone3(2), unshare(2) and setns(2);
sched_yield(2), and CPU affinity: sched_getaffinity(2), sched_setaffinity(2).

`Task.unsafe_clone3` is the raw syscall (unsafe: `CloneArgs` holds the
stack, the thread area and the places the kernel writes the pidfd and
thread ids as plain integer addresses); a usable child comes from
`thread.clone(flags)`, which prepares the stack, the syscall connection and
the process watch that a new child needs (rsyscall.tasks.clone).

The affinity syscalls act on a process: as methods of `Task` they act on
the calling process (pid 0), as methods of `Process` on that pid.  The
kernel applies them to one thread: the one making the syscall for pid 0,
the thread whose id is the pid otherwise (a process's pid names its main
thread).

A `CpuSet` is a set of CPU numbers, in memory the kernel's CPU mask (an
array of unsigned longs, bit n for CPU n).  It takes 128 bytes, glibc's
`cpu_set_t`: room for CPU_SETSIZE = 1024 CPUs.  sched_getaffinity needs a
buffer at least as big as the kernel's own mask (OSError EINVAL otherwise),
so on a machine configured for more than 1024 CPUs it fails; the kernel
writes only its mask's size (8 bytes for up to 64 CPUs), so the call
splits the buffer into the part written and the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Self

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Layout, Struct, check_fields

if TYPE_CHECKING:
    pass

__all__ = [
    "CLONE",
    "CPU_SETSIZE",
    "CloneArgs",
    "CpuSet",
    "SchedFileDescriptor",
    "SchedProcess",
    "SchedTask",
]


class CLONE(IntFlag):
    """clone(2) flags: what a child shares with its parent, and which new
    namespaces it gets.  unshare(2) and setns(2) take the namespace ones."""

    NONE = 0
    NEWTIME = 0x00000080
    VM = 0x00000100
    FS = 0x00000200
    FILES = 0x00000400
    SIGHAND = 0x00000800
    PIDFD = 0x00001000
    PTRACE = 0x00002000
    VFORK = 0x00004000
    PARENT = 0x00008000
    THREAD = 0x00010000
    NEWNS = 0x00020000
    SYSVSEM = 0x00040000
    SETTLS = 0x00080000
    PARENT_SETTID = 0x00100000
    CHILD_CLEARTID = 0x00200000
    DETACHED = 0x00400000
    UNTRACED = 0x00800000
    CHILD_SETTID = 0x01000000
    NEWCGROUP = 0x02000000
    NEWUTS = 0x04000000
    NEWIPC = 0x08000000
    NEWUSER = 0x10000000
    NEWPID = 0x20000000
    NEWNET = 0x40000000
    IO = 0x80000000
    CLEAR_SIGHAND = 0x100000000
    INTO_CGROUP = 0x200000000


class CloneArgs(Struct):
    """`struct clone_args` for clone3(2) (`Task.unsafe_clone3`).  Addresses
    are plain ints: the kernel writes the pidfd and tids there, and the
    stack is where the child starts."""

    __slots__ = (
        "cgroup", "child_tid", "exit_signal", "flags", "parent_tid", "pidfd", "set_tid",
        "set_tid_size", "stack", "stack_size", "tls",
    )
    layout: ClassVar[Layout] = Layout(
        "struct clone_args",
        [
            ("flags", "Q"),
            ("pidfd", "Q"),
            ("child_tid", "Q"),
            ("parent_tid", "Q"),
            ("exit_signal", "Q"),
            ("stack", "Q"),
            ("stack_size", "Q"),
            ("tls", "Q"),
            ("set_tid", "Q"),
            ("set_tid_size", "Q"),
            ("cgroup", "Q"),
        ],
    )

    def __init__(
        self,
        flags: CLONE,
        pidfd: int = 0,
        child_tid: int = 0,
        parent_tid: int = 0,
        exit_signal: int = 0,
        stack: int = 0,
        stack_size: int = 0,
        tls: int = 0,
        set_tid: int = 0,
        set_tid_size: int = 0,
        cgroup: int = 0,
    ) -> None:
        self.flags = flags
        self.pidfd = pidfd
        self.child_tid = child_tid
        self.parent_tid = parent_tid
        self.exit_signal = exit_signal
        self.stack = stack
        self.stack_size = stack_size
        self.tls = tls
        self.set_tid = set_tid
        self.set_tid_size = set_tid_size
        self.cgroup = cgroup
        check_fields(self, [(name, "Q") for name, _ in self.layout.fields])
        self.flags = CLONE(flags)

    def _values(self) -> tuple[int, ...]:
        return (
            self.flags, self.pidfd, self.child_tid, self.parent_tid, self.exit_signal,
            self.stack, self.stack_size, self.tls, self.set_tid, self.set_tid_size, self.cgroup,
        )

    def to_bytes(self) -> bytes:
        try:
            return self.layout.struct.pack(*self._values())
        except Exception as error:  # struct.error: a field out of range
            raise ValueError(f"CloneArgs field out of range: {error}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a clone_args is {cls.layout.size} bytes, got {len(data)}")
        flags, *rest = cls.layout.struct.unpack_from(data)
        return cls(CLONE(flags), *rest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CloneArgs) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"CloneArgs({self.flags!r}, stack={self.stack:#x})"

CPU_SETSIZE = 1024
"""How many CPUs a `CpuSet` can hold: C's CPU_SETSIZE."""

_MASK_BYTES = CPU_SETSIZE // 8
# The kernel's mask is made of unsigned longs: a buffer must hold one at least.
_LONG_BYTES = 8


def _cpu(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"a CPU number must be an int, not {type(value).__name__}")
    if not 0 <= value < CPU_SETSIZE:
        raise ValueError(f"CPU number {value} outside 0..{CPU_SETSIZE - 1}")
    return int(value)


class CpuSet(frozenset[int], Struct):
    """`cpu_set_t`: an immutable set of CPU numbers, 0 to CPU_SETSIZE - 1.

    It is a frozenset, so it compares equal to the sets of
    `os.sched_getaffinity`; set operations on it return plain frozensets
    (wrap them in CpuSet again to write them).  Reading accepts a mask of
    any length, as the kernel writes only as much as its own mask."""

    __slots__ = ()
    layout = Layout("cpu_set_t", [("__bits", f"{_MASK_BYTES}s")])

    def __new__(cls, cpus: Iterable[int] = ()) -> Self:
        return super().__new__(cls, [_cpu(cpu) for cpu in cpus])

    def __repr__(self) -> str:
        return f"CpuSet({sorted(self)})"

    def to_bytes(self) -> bytes:
        mask = 0
        for cpu in self:
            mask |= 1 << cpu
        return mask.to_bytes(_MASK_BYTES, "little")

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        # The mask's unsigned longs are little-endian, so the whole mask is
        # one little-endian number with bit n for CPU n.
        mask = int.from_bytes(data, "little")
        return cls(cpu for cpu in range(mask.bit_length()) if mask >> cpu & 1)




async def _getaffinity(
    task: BaseTask, pid: int, mask: Pointer[CpuSet]
) -> tuple[ReadablePointer[CpuSet], Pointer[CpuSet]]:
    check_points_to(mask, CpuSet)
    alloc = take(mask, task, _LONG_BYTES)
    try:
        count = await task.sysif.syscall(SYS.sched_getaffinity, pid, alloc.size, alloc.address)
    except BaseException:
        restore(mask, alloc)
        raise
    return mask._readable_split(alloc, count, task)


async def _setaffinity(task: BaseTask, pid: int, mask: ReadablePointer[CpuSet]) -> None:
    check_points_to(mask, CpuSet)
    alloc = borrow(mask, task)
    await task.sysif.syscall(SYS.sched_setaffinity, pid, alloc.size, alloc.address)


class SchedTask(BaseTask):
    __slots__ = ()

    async def unsafe_clone3(self, args: ReadablePointer[CloneArgs]) -> int:
        """clone3(2): make a child process; returns its pid.

        The raw syscall; use `thread.clone(flags)` for a working child.
        Unsafe: `args` holds plain integer addresses, which the kernel
        uses as they are.  The caller must make sure that `pidfd`,
        `child_tid` and `parent_tid` (with CLONE.PIDFD,
        CLONE.CHILD_SETTID / CHILD_CLEARTID and CLONE.PARENT_SETTID) are
        addresses of live memory in this address space with room for the
        int the kernel writes there (CHILD_CLEARTID's at the child's exit
        or exec, however late), that nothing else relies on those bytes,
        that `stack` and `stack_size` name memory that stays allocated
        until the child is gone and holds what the code it starts on
        expects (the library's trampoline pops a function and its
        arguments), that `tls` is a valid thread area, and that `set_tid`
        points to `set_tid_size` pids.  A child sharing the address space
        (CLONE.VM) that starts on a bad stack, or a write through a wrong
        address, crashes or corrupts the Python process."""
        alloc = borrow(args, self, CloneArgs.sizeof())
        return await self.sysif.syscall(SYS.clone3, alloc.address, alloc.size)

    async def unshare(self, flags: CLONE) -> None:
        """unshare(2): give this process new namespaces, or its own copy of
        what it shared (CLONE.FILES, CLONE.FS).  For CLONE.NEWUSER use
        `thread.unshare`, which also writes the uid and gid maps."""
        await self.sysif.syscall(SYS.unshare, flags)

    async def sched_yield(self) -> None:
        """sched_yield(2): let other threads run on this process's CPU."""
        await self.sysif.syscall(SYS.sched_yield)

    async def sched_getaffinity(
        self, mask: Pointer[CpuSet]
    ) -> tuple[ReadablePointer[CpuSet], Pointer[CpuSet]]:
        """sched_getaffinity(2) of this process (pid 0): write the CPUs it
        may run on into `mask` (consumed).  Returns the part the kernel
        wrote (its mask's size) and the rest."""
        return await _getaffinity(self, 0, mask)

    async def sched_setaffinity(self, mask: ReadablePointer[CpuSet]) -> None:
        """sched_setaffinity(2) of this process (pid 0): let it run only on
        the CPUs in `mask`, which may be any readable pointer to a CpuSet,
        such as the part sched_getaffinity returned."""
        await _setaffinity(self, 0, mask)


class SchedProcess(BaseProcess):
    __slots__ = ()

    async def sched_getaffinity(
        self, mask: Pointer[CpuSet]
    ) -> tuple[ReadablePointer[CpuSet], Pointer[CpuSet]]:
        """sched_getaffinity(2): write the CPUs this process may run on into
        `mask` (consumed).  Returns the part the kernel wrote and the rest."""
        return await _getaffinity(self.task, self.pid, mask)

    async def sched_setaffinity(self, mask: ReadablePointer[CpuSet]) -> None:
        """sched_setaffinity(2): let this process run only on the CPUs in
        `mask`, any readable pointer to a CpuSet."""
        await _setaffinity(self.task, self.pid, mask)


class SchedFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def setns(self, nstype: CLONE = CLONE.NONE) -> None:
        """setns(2): move the calling process into the namespace this fd
        names (a /proc/pid/ns file or a pidfd); `nstype` restricts which
        kind is accepted (NONE: any)."""
        await self.task.sysif.syscall(SYS.setns, self.number, nstype)
