"""Thread: a Task with the allocator, environment and stdio that make it usable.

`Thread` is what users hold.  Its `task` is the target of syscalls; the
thread adds memory (`ptr`, `malloc`), the environment, the standard fds,
and the helpers that combine a few syscalls (`pipe`, `spit`,
`read_to_eof`...).  `rsyscall.local_thread` is the Thread of the Python
process itself.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import struct
import subprocess
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio

from rsyscall._native import _raw
from rsyscall.base import BaseFileDescriptor
from rsyscall.blockingio import read_to_eof as _local_read_to_eof
from rsyscall.blockingio import write_file as _local_write_file
from rsyscall.command import Command
from rsyscall.environ import Environment
from rsyscall.epoller import REQUEST_FD_ID, AsyncFileDescriptor, Epoller, wait_local
from rsyscall.fcntl import AT, F, O, dirfd_number
from rsyscall.handle import ChildProcess, FileDescriptor, Pointer, Task, WrittenPointer
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.transport import local_address_space
from rsyscall.monitor import AsyncChildProcess
from rsyscall.near.interface import SyscallHangup, SyscallInterface, syscall_error
from rsyscall.near.sysnum import SYS
from rsyscall.sched import CLONE
from rsyscall.signal import NSIG, SIG, Sigaction, Sighandler
from rsyscall.struct import (
    BytesSerializer,
    CInt,
    FixedSize,
    HasSerializer,
    PathSerializer,
    Serializer,
    StrSerializer,
)
from rsyscall.sys.epoll import EPOLL, EPOLL_CTL, EpollEvent
from rsyscall.sys.eventfd import EFD
from rsyscall.sys.socket import (
    AF,
    MSG,
    SOCK,
    CmsgList,
    CmsgSCMRights,
    RecvMsghdr,
    SendMsghdr,
    Sockaddr,
    Socketpair,
)
from rsyscall.sys.stat import S
from rsyscall.sys.uio import IovecList
from rsyscall.sys.wait import CLD, CalledProcessError, ChildState, P, W
from rsyscall.tasks.clone import (
    CHILD_STACK_SIZE,
    EXEC_WORD_OFFSET,
    INTERRUPT_SIGNAL,
    SIGINFO_SIZE,
    USER_FLAGS,
    HelperInterrupter,
    RunningMemory,
    ServerInterrupter,
    allocate_stack,
    clone_process,
    spawn_futex_waiter,
    sweep,
)
from rsyscall.tasks.connection import EXEC_OR_EXIT, ConnectionSyscall, wait_remote
from rsyscall.tasks.local import LocalSyscall, local_fd_table
from rsyscall.unistd import Pipe

if TYPE_CHECKING:
    from rsyscall.memory.transport import AddressSpace

__all__ = ["ChildThread", "Thread", "make_local_thread"]

_SYS_execve = int(SYS.execve)
_SYS_chdir = int(SYS.chdir)
# For _raw.spawn: fd 2 is to be whatever fd 1 became (stderr=STDOUT).
_SPAWN_SAME_AS_STDOUT = -2
# WEXITED|WNOHANG and __WALL: also a child whose exit signal is not SIGCHLD.
_WAIT_EXITED_NOHANG = os.WEXITED | os.WNOHANG | int(W.ALL)
_SYS_execveat = int(SYS.execveat)
_SYS_exit = int(SYS.exit)
_SYS_waitid = int(SYS.waitid)
_SYS_write = int(SYS.write)
_SYS_getpid = int(SYS.getpid)
_SYS_close_range = int(SYS.close_range)
_SYS_set_tid_address = int(SYS.set_tid_address)
_SYS_rt_sigaction = int(SYS.rt_sigaction)
_SYS_pidfd_send_signal = int(SYS.pidfd_send_signal)
_FD_MAX = (1 << 32) - 1  # close_range takes unsigned ints
_ONE = struct.pack("<i", 1)
_SIGACTION_SIZE = 32  # the kernel's struct sigaction: all zero is SIG_DFL


async def _wait_local_child(pidfd: int, pid: int) -> ChildState:
    """Reap the local child `pidfd` names once it exits: waitid(2) without
    hanging, and between tries the event loop's wait for the pidfd to be
    readable (which it is once the child has exited)."""
    while (info := os.waitid(os.P_PIDFD, pidfd, _WAIT_EXITED_NOHANG)) is None:
        await anyio.wait_readable(pidfd)
    return ChildState(CLD(info.si_code), pid, info.si_uid, info.si_status)


async def _kill_and_reap_local_child(pidfd: int, pid: int) -> None:
    """SIGKILL the local child `pidfd` names and reap it, whatever else is
    cancelled meanwhile: the caller is raising a cancellation already, and
    a child is never left unreaped."""
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    with anyio.CancelScope(shield=True):
        while True:
            try:
                await _wait_local_child(pidfd, pid)
                return
            except anyio.get_cancelled_exc_class():
                # A native asyncio cancellation, which no shield stops:
                # the caller's own goes on once the child is reaped.
                continue


T = TypeVar("T")
StrPath = str | os.PathLike[str]
# DEBUG: each clone and exec (rsyscall.connection traces their syscalls).
_clone_log = logging.getLogger("rsyscall.clone")

_BYTES = BytesSerializer()
_STR = StrSerializer()
_PATH = PathSerializer()
_MODE_644 = S(0o644)
_MAX_SIZE = 1 << 63  # a size_t that is also a valid ssize_t
_MODE_755 = S(0o755)


class Thread:
    """A process we can make syscalls in, with what it takes to use it.

    * `task`: the `Task` whose methods are the process's syscalls.
    * `ptr(value)` / `malloc(cls, size)`: memory in its address space.
    * `stdin`, `stdout`, `stderr`: handles for fds 0, 1 and 2.
    * `environ`: the environment its exec'd children start from.
    """

    def __init__(
        self,
        task: Task,
        environ: Mapping[str, str],
        stdin: FileDescriptor,
        stdout: FileDescriptor,
        stderr: FileDescriptor,
        local: Thread | None = None,
    ) -> None:
        self.task = task
        # The Python process's own thread: our ends of every connection live
        # there, so every thread knows it.
        self.local: Thread = self if local is None else local
        self.environ = Environment(self, environ)
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._epoller: Epoller | None = None

    # How this thread's epoller waits: see rsyscall.epoller.
    _wait_for_events: Callable[[Epoller], Awaitable[None]] = staticmethod(wait_local)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pid={self.task.pid})"

    @property
    def space(self) -> AddressSpace:
        return self.task.space

    # ---- memory ----

    async def _allocate(self, size: int) -> Allocation:
        allocator = self.task.space.allocator
        alloc = allocator.try_allocate(size)
        if alloc is None:
            alloc = await allocator.allocate(size)
        return alloc

    @overload
    async def ptr(self, value: str) -> WrittenPointer[str]: ...
    @overload
    async def ptr(self, value: os.PathLike[str]) -> WrittenPointer[os.PathLike[str]]: ...
    @overload
    async def ptr(self, value: T) -> WrittenPointer[T]: ...
    async def ptr(self, value: Any) -> WrittenPointer[Any]:
        """Allocate memory, write `value` there, and return the pointer.

        `value` may be a struct or other value of a type the library
        defines, `bytes`, or a `str` or `os.PathLike` (written as a
        NUL-terminated C string)."""
        serializer: Serializer[Any]
        kind: type[HasSerializer] | None = None
        if isinstance(value, HasSerializer):
            kind = type(value)
            serializer = kind.get_serializer(self.task)
        elif isinstance(value, bytes | bytearray | memoryview):
            serializer = _BYTES
        elif isinstance(value, str):
            serializer = _STR
        elif isinstance(value, os.PathLike):
            serializer = _PATH
        else:
            raise TypeError(
                f"cannot write a {type(value).__name__} to memory; expected bytes, str, "
                "os.PathLike or a type from the rsyscall header modules"
            )
        data = serializer.to_bytes(value)
        alloc = await self._allocate(len(data))
        await self.task.space.transport.write(alloc.address, data)
        if serializer is _BYTES:
            value = data  # bytes, never a bytearray that could change later
        return WrittenPointer(self.task, serializer, kind, alloc, value)

    @overload
    async def malloc(self, cls: type[bytes], size: int) -> Pointer[bytes]: ...
    @overload
    async def malloc(self, cls: type[str], size: int) -> Pointer[str]: ...
    @overload
    async def malloc(self, cls: type[T], size: int | None = None) -> Pointer[T]: ...
    async def malloc(self, cls: type[Any], size: int | None = None) -> Pointer[Any]:
        """Allocate uninitialized memory for a `cls`.

        A fixed-size type (a struct, `Int32`, `Pipe`) takes no size; `bytes`,
        `str` and variable-size types need one."""
        serializer: Serializer[Any]
        kind: type[HasSerializer] | None = None
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if cls is bytes or cls is str:
            serializer = _BYTES if cls is bytes else _STR
            if size is None:
                raise TypeError(f"malloc({cls.__name__}) needs a size")
        elif isinstance(cls, type) and issubclass(cls, HasSerializer):
            kind = cls
            serializer = cls.get_serializer(self.task)
            if issubclass(cls, FixedSize):
                if size is not None:
                    raise TypeError(f"{cls.__name__} has a fixed size; malloc takes no size for it")
                size = cls.sizeof()
            elif size is None:
                raise TypeError(f"{cls.__name__} has no fixed size; malloc needs a size")
        else:
            raise TypeError(f"cannot allocate memory for {cls!r}")
        if not 0 <= size < _MAX_SIZE:
            raise ValueError(f"size {size} outside 0..2**63-1")
        alloc = await self._allocate(size)
        return Pointer(self.task, serializer, kind, alloc)

    # ---- async I/O ----

    async def epoller(self) -> Epoller:
        """This thread's epoll instance, made on first use."""
        if self._epoller is None:
            epfd = await self.task.epoll_create1()
            # An eventfd in the set, written to interrupt the epoll loop's
            # wait (when the fd it waits for is closed under it).
            wakeup = await self.task.eventfd(0, EFD.NONBLOCK)
            event = await self.ptr(EpollEvent(EPOLL.IN | EPOLL.ET, REQUEST_FD_ID))
            await epfd.epoll_ctl(EPOLL_CTL.ADD, wakeup, event)
            one = await self.task.space.stage(struct.pack("<Q", 1))
            if self._epoller is None:  # nobody made one while we waited
                epoller = Epoller(self, epfd, self._wait_for_events)
                sysif = self.task.sysif

                def interrupt() -> None:
                    # The closure keeps `wakeup` and `one` alive as long as
                    # the epoller.
                    sysif.syscall_later(_SYS_write, wakeup.number, one.address, 8)

                epoller.interrupt = interrupt
                self._epoller = epoller
        return self._epoller

    async def make_afd(self, fd: FileDescriptor, set_nonblock: bool = False) -> AsyncFileDescriptor:
        """An AsyncFileDescriptor for `fd`, which must be (or, with
        `set_nonblock`, is made) non-blocking: O_NONBLOCK is a property of
        the open file, shared with every fd that refers to it."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"make_afd needs a FileDescriptor, not {type(fd).__name__}")
        if fd.task.fd_table is not self.task.fd_table:
            raise ValueError("fd belongs to a different fd table than this thread")
        return await AsyncFileDescriptor.make(await self.epoller(), fd, set_nonblock)

    # ---- helpers ----

    async def pipe(self) -> Pipe:
        """A new pipe (pipe2(2)), both ends close-on-exec."""
        return await (await self.task.pipe(await self.malloc(Pipe))).read()

    async def socketpair(self, domain: AF, type: SOCK, protocol: CInt = 0) -> Socketpair:
        """A new pair of connected sockets (socketpair(2)), close-on-exec."""
        sv = await self.malloc(Socketpair)
        return await (await self.task.socketpair(domain, type, protocol, sv)).read()

    @overload
    async def spit(self, path: StrPath, text: str | bytes, mode: S = ...) -> StrPath: ...
    @overload
    async def spit(
        self, path: FileDescriptor, text: str | bytes, mode: S = ...
    ) -> FileDescriptor: ...
    async def spit(
        self, path: StrPath | FileDescriptor, text: str | bytes, mode: S = _MODE_644
    ) -> StrPath | FileDescriptor:
        """Create or truncate the file at `path`, write `text`, close it; returns `path`.
        Given an fd of this thread instead, write all of `text` to it (at
        its offset; left open) and return the fd.

        In the local thread this waits for room (a FIFO, a tty) and for a
        FIFO's reader without blocking the process (rsyscall.blockingio)."""
        if isinstance(text, str):
            data = text.encode()
        elif isinstance(text, bytes | bytearray | memoryview):
            data = bytes(text)
        else:  # bytes(5) would be five NULs
            raise TypeError(f"text must be str or bytes, not {type(text).__name__}")
        if isinstance(path, BaseFileDescriptor):
            if path.task.fd_table is not self.task.fd_table:
                raise ValueError("spit takes an fd of this thread")
            rest = await self.ptr(data) if data else None
            while rest is not None and rest.size():
                _, rest = await path.write(rest)
            return path
        if isinstance(self.task.sysif, LocalSyscall):
            await _local_write_file(self, path, data, O.WRONLY | O.CREAT | O.TRUNC, mode)
            return path
        fd = await self.task.open(await self.ptr(path), O.WRONLY | O.CREAT | O.TRUNC, mode)
        try:
            if data:
                rest = await self.ptr(data)
                while rest.size():
                    _, rest = await fd.write(rest)
        finally:
            await fd.close()
        return path

    async def bind_getsockname(self, sock: FileDescriptor, addr: Sockaddr) -> Sockaddr:
        """bind(2) `sock` (of this thread) to `addr`, then getsockname(2):
        the address it got (the port the kernel chose for port 0, the
        autobound name of an abstract unix socket)."""
        if not isinstance(addr, Sockaddr):
            raise TypeError(f"addr must be a socket address, not {type(addr).__name__}")
        await sock.bind(await self.ptr(addr))
        valid, _ = await sock.getsockname(await self.malloc(Sockaddr))
        return await valid.read()

    async def mkdir(self, path: StrPath, mode: S = _MODE_755) -> StrPath:
        """Make directory `path` (mkdir(2)); returns `path`."""
        await self.task.mkdir(await self.ptr(path), mode)
        return path

    async def read_to_eof(self, fd: FileDescriptor, chunk: int = 65536) -> bytes:
        """Read `fd` until end of file and return everything read.

        For an fd of the Python process this waits for data in the local
        thread's epoller, leaving the fd's file description (its
        O_NONBLOCK) as it is (rsyscall.blockingio); in another process it
        makes blocking read(2) calls there."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"read_to_eof needs a FileDescriptor, not {type(fd).__name__}")
        if isinstance(chunk, int) and chunk < 1:
            # A zero-byte read returns 0, which would look like end of file.
            raise ValueError(f"chunk must be at least 1 byte, not {chunk}")
        if isinstance(fd, BaseFileDescriptor) and isinstance(fd.task.sysif, LocalSyscall):
            if not isinstance(chunk, int) or isinstance(chunk, bool):
                raise TypeError(f"chunk must be an int, not {type(chunk).__name__}")
            return await _local_read_to_eof(self.local, fd, chunk)
        parts: list[bytes] = []
        buf = await self.malloc(bytes, chunk)
        while True:
            valid, rest = await fd.read(buf)
            if valid.size() == 0:
                return b"".join(parts)
            parts.append(await valid.read())
            buf = valid + rest

    # ---- child processes ----

    async def clone(
        self, flags: CLONE = CLONE.NONE, *, automatically_write_user_mappings: bool = True,
        legacy_clone: bool = False,
    ) -> ChildThread:
        """clone3(2): a new child process, inert until we make syscalls in it.

        The child shares our memory (so pointers work in it unchanged),
        runs the syscall server, and dies if this thread dies.  `flags` may
        add CLONE.FILES (share the fd table; without it the child gets a
        copy, and `inherit_fd` names its copies), CLONE.FS and namespace
        flags (NEWUSER, NEWNS, NEWPID, NEWNET, NEWUTS, NEWIPC...).  With
        NEWUSER the child's uid and gid maps are written so that it keeps
        our ids (only those are mapped, and setgroups is denied), unless
        `automatically_write_user_mappings` is False: then the child starts
        unmapped (as the overflow ids), for `write_user_mappings` or maps
        of your own.

        A child that gets a copy of the fd table keeps only the copies of
        fds this thread has handles for (the rest it closes at once), and
        closes each of those as soon as this thread's last handle for it
        goes away, unless `inherit_fd` claimed it first: so a child never
        keeps a pipe open behind everyone's back.

        Sharing memory means sharing what belongs to the address space:
        prctl options such as PR_SET_DUMPABLE or PR_SET_MM, and mmap and
        munmap, act on ours too.  Exec gives the child memory of its own.

        With `legacy_clone` the child is made by the old clone(2) rather
        than clone3(2); that also happens by itself where clone3 fails with
        ENOSYS (seccomp profiles that predate it).  clone(2) cannot clear
        the child's signal handlers as clone3 does, so the child resets
        each handler it inherited to SIG_DFL (keeping ignored signals
        ignored) before it is returned; until then a signal sent to it
        would run its parent's handler there.  clone(2) cannot take
        CLONE.NEWTIME (ValueError with `legacy_clone`)."""
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be CLONE flags, not {type(flags).__name__}")
        flags = CLONE(flags)
        if flags & ~USER_FLAGS:
            raise ValueError(
                f"{CLONE(flags & ~USER_FLAGS)!r} are managed by the library, not passed to clone"
            )
        if not isinstance(legacy_clone, bool):
            raise TypeError(f"legacy_clone must be a bool, not {type(legacy_clone).__name__}")
        if legacy_clone and flags & CLONE.NEWTIME:
            raise ValueError("CLONE.NEWTIME needs clone3: in clone(2)'s flags its bit is the "
                             "exit signal's (unshare it in the child instead)")
        local = self.local
        # Memory of children that have exited since the last clone goes now.
        sweep()
        local_table = local.task.fd_table
        # Ours non-blocking, for the epoller; the child's main makes its end
        # blocking (rsys_child_main).
        ours, request_fd = await self._new_connection()
        table = self.task.fd_table
        table.mark_private(request_fd.number)
        space = self.task.space
        new_pid_namespace = bool(flags & CLONE.NEWPID)
        # rsys_child_main(fd, state, the pid the child will see as its
        # parent's: 0 from a new pid namespace, where the parent is outside).
        parent_pid = 0 if new_pid_namespace else self.task.pid
        request_number = request_fd.number
        stack, sp = await allocate_stack(
            space, CHILD_STACK_SIZE, space.functions.child_main,
            lambda base: [request_number, base, parent_pid],
        )
        pid, pidfd_number, legacy = await clone_process(self, flags, stack, sp,
                                                        legacy=legacy_clone)
        pidfd = self.task.make_fd(pidfd_number)
        table.mark_private(pidfd_number)
        local_pidfd: FileDescriptor | None = pidfd
        if self is not local:
            local_pidfd = await self._pidfd_to_local(pidfd)
            if local_pidfd is not None:
                local_table.mark_private(local_pidfd.number)
        memory = RunningMemory(local_pidfd, stack)
        process = ChildProcess(self.task, pid, pidfd, local_pidfd, memory)
        sysif = ConnectionSyscall(await local.make_afd(ours), f"pid {pid}")
        if space.local:
            assert local_pidfd is not None  # our own memory: this host
            info = await local.task.space.allocator.allocate(SIGINFO_SIZE)
            sysif.interrupter = ServerInterrupter(stack, local_pidfd, info)
        else:
            control = space.interrupts
            assert isinstance(control, FileDescriptor)
            sysif.interrupter = HelperInterrupter(control, stack, stack.address, pid)
        keep: list[int] | None = None
        if flags & CLONE.FILES:
            child_table = table
            table.add_closer(sysif.close_later)
        else:
            child_table, keep = table.copy_for_child(
                f"pid {pid}", sysif.close_later, request_fd.number
            )
        task = Task(sysif, space, child_table, 1 if new_pid_namespace else pid)
        if keep is not None:
            # What the child got but no handle of ours names (the Python
            # process's own fds, the library's machinery): close it there
            # before anything else runs.
            for low, high in _gaps(keep):
                sysif.submit_discard(_SYS_close_range, low, high, 0)
        child = ChildThread(
            task, self.environ, task.make_fd(0), task.make_fd(1), task.make_fd(2),
            local=local, parent=self, process=AsyncChildProcess(process, self),
            request_fd=task.make_fd(request_fd.number),
        )
        child_table.mark_private(request_fd.number)
        # Our copies of the child's end go now (unless the table is shared,
        # where the child's is the same fd).
        del request_fd, ours
        # The process watch: when it exits, the connection hangs up (if EOF
        # has not said so already) and its memory is released.
        await child.process.watch()
        child.process.on_exit(_hangup_later(sysif, "the process exited"))
        if legacy:
            await _reset_signal_handlers(child)
        _clone_log.debug("%r cloned pid %d (flags %r)", self, pid, flags)
        if flags & CLONE.NEWUSER and automatically_write_user_mappings:
            await self._write_id_maps(f"/proc/{pid}", await self.task.geteuid(),
                                      await self.task.getegid())
        return child

    async def unshare(self, flags: CLONE) -> None:
        """unshare(2): new namespaces for this thread's process.  With
        CLONE.NEWUSER the uid and gid maps are written so it keeps its ids.

        CLONE.FILES (a child thread cloned with CLONE.FILES only) gives the
        child a table of its own, as if it had been cloned without: it
        keeps, as `inherit_fd` claims, the copies of its parent's fds, and
        closes the rest.  Handles made before, and AsyncFileDescriptors,
        name the fds of the table it leaves (the parent's), and act there
        through the parent thread.

        The kernel refuses CLONE.NEWUSER to a process with more than one
        thread, which the Python process may be (trio, for one, keeps a
        worker thread): unshare in a child thread instead."""
        flags = CLONE(flags)
        files = bool(flags & CLONE.FILES) and self.task.fd_table.sharers() > 1
        if flags & CLONE.FILES and not isinstance(self, ChildThread):
            # The Python process's other OS threads would keep the old table.
            raise ValueError("unshare(CLONE.FILES) is for child threads; clone without "
                             "CLONE.FILES for a table of one's own")
        if flags & CLONE.NEWUSER:
            uid, gid = await self.task.geteuid(), await self.task.getegid()
        await self.task.unshare(flags)
        if files:
            assert isinstance(self, ChildThread)
            self._own_fd_table()
        if flags & CLONE.NEWUSER:
            await self._write_id_maps("/proc/self", uid, gid)

    async def _write_id_maps(
        self, proc: str, uid: int, gid: int, inside_uid: int | None = None,
        inside_gid: int | None = None,
    ) -> None:
        inside_uid = uid if inside_uid is None else inside_uid
        inside_gid = gid if inside_gid is None else inside_gid
        # setgroups must be denied before an unprivileged gid_map write.
        await self._write_file(f"{proc}/setgroups", "deny")
        await self._write_file(f"{proc}/uid_map", f"{inside_uid} {uid} 1\n")
        await self._write_file(f"{proc}/gid_map", f"{inside_gid} {gid} 1\n")

    async def _write_file(self, path: str, text: str) -> None:
        if isinstance(self.task.sysif, LocalSyscall):
            # One write(2): /proc id maps take their content in one.
            await _local_write_file(self, path, text.encode(), O.WRONLY)
            return
        fd = await self.task.open(await self.ptr(path), O.WRONLY)
        try:
            await fd.write(await self.ptr(text.encode()))
        finally:
            await fd.close()

    async def run(
        self,
        command: Command,
        *,
        check: bool = True,
        stdin: FileDescriptor | int | None = None,
        stdout: FileDescriptor | int | None = None,
        stderr: FileDescriptor | int | None = None,
        capture_output: bool = False,
        input: bytes | None = None,
        cwd: StrPath | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ChildState:
        """Clone, exec `command`, wait for it; its state (subprocess.run's
        and anyio.run_process's shape).

        `stdin`, `stdout`, `stderr`: None (this thread's own), a
        FileDescriptor of this thread, `subprocess.DEVNULL`, or
        `subprocess.PIPE` for output to capture (`stderr` may also be
        `subprocess.STDOUT`).  `capture_output` captures both; the state's
        `.stdout` and `.stderr` are the bytes.  `input` is written to the
        child's stdin (then closed).  `cwd` is chdir'd to before exec; `env`
        replaces the environment (the command's own `env` updates still
        apply on top).  With `check`, raises CalledProcessError (with the
        captured output) unless it exited 0.  Cancelled, or timed out by a
        scope, the child is killed and reaped before the cancellation goes
        on."""
        if not isinstance(command, Command):
            raise TypeError(f"run needs a Command, not {type(command).__name__}")
        if capture_output:
            if stdout is not None or stderr is not None:
                raise ValueError("capture_output with stdout or stderr given")
            stdout = stderr = subprocess.PIPE
        if input is not None:
            if stdin is not None:
                raise ValueError("input with stdin given")
            if not isinstance(input, bytes | bytearray | memoryview):
                raise TypeError(f"input must be bytes, not {type(input).__name__}")
        for name, value in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if value is None or isinstance(value, FileDescriptor):
                continue
            allowed = {subprocess.DEVNULL, subprocess.PIPE}
            if name == "stderr":
                allowed.add(subprocess.STDOUT)
            if isinstance(value, bool) or value not in allowed:
                raise ValueError(f"{name} must be None, a FileDescriptor, or one of "
                                 f"subprocess.DEVNULL/PIPE{'/STDOUT' if name == 'stderr' else ''}")
            if name == "stdin" and value == subprocess.PIPE:
                raise ValueError("stdin=PIPE: give the bytes as input=")
        # Pipes first: a child inherits only what exists when it is cloned.
        pipes: dict[int, Pipe] = {}
        for number, value in ((1, stdout), (2, stderr)):
            if value == subprocess.PIPE and not isinstance(value, FileDescriptor):
                pipes[number] = await self.pipe()
        if input is not None:
            pipes[0] = await self.pipe()
        readers: dict[str, FileDescriptor] = {}
        if self.local is self:
            spawned, pidfd, writer = await self._spawn(
                command, stdin, stdout, stderr, input, cwd, env, pipes, readers)
            return await self._finish_spawn(
                command, check, input, cwd, spawned, pidfd, readers, writer)
        process, writer = await self._clone_and_exec(
            command, stdin, stdout, stderr, input, cwd, env, pipes, readers)
        output: dict[str, bytes] = {}
        try:
            async with anyio.create_task_group() as tg:
                for name, fd in readers.items():
                    tg.start_soon(self._read_all_into, fd, name, output)
                if writer is not None:
                    tg.start_soon(self._write_all_and_close, writer, bytes(input or b""))
                state = await process.waitpid(W.EXITED)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await process._kill_and_reap()
            raise
        state.stdout = output.get("stdout")
        state.stderr = output.get("stderr")
        if check and not state.clean():
            raise CalledProcessError(state, command)
        return state

    async def _clone_and_exec(
        self,
        command: Command,
        stdin: FileDescriptor | int | None,
        stdout: FileDescriptor | int | None,
        stderr: FileDescriptor | int | None,
        input: bytes | None,
        cwd: StrPath | None,
        env: Mapping[str, str] | None,
        pipes: dict[int, Pipe],
        readers: dict[str, FileDescriptor],
    ) -> tuple[AsyncChildProcess, FileDescriptor | None]:
        """run's start in a child thread of this one, set up syscall by
        syscall and exec'd."""
        writer: FileDescriptor | None = None
        child = await self.clone()
        try:
            if env is not None:
                child.environ = Environment(child, {str(k): str(v) for k, v in env.items()})
            devnull: FileDescriptor | None = None
            for number, value in ((0, stdin), (1, stdout), (2, stderr)):
                target = (child.stdin, child.stdout, child.stderr)[number]
                if value is None:
                    continue
                if isinstance(value, FileDescriptor):
                    await child.inherit_fd(value).dup2(target)
                elif value == subprocess.DEVNULL:
                    if devnull is None:
                        devnull = await child.task.open(
                            await child.ptr("/dev/null"), O.RDWR | O.CLOEXEC
                        )
                    await devnull.dup2(target)
                elif value == subprocess.STDOUT:
                    await child.stdout.dup2(target)
                else:
                    pipe = pipes.pop(number)
                    await child.inherit_fd(pipe.write).dup2(target)
                    readers["stdout" if number == 1 else "stderr"] = pipe.read
                    await pipe.write.close()
            if input is not None:
                pipe = pipes.pop(0)
                await child.inherit_fd(pipe.read).dup2(child.stdin)
                writer = pipe.write
                await pipe.read.close()
            if devnull is not None:
                await devnull.close()
            if cwd is not None:
                await child.task.chdir(await child.ptr(os.fspath(cwd)))
            process = await child.exec(command)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await child.process._kill_and_reap()
            raise
        del child
        assert process is not None  # a child of ours
        return process, writer

    async def _spawn(
        self,
        command: Command,
        stdin: FileDescriptor | int | None,
        stdout: FileDescriptor | int | None,
        stderr: FileDescriptor | int | None,
        input: bytes | None,
        cwd: StrPath | None,
        env: Mapping[str, str] | None,
        pipes: dict[int, Pipe],
        readers: dict[str, FileDescriptor],
    ) -> tuple[_raw.Spawned, FileDescriptor, FileDescriptor | None]:
        """run's start on the local thread: the same setup done by the child
        itself between a clone sharing our memory and exec (`_raw.spawn`),
        with no connection or syscall server.  Returns at once, the child
        setting itself up alongside us; whether it exec'd is known once it
        has exited (`_finish_spawn`)."""
        writer: FileDescriptor | None = None
        sources = [-1, -1, -1]
        ours: list[FileDescriptor] = []  # our copies of what the child gets, closed after
        table = self.task.fd_table
        try:
            for number, value in ((0, stdin), (1, stdout), (2, stderr)):
                if value is None:
                    continue
                if isinstance(value, FileDescriptor):
                    if value.task.fd_table is not table:
                        raise ValueError(f"{('stdin', 'stdout', 'stderr')[number]} must be "
                                         "a FileDescriptor of this thread")
                    sources[number] = value.number
                elif value == subprocess.DEVNULL:
                    devnull = await self.task.open(
                        await self.ptr("/dev/null"), O.RDWR | O.CLOEXEC)
                    ours.append(devnull)
                    sources[number] = devnull.number
                elif value == subprocess.STDOUT:
                    sources[number] = _SPAWN_SAME_AS_STDOUT
                else:
                    pipe = pipes.pop(number)
                    ours.append(pipe.write)
                    sources[number] = pipe.write.number
                    readers["stdout" if number == 1 else "stderr"] = pipe.read
            if input is not None:
                pipe = pipes.pop(0)
                ours.append(pipe.read)
                sources[0] = pipe.read.number
                writer = pipe.write
            environ: Mapping[str, str] = self.environ if env is None else {
                str(k): str(v) for k, v in env.items()}
            if command.env_updates:
                environ = {**environ, **command.env_updates}
            if environ is self.environ:
                envp = self.environ.encoded()
            else:
                envp = [os.fsencode(f"{key}={value}") for key, value in environ.items()]
            path = os.fsencode(command.executable_path)
            argv = [os.fsencode(arg) for arg in command.arguments]
            _clone_log.debug("%r: spawn %s", self, command)
            spawned = _raw.spawn(
                path, argv, envp, (sources[0], sources[1], sources[2]),
                None if cwd is None else os.fsencode(cwd), self.task.pid)
            # A handle at once, private: a child thread cloned while we wait
            # does not get a copy.  (The child has its own table already.)
            pidfd = self.task.make_fd(spawned.pidfd)
            table.mark_private(spawned.pidfd)
        finally:
            if ours:
                with anyio.CancelScope(shield=True):
                    for fd in ours:
                        await fd.close()
        return spawned, pidfd, writer

    async def _finish_spawn(
        self,
        command: Command,
        check: bool,
        input: bytes | None,
        cwd: StrPath | None,
        spawned: _raw.Spawned,
        pidfd: FileDescriptor,
        readers: dict[str, FileDescriptor],
        writer: FileDescriptor | None,
    ) -> ChildState:
        """run's end on the local thread: wait for the child `_spawn`
        started, through the event loop's own wait for its pidfd (no
        epoller registration, no request), while any output is read and
        input written.  Once it is reaped, the plan it ran from says
        whether a step or the exec failed: then this raises that OSError.
        Cancelled, the child is killed and reaped first; the pidfd is
        closed whatever happens."""
        state: ChildState | None = None
        pid = spawned.pid
        output: dict[str, bytes] = {}
        try:
            if readers or writer is not None:
                async with anyio.create_task_group() as tg:
                    for name, fd in readers.items():
                        tg.start_soon(self._read_all_into, fd, name, output)
                    if writer is not None:
                        tg.start_soon(self._write_all_and_close, writer, bytes(input or b""))
                    state = await _wait_local_child(pidfd.number, pid)
            else:
                state = await _wait_local_child(pidfd.number, pid)
        except BaseException:
            if state is None:
                await _kill_and_reap_local_child(pidfd.number, pid)
            # Reaped: nothing runs on the plan's memory any more.
            spawned.release()
            raise
        finally:
            pidfd.drop()
        spawned.release()
        failure = spawned.failure()
        if failure is not None:
            error, failed = failure
            exception = syscall_error(failed, error)
            if failed == _SYS_chdir:
                exception.filename = os.fsdecode(os.fspath(cwd or ""))
            elif failed == _SYS_execve:
                exception.filename = os.fspath(command.executable_path)
            raise exception
        assert state is not None  # the wait returned
        state.stdout = output.get("stdout")
        state.stderr = output.get("stderr")
        if check and not state.clean():
            raise CalledProcessError(state, command)
        return state

    async def _read_all_into(self, fd: FileDescriptor, name: str, output: dict[str, bytes]) -> None:
        afd = await self.make_afd(fd, set_nonblock=True)
        chunks = []
        while chunk := await afd.read_some_bytes(65536):
            chunks.append(chunk)
        await afd.close()
        output[name] = b"".join(chunks)

    async def _write_all_and_close(self, fd: FileDescriptor, data: bytes) -> None:
        afd = await self.make_afd(fd, set_nonblock=True)
        try:
            await afd.write_all_bytes(data)
        except BrokenPipeError:
            pass  # it did not read it all: its exit status says the rest
        finally:
            await afd.close()

    # fds move between the local thread and a child over the child's
    # transfer socket (SCM_RIGHTS); the local thread needs no moving.

    on_local_host = True
    """Whether this thread's process is on our host, where fds can move
    between it and us (not so for ssh threads and theirs)."""

    async def _fd_from_local(self, fd: FileDescriptor) -> FileDescriptor:
        return fd

    async def _fd_to_local(self, fd: FileDescriptor) -> FileDescriptor:
        return fd

    async def _pidfd_to_local(self, pidfd: FileDescriptor) -> FileDescriptor | None:
        """A pidfd of ours for the process `pidfd` (in this thread's table)
        names, or None where pidfds cannot move (another host)."""
        return await self._fd_to_local(pidfd)

    async def _new_connection(self) -> tuple[FileDescriptor, FileDescriptor]:
        """A new connected stream socket between the local thread and this
        one: our end (non-blocking, private) and this thread's end (private
        in its table).  On our host: a socket pair, one end moved."""
        local = self.local
        pair = await local.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
        local_table = local.task.fd_table
        local_table.mark_private(pair.first.number)
        local_table.mark_private(pair.second.number)
        theirs = await self._fd_from_local(pair.second)
        self.task.fd_table.mark_private(theirs.number)
        return pair.first, theirs


class RemoteThread(Thread):
    """A thread in another process, reached over a syscall connection: a
    child (`ChildThread`) or a stub (`rsyscall.tasks.stub.StubThread`).

    Its syscalls travel over a socket to the server loop running in it;
    `exec` replaces it with a program.  `parent` is the thread that made
    it; `process`, if known, its `AsyncChildProcess`."""

    def __init__(
        self,
        task: Task,
        environ: Mapping[str, str],
        stdin: FileDescriptor,
        stdout: FileDescriptor,
        stderr: FileDescriptor,
        *,
        local: Thread,
        parent: Thread,
        process: AsyncChildProcess | None,
        request_fd: FileDescriptor,
    ) -> None:
        super().__init__(task, environ, stdin, stdout, stderr, local)
        self.parent = parent
        self._process = process
        self._request_fd = request_fd

    _wait_for_events = staticmethod(wait_remote)

    @property
    def connection(self) -> ConnectionSyscall:
        sysif = self.task.sysif
        assert isinstance(sysif, ConnectionSyscall)
        return sysif

    async def epoller(self) -> Epoller:
        """This thread's epoll instance: epoll_wait blocks in its process,
        with the request fd registered so that a new syscall request wakes
        it."""
        if self._epoller is None:
            epfd = await self.task.epoll_create1()
            self.task.fd_table.mark_private(epfd.number)
            event = await self.ptr(EpollEvent(EPOLL.IN, REQUEST_FD_ID))
            await epfd.epoll_ctl(EPOLL_CTL.ADD, self._request_fd, event)
            if self._epoller is None:
                epoller = Epoller(self, epfd, self._wait_for_events)
                connection = self.connection
                # Any request wakes the child's epoll_wait.
                epoller.interrupt = lambda: connection.syscall_later(_SYS_getpid)
                self._epoller = epoller
        return self._epoller

    async def exec(self, command: Command) -> AsyncChildProcess | None:
        """execve(2) `command` in this thread's process; returns its
        AsyncChildProcess (`self.process`), if this thread has one.  A
        failed exec raises OSError and leaves the thread usable; after a
        successful one, this thread's syscalls fail with SyscallHangup.

        As with subprocess's defaults (close_fds, restore_signals), the
        program gets only the fds this child has handles for (the rest are
        closed first; close-on-exec closes the library's own), and SIGPIPE
        and SIGXFSZ, which Python ignores, are back to their default.  With
        CLONE.FILES, the fd table is shared with the parent, and exec can
        only close its close-on-exec fds."""
        return await self._exec(command, None, None)

    async def execveat(
        self, dirfd: FileDescriptor | None, command: Command, flags: AT = AT.NONE
    ) -> AsyncChildProcess | None:
        """execveat(2) `command`: as `exec`, with `command.executable_path`
        resolved relative to `dirfd` (an fd of this thread; None: the
        working directory).  With AT.EMPTY_PATH the program is the file
        `dirfd` itself (a memfd holding a binary, an O_PATH fd) and
        `executable_path` is not looked at: only the arguments and the
        environment of `command` are used.  AT.SYMLINK_NOFOLLOW refuses a
        final symlink (ELOOP).

        `dirfd` stays open until the exec (it has a handle here) and, as
        every library fd, is close-on-exec: a script run this way fails
        with ENOENT, since its interpreter could not open it; binaries
        are fine."""
        if dirfd is not None and not isinstance(dirfd, BaseFileDescriptor):
            raise TypeError(f"dirfd must be a FileDescriptor or None, not {type(dirfd).__name__}")
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be AT flags, not {type(flags).__name__}")
        flags = AT(flags)
        if flags & ~(AT.EMPTY_PATH | AT.SYMLINK_NOFOLLOW):
            raise ValueError(f"execveat takes AT.EMPTY_PATH and AT.SYMLINK_NOFOLLOW, not {flags!r}")
        if flags & AT.EMPTY_PATH and dirfd is None:
            raise ValueError("AT.EMPTY_PATH runs dirfd itself: it needs a dirfd")
        number = dirfd_number(self.task, dirfd)  # checks the fd is this thread's
        return await self._exec(command, number, flags)

    async def _exec(
        self, command: Command, dirfd: int | None, flags: AT | None
    ) -> AsyncChildProcess | None:
        if not isinstance(command, Command):
            raise TypeError(f"exec needs a Command, not {type(command).__name__}")
        empty = flags is not None and bool(flags & AT.EMPTY_PATH)
        strings = [b"" if empty else os.fsencode(command.executable_path)]
        strings += [os.fsencode(arg) for arg in command.arguments]
        if command.env_updates:
            env = {**self.environ, **command.env_updates}
            strings += [os.fsencode(f"{key}={value}") for key, value in env.items()]
        else:
            strings += self.environ.encoded()
        for string in strings:
            if b"\0" in string:
                raise ValueError(f"embedded null byte in {string!r}")
        space = self.task.space
        memory, path, argv, envp = await _stage_exec_arguments(
            space, strings, len(command.arguments)
        )
        connection = self.connection
        table = self.task.fd_table
        shared = table.sharers() > 1 or table is self.local.task.fd_table
        helper: _ExecWatch | None = None
        if shared:
            # Exec gives the child a copy of the table and closes its
            # close-on-exec fds there, but our connection's other copy stays
            # in the shared table: no EOF will come.  The kernel zeroes the
            # word set_tid_address names when the child leaves our memory
            # instead, and a helper that sleeps on it says so by exiting.
            word_address = self._stack_address() + EXEC_WORD_OFFSET
            await space.transport.write(word_address, _ONE)
            connection.submit_discard(_SYS_set_tid_address, word_address)
        else:
            for low, high in _gaps([*table.numbers(), self._request_fd.number]):
                connection.submit_discard(_SYS_close_range, low, high, 0)
        default = await space.stage(bytes(_SIGACTION_SIZE))
        for sig in (SIG.PIPE, SIG.XFSZ):
            connection.submit_discard(_SYS_rt_sigaction, sig, default.address, 0, 8)
        _clone_log.debug("%s: exec %s", connection.name, command)
        if dirfd is None:
            request = connection.start(_SYS_execve, path, argv, envp)
        else:
            request = connection.start(_SYS_execveat, dirfd, path, argv, envp, int(flags or 0))
        if shared:
            helper = await self._watch_exec(word_address)
        try:
            if helper is not None and helper.status is not None:
                await helper.finish_driving(connection, request)
            else:
                await connection.finish(request)
        except OSError as error:
            if error.filename is None:
                error.filename = os.fspath(command.executable_path)
            raise
        except SyscallHangup:
            if connection.hung_up not in (EXEC_OR_EXIT, "the process closed the connection",
                                           "the process exited"):
                raise
            del memory
            if self._process is not None:
                self._process.command = command
            return self._process
        finally:
            if helper is not None and connection.hung_up is None:
                # The exec failed: the helper still sleeps.
                helper.kill()
        raise AssertionError("execve returned without failing")

    def _stack_address(self) -> int:
        interrupter = self.connection.interrupter
        assert isinstance(interrupter, ServerInterrupter | HelperInterrupter)
        return interrupter.state

    async def _watch_exec(self, word: int) -> _ExecWatch:
        """Start the helper that exits when `word` is zeroed; it hangs up the
        connection when it does.  It must live in this thread's address
        space: a child of the local process for our own, else a child of
        the parent thread, if that shares the space."""
        space = self.task.space
        if space.local:
            home = self.local
        elif isinstance(self.parent, RemoteThread) and self.parent.task.space is space:
            home = self.parent
        else:
            raise ValueError(
                "exec from a shared fd table in another address space needs a parent thread "
                "in that address space, to watch the exec"
            )
        pid, pidfd, stack = await spawn_futex_waiter(home, word)
        home.task.fd_table.mark_private(pidfd.number)
        # Watched from the local epoller where its pidfd can come here, else
        # (another host) from the epoller of the thread whose child it is.
        watcher: Thread = self.local
        if home is not self.local:
            local_pidfd = await home._pidfd_to_local(pidfd)
            if local_pidfd is None:
                watcher = home
            else:
                self.local.task.fd_table.mark_private(local_pidfd.number)
                pidfd = local_pidfd
        interrupter = self.connection.interrupter
        assert isinstance(interrupter, ServerInterrupter | HelperInterrupter)
        watch = _ExecWatch(
            self.connection, pid, pidfd, (stack, interrupter.memory), word,
            home.task.sysif, space.local,
        )
        epoller = await watcher.epoller()
        ident, status = await epoller.register(pidfd, watch.exited, EPOLL.IN | EPOLL.ET)
        watch.registration = (epoller, ident)
        if watcher is not self.local:
            # The local epoller is driven by the event loop; another
            # thread's runs only while someone waits on it: the exec does.
            watch.status = status
        return watch

    async def open_channels(self, n: int) -> list[tuple[FileDescriptor, FileDescriptor]]:
        """`n` connected stream sockets (socketpair(2), AF_UNIX) between
        the thread that made this one and this one, as `(our_end, its_end)`
        pairs: ours in the parent thread's fd table, its in this thread's.
        For moving data and fds between processes that share no fd table.

        For a thread on another host (over ssh), where no socket pair can
        span the two, each is a connection forwarded by ssh, and ours is
        in the local thread's table.  Both ends are blocking."""
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if not 0 <= n <= 1 << 16:
            raise ValueError(f"n {n} outside 0..65536")
        channels = []
        if not self.on_local_host:
            for _ in range(n):
                ours, theirs = await self._new_connection()
                await ours.fcntl(F.SETFL, O.RDWR)
                for fd in (ours, theirs):
                    fd.task.fd_table.mark_private(fd.number, False)
                channels.append((ours, theirs))
            return channels
        for _ in range(n):
            pair = await self.local.socketpair(AF.UNIX, SOCK.STREAM)
            ours = pair.first if self.parent is self.local else (
                await self.parent._fd_from_local(pair.first)
            )
            theirs = await self._fd_from_local(pair.second)
            channels.append((ours, theirs))
        return channels

class ChildThread(RemoteThread):
    """A child process made by `Thread.clone`, set up syscall by syscall.

    `exec` replaces it with a program, `exit` ends it.  `process` is its
    `AsyncChildProcess`, owned by the parent thread.  Dropping a ChildThread
    without `exit` kills and reaps it."""

    def __init__(
        self,
        task: Task,
        environ: Mapping[str, str],
        stdin: FileDescriptor,
        stdout: FileDescriptor,
        stderr: FileDescriptor,
        *,
        local: Thread,
        parent: Thread,
        process: AsyncChildProcess,
        request_fd: FileDescriptor,
    ) -> None:
        super().__init__(
            task, environ, stdin, stdout, stderr, local=local, parent=parent, process=process,
            request_fd=request_fd,
        )
        self.process = process
        # Made when first needed: our end in the local thread, and the child's.
        self._transfer: tuple[FileDescriptor, FileDescriptor] | None = None
        self._transfers = 0  # tags of the messages on it
        self._transfer_lock = anyio.Lock()
        self._parent_transfer_lock = anyio.Lock()
        # The same with the parent thread, for children on other hosts.
        self._parent_transfer: tuple[FileDescriptor, FileDescriptor] | None = None
        self._parent_transfers = 0

    @property
    def local_pidfd(self) -> FileDescriptor:
        """A pidfd for this child in the local thread's fd table (OSError
        EXDEV for a child on another host: there is none)."""
        pidfd = self.process.process.local_pidfd
        if pidfd is None:
            raise OSError(errno.EXDEV, f"{self.connection.name} is on another host: no local pidfd")
        return pidfd

    @property
    def on_local_host(self) -> bool:  # type: ignore[override]
        return self.parent.on_local_host

    def inherit_fd(self, fd: FileDescriptor) -> FileDescriptor:
        """Our handle for the copy of the parent's `fd` that this child got
        at clone time (or, with CLONE.FILES, for the same fd).

        Only fds the parent had handles for when it cloned us, and still
        has, exist here: anything else (an fd opened after the clone, or
        one whose copy was closed here when the parent let it go) is a
        ValueError.  Claiming the same fd twice gives handles that share
        ownership of the child's copy, as any two handles for one fd do."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"inherit_fd needs a FileDescriptor, not {type(fd).__name__}")
        parent_table = self.parent.task.fd_table
        if fd.task.fd_table is not parent_table:
            raise ValueError("inherit_fd takes an fd of this child's parent thread")
        number = fd.number
        table = self.task.fd_table
        if table is not parent_table and not table.inherits(number):
            raise ValueError(
                f"fd {number} was not inherited by this child: it was opened after the "
                "clone, or this child's copy was already closed"
            )
        return self.task.make_fd(number)

    async def exec(self, command: Command) -> AsyncChildProcess:
        """execve(2) `command` in this child; returns its AsyncChildProcess
        (the same as `self.process`).  See RemoteThread.exec."""
        process = await super().exec(command)
        assert process is self.process
        return self.process

    async def execveat(
        self, dirfd: FileDescriptor | None, command: Command, flags: AT = AT.NONE
    ) -> AsyncChildProcess:
        """execveat(2) `command` in this child, relative to `dirfd` or (with
        AT.EMPTY_PATH) running `dirfd` itself; returns its
        AsyncChildProcess.  See RemoteThread.execveat."""
        process = await super().execveat(dirfd, command, flags)
        assert process is self.process
        return self.process

    async def exit(self, status: CInt = 0) -> ChildState:
        """exit(2) this child with `status`; wait for it and return its state.
        Afterwards nothing of it remains: no process, no zombie, no fd."""
        if not isinstance(status, int):
            raise TypeError(f"status must be an int, not {type(status).__name__}")
        self.task.sysif.syscall_later(_SYS_exit, status)
        state = await self.process.waitpid(W.EXITED)
        self.connection.hangup("the process exited")
        return state

    def _own_fd_table(self) -> None:
        """After unshare(CLONE.FILES): the child's own copy of the table,
        kept as a clone without CLONE.FILES would keep it."""
        old = self.task
        connection = self.connection
        shared = old.fd_table
        request_number = self._request_fd.number
        table, keep = shared.copy_for_child(connection.name, connection.close_later,
                                            request_number)
        shared.forget_closer(connection.close_later)
        for low, high in _gaps(keep):
            connection.submit_discard(_SYS_close_range, low, high, 0)
        task = Task(connection, old.space, table, old.pid)
        # What was made through the old task names the parent's table now,
        # and goes through the parent's process.
        old.sysif = self.parent.task.sysif
        self._request_fd.drop()  # the parent's copy: EOF must come at exec
        self.task = task
        self._request_fd = task.make_fd(request_number)
        table.mark_private(request_number)
        self.stdin, self.stdout, self.stderr = (task.make_fd(n) for n in (0, 1, 2))
        self._epoller = None
        self._transfer = None
        self._parent_transfer = None

    async def _fd_to_local(self, fd: FileDescriptor) -> FileDescriptor:
        # We may take fds from our descendants (pidfd_getfd's ptrace check).
        return await self.local_pidfd.pidfd_getfd(fd.number)

    async def _pidfd_to_local(self, pidfd: FileDescriptor) -> FileDescriptor | None:
        if not self.on_local_host:
            return None
        return await self._fd_to_local(pidfd)

    async def _new_connection(self) -> tuple[FileDescriptor, FileDescriptor]:
        if self.on_local_host:
            return await super()._new_connection()
        # On another host: the parent's new connection, its end moved here.
        ours, in_parent = await self.parent._new_connection()
        theirs = await self._fd_from_parent(in_parent)
        self.task.fd_table.mark_private(theirs.number)
        return ours, theirs

    async def _fd_from_parent(self, fd: FileDescriptor) -> FileDescriptor:
        """Our copy of the parent thread's `fd`, for hosts where fds cannot
        come from the local thread: over a socket between the two (made
        here, the parent's end taken with pidfd_getfd on its pidfd for
        us, and kept for next time)."""
        if self.task.fd_table is self.parent.task.fd_table:
            return self.task.make_fd(fd.number)
        # One transfer at a time: concurrent ones would each take the next
        # message, not their own (a message out of turn is then only ever
        # one that a cancelled transfer left, which its tag shows).
        async with self._parent_transfer_lock:
            if self._parent_transfer is None:
                pair = await self.socketpair(AF.UNIX, SOCK.STREAM)
                table = self.task.fd_table
                table.mark_private(pair.first.number)
                table.mark_private(pair.second.number)
                pidfd = self.process.process.pidfd
                assert pidfd is not None
                parent_end = await pidfd.pidfd_getfd(pair.first.number)
                self.parent.task.fd_table.mark_private(parent_end.number)
                self._parent_transfer = (parent_end, pair.second)
                self.process.on_exit(parent_end.drop)
            parent_end, child_end = self._parent_transfer
            self._parent_transfers += 1
            await _send_fd(self.parent, parent_end, fd, self._parent_transfers)
            return await _receive_fd(self, child_end, self._parent_transfers)

    async def _fd_from_local(self, fd: FileDescriptor) -> FileDescriptor:
        # The other way needs a socket: made in the child, our end taken
        # with pidfd_getfd, and kept for next time.  One transfer at a time
        # (see _fd_from_parent).
        async with self._transfer_lock:
            if self._transfer is None:
                pair = await self.socketpair(AF.UNIX, SOCK.STREAM)
                self.task.fd_table.mark_private(pair.first.number)
                self.task.fd_table.mark_private(pair.second.number)
                local_end = await self._fd_to_local(pair.first)
                self.local.task.fd_table.mark_private(local_end.number)
                self._transfer = (local_end, pair.second)
                # Our end goes with the process.
                self.process.on_exit(local_end.drop)
            local_end, child_end = self._transfer
            self._transfers += 1
            await _send_fd(self.local, local_end, fd, self._transfers)
            return await _receive_fd(self, child_end, self._transfers)


async def write_user_mappings(
    thread: Thread, uid: int, gid: int, in_namespace_uid: int | None = None,
    in_namespace_gid: int | None = None,
) -> None:
    """Map `thread`'s user namespace (new, and not yet mapped: made by
    `clone(CLONE.NEWUSER, automatically_write_user_mappings=False)` or
    `unshare(CLONE.NEWUSER)`): the id `in_namespace_uid` (default: `uid`)
    there is `uid` outside, and the same for gids; setgroups is denied
    first, as an unprivileged gid map requires (user_namespaces(7)).  The
    thread writes its own /proc/self maps."""
    for name, value in (("uid", uid), ("gid", gid), ("in_namespace_uid", in_namespace_uid),
                        ("in_namespace_gid", in_namespace_gid)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value < 1 << 32):
            raise ValueError(f"{name} must be a 32-bit id, not {value!r}")
    await thread._write_id_maps("/proc/self", uid, gid, in_namespace_uid, in_namespace_gid)


def _gaps(keep: list[int]) -> list[tuple[int, int]]:
    """The ranges of fd numbers (first, last) that are not in `keep`."""
    gaps = []
    low = 0
    for number in sorted(set(keep)):
        if number > low:
            gaps.append((low, number - 1))
        low = number + 1
    gaps.append((low, _FD_MAX))
    return gaps


def _hangup_later(sysif: ConnectionSyscall, reason: str) -> Callable[[], None]:
    # Weak: the epoller must not keep a dropped thread's connection alive.
    connection = weakref.ref(sysif)

    def hangup() -> None:
        live = connection()
        if live is not None:
            live.hangup(reason)

    return hangup


class _ExecWatch:
    """The helper of one exec in a shared fd table (see RemoteThread.exec):
    a process in the exec'ing thread's address space sleeping on the word
    the kernel zeroes at exec.  Its exit (seen through `pidfd`, a pidfd in
    the local process, or where it cannot come here, in its parent's) hangs
    up the connection, as exec'd if the word is
    zero (where we can read it: our own address space), as a failure of
    the watch otherwise; `parent`, whose child it is, reaps it."""

    def __init__(
        self, connection: ConnectionSyscall, pid: int, pidfd: FileDescriptor,
        memory: tuple[Allocation, Allocation | None], word: int, parent: SyscallInterface,
        readable: bool,
    ) -> None:
        self.connection = weakref.ref(connection)
        self.pid = pid
        self.pidfd = pidfd
        # Its stack, which it runs on until it is reaped, and the child's
        # block, which holds the word it reads.
        self.stack: tuple[Allocation, Allocation | None] | None = memory
        self.word = word
        self.parent = parent
        self.readable = readable
        self.registration: tuple[Epoller, int] | None = None
        # Set where the watching epoller is not the local one: the exec
        # must drive it while it waits (finish_driving).
        self.status: Any = None
        self.disarmed = False

    async def finish_driving(self, connection: ConnectionSyscall, request: Any) -> None:
        """`connection.finish(request)` while waiting on the watching
        epoller, so that the helper's exit is seen (and hangs the
        connection up, which ends the finish)."""
        epoller = self.registration[0] if self.registration is not None else None
        status = self.status
        outcome: BaseException | None = None

        async def drive() -> None:
            if epoller is None:
                return
            try:
                await epoller.wait(status, False, status.reads)
            except Exception:
                # The finish ends anyway: by the hangup, or its own error.
                pass

        async with anyio.create_task_group() as group:
            group.start_soon(drive)
            try:
                await connection.finish(request)
            except BaseException as error:
                outcome = error
            group.cancel_scope.cancel()
        if outcome is not None:
            raise outcome

    def exited(self) -> None:
        if self.stack is None:
            return
        # Exited: reaping it takes no waiting.
        self.parent.syscall_later(_SYS_waitid, P.PID, self.pid, 0, W.EXITED | W.NOHANG, 0)
        live = None if self.disarmed else self.connection()
        if live is not None:
            if not self.readable or _raw.read_memory(self.word, 4) == bytes(4):
                live.hangup(EXEC_OR_EXIT)
            else:
                live.hangup("the exec watch helper died")
        # It exited: it runs on none of this any more.
        self.stack = None
        if self.registration is not None:
            epoller, ident = self.registration
            epoller.forget(ident)
        self.pidfd.drop()

    def kill(self) -> None:
        """The exec failed: stop the helper (its exit is reaped as usual)."""
        if self.pidfd.closed:
            return
        # Its pidfd is the local process's, or (another host) its parent's.
        pidfd = self.pidfd
        pidfd.task.sysif.syscall_later(_SYS_pidfd_send_signal, pidfd.number, SIG.KILL, 0, 0)
        # It must not hang up the connection of a child that lives on.
        self.disarmed = True


async def _send_fd(
    thread: Thread, sock: FileDescriptor, fd: FileDescriptor, tag: int = 0
) -> None:
    iov = await thread.ptr(IovecList([await thread.ptr(bytes([tag & 0xFF]))]))
    control = await thread.ptr(CmsgList([CmsgSCMRights([fd])]))
    await sock.sendmsg(await thread.ptr(SendMsghdr(None, iov, control)))


async def _receive_fd(thread: Thread, sock: FileDescriptor, tag: int = 0) -> FileDescriptor:
    """The fd of the next message tagged `tag` on `sock`.  Messages with
    another tag are left over from a transfer whose receiving end was
    cancelled: their fds are dropped (closed), so that a transfer never
    hands over the wrong fd."""
    while True:
        buf = await thread.malloc(bytes, 1)
        iov = await thread.ptr(IovecList([buf]))
        room = await thread.ptr(CmsgList([CmsgSCMRights([sock])]))  # room for one fd
        valid, _, header = await sock.recvmsg(await thread.ptr(RecvMsghdr(None, iov, room)))
        received = await header.read()
        got = await valid[0].read() if valid and valid[0].size() else b""
        fds: list[FileDescriptor] = []
        if received.control is not None:
            messages = await received.control.read()
            fds = [fd for m in messages if isinstance(m, CmsgSCMRights) for fd in m]
        if not got:
            raise SyscallHangup("the fd transfer socket closed")
        if got[0] != tag & 0xFF:
            continue  # a stale message: its fds go with `fds`
        if not fds:
            if received.flags & MSG.CTRUNC:
                raise OSError(errno.EMFILE, "no room in the fd table for a transferred fd")
            raise OSError(errno.EIO, "a message without its fd on the transfer socket")
        if len(fds) != 1:
            raise OSError(errno.EIO, f"expected one fd on the transfer socket, got {len(fds)}")
        return fds[0]


async def _stage_exec_arguments(
    space: AddressSpace, strings: list[bytes], argc: int
) -> tuple[Allocation, int, int, int]:
    """Write the path, argv and envp strings and their NULL-terminated
    pointer arrays in one allocation: (memory, path, argv, envp)."""
    blob = b"".join(string + b"\0" for string in strings)
    arrays_at = (len(blob) + 7) & ~7
    memory = await space.allocator.allocate(arrays_at + 8 * (len(strings) + 1))
    addresses = []
    offset = 0
    for string in strings:
        addresses.append(memory.address + offset)
        offset += len(string) + 1
    argv = [*addresses[1:1 + argc], 0]
    envp = [*addresses[1 + argc:], 0]
    arrays = struct.pack(f"<{len(argv) + len(envp)}Q", *argv, *envp)
    await space.transport.write(memory.address, blob.ljust(arrays_at, b"\0") + arrays)
    argv_address = memory.address + arrays_at
    return memory, addresses[0], argv_address, argv_address + 8 * len(argv)


def make_local_thread() -> Thread:
    """The Thread of the Python process: direct syscalls, our own memory
    and fd table.  `rsyscall.local_thread` is made by this at import."""
    task = Task(LocalSyscall(), local_address_space(), local_fd_table(), os.getpid())
    return Thread(task, os.environ, task.make_fd(0), task.make_fd(1), task.make_fd(2))


async def _reset_signal_handlers(child: Thread) -> None:
    """What CLONE_CLEAR_SIGHAND does, for a child made by clone(2): every
    handler it inherited (a function address) back to SIG_DFL; ignored
    signals stay ignored, and the interrupt handler its main installed
    stays."""
    task = child.task
    for signum in range(1, NSIG):
        if signum in (SIG.KILL, SIG.STOP, INTERRUPT_SIGNAL):
            continue
        old = await (await task.sigaction(signum, None, await child.malloc(Sigaction))).read()
        if old.handler not in (Sighandler.DFL, Sighandler.IGN):
            await task.sigaction(signum, await child.ptr(Sigaction(Sighandler.DFL)))
