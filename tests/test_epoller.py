"""The epoll loop and AsyncFileDescriptor, on every kind of thread."""

from __future__ import annotations

import os
import time

import anyio
import pytest

from rsyscall import Thread
from rsyscall.epoller import AsyncFileDescriptor, FDClosedWhileWaiting
from rsyscall.fcntl import O
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sys.socket import AF, SOCK, Sockaddr
from rsyscall.unistd import Pipe

from .util import thread_fds

pytestmark = pytest.mark.anyio


async def nonblocking_pipe(thread: Thread) -> tuple[AsyncFileDescriptor, AsyncFileDescriptor]:
    pipe = await (await thread.task.pipe(await thread.malloc(Pipe), O.NONBLOCK)).read()
    return await thread.make_afd(pipe.read), await thread.make_afd(pipe.write)


async def test_reader_waits_idle_and_wakes_on_write(thread: Thread) -> None:
    reader, writer = await nonblocking_pipe(thread)
    result: list[bytes] = []

    async def read() -> None:
        result.append(await reader.read_some_bytes())

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        cpu_before = time.process_time()
        wall_before = time.monotonic()
        await anyio.sleep(0.3)
        cpu = time.process_time() - cpu_before
        assert not result
        await writer.write_all_bytes(b"wake up")
    assert result == [b"wake up"]
    assert time.monotonic() - wall_before >= 0.3
    # A busy loop would burn the whole 0.3 s of CPU.
    assert cpu < 0.05, f"waiting used {cpu:.3f}s of CPU"
    await reader.close()
    await writer.close()


async def test_one_mebibyte_with_cancellation_midway(thread: Thread) -> None:
    reader, writer = await nonblocking_pipe(thread)
    data = os.urandom(1 << 20)
    received = bytearray()

    # A wait cancelled before anything arrives loses nothing and breaks nothing.
    with anyio.move_on_after(0.05) as scope:
        received += await reader.read_some_bytes(65536)
    assert scope.cancelled_caught and not received

    async def write() -> None:
        await writer.write_all_bytes(data)
        await writer.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        while True:
            # Cancel some reads part-way through their wait; the data must
            # still all arrive, in order.
            with anyio.move_on_after(0.0005):
                chunk = await reader.read_some_bytes(65536)
                if not chunk:
                    break
                received += chunk
    assert bytes(received) == data
    await reader.close()


async def test_close_wakes_waiter_with_clear_error(thread: Thread) -> None:
    reader, writer = await nonblocking_pipe(thread)
    errors: list[BaseException] = []

    async def wait_forever() -> None:
        try:
            await reader.read_some_bytes()
        except FDClosedWhileWaiting as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_forever)
        await anyio.sleep(0.05)
        await reader.close()
    assert len(errors) == 1
    with pytest.raises(FDClosedWhileWaiting):
        await reader.read_some_bytes()
    await writer.close()


async def test_many_waiters_many_fds(thread: Thread) -> None:
    pairs = [await nonblocking_pipe(thread) for _ in range(50)]
    got: dict[int, bytes] = {}

    async def read(i: int, reader: AsyncFileDescriptor) -> None:
        got[i] = await reader.read_some_bytes()

    async with anyio.create_task_group() as tg:
        for i, (reader, _) in enumerate(pairs):
            tg.start_soon(read, i, reader)
        await anyio.sleep(0.05)
        for i, (_, writer) in reversed(list(enumerate(pairs))):
            await writer.write_all_bytes(str(i).encode())
    assert got == {i: str(i).encode() for i in range(50)}
    for reader, writer in pairs:
        await reader.close()
        await writer.close()


async def test_tcp_echo_server_with_anyio_clients(thread: Thread) -> None:
    listener = await thread.task.socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK)
    await listener.bind(await thread.ptr(SockaddrIn(0, "127.0.0.1")))
    await listener.listen(128)
    valid, _ = await listener.getsockname(await thread.malloc(Sockaddr))
    address = await valid.read()
    assert isinstance(address, SockaddrIn)
    server = await thread.make_afd(listener)

    async def echo(connection: AsyncFileDescriptor) -> None:
        while data := await connection.read_some_bytes(65536):
            await connection.write_all_bytes(data)
        await connection.close()

    async def serve(tg: anyio.abc.TaskGroup) -> None:
        while True:
            fd = await server.accept(SOCK.NONBLOCK)
            tg.start_soon(echo, await thread.make_afd(fd))

    async def client(i: int) -> None:
        message = f"client {i} ".encode() * 100
        async with await anyio.connect_tcp("127.0.0.1", address.port) as stream:
            await stream.send(message)
            received = b""
            while len(received) < len(message):
                received += await stream.receive()
            assert received == message

    async with anyio.create_task_group() as server_tg:
        server_tg.start_soon(serve, server_tg)
        async with anyio.create_task_group() as clients:
            for i in range(100):
                clients.start_soon(client, i)
        server_tg.cancel_scope.cancel()
    await server.close()


async def test_connect_nonblocking_and_refused(thread: Thread) -> None:
    listener = await thread.task.socket(AF.INET, SOCK.STREAM)
    await listener.bind(await thread.ptr(SockaddrIn(0, "127.0.0.1")))
    await listener.listen(1)
    valid, _ = await listener.getsockname(await thread.malloc(Sockaddr))
    address = await valid.read()
    sock = await thread.make_afd(await thread.task.socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK))
    await sock.connect(await thread.ptr(address))
    await sock.close()
    # Nothing listens on the closed listener's port any more.
    await listener.close()
    refused = await thread.make_afd(
        await thread.task.socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK))
    with pytest.raises(ConnectionRefusedError):
        await refused.connect(await thread.ptr(address))
    await refused.close()


async def test_afd_churn_leaks_no_fds(thread: Thread) -> None:
    await nonblocking_pipe(thread)  # the epoll fd exists before we count
    before = await thread_fds(thread)
    for _ in range(300):
        reader, writer = await nonblocking_pipe(thread)
        await writer.write_all_bytes(b"x")
        assert await reader.read_some_bytes() == b"x"
        await reader.close()
        del writer  # garbage collected, not closed
    assert await thread_fds(thread) == before


async def test_make_afd_bad_input(thread: Thread) -> None:
    with pytest.raises(TypeError):
        await thread.make_afd(3)  # type: ignore[arg-type]
    reader, writer = await nonblocking_pipe(thread)
    with pytest.raises(ValueError):
        await reader.read_some_bytes(0)
    await writer.write_all_bytes(b"still works")
    assert await reader.read_some_bytes() == b"still works"


async def test_driving_is_handed_to_a_waiter_that_still_waits(thread: Thread) -> None:
    """When the driver and another waiter are both satisfied by one epoll
    wait, the driving must go to a waiter still waiting, not to one about
    to leave (a lost hand-off strands every other waiter)."""
    a_reader, a_writer = await nonblocking_pipe(thread)
    b_reader, b_writer = await nonblocking_pipe(thread)
    got: dict[str, bytes] = {}

    async def read(name: str, reader: AsyncFileDescriptor) -> None:
        got[name] = await reader.read_some_bytes(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, "driver", a_reader)  # first: it drives
        await anyio.sleep(0.02)
        tg.start_soon(read, "same fd", a_reader)  # waits behind, on the same fd
        await anyio.sleep(0.02)
        tg.start_soon(read, "other fd", b_reader)
        await anyio.sleep(0.02)
        await a_writer.write_all_bytes(b"xy")  # satisfies the first two
        await anyio.sleep(0.05)
        with anyio.fail_after(5):
            await b_writer.write_all_bytes(b"z")
            while "other fd" not in got:
                await anyio.sleep(0.01)
    assert sorted(got.values()) == [b"x", b"y", b"z"]
    for afd in (a_reader, a_writer, b_reader, b_writer):
        await afd.close()


async def test_epoll_create1_flags(thread: Thread) -> None:
    """epoll_create1 takes EPOLL_CREATE flags; every epoll fd is
    close-on-exec (the library's rule), and one works as an epoll fd."""
    from rsyscall.sys.epoll import EPOLL, EPOLL_CREATE, EPOLL_CTL, EpollEvent, EpollEventList

    from .util import cloexec, fd_path

    r, w = await nonblocking_pipe(thread)  # the thread's own epoller starts now
    await r.close()
    await w.close()
    before = await thread_fds(thread)
    for flags in (EPOLL_CREATE.NONE, EPOLL_CREATE.CLOEXEC):
        epfd = await thread.task.epoll_create1(flags)
        assert cloexec(thread, epfd)
        assert os.readlink(fd_path(thread, epfd)) == "anon_inode:[eventpoll]"
        r, w = await nonblocking_pipe(thread)
        await epfd.epoll_ctl(EPOLL_CTL.ADD, r.handle, await thread.ptr(EpollEvent(EPOLL.IN, 7)))
        await w.write_all_bytes(b"x")
        buf = await thread.malloc(EpollEventList, 2 * EpollEvent.sizeof())
        valid, _ = await epfd.epoll_wait(buf, 1000)
        assert [(e.events, e.data) for e in await valid.read()] == [(EPOLL.IN, 7)]
        await r.close()
        await w.close()
        await epfd.close()
    epfd = await thread.task.epoll_create1()  # the default
    assert cloexec(thread, epfd)
    await epfd.close()
    with pytest.raises(TypeError):
        await thread.task.epoll_create1(O.CLOEXEC)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await thread.task.epoll_create1(1)  # type: ignore[arg-type]
    assert await thread_fds(thread) == before
