"""<sys/ioctl.h>: ioctl(2), and the FIO* requests that apply to any file.

ioctl(2) is one syscall with many meanings: the request decides what the
third argument is, and whether the kernel reads the memory it points to,
writes it, or both.  The library cannot know that for an arbitrary
request, so `FileDescriptor.ioctl` takes the one shape that is safe for
all of them:

* `await fd.ioctl(request)` or `await fd.ioctl(request, n)`: no argument,
  or an integer one; returns the ioctl's result.
* `await fd.ioctl(request, ptr)`: a pointer argument.  The kernel may write
  through it, so the pointer is consumed (DESIGN.md rule 5) and
  `(result, ReadablePointer)` is returned for the same memory, holding
  whatever the request left there.  This is right for in, out and in-out
  requests alike: an in-only request leaves the bytes as they were.

Requests whose argument is known get typed methods in the header module
of their man page; those that only read memory borrow the pointer instead
of consuming it.  The network interface requests of netdevice(7) are in
rsyscall.net.if_ (`sock.siocgifflags(ifr)`...).
"""

from __future__ import annotations

import enum
from typing import TypeVar, overload

from rsyscall.base import BaseFileDescriptor
from rsyscall.memory.pointer import Pointer, ReadablePointer, restore, take
from rsyscall.near.sysnum import SYS

__all__ = ["FIO", "IoctlFileDescriptor"]

T = TypeVar("T")


class FIO(enum.IntEnum):
    """Requests every open file accepts (C: FIONREAD, FIONBIO...).

    The argument each takes, as `fd.ioctl(FIO.X, arg)`:"""

    # ptr: Pointer[Int32], written: how many bytes can be read without
    # blocking (sockets, pipes, ttys; ENOTTY on a file type without it).
    NREAD = 0x541B
    # ptr: WrittenPointer[Int32], read: nonzero sets O_NONBLOCK, zero clears it.
    NBIO = 0x5421
    # No argument: clear close-on-exec, as fcntl(F.SETFD, 0).
    NCLEX = 0x5450
    # No argument: set close-on-exec, as fcntl(F.SETFD, FD.CLOEXEC).
    CLEX = 0x5451
    # ptr: WrittenPointer[Int32], read: nonzero sets O_ASYNC, zero clears it.
    ASYNC = 0x5452


_SYS_ioctl = int(SYS.ioctl)


class IoctlFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    @overload
    async def ioctl(self, request: int, arg: int = 0) -> int: ...
    @overload
    async def ioctl(self, request: int, arg: Pointer[T]) -> tuple[int, ReadablePointer[T]]: ...
    async def ioctl(
        self, request: int, arg: int | Pointer[T] = 0
    ) -> int | tuple[int, ReadablePointer[T]]:
        """ioctl(2): perform device-specific `request` on this fd.

        With an integer `arg` (or none) returns the result.  With a pointer,
        passes its address: the pointer is consumed, since the kernel may
        write there, and `(result, ReadablePointer)` to the same memory is
        returned."""
        if not isinstance(request, int) or isinstance(request, bool):
            raise TypeError(f"request must be an int, not {type(request).__name__}")
        number = self.number
        if isinstance(arg, Pointer):
            alloc = take(arg, self.task)
            try:
                result = await self.task.sysif.syscall(_SYS_ioctl, number, request, alloc.address)
            except BaseException:
                restore(arg, alloc)
                raise
            return result, arg._readable(alloc, self.task)
        # bool is an int, but True where a pointer belongs is a mistake (FIONBIO).
        if not isinstance(arg, int) or isinstance(arg, bool):
            raise TypeError(f"arg must be an int or a Pointer, not {type(arg).__name__}")
        return await self.task.sysif.syscall(_SYS_ioctl, number, request, arg)
