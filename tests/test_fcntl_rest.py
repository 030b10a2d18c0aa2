"""rsyscall.fcntl beyond open and fcntl: fallocate, posix_fadvise,
readahead, sync_file_range, splice, tee, vmsplice, name_to_handle_at and
open_by_handle_at, checked against the files as os sees them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import FileDescriptor, Pointer, ReadablePointer, Thread
from rsyscall.fcntl import (
    AT,
    FALLOC_FL,
    MAX_HANDLE_SZ,
    POSIX_FADV,
    SPLICE_F,
    SYNC_FILE_RANGE,
    FileHandle,
    O,
)
from rsyscall.sched import CLONE
from rsyscall.struct import Int64
from rsyscall.sys.uio import IovecList

from .util import read_from, write_to

pytestmark = pytest.mark.anyio


async def open_file(thread: Thread, path: Path, flags: O = O.RDWR | O.CREAT) -> FileDescriptor:
    return await thread.task.open(await thread.ptr(path), flags)


async def test_fallocate(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10000)
    fd = await open_file(thread, path)
    await fd.fallocate(FALLOC_FL.NONE, 0, 20000)
    assert os.stat(path).st_size == 20000
    blocks = os.stat(path).st_blocks
    await fd.fallocate(FALLOC_FL.KEEP_SIZE, 20000, 1 << 20)
    assert os.stat(path).st_size == 20000 and os.stat(path).st_blocks > blocks
    # A hole reads as zeroes; PUNCH_HOLE needs KEEP_SIZE.
    await fd.fallocate(FALLOC_FL.PUNCH_HOLE | FALLOC_FL.KEEP_SIZE, 4096, 4096)
    data = path.read_bytes()
    assert data[:4096] == b"x" * 4096 and data[4096:8192] == bytes(4096)
    assert data[8192:10000] == b"x" * (10000 - 8192)
    with pytest.raises(OSError) as info:
        await fd.fallocate(FALLOC_FL.PUNCH_HOLE, 0, 4096)
    assert info.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as info:
        await fd.fallocate(FALLOC_FL.NONE, -1, 10)
    assert info.value.errno == errno.EINVAL
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.write.fallocate(FALLOC_FL.NONE, 0, 10)
    assert info.value.errno == errno.ESPIPE
    with pytest.raises(ValueError):
        await fd.fallocate(0x1000, 0, 10)  # type: ignore[arg-type]
    readonly = await open_file(thread, path, O.RDONLY)
    with pytest.raises(OSError) as info:
        await readonly.fallocate(FALLOC_FL.NONE, 0, 1 << 21)
    assert info.value.errno == errno.EBADF


async def test_fadvise_readahead_sync_file_range(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"y" * 65536)
    fd = await open_file(thread, path)
    for advice in POSIX_FADV:
        await fd.posix_fadvise(0, 0, advice)
    await fd.readahead(0, 65536)
    await fd.pwrite(await thread.ptr(b"new"), 0)
    await fd.sync_file_range(0, 0, SYNC_FILE_RANGE.WRITE_AND_WAIT)
    await fd.sync_file_range(0, 4096, SYNC_FILE_RANGE.WRITE)
    assert path.read_bytes()[:3] == b"new"
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.posix_fadvise(0, 0, POSIX_FADV.WILLNEED)
    assert info.value.errno == errno.ESPIPE
    with pytest.raises(OSError) as info:
        await pipe.read.readahead(0, 10)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await pipe.read.sync_file_range(0, 0, SYNC_FILE_RANGE.WRITE)
    assert info.value.errno == errno.ESPIPE
    with pytest.raises(OSError) as info:
        await fd.posix_fadvise(0, -1, POSIX_FADV.NORMAL)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        await fd.posix_fadvise(0, 0, 6)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await fd.sync_file_range(0, 0, 8)  # type: ignore[arg-type]


async def test_splice_file_to_pipe_and_back(thread: Thread, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"0123456789")
    fd = await open_file(thread, src, O.RDONLY)
    pipe = await thread.pipe()
    # With an offset pointer: read from offset 2, advanced; the file offset stays.
    count, off_in, off_out = await fd.splice(pipe.write, 5, await thread.ptr(Int64(2)))
    assert count == 5 and off_out is None
    assert isinstance(off_in, ReadablePointer) and await off_in.read() == 7
    assert await fd.lseek(0, 1) == 0
    assert read_from(thread, pipe.read, 100) == b"23456"
    # Without: the file offset moves.
    count, _, _ = await fd.splice(pipe.write, 4)
    assert count == 4 and await fd.lseek(0, 1) == 4
    # From the pipe into a file at an offset.
    dst = tmp_path / "dst"
    out = await open_file(thread, dst)
    write_to(thread, pipe.write, b"-tail")
    count, _, off = await pipe.read.splice(out, 100, None, await thread.ptr(Int64(3)))
    assert count == 9 and off is not None and await off.read() == 12
    assert dst.read_bytes() == b"\0\0\0" + b"0123-tail"
    # Empty pipe with NONBLOCK: EAGAIN.
    with pytest.raises(BlockingIOError):
        await pipe.read.splice(out, 10, flags=SPLICE_F.NONBLOCK)
    # An offset for the pipe side: ESPIPE, and the offset pointer comes back.
    offset = await thread.ptr(Int64(0))
    with pytest.raises(OSError) as info:
        await fd.splice(pipe.write, 1, None, offset)
    assert info.value.errno == errno.ESPIPE
    assert not offset.consumed
    # Neither side a pipe: EINVAL.
    with pytest.raises(OSError) as info:
        await fd.splice(out, 1)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await fd.splice(pipe.write, 1, await thread.ptr(b"12345678"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.splice(3, 1)  # type: ignore[arg-type]


async def test_tee_duplicates_pipe_data(thread: Thread) -> None:
    first = await thread.pipe()
    second = await thread.pipe()
    write_to(thread, first.write, b"shared")
    assert await first.read.tee(second.write, 100) == 6
    # Both pipes have it: tee did not consume it.
    assert read_from(thread, second.read, 100) == b"shared"
    assert read_from(thread, first.read, 100) == b"shared"
    with pytest.raises(BlockingIOError):
        await first.read.tee(second.write, 100, SPLICE_F.NONBLOCK)
    other = await thread.task.memfd_create(await thread.ptr("tee"))
    with pytest.raises(OSError) as info:
        await other.tee(second.write, 1)
    assert info.value.errno == errno.EINVAL


async def test_vmsplice_both_ways(thread: Thread) -> None:
    pipe = await thread.pipe()
    bufs = [await thread.ptr(b"vm"), await thread.ptr(b"splice")]
    done, rest = await pipe.write.vmsplice(await thread.ptr(IovecList(bufs)))
    assert [p.value for p in done] == [b"vm", b"splice"] and rest == []  # type: ignore[attr-defined]
    # Into memory from the read end: the buffers are filled.
    out = [await thread.malloc(bytes, 3), await thread.malloc(bytes, 10)]
    filled, rest = await pipe.read.vmsplice(await thread.ptr(IovecList(out)))
    assert all(p.consumed for p in out)
    assert [await p.read() for p in filled] == [b"vms", b"plice"]
    assert [p.size() for p in rest] == [5] and type(rest[0]) is Pointer
    # GIFT is refused; an uninitialized buffer cannot be written into a pipe.
    with pytest.raises(ValueError):
        await pipe.write.vmsplice(await thread.ptr(IovecList(done)), SPLICE_F.GIFT)
    with pytest.raises(TypeError):
        await pipe.write.vmsplice(await thread.ptr(IovecList([await thread.malloc(bytes, 2)])))
    # Not a pipe: EBADF; the buffers come back.
    fd = await thread.task.memfd_create(await thread.ptr("vmsplice"))
    with pytest.raises(OSError) as info:
        await fd.vmsplice(await thread.ptr(IovecList(done)))
    assert info.value.errno == errno.EBADF
    assert not any(p.consumed for p in done)


async def test_file_handles(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"by handle")
    handle = await thread.malloc(FileHandle, FileHandle.HEADER + MAX_HANDLE_SZ)
    filled, mount_id = await thread.task.name_to_handle_at(None, await thread.ptr(path), handle)
    assert handle.consumed and mount_id > 0
    value = await filled.read()
    assert isinstance(value, FileHandle) and 0 < len(value.handle) <= MAX_HANDLE_SZ
    # Root has CAP_DAC_READ_SEARCH: the handle opens the file.
    dirfd = await open_file(thread, tmp_path, O.RDONLY | O.DIRECTORY)
    fd = await thread.task.open_by_handle_at(dirfd, filled, O.RDONLY)
    valid, _ = await fd.read(await thread.malloc(bytes, 100))
    assert await valid.read() == b"by handle"
    # The same handle from the fd itself, with AT.EMPTY_PATH.
    again, _ = await thread.task.name_to_handle_at(
        fd, await thread.ptr(""), await thread.malloc(FileHandle, 8 + MAX_HANDLE_SZ),
        AT.EMPTY_PATH,
    )
    assert await again.read() == value
    # A handle written by hand works as well.
    written = await thread.ptr(value)
    assert (await thread.task.open_by_handle_at(None, written, O.RDONLY)).number >= 0
    # More room than any handle needs is fine.
    roomy, _ = await thread.task.name_to_handle_at(
        None, await thread.ptr(path), await thread.malloc(FileHandle, 4096)
    )
    assert await roomy.read() == value
    # Too little room: EOVERFLOW, the pointer given back.
    small = await thread.malloc(FileHandle, FileHandle.HEADER)
    with pytest.raises(OSError) as info:
        await thread.task.name_to_handle_at(None, await thread.ptr(path), small)
    assert info.value.errno == errno.EOVERFLOW
    assert not small.consumed
    with pytest.raises(OSError) as info:
        await thread.task.name_to_handle_at(None, await thread.ptr(tmp_path / "no"), small)
    assert info.value.errno == errno.ENOENT
    # Once the file is gone: ESTALE.
    await fd.close()
    path.unlink()
    with pytest.raises(OSError) as info:
        await thread.task.open_by_handle_at(dirfd, filled, O.RDONLY)
    assert info.value.errno == errno.ESTALE
    with pytest.raises(TypeError):
        await thread.task.open_by_handle_at(dirfd, await thread.ptr(b"12345678"), O.RDONLY)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FileHandle(1 << 40, b"")


async def test_open_by_handle_at_needs_cap_dac_read_search(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    filled, _ = await thread.task.name_to_handle_at(
        None, await thread.ptr(path), await thread.malloc(FileHandle, 8 + MAX_HANDLE_SZ)
    )
    value = await filled.read()
    # In a new user namespace the capability does not reach our filesystem.
    child = await thread.clone(CLONE.NEWUSER)
    with pytest.raises(OSError) as info:
        await child.task.open_by_handle_at(None, await child.ptr(value), O.RDONLY)
    assert info.value.errno == errno.EPERM
    await child.exit(0)


def test_file_handle_bytes() -> None:
    handle = FileHandle(7, b"abc")
    data = handle.to_bytes()
    assert data == b"\x03\0\0\0\x07\0\0\0abc"
    assert FileHandle.from_bytes(data + b"junk") == handle
    with pytest.raises(ValueError):
        FileHandle.from_bytes(data[:5])
    with pytest.raises(TypeError):
        FileHandle(1, "abc")  # type: ignore[arg-type]
