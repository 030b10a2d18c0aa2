"""Thread: a Task with the allocator, environment and stdio that make it usable.

`Thread` is what users hold.  Its `task` is the target of syscalls; the
thread adds memory (`ptr`, `malloc`), the environment, the standard fds,
and the helpers that combine a few syscalls (`pipe`, `spit`,
`read_to_eof`...).  `rsyscall.local_thread` is the Thread of the Python
process itself.
"""

from __future__ import annotations

import os
import struct
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rsyscall.base import BaseFileDescriptor, FDTable
from rsyscall.blockingio import read_to_eof as _local_read_to_eof
from rsyscall.blockingio import write_file as _local_write_file
from rsyscall.command import Command
from rsyscall.environ import Environment
from rsyscall.epoller import REQUEST_FD_ID, AsyncFileDescriptor, Epoller, wait_local
from rsyscall.fcntl import O
from rsyscall.handle import ChildProcess, FileDescriptor, Pointer, Task, WrittenPointer
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.transport import local_address_space
from rsyscall.monitor import AsyncChildProcess
from rsyscall.near.interface import SyscallHangup
from rsyscall.near.sysnum import SYS
from rsyscall.sched import CLONE
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
    SOCK,
    CmsgList,
    CmsgSCMRights,
    RecvMsghdr,
    SendMsghdr,
    Socketpair,
)
from rsyscall.sys.stat import S
from rsyscall.sys.uio import IovecList
from rsyscall.sys.wait import ChildState, P, W
from rsyscall.tasks.clone import (
    CHILD_MAIN,
    CHILD_STACK_SIZE,
    USER_FLAGS,
    ExecWatcher,
    clone_process,
    spawn_futex_waiter,
)
from rsyscall.tasks.connection import EXEC_OR_EXIT, ConnectionSyscall, wait_remote
from rsyscall.tasks.local import LocalSyscall, local_fd_table
from rsyscall.unistd import Pipe

if TYPE_CHECKING:
    from rsyscall.memory.transport import AddressSpace

__all__ = ["ChildThread", "Thread", "make_local_thread"]

_SYS_execve = int(SYS.execve)
_SYS_exit = int(SYS.exit)
_SYS_waitid = int(SYS.waitid)
_SYS_write = int(SYS.write)
_SYS_getpid = int(SYS.getpid)

T = TypeVar("T")
StrPath = str | os.PathLike[str]

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

    async def spit(self, path: StrPath, text: str | bytes, mode: S = _MODE_644) -> StrPath:
        """Create or truncate the file at `path`, write `text`, close it; returns `path`.

        In the local thread this waits for room (a FIFO, a tty) and for a
        FIFO's reader without blocking the process (rsyscall.blockingio)."""
        if isinstance(text, str):
            data = text.encode()
        elif isinstance(text, bytes | bytearray | memoryview):
            data = bytes(text)
        else:  # bytes(5) would be five NULs
            raise TypeError(f"text must be str or bytes, not {type(text).__name__}")
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

    async def clone(self, flags: CLONE = CLONE.NONE) -> ChildThread:
        """clone3(2): a new child process, inert until we make syscalls in it.

        The child shares our memory (so pointers work in it unchanged),
        runs the syscall server, and dies if this thread dies.  `flags` may
        add CLONE.FILES (share the fd table; without it the child gets a
        copy, and `inherit_fd` names its copies), CLONE.FS and namespace
        flags (NEWUSER, NEWNS, NEWPID, NEWNET, NEWUTS, NEWIPC...).  With
        NEWUSER the child's uid and gid maps are written so that it keeps
        our ids (only those are mapped, and setgroups is denied).

        Sharing memory means sharing what belongs to the address space:
        prctl options such as PR_SET_DUMPABLE or PR_SET_MM, and mmap and
        munmap, act on ours too.  Exec gives the child memory of its own."""
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be CLONE flags, not {type(flags).__name__}")
        flags = CLONE(flags)
        if flags & ~USER_FLAGS:
            raise ValueError(
                f"{CLONE(flags & ~USER_FLAGS)!r} are managed by the library, not passed to clone"
            )
        local = self.local
        # Both ends non-blocking: ours for the epoller; the child's main
        # makes its end blocking again (rsys_child_main).
        connection = await local.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
        request_fd = await self._fd_from_local(connection.second)
        space = self.task.space
        # The word CLONE_CHILD_CLEARTID clears at exec or exit (nonzero till
        # then), and the stack of the exec watcher that sleeps on it.  An
        # init of a new pid namespace cannot start a sibling, so its exec is
        # watched from here instead (see ChildThread.exec).
        ctid, watcher_stack, watcher_args = await ExecWatcher.prepare(space, request_fd.number)
        if flags & CLONE.NEWPID:
            watcher_args = [0, 0, 0]
        # rsys_child_main(infd, outfd, watcher..., the pid the child will see
        # as its parent's: 0 from a new pid namespace, the parent is outside).
        main_args = [
            request_fd.number, request_fd.number, *watcher_args,
            0 if flags & CLONE.NEWPID else self.task.pid,
        ]
        pid, pidfd_number, stack = await clone_process(
            self, flags, CHILD_MAIN, main_args, CHILD_STACK_SIZE, ctid.address
        )
        pidfd = self.task.make_fd(pidfd_number)
        watcher = (
            None if flags & CLONE.NEWPID else ExecWatcher(self.task.sysif, ctid, watcher_stack)
        )
        # The stack and the cleared word must outlive the child: they go
        # with its process handle, released when it is reaped (and with
        # them the watcher's record, which reaps it if nothing did).
        process = ChildProcess(self.task, pid, pidfd, keep=(stack, ctid, watcher))
        sysif = ConnectionSyscall(await local.make_afd(connection.first), f"pid {pid}")
        table = (
            self.task.fd_table if flags & CLONE.FILES
            else FDTable(f"pid {pid}", sysif.close_later)
        )
        task = Task(sysif, space, table, 1 if flags & CLONE.NEWPID else pid)
        child = ChildThread(
            task, self.environ, task.make_fd(0), task.make_fd(1), task.make_fd(2),
            local=local, parent=self, process=AsyncChildProcess(process, self),
            request_fd=task.make_fd(request_fd.number), pidfd=pidfd, ctid=ctid,
            watcher=watcher,
        )
        # Our copy of the child's end goes now (unless the table is shared).
        del request_fd, connection
        if watcher is not None:
            # Its marker hangs up the connection when the child exits or
            # execs; then it is reaped at once.
            sysif.on_hangup(_reap_on_marker(watcher))
        else:
            # No watcher: watch the child's pidfd in the local epoller, to
            # hang up the connection when the child dies.
            watch_fd = await pidfd.dup() if self is local else await child._local_pidfd()
            await child._watch(watch_fd, "the process exited")
        if flags & CLONE.NEWUSER:
            await self._write_id_maps(f"/proc/{pid}", await self.task.geteuid(),
                                      await self.task.getegid())
        return child

    async def unshare(self, flags: CLONE) -> None:
        """unshare(2): new namespaces for this thread's process.  With
        CLONE.NEWUSER the uid and gid maps are written so it keeps its ids.
        CLONE.FILES is refused: the library would lose track of which
        handles belong to which table.

        The kernel refuses CLONE.NEWUSER to a process with more than one
        thread, which the Python process may be (trio, for one, keeps a
        worker thread): unshare in a child thread instead."""
        flags = CLONE(flags)
        if flags & CLONE.FILES:
            raise ValueError("unsharing the fd table is not supported; clone without CLONE.FILES")
        if flags & CLONE.NEWUSER:
            uid, gid = await self.task.geteuid(), await self.task.getegid()
        await self.task.unshare(flags)
        if flags & CLONE.NEWUSER:
            await self._write_id_maps("/proc/self", uid, gid)

    async def _write_id_maps(self, proc: str, uid: int, gid: int) -> None:
        # setgroups must be denied before an unprivileged gid_map write.
        await self._write_file(f"{proc}/setgroups", "deny")
        await self._write_file(f"{proc}/uid_map", f"{uid} {uid} 1\n")
        await self._write_file(f"{proc}/gid_map", f"{gid} {gid} 1\n")

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

    async def run(self, command: Command, check: bool = True) -> ChildState:
        """Clone, exec `command`, wait for it; its state.  With `check`,
        raise CalledProcessError unless it exited 0."""
        child = await self.clone()
        process = await child.exec(command)
        return await (process.check() if check else process.waitpid(W.EXITED))

    # fds move between the local thread and a child over the child's
    # transfer socket (SCM_RIGHTS); the local thread needs no moving.

    async def _fd_from_local(self, fd: FileDescriptor) -> FileDescriptor:
        return fd

    async def _fd_to_local(self, fd: FileDescriptor) -> FileDescriptor:
        return fd


class ChildThread(Thread):
    """A child process made by `Thread.clone`, set up syscall by syscall.

    Its syscalls travel over a socket to the server loop running in it;
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
        pidfd: FileDescriptor,
        ctid: Allocation,
        watcher: ExecWatcher | None,
    ) -> None:
        super().__init__(task, environ, stdin, stdout, stderr, local)
        self.parent = parent
        self.process = process
        self._request_fd = request_fd
        # Our pidfd for this child, in the parent thread's table, and a copy
        # in the local thread's table if that is another (made when needed).
        self._pidfd = pidfd
        self._pidfd_here: FileDescriptor | None = pidfd if parent is local else None
        # Made when first needed: our end in the local thread, and the child's.
        self._transfer: tuple[FileDescriptor, FileDescriptor] | None = None
        self._ctid = ctid
        self._watcher = watcher
        self._watches: list[tuple[Epoller, int, FileDescriptor]] = []
        self._exec_helper: ChildProcess | None = None

    _wait_for_events = staticmethod(wait_remote)

    def __del__(self) -> None:
        for epoller, ident, _ in getattr(self, "_watches", ()):
            epoller.forget(ident)

    @property
    def connection(self) -> ConnectionSyscall:
        sysif = self.task.sysif
        assert isinstance(sysif, ConnectionSyscall)
        return sysif

    def _hangup_callback(self, reason: str) -> Callable[[], None]:
        # Weak: the epoller must not keep a dropped thread's connection alive.
        connection = weakref.ref(self.connection)

        def hangup() -> None:
            live = connection()
            if live is not None:
                live.hangup(reason)

        return hangup

    async def _watch(
        self, local_fd: FileDescriptor, reason: str, then: Callable[[], None] | None = None
    ) -> None:
        """Hang up the connection (and call `then`) when `local_fd`, a pidfd
        in the local thread, shows its process exited."""
        hangup = self._hangup_callback(reason)

        def callback() -> None:
            hangup()
            if then is not None:
                then()

        epoller = await self.local.epoller()
        self._watches.append((epoller, await epoller.watch(local_fd, callback), local_fd))

    async def epoller(self) -> Epoller:
        """This thread's epoll instance: epoll_wait blocks in the child, with
        the request fd registered so that a new syscall request wakes it."""
        if self._epoller is None:
            epfd = await self.task.epoll_create1()
            event = await self.ptr(EpollEvent(EPOLL.IN, REQUEST_FD_ID))
            await epfd.epoll_ctl(EPOLL_CTL.ADD, self._request_fd, event)
            if self._epoller is None:
                epoller = Epoller(self, epfd, self._wait_for_events)
                connection = self.connection
                # Any request wakes the child's epoll_wait.
                epoller.interrupt = lambda: connection.syscall_later(_SYS_getpid)
                self._epoller = epoller
        return self._epoller

    def inherit_fd(self, fd: FileDescriptor) -> FileDescriptor:
        """Our handle for the copy of the parent's `fd` that this child got
        at clone time (or, with CLONE.FILES, for the same fd).  Only fds
        that were open in the parent when it cloned us exist here."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"inherit_fd needs a FileDescriptor, not {type(fd).__name__}")
        if fd.task.fd_table is not self.parent.task.fd_table:
            raise ValueError("inherit_fd takes an fd of this child's parent thread")
        return self.task.make_fd(fd.number)

    async def exec(self, command: Command) -> AsyncChildProcess:
        """execve(2) `command` in this child; returns its AsyncChildProcess
        (the same as `self.process`).  A failed exec raises OSError and
        leaves the child usable; after a successful one, this thread's
        syscalls fail with SyscallHangup."""
        if not isinstance(command, Command):
            raise TypeError(f"exec needs a Command, not {type(command).__name__}")
        strings = [os.fsencode(command.executable_path)]
        strings += [os.fsencode(arg) for arg in command.arguments]
        if command.env_updates:
            env = {**self.environ, **command.env_updates}
            strings += [os.fsencode(f"{key}={value}") for key, value in env.items()]
        else:
            strings += self.environ.encoded()
        for string in strings:
            if b"\0" in string:
                raise ValueError(f"embedded null byte in {string!r}")
        memory, path, argv, envp = await _stage_exec_arguments(
            self.task.space, strings, len(command.arguments)
        )
        connection = self.connection
        watcher = self._watcher
        # The child starts its watcher before it serves; an answer to this
        # tells us it has (and whether that worked) before we rely on it.
        started = (
            connection.start(_SYS_getpid) if watcher is not None and watcher.pid() == 0 else None
        )
        request = connection.start(_SYS_execve, path, argv, envp)
        if started is not None:
            await connection.finish(started)
        if (watcher is None or watcher.pid() < 0) and self._exec_helper is None:
            # Made while the child execs.  It cannot miss the exec: it only
            # sleeps while the word is still nonzero.
            helper = await spawn_futex_waiter(self.local, self._ctid.address)
            self._exec_helper = helper
            assert helper.pidfd is not None
            local_sysif = self.local.task.sysif

            def reap_helper() -> None:
                # It has exited; reap it now rather than when we are dropped.
                if not helper.reaped:
                    helper.reaped = True
                    local_sysif.syscall_later(_SYS_waitid, P.PID, helper.pid, 0, W.EXITED, 0)
                    helper.keep = None

            await self._watch(helper.pidfd, "the process called exec", reap_helper)
        try:
            await connection.finish(request)
        except SyscallHangup:
            del memory
            self.process.command = command
            return self.process
        raise AssertionError("execve returned without failing")

    async def exit(self, status: CInt = 0) -> ChildState:
        """exit(2) this child with `status`; wait for it and return its state."""
        if not isinstance(status, int):
            raise TypeError(f"status must be an int, not {type(status).__name__}")
        self.task.sysif.syscall_later(_SYS_exit, status)
        return await self.process.waitpid(W.EXITED)

    async def _local_pidfd(self) -> FileDescriptor:
        """A pidfd for this child in the local thread's table."""
        if self._pidfd_here is None:
            parent = self.parent
            assert isinstance(parent, ChildThread)
            self._pidfd_here = await parent._fd_to_local(self._pidfd)
        return self._pidfd_here

    async def _fd_to_local(self, fd: FileDescriptor) -> FileDescriptor:
        # We may take fds from our descendants (pidfd_getfd's ptrace check).
        return await (await self._local_pidfd()).pidfd_getfd(fd.number)

    async def _fd_from_local(self, fd: FileDescriptor) -> FileDescriptor:
        # The other way needs a socket: made in the child, our end taken
        # with pidfd_getfd, and kept for next time.
        if self._transfer is None:
            pair = await self.socketpair(AF.UNIX, SOCK.STREAM)
            self._transfer = (await self._fd_to_local(pair.first), pair.second)
        local_end, child_end = self._transfer
        await _send_fd(self.local, local_end, fd)
        return await _receive_fd(self, child_end)


def _reap_on_marker(watcher: ExecWatcher) -> Callable[[str], None]:
    def reap(reason: str) -> None:
        # After the marker the watcher is exiting; otherwise it may still be
        # asleep on the word, and it is left to its record's finalizer.
        if reason == EXEC_OR_EXIT:
            watcher.reap()

    return reap


async def _send_fd(thread: Thread, sock: FileDescriptor, fd: FileDescriptor) -> None:
    iov = await thread.ptr(IovecList([await thread.ptr(b"\0")]))
    control = await thread.ptr(CmsgList([CmsgSCMRights([fd])]))
    await sock.sendmsg(await thread.ptr(SendMsghdr(None, iov, control)))


async def _receive_fd(thread: Thread, sock: FileDescriptor) -> FileDescriptor:
    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 1)]))
    room = await thread.ptr(CmsgList([CmsgSCMRights([sock])]))  # room for one fd
    _, _, header = await sock.recvmsg(await thread.ptr(RecvMsghdr(None, iov, room)))
    received = await header.read()
    if received.control is None:
        raise RuntimeError("no fd arrived on the transfer socket")
    messages = await received.control.read()
    fds = [fd for message in messages if isinstance(message, CmsgSCMRights) for fd in message]
    if len(fds) != 1:
        raise RuntimeError(f"expected one fd on the transfer socket, got {len(fds)}")
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
