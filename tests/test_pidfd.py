"""<sys/pidfd.h>: pidfd_open of a process (a `Process` method), and
waiting for it."""

from __future__ import annotations

import errno
import os

import pytest

from rsyscall import Thread
from rsyscall.fcntl import FD, F
from rsyscall.signal import SIG
from rsyscall.sys.pidfd import PIDFD
from rsyscall.sys.socket import SOCK

from .util import fd_path, thread_fds

pytestmark = pytest.mark.anyio


async def test_pidfd_open_of_a_child(thread: Thread) -> None:
    child = await thread.clone()
    pidfd = await child.process.process.pidfd_open()
    assert pidfd.task is thread.task
    assert await pidfd.fcntl(F.GETFD) == FD.CLOEXEC
    assert os.readlink(fd_path(thread, pidfd)) == "anon_inode:[pidfd]"
    await child.exit(3)
    state = await child.process.waitpid()
    assert state.exit_status == 3
    await pidfd.close()


async def test_pidfd_open_names_the_process(thread: Thread) -> None:
    """The pidfd is for the process the handle names: a signal through it
    reaches that process; with PIDFD.NONBLOCK the fd is non-blocking."""
    child = await thread.clone()
    before = await thread_fds(thread)
    pidfd = await child.process.process.pidfd_open(PIDFD.NONBLOCK)
    assert await pidfd.fcntl(F.GETFL) & os.O_NONBLOCK
    await pidfd.pidfd_send_signal(SIG.KILL)
    assert (await child.process.waitpid()).killed_with() == SIG.KILL
    await pidfd.close()
    assert await thread_fds(thread) <= before
    del child
    before = await thread_fds(thread)
    # The task's own process: a pidfd of itself.
    own = await thread.task.process.pidfd_open()
    assert os.readlink(fd_path(thread, own)) == "anon_inode:[pidfd]"
    await own.close()
    assert await thread_fds(thread) == before


async def test_pidfd_open_errors(thread: Thread) -> None:
    # A pid that names no process: ESRCH; nothing is left open.
    child = await thread.clone()
    gone = child.process.process
    await child.exit(0)
    await child.process.waitpid()
    del child
    before = await thread_fds(thread)
    with pytest.raises(ProcessLookupError):
        await gone.pidfd_open()
    with pytest.raises(ValueError):
        await thread.task.process.pidfd_open(0o1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.task.process.pidfd_open(SOCK.NONBLOCK)  # type: ignore[arg-type]
    assert not hasattr(thread.task, "pidfd_open")  # a Process method, not a Task one
    assert await thread_fds(thread) == before


async def test_pidfd_getfd_takes_a_handle(thread: Thread) -> None:
    """pidfd_getfd copies an fd of the pidfd's process into ours: named by
    a handle of that process's task (or by number)."""
    child = await thread.clone()
    pipe = await child.pipe()
    pidfd = await child.process.process.pidfd_open()
    ours = await pidfd.pidfd_getfd(pipe.write)
    assert ours.task is thread.task
    assert await ours.fcntl(F.GETFD) == FD.CLOEXEC
    await ours.write(await thread.ptr(b"through the copy"))
    got, _ = await pipe.read.read(await child.malloc(bytes, 64))
    assert await got.read() == b"through the copy"
    by_number = await pidfd.pidfd_getfd(pipe.read.number)
    assert os.readlink(fd_path(thread, by_number)) == os.readlink(fd_path(child, pipe.read))
    with pytest.raises(OSError) as info:
        await pidfd.pidfd_getfd(4000)
    assert info.value.errno == errno.EBADF
    with pytest.raises(TypeError):
        await pidfd.pidfd_getfd("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await pidfd.pidfd_getfd(1 << 40)
    for fd in (ours, by_number, pidfd):
        await fd.close()
    await child.exit(0)
    await child.process.waitpid()
