"""<sys/un.h>: unix domain socket addresses (unix(7))."""

from __future__ import annotations

import os
from typing import ClassVar

from rsyscall.struct import Layout
from rsyscall.sys.socket import AF, Sockaddr

__all__ = ["SockaddrUn"]

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
