"""<linux/openat2.h>: openat2(2), opening a path under resolution rules
(RESOLVE_BENEATH, RESOLVE_IN_ROOT...) given in a `struct open_how`.

    how = await thread.ptr(OpenHow(O.RDONLY, resolve=RESOLVE.BENEATH))
    fd = await thread.task.openat2(root_dir, await thread.ptr("etc/passwd"), how)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from rsyscall._enum import IntFlag
from rsyscall.base import BaseTask
from rsyscall.fcntl import O, dirfd_number
from rsyscall.memory.pointer import PathPointer, WrittenPointer, borrow, path_address
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Layout, Struct, check_fields

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["RESOLVE", "OpenHow", "Openat2Task"]

class RESOLVE(IntFlag):
    """How openat2(2) may resolve the path (C: RESOLVE_*)."""

    NONE = 0
    NO_XDEV = 0x01
    NO_MAGICLINKS = 0x02
    NO_SYMLINKS = 0x04
    BENEATH = 0x08
    IN_ROOT = 0x10
    CACHED = 0x20


class OpenHow(Struct):
    """`struct open_how`: openat2(2)'s `flags` (O), the `mode` of a file it
    creates, and the `resolve` rules.  O.CLOEXEC is always added, as to
    every fd the library opens."""

    __slots__ = ("flags", "mode", "resolve")
    layout = Layout("struct open_how", [("flags", "Q"), ("mode", "Q"), ("resolve", "Q")])

    def __init__(self, flags: O = O.RDONLY, mode: int = 0, resolve: RESOLVE = RESOLVE.NONE):
        if not isinstance(flags, O) and not (isinstance(flags, int) and flags == 0):
            raise TypeError(f"flags must be O flags, not {type(flags).__name__}")
        if not isinstance(resolve, RESOLVE) and not (isinstance(resolve, int) and resolve == 0):
            raise TypeError(f"resolve must be RESOLVE flags, not {type(resolve).__name__}")
        self.flags = O(flags) | O.CLOEXEC
        self.mode = mode
        self.resolve = RESOLVE(resolve)
        check_fields(self, (("mode", "Q"),))

    def __repr__(self) -> str:
        return f"OpenHow({self.flags!r}, mode={self.mode:#o}, resolve={self.resolve!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpenHow):
            return NotImplemented
        return (self.flags, self.mode, self.resolve) == (other.flags, other.mode, other.resolve)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(int(self.flags), self.mode, int(self.resolve))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"an OpenHow needs {size} bytes, got {len(data)}")
        flags, mode, resolve = cls.layout.struct.unpack(data[:size])
        return cls(O(flags), mode, RESOLVE(resolve))


_SYS_openat2 = int(SYS.openat2)


class Openat2Task(BaseTask):
    __slots__ = ()

    async def openat2(
        self, dirfd: FileDescriptor | None, path: PathPointer, how: WrittenPointer[OpenHow]
    ) -> FileDescriptor:
        """openat2(2): open `path` relative to `dirfd` (None: the working
        directory) as `how` says; a path that breaks its `resolve` rules
        (".." out of `dirfd` under RESOLVE.BENEATH, a symlink under
        NO_SYMLINKS) fails with EXDEV or ELOOP."""
        if not isinstance(how, WrittenPointer) or not isinstance(how.value, OpenHow):
            raise TypeError("how must be a written pointer to an OpenHow, from thread.ptr")
        alloc = borrow(how, self)
        number = await self.sysif.syscall(
            _SYS_openat2, dirfd_number(self, dirfd), path_address(self, path), alloc.address,
            alloc.size,
        )
        return self.make_fd(number)
