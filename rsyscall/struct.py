"""Serializers: how Python values become the bytes of C values, and back.

Every value that goes into memory for a system call has a `Serializer`.  A
type that knows its own serializer is a `HasSerializer`; most are
`Serializable` (the value has `to_bytes()`, the class has `from_bytes()`).
`Struct` adds a fixed size and a `Layout`, the field-by-field description of
the C struct that the ABI test compares with the system headers.

Some serializers depend on the task that reads the memory: a buffer holding
file descriptor numbers turns into `FileDescriptor` handles of that task.
That is why `get_serializer` takes the task.
"""

from __future__ import annotations

import abc
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Generic, Self, TypeAlias, TypeVar

if TYPE_CHECKING:
    from rsyscall.base.task import BaseTask

T = TypeVar("T")

__all__ = [
    "C_INT",
    "C_UINT",
    "C_ULONG",
    "CInt",
    "check_fields",
    "CType",
    "CUInt",
    "PidT",
    "int_arg",
    "BytesSerializer",
    "FixedSize",
    "HasSerializer",
    "Immutable",
    "Int32",
    "Int64",
    "Layout",
    "PathSerializer",
    "Serializable",
    "Serializer",
    "StrSerializer",
    "Struct",
    "UInt32",
    "UInt64",
]


C_INT = (-(1 << 31), (1 << 31) - 1)
"""The range of a C int."""
C_UINT = (0, (1 << 32) - 1)
"""The range of a C unsigned int (uint32_t)."""
C_ULONG = (0, (1 << 64) - 1)
"""The range of a C unsigned long (uint64_t) on x86_64."""


class CType:
    """`Annotated` metadata: an int argument has this C type, so must be in
    its range.  The syscall methods' wrappers (rsyscall.argcheck) check
    parameters annotated `CInt`, `CUInt`, `PidT`."""

    __slots__ = ("high", "low", "name")

    def __init__(self, name: str, low: int, high: int) -> None:
        self.name = name
        self.low = low
        self.high = high

    def __repr__(self) -> str:
        return f"CType({self.name!r}, {self.low}, {self.high})"


CInt: TypeAlias = Annotated[int, CType("int", *C_INT)]
"""An int argument of C type `int`."""
CUInt: TypeAlias = Annotated[int, CType("unsigned int", *C_UINT)]
"""An int argument of C type `unsigned int`."""
PidT: TypeAlias = Annotated[int, CType("pid_t", *C_INT)]
"""An int argument of C type `pid_t`."""


def int_arg(name: str, value: object, limits: tuple[int, int] | None = None) -> int:
    """An integer argument: TypeError for anything but an int (a bool
    included), ValueError outside `limits`.  The syscall ABI would silently
    drop the high bits of a value too big for its C type, so the range is
    checked instead."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if limits is not None and not limits[0] <= value <= limits[1]:
        raise ValueError(f"{name} {value} outside {limits[0]}..{limits[1]}")
    return int(value)


_CODE_LIMITS = {
    "b": (-(1 << 7), (1 << 7) - 1),
    "B": (0, (1 << 8) - 1),
    "h": (-(1 << 15), (1 << 15) - 1),
    "H": (0, (1 << 16) - 1),
    "i": C_INT,
    "I": C_UINT,
    "q": (-(1 << 63), (1 << 63) - 1),
    "Q": C_ULONG,
}


def check_fields(obj: object, fields: Sequence[tuple[str, str]]) -> None:
    """Check the int fields of a struct being made: each `(attribute,
    code)` must be an int (TypeError) in the range of the `struct` module
    `code` of its C field (ValueError), so that every struct that can be
    made can be written."""
    owner = type(obj).__name__
    for name, code in fields:
        int_arg(f"{owner}.{name}", getattr(obj, name), _CODE_LIMITS[code])
class Immutable:
    """A value whose attributes are set once, in its constructor (with
    `object.__setattr__`), and never again.  The library reads some values
    of `WrittenPointer`s (an IovecList's buffers, a msghdr's parts) instead
    of the memory they were written to; immutability keeps the two equal."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; make a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


class Serializer(Generic[T], abc.ABC):
    """Converts between a Python value and the bytes of its C representation."""

    __slots__ = ()

    @abc.abstractmethod
    def to_bytes(self, value: T) -> bytes:
        """The bytes that represent `value` in memory."""

    @abc.abstractmethod
    def from_bytes(self, data: bytes) -> T:
        """The value that `data` represents."""


class HasSerializer(abc.ABC):
    """A type whose values can be written to and read from memory."""

    __slots__ = ()

    @classmethod
    @abc.abstractmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[Self]:
        """The serializer for values of this type, as seen by `task`."""


class FixedSize(abc.ABC):
    """A type whose values always take the same number of bytes."""

    __slots__ = ()

    @classmethod
    @abc.abstractmethod
    def sizeof(cls) -> int:
        """The size in bytes, as C's sizeof."""


class _SelfSerializer(Serializer[T]):
    __slots__ = ("cls",)

    def __init__(self, cls: type[Serializable]) -> None:
        self.cls = cls

    def to_bytes(self, value: T) -> bytes:
        if not isinstance(value, self.cls):
            raise TypeError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        return value.to_bytes()

    def from_bytes(self, data: bytes) -> T:
        return self.cls.from_bytes(data)  # type: ignore[return-value]


class Serializable(HasSerializer):
    """A value that serializes itself: `value.to_bytes()`, `cls.from_bytes(data)`."""

    __slots__ = ()

    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """The bytes that represent this value in memory."""

    @classmethod
    @abc.abstractmethod
    def from_bytes(cls, data: bytes) -> Self:
        """The value that `data` represents."""

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[Self]:
        serializer = cls.__dict__.get("_serializer")
        if serializer is None:
            serializer = _SelfSerializer(cls)
            cls._serializer = serializer  # type: ignore[attr-defined]
        return serializer


class Layout:
    """The layout of a C struct: its fields in order, as `struct` module codes.

    Fields are little-endian with standard sizes and no implicit alignment:
    every byte of padding is written out ("4x"), so the offsets here are the
    offsets in C, and the test suite checks them against the headers.  A
    field is named as in C (`sin_port`), which documents the mapping to the
    Python attribute (`port`).  A padding field that has no C name is named
    with a leading underscore and is not checked.
    """

    __slots__ = ("c_type", "fields", "offsets", "size", "struct")

    def __init__(self, c_type: str, fields: Sequence[tuple[str, str]]) -> None:
        self.c_type = c_type
        self.fields = tuple(fields)
        self.struct = struct.Struct("<" + "".join(code for _, code in self.fields))
        self.size = self.struct.size
        offsets: dict[str, int] = {}
        prefix = "<"
        for name, code in self.fields:
            if not name.startswith("_"):
                offsets[name] = struct.calcsize(prefix)
            prefix += code
        self.offsets = offsets

    def __repr__(self) -> str:
        return f"Layout({self.c_type!r}, size={self.size})"


class Struct(Serializable, FixedSize):
    """A C struct: fixed size, with a `layout` the ABI test checks."""

    __slots__ = ()
    layout: ClassVar[Layout]

    @classmethod
    def sizeof(cls) -> int:
        return cls.layout.size


class _IntSerializer(Serializer[T]):
    __slots__ = ("cls", "packer")

    def __init__(self, cls: type[T], code: str) -> None:
        self.cls = cls
        self.packer = struct.Struct("<" + code)

    def to_bytes(self, value: T) -> bytes:
        return self.packer.pack(value)

    def from_bytes(self, data: bytes) -> T:
        return self.cls(self.packer.unpack(data[: self.packer.size])[0])  # type: ignore[call-arg]


class _FixedInt(int, HasSerializer, FixedSize):
    """An integer of a C integer type; `ptr(Int32(5))` writes 4 bytes."""

    __slots__ = ()
    _code: ClassVar[str]
    _int_serializer: ClassVar[Serializer[int]]

    def __init_subclass__(cls, code: str = "", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._code = code
        cls._int_serializer = _IntSerializer(cls, code)

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[Self]:
        return cls._int_serializer  # type: ignore[return-value]

    @classmethod
    def sizeof(cls) -> int:
        return struct.calcsize("<" + cls._code)


class Int32(_FixedInt, code="i"):
    """C `int` / `int32_t`."""

    __slots__ = ()


class UInt32(_FixedInt, code="I"):
    """C `unsigned int` / `uint32_t` (also `socklen_t`)."""

    __slots__ = ()


class Int64(_FixedInt, code="q"):
    """C `long` / `int64_t` on x86_64."""

    __slots__ = ()


class UInt64(_FixedInt, code="Q"):
    """C `unsigned long` / `uint64_t` / `size_t` on x86_64."""

    __slots__ = ()


class BytesSerializer(Serializer[bytes]):
    """Raw bytes, as they are."""

    __slots__ = ()

    def to_bytes(self, value: bytes) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"expected bytes, got {type(value).__name__}")
        return bytes(value)

    def from_bytes(self, data: bytes) -> bytes:
        return data


def _nul_terminated(encoded: bytes) -> bytes:
    if b"\0" in encoded:
        raise ValueError("embedded null byte")
    return encoded + b"\0"


class StrSerializer(Serializer[str]):
    """A C string: encoded with the filesystem encoding and NUL-terminated.

    Reading stops at the first NUL, or at the end of the buffer if there is
    none (readlink does not write one)."""

    __slots__ = ()

    def to_bytes(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"expected str, got {type(value).__name__}")
        return _nul_terminated(os.fsencode(value))

    def from_bytes(self, data: bytes) -> str:
        return os.fsdecode(data.split(b"\0", 1)[0])


class PathSerializer(Serializer[os.PathLike[str]]):
    """A path, written as a NUL-terminated C string; read back as a str path."""

    __slots__ = ()

    def to_bytes(self, value: os.PathLike[str]) -> bytes:
        return _nul_terminated(os.fsencode(value))

    def from_bytes(self, data: bytes) -> os.PathLike[str]:
        from pathlib import Path

        return Path(os.fsdecode(data.split(b"\0", 1)[0]))
