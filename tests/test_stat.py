"""rsyscall.sys.stat: fstat, fstatat, statx, mkdirat, fchmod(at), umask
against real files, and the structs' byte layouts."""

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import FileDescriptor, Thread, UseAfterConsumeError, local_thread
from rsyscall.fcntl import AT, O
from rsyscall.sys.stat import STATX, STATX_ATTR, S, Stat, Statx, StatxTimestamp
from rsyscall.time import Timespec

from .util import status_field, thread_cwd, thread_pid

pytestmark = pytest.mark.anyio

NS = 1_000_000_000


def ns(ts: Timespec | StatxTimestamp) -> int:
    return ts.sec * NS + ts.nsec


def check_stat(st: Stat, expected: os.stat_result) -> None:
    assert st.dev == expected.st_dev
    assert st.ino == expected.st_ino
    assert st.nlink == expected.st_nlink
    assert st.mode == expected.st_mode
    assert st.uid == expected.st_uid
    assert st.gid == expected.st_gid
    assert st.rdev == expected.st_rdev
    assert st.size == expected.st_size
    assert st.blksize == expected.st_blksize
    assert st.blocks == expected.st_blocks
    assert ns(st.atime) == expected.st_atime_ns
    assert ns(st.mtime) == expected.st_mtime_ns
    assert ns(st.ctime) == expected.st_ctime_ns


async def open_path(thread: Thread, path: Path, flags: O = O.RDONLY) -> FileDescriptor:
    return await thread.task.open(await thread.ptr(path), flags)


async def still_works(thread: Thread) -> None:
    """After an error, the thread still makes syscalls and memory still works."""
    assert await thread.task.getpid() == thread_pid(thread)
    st = await (await thread.task.fstatat(
        None, await thread.ptr("/"), await thread.malloc(Stat)
    )).read()
    assert st.ino == os.stat("/").st_ino


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "file"
    path.write_bytes(b"x" * 5000)
    os.utime(path, ns=(1_000_000_123, 2_000_000_456))
    return path


# ---- fstat, fstatat, statx ----


async def test_fstat(thread: Thread, sample: Path) -> None:
    fd = await open_path(thread, sample)
    buf = await thread.malloc(Stat)
    result = await fd.fstat(buf)
    assert buf.consumed
    st = await result.read()
    check_stat(st, os.stat(sample))
    assert st.mode & S.IFMT == S.IFREG
    assert st.size == 5000
    assert st.mtime == Timespec(2, 456)
    # The returned pointer can be reused for another call.
    st2 = await (await fd.fstat(result)).read()
    assert st2 == st
    await fd.close()


async def test_fstat_directory_and_pipe(thread: Thread, tmp_path: Path) -> None:
    fd = await open_path(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    st = await (await fd.fstat(await thread.malloc(Stat))).read()
    check_stat(st, os.stat(tmp_path))
    assert st.mode & S.IFMT == S.IFDIR
    pipe = await thread.pipe()
    st = await (await pipe.read.fstat(await thread.malloc(Stat))).read()
    assert st.mode & S.IFMT == S.IFIFO


async def test_fstatat(thread: Thread, sample: Path, tmp_path: Path) -> None:
    task = thread.task
    st = await (await task.fstatat(
        None, await thread.ptr(sample), await thread.malloc(Stat)
    )).read()
    check_stat(st, os.stat(sample))
    # Relative to a directory fd.
    dirfd = await open_path(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    st = await (await task.fstatat(
        dirfd, await thread.ptr("file"), await thread.malloc(Stat)
    )).read()
    check_stat(st, os.stat(sample))
    # A symlink: followed by default, its own status with SYMLINK_NOFOLLOW.
    os.symlink("file", tmp_path / "link")
    st = await (await task.fstatat(
        dirfd, await thread.ptr("link"), await thread.malloc(Stat)
    )).read()
    assert st.ino == os.stat(sample).st_ino
    st = await (await task.fstatat(
        dirfd, await thread.ptr("link"), await thread.malloc(Stat),
        AT.SYMLINK_NOFOLLOW,
    )).read()
    check_stat(st, os.lstat(tmp_path / "link"))
    assert st.mode & S.IFMT == S.IFLNK
    # The directory itself, with an empty path.
    st = await (await task.fstatat(
        dirfd, await thread.ptr(""), await thread.malloc(Stat), AT.EMPTY_PATH
    )).read()
    check_stat(st, os.stat(tmp_path))


async def test_statx(thread: Thread, sample: Path, tmp_path: Path) -> None:
    task = thread.task
    buf = await thread.malloc(Statx)
    assert buf.size() == 256
    result = await task.statx(None, await thread.ptr(sample), AT.NONE, STATX.BASIC_STATS, buf)
    assert buf.consumed
    sx = await result.read()
    expected = os.stat(sample)
    assert sx.mask & STATX.BASIC_STATS == STATX.BASIC_STATS
    assert isinstance(sx.mask, STATX)
    assert isinstance(sx.attributes, STATX_ATTR)
    assert sx.mode == expected.st_mode
    assert sx.ino == expected.st_ino
    assert sx.nlink == expected.st_nlink
    assert sx.uid == expected.st_uid
    assert sx.gid == expected.st_gid
    assert sx.size == expected.st_size == 5000
    assert sx.blocks == expected.st_blocks
    assert sx.blksize == expected.st_blksize
    assert (sx.dev_major, sx.dev_minor) == (os.major(expected.st_dev), os.minor(expected.st_dev))
    assert ns(sx.atime) == expected.st_atime_ns
    assert ns(sx.mtime) == expected.st_mtime_ns == 2_000_000_456
    assert ns(sx.ctime) == expected.st_ctime_ns
    # Of a directory fd itself, through AT.EMPTY_PATH.
    dirfd = await open_path(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    sx = await (await task.statx(
        dirfd, await thread.ptr(""), AT.EMPTY_PATH, STATX.TYPE | STATX.INO,
        await thread.malloc(Statx),
    )).read()
    assert sx.mode & S.IFMT == S.IFDIR
    assert sx.ino == os.stat(tmp_path).st_ino


async def test_stat_of_fd_handles_from_other_calls(thread: Thread, sample: Path) -> None:
    # fstat and statx agree about the same file.
    fd = await open_path(thread, sample)
    st = await (await fd.fstat(await thread.malloc(Stat))).read()
    sx = await (await thread.task.statx(
        fd, await thread.ptr(""), AT.EMPTY_PATH, STATX.BASIC_STATS,
        await thread.malloc(Statx),
    )).read()
    assert (st.ino, st.mode, st.size) == (sx.ino, sx.mode, sx.size)
    assert ns(st.mtime) == ns(sx.mtime)


# ---- mkdir, chmod, umask ----


async def test_mkdirat_and_mkdir(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    old = await task.umask(0o022)
    try:
        await task.mkdir(await thread.ptr(tmp_path / "a"))
        assert (tmp_path / "a").is_dir()
        assert os.stat(tmp_path / "a").st_mode & 0o7777 == 0o755
        dirfd = await open_path(thread, tmp_path / "a", O.RDONLY | O.DIRECTORY)
        await task.mkdirat(dirfd, await thread.ptr("b"), 0o777)
        # The umask is taken away from the mode.
        assert os.stat(tmp_path / "a" / "b").st_mode & 0o7777 == 0o755
        await task.mkdirat(dirfd, await thread.ptr("c"), 0o700)
        assert os.stat(tmp_path / "a" / "c").st_mode & 0o7777 == 0o700
        # mkdir is relative to the working directory.
        cwd = thread_cwd(thread)
        await task.chdir(await thread.ptr(tmp_path))
        try:
            await task.mkdir(await thread.ptr("rel"), 0o750)
            assert os.stat(tmp_path / "rel").st_mode & 0o7777 == 0o750
            with pytest.raises(FileExistsError):
                await task.mkdir(await thread.ptr("rel"))
        finally:
            await task.chdir(await thread.ptr(cwd))
    finally:
        await task.umask(old)
    await still_works(thread)


async def test_fchmod_fchmodat(thread: Thread, sample: Path, tmp_path: Path) -> None:
    fd = await open_path(thread, sample)
    await fd.fchmod(0o600)
    assert os.stat(sample).st_mode & 0o7777 == 0o600
    await fd.fchmod(S.IRUSR | S.IWUSR | S.IRGRP | S.ISVTX)
    assert os.stat(sample).st_mode & 0o7777 == 0o1640
    await thread.task.fchmodat(None, await thread.ptr(sample), 0o755)
    assert os.stat(sample).st_mode & 0o7777 == 0o755
    dirfd = await open_path(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    await thread.task.fchmodat(dirfd, await thread.ptr("file"), 0o604)
    assert os.stat(sample).st_mode & 0o7777 == 0o604
    # The fd sees the same change.
    st = await (await fd.fstat(await thread.malloc(Stat))).read()
    assert st.mode & 0o7777 == 0o604


async def test_umask(thread: Thread, tmp_path: Path) -> None:
    task = thread.task

    def umask_seen() -> int:
        return int(status_field(thread, "Umask"), 8)

    before = umask_seen()
    if thread is local_thread:
        python_old = os.umask(0o022)
        os.umask(python_old)
        assert python_old == before
    old = await task.umask(0o077)
    try:
        assert old == before
        assert await task.umask(0o027) == 0o077
        assert umask_seen() == 0o027
        if thread is local_thread:
            # Python sees the same process-wide mask.
            assert os.umask(0o027) == 0o027
        fd = await thread.task.open(
            await thread.ptr(tmp_path / "new"), O.WRONLY | O.CREAT, 0o666
        )
        await fd.close()
        assert os.stat(tmp_path / "new").st_mode & 0o777 == 0o640
    finally:
        await task.umask(old)
    assert umask_seen() == before
    if thread is local_thread:
        assert os.umask(python_old) == python_old


# ---- bad input ----


async def test_wrong_types(thread: Thread, sample: Path) -> None:
    task = thread.task
    fd = await open_path(thread, sample)
    with pytest.raises(TypeError):
        await fd.fstat(b"buffer")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.fstat(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a path must be a pointer, not a str
        await task.fstatat(None, str(sample), await thread.malloc(Stat))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.fstatat(
            3, await thread.ptr(sample), await thread.malloc(Stat)  # type: ignore[arg-type]
        )
    with pytest.raises(TypeError):  # a path from malloc holds no path
        await task.mkdir(await thread.malloc(str, 10))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mkdir(await thread.ptr(sample.parent / "d"), "755")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.fchmod(0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.fchmodat(None, await thread.ptr(sample), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.umask("022")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.malloc(Stat, 144)
    assert not (sample.parent / "d").exists()
    await still_works(thread)


async def test_too_small_buffers(thread: Thread, sample: Path) -> None:
    task = thread.task
    fd = await open_path(thread, sample)
    small = await thread.malloc(bytes, Stat.sizeof() - 1)
    with pytest.raises(ValueError):
        await fd.fstat(small)  # type: ignore[arg-type]
    assert not small.consumed
    with pytest.raises(ValueError):
        await task.fstatat(None, await thread.ptr(sample), small)  # type: ignore[arg-type]
    small = await thread.malloc(bytes, Statx.sizeof() - 1)
    with pytest.raises(ValueError):
        await task.statx(
            None, await thread.ptr(sample), AT.NONE, STATX.ALL, small  # type: ignore[arg-type]
        )
    assert not small.consumed
    # A buffer that is big enough works, whatever it was allocated as.
    big = await thread.malloc(bytes, 4096)
    raw: bytes = await (await fd.fstat(big)).read()  # type: ignore[arg-type, assignment]
    assert Stat.from_bytes(raw) == await (await fd.fstat(await thread.malloc(Stat))).read()
    await still_works(thread)


async def test_consumed_pointer(thread: Thread, sample: Path) -> None:
    fd = await open_path(thread, sample)
    buf = await thread.malloc(Stat)
    result = await fd.fstat(buf)
    with pytest.raises(UseAfterConsumeError):
        await fd.fstat(buf)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.fstatat(None, await thread.ptr(sample), buf)
    sxbuf = await thread.malloc(Statx)
    await thread.task.statx(None, await thread.ptr(sample), AT.NONE, STATX.ALL, sxbuf)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.statx(
            None, await thread.ptr(sample), AT.NONE, STATX.ALL, sxbuf
        )
    # A consumed path pointer.
    path = await thread.ptr(sample)
    path.split(1)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.fstatat(None, path, await thread.malloc(Stat))
    assert (await result.read()).ino == os.stat(sample).st_ino
    await still_works(thread)


async def test_closed_fd(thread: Thread, sample: Path, tmp_path: Path) -> None:
    fd = await open_path(thread, sample)
    await fd.close()
    buf = await thread.malloc(Stat)
    with pytest.raises(UseAfterConsumeError):
        await fd.fstat(buf)
    assert not buf.consumed  # nothing was done, so the buffer is still ours
    with pytest.raises(UseAfterConsumeError):
        await fd.fchmod(0o644)
    dirfd = await open_path(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    await dirfd.close()
    with pytest.raises(UseAfterConsumeError):
        await thread.task.fstatat(dirfd, await thread.ptr("file"), buf)
    with pytest.raises(UseAfterConsumeError):
        await thread.task.statx(
            dirfd, await thread.ptr("file"), AT.NONE, STATX.ALL,
            await thread.malloc(Statx),
        )
    with pytest.raises(UseAfterConsumeError):
        await thread.task.mkdirat(dirfd, await thread.ptr("d"))
    with pytest.raises(UseAfterConsumeError):
        await thread.task.fchmodat(dirfd, await thread.ptr("file"), 0o600)
    assert not buf.consumed
    await still_works(thread)


async def test_nonexistent_path(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    missing = await thread.ptr(tmp_path / "missing")
    buf = await thread.malloc(Stat)
    with pytest.raises(FileNotFoundError):
        await task.fstatat(None, missing, buf)
    # The failed call wrote nothing and gave the buffer back.
    assert not buf.consumed
    sxbuf = await thread.malloc(Statx)
    with pytest.raises(FileNotFoundError):
        await task.statx(None, missing, AT.NONE, STATX.ALL, sxbuf)
    assert not sxbuf.consumed
    with pytest.raises(FileNotFoundError):
        await task.fchmodat(None, missing, 0o600)
    with pytest.raises(FileNotFoundError):
        await task.mkdir(await thread.ptr(tmp_path / "missing" / "sub"))
    # The same buffers now work for a path that exists.
    st = await (await task.fstatat(None, await thread.ptr(tmp_path), buf)).read()
    check_stat(st, os.stat(tmp_path))
    await still_works(thread)


# ---- struct round trips ----

U8 = st.integers(0, 2**8 - 1)
U16 = st.integers(0, 2**16 - 1)
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
timespecs = st.builds(Timespec, I64, st.integers(0, 999_999_999))
statx_timestamps = st.builds(StatxTimestamp, I64, U32)


@given(st.builds(Stat, U64, U64, U64, U32, U32, U32, U64, I64, I64, I64,
                 timespecs, timespecs, timespecs))  # fmt: skip
def test_stat_roundtrip(value: Stat) -> None:
    data = value.to_bytes()
    assert len(data) == Stat.sizeof() == 144
    assert Stat.from_bytes(data) == value


@given(statx_timestamps)
def test_statx_timestamp_roundtrip(value: StatxTimestamp) -> None:
    data = value.to_bytes()
    assert len(data) == StatxTimestamp.sizeof() == 16
    assert StatxTimestamp.from_bytes(data) == value


@given(st.builds(
    Statx,
    U32.map(STATX), U32, U64.map(STATX_ATTR), U32, U32, U32, U16, U64, U64, U64,
    U64.map(STATX_ATTR), statx_timestamps, statx_timestamps, statx_timestamps,
    statx_timestamps, U32, U32, U32, U32, U64, U32, U32,
))  # fmt: skip
def test_statx_roundtrip(value: Statx) -> None:
    data = value.to_bytes()
    assert len(data) == Statx.sizeof() == 256
    assert Statx.from_bytes(data) == value


def sample_stat(**changes: object) -> Stat:
    fields: dict[str, object] = dict(
        dev=1, ino=2, nlink=3, mode=0o100644, uid=4, gid=5, rdev=0, size=6, blksize=4096,
        blocks=8, atime=Timespec(1, 2), mtime=Timespec(3, 4), ctime=Timespec(5, 6),
    )  # fmt: skip
    fields.update(changes)
    return Stat(**fields)  # type: ignore[arg-type]


def test_struct_bad_values() -> None:
    with pytest.raises(TypeError):
        sample_stat(mode="0644")
    with pytest.raises(TypeError):
        sample_stat(atime=1.5)
    with pytest.raises(TypeError):
        StatxTimestamp(1, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sample_stat(mode=2**32).to_bytes()
    with pytest.raises(ValueError):
        sample_stat(ino=-1).to_bytes()
    with pytest.raises(ValueError):
        StatxTimestamp(0, -1).to_bytes()
    with pytest.raises(ValueError):
        Stat.from_bytes(b"\0" * 143)
    with pytest.raises(ValueError):
        Statx.from_bytes(b"\0" * 255)


async def test_structs_through_memory(thread: Thread) -> None:
    value = sample_stat()
    ptr = await thread.ptr(value)
    assert ptr.size() == 144
    assert await ptr.read() == value
    a, b, c, m = (StatxTimestamp(i, i) for i in range(4))
    sx = Statx(STATX.ALL, 4096, STATX_ATTR.APPEND, 1, 2, 3, 0o644, 4, 5, 6, STATX_ATTR(0),
               a, b, c, m, 7, 8, 9, 10, 11, 12, 13)  # fmt: skip
    assert await (await thread.ptr(sx)).read() == sx


# ---- modes are S permission bits, checked ----


async def test_modes_are_typed_and_checked(thread: Thread, sample: Path, tmp_path: Path) -> None:
    """open/openat/mkdir/mkdirat/fchmod/fchmodat take `S` bits (or an int
    of them), umask returns `S`; a mode with bits beyond the permission
    bits (a file type, or more) is a ValueError before any syscall."""
    task = thread.task
    old = await task.umask(S.IWGRP | S.IWOTH)
    try:
        assert type(old) is S
        back = await task.umask(old)
        assert type(back) is S and back == S.IWGRP | S.IWOTH
        with pytest.raises(ValueError):
            await task.umask(0o1000)  # umask holds 0o777 only
        with pytest.raises(ValueError):
            await task.umask(-1)
        assert await task.umask(old) == old  # unchanged by the refused calls
    finally:
        await task.umask(old)
    fd = await open_path(thread, sample)
    bad_modes = [S.IFREG | S.IRUSR, 0o10000, 0o100644, -1]
    for bad in bad_modes:
        with pytest.raises(ValueError):
            await fd.fchmod(bad)
        with pytest.raises(ValueError):
            await task.fchmodat(None, await thread.ptr(sample), bad)
        with pytest.raises(ValueError):
            await task.mkdir(await thread.ptr(tmp_path / "bad"), bad)
        dirfd = await open_path(thread, tmp_path, O.RDONLY | O.DIRECTORY)
        with pytest.raises(ValueError):
            await task.mkdirat(dirfd, await thread.ptr("bad"), bad)
        with pytest.raises(ValueError):
            await task.open(await thread.ptr(tmp_path / "badf"), O.WRONLY | O.CREAT, bad)
        with pytest.raises(ValueError):
            await task.openat(dirfd, await thread.ptr("badf"), O.WRONLY | O.CREAT, bad)
        await dirfd.close()
    assert not (tmp_path / "bad").exists() and not (tmp_path / "badf").exists()
    with pytest.raises(TypeError):  # another enum's member
        await fd.fchmod(O.RDWR)  # type: ignore[arg-type]
    # The largest mode is fine: every permission, set-id and sticky bit.
    await fd.fchmod(S(0o7777))
    assert os.stat(sample).st_mode & 0o7777 == 0o7777
    await fd.fchmod(S.IRUSR | S.IWUSR)
    assert os.stat(sample).st_mode & 0o7777 == 0o600
    await still_works(thread)
