"""<unistd.h>: I/O on file descriptors, process identity, the working
directory, and links.

Methods on `FileDescriptor` act on that fd (read, write, close, dup2...);
methods on `Task` act on the process (getpid, chdir...) or on paths
(`*at` syscalls take a directory fd first, None meaning the working
directory).  Syscalls that return a size split the buffer they were given
into `(valid, rest)`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.base.fd import FDPairSerializer, closed_error
from rsyscall.fcntl import AT, F, O, dirfd_number
from rsyscall.memory.pointer import (
    PathPointer,
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    path_address,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import FixedSize, HasSerializer, Serializer

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = [
    "ArgList",
    "OK",
    "SEEK",
    "Pipe",
    "UnistdFileDescriptor",
    "UnistdProcess",
    "UnistdTask",
]

T = TypeVar("T")


class SEEK(enum.IntEnum):
    """lseek(2) whence."""

    SET = 0
    CUR = 1
    END = 2
    DATA = 3
    HOLE = 4


class OK(enum.IntFlag):
    """access(2) modes (C: F_OK, R_OK, W_OK, X_OK)."""

    F = 0
    X = 1
    W = 2
    R = 4


class _ArgListSerializer(Serializer["ArgList"]):
    __slots__ = ("task",)

    def __init__(self, task: BaseTask) -> None:
        self.task = task

    def to_bytes(self, value: ArgList) -> bytes:
        if not isinstance(value, ArgList):
            raise TypeError(f"expected an ArgList, got {type(value).__name__}")
        addresses = [path_address(self.task, arg) for arg in value]
        return struct.pack(f"<{len(addresses) + 1}Q", *addresses, 0)

    def from_bytes(self, data: bytes) -> ArgList:
        raise TypeError("an ArgList cannot be read back from memory; use the pointer's .value")


class ArgList(list["PathPointer"], HasSerializer):
    """A NULL-terminated array of C strings: execve(2)'s argv and envp.

    `thread.ptr(ArgList([await thread.ptr("ls"), await thread.ptr("-l")]))`;
    the list keeps the strings alive as long as the array pointer lives."""

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[ArgList]:
        return _ArgListSerializer(task)


class Pipe(HasSerializer, FixedSize):
    """The `int pipefd[2]` of pipe(2): `read` end and `write` end.

    Unpacks like the C array: `read, write = pipe`, `pipe[0] is pipe.read`."""

    __slots__ = ("read", "write")

    def __init__(self, read: FileDescriptor, write: FileDescriptor) -> None:
        self.read = read
        self.write = write

    def __iter__(self) -> Iterator[FileDescriptor]:
        return iter((self.read, self.write))

    def __getitem__(self, index: int) -> FileDescriptor:
        return (self.read, self.write)[index]

    def __repr__(self) -> str:
        return f"Pipe(read={self.read!r}, write={self.write!r})"

    @classmethod
    def sizeof(cls) -> int:
        return 8

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[Pipe]:
        return FDPairSerializer(task, Pipe)


_SYS_read = int(SYS.read)
_SYS_write = int(SYS.write)
_SYS_pread64 = int(SYS.pread64)
_SYS_pwrite64 = int(SYS.pwrite64)
_SYS_close = int(SYS.close)
_SYS_getpid = int(SYS.getpid)
_O_CLOEXEC = int(O.CLOEXEC)


class UnistdTask(BaseTask):
    __slots__ = ()

    async def getpid(self) -> int:
        """getpid(2): this process's id."""
        return await self.sysif.syscall(_SYS_getpid)

    async def getppid(self) -> int:
        """getppid(2): the parent's process id."""
        return await self.sysif.syscall(SYS.getppid)

    async def getuid(self) -> int:
        """getuid(2): the real user id."""
        return await self.sysif.syscall(SYS.getuid)

    async def geteuid(self) -> int:
        """geteuid(2): the effective user id."""
        return await self.sysif.syscall(SYS.geteuid)

    async def getgid(self) -> int:
        """getgid(2): the real group id."""
        return await self.sysif.syscall(SYS.getgid)

    async def getegid(self) -> int:
        """getegid(2): the effective group id."""
        return await self.sysif.syscall(SYS.getegid)

    async def setsid(self) -> int:
        """setsid(2): start a new session; returns its id."""
        return await self.sysif.syscall(SYS.setsid)

    async def getpgid(self) -> int:
        """getpgid(2) of this process: its process group id."""
        return await self.sysif.syscall(SYS.getpgid, 0)

    async def setpgid(self, pgid: int = 0) -> None:
        """setpgid(2) of this process; 0 makes it a group leader."""
        await self.sysif.syscall(SYS.setpgid, 0, pgid)

    async def pipe(self, pipefd: Pointer[Pipe], flags: O = O.RDONLY) -> ReadablePointer[Pipe]:
        """pipe2(2): fill `pipefd` with a new pipe's read and write ends.

        `O.CLOEXEC` is always added to `flags`; consumes `pipefd`."""
        alloc = take(pipefd, self, 8)
        try:
            await self.sysif.syscall(SYS.pipe2, alloc.address, int(flags) | _O_CLOEXEC)
        except BaseException:
            restore(pipefd, alloc)
            raise
        return pipefd._readable(alloc, self)

    async def chdir(self, path: PathPointer) -> None:
        """chdir(2): change the working directory to `path`."""
        await self.sysif.syscall(SYS.chdir, path_address(self, path))

    async def getcwd(self, buf: Pointer[str]) -> tuple[ReadablePointer[str], Pointer[str]]:
        """getcwd(2): write the working directory into `buf`.

        Returns the part holding the NUL-terminated path, and the rest."""
        alloc = take(buf, self)
        try:
            count = await self.sysif.syscall(SYS.getcwd, alloc.address, alloc.size)
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count, self)

    async def readlinkat(
        self, dirfd: FileDescriptor | None, path: PathPointer, buf: Pointer[T]
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """readlinkat(2): read symlink `path`'s target into `buf` (no NUL is added)."""
        dirnum = dirfd_number(self, dirfd)
        address = path_address(self, path)
        alloc = take(buf, self)
        try:
            count = await self.sysif.syscall(
                SYS.readlinkat, dirnum, address, alloc.address, alloc.size
            )
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count, self)

    async def symlinkat(
        self, target: PathPointer, newdirfd: FileDescriptor | None, linkpath: PathPointer
    ) -> None:
        """symlinkat(2): make `linkpath` (relative to `newdirfd`) a symlink to `target`."""
        await self.sysif.syscall(
            SYS.symlinkat,
            path_address(self, target),
            dirfd_number(self, newdirfd),
            path_address(self, linkpath),
        )

    async def linkat(
        self,
        olddirfd: FileDescriptor | None,
        oldpath: PathPointer,
        newdirfd: FileDescriptor | None,
        newpath: PathPointer,
        flags: AT = AT.NONE,
    ) -> None:
        """linkat(2): make a new hard link `newpath` to `oldpath`."""
        await self.sysif.syscall(
            SYS.linkat,
            dirfd_number(self, olddirfd),
            path_address(self, oldpath),
            dirfd_number(self, newdirfd),
            path_address(self, newpath),
            flags,
        )

    async def unlinkat(
        self, dirfd: FileDescriptor | None, path: PathPointer, flags: AT = AT.NONE
    ) -> None:
        """unlinkat(2): remove `path`; with AT.REMOVEDIR, an empty directory."""
        await self.sysif.syscall(
            SYS.unlinkat, dirfd_number(self, dirfd), path_address(self, path), flags
        )

    async def execve(
        self, pathname: PathPointer, argv: WrittenPointer[ArgList], envp: WrittenPointer[ArgList]
    ) -> None:
        """execve(2): replace this process's program.  Never returns on
        success: the local thread becomes the new program; a child thread's
        connection hangs up (use `ChildThread.exec`, which expects that)."""
        for array in (argv, envp):
            if not isinstance(array, WrittenPointer) or not isinstance(array.value, ArgList):
                raise TypeError("argv and envp must be pointers to ArgLists")
            for arg in array.value:
                path_address(self, arg)  # each string must still be live
        await self.sysif.syscall(
            SYS.execve,
            path_address(self, pathname),
            borrow(argv, self).address,
            borrow(envp, self).address,
        )

    async def faccessat(
        self, dirfd: FileDescriptor | None, path: PathPointer, mode: OK, flags: AT = AT.NONE
    ) -> None:
        """faccessat(2): check `mode` access to `path`; raises OSError if denied."""
        # The raw syscall has no flags argument; faccessat2 does.
        await self.sysif.syscall(
            SYS.faccessat2, dirfd_number(self, dirfd), path_address(self, path), mode, flags
        )


class UnistdProcess(BaseProcess):
    __slots__ = ()

    async def getpgid(self) -> int:
        """getpgid(2): this process's process group id."""
        return await self.task.sysif.syscall(SYS.getpgid, self.pid)

    async def setpgid(self, pgid: int = 0) -> None:
        """setpgid(2): move this process to group `pgid` (0: its own pid)."""
        await self.task.sysif.syscall(SYS.setpgid, self.pid, pgid)


class UnistdFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def close(self) -> None:
        """close(2), if this is the last handle for the fd; either way this
        handle can no longer be used."""
        number, last = self._release()
        if last:
            await self.task.sysif.syscall(_SYS_close, number)

    async def read(self, buf: Pointer[T]) -> tuple[ReadablePointer[T], Pointer[T]]:
        """read(2) into `buf`; returns the part read into and the rest."""
        number = self._number
        if number < 0:
            raise closed_error()
        alloc = take(buf, self.task)
        try:
            count = await self.task.sysif.syscall(_SYS_read, number, alloc.address, alloc.size)
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count, self.task)

    async def pread(self, buf: Pointer[T], offset: int) -> tuple[ReadablePointer[T], Pointer[T]]:
        """pread(2) into `buf` from file `offset`; returns the part read into and the rest."""
        number = self.number
        alloc = take(buf, self.task)
        try:
            count = await self.task.sysif.syscall(
                _SYS_pread64, number, alloc.address, alloc.size, offset
            )
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count, self.task)

    @overload
    async def write(
        self, buf: WrittenPointer[bytes]
    ) -> tuple[WrittenPointer[bytes], WrittenPointer[bytes]]: ...
    @overload
    async def write(
        self, buf: ReadablePointer[T]
    ) -> tuple[ReadablePointer[T], ReadablePointer[T]]: ...
    async def write(self, buf: ReadablePointer[Any]) -> tuple[Any, Any]:
        """write(2) from `buf`; returns the part written and the rest."""
        number = self._number
        if number < 0:
            raise closed_error()
        alloc = borrow(buf, self.task)
        buf._alloc = None
        try:
            count = await self.task.sysif.syscall(_SYS_write, number, alloc.address, alloc.size)
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._unchanged_split(alloc, count)

    @overload
    async def pwrite(
        self, buf: WrittenPointer[bytes], offset: int
    ) -> tuple[WrittenPointer[bytes], WrittenPointer[bytes]]: ...
    @overload
    async def pwrite(
        self, buf: ReadablePointer[T], offset: int
    ) -> tuple[ReadablePointer[T], ReadablePointer[T]]: ...
    async def pwrite(self, buf: ReadablePointer[Any], offset: int) -> tuple[Any, Any]:
        """pwrite(2) from `buf` at file `offset`; returns the part written and the rest."""
        number = self.number
        alloc = borrow(buf, self.task)
        buf._alloc = None
        try:
            count = await self.task.sysif.syscall(
                _SYS_pwrite64, number, alloc.address, alloc.size, offset
            )
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._unchanged_split(alloc, count)

    async def lseek(self, offset: int, whence: SEEK) -> int:
        """lseek(2): move the file offset; returns the new offset."""
        return await self.task.sysif.syscall(SYS.lseek, self.number, offset, whence)

    async def ftruncate(self, length: int) -> None:
        """ftruncate(2): set the file's size to `length` bytes."""
        await self.task.sysif.syscall(SYS.ftruncate, self.number, length)

    async def fchdir(self) -> None:
        """fchdir(2): make this directory the working directory."""
        await self.task.sysif.syscall(SYS.fchdir, self.number)

    def _same_table(self, newfd: FileDescriptor) -> int:
        if not isinstance(newfd, BaseFileDescriptor):
            raise TypeError(f"newfd must be a FileDescriptor, not {type(newfd).__name__}")
        if newfd.task.fd_table is not self.task.fd_table:
            raise ValueError("newfd belongs to a different fd table")
        return newfd.number

    async def dup2(self, newfd: FileDescriptor) -> FileDescriptor:
        """dup2(2): make `newfd` refer to this fd's open file; returns `newfd`.

        `newfd` is left without close-on-exec (as dup2 leaves it), so a
        child inherits it across exec: `await fd.dup2(child.stdout)`."""
        newnum = self._same_table(newfd)
        number = self.number
        if number == newnum:
            # dup2 would do nothing; still make the promise about exec true.
            await self.task.sysif.syscall(SYS.fcntl, number, F.SETFD, 0)
        else:
            await self.task.sysif.syscall(SYS.dup2, number, newnum)
        return newfd

    async def dup3(self, newfd: FileDescriptor, flags: O = O.RDONLY) -> FileDescriptor:
        """dup3(2): make `newfd` refer to this fd's open file, with `flags`
        (only O.CLOEXEC is allowed); returns `newfd`."""
        newnum = self._same_table(newfd)
        await self.task.sysif.syscall(SYS.dup3, self.number, newnum, flags)
        return newfd
