"""<unistd.h>: process identity, fd I/O, dup, pipes, the working directory
and links, each checked against what the stdlib (os, stat) sees."""

from __future__ import annotations

import errno
import os
import select
import stat
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rsyscall import (
    FileDescriptor,
    Pointer,
    ReadablePointer,
    Thread,
    UseAfterConsumeError,
    WrittenPointer,
    local_thread,
)
from rsyscall.fcntl import AT, FD, F, O
from rsyscall.unistd import OK, SEEK, Pipe

from .util import (
    blocking,
    borrowed_fd,
    cloexec,
    fd_is_open,
    fd_stat,
    read_from,
    status_field,
    thread_cwd,
    thread_fds,
    thread_pid,
    write_to,
)

pytestmark = pytest.mark.anyio

T = TypeVar("T")


# ---- helpers ----


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of local syscalls to completion without an event loop.

    Local syscalls complete at once, so such a coroutine never suspends.
    Used in a forked child, where the parent's event loop must not be run."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a local syscall suspended")


def in_forked_child(body: Callable[[], int]) -> int:
    """Run `body` in a child made with os.fork(); return its exit status.

    The child never returns into pytest: it always ends in os._exit, with
    `body`'s result as its status (or 99 if `body` raised)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (runs in the child)
        status = 99
        try:
            status = body()
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    assert os.WIFEXITED(wait_status), f"child did not exit: {wait_status:#x}"
    return os.waitstatus_to_exitcode(wait_status)


async def chdir(thread: Thread, path: str | Path) -> None:
    await thread.task.chdir(await thread.ptr(path))


@pytest.fixture
async def in_tmp_cwd(thread: Thread, tmp_path: Path) -> AsyncIterator[Path]:
    """The thread works in tmp_path; its working directory is restored afterwards."""
    before = thread_cwd(thread)
    await chdir(thread, tmp_path)
    try:
        yield tmp_path
    finally:
        await chdir(thread, before)


async def open_file(
    thread: Thread, path: Path, flags: O = O.RDWR | O.CREAT, mode: int = 0o644
) -> FileDescriptor:
    return await thread.task.open(await thread.ptr(path), flags, mode)


async def still_works(thread: Thread) -> None:
    """The thread still makes syscalls fine after an error."""
    assert await thread.task.getpid() == thread_pid(thread)
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"ok"))
    valid, _ = await pipe.read.read(await thread.malloc(bytes, 8))
    assert await valid.read() == b"ok"


# ---- identity ----


async def test_ids_match_os(thread: Thread) -> None:
    task = thread.task
    uids = [int(uid) for uid in status_field(thread, "Uid").split()]
    gids = [int(gid) for gid in status_field(thread, "Gid").split()]
    assert await task.getpid() == thread_pid(thread)
    assert await task.getppid() == int(status_field(thread, "PPid"))
    assert await task.getuid() == uids[0]
    assert await task.geteuid() == uids[1]
    assert await task.getgid() == gids[0]
    assert await task.getegid() == gids[1]
    if thread is local_thread:
        assert await task.getppid() == os.getppid()
        assert (uids[0], uids[1]) == (os.getuid(), os.geteuid())
        assert (gids[0], gids[1]) == (os.getgid(), os.getegid())


async def test_getpgid_task_and_process(thread: Thread) -> None:
    task = thread.task
    pid = thread_pid(thread)
    assert await task.getpgid() == os.getpgid(pid)
    assert await task.process.getpgid() == os.getpgid(pid)
    if thread is local_thread:
        assert await task.getpgid() == os.getpgid(0) == os.getpgrp()


async def test_process_setpgid_on_a_child(thread: Thread) -> None:
    task = thread.task
    sub = await thread.clone()
    pid = sub.process.pid
    group = os.getpgid(thread_pid(thread))
    child = task.process_class(task, pid)
    assert await child.getpgid() == os.getpgid(pid) == group
    await child.setpgid()  # its own group
    assert os.getpgid(pid) == pid
    assert await child.getpgid() == pid
    await child.setpgid(group)  # and back into its parent's
    assert os.getpgid(pid) == group
    await sub.exit(0)


# os.fork makes a child of the Python process alone: local only.
async def test_process_setpgid_on_a_forked_child() -> None:
    task = local_thread.task
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child: wait until told to exit)
        try:
            os.close(ready_r)
            os.close(go_w)
            os.write(ready_w, b"r")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        assert os.read(ready_r, 1) == b"r"
        child = task.process_class(task, pid)
        assert await child.getpgid() == os.getpgid(pid) == os.getpgrp()
        await child.setpgid()  # its own group
        assert os.getpgid(pid) == pid
        assert await child.getpgid() == pid
        await child.setpgid(os.getpgrp())  # and back into ours
        assert os.getpgid(pid) == os.getpgrp()
    finally:
        os.write(go_w, b"g")
        os.close(go_w)
        os.close(ready_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_task_setpgid_and_setsid_in_forked_child() -> None:
    # drive() runs local syscalls without an event loop, in an os.fork child:
    # local only.
    task = local_thread.task

    def body() -> int:
        # Only fork(2) made this process; the Task's syscalls act on
        # whatever process calls them, which here is the child.
        pid = os.getpid()
        if drive(task.getpid()) != pid:
            return 1
        drive(task.setpgid())
        if os.getpgid(0) != pid or drive(task.getpgid()) != pid:
            return 2
        # A group leader may not start a session.
        try:
            drive(task.setsid())
        except PermissionError:
            pass
        else:
            return 3
        grandchild = os.fork()
        if grandchild == 0:
            code = 10
            try:
                sid = drive(task.setsid())
                me = os.getpid()
                code = 0 if sid == me == os.getsid(0) == os.getpgid(0) else 11
            finally:
                os._exit(code)
        _, status = os.waitpid(grandchild, 0)
        return os.waitstatus_to_exitcode(status)

    assert in_forked_child(body) == 0
    # The pytest process itself was left alone.
    assert os.getpgid(0) == await task.getpgid()


# ---- read, write, pread, pwrite, lseek, ftruncate ----


async def test_read_write_lseek(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "file"
    fd = await open_file(thread, path)
    written, unwritten = await fd.write(await thread.ptr(b"hello world"))
    assert isinstance(written, WrittenPointer) and written.value == b"hello world"
    assert unwritten.size() == 0
    assert path.read_bytes() == b"hello world"
    with borrowed_fd(thread, fd) as ours:
        assert await fd.lseek(0, SEEK.CUR) == 11 == os.lseek(ours, 0, os.SEEK_CUR)
    assert await fd.lseek(6, SEEK.SET) == 6
    valid, rest = await fd.read(await thread.malloc(bytes, 16))
    assert isinstance(valid, ReadablePointer) and type(rest) is Pointer
    assert await valid.read() == b"world" and rest.size() == 11
    # At the end: nothing read, the whole buffer is the rest.
    empty, rest = await fd.read(valid + rest)
    assert empty.size() == 0 and rest.size() == 16
    assert await fd.lseek(-5, SEEK.END) == 6
    assert await fd.lseek(2, SEEK.CUR) == 8
    with pytest.raises(OSError) as info:
        await fd.lseek(-100, SEEK.SET)
    assert info.value.errno == errno.EINVAL
    await fd.close()


async def test_read_into_parts_of_a_buffer(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    fd = await open_file(thread, tmp_path / "f", O.RDONLY)
    first, second = (await thread.malloc(bytes, 10)).split(4)
    got1, left1 = await fd.read(first)
    got2, left2 = await fd.read(second)
    assert await got1.read() == b"0123" and left1.size() == 0
    assert await got2.read() == b"456789" and left2.size() == 0
    # The two filled halves merge back into one readable buffer.
    assert left1.size() == left2.size() == 0
    whole = got1 + got2
    assert isinstance(whole, ReadablePointer)
    assert await whole.read() == b"0123456789"


async def test_pread_pwrite_leave_offset(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"abcdefgh")
    fd = await open_file(thread, path)
    await fd.lseek(2, SEEK.SET)
    written, rest = await fd.pwrite(await thread.ptr(b"XY"), 5)
    assert written.value == b"XY" and rest.size() == 0
    assert path.read_bytes() == b"abcdeXYh"
    got, left = await fd.pread(await thread.malloc(bytes, 4), 4)
    assert await got.read() == b"eXYh" and left.size() == 0
    # pread past the end reads nothing; pwrite past the end extends the file.
    got, left = await fd.pread(got + left, 100)
    assert got.size() == 0 and left.size() == 4
    await fd.pwrite(await thread.ptr(b"!"), 10)
    assert path.read_bytes() == b"abcdeXYh\0\0!"
    with borrowed_fd(thread, fd) as ours:
        assert await fd.lseek(0, SEEK.CUR) == 2 == os.lseek(ours, 0, os.SEEK_CUR)
    with pytest.raises(OSError) as info:
        await fd.pread(left, -1)
    assert info.value.errno == errno.EINVAL
    assert not left.consumed  # a failed syscall gives the buffer back
    with pytest.raises(OSError) as info:
        await fd.pwrite(await thread.ptr(b"x"), -1)
    assert info.value.errno == errno.EINVAL
    got, _ = await fd.pread(left, 0)
    assert await got.read() == b"abcd"


async def test_ftruncate(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"0123456789")
    fd = await open_file(thread, path)
    await fd.ftruncate(4)
    assert os.stat(path).st_size == 4 and path.read_bytes() == b"0123"
    await fd.ftruncate(6)
    assert path.read_bytes() == b"0123\0\0"
    with pytest.raises(OSError) as info:
        await fd.ftruncate(-1)
    assert info.value.errno == errno.EINVAL
    ro = await open_file(thread, path, O.RDONLY)
    with pytest.raises(OSError) as info:
        await ro.ftruncate(0)
    assert info.value.errno in (errno.EINVAL, errno.EBADF)
    assert os.stat(path).st_size == 6
    await still_works(thread)


async def test_partial_write_to_full_pipe(thread: Thread) -> None:
    pipe = await (await thread.task.pipe(await thread.malloc(Pipe), O.NONBLOCK)).read()
    capacity = await pipe.write.fcntl(F.GETPIPE_SZ)
    data = bytes(range(256)) * (capacity // 128)  # twice the pipe's capacity
    written, unwritten = await pipe.write.write(await thread.ptr(data))
    assert 0 < written.size() < len(data)
    assert written.size() + unwritten.size() == len(data)
    assert written.value + unwritten.value == data
    assert unwritten.value == data[written.size():]
    with pytest.raises(BlockingIOError):
        await pipe.write.write(unwritten)
    assert not unwritten.consumed
    drained = read_from(thread, pipe.read, len(data))
    assert drained == data[: written.size()]
    more, left = await pipe.write.write(unwritten)
    assert more.size() > 0
    assert more.value + left.value == data[written.size():]


# ---- close, dup, dup2, dup3, fchdir ----


async def test_close(thread: Thread) -> None:
    pipe = await thread.pipe()
    number = pipe.read.number
    assert fd_is_open(thread, number)
    await pipe.read.close()
    assert pipe.read.closed
    assert not fd_is_open(thread, number)
    if thread is local_thread:  # our own fd table: the stdlib sees it closed
        with pytest.raises(OSError) as info:
            os.fstat(number)
        assert info.value.errno == errno.EBADF
    with pytest.raises(UseAfterConsumeError):
        pipe.read.number  # noqa: B018
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.read(await thread.malloc(bytes, 1))
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.close()
    # Writing to a pipe nobody can read from: EPIPE.
    with pytest.raises(BrokenPipeError):
        await pipe.write.write(await thread.ptr(b"x"))
    await still_works(thread)


async def test_close_shared_handle_closes_last(thread: Thread) -> None:
    task = thread.task
    pipe = await thread.pipe()
    other = task.make_fd(pipe.read.number)  # a second owner of the same fd
    assert task.fd_table.handle_count(other.number) == 2
    await pipe.read.close()
    assert task.fd_table.handle_count(other.number) == 1
    assert fd_is_open(thread, other)  # still open: the other handle holds it
    number = other.number
    await other.close()
    assert not fd_is_open(thread, number)
    if thread is local_thread:  # our own fd table: the stdlib sees it closed
        with pytest.raises(OSError) as info:
            os.fstat(number)
        assert info.value.errno == errno.EBADF


async def test_dup(thread: Thread) -> None:
    pipe = await thread.pipe()
    copy = await pipe.write.dup()
    assert copy.number != pipe.write.number
    assert cloexec(thread, copy)
    assert await copy.fcntl(F.GETFD) == FD.CLOEXEC
    assert fd_stat(thread, copy).st_ino == fd_stat(thread, pipe.write).st_ino
    await pipe.write.close()
    await copy.write(await thread.ptr(b"via dup"))
    await copy.close()
    assert await thread.read_to_eof(pipe.read) == b"via dup"


async def test_dup2_onto_another_fd(thread: Thread, tmp_path: Path) -> None:
    pipe = await thread.pipe()
    target = await open_file(thread, tmp_path / "target")
    target_number = target.number
    assert cloexec(thread, target)
    result = await pipe.write.dup2(target)
    assert result is target and target.number == target_number
    # target now names the pipe's write end, and survives exec.
    assert fd_stat(thread, target).st_ino == fd_stat(thread, pipe.write).st_ino
    assert stat.S_ISFIFO(fd_stat(thread, target).st_mode)
    assert await target.fcntl(F.GETFD) == 0 and not cloexec(thread, target)
    # The original keeps its close-on-exec flag.
    assert await pipe.write.fcntl(F.GETFD) == FD.CLOEXEC
    await target.write(await thread.ptr(b"dup2"))
    await target.close()
    await pipe.write.close()
    assert await thread.read_to_eof(pipe.read) == b"dup2"
    assert (tmp_path / "target").read_bytes() == b""


async def test_dup2_onto_itself_clears_cloexec(thread: Thread) -> None:
    pipe = await thread.pipe()
    assert cloexec(thread, pipe.read)
    assert await pipe.read.dup2(pipe.read) is pipe.read
    assert await pipe.read.fcntl(F.GETFD) == 0 and not cloexec(thread, pipe.read)
    assert fd_is_open(thread, pipe.read)  # still open


async def test_dup3(thread: Thread, tmp_path: Path) -> None:
    pipe = await thread.pipe()
    target = await open_file(thread, tmp_path / "t")
    assert await pipe.read.dup3(target, O.CLOEXEC) is target
    assert cloexec(thread, target)
    assert fd_stat(thread, target).st_ino == fd_stat(thread, pipe.read).st_ino
    await pipe.write.dup3(target)
    assert not cloexec(thread, target)
    assert fd_stat(thread, target).st_ino == fd_stat(thread, pipe.write).st_ino
    # dup3 onto itself is an error, unlike dup2.
    with pytest.raises(OSError) as info:
        await target.dup3(target)
    assert info.value.errno == errno.EINVAL
    # Only O.CLOEXEC is allowed.
    with pytest.raises(OSError) as info:
        await pipe.read.dup3(target, O.NONBLOCK)
    assert info.value.errno == errno.EINVAL
    await still_works(thread)


async def test_dup2_bad_targets(thread: Thread) -> None:
    pipe = await thread.pipe()
    with pytest.raises(TypeError):
        await pipe.read.dup2(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pipe.read.dup3(None)  # type: ignore[arg-type]
    other = await thread.pipe()
    await other.read.close()
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.dup2(other.read)
    with pytest.raises(UseAfterConsumeError):
        await other.read.dup2(pipe.read)
    await still_works(thread)


async def test_fchdir(thread: Thread, tmp_path: Path) -> None:
    before = thread_cwd(thread)
    directory = await open_file(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    try:
        await directory.fchdir()
        assert thread_cwd(thread) == str(tmp_path)
    finally:
        await chdir(thread, before)
    (tmp_path / "file").write_bytes(b"")
    regular = await open_file(thread, tmp_path / "file", O.RDONLY)
    with pytest.raises(NotADirectoryError):
        await regular.fchdir()
    assert thread_cwd(thread) == before


# ---- pipe ----


async def test_pipe_plain(thread: Thread) -> None:
    pipefd = await thread.task.pipe(await thread.malloc(Pipe))
    assert isinstance(pipefd, ReadablePointer)
    pipe = await pipefd.read()
    assert isinstance(pipe, Pipe)
    r, w = pipe
    assert r is pipe.read and w is pipe.write and pipe[0] is r and pipe[1] is w
    assert cloexec(thread, r) and cloexec(thread, w)
    assert blocking(thread, r) and blocking(thread, w)
    assert stat.S_ISFIFO(fd_stat(thread, r).st_mode)
    assert await r.fcntl(F.GETFL) & 0o3 == O.RDONLY
    assert await w.fcntl(F.GETFL) & 0o3 == O.WRONLY
    write_to(thread, w, b"from os")
    valid, _ = await r.read(await thread.malloc(bytes, 16))
    assert await valid.read() == b"from os"


async def test_pipe_nonblock(thread: Thread) -> None:
    pipe = await (await thread.task.pipe(await thread.malloc(Pipe), O.NONBLOCK)).read()
    for fd in pipe:
        assert not blocking(thread, fd)
        assert await fd.fcntl(F.GETFL) & O.NONBLOCK
        assert cloexec(thread, fd)
    buf = await thread.malloc(bytes, 4)
    with pytest.raises(BlockingIOError) as info:
        await pipe.read.read(buf)
    assert info.value.errno == errno.EAGAIN
    assert not buf.consumed
    await pipe.write.write(await thread.ptr(b"data"))
    with borrowed_fd(thread, pipe.read) as ours:
        assert select.select([ours], [], [], 0)[0] == [ours]
    valid, _ = await pipe.read.read(buf)
    assert await valid.read() == b"data"


# ---- chdir, getcwd ----


async def test_chdir_getcwd(thread: Thread, tmp_path: Path) -> None:
    before = thread_cwd(thread)
    try:
        await thread.task.chdir(await thread.ptr(tmp_path))
        assert thread_cwd(thread) == str(tmp_path)
        (tmp_path / "sub").mkdir()
        await thread.task.chdir(await thread.ptr("sub"))  # relative to the new cwd
        assert thread_cwd(thread) == str(tmp_path / "sub")
        valid, rest = await thread.task.getcwd(await thread.malloc(str, 4096))
        assert isinstance(valid, ReadablePointer)
        assert await valid.read() == thread_cwd(thread)
        assert valid.size() == len(os.fsencode(thread_cwd(thread))) + 1  # with the NUL
        assert valid.size() + rest.size() == 4096
        with pytest.raises(FileNotFoundError):
            await thread.task.chdir(await thread.ptr(tmp_path / "missing"))
        with pytest.raises(NotADirectoryError):
            (tmp_path / "file").write_bytes(b"")
            await thread.task.chdir(await thread.ptr(tmp_path / "file"))
        assert thread_cwd(thread) == str(tmp_path / "sub")
    finally:
        await chdir(thread, before)


async def test_getcwd_buffer_too_small(thread: Thread) -> None:
    buf = await thread.malloc(str, 2)
    with pytest.raises(OSError) as info:
        await thread.task.getcwd(buf)
    assert info.value.errno == errno.ERANGE
    assert not buf.consumed
    valid, _ = await thread.task.getcwd(await thread.malloc(str, 4096))
    assert await valid.read() == thread_cwd(thread)


# ---- links and access, with dirfd None and with a directory fd ----


async def test_symlinkat_readlinkat_cwd(thread: Thread, in_tmp_cwd: Path) -> None:
    task = thread.task
    await task.symlinkat(await thread.ptr("target/of/link"), None, await thread.ptr("link"))
    assert os.readlink(in_tmp_cwd / "link") == "target/of/link"
    link = await thread.ptr("link")
    valid, rest = await task.readlinkat(None, link, await thread.malloc(bytes, 64))
    assert await valid.read() == b"target/of/link"  # no NUL added
    assert valid.size() == len("target/of/link") and rest.size() == 64 - valid.size()
    # Into a str buffer; and truncated silently to a small buffer, as in C.
    text, _ = await task.readlinkat(None, link, await thread.malloc(str, 64))
    assert await text.read() == "target/of/link"
    valid, rest = await task.readlinkat(None, link, await thread.malloc(bytes, 6))
    assert await valid.read() == b"target" and rest.size() == 0
    with pytest.raises(FileExistsError):
        await task.symlinkat(await thread.ptr("x"), None, await thread.ptr("link"))
    (in_tmp_cwd / "plain").write_bytes(b"")
    with pytest.raises(OSError) as info:
        await task.readlinkat(None, await thread.ptr("plain"), await thread.malloc(bytes, 8))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        await task.readlinkat(None, await thread.ptr("nope"), await thread.malloc(bytes, 8))


async def test_symlinkat_readlinkat_dirfd(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    dirfd = await open_file(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    await task.symlinkat(await thread.ptr("../elsewhere"), dirfd, await thread.ptr("lnk"))
    assert os.readlink(tmp_path / "lnk") == "../elsewhere"
    valid, _ = await task.readlinkat(dirfd, await thread.ptr("lnk"), await thread.malloc(bytes, 64))
    assert await valid.read() == b"../elsewhere"
    # An absolute path ignores the dirfd.
    valid, _ = await task.readlinkat(
        dirfd, await thread.ptr(tmp_path / "lnk"), await thread.malloc(bytes, 64)
    )
    assert await valid.read() == b"../elsewhere"
    # AT_EMPTY_PATH-free readlinkat on a non-directory fd with a relative path: ENOTDIR.
    (tmp_path / "f").write_bytes(b"")
    notdir = await open_file(thread, tmp_path / "f", O.RDONLY)
    with pytest.raises(NotADirectoryError):
        await task.readlinkat(notdir, await thread.ptr("lnk"), await thread.malloc(bytes, 8))


async def test_linkat(thread: Thread, tmp_path: Path, in_tmp_cwd: Path) -> None:
    task = thread.task
    (tmp_path / "orig").write_bytes(b"content")
    await task.linkat(None, await thread.ptr("orig"), None, await thread.ptr("hard1"))
    assert os.stat(tmp_path / "hard1").st_ino == os.stat(tmp_path / "orig").st_ino
    assert os.stat(tmp_path / "orig").st_nlink == 2
    sub = tmp_path / "sub"
    sub.mkdir()
    dirfd = await open_file(thread, sub, O.RDONLY | O.DIRECTORY)
    await task.linkat(None, await thread.ptr(tmp_path / "orig"), dirfd, await thread.ptr("hard2"))
    assert (sub / "hard2").read_bytes() == b"content"
    assert os.stat(tmp_path / "orig").st_nlink == 3
    await task.linkat(dirfd, await thread.ptr("hard2"), None, await thread.ptr("hard3"))
    assert os.stat(tmp_path / "orig").st_nlink == 4
    # A symlink: linked itself by default, its target with SYMLINK_FOLLOW.
    os.symlink("orig", tmp_path / "sym")
    await task.linkat(None, await thread.ptr("sym"), None, await thread.ptr("sym-link"))
    assert os.path.islink(tmp_path / "sym-link")
    await task.linkat(
        None, await thread.ptr("sym"), None, await thread.ptr("followed"), AT.SYMLINK_FOLLOW
    )
    assert not os.path.islink(tmp_path / "followed")
    assert os.stat(tmp_path / "followed").st_ino == os.stat(tmp_path / "orig").st_ino
    # AT.EMPTY_PATH: give an O_TMPFILE file a name through its fd.
    tmpfile = await open_file(thread, tmp_path, O.TMPFILE | O.RDWR, 0o600)
    await tmpfile.write(await thread.ptr(b"was anonymous"))
    await task.linkat(tmpfile, await thread.ptr(""), dirfd, await thread.ptr("named"),
                      AT.EMPTY_PATH)
    assert (sub / "named").read_bytes() == b"was anonymous"
    assert os.stat(sub / "named").st_ino == fd_stat(thread, tmpfile).st_ino
    with pytest.raises(FileExistsError):
        await task.linkat(None, await thread.ptr("orig"), None, await thread.ptr("hard1"))
    with pytest.raises(FileNotFoundError):
        await task.linkat(None, await thread.ptr("missing"), None, await thread.ptr("x"))


async def test_unlinkat(thread: Thread, tmp_path: Path, in_tmp_cwd: Path) -> None:
    task = thread.task
    (tmp_path / "a").write_bytes(b"")
    await task.unlinkat(None, await thread.ptr("a"))
    assert not (tmp_path / "a").exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inner").write_bytes(b"")
    dirfd = await open_file(thread, tmp_path / "d", O.RDONLY | O.DIRECTORY)
    with pytest.raises(OSError) as info:
        await task.unlinkat(None, await thread.ptr("d"), AT.REMOVEDIR)
    assert info.value.errno == errno.ENOTEMPTY
    with pytest.raises(IsADirectoryError):
        await task.unlinkat(None, await thread.ptr("d"))
    with pytest.raises(NotADirectoryError):
        await task.unlinkat(dirfd, await thread.ptr("inner"), AT.REMOVEDIR)
    await task.unlinkat(dirfd, await thread.ptr("inner"))
    assert os.listdir(tmp_path / "d") == []
    await task.unlinkat(None, await thread.ptr(tmp_path / "d"), AT.REMOVEDIR)
    assert not (tmp_path / "d").exists()
    with pytest.raises(FileNotFoundError):
        await task.unlinkat(None, await thread.ptr("a"))
    await still_works(thread)


async def test_faccessat(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    regular = tmp_path / "regular"
    regular.write_bytes(b"")
    regular.chmod(0o644)
    script = tmp_path / "script"
    script.write_bytes(b"#!/bin/sh\n")
    script.chmod(0o755)
    await task.faccessat(None, await thread.ptr(regular), OK.F)
    await task.faccessat(None, await thread.ptr(regular), OK.R | OK.W)
    await task.faccessat(None, await thread.ptr(script), OK.R | OK.X)
    # Not executable by anyone: even root gets EACCES for X_OK.
    assert not os.access(regular, os.X_OK)
    with pytest.raises(PermissionError):
        await task.faccessat(None, await thread.ptr(regular), OK.X)
    with pytest.raises(FileNotFoundError):
        await task.faccessat(None, await thread.ptr(tmp_path / "missing"), OK.F)
    dirfd = await open_file(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    await task.faccessat(dirfd, await thread.ptr("script"), OK.X)
    with pytest.raises(PermissionError):
        await task.faccessat(dirfd, await thread.ptr("regular"), OK.X, AT.EACCESS)
    # A dangling symlink: missing, unless the link itself is asked about.
    os.symlink("nowhere", tmp_path / "dangling")
    with pytest.raises(FileNotFoundError):
        await task.faccessat(dirfd, await thread.ptr("dangling"), OK.F)
    await task.faccessat(dirfd, await thread.ptr("dangling"), OK.F, AT.SYMLINK_NOFOLLOW)
    for mode in (OK.R, OK.W, OK.X, OK.F):
        assert int(mode) == {OK.R: os.R_OK, OK.W: os.W_OK, OK.X: os.X_OK, OK.F: os.F_OK}[mode]


# ---- bad input ----


async def test_wrong_argument_types(thread: Thread) -> None:
    task = thread.task
    pipe = await thread.pipe()
    with pytest.raises(TypeError):
        await pipe.read.read(b"x")  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await pipe.write.write(b"x")  # type: ignore[call-overload]
    await still_works(thread)
    # write needs initialized memory, not a bare malloc.
    with pytest.raises(TypeError):
        await pipe.write.write(await thread.malloc(bytes, 4))  # type: ignore[call-overload]
    await still_works(thread)
    with pytest.raises(TypeError):
        await task.chdir("/tmp")  # type: ignore[arg-type]
    await still_works(thread)
    # A bytes pointer is not a path.
    with pytest.raises(TypeError):
        await task.chdir(await thread.ptr(b"/tmp\0"))  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await task.unlinkat("dir", await thread.ptr("x"))  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await task.pipe(None)  # type: ignore[arg-type]
    await still_works(thread)


async def test_sizes_bad(thread: Thread) -> None:
    with pytest.raises(TypeError):
        await thread.malloc(bytes)
    with pytest.raises(ValueError):
        await thread.malloc(bytes, -1)
    await still_works(thread)
    # A buffer too small for the fixed-size out-parameter: nothing happens.
    small = await thread.malloc(bytes, 4)
    before = await thread_fds(thread)
    with pytest.raises(ValueError):
        await thread.task.pipe(small)  # type: ignore[arg-type]
    assert not small.consumed
    assert await thread_fds(thread) == before
    await still_works(thread)
    # A zero-size read reads nothing.
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"abc"))
    empty, rest = await pipe.read.read(await thread.malloc(bytes, 0))
    assert empty.size() == 0 and rest.size() == 0
    valid, _ = await pipe.read.read(await thread.malloc(bytes, 8))
    assert await valid.read() == b"abc"


async def test_consumed_pointer(thread: Thread) -> None:
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"abc"))
    buf = await thread.malloc(bytes, 8)
    valid, rest = await pipe.read.read(buf)
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.read(buf)
    await still_works(thread)
    data = await thread.ptr(b"xyz")
    await pipe.write.write(data)
    with pytest.raises(UseAfterConsumeError):
        await pipe.write.write(data)
    await still_works(thread)
    pipefd = await thread.malloc(Pipe)
    filled = await thread.task.pipe(pipefd)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.pipe(pipefd)
    await (await filled.read()).read.close()
    cwd = await thread.malloc(str, 4096)
    await thread.task.getcwd(cwd)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.getcwd(cwd)
    path = await thread.ptr("x")
    first, _ = path.split(1)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.faccessat(None, path, OK.F)
    assert not first.consumed and (valid + rest).size() == 8
    await still_works(thread)


async def test_kernel_errors_are_oserrors(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")
    ro = await open_file(thread, path, O.RDONLY)
    with pytest.raises(OSError) as info:
        await ro.write(await thread.ptr(b"x"))
    assert info.value.errno == errno.EBADF
    await still_works(thread)
    wo = await open_file(thread, path, O.WRONLY)
    buf = await thread.malloc(bytes, 4)
    with pytest.raises(OSError) as info:
        await wo.read(buf)
    assert info.value.errno == errno.EBADF
    assert not buf.consumed
    await still_works(thread)
    with pytest.raises(OSError) as info:
        await wo.pread(buf, 0)
    assert info.value.errno == errno.EBADF
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.lseek(0, SEEK.SET)
    assert info.value.errno == errno.ESPIPE
    with pytest.raises(OSError) as info:
        await pipe.read.pread(buf, 0)
    assert info.value.errno == errno.ESPIPE
    await still_works(thread)
    # A directory cannot be read.
    directory = await open_file(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    with pytest.raises(IsADirectoryError):
        await directory.read(buf)
    valid, _ = await ro.read(buf)
    assert await valid.read() == b"data"
