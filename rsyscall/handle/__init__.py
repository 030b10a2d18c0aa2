"""The handles users hold: `Task`, `FileDescriptor`, `Process`,
`ChildProcess`, and the pointer family.

`Task`, `FileDescriptor` and `Process` are composed here from the base
classes and the syscall mixins of the header modules, so each syscall is
written in the module of its C header and found there by its man page.
"""

from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.fcntl import FcntlFileDescriptor, FcntlTask
from rsyscall.linux.dirent import DirentFileDescriptor
from rsyscall.linux.memfd import MemfdTask
from rsyscall.memory.pointer import (
    LinearPointer,
    Pointer,
    ReadablePointer,
    UseAfterConsumeError,
    WrittenPointer,
)
from rsyscall.signal import SignalProcess, SignalTask
from rsyscall.sys.epoll import EpollFileDescriptor, EpollTask
from rsyscall.sys.mman import MemoryMapping, MmanTask
from rsyscall.sys.resource import ResourceProcess, ResourceTask
from rsyscall.sys.socket import SocketFileDescriptor, SocketTask
from rsyscall.sys.stat import StatFileDescriptor, StatTask
from rsyscall.sys.uio import UioFileDescriptor
from rsyscall.unistd import UnistdFileDescriptor, UnistdProcess, UnistdTask

__all__ = [
    "ChildProcess",
    "FileDescriptor",
    "LinearPointer",
    "MemoryMapping",
    "Pointer",
    "Process",
    "ReadablePointer",
    "Task",
    "UseAfterConsumeError",
    "WrittenPointer",
]


class FileDescriptor(
    UnistdFileDescriptor,
    FcntlFileDescriptor,
    UioFileDescriptor,
    EpollFileDescriptor,
    SocketFileDescriptor,
    StatFileDescriptor,
    DirentFileDescriptor,
    BaseFileDescriptor,
):
    """A file descriptor in one task's fd table.  Its syscalls are methods
    named after the syscall, with the fd argument dropped."""

    __slots__ = ()


class Process(
    UnistdProcess,
    ResourceProcess,
    SignalProcess,
    BaseProcess,
):
    """A process named by pid, for syscalls that act on a process."""

    __slots__ = ()


class ChildProcess(Process):
    """A child process of the task that holds this handle: it can be waited for."""

    __slots__ = ()


class Task(
    UnistdTask,
    FcntlTask,
    SocketTask,
    EpollTask,
    StatTask,
    MmanTask,
    MemfdTask,
    ResourceTask,
    SignalTask,
    BaseTask,
):
    """One process, as the target of syscalls that act on the calling process."""

    __slots__ = ()
    fd_class = FileDescriptor
    process_class = Process
