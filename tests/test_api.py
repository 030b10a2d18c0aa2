"""The public names of API.md exist, with the shapes it gives."""

import importlib
import inspect

import pytest

import rsyscall
import rsyscall.handle
from rsyscall import local_thread
from rsyscall.sys.wait import CalledProcessError

pytestmark = pytest.mark.anyio

TOP_LEVEL = [
    "local_thread", "Thread", "ChildThread", "Task", "FileDescriptor", "Pointer",
    "WrittenPointer", "ReadablePointer", "LinearPointer", "MemoryMapping", "Command",
    "AsyncFileDescriptor", "AsyncChildProcess",
]
THREAD = [
    "task", "ptr", "malloc", "stdin", "stdout", "stderr", "environ", "make_afd", "pipe",
    "socketpair", "spit", "read_to_eof", "mkdir", "clone", "unshare", "run",
]
CHILD_THREAD = ["exec", "exit", "process", "inherit_fd"]
FILE_DESCRIPTOR = [
    "close", "read", "write", "pread", "pwrite", "readv", "writev", "lseek", "fcntl", "dup3",
    "fstat", "getdents", "ftruncate", "connect", "listen", "accept", "dup2", "getsockname",
    "getpeername", "setsockopt", "getsockopt", "shutdown", "send", "recv", "bind", "sendmsg",
    "recvmsg", "disable_cloexec", "enable_cloexec",
]
ASYNC_FD = ["read", "write", "recv", "send", "accept", "connect", "read_some_bytes",
            "write_all_bytes", "handle", "close"]
POINTER = ["size", "split", "merge", "__add__", "write"]


def test_names_exist() -> None:
    for name in TOP_LEVEL:
        assert hasattr(rsyscall, name), name
    assert rsyscall.handle.ChildProcess and rsyscall.handle.Process
    assert issubclass(CalledProcessError, Exception)
    for name in ["task", "stdin", "stdout", "stderr", "environ"]:
        assert hasattr(local_thread, name), name
    for name in THREAD:
        assert hasattr(rsyscall.Thread, name) or hasattr(local_thread, name), name
    for name in CHILD_THREAD:
        assert hasattr(rsyscall.ChildThread, name) or name in ("process",), name
    for name in FILE_DESCRIPTOR:
        method = getattr(rsyscall.FileDescriptor, name)
        assert inspect.iscoroutinefunction(method), name
    for name in ASYNC_FD:
        assert hasattr(rsyscall.AsyncFileDescriptor, name) or name == "handle", name
    for name in POINTER:
        assert hasattr(rsyscall.Pointer, name), name
    assert hasattr(rsyscall.ReadablePointer, "read")
    for name in ["waitpid", "check", "kill", "process"]:
        assert hasattr(rsyscall.AsyncChildProcess, name) or name == "process", name


async def test_every_syscall_method_is_async_and_documented() -> None:
    """Every public method of Task and FileDescriptor is async and names its
    man page (or says what it is built on)."""
    for cls in (rsyscall.Task, rsyscall.FileDescriptor, rsyscall.handle.Process):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_") or name in (
                    "make_fd", "make_process", "make_process_group", "for_task", "drop",
                    "on_close", "as_proc_path",
                ):
                continue
            assert inspect.iscoroutinefunction(member), f"{cls.__name__}.{name}"
            summary = (member.__doc__ or "").split("\n")[0]
            man_page = any(section in summary for section in ("(2)", "(3)", "(7)"))
            assert man_page, f"{cls.__name__}.{name}"


async def test_command_shapes() -> None:
    sh = local_thread.environ.sh
    assert isinstance(sh, rsyscall.Command)
    command = rsyscall.Command("/bin/echo", ["echo"], {}).args("a", "b").env({"X": "1"}, Y="2")
    assert command.arguments == ("echo", "a", "b")
    assert dict(command.env_updates) == {"X": "1", "Y": "2"}
    assert isinstance(await local_thread.environ.which("sh"), rsyscall.Command)


def test_raw_escape_hatches_are_unsafe() -> None:
    """The calls that pass integers to the kernel as addresses, or install
    what the library cannot check, are named unsafe_ and say what their
    caller must guarantee; the old names of the renamed ones are gone."""
    from rsyscall.sys.mman import MemoryMapping

    hatches = {
        rsyscall.Task: ["unsafe_clone3", "unsafe_set_robust_list", "unsafe_sigaction",
                        "unsafe_prctl", "unsafe_mmap", "unsafe_ptrace", "unsafe_clone",
                        "unsafe_brk", "unsafe_set_tid_address"],
        rsyscall.handle.Process: ["unsafe_ptrace_pokedata", "unsafe_ptrace_setregs",
                                  "unsafe_process_vm_readv", "unsafe_process_vm_writev"],
        rsyscall.FileDescriptor: ["unsafe_ioctl", "unsafe_setsockopt", "unsafe_getsockopt"],
        MemoryMapping: ["unsafe_madvise", "unsafe_mremap", "unsafe_pointer"],
    }
    for cls, names in hatches.items():
        found = sorted(name for name in dir(cls) if name.startswith("unsafe_"))
        assert found == sorted(names), cls
        for name in names:
            doc = inspect.getdoc(getattr(cls, name)) or ""
            assert "Unsafe:" in doc and "caller must" in doc, f"{cls.__name__}.{name}"
    for gone in ("set_robust_list",):
        assert not hasattr(rsyscall.Task, gone), gone
    # clone3 is back as the typed form: pointers and handles, a ChildProcess.
    assert "CloneArgs" in str(inspect.signature(rsyscall.Task.clone3))


def test_enums_read_well_in_help() -> None:
    """help() on a constant class shows its members, not a page of int's
    methods; dir() lists the members."""
    import pydoc

    from rsyscall.fcntl import O
    from rsyscall.sys.socket import AF, SOCK

    for cls in (AF, SOCK, O):
        text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
        assert len(text.splitlines()) < 40 + 3 * len(cls.__members__), cls
        assert "bit_length" not in text and "__add__" not in text
        assert set(cls.__members__) <= set(dir(cls))
    assert "INET6 = <AF.INET6: 10>" in pydoc.render_doc(AF, renderer=pydoc.plaintext)
    assert isinstance(SOCK.STREAM | SOCK.NONBLOCK, SOCK) and int(AF.INET6) == 10


def test_docstring_examples_import_what_exists() -> None:
    """Every `from rsyscall... import NAME` in a docstring (and the README)
    names something that module exports."""
    import ast
    import re
    from pathlib import Path

    root = Path(rsyscall.__file__).parent
    texts = [(str(path), ast.get_docstring(node) or "")
             for path in root.rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                           | ast.AsyncFunctionDef)]
    texts.append(("README.md", (root.parent / "README.md").read_text()))
    pattern = re.compile(r"from (rsyscall[\w.]*) import ([\w, ]+)")
    checked = 0
    for where, text in texts:
        for module_name, names in pattern.findall(text):
            module = importlib.import_module(module_name)
            exported = getattr(module, "__all__", None)
            for name in (n.strip() for n in names.split(",")):
                if not name:
                    continue
                name = name.split(" as ")[0]
                assert hasattr(module, name), f"{where}: {module_name}.{name}"
                if exported is not None:
                    assert name in exported, f"{where}: {name} not in {module_name}.__all__"
                checked += 1
    assert checked > 5
