"""rsyscall.signal: kill, tgkill, sigprocmask, sigaction, checked against
the stdlib `signal` module and /proc.  Only SIG_DFL and SIG_IGN are ever
installed, and every mask and action changed is put back."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import Thread, UseAfterConsumeError, local_thread
from rsyscall.handle import Process
from rsyscall.signal import SA, SIG, HowSIG, Sigaction, Sighandler, Sigset
from rsyscall.sys.signalfd import SFD, SignalfdSiginfo

from .util import blocked_signals, pending_signals, status_field, thread_pid

pytestmark = pytest.mark.anyio


def ignored(thread: Thread) -> int:
    """The SigIgn mask of the thread's process, from /proc."""
    return int(status_field(thread, "SigIgn"), 16)


def tid_of(thread: Thread) -> int:
    """The thread's OS thread: ours for the local thread, else its only one."""
    return threading.get_native_id() if thread is local_thread else thread_pid(thread)


def local_mask() -> Iterator[None]:
    """Put back this OS thread's signal mask, after taking any SIGUSR2 the
    test left pending (its default action would kill the test run)."""
    original = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
    while signal.SIGUSR2 in signal.sigpending():
        signal.sigtimedwait([signal.SIGUSR2], 0)
    signal.pthread_sigmask(signal.SIG_SETMASK, original)


@pytest.fixture
def mask() -> Iterator[None]:
    yield from local_mask()


@pytest.fixture
def thread_mask(thread: Thread) -> Iterator[None]:
    """`mask` for the thread of the test (another thread's mask and pending
    signals go with its process)."""
    if thread is local_thread:
        yield from local_mask()
    else:
        yield


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    popen = subprocess.Popen(["sleep", "100"])
    yield popen
    popen.kill()
    popen.wait()


async def still_works(thread: Thread) -> None:
    assert await thread.task.getpid() == thread_pid(thread)
    old = await thread.task.sigprocmask(HowSIG.BLOCK, None, await thread.malloc(Sigset))
    assert set(await old.read()) == blocked_signals(thread)


# ---- kill and tgkill ----


async def test_kill_child(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    process = Process(thread.task, child.pid)
    await process.kill(0)  # exists
    await process.kill(SIG.TERM)
    assert child.wait() == -signal.SIGTERM


async def test_kill_child_with_sigkill(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    await Process(thread.task, child.pid).kill(SIG.KILL)
    assert child.wait() == -signal.SIGKILL


async def test_kill_errors(thread: Thread, child: subprocess.Popen[bytes]) -> None:
    process = Process(thread.task, child.pid)
    with pytest.raises(OSError) as info:
        await process.kill(65)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await process.kill("TERM")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await process.kill(True)
    child.kill()
    child.wait()
    with pytest.raises(OSError) as info:
        await process.kill(SIG.TERM)
    assert info.value.errno == errno.ESRCH
    await still_works(thread)


async def test_tgkill_blocked_signal_is_pending(thread: Thread, thread_mask: None) -> None:
    task = thread.task
    pid = thread_pid(thread)
    await task.sigprocmask(HowSIG.BLOCK, await thread.ptr(Sigset([SIG.USR2])))
    assert signal.SIGUSR2 in blocked_signals(thread)
    assert signal.SIGUSR2 not in pending_signals(thread)
    await task.tgkill(pid, tid_of(thread), SIG.USR2)
    assert signal.SIGUSR2 in pending_signals(thread)
    if thread is local_thread:
        info = signal.sigtimedwait([signal.SIGUSR2], 0)
        assert info is not None and info.si_signo == signal.SIGUSR2
        assert info.si_pid == os.getpid()
    else:  # taken in the thread's own process, through a signalfd
        fd = await task.signalfd(await thread.ptr(Sigset([SIG.USR2])), SFD.NONBLOCK)
        valid, _ = await fd.read(await thread.malloc(SignalfdSiginfo))
        got = await valid.read()
        assert got.signo == SIG.USR2 and got.pid == pid
        await fd.close()
    assert signal.SIGUSR2 not in pending_signals(thread)


async def test_tgkill_errors(thread: Thread) -> None:
    task = thread.task
    pid, tid = thread_pid(thread), tid_of(thread)
    with pytest.raises(OSError) as info:
        await task.tgkill(pid, 0x3FFFFFFF, 0)
    assert info.value.errno == errno.ESRCH
    with pytest.raises(OSError) as info:
        await task.tgkill(pid, tid, 99)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await task.tgkill(pid, tid, 1.0)  # type: ignore[arg-type]
    await task.tgkill(pid, tid, 0)
    await still_works(thread)


# ---- sigprocmask ----


async def test_sigprocmask_block_unblock(thread: Thread, thread_mask: None) -> None:
    task = thread.task
    before = blocked_signals(thread)
    assert signal.SIGUSR2 not in before
    newset = await thread.ptr(Sigset([SIG.USR2]))
    oldset = await thread.malloc(Sigset)
    old = await task.sigprocmask(HowSIG.BLOCK, newset, oldset)
    assert oldset.consumed
    assert set(await old.read()) == before
    assert blocked_signals(thread) == before | {signal.SIGUSR2}
    # Reading without changing anything.
    now = await task.sigprocmask(HowSIG.BLOCK, None, await thread.malloc(Sigset))
    assert set(await now.read()) == before | {signal.SIGUSR2}
    await task.sigprocmask(HowSIG.UNBLOCK, newset)
    assert blocked_signals(thread) == before
    await task.sigprocmask(HowSIG.BLOCK, newset)
    # The mask read earlier restores the original one.
    await task.sigprocmask(HowSIG.SETMASK, old)
    assert blocked_signals(thread) == before


async def test_sigprocmask_setmask_several(thread: Thread, thread_mask: None) -> None:
    task = thread.task
    wanted = Sigset([SIG.USR1, SIG.USR2, SIG.WINCH, 40])
    old = await task.sigprocmask(
        HowSIG.SETMASK, await thread.ptr(wanted), await thread.malloc(Sigset)
    )
    assert blocked_signals(thread) == {int(sig) for sig in wanted}
    # SIGKILL and SIGSTOP cannot be blocked: the kernel drops them silently.
    await task.sigprocmask(HowSIG.BLOCK, await thread.ptr(Sigset([SIG.KILL, SIG.STOP])))
    assert blocked_signals(thread) == {int(sig) for sig in wanted}
    await task.sigprocmask(HowSIG.SETMASK, old)


async def test_sigprocmask_errors(thread: Thread, thread_mask: None) -> None:
    task = thread.task
    newset = await thread.ptr(Sigset([SIG.USR2]))
    oldset = await thread.malloc(Sigset)
    with pytest.raises(ValueError):  # no such member: refused before the syscall
        await task.sigprocmask(7, newset, oldset)  # type: ignore[call-overload]
    assert not oldset.consumed  # a failed call gives the pointer back
    assert signal.SIGUSR2 not in blocked_signals(thread)
    with pytest.raises(TypeError):
        await task.sigprocmask("block", newset)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await task.sigprocmask(HowSIG.BLOCK, await thread.ptr(b"\0" * 8))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sigprocmask(HowSIG.BLOCK, await thread.malloc(Sigset))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await task.sigprocmask(HowSIG.BLOCK, Sigset([SIG.USR2]))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await task.sigprocmask(HowSIG.BLOCK, None, await thread.malloc(bytes, 8))  # type: ignore[arg-type]
    filled = await task.sigprocmask(HowSIG.BLOCK, None, oldset)
    with pytest.raises(UseAfterConsumeError):
        await task.sigprocmask(HowSIG.BLOCK, None, oldset)
    filled.split(4)
    with pytest.raises(UseAfterConsumeError):
        await task.sigprocmask(HowSIG.SETMASK, filled)
    assert signal.SIGUSR2 not in blocked_signals(thread)
    await still_works(thread)


# ---- sigaction ----


async def test_sigaction_ignore_and_restore(thread: Thread) -> None:
    task = thread.task
    bit = 1 << (SIG.USR2 - 1)
    assert not ignored(thread) & bit
    act = await thread.ptr(Sigaction(Sighandler.IGN))
    old = await task.sigaction(SIG.USR2, act, await thread.malloc(Sigaction))
    try:
        assert ignored(thread) & bit
        previous = await old.read()
        assert previous.handler == Sighandler.DFL
        assert isinstance(previous.handler, Sighandler)
        current = await task.sigaction(SIG.USR2, None, await thread.malloc(Sigaction))
        value = await current.read()
        assert value.handler is Sighandler.IGN
        assert value.mask == Sigset()
    finally:
        await task.sigaction(SIG.USR2, old)
    assert not ignored(thread) & bit


# About the Python interpreter's own handler, in our process: local only.
async def test_sigaction_reads_python_handler() -> None:
    # Python installs a C handler for SIGINT through glibc, which adds its
    # restorer: reading it back shows the kernel's layout is right.
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_DFL
    task = local_thread.task
    current = await (
        await task.sigaction(SIG.INT, None, await local_thread.malloc(Sigaction))
    ).read()
    assert current.handler not in (Sighandler.DFL, Sighandler.IGN)
    assert SA.RESTORER in current.flags
    assert current.restorer != 0
    assert SIG.KILL not in current.mask


async def test_sigaction_mask_and_flags_round_trip(thread: Thread) -> None:
    task = thread.task
    wanted = Sigaction(Sighandler.IGN, SA.RESTART | SA.NODEFER, 0, {SIG.USR1, SIG.TERM, 50})
    old = await task.sigaction(
        SIG.USR2, await thread.ptr(wanted), await thread.malloc(Sigaction)
    )
    try:
        current = await task.sigaction(SIG.USR2, None, await thread.malloc(Sigaction))
        assert await current.read() == wanted
    finally:
        await task.sigaction(SIG.USR2, old)
    restored = await task.sigaction(SIG.USR2, None, await thread.malloc(Sigaction))
    assert await restored.read() == await old.read()


async def test_sigaction_errors(thread: Thread) -> None:
    task = thread.task
    act = await thread.ptr(Sigaction(Sighandler.IGN))
    oldact = await thread.malloc(Sigaction)
    for signum in (SIG.KILL, SIG.STOP, 0, 65):
        with pytest.raises(OSError) as info:
            await task.sigaction(signum, act, oldact)
        assert info.value.errno == errno.EINVAL
        assert not oldact.consumed
    with pytest.raises(TypeError):
        await task.sigaction("USR2", act)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await task.sigaction(SIG.USR2, await thread.ptr(Sigset()))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sigaction(SIG.USR2, None, await thread.malloc(bytes, 32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.sigaction(SIG.USR2, Sigaction(Sighandler.IGN))  # type: ignore[call-overload]
    act.split(8)
    with pytest.raises(UseAfterConsumeError):
        await task.sigaction(SIG.USR2, act)
    assert not ignored(thread) & (1 << (SIG.USR2 - 1))
    await still_works(thread)


async def current_action(thread: Thread, sig: SIG) -> Sigaction:
    oldact = await thread.malloc(Sigaction)
    return await (await thread.task.sigaction(sig, None, oldact)).read()


async def test_sigaction_refuses_function_addresses(thread: Thread) -> None:
    """Regression: sigaction used to install any handler address, and a
    wrong one crashes the process when the signal comes.  Now only DFL and
    IGN are installed, whether `act` is a written pointer or memory the
    kernel filled; nothing changes (and should it, the action is put back
    before any signal can come)."""
    task = thread.task
    saved = await task.sigaction(SIG.USR2, None, await thread.malloc(Sigaction))
    before = await saved.read()
    try:
        bogus = await thread.ptr(Sigaction(id(object()), SA.RESTORER, 0x1000))
        with pytest.raises(ValueError, match="unsafe_sigaction"):
            await task.sigaction(SIG.USR2, bogus)
        oldact = await thread.malloc(Sigaction)
        with pytest.raises(ValueError):
            await task.sigaction(SIG.USR2, bogus, oldact)
        assert not oldact.consumed
        if thread is local_thread:  # Python's handler is installed in our process
            # Python's own SIGINT handler, read back from the kernel: not a WrittenPointer.
            python_int = await task.sigaction(SIG.INT, None, await thread.malloc(Sigaction))
            assert (await python_int.read()).handler not in (Sighandler.DFL, Sighandler.IGN)
            with pytest.raises(ValueError):
                await task.sigaction(SIG.USR2, python_int)
        assert await current_action(thread, SIG.USR2) == before
    finally:
        await task.unsafe_sigaction(SIG.USR2, saved)
    await still_works(thread)


# A Python handler runs in our process alone: local only.
async def test_unsafe_sigaction_restores_a_saved_handler(mask: None) -> None:
    """The hatch's legitimate use: save an action with a C handler (the
    Python interpreter's, installed by signal.signal), replace it, and put
    it back; the restored handler runs when the signal comes."""
    task = local_thread.task
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: received.append(signum))
    try:
        saved = await task.sigaction(
            SIG.USR2, await local_thread.ptr(Sigaction(Sighandler.IGN)),
            await local_thread.malloc(Sigaction),
        )
        assert (await saved.read()).handler not in (Sighandler.DFL, Sighandler.IGN)
        os.kill(os.getpid(), signal.SIGUSR2)  # ignored now
        assert received == []
        with pytest.raises(ValueError):
            await task.sigaction(SIG.USR2, saved)
        await task.unsafe_sigaction(SIG.USR2, saved)
        assert await current_action(local_thread, SIG.USR2) == await saved.read()
        os.kill(os.getpid(), signal.SIGUSR2)  # os.kill runs Python handlers before returning
        assert received == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


# ---- the values ----


def test_sigset_values() -> None:
    assert Sigset([SIG.USR2]).to_bytes() == (1 << 11).to_bytes(8, "little")
    assert Sigset([64]).to_bytes() == (1 << 63).to_bytes(8, "little")
    members = Sigset.from_bytes(b"\xff" * 8)
    assert len(members) == 64
    assert SIG.HUP in members and 64 in members
    assert all(isinstance(sig, SIG) for sig in members if sig < 32)
    assert Sigset.sizeof() == 8
    assert repr(Sigset()) == "Sigset()"
    assert repr(Sigset([SIG.USR2, 40])) == "Sigset({SIG.USR2, 40})"
    for bad in (0, 65, -1):
        with pytest.raises(ValueError):
            Sigset([bad])
    with pytest.raises(TypeError):
        Sigset(["USR2"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Sigset([True])
    with pytest.raises(ValueError):
        Sigset.from_bytes(b"\0" * 7)


def test_sigaction_values() -> None:
    act = Sigaction(1)
    assert act.handler is Sighandler.IGN
    assert Sigaction.sizeof() == 32
    assert Sigaction(0x1234, SA.SIGINFO | SA.RESTORER, 0x5678, [SIG.INT]).to_bytes() == (
        (0x1234).to_bytes(8, "little")
        + (0x04000004).to_bytes(8, "little")
        + (0x5678).to_bytes(8, "little")
        + (1 << 1).to_bytes(8, "little")
    )
    with pytest.raises(ValueError):
        Sigaction(-1)
    with pytest.raises(TypeError):
        Sigaction("ign")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Sigaction(Sighandler.IGN, mask=[1.5])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        Sigaction.from_bytes(b"\0" * 31)


signals = st.integers(1, 64)
u64 = st.integers(0, (1 << 64) - 1)


@given(st.frozensets(signals))
def test_sigset_round_trip(members: frozenset[int]) -> None:
    sigset = Sigset(members)
    assert sigset == members
    assert Sigset.from_bytes(sigset.to_bytes()) == sigset
    assert Sigset.from_bits(sigset.bits()) == sigset


@given(st.binary(min_size=8, max_size=8))
def test_sigset_bytes_round_trip(data: bytes) -> None:
    assert Sigset.from_bytes(data).to_bytes() == data


@given(u64, u64, u64, st.frozensets(signals))
def test_sigaction_round_trip(
    handler: int, flags: int, restorer: int, mask: frozenset[int]
) -> None:
    act = Sigaction(handler, SA(flags), restorer, mask)
    data = act.to_bytes()
    assert len(data) == Sigaction.sizeof()
    assert Sigaction.from_bytes(data) == act


@given(st.binary(min_size=32, max_size=32))
def test_sigaction_bytes_round_trip(data: bytes) -> None:
    assert Sigaction.from_bytes(data).to_bytes() == data


# ---- kill of a process group, and kill(-1) ----


@pytest.fixture
def group() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two sleeps in a process group of their own (the first leads it)."""
    leader = subprocess.Popen(["sleep", "100"], process_group=0)
    member = subprocess.Popen(["sleep", "100"], process_group=leader.pid)
    outsider = subprocess.Popen(["sleep", "100"], process_group=0)
    yield [leader, member, outsider]
    for popen in (leader, member, outsider):
        popen.kill()
        popen.wait()


async def test_kill_process_group(
    thread: Thread, group: list[subprocess.Popen[bytes]]
) -> None:
    from rsyscall.signal import ProcessGroup

    leader, member, outsider = group
    pgroup = thread.task.make_process_group(leader.pid)
    assert isinstance(pgroup, ProcessGroup) and pgroup.pgid == leader.pid
    await pgroup.kill(0)  # it exists
    await pgroup.kill(SIG.TERM)
    assert leader.wait() == -signal.SIGTERM
    assert member.wait() == -signal.SIGTERM
    assert outsider.poll() is None  # another group: untouched
    # An empty group now: ESRCH.
    with pytest.raises(ProcessLookupError):
        await pgroup.kill(SIG.TERM)
    await still_works(thread)


async def test_kill_own_process_group(thread: Thread) -> None:
    """pgid 0 is the caller's own group (kill(0, sig)); a child that leads
    a group of its own and a grandchild in it both get a group's signal
    (SIGSTOP and SIGCONT, seen in /proc: a SIGKILL of the child would take
    the grandchild too, through its parent-death signal, and prove
    nothing)."""
    import time

    child = await thread.clone()
    await child.task.setpgid()
    grandchild = await child.clone()
    pgid = child.process.process.pid
    assert await grandchild.task.getpgid() == pgid
    own = child.task.make_process_group()
    assert own.pgid == 0
    await own.kill(0)  # the child's own group: it exists
    pids = [pgid, grandchild.process.process.pid]
    group = thread.task.make_process_group(pgid)

    def states() -> list[str]:
        return [process_state(pid) for pid in pids]

    await group.kill(SIG.STOP)
    deadline = time.monotonic() + 10
    while states() != ["T", "T"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert states() == ["T", "T"]
    await group.kill(SIG.CONT)
    while "T" in states() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "T" not in states()
    await grandchild.exit(0)
    assert (await grandchild.process.waitpid()).exit_status == 0
    await child.exit(0)
    assert (await child.process.waitpid()).exit_status == 0
    await still_works(thread)


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


async def test_process_group_bad_input(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(ValueError):
        task.make_process_group(-1)  # -1 is kill_all, not a group
    with pytest.raises(TypeError):
        task.make_process_group("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        task.make_process_group(True)
    child = await thread.clone()
    await child.task.setpgid()
    pgroup = child.task.make_process_group()
    with pytest.raises(OSError) as info:
        await pgroup.kill(65)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await pgroup.kill("TERM")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await pgroup.kill(1 << 40)
    await child.exit(0)
    await child.process.waitpid()
    await still_works(thread)


async def test_kill_all_reaches_only_its_pid_namespace(thread: Thread) -> None:
    """kill(-1) from the init of a new pid namespace signals every other
    process in that namespace, and nothing outside it.  (Never made from
    the test's own namespace: it would signal every process on the host.)"""
    from rsyscall.sched import CLONE

    outsider = subprocess.Popen(["sleep", "100"])
    try:
        child = await thread.clone(CLONE.NEWUSER | CLONE.NEWPID)
        # The guard that makes kill(-1) safe here: the child is pid 1 of a
        # namespace of its own.
        assert await child.task.getpid() == 1
        nspid = status_field_of(child.process.process.pid, "NSpid").split()
        assert len(nspid) >= 2 and nspid[-1] == "1"
        # No other process in the namespace: nobody to signal.
        with pytest.raises(ProcessLookupError):
            await child.task.kill_all(0)
        first = await child.clone()
        second = await child.clone()
        await child.task.kill_all(0)
        await child.task.kill_all(SIG.KILL)
        assert (await first.process.waitpid()).killed_with() == SIG.KILL
        assert (await second.process.waitpid()).killed_with() == SIG.KILL
        # The caller itself is spared, and the host's processes too.
        assert await child.task.getpid() == 1
        assert outsider.poll() is None
        with pytest.raises(TypeError):
            await child.task.kill_all("KILL")  # type: ignore[arg-type]
        await child.exit(0)
        assert (await child.process.waitpid()).exit_status == 0
    finally:
        outsider.kill()
        outsider.wait()
    await still_works(thread)


def status_field_of(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(field)
