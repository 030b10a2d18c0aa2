"""rsyscall.linux.landlock: confining a child to one directory (and a TCP
port), on every kind of thread.

A Landlock domain cannot be left, so each test restricts a child cloned
from `thread`, after setting no_new_privs (as an unprivileged process must;
we run as root)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from rsyscall import Thread
from rsyscall.fcntl import O
from rsyscall.linux.landlock import (
    LANDLOCK_ACCESS_FS,
    LANDLOCK_ACCESS_NET,
    LANDLOCK_RESTRICT_SELF,
    LANDLOCK_SCOPE,
    LandlockNetPortAttr,
    LandlockPathBeneathAttr,
    LandlockRulesetAttr,
)
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sys.socket import AF, SOCK

pytestmark = pytest.mark.anyio

# The file system accesses of each ABI version.
_FS_BY_VERSION = {
    1: LANDLOCK_ACCESS_FS(0x1FFF), 2: LANDLOCK_ACCESS_FS(0x3FFF), 3: LANDLOCK_ACCESS_FS(0x7FFF),
    4: LANDLOCK_ACCESS_FS(0x7FFF), 5: LANDLOCK_ACCESS_FS(0xFFFF),
}


async def version(thread: Thread) -> int:
    return await thread.task.landlock_create_ruleset_version()


def fs_access(abi: int) -> LANDLOCK_ACCESS_FS:
    return _FS_BY_VERSION[min(abi, 5)]


async def test_version_and_errata(thread: Thread) -> None:
    abi = await version(thread)
    assert abi >= 1
    errata = await thread.task.landlock_create_ruleset_errata() if abi >= 7 else 0
    assert errata >= 0


async def test_the_kernel_knows_the_constants(thread: Thread) -> None:
    """The constants the installed headers may lack (see test_abi), checked
    against the kernel: each bit of its ABI version is accepted, and the
    next bit up is refused."""
    abi = await version(thread)
    task = thread.task

    async def accepted(attr: LandlockRulesetAttr) -> bool:
        try:
            await (await task.landlock_create_ruleset(await thread.ptr(attr))).close()
        except OSError as e:
            assert e.errno == errno.EINVAL
            return False
        return True

    fs = fs_access(abi)
    for bit in fs:
        assert await accepted(LandlockRulesetAttr(bit)), bit
    if abi <= 7:  # the next bit is ABI 8's or later
        assert not await accepted(LandlockRulesetAttr(LANDLOCK_ACCESS_FS(int(fs) + 1)))
    if abi >= 4:
        for net in LANDLOCK_ACCESS_NET:
            assert await accepted(LandlockRulesetAttr(handled_access_net=net)), net
    if abi >= 6:
        for scope in LANDLOCK_SCOPE:
            assert await accepted(LandlockRulesetAttr(scoped=scope)), scope
    if 4 <= abi <= 7:
        assert not await accepted(LandlockRulesetAttr(handled_access_net=LANDLOCK_ACCESS_NET(4)))
        if abi >= 6:
            assert not await accepted(LandlockRulesetAttr(scoped=LANDLOCK_SCOPE(4)))


async def test_confined_to_one_directory(thread: Thread, tmp_path: Path) -> None:
    abi = await version(thread)
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "old").write_text("readable")
    (tmp_path / "outside").write_text("secret")
    child = await thread.clone()
    access = fs_access(abi)
    ruleset = await child.task.landlock_create_ruleset(
        await child.ptr(LandlockRulesetAttr(handled_access_fs=access)))
    dirfd = await child.task.open(await child.ptr(str(inside)), O.PATH | O.DIRECTORY)
    await ruleset.landlock_add_rule(await child.ptr(LandlockPathBeneathAttr(access, dirfd)))
    await child.task.prctl_set_no_new_privs()
    await ruleset.landlock_restrict_self()
    # Inside: read, write, create.
    fd = await child.task.open(await child.ptr(str(inside / "old")), O.RDONLY)
    assert await child.read_to_eof(fd) == b"readable"
    await child.spit(str(inside / "new"), "made inside")
    assert (inside / "new").read_text() == "made inside"
    await child.mkdir(str(inside / "sub"))
    # Outside: refused, for reading, writing and listing.
    for path, flags in ((tmp_path / "outside", O.RDONLY), (tmp_path / "outside", O.WRONLY),
                        (tmp_path / "made", O.WRONLY | O.CREAT), (tmp_path, O.RDONLY)):
        with pytest.raises(PermissionError) as info:
            await child.task.open(await child.ptr(str(path)), flags)
        assert info.value.errno == errno.EACCES, path
    assert not (tmp_path / "made").exists()
    # The syscall server, and what needs no path, still work.
    assert await child.task.getpid() == child.process.pid
    await child.pipe()
    # The parent is not confined.
    fd = await thread.task.open(await thread.ptr(str(tmp_path / "outside")), O.RDONLY)
    assert await thread.read_to_eof(fd) == b"secret"
    # Nor can the child widen its domain: a new ruleset only narrows it.
    wider = await child.task.landlock_create_ruleset(
        await child.ptr(LandlockRulesetAttr(handled_access_fs=LANDLOCK_ACCESS_FS.EXECUTE)))
    await wider.landlock_restrict_self()
    with pytest.raises(PermissionError):
        await child.task.open(await child.ptr(str(tmp_path / "outside")), O.RDONLY)
    await child.exit(0)


async def test_tcp_bind_port(thread: Thread) -> None:
    if await version(thread) < 4:
        pytest.skip("Landlock network rules need ABI 4 (Linux 6.7)")
    child = await thread.clone()
    ruleset = await child.task.landlock_create_ruleset(
        await child.ptr(LandlockRulesetAttr(handled_access_net=LANDLOCK_ACCESS_NET.BIND_TCP)))
    allowed = 47613
    await ruleset.landlock_add_rule(
        await child.ptr(LandlockNetPortAttr(LANDLOCK_ACCESS_NET.BIND_TCP, allowed)))
    await child.task.prctl_set_no_new_privs()
    await ruleset.landlock_restrict_self()
    sock = await child.task.socket(AF.INET, SOCK.STREAM)
    with pytest.raises(PermissionError):
        await sock.bind(await child.ptr(SockaddrIn(allowed + 1, "127.0.0.1")))
    try:
        await sock.bind(await child.ptr(SockaddrIn(allowed, "127.0.0.1")))
    except OSError as e:  # someone else's port: not Landlock's doing
        assert e.errno == errno.EADDRINUSE
    # UDP is not handled.
    udp = await child.task.socket(AF.INET, SOCK.DGRAM)
    await udp.bind(await child.ptr(SockaddrIn(0, "127.0.0.1")))
    await child.exit(0)


async def test_signal_scope(thread: Thread) -> None:
    if await version(thread) < 6:
        pytest.skip("Landlock scopes need ABI 6 (Linux 6.12)")
    child = await thread.clone()
    ruleset = await child.task.landlock_create_ruleset(
        await child.ptr(LandlockRulesetAttr(scoped=LANDLOCK_SCOPE.SIGNAL)))
    await child.task.prctl_set_no_new_privs()
    await ruleset.landlock_restrict_self(LANDLOCK_RESTRICT_SELF.LOG_SAME_EXEC_OFF
                                         if await version(thread) >= 7
                                         else LANDLOCK_RESTRICT_SELF.NONE)
    # Signal 0 to the parent, outside the domain: refused.
    parent = child.task.make_process(await thread.task.getpid())
    with pytest.raises(PermissionError):
        await parent.kill(0)
    # To itself, inside: allowed.
    await child.task.make_process(child.process.pid).kill(0)
    # The parent may still signal the child.
    await thread.task.make_process(child.process.pid).kill(0)
    await child.exit(0)


async def test_errors(thread: Thread, tmp_path: Path) -> None:
    child = await thread.clone()
    # An access this kernel does not know, and a ruleset handling nothing.
    with pytest.raises(OSError) as info:
        await child.task.landlock_create_ruleset(
            await child.ptr(LandlockRulesetAttr(LANDLOCK_ACCESS_FS(1 << 40))))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await child.task.landlock_create_ruleset(await child.ptr(LandlockRulesetAttr()))
    assert info.value.errno == errno.ENOMSG
    ruleset = await child.task.landlock_create_ruleset(
        await child.ptr(LandlockRulesetAttr(LANDLOCK_ACCESS_FS.READ_FILE)))
    dirfd = await child.task.open(await child.ptr(str(tmp_path)), O.PATH | O.DIRECTORY)
    # A rule for an access the ruleset does not handle.
    with pytest.raises(OSError) as info:
        await ruleset.landlock_add_rule(await child.ptr(
            LandlockPathBeneathAttr(LANDLOCK_ACCESS_FS.WRITE_FILE, dirfd)))
    assert info.value.errno == errno.EINVAL
    # The wrong kind of fd as the ruleset.
    with pytest.raises(OSError) as info:
        await dirfd.landlock_add_rule(await child.ptr(
            LandlockPathBeneathAttr(LANDLOCK_ACCESS_FS.READ_FILE, dirfd)))
    assert info.value.errno in (errno.EBADFD, errno.EBADF)
    pipe = await child.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.landlock_restrict_self()
    assert info.value.errno == errno.EBADFD
    # Bad flags.
    with pytest.raises(OSError) as info:
        await ruleset.landlock_restrict_self(LANDLOCK_RESTRICT_SELF(1 << 20))
    assert info.value.errno == errno.EINVAL
    # A parent fd from another table; the wrong pointer types.
    theirs = await thread.task.open(await thread.ptr(str(tmp_path)), O.PATH | O.DIRECTORY)
    with pytest.raises(ValueError):
        await ruleset.landlock_add_rule(await child.ptr(
            LandlockPathBeneathAttr(LANDLOCK_ACCESS_FS.READ_FILE, theirs)))
    with pytest.raises(TypeError):
        await ruleset.landlock_add_rule(await child.ptr(b"\0" * 12))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await child.task.landlock_create_ruleset(await child.ptr(b"\0" * 24))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LandlockRulesetAttr(LANDLOCK_ACCESS_NET.BIND_TCP)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LandlockNetPortAttr(LANDLOCK_ACCESS_NET.BIND_TCP, 70000)
    # Without no_new_privs, restricting needs CAP_SYS_ADMIN, which we have
    # as root: so it works (and the child is confined from here on)...
    await ruleset.landlock_restrict_self()
    await child.exit(0)
    # ... and a child that became nobody, without it, may not.
    child = await thread.clone()
    await child.task.setreuid(65534, 65534)
    ruleset = await child.task.landlock_create_ruleset(
        await child.ptr(LandlockRulesetAttr(LANDLOCK_ACCESS_FS.READ_FILE)))
    with pytest.raises(PermissionError) as info:
        await ruleset.landlock_restrict_self()
    assert info.value.errno == errno.EPERM
    await child.task.prctl_set_no_new_privs()
    await ruleset.landlock_restrict_self()
    await child.exit(0)
