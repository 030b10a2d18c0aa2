"""Threads on another host through ssh (rsyscall.tasks.ssh), against the
private sshd of make_local_ssh: "another host" that is this one, so the
remote side can be looked at from here too.  The header modules' tests run
on ssh threads through the `thread` fixture; here, what is particular to
ssh: output, memory, nesting, channels, the ssh process's death, leaks,
and what goes wrong at bootstrap.

Some tests need root (CI runs as root): the read-only /tmp is a mount
namespace made by `unshare -m`."""

from __future__ import annotations

import gc
import glob
import os
import signal
import time

import anyio
import pytest

from rsyscall import Command, SyscallHangup, local_thread
from rsyscall.fcntl import O
from rsyscall.monitor import AsyncChildProcess
from rsyscall.tasks.ssh import SSHHost, SSHThread, UnsupportedHostError, make_local_ssh
from rsyscall.tasks.stdin_bootstrap import stdin_bootstrap, stdin_bootstrap_path
from rsyscall.tasks.stub import BootstrapError, stub_path

from .conftest import local_ssh_host
from .util import mapping_count, open_fds

pytestmark = pytest.mark.anyio


async def host() -> SSHHost:
    return await local_ssh_host()


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return {int(child) for child in children.read().split()}


def stub_processes() -> set[int]:
    """Every process running a stub copied over ssh (their /tmp copies)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                exe = os.readlink(f"/proc/{entry}/exe")
            except OSError:
                continue
            if exe.startswith("/tmp/rsyscall-") and exe.endswith("/stub"):
                found.add(int(entry))
    return found


def our_temporary_files() -> set[str]:
    """The directories ssh threads make: the remote's stub directory
    (rsyscall-<24 hex digits>), the local one for ssh's sockets."""
    remote = {path for path in glob.glob("/tmp/rsyscall-*") if len(path) == 5 + 9 + 24}
    return remote | set(glob.glob("/tmp/rsyscall-ssh-*"))


async def wait_until(condition: object, limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_a_thread_on_the_host(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    process, remote = ssh
    assert not remote.on_local_host
    pid = remote.task.pid
    assert await remote.task.getpid() == pid
    # A stub copied into a private directory, run by the remote shell.
    exe = os.readlink(f"/proc/{pid}/exe")
    assert exe.startswith("/tmp/rsyscall-") and exe.endswith("/stub")
    assert os.stat(os.path.dirname(exe)).st_mode & 0o777 == 0o700
    assert pid not in children_of(os.getpid())
    assert process.pid in children_of(os.getpid())
    # Fds cannot cross hosts.
    with pytest.raises(OSError) as info:
        await remote._fd_to_local(remote.stdin)
    assert info.value.errno == 18  # EXDEV


async def test_exec_with_output_captured(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    _, remote = ssh
    pipe = await remote.pipe()
    child = await remote.clone()
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    process = await child.exec(remote.environ.sh.args("-c", "echo out $$; exit 7"))
    await pipe.write.close()
    output = await remote.read_to_eof(pipe.read)
    state = await process.waitpid()
    assert output == f"out {process.pid}\n".encode()
    assert state.exit_status == 7
    assert (await remote.run(remote.environ.sh.args("-c", "exit 0"))).exit_status == 0


async def test_memory_round_trips(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    _, remote = ssh
    for size in (1, 4095, 256 * 1024, 1 << 20):
        data = os.urandom(size)
        pointer = await remote.ptr(data)
        assert await pointer.read() == data


async def test_spit_and_read_back(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    _, remote = ssh
    path = f"/tmp/spit-test-{os.getpid()}-{remote.task.pid}"
    try:
        text = os.urandom(100_000)
        await remote.spit(path, text)
        fd = await remote.task.open(await remote.ptr(path), O.RDONLY)
        assert await remote.read_to_eof(fd) == text
        await fd.close()
        with open(path, "rb") as seen_from_here:  # the same machine
            assert seen_from_here.read() == text
    finally:
        os.unlink(path)


async def test_nested_ssh(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    _, first = ssh
    process, second = await (await host()).ssh(first)
    # The second ssh runs on the first host, as a child of the first thread.
    assert process.pid in children_of(first.task.pid)
    assert await second.task.getpid() == second.task.pid
    assert await (await second.ptr(b"x" * 70_000)).read() == b"x" * 70_000
    [(ours, theirs)] = await second.open_channels(1)
    await ours.write(await local_thread.ptr(b"two hops"))
    got, _ = await theirs.read(await second.malloc(bytes, 8))
    assert await got.read() == b"two hops"
    child = await second.clone()
    assert await child.task.getppid() == second.task.pid
    await child.exit(0)
    await process.kill()
    await process.waitpid()
    with pytest.raises(SyscallHangup):
        await second.task.getpid()
    # The first is still fine, and the second's socket files are gone.
    assert await first.task.getpid() == first.task.pid


async def test_channels(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    _, remote = ssh
    channels = await remote.open_channels(3)
    for index, (ours, theirs) in enumerate(channels):
        assert ours.task is local_thread.task and theirs.task is remote.task
        message = f"channel {index}".encode()
        await ours.write(await local_thread.ptr(message))
        got, _ = await theirs.read(await remote.malloc(bytes, len(message)))
        assert await got.read() == message
        await theirs.write(await remote.ptr(b"back"))
        got, _ = await ours.read(await local_thread.malloc(bytes, 4))
        assert await got.read() == b"back"
    for ours, theirs in channels:
        await ours.close()
        await theirs.close()


async def test_child_threads_of_an_ssh_thread(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    _, remote = ssh
    children = [await remote.clone() for _ in range(3)]
    for child in children:
        assert not child.on_local_host
        assert await child.task.getppid() == remote.task.pid
        grandchild = await child.clone()
        assert await grandchild.task.getppid() == child.task.pid
        await grandchild.exit(3)
        assert (await grandchild.process.waitpid()).exit_status == 3
    for child in children:
        await child.exit(0)
        assert (await child.process.waitpid()).exit_status == 0


async def test_killing_ssh_hangs_up_within_a_second() -> None:
    process, remote = await (await host()).ssh(local_thread)
    pipe = await remote.pipe()
    errors: list[BaseException] = []

    async def blocked() -> None:
        try:
            await pipe.read.read(await remote.malloc(bytes, 8))
        except BaseException as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked)
        await anyio.sleep(0.05)
        start = time.monotonic()
        await process.kill()
        with anyio.fail_after(1):
            while not errors:
                await anyio.sleep(0.005)
    assert time.monotonic() - start < 1
    assert isinstance(errors[0], SyscallHangup)
    with pytest.raises(SyscallHangup):
        await remote.task.getpid()
    await process.waitpid()
    # Without its connections the remote stub exits, and its script
    # removes its directory.
    pid = remote.task.pid
    await wait_until(lambda: not os.path.exists(f"/proc/{pid}"))


async def test_killing_the_remote_stub(ssh: tuple[AsyncChildProcess, SSHThread]) -> None:
    process, remote = ssh
    directory = os.path.dirname(os.readlink(f"/proc/{remote.task.pid}/exe"))
    os.kill(remote.task.pid, signal.SIGKILL)
    with anyio.fail_after(2):
        with pytest.raises(SyscallHangup):
            await remote.task.getpid()
    # The remote script cleans up and ends the session.
    with anyio.fail_after(5):
        await process.waitpid()
    await wait_until(lambda: not os.path.exists(directory))


async def test_many_ssh_threads_leave_nothing_behind() -> None:
    made = await host()
    await local_thread.epoller()
    process, remote = await made.ssh(local_thread)  # warm up
    await process.kill()
    await process.waitpid()
    del remote
    gc.collect()
    await wait_until(lambda: not stub_processes())
    files_before = our_temporary_files()
    fds_before = open_fds()
    children_before = children_of(os.getpid())
    mappings_before = mapping_count()

    async def one() -> None:
        process, remote = await made.ssh(local_thread)
        child = await remote.clone()
        assert await child.task.getpid() == child.task.pid
        await remote.open_channels(1)
        await child.exit(0)
        await child.process.waitpid()
        await process.kill()
        await process.waitpid()

    for _ in range(20):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
    gc.collect()
    await wait_until(lambda: not stub_processes() and our_temporary_files() <= files_before)
    assert open_fds() == fds_before
    assert children_of(os.getpid()) == children_before
    assert mapping_count() <= mappings_before + 8


# ---- what goes wrong at bootstrap ----


def nothing_left(children_before: set[int], files_before: set[str]) -> bool:
    return children_of(os.getpid()) <= children_before and our_temporary_files() <= files_before


async def test_an_unsupported_host(tmp_path: object) -> None:
    fake = f"{tmp_path}/bin"
    os.mkdir(fake)
    with open(f"{fake}/uname", "w") as uname:
        uname.write("#!/bin/sh\necho Linux aarch64\n")
    os.chmod(f"{fake}/uname", 0o755)
    made = await make_local_ssh(
        local_thread, sshd_options={"SetEnv": f"PATH={fake}:/usr/bin:/bin"}
    )
    children_before = children_of(os.getpid())
    files_before = our_temporary_files()
    with anyio.fail_after(10):
        with pytest.raises(UnsupportedHostError, match="Linux aarch64"):
            await made.ssh(local_thread)
    await wait_until(lambda: nothing_left(children_before, files_before))


async def test_sshd_refusing_the_key() -> None:
    made = await make_local_ssh(local_thread, sshd_options={"AuthorizedKeysFile": "/dev/null"})
    children_before = children_of(os.getpid())
    files_before = our_temporary_files()
    with anyio.fail_after(10):
        with pytest.raises(BootstrapError, match="Permission denied"):
            await made.ssh(local_thread)
    await wait_until(lambda: nothing_left(children_before, files_before))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace (CI is root)")
async def test_a_remote_tmp_that_is_not_writable() -> None:
    made = await make_local_ssh(local_thread, wrap_sshd=lambda sshd: (
        # /tmp, with our sshd's files, made read-only for the sshd alone.
        "unshare -m --propagation private sh -c "
        "'mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && exec \"$@\"' sh " + sshd
    ))
    children_before = children_of(os.getpid())
    files_before = our_temporary_files()
    with anyio.fail_after(10):
        with pytest.raises(BootstrapError, match="private directory in /tmp"):
            await made.ssh(local_thread)
    await wait_until(lambda: nothing_left(children_before, files_before))


def slowly(sshd: str) -> str:
    return f"sh -c 'sleep 1; exec {sshd}'"


async def test_ssh_killed_mid_bootstrap() -> None:
    made = await make_local_ssh(local_thread, wrap_sshd=slowly)
    children_before = children_of(os.getpid())
    files_before = our_temporary_files()
    errors: list[BaseException] = []

    async def connect() -> None:
        try:
            await made.ssh(local_thread)
        except BaseException as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(connect)
        await wait_until(lambda: children_of(os.getpid()) - children_before)
        (ssh_pid,) = children_of(os.getpid()) - children_before
        os.kill(ssh_pid, signal.SIGKILL)
        start = time.monotonic()
        await wait_until(lambda: errors, 2)
    assert time.monotonic() - start < 1
    assert isinstance(errors[0], BootstrapError)
    await wait_until(lambda: nothing_left(children_before, files_before))


async def test_cancelled_mid_bootstrap() -> None:
    made = await make_local_ssh(local_thread, wrap_sshd=slowly)
    children_before = children_of(os.getpid())
    files_before = our_temporary_files()
    with anyio.move_on_after(0.3) as scope:
        await made.ssh(local_thread)
    assert scope.cancelled_caught
    await wait_until(lambda: nothing_left(children_before, files_before))


async def test_bootstrap_timeout() -> None:
    made = await make_local_ssh(local_thread, wrap_sshd=lambda sshd: "sleep 60")
    children_before = children_of(os.getpid())
    files_before = our_temporary_files()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await made.ssh(local_thread, timeout=0.5)
    assert time.monotonic() - start < 2
    await wait_until(lambda: nothing_left(children_before, files_before))


async def test_make_local_ssh_needs_a_thread_here(
    ssh: tuple[AsyncChildProcess, SSHThread],
) -> None:
    _, remote = ssh
    with pytest.raises(OSError) as info:
        await make_local_ssh(remote)
    assert info.value.errno == 18


async def test_the_stub_copy_and_stdin_bootstrap(
    ssh: tuple[AsyncChildProcess, SSHThread],
) -> None:
    _, remote = ssh
    path = await stdin_bootstrap_path(remote)
    # The copy ssh made, not this installation's (which a real remote host
    # would not have).
    assert str(path) == os.readlink(f"/proc/{remote.task.pid}/exe")
    assert path != stub_path()
    with pytest.raises(OSError) as info:
        await stdin_bootstrap(remote, Command(path, [str(path)]))
    assert info.value.errno == 18  # EXDEV: its socket cannot cross hosts
    assert await remote.task.getpid() == remote.task.pid
