"""The lowest layer: syscall numbers and the SyscallInterface."""

from rsyscall.near.interface import SyscallHangup, SyscallInterface
from rsyscall.near.sysnum import SYS

__all__ = ["SYS", "SyscallHangup", "SyscallInterface"]
