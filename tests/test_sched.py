"""rsyscall.sched: sched_yield, and CPU affinity on Task and Process compared
with os.sched_getaffinity; CpuSet's byte layout."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import Thread, UseAfterConsumeError, local_thread
from rsyscall.handle import Process
from rsyscall.sched import CPU_SETSIZE, CpuSet
from rsyscall.time import Timespec

from .util import thread_pid

pytestmark = pytest.mark.anyio

CPUS = st.frozensets(st.integers(0, CPU_SETSIZE - 1))


@given(CPUS)
def test_cpuset_bytes_roundtrip(cpus: frozenset[int]) -> None:
    cpuset = CpuSet(cpus)
    data = cpuset.to_bytes()
    assert len(data) == CpuSet.sizeof() == 128
    assert CpuSet.from_bytes(data) == cpuset == cpus
    # Bit n of the mask is CPU n.
    assert int.from_bytes(data, "little") == sum(1 << cpu for cpu in cpus)


@given(st.frozensets(st.integers(0, 63)))
def test_cpuset_reads_a_short_mask(cpus: frozenset[int]) -> None:
    # The kernel writes only its own mask's size, as small as one long.
    assert CpuSet.from_bytes(CpuSet(cpus).to_bytes()[:8]) == cpus


def test_cpuset_values() -> None:
    assert CpuSet() == frozenset()
    assert CpuSet([3, 1, 3]) == frozenset({1, 3})
    assert CpuSet([2]) == {2}  # type: ignore[comparison-overlap]  # equal to a set too
    assert repr(CpuSet([3, 1])) == "CpuSet([1, 3])"
    assert CpuSet([0]).to_bytes() == b"\1" + b"\0" * 127
    assert CpuSet([9]).to_bytes()[:2] == b"\0\2"
    assert CpuSet.from_bytes(b"") == CpuSet()
    for bad in (-1, CPU_SETSIZE):
        with pytest.raises(ValueError):
            CpuSet([bad])
    for wrong in ("0", 1.0, True, None):
        with pytest.raises(TypeError):
            CpuSet([wrong])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        CpuSet(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CpuSet.from_bytes(b"\0" * 128 + b"\1")  # CPU 1024


def os_affinity(pid: int = 0) -> frozenset[int]:
    # A frozenset, as CpuSet is: mypy sees a set and a frozenset as never equal.
    return frozenset(os.sched_getaffinity(pid))


def affinity_of(thread: Thread) -> frozenset[int]:
    """The CPUs of the thread's OS thread, as the stdlib sees them."""
    return os_affinity(0 if thread is local_thread else thread_pid(thread))


@pytest.fixture
def affinity(thread: Thread) -> Iterator[frozenset[int]]:
    """The thread's CPUs, put back afterwards (another thread's go with it)."""
    original = affinity_of(thread)
    yield original
    if thread is local_thread:
        os.sched_setaffinity(0, original)
        assert os_affinity() == original


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    popen = subprocess.Popen(["sleep", "100"])
    yield popen
    popen.kill()
    popen.wait()


async def get_affinity(thread: Thread, target: object = None) -> CpuSet:
    mask = await thread.malloc(CpuSet)
    if isinstance(target, Process):
        valid, rest = await target.sched_getaffinity(mask)
    else:
        valid, rest = await thread.task.sched_getaffinity(mask)
    assert mask.consumed
    # The kernel writes whole longs, and not more than we gave it.
    assert valid.size() % 8 == 0
    assert 0 < valid.size() <= 128
    assert valid.size() + rest.size() == 128
    return await valid.read()


async def test_sched_yield(thread: Thread) -> None:
    for _ in range(10):
        await thread.task.sched_yield()


async def test_getaffinity_matches_os(thread: Thread) -> None:
    assert await get_affinity(thread) == affinity_of(thread)
    me = thread.task.process
    assert await get_affinity(thread, me) == os_affinity(thread_pid(thread))


async def test_setaffinity_and_restore(thread: Thread, affinity: frozenset[int]) -> None:
    task = thread.task
    mask = await thread.malloc(CpuSet)
    saved, rest = await task.sched_getaffinity(mask)
    one = min(affinity)
    try:
        await task.sched_setaffinity(await thread.ptr(CpuSet([one])))
        assert affinity_of(thread) == frozenset({one})
        assert await get_affinity(thread) == frozenset({one})
    finally:
        # The part sched_getaffinity filled can be passed straight back.
        await task.sched_setaffinity(saved)
    assert affinity_of(thread) == affinity
    # And the whole buffer is reusable.
    await task.sched_getaffinity(saved + rest)


async def test_process_setaffinity(thread: Thread, affinity: frozenset[int]) -> None:
    me = thread.task.process
    one = max(affinity)
    try:
        await me.sched_setaffinity(await thread.ptr(CpuSet([one])))
        assert affinity_of(thread) == frozenset({one})
        assert await get_affinity(thread, me) == frozenset({one})
    finally:
        await me.sched_setaffinity(await thread.ptr(CpuSet(affinity)))
    assert affinity_of(thread) == affinity


async def test_affinity_of_another_process(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    process = Process(thread.task, child.pid)
    assert await get_affinity(thread, process) == os_affinity(child.pid)
    one = min(os_affinity(child.pid))
    await process.sched_setaffinity(await thread.ptr(CpuSet([one])))
    assert os_affinity(child.pid) == frozenset({one})
    assert await get_affinity(thread, process) == frozenset({one})
    # Ours did not change.
    assert affinity_of(thread) != frozenset({one}) or len(affinity_of(thread)) == 1


async def still_works(thread: Thread) -> None:
    assert await get_affinity(thread) == affinity_of(thread)


async def test_bad_arguments(
    thread: Thread, affinity: frozenset[int], child: subprocess.Popen[bytes]
) -> None:
    task = thread.task
    # Wrong pointer types.
    with pytest.raises(TypeError):
        await task.sched_getaffinity(await thread.malloc(bytes, 128))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sched_getaffinity(await thread.malloc(Timespec))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sched_getaffinity(CpuSet())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sched_setaffinity(await thread.malloc(CpuSet))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sched_setaffinity(CpuSet([0]))  # type: ignore[arg-type]
    # Too small for even one long.
    short, _ = (await thread.malloc(CpuSet)).split(4)
    with pytest.raises(ValueError):
        await task.sched_getaffinity(short)
    # Not whole longs: the kernel says EINVAL, and the pointer is given back.
    odd, _ = (await thread.malloc(CpuSet)).split(12)
    with pytest.raises(OSError) as info:
        await task.sched_getaffinity(odd)
    assert info.value.errno == errno.EINVAL
    assert not odd.consumed
    # Consumed.
    mask = await thread.malloc(CpuSet)
    valid, rest = await task.sched_getaffinity(mask)
    with pytest.raises(UseAfterConsumeError):
        await task.sched_getaffinity(mask)
    whole = valid + rest
    with pytest.raises(UseAfterConsumeError):
        await task.sched_setaffinity(valid)
    del whole
    # No CPU at all, or only CPUs that do not exist: EINVAL, nothing changed.
    for cpus in (CpuSet(), CpuSet([CPU_SETSIZE - 1])):
        with pytest.raises(OSError) as info:
            await task.sched_setaffinity(await thread.ptr(cpus))
        assert info.value.errno == errno.EINVAL
    assert affinity_of(thread) == affinity
    # A process that is gone.
    child.kill()
    child.wait()
    gone = Process(thread.task, child.pid)
    with pytest.raises(OSError) as info:
        await gone.sched_getaffinity(await thread.malloc(CpuSet))
    assert info.value.errno == errno.ESRCH
    with pytest.raises(OSError) as info:
        await gone.sched_setaffinity(await thread.ptr(CpuSet([0])))
    assert info.value.errno == errno.ESRCH
    await still_works(thread)
