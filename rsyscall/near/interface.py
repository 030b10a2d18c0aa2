"""The SyscallInterface: how a system call reaches one particular process."""

import abc
from collections.abc import Awaitable
from typing import ClassVar


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
    call once it has been sent, even if the awaiting coroutine is cancelled
    (DESIGN.md section 3).
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
