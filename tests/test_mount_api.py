"""rsyscall.sys.mount's fd-based mount API: fsopen/fsconfig/fsmount,
fspick, open_tree, move_mount and mount_setattr, in child threads (of the
thread of the test) with their own mount namespace.

As in test_mount, nothing here changes the thread's own mounts: every
call runs in a child made with CLONE.NEWNS (and, except where noted,
CLONE.NEWUSER) whose copy of the mount tree is first made private.  The
id-mapped mount needs root: the test suite runs as root."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import FileDescriptor, UseAfterConsumeError
from rsyscall.fcntl import AT, O
from rsyscall.sched import CLONE
from rsyscall.sys.mount import (
    FSMOUNT,
    FSOPEN,
    MOUNT_ATTR,
    MOVE_MOUNT,
    MS,
    OPEN_TREE,
    MountAttr,
)
from rsyscall.sys.stat import Stat
from rsyscall.thread import ChildThread, Thread

from .test_mount import mount_points, read_file, still_works

pytestmark = pytest.mark.anyio


async def private_child(thread: Thread, flags: CLONE = CLONE.NEWUSER) -> ChildThread:
    """A child of `thread` in a new mount namespace (and `flags`), whose
    mounts stay its own."""
    child = await thread.clone(CLONE.NEWNS | flags)
    await child.task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)
    return child


async def new_tmpfs(child: ChildThread, size: str = "1m") -> FileDescriptor:
    """A detached tmpfs mount, made with fsopen, fsconfig and fsmount."""
    ctx = await child.task.fsopen(await child.ptr("tmpfs"))
    await ctx.fsconfig_set_string(await child.ptr("size"), await child.ptr(size))
    await ctx.fsconfig_create()
    mnt = await ctx.fsmount()
    await ctx.close()
    return mnt


async def attach(child: ChildThread, mnt: FileDescriptor, target: Path) -> None:
    await child.task.move_mount(
        mnt, await child.ptr(""), None, await child.ptr(target), MOVE_MOUNT.F_EMPTY_PATH
    )


def fd_flags(pid: int, fd: FileDescriptor) -> int:
    with open(f"/proc/{pid}/fdinfo/{fd.number}") as fdinfo:
        (line,) = [line for line in fdinfo if line.startswith("flags:")]
    return int(line.split()[1], 8)


def mountinfo_line(pid: int, target: Path) -> str:
    with open(f"/proc/{pid}/mountinfo") as mountinfo:
        (line,) = [line for line in mountinfo if line.split()[4] == str(target)]
    return line


async def write_refused(child: ChildThread, path: Path) -> int:
    with pytest.raises(OSError) as info:
        await child.spit(path, "no")
    assert info.value.errno is not None
    return info.value.errno


async def test_fsopen_fsmount_and_move_mount(thread: Thread, tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    child = await private_child(thread)
    pid = child.process.process.pid
    ctx = await child.task.fsopen(await child.ptr("tmpfs"), FSOPEN.CLOEXEC)
    await ctx.fsconfig_set_string(await child.ptr("size"), await child.ptr("64k"))
    await ctx.fsconfig_set_string(await child.ptr("mode"), await child.ptr("0711"))
    await ctx.fsconfig_create()
    mnt = await ctx.fsmount(FSMOUNT.NONE, MOUNT_ATTR.NOEXEC)
    # Close-on-exec, as every fd the library makes, flag or not.
    assert fd_flags(pid, mnt) & O.CLOEXEC and fd_flags(pid, ctx) & O.CLOEXEC
    # Detached: nowhere in the tree, but usable through the fd.
    assert str(target) not in mount_points(pid)
    early = await child.task.openat(mnt, await child.ptr("early"), O.WRONLY | O.CREAT)
    await child.spit(early, "before it was attached")
    await attach(child, mnt, target)
    line = mountinfo_line(pid, target)
    assert "tmpfs" in line and "size=64k" in line and "mode=711" in line and "noexec" in line
    assert await read_file(child, target / "early") == b"before it was attached"
    await child.spit(target / "file", "in the new tmpfs")
    assert await read_file(child, target / "file") == b"in the new tmpfs"
    assert os.listdir(target) == []  # not in our namespace
    # The superblock's size limit holds.
    with pytest.raises(OSError) as info:
        await child.spit(target / "big", b"x" * (1 << 20))
    assert info.value.errno == errno.ENOSPC
    # A second mount, read-only per mount (MOUNT_ATTR.RDONLY): the
    # superblock itself stays writable.
    ro_target = tmp_path / "ro"
    ro_target.mkdir()
    ctx = await child.task.fsopen(await child.ptr("tmpfs"))
    await ctx.fsconfig_create()
    ro = await ctx.fsmount(attr_flags=MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID)
    await attach(child, ro, ro_target)
    assert await write_refused(child, ro_target / "file") == errno.EROFS
    assert " ro," in mountinfo_line(pid, ro_target)
    await child.exit(0)


async def test_open_tree_clone_is_a_detached_bind(thread: Thread, tmp_path: Path) -> None:
    source, inner = tmp_path / "source", tmp_path / "source" / "inner"
    flat, deep, moved = tmp_path / "flat", tmp_path / "deep", tmp_path / "moved"
    for path in (inner, flat, deep, moved):
        path.mkdir(parents=True)
    (source / "top").write_text("from the source")
    child = await private_child(thread)
    pid = child.process.process.pid
    await attach(child, await new_tmpfs(child), inner)
    await child.spit(inner / "sub", "on the submount")
    # CLONE alone copies the one mount: the submount's directory is empty.
    tree = await child.task.open_tree(None, await child.ptr(source), OPEN_TREE.CLONE)
    assert str(flat) not in mount_points(pid)
    await attach(child, tree, flat)
    assert await read_file(child, flat / "top") == b"from the source"
    with pytest.raises(FileNotFoundError):
        await read_file(child, flat / "inner" / "sub")
    # CLONE | RECURSIVE copies the tree under it.
    tree = await child.task.open_tree(
        None, await child.ptr(source), OPEN_TREE.CLONE | OPEN_TREE.RECURSIVE
    )
    await attach(child, tree, deep)
    assert await read_file(child, deep / "inner" / "sub") == b"on the submount"
    assert {str(deep), str(deep / "inner")} <= set(mount_points(pid))
    # Writes land in the source, which we see.
    await child.spit(deep / "new", "through the bind")
    assert (source / "new").read_text() == "through the bind"
    # Without CLONE the fd names the mount itself: move_mount moves it.
    mount = await child.task.open_tree(None, await child.ptr(inner))
    await attach(child, mount, moved)
    assert str(inner) not in mount_points(pid)
    assert await read_file(child, moved / "sub") == b"on the submount"
    # A path to path move (no fds).
    await child.task.move_mount(
        None, await child.ptr(moved), None, await child.ptr(inner)
    )
    assert await read_file(child, inner / "sub") == b"on the submount"
    assert str(moved) not in mount_points(pid)
    await child.exit(0)


async def test_fspick_reconfigures_the_superblock(thread: Thread, tmp_path: Path) -> None:
    target, bind = tmp_path / "mnt", tmp_path / "bind"
    target.mkdir()
    bind.mkdir()
    child = await private_child(thread)
    pid = child.process.process.pid
    await attach(child, await new_tmpfs(child, "1m"), target)
    tree = await child.task.open_tree(None, await child.ptr(target), OPEN_TREE.CLONE)
    await attach(child, tree, bind)
    assert "size=1024k" in mountinfo_line(pid, target)
    ctx = await child.task.fspick(None, await child.ptr(target))
    await ctx.fsconfig_set_string(await child.ptr("size"), await child.ptr("2m"))
    await ctx.fsconfig_reconfigure()
    # The superblock changed: both its mounts show it.
    assert "size=2048k" in mountinfo_line(pid, target)
    assert "size=2048k" in mountinfo_line(pid, bind)
    await child.spit(target / "file", "still writable")
    # A flag option: read-only superblock, through every mount of it.
    await ctx.fsconfig_set_flag(await child.ptr("ro"))
    await ctx.fsconfig_reconfigure()
    assert await write_refused(child, target / "other") == errno.EROFS
    assert await write_refused(child, bind / "other") == errno.EROFS
    assert await read_file(child, bind / "file") == b"still writable"
    await ctx.close()
    await child.exit(0)


async def test_mount_setattr_recursive_read_only(thread: Thread, tmp_path: Path) -> None:
    source, inner, target = tmp_path / "source", tmp_path / "source" / "inner", tmp_path / "t"
    inner.mkdir(parents=True)
    target.mkdir()
    child = await private_child(thread)
    pid = child.process.process.pid
    await attach(child, await new_tmpfs(child), inner)
    tree = await child.task.open_tree(
        None, await child.ptr(source), OPEN_TREE.CLONE | OPEN_TREE.RECURSIVE
    )
    await attach(child, tree, target)
    read_only = await child.ptr(MountAttr(attr_set=MOUNT_ATTR.RDONLY))
    await child.task.mount_setattr(None, await child.ptr(target), AT.RECURSIVE, read_only)
    assert await write_refused(child, target / "file") == errno.EROFS
    assert await write_refused(child, target / "inner" / "file") == errno.EROFS
    # The source tree is another set of mounts: still writable.
    await child.spit(source / "file", "top")
    await child.spit(inner / "file", "sub")
    assert await read_file(child, target / "inner" / "file") == b"sub"
    # Without AT.RECURSIVE only the top mount changes.
    writable = await child.ptr(MountAttr(attr_clr=MOUNT_ATTR.RDONLY))
    await child.task.mount_setattr(None, await child.ptr(target), AT.NONE, writable)
    await child.spit(target / "again", "top is writable")
    assert await write_refused(child, target / "inner" / "again") == errno.EROFS
    # Through an fd and an empty path; propagation too.
    fd = await child.task.open(await child.ptr(target / "inner"), O.PATH)
    attr = await child.ptr(MountAttr(MOUNT_ATTR.NOEXEC, MOUNT_ATTR.RDONLY, MS.SHARED))
    await child.task.mount_setattr(fd, await child.ptr(""), AT.EMPTY_PATH, attr)
    line = mountinfo_line(pid, target / "inner")
    assert "shared:" in line and "noexec" in line and " rw," in line
    await child.spit(target / "inner" / "again", "writable now")
    # Atime modes: a field, changed by clearing its mask.  (On the tmpfs
    # the child made: the host filesystem's mount has its atime mode
    # locked in a child user namespace, EPERM.)
    attr = await child.ptr(MountAttr(MOUNT_ATTR.NOATIME, MOUNT_ATTR._ATIME))
    await child.task.mount_setattr(fd, await child.ptr(""), AT.EMPTY_PATH, attr)
    assert "noatime" in mountinfo_line(pid, target / "inner")
    await child.exit(0)


async def test_id_mapped_mount(thread: Thread, tmp_path: Path) -> None:
    # Root: the mount child is in the initial user namespace (the source
    # is a filesystem of the host's), and mapping a user namespace to
    # uid 1000 needs CAP_SETUID over it.
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "root-file").write_text("owned by 0")
    os.chown(source / "root-file", 0, 0)
    (source / "other-file").write_text("owned by 5")
    os.chown(source / "other-file", 5, 5)
    # A user namespace whose uid 0 is 1000 outside (gid 0: 2000), made by
    # a child that does nothing else; the maps are written from here.
    holder = await thread.clone(CLONE.NEWUSER, automatically_write_user_mappings=False)
    holder_pid = holder.process.process.pid
    with open(f"/proc/{holder_pid}/uid_map", "w") as uid_map:
        uid_map.write("0 1000 1\n")
    with open(f"/proc/{holder_pid}/gid_map", "w") as gid_map:
        gid_map.write("0 2000 1\n")
    child = await private_child(thread, CLONE.NONE)
    userns = await child.task.open(await child.ptr(f"/proc/{holder_pid}/ns/user"), O.RDONLY)
    await holder.exit(0)  # the fd keeps the namespace
    tree = await child.task.open_tree(None, await child.ptr(source), OPEN_TREE.CLONE)
    idmap = await child.ptr(MountAttr(MOUNT_ATTR.IDMAP, userns_fd=userns))
    await child.task.mount_setattr(tree, await child.ptr(""), AT.EMPTY_PATH, idmap)
    await attach(child, tree, target)

    async def owner(path: Path) -> tuple[int, int]:
        stat = await (await child.task.fstatat(
            None, await child.ptr(path), await child.malloc(Stat))).read()
        return stat.uid, stat.gid

    assert await owner(target / "root-file") == (1000, 2000)
    assert await owner(target / "other-file") == (65534, 65534)  # unmapped: the overflow ids
    assert await owner(source / "root-file") == (0, 0)
    assert await read_file(child, target / "root-file") == b"owned by 0"
    # An id-mapped mount cannot be id-mapped again.
    again = await child.task.open_tree(None, await child.ptr(target))
    with pytest.raises(OSError) as info:
        await child.task.mount_setattr(again, await child.ptr(""), AT.EMPTY_PATH, idmap)
    assert info.value.errno in (errno.EPERM, errno.EINVAL)
    await child.exit(0)


async def test_overlay_layers_by_fd(thread: Thread, tmp_path: Path) -> None:
    # Root (a child in the initial user namespace), for an overlay whose
    # upper layer is on the host's filesystem.  Layers given as fds
    # (FSCONFIG_SET_FD) need Linux 6.13 or later.
    for name in ("lower", "upper", "work", "merged"):
        (tmp_path / name).mkdir()
    (tmp_path / "lower" / "file").write_text("from the lower layer")
    child = await private_child(thread, CLONE.NONE)
    task = child.task
    try:
        ctx = await task.fsopen(await child.ptr("overlay"))
    except OSError as error:
        if error.errno == errno.ENODEV:
            pytest.skip("no overlay filesystem in this kernel")
        raise
    for key, name in (("lowerdir+", "lower"), ("upperdir", "upper"), ("workdir", "work")):
        layer = await task.open(await child.ptr(tmp_path / name), O.PATH)
        await ctx.fsconfig_set_fd(await child.ptr(key), layer)
        await layer.close()  # the context holds its own reference
    # Overlay takes no path or binary values: the kernel says so.
    for call in (
        ctx.fsconfig_set_path(await child.ptr("lowerdir+"), None, await child.ptr(tmp_path)),
        ctx.fsconfig_set_path_empty(await child.ptr("lowerdir+"), None, await child.ptr("")),
        ctx.fsconfig_set_binary(await child.ptr("lowerdir+"), await child.ptr(b"lower")),
    ):
        with pytest.raises(OSError) as info:
            await call
        assert info.value.errno == errno.EINVAL
    await ctx.fsconfig_create()
    await attach(child, await ctx.fsmount(), tmp_path / "merged")
    assert await read_file(child, tmp_path / "merged" / "file") == b"from the lower layer"
    await child.spit(tmp_path / "merged" / "file", "changed in the upper layer")
    assert (tmp_path / "upper" / "file").read_text() == "changed in the upper layer"
    assert (tmp_path / "lower" / "file").read_text() == "from the lower layer"
    await child.exit(0)


async def test_kernel_errors(thread: Thread, tmp_path: Path) -> None:
    child = await private_child(thread)
    task = child.task
    with pytest.raises(OSError) as info:
        await task.fsopen(await child.ptr("nosuchfs"))
    assert info.value.errno == errno.ENODEV
    ctx = await task.fsopen(await child.ptr("tmpfs"))
    with pytest.raises(OSError) as info:
        await ctx.fsconfig_set_string(await child.ptr("nosuchkey"), await child.ptr("x"))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await ctx.fsconfig_set_flag(await child.ptr("size"))  # size needs a value
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await ctx.fsmount()  # not created yet
    assert info.value.errno == errno.EINVAL
    # The context still works after its errors.
    await ctx.fsconfig_set_string(await child.ptr("size"), await child.ptr("1m"))
    await ctx.fsconfig_create()
    await ctx.fsmount()
    # The wrong kind of fd: the fsconfig calls and fsmount want a context.
    plain = await task.open(await child.ptr(tmp_path / "plain"), O.RDWR | O.CREAT)
    with pytest.raises(OSError) as info:
        await plain.fsconfig_set_flag(await child.ptr("ro"))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await plain.fsconfig_create()
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await plain.fsmount()
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:  # a file, not a mount
        await attach(child, plain, tmp_path)
    assert info.value.errno == errno.EINVAL
    # ... and the userns of an id mapping must be a user namespace fd.
    tree = await task.open_tree(None, await child.ptr(tmp_path), OPEN_TREE.CLONE)
    with pytest.raises(OSError) as info:
        await task.mount_setattr(
            tree, await child.ptr(""), AT.EMPTY_PATH,
            await child.ptr(MountAttr(MOUNT_ATTR.IDMAP, userns_fd=plain)),
        )
    assert info.value.errno == errno.EINVAL
    # Paths: missing, or no mount point.
    with pytest.raises(FileNotFoundError):
        await task.open_tree(None, await child.ptr(tmp_path / "missing"), OPEN_TREE.CLONE)
    with pytest.raises(OSError) as info:
        await task.fspick(None, await child.ptr(tmp_path))  # a directory, not a mount's root
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.move_mount(
            None, await child.ptr(tmp_path / "missing"), None, await child.ptr(tmp_path)
        )
    assert info.value.errno == errno.ENOENT
    # An atime mode set without clearing the field first; a flag
    # mount_setattr does not take.
    with pytest.raises(OSError) as info:
        await task.mount_setattr(
            tree, await child.ptr(""), AT.EMPTY_PATH,
            await child.ptr(MountAttr(MOUNT_ATTR.NOATIME)),
        )
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.mount_setattr(
            tree, await child.ptr(""), AT.EMPTY_PATH | AT.SYMLINK_FOLLOW,
            await child.ptr(MountAttr(MOUNT_ATTR.RDONLY)),
        )
    assert info.value.errno == errno.EINVAL
    await still_works(child)
    await child.exit(0)


async def test_python_side_checks(thread: Thread, tmp_path: Path) -> None:
    child = await private_child(thread)
    task = child.task
    ctx = await task.fsopen(await child.ptr("tmpfs"))
    key = await child.ptr("size")
    # Values must be pointers to the right kind of thing.
    with pytest.raises(TypeError):
        await task.fsopen("tmpfs")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ctx.fsconfig_set_string(key, "1m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ctx.fsconfig_set_flag(await child.ptr(b"ro\0"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ctx.fsconfig_set_binary(key, await child.ptr("text"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ctx.fsconfig_set_string(key, await child.malloc(str, 8))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ctx.fsconfig_set_fd(key, 3)  # type: ignore[arg-type]
    # Flags of the wrong class.
    with pytest.raises(TypeError):
        await task.open_tree(None, await child.ptr(tmp_path), AT.RECURSIVE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ctx.fsmount(FSMOUNT.NONE, MS.RDONLY)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.fsopen(await child.ptr("tmpfs"), 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mount_setattr(
            None, await child.ptr(tmp_path), AT.NONE, MountAttr()  # type: ignore[arg-type]
        )
    with pytest.raises(TypeError):
        await task.mount_setattr(
            None, await child.ptr(tmp_path), AT.NONE,
            await child.ptr(b"\0" * 32),  # type: ignore[arg-type]
        )
    # MountAttr checks its fields.
    with pytest.raises(TypeError):
        MountAttr(MS.RDONLY)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MountAttr(propagation=MS.SHARED | MS.PRIVATE)
    with pytest.raises(ValueError):
        MountAttr(propagation=MS.RDONLY)
    with pytest.raises(ValueError):
        MountAttr(MOUNT_ATTR.IDMAP)  # no userns
    with pytest.raises(ValueError):
        MountAttr(MOUNT_ATTR.RDONLY, userns_fd=ctx)  # a userns without IDMAP
    with pytest.raises(TypeError):
        MountAttr(MOUNT_ATTR.IDMAP, userns_fd=3)  # type: ignore[arg-type]
    attr = MountAttr(MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID, MOUNT_ATTR.NOEXEC, MS.SLAVE)
    assert MountAttr.from_bytes(attr.to_bytes()) == attr
    assert len(attr.to_bytes()) == MountAttr.sizeof() == 32
    with pytest.raises(AttributeError):
        attr.attr_set = MOUNT_ATTR.NONE
    # A userns fd of another table, or closed since the MountAttr was written.
    other = await thread.task.open(await thread.ptr("/proc/self/ns/user"), O.RDONLY)
    with pytest.raises(ValueError):
        await task.mount_setattr(
            None, await child.ptr(tmp_path), AT.NONE,
            await child.ptr(MountAttr(MOUNT_ATTR.IDMAP, userns_fd=other)),
        )
    await other.close()
    mine = await task.open(await child.ptr("/proc/self/ns/user"), O.RDONLY)
    written = await child.ptr(MountAttr(MOUNT_ATTR.IDMAP, userns_fd=mine))
    await mine.close()
    with pytest.raises(ValueError):
        await task.mount_setattr(None, await child.ptr(tmp_path), AT.NONE, written)
    with pytest.raises(TypeError):  # an fd number read back names no handle
        MountAttr.from_bytes(int(MOUNT_ATTR.IDMAP).to_bytes(8, "little") + bytes(24))
    # Another table's dirfd.
    dirfd = await thread.task.open(await thread.ptr(str(tmp_path)), O.PATH)
    with pytest.raises(ValueError):
        await task.open_tree(dirfd, await child.ptr(""), OPEN_TREE.EMPTY_PATH)
    await dirfd.close()
    # Consumed pointers are refused.
    path = await child.ptr(tmp_path)
    path.split(1)
    with pytest.raises(UseAfterConsumeError):
        await task.open_tree(None, path, OPEN_TREE.CLONE)
    await ctx.close()
    await still_works(child)
    await child.exit(0)


async def test_id_mapped_recursive_read_only_bind(thread: Thread, tmp_path: Path) -> None:
    """The container case: a bind of a tree with a submount, id-mapped and
    read-only all the way down in one mount_setattr.  Root, as in
    test_id_mapped_mount (id-mapping tmpfs needs Linux 6.3)."""
    source, inner, target = tmp_path / "source", tmp_path / "source" / "inner", tmp_path / "t"
    inner.mkdir(parents=True)
    target.mkdir()
    (source / "top-file").write_text("top")
    os.chown(source / "top-file", 0, 0)
    holder = await thread.clone(CLONE.NEWUSER, automatically_write_user_mappings=False)
    holder_pid = holder.process.process.pid
    with open(f"/proc/{holder_pid}/uid_map", "w") as uid_map:
        uid_map.write("0 1000 1\n")
    with open(f"/proc/{holder_pid}/gid_map", "w") as gid_map:
        gid_map.write("0 2000 1\n")
    child = await private_child(thread, CLONE.NONE)
    userns = await child.task.open(await child.ptr(f"/proc/{holder_pid}/ns/user"), O.RDONLY)
    await holder.exit(0)
    await attach(child, await new_tmpfs(child), inner)
    await child.spit(inner / "sub-file", "sub")  # made by uid 0, in the submount
    tree = await child.task.open_tree(
        None, await child.ptr(source), OPEN_TREE.CLONE | OPEN_TREE.RECURSIVE
    )
    attr = await child.ptr(MountAttr(MOUNT_ATTR.RDONLY | MOUNT_ATTR.IDMAP, userns_fd=userns))
    await child.task.mount_setattr(tree, await child.ptr(""), AT.EMPTY_PATH | AT.RECURSIVE, attr)
    await attach(child, tree, target)

    async def owner(path: Path) -> tuple[int, int]:
        stat = await (await child.task.fstatat(
            None, await child.ptr(path), await child.malloc(Stat))).read()
        return stat.uid, stat.gid

    assert await owner(target / "top-file") == (1000, 2000)
    assert await owner(target / "inner" / "sub-file") == (1000, 2000)
    assert await write_refused(child, target / "new") == errno.EROFS
    assert await write_refused(child, target / "inner" / "new") == errno.EROFS
    # The source mounts are untouched: writable, and owned as they are.
    await child.spit(inner / "more", "yes")
    assert await owner(inner / "sub-file") == (0, 0)
    await child.exit(0)
