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
    # The same report twice: here, and on the ssh host (sshd is installed
    # wherever the tests run: .ci/run installs it).
    assert any(line.startswith("== on ") and "through ssh" in line for line in lines), lines
    assert lines.count("I am pid 1 in my pid namespace") == 2
    for start in [i for i, line in enumerate(lines) if line == "my network interfaces:"]:
        assert lines[start + 1] == "lo"
    assert lines.count("0100007F:1F90") == 2  # the listener, inside the namespace
    assert lines.count("written by the parent, through the child's syscalls") == 2
    assert not Path("/tmp/hello.txt").exists()  # the tmpfs was the child's alone
