"""<sys/utsname.h>: uname(2) and `struct utsname`.

The host and domain names live in the UTS namespace: a child made with
`thread.clone(CLONE.NEWUTS)` can `sethostname` (rsyscall.unistd) without
changing the system's, and reads it back with `uname`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Self

from rsyscall.base import BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Layout, Struct

__all__ = ["UTSNAME_LENGTH", "Utsname", "UtsnameTask"]

UTSNAME_LENGTH = 65
"""The size of each field of `struct utsname`, its NUL included (the
kernel's __NEW_UTS_LEN + 1; glibc's _UTSNAME_LENGTH)."""

_FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")


def _field(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"Utsname.{name} must be a str, not {type(value).__name__}")
    encoded = os.fsencode(value)
    if b"\0" in encoded:
        raise ValueError(f"Utsname.{name} has an embedded null byte")
    if len(encoded) >= UTSNAME_LENGTH:
        raise ValueError(
            f"Utsname.{name} is {len(encoded)} bytes; at most {UTSNAME_LENGTH - 1} fit"
        )
    return encoded


@dataclasses.dataclass(frozen=True)
class Utsname(Struct):
    """`struct utsname`, as uname(2) fills it in: six NUL-terminated
    strings of up to 64 bytes, decoded as `os.uname()` decodes them (the
    filesystem encoding, so any bytes survive a round trip)."""

    __slots__ = _FIELDS

    sysname: str
    nodename: str
    release: str
    version: str
    machine: str
    domainname: str
    layout = Layout(
        "struct utsname",
        [(name, f"{UTSNAME_LENGTH}s") for name in _FIELDS],
    )

    def __post_init__(self) -> None:
        for name in _FIELDS:
            _field(name, getattr(self, name))

    def to_bytes(self) -> bytes:
        # struct's "65s" pads with NULs, which terminates each string.
        return self.layout.struct.pack(*(_field(name, getattr(self, name)) for name in _FIELDS))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        layout = cls.layout
        if len(data) < layout.size:
            raise ValueError(f"a {layout.c_type} needs {layout.size} bytes, got {len(data)}")
        fields = layout.struct.unpack_from(data)
        return cls(*(os.fsdecode(field.split(b"\0", 1)[0]) for field in fields))


_SYS_uname = int(SYS.uname)
_UTSNAME_SIZE = Utsname.sizeof()


class UtsnameTask(BaseTask):
    __slots__ = ()

    async def uname(self, buf: Pointer[Utsname]) -> ReadablePointer[Utsname]:
        """uname(2): write the names of the system and of this process's
        UTS namespace (host and domain name) into `buf`; consumes it."""
        alloc = take(buf, self, _UTSNAME_SIZE)
        try:
            await self.sysif.syscall(_SYS_uname, alloc.address)
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable(alloc, self)
