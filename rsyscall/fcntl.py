"""<fcntl.h>: open(2), openat(2), fcntl(2), and the O_*, AT_*, F_* constants.

Every file descriptor the library creates has close-on-exec set, as Python's
own do (PEP 446): `open` and `openat` always add `O.CLOEXEC`.  A descriptor
meant for a child to inherit across exec is made so explicitly, with
`fd.disable_cloexec()` or by `dup2` onto its number.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import PathPointer, path_address
from rsyscall.near.sysnum import SYS

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["AT", "F", "FD", "O", "SEAL", "FcntlFileDescriptor", "FcntlTask"]

AT_FDCWD = -100


class O(enum.IntFlag):  # noqa: E742 (the C prefix is O_)
    """open(2) flags, and the flags pipe2, dup3 and others share."""

    RDONLY = 0
    WRONLY = 1
    RDWR = 2
    CREAT = 0o100
    EXCL = 0o200
    NOCTTY = 0o400
    TRUNC = 0o1000
    APPEND = 0o2000
    NONBLOCK = 0o4000
    DSYNC = 0o10000
    ASYNC = 0o20000
    DIRECT = 0o40000
    DIRECTORY = 0o200000
    NOFOLLOW = 0o400000
    NOATIME = 0o1000000
    CLOEXEC = 0o2000000
    SYNC = 0o4010000
    PATH = 0o10000000
    TMPFILE = 0o20200000


class AT(enum.IntFlag):
    """Flags of the *at syscalls.  AT_FDCWD is not here: pass `None` as the
    directory fd instead.  EACCESS and REMOVEDIR share a value; each syscall
    gives it its own meaning."""

    NONE = 0
    SYMLINK_NOFOLLOW = 0x100
    REMOVEDIR = 0x200
    EACCESS = 0x200
    SYMLINK_FOLLOW = 0x400
    NO_AUTOMOUNT = 0x800
    EMPTY_PATH = 0x1000
    STATX_SYNC_AS_STAT = 0x0000
    STATX_FORCE_SYNC = 0x2000
    STATX_DONT_SYNC = 0x4000


class F(enum.IntEnum):
    """fcntl(2) commands."""

    DUPFD = 0
    GETFD = 1
    SETFD = 2
    GETFL = 3
    SETFL = 4
    GETLK = 5
    SETLK = 6
    SETLKW = 7
    SETOWN = 8
    GETOWN = 9
    SETSIG = 10
    GETSIG = 11
    OFD_GETLK = 36
    OFD_SETLK = 37
    OFD_SETLKW = 38
    SETLEASE = 1024
    GETLEASE = 1025
    NOTIFY = 1026
    DUPFD_CLOEXEC = 1030
    SETPIPE_SZ = 1031
    GETPIPE_SZ = 1032
    ADD_SEALS = 1033
    GET_SEALS = 1034


class FD(enum.IntFlag):
    """File descriptor flags (F_GETFD, F_SETFD)."""

    NONE = 0
    CLOEXEC = 1


class SEAL(enum.IntFlag):
    """File seals (F_ADD_SEALS, F_GET_SEALS; C prefix F_SEAL_)."""

    NONE = 0
    SEAL = 1
    SHRINK = 2
    GROW = 4
    WRITE = 8
    FUTURE_WRITE = 16


_SYS_openat = int(SYS.openat)
_SYS_fcntl = int(SYS.fcntl)
_O_CLOEXEC = int(O.CLOEXEC)


def dirfd_number(task: BaseTask, dirfd: BaseFileDescriptor | None) -> int:
    """The number to pass for a dirfd argument: AT_FDCWD for None."""
    if dirfd is None:
        return AT_FDCWD
    if not isinstance(dirfd, BaseFileDescriptor):
        raise TypeError(f"dirfd must be a FileDescriptor or None, not {type(dirfd).__name__}")
    if dirfd.task.fd_table is not task.fd_table:
        raise ValueError("dirfd belongs to a different fd table than this task")
    return dirfd.number


class FcntlTask(BaseTask):
    __slots__ = ()

    async def openat(
        self,
        dirfd: FileDescriptor | None,
        path: PathPointer,
        flags: O,
        mode: int = 0o644,
    ) -> FileDescriptor:
        """openat(2): open `path` relative to `dirfd` (None: the working
        directory).  `O.CLOEXEC` is always added."""
        dirnum = dirfd_number(self, dirfd)
        address = path_address(self, path)
        number = await self.sysif.syscall(
            _SYS_openat, dirnum, address, int(flags) | _O_CLOEXEC, mode
        )
        return self.make_fd(number)

    async def open(
        self, path: PathPointer, flags: O, mode: int = 0o644
    ) -> FileDescriptor:
        """open(2), as openat(2) relative to the working directory."""
        return await self.openat(None, path, flags, mode)


class FcntlFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def fcntl(self, cmd: F, arg: int = 0) -> int:
        """fcntl(2) with an integer argument (or none); returns the result.

        F.DUPFD and F.DUPFD_CLOEXEC return a new fd number that nothing owns:
        use `dup()` instead, which returns a handle."""
        return await self.task.sysif.syscall(_SYS_fcntl, self.number, cmd, arg)

    async def disable_cloexec(self) -> None:
        """Clear FD_CLOEXEC, so the fd survives exec (fcntl(2) F_SETFD)."""
        await self.task.sysif.syscall(_SYS_fcntl, self.number, F.SETFD, 0)

    async def enable_cloexec(self) -> None:
        """Set FD_CLOEXEC, so exec closes the fd (fcntl(2) F_SETFD)."""
        await self.task.sysif.syscall(_SYS_fcntl, self.number, F.SETFD, FD.CLOEXEC)

    async def dup(self) -> FileDescriptor:
        """dup(2), as fcntl(2) F_DUPFD_CLOEXEC: a new fd for the same open
        file, close-on-exec like every fd the library makes."""
        number = await self.task.sysif.syscall(_SYS_fcntl, self.number, F.DUPFD_CLOEXEC, 0)
        return self.task.make_fd(number)
