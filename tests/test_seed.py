"""The seed document's examples, run as written, plus fd passing with msghdr."""

from __future__ import annotations

import os

import pytest

from rsyscall import FileDescriptor, ReadablePointer, local_thread
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sys.resource import PRIO
from rsyscall.sys.socket import (
    AF,
    MSG,
    SOCK,
    CmsgList,
    CmsgSCMRights,
    RecvMsghdr,
    RecvMsghdrOut,
    SendMsghdr,
    Sockaddr,
)
from rsyscall.sys.uio import IovecList
from rsyscall.unistd import Pipe

pytestmark = pytest.mark.anyio


async def test_socket_and_bind() -> None:
    thread = local_thread
    task = thread.task
    sock = await task.socket(AF.INET, SOCK.STREAM, 0)
    assert isinstance(sock, FileDescriptor)
    addr = await thread.ptr(SockaddrIn(port=0, addr=0))
    await sock.bind(addr)
    # Positional arguments follow the C field order.
    assert SockaddrIn(1234, 0) == SockaddrIn(port=1234, addr=0)
    valid, _ = await sock.getsockname(await thread.malloc(Sockaddr))
    bound = await valid.read()
    assert isinstance(bound, SockaddrIn) and bound.port != 0
    await sock.close()


async def test_pipe_with_malloc() -> None:
    thr = local_thread
    pipefd = await thr.malloc(Pipe)
    pipefd = await thr.task.pipe(pipefd)
    read, write = await pipefd.read()
    # or...
    pipe = await pipefd.read()
    # Reading twice gives two owners of each fd; both name the same fds.
    assert pipe.read.number == pipe[0].number == read.number
    assert pipe.write.number == pipe[1].number == write.number
    await write.write(await thr.ptr(b"through the pipe"))
    valid, _ = await pipe.read.read(await thr.malloc(bytes, 64))
    assert await valid.read() == b"through the pipe"


async def test_recv_peek_and_merge() -> None:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    sock = pair.first
    await pair.second.write(await thread.ptr(b"peeked"))
    buf = await thread.malloc(bytes, 4096)
    received, leftover = await sock.recv(buf, MSG.DONTWAIT | MSG.PEEK)
    data = await received.read()
    assert data == b"peeked"
    assert isinstance(received, ReadablePointer)
    assert received.size() + leftover.size() == 4096
    buf = received + leftover
    assert buf.size() == 4096
    # The peeked data is still there; the merged buffer is reusable.
    received, leftover = await sock.recv(buf, MSG.DONTWAIT)
    assert await received.read() == b"peeked"
    with pytest.raises(BlockingIOError):
        await sock.recv(received + leftover, MSG.DONTWAIT)


async def test_setpriority_task_and_process() -> None:
    thread = local_thread
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        await thread.task.setpriority(PRIO.PROCESS, 10)
        assert os.getpriority(os.PRIO_PROCESS, 0) == 10
        await thread.task.process.setpriority(11)
        assert os.getpriority(os.PRIO_PROCESS, 0) == 11
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


async def test_fd_passing_with_msghdr() -> None:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    sock, other = pair.first, pair.second
    pipe = await thread.pipe()
    fd = pipe.write

    iov = await thread.ptr(IovecList([await thread.ptr(b"x")]))
    cmsgs = await thread.ptr(CmsgList([CmsgSCMRights([fd])]))
    sent, unsent = await sock.sendmsg(await thread.ptr(SendMsghdr(None, iov, cmsgs)))
    assert [p.size() for p in sent] == [1] and unsent == []

    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 1)]))
    cmsgs = await thread.ptr(CmsgList([CmsgSCMRights([fd])]))  # room for one fd
    valid, rest, hdr = await other.recvmsg(await thread.ptr(RecvMsghdr(None, iov, cmsgs)))
    assert [await p.read() for p in valid] == [b"x"] and rest == []
    out = await hdr.read()
    assert isinstance(out, RecvMsghdrOut)
    assert not out.flags & MSG.CTRUNC
    assert out.control is not None
    passed_fd = (await out.control.read())[0][0]
    assert isinstance(passed_fd, FileDescriptor)
    assert passed_fd.number != fd.number

    # The passed fd is the pipe's write end: write through it, read the pipe.
    await passed_fd.write(await thread.ptr(b"via the passed fd"))
    got, _ = await pipe.read.read(await thread.malloc(bytes, 64))
    assert await got.read() == b"via the passed fd"
