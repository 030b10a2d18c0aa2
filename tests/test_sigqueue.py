"""rsyscall.signal's queued signals and waiting: rt_sigqueueinfo,
rt_tgsigqueueinfo, sigpending, sigtimedwait, sigsuspend, and sigaltstack,
on every kind of thread.  Masks are changed only in children cloned from
the thread of the test."""

from __future__ import annotations

import anyio
import pytest

from rsyscall import Thread
from rsyscall.signal import (
    MINSIGSTKSZ,
    SI,
    SIG,
    SIGSTKSZ,
    SS,
    HowSIG,
    Siginfo,
    Sigset,
    Stack,
)
from rsyscall.time import Timespec

pytestmark = pytest.mark.anyio

RT = 40  # a real-time signal: queued once per send


async def test_queued_signal_with_its_value(thread: Thread) -> None:
    child = await thread.clone()
    await child.task.sigprocmask(HowSIG.BLOCK, await child.ptr(Sigset({SIG.USR1, RT})))
    process = child.process.process
    sender = await thread.task.getpid()
    uid = await thread.task.getuid()
    info = await thread.ptr(Siginfo(SIG.USR1, SI.QUEUE, pid=sender, uid=uid, value=0x1234))
    await process.rt_sigqueueinfo(SIG.USR1, info)
    pending = await (await child.task.sigpending(await child.malloc(Sigset))).read()
    assert pending == {SIG.USR1}
    wanted = await child.ptr(Sigset({SIG.USR1, RT}))
    signo, got = await child.task.sigtimedwait(wanted, await child.malloc(Siginfo))
    assert signo == SIG.USR1
    taken = await got.read()
    assert (taken.signo, taken.code, taken.pid, taken.uid, taken.value) == (
        SIG.USR1, SI.QUEUE, sender, uid, 0x1234)
    assert await (await child.task.sigpending(await child.malloc(Sigset))).read() == Sigset()
    # A real-time signal queues once per send, each with its own value.
    for value in (1, 2):
        await thread.task.rt_tgsigqueueinfo(
            process.pid, process.pid, RT,
            await thread.ptr(Siginfo(RT, SI.QUEUE, pid=sender, uid=uid, value=value)))
    values = []
    for _ in range(2):
        signo, got = await child.task.sigtimedwait(wanted, await child.malloc(Siginfo))
        assert signo == RT
        values.append((await got.read()).value)
    assert values == [1, 2]
    # Nothing pending: the timeout runs out.
    with pytest.raises(BlockingIOError):
        await child.task.sigtimedwait(wanted, None, await child.ptr(Timespec(0, 1_000_000)))
    # A code that claims the kernel (or kill) sent it is refused from another process.
    with pytest.raises(PermissionError):
        await process.rt_sigqueueinfo(SIG.USR1, await thread.ptr(Siginfo(SIG.USR1, SI.USER)))
    with pytest.raises(TypeError):
        await process.rt_sigqueueinfo(SIG.USR1, await thread.ptr(Sigset()))  # type: ignore[arg-type]
    await child.exit(0)


async def test_sigtimedwait_without_info_and_the_siginfo_struct(thread: Thread) -> None:
    child = await thread.clone()
    await child.task.sigprocmask(HowSIG.BLOCK, await child.ptr(Sigset({SIG.USR2})))
    await child.process.process.kill(SIG.USR2)
    assert await child.task.sigtimedwait(await child.ptr(Sigset({SIG.USR2}))) == SIG.USR2
    await child.exit(0)
    info = Siginfo(RT, SI.QUEUE, pid=5, uid=6, value=(1 << 64) - 1, rest=b"x")
    assert Siginfo.from_bytes(info.to_bytes()) == info and Siginfo.sizeof() == 128
    assert Siginfo(SIG.CHLD, value=0xFFFFFFFF).status == -1
    with pytest.raises(ValueError):
        Siginfo(SIG.USR1, value=-1)


async def test_sigsuspend_waits_until_cancelled(thread: Thread) -> None:
    child = await thread.clone()
    with anyio.move_on_after(0.3) as scope:
        await child.task.sigsuspend(await child.ptr(Sigset()))
    assert scope.cancelled_caught
    # The child is usable after the interrupted wait.
    assert await child.task.getpid() == child.process.pid
    await child.exit(0)


async def test_sigaltstack(thread: Thread) -> None:
    child = await thread.clone()
    old = await (await child.task.sigaltstack(None, await child.malloc(Stack))).read()
    assert old.flags & SS.DISABLE
    memory = await child.malloc(bytes, SIGSTKSZ)
    await child.task.sigaltstack(await child.ptr(Stack.of(memory)))
    now = await (await child.task.sigaltstack(None, await child.malloc(Stack))).read()
    assert (now.sp, now.size, now.flags) == (memory.address, SIGSTKSZ, SS.NONE)
    small = await child.malloc(bytes, MINSIGSTKSZ - 1)
    with pytest.raises(OSError) as info:
        await child.task.sigaltstack(await child.ptr(Stack.of(small)))
    assert info.value.errno == 12  # ENOMEM
    with pytest.raises(OSError) as info:
        await child.task.sigaltstack(await child.ptr(Stack(0, SS(4))))
    assert info.value.errno == 22  # EINVAL: no such flag
    await child.task.sigaltstack(await child.ptr(Stack(0, SS.DISABLE)))
    after = await (await child.task.sigaltstack(None, await child.malloc(Stack))).read()
    assert after.flags & SS.DISABLE
    await child.exit(0)
