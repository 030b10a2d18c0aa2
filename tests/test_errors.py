"""A failed syscall raises the builtin OSError subclass for its errno, naming
the syscall, with the paths it was given as `filename` and `filename2`."""

from __future__ import annotations

import errno
import os
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rsyscall import ChildThread, local_thread
from rsyscall.fcntl import AT, O
from rsyscall.near.interface import SyscallError, syscall_error, syscall_name
from rsyscall.near.sysnum import SYS
from rsyscall.unistd import Pipe

pytestmark = pytest.mark.anyio


@pytest.fixture
async def child() -> AsyncIterator[ChildThread]:
    thread = await local_thread.clone()
    yield thread
    await thread.exit(0)


def test_factory() -> None:
    error = syscall_error(SYS.read, errno.EBADF)
    assert type(error) is not OSError and isinstance(error, OSError)
    assert isinstance(error, SyscallError)
    assert error.errno == errno.EBADF and error.syscall == "read"  # type: ignore[attr-defined]
    assert str(error) == "read: [Errno 9] Bad file descriptor"
    assert repr(error) == "OSError(9, 'Bad file descriptor')"
    for code, cls in [
        (errno.ENOENT, FileNotFoundError), (errno.EAGAIN, BlockingIOError),
        (errno.EACCES, PermissionError), (errno.EINTR, InterruptedError),
        (errno.ESRCH, ProcessLookupError), (errno.ECHILD, ChildProcessError),
        (errno.EPIPE, BrokenPipeError), (errno.ETIMEDOUT, TimeoutError),
    ]:
        made = syscall_error(SYS.openat, code)
        assert isinstance(made, cls) and type(made).__name__ == cls.__name__
    assert syscall_name(9999) == "syscall 9999"
    # Errors survive pickling (they cross process boundaries in test runners).
    error.filename = "/x"
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)


async def test_local_errors_name_the_syscall() -> None:
    fd = await local_thread.task.open(await local_thread.ptr("/dev/null"), O.RDONLY)
    number = fd.number
    await fd.close()
    stale = local_thread.task.make_fd(number)
    with pytest.raises(OSError) as info:
        await stale.read(await local_thread.malloc(bytes, 8))
    assert str(info.value) == "read: [Errno 9] Bad file descriptor"
    assert info.value.errno == errno.EBADF
    stale._number = -1  # nothing to close


async def test_blocking_io_error_is_still_one() -> None:
    pipe = await local_thread.task.pipe(await local_thread.malloc(Pipe), O.NONBLOCK)
    read, write = await pipe.read()
    with pytest.raises(BlockingIOError) as info:
        await read.read(await local_thread.malloc(bytes, 8))
    assert info.value.errno == errno.EAGAIN
    assert str(info.value).startswith("read: [Errno 11]")
    await read.close()
    await write.close()


async def test_path_in_error() -> None:
    task = local_thread.task
    with pytest.raises(FileNotFoundError) as info:
        await task.open(await local_thread.ptr("/nonexistent/x"), O.RDONLY)
    assert info.value.filename == "/nonexistent/x"
    assert str(info.value) == "openat: [Errno 2] No such file or directory: '/nonexistent/x'"
    with pytest.raises(FileNotFoundError) as info:
        await task.mkdir(await local_thread.ptr("/nonexistent/y"))
    assert info.value.filename == "/nonexistent/y"
    assert str(info.value).startswith("mkdirat: ")
    with pytest.raises(FileNotFoundError) as info:
        await local_thread.mkdir("/nonexistent/z")
    assert info.value.filename == "/nonexistent/z"


async def test_two_paths_in_error(tmp_path: Path) -> None:
    path = str(tmp_path)
    await local_thread.spit(f"{path}/a", "a")
    task = local_thread.task
    with pytest.raises(FileExistsError) as info:
        await task.linkat(
            None, await local_thread.ptr(f"{path}/a"), None, await local_thread.ptr(f"{path}/a")
        )
    assert info.value.filename == f"{path}/a" and info.value.filename2 == f"{path}/a"
    assert str(info.value) == (
        f"linkat: [Errno 17] File exists: '{path}/a' -> '{path}/a'"
    )
    with pytest.raises(FileNotFoundError) as info:
        await task.symlinkat(
            await local_thread.ptr("target"), None, await local_thread.ptr(f"{path}/no/link")
        )
    assert (info.value.filename, info.value.filename2) == ("target", f"{path}/no/link")
    with pytest.raises(FileNotFoundError) as info:
        await task.unlinkat(None, await local_thread.ptr(f"{path}/missing"), AT.NONE)
    assert info.value.filename == f"{path}/missing"
    assert info.value.filename2 is None


async def test_pathlike_in_error() -> None:
    with pytest.raises(FileNotFoundError) as info:
        await local_thread.task.open(await local_thread.ptr(Path("/nonexistent")), O.RDONLY)
    assert info.value.filename == Path("/nonexistent")
    assert os.fspath(info.value.filename) == "/nonexistent"


async def test_child_errors(child: ChildThread) -> None:
    with pytest.raises(FileNotFoundError) as info:
        await child.task.open(await child.ptr("/nonexistent/x"), O.RDONLY)
    assert info.value.filename == "/nonexistent/x"
    assert isinstance(info.value, SyscallError)
    assert str(info.value).endswith(": [Errno 2] No such file or directory: '/nonexistent/x'")
    pipe = await child.pipe()
    await pipe.read.close()
    with pytest.raises(BrokenPipeError) as error:
        await pipe.write.write(await child.ptr(b"x"))  # SIGPIPE is ignored, as in Python
    assert error.value.errno == errno.EPIPE
    await pipe.write.close()
