"""The local thread's helpers never block the Python process: read_to_eof
and spit wait for readiness in the epoller (rsyscall.blockingio), leave
the O_NONBLOCK of the user's file alone, and a 50 ms ticker keeps ticking
while they wait on a slow peer.

The slow peers are OS threads (so that a helper that blocked the loop
would still finish, and fail on the tick count rather than hang)."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import socket
import termios
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from rsyscall import local_thread
from rsyscall.blockingio import LocalFile
from rsyscall.fcntl import F, O
from rsyscall.sys.socket import AF, SOCK

from .util import open_fds

pytestmark = pytest.mark.anyio

TICK = 0.05


@contextlib.asynccontextmanager
async def ticking() -> AsyncIterator[list[float]]:
    """A task that notes the time every TICK seconds, while the block runs."""
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            await anyio.sleep(TICK)
            ticks.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        yield ticks
        tg.cancel_scope.cancel()


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def check_ticked(ticks: list[float], start: float, end: float) -> None:
    """The ticker kept going: at least half the ticks the time allowed."""
    elapsed = end - start
    assert elapsed > 0.25  # the peer really was slow
    during = [t for t in ticks if start <= t <= end]
    assert len(during) >= elapsed / TICK / 2, (len(during), elapsed)


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    await local_thread.epoller()  # made once, on first use
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() == before


def feed_slowly(write: Callable[[bytes], object], pieces: list[bytes],
                then: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for piece in pieces:
            time.sleep(0.05)
            write(piece)
        then()

    return run


PIECES = [b"piece %d;" % i for i in range(8)]


# ---- read_to_eof ----


async def test_read_to_eof_pipe_fed_slowly(no_leaks: None) -> None:
    pipe = await local_thread.pipe()
    flags = await pipe.read.fcntl(F.GETFL)
    write_end = os.dup(pipe.write.number)
    await pipe.write.close()
    feeder = in_thread(feed_slowly(lambda b: os.write(write_end, b), PIECES,
                                   lambda: os.close(write_end)))
    async with ticking() as ticks:
        start = time.monotonic()
        data = await local_thread.read_to_eof(pipe.read, chunk=5)
        end = time.monotonic()
    feeder.join()
    assert data == b"".join(PIECES)
    check_ticked(ticks, start, end)
    assert await pipe.read.fcntl(F.GETFL) == flags  # still blocking
    assert os.get_blocking(pipe.read.number)
    await pipe.read.close()


async def test_read_to_eof_socket_fed_slowly(no_leaks: None) -> None:
    pair = await local_thread.socketpair(AF.UNIX, SOCK.STREAM)
    peer = socket.socket(fileno=os.dup(pair.second.number))
    await pair.second.close()
    feeder = in_thread(feed_slowly(peer.sendall, PIECES, peer.close))
    async with ticking() as ticks:
        start = time.monotonic()
        data = await local_thread.read_to_eof(pair.first)
        end = time.monotonic()
    feeder.join()
    assert data == b"".join(PIECES)
    check_ticked(ticks, start, end)
    assert os.get_blocking(pair.first.number)
    await pair.first.close()


async def test_read_to_eof_tty_fed_slowly(no_leaks: None) -> None:
    # A tty has no RWF_NOWAIT: this is the poll(2) way.
    master, slave_number = os.openpty()
    attrs = termios.tcgetattr(slave_number)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave_number, termios.TCSANOW, attrs)
    slave = local_thread.task.make_fd(slave_number)
    lines = [b"line %d\n" % i for i in range(8)]
    # ^D at the start of a line is end of file for a canonical tty.
    feeder = in_thread(feed_slowly(lambda b: os.write(master, b), lines,
                                   lambda: os.write(master, b"\x04")))
    async with ticking() as ticks:
        start = time.monotonic()
        data = await local_thread.read_to_eof(slave)
        end = time.monotonic()
    feeder.join()
    assert data == b"".join(lines)
    check_ticked(ticks, start, end)
    await slave.close()
    os.close(master)


async def test_read_to_eof_cancelled_leaves_the_fd_usable(no_leaks: None) -> None:
    pipe = await local_thread.pipe()
    with anyio.fail_after(5):
        with anyio.move_on_after(0.1) as scope:
            await local_thread.read_to_eof(pipe.read)
    assert scope.cancelled_caught
    os.write(pipe.write.number, b"after")
    await pipe.write.close()
    with anyio.fail_after(5):
        assert await local_thread.read_to_eof(pipe.read) == b"after"
    await pipe.read.close()


async def test_read_to_eof_fd_of_an_async_fd(no_leaks: None) -> None:
    # Non-blocking, and registered in the epoller already: still fine.
    pipe = await local_thread.pipe()
    afd = await local_thread.make_afd(pipe.read, set_nonblock=True)
    write_end = os.dup(pipe.write.number)
    await pipe.write.close()
    feeder = in_thread(feed_slowly(lambda b: os.write(write_end, b), PIECES[:4],
                                   lambda: os.close(write_end)))
    with anyio.fail_after(10):
        assert await local_thread.read_to_eof(afd.handle) == b"".join(PIECES[:4])
    feeder.join()
    assert not os.get_blocking(pipe.read.number)
    await afd.close()


async def test_read_to_eof_files_epoll_refuses(tmp_path: Path, no_leaks: None) -> None:
    null = await local_thread.task.open(await local_thread.ptr("/dev/null"), O.RDONLY)
    async with await LocalFile.make(local_thread, null) as file:
        assert not file.watched  # epoll_ctl says EPERM: read directly
    assert await local_thread.read_to_eof(null) == b""
    await null.close()
    status = await local_thread.task.open(await local_thread.ptr("/proc/self/status"), O.RDONLY)
    assert b"Pid:" in await local_thread.read_to_eof(status)
    await status.close()
    with pytest.raises(TypeError):
        await local_thread.read_to_eof(local_thread.stdin, chunk="64")  # type: ignore[arg-type]


# ---- writing: spit, write_all ----


def slow_reader(path: str, into: bytearray, delay: float = 0.0) -> Callable[[], None]:
    """Open the FIFO at `path` (after `delay`) and read it to the end,
    8 KiB every 10 ms."""

    def run() -> None:
        time.sleep(delay)
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                time.sleep(0.01)
                data = os.read(fd, 8192)
                if not data:
                    return
                into.extend(data)
        finally:
            os.close(fd)

    return run


async def test_spit_to_fifo_with_slow_reader(tmp_path: Path, no_leaks: None) -> None:
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    data = os.urandom(512 << 10)
    got = bytearray()
    reader = in_thread(slow_reader(fifo, got))
    async with ticking() as ticks:
        start = time.monotonic()
        with anyio.fail_after(30):
            assert await local_thread.spit(fifo, data) == fifo
        end = time.monotonic()
    reader.join()
    assert bytes(got) == data
    check_ticked(ticks, start, end)


async def test_spit_to_fifo_waits_for_its_reader(tmp_path: Path, no_leaks: None) -> None:
    # No reader yet: the open waits for one, in a child process.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = os.urandom(100 << 10)
    got = bytearray()
    reader = in_thread(slow_reader(str(fifo), got, delay=0.4))
    async with ticking() as ticks:
        start = time.monotonic()
        with anyio.fail_after(30):
            await local_thread.spit(fifo, data)
        end = time.monotonic()
    reader.join()
    assert bytes(got) == data
    check_ticked(ticks, start, end)


async def test_spit_to_fifo_without_reader_can_be_cancelled(
    tmp_path: Path, no_leaks: None
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    pid = os.getpid()
    children = Path(f"/proc/{pid}/task/{pid}/children")
    before = children.read_text().split()
    with anyio.fail_after(10):
        with anyio.move_on_after(0.2) as scope:
            await local_thread.spit(fifo, b"never read")
    assert scope.cancelled_caught
    # The waiting child is gone (killed, then reaped once dropped).
    gc.collect()
    await anyio.sleep(0.05)
    assert children.read_text().split() == before
    # A socket is no FIFO: its ENXIO stands.
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "sock"))
    with pytest.raises(OSError) as info:
        await local_thread.spit(tmp_path / "sock", b"x")
    assert info.value.errno == errno.ENXIO
    listener.close()


async def test_poll_way_on_a_blocking_pipe(no_leaks: None) -> None:
    # Where a pipe has no RWF_NOWAIT (older kernels): poll(2), then read(2)
    # or a write(2) of PIPE_BUF bytes at most.  Both ends blocking, and a
    # slow reader that is an OS thread.
    pipe = await local_thread.pipe()
    read_end = os.dup(pipe.read.number)
    await pipe.read.close()
    data = os.urandom(320 << 10)
    got = bytearray()

    def read_slowly() -> None:
        while chunk := os.read(read_end, 8192):
            time.sleep(0.01)
            got.extend(chunk)
        os.close(read_end)

    reader = in_thread(read_slowly)
    async with ticking() as ticks:
        start = time.monotonic()
        async with await LocalFile.make(local_thread, pipe.write) as file:
            assert file.watched
            file._nowait = False
            with anyio.fail_after(30):
                await file.write_all(data)
        await pipe.write.close()
        reader.join()
        end = time.monotonic()
    assert bytes(got) == data
    check_ticked(ticks, start, end)

    pipe = await local_thread.pipe()
    write_end = os.dup(pipe.write.number)
    await pipe.write.close()
    feeder = in_thread(feed_slowly(lambda b: os.write(write_end, b), PIECES,
                                   lambda: os.close(write_end)))
    parts = []
    async with ticking() as ticks:
        start = time.monotonic()
        async with await LocalFile.make(local_thread, pipe.read) as file:
            file._nowait = False
            while piece := await file.read(3):
                parts.append(piece)
        end = time.monotonic()
    feeder.join()
    assert b"".join(parts) == b"".join(PIECES)
    check_ticked(ticks, start, end)
    assert os.get_blocking(pipe.read.number)
    await pipe.read.close()
