"""Conveniences in the spirit of Python's standard library, for any thread.

    async with await mkdtemp(thread) as path:
        await thread.spit(f"{path}/file", "data")
    # the whole tree is gone, removed by `thread` itself

Everything here is made of the thread's own syscalls, so it works the same
in a child in other namespaces, in a stub, or on an ssh host.
"""

from __future__ import annotations

import errno
import secrets
from types import TracebackType

import anyio

from rsyscall.dirent import DT, DirentList
from rsyscall.fcntl import AT, O
from rsyscall.handle import FileDescriptor
from rsyscall.sys.stat import S
from rsyscall.thread import Thread
from rsyscall.unistd import SEEK

__all__ = ["TemporaryDirectory", "mkdtemp"]


class TemporaryDirectory:
    """A directory made by `mkdtemp`; `path` names it.  As an async context
    manager it gives the path and removes the whole tree on exit (even when
    the body failed); `cleanup()` does the same by hand."""

    def __init__(self, thread: Thread, path: str) -> None:
        self.thread = thread
        self.path = path
        self._removed = False

    def __repr__(self) -> str:
        return f"TemporaryDirectory({self.path!r})"

    async def __aenter__(self) -> str:
        return self.path

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.cleanup()

    async def cleanup(self) -> None:
        """Remove the directory and everything in it (once)."""
        if self._removed:
            return
        self._removed = True
        await remove_tree(self.thread, self.path)


async def mkdtemp(thread: Thread, prefix: str = "mkdtemp") -> TemporaryDirectory:
    """A new directory, mode 0700, in the thread's $TMPDIR (else /tmp), named
    `prefix` and random characters (mkdtemp(3)'s way: retried if taken)."""
    if not isinstance(prefix, str) or "/" in prefix or "\0" in prefix:
        raise ValueError(f"a prefix is a file name part, not {prefix!r}")
    base = thread.environ.get("TMPDIR") or "/tmp"
    for _ in range(100):
        path = f"{base.rstrip('/') or '/'}/{prefix}.{secrets.token_hex(6)}"
        try:
            await thread.task.mkdir(await thread.ptr(path), S(0o700))
        except FileExistsError:
            continue
        return TemporaryDirectory(thread, path)
    raise FileExistsError(errno.EEXIST, f"no free name for {prefix} in {base}")


async def remove_tree(thread: Thread, path: str) -> None:
    """rm -rf `path`, with `thread`'s syscalls: getdents64 and unlinkat,
    never following a symlink out of the tree."""
    task = thread.task
    try:
        await task.unlinkat(None, await thread.ptr(path))
        return
    except IsADirectoryError:
        pass
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno not in (errno.EISDIR, errno.EPERM):
            raise
    directory = await task.openat(
        None, await thread.ptr(path), O.RDONLY | O.DIRECTORY | O.NOFOLLOW
    )
    try:
        await _empty(thread, directory)
    finally:
        await directory.close()
    await task.unlinkat(None, await thread.ptr(path), AT.REMOVEDIR)


async def _empty(thread: Thread, directory: FileDescriptor) -> None:
    """Remove everything in the open `directory`."""
    task = thread.task
    while True:
        entries, _ = await directory.getdents(await thread.malloc(DirentList, 65536))
        listing = await entries.read()
        names = [(entry.name, entry.type) for entry in listing if entry.name not in (".", "..")]
        if not names:
            return  # read from the start: only . and .. are left
        for name, kind in names:
            name_ptr = await thread.ptr(name)
            if kind != DT.DIR:
                try:
                    await task.unlinkat(directory, name_ptr)
                    continue
                except IsADirectoryError:
                    pass  # DT_UNKNOWN on some filesystems
                except FileNotFoundError:
                    continue
            inner = await task.openat(directory, name_ptr, O.RDONLY | O.DIRECTORY | O.NOFOLLOW)
            try:
                await _empty(thread, inner)
            finally:
                await inner.close()
            await task.unlinkat(directory, await thread.ptr(name), AT.REMOVEDIR)
        # Removing entries moves the directory's offsets: read from the start.
        await directory.lseek(0, SEEK.SET)
