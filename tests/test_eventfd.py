"""rsyscall.sys.eventfd: the counter's semantics through ordinary read and
write, and waiting on it through an AsyncFileDescriptor."""

from __future__ import annotations

import errno
import os

import anyio
import pytest

from rsyscall import FileDescriptor, Thread, UseAfterConsumeError
from rsyscall.fcntl import FD, F, O
from rsyscall.struct import UInt64
from rsyscall.sys.eventfd import EFD

from .util import fd_path

pytestmark = pytest.mark.anyio


async def add(thread: Thread, fd: FileDescriptor, value: int) -> None:
    written, rest = await fd.write(await thread.ptr(UInt64(value)))
    assert written.size() == 8
    assert rest.size() == 0


async def take(thread: Thread, fd: FileDescriptor) -> int:
    valid, rest = await fd.read(await thread.malloc(UInt64))
    assert valid.size() == 8
    assert rest.size() == 0
    return await valid.read()


async def test_counter_semantics(thread: Thread) -> None:
    fd = await thread.task.eventfd(5, EFD.NONBLOCK)
    try:
        # Writes add to the counter; a read returns it and resets it.
        await add(thread, fd, 3)
        await add(thread, fd, 2)
        value = await take(thread, fd)
        assert value == 10
        assert isinstance(value, UInt64)
        with pytest.raises(BlockingIOError) as info:
            await take(thread, fd)
        assert info.value.errno == errno.EAGAIN
        await add(thread, fd, 1)
        assert await take(thread, fd) == 1
    finally:
        await fd.close()


async def test_semaphore_reads_one_at_a_time(thread: Thread) -> None:
    fd = await thread.task.eventfd(3, EFD.SEMAPHORE | EFD.NONBLOCK)
    assert [await take(thread, fd) for _ in range(3)] == [1, 1, 1]
    with pytest.raises(BlockingIOError):
        await take(thread, fd)
    await fd.close()


async def test_cloexec_always_set(thread: Thread) -> None:
    fd = await thread.task.eventfd()
    assert await fd.fcntl(F.GETFD) & FD.CLOEXEC
    assert not await fd.fcntl(F.GETFL) & O.NONBLOCK
    fd2 = await thread.task.eventfd(0, EFD.NONBLOCK | EFD.CLOEXEC)
    assert await fd2.fcntl(F.GETFL) & O.NONBLOCK
    # It is an eventfd: /proc names it so.
    assert os.readlink(fd_path(thread, fd)) == "anon_inode:[eventfd]"
    await fd.close()
    await fd2.close()


async def test_async_read_waits_for_a_write(thread: Thread) -> None:
    fd = await thread.task.eventfd(0, EFD.NONBLOCK)
    afd = await thread.make_afd(fd)
    got: list[int] = []

    async def reader() -> None:
        valid, _ = await afd.read(await thread.malloc(UInt64))
        got.append(await valid.read())

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.02)
            assert got == []  # still waiting: nothing was written
            await add(thread, fd, 7)
        assert got == [7]
    finally:
        await afd.close()


async def test_many_writers_one_async_reader(thread: Thread) -> None:
    fd = await thread.task.eventfd(0, EFD.NONBLOCK | EFD.SEMAPHORE)
    afd = await thread.make_afd(fd)
    total = 0

    async def writer(n: int) -> None:
        await anyio.sleep(0.001 * n)
        await add(thread, fd, 1)

    try:
        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(writer, n)
            for _ in range(10):
                valid, _ = await afd.read(await thread.malloc(UInt64))
                total += await valid.read()
        assert total == 10
    finally:
        await afd.close()


async def test_overflow_and_short_buffers(thread: Thread) -> None:
    fd = await thread.task.eventfd(0, EFD.NONBLOCK)
    try:
        # The counter's maximum is 2**64 - 2; writing 2**64 - 1 is refused.
        with pytest.raises(OSError) as info:
            await add(thread, fd, 2**64 - 1)
        assert info.value.errno == errno.EINVAL
        await add(thread, fd, 2**64 - 2)
        with pytest.raises(BlockingIOError):
            await add(thread, fd, 1)  # would overflow: a non-blocking write fails
        assert await take(thread, fd) == 2**64 - 2
        # Reads and writes need 8 bytes: the kernel refuses fewer.
        small = await thread.malloc(bytes, 4)
        with pytest.raises(OSError) as info:
            await fd.read(small)
        assert info.value.errno == errno.EINVAL
        assert not small.consumed  # a failed syscall gives the pointer back
        with pytest.raises(OSError) as info:
            await fd.write(await thread.ptr(b"\1\0\0\0"))
        assert info.value.errno == errno.EINVAL
        # Still works.
        await add(thread, fd, 4)
        assert await take(thread, fd) == 4
    finally:
        await fd.close()


async def test_bad_arguments(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(TypeError):
        await task.eventfd("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.eventfd(0, "nonblock")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.eventfd(True)
    with pytest.raises(ValueError):
        await task.eventfd(-1)
    with pytest.raises(ValueError):
        await task.eventfd(2**32)
    with pytest.raises(ValueError):
        await task.eventfd(0, 2**32)  # type: ignore[arg-type]
    # Unknown flag bits are refused before the syscall.
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.eventfd(0, 0x10)  # type: ignore[arg-type]
    # The largest unsigned int is fine.
    fd = await task.eventfd(2**32 - 1, EFD.NONBLOCK)
    assert await take(thread, fd) == 2**32 - 1
    # A closed fd raises in Python.
    await fd.close()
    with pytest.raises(UseAfterConsumeError):
        await take(thread, fd)
    # A consumed pointer raises in Python.
    ptr = await thread.malloc(UInt64)
    fd = await task.eventfd(1, EFD.NONBLOCK)
    valid, rest = await fd.read(ptr)
    with pytest.raises(UseAfterConsumeError):
        await fd.read(ptr)
    assert await valid.read() == 1
    buf = valid + rest
    with pytest.raises(UseAfterConsumeError):
        await fd.write(valid)  # merged into buf
    await add(thread, fd, 2)
    valid, _ = await fd.read(buf)
    assert await valid.read() == 2
    await fd.close()
