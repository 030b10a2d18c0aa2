"""<sys/ioctl.h>: the generic ioctl(2) method and the FIO* requests,
checked against fcntl(2) and the stdlib's own ioctl."""

from __future__ import annotations

import errno
import fcntl as stdlib_fcntl
import os
import socket
import struct
import termios
from typing import Any

import pytest

from rsyscall import ReadablePointer, UseAfterConsumeError, WrittenPointer, local_thread
from rsyscall.fcntl import FD, F, O
from rsyscall.net.if_ import SIOC, Ifreq
from rsyscall.sched import CLONE
from rsyscall.struct import Int32
from rsyscall.sys.ioctl import FIO
from rsyscall.sys.socket import AF, SOCK

pytestmark = pytest.mark.anyio


async def still_works() -> None:
    """A plain ioctl after an error: the thread and its fds are fine."""
    pair = await local_thread.socketpair(AF.UNIX, SOCK.STREAM)
    await pair.first.send(await local_thread.ptr(b"abc"))
    _, count = await pair.second.ioctl(FIO.NREAD, await local_thread.malloc(Int32))
    assert await count.read() == 3


def test_fio_values_match_termios() -> None:
    # An independent source for the numbers: the stdlib's termios module.
    assert FIO.NREAD == termios.FIONREAD
    assert FIO.NBIO == termios.FIONBIO
    assert FIO.CLEX == termios.FIOCLEX
    assert FIO.NCLEX == termios.FIONCLEX
    assert FIO.ASYNC == termios.FIOASYNC


async def test_fionread_socket() -> None:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    buf = await thread.malloc(Int32)
    result, count = await pair.second.ioctl(FIO.NREAD, buf)
    assert result == 0
    assert isinstance(count, ReadablePointer)
    assert await count.read() == 0
    # The pointer the kernel wrote through was consumed.
    with pytest.raises(UseAfterConsumeError):
        await pair.second.ioctl(FIO.NREAD, buf)
    await pair.first.send(await thread.ptr(b"hello world"))
    # The returned pointer can be passed again.
    _, count = await pair.second.ioctl(FIO.NREAD, count)
    assert await count.read() == 11
    # The same as the stdlib sees.
    raw = stdlib_fcntl.ioctl(pair.second.number, termios.FIONREAD, b"\0" * 4)
    assert struct.unpack("i", raw)[0] == 11
    valid, _ = await pair.second.recv(await thread.malloc(bytes, 5))
    assert await valid.read() == b"hello"
    _, count = await pair.second.ioctl(FIO.NREAD, count)
    assert await count.read() == 6


async def test_fionread_pipe() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"x" * 100))
    _, count = await pipe.read.ioctl(FIO.NREAD, await thread.malloc(Int32))
    assert await count.read() == 100


async def test_fioclex_fionclex() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    fd = pipe.read
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC  # as every library fd starts
    assert await fd.ioctl(FIO.NCLEX) == 0
    assert await fd.fcntl(F.GETFD) == 0
    assert os.get_inheritable(fd.number)  # the stdlib sees the same
    assert await fd.ioctl(FIO.CLEX) == 0
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    assert os.get_inheritable(fd.number) is False


async def test_fionbio() -> None:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    fd = pair.first
    assert not await fd.fcntl(F.GETFL) & O.NONBLOCK
    on = await thread.ptr(Int32(1))
    result, back = await fd.ioctl(FIO.NBIO, on)
    assert result == 0
    assert await fd.fcntl(F.GETFL) & O.NONBLOCK
    # FIONBIO only reads its int: the memory still holds what we wrote.
    assert await back.read() == 1
    await fd.ioctl(FIO.NBIO, await thread.ptr(Int32(0)))
    assert not await fd.fcntl(F.GETFL) & O.NONBLOCK


async def test_fioasync() -> None:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    fd = pair.first
    await fd.ioctl(FIO.ASYNC, await thread.ptr(Int32(1)))
    assert await fd.fcntl(F.GETFL) & O.ASYNC
    await fd.ioctl(FIO.ASYNC, await thread.ptr(Int32(0)))
    assert not await fd.fcntl(F.GETFL) & O.ASYNC


async def test_generic_ioctl_keeps_type() -> None:
    """Any request works through the generic method; the returned pointer
    reads as the type that was written."""
    thread = local_thread
    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    ifr = await thread.ptr(Ifreq("lo"))
    result, out = await sock.ioctl(SIOC.GIFINDEX, ifr)
    assert result == 0
    assert ifr.consumed
    value = await out.read()
    assert isinstance(value, Ifreq)
    assert value.name == "lo"
    assert value.ifindex == socket.if_nametoindex("lo")


async def test_error_restores_pointer() -> None:
    """A failed ioctl wrote nothing, so its pointer is still usable."""
    thread = local_thread
    pipe = await thread.pipe()
    ifr = await thread.ptr(Ifreq("lo"))
    with pytest.raises(OSError) as info:
        await pipe.read.ioctl(SIOC.GIFFLAGS, ifr)  # not a socket
    assert info.value.errno == errno.ENOTTY
    assert isinstance(ifr, WrittenPointer) and not ifr.consumed
    assert await ifr.read() == Ifreq("lo")
    with pytest.raises(OSError) as info:
        await pipe.read.ioctl(termios.TCGETS)  # not a terminal
    assert info.value.errno == errno.ENOTTY
    await still_works()


async def test_bad_arguments() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    bad: list[tuple[Any, Any]] = [
        ("FIONREAD", 0),
        (FIO.NREAD, "x"),
        (FIO.NREAD, 1.5),
        (FIO.NBIO, True),  # a pointer belongs here
        (None, 0),
    ]
    for request, arg in bad:
        with pytest.raises(TypeError):
            await pipe.read.ioctl(request, arg)
        await still_works()
    # A closed handle is refused before any syscall.
    closed = await thread.pipe()
    await closed.read.close()
    with pytest.raises(UseAfterConsumeError):
        await closed.read.ioctl(FIO.CLEX)
    await still_works()


async def test_ioctl_in_child() -> None:
    child = await local_thread.clone(CLONE.NEWUSER | CLONE.NEWNET)
    try:
        pair = await child.socketpair(AF.UNIX, SOCK.STREAM)
        await pair.first.send(await child.ptr(b"12345"))
        _, count = await pair.second.ioctl(FIO.NREAD, await child.malloc(Int32))
        assert await count.read() == 5
        await pair.second.ioctl(FIO.NCLEX)
        assert await pair.second.fcntl(F.GETFD) == 0
        with pytest.raises(OSError) as info:
            await pair.second.ioctl(termios.TCGETS)
        assert info.value.errno == errno.ENOTTY
        # Still answering after the error.
        await pair.second.ioctl(FIO.CLEX)
        assert await pair.second.fcntl(F.GETFD) == FD.CLOEXEC
    finally:
        await child.exit(0)
