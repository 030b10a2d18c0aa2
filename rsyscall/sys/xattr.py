"""<sys/xattr.h>: extended attributes, getxattr(2), setxattr(2),
listxattr(2), removexattr(2), each in three forms: of a path, of a path
without following a final symlink (the l- calls), and of a file
descriptor (the f- calls, methods of `FileDescriptor`).

An attribute's name is a NUL-terminated string with its namespace
(`thread.ptr("user.comment")`); its value is bytes.  getxattr and
listxattr return a size, so they split the buffer they fill into
`(valid, rest)`, as read(2) does; given None instead of a buffer they ask
only for the size the value or list needs, and return it as an int.
The list of names is a `XattrNameList`, a tuple of str (C: a run of
NUL-terminated strings)::

    names = await thread.malloc(XattrNameList, XATTR_LIST_MAX)
    valid, rest = await thread.task.listxattr(path, names)
    await valid.read()          # XattrNameList(('user.comment', ...))
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Self, overload

from rsyscall._enum import IntFlag
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
from rsyscall.struct import BytesSerializer, Serializable, StrSerializer

if TYPE_CHECKING:
    from rsyscall.handle import Task

__all__ = [
    "XATTR",
    "XATTR_LIST_MAX",
    "XATTR_NAME_MAX",
    "XATTR_SIZE_MAX",
    "XattrFileDescriptor",
    "XattrNameList",
    "XattrTask",
]

XATTR_NAME_MAX = 255
"""The longest attribute name, in bytes (<linux/limits.h>)."""
XATTR_SIZE_MAX = 65536
"""The largest attribute value, in bytes (<linux/limits.h>)."""
XATTR_LIST_MAX = 65536
"""The largest list of names, in bytes (<linux/limits.h>)."""


class XATTR(IntFlag):
    """setxattr(2) flags: CREATE fails with EEXIST if the attribute
    exists, REPLACE with ENODATA if it does not; NONE does either."""

    NONE = 0
    CREATE = 1
    REPLACE = 2


class XattrNameList(tuple[str, ...], Serializable):
    """The names listxattr(2) writes: NUL-terminated strings one after
    another.  A tuple of the names (decoded as file names are, so any
    bytes come back)."""

    __slots__ = ()

    def __new__(cls, names: Any = ()) -> Self:
        if isinstance(names, str | bytes):
            raise TypeError("an XattrNameList is made from an iterable of names, not one name")
        self = super().__new__(cls, names)
        for name in self:
            if not isinstance(name, str):
                raise TypeError(f"an attribute name is a str, not {type(name).__name__}")
            if not name or "\0" in name:
                raise ValueError(f"an attribute name is non-empty and has no NUL: {name!r}")
        return self

    def __repr__(self) -> str:
        return f"XattrNameList({tuple(self)!r})"

    def to_bytes(self) -> bytes:
        return b"".join(os.fsencode(name) + b"\0" for name in self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if data and not data.endswith(b"\0"):
            raise ValueError("a list of attribute names ends with a NUL")
        return cls(os.fsdecode(name) for name in bytes(data).split(b"\0")[:-1])


def _name_address(task: BaseTask, name: WrittenPointer[str]) -> int:
    alloc = borrow(name, task)
    if not isinstance(name.serializer, StrSerializer):
        raise TypeError("an attribute name must be a pointer to a str, from thread.ptr(name)")
    return alloc.address


async def _get(
    task: BaseTask,
    number: int,
    target: int,
    name: WrittenPointer[str] | None,
    buf: Pointer[Any] | None,
    kind: type | None,
) -> Any:
    """The get or list call `number` on `target` (a path address or an fd)
    into `buf`: (valid, rest), or the size needed if `buf` is None."""
    args = (target,) if name is None else (target, _name_address(task, name))
    if buf is None:
        return await task.sysif.syscall(number, *args, 0, 0)
    if kind is not None:
        check_points_to(buf, kind)
    elif not isinstance(buf, Pointer) or not isinstance(buf.serializer, BytesSerializer):
        raise TypeError(f"expected a Pointer to bytes, got {buf!r}")
    alloc: Allocation = take(buf, task)
    try:
        count = await task.sysif.syscall(number, *args, alloc.address, alloc.size)
    except BaseException:
        restore(buf, alloc)
        raise
    return buf._readable_split(alloc, count, task)


async def _set(
    task: BaseTask,
    number: int,
    target: int,
    name: WrittenPointer[str],
    value: ReadablePointer[bytes],
    flags: XATTR,
) -> None:
    address = _name_address(task, name)
    if not isinstance(value, Pointer) or not isinstance(value.serializer, BytesSerializer):
        raise TypeError(f"value must be a pointer to bytes, not {value!r}")
    alloc = borrow(value, task)
    await task.sysif.syscall(number, target, address, alloc.address, alloc.size, flags)


class XattrTask(BaseTask):
    __slots__ = ()

    @overload
    async def getxattr(self, path: PathPointer, name: WrittenPointer[str], value: None) -> int: ...
    @overload
    async def getxattr(
        self, path: PathPointer, name: WrittenPointer[str], value: Pointer[bytes]
    ) -> tuple[ReadablePointer[bytes], Pointer[bytes]]: ...
    async def getxattr(
        self, path: PathPointer, name: WrittenPointer[str], value: Pointer[bytes] | None
    ) -> Any:
        """getxattr(2): the value of attribute `name` of the file at `path`
        (following symlinks) into `value`, which is consumed and split into
        the value and the rest; with `value` None, the value's size.
        ENODATA if there is no such attribute, ERANGE if `value` is too
        small (it is left as it was)."""
        return await _get(self, SYS.getxattr, path_address(self, path), name, value, None)

    @overload
    async def lgetxattr(
        self, path: PathPointer, name: WrittenPointer[str], value: None
    ) -> int: ...
    @overload
    async def lgetxattr(
        self, path: PathPointer, name: WrittenPointer[str], value: Pointer[bytes]
    ) -> tuple[ReadablePointer[bytes], Pointer[bytes]]: ...
    async def lgetxattr(
        self, path: PathPointer, name: WrittenPointer[str], value: Pointer[bytes] | None
    ) -> Any:
        """lgetxattr(2): `getxattr` of a symlink itself, not its target."""
        return await _get(self, SYS.lgetxattr, path_address(self, path), name, value, None)

    async def setxattr(
        self,
        path: PathPointer,
        name: WrittenPointer[str],
        value: ReadablePointer[bytes],
        flags: XATTR = XATTR.NONE,
    ) -> None:
        """setxattr(2): set attribute `name` of the file at `path`
        (following symlinks) to the bytes of `value` (borrowed), as
        `flags` allow.  ENOTSUP where the filesystem has no such namespace,
        E2BIG or ENOSPC for a value too big."""
        await _set(self, SYS.setxattr, path_address(self, path), name, value, flags)

    async def lsetxattr(
        self,
        path: PathPointer,
        name: WrittenPointer[str],
        value: ReadablePointer[bytes],
        flags: XATTR = XATTR.NONE,
    ) -> None:
        """lsetxattr(2): `setxattr` of a symlink itself (EPERM for user.*
        attributes, which symlinks cannot have)."""
        await _set(self, SYS.lsetxattr, path_address(self, path), name, value, flags)

    @overload
    async def listxattr(self, path: PathPointer, names: None) -> int: ...
    @overload
    async def listxattr(
        self, path: PathPointer, names: Pointer[XattrNameList]
    ) -> tuple[ReadablePointer[XattrNameList], Pointer[XattrNameList]]: ...
    async def listxattr(self, path: PathPointer, names: Pointer[XattrNameList] | None) -> Any:
        """listxattr(2): the names of the attributes of the file at `path`
        (following symlinks) into `names` (from
        `thread.malloc(XattrNameList, size)`), which is consumed and split
        into the list and the rest; with `names` None, the size the list
        needs.  ERANGE if `names` is too small."""
        return await _get(
            self, SYS.listxattr, path_address(self, path), None, names, XattrNameList
        )

    @overload
    async def llistxattr(self, path: PathPointer, names: None) -> int: ...
    @overload
    async def llistxattr(
        self, path: PathPointer, names: Pointer[XattrNameList]
    ) -> tuple[ReadablePointer[XattrNameList], Pointer[XattrNameList]]: ...
    async def llistxattr(self, path: PathPointer, names: Pointer[XattrNameList] | None) -> Any:
        """llistxattr(2): `listxattr` of a symlink itself."""
        return await _get(
            self, SYS.llistxattr, path_address(self, path), None, names, XattrNameList
        )

    async def removexattr(self, path: PathPointer, name: WrittenPointer[str]) -> None:
        """removexattr(2): remove attribute `name` of the file at `path`
        (following symlinks); ENODATA if there is none."""
        address = path_address(self, path)
        await self.sysif.syscall(SYS.removexattr, address, _name_address(self, name))

    async def lremovexattr(self, path: PathPointer, name: WrittenPointer[str]) -> None:
        """lremovexattr(2): `removexattr` of a symlink itself."""
        address = path_address(self, path)
        await self.sysif.syscall(SYS.lremovexattr, address, _name_address(self, name))


class XattrFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    @overload
    async def fgetxattr(self, name: WrittenPointer[str], value: None) -> int: ...
    @overload
    async def fgetxattr(
        self, name: WrittenPointer[str], value: Pointer[bytes]
    ) -> tuple[ReadablePointer[bytes], Pointer[bytes]]: ...
    async def fgetxattr(self, name: WrittenPointer[str], value: Pointer[bytes] | None) -> Any:
        """fgetxattr(2): `getxattr` of this fd's file."""
        return await _get(self.task, SYS.fgetxattr, self.number, name, value, None)

    async def fsetxattr(
        self, name: WrittenPointer[str], value: ReadablePointer[bytes], flags: XATTR = XATTR.NONE
    ) -> None:
        """fsetxattr(2): `setxattr` of this fd's file."""
        await _set(self.task, SYS.fsetxattr, self.number, name, value, flags)

    @overload
    async def flistxattr(self, names: None) -> int: ...
    @overload
    async def flistxattr(
        self, names: Pointer[XattrNameList]
    ) -> tuple[ReadablePointer[XattrNameList], Pointer[XattrNameList]]: ...
    async def flistxattr(self, names: Pointer[XattrNameList] | None) -> Any:
        """flistxattr(2): `listxattr` of this fd's file."""
        return await _get(
            self.task, SYS.flistxattr, self.number, None, names, XattrNameList
        )

    async def fremovexattr(self, name: WrittenPointer[str]) -> None:
        """fremovexattr(2): `removexattr` of this fd's file."""
        task: Task = self.task
        await task.sysif.syscall(SYS.fremovexattr, self.number, _name_address(task, name))
