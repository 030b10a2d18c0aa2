"""<sys/pidfd.h>: process file descriptors, pidfd_open(2),
pidfd_send_signal(2), pidfd_getfd(2).

pidfd_open is a method of the `Process` it opens (`process.pidfd_open()`);
the others are methods of the pidfd.

A pidfd names one process for as long as the fd lives, so unlike a pid it
cannot come to name another process after the first is reaped.  It becomes
readable when the process exits, which is how the library watches children
without SIGCHLD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG
from rsyscall.struct import CInt

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["PIDFD", "PidfdFileDescriptor", "PidfdProcess", "PidfdTask"]


class PIDFD(IntFlag):
    """pidfd_open(2) flags."""

    NONE = 0
    NONBLOCK = 0o4000


class PidfdTask(BaseTask):
    __slots__ = ()


class PidfdProcess(BaseProcess):
    __slots__ = ()

    async def pidfd_open(self, flags: PIDFD = PIDFD.NONE) -> FileDescriptor:
        """pidfd_open(2): a pidfd for this process, in the fd table of the
        task whose pid namespace names it (`self.task`); close-on-exec, as
        every pidfd is.  `task.process.pidfd_open()` gives one for the task
        itself."""
        return self.task.make_fd(await self.task.sysif.syscall(SYS.pidfd_open, self.pid, flags))


class PidfdFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def pidfd_send_signal(self, sig: SIG | int) -> None:
        """pidfd_send_signal(2): send `sig` to the process this pidfd names
        (with no siginfo: as kill(2) would)."""
        await self.task.sysif.syscall(SYS.pidfd_send_signal, self.number, sig, 0, 0)

    async def pidfd_getfd(self, targetfd: FileDescriptor | CInt) -> FileDescriptor:
        """pidfd_getfd(2): a copy, in this task's table, of fd `targetfd` of
        the process this pidfd names (close-on-exec): a handle of that
        process's task, such as a child thread's fd, or a plain fd number
        in its table (for fds the library has no handle for).  The flags
        argument is 0: the kernel defines none."""
        if isinstance(targetfd, BaseFileDescriptor):
            target = targetfd.number
        elif isinstance(targetfd, int) and not isinstance(targetfd, bool):
            target = targetfd
        else:
            raise TypeError(
                f"targetfd must be a FileDescriptor or an int, not {type(targetfd).__name__}"
            )
        number = await self.task.sysif.syscall(SYS.pidfd_getfd, self.number, target, 0)
        return self.task.make_fd(number)
