"""File descriptor handles and the per-table reference counts behind them."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from rsyscall.memory.pointer import UseAfterConsumeError
from rsyscall.struct import Serializer

if TYPE_CHECKING:
    from rsyscall.base.task import BaseTask
    from rsyscall.handle import FileDescriptor, Task

T = TypeVar("T")

__all__ = ["BaseFileDescriptor", "FDPairSerializer", "FDTable", "closed_error"]


class FDTable:
    """One kernel file descriptor table, and how many handles name each fd.

    Tasks cloned with CLONE_FILES share the table (and this object).  When
    the last handle for a number goes away without an explicit close, the
    table's `closer` closes the fd: at once in the local process, later
    (before the task's next syscall) where closing takes a round trip."""

    __slots__ = ("__weakref__", "_refs", "closer", "name")

    def __init__(self, name: str, closer: Callable[[int], None]) -> None:
        self.name = name
        self.closer = closer
        self._refs: dict[int, int] = {}

    def acquire(self, number: int) -> None:
        self._refs[number] = self._refs.get(number, 0) + 1

    def release(self, number: int) -> bool:
        """Drop one handle's reference; True if it was the last."""
        count = self._refs[number] - 1
        if count:
            self._refs[number] = count
            return False
        del self._refs[number]
        return True

    def handle_count(self, number: int) -> int:
        """How many live handles name `number` in this table."""
        return self._refs.get(number, 0)

    def numbers(self) -> list[int]:
        """The fd numbers that have live handles."""
        return sorted(self._refs)

    def __repr__(self) -> str:
        return f"FDTable({self.name!r}, {len(self._refs)} fds)"


def closed_error() -> UseAfterConsumeError:
    return UseAfterConsumeError("file descriptor handle was already closed")


class BaseFileDescriptor:
    """A handle for one fd number in one task's fd table.

    Several handles may name the same fd (one per task sharing the table,
    say); the fd is closed when the last of them is closed or garbage
    collected.  A closed handle raises `UseAfterConsumeError` when used."""

    __slots__ = ("__weakref__", "_number", "task")

    def __init__(self, task: Task, number: int) -> None:
        self.task = task
        self._number = number
        task.fd_table.acquire(number)

    @property
    def number(self) -> int:
        """The fd number; raises if this handle was closed."""
        number = self._number
        if number < 0:
            raise closed_error()
        return number

    @property
    def closed(self) -> bool:
        """Whether this handle was closed (the fd itself may live on in other handles)."""
        return self._number < 0

    def _release(self) -> tuple[int, bool]:
        """Invalidate this handle: its fd number, and whether it was the last handle."""
        number = self.number
        self._number = -1
        return number, self.task.fd_table.release(number)

    def for_task(self, task: Task) -> FileDescriptor:
        """Another handle for this fd, usable from `task`, which must share
        this fd's table (a task cloned with CLONE_FILES)."""
        if task.fd_table is not self.task.fd_table:
            raise ValueError(
                "that task has a different fd table; use its thread's inherit_fd for a copied table"
            )
        return task.make_fd(self.number)

    def __del__(self) -> None:
        number = self._number
        if number >= 0:
            self._number = -1
            table = self.task.fd_table
            if table.release(number):
                table.closer(number)

    def __repr__(self) -> str:
        state = "closed" if self._number < 0 else str(self._number)
        return f"{type(self).__name__}({state}, pid={self.task.pid})"


class FDPairSerializer(Serializer[T]):
    """Two C ints that are fd numbers in `task`'s table (pipe2, socketpair).

    Reading makes handles that own the fds; writing writes their numbers."""

    __slots__ = ("make", "task")
    _packer = struct.Struct("<ii")

    def __init__(self, task: BaseTask, make: Callable[[FileDescriptor, FileDescriptor], T]) -> None:
        self.task = task
        self.make = make

    def to_bytes(self, value: T) -> bytes:
        first, second = value  # type: ignore[misc]
        return self._packer.pack(first.number, second.number)  # type: ignore[has-type]

    def from_bytes(self, data: bytes) -> T:
        first, second = self._packer.unpack(data[:8])
        return self.make(self.task.make_fd(first), self.task.make_fd(second))
