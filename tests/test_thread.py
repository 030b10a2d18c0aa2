"""Thread helpers (ptr, malloc, pipe, socketpair, spit, read_to_eof), the
environment, `which`, and `Command`."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from rsyscall import (
    Command,
    FileDescriptor,
    Pointer,
    Task,
    Thread,
    WrittenPointer,
    local_thread,
)
from rsyscall.fcntl import FD, F, O
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.struct import Int32
from rsyscall.sys.socket import AF, SOCK, Sockaddr, Socketpair
from rsyscall.unistd import Pipe

pytestmark = pytest.mark.anyio


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- the thread itself ----


async def test_local_thread_identity() -> None:
    thread = local_thread
    assert isinstance(thread, Thread) and isinstance(thread.task, Task)
    assert thread.space is thread.task.space
    assert thread.task.pid == os.getpid()
    for fd, number in ((thread.stdin, 0), (thread.stdout, 1), (thread.stderr, 2)):
        assert isinstance(fd, FileDescriptor) and fd.number == number
        assert fd.task is thread.task
    assert str(os.getpid()) in repr(thread)


# ---- ptr, malloc ----


async def test_ptr_values() -> None:
    thread = local_thread
    raw = await thread.ptr(b"raw\0bytes")
    assert isinstance(raw, WrittenPointer) and raw.size() == 9 and raw.value == b"raw\0bytes"
    assert await raw.read() == b"raw\0bytes"
    text = await thread.ptr("héllo")
    assert text.size() == len("héllo".encode()) + 1 and await text.read() == "héllo"
    path = await thread.ptr(Path("/some/path"))
    assert path.size() == len("/some/path") + 1 and await path.read() == Path("/some/path")
    addr = await thread.ptr(SockaddrIn(80, "1.2.3.4"))
    assert addr.size() == 16 and await addr.read() == SockaddrIn(80, "1.2.3.4")
    assert addr.value == SockaddrIn(80, "1.2.3.4")
    number = await thread.ptr(Int32(-7))
    assert number.size() == 4 and await number.read() == -7
    empty = await thread.ptr(b"")
    assert empty.size() == 0 and await empty.read() == b""
    from_bytearray = await thread.ptr(bytearray(b"ba"))
    assert await from_bytearray.read() == b"ba"


async def test_malloc_sizes_and_kinds() -> None:
    thread = local_thread
    buf = await thread.malloc(bytes, 100)
    assert type(buf) is Pointer and buf.size() == 100
    assert (await thread.malloc(str, 7)).size() == 7
    assert (await thread.malloc(Pipe)).size() == 8
    assert (await thread.malloc(Socketpair)).size() == 8
    assert (await thread.malloc(Int32)).size() == 4
    assert (await thread.malloc(SockaddrIn)).size() == 16
    assert (await thread.malloc(Sockaddr)).size() == 128  # sockaddr_storage
    # Distinct allocations do not overlap.
    a, b = await thread.malloc(bytes, 64), await thread.malloc(bytes, 64)
    assert a.address + 64 <= b.address or b.address + 64 <= a.address
    written = await buf.write(b"12345")
    assert written.size() == 5 and await written.read() == b"12345"


async def test_malloc_and_ptr_bad_input() -> None:
    thread = local_thread
    with pytest.raises(TypeError):
        await thread.malloc(bytes)
    with pytest.raises(TypeError):
        await thread.malloc(str)
    with pytest.raises(ValueError):
        await thread.malloc(bytes, -5)
    with pytest.raises(TypeError):
        await thread.malloc(bytes, "10")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await thread.malloc(bytes, True)
    with pytest.raises(TypeError):
        await thread.malloc(Int32, 4)
    with pytest.raises(TypeError):
        await thread.malloc(dict)
    with pytest.raises(TypeError):
        await thread.ptr(12)
    with pytest.raises(TypeError):
        await thread.ptr([b"a list"])
    with pytest.raises(ValueError):
        await thread.ptr("nul\0inside")
    with pytest.raises(ValueError):
        await thread.ptr(Path("nul\0inside"))
    assert await (await thread.ptr(b"fine")).read() == b"fine"


# ---- pipe, socketpair ----


async def test_pipe_helper() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    assert isinstance(pipe, Pipe)
    assert isinstance(pipe.read, FileDescriptor) and isinstance(pipe.write, FileDescriptor)
    for fd in pipe:
        assert stat.S_ISFIFO(os.fstat(fd.number).st_mode)
        assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
        assert os.get_blocking(fd.number)
    assert os.fstat(pipe.read.number).st_ino == os.fstat(pipe.write.number).st_ino
    assert await pipe.read.fcntl(F.GETFL) & 0o3 == O.RDONLY
    assert await pipe.write.fcntl(F.GETFL) & 0o3 == O.WRONLY
    await pipe.write.write(await thread.ptr(b"through"))
    assert os.read(pipe.read.number, 64) == b"through"


@pytest.mark.parametrize("type_", [SOCK.STREAM, SOCK.DGRAM, SOCK.SEQPACKET])
async def test_socketpair_helper(type_: SOCK) -> None:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, type_)
    assert isinstance(pair, Socketpair)
    for fd in pair:
        assert stat.S_ISSOCK(os.fstat(fd.number).st_mode)
        assert not os.get_inheritable(fd.number)
    await pair.first.write(await thread.ptr(b"one way"))
    assert os.read(pair.second.number, 64) == b"one way"
    await pair.second.write(await thread.ptr(b"other way"))
    valid, _ = await pair.first.read(await thread.malloc(bytes, 64))
    assert await valid.read() == b"other way"


async def test_socketpair_helper_nonblock() -> None:
    pair = await local_thread.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    assert not os.get_blocking(pair.first.number)
    with pytest.raises(BlockingIOError):
        await pair.first.read(await local_thread.malloc(bytes, 1))
    with pytest.raises(OSError):
        await local_thread.socketpair(AF.INET, SOCK.STREAM)


# ---- spit, read_to_eof ----


async def test_spit(tmp_path: Path) -> None:
    thread = local_thread
    umask = current_umask()
    path = tmp_path / "spat"
    assert await thread.spit(path, "some text\n") == path
    assert path.read_text() == "some text\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644 & ~umask
    # Truncates an existing file, and keeps its mode.
    await thread.spit(path, b"new")
    assert path.read_bytes() == b"new"
    # A new file with a given mode; a str path works.
    other = str(tmp_path / "script")
    assert await thread.spit(other, "#!/bin/sh\necho hi\n", mode=0o755) == other
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o755 & ~umask
    assert os.access(other, os.X_OK)
    private = tmp_path / "private"
    await thread.spit(private, "secret", 0o600)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    # Empty content, and content bigger than any one write might take.
    await thread.spit(tmp_path / "empty", "")
    assert (tmp_path / "empty").read_bytes() == b""
    big = os.urandom(3 << 20)
    await thread.spit(tmp_path / "big", big)
    assert (tmp_path / "big").read_bytes() == big
    # No fd was left open.
    assert not [
        n for n in os.listdir("/proc/self/fd")
        if os.path.realpath(f"/proc/self/fd/{n}").startswith(str(tmp_path))
    ]
    with pytest.raises(FileNotFoundError):
        await thread.spit(tmp_path / "no" / "dir", "x")
    with pytest.raises(IsADirectoryError):
        await thread.spit(tmp_path, "x")


async def test_mkdir(tmp_path: Path) -> None:
    thread = local_thread
    umask = current_umask()
    path = tmp_path / "made"
    assert await thread.mkdir(path) == path
    assert stat.S_ISDIR(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755 & ~umask
    private = str(tmp_path / "private")
    assert await thread.mkdir(private, 0o700) == private
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    with pytest.raises(FileExistsError):
        await thread.mkdir(path)
    with pytest.raises(FileNotFoundError):
        await thread.mkdir(tmp_path / "no" / "parent")


async def test_read_to_eof(tmp_path: Path) -> None:
    thread = local_thread
    data = os.urandom(100_000)
    (tmp_path / "f").write_bytes(data)
    fd = await thread.task.open(await thread.ptr(tmp_path / "f"), O.RDONLY)
    assert await thread.read_to_eof(fd) == data
    assert await thread.read_to_eof(fd) == b""  # already at the end
    # Small chunks from a pipe, written by the stdlib.
    pipe = await thread.pipe()
    os.write(pipe.write.number, b"in small pieces")
    await pipe.write.close()
    assert await thread.read_to_eof(pipe.read, chunk=4) == b"in small pieces"
    empty = await thread.pipe()
    await empty.write.close()
    assert await thread.read_to_eof(empty.read) == b""
    # A zero-byte chunk could never tell data from end of file.
    waiting = await thread.pipe()
    os.write(waiting.write.number, b"not at eof")
    with pytest.raises(ValueError):
        await thread.read_to_eof(waiting.read, chunk=0)
    with pytest.raises(ValueError):
        await thread.read_to_eof(waiting.read, chunk=-1)
    await waiting.write.close()
    assert await thread.read_to_eof(waiting.read, chunk=3) == b"not at eof"
    await pipe.read.close()
    from rsyscall import UseAfterConsumeError

    with pytest.raises(UseAfterConsumeError):
        await thread.read_to_eof(pipe.read)


# ---- environ, which, sh ----


async def test_environ_is_a_mapping() -> None:
    environ = local_thread.environ
    assert isinstance(environ, Mapping)
    assert environ["PATH"] == os.environ["PATH"]
    assert "PATH" in environ and "NO_SUCH_VARIABLE_RSYSCALL" not in environ
    assert environ.get("NO_SUCH_VARIABLE_RSYSCALL") is None
    with pytest.raises(KeyError):
        environ["NO_SUCH_VARIABLE_RSYSCALL"]
    assert len(environ) == len(list(environ)) == len(dict(environ))
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in environ.items())
    assert set(environ.keys()) >= {"PATH"}
    assert environ.path and all(isinstance(p, Path) for p in environ.path)
    assert [str(p) for p in environ.path] == [p for p in os.environ["PATH"].split(":") if p]


async def test_environ_set_is_per_environment() -> None:
    thread = local_thread
    copy = thread.environ.copy_for(thread)
    copy.set("RSYSCALL_TEST_ONLY_HERE", "1")
    assert copy["RSYSCALL_TEST_ONLY_HERE"] == "1"
    assert "RSYSCALL_TEST_ONLY_HERE" not in thread.environ
    assert "RSYSCALL_TEST_ONLY_HERE" not in os.environ


async def test_which() -> None:
    environ = local_thread.environ
    sh = await environ.which("sh")
    assert isinstance(sh, Command)
    assert sh.executable_path.is_absolute() or "/" in str(sh.executable_path)
    assert os.path.exists(sh.executable_path) and os.access(sh.executable_path, os.X_OK)
    assert sh.arguments == ("sh",)
    import shutil

    assert os.path.samefile(sh.executable_path, shutil.which("sh") or "")
    with pytest.raises(FileNotFoundError):
        await environ.which("definitely-not-a-command-rsyscall-xyz")
    # A name with a slash is taken as it is.
    direct = await environ.which("/bin/sh")
    assert direct.executable_path == Path("/bin/sh")
    with pytest.raises(FileNotFoundError):
        await environ.which("/no/such/program")
    with pytest.raises(ValueError):
        await environ.which("")
    assert (await environ.which("sh")).executable_path == sh.executable_path


async def test_which_follows_path_order_and_permissions(tmp_path: Path) -> None:
    thread = local_thread
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("#!/bin/sh\n")
    (first / "tool").chmod(0o644)  # not executable: skipped
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    (first / "subdir").mkdir()  # a directory is not a command, though X_OK passes
    (second / "subdir").write_text("#!/bin/sh\n")
    (second / "subdir").chmod(0o755)
    (first / "only-dir").mkdir()
    environ = thread.environ.copy_for(thread)
    environ.set("PATH", f"{first}::{second}")
    tool = await environ.which("tool")
    assert tool.executable_path == second / "tool"
    assert (await environ.which("subdir")).executable_path == second / "subdir"
    with pytest.raises(FileNotFoundError):
        await environ.which("only-dir")
    with pytest.raises(FileNotFoundError):
        await environ.which(str(first / "only-dir"))
    (first / "tool").chmod(0o700)
    assert (await environ.which("tool")).executable_path == first / "tool"


async def test_environ_sh() -> None:
    sh = local_thread.environ.sh
    assert isinstance(sh, Command)
    assert sh.executable_path == Path("/bin/sh") and sh.arguments == ("sh",)
    assert os.access(sh.executable_path, os.X_OK)
    assert sh.args("-c", "true").arguments == ("sh", "-c", "true")


# ---- Command ----


def test_command_args_and_env_make_new_commands() -> None:
    base = Command("/bin/echo", ["echo"])
    assert base.executable_path == Path("/bin/echo")
    assert base.arguments == ("echo",) and dict(base.env_updates) == {}
    more = base.args("a", Path("b"))
    assert more is not base and more.arguments == ("echo", "a", "b")
    assert base.arguments == ("echo",)
    even_more = more.args("c")
    assert even_more.arguments == ("echo", "a", "b", "c") and more.arguments == ("echo", "a", "b")
    with_env = more.env({"A": "1"}, B="2")
    assert with_env is not more and dict(with_env.env_updates) == {"A": "1", "B": "2"}
    assert dict(more.env_updates) == {} and with_env.arguments == more.arguments
    # Later updates win; keyword updates win over the mapping.
    layered = with_env.env({"A": "x", "C": Path("/p")}, C="3")
    assert dict(layered.env_updates) == {"A": "x", "B": "2", "C": "3"}
    assert dict(with_env.env_updates) == {"A": "1", "B": "2"}
    assert base.env() == base and base.args() == base


def test_command_is_immutable() -> None:
    source_env = {"K": "v"}
    source_args = ["prog", "x"]
    command = Command(Path("/bin/prog"), source_args, source_env)
    # Changing what it was made from does not change it.
    source_env["K"] = "changed"
    source_args.append("y")
    assert dict(command.env_updates) == {"K": "v"} and command.arguments == ("prog", "x")
    with pytest.raises(AttributeError):
        command.arguments = ("other",)
    with pytest.raises(AttributeError):
        command.executable_path = Path("/bin/other")
    with pytest.raises(AttributeError):
        del command.env_updates
    with pytest.raises(TypeError):
        command.env_updates["K"] = "mutated"  # type: ignore[index]
    assert command == Command("/bin/prog", ["prog", "x"], {"K": "v"})
    assert hash(command) == hash(Command("/bin/prog", ("prog", "x"), {"K": "v"}))
    assert command != Command("/bin/prog", ["prog", "x"])
    assert command != Command("/bin/prog", ["prog"], {"K": "v"})
    assert command != "not a command"
    assert len({command, Command("/bin/prog", ["prog", "x"], {"K": "v"})}) == 1


def test_command_str_repr_and_bad_input() -> None:
    command = Command("/bin/echo", ["echo", "two words"], {"X": "a b"})
    assert str(command) == "X='a b' echo 'two words'"
    assert str(Command("/bin/true", ["true"])) == "true"
    assert "'/bin/echo'" in repr(command) and "two words" in repr(command)
    with pytest.raises(TypeError):
        Command("/bin/echo", "echo")
    with pytest.raises(TypeError):
        Command("/bin/echo", [b"echo"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Command("/bin/echo", [1])  # type: ignore[list-item]
