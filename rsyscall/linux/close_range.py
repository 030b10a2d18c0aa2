"""<linux/close_range.h>: close_range(2), closing (or marking close-on-exec)
every fd in a range in one call.

close_range(2)'s SYNOPSIS names <linux/close_range.h> for its flags (the
call itself is declared by glibc's <unistd.h>); the flags and the method
live here.

The kernel closes numbers, not handles: every `FileDescriptor` for a closed
number is invalidated (closed, as if by its own `close()`), so that it can
never act on a later fd that reuses the number.  The library's own fds (a
child's connection, an epoll fd) are never touched: the range is split
around them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.near.sysnum import SYS

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["CLOSE_RANGE", "FD_LAST", "CloseRangeTask"]

_SYS_close_range = int(SYS.close_range)

FD_LAST = (1 << 32) - 1
"""The largest `last` close_range takes (~0U): "to the end of the table"."""


class CLOSE_RANGE(IntFlag):
    """close_range(2) flags (C: CLOSE_RANGE_*)."""

    NONE = 0
    UNSHARE = 1 << 1
    """Give the process an fd table of its own first (as unshare(CLONE_FILES))."""
    CLOEXEC = 1 << 2
    """Mark the fds close-on-exec instead of closing them."""


def _ranges(first: int, last: int, skip: Iterable[int]) -> list[tuple[int, int]]:
    """[first, last] less the numbers in `skip`, as inclusive ranges."""
    ranges = []
    low = first
    for number in sorted({n for n in skip if first <= n <= last}):
        if number > low:
            ranges.append((low, number - 1))
        low = number + 1
    if low <= last:
        ranges.append((low, last))
    return ranges


class CloseRangeTask(BaseTask):
    __slots__ = ()

    async def close_range(
        self,
        first: int = 0,
        last: int = FD_LAST,
        flags: CLOSE_RANGE = CLOSE_RANGE.NONE,
        keep: Iterable[FileDescriptor] = (),
    ) -> None:
        """close_range(2): close every fd numbered `first` to `last`
        (inclusive; by default the whole table) but those of `keep`
        (handles in this task's table) and the library's own; with
        CLOSE_RANGE.CLOEXEC, mark them close-on-exec instead.

        `await task.close_range(keep=[fd])` is "close everything but fd",
        before an exec, without knowing what else is open.  Every handle
        for a closed number is closed too (using it raises, as using any
        closed handle does), and an fd a child had inherited but not yet
        claimed (`inherit_fd`) is gone.  In the local thread this closes
        the Python process's own files in the range (the event loop's, the
        interpreter's): give a range.

        CLOSE_RANGE.UNSHARE gives the process a table of its own first.
        The handles would then name the wrong table, so it is taken only
        where it changes nothing: in a child thread that has its own copy
        already (cloned without CLONE.FILES).  Elsewhere it is a
        ValueError: a child sharing its parent's table unshares it with
        `Thread.unshare(CLONE.FILES)`, which keeps the handles right; the
        local thread and a stub share theirs with threads of their own
        process (Python's, the stub's interrupt helper), which would keep
        the old table and every fd in it."""
        for name, value in (("first", first), ("last", last)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if not 0 <= value <= FD_LAST:
                raise ValueError(f"{name} {value} outside 0..{FD_LAST}")
        if first > last:
            raise ValueError(f"first {first} is after last {last}")
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be CLOSE_RANGE flags, not {type(flags).__name__}")
        if int(flags) & ~int(CLOSE_RANGE.UNSHARE | CLOSE_RANGE.CLOEXEC):
            raise ValueError(f"unknown close_range flags {flags!r}")
        if isinstance(keep, BaseFileDescriptor | str | bytes):
            raise TypeError("keep is a collection of FileDescriptors")
        table = self.fd_table
        kept = []
        for fd in keep:
            if not isinstance(fd, BaseFileDescriptor):
                raise TypeError(f"keep holds FileDescriptors, not {type(fd).__name__}")
            if fd.task.fd_table is not table:
                raise ValueError(f"{fd!r} is not in this task's fd table")
            kept.append(fd.number)  # raises if closed
        if flags & CLOSE_RANGE.UNSHARE and (table.parent is None or table.sharers() > 1):
            raise ValueError(
                "CLOSE_RANGE.UNSHARE only in a child with a table of its own: this table is "
                "shared (for a child cloned with CLONE.FILES, unshare(CLONE.FILES) it first)"
            )
        private = [n for n in table.numbers() if (slot := table.slot(n)) and slot.private]
        ranges = _ranges(first, last, [*kept, *private])
        if not flags & CLOSE_RANGE.CLOEXEC:
            # Before the syscalls, as close() does: an AsyncFileDescriptor's
            # callback takes the fd out of its epoll set before it closes.
            table.closed_underneath(
                n for n in [*table.numbers(), *table.inherited]
                if any(low <= n <= high for low, high in ranges)
            )
        if not ranges and flags & CLOSE_RANGE.UNSHARE:
            ranges = [(FD_LAST, FD_LAST)]  # nothing to close, but unshare
        for low, high in ranges:
            await self.sysif.syscall(_SYS_close_range, low, high, int(flags))
