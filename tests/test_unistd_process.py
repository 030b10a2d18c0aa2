"""The rest of <unistd.h> that acts on the process itself: execveat,
brk, set_tid_address, acct, memfd_secret, vhangup; on every kind of
thread.  What changes the process runs in a child cloned from `thread`
(or, for moving the break, only in a stub's own address space); acct and
vhangup need root (CI is root)."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest

from rsyscall import ChildThread, Command, FileDescriptor, SyscallHangup, Thread, local_thread
from rsyscall.fcntl import AT, O
from rsyscall.sched import CLONE
from rsyscall.signal import SIG, HowSIG, Sigset
from rsyscall.sys.mman import MAP, PROT

from .util import thread_pid

pytestmark = pytest.mark.anyio

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI is root)")


async def _memfd_copy(child: Thread, source: str) -> FileDescriptor:
    """A memfd in `child` holding a copy of the program at `source`."""
    memfd = await child.task.memfd_create(await child.ptr("copy"))
    with open(source, "rb") as file:
        await child.spit(memfd.as_proc_path(), file.read())
    return memfd


async def test_execveat_runs_a_memfd(thread: Thread) -> None:
    child = await thread.clone()
    memfd = await _memfd_copy(child, "/bin/sh")
    # The arguments come from the Command; its executable_path is not used.
    command = Command("/nonexistent", ["sh", "-c", 'test "$0" = sh && exit 7'])
    process = await child.execveat(memfd, command, AT.EMPTY_PATH)
    assert process is child.process
    assert (await process.waitpid()).exit_status == 7
    with pytest.raises(SyscallHangup):
        await child.task.getpid()


async def test_execveat_relative_and_o_path(thread: Thread) -> None:
    child = await thread.clone()
    bindir = await child.task.open(await child.ptr("/usr/bin"), O.PATH | O.DIRECTORY)
    # Failures leave the thread usable: a directory is no program ...
    with pytest.raises(PermissionError):
        await child.execveat(bindir, Command("x", ["x"]), AT.EMPTY_PATH)
    # ... a missing name relative to the directory ...
    with pytest.raises(FileNotFoundError):
        await child.execveat(bindir, Command("no-such-program", ["x"]))
    # ... a final symlink with AT.SYMLINK_NOFOLLOW.
    link = Path(f"/tmp/rsyscall-execveat-{os.getpid()}-{id(child)}")
    link.symlink_to("/usr/bin/true")
    try:
        with pytest.raises(OSError) as info:
            await child.execveat(None, Command(link, ["true"]), AT.SYMLINK_NOFOLLOW)
        assert info.value.errno == errno.ELOOP
    finally:
        link.unlink()
    with pytest.raises(ValueError):
        await child.execveat(None, Command("true", ["true"]), AT.EMPTY_PATH)
    with pytest.raises(ValueError):
        await child.execveat(bindir, Command("true", ["true"]), AT.REMOVEDIR)
    with pytest.raises(TypeError):
        await child.execveat(3, Command("true", ["true"]))  # type: ignore[arg-type]
    assert await child.task.getpid() == child.task.pid
    # An O_PATH fd for the program itself.
    true = await child.task.open(await child.ptr("/usr/bin/false"), O.PATH)
    process = await child.execveat(true, Command("", ["false"]), AT.EMPTY_PATH)
    assert (await process.waitpid()).exit_status == 1


async def test_execveat_relative_to_a_directory(thread: Thread) -> None:
    child = await thread.clone()
    bindir = await child.task.open(await child.ptr("/usr/bin"), O.PATH | O.DIRECTORY)
    process = await child.execveat(bindir, Command("sh", ["sh", "-c", "exit 5"]))
    assert (await process.waitpid()).exit_status == 5


async def test_execveat_with_a_shared_fd_table(thread: Thread) -> None:
    # Sharing its table with us, the child's exec closes no connection:
    # the library watches it through set_tid_address's word, as for exec.
    child = await thread.clone(CLONE.FILES)
    memfd = await _memfd_copy(child, "/bin/true")
    process = await child.execveat(memfd, Command("", ["true"]), AT.EMPTY_PATH)
    assert (await process.waitpid()).clean()


async def test_brk_query_and_move(thread: Thread) -> None:
    brk = await thread.task.brk()
    with open(f"/proc/{thread_pid(thread)}/stat") as stat:
        # Field 47 of /proc/PID/stat is start_brk: the break is at or above.
        start_brk = int(stat.read().rsplit(")", 1)[1].split()[44])
    assert brk >= start_brk > 0
    with pytest.raises(ValueError):
        await thread.task.unsafe_brk(-1)
    if thread is local_thread or isinstance(thread, ChildThread):
        return  # our own heap is there: only a stub's break may move
    # A stub (its own address space, no malloc) may move its break.
    moved = await thread.task.unsafe_brk(brk + 4 * 4096)
    assert moved == brk + 4 * 4096 == await thread.task.brk()
    mapping = await thread.task.mmap(4096, PROT.READ, MAP.PRIVATE | MAP.ANONYMOUS)
    with pytest.raises(OSError) as info:  # onto the mapping: ENOMEM, break unmoved
        await thread.task.unsafe_brk(mapping.address + 4096)
    assert info.value.errno == errno.ENOMEM
    assert await thread.task.brk() == moved
    assert await thread.task.unsafe_brk(brk) == brk


async def test_set_tid_address(thread: Thread) -> None:
    child = await thread.clone()
    # Nowhere: returns the tid, nothing is written at exit.
    assert await child.task.unsafe_set_tid_address(0) == await child.task.gettid()
    with pytest.raises(ValueError):
        await child.task.unsafe_set_tid_address(-5)
    if not child.task.space.local:
        await child.exit(0)
        return
    # A word of ours (the child shares our memory): zeroed when it exits.
    word = await child.ptr(b"\x01\x00\x00\x00")
    await child.task.unsafe_set_tid_address(word.address)
    await child.exit(0)
    assert struct.unpack("<i", await word.read())[0] == 0


@ROOT_ONLY
async def test_acct_in_a_pid_namespace(thread: Thread, tmp_path: Path) -> None:
    # Accounting is per pid namespace: the child's own, not the host's.
    child = await thread.clone(CLONE.NEWPID)
    path = tmp_path / "acct"
    path.touch()
    await child.task.acct(await child.ptr(str(path)))
    grandchild = await child.clone()
    await grandchild.exit(0)
    await child.task.acct(None)
    await child.task.acct(None)  # off twice is fine
    size = path.stat().st_size
    assert size > 0 and size % 64 == 0  # struct acct_v3 records
    with pytest.raises(FileNotFoundError):
        await child.task.acct(await child.ptr(str(tmp_path / "missing")))
    with pytest.raises(IsADirectoryError):
        await child.task.acct(await child.ptr(str(tmp_path)))
    await child.exit(0)
    # Without CAP_SYS_PACCT in the initial user namespace: EPERM.
    userns = await thread.clone(CLONE.NEWUSER | CLONE.NEWPID)
    with pytest.raises(PermissionError):
        await userns.task.acct(await userns.ptr(str(path)))
    await userns.exit(0)


async def test_memfd_secret(thread: Thread) -> None:
    try:
        fd = await thread.task.memfd_secret()
    except OSError as error:
        if error.errno == errno.ENOSYS:
            pytest.skip("memfd_secret is off in this kernel (secretmem.enable=0)")
        raise
    with open(f"/proc/{thread_pid(thread)}/fdinfo/{fd.number}") as fdinfo:
        assert int(fdinfo.read().split("flags:")[1].split()[0], 8) & O.CLOEXEC
    await fd.ftruncate(4096)
    mapping = await thread.task.mmap(4096, PROT.READ | PROT.WRITE, MAP.SHARED, fd)
    await mapping.munmap()
    with pytest.raises(OSError) as info:  # no write(2) to secret memory
        await fd.write(await thread.ptr(b"x"))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        await thread.task.memfd_secret(O.NONBLOCK)


@ROOT_ONLY
async def test_vhangup_in_its_own_session(thread: Thread) -> None:
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        child = await thread.clone()
        await child.task.setsid()
        # The hangup also sends SIGHUP to the session leader: block it, to
        # see it pending afterwards rather than die of it.
        await child.task.sigprocmask(HowSIG.BLOCK, await child.ptr(Sigset({SIG.HUP})))
        await child.task.vhangup()  # no controlling terminal yet: nothing happens
        # A session leader opening a terminal gets it as its controlling one.
        tty = await child.task.open(await child.ptr(name), O.RDWR)
        written, _ = await tty.write(await child.ptr(b"before\n"))
        assert written.size() == 7
        await child.task.vhangup()
        with pytest.raises(OSError) as info:
            await tty.write(await child.ptr(b"after\n"))
        assert info.value.errno == errno.EIO
        with open(f"/proc/{thread_pid(child)}/status") as status:
            pending = next(line for line in status if line.startswith("ShdPnd:"))
        assert int(pending.split()[1], 16) & (1 << (SIG.HUP - 1))
        with pytest.raises(OSError) as info:  # our own file of it is hung up too
            os.write(slave, b"x")
        assert info.value.errno == errno.EIO
        await child.exit(0)
        # Without CAP_SYS_TTY_CONFIG: EPERM.
        userns = await thread.clone(CLONE.NEWUSER)
        with pytest.raises(PermissionError):
            await userns.task.vhangup()
        await userns.exit(0)
    finally:
        os.close(master)
        os.close(slave)
