"""rsyscall.sys.prctl: the raw call, prctl_get for options that write
memory, and the typed methods; checked against /proc.  Anything lasting
(no_new_privs, the bounding set) is done in children of the thread of the
test; the one change to the thread itself, its name, is put back."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator

import pytest

from rsyscall import UseAfterConsumeError, local_thread
from rsyscall.linux.capability import CAP
from rsyscall.sched import CLONE
from rsyscall.signal import SIG
from rsyscall.struct import Int32, UInt64
from rsyscall.sys.prctl import OUT_SIZES, PR, PR_CAP_AMBIENT
from rsyscall.thread import Thread

from .util import read_memory, thread_pid

pytestmark = pytest.mark.anyio


def comm_path(thread: Thread) -> str:
    if thread is local_thread:
        # Local syscalls run in the thread running the event loop: this one.
        return f"/proc/self/task/{threading.get_native_id()}/comm"
    return f"/proc/{thread_pid(thread)}/comm"


def read_comm(path: str) -> bytes:
    with open(path, "rb") as comm:
        return comm.read().rstrip(b"\n")


@pytest.fixture
def our_name(thread: Thread) -> Iterator[bytes]:
    """The thread's name, put back afterwards (only a process itself may
    write its comm; another thread's name goes with it)."""
    path = comm_path(thread)
    original = read_comm(path)
    yield original
    if thread is local_thread:
        with open(path, "wb") as comm:
            comm.write(original)
        assert read_comm(path) == original


def status_field(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name == field:
                return value.strip()
    raise KeyError(field)


async def still_works(thread: Thread) -> None:
    assert await thread.task.prctl(PR.GET_DUMPABLE) in (0, 1, 2)


# ---- names ----


async def test_name_of_the_thread(thread: Thread, our_name: bytes) -> None:
    task = thread.task
    assert await task.prctl_get_name() == our_name
    await task.prctl_set_name(b"rsys-test")
    assert read_comm(comm_path(thread)) == b"rsys-test"
    assert await task.prctl_get_name() == b"rsys-test"
    await task.prctl_set_name(our_name)
    assert read_comm(comm_path(thread)) == our_name


async def test_name_of_a_child(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    pid = child.process.process.pid
    await task.prctl_set_name("worker")
    assert read_comm(f"/proc/{pid}/comm") == b"worker"
    assert await task.prctl_get_name() == b"worker"
    # At most 15 bytes are kept, silently.
    await task.prctl_set_name(b"0123456789abcdefghij")
    assert await task.prctl_get_name() == b"0123456789abcde"
    assert read_comm(f"/proc/{pid}/comm") == b"0123456789abcde"
    # The raw calls: SET_NAME reads a pointer; GET_NAME writes one, so it
    # goes through prctl_get, which consumes the buffer.
    assert await task.prctl(PR.SET_NAME, await child.ptr("raw")) == 0
    buf = await child.malloc(bytes, 16)
    name = await task.prctl_get(PR.GET_NAME, buf)
    assert buf.consumed
    assert await name.read() == b"raw".ljust(16, b"\0")
    # A bigger buffer: the result covers the 16 bytes written.
    name_str = await task.prctl_get(PR.GET_NAME, await child.malloc(str, 100))
    assert name_str.size() == 16
    assert await name_str.read() == "raw"
    assert read_comm(f"/proc/{pid}/comm") == b"raw"
    await child.exit(0)


# ---- the parent-death signal ----


async def test_pdeathsig(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    # The library gives every child thread SIGKILL, so it never outlives us.
    assert await task.prctl_get_pdeathsig() == SIG.KILL
    assert isinstance(await task.prctl_get_pdeathsig(), SIG)
    out = await task.prctl_get(PR.GET_PDEATHSIG, await child.malloc(Int32))
    assert int(await out.read()) == SIG.KILL
    await task.prctl_set_pdeathsig(SIG.TERM)
    assert await task.prctl_get_pdeathsig() == SIG.TERM
    await task.prctl_set_pdeathsig(40)  # a real-time signal, as an int
    assert await task.prctl_get_pdeathsig() == 40
    await task.prctl_set_pdeathsig(0)
    assert await task.prctl_get_pdeathsig() == 0
    with pytest.raises(OSError) as info:
        await task.prctl_set_pdeathsig(65)
    assert info.value.errno == errno.EINVAL
    assert await task.prctl_get_pdeathsig() == 0
    await child.exit(0)
    # We were made by pytest, which set none.
    assert await local_thread.task.prctl_get_pdeathsig() == 0


# ---- no_new_privs, subreaper, dumpable, timer slack ----


async def test_no_new_privs_in_a_child(thread: Thread) -> None:
    assert status_field(thread_pid(thread), "NoNewPrivs") == "0"
    child = await thread.clone()
    task = child.task
    pid = child.process.process.pid
    assert await task.prctl_get_no_new_privs() is False
    await task.prctl_set_no_new_privs()
    assert await task.prctl_get_no_new_privs() is True
    assert status_field(pid, "NoNewPrivs") == "1"
    # It cannot be unset: the raw call refuses any arg2 but 1.
    with pytest.raises(OSError) as info:
        await task.prctl(PR.SET_NO_NEW_PRIVS, 0)
    assert info.value.errno == errno.EINVAL
    assert await task.prctl(PR.GET_NO_NEW_PRIVS) == 1
    # A grandchild inherits it.
    grandchild = await child.clone()
    assert await grandchild.task.prctl_get_no_new_privs() is True
    await grandchild.exit(0)
    await child.exit(0)
    assert status_field(thread_pid(thread), "NoNewPrivs") == "0"
    assert await thread.task.prctl_get_no_new_privs() is False


async def test_child_subreaper(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    assert await task.prctl_get_child_subreaper() is False
    await task.prctl_set_child_subreaper()
    assert await task.prctl_get_child_subreaper() is True
    out = await task.prctl_get(PR.GET_CHILD_SUBREAPER, await child.malloc(Int32))
    assert await out.read() == 1
    await task.prctl_set_child_subreaper(False)
    assert await task.prctl_get_child_subreaper() is False
    with pytest.raises(TypeError):
        await task.prctl_set_child_subreaper(1)  # type: ignore[arg-type]
    await child.exit(0)


async def test_integer_options(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    # Dumpability belongs to the memory, which a child thread shares with
    # us: read it, never set it here.
    assert await task.prctl(PR.GET_DUMPABLE) == await thread.task.prctl(PR.GET_DUMPABLE)
    await task.prctl(PR.SET_TIMERSLACK, 123456)
    assert await task.prctl(PR.GET_TIMERSLACK) == 123456
    assert await task.prctl(PR.GET_KEEPCAPS) == 0
    await task.prctl(PR.SET_KEEPCAPS, 1)
    assert await task.prctl(PR.GET_KEEPCAPS) == 1
    await child.exit(0)


async def test_tid_address(thread: Thread) -> None:
    # A child gets no clear_child_tid at clone: exec is seen by EOF on its
    # connection, and the word is set (set_tid_address) only for an exec
    # from a shared fd table.  A fresh child reports none.
    child = await thread.clone()
    try:
        out = await child.task.prctl_get(PR.GET_TID_ADDRESS, await child.malloc(UInt64))
    except OSError as e:  # a kernel without CONFIG_CHECKPOINT_RESTORE
        assert e.errno == errno.EINVAL
    else:
        assert await out.read() == 0
    await child.exit(0)


# ---- capability bits through prctl ----


def status_mask(pid: int, field: str) -> int:
    return int(status_field(pid, field), 16)


async def test_bounding_and_ambient_sets(thread: Thread) -> None:
    task = thread.task
    bounding = status_mask(thread_pid(thread), "CapBnd")
    for cap in CAP:
        assert await task.prctl(PR.CAPBSET_READ, cap) == bounding >> cap & 1
    assert await task.prctl(PR.CAP_AMBIENT, PR_CAP_AMBIENT.IS_SET, CAP.CHOWN) == 0
    with pytest.raises(OSError) as info:
        await task.prctl(PR.CAPBSET_READ, 64)
    assert info.value.errno == errno.EINVAL
    # Dropping from the bounding set, in a child of its own user namespace.
    child = await thread.clone(CLONE.NEWUSER)
    pid = child.process.process.pid
    assert await child.task.prctl(PR.CAPBSET_READ, CAP.NET_RAW) == 1
    await child.task.prctl(PR.CAPBSET_DROP, CAP.NET_RAW)
    assert await child.task.prctl(PR.CAPBSET_READ, CAP.NET_RAW) == 0
    assert not status_mask(pid, "CapBnd") >> CAP.NET_RAW & 1
    assert status_mask(thread_pid(thread), "CapBnd") == bounding
    await child.exit(0)


# ---- errors ----


async def test_prctl_errors(thread: Thread) -> None:
    child = await thread.clone()
    task = child.task
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.prctl(12345)  # type: ignore[arg-type]
    await still_works(child)
    with pytest.raises(TypeError):
        await task.prctl("SET_NAME")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.prctl(PR.SET_NAME, "worker")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.prctl(PR.SET_DUMPABLE, True)
    with pytest.raises(ValueError):
        await task.prctl(PR.SET_TIMERSLACK, 1 << 64)
    with pytest.raises(TypeError):  # the kernel would read uninitialized memory
        await task.prctl(PR.SET_NAME, await child.malloc(bytes, 16))  # type: ignore[arg-type]
    # Options that write memory refuse pointers in the raw call; those that
    # only unsafe_prctl makes refuse everything.
    for option in (PR.GET_NAME, PR.GET_PDEATHSIG, PR.SCHED_CORE):
        with pytest.raises(TypeError):
            await task.prctl(option, await child.ptr(b"\0" * 16))
    for option in (PR.SET_MM, PR.SET_SECCOMP, PR.SET_SYSCALL_USER_DISPATCH):
        with pytest.raises(ValueError, match="unsafe_prctl"):
            await task.prctl(option, await child.ptr(b"\0" * 16))
    # prctl_get takes only those, and a buffer big enough, left unconsumed on error.
    with pytest.raises(ValueError):
        await task.prctl_get(PR.GET_DUMPABLE, await child.malloc(Int32))
    small = await child.malloc(bytes, 15)
    with pytest.raises(ValueError):
        await task.prctl_get(PR.GET_NAME, small)
    assert not small.consumed
    with pytest.raises(OSError) as info:  # not on x86_64
        await task.prctl_get(PR.GET_ENDIAN, small)
    assert info.value.errno == errno.EINVAL
    assert not small.consumed
    small.split(0)
    with pytest.raises(UseAfterConsumeError):
        await task.prctl_get(PR.GET_PDEATHSIG, small)
    name = await child.ptr("gone")
    name.split(1)
    with pytest.raises(UseAfterConsumeError):
        await task.prctl(PR.SET_NAME, name)
    with pytest.raises(ValueError):
        await task.prctl_set_name("a\0b")
    with pytest.raises(TypeError):
        await task.prctl_set_name(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.prctl_set_pdeathsig("KILL")  # type: ignore[arg-type]
    assert set(OUT_SIZES) >= {PR.GET_NAME, PR.GET_PDEATHSIG}
    with pytest.raises(TypeError):
        OUT_SIZES[PR.GET_DUMPABLE] = 4  # type: ignore[index]
    # Still works.
    await task.prctl_set_name("fine")
    assert await task.prctl_get_name() == b"fine"
    await child.exit(0)


# ---- addresses ----


@pytest.mark.isolated
async def test_prctl_int_address_refused(thread: Thread) -> None:
    """Regression: prctl passed any int as it was, so PR.GET_NAME with an
    int made the kernel write 16 bytes at that address (the start of a live
    object here: its refcount and type).  Now every argument the kernel
    takes as an address must be a pointer."""
    child = await thread.clone()
    task = child.task
    victim = [1, 2, 3]
    for option in (PR.GET_NAME, PR.GET_PDEATHSIG, PR.GET_TID_ADDRESS, PR.GET_CHILD_SUBREAPER):
        with pytest.raises(TypeError, match="prctl_get"):
            await task.prctl(option, id(victim))
    with pytest.raises(TypeError):  # the kernel would read the name from there
        await task.prctl(PR.SET_NAME, id(victim))
    with pytest.raises(TypeError):  # PR_SET_VMA_ANON_NAME's name
        await task.prctl(PR.SET_VMA, 0, 0x10000, 4096, id(victim))
    with pytest.raises(TypeError):  # PR_SCHED_CORE_GET writes the cookie through arg5
        await task.prctl(PR.SCHED_CORE, 0, 0, 0, id(victim))
    with pytest.raises(TypeError):  # a pointer where a number belongs
        await task.prctl(PR.SET_TIMERSLACK, await child.ptr(Int32(1)))
    for option in (PR.SET_MM, PR.SET_SECCOMP, PR.SET_SYSCALL_USER_DISPATCH):
        with pytest.raises(ValueError, match="unsafe_prctl"):
            await task.prctl(option, 1, id(victim))
    with pytest.raises(ValueError):  # not a PR: PR_GET_AUXV, which writes arg3 bytes at arg2
        await task.prctl(0x41555856, id(victim), 64)  # type: ignore[arg-type]
    assert victim == [1, 2, 3]
    await still_works(child)
    await child.exit(0)


async def test_unsafe_prctl_legitimate_use(thread: Thread) -> None:
    """The hatch passes integers as they are: the address of memory we
    own works, as PR.GET_NAME into a live buffer."""
    child = await thread.clone()
    task = child.task
    await task.prctl_set_name("hatch")
    buf = await child.malloc(bytes, 16)
    assert await task.unsafe_prctl(PR.GET_NAME, buf.address) == 0
    assert read_memory(child, buf.address, 16).split(b"\0")[0] == b"hatch"
    del buf
    assert await task.unsafe_prctl(PR.SET_TIMERSLACK, 54321) == 0
    assert await task.prctl(PR.GET_TIMERSLACK) == 54321
    with pytest.raises(OSError) as info:
        await task.unsafe_prctl(12345)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await task.unsafe_prctl(PR.GET_NAME, await child.malloc(bytes, 16))  # type: ignore[arg-type]
    await child.exit(0)
