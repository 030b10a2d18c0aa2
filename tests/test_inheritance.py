"""File descriptors in children without CLONE.FILES: a child's copy of the
parent's fd table keeps only what someone can still reach, and an exec'd
program gets only 0, 1, 2 and what the user made inheritable."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio
import pytest

from rsyscall import ChildThread, local_thread
from rsyscall.fcntl import O
from rsyscall.sys.socket import AF, SOCK

pytestmark = pytest.mark.anyio


def fds_of(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


@pytest.fixture
async def sibling() -> AsyncIterator[ChildThread]:
    thread = await local_thread.clone()
    yield thread
    await thread.exit(0)


async def test_a_sibling_does_not_keep_a_pipe_from_eof() -> None:
    """A child got a copy of the pipe's write end; once our last handle for
    it goes, the child's unclaimed copy is closed too, and the reader sees
    EOF, even while the child is idle or waits in its epoll."""
    pipe = await local_thread.pipe()
    idle = await local_thread.clone()
    waiting = await local_thread.clone()
    await waiting.epoller()
    number = pipe.write.number
    assert fds_of(idle.process.pid)[number].startswith("pipe:")
    reader = await local_thread.make_afd(pipe.read, set_nonblock=True)

    async def wait_in_epoll() -> None:
        other = await waiting.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
        afd = await waiting.make_afd(other.first)
        await afd.read_some_bytes()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_in_epoll)
        await anyio.sleep(0.05)
        await pipe.write.close()
        with anyio.fail_after(2):
            assert await reader.read_some_bytes() == b""
        tg.cancel_scope.cancel()
    assert number not in fds_of(idle.process.pid)
    await idle.exit(0)
    await waiting.exit(0)


async def test_only_reachable_fds_are_copied(sibling: ChildThread) -> None:
    """What the parent has no handle for (fds the Python process opened
    itself) is closed in the child at once."""
    ours = os.open("/dev/null", os.O_RDONLY)  # not a library handle
    try:
        child = await local_thread.clone()
        await child.task.getpid()
        assert ours not in fds_of(child.process.pid)
        assert {0, 1, 2} <= set(fds_of(child.process.pid))
        await child.exit(0)
    finally:
        os.close(ours)


async def test_inherit_fd_of_a_later_fd_is_a_value_error(sibling: ChildThread) -> None:
    later = await local_thread.task.open(await local_thread.ptr("/dev/null"), O.RDONLY)
    with pytest.raises(ValueError, match="not inherited"):
        sibling.inherit_fd(later)
    # The connection is fine.
    assert await sibling.task.getpid() == sibling.process.pid


async def test_inherit_fd_twice_shares_ownership() -> None:
    pipe = await local_thread.pipe()
    child = await local_thread.clone()
    first = child.inherit_fd(pipe.write)
    second = child.inherit_fd(pipe.write)
    await first.close()
    # The copy is still open under the second handle.
    written, _ = await second.write(await child.ptr(b"still"))
    assert written.size() == 5
    valid, _ = await pipe.read.read(await local_thread.malloc(bytes, 8))
    assert await valid.read() == b"still"
    # Our handle going does not close the child's claimed copy.
    await pipe.write.close()
    await second.write(await child.ptr(b"more"))
    valid, _ = await pipe.read.read(await local_thread.malloc(bytes, 8))
    assert await valid.read() == b"more"
    await child.exit(0)


async def test_a_copy_closed_when_the_parent_let_go_cannot_be_inherited() -> None:
    pipe = await local_thread.pipe()
    child = await local_thread.clone()
    keep = pipe.write.for_task(local_thread.task)  # a second handle, same fd
    await pipe.write.close()
    # Our other handle still names the fd, so the child's copy stays.
    assert child.inherit_fd(keep).number == keep.number
    await child.exit(0)


async def test_exec_gets_only_stdio_and_inheritable_fds() -> None:
    """As subprocess's close_fds=True: an fd the Python process has without
    close-on-exec (as one inherited from its own parent would be) does not
    reach the program; one the user made inheritable does; SIGPIPE and
    SIGXFSZ, which Python ignores, are back to their default."""
    leaked = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(leaked, True)
    try:
        pipe = await local_thread.pipe()
        extra = await local_thread.task.open(await local_thread.ptr("/dev/null"), O.RDONLY)
        child = await local_thread.clone()
        await child.inherit_fd(pipe.write).dup2(child.stdout)
        passed = child.inherit_fd(extra)
        await passed.disable_cloexec()
        await pipe.write.close()
        script = "ls /proc/self/fd; grep SigIgn /proc/self/status"
        process = await child.exec(local_thread.environ.sh.args("-c", script))
        output = (await local_thread.read_to_eof(pipe.read)).decode().split()
        await process.check()
    finally:
        os.close(leaked)
    listed = {int(word) for word in output if word.isdigit()}
    # sh's own fds are 0-2 and the one ls uses to list the directory.
    assert passed.number in listed
    assert leaked not in listed or leaked == passed.number
    sigign = int(output[output.index("SigIgn:") + 1], 16)
    assert sigign & (1 << (13 - 1)) == 0  # SIGPIPE
    assert sigign & (1 << (25 - 1)) == 0  # SIGXFSZ
