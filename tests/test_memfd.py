"""rsyscall.sys.mman: memfd_create, its flags, and sealing."""

from __future__ import annotations

import errno
import os

import pytest

from rsyscall import FileDescriptor, Thread, UseAfterConsumeError
from rsyscall.fcntl import FD, SEAL, F
from rsyscall.sys.mman import MFD
from rsyscall.unistd import SEEK

from .util import fd_path, fd_stat, thread_pid

pytestmark = pytest.mark.anyio


async def memfd(thread: Thread, name: str, flags: MFD = MFD.NONE) -> FileDescriptor:
    return await thread.task.memfd_create(await thread.ptr(name), flags)


async def still_works(thread: Thread) -> None:
    assert await thread.task.getpid() == thread_pid(thread)
    fd = await memfd(thread, "still-works")
    await fd.close()


def test_old_module_name_still_works() -> None:
    # The man page's SYNOPSIS names <sys/mman.h>, where memfd_create now
    # lives; the old module re-exports it.
    from rsyscall.linux import memfd
    from rsyscall.sys import mman

    assert memfd.MFD is mman.MFD is MFD
    assert memfd.MemfdTask is mman.MemfdTask
    assert MFD.__module__ == "rsyscall.sys.mman"


async def test_create_write_read(thread: Thread) -> None:
    fd = await memfd(thread, "rsyscall-test")
    assert os.readlink(fd_path(thread, fd)) == "/memfd:rsyscall-test (deleted)"
    # Every fd the library makes is close-on-exec, asked for or not.
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    _, rest = await fd.write(await thread.ptr(b"in memory"))
    assert rest.size() == 0
    assert fd_stat(thread, fd).st_size == 9
    await fd.lseek(0, SEEK.SET)
    valid, _ = await fd.read(await thread.malloc(bytes, 64))
    assert await valid.read() == b"in memory"
    await fd.close()


async def test_cloexec_flag_is_accepted(thread: Thread) -> None:
    fd = await memfd(thread, "explicit-cloexec", MFD.CLOEXEC | MFD.ALLOW_SEALING)
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    await fd.close()


async def test_seals(thread: Thread) -> None:
    fd = await memfd(thread, "sealed", MFD.ALLOW_SEALING)
    assert await fd.fcntl(F.GET_SEALS) == SEAL.NONE
    await fd.write(await thread.ptr(b"0123456789"))
    await fd.fcntl(F.ADD_SEALS, SEAL.SHRINK | SEAL.GROW)
    assert await fd.fcntl(F.GET_SEALS) == SEAL.SHRINK | SEAL.GROW
    with pytest.raises(OSError) as info:
        await fd.ftruncate(5)
    assert info.value.errno == errno.EPERM
    with pytest.raises(OSError) as info:
        await fd.ftruncate(20)
    assert info.value.errno == errno.EPERM
    # Overwriting inside the file is still allowed; growing it is not.
    await fd.pwrite(await thread.ptr(b"ab"), 0)
    with pytest.raises(OSError) as info:
        await fd.pwrite(await thread.ptr(b"ab"), 9)
    assert info.value.errno == errno.EPERM
    await fd.fcntl(F.ADD_SEALS, SEAL.WRITE | SEAL.SEAL)
    with pytest.raises(OSError) as info:
        await fd.pwrite(await thread.ptr(b"ab"), 0)
    assert info.value.errno == errno.EPERM
    with pytest.raises(OSError) as info:
        await fd.fcntl(F.ADD_SEALS, SEAL.FUTURE_WRITE)
    assert info.value.errno == errno.EPERM
    valid, _ = await fd.pread(await thread.malloc(bytes, 10), 0)
    assert await valid.read() == b"ab23456789"
    await fd.close()


async def test_without_allow_sealing_it_is_sealed_shut(thread: Thread) -> None:
    fd = await memfd(thread, "unsealable")
    assert await fd.fcntl(F.GET_SEALS) == SEAL.SEAL
    with pytest.raises(OSError) as info:
        await fd.fcntl(F.ADD_SEALS, SEAL.WRITE)
    assert info.value.errno == errno.EPERM
    await fd.close()


async def test_bad_arguments(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(TypeError):
        await task.memfd_create("plain str")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.memfd_create(await thread.ptr(b"bytes"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.memfd_create(await thread.ptr("x"), "cloexec")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.memfd_create(await thread.ptr("x"), 0x1000)  # type: ignore[arg-type]
    # The name is at most 249 bytes.
    with pytest.raises(OSError) as info:
        await task.memfd_create(await thread.ptr("x" * 250))
    assert info.value.errno == errno.EINVAL
    name = await thread.ptr("consumed")
    name.split(3)
    with pytest.raises(UseAfterConsumeError):
        await task.memfd_create(name)
    await still_works(thread)
