"""User and group ids (rsyscall.unistd: setuid, setresuid, getresuid,
getgroups...; rsyscall.grp: setgroups), changed only in children of the
thread of the test and checked against /proc.  The thread's own ids
never change.

Two kinds of child: one in our user namespace, where we are root and may
take any ids; and one in a new user namespace, where the library maps
only our own uid and gid (one id each) and has written "deny" to its
/proc/pid/setgroups, as an unprivileged process must before writing a
gid_map, so setgroups is refused there for good."""

from __future__ import annotations

import errno
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import UseAfterConsumeError, local_thread
from rsyscall.sched import CLONE
from rsyscall.thread import Thread
from rsyscall.unistd import GidList, ResIds

from .util import thread_pid

pytestmark = pytest.mark.anyio

IDS = st.integers(0, 2**32 - 1)


# ---- the types ----


@given(st.lists(IDS, max_size=100))
def test_gidlist_roundtrip(gids: list[int]) -> None:
    gid_list = GidList(gids)
    data = gid_list.to_bytes()
    assert len(data) == 4 * len(gids)
    assert GidList.from_bytes(data) == gid_list == tuple(gids)
    assert data == b"".join(gid.to_bytes(4, "little") for gid in gids)


@given(IDS, IDS, IDS)
def test_resids_roundtrip(real: int, effective: int, saved: int) -> None:
    ids = ResIds(real, effective, saved)
    data = ids.to_bytes()
    assert len(data) == ResIds.sizeof() == 12
    assert ResIds.from_bytes(data) == ids
    assert data == b"".join(n.to_bytes(4, "little") for n in (real, effective, saved))


def test_type_checks() -> None:
    assert GidList() == ()
    assert repr(GidList([5, 1])) == "GidList([5, 1])"
    for bad in (-1, 2**32):
        with pytest.raises(ValueError):
            GidList([bad])
        with pytest.raises(ValueError):
            ResIds(0, bad, 0)
    for wrong in ("0", 1.0, True, None):
        with pytest.raises(TypeError):
            GidList([wrong])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            ResIds(wrong, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        GidList(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        GidList("123")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        GidList.from_bytes(b"\0" * 5)
    with pytest.raises(ValueError):
        ResIds.from_bytes(b"\0" * 11)
    with pytest.raises(AttributeError):
        ResIds(0, 0, 0).real = 1  # type: ignore[misc]


# ---- helpers ----


async def resuid(thread: Thread) -> ResIds:
    ids = await thread.malloc(ResIds)
    result = await thread.task.getresuid(ids)
    assert ids.consumed
    return await result.read()


async def resgid(thread: Thread) -> ResIds:
    return await (await thread.task.getresgid(await thread.malloc(ResIds))).read()


async def groups(thread: Thread) -> GidList:
    count = await thread.task.getgroups(None)
    valid, rest = await thread.task.getgroups(await thread.malloc(GidList, 4 * (count + 2)))
    assert valid.size() == 4 * count and rest.size() == 8
    return await valid.read()


def proc_status(pid: int, field: str) -> list[int]:
    """The numbers of a line of /proc/pid/status, such as Uid: real, effective, saved, fs."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, values = line.partition(":")
            if name == field:
                return [int(value) for value in values.split()]
    raise KeyError(field)


def own_ids(thread: Thread) -> tuple[list[int], list[int], list[int]]:
    """The thread's uids, gids and groups, from /proc."""
    pid = thread_pid(thread)
    return proc_status(pid, "Uid"), proc_status(pid, "Gid"), proc_status(pid, "Groups")


# ---- reading ids ----


async def test_getres_match_os(thread: Thread) -> None:
    uids = await resuid(thread)
    gids = await resgid(thread)
    proc_uids, proc_gids, proc_groups = own_ids(thread)
    assert [uids.real, uids.effective, uids.saved] == proc_uids[:3]
    assert [gids.real, gids.effective, gids.saved] == proc_gids[:3]
    assert sorted(await groups(thread)) == sorted(proc_groups)
    assert await thread.task.getgroups(None) == len(proc_groups)
    if thread is local_thread:
        assert (uids.real, uids.effective, uids.saved) == os.getresuid()
        assert (gids.real, gids.effective, gids.saved) == os.getresgid()
        assert list(await groups(thread)) == os.getgroups()
        assert await thread.task.getgroups(None) == len(os.getgroups())


# ---- a child in our user namespace: we are root ----


async def test_setresuid_and_setgroups_as_root(thread: Thread) -> None:
    ours = own_ids(thread)
    child = await thread.clone()
    task = child.task
    pid = child.process.process.pid
    # Groups first: dropping uid 0 takes the privilege to change them.
    await task.setgroups(await child.ptr(GidList([1000, 2000, 3000])))
    assert await groups(child) == GidList([1000, 2000, 3000])
    assert proc_status(pid, "Groups") == [1000, 2000, 3000]
    await task.setresgid(1001, 1002, 1003)
    assert await resgid(child) == ResIds(1001, 1002, 1003)
    assert proc_status(pid, "Gid") == [1001, 1002, 1003, 1002]  # fs gid follows effective
    await task.setresuid(2001, 2002, 2003)
    assert await resuid(child) == ResIds(2001, 2002, 2003)
    assert proc_status(pid, "Uid") == [2001, 2002, 2003, 2002]
    # -1 leaves an id as it was; unprivileged, ids can only be swapped among the three.
    await task.setresuid(-1, 2001, -1)
    assert await resuid(child) == ResIds(2001, 2001, 2003)
    with pytest.raises(PermissionError):
        await task.setresuid(0, 0, 0)
    with pytest.raises(PermissionError):
        await task.setgroups(await child.ptr(GidList([0])))
    assert await groups(child) == GidList([1000, 2000, 3000])
    await task.setuid(2003)  # unprivileged setuid sets only the effective id
    assert await resuid(child) == ResIds(2001, 2003, 2003)
    assert own_ids(thread) == ours
    await child.exit(0)


async def test_setuid_setgid_as_root_set_all_three(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    await task.setgroups(None)  # clears them
    assert await task.getgroups(None) == 0
    await task.setgid(4321)
    assert await resgid(child) == ResIds(4321, 4321, 4321)
    await task.setuid(1234)
    assert await resuid(child) == ResIds(1234, 1234, 1234)
    # Gone for good: the saved id is no longer 0 either.
    with pytest.raises(PermissionError):
        await task.setuid(0)
    assert own_ids(thread)[0][:3] != [1234, 1234, 1234]
    await child.exit(0)


async def test_setgroups_accepts_what_getgroups_filled(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    await task.setgroups(await child.ptr(GidList([7, 8])))
    valid, _ = await task.getgroups(await child.malloc(GidList, 64))
    await task.setgroups(await child.ptr(GidList()))  # empty
    assert await groups(child) == GidList()
    await task.setgroups(valid)  # the part getgroups filled, passed back
    assert await groups(child) == GidList([7, 8])
    await child.exit(0)


# ---- a child in a new user namespace: only our ids are mapped ----


async def test_ids_in_a_new_user_namespace(thread: Thread) -> None:
    uid, gid = proc_status(thread_pid(thread), "Uid")[1], proc_status(thread_pid(thread), "Gid")[1]
    child = await thread.clone(CLONE.NEWUSER)
    task = child.task
    pid = child.process.process.pid
    with open(f"/proc/{pid}/uid_map") as uid_map:
        assert uid_map.read().split() == [str(uid), str(uid), "1"]
    with open(f"/proc/{pid}/setgroups") as setgroups:
        assert setgroups.read() == "deny\n"
    assert await resuid(child) == ResIds(uid, uid, uid)
    assert await resgid(child) == ResIds(gid, gid, gid)
    # The one mapped id may be set; any other is invalid in this namespace.
    await task.setresuid(uid, uid, uid)
    await task.setresgid(-1, -1, -1)
    await task.setuid(uid)
    await task.setgid(gid)
    unmapped = uid + 1
    with pytest.raises(OSError) as info:
        await task.setuid(unmapped)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.setresgid(-1, gid + 1, -1)
    assert info.value.errno == errno.EINVAL
    # setgroups is denied for good in this namespace, even to clear the list.
    with pytest.raises(PermissionError):
        await task.setgroups(await child.ptr(GidList([gid])))
    with pytest.raises(PermissionError):
        await task.setgroups(None)
    assert await resuid(child) == ResIds(uid, uid, uid)
    await child.exit(0)


# ---- errors ----


async def test_id_errors(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    for call in (task.setuid, task.setgid):
        with pytest.raises(ValueError):
            await call(2**32)  # would be 0 after the kernel's truncation
        with pytest.raises(ValueError):
            await call(-1)
        with pytest.raises(TypeError):
            await call("0")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await call(True)
    with pytest.raises(OSError) as info:
        await task.setuid(2**32 - 1)  # (uid_t)-1 is no uid
    assert info.value.errno == errno.EINVAL
    for set_res in (task.setresuid, task.setresgid):
        with pytest.raises(ValueError):
            await set_res(-2, 0, 0)
        with pytest.raises(ValueError):
            await set_res(0, 0, 2**32)
        with pytest.raises(TypeError):
            await set_res(0, None, 0)  # type: ignore[arg-type]
    # getgroups: too little room is EINVAL, and the buffer is not consumed.
    await task.setgroups(await child.ptr(GidList([1, 2, 3])))
    small = await child.malloc(GidList, 8)
    with pytest.raises(OSError) as info:
        await task.getgroups(small)
    assert info.value.errno == errno.EINVAL
    assert not small.consumed
    with pytest.raises(ValueError):  # size 0 would only count: pass None for that
        await task.getgroups(await child.malloc(GidList, 3))
    # setgroups: typed pointers only, whole gids only.
    with pytest.raises(TypeError):
        await task.setgroups([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setgroups(await child.ptr(b"\1\0\0\0"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setgroups(await child.malloc(GidList, 4))  # type: ignore[arg-type]
    part, _ = (await child.ptr(GidList([1, 2]))).split(6)
    with pytest.raises(ValueError):
        await task.setgroups(part)
    # Consumed pointers.
    ids = await child.malloc(ResIds)
    await task.getresuid(ids)
    with pytest.raises(UseAfterConsumeError):
        await task.getresuid(ids)
    with pytest.raises(UseAfterConsumeError):
        await task.getresgid(ids)
    gid_list = await child.ptr(GidList([5]))
    gid_list.split(0)
    with pytest.raises(UseAfterConsumeError):
        await task.setgroups(gid_list)
    with pytest.raises(ValueError):
        await task.getresuid(await child.malloc(bytes, 8))  # type: ignore[arg-type]
    # Still works.
    assert await groups(child) == GidList([1, 2, 3])
    await task.setresuid(0, 0, 0)
    await child.exit(0)
