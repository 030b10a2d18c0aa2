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

from rsyscall import ReadablePointer, Thread, UseAfterConsumeError, WrittenPointer
from rsyscall.fcntl import FD, F, O
from rsyscall.net.if_ import SIOC, Ifreq
from rsyscall.sched import CLONE
from rsyscall.struct import Int32
from rsyscall.sys.ioctl import FIO, IOC, ioc, ioc_dir, ioc_size
from rsyscall.sys.socket import AF, SOCK

from .util import borrowed_fd, cloexec, read_memory

pytestmark = pytest.mark.anyio


async def still_works(thread: Thread) -> None:
    """A plain ioctl after an error: the thread and its fds are fine."""
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    await pair.first.send(await thread.ptr(b"abc"))
    _, count = await pair.second.ioctl(FIO.NREAD, await thread.malloc(Int32))
    assert await count.read() == 3


def test_fio_values_match_termios() -> None:
    # An independent source for the numbers: the stdlib's termios module.
    assert FIO.NREAD == termios.FIONREAD
    assert FIO.NBIO == termios.FIONBIO
    assert FIO.CLEX == termios.FIOCLEX
    assert FIO.NCLEX == termios.FIONCLEX
    assert FIO.ASYNC == termios.FIOASYNC


async def test_fionread_socket(thread: Thread) -> None:
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
    with borrowed_fd(thread, pair.second) as ours:
        raw = stdlib_fcntl.ioctl(ours, termios.FIONREAD, b"\0" * 4)
    assert struct.unpack("i", raw)[0] == 11
    valid, _ = await pair.second.recv(await thread.malloc(bytes, 5))
    assert await valid.read() == b"hello"
    _, count = await pair.second.ioctl(FIO.NREAD, count)
    assert await count.read() == 6


async def test_fionread_pipe(thread: Thread) -> None:
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"x" * 100))
    _, count = await pipe.read.ioctl(FIO.NREAD, await thread.malloc(Int32))
    assert await count.read() == 100


async def test_fioclex_fionclex(thread: Thread) -> None:
    pipe = await thread.pipe()
    fd = pipe.read
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC  # as every library fd starts
    assert await fd.ioctl(FIO.NCLEX) == 0
    assert await fd.fcntl(F.GETFD) == 0
    assert not cloexec(thread, fd)  # /proc sees the same
    assert await fd.ioctl(FIO.CLEX) == 0
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    assert cloexec(thread, fd) is True


async def test_fionbio(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    fd = pair.first
    assert not await fd.fcntl(F.GETFL) & O.NONBLOCK
    on = await thread.ptr(Int32(1))
    result, back = await fd.ioctl(FIO.NBIO, on)
    assert result == 0
    assert back is on and not on.consumed  # the kernel only reads it: borrowed
    assert await fd.fcntl(F.GETFL) & O.NONBLOCK
    # FIONBIO only reads its int: the memory still holds what we wrote.
    assert await back.read() == 1
    await fd.ioctl(FIO.NBIO, await thread.ptr(Int32(0)))
    assert not await fd.fcntl(F.GETFL) & O.NONBLOCK


async def test_fioasync(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    fd = pair.first
    await fd.ioctl(FIO.ASYNC, await thread.ptr(Int32(1)))
    assert await fd.fcntl(F.GETFL) & O.ASYNC
    await fd.ioctl(FIO.ASYNC, await thread.ptr(Int32(0)))
    assert not await fd.fcntl(F.GETFL) & O.ASYNC


async def test_generic_ioctl_keeps_type(thread: Thread) -> None:
    """Any request works through the generic method; the returned pointer
    reads as the type that was written."""
    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    ifr = await thread.ptr(Ifreq("lo"))
    result, out = await sock.ioctl(SIOC.GIFINDEX, ifr)
    assert result == 0
    assert ifr.consumed
    value = await out.read()
    assert isinstance(value, Ifreq)
    assert value.name == "lo"
    assert value.ifindex == socket.if_nametoindex("lo")


async def test_error_restores_pointer(thread: Thread) -> None:
    """A failed ioctl wrote nothing, so its pointer is still usable."""
    pipe = await thread.pipe()
    ifr = await thread.ptr(Ifreq("lo"))
    with pytest.raises(OSError) as info:
        await pipe.read.ioctl(SIOC.GIFFLAGS, ifr)  # not a socket
    assert info.value.errno == errno.ENOTTY
    assert isinstance(ifr, WrittenPointer) and not ifr.consumed
    assert await ifr.read() == Ifreq("lo")
    with pytest.raises(OSError) as info:
        await pipe.read.unsafe_ioctl(termios.TCGETS, 0)  # not a terminal
    assert info.value.errno == errno.ENOTTY
    await still_works(thread)


async def test_bad_arguments(thread: Thread) -> None:
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
        await still_works(thread)
    # A closed handle is refused before any syscall.
    closed = await thread.pipe()
    await closed.read.close()
    with pytest.raises(UseAfterConsumeError):
        await closed.read.ioctl(FIO.CLEX)
    await still_works(thread)


async def test_ioctl_in_child(thread: Thread) -> None:
    child = await thread.clone(CLONE.NEWUSER | CLONE.NEWNET)
    try:
        pair = await child.socketpair(AF.UNIX, SOCK.STREAM)
        await pair.first.send(await child.ptr(b"12345"))
        _, count = await pair.second.ioctl(FIO.NREAD, await child.malloc(Int32))
        assert await count.read() == 5
        await pair.second.ioctl(FIO.NCLEX)
        assert await pair.second.fcntl(F.GETFD) == 0
        with pytest.raises(OSError) as info:
            await pair.second.ioctl(SIOC.GIFFLAGS, await child.ptr(Ifreq("no-such-if")))
        assert info.value.errno == errno.ENODEV
        # Still answering after the error.
        await pair.second.ioctl(FIO.CLEX)
        assert await pair.second.fcntl(F.GETFD) == FD.CLOEXEC
    finally:
        await child.exit(0)


# ---- what the kernel may do with the argument ----

# From <asm-generic/ioctls.h>: _IOR('T', 0x30, unsigned int), _IOW('T',
# 0x31, int), _IO('T', 0x41); tests/test_abi.py checks `ioc` against the
# C macros.
TIOCGPTN = ioc(IOC.READ, ord("T"), 0x30, 4)
TIOCSPTLCK = ioc(IOC.WRITE, ord("T"), 0x31, 4)
TIOCGPTPEER = ioc(IOC.NONE, ord("T"), 0x41, 0)


async def test_fionread_small_pointer_refused(thread: Thread) -> None:
    """Regression: FIONREAD writes a 4-byte int, and a 1-byte pointer used
    to be passed, so the kernel wrote 3 bytes past it.  Now the size is
    checked before any syscall; the pointer is left as it was."""
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    await pair.first.send(await thread.ptr(b"hello world"))
    small = await thread.malloc(bytes, 1)
    with pytest.raises(ValueError):
        await pair.second.ioctl(FIO.NREAD, small)
    assert not small.consumed
    word, _ = (await thread.malloc(Int32)).split(1)  # an Int32 pointer of 1 byte
    with pytest.raises(ValueError):
        await pair.second.ioctl(FIO.NREAD, word)
    # Raw bytes of the right size are fine; another type is not.
    _, count = await pair.second.ioctl(FIO.NREAD, await thread.malloc(bytes, 4))
    assert await count.read() == struct.pack("i", 11)
    with pytest.raises(TypeError):
        await pair.second.ioctl(FIO.NREAD, await thread.ptr(Ifreq("lo")))
    # FIONBIO reads its int: an uninitialized pointer is refused.
    with pytest.raises(TypeError):
        await pair.second.ioctl(FIO.NBIO, await thread.malloc(Int32))
    await still_works(thread)


@pytest.mark.isolated
async def test_int_address_refused(thread: Thread) -> None:
    """Regression: an int where the request takes memory used to be passed
    as the address: FIONREAD at id(obj) wrote the pending byte count (0)
    over the object's refcount, and the interpreter crashed."""
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    victim = [1, 2, 3]
    for request in (FIO.NREAD, FIO.NBIO, FIO.ASYNC, SIOC.GIFFLAGS, SIOC.SIFFLAGS, TIOCGPTN):
        with pytest.raises(TypeError):
            await pair.second.ioctl(request, id(victim))
    assert victim == [1, 2, 3]
    # And a request that takes no argument refuses a pointer and an int.
    with pytest.raises(TypeError):
        await pair.second.ioctl(FIO.CLEX, await thread.ptr(Int32(0)))
    with pytest.raises(ValueError):
        await pair.second.ioctl(FIO.CLEX, id(victim))
    await still_works(thread)


async def test_unknown_requests_refused(thread: Thread) -> None:
    """A request the library does not know and whose number says nothing
    about its argument is refused before any syscall, naming the hatch."""
    pipe = await thread.pipe()
    for request in (termios.TCGETS, termios.TIOCGWINSZ, 0x8946, TIOCGPTPEER):
        # An unencoded tty request, SIOCETHTOOL (its ifreq holds a
        # pointer), and an _IO one: they look alike.
        with pytest.raises(ValueError, match="unsafe_ioctl"):
            await pipe.read.ioctl(request)
        with pytest.raises(ValueError, match="unsafe_ioctl"):
            await pipe.read.ioctl(request, await thread.malloc(bytes, 64))
    for bad in (-1, 1 << 32):
        with pytest.raises(ValueError):
            await pipe.read.ioctl(bad)
        with pytest.raises(ValueError):
            await pipe.read.unsafe_ioctl(bad)
    with pytest.raises(TypeError):
        await pipe.read.unsafe_ioctl(termios.TCGETS, await thread.malloc(bytes, 64))  # type: ignore[arg-type]
    await still_works(thread)


def test_ioc_encoding() -> None:
    assert TIOCGPTN == 0x80045430 and TIOCSPTLCK == 0x40045431 and TIOCGPTPEER == 0x5441
    assert ioc_dir(TIOCGPTN) == IOC.READ and ioc_size(TIOCGPTN) == 4
    assert ioc_dir(TIOCSPTLCK) == IOC.WRITE and ioc_dir(TIOCGPTPEER) == IOC.NONE
    assert ioc_dir(ioc(IOC.READ | IOC.WRITE, 1, 2, 3)) == 3
    for bad in ((4, 0, 0, 0), (0, 256, 0, 0), (0, 0, 256, 0), (0, 0, 0, 1 << 14)):
        with pytest.raises(ValueError):
            ioc(*bad)


async def test_encoded_requests_take_their_size(thread: Thread) -> None:
    """An _IOC-encoded request the table does not have: its number gives
    the direction and size.  TIOCGPTN writes the pty number, TIOCSPTLCK
    reads whether the slave is locked."""
    ptmx = await thread.task.open(await thread.ptr("/dev/ptmx"), O.RDWR | O.NOCTTY)
    with pytest.raises(ValueError):
        await ptmx.ioctl(TIOCGPTN, await thread.malloc(bytes, 3))
    result, number_ptr = await ptmx.ioctl(TIOCGPTN, await thread.malloc(bytes, 16))
    assert result == 0 and number_ptr.size() == 4  # the room past what it wrote is released
    (number,) = struct.unpack("I", await number_ptr.read())
    slave = f"/dev/pts/{number}"
    assert os.path.exists(slave)
    with pytest.raises(OSError) as info:  # a new pty starts locked
        os.close(os.open(slave, os.O_RDWR | os.O_NOCTTY))
    assert info.value.errno == errno.EIO
    with pytest.raises(TypeError):  # an _IOW request reads: it needs initialized memory
        await ptmx.ioctl(TIOCSPTLCK, await thread.malloc(Int32))
    unlock = await thread.ptr(Int32(0))
    result, back = await ptmx.ioctl(TIOCSPTLCK, unlock)
    assert result == 0 and back is unlock and not unlock.consumed
    os.close(os.open(slave, os.O_RDWR | os.O_NOCTTY))
    await ptmx.close()


async def test_unsafe_ioctl_legitimate_uses(thread: Thread) -> None:
    """The hatch still does what the refused requests are for: TCGETS into
    memory we own, and TIOCGPTPEER, whose argument is an int of flags."""
    ptmx = await thread.task.open(await thread.ptr("/dev/ptmx"), O.RDWR | O.NOCTTY)
    await ptmx.ioctl(TIOCSPTLCK, await thread.ptr(Int32(0)))
    buf = await thread.malloc(bytes, 64)  # the kernel's struct termios is 36 bytes
    assert await ptmx.unsafe_ioctl(termios.TCGETS, buf.address) == 0
    # Memory the kernel wrote behind the library's back: read it directly.
    iflag, oflag, cflag, lflag = struct.unpack("IIII", read_memory(thread, buf.address, 16))
    del buf
    with borrowed_fd(thread, ptmx) as ours:
        assert [iflag, oflag, cflag, lflag] == termios.tcgetattr(ours)[:4]
    number = await ptmx.unsafe_ioctl(TIOCGPTPEER, O.RDWR | O.NOCTTY | O.CLOEXEC)
    peer = thread.task.make_fd(number)
    with borrowed_fd(thread, peer) as ours:
        assert os.isatty(ours)
    assert cloexec(thread, peer)
    _, pty_ptr = await ptmx.ioctl(TIOCGPTN, await thread.malloc(bytes, 4))
    (pty,) = struct.unpack("I", await pty_ptr.read())
    with borrowed_fd(thread, peer) as ours:
        assert os.ttyname(ours) == f"/dev/pts/{pty}"
    await peer.write(await thread.ptr(b"x"))
    await peer.close()
    await ptmx.close()


async def test_sioc_table(thread: Thread) -> None:
    """The SIOC requests through the generic method: a get consumes and
    returns the Ifreq, a set only reads it; both need an initialized Ifreq."""
    child = await thread.clone(CLONE.NEWUSER | CLONE.NEWNET)
    try:
        sock = await child.task.socket(AF.INET, SOCK.DGRAM)
        ifr = await child.ptr(Ifreq("lo"))
        _, got = await sock.ioctl(SIOC.GIFFLAGS, ifr)
        assert ifr.consumed
        flags = (await got.read()).flags
        assert not flags & 1  # IFF_UP: a new namespace's loopback is down
        up = await child.ptr(Ifreq("lo", flags=flags | 1))
        _, same = await sock.ioctl(SIOC.SIFFLAGS, up)
        assert same is up and not up.consumed
        _, got = await sock.ioctl(SIOC.GIFFLAGS, got)
        assert (await got.read()).flags & 1
        with pytest.raises(TypeError):
            await sock.ioctl(SIOC.GIFFLAGS, await child.malloc(Ifreq))
        with pytest.raises(TypeError):
            await sock.ioctl(SIOC.GIFFLAGS, await child.ptr(Int32(0)))
        with pytest.raises(ValueError):
            await sock.ioctl(SIOC.GIFFLAGS, await child.ptr(bytes(39)))
    finally:
        await child.exit(0)
