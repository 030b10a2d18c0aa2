"""<sys/mount.h>: mount(2), umount2(2), the fd-based mount API (fsopen,
fsconfig, fsmount, fspick, open_tree, move_mount, mount_setattr), and
their flags and `struct mount_attr`.

Mounts belong to a mount namespace: to mount without touching the rest of
the system, do it in a child made with
`thread.clone(CLONE.NEWUSER | CLONE.NEWNS)`, after making its copy of the
mount tree private so that nothing propagates back out:
`await child.task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)`.

The string arguments are pointers to C strings (`thread.ptr("tmpfs")`);
those that mount(2) allows to be NULL may be None.

The fd-based calls (Linux 5.2 and later; mount_setattr 5.12) split mount(2)
into steps, each on an fd:

* `Task.fsopen("tmpfs")` gives a filesystem context fd; its `fsconfig_*`
  methods (one per FSCONFIG command: `fsconfig_set_string(key, value)`,
  `fsconfig_set_flag(key)`, `fsconfig_set_fd(key, fd)`...,
  `fsconfig_create()`) set the options and make the superblock, and
  `fsmount()` gives a mount fd: a mount attached nowhere.
* `Task.fspick(dirfd, path)` gives a context for an existing superblock,
  to change its options with `fsconfig_reconfigure()`.
* `Task.open_tree(dirfd, path, OPEN_TREE.CLONE | OPEN_TREE.RECURSIVE)`
  copies a mount tree into a detached one (a bind mount not yet placed);
  without CLONE it is an O_PATH fd for the mount itself.
* `Task.move_mount` attaches a detached tree (or moves a mount) from an
  fd and path to an fd and path; for an fd alone, the path is "" with
  MOVE_MOUNT.F_EMPTY_PATH.
* `Task.mount_setattr(dirfd, path, AT.RECURSIVE, attr)` changes the
  mount properties (read-only, nosuid, propagation, an id mapping from a
  user namespace fd) of a mount or a whole tree, as `MountAttr` says.

    ctx = await thread.task.fsopen(await thread.ptr("tmpfs"))
    await ctx.fsconfig_set_string(await thread.ptr("size"), await thread.ptr("1m"))
    await ctx.fsconfig_create()
    mnt = await ctx.fsmount()
    await thread.task.move_mount(mnt, await thread.ptr(""), None, await thread.ptr("/mnt"),
                                 MOVE_MOUNT.F_EMPTY_PATH)

Every fd these calls make is close-on-exec, as every fd the library makes:
the CLOEXEC flags are added whether given or not.  open_tree's flags mix
C's OPEN_TREE_* and the AT_* flags it takes; `OPEN_TREE` has both (its
RECURSIVE is C's AT_RECURSIVE), one class for one argument, as `MNT` has
UMOUNT_NOFOLLOW.  mount_setattr takes only AT_* flags: `rsyscall.fcntl.AT`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, TypeAlias

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.fcntl import AT, dirfd_number
from rsyscall.memory.pointer import (
    PathPointer,
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    path_address,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import (
    C_ULONG,
    BytesSerializer,
    Immutable,
    Layout,
    StrSerializer,
    Struct,
    int_arg,
)

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = [
    "FSCONFIG",
    "FSMOUNT",
    "FSOPEN",
    "FSPICK",
    "MNT",
    "MOUNT_ATTR",
    "MOVE_MOUNT",
    "MS",
    "OPEN_TREE",
    "MountAttr",
    "MountFileDescriptor",
    "MountTask",
]


class MS(IntFlag):
    """mount(2) `mountflags`.

    The kernel-internal MS_ACTIVE and MS_NOUSER of glibc's header are left
    out (mount(2) does not take them), and so is the MS_MGC_VAL magic that
    old callers put in the top 16 bits (the kernel ignores it)."""

    NONE = 0
    RDONLY = 1
    NOSUID = 2
    NODEV = 4
    NOEXEC = 8
    SYNCHRONOUS = 16
    REMOUNT = 32
    MANDLOCK = 64
    DIRSYNC = 128
    NOSYMFOLLOW = 256
    NOATIME = 1024
    NODIRATIME = 2048
    BIND = 4096
    MOVE = 8192
    REC = 16384
    SILENT = 32768
    POSIXACL = 1 << 16
    UNBINDABLE = 1 << 17
    PRIVATE = 1 << 18
    SLAVE = 1 << 19
    SHARED = 1 << 20
    RELATIME = 1 << 21
    KERNMOUNT = 1 << 22
    I_VERSION = 1 << 23
    STRICTATIME = 1 << 24
    LAZYTIME = 1 << 25


class MNT(IntFlag):
    """umount2(2) `flags`.  NOFOLLOW is C's UMOUNT_NOFOLLOW (the others are
    MNT_FORCE, MNT_DETACH, MNT_EXPIRE): one prefix for one argument."""

    NONE = 0
    FORCE = 1
    DETACH = 2
    EXPIRE = 4
    NOFOLLOW = 8


class OPEN_TREE(IntFlag):
    """open_tree(2) `flags`: C's OPEN_TREE_CLONE and OPEN_TREE_CLOEXEC, and
    the AT_* flags open_tree takes, under one class for the one argument
    (SYMLINK_NOFOLLOW, NO_AUTOMOUNT, EMPTY_PATH and RECURSIVE are C's
    AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH, AT_RECURSIVE).

    CLONE makes a detached copy of the mount (with RECURSIVE, of the
    whole tree under it), to attach with move_mount(2); without it the fd
    names the mount where it is (an O_PATH fd).  CLOEXEC is always added."""

    NONE = 0
    CLONE = 1
    CLOEXEC = 0o2000000
    SYMLINK_NOFOLLOW = 0x100
    NO_AUTOMOUNT = 0x800
    EMPTY_PATH = 0x1000
    RECURSIVE = 0x8000


class MOVE_MOUNT(IntFlag):
    """move_mount(2) `flags`: how the from (F_) and to (T_) paths resolve:
    follow a final symlink (F_SYMLINKS), trigger an automount, or take
    an empty path to mean the dirfd itself (F_EMPTY_PATH: move the mount
    an fd names).  SET_GROUP makes the to mount join the from mount's
    peer group instead of moving anything."""

    NONE = 0
    F_SYMLINKS = 0x01
    F_AUTOMOUNTS = 0x02
    F_EMPTY_PATH = 0x04
    T_SYMLINKS = 0x10
    T_AUTOMOUNTS = 0x20
    T_EMPTY_PATH = 0x40
    SET_GROUP = 0x100


class FSOPEN(IntFlag):
    """fsopen(2) `flags`.  CLOEXEC is always added."""

    NONE = 0
    CLOEXEC = 1


class FSPICK(IntFlag):
    """fspick(2) `flags`.  CLOEXEC is always added; EMPTY_PATH picks the
    superblock of the mount the dirfd itself names."""

    NONE = 0
    CLOEXEC = 1
    SYMLINK_NOFOLLOW = 2
    NO_AUTOMOUNT = 4
    EMPTY_PATH = 8


class FSCONFIG(IntEnum):
    """fsconfig(2) commands (C: `enum fsconfig_command`).  Each has its
    own method on the filesystem context fd, taking just the arguments it
    uses: `fsconfig_set_flag`, `fsconfig_set_string`, `fsconfig_set_binary`,
    `fsconfig_set_path`, `fsconfig_set_path_empty`, `fsconfig_set_fd`,
    `fsconfig_create`, `fsconfig_reconfigure`."""

    SET_FLAG = 0
    SET_STRING = 1
    SET_BINARY = 2
    SET_PATH = 3
    SET_PATH_EMPTY = 4
    SET_FD = 5
    CMD_CREATE = 6
    CMD_RECONFIGURE = 7


class FSMOUNT(IntFlag):
    """fsmount(2) `flags`.  CLOEXEC is always added."""

    NONE = 0
    CLOEXEC = 1


class MOUNT_ATTR(IntFlag):
    """Mount attributes: fsmount(2)'s `attr_flags` and `MountAttr`'s
    `attr_set` and `attr_clr`.

    The access-time mode is a 3-bit field, not a flag: RELATIME (0),
    NOATIME and STRICTATIME are its values, and _ATIME (C's
    MOUNT_ATTR__ATIME) is its mask, which `attr_clr` must hold to change
    it.  IDMAP is for mount_setattr(2) only, with `MountAttr.userns_fd`."""

    NONE = 0
    RDONLY = 0x01
    NOSUID = 0x02
    NODEV = 0x04
    NOEXEC = 0x08
    _ATIME = 0x70
    RELATIME = 0x00
    NOATIME = 0x10
    STRICTATIME = 0x20
    NODIRATIME = 0x80
    IDMAP = 0x100000
    NOSYMFOLLOW = 0x200000


MOUNT_ATTR_SIZE_VER0 = 32
"""The size of the first `struct mount_attr`, the one `MountAttr` writes."""

_PROPAGATIONS = (MS.NONE, MS.SHARED, MS.SLAVE, MS.PRIVATE, MS.UNBINDABLE)


class MountAttr(Struct, Immutable):
    """`struct mount_attr`, for mount_setattr(2): the attributes to set and
    to clear, a propagation type to set (MS.SHARED, MS.SLAVE, MS.PRIVATE,
    MS.UNBINDABLE, or MS.NONE to leave it), and, with MOUNT_ATTR.IDMAP in
    `attr_set`, the user namespace fd (`userns_fd`, a FileDescriptor) whose
    id maps the mount gets.  Immutable.

    The fd must be in the table of the task that calls mount_setattr, and
    open then; the struct holds the handle, so the fd lives as long as
    the pointer written from it.  Read back from memory, a MountAttr with
    IDMAP set is a TypeError: an fd number there names no handle."""

    __slots__ = ("attr_clr", "attr_set", "propagation", "userns_fd")
    layout = Layout(
        "struct mount_attr",
        [("attr_set", "Q"), ("attr_clr", "Q"), ("propagation", "Q"), ("userns_fd", "Q")],
    )
    attr_set: MOUNT_ATTR
    attr_clr: MOUNT_ATTR
    propagation: MS
    userns_fd: FileDescriptor | None

    def __init__(
        self,
        attr_set: MOUNT_ATTR = MOUNT_ATTR.NONE,
        attr_clr: MOUNT_ATTR = MOUNT_ATTR.NONE,
        propagation: MS = MS.NONE,
        userns_fd: FileDescriptor | None = None,
    ) -> None:
        checks = (("attr_set", attr_set, MOUNT_ATTR), ("attr_clr", attr_clr, MOUNT_ATTR),
                  ("propagation", propagation, MS))
        for name, value, cls in checks:
            if isinstance(value, bool) or not (
                isinstance(value, cls) or (type(value) is int and value == 0)
            ):
                raise TypeError(f"MountAttr.{name} must be {cls.__name__} flags, not {value!r}")
            int_arg(f"MountAttr.{name}", int(value), C_ULONG)  # a flag made of too big an int
        if propagation not in _PROPAGATIONS:
            raise ValueError(
                f"MountAttr.propagation must be one of MS.SHARED, MS.SLAVE, MS.PRIVATE, "
                f"MS.UNBINDABLE or MS.NONE, not {propagation!r}"
            )
        if userns_fd is not None and not isinstance(userns_fd, BaseFileDescriptor):
            raise TypeError(
                "MountAttr.userns_fd must be a FileDescriptor or None, not "
                f"{type(userns_fd).__name__}"
            )
        if bool(attr_set & MOUNT_ATTR.IDMAP) != (userns_fd is not None):
            raise ValueError(
                "MountAttr takes a userns_fd exactly when attr_set has MOUNT_ATTR.IDMAP")
        object.__setattr__(self, "attr_set", MOUNT_ATTR(attr_set))
        object.__setattr__(self, "attr_clr", MOUNT_ATTR(attr_clr))
        object.__setattr__(self, "propagation", MS(propagation))
        object.__setattr__(self, "userns_fd", userns_fd)

    def __repr__(self) -> str:
        return (f"MountAttr({self.attr_set!r}, {self.attr_clr!r}, {self.propagation!r}, "
                f"userns_fd={self.userns_fd!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MountAttr):
            return NotImplemented
        return (self.attr_set, self.attr_clr, self.propagation, self.userns_fd) == (
            other.attr_set, other.attr_clr, other.propagation, other.userns_fd)

    def __hash__(self) -> int:
        return hash((self.attr_set, self.attr_clr, self.propagation, id(self.userns_fd)))

    def to_bytes(self) -> bytes:
        userns_fd = 0 if self.userns_fd is None else self.userns_fd.number
        return self.layout.struct.pack(
            int(self.attr_set), int(self.attr_clr), int(self.propagation), userns_fd)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a MountAttr needs {size} bytes, got {len(data)}")
        attr_set, attr_clr, propagation, _ = cls.layout.struct.unpack(data[:size])
        if attr_set & MOUNT_ATTR.IDMAP:
            raise TypeError("a MountAttr with MOUNT_ATTR.IDMAP cannot be read back: "
                            "its userns_fd number names no FileDescriptor")
        return cls(MOUNT_ATTR(attr_set), MOUNT_ATTR(attr_clr), MS(propagation))


MountData: TypeAlias = "ReadablePointer[str] | ReadablePointer[bytes]"

_SYS_mount = int(SYS.mount)
_SYS_umount2 = int(SYS.umount2)
_SYS_fsopen = int(SYS.fsopen)
_SYS_fsconfig = int(SYS.fsconfig)
_SYS_fsmount = int(SYS.fsmount)
_SYS_fspick = int(SYS.fspick)
_SYS_open_tree = int(SYS.open_tree)
_SYS_move_mount = int(SYS.move_mount)
_SYS_mount_setattr = int(SYS.mount_setattr)


def _string_address(task: BaseTask, name: str, ptr: PathPointer | None) -> int:
    """The address of an optional C string argument: NULL for None."""
    if ptr is None:
        return 0
    if not isinstance(ptr, Pointer):
        raise TypeError(f"{name} must be a pointer to a string or None, not {type(ptr).__name__}")
    return path_address(task, ptr)  # which checks that it holds a string


def _cstring_address(task: BaseTask, name: str, ptr: WrittenPointer[str]) -> int:
    """The address of a C string argument that is no path (an fsconfig key)."""
    if not isinstance(ptr, Pointer):
        raise TypeError(f"{name} must be a pointer to a str, not {type(ptr).__name__}")
    alloc = borrow(ptr, task)
    if not isinstance(ptr.serializer, StrSerializer):
        raise TypeError(f"{name} must be a pointer to a str, from thread.ptr(\"...\")")
    return alloc.address


def _fd_number(task: BaseTask, name: str, fd: FileDescriptor) -> int:
    """The number of an fd argument that must be in `task`'s table."""
    if not isinstance(fd, BaseFileDescriptor):
        raise TypeError(f"{name} must be a FileDescriptor, not {type(fd).__name__}")
    if fd.task.fd_table is not task.fd_table:
        raise ValueError(f"{name} belongs to a different fd table than this task")
    return fd.number


def _data_address(task: BaseTask, data: MountData | None) -> int:
    if data is None:
        return 0
    if not isinstance(data, Pointer):
        raise TypeError(f"data must be a pointer to a str or bytes, not {type(data).__name__}")
    alloc = borrow(data, task)  # which checks that it is initialized
    if not isinstance(data.serializer, StrSerializer | BytesSerializer):
        raise TypeError("data must point to a str (an options string) or raw bytes")
    return alloc.address


class MountTask(BaseTask):
    __slots__ = ()

    async def mount(
        self,
        source: PathPointer | None,
        target: PathPointer,
        filesystemtype: PathPointer | None,
        mountflags: MS,
        data: MountData | None,
    ) -> None:
        """mount(2): attach the filesystem `source` of type `filesystemtype`
        at `target`, in this process's mount namespace.

        `mountflags` chooses the operation (MS.REMOUNT, MS.BIND, a
        propagation flag such as MS.PRIVATE, MS.MOVE, or else a new mount)
        and its options.  `source` and `filesystemtype` are C strings, and
        None (NULL) where the operation ignores them.  `data` is the
        filesystem's options, usually a string like "size=1m,mode=700";
        bytes are passed as they are, for filesystems that take binary
        data (the kernel copies up to a page from the address, whatever
        the pointer's size).  None passes NULL: no options."""
        await self.sysif.syscall(
            _SYS_mount,
            _string_address(self, "source", source),
            path_address(self, target),
            _string_address(self, "filesystemtype", filesystemtype),
            int_arg("mountflags", mountflags, C_ULONG),
            _data_address(self, data),
        )

    async def umount2(self, target: PathPointer, flags: MNT = MNT.NONE) -> None:
        """umount2(2): detach the topmost mount at `target`; `flags` may ask
        for a lazy (MNT.DETACH) or forced unmount, or refuse to follow a
        symlink (MNT.NOFOLLOW)."""
        await self.sysif.syscall(
            _SYS_umount2, path_address(self, target), int_arg("flags", flags, C_ULONG)
        )

    async def umount(self, target: PathPointer) -> None:
        """umount(2): umount2(2) with no flags (x86_64 has no umount syscall)."""
        await self.umount2(target, MNT.NONE)

    async def fsopen(
        self, fsname: WrittenPointer[str], flags: FSOPEN = FSOPEN.NONE
    ) -> FileDescriptor:
        """fsopen(2): a filesystem context fd for a new superblock of the
        filesystem type `fsname` ("tmpfs", "proc"...); set its options with
        its `fsconfig_*` methods, then `fsconfig_create()` and `fsmount()`.
        An unknown type is ENODEV.  Close-on-exec whatever `flags` say."""
        number = await self.sysif.syscall(
            _SYS_fsopen, _cstring_address(self, "fsname", fsname), int(flags) | FSOPEN.CLOEXEC
        )
        return self.make_fd(number)

    async def fspick(
        self, dirfd: FileDescriptor | None, path: PathPointer, flags: FSPICK = FSPICK.NONE
    ) -> FileDescriptor:
        """fspick(2): a filesystem context fd for the superblock mounted at
        `path` (relative to `dirfd`; None: the working directory), to change
        its options: `fsconfig_set_*`, then `fsconfig_reconfigure()`.
        Close-on-exec whatever `flags` say."""
        number = await self.sysif.syscall(
            _SYS_fspick, dirfd_number(self, dirfd), path_address(self, path),
            int(flags) | FSPICK.CLOEXEC,
        )
        return self.make_fd(number)

    async def open_tree(
        self, dirfd: FileDescriptor | None, path: PathPointer, flags: OPEN_TREE = OPEN_TREE.NONE
    ) -> FileDescriptor:
        """open_tree(2): an fd for the mount at `path` (relative to `dirfd`;
        None: the working directory); with OPEN_TREE.CLONE, for a detached
        copy of it (and, with OPEN_TREE.RECURSIVE, of the mounts under it):
        a bind mount to attach with `move_mount`, dropped with the last
        close if never attached.  Close-on-exec whatever `flags` say."""
        number = await self.sysif.syscall(
            _SYS_open_tree, dirfd_number(self, dirfd), path_address(self, path),
            int(flags) | OPEN_TREE.CLOEXEC,
        )
        return self.make_fd(number)

    async def move_mount(
        self,
        from_dirfd: FileDescriptor | None,
        from_path: PathPointer,
        to_dirfd: FileDescriptor | None,
        to_path: PathPointer,
        flags: MOVE_MOUNT = MOVE_MOUNT.NONE,
    ) -> None:
        """move_mount(2): move the mount at `from_path` (relative to
        `from_dirfd`; None: the working directory) onto `to_path` (relative
        to `to_dirfd`).  For a detached tree from fsmount or open_tree, the
        from side is the fd with an empty path and MOVE_MOUNT.F_EMPTY_PATH:
        `move_mount(mnt, await thread.ptr(""), None, target, MOVE_MOUNT.F_EMPTY_PATH)`."""
        await self.sysif.syscall(
            _SYS_move_mount, dirfd_number(self, from_dirfd), path_address(self, from_path),
            dirfd_number(self, to_dirfd), path_address(self, to_path), int(flags),
        )

    async def mount_setattr(
        self,
        dirfd: FileDescriptor | None,
        path: PathPointer,
        flags: AT,
        attr: WrittenPointer[MountAttr],
    ) -> None:
        """mount_setattr(2): change the properties of the mount at `path`
        (relative to `dirfd`; None: the working directory; an empty path
        with AT.EMPTY_PATH: the mount `dirfd` names), and with AT.RECURSIVE
        of every mount under it, as `attr` says: set and clear
        MOUNT_ATTR flags, change propagation, or (MOUNT_ATTR.IDMAP, on a
        detached tree from open_tree(OPEN_TREE.CLONE)) map ids through
        `attr.userns_fd`'s user namespace.  The size passed is the pointer's."""
        if not isinstance(attr, WrittenPointer) or not isinstance(attr.value, MountAttr):
            raise TypeError("attr must be a written pointer to a MountAttr, from thread.ptr")
        userns_fd = attr.value.userns_fd
        if userns_fd is not None:
            if userns_fd.closed:
                raise ValueError("the MountAttr's userns_fd was closed after it was written")
            _fd_number(self, "MountAttr.userns_fd", userns_fd)
        alloc = borrow(attr, self)
        await self.sysif.syscall(
            _SYS_mount_setattr, dirfd_number(self, dirfd), path_address(self, path),
            int(flags), alloc.address, alloc.size,
        )


class MountFileDescriptor(BaseFileDescriptor):
    """The fsconfig(2) and fsmount(2) calls, on a filesystem context fd
    (from fsopen or fspick); on any other fd they fail with EINVAL."""

    __slots__ = ()

    async def fsconfig_set_flag(self, key: WrittenPointer[str]) -> None:
        """fsconfig(2) FSCONFIG_SET_FLAG: set the option `key` that takes
        no value ("ro", "noswap"...).  An option the filesystem does not
        know is EINVAL."""
        key_address = _cstring_address(self.task, "key", key)
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.SET_FLAG, key_address, 0, 0
        )

    async def fsconfig_set_string(
        self, key: WrittenPointer[str], value: WrittenPointer[str]
    ) -> None:
        """fsconfig(2) FSCONFIG_SET_STRING: set the option `key` to the
        string `value` ("size" to "1m", "mode" to "0755"...)."""
        key_address = _cstring_address(self.task, "key", key)
        value_address = _cstring_address(self.task, "value", value)
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.SET_STRING, key_address, value_address, 0
        )

    async def fsconfig_set_binary(
        self, key: WrittenPointer[str], value: WrittenPointer[bytes]
    ) -> None:
        """fsconfig(2) FSCONFIG_SET_BINARY: set the option `key` to the
        binary blob `value`; its size is the pointer's."""
        key_address = _cstring_address(self.task, "key", key)
        alloc = borrow(value, self.task)
        if not isinstance(value.serializer, BytesSerializer):
            raise TypeError("value must be a pointer to bytes, from thread.ptr(b\"...\")")
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.SET_BINARY, key_address, alloc.address,
            alloc.size,
        )

    async def fsconfig_set_path(
        self, key: WrittenPointer[str], dirfd: FileDescriptor | None, path: PathPointer
    ) -> None:
        """fsconfig(2) FSCONFIG_SET_PATH: set the option `key` to the object
        at `path`, relative to `dirfd` (None: the working directory)."""
        key_address = _cstring_address(self.task, "key", key)
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.SET_PATH, key_address,
            path_address(self.task, path), dirfd_number(self.task, dirfd),
        )

    async def fsconfig_set_path_empty(
        self, key: WrittenPointer[str], dirfd: FileDescriptor | None, path: PathPointer
    ) -> None:
        """fsconfig(2) FSCONFIG_SET_PATH_EMPTY: as `fsconfig_set_path`, but
        an empty `path` means `dirfd` itself (AT_EMPTY_PATH)."""
        key_address = _cstring_address(self.task, "key", key)
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.SET_PATH_EMPTY, key_address,
            path_address(self.task, path), dirfd_number(self.task, dirfd),
        )

    async def fsconfig_set_fd(self, key: WrittenPointer[str], fd: FileDescriptor) -> None:
        """fsconfig(2) FSCONFIG_SET_FD: set the option `key` to the open
        file `fd` (in this fd's table); the context keeps its own
        reference, so `fd` may be closed after."""
        key_address = _cstring_address(self.task, "key", key)
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.SET_FD, key_address, 0,
            _fd_number(self.task, "fd", fd),
        )

    async def fsconfig_create(self) -> None:
        """fsconfig(2) FSCONFIG_CMD_CREATE: make the superblock from the
        options set so far (or find an existing one to share), ready for
        `fsmount`.  Errors of the options as a whole come here."""
        await self.task.sysif.syscall(_SYS_fsconfig, self.number, FSCONFIG.CMD_CREATE, 0, 0, 0)

    async def fsconfig_reconfigure(self) -> None:
        """fsconfig(2) FSCONFIG_CMD_RECONFIGURE: apply the options set so
        far to the superblock of a context from fspick: every mount of
        it sees the change."""
        await self.task.sysif.syscall(
            _SYS_fsconfig, self.number, FSCONFIG.CMD_RECONFIGURE, 0, 0, 0
        )

    async def fsmount(
        self, flags: FSMOUNT = FSMOUNT.NONE, attr_flags: MOUNT_ATTR = MOUNT_ATTR.NONE
    ) -> FileDescriptor:
        """fsmount(2): a mount fd for this context's superblock (after
        `fsconfig_create`), a mount attached nowhere, with the per-mount
        `attr_flags` (MOUNT_ATTR.RDONLY, NOSUID..., not IDMAP); attach it
        with `Task.move_mount`.  Close-on-exec whatever `flags` say."""
        number = await self.task.sysif.syscall(
            _SYS_fsmount, self.number, int(flags) | FSMOUNT.CLOEXEC, int(attr_flags)
        )
        return self.task.make_fd(number)
