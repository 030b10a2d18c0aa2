"""examples/sandbox.py makes the sandbox it promises: run (under asyncio and
trio) with a probing script, it sees a read-only /usr, an empty writable
/tmp, only its own processes, only a loopback interface, a host name of
its own and nothing of our file system; and it dies with its parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sandbox.py"

PROBE = """
echo "pid=$$"
echo "init=$(cat /proc/1/comm)"
echo "procs=$(ls /proc | grep -c '^[0-9][0-9]*$')"
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
if touch /usr/probe 2>/dev/null; then echo usr=writable; else echo usr=read-only; fi
echo "tmp-entries=$(ls -A /tmp | wc -l)"
echo inside > /tmp/NAME && echo "tmp-write=$(cat /tmp/NAME)"
echo "hostname-before=$(hostname)"
hostname probe-host && echo "hostname-after=$(hostname)"
for path in /root /work /etc /home /.oldroot /tmp/../../etc/passwd; do
    if test -e "$path"; then echo "reachable=$path"; fi
done
echo "root=$(ls -A / | tr '\\n' ' ')"
exit 3
"""


def run_example(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_sandbox_is_what_bwrap_makes(backend: str, tmp_path: Path) -> None:
    name = f"rsyscall-sandbox-probe-{os.getpid()}-{backend}"
    hostname = socket.gethostname()
    result = run_example(backend, PROBE.replace("NAME", name))
    assert "cannot make the sandbox" not in result.stderr, result.stderr
    # The script's exit status comes out as the example's.
    assert result.returncode == 3, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    values: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.partition("=")
        values.setdefault(key, []).append(value.strip())
    # The shell is pid 1 (the init) of a pid namespace holding only it and
    # the few processes of its own pipeline.
    assert values["pid"] == ["1"] and values["init"] == ["sh"]
    assert 1 <= int(values["procs"][0]) <= 5, lines
    assert values["ifaces"] == ["lo"]
    assert values["usr"] == ["read-only"]
    assert values["tmp-entries"] == ["0"] and values["tmp-write"] == ["inside"]
    assert values["hostname-before"] == ["sandbox"]
    assert values["hostname-after"] == ["probe-host"]
    assert "reachable" not in values, values.get("reachable")
    assert values["root"] == ["bin dev lib lib64 proc sbin tmp usr"]
    assert "-- the sandbox exited with status 3" in lines
    # Nothing of it is seen out here.
    assert socket.gethostname() == hostname
    assert not Path(f"/tmp/{name}").exists()
    assert not Path("/usr/probe").exists()


def test_the_default_report() -> None:
    result = run_example()
    assert result.returncode == 0, result.stderr
    assert "/usr is read-only" in result.stdout
    assert "my network interfaces: lo" in result.stdout


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_it_dies_with_its_parent() -> None:
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "asyncio", "exec sleep 1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        sandbox = None
        deadline = time.monotonic() + 30
        while sandbox is None and time.monotonic() < deadline:
            for pid in _children(example.pid):
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() == "sleep":
                        sandbox = pid
            time.sleep(0.05)
        assert sandbox is not None, "the sandbox never started sleeping"
        example.send_signal(signal.SIGKILL)
        example.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(sandbox) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(sandbox), "the sandbox outlived its parent"
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()
