"""Every async test runs under both asyncio and trio (anyio's pytest plugin).

Two more things every test gets:

* A time limit (pytest-timeout, set in pyproject.toml): a hang fails the
  test instead of stalling the run.
* `@pytest.mark.isolated`: the test runs in a fresh interpreter (a child
  `python -m pytest` of just that test), so a crash there (a segfault, an
  abort) is reported as that test's failure instead of ending the run.
  Use it for regression tests of bugs that corrupted memory.

And one fixture for the header modules' tests, `thread`: the same test on
every kind of thread there is (see THREAD_KINDS).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest

from rsyscall import Command, Thread, local_thread
from rsyscall.near.interface import SyscallHangup

if TYPE_CHECKING:
    from rsyscall.monitor import AsyncChildProcess
    from rsyscall.tasks.ssh import SSHHost, SSHThread

_ISOLATED_ENV = "RSYSCALL_ISOLATED_TEST"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---- the thread kinds ----
#
# Each kind is an async context manager factory giving a fresh (or, for the
# local thread, the one) Thread of that kind, cleaned up on exit.  A test
# taking the `thread` fixture runs once per entry here: adding a kind of
# thread (a stub in another address space, an ssh thread on another host)
# is one more entry, and the whole suite tests it.  So a test taking
# `thread` may use only the thread's own syscalls and memory: it must not
# assume that the thread shares our memory or fd table, or that its pid is
# os.getpid() (tests/util.py looks at its process from outside).


@asynccontextmanager
async def _local_kind() -> AsyncIterator[Thread]:
    yield local_thread


@asynccontextmanager
async def _child_kind() -> AsyncIterator[Thread]:
    child = await local_thread.clone()
    try:
        yield child
    finally:
        # The test may have ended it already (exit, exec, kill); a failed
        # one may have left it in a syscall that never returns (the exit
        # waits behind it; cancelled, the wait kills and reaps it).
        if child.process.state is None:
            if child.connection.hung_up is None:
                with anyio.move_on_after(10):
                    try:
                        await child.exit(0)
                    except SyscallHangup:
                        pass
            if child.process.state is None:
                try:
                    await child.process.kill()
                except ProcessLookupError:
                    pass
                await child.process.waitpid()


@asynccontextmanager
async def _stub_kind() -> AsyncIterator[Thread]:
    # A stub process, in an address space of its own, reached through the
    # stdin bootstrap (rsyscall.tasks.stdin_bootstrap).
    from rsyscall.tasks.stdin_bootstrap import stdin_bootstrap, stdin_bootstrap_path

    path = await stdin_bootstrap_path(local_thread)
    process, stub = await stdin_bootstrap(local_thread, Command(path, [path]))
    try:
        yield stub
    finally:
        del stub
        await end_process(process)


async def end_process(process: AsyncChildProcess) -> None:
    """Kill and reap `process` unless it is gone already."""
    gc.collect()  # what held the thread's connection, in a cycle
    if process.state is None:
        try:
            await process.kill()
        except ProcessLookupError:
            pass
        await process.waitpid()


_local_ssh_host: list[SSHHost] = []


async def local_ssh_host() -> SSHHost:
    """The suite's private sshd (rsyscall.tasks.ssh.make_local_ssh), made
    once: its keys and config, that is; each connection starts its own
    sshd."""
    from rsyscall.tasks.ssh import make_local_ssh

    if not _local_ssh_host:
        _local_ssh_host.append(await make_local_ssh(local_thread))
    return _local_ssh_host[0]


@asynccontextmanager
async def _ssh_kind() -> AsyncIterator[Thread]:
    # A stub on "another host" (this one, through a private sshd), made by
    # copying the stub over ssh: see rsyscall.tasks.ssh.
    process, remote = await (await local_ssh_host()).ssh(local_thread)
    try:
        yield remote
    finally:
        del remote
        await end_process(process)


@pytest.fixture
async def ssh(anyio_backend: str) -> AsyncIterator[tuple[AsyncChildProcess, SSHThread]]:
    """An ssh thread on the suite's sshd, and its ssh process."""
    process, remote = await (await local_ssh_host()).ssh(local_thread)
    yield process, remote
    del remote
    await end_process(process)


THREAD_KINDS: dict[str, Callable[[], AbstractAsyncContextManager[Thread]]] = {
    "local": _local_kind,
    "child": _child_kind,
    "stub": _stub_kind,
    "ssh": _ssh_kind,
}


@pytest.fixture(params=list(THREAD_KINDS))
async def thread(request: pytest.FixtureRequest, anyio_backend: str) -> AsyncIterator[Thread]:
    """A thread of each kind in THREAD_KINDS (ids: its name)."""
    async with THREAD_KINDS[request.param]() as made:
        yield made


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "isolated: run the test in a fresh interpreter, so a crash fails only it"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("isolated") is None or os.environ.get(_ISOLATED_ENV) == item.nodeid:
        yield
        return
    # Run just this test in a child interpreter; replace the call with a
    # check of how it ended.
    env = {**os.environ, _ISOLATED_ENV: item.nodeid}
    root = str(item.config.rootpath)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", item.nodeid],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )

    def check() -> None:
        if result.returncode != 0:
            how = (
                f"killed by signal {-result.returncode}" if result.returncode < 0
                else f"exit status {result.returncode}"
            )
            pytest.fail(
                f"isolated run of {item.nodeid} failed ({how}):\n{result.stdout[-6000:]}"
                f"\n{result.stderr[-3000:]}",
                pytrace=False,
            )

    # The hook wrapper must yield exactly once; swap the test function for
    # the check while the real call happens.
    original = item.runtest  # type: ignore[attr-defined]
    item.runtest = check  # type: ignore[method-assign]
    try:
        yield
    finally:
        item.runtest = original  # type: ignore[method-assign]
