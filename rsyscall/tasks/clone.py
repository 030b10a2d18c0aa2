"""The mechanics of cloning: a child's stack, its clone_args, the exec watch.

Every child shares our address space (CLONE_VM), so its stack is memory we
allocate and write here: the trampoline in the C core pops a function and
its six arguments from it.  The child's main function sets
PR_SET_PDEATHSIG and runs the syscall server on its connection socket.

**Why a futex.**  A successful execve never answers.  With
CLONE_CHILD_CLEARTID the kernel zeroes a word in our memory and wakes its
futex when the child execs (or exits) and leaves our address space.  A
futex cannot be polled, so a tiny helper process (also sharing our memory)
blocks on it and exits when it is woken; its pidfd becomes readable, and
the epoller turns that into the event "the child has exec'd".
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
from rsyscall.sched import CLONE, CloneArgs
from rsyscall.signal import SIG

if TYPE_CHECKING:
    from rsyscall.memory.transport import AddressSpace
    from rsyscall.thread import Thread

__all__ = [
    "ALWAYS",
    "CHILD_MAIN",
    "CHILD_STACK_SIZE",
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
    pid = await thread.task.clone3(await thread.ptr(clone_args))
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
