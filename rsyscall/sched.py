"""<sched.h>: the CLONE_* flags with clone3(2), unshare(2) and setns(2);
sched_yield(2), and CPU affinity: sched_getaffinity(2), sched_setaffinity(2).

`Task.clone3` takes a pointer to a `CloneArgs` (pointers and handles for
the pidfd, the stack, set_tid and the cgroup) and returns a
`ChildProcess`; its child runs only the library's start code, which
waits until it is killed.  `Task.unsafe_clone3` is the raw syscall
(unsafe: `UnsafeCloneArgs` holds the stack, the thread area and the
places the kernel writes the pidfd and thread ids as plain integer
addresses).  A child that runs syscalls comes from `thread.clone(flags)`,
which prepares the stack, the syscall connection and the process watch
that a new child needs (rsyscall.tasks.clone).

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

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Self

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
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
from rsyscall.signal import SIG
from rsyscall.struct import Immutable, Int32, Layout, Serializable, Struct, check_fields

if TYPE_CHECKING:
    from rsyscall.handle import ChildProcess, FileDescriptor

__all__ = [
    "CLONE",
    "CLONE3_MIN_STACK",
    "CPU_SETSIZE",
    "CloneArgs",
    "PidList",
    "UnsafeCloneArgs",
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


class UnsafeCloneArgs(Struct):
    """`struct clone_args` for `Task.unsafe_clone3`, the raw clone3(2).
    Addresses are plain ints: the kernel writes the pidfd and tids there,
    and the stack is where the child starts.  `CloneArgs` is the typed
    form, for `Task.clone3`."""

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
        return isinstance(other, UnsafeCloneArgs) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"UnsafeCloneArgs({self.flags!r}, stack={self.stack:#x})"


# ---- the typed clone3(2): CloneArgs, PidList, Task.clone3 ----

CLONE3_MIN_STACK = 4096
"""The smallest `CloneArgs.stack` clone3 takes, in bytes."""

# Flags the typed clone3 refuses: they make a thread of ours or a child
# of another process (THREAD, SIGHAND, PARENT), block the caller until
# an exec that never comes (VFORK), or have the kernel write to an
# address (the tids, the thread area): those are `unsafe_clone3`'s.
_CLONE3_REFUSED = (
    CLONE.THREAD | CLONE.SIGHAND | CLONE.PARENT | CLONE.VFORK | CLONE.SETTLS
    | CLONE.PARENT_SETTID | CLONE.CHILD_SETTID | CLONE.CHILD_CLEARTID | CLONE.DETACHED
)
# Always added: the pidfd every ChildProcess has, and no signal handler
# of ours inherited (with CLONE.VM one would run our code on its stack).
_CLONE3_ALWAYS = CLONE.PIDFD | CLONE.CLEAR_SIGHAND
_STACK_WORDS = 7  # what the C core's trampoline pops: a function and six arguments


def _child_sp(address: int, size: int) -> int:
    """Where a new child's stack pointer starts in a block of memory: below
    the words the trampoline pops, so that its call has a 16-byte aligned
    stack (as rsyscall.tasks.clone.allocate_stack does)."""
    return ((address + size) & ~15) - 16 - 8 * _STACK_WORDS


class PidList(list[int], Serializable):
    """An array of pid_t: clone3(2)'s `set_tid`, the pid the child gets in
    each pid namespace, innermost first."""

    def __init__(self, pids: Iterable[int] = ()) -> None:
        values = list(pids)
        for pid in values:
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise TypeError(f"a pid is an int, not {type(pid).__name__}")
            if not 0 < pid < 1 << 31:
                raise ValueError(f"not a pid: {pid!r}")
        super().__init__(values)

    def to_bytes(self) -> bytes:
        return struct.pack(f"<{len(self)}i", *self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls(struct.unpack(f"<{len(data) // 4}i", data[: len(data) // 4 * 4]))


class CloneArgs(Immutable, Struct):
    """`struct clone_args` for `Task.clone3`, with pointers and handles
    where the C struct has addresses and fd numbers:

    * `flags`: CLONE flags; CLONE.PIDFD and CLONE.CLEAR_SIGHAND are always
      added, CLONE.INTO_CGROUP when `cgroup` is given.
    * `pidfd`: a `Pointer[Int32]` (`thread.malloc(Int32)`) the kernel
      writes the new process's pidfd into; consumed by clone3, which
      returns the pidfd as the ChildProcess's.
    * `exit_signal`: the signal the parent gets when the child exits
      (SIG.CHLD, as fork(2); None: none, and only waitid on its pidfd
      sees it).
    * `stack`: memory for the child to run on, a `Pointer[bytes]` of at
      least CLONE3_MIN_STACK bytes (`thread.malloc(bytes, 16384)`);
      consumed, and kept until the child is gone.  `stack_size` is what
      of it the child starts with.
    * `set_tid`: a written `PidList`, the child's pid in each pid
      namespace (innermost first), or None.
    * `cgroup`: a FileDescriptor of a cgroup v2 directory to start the
      child in, or None.

    The thread area (`tls`) and the tids are left out: the kernel writes
    the child tid when the child exits, whenever that is, so the
    addresses belong to `unsafe_clone3` and `UnsafeCloneArgs`."""

    __slots__ = ("cgroup", "exit_signal", "flags", "pidfd", "set_tid", "stack")
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
    flags: CLONE
    pidfd: Pointer[Int32]
    exit_signal: SIG | None
    stack: Pointer[bytes]
    set_tid: WrittenPointer[PidList] | None
    cgroup: FileDescriptor | None

    def __init__(
        self,
        flags: CLONE,
        pidfd: Pointer[Int32],
        stack: Pointer[bytes],
        exit_signal: SIG | None = SIG.CHLD,
        set_tid: WrittenPointer[PidList] | None = None,
        cgroup: FileDescriptor | None = None,
    ) -> None:
        if not isinstance(flags, int) or isinstance(flags, bool) or isinstance(flags, SIG):
            raise TypeError(f"flags must be CLONE flags, not {type(flags).__name__}")
        flags = CLONE(flags)
        refused = flags & _CLONE3_REFUSED
        if refused:
            raise ValueError(
                f"clone3 does not take {CLONE(refused)!r}: use unsafe_clone3 for those"
            )
        if not isinstance(pidfd, Pointer):
            raise TypeError(
                f"pidfd must be a Pointer[Int32] (thread.malloc(Int32)), not {type(pidfd).__name__}"
            )
        check_points_to(pidfd, Int32)
        if not isinstance(stack, Pointer) or stack._kind is not None:
            raise TypeError("stack must be a Pointer[bytes], from thread.malloc(bytes, size)")
        if stack.size() < CLONE3_MIN_STACK:
            raise ValueError(f"a stack of {stack.size()} bytes is too small: at least "
                             f"{CLONE3_MIN_STACK}")
        if exit_signal is not None and (
            not isinstance(exit_signal, SIG)
        ):
            raise TypeError(f"exit_signal must be a SIG or None, not {exit_signal!r}")
        if set_tid is not None and not (
            isinstance(set_tid, WrittenPointer) and isinstance(set_tid.value, PidList)
        ):
            raise TypeError("set_tid must be a written pointer to a PidList, or None")
        if cgroup is not None:
            if not isinstance(cgroup, BaseFileDescriptor):
                raise TypeError(f"cgroup must be a FileDescriptor, not {type(cgroup).__name__}")
            flags |= CLONE.INTO_CGROUP
        elif flags & CLONE.INTO_CGROUP:
            raise ValueError("CLONE.INTO_CGROUP needs a cgroup fd")
        object.__setattr__(self, "flags", flags | _CLONE3_ALWAYS)
        object.__setattr__(self, "pidfd", pidfd)
        object.__setattr__(self, "stack", stack)
        object.__setattr__(self, "exit_signal", exit_signal)
        object.__setattr__(self, "set_tid", set_tid)
        object.__setattr__(self, "cgroup", cgroup)

    def __repr__(self) -> str:
        return f"CloneArgs({self.flags!r}, exit_signal={self.exit_signal!r})"

    def to_bytes(self) -> bytes:
        stack = self.stack._live()
        set_tid, set_tid_size = 0, 0
        if self.set_tid is not None:
            set_tid, set_tid_size = self.set_tid._live().address, len(self.set_tid.value)
        return self.layout.struct.pack(
            self.flags, self.pidfd._live().address, 0, 0, int(self.exit_signal or 0),
            stack.address, _child_sp(stack.address, stack.size) - stack.address, 0,
            set_tid, set_tid_size, 0 if self.cgroup is None else self.cgroup.number,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        raise TypeError("a CloneArgs cannot be read back; use the WrittenPointer's .value")


# ---- end of the typed clone3 types ----

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

    async def unsafe_clone3(self, args: ReadablePointer[UnsafeCloneArgs]) -> int:
        """clone3(2), raw: make a child process; returns its pid.

        `Task.clone3` is the typed form; `thread.clone(flags)` makes a
        child that runs syscalls.
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
        alloc = borrow(args, self, UnsafeCloneArgs.sizeof())
        return await self.sysif.syscall(SYS.clone3, alloc.address, alloc.size)

    async def clone3(self, args: WrittenPointer[CloneArgs]) -> ChildProcess:
        """clone3(2): a new child process, as `args` says; returns its
        `ChildProcess`, with the pidfd the kernel wrote into `args.pidfd`.

        The child runs none of your code: it starts, on `args.stack`, in
        the library's start code, which waits, doing nothing, until the
        child is killed.  It is a process to hold new namespaces (open
        /proc/PID/ns/*, or setns to its pidfd), to signal, trace or wait
        for.  For a child that makes syscalls, use `thread.clone(flags)`.
        Without CLONE.VM it has a copy of this process's memory, and
        without CLONE.FILES a copy of its fd table, which it keeps until it
        dies: kill it (dropping the handle kills and reaps it).  It does
        not die with its parent.

        `args.pidfd` and `args.stack` are consumed (the stack is the
        child's until it is gone); the other pointers and the cgroup fd
        are only read, and must still be live."""
        from rsyscall.handle import ChildProcess
        from rsyscall.tasks.clone import RunningMemory

        value = args.value if isinstance(args, WrittenPointer) else None
        if not isinstance(value, CloneArgs):
            raise TypeError("clone3 needs a pointer to a CloneArgs: thread.ptr(CloneArgs(...))")
        args_alloc = borrow(args, self, CloneArgs.sizeof())
        space = self.space
        if value.set_tid is not None:
            borrow(value.set_tid, self)
        if value.cgroup is not None and value.cgroup.task.fd_table is not self.fd_table:
            raise ValueError("the cgroup fd belongs to a different fd table")
        if value.cgroup is not None:
            value.cgroup.number  # noqa: B018 (raises if the handle was closed)
        pidfd_alloc = take(value.pidfd, self, 4)
        try:
            stack_alloc = take(value.stack, self, CLONE3_MIN_STACK)
        except BaseException:
            restore(value.pidfd, pidfd_alloc)
            raise
        try:
            # The start the trampoline pops: rsys_futex_waiter(word), with a
            # word that stays 1, so the child waits until it is killed.
            word = stack_alloc.address
            sp = _child_sp(stack_alloc.address, stack_alloc.size)
            await space.transport.write(word, struct.pack("<i", 1))
            frame = [space.functions.futex_waiter, word] + [0] * (_STACK_WORDS - 2)
            await space.transport.write(sp, struct.pack(f"<{_STACK_WORDS}Q", *frame))
            pid = await self.sysif.syscall(SYS.clone3, args_alloc.address, args_alloc.size)
        except BaseException:
            restore(value.pidfd, pidfd_alloc)
            restore(value.stack, stack_alloc)
            raise
        (number,) = struct.unpack("<i", await space.transport.read(pidfd_alloc.address, 4))
        pidfd = self.make_fd(number)
        local = pidfd if self.sysif.is_local else None
        memory = RunningMemory(local, stack_alloc)
        return ChildProcess(self, pid, pidfd, local, memory)  # type: ignore[arg-type]

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
