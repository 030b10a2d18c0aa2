"""<fcntl.h>: open, openat with flags and modes, fcntl, close-on-exec,
checked against os, stat and the stdlib fcntl module."""

from __future__ import annotations

import errno
import fcntl as stdlib_fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsyscall import FileDescriptor, UseAfterConsumeError, local_thread
from rsyscall.base.fd import FDTable
from rsyscall.fcntl import AT, FD, SEAL, F, O
from rsyscall.handle import Task
from rsyscall.unistd import SEEK

pytestmark = pytest.mark.anyio


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def in_tmp_cwd(tmp_path: Path) -> Iterator[Path]:
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


async def still_works() -> None:
    thread = local_thread
    assert await thread.task.getpid() == os.getpid()
    fd = await thread.task.open(await thread.ptr("/dev/null"), O.RDONLY)
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    await fd.close()


def test_constants_match_stdlib() -> None:
    for name in ("RDONLY", "WRONLY", "RDWR", "CREAT", "EXCL", "NOCTTY", "TRUNC", "APPEND",
                 "NONBLOCK", "DSYNC", "ASYNC", "DIRECT", "DIRECTORY", "NOFOLLOW", "NOATIME",
                 "CLOEXEC", "SYNC", "PATH", "TMPFILE"):
        assert O[name] == getattr(os, "O_" + name), name
    for name in ("DUPFD", "GETFD", "SETFD", "GETFL", "SETFL", "GETLK", "SETLK", "SETLKW",
                 "SETOWN", "GETOWN", "SETSIG", "GETSIG", "OFD_GETLK", "OFD_SETLK",
                 "OFD_SETLKW", "SETLEASE", "GETLEASE", "NOTIFY", "DUPFD_CLOEXEC",
                 "SETPIPE_SZ", "GETPIPE_SZ", "ADD_SEALS", "GET_SEALS"):
        assert F[name] == getattr(stdlib_fcntl, "F_" + name), name
    assert FD.CLOEXEC == stdlib_fcntl.FD_CLOEXEC
    for name in ("SEAL", "SHRINK", "GROW", "WRITE", "FUTURE_WRITE"):
        if hasattr(stdlib_fcntl, "F_SEAL_" + name):
            assert SEAL[name] == getattr(stdlib_fcntl, "F_SEAL_" + name), name
    assert int(AT.REMOVEDIR) == int(AT.EACCESS) == 0x200


# ---- open / openat ----


async def test_open_create_mode(tmp_path: Path) -> None:
    thread = local_thread
    umask = current_umask()
    for mode in (0o600, 0o640, 0o755, 0o777, 0o400):
        path = tmp_path / f"f{mode:o}"
        fd = await thread.task.open(await thread.ptr(path), O.WRONLY | O.CREAT | O.EXCL, mode)
        assert isinstance(fd, FileDescriptor)
        st = os.stat(path)
        assert stat.S_ISREG(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == mode & ~umask
        assert os.fstat(fd.number).st_ino == st.st_ino
        await fd.close()
    # The default mode is 0o644.
    fd = await thread.task.open(await thread.ptr(tmp_path / "default"), O.WRONLY | O.CREAT)
    assert stat.S_IMODE(os.stat(tmp_path / "default").st_mode) == 0o644 & ~umask
    with pytest.raises(FileExistsError):
        await thread.task.open(await thread.ptr(tmp_path / "default"), O.WRONLY | O.CREAT | O.EXCL)
    await still_works()


async def test_open_always_cloexec_and_access_mode(tmp_path: Path) -> None:
    thread = local_thread
    path = tmp_path / "f"
    path.write_bytes(b"")
    for flags, accmode in ((O.RDONLY, os.O_RDONLY), (O.WRONLY, os.O_WRONLY), (O.RDWR, os.O_RDWR)):
        fd = await thread.task.open(await thread.ptr(path), flags)
        assert not os.get_inheritable(fd.number)
        assert stdlib_fcntl.fcntl(fd.number, stdlib_fcntl.F_GETFD) == stdlib_fcntl.FD_CLOEXEC
        got = await fd.fcntl(F.GETFL)
        assert got == stdlib_fcntl.fcntl(fd.number, stdlib_fcntl.F_GETFL)
        assert got & os.O_ACCMODE == accmode
        # O_CLOEXEC is not a file status flag: GETFL never shows it.
        assert not got & O.CLOEXEC


async def test_open_flags_behave(tmp_path: Path) -> None:
    thread = local_thread
    task = thread.task
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = await task.open(await thread.ptr(path), O.WRONLY | O.TRUNC)
    assert os.stat(path).st_size == 0
    await fd.write(await thread.ptr(b"abc"))
    await fd.close()
    fd = await task.open(await thread.ptr(path), O.WRONLY | O.APPEND)
    assert await fd.fcntl(F.GETFL) & O.APPEND
    await fd.lseek(0, SEEK.SET)
    await fd.write(await thread.ptr(b"def"))  # appended despite the seek
    assert path.read_bytes() == b"abcdef"
    fd = await task.open(await thread.ptr(path), O.RDONLY | O.NONBLOCK)
    assert not os.get_blocking(fd.number)
    with pytest.raises(NotADirectoryError):
        await task.open(await thread.ptr(path), O.RDONLY | O.DIRECTORY)
    with pytest.raises(IsADirectoryError):
        await task.open(await thread.ptr(tmp_path), O.WRONLY)
    with pytest.raises(FileNotFoundError):
        await task.open(await thread.ptr(tmp_path / "missing"), O.RDONLY)
    os.symlink("f", tmp_path / "link")
    with pytest.raises(OSError) as info:
        await task.open(await thread.ptr(tmp_path / "link"), O.RDONLY | O.NOFOLLOW)
    assert info.value.errno == errno.ELOOP
    # O_PATH: a handle on the file that cannot be read.
    opath = await task.open(await thread.ptr(path), O.PATH)
    assert await opath.fcntl(F.GETFL) & O.PATH
    assert os.fstat(opath.number).st_ino == os.stat(path).st_ino
    with pytest.raises(OSError) as info:
        await opath.read(await thread.malloc(bytes, 4))
    assert info.value.errno == errno.EBADF
    # O_TMPFILE: an unnamed file in a directory.
    tmpfile = await task.open(await thread.ptr(tmp_path), O.TMPFILE | O.RDWR, 0o600)
    assert stat.S_ISREG(os.fstat(tmpfile.number).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["f", "link"]
    await still_works()


async def test_openat_with_dirfd_and_none(tmp_path: Path, in_tmp_cwd: Path) -> None:
    thread = local_thread
    task = thread.task
    sub = tmp_path / "sub"
    sub.mkdir()
    dirfd = await task.open(await thread.ptr(sub), O.RDONLY | O.DIRECTORY)
    assert stat.S_ISDIR(os.fstat(dirfd.number).st_mode)
    fd = await task.openat(dirfd, await thread.ptr("inner"), O.WRONLY | O.CREAT, 0o600)
    assert (sub / "inner").exists()
    assert stat.S_IMODE(os.stat(sub / "inner").st_mode) == 0o600 & ~current_umask()
    await fd.write(await thread.ptr(b"in sub"))
    fd = await task.openat(None, await thread.ptr("sub/inner"), O.RDONLY)  # relative to cwd
    assert await thread.read_to_eof(fd) == b"in sub"
    fd = await task.openat(None, await thread.ptr("outer"), O.WRONLY | O.CREAT)
    assert (tmp_path / "outer").exists()
    # An absolute path ignores the dirfd.
    fd = await task.openat(dirfd, await thread.ptr(tmp_path / "outer"), O.RDONLY)
    assert os.fstat(fd.number).st_ino == os.stat(tmp_path / "outer").st_ino
    with pytest.raises(FileNotFoundError):
        await task.openat(dirfd, await thread.ptr("outer"), O.RDONLY)
    # A dirfd that is not a directory: ENOTDIR for a relative path.
    with pytest.raises(NotADirectoryError):
        await task.openat(fd, await thread.ptr("x"), O.RDONLY)
    # A pathlib path and a str path are both fine.
    fd = await task.openat(dirfd, await thread.ptr(Path("inner")), O.RDONLY)
    assert await thread.read_to_eof(fd) == b"in sub"
    assert not os.get_inheritable(fd.number)


# ---- fcntl ----


async def test_fcntl_getfl_setfl() -> None:
    pipe = await local_thread.pipe()
    fd = pipe.read
    flags = await fd.fcntl(F.GETFL)
    assert flags == stdlib_fcntl.fcntl(fd.number, stdlib_fcntl.F_GETFL)
    assert not flags & O.NONBLOCK and os.get_blocking(fd.number)
    assert await fd.fcntl(F.SETFL, flags | O.NONBLOCK) == 0
    assert not os.get_blocking(fd.number)
    assert await fd.fcntl(F.GETFL) & O.NONBLOCK
    with pytest.raises(BlockingIOError):
        await fd.read(await local_thread.malloc(bytes, 1))
    await fd.fcntl(F.SETFL, flags)
    assert os.get_blocking(fd.number)
    # Set by the stdlib, seen here.
    os.set_blocking(fd.number, False)
    assert await fd.fcntl(F.GETFL) & O.NONBLOCK


async def test_fcntl_getfd_setfd_and_cloexec_helpers() -> None:
    pipe = await local_thread.pipe()
    fd = pipe.write
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    await fd.disable_cloexec()
    assert await fd.fcntl(F.GETFD) == 0
    assert os.get_inheritable(fd.number)
    await fd.disable_cloexec()  # idempotent
    assert os.get_inheritable(fd.number)
    await fd.enable_cloexec()
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    assert not os.get_inheritable(fd.number)
    await fd.fcntl(F.SETFD, 0)
    assert os.get_inheritable(fd.number)
    os.set_inheritable(fd.number, False)
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC


async def test_fcntl_pipe_size_and_dupfd() -> None:
    pipe = await local_thread.pipe()
    size = await pipe.write.fcntl(F.GETPIPE_SZ)
    assert size == stdlib_fcntl.fcntl(pipe.write.number, stdlib_fcntl.F_GETPIPE_SZ)
    assert await pipe.write.fcntl(F.SETPIPE_SZ, 2 * size) >= 2 * size
    assert stdlib_fcntl.fcntl(pipe.write.number, stdlib_fcntl.F_GETPIPE_SZ) >= 2 * size
    # F_DUPFD returns a bare number: take ownership of it with make_fd.
    number = await pipe.write.fcntl(F.DUPFD, 100)
    assert number >= 100
    dup = local_thread.task.make_fd(number)
    assert os.get_inheritable(number)  # plain F_DUPFD does not set close-on-exec
    await dup.close()
    with pytest.raises(OSError):
        os.fstat(number)


async def test_dup_is_cloexec_and_shares_offset(tmp_path: Path) -> None:
    thread = local_thread
    (tmp_path / "f").write_bytes(b"0123456789")
    fd = await thread.task.open(await thread.ptr(tmp_path / "f"), O.RDONLY)
    await fd.disable_cloexec()
    copy = await fd.dup()
    assert copy.number != fd.number
    assert await copy.fcntl(F.GETFD) == FD.CLOEXEC
    await fd.lseek(4, SEEK.SET)
    assert os.lseek(copy.number, 0, os.SEEK_CUR) == 4
    valid, _ = await copy.read(await thread.malloc(bytes, 3))
    assert await valid.read() == b"456"
    assert await fd.lseek(0, SEEK.CUR) == 7


# ---- bad input ----


async def test_open_bad_input(tmp_path: Path) -> None:
    thread = local_thread
    task = thread.task
    with pytest.raises(TypeError):
        await task.open("path-not-pointer", O.RDONLY)  # type: ignore[arg-type]
    await still_works()
    with pytest.raises(TypeError):
        await task.open(tmp_path, O.RDONLY)  # type: ignore[arg-type]
    await still_works()
    with pytest.raises(TypeError):
        await task.open(await thread.ptr(b"/dev/null\0"), O.RDONLY)  # type: ignore[arg-type]
    await still_works()
    with pytest.raises(TypeError):
        await task.openat("dir", await thread.ptr("x"), O.RDONLY)  # type: ignore[arg-type]
    await still_works()
    # An uninitialized pointer is no path.
    with pytest.raises(TypeError):
        await task.open(await thread.malloc(str, 10), O.RDONLY)  # type: ignore[arg-type]
    await still_works()
    with pytest.raises(FileNotFoundError) as info:
        await task.open(await thread.ptr(tmp_path / "no" / "such"), O.RDONLY)
    assert info.value.errno == errno.ENOENT
    await still_works()
    # A consumed path pointer.
    path = await thread.ptr(str(tmp_path))
    path.split(1)
    with pytest.raises(UseAfterConsumeError):
        await task.open(path, O.RDONLY)
    await still_works()
    # A closed directory fd.
    dirfd = await task.open(await thread.ptr(tmp_path), O.RDONLY | O.DIRECTORY)
    await dirfd.close()
    with pytest.raises(UseAfterConsumeError):
        await task.openat(dirfd, await thread.ptr("x"), O.RDONLY | O.CREAT)
    assert not (tmp_path / "x").exists()
    await still_works()


async def test_dirfd_from_another_fd_table(tmp_path: Path) -> None:
    thread = local_thread
    here = thread.task
    number = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        closed: list[int] = []
        elsewhere = Task(here.sysif, here.space, FDTable("elsewhere", closed.append), here.pid)
        foreign = elsewhere.make_fd(number)
        with pytest.raises(ValueError):
            await here.openat(foreign, await thread.ptr("x"), O.RDONLY | O.CREAT)
        assert not (tmp_path / "x").exists()
        del foreign
        assert closed == [number]
    finally:
        os.close(number)
    await still_works()


async def test_fcntl_bad_input() -> None:
    pipe = await local_thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.fcntl(9999)  # type: ignore[arg-type]
    assert info.value.errno == errno.EINVAL
    await still_works()
    with pytest.raises(OSError) as info:
        await pipe.read.fcntl(F.SETPIPE_SZ, -1)
    assert info.value.errno == errno.EINVAL
    await still_works()
    await pipe.read.close()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.fcntl(F.GETFD)
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.disable_cloexec()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.enable_cloexec()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.dup()
    await still_works()
