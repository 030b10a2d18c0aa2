"""ptrace(2) (rsyscall.sys.ptrace), on every kind of thread: a child thread
of the thread of the test is the tracer, and a child of that child the
tracee (ptrace is never aimed at the Python process or the thread under
test).  We run as root, so no Yama scope stands in the way (and this
kernel has no Yama at all)."""

from __future__ import annotations

import errno

import anyio
import pytest

from rsyscall import ChildThread, SyscallHangup, Thread
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SI, SIG, HowSIG, Siginfo, Sigset
from rsyscall.struct import UInt64
from rsyscall.sys.ptrace import (
    NT,
    PTRACE,
    PTRACE_EVENT,
    PTRACE_O,
    PTRACE_PEEKSIGINFO,
    PTRACE_SYSCALL_INFO,
    PtracePeeksiginfoArgs,
    PtraceSyscallInfo,
    SiginfoList,
    UserFpregsStruct,
    UserRegsStruct,
    stop_event,
    stop_signal,
)
from rsyscall.sys.wait import CLD, ChildState, P, W
from rsyscall.sys.wait import Siginfo as WaitSiginfo

pytestmark = pytest.mark.anyio


async def wait_stop(tracer: ChildThread, pid: int) -> int:
    """Block in the tracer until its tracee `pid` stops; the stop status."""
    with anyio.fail_after(60):
        infop = await tracer.task.waitid(
            P.PID, pid, await tracer.malloc(WaitSiginfo), W.STOPPED | W.EXITED)
    info = await infop.read()
    assert info.code == CLD.TRAPPED, info
    return info.status


async def test_syscall_stops_registers_and_detach(thread: Thread) -> None:
    tracer = await thread.clone()
    tracee = await tracer.clone()
    process = tracee.process.process
    pid = process.pid
    await process.ptrace_seize(PTRACE_O.TRACESYSGOOD | PTRACE_O.EXITKILL)
    assert process.traced
    await process.ptrace_interrupt()
    # The library's own wait for the tracee's exit, running all along,
    # leaves the stops to the tracer's waitid (it looks while one is there).
    exited: list[ChildState] = []

    async def wait_for_exit() -> None:
        exited.append(await tracee.process.waitpid(W.EXITED))

    outer = anyio.create_task_group()
    await outer.__aenter__()
    outer.start_soon(wait_for_exit)
    await anyio.sleep(0.1)
    status = await wait_stop(tracer, pid)
    assert stop_signal(status) == SIG.TRAP and stop_event(status) == PTRACE_EVENT.STOP
    answer: list[int] = []

    async def getpid_in_tracee() -> None:
        answer.append(await tracee.task.getpid())

    seen_entry = seen_exit = False
    async with anyio.create_task_group() as group:
        group.start_soon(getpid_in_tracee)
        for _ in range(200):
            await process.ptrace_syscall()
            status = await wait_stop(tracer, pid)
            assert status & 0xFF == SIG.TRAP | 0x80  # a syscall stop, TRACESYSGOOD's mark
            info = await (await process.ptrace_get_syscall_info(
                await tracer.malloc(PtraceSyscallInfo))).read()
            if info.op == PTRACE_SYSCALL_INFO.ENTRY and info.nr == SYS.getpid:
                regs = await (await process.ptrace_getregs(
                    await tracer.malloc(UserRegsStruct))).read()
                assert regs.orig_rax == SYS.getpid
                assert regs.signed("rax") == -errno.ENOSYS  # not run yet
                assert info.arch == 0xC000003E and info.instruction_pointer == regs.rip
                seen_entry = True
                msg = await (await process.ptrace_geteventmsg(await tracer.malloc(UInt64))).read()
                assert msg == 1  # PTRACE_EVENTMSG_SYSCALL_ENTRY
                await process.ptrace_syscall()
                await wait_stop(tracer, pid)
                info = await (await process.ptrace_get_syscall_info(
                    await tracer.malloc(PtraceSyscallInfo))).read()
                assert info.op == PTRACE_SYSCALL_INFO.EXIT
                assert (info.rval, info.is_error) == (pid, False)
                regs = await (await process.ptrace_getregs(
                    await tracer.malloc(UserRegsStruct))).read()
                assert (regs.orig_rax, regs.rax) == (SYS.getpid, pid)
                # The same registers through GETREGSET NT_PRSTATUS.
                valid, rest = await process.ptrace_getregset(
                    NT.PRSTATUS, await tracer.malloc(UserRegsStruct))
                assert valid.size() == UserRegsStruct.sizeof() and rest.size() == 0
                assert await valid.read() == regs
                fp = await (await process.ptrace_getfpregs(
                    await tracer.malloc(UserFpregsStruct))).read()
                assert fp.mxcsr & 0x1F80 == 0x1F80  # all SSE exceptions masked, the default
                trap = await (await process.ptrace_getsiginfo(
                    await tracer.malloc(Siginfo))).read()
                assert trap.signo == SIG.TRAP
                mask = await (await process.ptrace_getsigmask(await tracer.malloc(Sigset))).read()
                assert SIG.KILL not in mask
                # Its stack is readable word by word through PEEKDATA.
                word = await (await process.ptrace_peekdata(
                    regs.rsp, await tracer.malloc(UInt64))).read()
                assert isinstance(word, int)
                seen_exit = True
                break
        assert seen_entry and seen_exit
        await process.ptrace_detach()
        assert not process.traced
    assert answer == [pid]
    # Untraced, it goes on as before and exits normally.
    assert await tracee.task.getppid() == tracer.process.pid
    with pytest.raises(SyscallHangup):
        await tracee.task.exit_group(0)
    await outer.__aexit__(None, None, None)
    assert len(exited) == 1 and exited[0].clean()
    await tracer.exit(0)


async def test_attach_and_errors(thread: Thread) -> None:
    tracer = await thread.clone()
    tracee = await tracer.clone()
    process = tracee.process.process
    # Not traced yet: the requests that need a stopped tracee say ESRCH.
    with pytest.raises(ProcessLookupError):
        await process.ptrace_cont()
    with pytest.raises(ProcessLookupError):
        await process.ptrace_getregs(await tracer.malloc(UserRegsStruct))
    # Options the kernel does not know: EIO from PTRACE_SEIZE.
    with pytest.raises(OSError) as info:
        await process.ptrace_seize(PTRACE_O(0x40000000))
    assert info.value.errno == errno.EIO
    await process.ptrace_attach()
    status = await wait_stop(tracer, process.pid)
    assert stop_signal(status) == SIG.STOP and stop_event(status) is None
    # Attached twice: EPERM.
    with pytest.raises(PermissionError):
        await process.ptrace_attach()
    # Not a seized tracee: no PTRACE_INTERRUPT (EIO).
    with pytest.raises(OSError) as info:
        await process.ptrace_interrupt()
    assert info.value.errno == errno.EIO
    await process.ptrace_setoptions(PTRACE_O.TRACESYSGOOD)
    # ... and EINVAL from PTRACE_SETOPTIONS.
    with pytest.raises(OSError) as info:
        await process.ptrace_setoptions(PTRACE_O(0x40000000))
    assert info.value.errno == errno.EINVAL
    # A word written into its memory (which is ours too: it shares the
    # tracer's address space) reads back through PEEKDATA.
    scratch = await tracer.malloc(bytes, 8)
    await process.unsafe_ptrace_pokedata(scratch.address, 0x1122334455667788)
    peeked = await process.ptrace_peekdata(scratch.address, await tracer.malloc(UInt64))
    word = await peeked.read()
    assert word == 0x1122334455667788
    with pytest.raises(OSError):
        await process.ptrace_peekdata(8, await tracer.malloc(UInt64))  # nothing mapped at 8
    # Detach without delivering the SIGSTOP it stopped for.
    await process.ptrace_detach()
    assert await tracee.task.getpid() == process.pid
    # A tracer that is not in charge (the test's thread) gets ESRCH; an
    # unknown pid likewise.
    other = thread.task.make_process(process.pid)
    with pytest.raises(ProcessLookupError):
        await other.ptrace_getregs(await thread.malloc(UserRegsStruct))
    with pytest.raises(TypeError):
        await process.ptrace_getregs(await tracer.malloc(UserFpregsStruct))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await process.ptrace_getregset(1.5, await tracer.malloc(UserRegsStruct))  # type: ignore[arg-type]
    # PTRACE_TRACEME as a raw request, from the tracee: its parent traces it now.
    await tracee.task.unsafe_ptrace(PTRACE.TRACEME, 0, 0, 0)
    with pytest.raises(PermissionError):
        await tracee.task.ptrace_traceme()  # already traced
    await tracee.exit(0)
    await tracer.exit(0)


def test_the_structs_round_trip() -> None:
    regs = UserRegsStruct(rax=(1 << 64) - 38, orig_rax=39, rip=0x1000)
    assert UserRegsStruct.from_bytes(regs.to_bytes()) == regs and regs.signed("rax") == -38
    assert UserRegsStruct.sizeof() == 216 and UserFpregsStruct.sizeof() == 512
    fp = UserFpregsStruct(cwd=0x37F, mxcsr=0x1F80, xmm_space=bytes(range(256)))
    assert UserFpregsStruct.from_bytes(fp.to_bytes()) == fp and fp.xmm(1) == bytes(range(16, 32))
    for info in (
        PtraceSyscallInfo(PTRACE_SYSCALL_INFO.ENTRY, 0xC000003E, 1, 2, 39, (1, 2, 3, 4, 5, 6)),
        PtraceSyscallInfo(PTRACE_SYSCALL_INFO.EXIT, rval=-2, is_error=True),
        PtraceSyscallInfo(PTRACE_SYSCALL_INFO.SECCOMP, nr=1, ret_data=7),
        PtraceSyscallInfo(PTRACE_SYSCALL_INFO.NONE),
    ):
        assert PtraceSyscallInfo.from_bytes(info.to_bytes()) == info
    assert PtraceSyscallInfo.sizeof() == 88
    with pytest.raises(TypeError):
        UserRegsStruct(eax=1)
    with pytest.raises(ValueError):
        PtraceSyscallInfo(PTRACE_SYSCALL_INFO.ENTRY, args=(1, 2))
    assert stop_signal(SIG.TRAP | 0x80) == SIG.TRAP
    assert stop_event(SIG.TRAP | PTRACE_EVENT.EXEC << 8) == PTRACE_EVENT.EXEC


async def test_changed_result_and_exec_event(thread: Thread) -> None:
    tracer = await thread.clone()
    tracee = await tracer.clone()
    process = tracee.process.process
    pid = process.pid
    await process.ptrace_seize(PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEEXEC | PTRACE_O.EXITKILL)
    await process.ptrace_interrupt()
    await wait_stop(tracer, pid)
    answer: list[int] = []

    async def getpid_in_tracee() -> None:
        answer.append(await tracee.task.getpid())

    async with anyio.create_task_group() as group:
        group.start_soon(getpid_in_tracee)
        for _ in range(200):
            await process.ptrace_syscall()
            await wait_stop(tracer, pid)
            info = await (await process.ptrace_get_syscall_info(
                await tracer.malloc(PtraceSyscallInfo))).read()
            if info.op != PTRACE_SYSCALL_INFO.EXIT:
                continue
            regs = await (await process.ptrace_getregs(await tracer.malloc(UserRegsStruct))).read()
            if regs.orig_rax == SYS.getpid:
                # At the exit stop, the tracer decides what the call returned.
                regs.rax = 4242
                await process.unsafe_ptrace_setregs(await tracer.ptr(regs))
                break
        await process.ptrace_cont()
    assert answer == [4242]
    # Exec stops it with PTRACE_EVENT.EXEC; the event message is its
    # former thread id (its pid: it has one thread).
    program = await tracee.exec(thread.environ.sh.args("-c", "exit 7"))
    status = await wait_stop(tracer, pid)
    assert stop_signal(status) == SIG.TRAP and stop_event(status) == PTRACE_EVENT.EXEC
    assert await (await process.ptrace_geteventmsg(await tracer.malloc(UInt64))).read() == pid
    await process.ptrace_cont()
    # Traced to the end; the library's wait gets the exit, not a stop.
    assert (await program.waitpid()).exit_status == 7
    await tracer.exit(0)


async def test_peeksiginfo_reads_pending_signals_without_taking_them(thread: Thread) -> None:
    tracer = await thread.clone()
    tracee = await tracer.clone()
    rt = 40
    await tracee.task.sigprocmask(HowSIG.BLOCK, await tracee.ptr(Sigset({SIG.USR1, rt})))
    process = tracee.process.process
    pid = process.pid
    me, uid = await tracer.task.getpid(), await tracer.task.getuid()
    # One for the process's queue, one for its thread's.
    await process.rt_sigqueueinfo(
        SIG.USR1, await tracer.ptr(Siginfo(SIG.USR1, SI.QUEUE, pid=me, uid=uid, value=11)))
    await tracer.task.rt_tgsigqueueinfo(
        pid, pid, rt, await tracer.ptr(Siginfo(rt, SI.QUEUE, pid=me, uid=uid, value=22)))
    await process.ptrace_seize()
    await process.ptrace_interrupt()
    await wait_stop(tracer, pid)
    room = 4 * Siginfo.sizeof()
    valid, rest = await process.ptrace_peeksiginfo(
        await tracer.ptr(PtracePeeksiginfoArgs(0, PTRACE_PEEKSIGINFO.NONE, 4)),
        await tracer.malloc(SiginfoList, room))
    assert [(info.signo, info.value) for info in await valid.read()] == [(rt, 22)]
    assert valid.size() + rest.size() == room
    valid, _ = await process.ptrace_peeksiginfo(
        await tracer.ptr(PtracePeeksiginfoArgs(0, PTRACE_PEEKSIGINFO.SHARED, 4)),
        await tracer.malloc(SiginfoList, room))
    assert [(info.signo, info.value, info.pid) for info in await valid.read()] == [
        (SIG.USR1, 11, me)]
    # Asking for more than the buffer holds is refused before the syscall.
    with pytest.raises(ValueError):
        await process.ptrace_peeksiginfo(
            await tracer.ptr(PtracePeeksiginfoArgs(0, PTRACE_PEEKSIGINFO.NONE, 5)),
            await tracer.malloc(SiginfoList, room))
    await process.ptrace_detach()
    # Peeked, not taken: both are still pending.
    assert await (await tracee.task.sigpending(await tracee.malloc(Sigset))).read() == {
        SIG.USR1, rt}
    await tracee.exit(0)
    await tracer.exit(0)


async def test_group_stop_and_listen(thread: Thread) -> None:
    tracer = await thread.clone()
    tracee = await tracer.clone()
    process = tracee.process.process
    pid = process.pid
    await process.ptrace_seize()
    await process.kill(SIG.STOP)
    # First the signal-delivery stop for SIGSTOP ...
    status = await wait_stop(tracer, pid)
    assert stop_signal(status) == SIG.STOP and stop_event(status) is None
    # ... delivered, it makes a group stop, which a seized tracee reports
    # as PTRACE_EVENT.STOP with the stopping signal.
    await process.ptrace_cont(SIG.STOP)
    status = await wait_stop(tracer, pid)
    assert stop_signal(status) == SIG.STOP and stop_event(status) == PTRACE_EVENT.STOP
    # LISTEN: it stays stopped, and reports when SIGCONT wakes it.
    await process.ptrace_listen()
    await process.kill(SIG.CONT)
    status = await wait_stop(tracer, pid)
    assert stop_event(status) == PTRACE_EVENT.STOP and stop_signal(status) == SIG.TRAP
    await process.ptrace_detach()
    assert await tracee.task.getpid() == pid
    await tracee.exit(0)
    await tracer.exit(0)
