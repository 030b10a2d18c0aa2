"""The header modules' syscalls on a child thread: the same calls that the
per-module tests make locally, here through the syscall connection, with
the child's own fd table, and checked from outside through /proc."""

from __future__ import annotations

import os
import signal as stdlib_signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from rsyscall import ChildThread, local_thread
from rsyscall.fcntl import SEAL, F, O
from rsyscall.linux.dirent import DirentList
from rsyscall.linux.memfd import MFD
from rsyscall.sched import CpuSet
from rsyscall.signal import SIG, HowSIG, Sigset
from rsyscall.struct import Int32
from rsyscall.sys.eventfd import EFD
from rsyscall.sys.inotify import IN, Inotify
from rsyscall.sys.mman import MAP, PROT
from rsyscall.sys.resource import RLIMIT, Rlimit
from rsyscall.sys.signalfd import AsyncSignalQueue
from rsyscall.sys.socket import AF, SOCK, CmsgList, CmsgSCMRights, RecvMsghdr, SendMsghdr
from rsyscall.sys.stat import Stat
from rsyscall.sys.timerfd import sleep
from rsyscall.sys.uio import IovecList
from rsyscall.time import CLOCK, Timespec
from rsyscall.unistd import SEEK, Pipe

pytestmark = pytest.mark.anyio


@pytest.fixture
async def child() -> AsyncIterator[ChildThread]:
    thread = await local_thread.clone()
    yield thread
    await thread.exit(0)


def fds_of(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


async def test_unistd_fcntl_stat_dirent(child: ChildThread, tmp_path: Path) -> None:
    task = child.task
    directory = os.fspath(tmp_path)
    await task.chdir(await child.ptr(directory))
    got, _ = await task.getcwd(await child.malloc(str, 4096))
    assert await got.read() == directory
    assert os.readlink(f"/proc/{child.process.pid}/cwd") == directory
    assert os.readlink("/proc/self/cwd") != directory  # ours is untouched
    await child.mkdir("sub")
    fd = await task.open(await child.ptr("file"), O.RDWR | O.CREAT, 0o600)
    # The fd is in the child's table, not ours.
    assert fds_of(child.process.pid)[fd.number] == f"{directory}/file"
    written, _ = await fd.write(await child.ptr(b"0123456789"))
    assert written.size() == 10
    assert await fd.lseek(2, SEEK.SET) == 2
    part, _ = await fd.read(await child.malloc(bytes, 3))
    assert await part.read() == b"234"
    stat = await (await fd.fstat(await child.malloc(Stat))).read()
    assert stat.size == 10 and stat.mode & 0o777 == 0o600
    dup = await fd.dup()
    await dup.dup2(child.stdin)
    assert fds_of(child.process.pid)[0] == f"{directory}/file"
    dirfd = await task.open(await child.ptr("."), O.RDONLY | O.DIRECTORY)
    names: set[str] = set()
    buf = await child.malloc(DirentList, 4096)
    while True:
        valid, rest = await dirfd.getdents(buf)
        if valid.size() == 0:
            break
        names |= {entry.name for entry in await valid.read()}
        buf = valid + rest
    assert {"file", "sub"} <= names
    number = fd.number
    for handle in (fd, dup, dirfd):
        await handle.close()
    assert number not in fds_of(child.process.pid)


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


async def test_mman_memfd_resource(child: ChildThread) -> None:
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
    limit = await (await task.getrlimit(RLIMIT.NOFILE, await child.malloc(Rlimit))).read()
    import resource

    assert (limit.cur, limit.max) == resource.getrlimit(resource.RLIMIT_NOFILE)


async def test_signal_signalfd_in_child(child: ChildThread) -> None:
    queue = await AsyncSignalQueue.make(child, Sigset({SIG.USR1}))
    # The child's mask, not ours, blocks SIGUSR1.
    with open(f"/proc/{child.process.pid}/status") as status:
        blocked = next(line for line in status if line.startswith("SigBlk"))
    assert int(blocked.split()[1], 16) & (1 << (SIG.USR1 - 1))
    assert stdlib_signal.SIGUSR1 not in stdlib_signal.pthread_sigmask(stdlib_signal.SIG_BLOCK, [])
    await child.process.kill(SIG.USR1)
    info = await queue.read()
    assert info.signo == SIG.USR1 and info.pid == os.getpid()
    await queue.close()
    old = await child.task.sigprocmask(HowSIG.BLOCK, None, await child.malloc(Sigset))
    assert SIG.USR1 not in await old.read()


async def test_epoll_eventfd_timerfd_inotify_in_child(child: ChildThread, tmp_path: Path) -> None:
    task = child.task
    efd = await child.make_afd(await task.eventfd(0, EFD.NONBLOCK))

    async def bump() -> None:
        await anyio.sleep(0.02)
        await efd.write(await child.ptr(b"\x05" + bytes(7)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(bump)
        value, _ = await efd.read(await child.malloc(bytes, 8))
        assert int.from_bytes(await value.read(), "little") == 5
    await efd.close()
    start = time.monotonic()
    cpu = time.process_time()
    await sleep(child, 0.05)  # a timerfd in the child, waited on in its epoll
    assert time.monotonic() - start >= 0.05
    assert time.process_time() - cpu < 0.05
    inotify = await Inotify.make(child)
    await inotify.add_watch(os.fspath(tmp_path), IN.CREATE)

    async def create() -> None:
        await anyio.sleep(0.02)
        await child.spit(f"{os.fspath(tmp_path)}/made-in-child", "x")

    async with anyio.create_task_group() as tg:
        tg.start_soon(create)
        events = await inotify.read_events()
    assert [event.name for event in events] == ["made-in-child"]
    await inotify.close()


async def test_time_sched_futex_wait_pidfd(child: ChildThread) -> None:
    task = child.task
    now = await (await task.clock_gettime(CLOCK.MONOTONIC, await child.malloc(Timespec))).read()
    assert abs(now.to_float() - time.monotonic()) < 1
    valid, _ = await task.sched_getaffinity(await child.malloc(CpuSet))
    assert await valid.read() == frozenset(os.sched_getaffinity(0))
    word = await child.ptr(Int32(7))
    with pytest.raises(BlockingIOError):
        await task.futex_wait(word, 8)  # the word is not 8: EAGAIN at once
    assert await task.futex_wake(word, 1) == 0
    grandchild = await child.clone()
    pidfd = await task.pidfd_open(grandchild.process.pid)
    await grandchild.exit(3)
    state = await grandchild.process.waitpid()
    assert state.exit_status == 3
    await pidfd.close()
    pipe = await (await task.pipe(await child.malloc(Pipe))).read()
    await pipe.read.close()
    await pipe.write.close()
