"""The handles users hold: `Task`, `FileDescriptor`, `Process`,
`ChildProcess`, and the pointer family.

`Task`, `FileDescriptor` and `Process` are composed here from the base
classes and the syscall mixins of the header modules, so each syscall is
written in the module of its C header and found there by its man page.
"""

from __future__ import annotations

from typing import Protocol

from rsyscall.argcheck import check_arguments
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.dirent import DirentFileDescriptor
from rsyscall.fcntl import FcntlFileDescriptor, FcntlTask
from rsyscall.grp import GrpTask

# setsockopt's annotations name the option enums of rsyscall.netinet and
# rsyscall.linux.netlink, which register their options with it when
# imported.
from rsyscall.linux import netlink as _netlink  # noqa: F401
from rsyscall.linux.capability import CapabilityProcess, CapabilityTask
from rsyscall.linux.close_range import CloseRangeTask
from rsyscall.linux.futex import FutexProcess, FutexTask
from rsyscall.linux.if_tun import TunFileDescriptor
from rsyscall.linux.landlock import LandlockFileDescriptor, LandlockTask
from rsyscall.linux.openat2 import Openat2Task
from rsyscall.linux.seccomp import SeccompFileDescriptor, SeccompTask
from rsyscall.memory.pointer import (
    LinearPointer,
    Pointer,
    ReadablePointer,
    UseAfterConsumeError,
    WrittenPointer,
)
from rsyscall.near.sysnum import SYS
from rsyscall.net.if_ import IfFileDescriptor
from rsyscall.netinet import in_ as _in  # noqa: F401
from rsyscall.netinet import ip as _ip  # noqa: F401
from rsyscall.netinet import tcp as _tcp  # noqa: F401
from rsyscall.sched import SchedFileDescriptor, SchedProcess, SchedTask
from rsyscall.signal import SIG, KillTask, ProcessGroup, SignalProcess, SignalTask
from rsyscall.stdio import StdioTask
from rsyscall.sys.epoll import EpollFileDescriptor, EpollTask
from rsyscall.sys.eventfd import EventfdTask
from rsyscall.sys.inotify import InotifyFileDescriptor, InotifyTask
from rsyscall.sys.ioctl import IoctlFileDescriptor
from rsyscall.sys.mman import MemfdTask, MemoryMapping, MmanFileDescriptor, MmanTask
from rsyscall.sys.mount import MountFileDescriptor, MountTask
from rsyscall.sys.pidfd import PidfdFileDescriptor, PidfdProcess, PidfdTask
from rsyscall.sys.prctl import PrctlTask
from rsyscall.sys.ptrace import PtraceProcess, PtraceTask
from rsyscall.sys.resource import ResourceProcess, ResourceTask
from rsyscall.sys.signalfd import SignalfdFileDescriptor, SignalfdTask
from rsyscall.sys.socket import SocketFileDescriptor, SocketTask
from rsyscall.sys.stat import StatFileDescriptor, StatTask
from rsyscall.sys.timerfd import TimerfdFileDescriptor, TimerfdTask
from rsyscall.sys.uio import UioFileDescriptor, UioProcess
from rsyscall.sys.utsname import UtsnameTask
from rsyscall.sys.wait import P, W, WaitTask
from rsyscall.sys.xattr import XattrFileDescriptor, XattrTask
from rsyscall.time import TimeTask
from rsyscall.unistd import UnistdFileDescriptor, UnistdProcess, UnistdTask

_SYS_kill = int(SYS.kill)
_SYS_pidfd_send_signal = int(SYS.pidfd_send_signal)
_SYS_waitid = int(SYS.waitid)
# W.ALL: a child whose exit signal is not SIGCHLD (clone3's exit_signal) too.
_W_EXITED_ALL = int(W.EXITED | W.ALL)

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
    SchedFileDescriptor,
    PidfdFileDescriptor,
    EpollFileDescriptor,
    SocketFileDescriptor,
    StatFileDescriptor,
    DirentFileDescriptor,
    TimerfdFileDescriptor,
    SignalfdFileDescriptor,
    InotifyFileDescriptor,
    IoctlFileDescriptor,
    IfFileDescriptor,
    MountFileDescriptor,
    SeccompFileDescriptor,
    LandlockFileDescriptor,
    TunFileDescriptor,
    MmanFileDescriptor,
    XattrFileDescriptor,
    BaseFileDescriptor,
):
    """A file descriptor in one task's fd table.  Its syscalls are methods
    named after the syscall, with the fd argument dropped."""

    __slots__ = ()


class Process(
    UnistdProcess,
    ResourceProcess,
    SignalProcess,
    SchedProcess,
    PidfdProcess,
    FutexProcess,
    CapabilityProcess,
    UioProcess,
    PtraceProcess,
    BaseProcess,
):
    """A process named by pid, for syscalls that act on a process."""

    __slots__ = ()


class ChildProcess(Process):
    """A child process of the task that holds this handle (its parent), with
    a pidfd for it in the parent's fd table (`pidfd`) and, for a child on
    our host, one in the local process's (`local_pidfd`, the same for the
    local thread's children), which works whatever the parent is doing.

    Until it is reaped, the pid cannot name another process.  If the handle
    goes away unreaped, the child is killed (through the local pidfd) and
    reaped by its parent, if the parent can still make syscalls.  `memory`,
    the record of the memory the child runs on (rsyscall.tasks.clone), is
    released once the child is known to be gone, never before."""

    __slots__ = ("local_pidfd", "memory", "pidfd", "reaped", "traced")

    def __init__(
        self,
        task: Task,
        pid: int,
        pidfd: FileDescriptor | None,
        local_pidfd: FileDescriptor | None = None,
        memory: _Releasable | None = None,
    ) -> None:
        super().__init__(task, pid)
        self.pidfd = pidfd
        self.local_pidfd = local_pidfd
        self.memory = memory
        self.reaped = False
        # Attached to by its parent through ptrace_seize/ptrace_attach, until
        # ptrace_detach: the library's own waits leave its stops alone.
        self.traced = False

    def __del__(self) -> None:
        if getattr(self, "reaped", True):
            return
        self.reaped = True
        local = self.local_pidfd
        pidfd = self.pidfd
        if local is not None and not local.closed:
            local.task.sysif.syscall_later(_SYS_pidfd_send_signal, local.number, SIG.KILL, 0, 0)
        elif local is None and pidfd is not None and not pidfd.closed:
            # A child on another host: through the parent's pidfd.
            self.task.sysif.syscall_later(_SYS_pidfd_send_signal, pidfd.number, SIG.KILL, 0, 0)
        else:
            # By pid: an unreaped child's pid cannot have been reused.
            self.task.sysif.syscall_later(_SYS_kill, self.pid, SIG.KILL)
        sysif = self.task.sysif
        record = self.memory
        if sysif.is_local or local is None:
            # The waitid holds the memory until it is answered (locally, it
            # has been by now); with a local pidfd and a parent elsewhere,
            # the parent may go first: then sweep() sees the pidfd.
            memory = None if record is None else record.memory
            sysif.syscall_later(_SYS_waitid, P.PID, self.pid, 0, _W_EXITED_ALL, 0, keep=memory)
            if record is not None:
                record.release()
        else:
            sysif.syscall_later(_SYS_waitid, P.PID, self.pid, 0, _W_EXITED_ALL, 0)


class _Releasable(Protocol):
    memory: object

    def release(self) -> None: ...


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
    KillTask,
    TimeTask,
    TimerfdTask,
    EventfdTask,
    SchedTask,
    PidfdTask,
    WaitTask,
    SignalfdTask,
    InotifyTask,
    FutexTask,
    MountTask,
    UtsnameTask,
    GrpTask,
    PrctlTask,
    CapabilityTask,
    Openat2Task,
    StdioTask,
    SeccompTask,
    LandlockTask,
    XattrTask,
    PtraceTask,
    CloseRangeTask,
    BaseTask,
):
    """One process, as the target of syscalls that act on the calling process."""

    __slots__ = ()
    fd_class = FileDescriptor
    process_class = Process


# Each syscall method checks its enum and narrow int arguments, and adds
# its paths to the OSError it raises (rsyscall.argcheck).
check_arguments(Task, FileDescriptor, Process, ChildProcess, ProcessGroup)
