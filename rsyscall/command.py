"""Command: an executable, its arguments and environment changes, for exec."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

__all__ = ["Command"]

StrPath = str | os.PathLike[str]


class Command:
    """What to exec: `executable_path`, `arguments` (argv, starting with
    argv[0]), and `env_updates` applied on top of the environment of the
    thread that execs.  No shell is involved unless the executable is one.

    Commands are immutable: `args` and `env` return new ones."""

    __slots__ = ("arguments", "env_updates", "executable_path")
    executable_path: Path
    arguments: tuple[str, ...]
    env_updates: Mapping[str, str]

    def __init__(
        self,
        executable_path: StrPath,
        arguments: Sequence[StrPath],
        env_updates: Mapping[str, StrPath] | None = None,
    ) -> None:
        if isinstance(arguments, str | bytes):
            raise TypeError("arguments must be a sequence of strings, not a single string")
        executable = Path(executable_path)
        argv: tuple[str, ...] = tuple(os.fspath(arg) for arg in arguments)
        env: dict[str, str] = {
            key: os.fspath(value) for key, value in (env_updates or {}).items()
        }
        for arg in argv:
            if not isinstance(arg, str):
                raise TypeError(f"arguments must be strings, got {type(arg).__name__}")
        # Frozen: set once here, never again (see __setattr__).
        object.__setattr__(self, "executable_path", executable)
        object.__setattr__(self, "arguments", argv)
        object.__setattr__(self, "env_updates", MappingProxyType(env))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Command is immutable ({name}); args() and env() make new ones")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Command is immutable ({name})")

    def __reduce__(self) -> tuple[type[Command], tuple[Path, tuple[str, ...], dict[str, str]]]:
        # For copy and pickle, which would otherwise set the slots one by one.
        return (Command, (self.executable_path, self.arguments, dict(self.env_updates)))

    def args(self, *more: StrPath) -> Command:
        """This command with `more` arguments appended."""
        return Command(self.executable_path, self.arguments + tuple(os.fspath(arg) for arg in more),
                       self.env_updates)

    def env(self, mapping: Mapping[str, StrPath] | None = None, **updates: StrPath) -> Command:
        """This command with more environment variables set."""
        merged: dict[str, StrPath] = {**self.env_updates, **(mapping or {}), **updates}
        return Command(self.executable_path, self.arguments, merged)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Command):
            return NotImplemented
        return (self.executable_path, self.arguments, self.env_updates) == (
            other.executable_path, other.arguments, other.env_updates)

    def __hash__(self) -> int:
        return hash((self.executable_path, self.arguments))

    def __str__(self) -> str:
        env = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env_updates.items())
        argv = shlex.join(self.arguments)
        return f"{env} {argv}" if env else argv

    def __repr__(self) -> str:
        return (f"Command({str(self.executable_path)!r}, {list(self.arguments)!r}, "
                f"{dict(self.env_updates)!r})")
