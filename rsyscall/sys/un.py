"""<sys/un.h>: unix domain socket addresses (unix(7))."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from rsyscall.struct import Layout
from rsyscall.sys.socket import AF, Sockaddr

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = ["SockaddrUn", "SockaddrUnProcFd"]

_PATH_MAX = 108


class SockaddrUn(Sockaddr):
    """`struct sockaddr_un`: a unix socket address.

    `path` is bytes: a filesystem path, or an abstract name starting with a
    NUL byte, or empty for an unnamed socket.  Only the used bytes are
    written (so abstract names keep their exact length); a filesystem path
    is NUL-terminated."""

    __slots__ = ("path",)
    family: ClassVar[AF] = AF.UNIX
    layout: ClassVar[Layout] = Layout(
        "struct sockaddr_un", [("sun_family", "H"), ("sun_path", f"{_PATH_MAX}s")]
    )

    def __init__(self, path: bytes | str | os.PathLike[str]) -> None:
        encoded = path if isinstance(path, bytes) else os.fsencode(path)
        abstract = encoded.startswith(b"\0")
        if not abstract and b"\0" in encoded:
            raise ValueError("embedded null byte in a unix socket path")
        if len(encoded) + (0 if abstract else 1) > _PATH_MAX:
            raise ValueError(f"unix socket path of {len(encoded)} bytes is too long")
        self.path = encoded

    @classmethod
    async def from_path(cls, thread: Thread, path: str | os.PathLike[str]) -> SockaddrUn:
        """An address for the socket file `path`, however long: the path
        itself if it fits in sun_path (108 bytes), else its directory opened
        in `thread` (O_PATH) and named through /proc/self/fd: a
        `SockaddrUnProcFd`, which holds that fd and works for syscalls made
        by `thread` (or a thread sharing its fd table)."""
        encoded = os.fsencode(path)
        if len(encoded) < _PATH_MAX:
            return cls(encoded)
        directory, name = os.path.split(encoded)
        from rsyscall.fcntl import O

        dirfd = await thread.task.open(
            await thread.ptr(os.fsdecode(directory or b".")), O.PATH | O.DIRECTORY
        )
        return SockaddrUnProcFd(dirfd, name)

    def to_bytes(self) -> bytes:
        terminator = b"" if not self.path or self.path.startswith(b"\0") else b"\0"
        return AF.UNIX.to_bytes(2, "little") + self.path + terminator

    @classmethod
    def _parse(cls, data: bytes) -> SockaddrUn:
        path = data[2:]
        if not path.startswith(b"\0"):
            path = path.split(b"\0", 1)[0]
        return cls(path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SockaddrUn) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"SockaddrUn({self.path!r})"


class SockaddrUnProcFd(SockaddrUn):
    """A unix socket address too long for sun_path, as /proc/self/fd/N/NAME
    where N is `dirfd`, its directory, held open (O_PATH) as long as this
    address lives.  Valid for syscalls of the process whose fd table has
    `dirfd`.  Made by `SockaddrUn.from_path`."""

    __slots__ = ("dirfd", "name")

    def __init__(self, dirfd: FileDescriptor, name: bytes | str) -> None:
        from rsyscall.base import BaseFileDescriptor

        if not isinstance(dirfd, BaseFileDescriptor):
            raise TypeError(f"dirfd must be a FileDescriptor, not {type(dirfd).__name__}")
        if not isinstance(name, bytes | str):
            raise TypeError(f"name must be bytes or str, not {type(name).__name__}")
        self.dirfd = dirfd
        self.name = name if isinstance(name, bytes) else os.fsencode(name)
        if b"/" in self.name or not self.name:
            raise ValueError(f"not a file name: {self.name!r}")
        super().__init__(b"/proc/self/fd/%d/%s" % (dirfd.number, self.name))

    def __repr__(self) -> str:
        return f"SockaddrUnProcFd({self.dirfd!r}, {self.name!r})"
