"""The rest of <unistd.h> for process setup: pivot_root, the sync
family, truncate, fchown/fchownat, setreuid/setregid, gettid, getsid; on
every kind of thread, with their error paths.  Calls that change ids or
owners run in children (never in the test's own process); the owner
changes need root (CI is root)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import Thread, local_thread
from rsyscall.fcntl import AT, SEEK, O
from rsyscall.sched import CLONE
from rsyscall.sys.mount import MNT

from .test_mount import mount_ns_child, mount_tmpfs
from .util import thread_pid

pytestmark = pytest.mark.anyio


async def test_gettid_and_getsid(thread: Thread) -> None:
    pid = thread_pid(thread)
    tid = await thread.task.gettid()
    assert tid in {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    if thread is not local_thread:
        assert tid == thread.task.pid  # our processes have one thread
    assert await thread.task.getsid() == os.getsid(pid)
    assert await thread.task.getsid(thread.task.pid) == os.getsid(pid)
    with pytest.raises(ProcessLookupError):
        await thread.task.getsid(2**22 + 12345)


async def test_sync_family_and_truncate(thread: Thread, tmp_path: Path) -> None:
    path = f"{tmp_path}/data"
    await thread.spit(path, b"x" * 100)
    fd = await thread.task.open(await thread.ptr(path), O.RDWR)
    await fd.fsync()
    await fd.fdatasync()
    await fd.syncfs()
    await thread.task.sync()
    await thread.task.truncate(await thread.ptr(path), 10)
    assert os.path.getsize(path) == 10  # the same machine
    with pytest.raises(FileNotFoundError):
        await thread.task.truncate(await thread.ptr(f"{tmp_path}/missing"), 0)
    with pytest.raises(TypeError):
        await thread.task.truncate(await thread.ptr(path), "10")  # type: ignore[arg-type]
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.fsync()
    assert info.value.errno == errno.EINVAL


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root (CI is root)")
async def test_fchown_and_fchownat(thread: Thread, tmp_path: Path) -> None:
    path = f"{tmp_path}/owned"
    await thread.spit(path, "x")
    fd = await thread.task.open(await thread.ptr(path), O.RDONLY)
    await fd.fchown(65534, -1)
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (65534, 0)
    await thread.task.fchownat(None, await thread.ptr(path), -1, 65534)
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (65534, 65534)
    os.symlink(path, f"{tmp_path}/link")
    await thread.task.fchownat(None, await thread.ptr(f"{tmp_path}/link"), 0, 0,
                               AT.SYMLINK_NOFOLLOW)
    assert os.lstat(f"{tmp_path}/link").st_uid == 0 and os.stat(path).st_uid == 65534
    with pytest.raises(ValueError):
        await fd.fchown(2**32, 0)
    with pytest.raises(FileNotFoundError):
        await thread.task.fchownat(None, await thread.ptr(f"{tmp_path}/nope"), 0, 0)


async def test_setreuid_and_setregid_in_a_child(thread: Thread) -> None:
    # In a new user namespace mapping 0 inside to our own id outside: the
    # child may then switch among the ids it has (only 0 is mapped).
    child = await thread.clone(CLONE.NEWUSER, automatically_write_user_mappings=False)
    from rsyscall import write_user_mappings

    await write_user_mappings(child, await thread.task.geteuid(), await thread.task.getegid(),
                              in_namespace_uid=0, in_namespace_gid=0)
    await child.task.setreuid(-1, 0)
    await child.task.setregid(0, -1)
    assert await child.task.geteuid() == 0 and await child.task.getgid() == 0
    with pytest.raises(OSError) as info:
        await child.task.setreuid(-1, 1000)  # not mapped in its namespace
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        await child.task.setregid(-2, 0)
    await child.exit(0)


async def test_pivot_root_leaves_the_old_root_unreachable(thread: Thread, tmp_path: Path) -> None:
    child = await mount_ns_child(thread)
    new_root = tmp_path / "newroot"
    os.mkdir(new_root)
    await mount_tmpfs(child, new_root)
    await child.mkdir(f"{new_root}/old")
    await child.spit(f"{new_root}/inside", "the new root")
    await child.task.pivot_root(await child.ptr(str(new_root)), await child.ptr(f"{new_root}/old"))
    await child.task.chdir(await child.ptr("/"))
    # The old root is under /old until it is unmounted...
    await child.task.faccessat(None, await child.ptr("/old/etc"), 0)  # raises if missing
    await child.task.umount2(await child.ptr("/old"), MNT.DETACH)
    # ... and then nothing of it is reachable, not even by "..".
    for path in ("/old/etc/passwd", "/etc/passwd", "/../../etc/passwd"):
        with pytest.raises(FileNotFoundError):
            await child.task.open(await child.ptr(path), O.RDONLY)
    fd = await child.task.open(await child.ptr("/inside"), O.RDONLY)
    assert await child.read_to_eof(fd) == b"the new root"
    with pytest.raises(OSError):  # not a mount point
        await child.task.pivot_root(await child.ptr("/old"), await child.ptr("/old"))
    await child.exit(0)
    # Our own root is untouched.
    assert os.path.exists("/etc/passwd")


async def test_copy_file_range(thread: Thread, tmp_path: Path) -> None:
    from rsyscall.struct import Int64

    (tmp_path / "src").write_bytes(b"0123456789")
    src = await thread.task.open(await thread.ptr(str(tmp_path / "src")), O.RDONLY)
    dst = await thread.task.open(await thread.ptr(str(tmp_path / "dst")), O.RDWR | O.CREAT)
    count, no_in, no_out = await src.copy_file_range(dst, 4)
    assert (count, no_in, no_out) == (4, None, None)
    assert (tmp_path / "dst").read_bytes() == b"0123"
    # With offsets: the kernel reads them, advances them, and the files'
    # own offsets stay.
    off_in = await thread.ptr(Int64(6))
    off_out = await thread.ptr(Int64(0))
    count, new_in, new_out = await src.copy_file_range(dst, 100, off_in, off_out)
    assert count == 4 and off_in.consumed and off_out.consumed
    assert new_in is not None and new_out is not None
    assert (await new_in.read(), await new_out.read()) == (10, 4)
    assert (tmp_path / "dst").read_bytes() == b"6789"
    assert await src.lseek(0, SEEK.CUR) == 4
    with pytest.raises(OSError) as info:  # dst the wrong way round: opened read-only
        await dst.copy_file_range(src, 1)
    assert info.value.errno == errno.EBADF
    with pytest.raises(TypeError):
        await src.copy_file_range(dst, 1, await thread.ptr(b"12345678"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await src.copy_file_range(dst, -1)


async def test_exit_group(thread: Thread) -> None:
    from rsyscall import SyscallHangup

    child = await thread.clone()
    with pytest.raises(SyscallHangup):
        await child.task.exit_group(3)
    assert (await child.process.waitpid()).exit_status == 3
    with pytest.raises(ValueError):
        await thread.task.exit_group(256)


def test_exit_group_of_the_local_thread_ends_the_interpreter() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c",
         "import anyio\nfrom rsyscall import local_thread\n"
         "anyio.run(local_thread.task.exit_group, 7)\nprint('not reached')"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 7 and "not reached" not in result.stdout
