"""The local syscall interface: direct syscalls in the Python process.

This is the fast path.  `syscall` is the C extension's `ready_syscall`: it
makes the syscall at once and returns an already-complete awaitable, so an
awaited local syscall costs one C call and no Python frame of its own.
A blocking syscall made here blocks the whole event loop, as it would in C;
wait for readiness with an AsyncFileDescriptor instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rsyscall._native import _raw
from rsyscall.base.fd import FDTable
from rsyscall.near.interface import SyscallInterface
from rsyscall.near.sysnum import SYS

__all__ = ["LocalSyscall", "local_fd_table"]

_SYS_close = int(SYS.close)


class LocalSyscall(SyscallInterface):
    """Syscalls in this very process."""

    __slots__ = ()
    is_local = True

    # A builtin function is not a descriptor, so it is looked up and called
    # without binding self, with no Python frame in between.
    syscall: Callable[..., Awaitable[int]] = _raw.ready_syscall

    def syscall_later(self, number: int, /, *args: int, keep: object = None) -> None:
        # Here "later" is now: a direct syscall takes no waiting.
        try:
            _raw.syscall(number, *args)
        except OSError:
            pass

    def __repr__(self) -> str:
        return "LocalSyscall()"


def _close_now(number: int) -> bool:
    # Called from finalizers; a close error here has nobody to report to.
    try:
        _raw.syscall(_SYS_close, number)
    except OSError:
        pass
    return True


def local_fd_table() -> FDTable:
    """The Python process's fd table: unreferenced fds are closed at once."""
    return FDTable("local", _close_now)
