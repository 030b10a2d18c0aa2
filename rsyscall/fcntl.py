"""<fcntl.h>: open(2), openat(2), fcntl(2), and the O_*, AT_*, F_* constants.

Every file descriptor the library creates has close-on-exec set, as Python's
own do (PEP 446): `open` and `openat` always add `O.CLOEXEC`.  A descriptor
meant for a child to inherit across exec is made so explicitly, with
`fd.disable_cloexec()` or by `dup2` onto its number.

fcntl(2) takes, depending on the command, nothing, an integer, or a
pointer to a struct, so `FileDescriptor.fcntl` checks the argument against
the command (typing.overload gives mypy the same view):

* Lock commands take a pointer to a `Flock` (`struct flock`).  F.GETLK and
  F.OFD_GETLK read the lock asked about and write the answer, so they take
  a written pointer (from `thread.ptr(Flock(...))`), consume it, and
  return a `ReadablePointer[Flock]` to the same memory.  F.SETLK, F.SETLKW,
  F.OFD_SETLK and F.OFD_SETLKW only read it: they borrow the pointer and
  return 0.
* F.GETOWN_EX writes a `FOwnerEx` (`struct f_owner_ex`) into a pointer,
  which it consumes, returning a `ReadablePointer[FOwnerEx]`; F.SETOWN_EX
  borrows a written one.
* The other commands take an integer, or nothing.  Their static types use
  the enums that exist for them (F.SETFD takes `FD`, F.SETFL `O`,
  F.ADD_SEALS `SEAL`, F.SETLEASE `FlockType`), and the matching get
  commands return them (F.GETFD an `FD`, F.GETFL an `O`, F.GET_SEALS a
  `SEAL`, F.GETLEASE a `FlockType`).  At run time any int in the range of
  the C argument is accepted, since the kernel judges the value; no
  integer is ever taken as an address.

A pointer given to an integer command, or an integer to a pointer command,
is a TypeError; a command number that is no member of `F` is a ValueError
(an unknown command might take an address).  The overloads are keyed on
the `F` members as literals, so mypy checks `fd.fcntl(F.GETLK, ptr)`; a
command held in a variable of type `F` matches none of them (annotate it
with a `Literal[...]` of the commands it may be, or call once per command).

Besides fcntl, the calls this header declares: posix_fadvise(2) (the
fadvise64 syscall), fallocate(2), readahead(2), sync_file_range(2),
splice(2), tee(2) and vmsplice(2) (methods of the fd they act on), and
name_to_handle_at(2) / open_by_handle_at(2) (of the task, as openat),
whose `struct file_handle` is `FileHandle`.

`SEEK` (SEEK_SET...) is defined here, for `Flock.whence`: <fcntl.h>
defines SEEK_SET, SEEK_CUR and SEEK_END too.  rsyscall.unistd, the header
of lseek(2), exports the same class.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, cast, overload

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.pointer import (
    PathPointer,
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    check_points_to,
    path_address,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Int64, Layout, Serializable, Struct, int_arg
from rsyscall.sys.uio import (
    IovecList,
    iov_buffers,
    restore_buffers,
    split_buffers,
    take_buffers,
)

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.signal import SIG
    from rsyscall.sys.stat import S

__all__ = [
    "AT",
    "F",
    "FALLOC_FL",
    "FD",
    "F_OWNER",
    "MAX_HANDLE_SZ",
    "O",
    "POSIX_FADV",
    "SEAL",
    "SEEK",
    "SPLICE_F",
    "SYNC_FILE_RANGE",
    "FOwnerEx",
    "FileHandle",
    "FcntlFileDescriptor",
    "FcntlTask",
    "Flock",
    "FlockType",
]

AT_FDCWD = -100


class O(IntFlag):  # noqa: E742 (the C prefix is O_)
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


class AT(IntFlag):
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
    RECURSIVE = 0x8000


class SEEK(IntEnum):
    """Where an offset counts from: lseek(2)'s whence, and `Flock.whence`
    (C: SEEK_SET...; DATA and HOLE are lseek's only)."""

    SET = 0
    CUR = 1
    END = 2
    DATA = 3
    HOLE = 4


class F(IntEnum):
    """fcntl(2) commands.  Which argument each takes: see the module docstring."""

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
    SETOWN_EX = 15
    GETOWN_EX = 16
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


class FD(IntFlag):
    """File descriptor flags (F_GETFD, F_SETFD)."""

    NONE = 0
    CLOEXEC = 1


class SEAL(IntFlag):
    """File seals (F_ADD_SEALS, F_GET_SEALS; C prefix F_SEAL_)."""

    NONE = 0
    SEAL = 1
    SHRINK = 2
    GROW = 4
    WRITE = 8
    FUTURE_WRITE = 16


class FlockType(IntEnum):
    """The kind of a record lock (C: F_RDLCK, F_WRLCK, F_UNLCK): `Flock.type`,
    and the lease of F.SETLEASE / F.GETLEASE.

    Named after the field it fills, `l_type` of `struct flock`, since its C
    prefix F_ is `F`'s (the commands); the members keep their C names
    without it."""

    RDLCK = 0
    WRLCK = 1
    UNLCK = 2


class F_OWNER(IntEnum):
    """What `FOwnerEx.pid` names (C: F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP)."""

    TID = 0
    PID = 1
    PGRP = 2


class POSIX_FADV(IntEnum):
    """posix_fadvise(2) advice."""

    NORMAL = 0
    RANDOM = 1
    SEQUENTIAL = 2
    WILLNEED = 3
    DONTNEED = 4
    NOREUSE = 5


class FALLOC_FL(IntFlag):
    """fallocate(2) modes (NONE: allocate the range, growing the file)."""

    NONE = 0
    KEEP_SIZE = 0x01
    PUNCH_HOLE = 0x02
    NO_HIDE_STALE = 0x04
    COLLAPSE_RANGE = 0x08
    ZERO_RANGE = 0x10
    INSERT_RANGE = 0x20
    UNSHARE_RANGE = 0x40


class SPLICE_F(IntFlag):
    """splice(2), tee(2) and vmsplice(2) flags."""

    NONE = 0
    MOVE = 1
    NONBLOCK = 2
    MORE = 4
    GIFT = 8


class SYNC_FILE_RANGE(IntFlag):
    """sync_file_range(2) flags."""

    NONE = 0
    WAIT_BEFORE = 1
    WRITE = 2
    WAIT_AFTER = 4
    WRITE_AND_WAIT = 7


MAX_HANDLE_SZ = 128
"""The largest `FileHandle.handle` any filesystem makes."""

_SHORT = (-(1 << 15), (1 << 15) - 1)
_INT = (-(1 << 31), (1 << 31) - 1)
_OFF = (-(1 << 63), (1 << 63) - 1)


def _enum_or_int(cls: type[enum.IntEnum], value: int) -> Any:
    try:
        return cls(value)
    except ValueError:
        return value


@dataclasses.dataclass(frozen=True, slots=True)  # slots made here: the fields have defaults
class Flock(Struct):
    """`struct flock`: a byte-range lock, for the lock commands of fcntl(2).

    `type` is the lock (`FlockType`); `whence` (a `SEEK`: SET, CUR or END)
    and `start` say where it begins, `len` how many bytes it covers (0: to
    the end of the file, however it grows; negative: the bytes before
    `start`).  `pid` is filled in by F.GETLK with the process holding a
    conflicting lock (-1 for an open file description lock, from
    F.OFD_GETLK); it must be 0 for the OFD commands.  F.GETLK writes
    `type` UNLCK when nothing conflicts.  Fields in C order, prefix l_
    dropped; `Flock(FlockType.WRLCK)` locks the whole file."""

    type: FlockType
    whence: SEEK = SEEK.SET
    start: int = 0
    len: int = 0
    pid: int = 0
    layout: ClassVar[Layout] = Layout(
        "struct flock",
        [
            ("l_type", "h"),
            ("l_whence", "h"),
            ("_pad", "4x"),
            ("l_start", "q"),
            ("l_len", "q"),
            ("l_pid", "i"),
            ("_tail", "4x"),
        ],
    )

    def __post_init__(self) -> None:
        for name, limits in (
            ("type", _SHORT), ("whence", _SHORT), ("start", _OFF), ("len", _OFF), ("pid", _INT),
        ):
            int_arg(f"Flock.{name}", getattr(self, name), limits)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.type, self.whence, self.start, self.len, self.pid)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct flock needs {size} bytes, got {len(data)}")
        type_, whence, start, length, pid = cls.layout.struct.unpack_from(data)
        return cls(
            _enum_or_int(FlockType, type_), _enum_or_int(SEEK, whence), start, length, pid
        )


@dataclasses.dataclass(frozen=True)
class FOwnerEx(Struct):
    """`struct f_owner_ex`: who gets the I/O signals of an fd (F.SETOWN_EX,
    F.GETOWN_EX): the thread, process or process group `pid`, as `type`
    says.  Prefix-free already in C."""

    __slots__ = ("pid", "type")

    type: F_OWNER
    pid: int
    layout: ClassVar[Layout] = Layout("struct f_owner_ex", [("type", "i"), ("pid", "i")])

    def __post_init__(self) -> None:
        int_arg("FOwnerEx.type", self.type, _INT)
        int_arg("FOwnerEx.pid", self.pid, _INT)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.type, self.pid)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct f_owner_ex needs {size} bytes, got {len(data)}")
        type_, pid = cls.layout.struct.unpack_from(data)
        return cls(_enum_or_int(F_OWNER, type_), pid)


_FILE_HANDLE_HEAD = struct.Struct("<Ii")


@dataclasses.dataclass(frozen=True)
class FileHandle(Serializable):
    """`struct file_handle`: a file named by its filesystem, without a
    path (name_to_handle_at(2), open_by_handle_at(2)): the opaque
    `handle` bytes and their `type`.  Variable-size (`handle_bytes` is
    the length of `handle`): allocate room for the kernel to fill with
    `thread.malloc(FileHandle, FileHandle.HEADER + MAX_HANDLE_SZ)`."""

    __slots__ = ("handle", "type")

    type: int
    handle: bytes
    HEADER: ClassVar[int] = 8
    layout: ClassVar[Layout] = Layout(
        "struct file_handle", [("handle_bytes", "I"), ("handle_type", "i")]
    )

    def __post_init__(self) -> None:
        int_arg("FileHandle.type", self.type, _INT)
        if not isinstance(self.handle, bytes):
            raise TypeError(f"FileHandle.handle must be bytes, not {type(self.handle).__name__}")

    def to_bytes(self) -> bytes:
        return _FILE_HANDLE_HEAD.pack(len(self.handle), self.type) + self.handle

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.HEADER:
            raise ValueError(f"a struct file_handle needs {cls.HEADER} bytes, got {len(data)}")
        size, type_ = _FILE_HANDLE_HEAD.unpack_from(data)
        if len(data) < cls.HEADER + size:
            raise ValueError(f"a file handle of {size} bytes, but only {len(data)} in memory")
        return cls(type_, bytes(data[cls.HEADER : cls.HEADER + size]))


_SYS_openat = int(SYS.openat)
# S is defined in rsyscall.sys.stat, which imports this module: the
# default mode is its value, rw-r--r--.
_MODE_644 = cast("S", 0o644)
_SYS_fcntl = int(SYS.fcntl)
_O_CLOEXEC = int(O.CLOEXEC)


_PERMISSION_BITS = 0o7777


def permission_bits(mode: int, limit: int = _PERMISSION_BITS) -> int:
    """The permission bits `mode` (an `S` or a plain int) names, checked:
    ValueError if it has bits above `limit` (by default 0o7777, the
    permission, set-id and sticky bits; a file type such as S.IFREG is
    none of them).  The kernel would drop such bits silently."""
    if int(mode) & ~limit:
        raise ValueError(
            f"mode {int(mode):#o} has bits outside the permission bits {limit:#o}"
        )
    return int(mode)


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
        mode: S = _MODE_644,
    ) -> FileDescriptor:
        """openat(2): open `path` relative to `dirfd` (None: the working
        directory).  `O.CLOEXEC` is always added.  `mode` (`S` bits, less
        the umask) is the permissions of a file it creates."""
        mode = permission_bits(mode)  # type: ignore[assignment]
        dirnum = dirfd_number(self, dirfd)
        address = path_address(self, path)
        number = await self.sysif.syscall(
            _SYS_openat, dirnum, address, int(flags) | _O_CLOEXEC, mode
        )
        return self.make_fd(number)

    async def open(
        self, path: PathPointer, flags: O, mode: S = _MODE_644
    ) -> FileDescriptor:
        """open(2), as openat(2) relative to the working directory."""
        return await self.openat(None, path, flags, mode)

    async def name_to_handle_at(
        self,
        dirfd: FileDescriptor | None,
        path: PathPointer,
        handle: Pointer[FileHandle],
        flags: AT = AT.NONE,
    ) -> tuple[ReadablePointer[FileHandle], int]:
        """name_to_handle_at(2): the file handle of `path` (relative to
        `dirfd`, None: the working directory; with AT.EMPTY_PATH and an
        empty path, `dirfd`'s own file; AT.SYMLINK_FOLLOW follows a final
        symlink), and the id of the mount it is on.

        `handle` is consumed and returned filled; its size, less the
        8-byte header (`FileHandle.HEADER`), is the room for the handle:
        EOVERFLOW if too small (MAX_HANDLE_SZ is always enough), and the
        pointer is left as it was."""
        dirnum = dirfd_number(self, dirfd)
        address = path_address(self, path)
        check_points_to(handle, FileHandle)
        alloc = take(handle, self, FileHandle.HEADER)
        try:
            # More than MAX_HANDLE_SZ is EINVAL; the rest of the buffer stays unused.
            room = min(alloc.size - FileHandle.HEADER, MAX_HANDLE_SZ)
            await self.space.transport.write(alloc.address, struct.pack("<I", room))
            mount_id = await self.space.stage(bytes(4))
            await self.sysif.syscall(
                SYS.name_to_handle_at, dirnum, address, alloc.address, mount_id.address, flags
            )
            data = await self.space.transport.read(mount_id.address, 4)
        except BaseException:
            restore(handle, alloc)
            raise
        return handle._readable(alloc, self), int.from_bytes(data, "little", signed=True)

    async def open_by_handle_at(
        self, mount_fd: FileDescriptor | None, handle: ReadablePointer[FileHandle], flags: O
    ) -> FileDescriptor:
        """open_by_handle_at(2): open the file `handle` names (from
        name_to_handle_at) on the filesystem of `mount_fd` (any fd on it;
        None: the working directory's), with open `flags` (O.CLOEXEC always
        added; O.PATH opens it for fstat and *at calls only).  Needs
        CAP_DAC_READ_SEARCH (EPERM); ESTALE if the file is gone."""
        mount = dirfd_number(self, mount_fd)
        check_points_to(handle, FileHandle)
        alloc = borrow(handle, self, FileHandle.HEADER)
        number = await self.sysif.syscall(
            SYS.open_by_handle_at, mount, alloc.address, int(flags) | _O_CLOEXEC
        )
        return self.make_fd(number)


# What each command's argument is.  "none": no argument (any given must be
# 0); "int": an integer value; the rest a pointer: "get" written by the
# kernel (after reading it, for the locks), "set" only read.
_NONE, _VALUE, _LOCK_GET, _LOCK_SET, _OWNER_GET, _OWNER_SET = range(6)
_KIND: dict[F, int] = {
    F.DUPFD: _VALUE,
    F.GETFD: _NONE,
    F.SETFD: _VALUE,
    F.GETFL: _NONE,
    F.SETFL: _VALUE,
    F.GETLK: _LOCK_GET,
    F.SETLK: _LOCK_SET,
    F.SETLKW: _LOCK_SET,
    F.SETOWN: _VALUE,
    F.GETOWN: _NONE,
    F.SETSIG: _VALUE,
    F.GETSIG: _NONE,
    F.SETOWN_EX: _OWNER_SET,
    F.GETOWN_EX: _OWNER_GET,
    F.OFD_GETLK: _LOCK_GET,
    F.OFD_SETLK: _LOCK_SET,
    F.OFD_SETLKW: _LOCK_SET,
    F.SETLEASE: _VALUE,
    F.GETLEASE: _NONE,
    F.NOTIFY: _VALUE,
    F.DUPFD_CLOEXEC: _VALUE,
    F.SETPIPE_SZ: _VALUE,
    F.GETPIPE_SZ: _NONE,
    F.ADD_SEALS: _VALUE,
    F.GET_SEALS: _NONE,
}
# The results that have an enum.
_RESULT: dict[F, type[enum.IntFlag] | type[enum.IntEnum]] = {
    F.GETFD: FD,
    F.GETFL: O,
    F.GET_SEALS: SEAL,
    F.GETLEASE: FlockType,
}
# The kernel takes an unsigned long and uses it as an int or unsigned int
# (DN_MULTISHOT is bit 31): either is accepted, nothing bigger.
_VALUE_RANGE = (-(1 << 31), (1 << 32) - 1)


def _command(cmd: object) -> F:
    if not isinstance(cmd, int) or isinstance(cmd, bool):
        raise TypeError(f"cmd must be an F, not {type(cmd).__name__}")
    try:
        return F(cmd)
    except ValueError:
        raise ValueError(
            f"{cmd} is not an fcntl command the library knows (a member of F), "
            "so it cannot tell what its argument is"
        ) from None


class FcntlFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    @overload
    async def fcntl(
        self, cmd: Literal[F.GETLK, F.OFD_GETLK], arg: ReadablePointer[Flock]
    ) -> ReadablePointer[Flock]: ...
    @overload
    async def fcntl(
        self,
        cmd: Literal[F.SETLK, F.SETLKW, F.OFD_SETLK, F.OFD_SETLKW],
        arg: ReadablePointer[Flock],
    ) -> int: ...
    @overload
    async def fcntl(
        self, cmd: Literal[F.GETOWN_EX], arg: Pointer[FOwnerEx]
    ) -> ReadablePointer[FOwnerEx]: ...
    @overload
    async def fcntl(self, cmd: Literal[F.SETOWN_EX], arg: ReadablePointer[FOwnerEx]) -> int: ...
    @overload
    async def fcntl(self, cmd: Literal[F.GETFD]) -> FD: ...
    @overload
    async def fcntl(self, cmd: Literal[F.GETFL]) -> O: ...
    @overload
    async def fcntl(self, cmd: Literal[F.GET_SEALS]) -> SEAL: ...
    @overload
    async def fcntl(self, cmd: Literal[F.GETLEASE]) -> FlockType: ...
    @overload
    async def fcntl(
        self, cmd: Literal[F.GETOWN, F.GETSIG, F.GETPIPE_SZ]
    ) -> int: ...
    @overload
    async def fcntl(self, cmd: Literal[F.SETFD], arg: FD) -> int: ...
    @overload
    async def fcntl(self, cmd: Literal[F.SETFL], arg: O) -> int: ...
    @overload
    async def fcntl(self, cmd: Literal[F.ADD_SEALS], arg: SEAL) -> int: ...
    @overload
    async def fcntl(self, cmd: Literal[F.SETLEASE], arg: FlockType) -> int: ...
    @overload
    async def fcntl(self, cmd: Literal[F.SETSIG], arg: SIG | int) -> int: ...
    @overload
    async def fcntl(
        self, cmd: Literal[F.DUPFD, F.DUPFD_CLOEXEC], arg: int
    ) -> FileDescriptor: ...
    @overload
    async def fcntl(
        self,
        cmd: Literal[F.SETOWN, F.NOTIFY, F.SETPIPE_SZ],
        arg: int,
    ) -> int: ...
    async def fcntl(self, cmd: F, arg: int | Pointer[Any] = 0) -> Any:
        """fcntl(2): perform `cmd` on this fd, with the argument that command
        takes (see the module docstring): a `Flock` pointer for the lock
        commands, an `FOwnerEx` pointer for F.GETOWN_EX / F.SETOWN_EX, an
        integer (or nothing) for the rest.  Returns the result, or for
        F.GETLK, F.OFD_GETLK and F.GETOWN_EX the `ReadablePointer` the
        kernel filled.

        F.SETLKW and F.OFD_SETLKW block the whole process until the lock
        is granted: on `local_thread`, the event loop too.

        F.DUPFD and F.DUPFD_CLOEXEC return the new fd (the lowest number
        at least `arg`) as a `FileDescriptor` that owns it; F.DUPFD leaves
        it without close-on-exec, as the kernel does."""
        command = _command(cmd)
        kind = _KIND[command]
        task = self.task
        number = self.number
        if kind == _NONE or kind == _VALUE:
            if isinstance(arg, Pointer):
                raise TypeError(f"{command!r} takes an integer argument, not a pointer")
            value = int_arg("arg", arg, _VALUE_RANGE)
            if kind == _NONE and value != 0:
                raise ValueError(f"{command!r} takes no argument")
            if command == F.GETOWN:
                # A process group owner comes back as -pgid, which for a
                # pgid below 4096 looks like an error: ask F_GETOWN_EX and
                # answer as F_GETOWN would (what glibc does too).
                out = await task.space.stage(bytes(FOwnerEx.sizeof()))
                await task.sysif.syscall(_SYS_fcntl, number, F.GETOWN_EX, out.address)
                owner = FOwnerEx.from_bytes(
                    await task.space.transport.read(out.address, FOwnerEx.sizeof())
                )
                return -owner.pid if owner.type == F_OWNER.PGRP else owner.pid
            result = await task.sysif.syscall(_SYS_fcntl, number, command, value)
            if command == F.DUPFD or command == F.DUPFD_CLOEXEC:
                return task.make_fd(result)
            cls = _RESULT.get(command)
            return result if cls is None else cls(result)
        struct_type: type[Struct] = Flock if kind in (_LOCK_GET, _LOCK_SET) else FOwnerEx
        if not isinstance(arg, Pointer):
            raise TypeError(
                f"{command!r} takes a pointer to a {struct_type.__name__}, not "
                f"{type(arg).__name__}: an integer would be taken as an address"
            )
        check_points_to(arg, struct_type)
        size = struct_type.sizeof()
        if kind == _LOCK_SET or kind == _OWNER_SET:
            alloc = borrow(arg, task, size)  # type: ignore[arg-type]  # borrow checks
            return await task.sysif.syscall(_SYS_fcntl, number, command, alloc.address)
        if kind == _LOCK_GET and not isinstance(arg, ReadablePointer):
            raise TypeError(
                f"{command!r} reads the lock it asks about before writing the answer: "
                "pass a written pointer, from thread.ptr(Flock(...))"
            )
        alloc = take(arg, task, size)
        try:
            await task.sysif.syscall(_SYS_fcntl, number, command, alloc.address)
        except BaseException:
            restore(arg, alloc)
            raise
        return arg._readable(alloc, task)

    async def posix_fadvise(self, offset: int, length: int, advice: POSIX_FADV) -> None:
        """posix_fadvise(2) (the fadvise64 syscall): how the `length` bytes
        from `offset` (0: to the end) of this file will be used.  ESPIPE on
        a pipe."""
        await self.task.sysif.syscall(SYS.fadvise64, self.number, offset, length, advice)

    async def fallocate(self, mode: FALLOC_FL, offset: int, length: int) -> None:
        """fallocate(2): allocate (FALLOC_FL.NONE, growing the file, or with
        KEEP_SIZE), punch a hole (PUNCH_HOLE | KEEP_SIZE), zero, collapse or
        insert the `length` bytes from `offset` of this file.  EOPNOTSUPP
        where the filesystem cannot."""
        await self.task.sysif.syscall(SYS.fallocate, self.number, mode, offset, length)

    async def readahead(self, offset: int, count: int) -> None:
        """readahead(2): read `count` bytes from `offset` of this file into
        the page cache.  EINVAL for a file that cannot (a pipe)."""
        await self.task.sysif.syscall(SYS.readahead, self.number, offset, count)

    async def sync_file_range(self, offset: int, nbytes: int, flags: SYNC_FILE_RANGE) -> None:
        """sync_file_range(2): start writing out, or wait for, the dirty
        pages of `nbytes` bytes from `offset` (0: to the end) of this file.
        No durability promise: fsync(2) makes one."""
        await self.task.sysif.syscall(SYS.sync_file_range, self.number, offset, nbytes, flags)

    def _other_fd(self, fd_out: FileDescriptor) -> int:
        if not isinstance(fd_out, BaseFileDescriptor):
            raise TypeError(f"fd_out must be a FileDescriptor, not {type(fd_out).__name__}")
        if fd_out.task.fd_table is not self.task.fd_table:
            raise ValueError("fd_out belongs to a different fd table")
        return fd_out.number

    async def splice(
        self,
        fd_out: FileDescriptor,
        length: int,
        off_in: ReadablePointer[Int64] | None = None,
        off_out: ReadablePointer[Int64] | None = None,
        flags: SPLICE_F = SPLICE_F.NONE,
    ) -> tuple[int, ReadablePointer[Int64] | None, ReadablePointer[Int64] | None]:
        """splice(2): move up to `length` bytes from this fd to `fd_out`
        in the kernel, one of them a pipe; returns how many (0 at end of
        input), and the offset pointers.

        For the side that is not a pipe, `off_in`/`off_out` (an Int64 the
        kernel reads and advances, from `thread.ptr(Int64(n))`) is consumed
        and returned holding the new offset; None uses and advances the
        file's own offset (ESPIPE for an offset on a pipe).  Without
        SPLICE_F.NONBLOCK, an empty or full pipe blocks the whole process."""
        out = self._other_fd(fd_out)
        task = self.task
        allocs: list[Allocation | None] = []
        try:
            for offset in (off_in, off_out):
                if offset is None:
                    allocs.append(None)
                    continue
                check_points_to(offset, Int64)
                if not isinstance(offset, ReadablePointer):
                    raise TypeError("an offset must be initialized: thread.ptr(Int64(n))")
                allocs.append(take(offset, task, 8))
            count = await task.sysif.syscall(
                SYS.splice, self.number, allocs[0].address if allocs[0] else 0,
                out, allocs[1].address if allocs[1] else 0, length, flags,
            )
        except BaseException:
            for offset, alloc in zip((off_in, off_out), allocs, strict=False):
                if offset is not None and alloc is not None:
                    restore(offset, alloc)
            raise
        new_in = off_in._readable(allocs[0], task) if off_in is not None and allocs[0] else None
        new_out = (off_out._readable(allocs[1], task)
                   if off_out is not None and allocs[1] else None)
        return count, new_in, new_out

    async def tee(
        self, fd_out: FileDescriptor, length: int, flags: SPLICE_F = SPLICE_F.NONE
    ) -> int:
        """tee(2): copy up to `length` bytes from this pipe to pipe `fd_out`
        without consuming them; returns how many (0: this pipe is empty
        and has no writers)."""
        out = self._other_fd(fd_out)
        return await self.task.sysif.syscall(SYS.tee, self.number, out, length, flags)

    async def vmsplice(
        self, iov: WrittenPointer[IovecList], flags: SPLICE_F = SPLICE_F.NONE
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """vmsplice(2): with this fd a pipe's write end, put the buffers of
        `iov` into the pipe, as writev does (the buffers are borrowed);
        with its read end, move data from the pipe into them, as readv
        does (they are consumed).  Returns the handled parts and the rest.

        The pipe may hold the buffers' pages rather than a copy, so what
        the reader gets is what they hold when it reads.  SPLICE_F.GIFT is
        refused (ValueError): it gives the pages to the kernel for good."""
        if int_arg("flags", flags) & SPLICE_F.GIFT:
            raise ValueError("SPLICE_F.GIFT gives the buffers' pages away for good")
        task = self.task
        address, buffers = iov_buffers(iov, task)
        mode = await task.sysif.syscall(_SYS_fcntl, self.number, F.GETFL, 0)
        filled = mode & 3 == O.RDONLY
        allocs = take_buffers(buffers, task, readable=not filled)
        try:
            count = await task.sysif.syscall(
                SYS.vmsplice, self.number, address, len(buffers), flags
            )
        except BaseException:
            restore_buffers(buffers, allocs)
            raise
        return split_buffers(buffers, allocs, count, task, filled)

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
