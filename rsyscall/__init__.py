"""rsyscall: every Linux system call as a method on an object naming the
process it runs in.

`local_thread` is the Python process itself.  Syscalls are methods of its
`task` and of the `FileDescriptor`s they return; memory for them comes from
`local_thread.ptr(value)` and `local_thread.malloc(cls, size)`.  Constants
and structs live in the module named after their C header
(`rsyscall.sys.socket` for <sys/socket.h>).

Arguments are checked before any syscall is made.  An enum parameter
takes its own class: a member of another enum class, or a bool, is a
TypeError.  A plain int is accepted only if it is in range: for an
IntEnum, the value of one of its members; for an IntFlag, only bits the
class defines; out of range is a ValueError.  `SIG | int` and the like
take any int of the C type, but no other enum's members; ints of a C type
narrower than 64 bits (C int, pid_t, mode_t as `S`...) are range-checked
too (rsyscall.argcheck).

A failed syscall raises the builtin OSError subclass for its errno
(FileNotFoundError, BlockingIOError...), whose str() names the syscall,
with the paths it was given as `filename` and `filename2`:
`openat: [Errno 2] No such file or directory: '/x'`.
"""

from rsyscall.argcheck import check_arguments
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
from rsyscall.linux import netlink as _netlink  # noqa: F401  # registers SockaddrNl (below)
from rsyscall.monitor import AsyncChildProcess
from rsyscall.near.interface import SyscallHangup

# The address families register themselves with Sockaddr when imported, so
# that reading any Pointer[Sockaddr] gives the right class; the protocol
# modules register their socket options with setsockopt and getsockopt.
from rsyscall.netinet import in_ as _in  # noqa: F401
from rsyscall.netinet import ip as _ip  # noqa: F401
from rsyscall.netinet import tcp as _tcp  # noqa: F401
from rsyscall.sys import un as _un  # noqa: F401
from rsyscall.thread import ChildThread, Thread, make_local_thread, write_user_mappings

# The thread classes' syscall helpers check their arguments as Task's
# methods do (rsyscall.argcheck).
check_arguments(Thread, ChildThread, AsyncFileDescriptor, AsyncChildProcess)

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
    "write_user_mappings",
]
