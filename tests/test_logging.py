"""Loggers per layer: rsyscall.connection traces a child's syscalls at
DEBUG, rsyscall.clone its clones and execs; all off by default."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from rsyscall import local_thread

pytestmark = pytest.mark.anyio


async def test_child_syscalls_are_traced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="rsyscall"):
        child = await local_thread.clone()
        pid = await child.task.getpid()
        await child.task.setsid()
        with pytest.raises(PermissionError):
            await child.task.setsid()  # a session leader already: an error to trace
        await child.exit(0)
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith(f"pid {pid}: #") and "getpid()" in m for m in messages), messages
    assert any("getpid -> " + str(pid) in m for m in messages), messages
    assert any("setsid -> -EPERM" in m for m in messages), messages
    assert any(r.name == "rsyscall.clone" and f"cloned pid {pid}" in r.getMessage()
               for r in caplog.records)


def test_off_by_default() -> None:
    result = subprocess.run(
        [sys.executable, "-c",
         "import logging, rsyscall.tasks.connection, rsyscall.thread\n"
         "print(any(logging.getLogger(n).isEnabledFor(logging.DEBUG)"
         " for n in ('rsyscall.connection', 'rsyscall.clone', 'rsyscall.ssh')))"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr
