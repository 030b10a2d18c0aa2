"""rsyscall.sys.resource: nice values and resource limits on Task and
Process, compared with the stdlib `os` and `resource` modules."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import Thread, UseAfterConsumeError, local_thread
from rsyscall.handle import Process
from rsyscall.sys.resource import PRIO, RLIM_INFINITY, RLIMIT, Rlimit

from .util import status_field, thread_pid

pytestmark = pytest.mark.anyio


def from_stdlib(limits: tuple[int, int]) -> Rlimit:
    """The stdlib shows RLIM_INFINITY as -1; rlim_t is unsigned."""
    cur, max_ = (RLIM_INFINITY if value == resource.RLIM_INFINITY else value for value in limits)
    return Rlimit(cur, max_)


def who(thread: Thread) -> int:
    """The thread's OS thread, for os.getpriority: 0 (the caller) for the
    local thread, else its process."""
    return 0 if thread is local_thread else thread_pid(thread)


def limits_of(thread: Thread, which: int) -> tuple[int, int]:
    """The thread's process's limits, as the stdlib sees them."""
    if thread is local_thread:
        return resource.getrlimit(which)
    return resource.prlimit(thread_pid(thread), which)


@pytest.fixture
def nice(thread: Thread) -> Iterator[int]:
    """The thread's nice value, put back afterwards (we run as root; another
    thread's goes with it)."""
    original = os.getpriority(os.PRIO_PROCESS, who(thread))
    yield original
    if thread is local_thread:
        os.setpriority(os.PRIO_PROCESS, 0, original)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    popen = subprocess.Popen(["sleep", "100"])
    yield popen
    popen.kill()
    popen.wait()


async def still_works(thread: Thread) -> None:
    assert await thread.task.getpid() == thread_pid(thread)
    assert await thread.task.getpriority(PRIO.PROCESS) == os.getpriority(
        os.PRIO_PROCESS, who(thread))


# ---- priority ----


async def test_task_setpriority(thread: Thread, nice: int) -> None:
    task = thread.task
    assert await task.getpriority(PRIO.PROCESS) == nice
    await task.setpriority(PRIO.PROCESS, 10)  # the seed's example
    assert os.getpriority(os.PRIO_PROCESS, who(thread)) == 10
    assert await task.getpriority(PRIO.PROCESS) == 10
    # Negative nice values come back negative (the raw syscall gives 20 - nice).
    await task.setpriority(PRIO.PROCESS, -5)
    assert os.getpriority(os.PRIO_PROCESS, who(thread)) == -5
    assert await task.getpriority(PRIO.PROCESS) == -5
    # Out-of-range values are clamped, as setpriority(2) says.
    await task.setpriority(PRIO.PROCESS, 100)
    assert await task.getpriority(PRIO.PROCESS) == 19
    await task.setpriority(PRIO.PROCESS, nice)
    assert os.getpriority(os.PRIO_PROCESS, who(thread)) == nice


async def test_process_setpriority(thread: Thread, nice: int) -> None:
    process = thread.task.process
    assert process.pid == thread_pid(thread)
    await process.setpriority(7)
    assert os.getpriority(os.PRIO_PROCESS, thread_pid(thread)) == 7
    assert await process.getpriority() == 7
    assert await thread.task.getpriority(PRIO.PROCESS) == 7


async def test_priority_of_another_process(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    process = Process(thread.task, child.pid)
    assert await process.getpriority() == os.getpriority(os.PRIO_PROCESS, child.pid)
    await process.setpriority(12)
    assert os.getpriority(os.PRIO_PROCESS, child.pid) == 12
    assert await process.getpriority() == 12


async def test_priority_of_group_and_user(thread: Thread, nice: int) -> None:
    task = thread.task
    group = os.getpgid(thread_pid(thread))
    uid = int(status_field(thread, "Uid").split()[0])
    assert await task.getpriority(PRIO.PGRP) == os.getpriority(os.PRIO_PGRP, group)
    assert await task.getpriority(PRIO.USER) == os.getpriority(os.PRIO_USER, uid)
    if thread is local_thread:
        assert await task.getpriority(PRIO.PGRP) == os.getpriority(os.PRIO_PGRP, 0)
        assert await task.getpriority(PRIO.USER) == os.getpriority(os.PRIO_USER, 0)


async def test_priority_errors(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    task = thread.task
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.setpriority(99, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.getpriority(99)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setpriority(PRIO.PROCESS, "10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setpriority("process", 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.getpriority(None)  # type: ignore[arg-type]
    # A reaped child's pid names nothing.
    child.kill()
    child.wait()
    gone = Process(thread.task, child.pid)
    with pytest.raises(OSError) as info:
        await gone.getpriority()
    assert info.value.errno == errno.ESRCH
    with pytest.raises(OSError) as info:
        await gone.setpriority(1)
    assert info.value.errno == errno.ESRCH
    await still_works(thread)


# ---- limits ----


async def test_getrlimit_matches_stdlib(thread: Thread) -> None:
    for which in RLIMIT:
        ptr = await thread.malloc(Rlimit)
        result = await thread.task.getrlimit(which, ptr)
        assert ptr.consumed
        assert await result.read() == from_stdlib(limits_of(thread, which))


async def test_setrlimit_and_restore(thread: Thread) -> None:
    task = thread.task
    original = limits_of(thread, resource.RLIMIT_NOFILE)
    old = await task.getrlimit(RLIMIT.NOFILE, await thread.malloc(Rlimit))
    limits = await old.read()
    try:
        lower = await thread.ptr(Rlimit(limits.cur - 1, limits.max))
        await task.setrlimit(RLIMIT.NOFILE, lower)
        assert limits_of(thread, resource.RLIMIT_NOFILE) == (original[0] - 1, original[1])
    finally:
        # A pointer getrlimit filled can be passed straight back.
        await task.setrlimit(RLIMIT.NOFILE, old)
    assert limits_of(thread, resource.RLIMIT_NOFILE) == original


async def test_infinity(thread: Thread) -> None:
    task = thread.task
    original = limits_of(thread, resource.RLIMIT_CORE)
    try:
        unlimited = await thread.ptr(Rlimit(RLIM_INFINITY, RLIM_INFINITY))
        await task.setrlimit(RLIMIT.CORE, unlimited)
        assert limits_of(thread, resource.RLIMIT_CORE) == (
            resource.RLIM_INFINITY,
            resource.RLIM_INFINITY,
        )
        result = await task.getrlimit(RLIMIT.CORE, await thread.malloc(Rlimit))
        assert await result.read() == Rlimit(RLIM_INFINITY, RLIM_INFINITY)
        assert "RLIM_INFINITY" in repr(await result.read())
    finally:
        if thread is local_thread:
            resource.setrlimit(resource.RLIMIT_CORE, original)
        else:
            resource.prlimit(thread_pid(thread), resource.RLIMIT_CORE, original)


async def test_task_prlimit(thread: Thread) -> None:
    task = thread.task
    original = limits_of(thread, resource.RLIMIT_NOFILE)
    old = await task.prlimit(RLIMIT.NOFILE, None, await thread.malloc(Rlimit))
    assert await old.read() == from_stdlib(original)
    new = await thread.ptr(Rlimit(original[0] - 2, original[1]))
    before = await task.prlimit(RLIMIT.NOFILE, new, await thread.malloc(Rlimit))
    try:
        assert await before.read() == from_stdlib(original)
        assert limits_of(thread, resource.RLIMIT_NOFILE) == (original[0] - 2, original[1])
    finally:
        await task.prlimit(RLIMIT.NOFILE, before)
    assert limits_of(thread, resource.RLIMIT_NOFILE) == original
    await task.prlimit(RLIMIT.NOFILE)  # neither: a no-op


async def test_process_prlimit(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    process = Process(thread.task, child.pid)
    expected = from_stdlib(resource.prlimit(child.pid, resource.RLIMIT_NOFILE))
    old = await process.prlimit(RLIMIT.NOFILE, None, await thread.malloc(Rlimit))
    assert await old.read() == expected
    await process.prlimit(RLIMIT.NOFILE, await thread.ptr(Rlimit(64, expected.max)))
    assert resource.prlimit(child.pid, resource.RLIMIT_NOFILE)[0] == 64
    # Our own limits did not change.
    assert limits_of(thread, resource.RLIMIT_NOFILE)[0] != 64 or expected.cur == 64
    # And on our own process, through Process.
    me = thread.task.process
    mine = await me.prlimit(RLIMIT.STACK, None, await thread.malloc(Rlimit))
    assert await mine.read() == from_stdlib(limits_of(thread, resource.RLIMIT_STACK))


async def test_rlimit_errors(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.getrlimit(99, await thread.malloc(Rlimit))  # type: ignore[arg-type]
    # Soft above hard is refused by the kernel.
    with pytest.raises(OSError) as info:
        await task.setrlimit(RLIMIT.NOFILE, await thread.ptr(Rlimit(10, 5)))
    assert info.value.errno == errno.EINVAL
    # A failed call gives its output pointer back.
    ptr = await thread.malloc(Rlimit)
    with pytest.raises(ValueError):
        await task.getrlimit(99, ptr)  # type: ignore[arg-type]
    assert not ptr.consumed
    with pytest.raises(ValueError):
        await task.prlimit(99, None, ptr)  # type: ignore[call-overload]
    assert not ptr.consumed
    filled = await task.getrlimit(RLIMIT.NOFILE, ptr)
    with pytest.raises(UseAfterConsumeError):
        await task.getrlimit(RLIMIT.NOFILE, ptr)
    # Pointers to anything but an Rlimit are refused before the syscall.
    with pytest.raises(TypeError):
        await task.getrlimit(RLIMIT.NOFILE, await thread.malloc(bytes, 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setrlimit(RLIMIT.NOFILE, await thread.ptr(b"\0" * 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setrlimit(RLIMIT.NOFILE, await thread.malloc(Rlimit))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setrlimit(RLIMIT.NOFILE, Rlimit(1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.getrlimit("nofile", await thread.malloc(Rlimit))  # type: ignore[arg-type]
    first, _ = filled.split(8)
    with pytest.raises(UseAfterConsumeError):
        await task.setrlimit(RLIMIT.NOFILE, filled)
    del first
    await still_works(thread)


def test_rlimit_checks_values() -> None:
    with pytest.raises(ValueError):
        Rlimit(-1, 0)
    with pytest.raises(ValueError):
        Rlimit(0, RLIM_INFINITY + 1)
    with pytest.raises(TypeError):
        Rlimit("1", 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Rlimit(True, 2)
    with pytest.raises(ValueError):
        Rlimit.from_bytes(b"\0" * 15)
    assert Rlimit.sizeof() == 16


@given(st.integers(0, RLIM_INFINITY), st.integers(0, RLIM_INFINITY))
def test_rlimit_round_trip(cur: int, max_: int) -> None:
    limits = Rlimit(cur, max_)
    data = limits.to_bytes()
    assert len(data) == Rlimit.sizeof()
    assert Rlimit.from_bytes(data) == limits
    assert Rlimit.from_bytes(data).to_bytes() == data


@given(st.binary(min_size=16, max_size=16))
def test_rlimit_bytes_round_trip(data: bytes) -> None:
    assert Rlimit.from_bytes(data).to_bytes() == data
