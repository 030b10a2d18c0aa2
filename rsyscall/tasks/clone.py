"""The mechanics of cloning: a child's stack, its clone_args, the exec watch.

Every child shares our address space (CLONE_VM), so its stack is memory we
allocate and write here: the trampoline in the C core pops a function and
its six arguments from it.  The child's main function sets
PR_SET_PDEATHSIG and runs the syscall server on its connection socket.

**Why a futex.**  A successful execve never answers.  With
CLONE_CHILD_CLEARTID the kernel zeroes a word in our memory and wakes its
futex when the child execs (or exits) and leaves our address space.  A
futex cannot be polled, so the child's main starts an exec watcher that
sleeps on it and, when woken, writes EXEC_MARKER on the connection (see
ExecWatcher).  The init of a new pid namespace cannot start one (it may
not use CLONE_PARENT); for it the local thread starts a futex waiter at
exec (`spawn_futex_waiter`), whose exit its pidfd reports.
(DESIGN.md section 6.)

`rsyscall.thread` composes these into `Thread.clone` and `ChildThread`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rsyscall._native import _raw
from rsyscall.handle import ChildProcess
from rsyscall.memory.allocator import Allocation
from rsyscall.near.interface import SyscallInterface
from rsyscall.near.sysnum import SYS
from rsyscall.sched import CLONE, CloneArgs
from rsyscall.signal import SIG
from rsyscall.sys.wait import P, W

_SYS_kill = int(SYS.kill)
_SYS_waitid = int(SYS.waitid)

if TYPE_CHECKING:
    from rsyscall.memory.transport import AddressSpace
    from rsyscall.thread import Thread

__all__ = [
    "ALWAYS",
    "CHILD_MAIN",
    "CHILD_STACK_SIZE",
    "EXEC_MARKER",
    "ExecWatcher",
    "USER_FLAGS",
    "allocate_stack",
    "clone_process",
    "spawn_futex_waiter",
]

CHILD_STACK_SIZE = 16 * 1024
"""The server loop needs little stack; signal handlers are reset
(CLONE_CLEAR_SIGHAND), so nothing else runs on it."""
_HELPER_STACK_SIZE = 4096

ALWAYS = CLONE.VM | CLONE.PIDFD | CLONE.CLEAR_SIGHAND
"""Flags every child gets: shared memory, a pidfd, and no signal handlers
inherited from Python (they would run Python code on the child's stack)."""

USER_FLAGS = (
    CLONE.FILES | CLONE.FS | CLONE.IO | CLONE.SYSVSEM | CLONE.NEWNS | CLONE.NEWUTS
    | CLONE.NEWIPC | CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWCGROUP
    | CLONE.NEWTIME
)
"""Flags the user may choose; the rest belong to the mechanism."""

_WORDS = struct.Struct("<7Q")


async def allocate_stack(
    space: AddressSpace, size: int, function: int, args: Sequence[int]
) -> tuple[Allocation, int]:
    """A stack from which the trampoline calls `function(*args)`; returns
    the memory and the initial stack pointer."""
    if len(args) > 6:
        raise ValueError("the trampoline passes at most six arguments")
    alloc = await space.allocator.allocate(size)
    top = (alloc.address + alloc.size) & ~15
    # Seven words are popped; the call then needs a 16-byte aligned stack.
    sp = top - 16 - _WORDS.size
    words = [function, *args] + [0] * (6 - len(args))
    await space.transport.write(sp, _WORDS.pack(*(word & ((1 << 64) - 1) for word in words)))
    return alloc, sp


async def clone_process(
    thread: Thread,
    flags: CLONE,
    function: int,
    args: Sequence[int],
    stack_size: int,
    child_tid: int = 0,
) -> tuple[int, int, Allocation]:
    """clone3 in `thread`'s process: a child running `function(*args)` on a
    new stack.  Returns the pid (in `thread`'s pid namespace), the pidfd
    number (in `thread`'s fd table) and the stack, which must outlive the
    child's use of it."""
    space = thread.task.space
    stack, sp = await allocate_stack(space, stack_size, function, args)
    pidfd_out = await space.stage(bytes(4))
    clone_flags = ALWAYS | flags
    if child_tid:
        clone_flags |= CLONE.CHILD_CLEARTID
    clone_args = CloneArgs(
        clone_flags,
        pidfd=pidfd_out.address,
        child_tid=child_tid,
        exit_signal=SIG.CHLD,
        stack=stack.address,
        stack_size=sp - stack.address,
    )
    pid = await thread.task.unsafe_clone3(await thread.ptr(clone_args))
    (pidfd,) = struct.unpack("<i", await space.transport.read(pidfd_out.address, 4))
    return pid, pidfd, stack


async def spawn_futex_waiter(local: Thread, futex_address: int) -> ChildProcess:
    """A helper process, child of the local thread, that exits once the
    32-bit word at `futex_address` is zero (see the module docstring)."""
    pid, pidfd, stack = await clone_process(
        local, CLONE.FILES, _raw.FUTEX_WAITER_FUNCTION, [futex_address], _HELPER_STACK_SIZE
    )
    return ChildProcess(local.task, pid, local.task.make_fd(pidfd), keep=stack)


CHILD_MAIN = _raw.CHILD_MAIN_FUNCTION
EXEC_WATCHER = _raw.EXEC_WATCHER_FUNCTION
EXEC_MARKER = _raw.EXEC_MARKER
_WATCHER_STACK_SIZE = 4096
_INT32 = struct.Struct("<i")


class ExecWatcher:
    """The exec watcher of one child: a process sharing its memory and fd
    table, started by the child itself (rsys_child_main) as a sibling, so
    the child's parent thread reaps it.  It sleeps on the child's
    CLONE_CHILD_CLEARTID word and, when the child execs or exits, writes
    EXEC_MARKER on the child's connection, then exits.

    The child writes the watcher's pid (or -errno) into `slot` before it
    serves any request.  The record reaps the watcher once; if it is
    dropped first (with the child's process handle, after the child is
    reaped), it kills and reaps it then."""

    __slots__ = ("keep", "parent_sysif", "reaped", "slot")

    def __init__(self, parent_sysif: SyscallInterface, slot: Allocation, stack: Allocation):
        self.parent_sysif = parent_sysif
        self.slot = slot
        # Memory the watcher uses until it exits: its stack, and the word.
        self.keep: object = (stack, slot)
        self.reaped = False

    @staticmethod
    async def prepare(
        space: AddressSpace, request_fd: int
    ) -> tuple[Allocation, Allocation, list[int]]:
        """The word (with the pid slot after it), the watcher's stack, and
        the three arguments of rsys_child_main that start it."""
        word = await space.stage(struct.pack("<ii", 1, 0))
        stack, sp = await allocate_stack(
            space, _WATCHER_STACK_SIZE, EXEC_WATCHER, [word.address, request_fd]
        )
        return word, stack, [stack.address, sp - stack.address, word.address + 4]

    def pid(self) -> int:
        """The watcher's pid; 0 until the child has started it, negative if
        starting it failed.  (The slot is in our own memory.)"""
        (pid,) = _INT32.unpack(_raw.read_memory(self.slot.address + 4, 4))
        return int(pid)

    def reap(self) -> None:
        """Kill (if need be) and reap the watcher, without waiting."""
        if self.reaped:
            return
        pid = self.pid()
        if pid <= 0:
            return
        self.reaped = True
        self.parent_sysif.syscall_later(_SYS_kill, pid, SIG.KILL)
        self.parent_sysif.syscall_later(_SYS_waitid, P.PID, pid, 0, W.EXITED, 0, keep=self.keep)
        self.keep = None

    def __del__(self) -> None:
        if not getattr(self, "reaped", True):
            self.reap()
