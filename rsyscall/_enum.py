"""The base classes of the library's constants: IntEnum and IntFlag as the
standard library has them, whose help() and dir() show the members (and
what the class itself defines) rather than every method of int."""

from __future__ import annotations

import enum

__all__ = ["IntEnum", "IntFlag"]

_SHOWN = {"__class__", "__doc__", "__members__", "__module__"}


class _ConstantType(enum.EnumType):
    def __dir__(cls) -> list[str]:
        own = {name for klass in cls.__mro__ if klass.__module__.startswith("rsyscall")
               for name in vars(klass) if not name.startswith("_")}
        return sorted(_SHOWN | set(cls.__members__) | own)


class IntEnum(enum.IntEnum, metaclass=_ConstantType):
    """A C constant's set of values (an enum.IntEnum)."""


class IntFlag(enum.IntFlag, metaclass=_ConstantType):
    """C flags that combine with | (an enum.IntFlag)."""
