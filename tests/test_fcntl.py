"""<fcntl.h>: open, openat with flags and modes, fcntl, close-on-exec,
checked against os, stat and the stdlib fcntl module."""

from __future__ import annotations

import errno
import fcntl as stdlib_fcntl
import os
import stat
import struct
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rsyscall import FileDescriptor, ReadablePointer, Thread, UseAfterConsumeError, local_thread
from rsyscall.base.fd import FDTable
from rsyscall.fcntl import AT, F_OWNER, FD, SEAL, F, Flock, FlockType, FOwnerEx, O
from rsyscall.handle import Task
from rsyscall.sys.socket import AF, SOCK
from rsyscall.unistd import SEEK

from .util import (
    blocking,
    borrowed_fd,
    cloexec,
    fd_is_open,
    fd_stat,
    status_field,
    thread_cwd,
    thread_pid,
)

pytestmark = pytest.mark.anyio


def current_umask(thread: Thread) -> int:
    mask = int(status_field(thread, "Umask"), 8)
    if thread is local_thread:
        ours = os.umask(0)
        os.umask(ours)
        assert mask == ours
    return mask


@pytest.fixture
async def in_tmp_cwd(thread: Thread, tmp_path: Path) -> AsyncIterator[Path]:
    """The thread works in tmp_path; its working directory is restored afterwards."""
    before = thread_cwd(thread)
    await thread.task.chdir(await thread.ptr(tmp_path))
    try:
        yield tmp_path
    finally:
        await thread.task.chdir(await thread.ptr(before))


async def still_works(thread: Thread) -> None:
    assert await thread.task.getpid() == thread_pid(thread)
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


async def test_open_create_mode(thread: Thread, tmp_path: Path) -> None:
    umask = current_umask(thread)
    for mode in (0o600, 0o640, 0o755, 0o777, 0o400):
        path = tmp_path / f"f{mode:o}"
        fd = await thread.task.open(await thread.ptr(path), O.WRONLY | O.CREAT | O.EXCL, mode)
        assert isinstance(fd, FileDescriptor)
        st = os.stat(path)
        assert stat.S_ISREG(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == mode & ~umask
        assert fd_stat(thread, fd).st_ino == st.st_ino
        await fd.close()
    # The default mode is 0o644.
    fd = await thread.task.open(await thread.ptr(tmp_path / "default"), O.WRONLY | O.CREAT)
    assert stat.S_IMODE(os.stat(tmp_path / "default").st_mode) == 0o644 & ~umask
    with pytest.raises(FileExistsError):
        await thread.task.open(await thread.ptr(tmp_path / "default"), O.WRONLY | O.CREAT | O.EXCL)
    await still_works(thread)


async def test_open_always_cloexec_and_access_mode(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    for flags, accmode in ((O.RDONLY, os.O_RDONLY), (O.WRONLY, os.O_WRONLY), (O.RDWR, os.O_RDWR)):
        fd = await thread.task.open(await thread.ptr(path), flags)
        assert cloexec(thread, fd)
        if thread is local_thread:  # F_GETFD of the fd itself, in our own table
            assert stdlib_fcntl.fcntl(fd.number, stdlib_fcntl.F_GETFD) == stdlib_fcntl.FD_CLOEXEC
        got = await fd.fcntl(F.GETFL)
        with borrowed_fd(thread, fd) as ours:
            assert got == stdlib_fcntl.fcntl(ours, stdlib_fcntl.F_GETFL)
        assert got & os.O_ACCMODE == accmode
        # O_CLOEXEC is not a file status flag: GETFL never shows it.
        assert not got & O.CLOEXEC


async def test_open_flags_behave(thread: Thread, tmp_path: Path) -> None:
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
    assert not blocking(thread, fd)
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
    assert fd_stat(thread, opath).st_ino == os.stat(path).st_ino
    with pytest.raises(OSError) as info:
        await opath.read(await thread.malloc(bytes, 4))
    assert info.value.errno == errno.EBADF
    # O_TMPFILE: an unnamed file in a directory.
    tmpfile = await task.open(await thread.ptr(tmp_path), O.TMPFILE | O.RDWR, 0o600)
    assert stat.S_ISREG(fd_stat(thread, tmpfile).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["f", "link"]
    await still_works(thread)


async def test_openat_with_dirfd_and_none(thread: Thread, tmp_path: Path, in_tmp_cwd: Path) -> None:
    task = thread.task
    sub = tmp_path / "sub"
    sub.mkdir()
    dirfd = await task.open(await thread.ptr(sub), O.RDONLY | O.DIRECTORY)
    assert stat.S_ISDIR(fd_stat(thread, dirfd).st_mode)
    fd = await task.openat(dirfd, await thread.ptr("inner"), O.WRONLY | O.CREAT, 0o600)
    assert (sub / "inner").exists()
    assert stat.S_IMODE(os.stat(sub / "inner").st_mode) == 0o600 & ~current_umask(thread)
    await fd.write(await thread.ptr(b"in sub"))
    fd = await task.openat(None, await thread.ptr("sub/inner"), O.RDONLY)  # relative to cwd
    assert await thread.read_to_eof(fd) == b"in sub"
    fd = await task.openat(None, await thread.ptr("outer"), O.WRONLY | O.CREAT)
    assert (tmp_path / "outer").exists()
    # An absolute path ignores the dirfd.
    fd = await task.openat(dirfd, await thread.ptr(tmp_path / "outer"), O.RDONLY)
    assert fd_stat(thread, fd).st_ino == os.stat(tmp_path / "outer").st_ino
    with pytest.raises(FileNotFoundError):
        await task.openat(dirfd, await thread.ptr("outer"), O.RDONLY)
    # A dirfd that is not a directory: ENOTDIR for a relative path.
    with pytest.raises(NotADirectoryError):
        await task.openat(fd, await thread.ptr("x"), O.RDONLY)
    # A pathlib path and a str path are both fine.
    fd = await task.openat(dirfd, await thread.ptr(Path("inner")), O.RDONLY)
    assert await thread.read_to_eof(fd) == b"in sub"
    assert cloexec(thread, fd)


# ---- fcntl ----


async def test_fcntl_getfl_setfl(thread: Thread) -> None:
    pipe = await thread.pipe()
    fd = pipe.read
    flags = await fd.fcntl(F.GETFL)
    with borrowed_fd(thread, fd) as ours:
        assert flags == stdlib_fcntl.fcntl(ours, stdlib_fcntl.F_GETFL)
    assert not flags & O.NONBLOCK and blocking(thread, fd)
    assert await fd.fcntl(F.SETFL, flags | O.NONBLOCK) == 0
    assert not blocking(thread, fd)
    assert await fd.fcntl(F.GETFL) & O.NONBLOCK
    with pytest.raises(BlockingIOError):
        await fd.read(await thread.malloc(bytes, 1))
    await fd.fcntl(F.SETFL, flags)
    assert blocking(thread, fd)
    # Set by the stdlib (on the same open file), seen here.
    with borrowed_fd(thread, fd) as ours:
        os.set_blocking(ours, False)
    assert await fd.fcntl(F.GETFL) & O.NONBLOCK


async def test_fcntl_getfd_setfd_and_cloexec_helpers(thread: Thread) -> None:
    pipe = await thread.pipe()
    fd = pipe.write
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    await fd.disable_cloexec()
    assert await fd.fcntl(F.GETFD) == 0
    assert not cloexec(thread, fd)
    await fd.disable_cloexec()  # idempotent
    assert not cloexec(thread, fd)
    await fd.enable_cloexec()
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    assert cloexec(thread, fd)
    await fd.fcntl(F.SETFD, FD.NONE)
    assert not cloexec(thread, fd)
    if thread is local_thread:  # the stdlib can set fd flags in our own table alone
        assert os.get_inheritable(fd.number)
        os.set_inheritable(fd.number, False)
        assert await fd.fcntl(F.GETFD) == FD.CLOEXEC


async def test_fcntl_pipe_size_and_dupfd(thread: Thread) -> None:
    pipe = await thread.pipe()
    size = await pipe.write.fcntl(F.GETPIPE_SZ)
    with borrowed_fd(thread, pipe.write) as ours:
        assert size == stdlib_fcntl.fcntl(ours, stdlib_fcntl.F_GETPIPE_SZ)
        assert await pipe.write.fcntl(F.SETPIPE_SZ, 2 * size) >= 2 * size
        assert stdlib_fcntl.fcntl(ours, stdlib_fcntl.F_GETPIPE_SZ) >= 2 * size
    # F_DUPFD returns a handle that owns the new fd.
    dup = await pipe.write.fcntl(F.DUPFD, 100)
    assert isinstance(dup, FileDescriptor)
    number = dup.number
    assert number >= 100
    assert not cloexec(thread, number)  # plain F_DUPFD does not set close-on-exec
    assert fd_stat(thread, number).st_ino == fd_stat(thread, pipe.write).st_ino
    dup_cloexec = await pipe.write.fcntl(F.DUPFD_CLOEXEC, 200)
    assert dup_cloexec.number >= 200 and cloexec(thread, dup_cloexec)
    await dup_cloexec.close()
    with pytest.raises(OSError) as info:  # beyond RLIMIT_NOFILE
        await pipe.write.fcntl(F.DUPFD, (1 << 31) - 1)
    assert info.value.errno == errno.EINVAL
    await dup.close()
    assert not fd_is_open(thread, number)
    if thread is local_thread:  # our own fd table: the stdlib sees it closed
        with pytest.raises(OSError):
            os.fstat(number)


async def test_dup_is_cloexec_and_shares_offset(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    fd = await thread.task.open(await thread.ptr(tmp_path / "f"), O.RDONLY)
    await fd.disable_cloexec()
    copy = await fd.dup()
    assert copy.number != fd.number
    assert await copy.fcntl(F.GETFD) == FD.CLOEXEC
    await fd.lseek(4, SEEK.SET)
    with borrowed_fd(thread, copy) as ours:
        assert os.lseek(ours, 0, os.SEEK_CUR) == 4
    valid, _ = await copy.read(await thread.malloc(bytes, 3))
    assert await valid.read() == b"456"
    assert await fd.lseek(0, SEEK.CUR) == 7


# ---- bad input ----


async def test_open_bad_input(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    with pytest.raises(TypeError):
        await task.open("path-not-pointer", O.RDONLY)  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await task.open(tmp_path, O.RDONLY)  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await task.open(await thread.ptr(b"/dev/null\0"), O.RDONLY)  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await task.openat("dir", await thread.ptr("x"), O.RDONLY)  # type: ignore[arg-type]
    await still_works(thread)
    # An uninitialized pointer is no path.
    with pytest.raises(TypeError):
        await task.open(await thread.malloc(str, 10), O.RDONLY)  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(FileNotFoundError) as info:
        await task.open(await thread.ptr(tmp_path / "no" / "such"), O.RDONLY)
    assert info.value.errno == errno.ENOENT
    await still_works(thread)
    # A consumed path pointer.
    path = await thread.ptr(str(tmp_path))
    path.split(1)
    with pytest.raises(UseAfterConsumeError):
        await task.open(path, O.RDONLY)
    await still_works(thread)
    # A closed directory fd.
    dirfd = await task.open(await thread.ptr(tmp_path), O.RDONLY | O.DIRECTORY)
    await dirfd.close()
    with pytest.raises(UseAfterConsumeError):
        await task.openat(dirfd, await thread.ptr("x"), O.RDONLY | O.CREAT)
    assert not (tmp_path / "x").exists()
    await still_works(thread)


async def test_dirfd_from_another_fd_table(thread: Thread, tmp_path: Path) -> None:
    here = thread.task
    # A number of ours: the foreign handle is refused before any syscall uses it.
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
    await still_works(thread)


async def test_fcntl_bad_input(thread: Thread) -> None:
    pipe = await thread.pipe()
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await pipe.read.fcntl(9999)  # type: ignore[call-overload]
    await still_works(thread)
    with pytest.raises(OSError) as info:
        await pipe.read.fcntl(F.SETPIPE_SZ, -1)
    assert info.value.errno == errno.EINVAL
    await still_works(thread)
    await pipe.read.close()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.fcntl(F.GETFD)
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.disable_cloexec()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.enable_cloexec()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.dup()
    await still_works(thread)


# ---- record locks, owners, and the argument each command takes ----


async def test_flock_struct() -> None:
    lock = Flock(FlockType.WRLCK)
    fields = (lock.type, lock.whence, lock.start, lock.len, lock.pid)
    assert fields == (FlockType.WRLCK, SEEK.SET, 0, 0, 0)
    assert Flock.sizeof() == len(lock.to_bytes()) == 32
    other = Flock(FlockType.RDLCK, SEEK.END, -10, 5, 1234)
    back = Flock.from_bytes(other.to_bytes())
    assert back == other and isinstance(back.type, FlockType) and isinstance(back.whence, SEEK)
    # The C layout: short, short, padding, off_t, off_t, pid_t, padding.
    assert other.to_bytes()[:24] == struct.pack("hh4xqq", 0, 2, -10, 5)
    with pytest.raises(TypeError):
        Flock("w")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Flock(FlockType.WRLCK, start=1 << 63)
    with pytest.raises(ValueError):
        Flock.from_bytes(bytes(31))
    owner = FOwnerEx(F_OWNER.TID, 5)
    assert FOwnerEx.from_bytes(owner.to_bytes()) == owner and FOwnerEx.sizeof() == 8


@pytest.mark.isolated
async def test_fcntl_int_address_is_type_error(thread: Thread, tmp_path: Path) -> None:
    """Regression: fcntl(F.GETLK, n) used to pass n to the kernel as the
    address of a struct flock, which it then read and overwrote; with the
    address of a live object that zeroes its refcount and crashes."""
    fd = await thread.task.open(await thread.ptr(tmp_path / "f"), O.RDWR | O.CREAT)
    victim = [1, 2, 3]
    for cmd in (F.GETLK, F.SETLK, F.SETLKW, F.OFD_GETLK, F.OFD_SETLK, F.GETOWN_EX, F.SETOWN_EX):
        with pytest.raises(TypeError):
            await fd.fcntl(cmd, id(victim))  # type: ignore[call-overload]
        with pytest.raises(TypeError):
            await fd.fcntl(cmd)  # type: ignore[call-overload]
    assert victim == [1, 2, 3]
    # An int command given a pointer; a command number F does not have.
    with pytest.raises(TypeError):
        await fd.fcntl(F.SETFL, await thread.ptr(Flock(FlockType.WRLCK)))  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        await fd.fcntl(14, 0)  # type: ignore[call-overload]  # F_SETLKW64: not on x86_64's F
    with pytest.raises(ValueError):
        await fd.fcntl(F.GETFD, 1)  # type: ignore[call-overload]  # takes no argument
    # A pointer of the wrong type, too small, or uninitialized for F.GETLK.
    with pytest.raises(TypeError):
        await fd.fcntl(F.GETLK, await thread.ptr(bytes(32)))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await fd.fcntl(F.GETOWN_EX, await thread.malloc(Flock))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await fd.fcntl(F.GETLK, await thread.malloc(Flock))  # type: ignore[call-overload]
    half, _ = (await thread.ptr(Flock(FlockType.WRLCK))).split(16)
    with pytest.raises(ValueError):
        await fd.fcntl(F.GETLK, half)
    assert not half.consumed
    await still_works(thread)


async def test_posix_lock_seen_from_child(thread: Thread, tmp_path: Path) -> None:
    """F.SETLK here, F.GETLK in a child process: it sees our lock and our
    pid, and cannot take a conflicting one until we unlock."""
    path = tmp_path / "locked"
    fd = await thread.task.open(await thread.ptr(path), O.RDWR | O.CREAT)
    lock = await thread.ptr(Flock(FlockType.WRLCK, SEEK.SET, 10, 20))
    assert await fd.fcntl(F.SETLK, lock) == 0
    assert not lock.consumed  # only read
    child = await thread.clone()
    try:
        theirs = await child.task.open(await child.ptr(path), O.RDWR)
        query = await child.ptr(Flock(FlockType.RDLCK, SEEK.SET, 0, 0))
        answer = await theirs.fcntl(F.GETLK, query)
        assert query.consumed and isinstance(answer, ReadablePointer)
        seen = await answer.read()
        assert seen == Flock(FlockType.WRLCK, SEEK.SET, 10, 20, thread_pid(thread))
        # A range that does not overlap is free.
        query = await answer.write(Flock(FlockType.WRLCK, SEEK.SET, 30, 5))
        answer = await theirs.fcntl(F.GETLK, query)
        assert (await answer.read()).type == FlockType.UNLCK
        with pytest.raises(OSError) as info:
            await theirs.fcntl(F.SETLK, await child.ptr(Flock(FlockType.WRLCK, SEEK.SET, 15, 1)))
        assert info.value.errno in (errno.EAGAIN, errno.EACCES)
        # Unlocked, the child may lock, and we see its lock.
        await fd.fcntl(F.SETLK, await thread.ptr(Flock(FlockType.UNLCK, SEEK.SET, 10, 20)))
        answer = await theirs.fcntl(F.GETLK, await answer.write(Flock(FlockType.WRLCK)))
        assert (await answer.read()).type == FlockType.UNLCK
        await theirs.fcntl(F.SETLK, await child.ptr(Flock(FlockType.WRLCK, SEEK.SET, 15, 1)))
        back = await fd.fcntl(F.GETLK, await thread.ptr(Flock(FlockType.RDLCK)))
        assert await back.read() == Flock(FlockType.WRLCK, SEEK.SET, 15, 1, child.process.pid)
    finally:
        await child.exit(0)


async def test_ofd_lock_seen_from_child(thread: Thread, tmp_path: Path) -> None:
    """Open file description locks belong to the open file, not the
    process: a child's own open conflicts with ours, and F.OFD_GETLK
    reports the holder as pid -1."""
    path = tmp_path / "ofd"
    fd = await thread.task.open(await thread.ptr(path), O.RDWR | O.CREAT)
    await fd.fcntl(F.OFD_SETLK, await thread.ptr(Flock(FlockType.RDLCK)))
    child = await thread.clone()
    try:
        theirs = await child.task.open(await child.ptr(path), O.RDWR)
        answer = await theirs.fcntl(F.OFD_GETLK, await child.ptr(Flock(FlockType.WRLCK)))
        assert await answer.read() == Flock(FlockType.RDLCK, SEEK.SET, 0, 0, -1)
        with pytest.raises(OSError) as info:
            await theirs.fcntl(F.OFD_SETLK, await child.ptr(Flock(FlockType.WRLCK)))
        assert info.value.errno == errno.EAGAIN
        # A read lock is compatible.
        await theirs.fcntl(F.OFD_SETLK, await child.ptr(Flock(FlockType.RDLCK)))
        # The OFD commands need pid 0.
        with pytest.raises(OSError) as info:
            await theirs.fcntl(F.OFD_GETLK, await child.ptr(Flock(FlockType.WRLCK, pid=1)))
        assert info.value.errno == errno.EINVAL
    finally:
        await child.exit(0)
    # The child's lock went with its open file; ours is still there.
    other = await thread.task.open(await thread.ptr(path), O.RDWR)
    answer = await other.fcntl(F.OFD_GETLK, await thread.ptr(Flock(FlockType.WRLCK)))
    assert (await answer.read()).type == FlockType.RDLCK


async def test_setown_ex_getown_ex(thread: Thread, tmp_path: Path) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    fd = pair.first
    pid = thread_pid(thread)
    # The thread's own OS thread: ours for the local thread, else its only one.
    tid = threading.get_native_id() if thread is local_thread else pid
    group = os.getpgid(pid)
    for owner in (
        FOwnerEx(F_OWNER.PID, pid),
        FOwnerEx(F_OWNER.TID, tid),
        FOwnerEx(F_OWNER.PGRP, group),
    ):
        setting = await thread.ptr(owner)
        assert await fd.fcntl(F.SETOWN_EX, setting) == 0
        assert not setting.consumed
        got = await fd.fcntl(F.GETOWN_EX, await thread.malloc(FOwnerEx))
        assert await got.read() == owner
    # F_GETOWN sees a process group as a negative pid.
    assert await fd.fcntl(F.GETOWN) == -group
    await fd.fcntl(F.SETOWN, pid)
    got = await fd.fcntl(F.GETOWN_EX, await thread.malloc(FOwnerEx))
    assert await got.read() == FOwnerEx(F_OWNER.PID, pid)
    # In a child, on its own copy of the fd.
    child = await thread.clone()
    try:
        theirs = child.inherit_fd(fd)
        await theirs.fcntl(F.SETOWN_EX, await child.ptr(FOwnerEx(F_OWNER.PID, child.process.pid)))
        got = await theirs.fcntl(F.GETOWN_EX, await child.malloc(FOwnerEx))
        assert await got.read() == FOwnerEx(F_OWNER.PID, child.process.pid)
    finally:
        await child.exit(0)


async def test_fcntl_typed_results(thread: Thread, tmp_path: Path) -> None:
    pipe = await thread.pipe()
    flags = await pipe.read.fcntl(F.GETFL)
    assert isinstance(flags, O) and flags & 0o3 == O.RDONLY
    assert isinstance(await pipe.read.fcntl(F.GETFD), FD)
    # A plain int in range is accepted at run time too.
    await pipe.read.fcntl(F.SETFL, int(flags | O.NONBLOCK))  # type: ignore[call-overload]
    assert await pipe.read.fcntl(F.GETFL) & O.NONBLOCK
    fd = await thread.task.open(await thread.ptr(tmp_path / "f"), O.RDONLY | O.CREAT)
    lease = await fd.fcntl(F.GETLEASE)
    assert lease == FlockType.UNLCK and isinstance(lease, FlockType)
    if Path("/proc/sys/fs/leases-enable").read_text().strip() == "1":
        await fd.fcntl(F.SETLEASE, FlockType.RDLCK)
        assert await fd.fcntl(F.GETLEASE) == FlockType.RDLCK
        await fd.fcntl(F.SETLEASE, FlockType.UNLCK)
        assert await fd.fcntl(F.GETLEASE) == FlockType.UNLCK
