"""<sys/mount.h>: mount(2), umount2(2), and the MS_* and MNT_* flags.

Mounts belong to a mount namespace: to mount without touching the rest of
the system, do it in a child made with
`thread.clone(CLONE.NEWUSER | CLONE.NEWNS)`, after making its copy of the
mount tree private so that nothing propagates back out:
`await child.task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)`.

The string arguments are pointers to C strings (`thread.ptr("tmpfs")`);
those that mount(2) allows to be NULL may be None.
"""

from __future__ import annotations

from typing import TypeAlias

from rsyscall._enum import IntFlag
from rsyscall.base import BaseTask
from rsyscall.memory.pointer import PathPointer, Pointer, ReadablePointer, borrow, path_address
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_ULONG, BytesSerializer, StrSerializer, int_arg

__all__ = ["MNT", "MS", "MountTask"]


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


MountData: TypeAlias = "ReadablePointer[str] | ReadablePointer[bytes]"

_SYS_mount = int(SYS.mount)
_SYS_umount2 = int(SYS.umount2)



def _string_address(task: BaseTask, name: str, ptr: PathPointer | None) -> int:
    """The address of an optional C string argument: NULL for None."""
    if ptr is None:
        return 0
    if not isinstance(ptr, Pointer):
        raise TypeError(f"{name} must be a pointer to a string or None, not {type(ptr).__name__}")
    return path_address(task, ptr)  # which checks that it holds a string


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
