"""rsyscall.sched: the typed clone3(2), `Task.clone3` with a `CloneArgs` of
pointers and handles, on every kind of thread: the child it returns, its
pidfd, its namespaces, set_tid, a cgroup, and the errors."""

from __future__ import annotations

import gc
import os
import time

import pytest

from rsyscall import FileDescriptor, Thread, UseAfterConsumeError
from rsyscall.fcntl import O
from rsyscall.handle import ChildProcess
from rsyscall.monitor import AsyncChildProcess
from rsyscall.sched import CLONE, CLONE3_MIN_STACK, CloneArgs, PidList
from rsyscall.signal import SIG
from rsyscall.struct import Int32

from .util import fd_path, settle, thread_fds, thread_pid

pytestmark = pytest.mark.anyio

STACK = 16 * 1024


def status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as lines:
        return dict(line.rstrip("\n").split(":\t", 1) for line in lines if ":\t" in line)


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def wait_until(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def clone3(
    thread: Thread, flags: CLONE = CLONE.NONE, **kwargs: object
) -> tuple[ChildProcess, CloneArgs]:
    pidfd = await thread.malloc(Int32)
    stack = await thread.malloc(bytes, STACK)
    value = CloneArgs(flags, pidfd, stack, **kwargs)  # type: ignore[arg-type]
    process = await thread.task.clone3(await thread.ptr(value))
    return process, value


async def test_clone3_makes_a_waiting_child(thread: Thread) -> None:
    process, value = await clone3(thread)
    assert isinstance(process, ChildProcess)
    # The pidfd and the stack were consumed: the kernel wrote the one, the
    # child runs on the other.
    assert value.pidfd.consumed and value.stack.consumed
    assert value.flags & CLONE.PIDFD and value.flags & CLONE.CLEAR_SIGHAND
    pid = process.pid
    assert process.pidfd is not None
    assert os.readlink(fd_path(thread, process.pidfd)) == "anon_inode:[pidfd]"
    assert status(pid)["PPid"] == str(thread_pid(thread))
    # It waits, asleep, for as long as it lives.
    wait_until(lambda: state(pid) == "S")
    time.sleep(0.05)
    assert state(pid) == "S"
    # A ChildProcess like any other: signal it and reap it.
    child = AsyncChildProcess(process, thread)
    await process.kill(0)
    await child.kill(SIG.TERM)
    assert (await child.waitpid()).killed_with() == SIG.TERM
    assert not os.path.exists(f"/proc/{pid}")


async def test_clone3_shared_memory_and_fds(thread: Thread) -> None:
    """With CLONE.VM | CLONE.FILES the child runs on our memory (its stack
    is kept until it is gone) and shares our fd table."""
    process, _ = await clone3(thread, CLONE.VM | CLONE.FILES, exit_signal=None)
    pid = process.pid
    wait_until(lambda: state(pid) == "S")
    # The same memory: the same mm, so the same VmRSS accounting; check
    # the simple thing, the mapping of our stack is in its maps.
    with open(f"/proc/{pid}/maps") as theirs, open(f"/proc/{thread_pid(thread)}/maps") as ours:
        assert theirs.read() == ours.read()
    assert process.pidfd is not None
    await process.pidfd.pidfd_send_signal(SIG.KILL)
    state_ = await AsyncChildProcess(process, thread).waitpid()
    assert state_.killed_with() == SIG.KILL


async def test_clone3_new_namespaces_and_set_tid(thread: Thread) -> None:
    """A child in new user, uts and pid namespaces, as pid 1 of the new
    one (set_tid): the namespace lives while it does."""
    pids = await thread.ptr(PidList([1]))
    process, _ = await clone3(
        thread, CLONE.NEWUSER | CLONE.NEWUTS | CLONE.NEWPID, set_tid=pids
    )
    pid = process.pid
    nspid = status(pid)["NSpid"].split()
    assert len(nspid) >= 2 and nspid[0] == str(pid) and nspid[-1] == "1"
    ours = os.readlink(f"/proc/{thread_pid(thread)}/ns/uts")
    assert os.readlink(f"/proc/{pid}/ns/uts") != ours
    assert not pids.consumed  # only read
    assert await pids.read() == [1]
    child = AsyncChildProcess(process, thread)
    await child.kill(SIG.KILL)
    assert (await child.waitpid()).killed_with() == SIG.KILL


async def test_clone3_into_a_cgroup(thread: Thread) -> None:
    """As root, on cgroup v2: the child starts in the cgroup `cgroup` names."""
    with open("/proc/self/mounts") as mounts:
        found = [line.split()[1] for line in mounts if line.split()[2] == "cgroup2"]
    if not found:
        pytest.skip("no cgroup v2 hierarchy")
    base = found[0]
    path = f"{base}/rsyscall-clone3-{os.getpid()}-{thread_pid(thread)}"
    try:
        os.mkdir(path)
    except OSError as error:
        pytest.skip(f"cannot make a cgroup: {error}")
    try:
        cgroup = await thread.task.open(await thread.ptr(path), O.PATH | O.DIRECTORY)
        try:
            process, value = await clone3(thread, cgroup=cgroup)
        except PermissionError as error:  # a delegation we may not write to
            pytest.skip(f"cannot clone into a cgroup: {error}")
        assert value.flags & CLONE.INTO_CGROUP
        with open(f"/proc/{process.pid}/cgroup") as lines:
            assert lines.read().strip().endswith(path[len(base):])
        child = AsyncChildProcess(process, thread)
        await child.kill(SIG.KILL)
        await child.waitpid()
        await cgroup.close()
    finally:
        wait_until(lambda: not open(f"{path}/cgroup.procs").read())
        os.rmdir(path)


async def test_clone3_child_is_killed_when_dropped(thread: Thread) -> None:
    process, _ = await clone3(thread)
    pid = process.pid
    wait_until(lambda: state(pid) == "S")
    del process
    gc.collect()
    await settle(thread)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"))


async def test_clone3_bad_input(thread: Thread) -> None:
    # Warm up: the first wait makes the thread's epoll instance.
    process, _ = await clone3(thread)
    await AsyncChildProcess(process, thread).kill(SIG.KILL)
    await AsyncChildProcess(process, thread).waitpid()
    del process
    before = await thread_fds(thread)
    pidfd = await thread.malloc(Int32)
    stack = await thread.malloc(bytes, STACK)
    for flags in (CLONE.THREAD | CLONE.SIGHAND | CLONE.VM, CLONE.VFORK, CLONE.PARENT,
                  CLONE.SETTLS, CLONE.CHILD_CLEARTID, CLONE.PARENT_SETTID):
        with pytest.raises(ValueError, match="unsafe_clone3"):
            CloneArgs(flags, pidfd, stack)
    with pytest.raises(ValueError, match="cgroup"):
        CloneArgs(CLONE.INTO_CGROUP, pidfd, stack)
    with pytest.raises(TypeError):
        CloneArgs(SIG.CHLD, pidfd, stack)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloneArgs(CLONE.NONE, await thread.malloc(bytes, 4), stack)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloneArgs(CLONE.NONE, 0x1000, stack)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloneArgs(CLONE.NONE, pidfd, 0x1000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too small"):
        CloneArgs(CLONE.NONE, pidfd, await thread.malloc(bytes, CLONE3_MIN_STACK - 1))
    with pytest.raises(TypeError):
        CloneArgs(CLONE.NONE, pidfd, stack, exit_signal=17)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloneArgs(CLONE.NONE, pidfd, stack, set_tid=[1])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloneArgs(CLONE.NONE, pidfd, stack, cgroup=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PidList([0])
    with pytest.raises(TypeError):
        await thread.task.clone3(await thread.malloc(CloneArgs))  # type: ignore[arg-type]
    # A kernel error (a new pid namespace's first pid must be 1): nothing
    # is consumed, nothing left open, and the same pointers work after.
    value = CloneArgs(CLONE.NEWUSER | CLONE.NEWPID, pidfd, stack,
                      set_tid=await thread.ptr(PidList([5])))
    with pytest.raises(OSError):
        await thread.task.clone3(await thread.ptr(value))
    assert not pidfd.consumed and not stack.consumed
    args = await thread.ptr(CloneArgs(CLONE.NONE, pidfd, stack))
    process = await thread.task.clone3(args)
    # The same args again: their pidfd and stack are spent.
    with pytest.raises(UseAfterConsumeError):
        await thread.task.clone3(args)
    child = AsyncChildProcess(process, thread)
    await child.kill(SIG.KILL)
    await child.waitpid()
    del process, child, args, value
    assert await thread_fds(thread) == before
    assert await thread.task.getpid() == thread.task.pid


def test_clone3_is_the_typed_one() -> None:
    import inspect

    from rsyscall import Task

    hints = inspect.signature(Task.clone3).parameters["args"].annotation
    assert "CloneArgs" in str(hints)
    assert isinstance(FileDescriptor, type)
