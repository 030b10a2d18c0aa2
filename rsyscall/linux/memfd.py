"""<linux/memfd.h>: memfd_create(2), an anonymous file in memory.

memfd_create(2)'s SYNOPSIS names <sys/mman.h>, but its MFD_* flags are
defined by <linux/memfd.h>; `MFD` is also importable from
`rsyscall.sys.mman`, where a mechanical reading of the man page looks.

The file is sized with `fd.ftruncate(n)`, mapped with `task.mmap(...,
fd=fd)`, and sealed with `fd.fcntl(F.ADD_SEALS, SEAL...)` (rsyscall.fcntl)
if it was made with `MFD.ALLOW_SEALING`.  Seal it with SEAL.SHRINK before
mapping it to get a `mapping.pointer()`: only then can no page of the
mapping fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsyscall._enum import IntFlag
from rsyscall.base import BaseTask
from rsyscall.memory.pointer import WrittenPointer, path_address
from rsyscall.near.sysnum import SYS

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["MFD", "MemfdTask"]


class MFD(IntFlag):
    """memfd_create(2) flags.  (The MFD_HUGE_* page sizes are encoded in
    the high bits with MFD_HUGETLB; they are not named here.)"""

    NONE = 0
    CLOEXEC = 0x0001
    ALLOW_SEALING = 0x0002
    HUGETLB = 0x0004


_SYS_memfd_create = int(SYS.memfd_create)
_MFD_CLOEXEC = int(MFD.CLOEXEC)


class MemfdTask(BaseTask):
    __slots__ = ()

    async def memfd_create(
        self, name: WrittenPointer[str], flags: MFD = MFD.NONE
    ) -> FileDescriptor:
        """memfd_create(2): a new anonymous file, shown as "memfd:`name`" in
        /proc/self/fd.  `MFD.CLOEXEC` is always added, as for every fd the
        library makes (see rsyscall.fcntl)."""
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be MFD, not {type(flags).__name__}")
        address = path_address(self, name)
        number = await self.sysif.syscall(_SYS_memfd_create, address, int(flags) | _MFD_CLOEXEC)
        return self.make_fd(number)
