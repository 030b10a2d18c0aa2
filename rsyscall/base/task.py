"""BaseTask: the identity of one process as the library reaches it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rsyscall.base.fd import FDTable
from rsyscall.memory.transport import AddressSpace
from rsyscall.near.interface import SyscallInterface

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor, Process

__all__ = ["BaseTask"]


class BaseTask:
    """One process: how to make syscalls in it, its fd table, its memory.

    `sysif` carries the syscalls; `fd_table` is shared with tasks that share
    the kernel's fd table (CLONE_FILES); `space` is shared with tasks that
    share memory (CLONE_VM), and pointers are valid in every task of their
    address space.  `pid` is the process id as the task's own pid namespace
    sees it... as far as the library knows at creation."""

    __slots__ = ("__weakref__", "fd_table", "pid", "space", "sysif")
    fd_class: ClassVar[type[FileDescriptor]]
    process_class: ClassVar[type[Process]]

    def __init__(
        self, sysif: SyscallInterface, space: AddressSpace, fd_table: FDTable, pid: int
    ) -> None:
        self.sysif = sysif
        self.space = space
        self.fd_table = fd_table
        self.pid = pid

    def make_fd(self, number: int) -> FileDescriptor:
        """A new handle for fd `number` in this task's fd table.

        The handle owns a reference: when the last handle for a number in a
        table goes away, the fd is closed.  Use this for fd numbers a
        syscall just created, or to take ownership of one made outside the
        library."""
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"a file descriptor number is an int, not {type(number).__name__}")
        if not 0 <= number < 1 << 31:
            raise ValueError(f"not a file descriptor number: {number!r}")
        return self.fd_class(self, number)  # type: ignore[arg-type]

    def make_process(self, pid: int) -> Process:
        """A handle for process `pid` as this task's pid namespace sees it,
        to name it in syscalls (kill, setpriority...)."""
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"not a process id: {pid!r}")
        return self.process_class(self, pid)  # type: ignore[arg-type]

    @property
    def process(self) -> Process:
        """This task's own process, as a `Process` to name it in syscalls."""
        return self.process_class(self, self.pid)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pid={self.pid}, fds={self.fd_table.name})"
