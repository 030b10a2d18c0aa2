"""getrusage(2) (rsyscall.sys.resource) and struct timeval
(rsyscall.sys.time), on every kind of thread."""

from __future__ import annotations

import pytest

from rsyscall import Thread
from rsyscall.sys.resource import RUSAGE, Rusage
from rsyscall.sys.time import Timeval

pytestmark = pytest.mark.anyio

BURN = 'i=0; while [ "$i" -lt 30000 ]; do i=$((i+1)); done'


async def test_getrusage_of_self_and_children(thread: Thread) -> None:
    usage = await (await thread.task.getrusage(RUSAGE.SELF, await thread.malloc(Rusage))).read()
    assert isinstance(usage.utime, Timeval) and usage.maxrss > 0
    child = await thread.clone()
    before = await (await child.task.getrusage(RUSAGE.CHILDREN,
                                               await child.malloc(Rusage))).read()
    assert before.utime.to_float() + before.stime.to_float() == 0  # nothing reaped yet
    await child.run(thread.environ.sh.args("-c", BURN))
    after = await (await child.task.getrusage(RUSAGE.CHILDREN, await child.malloc(Rusage))).read()
    assert after.utime.to_float() + after.stime.to_float() > 0
    assert after.minflt > 0
    own = await (await child.task.getrusage(RUSAGE.THREAD, await child.malloc(Rusage))).read()
    assert own.maxrss >= 0
    await child.exit(0)
    with pytest.raises(TypeError):
        await thread.task.getrusage(0, await thread.malloc(Rusage))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.task.getrusage(RUSAGE.SELF, await thread.malloc(Timeval))  # type: ignore[arg-type]


def test_the_structs_round_trip() -> None:
    usage = Rusage(Timeval(1, 2), Timeval(3, 999_999), maxrss=4, nivcsw=5)
    assert Rusage.from_bytes(usage.to_bytes()) == usage and Rusage.sizeof() == 144
    with pytest.raises(ValueError):
        Timeval(0, 1_000_000)
    with pytest.raises(TypeError):
        Rusage(Timeval(0, 0), Timeval(0, 0), unknown=1)


# ---- waitid's fifth argument ----


async def test_waitid_rusage(thread: Thread) -> None:
    """waitid with a Rusage pointer: the child's resource use, written by
    the kernel with the siginfo (W.NOWAIT leaves the child for its
    AsyncChildProcess to reap)."""
    from rsyscall.struct import Int32
    from rsyscall.sys.wait import P, Siginfo, W

    child = await thread.clone()
    process = await child.exec(thread.environ.sh.args(
        "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"
    ))
    pid = process.process.pid
    # Nothing yet, or the exit: with NOHANG the call never blocks.
    await process.waitpid(W.EXITED | W.NOWAIT)
    info, usage = await thread.task.waitid(
        P.PID, pid, await thread.malloc(Siginfo), W.EXITED | W.NOWAIT, await thread.malloc(Rusage)
    )
    siginfo = await info.read()
    assert siginfo.pid == pid
    rusage = await usage.read()
    assert isinstance(rusage, Rusage)
    # The shell counted for a while: some CPU time, some memory.
    assert rusage.utime.to_float() + rusage.stime.to_float() > 0
    assert rusage.maxrss > 0
    assert (await process.waitpid()).exit_status == 0
    # A wrong buffer type is refused before the call; nothing is consumed.
    infop = await thread.malloc(Siginfo)
    with pytest.raises(TypeError):
        await thread.task.waitid(
            P.PID, pid, infop, W.EXITED, await thread.malloc(Int32)  # type: ignore[call-overload]
        )
    assert not infop.consumed
    # An error (no such child) gives both pointers back.
    usage_buf = await thread.malloc(Rusage)
    with pytest.raises(ChildProcessError):
        await thread.task.waitid(P.PID, pid, infop, W.EXITED | W.NOHANG, usage_buf)
    assert not infop.consumed and not usage_buf.consumed
