"""Persistent threads (rsyscall.tasks.persistent): reconnecting after
prep_for_reconnect from every kind of thread, surviving the ssh process
they were made through, dying with it without make_persistent, and
refusing other users (root needed to be another user: CI is root)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio
import pytest

from rsyscall import SyscallHangup, Thread, local_thread
from rsyscall.monitor import AsyncChildProcess
from rsyscall.tasks.persistent import PersistentThread, clone_persistent
from rsyscall.tasks.ssh import SSHHost, SSHThread

from .conftest import local_ssh_host

pytestmark = pytest.mark.anyio


@pytest.fixture
def socket_dir() -> Iterator[str]:
    # Short (unix socket paths are), new, and gone afterwards.
    path = f"/tmp/per-{secrets.token_hex(6)}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


async def host() -> SSHHost:
    return await local_ssh_host()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def wait_until(condition: object, limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_reconnect_after_prep(thread: Thread, socket_dir: str) -> None:
    path = f"{socket_dir}/sock"
    per = await clone_persistent(thread, path)
    assert isinstance(per, PersistentThread)
    assert os.stat(socket_dir).st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o777 == 0o600
    await per.make_persistent()
    pid = per.task.pid
    # Its session, its memory, an fd, a child process: all to survive.
    assert os.getsid(pid) == pid  # seen from here: the same machine
    pointer = await per.ptr(b"kept across connections" * 1000)
    pipe = await per.pipe()
    child = await per.clone()
    sleeper = await child.exec(per.environ.sh.args("-c", "sleep 1000"))
    await per.prep_for_reconnect()
    with pytest.raises(SyscallHangup):
        await per.task.getpid()
    assert alive(pid) and alive(sleeper.pid)
    await per.reconnect(thread)
    assert await per.task.getpid() == pid
    assert await pointer.read() == b"kept across connections" * 1000
    await pipe.write.write(await per.ptr(b"still open"))
    got, _ = await pipe.read.read(await per.malloc(bytes, 10))
    assert await got.read() == b"still open"
    await sleeper.kill()
    assert (await sleeper.waitpid()).killed_with() == signal.SIGKILL
    # New children, new connections (their own) work too.
    again = await per.clone()
    assert await again.task.getppid() == pid
    await again.exit(0)
    # And a second round.
    await per.prep_for_reconnect()
    await per.reconnect(thread)
    assert await per.task.getpid() == pid
    assert (await per.exit(4)).exit_status == 4
    await wait_until(lambda: not alive(pid))


async def test_surviving_the_ssh_process(
    ssh: tuple[AsyncChildProcess, SSHThread], socket_dir: str,
) -> None:
    process, remote = ssh
    per = await clone_persistent(remote, f"{socket_dir}/sock")
    await per.make_persistent()
    pid = per.task.pid
    pointer = await per.ptr(os.urandom(256 * 1024))
    data = await pointer.read()
    sleeper = await (await per.clone()).exec(per.environ.sh.args("-c", "sleep 1000"))
    # A call pending when the connection drops: a read the child answers
    # a little later (the server takes the next connection only then).
    pipe = await per.pipe()
    writer = await per.clone()
    await writer.inherit_fd(pipe.write).dup2(writer.stdout)
    await writer.exec(per.environ.sh.args("-c", "sleep 0.5; echo late"))
    await pipe.write.close()
    errors: list[BaseException] = []

    async def pending() -> None:
        try:
            await pipe.read.read(await per.malloc(bytes, 8))
        except BaseException as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pending)
        await anyio.sleep(0.05)
        start = time.monotonic()
        await process.kill()
        await wait_until(lambda: errors, 1)
    assert time.monotonic() - start < 1
    assert isinstance(errors[0], SyscallHangup)
    await process.waitpid()
    # The stub it was cloned from is gone; it is not.
    await wait_until(lambda: not alive(remote.task.pid))
    assert alive(pid) and alive(sleeper.pid)
    with pytest.raises(SyscallHangup):
        await per.task.getpid()
    new_process, new_remote = await (await host()).ssh(local_thread)
    try:
        await per.reconnect(new_remote)
        assert await per.task.getpid() == pid
        assert await pointer.read() == data
        # The same fd, at its end: the pending read took the late line,
        # and its answer went with the old connection.
        assert await per.read_to_eof(pipe.read) == b""
        await sleeper.kill()
        assert (await sleeper.waitpid()).killed_with() == signal.SIGKILL
        child = await per.clone()
        assert await child.task.getppid() == pid
        await child.exit(0)
        await per.exit(0)
        await wait_until(lambda: not alive(pid))
    finally:
        await new_process.kill()
        await new_process.waitpid()


async def test_without_make_persistent_it_dies_with_its_connection(
    ssh: tuple[AsyncChildProcess, SSHThread], socket_dir: str,
) -> None:
    process, remote = ssh
    per = await clone_persistent(remote, f"{socket_dir}/sock")
    pid = per.task.pid
    assert alive(pid)
    with pytest.raises(ValueError, match="make_persistent"):
        await per.prep_for_reconnect()
    await process.kill()
    await process.waitpid()
    await wait_until(lambda: not alive(pid))
    with pytest.raises(ValueError, match="make_persistent"):
        await per.reconnect(local_thread)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be another user (CI is root)")
async def test_another_user_is_refused(socket_dir: str) -> None:
    path = f"{socket_dir}/sock"
    per = await clone_persistent(local_thread, path)
    await per.make_persistent()
    await per.prep_for_reconnect()  # now waiting on its socket
    connect = [
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({path!r})\n"
        "except OSError as e:\n"
        "    print('refused', e.errno); sys.exit(0)\n"
        "s.settimeout(5)\n"
        "print('answered', len(s.recv(16)))\n",
    ]
    # The directory (0700) and the socket (0600) keep others out...
    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(connect, capture_output=True, text=True, timeout=20)
    )
    assert result.stdout.strip() == "refused 13", result.stderr
    # ... and if they are opened up, the thread checks who connects
    # (SO_PEERCRED) and closes on others without a word.
    os.chmod(socket_dir, 0o755)
    os.chmod(path, 0o666)
    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(connect, capture_output=True, text=True, timeout=20)
    )
    assert result.stdout.strip() == "answered 0", result.stderr
    await per.reconnect(local_thread)
    assert await per.task.getpid() == per.task.pid
    await per.exit(0)


async def test_bad_socket_paths(socket_dir: str) -> None:
    os.mkdir(socket_dir, 0o755)
    os.chmod(socket_dir, 0o755)
    with pytest.raises(PermissionError, match="0700"):
        await clone_persistent(local_thread, f"{socket_dir}/sock")
    with pytest.raises(ValueError, match="108"):
        await clone_persistent(local_thread, "/tmp/" + "x" * 120)
    with pytest.raises(TypeError):
        await clone_persistent("not a thread", "/tmp/x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await clone_persistent(local_thread, 5)  # type: ignore[arg-type]
    # Nothing left running, and the thread is fine.
    assert await local_thread.task.getpid() == os.getpid()
