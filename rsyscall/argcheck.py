"""Argument checks for the syscall methods, made from their annotations.

The syscall ABI takes six 64-bit registers, so a wrong constant or an int
too big for its C type would go through unnoticed: `socket(SOCK.STREAM,
AF.INET)` would make an AF_UNIX datagram socket, `umask(-1)` would set
0o777.  Instead, each public syscall method checks its constant and
narrow integer arguments before any syscall is made:

* A parameter annotated with an IntEnum or IntFlag class `E` takes a
  member of `E`.  A member of another enum class, or a bool, is a
  TypeError.  A plain int is accepted only if it is in range: for an
  IntEnum, the value of one of its members; for an IntFlag, a
  combination of the bits the class defines (ValueError otherwise).
* A union of several enum classes (`SO | IP | TCP | IPV6`) is left to
  the method, as the right class depends on another argument.
* `E | int` (such as `SIG | int`) takes any int in the C type's range
  (C int unless the int is annotated otherwise), but still refuses a
  member of another enum class.
* An int annotated with its C type (`CInt`, `CUInt`, `PidT` from
  rsyscall.struct) must be an int (TypeError) in that type's range
  (ValueError).  A plain `int` is a 64-bit register: the syscall entry
  itself refuses what does not fit.
* A parameter that takes a path (`PathPointer`) adds the path to the
  OSError the call raises, as `filename` (and `filename2` for the second
  path), as `os` functions do.

The checks are generated once per method, when the classes are composed
(`check_arguments`, called by rsyscall.handle for Task, FileDescriptor
and Process, and by rsyscall for the thread classes): a wrapper with the
method's own signature, name and docstring (and `__wrapped__`), which
tests each checked argument's class with one comparison before calling
the method.  A method with nothing to check (getpid, read, write) is left
as it is, so it costs nothing.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rsyscall.near.interface import add_filenames
from rsyscall.struct import C_INT, CType

__all__ = ["UNRESOLVED", "check_arguments", "enum_parameters", "parameter_checks"]

UNRESOLVED: list[str] = []
"""Methods whose annotations could not be resolved, so went unchecked
(the test suite requires this to stay empty)."""

_CHECKED = "__rsyscall_checked__"
_INT_RANGE = CType("int", *C_INT)


class _ParamCheck:
    """What one parameter's annotation asks of its argument."""

    __slots__ = ("ctype", "enum", "int_ok", "none_ok", "other_ok", "path")

    def __init__(self) -> None:
        self.enum: type[enum.Enum] | None = None
        self.int_ok = False  # a plain int in `ctype`'s range is fine
        self.ctype: CType | None = None
        self.none_ok = False
        self.other_ok = False  # some non-int type is also accepted
        self.path = False

    @property
    def checked(self) -> bool:
        return self.enum is not None or self.ctype is not None


def _is_enum_class(hint: object) -> bool:
    return (
        isinstance(hint, type)
        and issubclass(hint, enum.Enum)
        and issubclass(hint, int)
    )


def _union_args(hint: object) -> tuple[object, ...]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(hint)
    return (hint,)


def _is_path_pointer(hint: object) -> bool:
    """WrittenPointer[os.PathLike[str]] (or of str | PathLike) is in it:
    the PathPointer alias, as path_address takes."""
    from rsyscall.memory.pointer import WrittenPointer

    for arg in _union_args(hint):
        if typing.get_origin(arg) is WrittenPointer:
            (target,) = typing.get_args(arg)
            for part in _union_args(target):
                if typing.get_origin(part) is os.PathLike or part is os.PathLike:
                    return True
    return False


def _analyse(hint: object) -> _ParamCheck:
    check = _ParamCheck()
    several_enums = False
    check.path = _is_path_pointer(hint)
    for arg in _union_args(hint):
        if typing.get_origin(arg) is typing.Annotated:
            base, *metadata = typing.get_args(arg)
            ctype = next((m for m in metadata if isinstance(m, CType)), None)
            if base is int and ctype is not None:
                check.int_ok = True
                check.ctype = ctype
                continue
            arg = base
        if arg is type(None):
            check.none_ok = True
        elif arg is int:
            check.int_ok = True
        elif arg is bool:
            check.other_ok = True
        elif _is_enum_class(arg):
            if check.enum is not None:
                several_enums = True
            else:
                check.enum = arg  # type: ignore[assignment]
        else:
            check.other_ok = True
    if several_enums:
        # Two enums (setsockopt's `SO | IP | TCP | IPV6`): which one is
        # right depends on another argument, so the method checks it.
        check.enum = None
        check.other_ok = True
    if check.enum is not None and check.int_ok and check.ctype is None:
        check.ctype = _INT_RANGE
    return check


def _describe(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}" if value.name else repr(value)
    return type(value).__name__


def _flag_bits(cls: type[enum.Enum]) -> int:
    bits = 0
    for member in cls.__members__.values():
        bits |= int(member.value)
    return bits


def _make_checker(where: str, name: str, check: _ParamCheck) -> Callable[[object], None]:
    """The full check of one argument (the wrapper calls it only when the
    quick class test fails)."""
    cls = check.enum
    ctype = check.ctype
    none_ok = check.none_ok
    other_ok = check.other_ok
    expected = cls.__name__ if cls is not None else "an int"
    if cls is not None and check.int_ok:
        expected = f"{cls.__name__} or an int"
    flag = cls is not None and issubclass(cls, enum.Flag)
    bits = _flag_bits(cls) if flag and cls is not None else 0
    values = frozenset(m.value for m in cls.__members__.values()) if cls is not None else ()

    def checker(value: object) -> None:
        if value is None:
            if none_ok:
                return
            raise TypeError(f"{where}: {name} must be {expected}, not None")
        if cls is not None and isinstance(value, cls) and not isinstance(value, bool):
            return
        if isinstance(value, bool) or (cls is not None and isinstance(value, enum.Enum)):
            # A plain int parameter takes any int, an enum member included
            # (setsockopt's level may be an IPPROTO); an enum parameter
            # takes no other enum's members.
            raise TypeError(f"{where}: {name} must be {expected}, not {_describe(value)}")
        if not isinstance(value, int):
            if other_ok:
                return
            raise TypeError(f"{where}: {name} must be {expected}, not {_describe(value)}")
        if ctype is not None and (check.int_ok or cls is None):
            if not ctype.low <= value <= ctype.high:
                raise ValueError(
                    f"{where}: {name} {value} outside the range of a C {ctype.name} "
                    f"({ctype.low}..{ctype.high})"
                )
            if check.int_ok:
                return
        if cls is None:
            return
        if flag:
            if value < 0 or value & ~bits:
                raise ValueError(
                    f"{where}: {name} {value} ({value:#x}) is not made of {cls.__name__} bits"
                )
        elif value not in values:
            raise ValueError(f"{where}: {name} {value} is not the value of a {cls.__name__}")

    return checker


def _quick_test(name: str, check: _ParamCheck) -> str:
    """A Python expression that is false for an argument surely fine, and
    otherwise sends it to the full check."""
    if check.enum is not None:
        test = f"{name}.__class__ is not _E_{name}"
    else:
        assert check.ctype is not None
        test = (
            f"({name}.__class__ is not int or not "
            f"{check.ctype.low} <= {name} <= {check.ctype.high})"
        )
    if check.none_ok:
        test = f"{name} is not None and {test}"
    return test


def parameter_checks(
    func: Callable[..., Any], namespace: Mapping[str, Any]
) -> dict[str, _ParamCheck] | None:
    """The check of each parameter of `func`, from its annotations; None if
    they cannot be resolved."""
    module = sys.modules.get(func.__module__)
    globalns = {**namespace, **(vars(module) if module is not None else {})}
    try:
        hints = typing.get_type_hints(func, globalns=globalns, include_extras=True)
    except Exception:
        # A string type alias in a union (`MountData | None`) cannot be
        # evaluated as it is: evaluate the aliases first.
        patched = dict(globalns)
        for key, value in globalns.items():
            if isinstance(value, str) and not key.startswith("__"):
                try:
                    patched[key] = eval(value, globalns)
                except Exception:
                    pass
        try:
            hints = typing.get_type_hints(func, globalns=patched, include_extras=True)
        except Exception:
            return None
    signature = inspect.signature(func)
    return {
        name: _analyse(hints[name]) for name in signature.parameters if name in hints
    }


def enum_parameters(
    func: Callable[..., Any], namespace: Mapping[str, Any] | None = None
) -> dict[str, type[enum.Enum]]:
    """The enum-typed parameters of `func` (for the tests)."""
    checks = parameter_checks(inspect.unwrap(func), namespace or _namespace())
    if checks is None:
        raise TypeError(f"cannot resolve the annotations of {func!r}")
    return {name: check.enum for name, check in checks.items() if check.enum is not None}


def _wrap(
    where: str, func: Callable[..., Any], checks: dict[str, _ParamCheck]
) -> Callable[..., Any] | None:
    checked = {name: check for name, check in checks.items() if check.checked}
    paths = [name for name, check in checks.items() if check.path]
    if not checked and not paths:
        return None
    signature = inspect.signature(func)
    env: dict[str, Any] = {"_f": func, "_add": _attach_paths}
    params: list[str] = []
    call: list[str] = []
    star = False
    positional_only = False
    for param in signature.parameters.values():
        name = param.name
        kind = param.kind
        if kind is param.POSITIONAL_ONLY:
            positional_only = True
        elif positional_only:
            params.append("/")
            positional_only = False
        text = name
        if param.default is not param.empty:
            env[f"_d_{name}"] = param.default
            text = f"{name}=_d_{name}"
        if kind is param.VAR_POSITIONAL:
            text = f"*{name}"
            star = True
            call.append(text)
        elif kind is param.VAR_KEYWORD:
            text = f"**{name}"
            call.append(text)
        elif kind is param.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            call.append(f"{name}={name}")
        else:
            call.append(name)
        params.append(text)
    if positional_only:
        params.append("/")
    lines = [f"async def {func.__name__}({', '.join(params)}):"]
    for name, check in checked.items():
        env[f"_c_{name}"] = _make_checker(where, name, check)
        if check.enum is not None:
            env[f"_E_{name}"] = check.enum
        lines.append(f"    if {_quick_test(name, check)}: _c_{name}({name})")
    invoke = f"await _f({', '.join(call)})"
    if paths:
        lines += [
            "    try:",
            f"        return {invoke}",
            "    except OSError as _error:",
            f"        _add(_error, {', '.join(paths)})",
            "        raise",
        ]
    else:
        lines.append(f"    return {invoke}")
    code = "\n".join(lines)
    exec(compile(code, f"<checks of {where}>", "exec"), env)
    wrapper = env[func.__name__]
    functools.update_wrapper(wrapper, func)
    setattr(wrapper, _CHECKED, True)
    return wrapper  # type: ignore[no-any-return]


def _attach_paths(error: OSError, *pointers: object) -> None:
    values = [getattr(ptr, "value", None) for ptr in pointers]
    present = [value for value in values if value is not None]
    if present:
        add_filenames(error, present[0], present[1] if len(present) > 1 else None)


def _namespace() -> dict[str, Any]:
    """Every class the rsyscall modules define or import, by name: for
    annotations naming classes imported only for type checking."""
    namespace: dict[str, Any] = {"os": os}  # PathPointer names os.PathLike
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "rsyscall" or module_name.startswith("rsyscall.")):
            continue
        for name, value in list(vars(module).items()):
            if isinstance(value, type) and not name.startswith("__"):
                namespace.setdefault(name, value)
    return namespace


def _public_methods(cls: type) -> Iterable[tuple[str, object]]:
    for name in dir(cls):
        if name.startswith("_"):
            continue
        yield name, inspect.getattr_static(cls, name)


def check_arguments(*classes: type, namespace: Mapping[str, Any] | None = None) -> None:
    """Give every public async method of `classes` (their own and
    inherited ones) the checks its annotations ask for; see the module
    docstring.  Call once per class, when it is complete."""
    names = _namespace()
    if namespace is not None:
        names.update(namespace)
    for cls in classes:
        names.setdefault(cls.__name__, cls)
    for cls in classes:
        for name, attribute in _public_methods(cls):
            wrap_class = isinstance(attribute, classmethod)
            func = attribute.__func__ if wrap_class else attribute  # type: ignore[attr-defined]
            if not inspect.iscoroutinefunction(func) or getattr(func, _CHECKED, False):
                continue
            checks = parameter_checks(func, names)
            if checks is None:
                UNRESOLVED.append(f"{cls.__name__}.{name}")
                continue
            wrapper = _wrap(f"{cls.__name__}.{name}", func, checks)
            if wrapper is None:
                continue
            setattr(cls, name, classmethod(wrapper) if wrap_class else wrapper)
