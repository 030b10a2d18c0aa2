"""<sys/time.h>: `struct timeval`, seconds and microseconds (getrusage(2)'s
times, setsockopt's timeouts)."""

from __future__ import annotations

import dataclasses
from typing import Self

from rsyscall.struct import Layout, Struct, check_fields

__all__ = ["Timeval"]

_USEC_PER_SEC = 1_000_000


@dataclasses.dataclass(frozen=True)
class Timeval(Struct):
    """`struct timeval`: whole seconds `sec` and microseconds `usec`
    (0 to 999,999)."""

    sec: int
    usec: int
    layout = Layout("struct timeval", [("tv_sec", "q"), ("tv_usec", "q")])

    def __post_init__(self) -> None:
        check_fields(self, (("sec", "q"), ("usec", "q")))
        if not 0 <= self.usec < _USEC_PER_SEC:
            raise ValueError(f"Timeval usec {self.usec} outside 0..{_USEC_PER_SEC - 1}")

    def to_float(self) -> float:
        """This time in seconds, as a float."""
        return self.sec + self.usec / _USEC_PER_SEC

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.sec, self.usec)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a Timeval needs {size} bytes, got {len(data)}")
        sec, usec = cls.layout.struct.unpack(data[:size])
        return cls(sec, usec)
