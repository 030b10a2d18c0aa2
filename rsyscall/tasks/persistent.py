"""Persistent threads: threads that outlive the connection they were made
through.

    per = await clone_persistent(remote, "/tmp/mine/per.sock")
    await per.make_persistent()       # no parent-death signal, own session
    ...                               # the ssh process dies, say
    process, again = await host.ssh(local_thread)
    await per.reconnect(again)        # fds, memory and children intact

A persistent thread is a child thread (a clone of `thread`, sharing its
memory) that also listens on a unix socket at `socket_path`: mode 0600, in
a directory of mode 0700 (made if missing; an existing one open to group
or others is refused).  Until `make_persistent`, it is a child like any
other, and dies with its connection and its parent.  After it, its server
takes the next connection from the socket whenever the current one ends
(rsys_server's listener, server.c), from a process of its own user only
(SO_PEERCRED), and greets it with its pid; `reconnect(thread)` makes that
connection from the local thread, through `thread`'s host (hop by hop over
the ssh sessions that reach it).

What is the thread's own (its fds, its memory, its children, the pointers
into that memory we hold) stays valid across a reconnect; what lived on
the old connection does not: calls pending when it dropped fail with
SyscallHangup, AsyncFileDescriptors made before must be made again (the
epoller is new), and a server blocked in a syscall takes the new
connection only once that syscall returns.  Fds whose handles were dropped
while no connection was up stay open in the thread.

When its memory is not ours (a clone of a stub or ssh thread, whose stub
may be gone), memory is copied over a data socket of its own after a
reconnect, and a cancelled call that is already running completes before
the cancellation is raised (there is no interrupt helper for it there).
"""

from __future__ import annotations

import errno
import os
import struct
import weakref

import anyio

from rsyscall._native import _raw
from rsyscall.epoller import AsyncFileDescriptor
from rsyscall.fcntl import F, O
from rsyscall.handle import FileDescriptor
from rsyscall.near.interface import SyscallHangup
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG
from rsyscall.sys.socket import AF, SOCK
from rsyscall.sys.stat import S, Stat
from rsyscall.sys.un import SockaddrUn
from rsyscall.sys.wait import CLD, ChildState
from rsyscall.tasks.connection import ConnectionSyscall
from rsyscall.tasks.remote_memory import RemoteMapper, SocketMemoryTransport
from rsyscall.tasks.ssh import _accept_ours, _connect_from_local
from rsyscall.tasks.stub import BOOTSTRAP_TIMEOUT
from rsyscall.thread import ChildThread, RemoteThread, Thread, _hangup_later

__all__ = ["PersistentThread", "clone_persistent"]

_HELLO = struct.Struct("<QQ")
_MAGIC = int.from_bytes(b"RSYSPERS", "little")
_LISTENER_OFFSET = _raw.SERVER_STATE_LISTENER_OFFSET


class PersistentThread(ChildThread):
    """A child thread that can be reached again through its unix socket
    (see the module docstring); made by `clone_persistent`."""

    # Set by clone_persistent (which makes a ChildThread of this class).
    socket_path: str
    _listener: FileDescriptor
    _via: Thread
    _persistent: bool
    _connecting: anyio.Lock
    _data: FileDescriptor | None

    def __repr__(self) -> str:
        return f"PersistentThread({self.socket_path!r}, pid={self.task.pid})"

    async def make_persistent(self) -> None:
        """Detach the thread from its parent's lifetime and its connection's:
        no parent-death signal (prctl PR_SET_PDEATHSIG 0), a session of its
        own (setsid(2)), and from now on a dropped connection leaves it
        waiting for the next one on its socket."""
        await self.task.prctl_set_pdeathsig(0)
        await self.task.setsid()
        await self.task.space.transport.write(
            self._stack_address() + _LISTENER_OFFSET,
            struct.pack("<Q", self._listener.number + 1),
        )
        self._persistent = True

    async def prep_for_reconnect(self) -> None:
        """End the current connection ourselves, cleanly: the thread goes
        on, waiting on its socket for `reconnect`.  Calls still pending
        fail with SyscallHangup, and so do new ones until `reconnect`."""
        self._check_persistent()
        self.connection.hangup("disconnected for a reconnect (prep_for_reconnect)")

    async def reconnect(self, thread: Thread, timeout: float = BOOTSTRAP_TIMEOUT) -> None:
        """Connect to the thread again, from the local thread through
        `thread`'s host (the host the persistent thread is on: a new ssh
        thread there, say).  The current connection, if it still works,
        is ended first.  TimeoutError if the thread does not answer within
        `timeout` (it is still in a syscall, or gone)."""
        self._check_persistent()
        if not isinstance(thread, Thread):
            raise TypeError(f"reconnect needs a Thread, not {type(thread).__name__}")
        old = self.connection
        if old.hung_up is None:
            old.hangup("disconnected for a reconnect")
        local = self.local
        with anyio.fail_after(timeout):
            sock = await _connect_from_local(thread, self.socket_path)
            await sock.fcntl(F.SETFL, O.RDWR | O.NONBLOCK)
            afd = await local.make_afd(sock)
            try:
                hello = await _read_exactly(afd, _HELLO.size)
            except BaseException:
                await afd.close()
                raise
        magic, pid = _HELLO.unpack(hello) if len(hello) == _HELLO.size else (0, 0)
        if magic != _MAGIC:
            await afd.close()
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"no persistent thread answered at {self.socket_path}"
            )
        connection = ConnectionSyscall(afd, f"pid {pid}")
        # The old one still works where it can: ours signals through a local
        # pidfd, a stub's helper while the stub lives.
        connection.interrupter = old.interrupter
        table = self.task.fd_table
        table.forget_closer(old.close_later)
        table.add_closer(connection.close_later)
        self.task.sysif = connection
        self._via = thread
        self._epoller = None
        space = self.task.space
        transport = space.transport
        if isinstance(transport, SocketMemoryTransport) and transport.connection.hung_up:
            # The stub whose data socket carried our memory is gone: a data
            # socket of our own.  (While it lives, its socket serves: the
            # memory is the same.)
            ours, theirs = await self._connect_and_accept()
            self._data = theirs
            space.transport = SocketMemoryTransport(
                connection, await local.make_afd(ours), theirs.number
            )
            space.allocator.mapper = RemoteMapper(connection)
        process = self.process.process
        if process.local_pidfd is not None:
            self.process.on_exit(_hangup_later(connection, "the process exited"))
        elif not _parent_alive(self):
            # Nobody can kill it by its parent's pidfd any more: when we
            # let it go, it kills itself.
            weakref.finalize(self, connection.syscall_later, SYS.kill, self.task.pid, SIG.KILL)

    async def exit(self, status: int = 0) -> ChildState:
        """exit(2) the thread with `status`.  While its parent lives, as any
        child's; once the parent is gone (it is nobody's child of ours),
        waits for the connection to end and returns that exit."""
        if _parent_alive(self):
            return await super().exit(status)
        try:
            # Never answered: the connection ends with the process.
            await self.task.sysif.syscall(SYS.exit, status)
        except SyscallHangup:
            pass
        return ChildState(CLD.EXITED, self.process.pid, os.getuid(), status)

    async def _new_connection(self) -> tuple[FileDescriptor, FileDescriptor]:
        if self.on_local_host or _parent_alive(self):
            return await super()._new_connection()
        return await self._connect_and_accept()

    async def _connect_and_accept(self) -> tuple[FileDescriptor, FileDescriptor]:
        """A socket in the local thread connected to one in this thread,
        through its listening socket (see ssh._accept_ours)."""
        async with self._connecting:
            return await _accept_ours(
                self, lambda: _connect_from_local(self._via, self.socket_path),
                lambda: self._listener.accept(SOCK.CLOEXEC),
            )

    def _check_persistent(self) -> None:
        if not self._persistent:
            raise ValueError(
                "not persistent: call make_persistent() first (until then the thread "
                "dies with its connection, as any child)"
            )


def _parent_alive(thread: PersistentThread) -> bool:
    parent = thread.parent
    return not isinstance(parent, RemoteThread) or parent.connection.hung_up is None


async def _read_exactly(afd: AsyncFileDescriptor, size: int) -> bytes:
    got = b""
    while len(got) < size:
        part = await afd.read_some_bytes(size - len(got))
        if not part:
            break
        got += part
    return got


async def clone_persistent(thread: Thread, socket_path: str | os.PathLike[str]) -> PersistentThread:
    """A persistent thread: a clone of `thread` listening on a unix socket
    at `socket_path` on `thread`'s host (see the module docstring).  The
    socket's directory is made with mode 0700 if it does not exist; if it
    does, it must be ours and closed to group and others (PermissionError
    otherwise).  An existing socket file at the path is replaced."""
    if not isinstance(thread, Thread):
        raise TypeError(f"clone_persistent needs a Thread, not {type(thread).__name__}")
    path = os.fspath(socket_path)
    if not isinstance(path, str):
        raise TypeError("socket_path must be a str path")
    if len(os.fsencode(path)) >= 108:
        raise ValueError(f"a unix socket path is shorter than 108 bytes: {path!r}")
    directory = os.path.dirname(path) or "."
    child = await thread.clone()
    try:
        try:
            await child.task.mkdir(await child.ptr(directory), S(0o700))
        except FileExistsError:
            stat = await (await child.task.fstatat(
                None, await child.ptr(directory), await child.malloc(Stat)
            )).read()
            if stat.uid != await child.task.geteuid() or stat.mode & 0o077:
                raise PermissionError(
                    errno.EACCES,
                    f"{directory} must be ours and mode 0700 for a persistent thread's socket",
                ) from None
        listener = await child.task.socket(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC)
        child.task.fd_table.mark_private(listener.number)
        address = await child.ptr(SockaddrUn(path))
        try:
            await child.task.unlinkat(None, await child.ptr(path))
        except FileNotFoundError:
            pass
        # 0600 from the start: no moment where another user could connect.
        old_mask = await child.task.umask(S(0o177))
        try:
            await listener.bind(address)
        finally:
            await child.task.umask(old_mask)
        await listener.listen(16)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await child.exit(0)
        raise
    child.__class__ = PersistentThread
    persistent = child
    assert isinstance(persistent, PersistentThread)
    persistent.socket_path = path
    persistent._listener = listener
    persistent._via = thread
    persistent._persistent = False
    persistent._connecting = anyio.Lock()
    persistent._data = None
    return persistent
