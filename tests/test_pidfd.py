"""<sys/pidfd.h>: pidfd_open of a child of the thread, and waiting for it."""

from __future__ import annotations

import os

import pytest

from rsyscall import Thread
from rsyscall.fcntl import FD, F

from .util import fd_path

pytestmark = pytest.mark.anyio


async def test_pidfd_open_of_a_child(thread: Thread) -> None:
    task = thread.task
    child = await thread.clone()
    pidfd = await task.pidfd_open(child.process.pid)
    assert await pidfd.fcntl(F.GETFD) == FD.CLOEXEC
    assert os.readlink(fd_path(thread, pidfd)) == "anon_inode:[pidfd]"
    await child.exit(3)
    state = await child.process.waitpid()
    assert state.exit_status == 3
    await pidfd.close()
