"""rsyscall.sys.mount and chroot(2): mounts made in child threads (of the
thread of the test) with their own mount namespace, seen by the child and
not by its parent.

Nothing here changes the thread's own mounts or root: every mount, umount
and chroot runs in a child made with CLONE.NEWUSER | CLONE.NEWNS whose
copy of the mount tree is first made private."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import UseAfterConsumeError
from rsyscall.fcntl import O
from rsyscall.sched import CLONE
from rsyscall.sys.mount import MNT, MS
from rsyscall.thread import ChildThread, Thread
from rsyscall.unistd import ResIds

from .util import proc, thread_pid

pytestmark = pytest.mark.anyio


async def mount_ns_child(thread: Thread, extra: CLONE = CLONE.NONE) -> ChildThread:
    """A child of `thread` in new user and mount namespaces, whose mounts
    stay its own."""
    child = await thread.clone(CLONE.NEWUSER | CLONE.NEWNS | extra)
    await child.task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)
    return child


async def mount_tmpfs(child: ChildThread, target: Path, options: str = "size=1m") -> None:
    await child.task.mount(
        await child.ptr("tmpfs"),
        await child.ptr(target),
        await child.ptr("tmpfs"),
        MS.NONE,
        await child.ptr(options),
    )


async def read_file(child: ChildThread, path: Path) -> bytes:
    fd = await child.task.open(await child.ptr(path), O.RDONLY)
    try:
        return await child.read_to_eof(fd)
    finally:
        await fd.close()


def mount_points(pid: int) -> list[str]:
    """The mount points in process `pid`'s mount namespace."""
    with open(f"/proc/{pid}/mountinfo") as mountinfo:
        return [line.split()[4] for line in mountinfo]


async def still_works(child: ChildThread) -> None:
    assert await child.task.getpid() == child.process.process.pid


async def test_tmpfs_is_the_childs_alone(thread: Thread, tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    child = await mount_ns_child(thread)
    pid = child.process.process.pid
    await mount_tmpfs(child, target)
    assert str(target) in mount_points(pid)
    assert str(target) not in mount_points(thread_pid(thread))
    await child.spit(target / "file", "in the tmpfs")
    # The child sees the file; we see the directory under its mount, empty.
    assert await read_file(child, target / "file") == b"in the tmpfs"
    assert os.listdir(target) == []
    # It is in the tmpfs, not in the directory beneath: after umount2 the
    # child sees the empty directory too.
    await child.task.umount2(await child.ptr(target))
    assert str(target) not in mount_points(pid)
    with pytest.raises(FileNotFoundError):
        await read_file(child, target / "file")
    await child.exit(0)


async def test_mount_options_reach_the_filesystem(thread: Thread, tmp_path: Path) -> None:
    child = await mount_ns_child(thread)
    await mount_tmpfs(child, tmp_path, "size=64k,mode=0700")
    # The child's view of its mount, through /proc: the options as the kernel keeps them.
    with open(f"/proc/{child.process.process.pid}/mountinfo") as mountinfo:
        (ours,) = [line for line in mountinfo if line.split()[4] == str(tmp_path)]
    assert "size=64k" in ours and "mode=700" in ours
    # Options as bytes: passed as they are, so they carry their own NUL.
    await child.task.umount2(await child.ptr(tmp_path))
    await child.task.mount(
        await child.ptr("tmpfs"), await child.ptr(tmp_path), await child.ptr("tmpfs"),
        MS.NOEXEC | MS.NOSUID, await child.ptr(b"size=64k,mode=0711\0"),
    )
    with open(f"/proc/{child.process.process.pid}/mountinfo") as mountinfo:
        (ours,) = [line for line in mountinfo if line.split()[4] == str(tmp_path)]
    assert "mode=711" in ours and "noexec" in ours and "nosuid" in ours
    # Too big a file for a 64k tmpfs.
    fd = await child.task.open(await child.ptr(tmp_path / "big"), O.WRONLY | O.CREAT)
    with pytest.raises(OSError) as info:
        rest = await child.ptr(b"x" * (1 << 20))
        while rest.size():
            _, rest = await fd.write(rest)
    assert info.value.errno == errno.ENOSPC
    await fd.close()
    await child.exit(0)


async def test_bind_mount_and_read_only_remount(thread: Thread, tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "file").write_text("from the source")
    child = await mount_ns_child(thread)
    task = child.task
    await task.mount(await child.ptr(source), await child.ptr(target), None, MS.BIND, None)
    assert await read_file(child, target / "file") == b"from the source"
    assert os.listdir(target) == []  # not in our namespace
    # Writes through the bind mount land in the source, which we see.
    await child.spit(target / "new", "written through the bind")
    assert (source / "new").read_text() == "written through the bind"
    # Remount the bind read-only: the source stays writable.
    await task.mount(
        None, await child.ptr(target), None, MS.REMOUNT | MS.BIND | MS.RDONLY, None
    )
    with pytest.raises(OSError) as info:
        await child.spit(target / "refused", "no")
    assert info.value.errno == errno.EROFS
    await child.spit(source / "allowed", "yes")
    assert await read_file(child, target / "allowed") == b"yes"
    await task.umount2(await child.ptr(target))
    assert await child.task.getpid() == child.process.process.pid
    await child.exit(0)


async def test_recursive_bind_carries_submounts(thread: Thread, tmp_path: Path) -> None:
    source, inner, target = tmp_path / "source", tmp_path / "source" / "inner", tmp_path / "t"
    inner.mkdir(parents=True)
    target.mkdir()
    child = await mount_ns_child(thread)
    await mount_tmpfs(child, inner)
    await child.spit(inner / "deep", "on the submount")
    # A plain bind shows the directory beneath the submount; MS.REC the submount.
    await child.task.mount(await child.ptr(source), await child.ptr(target), None, MS.BIND, None)
    await (await child.task.open(await child.ptr(target / "inner"), O.DIRECTORY)).close()
    with pytest.raises(FileNotFoundError):
        await read_file(child, target / "inner" / "deep")
    await child.task.umount2(await child.ptr(target))
    await child.task.mount(
        await child.ptr(source), await child.ptr(target), None, MS.BIND | MS.REC, None
    )
    assert await read_file(child, target / "inner" / "deep") == b"on the submount"
    # A recursive bind cannot be unmounted plainly while its submount is
    # there, but a lazy (detached) unmount takes both.
    await child.task.umount2(await child.ptr(target), MNT.DETACH)
    with pytest.raises(FileNotFoundError):
        await read_file(child, target / "inner" / "deep")
    await child.exit(0)


async def test_busy_mount_and_lazy_unmount(thread: Thread, tmp_path: Path) -> None:
    child = await mount_ns_child(thread)
    await mount_tmpfs(child, tmp_path)
    await child.spit(tmp_path / "file", "open")
    fd = await child.task.open(await child.ptr(tmp_path / "file"), O.RDONLY)
    with pytest.raises(OSError) as info:
        await child.task.umount2(await child.ptr(tmp_path))
    assert info.value.errno == errno.EBUSY
    await child.task.umount2(await child.ptr(tmp_path), MNT.DETACH)
    # Detached, but the open file still reads.
    assert await child.read_to_eof(fd) == b"open"
    assert str(tmp_path) not in mount_points(child.process.process.pid)
    await child.exit(0)


async def test_umount_nofollow(thread: Thread, tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    child = await mount_ns_child(thread)
    await mount_tmpfs(child, target)
    # Through the symlink, NOFOLLOW finds the link, which is no mount point.
    with pytest.raises(OSError) as info:
        await child.task.umount2(await child.ptr(link), MNT.NOFOLLOW)
    assert info.value.errno == errno.EINVAL
    await child.task.umount2(await child.ptr(link))  # followed: unmounts the target
    assert str(target) not in mount_points(child.process.process.pid)
    await child.exit(0)


async def test_move_mount(thread: Thread, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    child = await mount_ns_child(thread)
    await mount_tmpfs(child, first)
    await child.spit(first / "file", "moved")
    await child.task.mount(await child.ptr(first), await child.ptr(second), None, MS.MOVE, None)
    assert await read_file(child, second / "file") == b"moved"
    assert str(first) not in mount_points(child.process.process.pid)
    await child.exit(0)


async def test_chroot(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("inside the new root\n")
    child = await thread.clone(CLONE.NEWUSER)
    task = child.task
    await task.chroot(await child.ptr(tmp_path))
    await task.chdir(await child.ptr("/"))
    valid, _ = await task.getcwd(await child.malloc(str, 4096))
    assert await valid.read() == "/"
    assert await read_file(child, Path("/etc/hostname")) == b"inside the new root\n"
    # The kernel's own view: the child's root is the directory.
    assert os.readlink(f"/proc/{child.process.process.pid}/root") == str(tmp_path)
    assert os.readlink(proc(thread, "root")) == "/"
    with pytest.raises(FileNotFoundError):
        await task.chroot(await child.ptr("/no/such/dir"))
    await still_works(child)
    await child.exit(0)


async def test_set_up_a_child_then_exec(thread: Thread, tmp_path: Path) -> None:
    """The point of these calls: a program started in a prepared world."""
    target = tmp_path / "mnt"
    target.mkdir()
    pipe = await thread.pipe()
    child = await mount_ns_child(thread, CLONE.NEWUTS)
    await mount_tmpfs(child, target)
    await child.spit(target / "motd", "hello from the tmpfs\n")
    await child.task.sethostname(await child.ptr(b"prepared"))
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    script = f"cat {target}/motd; cat /proc/sys/kernel/hostname"
    process = await child.exec(child.environ.sh.args("-c", script))
    await pipe.write.close()
    output = await thread.read_to_eof(pipe.read)
    assert (await process.check()).clean()
    assert output == b"hello from the tmpfs\nprepared\n"
    assert os.listdir(target) == []


async def test_mount_errors(thread: Thread, tmp_path: Path) -> None:
    child = await mount_ns_child(thread)
    task = child.task
    with pytest.raises(FileNotFoundError):
        await mount_tmpfs(child, tmp_path / "missing")
    await still_works(child)
    with pytest.raises(OSError) as info:
        await task.mount(
            await child.ptr("x"), await child.ptr(tmp_path), await child.ptr("nosuchfs"),
            MS.NONE, None,
        )
    assert info.value.errno == errno.ENODEV
    await still_works(child)
    with pytest.raises(OSError) as info:
        await task.umount2(await child.ptr(tmp_path))  # not a mount point
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.umount2(await child.ptr(tmp_path), MNT.EXPIRE | MNT.DETACH)
    assert info.value.errno == errno.EINVAL
    await still_works(child)
    # Python-side checks, before any syscall.
    target = await child.ptr(tmp_path)
    with pytest.raises(TypeError):
        await task.mount(None, str(tmp_path), None, MS.NONE, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mount("tmpfs", target, None, MS.NONE, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mount(None, target, None, "bind", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mount(None, target, None, MS.NONE, "size=1m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # data must be initialized memory
        await task.mount(
            None, target, None, MS.NONE, await child.malloc(bytes, 8)  # type: ignore[arg-type]
        )
    with pytest.raises(TypeError):  # data is a string or bytes, not a struct
        await task.mount(
            None, target, None, MS.NONE, await child.ptr(ResIds(0, 0, 0))  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        await task.mount(None, target, None, 1 << 64, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.umount2(target, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.umount2(target, -1)  # type: ignore[arg-type]
    # A consumed pointer is refused.
    path = await child.ptr(tmp_path)
    path.split(1)
    with pytest.raises(UseAfterConsumeError):
        await task.umount2(path)
    with pytest.raises(UseAfterConsumeError):
        await task.mount(None, path, None, MS.NONE, None)
    # Still works: a successful mount after all that.
    await mount_tmpfs(child, tmp_path)
    await task.umount(await child.ptr(tmp_path))
    await child.exit(0)

