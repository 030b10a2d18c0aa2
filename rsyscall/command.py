"""Command: an executable, its arguments and environment changes, for exec."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Command"]

StrPath = str | os.PathLike[str]


class Command:
    """What to exec: `executable_path`, `arguments` (argv, starting with
    argv[0]), and `env_updates` applied on top of the environment of the
    thread that execs.  No shell is involved unless the executable is one.

    Commands are immutable: `args` and `env` return new ones."""

    __slots__ = ("arguments", "env_updates", "executable_path")

    def __init__(
        self,
        executable_path: StrPath,
        arguments: Sequence[StrPath],
        env_updates: Mapping[str, StrPath] | None = None,
    ) -> None:
        if isinstance(arguments, str | bytes):
            raise TypeError("arguments must be a sequence of strings, not a single string")
        self.executable_path = Path(executable_path)
        self.arguments: tuple[str, ...] = tuple(os.fspath(arg) for arg in arguments)
        self.env_updates: dict[str, str] = {
            key: os.fspath(value) for key, value in (env_updates or {}).items()
        }
        for arg in self.arguments:
            if not isinstance(arg, str):
                raise TypeError(f"arguments must be strings, got {type(arg).__name__}")

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
                f"{self.env_updates!r})")
