"""<sys/uio.h>: preadv, pwritev, and process_vm_readv / process_vm_writev
between the local thread and every kind of thread, with RemoteIovecList
naming the other process's memory."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import ReadablePointer, Thread, UseAfterConsumeError, local_thread
from rsyscall.fcntl import O
from rsyscall.sys.uio import IovecList, RemoteIovecList

from .util import read_memory, thread_pid

pytestmark = pytest.mark.anyio


async def test_preadv_pwritev(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = await thread.task.open(await thread.ptr(path), O.RDWR)
    bufs = [await thread.malloc(bytes, 2), await thread.malloc(bytes, 3)]
    iov = await thread.ptr(IovecList(bufs))
    valid, rest = await fd.preadv(iov, 4)
    assert [await p.read() for p in valid] == [b"45", b"678"] and rest == []
    assert await fd.lseek(0, 1) == 0  # the file offset stays
    done, rest = await fd.pwritev(
        await thread.ptr(IovecList([await thread.ptr(b"AB"), await thread.ptr(b"C")])), 8
    )
    assert [p.value for p in done] == [b"AB", b"C"] and rest == []  # type: ignore[attr-defined]
    assert path.read_bytes() == b"01234567ABC"
    # Past the end: nothing read.
    valid, rest = await fd.preadv(await thread.ptr(IovecList([await thread.malloc(bytes, 4)])), 50)
    assert valid == [] and rest[0].size() == 4
    # A negative offset, or a pipe: EINVAL, ESPIPE; the buffers come back.
    buf = await thread.malloc(bytes, 4)
    with pytest.raises(OSError) as info:
        await fd.preadv(await thread.ptr(IovecList([buf])), -1)
    assert info.value.errno == errno.EINVAL
    assert not buf.consumed
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.preadv(await thread.ptr(IovecList([buf])), 0)
    assert info.value.errno == errno.ESPIPE
    with pytest.raises(OSError) as info:
        await pipe.write.pwritev(await thread.ptr(IovecList([await thread.ptr(b"x")])), 0)
    assert info.value.errno == errno.ESPIPE


async def test_process_vm_readv_from_thread(thread: Thread) -> None:
    # The local thread reads `thread`'s memory (another address space for
    # stub and ssh threads, ours for local and child ones).
    target = local_thread.task.make_process(thread_pid(thread))
    one = await thread.ptr(b"remote ")
    two = await thread.ptr(b"memory!")
    remote_iov = await local_thread.ptr(RemoteIovecList([one, two]))
    local = [await local_thread.malloc(bytes, 3), await local_thread.malloc(bytes, 20)]
    valid, rest = await target.process_vm_readv(
        await local_thread.ptr(IovecList(local)), remote_iov
    )
    assert b"".join([await p.read() for p in valid]) == b"remote memory!"
    assert [p.size() for p in valid] == [3, 11] and [p.size() for p in rest] == [9]
    assert all(local_ptr.consumed for local_ptr in local)
    # The remote buffers are only read.
    assert not one.consumed and await two.read() == b"memory!"
    # A short local buffer: only as much as fits.
    valid, rest = await target.process_vm_readv(
        await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 4)])), remote_iov
    )
    assert await valid[0].read() == b"remo" and rest == []


async def test_process_vm_writev_into_thread(thread: Thread) -> None:
    target = local_thread.task.make_process(thread_pid(thread))
    remote = [await thread.malloc(bytes, 5), await thread.malloc(bytes, 10)]
    remote_iov = await local_thread.ptr(RemoteIovecList(remote))
    local_iov = await local_thread.ptr(
        IovecList([await local_thread.ptr(b"hello"), await local_thread.ptr(b" there")])
    )
    done, rest = await target.process_vm_writev(local_iov, remote_iov)
    assert all(p.consumed for p in remote)
    assert [p.size() for p in done] == [5, 6] and [p.size() for p in rest] == [4]
    assert all(isinstance(p, ReadablePointer) and p.task is thread.task for p in done)
    assert [await p.read() for p in done] == [b"hello", b" there"]
    assert read_memory(thread, done[0].address, 5) == b"hello"
    # The consumed remote pointers cannot be used again.
    with pytest.raises(UseAfterConsumeError):
        await target.process_vm_writev(local_iov, remote_iov)


async def test_process_vm_from_thread_to_its_child(thread: Thread) -> None:
    # A thread of any kind copying into and out of a child of its own.
    child = await thread.clone()
    process = child.process.process
    remote = await child.ptr(b"child's bytes")
    valid, _ = await process.process_vm_readv(
        await thread.ptr(IovecList([await thread.malloc(bytes, 13)])),
        await thread.ptr(RemoteIovecList([remote])),
    )
    assert await valid[0].read() == b"child's bytes"
    done, _ = await process.process_vm_writev(
        await thread.ptr(IovecList([await thread.ptr(b"CHILD")])),
        await thread.ptr(RemoteIovecList([remote])),
    )
    assert (await done[0].read()) == b"CHILD"
    await child.exit(0)


async def test_process_vm_bad_input(thread: Thread) -> None:
    target = local_thread.task.make_process(thread_pid(thread))
    remote = await thread.ptr(b"data")
    # Remote buffers of another process than the target: ValueError.
    mine = await local_thread.ptr(b"mine")
    if thread.task.pid != os.getpid():
        with pytest.raises(ValueError):
            await target.process_vm_readv(
                await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 4)])),
                await local_thread.ptr(RemoteIovecList([mine])),
            )
    # Buffers of two address spaces in one list.
    if thread.task.space is not local_thread.task.space:
        with pytest.raises(ValueError):
            RemoteIovecList([remote, mine])
    with pytest.raises(TypeError):
        RemoteIovecList([b"x"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        RemoteIovecList(remote)  # type: ignore[arg-type]
    # An IovecList where a RemoteIovecList goes.
    with pytest.raises(TypeError):
        await target.process_vm_readv(
            await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 4)])),
            await local_thread.ptr(IovecList([mine])),  # type: ignore[arg-type]
        )
    # Uninitialized remote memory is not read.
    blank = await thread.malloc(bytes, 4)
    with pytest.raises(TypeError):
        await target.process_vm_readv(
            await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 4)])),
            await local_thread.ptr(RemoteIovecList([blank])),
        )
    # A local buffer to write from must hold data.
    with pytest.raises(TypeError):
        await target.process_vm_writev(
            await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 4)])),
            await local_thread.ptr(RemoteIovecList([blank])),
        )
    assert not blank.consumed
    # A target that is gone: ESRCH, and the local buffers come back.
    child = await thread.clone()
    remote_child = await child.ptr(b"gone")
    process = child.process.process
    await child.exit(0)
    buf = await thread.malloc(bytes, 4)
    with pytest.raises(OSError) as info:
        await process.process_vm_readv(
            await thread.ptr(IovecList([buf])), await thread.ptr(RemoteIovecList([remote_child]))
        )
    assert info.value.errno == errno.ESRCH
    assert not buf.consumed


async def test_unsafe_process_vm_by_address(thread: Thread) -> None:
    target = local_thread.task.make_process(thread_pid(thread))
    remote = await thread.ptr(b"raw address")
    valid, rest = await target.unsafe_process_vm_readv(
        await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 20)])),
        [(remote.address, 3), (remote.address + 4, 7)],
    )
    assert await valid[0].read() == b"rawaddress" and rest[0].size() == 10
    # Into memory the caller vouches for: a buffer of `thread`'s that
    # nothing else uses.
    spare = await thread.malloc(bytes, 5)
    count = await target.unsafe_process_vm_writev(
        await local_thread.ptr(IovecList([await local_thread.ptr(b"WRITE")])),
        [(spare.address, 5)],
    )
    assert count == 5 and read_memory(thread, spare.address, 5) == b"WRITE"
    # Nothing mapped at page 0: EFAULT; the local buffers come back.
    buf = await local_thread.malloc(bytes, 4)
    with pytest.raises(OSError) as info:
        await target.unsafe_process_vm_readv(await local_thread.ptr(IovecList([buf])), [(0, 4)])
    assert info.value.errno == errno.EFAULT
    assert not buf.consumed
    with pytest.raises(TypeError):
        await target.unsafe_process_vm_readv(await local_thread.ptr(IovecList([buf])), [0])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        await target.unsafe_process_vm_readv(
            await local_thread.ptr(IovecList([buf])), [(-1, 4)]
        )
