"""The README's demo command runs and shows what it promises."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs(backend: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), backend],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "I am pid 1 in my pid namespace" in lines
    interfaces = lines[lines.index("my network interfaces:") + 1]
    assert interfaces == "lo"
    assert "0100007F:1F90" in lines  # the listener, inside the namespace
    assert "written by the parent, through the child's syscalls" in lines
    assert not Path("/tmp/hello.txt").exists()  # the tmpfs was the child's alone
