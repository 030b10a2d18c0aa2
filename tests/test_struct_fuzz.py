"""Every struct class validates its fields when it is made.

For every `Serializable` class in the package (found by walking its
modules), random field values either make a value that survives a trip
through `to_bytes` and `from_bytes`, or raise TypeError or ValueError:
never struct.error, OverflowError, AttributeError... and never a value
that cannot be written.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import ipaddress
import os
import pkgutil
import types
import typing
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rsyscall
from rsyscall.argcheck import _namespace
from rsyscall.struct import Serializable, Struct
from rsyscall.sys.socket import Sockaddr

# Abstract bases, and classes whose values are only ever read back from
# memory (reading them needs more than bytes) or only written.
ABSTRACT = {"Serializable", "Struct", "Sockaddr"}
WRITE_ONLY = {"SendMsghdr", "RecvMsghdr"}  # from_bytes raises TypeError by design


def _modules() -> list[types.ModuleType]:
    found = []
    for info in pkgutil.walk_packages(rsyscall.__path__, "rsyscall."):
        found.append(importlib.import_module(info.name))
    return found


def struct_classes() -> list[type[Serializable]]:
    classes: dict[str, type[Serializable]] = {}
    for module in _modules():
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Serializable)
                and value.__module__ == module.__name__
                and value.__name__ not in ABSTRACT
            ):
                classes[f"{value.__module__}.{value.__qualname__}"] = value
    return [classes[name] for name in sorted(classes)]


INTS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([
        0, 1, -1, 2**7, 2**8, 2**15, 2**16, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
        2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 2**100,
    ]),
)
GARBAGE = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=4),
    st.binary(max_size=4), INTS, st.just(object()), st.just([1]),
)
ALL_ENUM_MEMBERS = st.deferred(
    lambda: st.sampled_from([
        member for cls in _enum_classes() for member in cls.__members__.values()
    ])
)


def _enum_classes() -> list[type[enum.Enum]]:
    return [
        value for value in _namespace().values()
        if isinstance(value, type) and issubclass(value, enum.Enum) and issubclass(value, int)
        and value.__members__
    ]


def strategy(hint: object, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly plausible values for an annotation, with garbage mixed in."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*(strategy(arg, depth) for arg in typing.get_args(hint)))
    if origin is typing.Annotated:
        return strategy(typing.get_args(hint)[0], depth)
    if hint is type(None):
        return st.none()
    if hint is int:
        return st.one_of(INTS, INTS, GARBAGE)
    if hint is str:
        return st.one_of(st.text(max_size=300), GARBAGE)
    if hint is bytes:
        return st.one_of(st.binary(max_size=300), GARBAGE)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.one_of(st.sampled_from(list(hint.__members__.values())), INTS, GARBAGE,
                         ALL_ENUM_MEMBERS)
    if hint in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        return st.one_of(st.ip_addresses(v=4 if hint is ipaddress.IPv4Address else 6), GARBAGE)
    if origin is os.PathLike or hint is os.PathLike:
        return st.one_of(st.text(max_size=200).map(lambda s: __import__("pathlib").Path(s)),
                         GARBAGE)
    if origin in (Iterable, list, tuple, frozenset, typing.Iterable) and typing.get_args(hint):
        element = strategy(typing.get_args(hint)[0], depth + 1)
        return st.one_of(st.lists(element, max_size=4), GARBAGE)
    if isinstance(hint, type) and issubclass(hint, Serializable) and depth < 3:
        return st.one_of(instances(hint, depth + 1), GARBAGE)
    return GARBAGE


def _hints(cls: type) -> tuple[inspect.Signature, dict[str, Any]]:
    """The constructor's signature and its resolved annotations."""
    init: Any = object.__init__
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass is not object:
            init = vars(klass)["__init__"]
            break
        if "__new__" in vars(klass) and klass is not object:
            init = vars(klass)["__new__"]
            break
    if isinstance(init, staticmethod):
        init = init.__func__
    namespace = {**_namespace(), **vars(importlib.import_module(cls.__module__))}
    hints = typing.get_type_hints(init, globalns=namespace, include_extras=True)
    return inspect.signature(cls), hints


def instances(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    signature, hints = _hints(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        target = required if param.default is param.empty else optional
        target[name] = strategy(hints.get(name, object), depth)
    kwargs = st.fixed_dictionaries(required, optional=optional)

    def build(values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except (TypeError, ValueError):
            return values  # not made: the point of the test (see below)

    return kwargs.map(build).filter(lambda value: isinstance(value, cls))


CLASSES = struct_classes()


def test_found_the_structs() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"Timespec", "Stat", "EpollEvent", "SockaddrIn6", "Sigaction", "Rlimit"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_fields_checked_at_construction(cls: type[Serializable]) -> None:
    signature, hints = _hints(cls)
    fields = {
        name: strategy(hints.get(name, object))
        for name, param in signature.parameters.items()
        if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    }
    required = {
        name: fields[name] for name, param in signature.parameters.items()
        if name in fields and param.default is param.empty
    }
    optional = {name: s for name, s in fields.items() if name not in required}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(st.fixed_dictionaries(required, optional=optional))
    def check(values: dict[str, Any]) -> None:
        try:
            value = cls(**values)
        except (TypeError, ValueError):
            return
        # Made: it must be writable, and read back as the same bytes.
        data = value.to_bytes()
        assert isinstance(data, bytes)
        if cls.__name__ in WRITE_ONLY:
            return
        # Reading a socket address gives the class of its family.
        again = (Sockaddr if issubclass(cls, Sockaddr) else cls).from_bytes(data)
        written = again.to_bytes()
        if type(again).__name__ == "SockaddrUn" and written == data + b"\0":
            # A path the bytes did not NUL-terminate (as the kernel allows)
            # is written back with its NUL: the same address.
            written = data
        assert written == data, (value, again)
        if isinstance(value, Struct):
            assert len(data) <= cls.sizeof()  # socket addresses write what they use

    check()
