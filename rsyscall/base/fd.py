"""File descriptor handles and the per-table bookkeeping behind them."""

from __future__ import annotations

import inspect
import struct
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rsyscall.memory.pointer import UseAfterConsumeError
from rsyscall.struct import Serializer

if TYPE_CHECKING:
    from rsyscall.base.task import BaseTask
    from rsyscall.handle import FileDescriptor, Task

T = TypeVar("T")
_ref = weakref.ref

__all__ = ["BaseFileDescriptor", "FDPairSerializer", "FDTable", "closed_error"]

Closer = Callable[[int], bool]
"""Closes an fd number in a table without waiting; False if it cannot (the
process it would use is gone), so the table tries another."""


class _Slot:
    """The handles for one fd number in one table, from the first handle made
    for it to the last one released: the fd they all name.  A number that is
    closed and reused gets a new slot, which is how a copy of a table tells an
    fd it inherited from a later one with the same number."""

    __slots__ = ("__weakref__", "count", "handles", "private")

    def __init__(self) -> None:
        self.count = 0
        # Library machinery (a connection socket, an epoll fd): never kept
        # in the copies of this table that a child gets.
        self.private = False
        # The handles, weakly: close_range closes numbers without their
        # handles' help, and must invalidate them all.  Pruned as it grows.
        self.handles: list[weakref.ref[BaseFileDescriptor]] = []



def _live(ref: weakref.ref[BaseFileDescriptor]) -> bool:
    handle = ref()
    return handle is not None and handle._number >= 0


class FDTable:
    """One kernel file descriptor table, and which fds have handles.

    Tasks cloned with CLONE_FILES share the table (and this object); each
    registers a `Closer`, and an fd whose last handle goes away without an
    explicit close is closed through the first closer that still works (at
    once in the local process, later, before its next syscall, where
    closing takes a round trip).

    **Copies.**  A child cloned without CLONE_FILES gets a copy of the
    kernel table: every fd of its parent.  The copy's FDTable remembers the
    parent's handles of that moment (`inherited`): `inherit_fd` may claim
    those and nothing else, and a copy nobody claimed is closed in the
    child as soon as the parent's last handle for it goes away, so that a
    child never keeps a pipe from reaching EOF."""

    __slots__ = ("__weakref__", "_closers", "_copies", "_refs", "inherited", "name", "parent")

    def __init__(self, name: str, closer: Closer | None = None) -> None:
        self.name = name
        # Weakly held where a closer is a bound method (a connection's): the
        # table of a long-lived process must not keep a dead child's
        # connection alive.
        self._closers: list[Callable[[], Closer | None]] = []
        if closer is not None:
            self.add_closer(closer)
        self._refs: dict[int, _Slot] = {}
        self._copies: weakref.WeakSet[FDTable] = weakref.WeakSet()
        # For a copy: the parent's slots at clone time that the child may
        # still claim, by number.  A claimed number stays, so that it can be
        # claimed again (the handles share ownership).
        self.inherited: dict[int, _Slot] = {}
        self.parent: FDTable | None = None

    # ---- handles ----

    def acquire(self, number: int, handle: BaseFileDescriptor) -> None:
        slot = self._refs.get(number)
        if slot is None:
            slot = self._refs[number] = _Slot()
        count = slot.count = slot.count + 1
        handles = slot.handles
        if len(handles) > 2 * count + 8:
            handles[:] = [ref for ref in handles if _live(ref)]
        handles.append(_ref(handle))

    def release(self, number: int) -> bool:
        """Drop one handle's reference; True if it was the last (the caller
        then closes the fd)."""
        slot = self._refs[number]
        slot.count -= 1
        if slot.count:
            return False
        del self._refs[number]
        # Closed here, so no longer a copy of the parent's fd.
        self.inherited.pop(number, None)
        for copy in list(self._copies):
            copy._parent_closed(number, slot)
        return True

    def closed_underneath(self, numbers: Iterable[int]) -> None:
        """The fds `numbers` are being closed without their handles (by
        close_range(2)): every handle for them becomes closed, as if
        closed itself (its on_close callbacks run), and a copy this table
        gave a child, or one it got from its parent, is no longer there
        to inherit.  Numbers without handles are fine."""
        for number in numbers:
            self.inherited.pop(number, None)
            slot = self._refs.pop(number, None)
            if slot is None:
                continue
            slot.count = 0
            for ref in slot.handles:
                handle = ref()
                if handle is not None and handle._number == number:
                    handle._invalidate()
            slot.handles.clear()
            for copy in list(self._copies):
                copy._parent_closed(number, slot)

    def handle_count(self, number: int) -> int:
        """How many live handles name `number` in this table."""
        slot = self._refs.get(number)
        return 0 if slot is None else slot.count

    def numbers(self) -> list[int]:
        """The fd numbers that have live handles."""
        return sorted(self._refs)

    def mark_private(self, number: int, private: bool = True) -> None:
        """`number` (which has a handle) is library machinery: children's
        copies of this table close it at once (or, not `private`, it is
        the user's again: children inherit it as any other)."""
        self._refs[number].private = private

    def slot(self, number: int) -> _Slot | None:
        """The slot of the handles for `number`, if any."""
        return self._refs.get(number)

    # ---- closing without waiting ----

    def add_closer(self, closer: Closer) -> None:
        """Another task uses this table: it can close fds in it too."""
        if inspect.ismethod(closer):
            self._closers.append(weakref.WeakMethod(closer))
        else:
            self._closers.append(lambda: closer)

    def closer(self, number: int) -> None:
        """Close `number` through the first task sharing the table that can."""
        closers = self._closers
        i = 0
        while i < len(closers):
            close = closers[i]()
            if close is not None and close(number):
                return
            # Gone for good: a dead task never comes back.
            del closers[i]

    def sharers(self) -> int:
        """How many tasks may still close fds here (live, or not yet
        known to be gone)."""
        return sum(1 for ref in self._closers if ref() is not None)

    def forget_closer(self, closer: Closer) -> None:
        """A task that used this table no longer does (it exec'd or died)."""
        self._closers = [ref for ref in self._closers if ref() not in (None, closer)]

    # ---- copies ----

    def copy_for_child(self, name: str, closer: Closer, keep: int) -> tuple[FDTable, list[int]]:
        """The table of a child cloned without CLONE_FILES, and the fd
        numbers it should keep open: the parent's handles that are not
        private, and `keep` (the child's own connection).  Everything else
        the child got is unreachable, and the caller closes it there."""
        copy = FDTable(name, closer)
        copy.parent = self
        copy.inherited = {n: slot for n, slot in self._refs.items() if not slot.private}
        self._copies.add(copy)
        return copy, sorted({*copy.inherited, keep})

    def _parent_closed(self, number: int, slot: _Slot) -> None:
        if self.inherited.get(number) is slot and number not in self._refs:
            # Nobody claimed this copy, and nobody can any more.
            del self.inherited[number]
            self.closer(number)

    def inherits(self, number: int) -> bool:
        """Whether this copy got `number` from its parent and still has it,
        as the parent's current fd of that number."""
        parent = self.parent
        slot = self.inherited.get(number)
        return parent is not None and slot is not None and parent._refs.get(number) is slot

    def __repr__(self) -> str:
        return f"FDTable({self.name!r}, {len(self._refs)} fds)"


def closed_error() -> UseAfterConsumeError:
    return UseAfterConsumeError("file descriptor handle was already closed")


class BaseFileDescriptor:
    """A handle for one fd number in one task's fd table.

    Several handles may name the same fd (one per task sharing the table,
    say); the fd is closed when the last of them is closed or garbage
    collected.  A closed handle raises `UseAfterConsumeError` when used.

    `on_close` callbacks run when this handle is closed, by `close()` or by
    anything else that invalidates it: an `AsyncFileDescriptor` uses one to
    wake its waiters, whichever handle method closed the fd."""

    __slots__ = ("__weakref__", "_number", "_on_close", "task")

    def __init__(self, task: Task, number: int) -> None:
        self.task = task
        self._number = number
        self._on_close: list[Callable[[], None]] | None = None
        task.fd_table.acquire(number, self)

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

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (synchronously) when this handle is closed."""
        if self._on_close is None:
            self._on_close = []
        self._on_close.append(callback)

    def _invalidate(self) -> None:
        """The fd was closed underneath this handle (close_range): it is
        closed now, and the table no longer counts it."""
        self._number = -1
        callbacks, self._on_close = self._on_close, None
        if callbacks:
            for callback in callbacks:
                callback()

    def _release(self) -> tuple[int, bool]:
        """Invalidate this handle: its fd number, and whether it was the last handle."""
        number = self.number
        self._number = -1
        callbacks, self._on_close = self._on_close, None
        if callbacks:
            for callback in callbacks:
                callback()
        return number, self.task.fd_table.release(number)

    def drop(self) -> None:
        """Release this handle now, without waiting: if it was the last for
        its fd, the fd is closed as garbage collection would close it."""
        if self._number < 0:
            return
        number, last = self._release()
        if last:
            self.task.fd_table.closer(number)

    def as_proc_path(self) -> Path:
        """/proc/PID/fd/N for this fd, PID as the task's own pid namespace
        sees it: a path that opens the same file again (with new flags) for
        the task, or a program it runs, whatever the fd's name was."""
        return Path(f"/proc/{self.task.pid}/fd/{self.number}")

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
