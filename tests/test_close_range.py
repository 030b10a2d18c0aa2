"""close_range(2) (rsyscall.linux.close_range) on every kind of thread:
what it closes in the kernel, that the handles for closed numbers are
invalidated (never acting on a reused number), that the library's own fds
survive, and what happens to fds inherited by or from a child."""

from __future__ import annotations

import gc
import os

import anyio
import pytest

from rsyscall import ChildThread, FileDescriptor, Thread, UseAfterConsumeError, local_thread
from rsyscall.epoller import FDClosedWhileWaiting
from rsyscall.fcntl import FD, F, O
from rsyscall.linux.close_range import CLOSE_RANGE, FD_LAST
from rsyscall.sched import CLONE

from .util import thread_pid

pytestmark = pytest.mark.anyio


def open_numbers(thread: Thread) -> set[int]:
    """The fds open in `thread`'s process, seen from outside it."""
    return {int(name) for name in os.listdir(f"/proc/{thread_pid(thread)}/fd")}


def private_numbers(thread: Thread) -> set[int]:
    table = thread.task.fd_table
    return {n for n in table.numbers() if (slot := table.slot(n)) is not None and slot.private}


async def high_fds(thread: Thread, count: int, at: int = 700) -> list[FileDescriptor]:
    """`count` fds for /dev/null numbered `at` and up in `thread`, away from
    whatever else the process has open (the local thread's own files)."""
    null = await thread.task.open(await thread.ptr("/dev/null"), O.RDWR)
    fds = []
    for _ in range(count):
        fd = await null.fcntl(F.DUPFD_CLOEXEC, at)
        fds.append(fd)
        at = fd.number + 1
    await null.close()
    return fds


async def test_close_everything_but_kept_in_a_child(thread: Thread) -> None:
    child = await thread.clone()
    pipe = await child.pipe()
    other = await child.task.open(await child.ptr("/dev/null"), O.RDONLY)
    stdin = child.stdin
    await child.task.close_range(keep=[pipe.write])
    # In the kernel: only the kept fd and the library's own remain.
    assert open_numbers(child) == {pipe.write.number} | private_numbers(child)
    # The handles for the closed numbers are closed.
    for fd in (pipe.read, other, stdin):
        assert fd.closed
        with pytest.raises(UseAfterConsumeError):
            await fd.read(await child.malloc(bytes, 1))
    # The thread goes on, and the kept fd works.
    assert await child.task.getpid() == child.task.pid
    await pipe.write.fcntl(F.GETFD)
    await child.exit(0)


async def test_a_reused_number_is_never_touched(thread: Thread) -> None:
    old, = await high_fds(thread, 1)
    number = old.number
    await thread.task.close_range(number, number)
    assert old.closed and number not in open_numbers(thread)
    # The number comes back for another file...
    null = await thread.task.open(await thread.ptr("/dev/null"), O.RDONLY)
    new = await null.fcntl(F.DUPFD_CLOEXEC, number)
    assert new.number == number
    # ... which the stale handle cannot reach: using it raises, closing
    # or dropping it does nothing to the new fd.
    with pytest.raises(UseAfterConsumeError):
        await old.fcntl(F.GETFD)
    with pytest.raises(UseAfterConsumeError):
        await old.close()
    old.drop()
    del old
    gc.collect()
    assert await thread.task.getpid() == thread.task.pid  # queued closes ran
    assert number in open_numbers(thread)
    await new.fcntl(F.GETFD)
    await new.close()
    await null.close()


async def test_a_range_with_kept_fds(thread: Thread) -> None:
    fds = await high_fds(thread, 5)
    numbers = [fd.number for fd in fds]
    await thread.task.close_range(numbers[0], numbers[-1], keep=[fds[1], fds[3]])
    present = open_numbers(thread)
    assert [n in present for n in numbers] == [False, True, False, True, False]
    assert [fd.closed for fd in fds] == [True, False, True, False, True]
    for fd in (fds[1], fds[3]):
        await fd.close()


async def test_cloexec_marks_and_keeps_the_handles(thread: Thread) -> None:
    fds = await high_fds(thread, 2)
    for fd in fds:
        await fd.disable_cloexec()
    await thread.task.close_range(fds[0].number, fds[1].number, CLOSE_RANGE.CLOEXEC)
    for fd in fds:
        assert not fd.closed
        assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
        await fd.close()


async def test_errors_leave_the_thread_usable(thread: Thread) -> None:
    fd, = await high_fds(thread, 1)
    with pytest.raises(ValueError):
        await thread.task.close_range(10, 5)
    with pytest.raises(ValueError):
        await thread.task.close_range(0, FD_LAST + 1)
    with pytest.raises(ValueError):
        await thread.task.close_range(0, 1, CLOSE_RANGE(1))
    with pytest.raises(TypeError):
        await thread.task.close_range("0", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.task.close_range(fd.number, fd.number, keep=fd)  # type: ignore[arg-type]
    child = await thread.clone()
    with pytest.raises(ValueError):  # another table's handle
        await child.task.close_range(keep=[fd])
    await child.exit(0)
    assert not fd.closed and await thread.task.getpid() == thread.task.pid
    await fd.close()


async def test_unshare(thread: Thread) -> None:
    # A child with a table of its own: UNSHARE changes nothing but closes.
    child = await thread.clone()
    pipe = await child.pipe()
    await child.task.close_range(flags=CLOSE_RANGE.UNSHARE, keep=[pipe.read])
    assert pipe.write.closed and not pipe.read.closed
    assert open_numbers(child) == {pipe.read.number} | private_numbers(child)
    await child.exit(0)
    # Sharing ours: refused (the handles would name the wrong table) ...
    shared = await thread.clone(CLONE.FILES)
    with pytest.raises(ValueError):
        await shared.task.close_range(flags=CLOSE_RANGE.UNSHARE)
    # ... and after unshare(CLONE.FILES) taken.
    await shared.unshare(CLONE.FILES)
    await shared.task.close_range(3, FD_LAST, CLOSE_RANGE.UNSHARE)
    assert open_numbers(shared) <= {0, 1, 2} | private_numbers(shared)
    await shared.exit(0)
    # The thread itself (local, a stub) shares its table with threads of
    # its own process.
    if not isinstance(thread, ChildThread):
        with pytest.raises(ValueError):
            await thread.task.close_range(FD_LAST, FD_LAST, CLOSE_RANGE.UNSHARE)


async def test_a_shared_table_invalidates_everyones_handles(thread: Thread) -> None:
    fd, = await high_fds(thread, 1)
    number = fd.number
    shared = await thread.clone(CLONE.FILES)
    theirs = fd.for_task(shared.task)
    await shared.task.close_range(number, number)
    assert fd.closed and theirs.closed
    assert number not in open_numbers(thread)
    await shared.exit(0)


async def test_inherited_copies(thread: Thread) -> None:
    # A copy the child did not claim yet is gone with close_range there.
    pipe = await thread.pipe()
    child = await thread.clone()
    await child.task.close_range(keep=[])
    with pytest.raises(ValueError):
        child.inherit_fd(pipe.read)
    # Closing the parent's fd closes a child's unclaimed copy (as close
    # does), so that a pipe can reach EOF.
    await child.exit(0)
    child = await thread.clone()
    own = await child.pipe()
    read_number, write_number = own.read.number, own.write.number
    assert write_number > 2  # not the number of the grandchild's stdio handles
    grandchild = await child.clone()
    await child.task.close_range(write_number, write_number)
    await grandchild.task.getpid()  # the queued close runs before it
    present = open_numbers(grandchild)
    assert write_number not in present and read_number in present
    assert own.write.closed
    grandchild.inherit_fd(own.read)
    await grandchild.exit(0)
    await child.exit(0)


async def test_a_waiting_async_fd_wakes(thread: Thread) -> None:
    child = await thread.clone()
    pipe = await child.pipe()
    afd = await child.make_afd(pipe.read, set_nonblock=True)
    result: list[BaseException] = []

    async def reader() -> None:
        try:
            await afd.read(await child.malloc(bytes, 16))
        except FDClosedWhileWaiting as error:
            result.append(error)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.05)
            await child.task.close_range(keep=[pipe.write])
    assert result and isinstance(result[0], FDClosedWhileWaiting)
    assert await child.task.getpid() == child.task.pid
    await child.exit(0)


async def test_the_whole_table_of_the_thread_itself(thread: Thread) -> None:
    # Everything but the library's own fds goes, and the thread goes on:
    # its connection, its epoll instance, a stub's interrupt socket stay.
    if thread is local_thread:
        pytest.skip("would close the Python process's own files")
    epoller = await thread.epoller()
    await thread.task.close_range()
    assert open_numbers(thread) == private_numbers(thread)
    assert thread.stdin.closed and thread.stdout.closed
    assert await thread.task.getpid() == thread.task.pid
    pipe = await thread.pipe()
    reader = await thread.make_afd(pipe.read, set_nonblock=True)
    await pipe.write.write(await thread.ptr(b"still here"))
    assert await reader.read_some_bytes() == b"still here"
    assert await thread.epoller() is epoller
    await reader.close()
