"""rsyscall.linux.capability: capget on the thread of the test and on its
children, capset in a child of its own user namespace, checked against
/proc/pid/status; and the structs' byte layouts.  The thread's own
capabilities are only read."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import UseAfterConsumeError
from rsyscall.linux.capability import (
    _LINUX_CAPABILITY_VERSION_3,
    CAP,
    CAP_LAST_CAP,
    CapSet,
    CapUserData,
    CapUserHeader,
)
from rsyscall.sched import CLONE
from rsyscall.sys.mount import MS
from rsyscall.thread import Thread

from .util import thread_pid

pytestmark = pytest.mark.anyio

CAPS = st.frozensets(st.integers(0, 63))
U32 = st.integers(0, 2**32 - 1)


# ---- the types ----


@given(CAPS, CAPS, CAPS)
def test_capset_roundtrip(
    effective: frozenset[int], permitted: frozenset[int], inheritable: frozenset[int]
) -> None:
    caps = CapSet(effective, permitted, inheritable)
    assert (caps.effective, caps.permitted, caps.inheritable) == (
        effective, permitted, inheritable)
    data = caps.to_bytes()
    assert len(data) == CapSet.sizeof() == 2 * CapUserData.sizeof() == 24
    assert CapSet.from_bytes(data) == caps
    # The C array: data[0] holds capabilities 0..31, data[1] 32..63, each
    # as (effective, permitted, inheritable).
    masks = [sum(1 << cap for cap in caps) for caps in (effective, permitted, inheritable)]
    low, high = caps.to_data()
    assert low == CapUserData(*(mask & 0xFFFFFFFF for mask in masks))
    assert high == CapUserData(*(mask >> 32 for mask in masks))
    assert data == low.to_bytes() + high.to_bytes()
    assert CapSet.from_data(low, high) == caps
    assert caps.bits() == tuple(masks)
    assert CapSet.from_bits(*masks) == caps


@given(U32, U32, U32)
def test_cap_user_data_roundtrip(effective: int, permitted: int, inheritable: int) -> None:
    data = CapUserData(effective, permitted, inheritable)
    raw = data.to_bytes()
    assert raw == b"".join(n.to_bytes(4, "little") for n in (effective, permitted, inheritable))
    assert CapUserData.from_bytes(raw) == data


@given(U32, st.integers(-(2**31), 2**31 - 1))
def test_cap_user_header_roundtrip(version: int, pid: int) -> None:
    header = CapUserHeader(version, pid)
    raw = header.to_bytes()
    assert raw == version.to_bytes(4, "little") + pid.to_bytes(4, "little", signed=True)
    assert CapUserHeader.from_bytes(raw) == header


def test_type_checks() -> None:
    assert CapUserHeader() == CapUserHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    assert CAP_LAST_CAP == max(CAP)
    caps = CapSet([CAP.SYS_ADMIN, 50], permitted=[CAP.CHOWN])
    # Named capabilities come back as CAP, unnamed ones as ints.
    assert caps.effective == {CAP.SYS_ADMIN, 50}
    assert all(type(cap) is CAP for cap in CapSet.from_bits(0xFF, 0, 0).effective)
    assert repr(caps) == (
        "CapSet(effective={CAP.SYS_ADMIN, 50}, permitted={CAP.CHOWN}, inheritable=set())"
    )
    assert caps == CapSet(effective={50, 21}, permitted={0})
    assert hash(caps) == hash(CapSet(effective={50, 21}, permitted={0}))
    assert caps != CapSet()
    with pytest.raises(AttributeError):
        caps.effective = frozenset()
    for bad in (-1, 64):
        with pytest.raises(ValueError):
            CapSet([bad])
    for wrong in ("CHOWN", 1.0, True, None):
        with pytest.raises(TypeError):
            CapSet([wrong])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        CapSet(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CapSet.from_bits(1 << 64, 0, 0)
    with pytest.raises(ValueError):
        CapSet.from_bytes(b"\0" * 23)
    with pytest.raises(ValueError):
        CapUserData(1 << 32, 0, 0)
    with pytest.raises(ValueError):
        CapUserHeader(pid=2**31)
    with pytest.raises(TypeError):
        CapUserHeader(pid="0")  # type: ignore[arg-type]


# ---- helpers ----


def status_caps(pid: int) -> CapSet:
    """A process's sets, as /proc/pid/status shows them (in hex)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return CapSet.from_bits(
        int(fields["CapEff"], 16), int(fields["CapPrm"], 16), int(fields["CapInh"], 16)
    )


async def capget(thread: Thread) -> CapSet:
    data = await thread.malloc(CapSet)
    result = await thread.task.capget(await thread.ptr(CapUserHeader()), data)
    assert data.consumed
    return await result.read()


def all_caps() -> frozenset[CAP | int]:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return CapSet(range(last + 1)).effective


# ---- capget ----


async def test_capget_of_the_thread(thread: Thread) -> None:
    caps = await capget(thread)
    assert caps == status_caps(thread_pid(thread))
    # By pid too, as a Process.
    me = thread.task.process
    data = await me.capget(await thread.ptr(CapUserHeader(pid=me.pid)),
                           await thread.malloc(CapSet))
    assert await data.read() == caps


async def test_capget_in_a_new_user_namespace(thread: Thread) -> None:
    child = await thread.clone(CLONE.NEWUSER)
    pid = child.process.process.pid
    # Every capability, over the new namespace.
    caps = await capget(child)
    assert caps.effective == caps.permitted == all_caps()
    assert caps.inheritable == frozenset()
    assert caps == status_caps(pid)
    # The same, asked from outside by pid.
    process = child.process.process
    outside = await process.capget(await thread.ptr(CapUserHeader(pid=pid)),
                                   await thread.malloc(CapSet))
    assert await outside.read() == caps
    await child.exit(0)


async def test_capset_drops_a_capability(thread: Thread) -> None:
    ours = status_caps(thread_pid(thread))
    child = await thread.clone(CLONE.NEWUSER | CLONE.NEWNS)
    task = child.task
    pid = child.process.process.pid
    header = await child.ptr(CapUserHeader())
    before = await capget(child)
    assert CAP.SYS_ADMIN in before.effective
    fewer = CapSet(
        before.effective - {CAP.SYS_ADMIN}, before.permitted - {CAP.SYS_ADMIN}, before.inheritable
    )
    await task.capset(header, await child.ptr(fewer))
    after = await capget(child)
    assert after == fewer
    assert CAP.SYS_ADMIN not in after.effective | after.permitted
    assert status_caps(pid) == fewer
    # And it is gone in deed: mounting takes CAP_SYS_ADMIN.
    with pytest.raises(PermissionError):
        await task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)
    # A permitted capability cannot come back, nor can effective exceed permitted.
    with pytest.raises(PermissionError):
        await task.capset(header, await child.ptr(before))
    with pytest.raises(PermissionError):
        await task.capset(
            header, await child.ptr(CapSet(fewer.permitted | {CAP.SYS_ADMIN}, fewer.permitted))
        )
    assert await capget(child) == fewer
    # Dropping from effective alone, and raising it back from permitted.
    quiet = CapSet(fewer.effective - {CAP.KILL}, fewer.permitted)
    await task.capset(header, await child.ptr(quiet))
    assert CAP.KILL not in (await capget(child)).effective
    # A pointer capget filled can be passed straight back.
    filled = await task.capget(header, await child.malloc(CapSet))
    await task.capset(header, await child.ptr(fewer))
    assert CAP.KILL in (await capget(child)).effective
    await task.capset(header, filled)
    assert await capget(child) == quiet
    assert status_caps(thread_pid(thread)) == ours
    await child.exit(0)


# ---- errors ----


@pytest.fixture
def gone_pid() -> int:
    """The pid of a process that was reaped."""
    popen = subprocess.Popen(["true"])
    popen.wait()
    return popen.pid


async def test_capability_errors(thread: Thread, gone_pid: int) -> None:
    child = await thread.clone(CLONE.NEWUSER)
    task = child.task
    header = await child.ptr(CapUserHeader())
    data = await child.malloc(CapSet)
    # The header must say version 3, and the pid its method means.
    with pytest.raises(ValueError):
        await task.capget(await child.ptr(CapUserHeader(0x19980330)), data)
    with pytest.raises(ValueError):
        await task.capget(await child.ptr(CapUserHeader(pid=os.getpid())), data)
    with pytest.raises(ValueError):
        await task.capset(await child.ptr(CapUserHeader(pid=1)), await child.ptr(CapSet()))
    process = child.process.process
    with pytest.raises(ValueError):
        await process.capget(header, data)  # pid 0 is not this process's
    assert not data.consumed
    with pytest.raises(TypeError):
        await task.capget(CapUserHeader(), data)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # the header's value must be known
        await task.capget(await child.malloc(CapUserHeader), data)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.capget(header, await child.malloc(bytes, 24))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.capset(header, await child.ptr(b"\0" * 24))  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # uninitialized
        await task.capset(header, await child.malloc(CapSet))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.capset(header, CapSet())  # type: ignore[arg-type]
    # The kernel's errors.
    gone = thread.task.make_process(gone_pid)
    with pytest.raises(OSError) as info:
        await gone.capget(await thread.ptr(CapUserHeader(pid=gone_pid)),
                          await thread.malloc(CapSet))
    assert info.value.errno == errno.ESRCH
    with pytest.raises(PermissionError):  # effective beyond permitted
        await task.capset(header, await child.ptr(CapSet([CAP.CHOWN])))
    # Bits beyond the kernel's last capability are ignored, not refused.
    full = all_caps()
    await task.capset(header, await child.ptr(CapSet(full | {63}, full | {63})))
    assert await capget(child) == CapSet(full, full)
    # Consumed pointers.
    used = await child.malloc(CapSet)
    await task.capget(header, used)
    with pytest.raises(UseAfterConsumeError):
        await task.capget(header, used)
    consumed_header = await child.ptr(CapUserHeader())
    consumed_header.split(0)
    with pytest.raises(UseAfterConsumeError):
        await task.capget(consumed_header, await child.malloc(CapSet))
    # Still works.
    assert (await capget(child)).effective == all_caps()
    assert await (await task.capget(header, data)).read() == await capget(child)
    await child.exit(0)
