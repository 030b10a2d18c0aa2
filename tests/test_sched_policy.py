"""rsyscall.sched's scheduling calls (getcpu, sched_setscheduler and
friends, sched_setattr/getattr, sched_rr_get_interval) and the raw clone(2)
path of Thread.clone, on every kind of thread.  Policies are changed only
in children cloned from the thread of the test; the real-time ones need
root (CAP_SYS_NICE), which the tests run as."""

from __future__ import annotations

import errno
import signal

import anyio
import pytest

from rsyscall import ChildThread, Thread, local_thread
from rsyscall.near.sysnum import SYS
from rsyscall.sched import CLONE, SCHED, SCHED_FLAG, CpuSet, SchedAttr, SchedParam
from rsyscall.signal import SIG, Sigaction, Sighandler
from rsyscall.struct import UInt32
from rsyscall.sys.ptrace import PTRACE_O, PTRACE_SYSCALL_INFO, PtraceSyscallInfo, UserRegsStruct
from rsyscall.sys.wait import CLD, P, W
from rsyscall.sys.wait import Siginfo as WaitSiginfo
from rsyscall.time import Timespec

pytestmark = pytest.mark.anyio


async def test_getcpu_is_in_the_affinity_mask(thread: Thread) -> None:
    mask, _ = await thread.task.sched_getaffinity(await thread.malloc(CpuSet))
    allowed = await mask.read()
    cpu, node = await thread.task.getcpu(await thread.malloc(UInt32), await thread.malloc(UInt32))
    assert await cpu.read() in allowed and await node.read() >= 0
    # Pinned to one CPU, a child runs there.
    child = await thread.clone()
    only = min(allowed)
    await child.task.sched_setaffinity(await child.ptr(CpuSet([only])))
    await child.task.sched_yield()
    assert await (await child.task.getcpu(await child.malloc(UInt32))).read() == only
    await child.exit(0)
    with pytest.raises(TypeError):
        await thread.task.getcpu(await thread.malloc(CpuSet))  # type: ignore[arg-type]


async def test_priority_ranges(thread: Thread) -> None:
    task = thread.task
    assert (await task.sched_get_priority_min(SCHED.FIFO),
            await task.sched_get_priority_max(SCHED.FIFO)) == (1, 99)
    assert await task.sched_get_priority_max(SCHED.RR) == 99
    assert await task.sched_get_priority_max(SCHED.OTHER) == 0
    with pytest.raises(OSError) as info:
        await task.sched_get_priority_max(SCHED(42))
    assert info.value.errno == errno.EINVAL


async def test_setscheduler_fifo_and_rr_on_a_child(thread: Thread) -> None:
    child = await thread.clone()
    process = child.process.process
    assert await process.sched_getscheduler() == SCHED.OTHER
    # As root: a real-time policy, set from the parent, read in the child.
    await process.sched_setscheduler(SCHED.FIFO, await thread.ptr(SchedParam(10)))
    assert await child.task.sched_getscheduler() == SCHED.FIFO
    param = await (await child.task.sched_getparam(await child.malloc(SchedParam))).read()
    assert param == SchedParam(10)
    await child.task.sched_setparam(await child.ptr(SchedParam(20)))
    got = await (await process.sched_getparam(await thread.malloc(SchedParam))).read()
    assert got.priority == 20
    # FIFO has no time slice.
    quantum = await (await process.sched_rr_get_interval(await thread.malloc(Timespec))).read()
    assert quantum == Timespec(0, 0)
    await child.task.sched_setscheduler(SCHED.RR | SCHED.RESET_ON_FORK,
                                        await child.ptr(SchedParam(5)))
    assert await process.sched_getscheduler() == SCHED.RR | SCHED.RESET_ON_FORK
    quantum = await (await child.task.sched_rr_get_interval(await child.malloc(Timespec))).read()
    assert quantum.to_float() > 0
    # A priority outside the policy's range: EINVAL.
    with pytest.raises(OSError) as info:
        await process.sched_setscheduler(SCHED.FIFO, await thread.ptr(SchedParam(100)))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await process.sched_setscheduler(SCHED.OTHER, await thread.ptr(SchedParam(1)))
    assert info.value.errno == errno.EINVAL
    await child.task.sched_setscheduler(SCHED.OTHER, await child.ptr(SchedParam(0)))
    await child.exit(0)


async def test_setattr_getattr_round_trip(thread: Thread) -> None:
    child = await thread.clone()
    await child.task.sched_setattr(await child.ptr(SchedAttr(SCHED.BATCH, nice=5)))
    attr = await (await child.task.sched_getattr(await child.malloc(SchedAttr))).read()
    assert (attr.policy, attr.nice, attr.size) == (SCHED.BATCH, 5, 56)
    process = child.process.process
    await process.sched_setattr(await thread.ptr(
        SchedAttr(SCHED.FIFO, SCHED_FLAG.RESET_ON_FORK, priority=7)))
    attr = await (await process.sched_getattr(await thread.malloc(SchedAttr))).read()
    assert (attr.policy, attr.priority) == (SCHED.FIFO, 7)
    assert attr.flags & SCHED_FLAG.RESET_ON_FORK
    assert await child.task.sched_getscheduler() == SCHED.FIFO | SCHED.RESET_ON_FORK
    # A size smaller than the first published struct: E2BIG (the kernel
    # writes its own size into the struct, as for any size it refuses).
    with pytest.raises(OSError) as info:
        await child.task.sched_setattr(await child.ptr(SchedAttr(SCHED.OTHER, size=8)))
    assert info.value.errno == errno.E2BIG
    with pytest.raises(ValueError):
        await child.task.sched_setattr(await child.ptr(SchedAttr(SCHED.OTHER)), flags=1)
    await child.task.sched_setattr(await child.ptr(SchedAttr(SCHED.OTHER)))
    await child.exit(0)
    attr = SchedAttr(SCHED.DEADLINE, runtime=10**7, deadline=3 * 10**7, period=10**8)
    assert SchedAttr.from_bytes(attr.to_bytes()) == attr and SchedAttr.sizeof() == 56


async def test_legacy_clone_child(thread: Thread) -> None:
    child = await thread.clone(legacy_clone=True)
    assert await child.task.getpid() == child.process.pid
    assert await child.task.getppid() == await thread.task.getpid()
    # Handlers inherited through clone(2) are reset, as CLONE_CLEAR_SIGHAND would.
    if thread is local_thread:
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_DFL, signal.SIG_IGN)
    old = await (await child.task.sigaction(SIG.INT, None, await child.malloc(Sigaction))).read()
    assert old.handler == Sighandler.DFL
    # A child of it, made the same way, and a program run from it.
    grandchild = await child.clone(CLONE.FILES, legacy_clone=True)
    assert await grandchild.task.getppid() == child.process.pid
    await grandchild.exit(0)
    state = await child.run(thread.environ.sh.args("-c", "exit 3"), check=False)
    assert state.exit_status == 3
    assert (await child.exit(0)).clean()
    with pytest.raises(TypeError):
        await thread.clone(legacy_clone=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await thread.clone(CLONE.NEWTIME, legacy_clone=True)
    # The thread is usable after the refusal.
    assert await thread.task.getpid() > 0


async def test_unsafe_clone_refuses_what_clone_cannot_take(thread: Thread) -> None:
    with pytest.raises(ValueError):
        await thread.task.unsafe_clone(CLONE.CLEAR_SIGHAND)
    with pytest.raises(ValueError):
        await thread.task.unsafe_clone(CLONE(SIG.CHLD))
    with pytest.raises(ValueError):
        await thread.task.unsafe_clone(CLONE.VM, exit_signal=256)


def test_the_structs_round_trip() -> None:
    assert SchedParam.from_bytes(SchedParam(99).to_bytes()) == SchedParam(99)
    assert SchedParam.sizeof() == 4
    with pytest.raises(ValueError):
        SchedAttr(SCHED.OTHER, nice=1 << 31)
    assert repr(SCHED(1 | SCHED.RESET_ON_FORK)).startswith("<SCHED.FIFO|RESET_ON_FORK")


async def test_clone_falls_back_to_clone_where_clone3_is_refused(thread: Thread) -> None:
    """A host whose seccomp profile answers clone3 with ENOSYS, played by a
    tracer: it skips the clone3 syscall of a child thread and makes it fail
    with ENOSYS, and Thread.clone makes the grandchild with clone(2)."""
    tracer = await thread.clone()
    parent = await tracer.clone()
    process = parent.process.process
    pid = process.pid

    async def wait_stop() -> None:
        # Polled (W.NOHANG), so that the tracer stays free for requests
        # while the tracee runs: a child of an ssh thread needs it.
        with anyio.fail_after(60):
            while True:
                infop = await tracer.task.waitid(
                    P.PID, pid, await tracer.malloc(WaitSiginfo),
                    W.STOPPED | W.EXITED | W.NOHANG)
                info = await infop.read()
                if info.pid:
                    break
                await anyio.sleep(0.001)
        assert info.code == CLD.TRAPPED

    async def registers() -> UserRegsStruct:
        return await (await process.ptrace_getregs(await tracer.malloc(UserRegsStruct))).read()

    await process.ptrace_seize(PTRACE_O.TRACESYSGOOD | PTRACE_O.EXITKILL)
    await process.ptrace_interrupt()
    await wait_stop()
    made: list[ChildThread] = []

    async def clone_in_parent() -> None:
        made.append(await parent.clone())

    refused = fell_back = False
    async with anyio.create_task_group() as group:
        group.start_soon(clone_in_parent)
        for _ in range(1000):
            await process.ptrace_syscall()
            await wait_stop()
            info = await (await process.ptrace_get_syscall_info(
                await tracer.malloc(PtraceSyscallInfo))).read()
            if info.op != PTRACE_SYSCALL_INFO.ENTRY:
                continue
            if info.nr == SYS.clone3 and not refused:
                regs = await registers()
                regs.orig_rax = (1 << 64) - 1  # no syscall: skip it
                await process.unsafe_ptrace_setregs(await tracer.ptr(regs))
                await process.ptrace_syscall()
                await wait_stop()  # its exit stop
                regs = await registers()
                regs.rax = (1 << 64) - errno.ENOSYS
                await process.unsafe_ptrace_setregs(await tracer.ptr(regs))
                refused = True
            elif info.nr == SYS.clone and refused:
                fell_back = True
                await process.ptrace_detach()  # the clone goes on, untraced
                break
    assert refused and fell_back
    (child,) = made
    assert await child.task.getpid() == child.process.pid
    assert await child.task.getppid() == pid
    assert (await child.exit(0)).clean()
    await parent.exit(0)
    await tracer.exit(0)
