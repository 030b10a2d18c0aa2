"""<stdio.h>: renameat2(2), the one syscall the C stdio header declares
(with _GNU_SOURCE), and its RENAME_* flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsyscall._enum import IntFlag
from rsyscall.base import BaseTask
from rsyscall.fcntl import dirfd_number
from rsyscall.memory.pointer import PathPointer, path_address
from rsyscall.near.sysnum import SYS

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["RENAME", "StdioTask"]


class RENAME(IntFlag):
    """renameat2(2) flags (C: RENAME_*)."""

    NONE = 0
    NOREPLACE = 1
    EXCHANGE = 2
    WHITEOUT = 4


_SYS_renameat2 = int(SYS.renameat2)


class StdioTask(BaseTask):
    __slots__ = ()

    async def renameat2(
        self, olddirfd: FileDescriptor | None, oldpath: PathPointer,
        newdirfd: FileDescriptor | None, newpath: PathPointer, flags: RENAME = RENAME.NONE,
    ) -> None:
        """renameat2(2): rename `oldpath` (relative to `olddirfd`; None: the
        working directory) to `newpath`.  RENAME.NOREPLACE fails with EEXIST
        instead of replacing; RENAME.EXCHANGE swaps the two atomically."""
        await self.sysif.syscall(
            _SYS_renameat2, dirfd_number(self, olddirfd), path_address(self, oldpath),
            dirfd_number(self, newdirfd), path_address(self, newpath), flags,
        )

    async def renameat(
        self, olddirfd: FileDescriptor | None, oldpath: PathPointer,
        newdirfd: FileDescriptor | None, newpath: PathPointer,
    ) -> None:
        """renameat(2), as renameat2(2) without flags (the x86_64 table's
        renameat, the same call)."""
        await self.renameat2(olddirfd, oldpath, newdirfd, newpath)

    async def rename(self, oldpath: PathPointer, newpath: PathPointer) -> None:
        """rename(2), as renameat2(2) relative to the working directory."""
        await self.renameat2(None, oldpath, None, newpath)
