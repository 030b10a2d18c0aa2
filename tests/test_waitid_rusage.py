"""waitid(2)'s fifth argument, the child's resource use (rsyscall.sys.wait
with rsyscall.sys.resource's Rusage), on every kind of thread."""

from __future__ import annotations

import pytest

from rsyscall import Thread
from rsyscall.sys.resource import Rusage
from rsyscall.sys.wait import CLD, P, Siginfo, W

pytestmark = pytest.mark.anyio

BURN = 'i=0; while [ "$i" -lt 30000 ]; do i=$((i+1)); done'


async def test_waitid_fills_the_rusage_of_the_child(thread: Thread) -> None:
    child = await thread.clone()
    process = await child.exec(thread.environ.sh.args("-c", BURN))
    pidfd = process.process.pidfd
    assert pidfd is not None
    # W.NOWAIT leaves the child for the library to reap; the kernel fills
    # rusage all the same.
    infop, usage = await thread.task.waitid(
        P.PIDFD, pidfd, await thread.malloc(Siginfo), W.EXITED | W.NOWAIT,
        await thread.malloc(Rusage))
    info = await infop.read()
    assert (info.code, info.status, info.pid) == (CLD.EXITED, 0, process.pid)
    used = await usage.read()
    assert used.utime.to_float() + used.stime.to_float() > 0 and used.maxrss > 0
    assert (await process.check()).clean()
    with pytest.raises(TypeError):
        await thread.task.waitid(P.PID, 1, await thread.malloc(Siginfo), W.EXITED | W.NOHANG,
                                 await thread.malloc(Siginfo))  # type: ignore[call-overload]
    # Without rusage, one pointer comes back, as before.
    with pytest.raises(ChildProcessError):
        await thread.task.waitid(P.PID, 1, await thread.malloc(Siginfo), W.EXITED | W.NOHANG)
