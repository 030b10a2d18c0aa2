"""What is particular to a child thread.  The header modules' tests run on
every kind of thread, a child among them, through the `thread` fixture
(conftest.py); these check what sets a child apart from the Python
process: its own fd table, working directory and signal mask, the memory
it shares with us, and fds passed between it and us."""

from __future__ import annotations

import os
import signal as stdlib_signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rsyscall import ChildThread, Thread, local_thread
from rsyscall.fcntl import SEAL, F, O
from rsyscall.signal import SIG, Sigset
from rsyscall.sys.mman import MAP, MFD, PROT
from rsyscall.sys.signalfd import AsyncSignalQueue
from rsyscall.sys.socket import AF, SOCK, CmsgList, CmsgSCMRights, RecvMsghdr, SendMsghdr
from rsyscall.sys.uio import IovecList

from .util import blocked_signals, fd_targets, thread_cwd

pytestmark = pytest.mark.anyio


@pytest.fixture
async def child() -> AsyncIterator[ChildThread]:
    thread = await local_thread.clone()
    yield thread
    await thread.exit(0)


async def test_cwd_and_fds_are_the_childs_own(child: ChildThread, tmp_path: Path) -> None:
    directory = os.fspath(tmp_path)
    await child.task.chdir(await child.ptr(directory))
    assert thread_cwd(child) == directory
    assert os.readlink("/proc/self/cwd") != directory  # ours is untouched
    fd = await child.task.open(await child.ptr("file"), O.RDWR | O.CREAT, 0o600)
    # The fd is in the child's table, not ours.
    assert (await fd_targets(child))[fd.number] == f"{directory}/file"
    ours = await fd_targets(local_thread)
    assert ours.get(fd.number) != f"{directory}/file"
    # Onto one of the fds it got at clone: its stdin, not ours.
    await (await fd.dup()).dup2(child.stdin)
    assert (await fd_targets(child))[0] == f"{directory}/file"
    assert (await fd_targets(local_thread)).get(0) != f"{directory}/file"
    number = fd.number
    await fd.close()
    assert number not in await fd_targets(child)


async def test_uio_and_fd_passing_from_child_to_local() -> None:
    carrier = await local_thread.socketpair(AF.UNIX, SOCK.STREAM)
    child = await local_thread.clone()
    child_carrier = child.inherit_fd(carrier.second)
    # A socketpair made in the child; one end is sent to us over SCM_RIGHTS.
    pair = await child.socketpair(AF.UNIX, SOCK.STREAM)
    iov = await child.ptr(IovecList([await child.ptr(b"ab"), await child.ptr(b"cd")]))
    control = await child.ptr(CmsgList([CmsgSCMRights([pair.second])]))
    sent, unsent = await child_carrier.sendmsg(await child.ptr(SendMsghdr(None, iov, control)))
    assert [p.size() for p in sent] == [2, 2] and unsent == []
    iov = await local_thread.ptr(IovecList([await local_thread.malloc(bytes, 3),
                                            await local_thread.malloc(bytes, 3)]))
    room = await local_thread.ptr(CmsgList([CmsgSCMRights([carrier.first])]))
    valid, rest, header = await carrier.first.recvmsg(
        await local_thread.ptr(RecvMsghdr(None, iov, room)))
    assert b"".join([await p.read() for p in valid]) == b"abcd"
    assert [p.size() for p in rest] == [2]
    out = await header.read()
    assert out.control is not None
    ours = (await out.control.read())[0][0]
    # What we write into the passed end, the child reads from the other,
    # with readv into two buffers.
    await ours.write(await local_thread.ptr(b"back!"))
    filled, left = await pair.first.readv(await child.ptr(IovecList([
        await child.malloc(bytes, 2), await child.malloc(bytes, 8)])))
    assert b"".join([await p.read() for p in filled]) == b"back!"
    assert [p.size() for p in left] == [5]
    await child.exit(0)


async def test_child_mapping_is_in_our_memory(child: ChildThread) -> None:
    task = child.task
    memfd = await task.memfd_create(await child.ptr("child-memfd"), MFD.ALLOW_SEALING)
    await memfd.ftruncate(4096)
    await memfd.fcntl(F.ADD_SEALS, SEAL.SHRINK)  # so that mapping.pointer() cannot fault
    mapping = await task.mmap(4096, PROT.READ | PROT.WRITE, MAP.SHARED, memfd)
    # The child shares our memory: its mapping is in our address space too.
    with open("/proc/self/maps") as maps:
        assert f"{mapping.address:x}-" in maps.read()
    await memfd.pwrite(await child.ptr(b"shared"), 0)
    pointer = mapping.pointer()
    assert (await pointer.read())[:6] == b"shared"
    del pointer
    await mapping.munmap()


async def test_signal_mask_is_the_childs_own(child: ChildThread) -> None:
    queue = await AsyncSignalQueue.make(child, Sigset({SIG.USR1}))
    # The child's mask, not ours, blocks SIGUSR1.
    assert stdlib_signal.SIGUSR1 in blocked_signals(child)
    assert stdlib_signal.SIGUSR1 not in stdlib_signal.pthread_sigmask(stdlib_signal.SIG_BLOCK, [])
    await child.process.kill(SIG.USR1)
    info = await queue.read()
    assert info.signo == SIG.USR1 and info.pid == os.getpid()
    await queue.close()
    assert stdlib_signal.SIGUSR1 not in blocked_signals(child)


async def test_a_close_from_a_finalizer_never_takes_a_calls_answer(thread: Thread) -> None:
    """A handle's finalizer (gc) can run in the middle of sending a call,
    at any allocation, and closes its fd through the same connection.  That
    close is sent behind the call, so the call still gets its own answer.
    (The finalizer is made to run at a known point: while the call's
    arguments are packed, by an argument whose __index__ drops the last
    handle of an fd.)"""
    from rsyscall.near.sysnum import SYS

    from .util import thread_pid

    pid = await thread.task.getpid()
    before = len(os.listdir(f"/proc/{thread_pid(thread)}/fd"))
    base = await thread.task.open(await thread.ptr("/dev/null"), O.RDONLY)

    class DropsAHandle:
        def __init__(self, handle: object) -> None:
            self.handle: object = handle

        def __index__(self) -> int:
            self.handle = None  # its last reference: closed now, from __del__
            return 0

    for _ in range(20):
        copy = await base.fcntl(F.DUPFD_CLOEXEC, 0)
        argument = DropsAHandle(copy)
        del copy
        assert await thread.task.sysif.syscall(SYS.getpid, argument) == pid  # type: ignore[arg-type]
        assert await thread.task.getpid() == pid
    await base.close()
    await thread.task.getpid()
    assert len(os.listdir(f"/proc/{thread_pid(thread)}/fd")) <= before
