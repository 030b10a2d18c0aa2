"""The SyscallInterface: how a system call reaches one particular process,
and the OSError a failed syscall raises.

A failed syscall raises the builtin OSError subclass for its errno
(FileNotFoundError for ENOENT, BlockingIOError for EAGAIN...), as `os`
functions do, so `except BlockingIOError` and `error.errno` work as usual.
The instance also says which syscall failed: its `syscall` attribute, and
`str()` starts with the name (`read: [Errno 9] Bad file descriptor`).  A
syscall that takes paths attaches them as `filename` (and `filename2`), as
`os.open` does: `openat: [Errno 2] No such file or directory: '/x'`.
"""

import abc
import errno as _errno
import os
from collections.abc import Awaitable
from typing import Any, ClassVar

from rsyscall._native import _raw
from rsyscall.near.sysnum import SYS


class SyscallHangup(Exception):
    """The process behind a syscall connection can no longer answer.

    It exited, was killed, or called exec.  Every call that was pending on the
    connection, and every later call, fails with this exception.  Whether a
    pending call took effect before the process went away cannot be known.
    """


class SyscallInterface(abc.ABC):
    """Makes system calls in one particular process.

    A request is the syscall number and up to six integer arguments; the
    answer is the integer result.  A failed call raises OSError with its
    errno, never returns a negative value.  Implementations must complete a
    call once it has been sent, even if the awaiting coroutine is cancelled:
    a side effect is never lost.
    """

    __slots__ = ()
    is_local: ClassVar[bool] = False
    """Whether syscalls run in the Python process itself, so that
    `syscall_later` has completed the call when it returns."""

    @abc.abstractmethod
    def syscall(self, number: int, /, *args: int) -> Awaitable[int]:
        """Make system call `number` with `args` (at most six)."""

    def syscall_to_completion(self, number: int, /, *args: int) -> Awaitable[int]:
        """Make a syscall that runs even if the caller is cancelled before it
        started, and is not interrupted: for calls whose effect the caller
        has already committed to (close(2), after the handle was released;
        repeating a close interrupted with EINTR could close a reused
        number).  Cancellation then comes at the caller's next checkpoint."""
        return self.syscall(number, *args)

    @abc.abstractmethod
    def syscall_later(self, number: int, /, *args: int, keep: object = None) -> None:
        """Make a syscall whose result nobody needs, as soon as possible,
        without waiting: for finalizers (closing an fd, reaping a child).
        Errors are ignored.  `keep` (memory the call refers to) is held
        until the call has been made."""


class SyscallError:
    """Mixed into the OSError a failed syscall raises: `syscall` is the
    name of the syscall (`"openat"`).  The exception is also an instance of
    the builtin class for its errno (FileNotFoundError...), and its repr and
    traceback name that class."""

    __slots__ = ()
    syscall: str

    def __str__(self) -> str:
        return f"{self.syscall}: {OSError.__str__(self)}"  # type: ignore[arg-type]

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError's own reduction carries filename and filename2 in args.
        reduced = OSError.__reduce__(self)
        state = reduced[2] if len(reduced) > 2 else {}
        return (_rebuild, (type(self).__bases__[1], reduced[1], state))


def _rebuild(base: type[OSError], args: tuple[Any, ...], state: dict[str, Any]) -> OSError:
    error = _error_class(base)(*args)
    error.__dict__.update(state or {})
    return error


_CLASSES: dict[type[OSError], type[OSError]] = {}
_BY_ERRNO: dict[int, type[OSError]] = {}
_NAMES: dict[int, str] = {}


def _error_class(base: type[OSError]) -> type[OSError]:
    cls = _CLASSES.get(base)
    if cls is None:
        # Named and placed as the builtin it extends, so a traceback reads
        # "FileNotFoundError: openat: [Errno 2] ..." as for os.open.
        cls = type(base.__name__, (SyscallError, base), {"__slots__": (), "__module__": "builtins"})
        _CLASSES[base] = cls
    return cls


def syscall_name(number: int) -> str:
    """The name of syscall `number` (x86_64), or "syscall N" if unknown."""
    name = _NAMES.get(number)
    if name is None:
        try:
            name = SYS(number).name
        except ValueError:
            name = f"syscall {number}" if number >= 0 else "syscall"
        _NAMES[number] = name
    return name


def syscall_error(number: int, errno: int) -> OSError:
    """The exception for syscall `number` failing with `errno`: an instance
    of the builtin OSError subclass for the errno, naming the syscall.

    Every syscall interface raises these (the local one from C, which calls
    this only when a syscall fails)."""
    cls = _BY_ERRNO.get(errno)
    if cls is None:
        cls = _error_class(type(OSError(errno, "")))
        _BY_ERRNO[errno] = cls
    try:
        message = os.strerror(errno)
    except ValueError:
        message = _errno.errorcode.get(errno, f"error {errno}")
    error = cls(errno, message)
    error.syscall = syscall_name(number)  # type: ignore[attr-defined]
    return error


def add_filenames(error: OSError, first: object, second: object = None) -> None:
    """Attach the paths a failed syscall was given, as os functions do,
    unless the error already names some."""
    if error.filename is None and first is not None:
        error.filename = first
        if second is not None:
            error.filename2 = second


# The local syscall entry raises through this (only on the error path).
_raw.set_error_factory(syscall_error)
