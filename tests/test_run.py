"""Thread.run: subprocess.run's one line, on every kind of thread."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import time

import anyio
import pytest

from rsyscall import Thread
from rsyscall.fcntl import O
from rsyscall.sys.wait import CalledProcessError

from .util import thread_pid

pytestmark = pytest.mark.anyio


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return {int(child) for child in children.read().split()}


async def test_capture_input_cwd_env(thread: Thread, tmp_path: object) -> None:
    sh = thread.environ.sh
    state = await thread.run(
        sh.args("-c", 'read line; echo "$line $PWD $ONLY ${HOME:-nohome}"; echo err >&2'),
        capture_output=True, input=b"hello\n", cwd=str(tmp_path), env={"ONLY": "this"},
    )
    assert state.exit_status == 0
    assert state.stdout == f"hello {tmp_path} this nohome\n".encode()
    assert state.stderr == b"err\n"


async def test_env_updates_of_the_command_apply_on_top(thread: Thread) -> None:
    sh = thread.environ.sh.env(EXTRA="yes")
    state = await thread.run(sh.args("-c", 'echo "$A $EXTRA"'), capture_output=True,
                             env={"A": "a"})
    assert state.stdout == b"a yes\n"


async def test_big_output_and_input(thread: Thread) -> None:
    data = os.urandom(3 << 20)
    state = await thread.run(thread.environ.sh.args("-c", "cat"), input=data,
                             stdout=subprocess.PIPE)
    assert state.stdout == data and state.stderr is None


async def test_stderr_to_stdout_and_devnull(thread: Thread) -> None:
    sh = thread.environ.sh
    state = await thread.run(sh.args("-c", "echo a; echo b >&2"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    assert state.stdout == b"a\nb\n"
    state = await thread.run(sh.args("-c", "echo a; echo b >&2; cat"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    assert state.stdout is None and state.stderr == b"b\n"


async def test_an_fd_as_stdout(thread: Thread) -> None:
    pipe = await thread.pipe()
    await thread.run(thread.environ.sh.args("-c", "echo into the pipe"), stdout=pipe.write)
    await pipe.write.close()
    assert await thread.read_to_eof(pipe.read) == b"into the pipe\n"


async def test_check_carries_the_output(thread: Thread) -> None:
    with pytest.raises(CalledProcessError) as info:
        await thread.run(thread.environ.sh.args("-c", "echo out; echo why >&2; exit 3"),
                         capture_output=True)
    assert info.value.state.exit_status == 3
    assert info.value.stdout == b"out\n" and info.value.stderr == b"why\n"
    assert "why" in str(info.value)
    state = await thread.run(thread.environ.sh.args("-c", "exit 4"), check=False)
    assert state.exit_status == 4


async def test_a_timeout_kills_and_reaps(thread: Thread) -> None:
    pid = thread_pid(thread)
    before = children_of(pid)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.5):
            await thread.run(thread.environ.sh.args("-c", "echo started; sleep 100"),
                             capture_output=True)
    assert time.monotonic() - start < 3
    assert children_of(pid) <= before
    # The thread is fine afterwards.
    assert (await thread.run(thread.environ.sh.args("-c", "true"))).clean()


async def test_bad_arguments(thread: Thread) -> None:
    sh = thread.environ.sh.args("-c", "true")
    with pytest.raises(TypeError):
        await thread.run("true")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await thread.run(sh, capture_output=True, stdout=subprocess.PIPE)
    with pytest.raises(ValueError):
        await thread.run(sh, input=b"x", stdin=subprocess.DEVNULL)
    with pytest.raises(ValueError):
        await thread.run(sh, stdin=subprocess.PIPE)
    with pytest.raises(ValueError):
        await thread.run(sh, stdout=subprocess.STDOUT)
    with pytest.raises(ValueError):
        await thread.run(sh, stdout=7)
    with pytest.raises(TypeError):
        await thread.run(sh, input="text")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        await thread.run(sh, cwd="/nonexistent/dir")
    assert (await thread.run(sh)).clean()


async def test_a_failed_exec_names_the_program_and_leaves_no_child(thread: Thread) -> None:
    pid = thread_pid(thread)
    before = children_of(pid)
    missing = thread.environ.sh.__class__("/nonexistent/program", ["program"], {})
    with pytest.raises(FileNotFoundError) as info:
        await thread.run(missing)
    assert info.value.filename == "/nonexistent/program"
    with pytest.raises(FileNotFoundError) as info:
        await thread.run(thread.environ.sh.args("-c", "true"), cwd="/nonexistent/dir")
    assert info.value.filename == "/nonexistent/dir"
    with pytest.raises(PermissionError):
        await thread.run(thread.environ.sh.__class__("/etc/passwd", ["passwd"], {}))
    assert children_of(pid) <= before
    assert (await thread.run(thread.environ.sh.args("-c", "true"))).clean()


async def test_the_program_gets_stdio_and_default_signals_only(thread: Thread) -> None:
    """As subprocess's close_fds and restore_signals: only fds 0, 1 and 2
    (an inheritable fd of the thread's is not passed), SIGPIPE and SIGXFSZ
    (which Python ignores) at their defaults, and a signal the thread
    catches is not caught (nor ignored) in the program."""
    extra = await thread.task.open(await thread.ptr("/dev/null"), O.RDONLY)  # not close-on-exec
    state = await thread.run(
        thread.environ.sh.args("-c", "ls /proc/self/fd; grep -E '^Sig(Ign|Cgt)' /proc/self/status"),
        capture_output=True)
    await extra.close()
    lines = state.stdout.decode().splitlines()
    fds = sorted(int(line) for line in lines[:-2])
    assert fds[:3] == [0, 1, 2] and len(fds) == 4  # and the one ls reads the directory with
    status = dict(line.split() for line in lines[-2:])
    ignored, caught = int(status["SigIgn:"], 16), int(status["SigCgt:"], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        assert not (ignored | caught) & (1 << (sig - 1)), sig


async def test_many_spawns_leave_nothing(thread: Thread) -> None:
    pid = thread_pid(thread)
    true = thread.environ.sh.args("-c", "true")
    await thread.run(true)  # the machinery made on first use (an epoll fd...) stays
    before_children = children_of(pid)
    before_fds = len(os.listdir(f"/proc/{pid}/fd"))
    for _ in range(50):
        await thread.run(true)
    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(thread.run, true)
    # Closes of dropped handles are queued and go with the next call.
    gc.collect()
    await thread.task.getpid()
    assert children_of(pid) <= before_children
    assert len(os.listdir(f"/proc/{pid}/fd")) <= before_fds


async def test_many_spawns_free_their_memory(thread: Thread) -> None:
    """What each child ran from until it exec'd (on the local thread, a
    stack and its plan in our memory) is freed once it is reaped: many
    runs, some failing and some cancelled, leave this process's Python
    allocations where they were."""
    import tracemalloc

    true = thread.environ.sh.args("-c", "true")
    missing = thread.environ.sh.__class__("/nonexistent/program", ["program"], {})
    sleeper = thread.environ.sh.args("-c", "sleep 100")

    async def round_of_runs() -> None:
        for _ in range(20):
            await thread.run(true)
        with pytest.raises(FileNotFoundError):
            await thread.run(missing)
        with anyio.move_on_after(0.01):
            await thread.run(sleeper)

    await round_of_runs()  # caches filled on first use stay
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            await round_of_runs()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # A leaked child stack alone would be 64 KiB per run.
    assert after - before < 64 * 1024, after - before


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_cancels_kill_and_reap(thread: Thread) -> None:
    """asyncio's Task.cancel of a run, and again while the child is being
    killed and reaped (no shield stops a native cancellation): the task is
    cancelled, and no child is left, not even a zombie."""
    import asyncio

    pid = thread_pid(thread)
    before = children_of(pid)
    sleeper = thread.environ.sh.args("-c", "sleep 100")
    for second_cancel_delay in (None, 0, 0.00002, 0.00005, 0.0001, 0.0002, 0.0004):
        task = asyncio.ensure_future(thread.run(sleeper))
        await asyncio.sleep(0.05)
        task.cancel()
        if second_cancel_delay is not None:
            await asyncio.sleep(second_cancel_delay)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert children_of(pid) <= before
    assert (await thread.run(thread.environ.sh.args("-c", "true"))).clean()
