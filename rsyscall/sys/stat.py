"""<sys/stat.h>: file status (fstat(2), fstatat(2), statx(2)), file modes
(mkdirat(2), fchmod(2), fchmodat(2), umask(2)), and the S_*, STATX_*
constants.

A status syscall writes a `Stat` or `Statx` into the buffer it is given:
it consumes the pointer and returns a `ReadablePointer` to the same memory.
`*at` syscalls take a directory fd first, None meaning the working directory.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.fcntl import AT, dirfd_number, permission_bits
from rsyscall.memory.pointer import (
    PathPointer,
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    path_address,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import FixedSize, Layout, Serializable, Struct, check_fields
from rsyscall.time import Timespec

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = [
    "UTIME_NOW",
    "UTIME_OMIT",
    "S",
    "TimespecPair",
    "STATX",
    "STATX_ATTR",
    "Stat",
    "StatxTimestamp",
    "Statx",
    "StatFileDescriptor",
    "StatTask",
]


class S(IntFlag):
    """File type and mode bits of `st_mode` (C prefix S_).

    The file type is the field `mode & S.IFMT`, not a set of bits: compare
    it, `mode & S.IFMT == S.IFDIR`, rather than testing `S.IFDIR in mode`."""

    IFMT = 0o170000
    IFSOCK = 0o140000
    IFLNK = 0o120000
    IFREG = 0o100000
    IFBLK = 0o060000
    IFDIR = 0o040000
    IFCHR = 0o020000
    IFIFO = 0o010000
    ISUID = 0o4000
    ISGID = 0o2000
    ISVTX = 0o1000
    IRWXU = 0o700
    IRUSR = 0o400
    IWUSR = 0o200
    IXUSR = 0o100
    IRWXG = 0o070
    IRGRP = 0o040
    IWGRP = 0o020
    IXGRP = 0o010
    IRWXO = 0o007
    IROTH = 0o004
    IWOTH = 0o002
    IXOTH = 0o001


class STATX(IntFlag):
    """statx(2) `mask` bits, and `Statx.mask`: which fields are wanted, and
    which were filled in."""

    TYPE = 0x0001
    MODE = 0x0002
    NLINK = 0x0004
    UID = 0x0008
    GID = 0x0010
    ATIME = 0x0020
    MTIME = 0x0040
    CTIME = 0x0080
    INO = 0x0100
    SIZE = 0x0200
    BLOCKS = 0x0400
    BASIC_STATS = 0x07FF
    BTIME = 0x0800
    # The kernel's header deprecates ALL, since it stopped growing: it does
    # not include MNT_ID or DIOALIGN.
    ALL = 0x0FFF
    MNT_ID = 0x1000
    DIOALIGN = 0x2000


class STATX_ATTR(IntFlag):
    """`Statx.attributes` bits (and `Statx.attributes_mask`: those the
    file system supports)."""

    COMPRESSED = 0x0004
    IMMUTABLE = 0x0010
    APPEND = 0x0020
    NODUMP = 0x0040
    ENCRYPTED = 0x0800
    AUTOMOUNT = 0x1000
    MOUNT_ROOT = 0x2000
    VERITY = 0x100000
    DAX = 0x200000


def _check_types(obj: object, kind: type, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, kind):
            raise TypeError(
                f"{type(obj).__name__}.{name} must be {kind.__name__}, not {type(value).__name__}"
            )


def _pack(obj: Struct, *values: object) -> bytes:
    try:
        return obj.layout.struct.pack(*values)
    except struct.error as e:
        # The fields' types were checked when it was made: a value is out of range.
        raise ValueError(f"{obj!r} does not fit in a {obj.layout.c_type}: {e}") from None


def _unpack(cls: type[Struct], data: bytes) -> tuple[Any, ...]:
    layout = cls.layout
    if len(data) < layout.size:
        raise ValueError(f"a {layout.c_type} needs {layout.size} bytes, got {len(data)}")
    return layout.struct.unpack_from(data)


_STAT_INTS = ("dev", "ino", "nlink", "mode", "uid", "gid", "rdev", "size", "blksize", "blocks")
_STAT_FIELDS = tuple(zip(_STAT_INTS, "QQQIIIQqqq", strict=True))


@dataclasses.dataclass(frozen=True)
class Stat(Struct):
    """`struct stat`, as fstat(2) and fstatat(2) fill it in.

    `mode` holds the file type and permission bits (see `S`); the times
    are `Timespec`s (C's `st_atim`, `st_mtim`, `st_ctim`)."""

    __slots__ = (*_STAT_INTS, "atime", "mtime", "ctime")

    dev: int
    ino: int
    nlink: int
    mode: int
    uid: int
    gid: int
    rdev: int
    size: int
    blksize: int
    blocks: int
    atime: Timespec
    mtime: Timespec
    ctime: Timespec
    layout = Layout(
        "struct stat",
        [
            ("st_dev", "Q"),
            ("st_ino", "Q"),
            ("st_nlink", "Q"),
            ("st_mode", "I"),
            ("st_uid", "I"),
            ("st_gid", "I"),
            ("_pad0", "4x"),
            ("st_rdev", "Q"),
            ("st_size", "q"),
            ("st_blksize", "q"),
            ("st_blocks", "q"),
            ("st_atim", "16s"),
            ("st_mtim", "16s"),
            ("st_ctim", "16s"),
            ("_reserved", "24x"),
        ],
    )

    def __post_init__(self) -> None:
        check_fields(self, _STAT_FIELDS)
        _check_types(self, Timespec, ("atime", "mtime", "ctime"))

    def to_bytes(self) -> bytes:
        return _pack(
            self,
            self.dev,
            self.ino,
            self.nlink,
            self.mode,
            self.uid,
            self.gid,
            self.rdev,
            self.size,
            self.blksize,
            self.blocks,
            self.atime.to_bytes(),
            self.mtime.to_bytes(),
            self.ctime.to_bytes(),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        v = list(_unpack(cls, data))  # the fields in order; the times still bytes
        v[10:13] = [Timespec.from_bytes(t) for t in v[10:13]]
        return cls(*v)


@dataclasses.dataclass(frozen=True)
class StatxTimestamp(Struct):
    """`struct statx_timestamp`: seconds and nanoseconds, as in `Statx`."""

    __slots__ = ("nsec", "sec")

    sec: int
    nsec: int
    layout = Layout(
        "struct statx_timestamp",
        [("tv_sec", "q"), ("tv_nsec", "I"), ("_reserved", "4x")],
    )

    def __post_init__(self) -> None:
        check_fields(self, (("sec", "q"), ("nsec", "I")))

    def to_bytes(self) -> bytes:
        return _pack(self, self.sec, self.nsec)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        sec, nsec = _unpack(cls, data)
        return cls(sec, nsec)


_STATX_INTS = (
    "blksize",
    "nlink",
    "uid",
    "gid",
    "mode",
    "ino",
    "size",
    "blocks",
    "rdev_major",
    "rdev_minor",
    "dev_major",
    "dev_minor",
    "mnt_id",
    "dio_mem_align",
    "dio_offset_align",
)
_STATX_TIMES = ("atime", "btime", "ctime", "mtime")
_STATX_FIELDS = (
    ("mask", "I"), ("attributes", "Q"), ("attributes_mask", "Q"),
    *zip(_STATX_INTS, "IIIIHQQQIIIIQII", strict=True),
)


@dataclasses.dataclass(frozen=True)
class Statx(Struct):
    """`struct statx`, as statx(2) fills it in.

    Only the fields named in `mask` were filled in.  The layout is that of
    <sys/stat.h> with Linux's <linux/stat.h> (as glibc uses it when
    installed), which names `mnt_id` and the `dio_*` fields that glibc's
    fallback definition leaves as padding; the size is the same."""

    __slots__ = ("attributes", "attributes_mask", "mask", *_STATX_INTS, *_STATX_TIMES)

    mask: STATX
    blksize: int
    attributes: STATX_ATTR
    nlink: int
    uid: int
    gid: int
    mode: int
    ino: int
    size: int
    blocks: int
    attributes_mask: STATX_ATTR
    atime: StatxTimestamp
    btime: StatxTimestamp
    ctime: StatxTimestamp
    mtime: StatxTimestamp
    rdev_major: int
    rdev_minor: int
    dev_major: int
    dev_minor: int
    mnt_id: int
    dio_mem_align: int
    dio_offset_align: int
    layout = Layout(
        "struct statx",
        [
            ("stx_mask", "I"),
            ("stx_blksize", "I"),
            ("stx_attributes", "Q"),
            ("stx_nlink", "I"),
            ("stx_uid", "I"),
            ("stx_gid", "I"),
            ("stx_mode", "H"),
            ("_spare0", "2x"),
            ("stx_ino", "Q"),
            ("stx_size", "Q"),
            ("stx_blocks", "Q"),
            ("stx_attributes_mask", "Q"),
            ("stx_atime", "16s"),
            ("stx_btime", "16s"),
            ("stx_ctime", "16s"),
            ("stx_mtime", "16s"),
            ("stx_rdev_major", "I"),
            ("stx_rdev_minor", "I"),
            ("stx_dev_major", "I"),
            ("stx_dev_minor", "I"),
            ("stx_mnt_id", "Q"),
            ("stx_dio_mem_align", "I"),
            ("stx_dio_offset_align", "I"),
            ("_spare3", "96x"),
        ],
    )

    def __post_init__(self) -> None:
        check_fields(self, _STATX_FIELDS)
        _check_types(self, StatxTimestamp, _STATX_TIMES)

    def to_bytes(self) -> bytes:
        return _pack(
            self,
            self.mask,
            self.blksize,
            self.attributes,
            self.nlink,
            self.uid,
            self.gid,
            self.mode,
            self.ino,
            self.size,
            self.blocks,
            self.attributes_mask,
            self.atime.to_bytes(),
            self.btime.to_bytes(),
            self.ctime.to_bytes(),
            self.mtime.to_bytes(),
            self.rdev_major,
            self.rdev_minor,
            self.dev_major,
            self.dev_minor,
            self.mnt_id,
            self.dio_mem_align,
            self.dio_offset_align,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        v = list(_unpack(cls, data))  # the fields in order; the timestamps still bytes
        v[0] = STATX(v[0])
        v[2] = STATX_ATTR(v[2])
        v[10] = STATX_ATTR(v[10])
        v[11:15] = [StatxTimestamp.from_bytes(t) for t in v[11:15]]
        return cls(*v)


_SYS_fstat = int(SYS.fstat)
_MODE_755 = S(0o755)
_SYS_newfstatat = int(SYS.newfstatat)
_STAT_SIZE = Stat.sizeof()
_STATX_SIZE = Statx.sizeof()


# utimensat(2)'s special nanosecond values: the current time, or leave as is.
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class TimespecPair(tuple[Timespec, Timespec], Serializable, FixedSize):
    """utimensat(2)'s `times`: the access time then the modification time,
    two `struct timespec`s; a `nsec` of UTIME_NOW or UTIME_OMIT means now,
    or leave it.  Immutable."""

    __slots__ = ()

    def __new__(cls, atime: Timespec, mtime: Timespec) -> Self:
        for name, value in (("atime", atime), ("mtime", mtime)):
            if not isinstance(value, Timespec):
                raise TypeError(f"{name} must be a Timespec, not {type(value).__name__}")
        return super().__new__(cls, (atime, mtime))

    @property
    def atime(self) -> Timespec:
        return self[0]

    @property
    def mtime(self) -> Timespec:
        return self[1]

    def __repr__(self) -> str:
        return f"TimespecPair({self[0]!r}, {self[1]!r})"

    @classmethod
    def sizeof(cls) -> int:
        return 2 * Timespec.sizeof()

    def to_bytes(self) -> bytes:
        return self[0].to_bytes() + self[1].to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = Timespec.sizeof()
        if len(data) < 2 * size:
            raise ValueError(f"a TimespecPair needs {2 * size} bytes, got {len(data)}")
        return cls(Timespec.from_bytes(data[:size]), Timespec.from_bytes(data[size:2 * size]))


class StatTask(BaseTask):
    __slots__ = ()

    async def fstatat(
        self,
        dirfd: FileDescriptor | None,
        path: PathPointer,
        statbuf: Pointer[Stat],
        flags: AT = AT.NONE,
    ) -> ReadablePointer[Stat]:
        """fstatat(2): write the status of `path` (relative to `dirfd`) into
        `statbuf`; consumes it.  With AT.SYMLINK_NOFOLLOW, a symlink's own.
        (The x86_64 syscall is named newfstatat.)"""
        dirnum = dirfd_number(self, dirfd)
        address = path_address(self, path)
        alloc = take(statbuf, self, _STAT_SIZE)
        try:
            await self.sysif.syscall(_SYS_newfstatat, dirnum, address, alloc.address, flags)
        except BaseException:
            restore(statbuf, alloc)
            raise
        return statbuf._readable(alloc, self)

    async def statx(
        self,
        dirfd: FileDescriptor | None,
        path: PathPointer,
        flags: AT,
        mask: STATX,
        statxbuf: Pointer[Statx],
    ) -> ReadablePointer[Statx]:
        """statx(2): write the `mask` fields of `path`'s status into
        `statxbuf`; consumes it.  `Statx.mask` says which were filled in.
        With AT.EMPTY_PATH and an empty `path`, the status of `dirfd` itself."""
        dirnum = dirfd_number(self, dirfd)
        address = path_address(self, path)
        alloc = take(statxbuf, self, _STATX_SIZE)
        try:
            await self.sysif.syscall(SYS.statx, dirnum, address, flags, mask, alloc.address)
        except BaseException:
            restore(statxbuf, alloc)
            raise
        return statxbuf._readable(alloc, self)

    async def mkdirat(
        self, dirfd: FileDescriptor | None, path: PathPointer, mode: S = _MODE_755
    ) -> None:
        """mkdirat(2): create directory `path` (relative to `dirfd`) with
        permissions `mode` (`S` bits, at most 0o7777: ValueError for
        more), less the umask."""
        await self.sysif.syscall(
            SYS.mkdirat, dirfd_number(self, dirfd), path_address(self, path),
            permission_bits(mode),
        )

    async def mkdir(self, path: PathPointer, mode: S = _MODE_755) -> None:
        """mkdir(2), as mkdirat(2) relative to the working directory."""
        await self.mkdirat(None, path, mode)

    async def fchmodat(self, dirfd: FileDescriptor | None, path: PathPointer, mode: S) -> None:
        """fchmodat(2): set the permission bits of `path` (relative to
        `dirfd`) to `mode` (`S` bits, at most 0o7777: ValueError for more).
        Symlinks are followed: the raw syscall has no flags argument."""
        await self.sysif.syscall(
            SYS.fchmodat, dirfd_number(self, dirfd), path_address(self, path),
            permission_bits(mode),
        )

    async def utimensat(
        self, dirfd: FileDescriptor | None, path: PathPointer | None,
        times: WrittenPointer[TimespecPair] | None, flags: AT = AT.NONE,
    ) -> None:
        """utimensat(2): set the access and modification times of `path`
        (relative to `dirfd`; None: the working directory; a None path: the
        file `dirfd` is, as futimens(3) does) to `times` (None: both now).
        AT.SYMLINK_NOFOLLOW sets a symlink's own."""
        if times is not None and not (
            isinstance(times, WrittenPointer) and isinstance(times.value, TimespecPair)
        ):
            raise TypeError("times must be a written pointer to a TimespecPair, or None")
        if path is None and dirfd is None:
            raise ValueError("utimensat needs a path or a dirfd")
        address = 0 if times is None else borrow(times, self).address
        await self.sysif.syscall(
            SYS.utimensat, dirfd_number(self, dirfd),
            0 if path is None else path_address(self, path), address, flags,
        )

    async def mknodat(
        self, dirfd: FileDescriptor | None, path: PathPointer, mode: S, dev: int = 0
    ) -> None:
        """mknodat(2): make a file of the type in `mode` (S.IFIFO, S.IFCHR,
        S.IFBLK, S.IFREG, S.IFSOCK, with permission bits, less the umask) at
        `path` relative to `dirfd`; `dev` is a device's number
        (major << 8 | minor for the small ones; os.makedev gives any)."""
        if not isinstance(mode, S):
            raise TypeError(f"mode must be S bits, not {type(mode).__name__}")
        if mode & S.IFMT not in (S.IFIFO, S.IFCHR, S.IFBLK, S.IFREG, S.IFSOCK, 0):
            raise ValueError(
                f"mknodat makes fifos, devices, regular files and sockets, not {mode!r}"
            )
        if not isinstance(dev, int) or isinstance(dev, bool) or not 0 <= dev < 1 << 64:
            raise ValueError(f"dev must be a device number, not {dev!r}")
        await self.sysif.syscall(
            SYS.mknodat, dirfd_number(self, dirfd), path_address(self, path), mode, dev
        )

    async def umask(self, mask: S) -> S:
        """umask(2): set the file mode creation mask (`S` permission bits,
        at most 0o777: ValueError for more; a plain int such as 0o022 is
        fine); returns the old one, as `S`."""
        return S(await self.sysif.syscall(SYS.umask, permission_bits(mask, 0o777)))


class StatFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def fstat(self, statbuf: Pointer[Stat]) -> ReadablePointer[Stat]:
        """fstat(2): write this file's status into `statbuf`; consumes it."""
        number = self.number
        task = self.task
        alloc = take(statbuf, task, _STAT_SIZE)
        try:
            await task.sysif.syscall(_SYS_fstat, number, alloc.address)
        except BaseException:
            restore(statbuf, alloc)
            raise
        return statbuf._readable(alloc, task)

    async def fchmod(self, mode: S) -> None:
        """fchmod(2): set this file's permission bits to `mode` (`S` bits,
        at most 0o7777: ValueError for more)."""
        await self.task.sysif.syscall(SYS.fchmod, self.number, permission_bits(mode))
