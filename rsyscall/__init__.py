"""rsyscall: every Linux system call as a method on an object naming the
process it runs in.

`local_thread` is the Python process itself.  Syscalls are methods of its
`task` and of the `FileDescriptor`s they return; memory for them comes from
`local_thread.ptr(value)` and `local_thread.malloc(cls, size)`.  Constants
and structs live in the module named after their C header
(`rsyscall.sys.socket` for <sys/socket.h>).
"""

from rsyscall.command import Command
from rsyscall.epoller import AsyncFileDescriptor
from rsyscall.handle import (
    FileDescriptor,
    LinearPointer,
    MemoryMapping,
    Pointer,
    ReadablePointer,
    Task,
    UseAfterConsumeError,
    WrittenPointer,
)
from rsyscall.monitor import AsyncChildProcess
from rsyscall.near.interface import SyscallHangup

# The address families register themselves with Sockaddr when imported, so
# that reading any Pointer[Sockaddr] gives the right class.
from rsyscall.netinet import in_ as _in  # noqa: F401
from rsyscall.netinet import ip as _ip  # noqa: F401
from rsyscall.sys import un as _un  # noqa: F401
from rsyscall.thread import ChildThread, Thread, make_local_thread

local_thread: Thread = make_local_thread()
"""The Thread of the Python process itself; works in any event loop."""

__all__ = [
    "AsyncChildProcess",
    "AsyncFileDescriptor",
    "ChildThread",
    "Command",
    "FileDescriptor",
    "LinearPointer",
    "MemoryMapping",
    "Pointer",
    "ReadablePointer",
    "SyscallHangup",
    "Task",
    "Thread",
    "UseAfterConsumeError",
    "WrittenPointer",
    "local_thread",
]
