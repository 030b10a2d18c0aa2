"""Cancellation that works in children, and loses nothing.

A cancelled call whose syscall blocks in a child is interrupted (EINTR) and
the cancellation raised at once; one that completed anyway is delivered,
and the cancellation comes at the next checkpoint; one that had not
started is skipped by the server.  The connection never desynchronizes.
This holds for anyio cancel scopes and for the loops' native cancellation
(asyncio's Task.cancel and wait_for), and for KeyboardInterrupt.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from rsyscall import ChildThread, local_thread
from rsyscall.fcntl import O
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sys.socket import AF, SOCK
from rsyscall.time import Timespec
from rsyscall.unistd import Pipe

from .util import open_fds

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def child() -> AsyncIterator[ChildThread]:
    thread = await local_thread.clone()
    yield thread
    await thread.exit(0)


async def child_pipe(child: ChildThread) -> Pipe:
    return await (await child.task.pipe(await child.malloc(Pipe))).read()


async def test_move_on_after_interrupts_a_blocking_read(child: ChildThread) -> None:
    pipe = await child_pipe(child)
    buf = await child.malloc(bytes, 16)
    start = time.monotonic()
    with anyio.move_on_after(0.3) as scope:
        await pipe.read.read(buf)
    elapsed = time.monotonic() - start
    assert scope.cancelled_caught
    assert elapsed < 1.0
    # Nothing happened: the buffer is ours again, and the connection is in sync.
    assert not buf.consumed
    assert await child.task.getpid() == child.process.pid
    await pipe.write.write(await child.ptr(b"later"))
    valid, _ = await pipe.read.read(buf)
    assert await valid.read() == b"later"


async def test_fail_after_interrupts_accept(child: ChildThread) -> None:
    sock = await child.task.socket(AF.INET, SOCK.STREAM)
    await sock.bind(await child.ptr(SockaddrIn(0, "127.0.0.1")))
    await sock.listen(1)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            await sock.accept()
    assert time.monotonic() - start < 1.0
    assert await child.task.getpid() == child.process.pid


async def test_interrupted_sleep_returns_at_once(child: ChildThread) -> None:
    # clock_nanosleep blocks in the child for 5 s; cancelled after 0.1 s it
    # must not take the rest of the 5 s.
    request = await child.ptr(Timespec(5, 0))
    start = time.monotonic()
    with anyio.move_on_after(0.1):
        await child.task.nanosleep(request)
    assert time.monotonic() - start < 1.0
    assert await child.task.getpid() == child.process.pid


async def test_a_queued_call_is_skipped_behind_a_blocking_one() -> None:
    """A call queued behind another coroutine's blocking call is cancelled
    at once (the server is told to skip it); the blocking call goes on."""
    pipe = await local_thread.pipe()
    child = await local_thread.clone()
    child_read = child.inherit_fd(pipe.read)
    got: list[bytes] = []

    async def reader() -> None:
        valid, _ = await child_read.read(await child.malloc(bytes, 16))
        got.append(await valid.read())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.05)  # the read is blocking in the child now
        start = time.monotonic()
        with anyio.move_on_after(0.05) as scope:
            await child.task.getpid()  # queued behind the read
        assert scope.cancelled_caught
        assert time.monotonic() - start < 0.5
        # The reader was not disturbed: it gets what is written next.
        await pipe.write.write(await local_thread.ptr(b"data"))
    assert got == [b"data"]
    assert await child.task.getpid() == child.process.pid
    await child.exit(0)


async def test_a_completed_call_is_delivered_then_cancelled(child: ChildThread) -> None:
    """If the syscall finished before the cancellation reached it, its result
    is returned, and the cancellation comes at the next checkpoint."""
    pipe = await child_pipe(child)
    await pipe.write.write(await child.ptr(b"ready"))
    buf = await child.malloc(bytes, 16)
    delivered: list[bytes] = []
    with anyio.CancelScope() as scope:

        async def cancel_once_answered() -> None:
            await anyio.lowlevel.checkpoint()  # the read's request is sent
            time.sleep(0.05)  # the loop stands still; the child answers
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once_answered)
            valid, _ = await pipe.read.read(buf)
            delivered.append(await valid.read())
            await anyio.sleep(0.05)  # the next checkpoint that waits
            delivered.append(b"not reached")
    assert scope.cancelled_caught
    assert delivered == [b"ready"]
    assert await child.task.getpid() == child.process.pid


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_cancellation_loses_no_data(child: ChildThread) -> None:
    """wait_for and Task.cancel, not anyio scopes, over 1000 reads: on a
    child's blocking pipe, a child's AsyncFileDescriptor and a local one.
    A cancelled read either returns its data (wait_for then returns it) or
    did nothing (the buffer is ours again): no byte is lost or read twice."""
    import random

    rng = random.Random(7)
    blocking = await child_pipe(child)
    child_async = await (await child.task.pipe(await child.malloc(Pipe), O.NONBLOCK)).read()
    child_reader = await child.make_afd(child_async.read)
    local_pipe = await local_thread.pipe()
    local_reader = await local_thread.make_afd(local_pipe.read, set_nonblock=True)
    cases = [
        (child, blocking.write, blocking.read.read),
        (child, child_async.write, child_reader.read),
        (local_thread, local_pipe.write, local_reader.read),
    ]
    for thread, writer, read in cases:
        received = bytearray()
        sent = bytearray()
        buf = await thread.malloc(bytes, 64)
        cancelled = 0
        for i in range(334):
            message = b"%d," % i
            if rng.random() < 0.7:
                await writer.write(await thread.ptr(message))
                sent += message
            if rng.random() < 0.5:
                try:
                    valid, rest = await asyncio.wait_for(read(buf), rng.random() * 0.003)
                except TimeoutError:
                    assert not buf.consumed
                    cancelled += 1
                    continue
            else:
                task = asyncio.ensure_future(read(buf))
                await asyncio.sleep(rng.random() * 0.003)
                task.cancel()
                try:
                    valid, rest = await task
                except asyncio.CancelledError:
                    assert not buf.consumed
                    cancelled += 1
                    continue
            received += await valid.read()
            buf = valid + rest
        assert cancelled > 0
        while len(received) < len(sent):
            valid, rest = await read(buf)
            received += await valid.read()
            buf = valid + rest
        assert bytes(received) == bytes(sent)
    await local_reader.close()
    await child_reader.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_task_cancel_interrupts_and_is_not_lost(child: ChildThread) -> None:
    pipe = await child_pipe(child)
    buf = await child.malloc(bytes, 16)

    async def blocked() -> None:
        await pipe.read.read(buf)

    task = asyncio.ensure_future(blocked())
    await asyncio.sleep(0.05)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 1.0
    assert not buf.consumed
    assert await child.task.getpid() == child.process.pid


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_cancel_of_a_completed_call_comes_back_at_the_next_wait(
    child: ChildThread,
) -> None:
    """asyncio's Task.cancel reaching a call that completed anyway: the
    result is returned, and the task is cancelled when it next waits."""
    steps: list[str] = []

    async def body() -> None:
        pid = await child.task.getpid()
        steps.append(f"got {pid == child.process.pid}")
        await asyncio.sleep(1)
        steps.append("not reached")

    task = asyncio.ensure_future(body())
    await asyncio.sleep(0)  # the request is sent; the answer is on its way
    time.sleep(0.02)  # answered meanwhile
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["got True"]


async def test_cancellation_storm_on_child_and_local(child: ChildThread) -> None:
    """1000 reads, on a child's blocking pipe and on local and child
    AsyncFileDescriptors, cancelled at random points: every byte written
    is read exactly once, in order, and nothing leaks."""
    import gc
    import random

    rng = random.Random(1234)
    await child.epoller()
    await local_thread.epoller()
    # Closes of handles dropped before (the fixture's setup) are queued and
    # go with the next call: run them before taking the snapshot.
    gc.collect()
    await child.task.getpid()
    fds_before = open_fds()
    child_fds_before = set(os.listdir(f"/proc/{child.process.pid}/fd"))

    async def storm(thread: object, writer: object, read: object, name: str) -> None:
        sent = bytearray()
        received = bytearray()
        buf = await thread.malloc(bytes, 32)  # type: ignore[attr-defined]
        cancelled = 0
        for i in range(334):
            message = b"%s%d;" % (name.encode(), i)
            if rng.random() < 0.6:
                await _write(thread, writer, message)
                sent.extend(message)
            with anyio.move_on_after(rng.random() * 0.002) as scope:
                valid, rest = await read(buf)  # type: ignore[operator]
                received.extend(await valid.read())
                buf = valid + rest
            cancelled += scope.cancelled_caught
            assert not buf.consumed
        while len(received) < len(sent):
            valid, rest = await read(buf)  # type: ignore[operator]
            received.extend(await valid.read())
            buf = valid + rest
        assert bytes(received) == bytes(sent), name
        assert cancelled > 0, name

    blocking = await child_pipe(child)
    await storm(child, blocking.write, blocking.read.read, "blocking")
    local_pipe = await local_thread.pipe()
    local_reader = await local_thread.make_afd(local_pipe.read, set_nonblock=True)
    await storm(local_thread, local_pipe.write, local_reader.read, "local")
    child_async = await (await child.task.pipe(await child.malloc(Pipe), O.NONBLOCK)).read()
    child_reader = await child.make_afd(child_async.read)
    await storm(child, child_async.write, child_reader.read, "async")
    assert await child.task.getpid() == child.process.pid
    await local_reader.close()
    await child_reader.close()
    del blocking, child_async, local_pipe, local_reader, child_reader
    # trio keeps the last Cancelled (and the frames holding handles) until
    # the next cancellation: make one.
    with anyio.move_on_after(0):
        await anyio.sleep(1)
    gc.collect()
    assert await child.task.getpid() == child.process.pid  # flushes deferred closes
    assert set(os.listdir(f"/proc/{child.process.pid}/fd")) == child_fds_before
    assert open_fds() == fds_before


async def _write(thread: object, fd: object, data: bytes) -> None:
    await fd.write(await thread.ptr(data))  # type: ignore[attr-defined]


def run_script(body: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_while_waiting_on_a_child(backend: str) -> None:
    """SIGINT (Ctrl-C) while the program waits for a child's blocking read:
    the program stops promptly with KeyboardInterrupt, the child with it."""
    proc = run_script(f"""
        import anyio, sys
        from rsyscall import local_thread
        from rsyscall.unistd import Pipe
        async def main():
            child = await local_thread.clone()
            print(child.process.pid, flush=True)
            pipe = await (await child.task.pipe(await child.malloc(Pipe))).read()
            await pipe.read.read(await child.malloc(bytes, 8))
        try:
            anyio.run(main, backend={backend!r})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """)
    assert proc.stdout is not None
    child_pid = int(proc.stdout.readline())
    time.sleep(0.3)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - start < 2.0
    assert "interrupted" in out, err
    assert proc.returncode == 3
    # The child died with its parent (PR_SET_PDEATHSIG).
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child_pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{child_pid}/exe") or _zombie(child_pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def test_a_call_in_a_cancelled_scope_is_not_made(child: ChildThread) -> None:
    """Calls that complete without waiting (the server answers at once)
    are still cancellation points: in a cancelled scope nothing is sent."""
    pipe = await child.pipe()
    data = await child.ptr(b"x")
    with anyio.CancelScope() as scope:
        scope.cancel()
        for _ in range(3):
            await pipe.write.write(data)
    buf = await child.malloc(bytes, 1)
    await pipe.write.close()
    assert await (await pipe.read.read(buf))[0].read() == b""


async def test_quick_calls_let_other_tasks_run(child: ChildThread) -> None:
    """A loop of calls that never wait for the event loop still gives the
    other tasks their turn, and a cancellation reaches it."""
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.sleep(0)

    calls = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        with anyio.move_on_after(0.3):
            while True:
                await child.task.getpid()
                calls += 1
        tg.cancel_scope.cancel()
    assert calls > 100
    assert turns > calls // 32
