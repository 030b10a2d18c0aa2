"""rsyscall.linux.seccomp and rsyscall.linux.filter: syscall filters and
user notification, on every kind of thread.

A filter cannot be removed, so each test installs it in a child cloned
from `thread`; the child's own syscall server then runs under the filter,
which must let through what it needs (these filters only touch the syscall
they test).  We run as root, but set no_new_privs anyway, as an
unprivileged process would have to."""

from __future__ import annotations

import errno
from pathlib import Path

import anyio
import pytest

from rsyscall import AsyncFileDescriptor, SyscallHangup, Thread, WrittenPointer
from rsyscall.fcntl import O
from rsyscall.linux.audit import AUDIT_ARCH
from rsyscall.linux.filter import (
    BPF_CLASS,
    BPF_JMP_OP,
    BPF_MAXINSNS,
    BPF_SRC,
    SockFilter,
    SockFilterList,
    SockFprog,
    bpf_jump,
)
from rsyscall.linux.seccomp import (
    SECCOMP_ADDFD_FLAG,
    SECCOMP_FILTER_FLAG,
    SECCOMP_IOCTL,
    SECCOMP_RET,
    SECCOMP_USER_NOTIF_FLAG,
    SeccompData,
    SeccompNotif,
    SeccompNotifAddfd,
    SeccompNotifResp,
    SeccompNotifSizes,
    bpf_load_arch,
    bpf_load_nr,
    bpf_return,
    seccomp_notif_recv_async,
)
from rsyscall.near.sysnum import SYS
from rsyscall.sched import CLONE
from rsyscall.signal import SIG
from rsyscall.struct import Int32, UInt64

pytestmark = pytest.mark.anyio

_JEQ = BPF_CLASS.JMP | BPF_JMP_OP.JEQ | BPF_SRC.K


def on_syscall(nr: int, action: SECCOMP_RET, data: int = 0) -> SockFilterList:
    """If the arch is not x86_64, kill; if the syscall is `nr`, `action`;
    else allow."""
    return SockFilterList([
        bpf_load_arch(),
        bpf_jump(_JEQ, AUDIT_ARCH.X86_64, 1, 0),
        bpf_return(SECCOMP_RET.KILL_PROCESS),
        bpf_load_nr(),
        bpf_jump(_JEQ, nr, 0, 1),
        bpf_return(action, data),
        bpf_return(SECCOMP_RET.ALLOW),
    ])


async def program(thread: Thread, insns: SockFilterList) -> WrittenPointer[SockFprog]:
    return await thread.ptr(SockFprog(await thread.ptr(insns)))


async def receive(thread: Thread, afd: AsyncFileDescriptor) -> SeccompNotif:
    return await (await seccomp_notif_recv_async(afd, await thread.malloc(SeccompNotif))).read()


async def test_filter_refuses_one_syscall(thread: Thread, tmp_path: Path) -> None:
    child = await thread.clone()
    await child.task.prctl_set_no_new_privs()
    prog = await program(child, on_syscall(SYS.mkdirat, SECCOMP_RET.ERRNO, errno.EPERM))
    # TSYNC: every thread of the process (it has one) gets the filter.
    await child.task.seccomp_set_mode_filter(prog, SECCOMP_FILTER_FLAG.TSYNC)
    with pytest.raises(PermissionError):
        await child.task.mkdir(await child.ptr(str(tmp_path / "denied")))
    assert not (tmp_path / "denied").exists()
    # Everything else works, the child's syscall server among it: files,
    # memory, pipes through its epoll loop.
    await child.spit(str(tmp_path / "file"), "written under the filter")
    assert (tmp_path / "file").read_text() == "written under the filter"
    assert await child.task.getpid() == child.process.pid
    pipe = await child.pipe()
    await child.make_afd(pipe.read, set_nonblock=True)
    # The parent is not filtered.
    await thread.task.mkdir(await thread.ptr(str(tmp_path / "allowed")))
    # A grandchild inherits the filter.
    grandchild = await child.clone()
    with pytest.raises(PermissionError):
        await grandchild.task.mkdir(await grandchild.ptr(str(tmp_path / "denied")))
    await grandchild.exit(0)
    await child.exit(0)


async def test_kill_process_action(thread: Thread) -> None:
    child = await thread.clone()
    await child.task.prctl_set_no_new_privs()
    prog = await program(child, on_syscall(SYS.getppid, SECCOMP_RET.KILL_PROCESS))
    await child.task.seccomp_set_mode_filter(prog)
    with pytest.raises(SyscallHangup):
        await child.task.getppid()
    state = await child.process.waitpid()
    assert state.killed_with() == SIG.SYS


async def test_strict_mode(thread: Thread) -> None:
    child = await thread.clone()
    with pytest.raises(SyscallHangup):
        await child.task.seccomp_set_mode_strict()
        # The server survives only read and write: the next request ends it.
        await child.task.getpid()
    state = await child.process.waitpid()
    assert state.killed_with() == SIG.KILL


async def test_errors(thread: Thread) -> None:
    child = await thread.clone()
    prog = await program(child, on_syscall(SYS.mkdirat, SECCOMP_RET.ERRNO, errno.EPERM))
    with pytest.raises(OSError) as info:
        await child.task.seccomp_set_mode_filter(
            prog, SECCOMP_FILTER_FLAG(1 << 20)
        )
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        await child.task.seccomp_set_mode_filter(
            prog, SECCOMP_FILTER_FLAG.NEW_LISTENER
        )
    # TSYNC with a listener needs TSYNC_ESRCH (the result cannot be both
    # a thread id and an fd).
    with pytest.raises(OSError) as info:
        await child.task.seccomp_set_mode_filter_listener(prog, SECCOMP_FILTER_FLAG.TSYNC)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await child.task.seccomp_set_mode_filter(await child.ptr(b"12345678"))  # type: ignore[arg-type]
    # A program the kernel refuses: a jump past the end, and no final return.
    short = on_syscall(SYS.mkdirat, SECCOMP_RET.ERRNO, errno.EPERM)[:5]
    with pytest.raises(OSError) as info:
        await child.task.seccomp_set_mode_filter(
            await program(child, SockFilterList(short))
        )
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await child.task.seccomp_set_mode_filter(
            await program(child, SockFilterList([bpf_load_nr()]))
        )
    assert info.value.errno == errno.EINVAL
    # The library's own checks.
    with pytest.raises(ValueError):
        SockFilterList([])
    with pytest.raises(ValueError):
        SockFilterList([bpf_load_nr()] * (BPF_MAXINSNS + 1))
    with pytest.raises(TypeError):
        SockFilterList([b"12345678"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        SockFilter(0x10000, 0, 0, 0)
    with pytest.raises(TypeError):
        SockFprog(await child.ptr(b"\0" * 8))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bpf_return(SECCOMP_RET.ERRNO, 1 << 16)
    # A freed instruction array cannot be used through its SockFprog.
    insns = await child.ptr(on_syscall(SYS.mkdirat, SECCOMP_RET.ERRNO, errno.EPERM))
    stale = await child.ptr(SockFprog(insns))
    insns.free()
    with pytest.raises(ValueError):
        await child.task.seccomp_set_mode_filter(stale)
    # Still no filter: mkdir works.
    await child.exit(0)


async def test_no_new_privs_or_cap_sys_admin(thread: Thread) -> None:
    # We are root: a child that becomes nobody loses its capabilities, and
    # then may install a filter only with no_new_privs.
    child = await thread.clone()
    await child.task.setreuid(65534, 65534)
    prog = await program(child, on_syscall(SYS.mkdirat, SECCOMP_RET.ERRNO, errno.EPERM))
    with pytest.raises(PermissionError) as info:
        await child.task.seccomp_set_mode_filter(prog)
    assert info.value.errno == errno.EACCES
    await child.task.prctl_set_no_new_privs()
    await child.task.seccomp_set_mode_filter(prog)
    await child.exit(0)


async def test_action_avail_and_notif_sizes(thread: Thread) -> None:
    for action in SECCOMP_RET:
        assert await thread.task.seccomp_get_action_avail(action), action
    sizes = await thread.task.seccomp_get_notif_sizes(await thread.malloc(SeccompNotifSizes))
    value = await sizes.read()
    assert value.seccomp_data == SeccompData.sizeof()
    assert value.seccomp_notif >= SeccompNotif.sizeof()
    assert value.seccomp_notif_resp >= SeccompNotifResp.sizeof()
    with pytest.raises(ValueError):
        await thread.task.seccomp_get_action_avail(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.task.seccomp_get_action_avail(AUDIT_ARCH.X86_64)  # type: ignore[arg-type]


async def test_user_notification_supervisor(thread: Thread) -> None:
    # The child shares our fd table, so the listener it makes is ours too.
    child = await thread.clone(CLONE.FILES)
    await child.task.prctl_set_no_new_privs()
    insns = SockFilterList([
        bpf_load_nr(),
        bpf_jump(_JEQ, SYS.getpid, 2, 0),
        bpf_jump(_JEQ, SYS.getppid, 1, 0),
        bpf_return(SECCOMP_RET.ALLOW),
        bpf_return(SECCOMP_RET.USER_NOTIF),
    ])
    listener = (await child.task.seccomp_set_mode_filter_listener(
        await program(child, insns)
    )).for_task(thread.task)
    afd = await thread.make_afd(listener)
    results: dict[str, int] = {}

    async def target() -> None:
        results["getpid"] = await child.task.getpid()
        results["getppid"] = await child.task.getppid()

    async with anyio.create_task_group() as tg:
        tg.start_soon(target)
        with anyio.fail_after(30):
            notif = await receive(thread, afd)
            assert notif.data.nr == SYS.getpid and notif.data.arch == AUDIT_ARCH.X86_64
            assert await listener.seccomp_notif_id_valid(notif.id)
            await listener.seccomp_notif_send(await thread.ptr(SeccompNotifResp(notif.id, 4242)))
            assert not await listener.seccomp_notif_id_valid(notif.id)
            notif = await receive(thread, afd)
            assert notif.data.nr == SYS.getppid
            await listener.seccomp_notif_send(await thread.ptr(
                SeccompNotifResp(notif.id, flags=SECCOMP_USER_NOTIF_FLAG.CONTINUE)))
    assert results["getpid"] == 4242
    assert results["getppid"] == await thread.task.getpid()
    # An error answer, and answering twice.
    async with anyio.create_task_group() as tg:
        failure: list[BaseException] = []

        async def denied() -> None:
            try:
                await child.task.getpid()
            except OSError as e:
                failure.append(e)

        tg.start_soon(denied)
        with anyio.fail_after(30):
            notif = await receive(thread, afd)
            resp = await thread.ptr(SeccompNotifResp(notif.id, error=-errno.EACCES))
            await listener.seccomp_notif_send(resp)
    assert isinstance(failure[0], PermissionError) and failure[0].errno == errno.EACCES
    with pytest.raises(OSError) as info:
        await listener.seccomp_notif_send(resp)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(ValueError):
        SeccompNotifResp(1, error=errno.EPERM)
    # A second listener for the same process is refused.
    with pytest.raises(OSError) as info:
        await child.task.seccomp_set_mode_filter_listener(
            await program(child, insns)
        )
    assert info.value.errno == errno.EBUSY
    await child.exit(0)
    # With the child gone, waiting for a notification ends.
    with anyio.fail_after(30):
        with pytest.raises(ProcessLookupError):
            await seccomp_notif_recv_async(afd, await thread.malloc(SeccompNotif))


async def test_addfd(thread: Thread) -> None:
    child = await thread.clone(CLONE.FILES)
    await child.task.prctl_set_no_new_privs()
    insns = on_syscall(SYS.getppid, SECCOMP_RET.USER_NOTIF)
    listener = (await child.task.seccomp_set_mode_filter_listener(
        await program(child, insns)
    )).for_task(thread.task)
    afd = await thread.make_afd(listener)
    pipe = await thread.pipe()
    returned: list[int] = []

    async def target() -> None:
        returned.append(await child.task.getppid())

    # The child's getppid "returns" a copy of our pipe's write end, put in
    # its table and answered in one step (SECCOMP_ADDFD_FLAG.SEND).
    async with anyio.create_task_group() as tg:
        tg.start_soon(target)
        with anyio.fail_after(30):
            notif = await receive(thread, afd)
            number = await listener.seccomp_notif_addfd(await thread.ptr(SeccompNotifAddfd(
                notif.id, pipe.write, newfd_flags=O.CLOEXEC, flags=SECCOMP_ADDFD_FLAG.SEND)))
    assert returned == [number] and number != pipe.write.number
    copy = child.task.make_fd(number)
    await copy.write(await child.ptr(b"through the added fd"))
    await copy.close()
    await pipe.write.close()
    assert await thread.read_to_eof(pipe.read) == b"through the added fd"
    # An fd of another table is refused; so is an unknown notification.
    other = await thread.clone()
    theirs = await other.pipe()
    with pytest.raises(ValueError):
        await listener.seccomp_notif_addfd(
            await thread.ptr(SeccompNotifAddfd(notif.id, theirs.write)))
    with pytest.raises(OSError) as info:
        await listener.seccomp_notif_addfd(
            await thread.ptr(SeccompNotifAddfd(notif.id, pipe.read)))
    assert info.value.errno == errno.ENOENT
    await other.exit(0)
    await child.exit(0)


async def test_listener_ioctls_on_the_wrong_fd(thread: Thread, tmp_path: Path) -> None:
    fd = await thread.task.open(await thread.ptr(str(tmp_path)), O.RDONLY | O.DIRECTORY)
    with pytest.raises(OSError) as info:
        await fd.seccomp_notif_id_valid(1)
    assert info.value.errno in (errno.ENOTTY, errno.EINVAL)
    with pytest.raises(OSError) as info:
        await fd.seccomp_notif_send(await thread.ptr(SeccompNotifResp(1)))
    assert info.value.errno in (errno.ENOTTY, errno.EINVAL)
    with pytest.raises(TypeError):
        await fd.seccomp_notif_recv(await thread.malloc(bytes, 80))  # type: ignore[arg-type]
    # Through the generic ioctl, the requests take their own types only.
    with pytest.raises(TypeError):
        await fd.ioctl(SECCOMP_IOCTL.NOTIF_ID_VALID, await thread.ptr(Int32(1)))
    with pytest.raises(OSError) as info:
        await fd.ioctl(SECCOMP_IOCTL.NOTIF_ID_VALID, await thread.ptr(UInt64(1)))
    assert info.value.errno in (errno.ENOTTY, errno.EINVAL)
