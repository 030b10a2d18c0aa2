"""<sys/eventfd.h>: eventfd(2), a 64-bit counter behind a file descriptor.

The counter is read and written with the ordinary `read` and `write`, 8
bytes at a time (a `UInt64`): a write adds to it, a read returns it and
resets it to zero (with EFD.SEMAPHORE: returns 1 and decrements it).  A
read of a zero counter blocks, or raises BlockingIOError if the fd is
non-blocking; through an AsyncFileDescriptor it waits for a write.

    fd = await thread.task.eventfd(0, EFD.NONBLOCK)
    await fd.write(await thread.ptr(UInt64(1)))
    valid, _ = await fd.read(await thread.malloc(UInt64))
    assert await valid.read() == 1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsyscall._enum import IntFlag
from rsyscall.base import BaseTask
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_INT, C_UINT, CUInt, int_arg

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["EFD", "EventfdTask"]


class EFD(IntFlag):
    """eventfd(2) flags."""

    NONE = 0
    SEMAPHORE = 0o1
    NONBLOCK = 0o4000
    CLOEXEC = 0o2000000


_SYS_eventfd2 = int(SYS.eventfd2)
_EFD_CLOEXEC = int(EFD.CLOEXEC)




class EventfdTask(BaseTask):
    __slots__ = ()

    async def eventfd(self, initval: CUInt = 0, flags: EFD = EFD.NONE) -> FileDescriptor:
        """eventfd(2) (the eventfd2 syscall): a new eventfd whose counter
        starts at `initval` (a C unsigned int).  `EFD.CLOEXEC` is always
        added to `flags`."""
        initial = int_arg("initval", initval, C_UINT)
        flag_bits = int_arg("flags", flags, C_INT) | _EFD_CLOEXEC
        return self.make_fd(await self.sysif.syscall(_SYS_eventfd2, initial, flag_bits))
