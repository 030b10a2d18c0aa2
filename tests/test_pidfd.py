"""<sys/pidfd.h>: pidfd_open of a process (a `Process` method), and
waiting for it."""

from __future__ import annotations

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
