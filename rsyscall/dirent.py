"""<dirent.h>: directory entries as getdents64(2) returns them: `struct
linux_dirent64`.

(This module was `rsyscall.linux.dirent`, which still re-exports it.)

getdents fills a buffer with variable-length records, each `Dirent`; the
buffer as a whole is a `DirentList`.  Read a directory by calling it until
it returns an empty part:

    buf = await thread.malloc(DirentList, 4096)
    while True:
        valid, rest = await dirfd.getdents(buf)
        if valid.size() == 0:
            break
        entries = await valid.read()
        buf = valid + rest
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterable
from typing import ClassVar, Self, TypeVar

from rsyscall._enum import IntEnum
from rsyscall.base import BaseFileDescriptor
from rsyscall.memory.pointer import Pointer, ReadablePointer, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Layout, Serializable, check_fields

__all__ = ["DT", "Dirent", "DirentList", "DirentFileDescriptor"]


class DT(IntEnum):
    """File types of `Dirent.type` (d_type)."""

    UNKNOWN = 0
    FIFO = 1
    CHR = 2
    DIR = 4
    BLK = 6
    REG = 8
    LNK = 10
    SOCK = 12
    WHT = 14


# d_ino, d_off, d_reclen, d_type; d_name follows at once.
_HEADER = struct.Struct("<QqHB")
_NAME_OFFSET = _HEADER.size
_ALIGN = 8


@dataclasses.dataclass(frozen=True)
class Dirent(Serializable):
    """One directory entry (`struct linux_dirent64`): inode number `ino`,
    the directory offset `off` of the next entry, the file `type`, and the
    `name`.

    A record is as long as its name needs, rounded up to 8 bytes; d_reclen
    holds its length and is computed when writing.  `layout` is C's `struct
    dirent64` from <dirent.h>, which has the kernel record's offsets but a
    fixed-size d_name."""

    __slots__ = ("ino", "name", "off", "type")

    ino: int
    off: int
    type: DT
    name: str
    layout: ClassVar[Layout] = Layout(
        "struct dirent64",
        [
            ("d_ino", "Q"),
            ("d_off", "q"),
            ("d_reclen", "H"),
            ("d_type", "B"),
            ("d_name", "256s"),
            ("_pad", "5x"),
        ],
    )

    def __post_init__(self) -> None:
        check_fields(self, (("ino", "Q"), ("off", "q"), ("type", "B")))
        if not isinstance(self.name, str):
            raise TypeError(f"Dirent.name must be a str, not {type(self.name).__name__}")
        if "\0" in self.name:
            raise ValueError("a Dirent name cannot contain a NUL byte")
        # Frozen: set through object to make a plain int a DT (or raise ValueError).
        object.__setattr__(self, "type", DT(self.type))

    def to_bytes(self) -> bytes:
        name = os.fsencode(self.name)
        reclen = (_NAME_OFFSET + len(name) + 1 + _ALIGN - 1) & ~(_ALIGN - 1)
        try:
            header = _HEADER.pack(self.ino, self.off, reclen, self.type)
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in a struct linux_dirent64: {e}") from None
        # The NUL terminator and the padding up to reclen.
        return header + name + bytes(reclen - _NAME_OFFSET - len(name))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """The first record in `data`."""
        return _parse(cls, data, 0)[0]


D = TypeVar("D", bound=Dirent)


def _parse(cls: type[D], data: bytes, offset: int) -> tuple[D, int]:
    """The record at `offset` in `data`, and the offset of the next."""
    if len(data) - offset < _NAME_OFFSET:
        raise ValueError(f"truncated directory entry at offset {offset}")
    ino, off, reclen, dtype = _HEADER.unpack_from(data, offset)
    end = offset + reclen
    if reclen <= _NAME_OFFSET or end > len(data):
        raise ValueError(f"bad d_reclen {reclen} at offset {offset} of {len(data)} bytes")
    nul = data.find(b"\0", offset + _NAME_OFFSET, end)
    if nul < 0:
        raise ValueError(f"directory entry name at offset {offset} is not NUL-terminated")
    name = os.fsdecode(data[offset + _NAME_OFFSET : nul])
    return cls(ino, off, DT(dtype), name), end


class DirentList(list[Dirent], Serializable):
    """The directory entries in a getdents buffer, in order.

    Variable-size: allocate room with `thread.malloc(DirentList, size)`."""

    def __init__(self, entries: Iterable[Dirent] = ()) -> None:
        super().__init__(entries)
        for entry in self:
            if not isinstance(entry, Dirent):
                raise TypeError(f"a DirentList holds Dirents, not {type(entry).__name__}")

    def to_bytes(self) -> bytes:
        parts = []
        for entry in self:
            if not isinstance(entry, Dirent):
                raise TypeError(f"a DirentList holds Dirents, not {type(entry).__name__}")
            parts.append(entry.to_bytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        entries = []
        offset = 0
        while offset < len(data):
            entry, offset = _parse(Dirent, data, offset)
            entries.append(entry)
        return cls(entries)


# A buffer this big holds any entry whose name is at most NAME_MAX bytes,
# so getdents never fails for lack of room for the next entry.
_MIN_BUFFER = Dirent.layout.size
_SYS_getdents64 = int(SYS.getdents64)


class DirentFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def getdents(
        self, dirp: Pointer[DirentList]
    ) -> tuple[ReadablePointer[DirentList], Pointer[DirentList]]:
        """getdents64(2): read entries of this directory into `dirp`; returns
        the part filled with whole entries and the rest.  An empty first
        part means the end of the directory.

        `dirp` must have room for at least one entry with the longest name
        (sizeof(struct dirent64), 280 bytes)."""
        number = self.number
        task = self.task
        alloc = take(dirp, task, _MIN_BUFFER)
        try:
            count = await task.sysif.syscall(_SYS_getdents64, number, alloc.address, alloc.size)
        except BaseException:
            restore(dirp, alloc)
            raise
        return dirp._readable_split(alloc, count, task)
