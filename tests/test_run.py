"""Thread.run: subprocess.run's one line, on every kind of thread."""

from __future__ import annotations

import os
import subprocess
import time

import anyio
import pytest

from rsyscall import Thread
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
