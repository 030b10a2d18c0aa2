"""Threads in stub processes: separate address spaces, the stdin bootstrap,
exec'd stubs (StubServer), channels; and what goes wrong at bootstrap."""

from __future__ import annotations

import gc
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from rsyscall import Command, SyscallHangup, local_thread
from rsyscall.fcntl import O
from rsyscall.sys.socket import AF, SOCK, CmsgList, CmsgSCMRights, RecvMsghdr, SendMsghdr
from rsyscall.sys.uio import IovecList
from rsyscall.tasks.remote_memory import SocketMemoryTransport
from rsyscall.tasks.stdin_bootstrap import BootstrapError, stdin_bootstrap, stdin_bootstrap_path
from rsyscall.tasks.stub import StubServer, StubThread, stub_path

from .util import mapping_count, open_fds

pytestmark = pytest.mark.anyio


async def start_stub() -> tuple[object, StubThread]:
    path = await stdin_bootstrap_path(local_thread)
    command = local_thread.environ.sh.args("-c", 'exec "$0"', path)
    return await stdin_bootstrap(local_thread, command)


@pytest.fixture
async def stub() -> AsyncIterator[StubThread]:
    process, thread = await start_stub()
    yield thread
    del thread
    gc.collect()
    if process.state is None:  # type: ignore[attr-defined]
        await process.kill()  # type: ignore[attr-defined]
    await process.waitpid()  # type: ignore[attr-defined]


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return {int(child) for child in children.read().split()}


def test_the_stub_is_static_and_small() -> None:
    data = stub_path().read_bytes()
    assert data[:4] == b"\x7fELF"
    assert len(data) < 64 * 1024  # well under 512 KiB
    # Program header types: no PT_INTERP (3) and no PT_DYNAMIC (2).
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}
    assert 1 in types and 2 not in types and 3 not in types
    result = subprocess.run([str(stub_path())], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "bootstrap" in result.stderr


async def test_the_stub_maps_no_libc_and_no_python(stub: StubThread) -> None:
    with open(f"/proc/{stub.task.pid}/maps") as maps:
        text = maps.read()
    assert "libc" not in text and "python" not in text and "ld-linux" not in text
    assert os.readlink(f"/proc/{stub.task.pid}/exe") == str(stub_path())
    assert await stub.task.getpid() == stub.task.pid


@pytest.mark.parametrize("way", ["direct", "socket"])
async def test_memory_round_trips(stub: StubThread, way: str) -> None:
    """Both ways of copying: process_vm_readv/writev where we may (a stub
    of ours on this host), the data socket where we may not (ssh, another
    user): forced here by switching the fast path off."""
    transport = stub.task.space.transport
    assert isinstance(transport, SocketMemoryTransport)
    assert transport.direct_pid is not None  # a stub of ours: we may
    if way == "socket":
        transport.direct_pid = None
    for size in (1, 7, 4096, 65537, 1 << 20, 16 << 20):
        data = os.urandom(size)
        ptr = await stub.ptr(data)
        assert await ptr.read() == data
        # Not in our memory: the address is the stub's.
        assert stub.task.space is not local_thread.task.space
    # Structs and split/merge work the same.
    buf = await stub.malloc(bytes, 10)
    written = await buf.write(b"0123456789")
    first, second = written.split(4)
    assert await first.read() == b"0123" and await second.read() == b"456789"
    assert await (first + second).read() == b"0123456789"


async def test_fd_passing_through_channels(stub: StubThread) -> None:
    [(ours, theirs)] = await stub.open_channels(1)
    pipe = await local_thread.pipe()
    # Send our pipe's write end to the stub over the channel...
    iov = await local_thread.ptr(IovecList([await local_thread.ptr(b"x")]))
    cmsgs = await local_thread.ptr(CmsgList([CmsgSCMRights([pipe.write])]))
    await ours.sendmsg(await local_thread.ptr(SendMsghdr(None, iov, cmsgs)))
    iov = await stub.ptr(IovecList([await stub.malloc(bytes, 1)]))
    room = await stub.ptr(CmsgList([CmsgSCMRights([theirs])]))
    _, _, header = await theirs.recvmsg(await stub.ptr(RecvMsghdr(None, iov, room)))
    (passed,), = await (await header.read()).control.read()  # type: ignore[union-attr,misc]
    # ... and write through it from the stub.
    await pipe.write.close()
    await passed.write(await stub.ptr(b"through the stub"))
    await passed.close()
    assert await local_thread.read_to_eof(pipe.read) == b"through the stub"


async def test_clone_and_exec_from_a_stub(stub: StubThread) -> None:
    pipe = await stub.pipe()
    child = await stub.clone()
    assert child.task.space is stub.task.space  # shares the stub's memory
    assert await child.task.getppid() == stub.task.pid
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    process = await child.exec(local_thread.environ.sh.args("-c", "echo out; exit 3"))
    await pipe.write.close()
    assert await stub.read_to_eof(pipe.read) == b"out\n"
    assert (await process.waitpid()).exit_status == 3


async def test_an_afd_wait_in_the_stub_does_not_block_other_calls(stub: StubThread) -> None:
    pair = await stub.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    reader = await stub.make_afd(pair.first)
    got: list[bytes] = []
    async with anyio.create_task_group() as tg:
        async def read() -> None:
            got.append(await reader.read_some_bytes())

        tg.start_soon(read)
        await anyio.sleep(0.05)
        for _ in range(50):
            assert await stub.task.getpid() == stub.task.pid
        await (await stub.ptr(b"0" * 100)).read()
        assert got == []
        await pair.second.write(await stub.ptr(b"now"))
    assert got == [b"now"]


async def test_cancelling_a_blocking_call_in_the_stub(stub: StubThread) -> None:
    pipe = await stub.pipe()
    buf = await stub.malloc(bytes, 8)
    start = time.monotonic()
    with anyio.move_on_after(0.2):
        await pipe.read.read(buf)
    assert time.monotonic() - start < 1
    assert not buf.consumed
    assert await stub.task.getpid() == stub.task.pid


async def test_killing_the_stub_mid_call() -> None:
    process, stub = await start_stub()
    pipe = await stub.pipe()
    errors: list[BaseException] = []

    async def blocked() -> None:
        try:
            await pipe.read.read(await stub.malloc(bytes, 8))
        except BaseException as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked)
        await anyio.sleep(0.05)
        start = time.monotonic()
        os.kill(stub.task.pid, 9)
        with anyio.fail_after(1):
            while not errors:
                await anyio.sleep(0.005)
    assert time.monotonic() - start < 1
    assert isinstance(errors[0], SyscallHangup)
    with pytest.raises(SyscallHangup):
        await stub.task.getpid()
    with pytest.raises(SyscallHangup):
        await stub.ptr(b"memory too")
    assert (await process.waitpid()).killed_with() == 9  # type: ignore[attr-defined]


async def test_exec_of_the_stub_itself(stub: StubThread) -> None:
    process = stub.process
    assert process is not None
    await stub.exec(local_thread.environ.sh.args("-c", "exit 5"))
    assert (await process.waitpid()).exit_status == 5
    with pytest.raises(SyscallHangup):
        await stub.task.getpid()


async def test_many_stubs_leave_nothing_behind() -> None:
    await local_thread.epoller()
    await start_stub()  # warm up: arenas, the epoller
    gc.collect()
    fds_before = open_fds()
    ours_before = children_of(os.getpid())
    path = await stdin_bootstrap_path(local_thread)
    command = local_thread.environ.sh.args("-c", 'exec "$0"', path)
    maps_before = mapping_count()
    for _ in range(500):  # 1,000 with both event loops
        process, stub = await stdin_bootstrap(local_thread, command)
        assert await stub.task.getpid() == process.pid
        await (await stub.ptr(b"some memory")).read()
        del stub, process
    gc.collect()
    deadline = time.monotonic() + 5
    while children_of(os.getpid()) != ours_before and time.monotonic() < deadline:
        await anyio.sleep(0.01)
        gc.collect()
    assert children_of(os.getpid()) == ours_before
    assert open_fds() == fds_before
    assert mapping_count() <= maps_before


async def test_a_stub_server_hands_over_programs_that_exec_it(tmp_path: Path) -> None:
    server = await StubServer.make(local_thread, tmp_path, "fake-sendmail")
    assert os.access(tmp_path / "fake-sendmail", os.X_OK)
    results: list[object] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            command = Command(server.path, ["sendmail", "-t", "someone@example"])
            results.append(await local_thread.run(command, check=False))

        tg.start_soon(run)
        with anyio.fail_after(10):
            argv, thread = await server.accept()
        assert argv[1:] == ["-t", "someone@example"]
        assert thread.process is None
        assert await thread.task.getpid() == thread.task.pid
        await thread.exec(local_thread.environ.sh.args("-c", "exit 6"))
    assert results[0].exit_status == 6  # type: ignore[attr-defined]
    await server.close()


# ---- bad input from the other side ----


async def test_a_command_that_never_execs_the_stub() -> None:
    ours_before = children_of(os.getpid())
    sleep = await local_thread.environ.which("sleep")
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="stub"):
        await stdin_bootstrap(local_thread, sleep.args("100"), timeout=0.5)
    assert time.monotonic() - start < 5
    assert children_of(os.getpid()) == ours_before  # killed and reaped


async def test_a_command_that_exits_at_once() -> None:
    ours_before = children_of(os.getpid())
    with pytest.raises(BootstrapError, match="went away"):
        await stdin_bootstrap(local_thread, local_thread.environ.sh.args("-c", "exit 0"))
    assert children_of(os.getpid()) == ours_before


@pytest.mark.parametrize("answer", [
    b"garbage garbage garbage",  # truncated, then EOF
    b"x" * 200,  # wrong magic
    struct.pack("<14Q", struct.unpack("<Q", b"RSYSSTUB")[0], 99, *([0] * 12)),  # version
])
async def test_garbage_instead_of_a_description(answer: bytes, tmp_path: Path) -> None:
    """A program that reads its stdin (taking our bootstrap message) and
    writes something that is not a stub's description on the fd it got."""
    fds_before = open_fds()
    script = tmp_path / "liar.py"
    script.write_text(
        "import socket, sys\n"
        "s = socket.socket(fileno=0)\n"
        "msg, anc, flags, addr = s.recvmsg(8, socket.CMSG_SPACE(16))\n"
        "fds = [int.from_bytes(anc[0][2][i:i+4], 'little') for i in range(0, 16, 4)]\n"
        f"import os; os.write(fds[0], {answer!r})\n"
    )
    python = await local_thread.environ.which("python3")
    with pytest.raises(BootstrapError):
        await stdin_bootstrap(local_thread, python.args(str(script)), timeout=5)
    gc.collect()
    assert open_fds() == fds_before


async def test_the_stub_path_needs_a_thread_that_sees_it() -> None:
    child = await local_thread.clone()
    assert await stdin_bootstrap_path(child) == stub_path()
    with pytest.raises(FileNotFoundError):
        await child.task.chroot(await child.ptr("/proc"))
        await stdin_bootstrap_path(child)
    await child.exit(0)


async def test_a_stub_can_bootstrap_from_a_child(tmp_path: Path) -> None:
    child = await local_thread.clone()
    path = await stdin_bootstrap_path(child)
    process, stub = await stdin_bootstrap(child, child.environ.sh.args("-c", 'exec "$0"', path))
    assert await stub.task.getppid() == child.process.pid
    fd = await stub.task.open(await stub.ptr(str(tmp_path / "made-by-stub")), O.WRONLY | O.CREAT)
    await fd.close()
    assert (tmp_path / "made-by-stub").exists()
    del stub
    await process.kill()
    await process.waitpid()
    await child.exit(0)


async def test_a_blocked_signal_right_after_start_never_kills_the_stub() -> None:
    """The stub's interrupt helper thread takes no signal, even before it
    first runs: a process-directed signal that the server thread blocks
    stays pending (it once killed a stub whose helper had not yet been
    scheduled; CPU hogs make that wait long)."""
    from rsyscall.signal import SIG, HowSIG, Sigset

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for _ in range(40):
            process, stub = await start_stub()
            await stub.task.sigprocmask(HowSIG.BLOCK, await stub.ptr(Sigset([SIG.USR1])))
            os.kill(stub.task.pid, signal.SIGUSR1)
            assert await stub.task.getpid() == stub.task.pid
            del stub  # its connection ends: the stub exits, or our kill ends it
            try:
                await process.kill()  # type: ignore[attr-defined]
            except ProcessLookupError:
                pass
            state = await process.waitpid()  # type: ignore[attr-defined]
            assert state.killed_with() != SIG.USR1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
