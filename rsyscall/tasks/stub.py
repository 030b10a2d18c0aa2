"""Threads in stub processes: the syscall server as a program of its own,
with its own address space.

The stub (`rsyscall-stub`, built from rsyscall/_native/stub.c, shipped in
the package) is a static executable that whoever execs it hands a
bootstrap socket: its stdin (`rsyscall.tasks.stdin_bootstrap`), or a unix
socket it connects to (`StubServer`).  On it we send, with SCM_RIGHTS, the
four fds of the connection:

* request: syscall requests and their answers (`ConnectionSyscall`);
* data: the bytes of memory copies (`SocketMemoryTransport`);
* control: interrupt requests for the stub's interrupt helper thread
  (`HelperInterrupter`), which stops requests of any server in the stub's
  address space, its own and its children's;
* transfer: a unix socket to move fds between the stub and us.

The stub answers on the request socket with a description of itself (its
pid, where its server state and functions are, the fd numbers it got, its
argv and environment), then serves.  Everything else is the same as for a
child thread: pointers (in the stub's memory, allocated with its mmap),
AsyncFileDescriptor (its epoll_wait blocks in the stub with the request fd
registered), clone (the child starts in the stub's own trampoline), exec
(EOF on the connection), child monitoring (pidfds moved to us).
"""

from __future__ import annotations

import errno
import os
import shlex
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from rsyscall._native import _raw
from rsyscall.base import FDTable
from rsyscall.command import Command
from rsyscall.fcntl import F, O
from rsyscall.handle import FileDescriptor, Task
from rsyscall.memory.allocator import Allocator
from rsyscall.memory.transport import AddressSpace, ServerFunctions
from rsyscall.sys.socket import AF, SO, SOCK, SOL, CmsgList, CmsgSCMRights, SendMsghdr
from rsyscall.sys.stat import S
from rsyscall.sys.uio import IovecList
from rsyscall.sys.un import SockaddrUn
from rsyscall.tasks.clone import SERVER_STATE_SIZE, HelperInterrupter
from rsyscall.tasks.connection import ConnectionSyscall
from rsyscall.tasks.remote_memory import DATA_BUFFER, RemoteMapper, SocketMemoryTransport
from rsyscall.thread import RemoteThread, Thread, _hangup_later, _receive_fd, _send_fd
from rsyscall.unistd import OK

if TYPE_CHECKING:
    from rsyscall.epoller import AsyncFileDescriptor
    from rsyscall.monitor import AsyncChildProcess

__all__ = [
    "BOOTSTRAP_TIMEOUT",
    "BootstrapError",
    "StubServer",
    "StubThread",
    "connect_stub",
    "stub_path",
]

BOOTSTRAP_TIMEOUT = 10.0
"""Seconds a stub has to describe itself once its bootstrap socket exists."""

_BOOT_MAGIC = struct.unpack("<Q", b"RSYSBOOT")[0]
_HELLO_MAGIC = struct.unpack("<Q", b"RSYSSTUB")[0]
_PROTOCOL_VERSION = 1
# magic, version, pid, state, child_main, futex_waiter, state_size,
# fds[4], argc, envc, strings
_HELLO = struct.Struct("<14Q")
_MAX_STRINGS = 64 << 20
_MAX_COUNT = 1 << 20
_STUB = Path(__file__).resolve().parent.parent / "_native" / "rsyscall-stub"


class BootstrapError(Exception):
    """A stub did not start as it should: it sent something that is not
    its description, or went away before finishing it."""


def stub_path() -> Path:
    """The stub executable of this installation (in the Python process's
    filesystem)."""
    return _STUB


class StubThread(RemoteThread):
    """A thread in a stub process, which has an address space of its own.

    `argv` is what the program that exec'd the stub passed it; `environ`
    starts as the stub's environment.  `process` is the AsyncChildProcess
    of the stub, when it is a child we know of (stdin_bootstrap), else
    None (a StubServer's stubs were exec'd by programs not ours)."""

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
        keep: Sequence[FileDescriptor],
        fourth: tuple[FileDescriptor | None, FileDescriptor],
        argv: list[str],
    ) -> None:
        super().__init__(
            task, environ, stdin, stdout, stderr, local=local, parent=parent, process=process,
            request_fd=request_fd,
        )
        self.process = process
        self.argv = argv
        # The stub's ends of the data and control sockets: handles, so that
        # nothing closes them in the stub.
        self._keep = tuple(keep)
        # Our end (local, blocking: read only once a message is there) and
        # the stub's end of the socket that moves fds (a stub on another
        # host has none: its fourth fd is its listening socket).
        self._fourth = fourth
        # Tags of the messages each way (see rsyscall.thread._receive_fd).
        self._to_local = 0
        self._from_local = 0
        # One transfer at a time each way: concurrent ones would each take
        # the next message, not their own.
        self._to_local_lock = anyio.Lock()
        self._from_local_lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"StubThread(pid={self.task.pid})"

    @property
    def _transfer(self) -> tuple[FileDescriptor, FileDescriptor]:
        ours, theirs = self._fourth
        if ours is None:
            raise OSError(errno.EXDEV, "fds cannot move between this thread's host and ours")
        return ours, theirs

    async def _fd_to_local(self, fd: FileDescriptor) -> FileDescriptor:
        ours, theirs = self._transfer
        async with self._to_local_lock:
            self._to_local += 1
            await _send_fd(self, theirs, fd, self._to_local)
            return await _receive_fd(self.local, ours, self._to_local)

    async def _fd_from_local(self, fd: FileDescriptor) -> FileDescriptor:
        ours, theirs = self._transfer
        async with self._from_local_lock:
            self._from_local += 1
            await _send_fd(self.local, ours, fd, self._from_local)
            return await _receive_fd(self, theirs, self._from_local)


async def _read_exactly(afd: AsyncFileDescriptor, count: int, what: str) -> bytes:
    parts = []
    while count:
        part = await afd.read_some_bytes(min(count, 1 << 20))
        if not part:
            raise BootstrapError(f"the stub went away before it had sent its {what}")
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


class _Hello:
    """A stub's description of itself."""

    def __init__(self, fields: tuple[int, ...], strings: bytes) -> None:
        (
            _, _, self.pid, self.state, self.child_main, self.futex_waiter, _,
            request, data, control, transfer, argc, envc, _,
        ) = fields
        self.fds = (request, data, control, transfer)
        parts = strings.split(b"\0")[:-1]
        self.argv = [os.fsdecode(part) for part in parts[:argc]]
        self.env: dict[str, str] = {}
        for entry in parts[argc : argc + envc]:
            key, sep, value = os.fsdecode(entry).partition("=")
            if sep:
                self.env[key] = value


async def _read_hello(afd: AsyncFileDescriptor) -> _Hello:
    fields = _HELLO.unpack(await _read_exactly(afd, _HELLO.size, "description"))
    magic, version, pid, _, _, _, state_size, *fds, argc, envc, strings = fields
    if magic != _HELLO_MAGIC:
        raise BootstrapError(f"not an rsyscall stub's description (magic {magic:#x})")
    if version != _PROTOCOL_VERSION:
        raise BootstrapError(f"stub protocol version {version}, expected {_PROTOCOL_VERSION}")
    if state_size != SERVER_STATE_SIZE:
        raise BootstrapError(
            f"stub server state of {state_size} bytes, expected {SERVER_STATE_SIZE}"
        )
    if not 0 < pid < 1 << 31 or any(not 0 <= fd < 1 << 31 for fd in fds):
        raise BootstrapError(f"stub description with pid {pid} and fds {fds}")
    if argc > _MAX_COUNT or envc > _MAX_COUNT or strings > _MAX_STRINGS:
        raise BootstrapError(f"stub description too big: {argc} args, {envc} vars, {strings} bytes")
    blob = await _read_exactly(afd, strings, "arguments and environment")
    if blob.count(b"\0") != argc + envc or (blob and not blob.endswith(b"\0")):
        raise BootstrapError("stub description with malformed arguments or environment")
    return _Hello(fields, blob)


async def connect_stub(
    parent: Thread,
    boot: FileDescriptor,
    process: AsyncChildProcess | None = None,
    timeout: float = BOOTSTRAP_TIMEOUT,
) -> StubThread:
    """A thread in the stub at the other end of `boot` (a connected unix
    socket in the local thread): send it its connection, read its
    description (within `timeout` seconds, TimeoutError otherwise), and
    make the thread.  `parent` is the thread it belongs to (its channels
    are made with that one)."""
    local = parent.local
    if boot.task.fd_table is not local.task.fd_table:
        raise ValueError("the bootstrap socket must be in the local thread's fd table")
    table = local.task.fd_table
    # request, data, control, transfer: our end first, the stub's second.
    pairs = [await local.socketpair(AF.UNIX, SOCK.STREAM) for _ in range(4)]
    for ours, theirs in pairs:
        table.mark_private(ours.number)
        table.mark_private(theirs.number)
    for ours, _ in pairs[:3]:
        await ours.fcntl(F.SETFL, O.RDWR | O.NONBLOCK)
    size = await local.ptr(struct.pack("<i", DATA_BUFFER))
    for end in pairs[1]:
        for option in (SO.SNDBUF, SO.RCVBUF):
            await end.setsockopt(SOL.SOCKET, option, size)
    iov = await local.ptr(IovecList([await local.ptr(struct.pack("<Q", _BOOT_MAGIC))]))
    control = await local.ptr(CmsgList([CmsgSCMRights([theirs for _, theirs in pairs])]))
    try:
        await boot.sendmsg(await local.ptr(SendMsghdr(None, iov, control)))
    except (BrokenPipeError, ConnectionResetError):
        raise BootstrapError("the stub went away before it got its connection") from None
    del control
    for _, theirs in pairs:
        await theirs.close()
    thread = await make_stub_thread(
        StubThread, parent, pairs[0][0], pairs[1][0], pairs[2][0], timeout,
        process=process, transfer_ours=pairs[3][0],
    )
    await _direct_memory(thread, thread.task.space.transport)  # type: ignore[arg-type]
    return thread


S_T = TypeVar("S_T", bound="StubThread")


async def make_stub_thread(
    cls: type[S_T],
    parent: Thread,
    request: FileDescriptor,
    data: FileDescriptor,
    control: FileDescriptor,
    timeout: float,
    *,
    process: AsyncChildProcess | None,
    transfer_ours: FileDescriptor | None,
    **extra: object,
) -> S_T:
    """A thread of class `cls` in the stub at the other end of our sockets
    `request`, `data` and `control` (connected, non-blocking, in the local
    thread): read its description and set up the connection, the memory
    transport and the interrupter.  `transfer_ours` is our end of its
    transfer socket, if it has one (its fds[3] is then the other end; in
    the listen mode, fds[3] is its listening socket)."""
    local = parent.local
    request_afd = await local.make_afd(request)
    try:
        with anyio.fail_after(timeout):
            hello = await _read_hello(request_afd)
    except TimeoutError:
        await request_afd.close()
        raise TimeoutError(
            f"no rsyscall stub answered within {timeout} s (does the command exec it?)"
        ) from None
    except BaseException:
        await request_afd.close()
        raise
    name = f"stub {hello.pid}"
    connection = ConnectionSyscall(request_afd, name)
    data_afd = await local.make_afd(data)
    space = AddressSpace(
        name,
        Allocator(RemoteMapper(connection)),
        SocketMemoryTransport(connection, data_afd, hello.fds[1]),
        ServerFunctions(hello.child_main, hello.futex_waiter),
    )
    space.interrupts = control
    connection.interrupter = HelperInterrupter(control, None, hello.state, hello.pid)
    stub_table = FDTable(name, connection.close_later)
    task = Task(connection, space, stub_table, hello.pid)
    request_fd, data_fd, control_fd, fourth_fd = (task.make_fd(n) for n in hello.fds)
    for fd in (request_fd, data_fd, control_fd, fourth_fd):
        stub_table.mark_private(fd.number)
    thread = cls(
        task, hello.env, task.make_fd(0), task.make_fd(1), task.make_fd(2),
        local=local, parent=parent, process=process, request_fd=request_fd,
        keep=(data_fd, control_fd), fourth=(transfer_ours, fourth_fd), argv=hello.argv,
        **extra,
    )
    ours_to_close = [data_afd.handle, control]
    if transfer_ours is not None:
        ours_to_close.append(transfer_ours)

    def close_ours(reason: str) -> None:
        # The stub is gone: its sockets are of no use; a copy waiting on
        # the data socket wakes (SyscallHangup).
        for fd in ours_to_close:
            fd.drop()

    connection.on_hangup(close_ours)
    if process is not None:
        process.on_exit(_hangup_later(connection, "the process exited"))
    return thread


async def _direct_memory(thread: StubThread, transport: SocketMemoryTransport) -> None:
    """Let the transport copy memory directly (process_vm_readv) if it may:
    the stub's pid in our pid namespace.  A stub that is the very process
    stdin_bootstrap started from the local thread has its pid (it runs
    the stub's executable); otherwise the pid comes from a pidfd the stub
    makes of itself, which we read in /proc/self/fdinfo."""
    process = thread.process
    if process is not None and process.thread is thread.local and process.state is None:
        try:
            if os.readlink(f"/proc/{process.pid}/exe") == os.fspath(stub_path()):
                transport.direct_pid = process.pid
                _raw.process_vm_read(process.pid, thread.connection.interrupter.state, 8)  # type: ignore[union-attr]
                return
        except OSError:
            transport.direct_pid = None
    try:
        pidfd = await thread.task.process.pidfd_open()
        ours = await thread._fd_to_local(pidfd)
        del pidfd
        with open(f"/proc/self/fdinfo/{ours.number}") as fdinfo:
            fields = dict(line.split(":", 1) for line in fdinfo if ":" in line)
        pid = int(fields["Pid"])
        await ours.close()
    except (OSError, KeyError, ValueError):
        return  # another host, another pid namespace...: the socket it is
    if pid > 0:
        transport.direct_pid = pid
        try:
            _raw.process_vm_read(pid, thread.connection.interrupter.state, 8)  # type: ignore[union-attr]
        except OSError:
            transport.direct_pid = None


class StubServer:
    """Hands out threads in programs that exec an executable it made.

    `make` creates a listening unix socket `dir/name.sock` and an
    executable `dir/name` (a two-line sh script that execs the stub with
    `--connect` and that socket); whenever any program execs `dir/name
    ARGS...`, `argv, thread = await server.accept()` gives its argv
    (`[dir/name, ARGS...]` as it was invoked) and a thread in that
    process: a fake `sendmail`, an editor hook, a test double that hands
    itself over.  The socket is mode 0600 in the directory given."""

    def __init__(self, thread: Thread, listener: AsyncFileDescriptor, path: str) -> None:
        self.thread = thread
        self.listener = listener
        self.path = path

    @classmethod
    async def make(cls, thread: Thread, dir: str | os.PathLike[str], name: str) -> StubServer:
        """The server, listening; `dir/name` is the executable to exec."""
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        directory = os.fspath(dir)
        executable = f"{directory}/{name}"
        socket_path = f"{executable}.sock"
        if len(os.fsencode(socket_path)) >= 108:
            raise ValueError(f"socket path too long for a sockaddr_un: {socket_path!r}")
        stub = await stdin_bootstrap_path(thread)
        sock = await thread.task.socket(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
        await sock.bind(await thread.ptr(SockaddrUn(socket_path)))
        await sock.listen(128)
        listener = await thread.make_afd(sock)
        script = (
            "#!/bin/sh\n"
            f'exec {shlex.quote(os.fspath(stub))} --connect {shlex.quote(socket_path)} "$0" "$@"\n'
        )
        await thread.spit(executable, script, mode=S(0o755))
        return cls(thread, listener, executable)

    def command(self) -> Command:
        """A Command that execs the server's executable."""
        return Command(self.path, [self.path])

    async def accept(self) -> tuple[list[str], StubThread]:
        """The next program to exec the executable: its argv and a thread
        in it."""
        sock = await self.listener.accept()
        thread = self.thread
        boot = sock if thread is thread.local else await thread._fd_to_local(sock)
        stub = await connect_stub(thread, boot)
        return stub.argv, stub

    async def close(self) -> None:
        """Stop listening (the executable stays)."""
        await self.listener.close()


async def stdin_bootstrap_path(thread: Thread) -> Path:
    """The path of the stub executable on `thread`'s filesystem (this
    installation's, which a thread on this machine sees unless its mount
    namespace hides it: then FileNotFoundError; on an ssh host, the copy
    ssh made for it)."""
    path = stub_path()
    if not thread.on_local_host:
        from rsyscall.tasks.ssh import _ssh_root

        path = Path(_ssh_root(thread)._ssh.remote_directory) / "stub"
    await thread.task.faccessat(None, await thread.ptr(os.fspath(path)), OK.X)
    return path

