"""Environment: a thread's environment variables, and finding executables."""

from __future__ import annotations

import errno
import os
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rsyscall.command import Command
from rsyscall.unistd import OK, ArgList

if TYPE_CHECKING:
    from rsyscall.thread import Thread

__all__ = ["Environment"]


class Environment(Mapping[str, str]):
    """The environment variables a thread's exec'd children start from.

    A mapping of names to values; `which` looks up executables on its PATH
    by asking the thread's own process (access(2) with X_OK), so it answers
    for that process's filesystem view, namespaces and all."""

    _variables: dict[str, str]
    _encoded: list[bytes] | None
    _owned: bool

    def __init__(self, thread: Thread, variables: Mapping[str, str]) -> None:
        # Weak: the thread holds its environment, and a cycle would leave
        # both (and the thread's fds) to the cyclic garbage collector.
        self._thread_ref = weakref.ref(thread)
        if isinstance(variables, Environment):
            # A child's environment starts as its parent's: share the dict
            # (and its encoding) until either side changes it.
            self._variables = variables._variables
            # Encoded once, in the parent: every child's exec uses it.
            self._encoded = variables.encoded()
            self._owned = variables._owned = False
        else:
            self._variables = dict(variables)
            self._encoded = None
            self._owned = True

    def __getitem__(self, key: str) -> str:
        return self._variables[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)

    def __repr__(self) -> str:
        return f"Environment({len(self._variables)} variables)"

    def copy_for(self, thread: Thread) -> Environment:
        """The same variables, for another thread (a child inherits them)."""
        return Environment(thread, self)

    def set(self, key: str, value: str) -> None:
        """Set a variable for children exec'd from this thread from now on."""
        if not self._owned:
            self._variables = dict(self._variables)
            self._owned = True
        self._variables[key] = value
        self._encoded = None

    def encoded(self) -> list[bytes]:
        """The variables as execve(2) wants them, b"NAME=value"."""
        if self._encoded is None:
            items = self._variables.items()
            self._encoded = [os.fsencode(f"{key}={value}") for key, value in items]
        return self._encoded

    async def as_arglist(self) -> ArgList:
        """The variables as an `ArgList` of b"NAME=value" strings in the
        thread's memory: execve(2)'s envp, for a call of your own."""
        thread = self._thread_ref()
        if thread is None:
            raise ValueError("the thread of this environment is gone")
        return ArgList([await thread.ptr(os.fsdecode(item)) for item in self.encoded()])

    @property
    def path(self) -> list[Path]:
        """The directories of PATH, in order."""
        entries = self._variables.get("PATH", os.defpath).split(":")
        return [Path(entry) for entry in entries if entry]

    async def which(self, name: str) -> Command:
        """The executable `name` on PATH, as a Command; FileNotFoundError if none.

        A name with a slash is checked as it is, like execvp(3) does."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"not a command name: {name!r}")
        candidates = [Path(name)] if "/" in name else [entry / name for entry in self.path]
        for candidate in candidates:
            if not await self._accessible(os.fspath(candidate), OK.X):
                continue
            # A directory passes X_OK too, but execve fails on it with
            # EACCES, and execvp goes on to the next PATH entry: skip it.
            # With a trailing slash, only a directory is accessible.
            if await self._accessible(os.fspath(candidate) + "/", OK.F):
                continue
            return Command(candidate, [name])
        raise FileNotFoundError(errno.ENOENT, f"executable not found on PATH: {name}")

    @property
    def _thread(self) -> Thread:
        thread = self._thread_ref()
        if thread is None:
            raise RuntimeError("the environment's thread is gone")
        return thread

    async def _accessible(self, path: str, mode: OK) -> bool:
        thread = self._thread
        try:
            await thread.task.faccessat(None, await thread.ptr(path), mode)
        except OSError:
            return False
        return True

    @property
    def sh(self) -> Command:
        """The POSIX shell, /bin/sh."""
        return Command("/bin/sh", ["sh"])
