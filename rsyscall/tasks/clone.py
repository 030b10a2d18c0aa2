"""The mechanics of cloning: a child's stack and server state, clone3, the
memory a child runs on, and interrupting its server.

Every child shares our address space (CLONE_VM), so its stack is memory we
allocate and write here: the trampoline in the C core pops a function and
its six arguments from it.  The child's main function (rsys_child_main)
sets PR_SET_PDEATHSIG, installs the interrupt handler and runs the syscall
server on its connection socket, with a `struct rsys_server_state` at the
bottom of the same block of memory.

**Exec and death.**  A successful execve never answers, and needs no
helper to be seen: the child's end of its connection is close-on-exec, and
nothing else holds it (the child's own copies of the parent's fds never
include it, and a child whose fd table is shared unshares it first, see
`ChildThread.exec`), so exec closes the last copy and we read EOF.  Death
is seen the same way, and through the child's pidfd, which the local
epoller watches.

**Memory a process runs on** (its stack) is released only once the process
is known to be gone from our address space: reaped, or exited as its pidfd
says.  A child's memory is therefore held by a `RunningMemory` record in
a registry, not by the handles users drop; `sweep` polls the pidfds of
the records whose process is not known dead yet.

`rsyscall.thread` composes these into `Thread.clone` and `ChildThread`.
"""

from __future__ import annotations

import errno
import os
import select
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rsyscall._native import _raw
from rsyscall.memory.allocator import Allocation
from rsyscall.near.sysnum import SYS
from rsyscall.sched import CLONE, UnsafeCloneArgs
from rsyscall.signal import SIG

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.memory.transport import AddressSpace
    from rsyscall.thread import Thread

__all__ = [
    "ALWAYS",
    "CHILD_MAIN",
    "CHILD_STACK_SIZE",
    "USER_FLAGS",
    "HelperInterrupter",
    "RunningMemory",
    "ServerInterrupter",
    "allocate_stack",
    "clone_process",
    "spawn_futex_waiter",
    "sweep",
]

CHILD_STACK_SIZE = 16 * 1024
"""The server loop needs little stack: a few hundred bytes, plus one signal
frame (up to ~3.5 KiB with AVX-512 state) for the interrupt handler.  No
other handler runs on it (CLONE_CLEAR_SIGHAND)."""

ALWAYS = CLONE.VM | CLONE.PIDFD | CLONE.CLEAR_SIGHAND
"""Flags every child gets: shared memory, a pidfd, and no signal handlers
inherited from Python (they would run Python code on the child's stack)."""

USER_FLAGS = (
    CLONE.FILES | CLONE.FS | CLONE.IO | CLONE.SYSVSEM | CLONE.NEWNS | CLONE.NEWUTS
    | CLONE.NEWIPC | CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWCGROUP
    | CLONE.NEWTIME
)
"""Flags the user may choose; the rest belong to the mechanism."""

CHILD_MAIN = _raw.CHILD_MAIN_FUNCTION
SERVER_STATE_SIZE = _raw.SERVER_STATE_SIZE
INTERRUPT_SIGNAL = _raw.INTERRUPT_SIGNAL

_WORDS = struct.Struct("<7Q")
_SYS_clone3 = int(SYS.clone3)
_SYS_clone = int(SYS.clone)
_SYS_pidfd_send_signal = int(SYS.pidfd_send_signal)


async def allocate_stack(
    space: AddressSpace, size: int, function: int, args: Callable[[int], Sequence[int]]
) -> tuple[Allocation, int]:
    """A stack from which the trampoline calls `function(*args(base))`,
    where `base` is the stack's lowest address (the first
    SERVER_STATE_SIZE bytes there are zeroed, for a server state).
    Returns the memory and the initial stack pointer."""
    alloc = await space.allocator.allocate(size)
    words = [function, *args(alloc.address)]
    if len(words) > 7:
        raise ValueError("the trampoline passes at most six arguments")
    words += [0] * (7 - len(words))
    top = (alloc.address + alloc.size) & ~15
    # Seven words are popped; the call then needs a 16-byte aligned stack.
    sp = top - 16 - _WORDS.size
    await space.transport.write(alloc.address, bytes(SERVER_STATE_SIZE + 8))
    await space.transport.write(sp, _WORDS.pack(*(word & ((1 << 64) - 1) for word in words)))
    return alloc, sp


async def clone_process(
    thread: Thread, flags: CLONE, stack: Allocation, sp: int, *, legacy: bool = False
) -> tuple[int, int, bool]:
    """clone3 in `thread`'s process: a child starting on `stack` at `sp`
    (see allocate_stack).  Returns the pid (in `thread`'s pid namespace),
    the pidfd number (in `thread`'s fd table), and whether the old clone(2)
    made it: with `legacy`, or where clone3 fails with ENOSYS (a seccomp
    profile that predates it).  clone(2) has no CLONE_CLEAR_SIGHAND, so
    such a child starts with its parent's signal handlers, which the
    caller must reset (Thread.clone does)."""
    space = thread.task.space
    if legacy and flags & CLONE.NEWTIME:
        raise ValueError("CLONE.NEWTIME needs clone3: in clone(2)'s flags its bit is the "
                         "exit signal's (unshare it in the child instead)")
    pidfd_out = await space.stage(bytes(4))
    if not legacy:
        clone_args = UnsafeCloneArgs(
            ALWAYS | flags,
            pidfd=pidfd_out.address,
            exit_signal=SIG.CHLD,
            stack=stack.address,
            stack_size=sp - stack.address,
        )
        args = await space.stage(clone_args.to_bytes())
        try:
            pid = await thread.task.sysif.syscall(
                _SYS_clone3, args.address, UnsafeCloneArgs.sizeof())
        except OSError as error:
            if error.errno != errno.ENOSYS or flags & CLONE.NEWTIME:
                raise
            legacy = True
    if legacy:
        # clone(flags | exit signal, stack top, parent_tid (the pidfd with
        # CLONE_PIDFD), child_tid, tls).
        legacy_flags = int((ALWAYS | flags) & ~CLONE.CLEAR_SIGHAND) | SIG.CHLD
        pid = await thread.task.sysif.syscall(_SYS_clone, legacy_flags, sp, pidfd_out.address,
                                              0, 0)
    (pidfd,) = struct.unpack("<i", await space.transport.read(pidfd_out.address, 4))
    return pid, pidfd, legacy


EXEC_WORD_OFFSET = SERVER_STATE_SIZE
"""Where, in a child's stack block, the word set_tid_address(2) names lies:
the kernel zeroes it when the child execs or exits (see spawn_futex_waiter)."""
_HELPER_STACK_SIZE = 4096


async def spawn_futex_waiter(local: Thread, word: int) -> tuple[int, FileDescriptor, Allocation]:
    """A helper process, child of the local thread, that exits once the
    32-bit word at `word` is zero: the exec watch of a child whose fd table
    is shared, where exec closes no connection (ChildThread.exec).  Returns
    its pid, its pidfd and its stack, which must outlive it."""
    stack, sp = await allocate_stack(
        local.task.space, _HELPER_STACK_SIZE, local.task.space.functions.futex_waiter,
        lambda _: [word],
    )
    pid, pidfd, _ = await clone_process(local, CLONE.FILES, stack, sp)
    return pid, local.task.make_fd(pidfd), stack


class RunningMemory:
    """Memory that a child process runs on, and the local pidfd that tells
    when it stops: the record stays in the registry until then (without a
    local pidfd, a child on another host, until it is reaped)."""

    __slots__ = ("memory", "pidfd")

    def __init__(self, pidfd: FileDescriptor | None, memory: object) -> None:
        self.pidfd = pidfd
        self.memory = memory
        _running[id(self)] = self

    def release(self) -> None:
        """The process is known to be gone: let the memory go."""
        _running.pop(id(self), None)
        self.memory = None

    @property
    def released(self) -> bool:
        return id(self) not in _running


_running: dict[int, RunningMemory] = {}


def sweep() -> int:
    """Release the memory of every child whose pidfd says it exited (one
    poll(2) in the local process); returns how many records remain."""
    if not _running:
        return 0
    poller = select.poll()
    by_number: dict[int, list[RunningMemory]] = {}
    for record in _running.values():
        # A record holds its pidfd handle, so the number is live; one with
        # none (a child on another host) is released when it is reaped.
        if record.pidfd is None or record.pidfd.closed:
            continue
        number = record.pidfd.number
        by_number.setdefault(number, []).append(record)
        poller.register(number, select.POLLIN)
    for number, _ in poller.poll(0):
        for record in by_number.get(number, ()):
            record.release()
    return len(_running)


class ServerInterrupter:
    """Stops requests of a child's server that shares our memory: a request
    that has not started is marked to be skipped in the server's state; a
    running one gets the interrupt signal, tagged with its number, through
    the local pidfd (see rsys.h)."""

    __slots__ = ("info", "memory", "pidfd", "state")

    def __init__(self, memory: Allocation, pidfd: FileDescriptor, info: Allocation) -> None:
        # The state is at the bottom of the child's stack block; holding
        # the block keeps it readable for as long as we may look.
        self.memory = memory
        self.state = memory.address
        self.pidfd = pidfd
        # A siginfo_t of our own memory: signo, errno, code, pad, pid, uid, value.
        self.info = info

    def interrupt(self, seq: int) -> bool:
        current = _raw.server_current(self.state)
        if current < seq:
            return _raw.request_skip(self.state, seq)
        if current == seq and not self.pidfd.closed:
            data = _SIGINFO.pack(INTERRUPT_SIGNAL, 0, _SI_QUEUE, os.getpid(), os.getuid(), seq)
            _raw.write_memory(self.info.address, data)
            try:
                _raw.syscall(
                    _SYS_pidfd_send_signal, self.pidfd.number, INTERRUPT_SIGNAL,
                    self.info.address, 0,
                )
            except OSError:
                pass  # it is gone; the hangup will end the call
        return False


class HelperInterrupter:
    """Stops requests of a server in an address space we cannot touch (a
    stub's, or a child cloned there): the stub's interrupt helper thread
    does there what ServerInterrupter does here, told by a triple (state
    address, pid, request number) on its control socket (stub.c).  Whether
    a request was skipped is not known here, so callers wait for its
    answer; a skipped one is answered at once when its turn comes."""

    __slots__ = ("control", "memory", "pid", "state")

    def __init__(self, control: FileDescriptor, memory: Allocation | None, state: int, pid: int):
        # Our end of the control socket (non-blocking, in the local process).
        self.control = control
        # The block holding the state, if it is one of ours to keep alive.
        self.memory = memory
        self.state = state
        self.pid = pid

    def interrupt(self, seq: int) -> bool:
        if not self.control.closed:
            try:
                os.write(self.control.number, _CONTROL.pack(self.state, self.pid, seq))
            except OSError:
                pass  # full (it will be asked again) or gone (so is the stub)
        return False


_CONTROL = struct.Struct("<QQQ")
_SIGINFO = struct.Struct("<iii4xiIQ")
SIGINFO_SIZE = 128
"""The size of a siginfo_t, the room ServerInterrupter's `info` needs."""
_SI_QUEUE = -1
