"""Enum and narrow int arguments are checked before any syscall is made.

The walk below finds every enum-typed parameter of every public method of
Task, FileDescriptor, Process, ChildProcess and the thread classes from
its annotations (on its own, not through rsyscall.argcheck), and calls the
method with a member of another enum class there, with a bool, and with
an int out of range, every other argument poisoned: a method that makes a
syscall, or touches another argument, before refusing the bad one fails.
So does a method added later without the checks.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest

import rsyscall
from rsyscall import AsyncChildProcess, AsyncFileDescriptor, ChildThread, Thread, local_thread
from rsyscall.argcheck import UNRESOLVED, _namespace
from rsyscall.base.fd import FDTable
from rsyscall.handle import ChildProcess, FileDescriptor, Process, Task
from rsyscall.near.interface import SyscallInterface
from rsyscall.struct import CType
from rsyscall.sys.socket import AF, SHUT, SOCK
from rsyscall.sys.stat import S

pytestmark = pytest.mark.anyio


class Touched(BaseException):
    """A poisoned argument was used (a BaseException, so no `except
    Exception` in the library hides it)."""


class Poison:
    """An argument that must not be looked at before the bad one is refused."""

    def __getattr__(self, name: str) -> Any:
        raise Touched(f"attribute {name} of a poisoned argument")

    def _touch(self, *args: object) -> Any:
        raise Touched("a poisoned argument was used")

    __index__ = __int__ = __bool__ = __iter__ = __len__ = __fspath__ = _touch
    __eq__ = __lt__ = __le__ = __gt__ = __ge__ = __or__ = __and__ = _touch  # type: ignore[assignment]
    __hash__ = _touch  # type: ignore[assignment]


class NoSyscalls(SyscallInterface):
    """A syscall interface that fails the test if anything reaches it."""

    def syscall(self, number: int, /, *args: int) -> Any:
        raise Touched(f"syscall {number} was made")

    def syscall_later(self, number: int, /, *args: int, keep: object = None) -> None:
        pass  # finalizers of the receivers below


def receivers() -> dict[type, object]:
    task = Task(NoSyscalls(), local_thread.task.space, FDTable("poison", lambda n: None), 1)
    fd = FileDescriptor(task, 1000)
    child = ChildProcess(task, 1000, None)
    child.reaped = True
    thread = Thread(task, {}, fd, fd, fd)
    child_thread = ChildThread.__new__(ChildThread)
    child_thread.task = task
    afd = AsyncFileDescriptor.__new__(AsyncFileDescriptor)
    acp = AsyncChildProcess.__new__(AsyncChildProcess)
    return {
        Task: task, FileDescriptor: fd, Process: Process(task, 1000), ChildProcess: child,
        Thread: thread, ChildThread: child_thread, AsyncFileDescriptor: afd,
        AsyncChildProcess: acp,
    }


CLASSES = [Task, FileDescriptor, Process, ChildProcess, Thread, ChildThread,
           AsyncFileDescriptor, AsyncChildProcess]


def _union(hint: object) -> tuple[object, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_enum(arg: object) -> bool:
    return isinstance(arg, type) and issubclass(arg, enum.Enum) and issubclass(arg, int)


def _ctype(arg: object) -> CType | None:
    if typing.get_origin(arg) is typing.Annotated:
        base, *meta = typing.get_args(arg)
        if base is int:
            return next((m for m in meta if isinstance(m, CType)), None)
    return None


def public_methods() -> Iterator[tuple[type, str, Any]]:
    for cls in CLASSES:
        for name in sorted(dir(cls)):
            if name.startswith("_"):
                continue
            attribute = inspect.getattr_static(cls, name)
            func = attribute.__func__ if isinstance(attribute, classmethod) else attribute
            if inspect.iscoroutinefunction(func):
                yield cls, name, func


def hints_of(func: Any) -> dict[str, Any]:
    func = inspect.unwrap(func)
    module = sys.modules[func.__module__]
    namespace = {**_namespace(), **vars(module)}
    # String type aliases (`MountData = "ReadablePointer[str] | ..."`)
    # cannot be or'd with None unevaluated.
    for key, value in list(namespace.items()):
        if isinstance(value, str) and not key.startswith("__"):
            try:
                namespace[key] = eval(value, namespace)
            except Exception:
                pass
    return typing.get_type_hints(func, globalns=namespace, include_extras=True)


def _good(hint: object) -> object:
    """A valid value for an enum or narrow int parameter (else None)."""
    for arg in _union(hint):
        if _is_enum(arg):
            return next(iter(arg.__members__.values()))  # type: ignore[attr-defined]
        if _ctype(arg) is not None:
            return 0
    return None


def _other_enum(cls: type[enum.Enum]) -> enum.Enum:
    other = SHUT if cls is not SHUT and not issubclass(SHUT, cls) else AF
    return next(iter(other.__members__.values()))


def _out_of_range(cls: type[enum.Enum], int_ok: bool) -> int:
    if int_ok:
        return 1 << 40  # beyond any C int
    values = {int(member.value) for member in cls.__members__.values()}
    if issubclass(cls, enum.Flag):
        bits = 0
        for value in values:
            bits |= value
        bit = 1
        while bits & bit:
            bit <<= 1
        return bit
    return max(values) + 1


def cases() -> Iterator[tuple[str, type, str, str, str, object, type[BaseException]]]:
    """(id, class, method, parameter, what, bad value, expected exception)."""
    for cls, name, func in public_methods():
        hints = hints_of(func)
        for param in inspect.signature(func).parameters:
            hint = hints.get(param)
            args = _union(hint)
            enums = [arg for arg in args if _is_enum(arg)]
            ctypes = [c for c in map(_ctype, args) if c is not None]
            where = f"{cls.__name__}.{name}"
            if enums:
                enum_cls = enums[0]
                int_ok = int in args or bool(ctypes)
                yield (f"{where}:{param}:other-enum", cls, name, param, "other enum",
                       _other_enum(enum_cls), TypeError)
                yield (f"{where}:{param}:bool", cls, name, param, "bool", True, TypeError)
                yield (f"{where}:{param}:range", cls, name, param, "out of range",
                       _out_of_range(enum_cls, int_ok), ValueError)
            elif ctypes:
                yield (f"{where}:{param}:str", cls, name, param, "str", "1", TypeError)
                yield (f"{where}:{param}:range", cls, name, param, "out of range",
                       ctypes[0].high + 1, ValueError)


CASES = list(cases())


def test_annotations_resolve() -> None:
    assert UNRESOLVED == []
    for _, _, func in public_methods():
        hints_of(func)  # raises if an annotation cannot be resolved


def test_walk_found_the_known_enums() -> None:
    names = {case[0] for case in CASES}
    for expected in [
        "Task.socket:domain:other-enum", "Task.socket:type:other-enum",
        "FileDescriptor.shutdown:how:other-enum", "FileDescriptor.lseek:whence:other-enum",
        "Task.umask:mask:range", "Task.open:mode:range", "Thread.socketpair:type:other-enum",
        "Thread.clone:flags:other-enum", "AsyncFileDescriptor.recv:flags:other-enum",
        "FileDescriptor.listen:backlog:range",
        "Thread.spit:mode:range", "Thread.mkdir:mode:range", "FileDescriptor.fchmod:mode:range",
    ]:
        assert expected in names, expected


@pytest.mark.parametrize(
    ("cls", "name", "param", "what", "bad", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_argument_refused_before_syscall(
    cls: type, name: str, param: str, what: str, bad: object, expected: type[BaseException]
) -> None:
    receiver = receivers()[cls]
    func = inspect.getattr_static(cls, name)
    method = getattr(cls if isinstance(func, classmethod) else receiver, name)
    hints = hints_of(method)
    kwargs: dict[str, object] = {}
    positional: list[object] = []
    signature = inspect.signature(method)
    for other, parameter in signature.parameters.items():
        if other == param:
            value = bad
        else:
            good = _good(hints.get(other))
            value = good if good is not None else Poison()
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(value)
        else:
            kwargs[other] = value
    with pytest.raises(expected) as info:
        await method(*positional, **kwargs)
    assert param in str(info.value)


async def test_examples() -> None:
    task = local_thread.task
    with pytest.raises(TypeError, match=r"domain must be AF, not SOCK\.STREAM"):
        await task.socket(SOCK.STREAM, AF.INET)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"type must be SOCK, not AF\.INET"):
        await task.socket(AF.INET, AF.INET)  # type: ignore[arg-type]
    sock = await task.socket(AF.INET, SOCK.STREAM)
    with pytest.raises(TypeError, match="how must be SHUT"):
        await sock.shutdown(SOCK.STREAM)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="how"):
        await sock.shutdown(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="whence must be SEEK"):
        await sock.lseek(0, AF.UNIX)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask"):
        await task.umask(-1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.umask(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backlog"):
        await sock.listen(2**31)
    # Plain ints in range are fine: the members' values, and flag bits.
    old = await task.umask(0o022)  # type: ignore[arg-type]
    assert isinstance(old, S)
    await task.umask(old)
    other = await task.socket(2, 1)  # type: ignore[arg-type]
    await other.close()
    # An enum parameter that also takes ints (SIG | int) takes any C int,
    # but no other enum's members.
    with pytest.raises(TypeError, match="sig"):
        await task.process.kill(AF.UNIX)  # type: ignore[arg-type]
    await task.process.kill(0)  # the null signal: does the process exist?
    await sock.close()
    assert rsyscall.local_thread is local_thread


async def test_wrappers_keep_the_method() -> None:
    wrapped = Task.socket
    original = inspect.unwrap(wrapped)
    assert wrapped is not original
    assert wrapped.__name__ == "socket"
    assert wrapped.__doc__ == original.__doc__
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.iscoroutinefunction(wrapped)
    # Nothing to check: no wrapper, no cost.
    for name in ("getpid",):
        assert inspect.unwrap(getattr(Task, name)) is getattr(Task, name)
    for name in ("read", "write"):
        assert inspect.unwrap(getattr(FileDescriptor, name)) is getattr(FileDescriptor, name)
