"""The pointer family: typed, sized, garbage-collected memory in one address space.

* `Pointer[T]`: memory with room for a T, contents unknown (from `malloc`).
* `ReadablePointer[T]`: memory known to hold a T (a syscall filled it).
* `WrittenPointer[T]`: memory we wrote a T into; `.value` is that T.
* `LinearPointer[T]`: readable exactly once, for contents that create
  resources when read (file descriptors received over a socket).

A syscall that writes memory consumes the pointer it was given and returns
new pointers to the same memory; a consumed pointer raises
`UseAfterConsumeError` when used.  A syscall that returns a size splits the
buffer into `(valid, rest)`; `valid + rest` gives the whole buffer back.

The header modules use the helpers at the bottom (`take`, `borrow`) to get
an allocation's address for a syscall and then build the result pointers.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, overload

from rsyscall._native import _raw
from rsyscall._native._raw import PointerBase
from rsyscall.memory.allocator import Allocation
from rsyscall.struct import (
    BytesSerializer,
    HasSerializer,
    PathSerializer,
    Serializer,
    StrSerializer,
)

if TYPE_CHECKING:
    from rsyscall.base.task import BaseTask
    from rsyscall.memory.transport import AddressSpace

__all__ = [
    "LinearPointer",
    "PathPointer",
    "Pointer",
    "ReadablePointer",
    "UseAfterConsumeError",
    "WrittenPointer",
    "borrow",
    "check_points_to",
    "path_address",
    "restore",
    "take",
]

T = TypeVar("T")
U = TypeVar("U")


class UseAfterConsumeError(ValueError):
    """A pointer or handle was used after it was consumed or closed.

    Pointers are consumed by syscalls that write to them (use the pointers
    they return instead), by `split`, `merge` and `write`, and a
    `LinearPointer` by its one `read`.  File descriptor handles are consumed
    by `close`."""


class Pointer(PointerBase, Generic[T]):
    """Memory in one address space with room for a T.  Its size is known, so
    no syscall ever takes a separate length argument."""

    # The fields (task, space, serializer, _kind, _alloc, _value) live in the
    # C base, which makes the new pointers of a split or merge cheaply.
    # `_kind` is the type the serializer came from when the serializer
    # depends on the task (so a syscall in another task can rebind it), else
    # None; `_alloc` is None once the pointer is consumed.
    __slots__ = ()

    if TYPE_CHECKING:
        task: BaseTask
        space: AddressSpace
        serializer: Serializer[T]

        def __init__(
            self,
            task: BaseTask,
            serializer: Serializer[T],
            kind: type[HasSerializer] | None,
            alloc: Allocation,
        ) -> None: ...

    def _live(self) -> Allocation:
        alloc = self._alloc
        if alloc is None:
            raise UseAfterConsumeError(f"{type(self).__name__} was already consumed")
        return alloc

    def size(self) -> int:
        """The size of this memory in bytes."""
        return self._live().size

    @property
    def address(self) -> int:
        """The address of this memory in its address space."""
        return self._live().address

    def free(self) -> None:
        """Give the memory back now, rather than when the pointer is garbage
        collected; the pointer is consumed (UseAfterConsumeError if used,
        also inside an IovecList or ArgList that holds it)."""
        self._live()
        self._alloc = None  # the allocation, held by nothing else, frees itself

    @property
    def consumed(self) -> bool:
        """Whether this pointer has been consumed and may no longer be used."""
        return self._alloc is None

    def __repr__(self) -> str:
        alloc = self._alloc
        where = "consumed" if alloc is None else f"{alloc.address:#x}, size={alloc.size}"
        return f"{type(self).__name__}({where})"

    # ---- making the pointers that replace this one ----

    def _for_task(self, task: BaseTask) -> tuple[BaseTask, Serializer[T]]:
        if task is self.task or self._kind is None:
            return self.task, self.serializer
        return task, self._kind.get_serializer(task)

    def _as(self, cls: type[Pointer[T]], alloc: Allocation, task: BaseTask | None = None) -> Any:
        if task is None or task is self.task or self._kind is None:
            return self._derive(cls, alloc)
        owner, serializer = self._for_task(task)
        return cls(owner, serializer, self._kind, alloc)

    def _readable(self, alloc: Allocation, task: BaseTask | None = None) -> ReadablePointer[T]:
        """A syscall in `task` filled all of `alloc`."""
        return self._as(ReadablePointer, alloc, task)  # type: ignore[no-any-return]

    def _linear(self, alloc: Allocation, task: BaseTask | None = None) -> LinearPointer[T]:
        return self._as(LinearPointer, alloc, task)  # type: ignore[no-any-return]

    def _readable_split_for(
        self, alloc: Allocation, count: int, task: BaseTask
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """_readable_split (in C) for a syscall in another task, whose
        serializer for the kind may differ."""
        valid, rest = alloc.split(count)
        return self._as(ReadablePointer, valid, task), self._as(Pointer, rest, task)

    if TYPE_CHECKING:
        # In C (PointerBase):
        def _readable_split(
            self, alloc: Allocation, count: int, task: BaseTask | None = None
        ) -> tuple[ReadablePointer[T], Pointer[T]]:
            """A syscall in `task` filled the first `count` bytes of `alloc`."""

        def _unchanged_split(self, alloc: Allocation, count: int) -> tuple[Any, Any]:
            """A syscall used (read) the first `count` bytes of `alloc`:
            pointers of this one's kind (of a WrittenPointer of bytes, with
            the two parts of its value)."""

    def _unchanged(self, alloc: Allocation) -> Any:
        """A syscall only read `alloc`: a pointer of this one's kind to it."""
        cls = type(self)
        return self._derive(cls if cls is not LinearPointer else ReadablePointer, alloc)

    # ---- the user's operations ----

    def split(self, offset: int) -> tuple[Pointer[T], Pointer[T]]:
        """Consume this pointer; return pointers to its first `offset` bytes
        and to the rest, of the same kind as this one."""
        if not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        alloc = self._live()
        if not 0 <= offset <= alloc.size:
            raise ValueError(f"split offset {offset} outside 0..{alloc.size}")
        self._alloc = None
        return self._unchanged_split(alloc, offset)

    if TYPE_CHECKING:
        # In C (PointerBase.merge, and `+`); the result's kind is said
        # at set_pointer_kinds below.
        def merge(self, other: Pointer[T]) -> Pointer[T]:
            """Consume this pointer and `other`, which must start where this
            one ends; return one pointer to both.  The result is readable
            only if both were."""

        def __add__(self, other: Pointer[T]) -> Pointer[T]: ...

    async def write(self, value: T) -> WrittenPointer[T]:
        """Consume this pointer; store `value` and return a pointer to it.

        If `value` needs fewer bytes than this pointer has, the written
        pointer covers just those bytes and the rest is freed; if it needs
        more, ValueError."""
        alloc = self._live()
        data = self.serializer.to_bytes(value)
        if len(data) > alloc.size:
            raise ValueError(f"value needs {len(data)} bytes, pointer has {alloc.size}")
        await self.space.transport.write(alloc.address, data)
        self._alloc = None
        if len(data) < alloc.size:
            alloc, _ = alloc.split(len(data))
        if isinstance(value, bytearray | memoryview):
            value = data  # type: ignore[assignment]  # bytes, which cannot change later
        return WrittenPointer(self.task, self.serializer, self._kind, alloc, value)


class ReadablePointer(Pointer[T]):
    """Memory known to hold a T."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Two readable parts make a readable whole.
        @overload
        def merge(self, other: ReadablePointer[T]) -> ReadablePointer[T]: ...
        @overload
        def merge(self, other: Pointer[T]) -> Pointer[T]: ...
        def merge(self, other: Pointer[T]) -> Pointer[T]: ...
        @overload
        def __add__(self, other: ReadablePointer[T]) -> ReadablePointer[T]: ...
        @overload
        def __add__(self, other: Pointer[T]) -> Pointer[T]: ...
        def __add__(self, other: Pointer[T]) -> Pointer[T]: ...

    def split(self, offset: int) -> tuple[ReadablePointer[T], ReadablePointer[T]]:
        """As Pointer.split; the parts of readable memory are readable (and
        the parts of a WrittenPointer of bytes are WrittenPointers)."""
        return super().split(offset)  # type: ignore[return-value]

    def read(self) -> Awaitable[T]:
        """Read the T from memory."""
        alloc = self._alloc
        if alloc is None:
            raise UseAfterConsumeError(f"{type(self).__name__} was already consumed")
        data = self.space.transport.read(alloc.address, alloc.size)
        serializer = self.serializer
        if type(serializer) is BytesSerializer:
            return data  # type: ignore[return-value]  # the bytes are the value
        return _deserialized(data, serializer)


class WrittenPointer(ReadablePointer[T]):
    """Memory we wrote a T into; `value` is that T, without reading memory."""

    __slots__ = ()

    if TYPE_CHECKING:

        def __init__(
            self,
            task: BaseTask,
            serializer: Serializer[T],
            kind: type[HasSerializer] | None,
            alloc: Allocation,
            value: T,
        ) -> None: ...

    @property
    def value(self) -> T:
        """The value written, as it was written (read-only: the library
        relies on it matching the memory)."""
        return self._value  # type: ignore[no-any-return]

    def _as(self, cls: type[Pointer[T]], alloc: Allocation, task: BaseTask | None = None) -> Any:
        if cls is WrittenPointer:
            raise TypeError("a WrittenPointer's parts are made by _unchanged_split")
        return super()._as(cls, alloc, task)

    def _unchanged(self, alloc: Allocation) -> Any:
        made = self._derive(WrittenPointer, alloc)
        made._value = self._value
        return made

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, value={self.value!r})"


class LinearPointer(ReadablePointer[T]):
    """Readable exactly once: reading consumes it.

    Used where reading creates resources, such as the file descriptors in a
    received SCM_RIGHTS message: two reads would make two owners of each."""

    __slots__ = ()

    async def read(self) -> T:
        value = await super().read()
        self._alloc = None
        return value


async def _deserialized(data: Awaitable[bytes], serializer: Serializer[T]) -> T:
    return serializer.from_bytes(await data)


# The kinds the C side makes: merge gives a WrittenPointer (of bytes) from
# two WrittenPointers, a ReadablePointer from two readable ones, else a
# Pointer; a LinearPointer's parts are ReadablePointers.
_raw.set_pointer_kinds(Pointer, ReadablePointer, WrittenPointer, LinearPointer,
                       UseAfterConsumeError)


# ---- helpers for syscall implementations ----


def check_points_to(ptr: object, cls: type | tuple[type, ...]) -> None:
    """A pointer argument must have been made for a `cls` (by `ptr` of a
    `cls` value or `malloc(cls)`), else TypeError.  Non-pointers are left to
    `take` and `borrow`, which reject them."""
    if isinstance(ptr, Pointer):
        kind = ptr._kind
        if kind is None or not issubclass(kind, cls):
            names = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
            raise TypeError(f"expected a pointer to a {names}, got {ptr!r}")


if TYPE_CHECKING:

    def take(ptr: Pointer[Any], task: BaseTask, minimum: int = 0) -> Allocation:
        """Consume `ptr` for a syscall in `task` that will write to it.

        Checks that it is a live pointer in `task`'s address space with at least
        `minimum` bytes.  On failure of the syscall, `restore` gives it back."""

    def borrow(ptr: ReadablePointer[Any], task: BaseTask, minimum: int = 0) -> Allocation:
        """Use `ptr`, which must hold initialized memory, for a syscall in `task`
        that only reads it.  The pointer stays valid."""

else:
    # In C: the checks every syscall with a pointer makes.
    take = _raw.take
    borrow = _raw.borrow


def restore(ptr: Pointer[Any], alloc: Allocation) -> None:
    """Undo `take` after a syscall that failed and so wrote nothing."""
    ptr._alloc = alloc


PathPointer: TypeAlias = (
    "WrittenPointer[str] | WrittenPointer[os.PathLike[str]]"
    " | WrittenPointer[str | os.PathLike[str]]"
)


def path_address(task: BaseTask, path: PathPointer) -> int:
    """The address of a NUL-terminated path for a syscall in `task`."""
    alloc = borrow(path, task)
    if not isinstance(path.serializer, StrSerializer | PathSerializer):
        raise TypeError("a path must be a pointer to a str or os.PathLike, from thread.ptr(path)")
    return alloc.address
