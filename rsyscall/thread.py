"""Thread: a Task with the allocator, environment and stdio that make it usable.

`Thread` is what users hold.  Its `task` is the target of syscalls; the
thread adds memory (`ptr`, `malloc`), the environment, the standard fds,
and the helpers that combine a few syscalls (`pipe`, `spit`,
`read_to_eof`...).  `rsyscall.local_thread` is the Thread of the Python
process itself.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rsyscall.base import BaseFileDescriptor
from rsyscall.environ import Environment
from rsyscall.epoller import AsyncFileDescriptor, Epoller, wait_local
from rsyscall.fcntl import O
from rsyscall.handle import FileDescriptor, Pointer, Task, WrittenPointer
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.transport import local_address_space
from rsyscall.struct import (
    BytesSerializer,
    FixedSize,
    HasSerializer,
    PathSerializer,
    Serializer,
    StrSerializer,
)
from rsyscall.sys.socket import AF, SOCK, Socketpair
from rsyscall.tasks.local import LocalSyscall, local_fd_table
from rsyscall.unistd import Pipe

if TYPE_CHECKING:
    from rsyscall.memory.transport import AddressSpace

__all__ = ["Thread", "make_local_thread"]

T = TypeVar("T")
StrPath = str | os.PathLike[str]

_BYTES = BytesSerializer()
_STR = StrSerializer()
_PATH = PathSerializer()


class Thread:
    """A process we can make syscalls in, with what it takes to use it.

    * `task`: the `Task` whose methods are the process's syscalls.
    * `ptr(value)` / `malloc(cls, size)`: memory in its address space.
    * `stdin`, `stdout`, `stderr`: handles for fds 0, 1 and 2.
    * `environ`: the environment its exec'd children start from.
    """

    def __init__(
        self,
        task: Task,
        environ: Mapping[str, str],
        stdin: FileDescriptor,
        stdout: FileDescriptor,
        stderr: FileDescriptor,
    ) -> None:
        self.task = task
        self.environ = Environment(self, environ)
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._epoller: Epoller | None = None

    # How this thread's epoller waits: see rsyscall.epoller.
    _wait_for_events: Callable[[Epoller], Awaitable[None]] = staticmethod(wait_local)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pid={self.task.pid})"

    @property
    def space(self) -> AddressSpace:
        return self.task.space

    # ---- memory ----

    async def _allocate(self, size: int) -> Allocation:
        allocator = self.task.space.allocator
        alloc = allocator.try_allocate(size)
        if alloc is None:
            alloc = await allocator.allocate(size)
        return alloc

    @overload
    async def ptr(self, value: str) -> WrittenPointer[str]: ...
    @overload
    async def ptr(self, value: os.PathLike[str]) -> WrittenPointer[os.PathLike[str]]: ...
    @overload
    async def ptr(self, value: T) -> WrittenPointer[T]: ...
    async def ptr(self, value: Any) -> WrittenPointer[Any]:
        """Allocate memory, write `value` there, and return the pointer.

        `value` may be a struct or other value of a type the library
        defines, `bytes`, or a `str` or `os.PathLike` (written as a
        NUL-terminated C string)."""
        serializer: Serializer[Any]
        kind: type[HasSerializer] | None = None
        if isinstance(value, HasSerializer):
            kind = type(value)
            serializer = kind.get_serializer(self.task)
        elif isinstance(value, bytes | bytearray | memoryview):
            serializer = _BYTES
        elif isinstance(value, str):
            serializer = _STR
        elif isinstance(value, os.PathLike):
            serializer = _PATH
        else:
            raise TypeError(
                f"cannot write a {type(value).__name__} to memory; expected bytes, str, "
                "os.PathLike or a type from the rsyscall header modules"
            )
        data = serializer.to_bytes(value)
        alloc = await self._allocate(len(data))
        await self.task.space.transport.write(alloc.address, data)
        return WrittenPointer(self.task, serializer, kind, alloc, value)

    @overload
    async def malloc(self, cls: type[bytes], size: int) -> Pointer[bytes]: ...
    @overload
    async def malloc(self, cls: type[str], size: int) -> Pointer[str]: ...
    @overload
    async def malloc(self, cls: type[T], size: int | None = None) -> Pointer[T]: ...
    async def malloc(self, cls: type[Any], size: int | None = None) -> Pointer[Any]:
        """Allocate uninitialized memory for a `cls`.

        A fixed-size type (a struct, `Int32`, `Pipe`) takes no size; `bytes`,
        `str` and variable-size types need one."""
        serializer: Serializer[Any]
        kind: type[HasSerializer] | None = None
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if cls is bytes or cls is str:
            serializer = _BYTES if cls is bytes else _STR
            if size is None:
                raise TypeError(f"malloc({cls.__name__}) needs a size")
        elif isinstance(cls, type) and issubclass(cls, HasSerializer):
            kind = cls
            serializer = cls.get_serializer(self.task)
            if issubclass(cls, FixedSize):
                if size is not None:
                    raise TypeError(f"{cls.__name__} has a fixed size; malloc takes no size for it")
                size = cls.sizeof()
            elif size is None:
                raise TypeError(f"{cls.__name__} has no fixed size; malloc needs a size")
        else:
            raise TypeError(f"cannot allocate memory for {cls!r}")
        if size < 0:
            raise ValueError(f"negative size {size}")
        alloc = await self._allocate(size)
        return Pointer(self.task, serializer, kind, alloc)

    # ---- async I/O ----

    async def epoller(self) -> Epoller:
        """This thread's epoll instance, made on first use."""
        if self._epoller is None:
            epfd = await self.task.epoll_create1()
            if self._epoller is None:  # nobody made one while we waited
                self._epoller = Epoller(self, epfd, self._wait_for_events)
        return self._epoller

    async def make_afd(self, fd: FileDescriptor, set_nonblock: bool = False) -> AsyncFileDescriptor:
        """An AsyncFileDescriptor for `fd`, which must be (or, with
        `set_nonblock`, is made) non-blocking: O_NONBLOCK is a property of
        the open file, shared with every fd that refers to it."""
        if not isinstance(fd, BaseFileDescriptor):
            raise TypeError(f"make_afd needs a FileDescriptor, not {type(fd).__name__}")
        if fd.task.fd_table is not self.task.fd_table:
            raise ValueError("fd belongs to a different fd table than this thread")
        return await AsyncFileDescriptor.make(await self.epoller(), fd, set_nonblock)

    # ---- helpers ----

    async def pipe(self) -> Pipe:
        """A new pipe (pipe2(2)), both ends close-on-exec."""
        return await (await self.task.pipe(await self.malloc(Pipe))).read()

    async def socketpair(self, domain: AF, type: SOCK, protocol: int = 0) -> Socketpair:
        """A new pair of connected sockets (socketpair(2)), close-on-exec."""
        sv = await self.malloc(Socketpair)
        return await (await self.task.socketpair(domain, type, protocol, sv)).read()

    async def spit(self, path: StrPath, text: str | bytes, mode: int = 0o644) -> StrPath:
        """Create or truncate the file at `path`, write `text`, close it; returns `path`."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        fd = await self.task.open(await self.ptr(path), O.WRONLY | O.CREAT | O.TRUNC, mode)
        try:
            if data:
                rest = await self.ptr(data)
                while rest.size():
                    _, rest = await fd.write(rest)
        finally:
            await fd.close()
        return path

    async def mkdir(self, path: StrPath, mode: int = 0o755) -> StrPath:
        """Make directory `path` (mkdir(2)); returns `path`."""
        await self.task.mkdir(await self.ptr(path), mode)
        return path

    async def read_to_eof(self, fd: FileDescriptor, chunk: int = 65536) -> bytes:
        """Read `fd` until end of file and return everything read.

        This makes blocking read(2) calls in the thread's process."""
        if isinstance(chunk, int) and chunk < 1:
            # A zero-byte read returns 0, which would look like end of file.
            raise ValueError(f"chunk must be at least 1 byte, not {chunk}")
        parts: list[bytes] = []
        buf = await self.malloc(bytes, chunk)
        while True:
            valid, rest = await fd.read(buf)
            if valid.size() == 0:
                return b"".join(parts)
            parts.append(await valid.read())
            buf = valid + rest


def make_local_thread() -> Thread:
    """The Thread of the Python process: direct syscalls, our own memory
    and fd table.  `rsyscall.local_thread` is made by this at import."""
    task = Task(LocalSyscall(), local_address_space(), local_fd_table(), os.getpid())
    return Thread(task, os.environ, task.make_fd(0), task.make_fd(1), task.make_fd(2))
