"""python -m rsyscall [asyncio|trio]: an interactive console with top-level
await, `local_thread` and the header modules at hand.

    >>> await local_thread.task.getpid()
    4242
    >>> child = await local_thread.clone(sched.CLONE.NEWUSER)

The console reads lines in a worker thread; each statement that awaits
runs on the event loop (asyncio by default, or trio), so what it starts
(child threads, AsyncFileDescriptors) lives on between lines.
"""

from __future__ import annotations

import ast
import code
import importlib
import inspect
import sys
import types
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

import rsyscall

# What the console starts with, by the names the README and docstrings use.
_MODULES = [
    "fcntl", "sched", "signal", "unistd", "time",
    "sys.socket", "sys.stat", "sys.mman", "sys.wait", "sys.mount", "sys.epoll", "sys.uio",
    "netinet.ip", "sys.un",
]


class _Console(code.InteractiveConsole):
    def __init__(self, namespace: dict[str, Any]) -> None:
        super().__init__(namespace)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

    def runcode(self, code: types.CodeType) -> None:
        function = types.FunctionType(code, self.locals)
        try:
            result = function()
            if inspect.iscoroutine(result):
                anyio.from_thread.run(_await, result)
        except SystemExit:
            raise
        except BaseException:
            self.showtraceback()


async def _await(coroutine: Any) -> Any:
    return await coroutine


def _namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__console__", "rsyscall": rsyscall}
    for name in rsyscall.__all__:
        namespace[name] = getattr(rsyscall, name)
    for dotted in _MODULES:
        module = importlib.import_module(f"rsyscall.{dotted}")
        # sys.socket as `socket`, netinet.ip as `ip`...
        namespace[dotted.rsplit(".", 1)[-1]] = module
    return namespace


async def _run(backend: str) -> None:
    banner = (
        f"rsyscall console on {backend}: top-level await works; "
        "local_thread and the header modules are here (Ctrl-D to leave)."
    )
    console = _Console(_namespace())
    await anyio.to_thread.run_sync(lambda: console.interact(banner=banner, exitmsg=""))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    backend = args[0] if args else "asyncio"
    if backend not in ("asyncio", "trio"):
        raise SystemExit("usage: python -m rsyscall [asyncio|trio]")
    anyio.run(_run, backend, backend=backend)


if __name__ == "__main__":
    main()
