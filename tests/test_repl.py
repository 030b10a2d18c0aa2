"""python -m rsyscall: the console, driven through a pty as a person would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest


def _read_until(fd: int, wanted: bytes, limit: float = 20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + limit
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"never saw {wanted!r} in {seen!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side is gone
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_console_awaits_syscalls(backend: str) -> None:
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rsyscall", backend],
        stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
    )
    os.close(secondary)
    try:
        _read_until(primary, b">>> ")
        os.write(primary, b"pid = await local_thread.task.getpid()\n")
        _read_until(primary, b">>> ")
        os.write(primary, b"print('got', pid, pid == %d)\n" % process.pid)
        assert b"got %d True" % process.pid in _read_until(primary, b">>> ")
        # A thread made on one line is there on the next.
        os.write(primary, b"child = await local_thread.clone()\n")
        _read_until(primary, b">>> ")
        os.write(primary, b"print('ppid', await child.task.getppid())\n")
        assert b"ppid %d" % process.pid in _read_until(primary, b">>> ")
        os.write(primary, b"1/0\n")
        assert b"ZeroDivisionError" in _read_until(primary, b">>> ")
        os.write(primary, b"\x04")  # Ctrl-D
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
