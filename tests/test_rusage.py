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
