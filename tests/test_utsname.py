"""uname(2) (rsyscall.sys.utsname) and sethostname/setdomainname
(rsyscall.unistd): names set in a child (of the thread of the test) with
its own UTS namespace, read back there, while ours stay as they were.  The
thread's own host name is never changed."""

from __future__ import annotations

import errno
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import UseAfterConsumeError
from rsyscall.sched import CLONE
from rsyscall.sys.utsname import UTSNAME_LENGTH, Utsname
from rsyscall.thread import ChildThread, Thread

from .util import proc

pytestmark = pytest.mark.anyio

# Any bytes but NUL, up to 64 of them, as the kernel allows; decoded as os does.
NAMES = st.binary(max_size=UTSNAME_LENGTH - 1).filter(lambda b: b"\0" not in b).map(os.fsdecode)


@given(st.lists(NAMES, min_size=6, max_size=6))
def test_utsname_bytes_roundtrip(names: list[str]) -> None:
    uts = Utsname(*names)
    data = uts.to_bytes()
    assert len(data) == Utsname.sizeof() == 6 * 65
    assert Utsname.from_bytes(data) == uts
    # Each field starts 65 bytes after the last, NUL-padded.
    for i, name in enumerate(names):
        field = data[i * 65 : (i + 1) * 65]
        assert field == os.fsencode(name).ljust(65, b"\0")


def test_utsname_checks() -> None:
    ok = ["a"] * 6
    with pytest.raises(ValueError):
        Utsname("a", "a", "a", "a", "a", "x" * 65)  # no room for the NUL
    Utsname("a", "a", "a", "a", "a", "x" * 64)
    with pytest.raises(ValueError):
        Utsname("a\0b", *ok[1:])
    with pytest.raises(TypeError):
        Utsname(b"linux", *ok[1:])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Utsname.from_bytes(b"\0" * 389)
    # Reading stops at the first NUL of each field.
    data = bytearray(Utsname(*ok).to_bytes())
    data[2:4] = b"zz"
    assert Utsname.from_bytes(bytes(data)).sysname == "a"


async def uname(thread: Thread) -> Utsname:
    buf = await thread.malloc(Utsname)
    result = await thread.task.uname(buf)
    assert buf.consumed
    return await result.read()


async def uts_child(thread: Thread) -> ChildThread:
    return await thread.clone(CLONE.NEWUSER | CLONE.NEWUTS)


async def test_uname_matches_os(thread: Thread) -> None:
    ours = await uname(thread)
    expected = os.uname()
    assert (ours.sysname, ours.nodename, ours.release, ours.version, ours.machine) == (
        expected.sysname,
        expected.nodename,
        expected.release,
        expected.version,
        expected.machine,
    )
    with open("/proc/sys/kernel/domainname") as domainname:
        assert ours.domainname == domainname.read().rstrip("\n")


async def test_sethostname_in_a_new_uts_namespace(thread: Thread) -> None:
    ours = os.uname().nodename
    child = await uts_child(thread)
    await child.task.sethostname(await child.ptr(b"inner-host"))
    assert (await uname(child)).nodename == "inner-host"
    assert os.uname().nodename == ours
    assert (await uname(thread)).nodename == ours
    # The kernel's view of the child's namespace agrees.
    pid = child.process.process.pid
    assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink(proc(thread, "ns/uts"))
    await child.exit(0)
    assert os.uname().nodename == ours


async def test_name_lengths(thread: Thread) -> None:
    child = await uts_child(thread)
    task = child.task
    # A str pointer's NUL is not passed: 64 characters fit.
    await task.sethostname(await child.ptr("h" * 64))
    assert (await uname(child)).nodename == "h" * 64
    # Bytes are passed whole, NUL-free: 64 fit, 65 do not.
    await task.sethostname(await child.ptr(b"b" * 64))
    assert (await uname(child)).nodename == "b" * 64
    with pytest.raises(OSError) as info:
        await task.sethostname(await child.ptr(b"b" * 65))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.sethostname(await child.ptr("s" * 65))
    assert info.value.errno == errno.EINVAL
    assert (await uname(child)).nodename == "b" * 64  # unchanged by the failures
    # An empty name is allowed.
    await task.sethostname(await child.ptr(b""))
    assert (await uname(child)).nodename == ""
    # Part of a buffer: the length is the part's.
    first, _ = (await child.ptr(b"shortlonger")).split(5)
    await task.sethostname(first)
    assert (await uname(child)).nodename == "short"
    await child.exit(0)


async def test_setdomainname(thread: Thread) -> None:
    with open("/proc/sys/kernel/domainname") as domainname:
        ours = domainname.read()
    child = await uts_child(thread)
    await child.task.setdomainname(await child.ptr("example.org"))
    uts = await uname(child)
    assert uts.domainname == "example.org"
    assert uts.nodename == os.uname().nodename  # a new namespace starts with a copy
    with open("/proc/sys/kernel/domainname") as domainname:
        assert domainname.read() == ours
    await child.exit(0)


async def test_name_errors(thread: Thread) -> None:
    child = await uts_child(thread)
    task = child.task
    with pytest.raises(TypeError):
        await task.sethostname("name")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # uninitialized memory
        await task.sethostname(await child.malloc(bytes, 8))  # type: ignore[arg-type]
    # A str pointer read back from the kernel has no known string length.
    valid, _ = await task.getcwd(await child.malloc(str, 4096))
    with pytest.raises(TypeError):
        await task.sethostname(valid)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a pointer to something else
        await task.sethostname(await child.malloc(Utsname))  # type: ignore[arg-type]
    consumed = await child.ptr(b"gone")
    consumed.split(2)
    with pytest.raises(UseAfterConsumeError):
        await task.sethostname(consumed)
    with pytest.raises(UseAfterConsumeError):
        await task.uname(consumed)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # too small for a struct utsname
        await task.uname(await child.malloc(bytes, 100))  # type: ignore[arg-type]
    # Still works.
    await task.sethostname(await child.ptr(b"fine"))
    assert (await uname(child)).nodename == "fine"
    await child.exit(0)


async def test_sethostname_without_privilege_over_the_namespace(thread: Thread) -> None:
    # A new user namespace alone: our UTS namespace is not its to change.
    # (It tries to set the name we already have, so nothing could change.)
    ours = os.uname().nodename
    child = await thread.clone(CLONE.NEWUSER)
    with pytest.raises(PermissionError):
        await child.task.sethostname(await child.ptr(os.fsencode(ours)))
    assert os.uname().nodename == ours
    assert await child.task.getpid() == child.process.process.pid
    await child.exit(0)
