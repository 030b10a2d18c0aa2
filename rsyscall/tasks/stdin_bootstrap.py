"""The stdin bootstrap: a thread in a program started with its stdin and
stdout connected to us, which ends up exec'ing the stub.

    path = await stdin_bootstrap_path(thread)
    process, stub = await stdin_bootstrap(thread, thread.environ.sh.args("-c", 'exec "$0"', path))

The command runs in a child of `thread` whose fds 0 and 1 are one end of
a unix socket whose other end is ours; whatever it does (`sh -c 'exec
"$0"' STUB`, `sudo STUB`, `unshare ... STUB`, `nsenter ... STUB`), once
the stub runs it takes its connection from that socket (see
rsyscall.tasks.stub).  A command that never gets there fails with
BootstrapError (it went away) or TimeoutError, and is killed and reaped.
"""

from __future__ import annotations

import errno

import anyio

from rsyscall.command import Command
from rsyscall.monitor import AsyncChildProcess
from rsyscall.sys.socket import AF, SOCK
from rsyscall.tasks.stub import (
    BOOTSTRAP_TIMEOUT,
    BootstrapError,
    StubThread,
    connect_stub,
    stdin_bootstrap_path,
)
from rsyscall.thread import Thread

__all__ = ["BootstrapError", "stdin_bootstrap", "stdin_bootstrap_path"]


async def stdin_bootstrap(
    thread: Thread, command: Command, timeout: float = BOOTSTRAP_TIMEOUT
) -> tuple[AsyncChildProcess, StubThread]:
    """Run `command` in a child of `thread` with its stdin and stdout
    connected to us, expecting it to exec the stub; returns the child's
    AsyncChildProcess and a thread in the stub.  `thread` must be on this
    host (OSError EXDEV otherwise: the socket's end cannot cross hosts; on
    another host, `clone` gives child threads)."""
    if not isinstance(command, Command):
        raise TypeError(f"command must be a Command, not {type(command).__name__}")
    if not thread.on_local_host:
        raise OSError(errno.EXDEV, f"stdin_bootstrap: {thread!r} is on another host")
    local = thread.local
    pair = await local.socketpair(AF.UNIX, SOCK.STREAM)
    ours, second = pair.first, pair.second
    del pair
    local.task.fd_table.mark_private(ours.number)
    theirs = second if thread is local else await thread._fd_from_local(second)
    child = await thread.clone()
    boot = child.inherit_fd(theirs)
    await boot.dup2(child.stdin)
    await boot.dup2(child.stdout)
    await boot.close()
    del theirs, second  # the child has its copies as 0 and 1
    process = await child.exec(command)
    try:
        stub = await connect_stub(thread, ours, process, timeout)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await process._kill_and_reap()
        raise
    return process, stub
