"""<sched.h>: the CLONE_* flags with clone3(2), clone(2), unshare(2) and
setns(2); sched_yield(2), CPU affinity (sched_getaffinity(2),
sched_setaffinity(2)), getcpu(2), and scheduling policies:
sched_setscheduler(2), sched_getscheduler(2), sched_setparam(2),
sched_getparam(2), sched_setattr(2), sched_getattr(2),
sched_get_priority_max(2), sched_get_priority_min(2),
sched_rr_get_interval(2).

`SCHED` holds the policies, and SCHED.RESET_ON_FORK, the flag that
sched_setscheduler takes or'ed into its policy (and sched_getscheduler
reports so).  `SchedAttr` is the kernel's `struct sched_attr`
(<linux/sched/types.h>, which glibc 2.36's <sched.h> does not have).

`Task.clone3` takes a pointer to a `CloneArgs` (pointers and handles for
the pidfd, the stack, set_tid and the cgroup) and returns a
`ChildProcess`; its child runs only the library's start code, which
waits until it is killed.  `Task.unsafe_clone3` is the raw syscall
(unsafe: `UnsafeCloneArgs` holds the stack, the thread area and the
places the kernel writes the pidfd and thread ids as plain integer
addresses), and `Task.unsafe_clone` the older clone(2), for hosts whose
seccomp profile refuses clone3.  A child that runs syscalls comes from `thread.clone(flags)`,
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
from typing import TYPE_CHECKING, Any, ClassVar, Self, overload

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
from rsyscall.struct import (
    C_ULONG,
    FixedSize,
    Immutable,
    Int32,
    Layout,
    Serializable,
    Struct,
    UInt32,
    check_fields,
    int_arg,
)
from rsyscall.time import Timespec

if TYPE_CHECKING:
    from rsyscall.handle import ChildProcess, FileDescriptor

__all__ = [
    "CLONE",
    "CLONE3_MIN_STACK",
    "CPU_SETSIZE",
    "SCHED",
    "SCHED_FLAG",
    "CloneArgs",
    "PidList",
    "UnsafeCloneArgs",
    "CpuSet",
    "SchedAttr",
    "SchedParam",
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




class SCHED(IntFlag):
    """Scheduling policies (C: SCHED_OTHER...), and RESET_ON_FORK, which
    sched_setscheduler(2) takes or'ed into the policy: children start with
    the default policy (and a negative nice value reset to 0)."""

    OTHER = 0
    FIFO = 1
    RR = 2
    BATCH = 3
    ISO = 4
    IDLE = 5
    DEADLINE = 6
    RESET_ON_FORK = 0x40000000


class SCHED_FLAG(IntFlag):
    """`SchedAttr.flags` (C: SCHED_FLAG_*, <linux/sched.h>)."""

    NONE = 0
    RESET_ON_FORK = 0x01
    RECLAIM = 0x02
    DL_OVERRUN = 0x04
    KEEP_POLICY = 0x08
    KEEP_PARAMS = 0x10
    UTIL_CLAMP_MIN = 0x20
    UTIL_CLAMP_MAX = 0x40


class SchedParam(Struct):
    """`struct sched_param`: the static `priority` of a SCHED.FIFO or
    SCHED.RR process (1..99; 0 for the other policies)."""

    __slots__ = ("priority",)
    layout: ClassVar[Layout] = Layout("struct sched_param", [("sched_priority", "i")])

    def __init__(self, priority: int = 0) -> None:
        self.priority = int_arg("priority", priority, (-(1 << 31), (1 << 31) - 1))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.priority)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a sched_param is {cls.layout.size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SchedParam) and self.priority == other.priority

    def __hash__(self) -> int:
        return hash(self.priority)

    def __repr__(self) -> str:
        return f"SchedParam(priority={self.priority})"


_SCHED_ATTR = struct.Struct("<IIQiIQQQII")
_SCHED_ATTR_FIELDS = (
    ("size", (0, (1 << 32) - 1)), ("policy", (0, (1 << 32) - 1)), ("flags", C_ULONG),
    ("nice", (-(1 << 31), (1 << 31) - 1)), ("priority", (0, (1 << 32) - 1)),
    ("runtime", C_ULONG), ("deadline", C_ULONG), ("period", C_ULONG),
    ("util_min", (0, (1 << 32) - 1)), ("util_max", (0, (1 << 32) - 1)),
)


class SchedAttr(Serializable, FixedSize):
    """The kernel's `struct sched_attr` (<linux/sched/types.h>, 56 bytes,
    SCHED_ATTR_SIZE_VER1) for sched_setattr(2) and sched_getattr(2):
    `policy` (SCHED, without RESET_ON_FORK, which is `flags`'
    SCHED_FLAG.RESET_ON_FORK here), `flags`, `nice` (SCHED.OTHER and
    BATCH), `priority` (FIFO and RR), and for SCHED.DEADLINE `runtime`,
    `deadline` and `period` in nanoseconds; `util_min` and `util_max`
    are the utilization clamps.  `size` is the struct's size, which the
    kernel checks.  (glibc 2.36 has no sched_attr; the kernel's header
    cannot be included with <sched.h>, so the ABI test checks it apart.)"""

    __slots__ = tuple(sorted(name for name, _ in _SCHED_ATTR_FIELDS))
    size: int
    policy: SCHED
    flags: SCHED_FLAG
    nice: int
    priority: int
    runtime: int
    deadline: int
    period: int
    util_min: int
    util_max: int

    def __init__(
        self,
        policy: SCHED,
        flags: SCHED_FLAG = SCHED_FLAG.NONE,
        nice: int = 0,
        priority: int = 0,
        runtime: int = 0,
        deadline: int = 0,
        period: int = 0,
        util_min: int = 0,
        util_max: int = 0,
        size: int = 56,
    ) -> None:
        values = (size, policy, flags, nice, priority, runtime, deadline, period, util_min,
                  util_max)
        for (name, limits), value in zip(_SCHED_ATTR_FIELDS, values, strict=True):
            setattr(self, name, int_arg(f"SchedAttr.{name}", value, limits))
        self.policy = SCHED(self.policy)
        self.flags = SCHED_FLAG(self.flags)

    @classmethod
    def sizeof(cls) -> int:
        return _SCHED_ATTR.size

    def to_bytes(self) -> bytes:
        return _SCHED_ATTR.pack(*(int_arg(f"SchedAttr.{name}", getattr(self, name), limits)
                                  for name, limits in _SCHED_ATTR_FIELDS))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < _SCHED_ATTR.size:
            raise ValueError(f"a sched_attr is {_SCHED_ATTR.size} bytes, got {len(data)}")
        size, policy, flags, nice, priority, runtime, deadline, period, umin, umax = (
            _SCHED_ATTR.unpack_from(data))
        return cls(SCHED(policy), SCHED_FLAG(flags), nice, priority, runtime, deadline, period,
                   umin, umax, size=size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchedAttr):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (f"SchedAttr({self.policy!r}, flags={self.flags!r}, nice={self.nice}, "
                f"priority={self.priority}, runtime={self.runtime}, deadline={self.deadline}, "
                f"period={self.period})")


def _policy(policy: object) -> int:
    return int_arg("policy", policy, (-(1 << 31), (1 << 31) - 1))


async def _fill(task: BaseTask, number: int, args: tuple[int, ...], ptr: Pointer[Any],
                cls: type, size: int, after: tuple[int, ...] = ()) -> ReadablePointer[Any]:
    check_points_to(ptr, cls)
    alloc = take(ptr, task, size)
    try:
        await task.sysif.syscall(number, *args, alloc.address, *after)
    except BaseException:
        restore(ptr, alloc)
        raise
    return ptr._readable(alloc, task)


async def _write_from(task: BaseTask, number: int, pid: int, ptr: ReadablePointer[Any],
                      cls: type, first: tuple[int, ...] = (), after: tuple[int, ...] = ()) -> None:
    check_points_to(ptr, cls)
    address = borrow(ptr, task, cls.sizeof()).address  # type: ignore[attr-defined]
    await task.sysif.syscall(number, pid, *first, address, *after)


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

    async def sched_setscheduler(
        self, policy: SCHED, param: ReadablePointer[SchedParam]
    ) -> None:
        """sched_setscheduler(2) of this process (pid 0): set its policy (SCHED, with
        SCHED.RESET_ON_FORK or'ed in if wanted) and the priority in
        `param` (1..99 for FIFO and RR, 0 otherwise: EINVAL if not).  The
        real-time policies need CAP_SYS_NICE or RLIMIT_RTPRIO."""
        await _write_from(self, SYS.sched_setscheduler, 0, param, SchedParam,
                          (_policy(policy),))

    async def sched_getscheduler(self) -> SCHED:
        """sched_getscheduler(2) of this process (pid 0): its policy, with
        SCHED.RESET_ON_FORK or'ed in if it is set."""
        return SCHED(await self.sysif.syscall(SYS.sched_getscheduler, 0))

    async def sched_setparam(self, param: ReadablePointer[SchedParam]) -> None:
        """sched_setparam(2) of this process (pid 0): set its priority to `param`'s,
        keeping the policy."""
        await _write_from(self, SYS.sched_setparam, 0, param, SchedParam)

    async def sched_getparam(self, param: Pointer[SchedParam]) -> ReadablePointer[SchedParam]:
        """sched_getparam(2) of this process (pid 0): fill `param` (consumed) with its
        priority."""
        return await _fill(self, SYS.sched_getparam, (0,), param, SchedParam,
                           SchedParam.sizeof())

    async def sched_setattr(self, attr: ReadablePointer[SchedAttr], flags: int = 0) -> None:
        """sched_setattr(2) of this process (pid 0): set its policy and its parameters
        from `attr` (`flags` must be 0, as the man page says)."""
        await _write_from(self, SYS.sched_setattr, 0, attr, SchedAttr, (),
                          (int_arg("flags", flags, (0, 0)),))

    async def sched_getattr(
        self, attr: Pointer[SchedAttr], flags: int = 0
    ) -> ReadablePointer[SchedAttr]:
        """sched_getattr(2) of this process (pid 0): fill `attr` (consumed) with its policy
        and its parameters (`flags` must be 0)."""
        return await _fill(self, SYS.sched_getattr, (0,), attr, SchedAttr,
                           SchedAttr.sizeof(),
                           (SchedAttr.sizeof(), int_arg("flags", flags, (0, 0))))

    async def sched_rr_get_interval(self, tp: Pointer[Timespec]) -> ReadablePointer[Timespec]:
        """sched_rr_get_interval(2) of this process (pid 0): fill `tp` (consumed) with its
        time quantum under SCHED.RR (0 under FIFO; the CFS slice for the
        others)."""
        return await _fill(self, SYS.sched_rr_get_interval, (0,), tp, Timespec,
                           Timespec.sizeof())

    async def unsafe_clone(
        self,
        flags: CLONE,
        stack: int = 0,
        parent_tid: int = 0,
        child_tid: int = 0,
        tls: int = 0,
        exit_signal: int = 0,
    ) -> int:
        """clone(2), the raw syscall with the x86_64 argument order (flags,
        stack, parent_tid, child_tid, tls): make a child process; returns
        its pid.  `exit_signal` goes into the low byte of the flags (the
        man page's CSIGNAL); CLONE flags above 32 bits (CLEAR_SIGHAND,
        INTO_CGROUP) exist only for clone3 and are refused here.  With
        CLONE.PIDFD the kernel writes the pidfd at `parent_tid`.

        The raw syscall; `thread.clone(flags, legacy_clone=True)` makes a
        working child with it.  Unsafe: as for `unsafe_clone3`, the
        caller must make sure the addresses are live memory in this
        address space with room for what the kernel writes there
        (`parent_tid`, `child_tid`, at any later time for CHILD_CLEARTID),
        that `stack` is the top of a stack that outlives the child and
        holds what the code it starts on expects (the library's trampoline
        pops a function and its arguments), and that `tls` is a valid
        thread area.  A child sharing the address space that starts on a
        bad stack crashes or corrupts the Python process."""
        flags = CLONE(int_arg("flags", flags, C_ULONG))
        if flags >> 32:
            raise ValueError(f"{CLONE(flags & ~0xFFFFFFFF)!r} exist only for clone3")
        if flags & 0xFF:
            raise ValueError("the low byte of clone's flags is exit_signal's")
        signal = int_arg("exit_signal", exit_signal, (0, 0xFF))
        return await self.sysif.syscall(
            SYS.clone, int(flags) | signal, int_arg("stack", stack, C_ULONG),
            int_arg("parent_tid", parent_tid, C_ULONG), int_arg("child_tid", child_tid, C_ULONG),
            int_arg("tls", tls, C_ULONG))

    @overload
    async def getcpu(self, cpu: Pointer[UInt32], node: None = None) -> ReadablePointer[UInt32]: ...
    @overload
    async def getcpu(
        self, cpu: Pointer[UInt32], node: Pointer[UInt32]
    ) -> tuple[ReadablePointer[UInt32], ReadablePointer[UInt32]]: ...
    async def getcpu(
        self, cpu: Pointer[UInt32], node: Pointer[UInt32] | None = None
    ) -> ReadablePointer[UInt32] | tuple[ReadablePointer[UInt32], ReadablePointer[UInt32]]:
        """getcpu(2): fill `cpu` (consumed) with the number of the CPU the
        calling thread is running on, and `node` (consumed), if given,
        with its NUMA node.  (It may have moved by the time you read it.)"""
        check_points_to(cpu, UInt32)
        if node is not None:
            check_points_to(node, UInt32)
        cpu_alloc = take(cpu, self, 4)
        node_alloc = None
        try:
            node_alloc = take(node, self, 4) if node is not None else None
            await self.sysif.syscall(
                SYS.getcpu, cpu_alloc.address, 0 if node_alloc is None else node_alloc.address, 0)
        except BaseException:
            restore(cpu, cpu_alloc)
            if node is not None and node_alloc is not None:
                restore(node, node_alloc)
            raise
        got = cpu._readable(cpu_alloc, self)
        if node is None or node_alloc is None:
            return got
        return got, node._readable(node_alloc, self)

    async def sched_get_priority_max(self, policy: SCHED) -> int:
        """sched_get_priority_max(2): the highest priority of `policy`
        (99 for FIFO and RR, 0 for the others)."""
        return await self.sysif.syscall(SYS.sched_get_priority_max, _policy(policy))

    async def sched_get_priority_min(self, policy: SCHED) -> int:
        """sched_get_priority_min(2): the lowest priority of `policy`
        (1 for FIFO and RR, 0 for the others)."""
        return await self.sysif.syscall(SYS.sched_get_priority_min, _policy(policy))

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

    async def sched_setscheduler(
        self, policy: SCHED, param: ReadablePointer[SchedParam]
    ) -> None:
        """sched_setscheduler(2): set this process's policy (SCHED, with
        SCHED.RESET_ON_FORK or'ed in if wanted) and the priority in
        `param` (1..99 for FIFO and RR, 0 otherwise: EINVAL if not).  The
        real-time policies need CAP_SYS_NICE or RLIMIT_RTPRIO."""
        await _write_from(self.task, SYS.sched_setscheduler, self.pid, param, SchedParam,
                          (_policy(policy),))

    async def sched_getscheduler(self) -> SCHED:
        """sched_getscheduler(2): this process's policy, with
        SCHED.RESET_ON_FORK or'ed in if it is set."""
        return SCHED(await self.task.sysif.syscall(SYS.sched_getscheduler, self.pid))

    async def sched_setparam(self, param: ReadablePointer[SchedParam]) -> None:
        """sched_setparam(2): set this process's priority to `param`'s,
        keeping the policy."""
        await _write_from(self.task, SYS.sched_setparam, self.pid, param, SchedParam)

    async def sched_getparam(self, param: Pointer[SchedParam]) -> ReadablePointer[SchedParam]:
        """sched_getparam(2): fill `param` (consumed) with this process's
        priority."""
        return await _fill(self.task, SYS.sched_getparam, (self.pid,), param, SchedParam,
                           SchedParam.sizeof())

    async def sched_setattr(self, attr: ReadablePointer[SchedAttr], flags: int = 0) -> None:
        """sched_setattr(2): set this process's policy and its parameters
        from `attr` (`flags` must be 0, as the man page says)."""
        await _write_from(self.task, SYS.sched_setattr, self.pid, attr, SchedAttr, (),
                          (int_arg("flags", flags, (0, 0)),))

    async def sched_getattr(
        self, attr: Pointer[SchedAttr], flags: int = 0
    ) -> ReadablePointer[SchedAttr]:
        """sched_getattr(2): fill `attr` (consumed) with this process's policy
        and its parameters (`flags` must be 0)."""
        return await _fill(self.task, SYS.sched_getattr, (self.pid,), attr, SchedAttr,
                           SchedAttr.sizeof(),
                           (SchedAttr.sizeof(), int_arg("flags", flags, (0, 0))))

    async def sched_rr_get_interval(self, tp: Pointer[Timespec]) -> ReadablePointer[Timespec]:
        """sched_rr_get_interval(2): fill `tp` (consumed) with this process's
        time quantum under SCHED.RR (0 under FIFO; the CFS slice for the
        others)."""
        return await _fill(self.task, SYS.sched_rr_get_interval, (self.pid,), tp, Timespec,
                           Timespec.sizeof())

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
