"""Threads on other hosts, through the system `ssh`.

    host = await make_ssh_host(local_thread, "user@example.org")
    process, remote = await host.ssh(local_thread)
    await remote.task.getpid()                      # on example.org

The remote host needs sshd and a POSIX shell, nothing else.  `host.ssh`
runs `ssh` (the user's own ~/.ssh/config, agent and known_hosts apply, as
for plain `ssh`) with a short shell script as the remote command, which:

* says what `uname -sm` says (anything but "Linux x86_64" is refused with
  `UnsupportedHostError`, naming what was found);
* makes a private directory, /tmp/rsyscall-<random> (mode 0700), and
  copies the stub into it from its stdin, over the ssh session itself;
* runs the stub in `--listen` mode on a socket there, which says
  RSYSCALL-LISTENING on stdout;
* removes the directory when the stub exits.

Our side reaches that socket through ssh's unix-socket forwarding (`-L`
to a socket in a private local directory): no TCP port is opened on
either side.  The connection's request, data and control sockets are three
forwarded connections, each starting with a tag; every later connection
(a child thread's, a channel) is one more, accepted by the stub from the
same socket.  Fds cannot move between hosts, so a thread there has no
transfer socket; its children's pidfds stay there, and its children are
watched from its own epoll.

Each ssh is a ControlMaster of its own (`-M -S`), so that a forward can be
added later (`ssh -O forward`): a thread on a host reached through another
(`host.ssh(remote)`, where the ssh process runs on the first host) is
reached by forwarding, hop by hop, to a socket on our host.

`make_local_ssh` gives a host backed by a private sshd on this machine,
started per connection through ProxyCommand (`sshd -i`), with its own host
and user keys in a temporary directory: for tests and demos.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shlex
import shutil
import struct
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from rsyscall.command import Command
from rsyscall.epoller import AsyncFileDescriptor
from rsyscall.fcntl import AT, AT_FDCWD, F, O
from rsyscall.handle import FileDescriptor
from rsyscall.memory.pointer import WrittenPointer, path_address
from rsyscall.near.sysnum import SYS
from rsyscall.sys.socket import AF, MSG, SOCK
from rsyscall.sys.stat import S
from rsyscall.sys.un import SockaddrUn
from rsyscall.tasks.stub import (
    BOOTSTRAP_TIMEOUT,
    BootstrapError,
    StubThread,
    make_stub_thread,
    stub_path,
)
from rsyscall.thread import RemoteThread, Thread, _hangup_later

if TYPE_CHECKING:
    from rsyscall.monitor import AsyncChildProcess

__all__ = [
    "SSHCommand",
    "SSHHost",
    "SSHThread",
    "UnsupportedHostError",
    "make_local_ssh",
    "make_ssh_host",
]

_TAGS = {name: struct.unpack("<Q", tag)[0] for name, tag in (
    ("request", b"RSYSREQU"), ("data", b"RSYSDATA"), ("control", b"RSYSCTRL"),
)}
# DEBUG: the ssh command line and the bootstrap's progress.
_log = logging.getLogger("rsyscall.ssh")
_LISTENING = b"RSYSCALL-LISTENING"
_UNSUPPORTED = b"RSYSCALL-UNSUPPORTED"
_NOTMP = b"RSYSCALL-NOTMP"


class UnsupportedHostError(Exception):
    """The remote host is not one the stub runs on (x86_64 Linux)."""


class SSHCommand(Command):
    """A Command for the system `ssh`, without a destination yet: options
    are added with `ssh_options`, `proxy_command`, `local_forward` (and
    `args` for anything else); `SSHHost` adds the destination and the
    remote command last."""

    __slots__ = ()

    @classmethod
    def make(cls, executable: str | os.PathLike[str] = "ssh") -> SSHCommand:
        """`ssh` as found on PATH by the caller, or the path given."""
        return cls(executable, ["ssh"])

    def args(self, *more: str | os.PathLike[str]) -> SSHCommand:
        command = super().args(*more)
        return SSHCommand(command.executable_path, command.arguments, command.env_updates)

    def env(
        self, mapping: Mapping[str, str | os.PathLike[str]] | None = None,
        **updates: str | os.PathLike[str],
    ) -> SSHCommand:
        command = super().env(mapping, **updates)
        return SSHCommand(command.executable_path, command.arguments, command.env_updates)

    def ssh_options(self, options: Mapping[str, str]) -> SSHCommand:
        """With `-o KEY=VALUE` for each option."""
        more: list[str] = []
        for key, value in options.items():
            if not isinstance(key, str) or not key.isalnum():
                raise ValueError(f"not an ssh option name: {key!r}")
            more += ["-o", f"{key}={value}"]
        return self.args(*more)

    def proxy_command(self, command: Command | str) -> SSHCommand:
        """With `-o ProxyCommand=...` (a Command is quoted for the shell
        ssh runs it with)."""
        text = command if isinstance(command, str) else shlex.join(
            [os.fspath(command.executable_path), *command.arguments[1:]]
        )
        return self.ssh_options({"ProxyCommand": text})

    def local_forward(self, local: str | os.PathLike[str], remote: str) -> SSHCommand:
        """With `-L LOCAL:REMOTE` (unix socket paths, or port forwards)."""
        return self.args("-L", f"{os.fspath(local)}:{remote}")


class SSHHost:
    """A host to ssh to: the `ssh` command (with its options) and the
    destination (`user@host`, or a Host of the ssh config)."""

    def __init__(
        self, command: SSHCommand, destination: str, keep: object = None
    ) -> None:
        self.command = command
        self.destination = destination
        # What must live as long as the host does (make_local_ssh's files).
        self._keep = keep

    def __repr__(self) -> str:
        return f"SSHHost({self.destination!r})"

    async def ssh(
        self, thread: Thread, timeout: float = 30.0
    ) -> tuple[AsyncChildProcess, SSHThread]:
        """Run ssh from `thread` and start a thread on the host: the ssh
        process (a child of `thread`) and the thread.  Fails with
        UnsupportedHostError, BootstrapError (ssh or the remote script
        failed: the message has ssh's stderr) or TimeoutError."""
        return await _ssh(self, thread, timeout)


async def make_ssh_host(
    thread: Thread, destination_or_to_host: str | Callable[[SSHCommand], SSHCommand]
) -> SSHHost:
    """An SSHHost for a destination such as "user@host", with `thread`'s
    `ssh` (from its PATH); or, given a function, for the command that
    function makes of `ssh` (its last argument is the destination)."""
    ssh = SSHCommand.make((await thread.environ.which("ssh")).executable_path)
    if isinstance(destination_or_to_host, str):
        return SSHHost(ssh, destination_or_to_host)
    command = destination_or_to_host(ssh)
    if not isinstance(command, SSHCommand) or len(command.arguments) < 2:
        raise TypeError("the function must return an SSHCommand ending with the destination")
    *options, destination = command.arguments[1:]
    return SSHHost(SSHCommand(command.executable_path, ["ssh", *options]), destination)


# ---- the threads ----


class SSHThread(StubThread):
    """A thread in a stub on another host, reached through ssh.

    Fds cannot move between it and us (OSError EXDEV); new connections to
    it (its children's, channels) are made through ssh's forwarding to the
    stub's listening socket, and accepted there.  Its children, and theirs,
    are on that host too: their pidfds stay there, watched from their
    parents' epolls."""

    def __init__(self, *args: object, ssh: _Session, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._ssh = ssh
        self._listener: AsyncFileDescriptor | None = None

    on_local_host = False

    def __repr__(self) -> str:
        return f"SSHThread({self._ssh.destination!r}, pid={self.task.pid})"

    async def _pidfd_to_local(self, pidfd: FileDescriptor) -> FileDescriptor | None:
        return None

    async def _new_connection(self) -> tuple[FileDescriptor, FileDescriptor]:
        session = self._ssh
        if self._listener is None:
            _, listener = self._fourth
            afd = await self.make_afd(listener, set_nonblock=True)
            if self._listener is None:
                self._listener = afd
        listener_afd = self._listener
        # One at a time: a connection that got through late (after a
        # timed-out attempt) is never taken for the next one.
        async with session.connecting:
            return await _accept_ours(
                self, lambda: _connect_from_local(session.thread, session.forward_socket),
                listener_afd.accept,
            )


async def _accept_ours(
    thread: Thread,
    connect: Callable[[], Awaitable[FileDescriptor]],
    accept: Callable[[], Awaitable[FileDescriptor]],
) -> tuple[FileDescriptor, FileDescriptor]:
    """A socket in the local thread (`connect`) connected to one `thread`
    accepts on a listening socket: we connect first, so the accept does
    not wait.  The 8-byte token we send tells ours from any other
    connection (a late one of a timed-out attempt, another process's): the
    thread echoes what it got back, so no memory copy is needed (the
    memory transport may be the very thing being made)."""
    token = secrets.token_bytes(8)
    local = thread.local
    ours = await connect()
    try:
        await ours.write(await local.ptr(token))
        with anyio.fail_after(BOOTSTRAP_TIMEOUT):
            while True:
                theirs = await accept()
                got, _ = await theirs.recv(await thread.malloc(bytes, len(token)), MSG.WAITALL)
                if got.size() == len(token):
                    await theirs.write(got)
                    if await _receive_now_and_then(local, ours, len(token)) == token:
                        break
                await theirs.close()
    except BaseException:
        await ours.close()
        raise
    thread.task.fd_table.mark_private(theirs.number)
    await ours.fcntl(F.SETFL, O.RDWR | O.NONBLOCK)
    return ours, theirs


async def _receive_now_and_then(local: Thread, sock: FileDescriptor, size: int) -> bytes:
    """`size` bytes from `sock` in the local thread (still blocking: an
    AsyncFileDescriptor is made of it later), without ever blocking the
    event loop: MSG.DONTWAIT, and a short sleep when nothing is there."""
    got = b""
    while len(got) < size:
        try:
            part, _ = await sock.recv(await local.malloc(bytes, size - len(got)), MSG.DONTWAIT)
        except BlockingIOError:
            await anyio.sleep(0.001)
            continue
        data = await part.read()
        if not data:
            break
        got += data
    return got


def _ssh_root(thread: Thread) -> SSHThread:
    """The ssh thread whose host `thread` (not on ours) is on: itself or
    the one it descends from."""
    here: Thread = thread
    while not isinstance(here, SSHThread):
        if not isinstance(here, RemoteThread):
            raise OSError(errno.EXDEV, f"{thread!r} is on a host no ssh of ours reaches")
        here = here.parent
    return here


async def _connect_from_local(thread: Thread, path: str) -> FileDescriptor:
    """A socket in the local thread connected to the unix socket `path` on
    `thread`'s host: directly on ours, else through the forwards of the
    ssh sessions that reach it, hop by hop."""
    if thread.on_local_host:
        local = thread.local
        sock = await local.task.socket(AF.UNIX, SOCK.STREAM)
        local.task.fd_table.mark_private(sock.number)
        await sock.connect(await local.ptr(SockaddrUn(path)))
        return sock
    session = _ssh_root(thread)._ssh
    return await _connect_from_local(session.thread, await session.forward(path))


class _Session:
    """One ssh process (a ControlMaster, so that forwards can be added to
    it) run by `thread`, and its forwards, in `directory` on `thread`'s
    host: `forward_socket` reaches the stub's listening socket."""

    def __init__(
        self, thread: Thread, command: SSHCommand, destination: str, directory: str,
        control: str, forward_socket: str,
    ) -> None:
        self.thread = thread
        self.command = command
        self.destination = destination
        self.directory = directory
        self.control = control
        self.forward_socket = forward_socket
        # The stub's own directory on the remote host (made by the script).
        self.remote_directory = ""
        self.forwards: dict[str, str] = {}
        self.connecting = anyio.Lock()
        self._forwarding = anyio.Lock()
        # On another host, the files to remove when ssh exits, as paths in
        # that thread's memory (a finalizer cannot allocate).
        self._remote_files: list[WrittenPointer[str]] = []
        self._remote_directory: WrittenPointer[str] | None = None

    async def remember_file(self, path: str) -> None:
        """Note `path` (on `thread`'s host, not ours) for `cleanup`."""
        if not self.thread.on_local_host:
            if self._remote_directory is None:
                self._remote_directory = await self.thread.ptr(self.directory)
            self._remote_files.append(await self.thread.ptr(path))

    def cleanup(self) -> None:
        """Remove the directory of sockets (ssh has exited)."""
        if self.thread.on_local_host:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        task = self.thread.task
        for pointer in self._remote_files:
            task.sysif.syscall_later(
                SYS.unlinkat, AT_FDCWD, path_address(task, pointer), 0, keep=pointer
            )
        if self._remote_directory is not None:
            task.sysif.syscall_later(
                SYS.unlinkat, AT_FDCWD, path_address(task, self._remote_directory),
                AT.REMOVEDIR, keep=self._remote_directory,
            )

    async def forward(self, path: str) -> str:
        """A socket on `thread`'s host forwarded to `path` on the remote
        (made once per path, with `ssh -O forward`)."""
        async with self._forwarding:
            here = self.forwards.get(path)
            if here is None:
                here = f"{self.directory}/forward-{len(self.forwards)}"
                await self.remember_file(here)
                await self.thread.run(self.command.args(
                    "-S", self.control, "-O", "forward", "-L", f"{here}:{path}",
                    self.destination,
                ))
                self.forwards[path] = here
        return here


def _script(directory: str, size: int) -> str:
    """The remote command: check the host, copy the stub in, run it, clean
    up.  Its reports go to stderr (ours to read); the stub's stdout and
    stderr are the session's stdout, which ssh passes through."""
    d = shlex.quote(directory)
    return "\n".join([
        'u="$(uname -sm 2>/dev/null)"',
        'case "$u" in "Linux x86_64") ;;',
        '*) echo "RSYSCALL-UNSUPPORTED $u" >&2; exit 3;; esac',
        f"mkdir -m 700 {d} 2>/dev/null || {{ echo RSYSCALL-NOTMP >&2; exit 4; }}",
        f"trap 'rm -rf {d}; exit 1' HUP INT TERM PIPE",
        f'cat > {d}/stub && [ "$(wc -c < {d}/stub)" -eq {size} ] && chmod 700 {d}/stub || '
        f"{{ rm -rf {d}; echo RSYSCALL-NOCOPY >&2; exit 5; }}",
        f"{d}/stub --listen {d}/sock </dev/null 3>&2 2>&1",
        "s=$?",
        f"rm -rf {d}",
        'exit "$s"',
    ])


_REFUSALS = {
    b"RSYSCALL-NOTMP": "cannot make a private directory in /tmp",
    b"RSYSCALL-NOCOPY": "cannot write the stub into /tmp (is it full?)",
    b"RSYSCALL-NOLISTEN": "the stub cannot listen on its socket",
}


async def _ssh(
    host: SSHHost, thread: Thread, timeout: float
) -> tuple[AsyncChildProcess, SSHThread]:
    stub = stub_path().read_bytes()
    name = secrets.token_hex(12)
    remote_dir = f"/tmp/rsyscall-{name}"
    # Private sockets on the host ssh runs on.
    local_dir = await _private_directory(thread)
    forward_socket = f"{local_dir}/stub"
    control = f"{local_dir}/control"
    command = host.command.args(
        "-M", "-S", control, "-T",
        "-o", "ExitOnForwardFailure=yes", "-o", "ControlPersist=no",
        "-L", f"{forward_socket}:{remote_dir}/sock",
        # sh, whatever the login shell is.
        host.destination, "exec sh -c " + shlex.quote(_script(remote_dir, len(stub))),
    )
    _log.debug("ssh to %s from %r: %s", host.destination, thread, command)
    session = _Session(thread, host.command, host.destination, local_dir, control, forward_socket)
    session.remote_directory = remote_dir
    await session.remember_file(control)
    await session.remember_file(forward_socket)
    stdin = await thread.pipe()
    stderr = await thread.pipe()
    try:
        child = await thread.clone()
        await child.inherit_fd(stdin.read).dup2(child.stdin)
        await child.inherit_fd(stderr.write).dup2(child.stderr)
        process = await child.exec(command)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _remove_directory(thread, local_dir)
        raise
    del child
    process.on_exit(session.cleanup)
    await stdin.read.close()
    await stderr.write.close()
    try:
        with anyio.fail_after(timeout):
            remote = await _bootstrap(host, thread, process, session, stub, stdin.write,
                                      stderr.read, timeout)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await process._kill_and_reap()
        raise
    return process, remote


async def _bootstrap(
    host: SSHHost, thread: Thread, process: AsyncChildProcess, session: _Session,
    stub: bytes, stdin: FileDescriptor, stderr: FileDescriptor, timeout: float,
) -> SSHThread:
    """Feed the stub to the script, read its reports, connect to it."""
    local = thread.local
    errors = await thread.make_afd(stderr, set_nonblock=True)
    feed = await thread.make_afd(stdin, set_nonblock=True)
    said = bytearray()

    exited = anyio.Event()
    process.on_exit(exited.set)
    report: bytes | None = None

    async def send_stub() -> None:
        try:
            await feed.write_all_bytes(stub)
        except OSError:
            pass  # ssh went away; its stderr says why
        finally:
            with anyio.CancelScope(shield=True):
                await feed.close()

    async def read_reports(scope: anyio.CancelScope) -> None:
        nonlocal report
        while True:
            line = await _read_line(errors, said)
            if line is None or line == _LISTENING or line.startswith(_UNSUPPORTED) \
                    or line in _REFUSALS:
                report = line
                scope.cancel()
                return

    async def watch_exit(scope: anyio.CancelScope) -> None:
        # ssh's stderr may stay open after it dies (its ProxyCommand has
        # it too): its exit ends the wait, after a moment for its last
        # words to arrive.
        await exited.wait()
        await anyio.sleep(0.1)
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(send_stub)
        tg.start_soon(read_reports, tg.cancel_scope)
        tg.start_soon(watch_exit, tg.cancel_scope)
    if report != _LISTENING:
        if report is not None and report.startswith(_UNSUPPORTED):
            found = report[len(_UNSUPPORTED):].decode(errors="replace").strip()
            raise UnsupportedHostError(
                f"{host.destination} is {found or 'unknown'}, not Linux x86_64"
            )
        if report in _REFUSALS:
            raise BootstrapError(f"{host.destination}: {_REFUSALS[report]}")
        message = bytes(said).decode(errors="replace").strip()
        raise BootstrapError(f"ssh to {host.destination} failed: {message or 'no output'}")
    # Kept open (ssh must not get EPIPE for its stderr), unread: closed
    # with the process.
    process.on_exit(errors.handle.drop)
    sockets = {}
    for role, tag in _TAGS.items():
        sock = await _connect_from_local(thread, session.forward_socket)
        await sock.write(await local.ptr(struct.pack("<Q", tag)))
        await sock.fcntl(F.SETFL, O.RDWR | O.NONBLOCK)
        sockets[role] = sock
    remote = await make_stub_thread(
        SSHThread, thread, sockets["request"], sockets["data"], sockets["control"],
        timeout, process=None, transfer_ours=None, ssh=session,
    )
    _log.debug("ssh to %s: stub %d listening, connected", host.destination, remote.task.pid)
    # The ssh process's end is the thread's end.
    process.on_exit(_hangup_later(remote.connection, "the ssh process exited"))
    return remote


async def _read_line(afd: AsyncFileDescriptor, buffer: bytearray) -> bytes | None:
    """The next line `afd` gives (kept in `buffer` too, for messages), or
    None at EOF."""
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        if end >= 0:
            line = bytes(buffer[start:end])
            if line.startswith(b"RSYSCALL-"):
                del buffer[start : end + 1]
                return line
            # Someone else's line (ssh's, the remote shell's): kept, for
            # the message if the bootstrap fails.
            start = end + 1
            continue
        part = await afd.read_some_bytes(4096)
        if not part:
            return None
        buffer += part


async def _private_directory(thread: Thread) -> str:
    """A new directory (mode 0700) on `thread`'s host, for its sockets."""
    if thread.on_local_host:
        base = tempfile.gettempdir()
        # Unix socket paths are short (108 bytes).
        return tempfile.mkdtemp(prefix="rsyscall-ssh-", dir=base if len(base) < 48 else "/tmp")
    path = f"/tmp/rsyscall-ssh-{secrets.token_hex(8)}"
    await thread.mkdir(path, S(0o700))
    return path


async def _remove_directory(thread: Thread, path: str) -> None:
    if thread.on_local_host:
        shutil.rmtree(path, ignore_errors=True)
    else:
        await thread.run(Command("/bin/rm", ["rm", "-rf", path]), check=False)


# ---- a private sshd, for tests and demos ----


async def make_local_ssh(
    thread: Thread,
    *,
    sshd_options: Mapping[str, str] | None = None,
    wrap_sshd: Callable[[str], str] | None = None,
) -> SSHHost:
    """An SSHHost backed by a private sshd on this machine: generated host
    and user keys in a temporary directory, the sshd started for each
    connection by ssh itself (ProxyCommand `sshd -i`), so no port listens.
    The files go when the host is garbage collected.  Needs `sshd` and
    `ssh-keygen` (Debian: openssh-server, openssh-client); `thread` must
    be on this host.

    `sshd_options` go first into the sshd_config (so they win over ours:
    sshd takes the first value of each keyword); `wrap_sshd`, given the
    `sshd -i ...` command line, returns the ProxyCommand that runs it
    (under `unshare`, say)."""
    if not thread.on_local_host:
        raise OSError(errno.EXDEV, "make_local_ssh: the thread must be on this host")
    directory = tempfile.TemporaryDirectory(prefix="rsyscall-sshd-")
    d = Path(directory.name)
    keygen = await thread.environ.which("ssh-keygen")
    sshd = await _find_sshd(thread)
    for key in ("host_key", "user_key"):
        await thread.run(keygen.args("-q", "-t", "ed25519", "-N", "", "-f", str(d / key)))
    (d / "authorized_keys").write_bytes((d / "user_key.pub").read_bytes())
    host_key = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"rsyscall-local {host_key[0]} {host_key[1]}\n")
    theirs = [f"{key} {value}" for key, value in (sshd_options or {}).items()]
    (d / "sshd_config").write_text("\n".join([
        *theirs,
        f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}",
        "StrictModes no",
        "UsePAM no",
        "PidFile none",
        "LogLevel ERROR",
        "AllowStreamLocalForwarding yes",
        "PermitRootLogin prohibit-password",
        "",
    ]))
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        # sshd running as root wants its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    ssh = SSHCommand.make((await thread.environ.which("ssh")).executable_path)
    command = ssh.args("-F", "/dev/null").ssh_options({
        "HostKeyAlias": "rsyscall-local",
        "UserKnownHostsFile": str(d / "known_hosts"),
        "StrictHostKeyChecking": "yes",
        "IdentitiesOnly": "yes",
        "IdentityFile": str(d / "user_key"),
        "BatchMode": "yes",
        "LogLevel": "ERROR",
    })
    run_sshd = f"{shlex.quote(str(sshd))} -i -f {shlex.quote(str(d / 'sshd_config'))}"
    command = command.proxy_command(wrap_sshd(run_sshd) if wrap_sshd else run_sshd)
    user = os.environ.get("USER") or _user_name()
    return SSHHost(command, f"{user}@rsyscall-local", keep=directory)


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


async def _find_sshd(thread: Thread) -> str:
    for candidate in ("sshd", "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        try:
            return os.fspath((await thread.environ.which(candidate)).executable_path)
        except FileNotFoundError:
            continue
    raise FileNotFoundError("sshd not found (Debian: apt-get install openssh-server)")


