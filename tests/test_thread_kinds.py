"""The `thread` fixture itself (conftest.py): one test per kind of thread,
helpers that find its process from outside, and a teardown that copes
with a test that ended the thread's process itself."""

from __future__ import annotations

import os

import pytest

from rsyscall import ChildThread, Thread, local_thread
from rsyscall.signal import SIG

from .conftest import THREAD_KINDS
from .util import fd_targets, thread_pid

pytestmark = pytest.mark.anyio


def test_kinds() -> None:
    assert list(THREAD_KINDS)[:2] == ["local", "child"]


async def test_the_thread_is_its_process(thread: Thread) -> None:
    pid = thread_pid(thread)
    assert await thread.task.getpid() == pid
    assert (pid == os.getpid()) == (thread is local_thread)
    pipe = await thread.pipe()
    targets = await fd_targets(thread)
    assert targets[pipe.read.number].startswith("pipe:")


# A test may end a child thread's process any way it likes; the fixture's
# teardown must not fail then.


async def test_teardown_after_exit(thread: Thread) -> None:
    if isinstance(thread, ChildThread):
        assert (await thread.exit(5)).exit_status == 5


async def test_teardown_after_kill(thread: Thread) -> None:
    if isinstance(thread, ChildThread):
        await thread.process.kill(SIG.KILL)


async def test_teardown_after_kill_and_wait(thread: Thread) -> None:
    if isinstance(thread, ChildThread):
        await thread.process.kill(SIG.KILL)
        assert (await thread.process.waitpid()).killed_with() == SIG.KILL


async def test_teardown_after_exec(thread: Thread) -> None:
    if isinstance(thread, ChildThread):
        await thread.exec(thread.environ.sh.args("-c", "sleep 100"))


async def test_teardown_after_exec_and_wait(thread: Thread) -> None:
    if isinstance(thread, ChildThread):
        process = await thread.exec(thread.environ.sh.args("-c", "true"))
        await process.check()
