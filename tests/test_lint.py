"""The package is typed and linted: mypy --strict and ruff, as part of the suite."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "rsyscall"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "rsyscall", "tests", "bench", "examples", "tools"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docstrings_name_nothing_outside_the_package() -> None:
    """A reader of help() or the reference site has the package, not the
    workspace's design documents: docstrings and comments say the thing
    itself."""
    outside = ("DESIGN.md", "API.md", "SYSCALLS.md", "seed document", "the seed", "tests/",
               "bench/", "examples/")
    found = []
    for path in sorted((ROOT / "rsyscall").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(word in line for word in outside):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_mypy_strict_on_the_examples() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "examples"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_users_script_sees_the_types(tmp_path: Path) -> None:
    """After the README's install command, mypy --strict on a script of the
    user's, anywhere, sees the package's types (py.typed, and an editable
    install mypy can follow)."""
    script = tmp_path / "mine.py"
    script.write_text(
        "import anyio\n"
        "from rsyscall import local_thread\n"
        "from rsyscall.sys.socket import AF, SOCK\n\n\n"
        "async def main() -> None:\n"
        "    pair = await local_thread.socketpair(AF.UNIX, SOCK.STREAM)\n"
        "    reveal_type(pair)\n"
        "    pid: int = await local_thread.task.getpid()\n"
        "    print(pid)\n\n\n"
        "anyio.run(main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Revealed type is "rsyscall.sys.socket.Socketpair"' in result.stdout
