"""<sys/uio.h>: readv, writev, preadv2, pwritev2 over IovecList, with
partial transfers, checked against the file as os sees it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import (
    FileDescriptor,
    Pointer,
    ReadablePointer,
    Thread,
    UseAfterConsumeError,
    WrittenPointer,
)
from rsyscall.fcntl import F, O
from rsyscall.sys.uio import RWF, UIO_MAXIOV, IovecList
from rsyscall.unistd import SEEK, Pipe

from .util import borrowed_fd, read_from, write_to

pytestmark = pytest.mark.anyio


async def open_file(thread: Thread, path: Path, flags: O = O.RDWR | O.CREAT) -> FileDescriptor:
    return await thread.task.open(await thread.ptr(path), flags)


async def buffers(thread: Thread, *sizes: int) -> list[Pointer[bytes]]:
    return [await thread.malloc(bytes, size) for size in sizes]


async def still_works(thread: Thread) -> None:
    pipe = await thread.pipe()
    iov = await thread.ptr(IovecList([await thread.ptr(b"o"), await thread.ptr(b"k")]))
    await pipe.write.writev(iov)
    valid, _ = await pipe.read.readv(await thread.ptr(IovecList(await buffers(thread, 1, 1))))
    assert [await p.read() for p in valid] == [b"o", b"k"]


def test_constants() -> None:
    assert UIO_MAXIOV == os.sysconf("SC_IOV_MAX")
    for name in ("HIPRI", "DSYNC", "SYNC", "NOWAIT", "APPEND"):
        if hasattr(os, "RWF_" + name):
            assert RWF[name] == getattr(os, "RWF_" + name), name


async def test_writev_whole(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = await open_file(thread, path)
    pieces = [b"one ", b"", b"two ", b"three"]
    iov = await thread.ptr(IovecList([await thread.ptr(p) for p in pieces]))
    done, rest = await fd.writev(iov)
    assert rest == []
    assert [p.value for p in done] == pieces  # type: ignore[attr-defined]
    assert all(isinstance(p, WrittenPointer) for p in done)
    assert path.read_bytes() == b"one two three"
    assert await fd.lseek(0, SEEK.CUR) == 13
    # The array is not consumed: rewrite it with the returned pointers.
    iov = await thread.ptr(IovecList(done))
    done, rest = await fd.writev(iov)
    assert path.read_bytes() == b"one two threeone two three"


async def test_readv_partial_fill(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = await open_file(thread, path, O.RDONLY)
    bufs = await buffers(thread, 4, 4, 4, 4)
    valid, rest = await fd.readv(await thread.ptr(IovecList(bufs)))
    assert all(b.consumed for b in bufs)
    assert [p.size() for p in valid] == [4, 4, 2]
    assert [p.size() for p in rest] == [2, 4]
    assert all(isinstance(p, ReadablePointer) for p in valid)
    assert all(type(p) is Pointer for p in rest)
    assert [await p.read() for p in valid] == [b"0123", b"4567", b"89"]
    # Valid and rest merge back into the original buffers.
    whole = valid[2] + rest[0]
    assert whole.size() == 4 and type(whole) is Pointer
    # At end of file: nothing filled.
    again = [valid[0], valid[1], whole, rest[1]]
    valid, rest = await fd.readv(await thread.ptr(IovecList(again)))
    assert valid == [] and [p.size() for p in rest] == [4, 4, 4, 4]
    assert all(type(p) is Pointer for p in rest)


async def test_readv_exact_boundary(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abcdefgh")
    fd = await open_file(thread, tmp_path / "f", O.RDONLY)
    valid, rest = await fd.readv(await thread.ptr(IovecList(await buffers(thread, 4, 4, 4))))
    assert [await p.read() for p in valid] == [b"abcd", b"efgh"]
    assert [p.size() for p in rest] == [4]
    # Zero-size buffers are fine anywhere.
    await fd.lseek(0, SEEK.SET)
    valid, rest = await fd.readv(await thread.ptr(IovecList(await buffers(thread, 0, 3, 0, 3))))
    assert [await p.read() for p in valid] == [b"", b"abc", b"", b"def"]
    assert rest == []


async def test_empty_buffers_after_a_partial_fill_are_rest(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"xy")
    fd = await open_file(thread, tmp_path / "f", O.RDONLY)
    # `valid` is a prefix of the array and `rest` the remainder, so the last
    # valid part and the first rest part always merge back together.
    valid, rest = await fd.readv(await thread.ptr(IovecList(await buffers(thread, 0, 4, 0, 4))))
    assert [p.size() for p in valid] == [0, 2] and [p.size() for p in rest] == [2, 0, 4]
    assert (valid[-1] + rest[0]).size() == 4
    # At end of file the same holds.
    valid, rest = await fd.readv(await thread.ptr(IovecList(await buffers(thread, 4, 0))))
    assert valid == [] and [p.size() for p in rest] == [4, 0]


async def test_readv_from_pipe_written_by_os(thread: Thread) -> None:
    pipe = await thread.pipe()
    write_to(thread, pipe.write, b"hello vectored world")
    iov = await thread.ptr(IovecList(await buffers(thread, 5, 1, 100)))
    valid, rest = await pipe.read.readv(iov)
    assert b"".join([await p.read() for p in valid]) == b"hello vectored world"
    assert [p.size() for p in valid] == [5, 1, 14] and [p.size() for p in rest] == [86]


async def test_writev_partial_to_full_pipe(thread: Thread) -> None:
    pipe = await (await thread.task.pipe(await thread.malloc(Pipe), O.NONBLOCK)).read()
    await pipe.write.fcntl(F.SETPIPE_SZ, 4096)
    capacity = await pipe.write.fcntl(F.GETPIPE_SZ)
    pieces = [b"a" * 1000, b"b" * (capacity + 1000), b"c" * 1000]
    data = b"".join(pieces)
    iov = await thread.ptr(IovecList([await thread.ptr(p) for p in pieces]))
    done, rest = await pipe.write.writev(iov)
    count = sum(p.size() for p in done)
    assert 0 < count < len(data)
    assert count + sum(p.size() for p in rest) == len(data)
    assert b"".join(p.value for p in done) == data[:count]  # type: ignore[attr-defined]
    assert b"".join(p.value for p in rest) == data[count:]  # type: ignore[attr-defined]
    assert all(isinstance(p, WrittenPointer) for p in done + rest)
    assert read_from(thread, pipe.read, len(data)) == data[:count]
    # Write the rest: a new array from the unwritten parts.
    done, rest2 = await pipe.write.writev(await thread.ptr(IovecList(rest)))
    assert rest2 == []
    assert read_from(thread, pipe.read, len(data)) == data[count:]
    # A full pipe: EAGAIN, and every buffer is given back.
    filler = await thread.ptr(b"x" * capacity)
    await pipe.write.write(filler)
    bufs = [await thread.ptr(b"more"), await thread.ptr(b"data")]
    with pytest.raises(BlockingIOError):
        await pipe.write.writev(await thread.ptr(IovecList(bufs)))
    assert not any(b.consumed for b in bufs)


async def test_preadv2_at_offset_and_current(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    fd = await open_file(thread, tmp_path / "f", O.RDONLY)
    await fd.lseek(1, SEEK.SET)
    valid, rest = await fd.preadv2(await thread.ptr(IovecList(await buffers(thread, 2, 3))), 5)
    assert [await p.read() for p in valid] == [b"56", b"789"] and rest == []
    with borrowed_fd(thread, fd) as ours:
        assert await fd.lseek(0, SEEK.CUR) == 1 == os.lseek(ours, 0, os.SEEK_CUR)
    # Offset -1: the file offset is used, and moved.
    valid, rest = await fd.preadv2(await thread.ptr(IovecList(await buffers(thread, 2, 2))), -1)
    assert [await p.read() for p in valid] == [b"12", b"34"]
    assert await fd.lseek(0, SEEK.CUR) == 5
    valid, rest = await fd.preadv2(await thread.ptr(IovecList(await buffers(thread, 4, 4))), 8)
    assert [await p.read() for p in valid] == [b"89"] and [p.size() for p in rest] == [2, 4]
    valid, rest = await fd.preadv2(await thread.ptr(IovecList(await buffers(thread, 4))), 100)
    assert valid == [] and rest[0].size() == 4
    valid, _ = await fd.preadv2(await thread.ptr(IovecList(await buffers(thread, 3))), 0, RWF.HIPRI)
    assert [await p.read() for p in valid] == [b"012"]


async def test_pwritev2_at_offset_current_and_append(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"..........")
    fd = await open_file(thread, path, O.RDWR)
    iov = await thread.ptr(IovecList([await thread.ptr(b"AB"), await thread.ptr(b"CD")]))
    done, rest = await fd.pwritev2(iov, 3)
    assert [p.value for p in done] == [b"AB", b"CD"] and rest == []  # type: ignore[attr-defined]
    assert path.read_bytes() == b"...ABCD..."
    assert await fd.lseek(0, SEEK.CUR) == 0
    iov = await thread.ptr(IovecList([await thread.ptr(b"xy")]))
    await fd.pwritev2(iov)  # offset -1: at the file offset, which moves
    assert path.read_bytes() == b"xy.ABCD..."
    assert await fd.lseek(0, SEEK.CUR) == 2
    iov = await thread.ptr(IovecList([await thread.ptr(b"END")]))
    await fd.pwritev2(iov, 0, RWF.APPEND)  # appended, whatever the offset
    assert path.read_bytes() == b"xy.ABCD...END"
    iov = await thread.ptr(IovecList([await thread.ptr(b"!")]))
    await fd.pwritev2(iov, 20, RWF.DSYNC)  # past the end: a hole
    assert path.read_bytes() == b"xy.ABCD...END" + b"\0" * 7 + b"!"
    assert os.stat(path).st_size == 21


async def test_uio_bad_input(thread: Thread, tmp_path: Path) -> None:
    pipe = await thread.pipe()
    with pytest.raises(TypeError):
        IovecList([b"x"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        IovecList([await thread.malloc(bytes, 0)] * (UIO_MAXIOV + 1))
    await still_works(thread)
    # The iov must be a written IovecList pointer.
    with pytest.raises(TypeError):
        await pipe.read.readv(IovecList(await buffers(thread, 1)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pipe.read.readv(await thread.ptr(b"not an iovec"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pipe.read.readv(await thread.malloc(IovecList, 16))  # type: ignore[arg-type]
    await still_works(thread)
    # writev reads its buffers: they must be initialized.
    bufs = [await thread.ptr(b"ok"), await thread.malloc(bytes, 2)]
    with pytest.raises(TypeError):
        await pipe.write.writev(await thread.ptr(IovecList(bufs)))
    assert not bufs[0].consumed and not bufs[1].consumed
    await still_works(thread)
    # A buffer consumed after the array was written: the others are given back.
    bufs = await buffers(thread, 2, 2, 2)
    iov = await thread.ptr(IovecList(bufs))
    bufs[1].split(1)
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.readv(iov)
    assert not bufs[0].consumed and not bufs[2].consumed
    await still_works(thread)
    # A buffer consumed by an earlier readv.
    write_to(thread, pipe.write, b"xy")
    bufs = await buffers(thread, 2)
    await pipe.read.readv(await thread.ptr(IovecList(bufs)))
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.readv(await thread.ptr(IovecList(bufs)))
    await still_works(thread)
    # The same buffer twice in one array would be filled twice: refused.
    buf = await thread.malloc(bytes, 2)
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.readv(await thread.ptr(IovecList([buf, buf])))
    assert not buf.consumed
    await still_works(thread)
    # Kernel errors give every buffer back.
    bufs = await buffers(thread, 2, 2)
    with pytest.raises(OSError) as info:
        await pipe.write.readv(await thread.ptr(IovecList(bufs)))
    assert info.value.errno == errno.EBADF
    assert not any(b.consumed for b in bufs)
    with pytest.raises(OSError) as info:
        await pipe.read.preadv2(await thread.ptr(IovecList(bufs)), 0)
    assert info.value.errno == errno.ESPIPE
    with pytest.raises(OSError) as info:
        await pipe.write.pwritev2(await thread.ptr(IovecList([await thread.ptr(b"x")])), 0)
    assert info.value.errno == errno.ESPIPE
    fd = await open_file(thread, tmp_path / "f")
    with pytest.raises(OSError) as info:
        await fd.preadv2(await thread.ptr(IovecList(bufs)), 0, RWF(0x10000000))
    assert info.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as info:
        await fd.preadv2(await thread.ptr(IovecList(bufs)), -5)
    assert info.value.errno == errno.EINVAL
    assert not any(b.consumed for b in bufs)
    await still_works(thread)
    # A closed fd.
    await fd.close()
    with pytest.raises(UseAfterConsumeError):
        await fd.readv(await thread.ptr(IovecList(bufs)))
    with pytest.raises(UseAfterConsumeError):
        await fd.pwritev2(await thread.ptr(IovecList([await thread.ptr(b"x")])), 0)
    assert not any(b.consumed for b in bufs)
    await still_works(thread)


async def test_iovec_list_and_msghdr_are_immutable(thread: Thread) -> None:
    """Regression: IovecList was a list, so after `thread.ptr(IovecList([a]))`
    the value could be changed to name other buffers while memory still
    held a's address: readv then took the new buffers and the kernel wrote
    into a, which nothing held any more.  Now the value cannot change."""
    from rsyscall.sys.socket import RecvMsghdr, SendMsghdr

    small = await thread.malloc(bytes, 1)
    iov = await thread.ptr(IovecList([small]))
    with pytest.raises((TypeError, AttributeError)):
        iov.value[0] = await thread.malloc(bytes, 4096)  # type: ignore[index]
    with pytest.raises(AttributeError):
        iov.value.append(small)  # type: ignore[attr-defined]
    assert isinstance(iov.value, tuple) and iov.value == (small,)
    recv = RecvMsghdr(None, iov)
    with pytest.raises(AttributeError):
        recv.iov = await thread.ptr(IovecList([await thread.malloc(bytes, 8)]))
    send = SendMsghdr(None, await thread.ptr(IovecList([await thread.ptr(b"x")])))
    with pytest.raises(AttributeError):
        send.name = None
    # Still usable as before.
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"y"))
    valid, _ = await pipe.read.readv(iov)
    assert [await part.read() for part in valid] == [b"y"]
