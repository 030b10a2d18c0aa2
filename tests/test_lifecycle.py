"""Child lifecycle: nothing leaks, nothing hangs, no memory is freed under a
running process, and whoever can reach a process can wait for it."""

from __future__ import annotations

import gc
import os
import time

import anyio
import pytest

from rsyscall import FileDescriptor, SyscallHangup, local_thread
from rsyscall.epoller import FDClosedWhileWaiting
from rsyscall.sched import CLONE
from rsyscall.signal import SIG
from rsyscall.sys.socket import AF, SOCK
from rsyscall.tasks import clone as clone_module
from rsyscall.unistd import Pipe

from .util import open_fds

pytestmark = pytest.mark.anyio


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return {int(child) for child in children.read().split()}


def state_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.isolated
async def test_exit_leaves_nothing_behind() -> None:
    """500 children cloned and exited: no process, no zombie, no fd, and the
    collector finds nothing that crashes it later."""
    await local_thread.epoller()
    gc.collect()
    fds_before = open_fds()
    ours_before = children_of(os.getpid())
    for _ in range(500):
        child = await local_thread.clone()
        await child.task.getpid()
        await child.exit(0)
    del child
    assert children_of(os.getpid()) == ours_before
    assert open_fds() == fds_before
    gc.collect()
    # Memory is still usable, and more children work.
    for _ in range(50):
        child = await local_thread.clone()
        await child.exit(0)
    assert children_of(os.getpid()) == ours_before


async def test_finished_children_kept_referenced_hold_nothing() -> None:
    await local_thread.epoller()
    gc.collect()
    fds_before = open_fds()
    ours_before = children_of(os.getpid())
    true = await local_thread.environ.which("true")
    finished = []
    for _ in range(100):
        child = await local_thread.clone()
        process = await child.exec(true)
        await process.check()
        finished.append((child, process))
    # Reaped, so no zombies, and their pidfds and connections are closed at
    # once, whether or not anyone still holds the objects.
    assert children_of(os.getpid()) == ours_before
    assert open_fds() == fds_before
    assert all(process.state is not None and process.state.clean() for _, process in finished)


async def test_spawning_frees_fds_without_the_cyclic_collector() -> None:
    true = await local_thread.environ.which("true")
    await local_thread.run(true)  # warm up: epoller, arenas
    gc.collect()
    fds_before = open_fds()
    gc.disable()
    try:
        for _ in range(50):
            await local_thread.run(true)
        dropped = await local_thread.clone()
        await dropped.task.getpid()
        del dropped
        assert set(os.listdir("/proc/self/fd")) == {str(fd) for fd in fds_before}
    finally:
        gc.enable()


async def test_grandchild_stack_lives_until_it_is_dead(tmp_path: object) -> None:
    """A grandchild runs on memory of ours; after its parent thread execs,
    dropping its handle kills it, and its stack is released only once it is
    dead: it dies of our SIGKILL, never of a fault in reused memory."""
    pipe = await local_thread.pipe()
    child = await local_thread.clone()
    grandchild = await child.clone()
    grandchild_pid = grandchild.process.pid
    memory = grandchild.process.process.memory
    assert memory is not None and not memory.released
    # The child becomes a program that waits for its children and reports
    # how each ended.
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    script = (
        "import os\n"
        "pid, status = os.wait()\n"
        "print(pid, os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1,"
        " os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1, flush=True)\n"
    )
    python = await local_thread.environ.which("python3")
    await child.exec(python.args("-c", script))
    await pipe.write.close()
    assert await grandchild.task.getpid() == grandchild_pid  # still ours to use
    del grandchild
    gc.collect()
    # Reuse as much freed memory as we can while it dies.
    filler = [await local_thread.ptr(b"\xff" * 4000) for _ in range(200)]
    output = await local_thread.read_to_eof(pipe.read)
    pid, signal_number, exit_status = map(int, output.split())
    assert pid == grandchild_pid
    # Killed by us, or it saw its connection close first and left (0, or 1
    # if the answers to its last requests found the connection closed):
    # never a fault in memory reused under it.
    assert signal_number == SIG.KILL or (signal_number == -1 and exit_status in (0, 1))
    del filler
    clone_module.sweep()
    assert memory.released


async def test_grandchild_is_waitable_after_its_parent_execs() -> None:
    child = await local_thread.clone()
    grandchild = await child.clone()
    process = grandchild.process
    await grandchild.exec(local_thread.environ.sh.args("-c", "sleep 0.2; exit 7"))
    # The parent becomes a program that reaps whatever children it has.
    python = await local_thread.environ.which("python3")
    await child.exec(python.args("-c", "import os; os.wait()"))
    with anyio.fail_after(10):
        state = await process.waitpid()
    assert state.exit_status == 7
    assert state.pid == grandchild.process.pid
    await child.process.check()


async def test_killing_a_shared_table_child_ends_all_pending_calls() -> None:
    """With CLONE.FILES the child's end of its connection stays open in our
    own table when it dies; its pidfd says it died, and every pending call
    ends with SyscallHangup within a second."""
    child = await local_thread.clone(CLONE.FILES)
    pipe = await (await child.task.pipe(await child.malloc(Pipe))).read()
    results: list[BaseException | None] = []

    async def blocked() -> None:
        try:
            await pipe.read.read(await child.malloc(bytes, 1))
            results.append(None)
        except BaseException as error:
            results.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(blocked)
        await anyio.sleep(0.1)
        start = time.monotonic()
        os.kill(child.process.pid, SIG.KILL)
        with anyio.fail_after(1):
            while len(results) < 100:
                await anyio.sleep(0.005)
    assert time.monotonic() - start < 1
    assert all(isinstance(error, SyscallHangup) for error in results)
    assert (await child.process.waitpid()).killed_with() == SIG.KILL


async def test_a_dead_exec_watch_helper_hangs_up_within_a_second() -> None:
    """White box: the helper that watches an exec from a shared fd table
    dies early; the connection hangs up instead of waiting forever."""
    child = await local_thread.clone(CLONE.FILES)
    word = child._stack_address() + clone_module.EXEC_WORD_OFFSET
    await local_thread.task.space.transport.write(word, (1).to_bytes(4, "little"))
    watch = await child._watch_exec(word)
    pending = child.connection.start(int(clone_module.SYS.pause))
    os.kill(watch.pid, SIG.KILL)
    with anyio.fail_after(1):
        with pytest.raises(SyscallHangup):
            await child.connection.finish(pending)
    await child.process.kill()
    await child.process.waitpid()


@pytest.mark.parametrize("kind", ["local", "child"])
async def test_closing_the_handle_wakes_an_afd_waiter(kind: str) -> None:
    thread = local_thread if kind == "local" else await local_thread.clone()
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    afd = await thread.make_afd(pair.first)
    woken: list[BaseException] = []

    async def wait() -> None:
        try:
            await afd.read_some_bytes()
        except BaseException as error:
            woken.append(error)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.05)
            await afd.handle.close()
    assert len(woken) == 1 and isinstance(woken[0], FDClosedWhileWaiting)
    # The thread is fine, and a new fd with the same number works.
    again = await thread.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    reader = await thread.make_afd(again.first)
    await again.second.write(await thread.ptr(b"ok"))
    assert await reader.read_some_bytes() == b"ok"


async def test_cancelled_run_kills_and_reaps_the_child() -> None:
    ours_before = children_of(os.getpid())
    sleep = await local_thread.environ.which("sleep")
    start = time.monotonic()
    with anyio.move_on_after(0.3):
        await local_thread.run(sleep.args("10"))
    assert time.monotonic() - start < 2
    assert children_of(os.getpid()) == ours_before


async def test_cancelled_waitpid_kills_and_reaps_the_child() -> None:
    ours_before = children_of(os.getpid())
    child = await local_thread.clone()
    process = await child.exec((await local_thread.environ.which("sleep")).args("10"))
    pid = process.pid
    with anyio.move_on_after(0.2):
        await process.check()
    assert state_of(pid) is None  # killed and reaped: not even a zombie
    assert children_of(os.getpid()) == ours_before
    assert process.state is not None and process.state.killed_with() == SIG.KILL


def _fd_of(handle: FileDescriptor) -> int:
    return handle.number
