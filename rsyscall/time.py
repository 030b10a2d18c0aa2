"""<time.h>: `struct timespec` and the clock ids.

The clock syscalls (clock_gettime(2) and friends) will live here too.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import struct
from typing import Self

from rsyscall.struct import Layout, Struct

__all__ = ["CLOCK", "Timespec"]

_NSEC_PER_SEC = 1_000_000_000


class CLOCK(enum.IntEnum):
    """Clock ids of clock_gettime(2) and the timer syscalls."""

    REALTIME = 0
    MONOTONIC = 1
    PROCESS_CPUTIME_ID = 2
    THREAD_CPUTIME_ID = 3
    MONOTONIC_RAW = 4
    REALTIME_COARSE = 5
    MONOTONIC_COARSE = 6
    BOOTTIME = 7
    REALTIME_ALARM = 8
    BOOTTIME_ALARM = 9
    TAI = 11


@dataclasses.dataclass(frozen=True)
class Timespec(Struct):
    """`struct timespec`: a time as whole seconds `sec` and nanoseconds `nsec`.

    `nsec` is not range-checked here: some syscalls give out-of-range
    values a meaning (utimensat's UTIME_NOW), and the kernel checks the rest.
    """

    __slots__ = ("nsec", "sec")

    sec: int
    nsec: int
    layout = Layout("struct timespec", [("tv_sec", "q"), ("tv_nsec", "q")])

    def __post_init__(self) -> None:
        for name in ("sec", "nsec"):
            value = getattr(self, name)
            if not isinstance(value, int):
                raise TypeError(f"Timespec.{name} must be an int, not {type(value).__name__}")

    @classmethod
    def from_float(cls, seconds: float) -> Self:
        """The Timespec nearest to `seconds` (nanosecond resolution);
        a negative time has a negative `sec` and `0 <= nsec < 10**9`."""
        if not isinstance(seconds, int | float):
            raise TypeError(f"seconds must be a float, not {type(seconds).__name__}")
        if not math.isfinite(seconds):
            raise ValueError(f"seconds must be finite, not {seconds}")
        sec = math.floor(seconds)
        # seconds - sec is exact for a float, so only this rounding loses anything.
        nsec = round((seconds - sec) * _NSEC_PER_SEC)
        if nsec >= _NSEC_PER_SEC:
            sec += 1
            nsec -= _NSEC_PER_SEC
        return cls(sec, nsec)

    def to_float(self) -> float:
        """This time in seconds, as a float."""
        return self.sec + self.nsec / _NSEC_PER_SEC

    def to_bytes(self) -> bytes:
        try:
            return self.layout.struct.pack(self.sec, self.nsec)
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in a struct timespec: {e}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct timespec needs {size} bytes, got {len(data)}")
        sec, nsec = cls.layout.struct.unpack_from(data)
        return cls(sec, nsec)
