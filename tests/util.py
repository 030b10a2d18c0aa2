"""Helpers the tests share: counting this process's fds and mappings, and
looking at any thread's process from outside it.

A test parametrized over the thread kinds (the `thread` fixture in
conftest) may not assume its thread is the Python process: its fds are in
the thread's own fd table, its pid is not os.getpid().  These helpers look
at the thread's process through /proc/<pid> instead, and borrow its fds
with pidfd_getfd(2) when a test wants to use one with the stdlib."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rsyscall import ChildThread, FileDescriptor, Thread, local_thread


def open_fds() -> set[int]:
    """The fd numbers open in this process right now."""
    gc.collect()
    return {int(name) for name in os.listdir("/proc/self/fd")}


def mapping_count() -> int:
    """How many memory mappings this process has."""
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


# ---- a thread's process, seen from the test's own process ----


def thread_pid(thread: Thread) -> int:
    """The pid of `thread`'s process, as the test's own process sees it."""
    if thread is local_thread:
        return os.getpid()
    if isinstance(thread, ChildThread):
        return thread.process.pid
    process = getattr(thread, "process", None)
    if process is not None:  # a stub that stdin_bootstrap started
        return int(process.pid)
    from rsyscall.tasks.ssh import SSHThread

    if isinstance(thread, SSHThread):
        # "Another host" that is this one, in our pid namespace: the
        # private sshd of make_local_ssh.
        return thread.task.pid
    raise NotImplementedError(f"no pid seen from here for {thread!r}")


def proc(thread: Thread, name: str = "") -> str:
    """/proc/<pid>/<name> of `thread`'s process."""
    base = f"/proc/{thread_pid(thread)}"
    return f"{base}/{name}" if name else base


def _number(fd: FileDescriptor | int) -> int:
    return fd if isinstance(fd, int) else fd.number


def fd_path(thread: Thread, fd: FileDescriptor | int) -> str:
    """/proc/<pid>/fd/<n>: stat or open it to reach the file the fd names."""
    return proc(thread, f"fd/{_number(fd)}")


async def settle(thread: Thread) -> None:
    """Let go of dropped handles and wait until `thread` has closed their fds:
    another thread's closes are requests queued behind the others, so one
    more syscall's answer means they are done."""
    gc.collect()
    await thread.task.getpid()


async def thread_fds(thread: Thread) -> set[int]:
    """The fd numbers open in `thread`'s process, once dropped handles are closed."""
    await settle(thread)
    return {int(name) for name in os.listdir(proc(thread, "fd"))}


async def fd_targets(thread: Thread) -> dict[int, str]:
    """Each open fd of `thread`'s process and what it names (readlink),
    once dropped handles are closed."""
    await settle(thread)
    targets = {}
    for name in os.listdir(proc(thread, "fd")):
        try:
            targets[int(name)] = os.readlink(proc(thread, f"fd/{name}"))
        except FileNotFoundError:  # closed meanwhile
            pass
    return targets


def fd_is_open(thread: Thread, fd: FileDescriptor | int) -> bool:
    return os.path.lexists(fd_path(thread, fd))


def fdinfo(thread: Thread, fd: FileDescriptor | int) -> dict[str, str]:
    """/proc/<pid>/fdinfo/<n> as a mapping of its first lines' fields."""
    fields = {}
    with open(proc(thread, f"fdinfo/{_number(fd)}")) as info:
        for line in info:
            key, sep, value = line.partition(":")
            if sep and key not in fields:
                fields[key] = value.strip()
    return fields


def fd_flags(thread: Thread, fd: FileDescriptor | int) -> int:
    """The fd's file status flags and O_CLOEXEC, as fdinfo shows them."""
    return int(fdinfo(thread, fd)["flags"], 8)


def cloexec(thread: Thread, fd: FileDescriptor | int) -> bool:
    """Whether the fd has FD_CLOEXEC in `thread`'s fd table."""
    return bool(fd_flags(thread, fd) & os.O_CLOEXEC)


def blocking(thread: Thread, fd: FileDescriptor | int) -> bool:
    """Whether the fd's open file is blocking (no O_NONBLOCK)."""
    return not fd_flags(thread, fd) & os.O_NONBLOCK


def fd_stat(thread: Thread, fd: FileDescriptor | int) -> os.stat_result:
    """fstat of the fd, from outside (stat of /proc/<pid>/fd/<n>)."""
    return os.stat(fd_path(thread, fd))


_libc = ctypes.CDLL(None, use_errno=True)
_SYS_pidfd_getfd = 438


def _pidfd_getfd(pid: int, number: int) -> int:
    pidfd = os.pidfd_open(pid)
    try:
        got = _libc.syscall(_SYS_pidfd_getfd, pidfd, number, 0)
        if got < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"pidfd_getfd: {os.strerror(err)}")
        return int(got)
    finally:
        os.close(pidfd)


def take_fd(thread: Thread, fd: FileDescriptor | int) -> int:
    """A new fd in the test's own process for the same open file as `fd` in
    `thread` (dup for the local thread, pidfd_getfd(2) for another); the
    caller closes it."""
    number = _number(fd)
    if thread is local_thread:
        return os.dup(number)
    return _pidfd_getfd(thread_pid(thread), number)


@contextmanager
def borrowed_fd(thread: Thread, fd: FileDescriptor | int) -> Iterator[int]:
    """`take_fd` for the duration of a `with` block."""
    number = take_fd(thread, fd)
    try:
        yield number
    finally:
        os.close(number)


def read_from(thread: Thread, fd: FileDescriptor | int, count: int) -> bytes:
    """os.read from the open file `fd` names in `thread`."""
    with borrowed_fd(thread, fd) as number:
        return os.read(number, count)


def write_to(thread: Thread, fd: FileDescriptor | int, data: bytes) -> int:
    """os.write to the open file `fd` names in `thread`."""
    with borrowed_fd(thread, fd) as number:
        return os.write(number, data)


def thread_cwd(thread: Thread) -> str:
    """The working directory of `thread`'s process."""
    return os.readlink(proc(thread, "cwd"))


def status_field(thread: Thread, field: str) -> str:
    """A field of /proc/<pid>/status (SigBlk, Uid, ...)."""
    with open(proc(thread, "status")) as status:
        for line in status:
            key, _, value = line.partition(":")
            if key == field:
                return value.strip()
    raise KeyError(field)


# ---- a thread's memory, seen from outside ----


def read_memory(thread: Thread, address: int, count: int) -> bytes:
    """`count` bytes at `address` in `thread`'s address space: straight
    from memory for the local thread, through /proc/<pid>/mem for another."""
    if thread is local_thread:
        return ctypes.string_at(address, count)
    with open(proc(thread, "mem"), "rb", buffering=0) as mem:
        return os.pread(mem.fileno(), count, address)


def write_memory(thread: Thread, address: int, data: bytes) -> None:
    """Store `data` at `address` in `thread`'s address space."""
    if thread is local_thread:
        ctypes.memmove(address, data, len(data))
        return
    with open(proc(thread, "mem"), "r+b", buffering=0) as mem:
        assert os.pwrite(mem.fileno(), data, address) == len(data)


def maps_of(thread: Thread) -> list[tuple[int, int, str]]:
    """(start, end, perms) of each mapping of `thread`'s address space."""
    entries = []
    with open(proc(thread, "maps")) as maps:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(part, 16) for part in span.split("-"))
            entries.append((start, end, perms))
    return entries


# ---- a thread's signal state, seen from outside ----


def _signals(hexmask: str) -> set[int]:
    bits = int(hexmask, 16)
    return {sig for sig in range(1, 65) if bits & (1 << (sig - 1))}


def blocked_signals(thread: Thread) -> set[int]:
    """The signals `thread` blocks: for the local thread the mask of the
    calling OS thread (the stdlib's view), else its process's SigBlk."""
    if thread is local_thread:
        return {int(sig) for sig in signal.pthread_sigmask(signal.SIG_BLOCK, [])}
    return _signals(status_field(thread, "SigBlk"))


def pending_signals(thread: Thread) -> set[int]:
    """The signals pending for `thread` (directed at it or its process)."""
    if thread is local_thread:
        return {int(sig) for sig in signal.sigpending()}
    return _signals(status_field(thread, "SigPnd")) | _signals(status_field(thread, "ShdPnd"))


def send_signal(thread: Thread, sig: int) -> None:
    """Send `sig` to `thread`'s process from the test's own process: kill(2).
    For the local thread, kill(2) only when this is our only OS thread (a
    process-directed signal goes to any thread that does not block it, and
    only this one blocks it); otherwise tgkill(2) to this OS thread.  The
    sender pid is ours either way."""
    if thread is local_thread and len(os.listdir("/proc/self/task")) > 1:
        signal.pthread_kill(threading.get_ident(), sig)
    else:
        os.kill(thread_pid(thread), sig)
