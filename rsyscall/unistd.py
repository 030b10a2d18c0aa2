"""<unistd.h>: I/O on file descriptors, process identity, the working
directory, and links.

Methods on `FileDescriptor` act on that fd (read, write, close, dup2...);
methods on `Task` act on the process (getpid, chdir...) or on paths
(`*at` syscalls take a directory fd first, None meaning the working
directory).  Syscalls that return a size split the buffer they were given
into `(valid, rest)`.

`SEEK`, lseek(2)'s whence, is defined in rsyscall.fcntl (<fcntl.h> has
SEEK_SET... too, for `struct flock`) and exported here as well.
"""

from __future__ import annotations

import dataclasses
import errno
import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.base.fd import FDPairSerializer, closed_error
from rsyscall.fcntl import AT, SEEK, F, O, dirfd_number
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.pointer import (
    PathPointer,
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    check_points_to,
    path_address,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import (
    BytesSerializer,
    FixedSize,
    HasSerializer,
    Int64,
    PidT,
    Serializable,
    Serializer,
    StrSerializer,
)

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = [
    "ArgList",
    "GidList",
    "OK",
    "SEEK",
    "Pipe",
    "ResIds",
    "UnistdFileDescriptor",
    "UnistdProcess",
    "UnistdTask",
]

T = TypeVar("T")


class OK(IntFlag):
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


class ArgList(tuple["PathPointer", ...], HasSerializer):
    """A NULL-terminated array of C strings: execve(2)'s argv and envp.

    `thread.ptr(ArgList([await thread.ptr("ls"), await thread.ptr("-l")]))`;
    the tuple keeps the strings alive as long as the array pointer lives,
    and is immutable, so it stays what was written."""

    __slots__ = ()

    def __new__(cls, strings: Iterable[PathPointer] = ()) -> Self:
        self = super().__new__(cls, strings)
        for string in self:
            if not isinstance(string, WrittenPointer):
                raise TypeError(
                    f"an ArgList holds written pointers to strings, not {type(string).__name__}"
                )
        return self

    def __repr__(self) -> str:
        return f"ArgList({list(self)!r})"

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


_ID_MAX = (1 << 32) - 1  # uid_t and gid_t are 32-bit unsigned
_ID_SIZE = 4


def _id(name: str, value: object, unchanged_ok: bool = False) -> int:
    """Check a uid or gid argument.  Out of range is an error here: the
    kernel would silently keep only the low 32 bits (2**32 would be root)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not (-1 if unchanged_ok else 0) <= value <= _ID_MAX:
        allowed = "-1 (unchanged) or 0" if unchanged_ok else "0"
        raise ValueError(f"{name} {value} outside {allowed}..{_ID_MAX}")
    return value


class GidList(tuple[int, ...], Serializable):
    """An array of `gid_t`: the list of getgroups(2) and setgroups(2).

    Immutable, so a `WrittenPointer`'s `.value` stays true.  It takes 4
    bytes per group: `thread.malloc(GidList, 4 * n)` has room for n."""

    __slots__ = ()

    def __new__(cls, gids: Iterable[int] = ()) -> Self:
        if isinstance(gids, str | bytes) or not isinstance(gids, Iterable):
            raise TypeError(f"a GidList is made from ints, not a {type(gids).__name__}")
        return super().__new__(cls, [_id("a gid", gid) for gid in gids])

    def __repr__(self) -> str:
        return f"GidList({list(self)!r})"

    def to_bytes(self) -> bytes:
        return struct.pack(f"<{len(self)}I", *self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) % _ID_SIZE:
            raise ValueError(f"a GidList takes {_ID_SIZE} bytes per gid, got {len(data)} bytes")
        return cls(struct.unpack(f"<{len(data) // _ID_SIZE}I", data))


@dataclasses.dataclass(frozen=True)
class ResIds(Serializable, FixedSize):
    """The real, effective and saved ids that getresuid(2) and getresgid(2)
    write through their three pointers.

    A deviation for type safety: the three `uid_t *` (or `gid_t *`)
    arguments are one 12-byte buffer, `thread.malloc(ResIds)`, whose three
    words the library passes as the three pointers.  It is no C struct."""

    __slots__ = ("effective", "real", "saved")
    _packer = struct.Struct("<III")

    real: int
    effective: int
    saved: int

    def __post_init__(self) -> None:
        for name in ("real", "effective", "saved"):
            _id(name, getattr(self, name))

    @classmethod
    def sizeof(cls) -> int:
        return cls._packer.size

    def to_bytes(self) -> bytes:
        return self._packer.pack(self.real, self.effective, self.saved)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls._packer.size
        if len(data) < size:
            raise ValueError(f"a ResIds needs {size} bytes, got {len(data)}")
        return cls(*cls._packer.unpack_from(data))


def _name_argument(
    task: BaseTask, name: ReadablePointer[bytes] | WrittenPointer[str]
) -> tuple[int, int]:
    """The (address, length) of a name for sethostname/setdomainname: all
    of a bytes pointer, a str pointer without its terminating NUL."""
    alloc = borrow(name, task)
    if isinstance(name.serializer, BytesSerializer):
        return alloc.address, alloc.size
    if isinstance(name.serializer, StrSerializer) and isinstance(name, WrittenPointer):
        return alloc.address, alloc.size - 1
    raise TypeError("a name must be a pointer to bytes, or a written pointer to a str")


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

    async def setpgid(self, pgid: PidT = 0) -> None:
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

    async def execveat(
        self,
        dirfd: FileDescriptor | None,
        pathname: PathPointer,
        argv: WrittenPointer[ArgList],
        envp: WrittenPointer[ArgList],
        flags: AT = AT.NONE,
    ) -> None:
        """execveat(2): execve(2) `pathname` relative to `dirfd` (None: the
        working directory); with AT.EMPTY_PATH and an empty `pathname`,
        the program is the file `dirfd` itself (a memfd, an O_PATH fd).
        AT.SYMLINK_NOFOLLOW refuses a final symlink (ELOOP).  Never returns
        on success, as execve; `ChildThread.execveat` expects that.

        A script run through an fd that is close-on-exec (as the library's
        fds are) fails with ENOENT: the interpreter would find the fd
        closed.  Binaries do not mind."""
        for array in (argv, envp):
            if not isinstance(array, WrittenPointer) or not isinstance(array.value, ArgList):
                raise TypeError("argv and envp must be pointers to ArgLists")
            for arg in array.value:
                path_address(self, arg)
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be AT flags, not {type(flags).__name__}")
        await self.sysif.syscall(
            SYS.execveat,
            dirfd_number(self, dirfd),
            path_address(self, pathname),
            borrow(argv, self).address,
            borrow(envp, self).address,
            flags,
        )

    async def faccessat(
        self, dirfd: FileDescriptor | None, path: PathPointer, mode: OK, flags: AT = AT.NONE
    ) -> None:
        """faccessat(2): check `mode` access to `path`; raises OSError if denied."""
        # The raw syscall has no flags argument; faccessat2 does.
        await self.sysif.syscall(
            SYS.faccessat2, dirfd_number(self, dirfd), path_address(self, path), mode, flags
        )

    async def chroot(self, path: PathPointer) -> None:
        """chroot(2): make `path` this process's root directory.  The
        working directory is left where it was (possibly outside the new
        root): chdir into the root afterwards to stay inside it."""
        await self.sysif.syscall(SYS.chroot, path_address(self, path))

    async def sethostname(self, name: ReadablePointer[bytes] | WrittenPointer[str]) -> None:
        """sethostname(2): set the host name of this process's UTS
        namespace to `name`, at most 64 bytes (OSError EINVAL otherwise).

        The length comes from the pointer: all of a bytes pointer (no NUL
        needed; a NUL in it would end the name as readers see it), or a
        str pointer without the NUL `thread.ptr` added."""
        address, length = _name_argument(self, name)
        await self.sysif.syscall(SYS.sethostname, address, length)

    async def setdomainname(self, name: ReadablePointer[bytes] | WrittenPointer[str]) -> None:
        """setdomainname(2): set the NIS domain name of this process's UTS
        namespace to `name`; its length comes from the pointer, as for
        `sethostname`."""
        address, length = _name_argument(self, name)
        await self.sysif.syscall(SYS.setdomainname, address, length)

    async def setuid(self, uid: int) -> None:
        """setuid(2): set the effective user id (and, with the privilege
        to, the real and saved ones too)."""
        await self.sysif.syscall(SYS.setuid, _id("uid", uid))

    async def setgid(self, gid: int) -> None:
        """setgid(2): set the effective group id (and, with the privilege
        to, the real and saved ones too)."""
        await self.sysif.syscall(SYS.setgid, _id("gid", gid))

    async def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        """setresuid(2): set the real, effective and saved user ids; -1
        leaves one unchanged."""
        await self.sysif.syscall(
            SYS.setresuid, _id("ruid", ruid, True), _id("euid", euid, True), _id("suid", suid, True)
        )

    async def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        """setresgid(2): set the real, effective and saved group ids; -1
        leaves one unchanged."""
        await self.sysif.syscall(
            SYS.setresgid, _id("rgid", rgid, True), _id("egid", egid, True), _id("sgid", sgid, True)
        )

    async def setreuid(self, ruid: int, euid: int) -> None:
        """setreuid(2): set the real and effective user ids; -1 leaves one
        unchanged."""
        await self.sysif.syscall(SYS.setreuid, _id("ruid", ruid, True), _id("euid", euid, True))

    async def setregid(self, rgid: int, egid: int) -> None:
        """setregid(2): set the real and effective group ids; -1 leaves one
        unchanged."""
        await self.sysif.syscall(SYS.setregid, _id("rgid", rgid, True), _id("egid", egid, True))

    async def gettid(self) -> int:
        """gettid(2): the id of the thread making the call (the process's
        own pid, for the single-threaded processes rsyscall makes)."""
        return await self.sysif.syscall(SYS.gettid)

    async def getsid(self, pid: PidT = 0) -> int:
        """getsid(2): the session id of process `pid` (0: this process)."""
        return await self.sysif.syscall(SYS.getsid, pid)

    async def exit_group(self, status: int) -> None:
        """exit_group(2): end the process, every thread of it, with exit
        `status` (0..255).  It does not return: in the local thread the
        interpreter ends at once, as with os._exit; in any other thread the
        connection ends (SyscallHangup) and the process can be waited for."""
        if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 255:
            raise ValueError(f"an exit status is 0..255, not {status!r}")
        await self.sysif.syscall(SYS.exit_group, status)

    async def sync(self) -> None:
        """sync(2): write every filesystem's cached data and metadata to
        disk."""
        await self.sysif.syscall(SYS.sync)

    async def truncate(self, path: PathPointer, length: int) -> None:
        """truncate(2): set the size of the file at `path` to `length`
        bytes."""
        if not isinstance(length, int) or isinstance(length, bool):
            raise TypeError(f"length must be an int, not {type(length).__name__}")
        await self.sysif.syscall(SYS.truncate, path_address(self, path), length)

    async def fchownat(
        self, dirfd: FileDescriptor | None, path: PathPointer, owner: int, group: int,
        flags: AT = AT.NONE,
    ) -> None:
        """fchownat(2): set the owner and group of `path` (relative to
        `dirfd`; None: the working directory); -1 leaves one unchanged.
        AT.SYMLINK_NOFOLLOW changes a symlink itself, AT.EMPTY_PATH with an
        empty path the file `dirfd` is."""
        await self.sysif.syscall(
            SYS.fchownat, dirfd_number(self, dirfd), path_address(self, path),
            _id("owner", owner, True), _id("group", group, True), flags,
        )

    async def pivot_root(self, new_root: PathPointer, put_old: PathPointer) -> None:
        """pivot_root(2): make `new_root` (a mount point) this process's
        mount namespace's root, and move the old root to `put_old` (at or
        under `new_root`), from where it can be unmounted; needs a mount
        namespace of its own (CLONE.NEWNS) and CAP_SYS_ADMIN in it."""
        await self.sysif.syscall(
            SYS.pivot_root, path_address(self, new_root), path_address(self, put_old)
        )

    async def acct(self, filename: PathPointer | None) -> None:
        """acct(2): turn process accounting on, appending a record to
        `filename` for each process that ends, or (None) off.  Accounting
        belongs to the pid namespace (a child cloned with CLONE.NEWPID has
        its own); CAP_SYS_PACCT in the initial user namespace is needed."""
        address = 0 if filename is None else path_address(self, filename)
        await self.sysif.syscall(SYS.acct, address)

    async def brk(self) -> int:
        """brk(2) queried: the current program break (the end of the data
        segment), the raw syscall with address 0, which moves nothing.
        Moving it is `unsafe_brk`."""
        return await self.sysif.syscall(SYS.brk, 0)

    async def unsafe_brk(self, addr: int) -> int:
        """brk(2): move the program break to `addr`; returns the new break,
        OSError ENOMEM if the kernel left it where it was.

        Unsafe: a child cloned by the library shares our address space,
        whose heap (malloc's, Python's) lies below the break; lowering it
        unmaps live memory.  The caller must make sure nothing uses the
        memory it gives back: in practice, a process with memory of its
        own (a stub) whose heap is the caller's alone."""
        if not isinstance(addr, int) or isinstance(addr, bool) or not 0 <= addr < 1 << 64:
            raise ValueError(f"an address is an int 0..2**64-1, not {addr!r}")
        new = await self.sysif.syscall(SYS.brk, addr)
        if new != addr:
            # The raw call returns the old break instead of an error.
            raise OSError(errno.ENOMEM, f"brk: cannot move the break to {addr:#x}")
        return new

    async def unsafe_set_tid_address(self, tidptr: int) -> int:
        """set_tid_address(2): the kernel will write 0 to the int at
        address `tidptr` (0: nowhere) and futex-wake it when this process
        exits or execs; returns its thread id.

        Unsafe: hence a raw address.  The write happens whenever the
        process ends, into memory nothing keeps alive (a cloned child's
        memory is ours), so the caller must keep those 4 bytes allocated
        until the process is gone.  The library also uses this word itself: a child
        that shares its fd table watches its exec through it
        (`ChildThread.exec` sets its own address just before execve, so a
        value set here is replaced then)."""
        if not isinstance(tidptr, int) or isinstance(tidptr, bool) or not 0 <= tidptr < 1 << 64:
            raise ValueError(f"an address is an int 0..2**64-1, not {tidptr!r}")
        return await self.sysif.syscall(SYS.set_tid_address, tidptr)

    async def memfd_secret(self, flags: O = O.CLOEXEC) -> FileDescriptor:
        """memfd_secret(2): a file for memory that only the processes that
        map it can see (removed from the kernel's direct map); size it
        with ftruncate, then mmap it MAP_SHARED.  The only flag is
        O.CLOEXEC, which is always passed, as for every fd the library
        makes."""
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be O flags, not {type(flags).__name__}")
        if int(flags) & ~_O_CLOEXEC:
            raise ValueError(f"memfd_secret takes only O.CLOEXEC, not {O(flags)!r}")
        return self.make_fd(await self.sysif.syscall(SYS.memfd_secret, _O_CLOEXEC))

    async def vhangup(self) -> None:
        """vhangup(2): hang up this process's controlling terminal, as if
        the line dropped: every open file of it reads EOF and writes fail
        (EIO) from then on.  Needs CAP_SYS_TTY_CONFIG; without a
        controlling terminal it does nothing."""
        await self.sysif.syscall(SYS.vhangup)

    async def _getres(self, number: int, ids: Pointer[ResIds]) -> ReadablePointer[ResIds]:
        alloc = take(ids, self, ResIds.sizeof())
        address = alloc.address
        try:
            await self.sysif.syscall(number, address, address + _ID_SIZE, address + 2 * _ID_SIZE)
        except BaseException:
            restore(ids, alloc)
            raise
        return ids._readable(alloc, self)

    async def getresuid(self, ids: Pointer[ResIds]) -> ReadablePointer[ResIds]:
        """getresuid(2): write the real, effective and saved user ids into
        `ids` (consumed), whose three words are the three pointers."""
        return await self._getres(SYS.getresuid, ids)

    async def getresgid(self, ids: Pointer[ResIds]) -> ReadablePointer[ResIds]:
        """getresgid(2): write the real, effective and saved group ids into
        `ids` (consumed), whose three words are the three pointers."""
        return await self._getres(SYS.getresgid, ids)

    @overload
    async def getgroups(self, list: None) -> int: ...
    @overload
    async def getgroups(
        self, list: Pointer[GidList]
    ) -> tuple[ReadablePointer[GidList], Pointer[GidList]]: ...
    async def getgroups(
        self, list: Pointer[GidList] | None
    ) -> int | tuple[ReadablePointer[GidList], Pointer[GidList]]:
        """getgroups(2): the supplementary group ids.

        With None (C's size 0), only their number.  With a buffer
        (consumed), they are written into it, and it is split into the
        part holding them and the rest; OSError EINVAL if it has too
        little room.  The buffer's size is its room: 4 bytes per gid."""
        if list is None:
            return await self.sysif.syscall(SYS.getgroups, 0, 0)
        alloc = take(list, self, _ID_SIZE)  # size 0 would mean "just count"
        try:
            count = await self.sysif.syscall(SYS.getgroups, alloc.size // _ID_SIZE, alloc.address)
        except BaseException:
            restore(list, alloc)
            raise
        return list._readable_split(alloc, count * _ID_SIZE, self)


class UnistdProcess(BaseProcess):
    __slots__ = ()

    async def getpgid(self) -> int:
        """getpgid(2): this process's process group id."""
        return await self.task.sysif.syscall(SYS.getpgid, self.pid)

    async def setpgid(self, pgid: PidT = 0) -> None:
        """setpgid(2): move this process to group `pgid` (0: its own pid)."""
        await self.task.sysif.syscall(SYS.setpgid, self.pid, pgid)


class UnistdFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def close(self) -> None:
        """close(2), if this is the last handle for the fd; either way this
        handle can no longer be used."""
        number, last = self._release()
        if last:
            await self.task.sysif.syscall_to_completion(_SYS_close, number)

    async def read(self, buf: Pointer[T]) -> tuple[ReadablePointer[T], Pointer[T]]:
        """read(2) into `buf`; returns the part read into and the rest."""
        number = self._number
        if number < 0:
            raise closed_error()
        task = self.task
        alloc = take(buf, task)
        try:
            count = await task.sysif.syscall(_SYS_read, number, alloc.address, alloc.size)
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count, task)

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
        task = self.task
        alloc = borrow(buf, task)
        buf._alloc = None
        try:
            count = await task.sysif.syscall(_SYS_write, number, alloc.address, alloc.size)
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

    async def fsync(self) -> None:
        """fsync(2): write the file's cached data and metadata to disk."""
        await self.task.sysif.syscall(SYS.fsync, self.number)

    async def fdatasync(self) -> None:
        """fdatasync(2): as fsync, without metadata that reading does not
        need."""
        await self.task.sysif.syscall(SYS.fdatasync, self.number)

    async def syncfs(self) -> None:
        """syncfs(2): write the cached data of the filesystem this file is
        on."""
        await self.task.sysif.syscall(SYS.syncfs, self.number)

    async def fchown(self, owner: int, group: int) -> None:
        """fchown(2): set the file's owner and group; -1 leaves one
        unchanged."""
        await self.task.sysif.syscall(
            SYS.fchown, self.number, _id("owner", owner, True), _id("group", group, True)
        )

    async def copy_file_range(
        self,
        fd_out: FileDescriptor,
        length: int,
        off_in: Pointer[Int64] | None = None,
        off_out: Pointer[Int64] | None = None,
    ) -> tuple[int, ReadablePointer[Int64] | None, ReadablePointer[Int64] | None]:
        """copy_file_range(2): copy up to `length` bytes from this file to
        `fd_out` in the kernel; returns how many, and the offset pointers.
        Without `off_in`/`off_out` the files' own offsets are used and
        advanced; given one (an Int64 the kernel reads and then advances),
        it is consumed and returned, holding the new offset."""
        if not isinstance(fd_out, BaseFileDescriptor):
            raise TypeError(f"fd_out must be a FileDescriptor, not {type(fd_out).__name__}")
        if fd_out.task.fd_table is not self.task.fd_table:
            raise ValueError("fd_out belongs to a different fd table")
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise ValueError(f"length must be a non-negative int, not {length!r}")
        task = self.task
        allocs: list[Allocation | None] = []
        for offset in (off_in, off_out):
            if offset is None:
                allocs.append(None)
                continue
            check_points_to(offset, Int64)
            if not isinstance(offset, ReadablePointer):
                raise TypeError("an offset must be initialized: thread.ptr(Int64(n))")
            allocs.append(take(offset, task, 8))
        try:
            count = await task.sysif.syscall(
                SYS.copy_file_range, self.number, allocs[0].address if allocs[0] else 0,
                fd_out.number, allocs[1].address if allocs[1] else 0, length, 0,
            )
        except BaseException:
            for offset, alloc in zip((off_in, off_out), allocs, strict=True):
                if offset is not None and alloc is not None:
                    restore(offset, alloc)
            raise
        new_in = off_in._readable(allocs[0], task) if off_in is not None and allocs[0] else None
        new_out = (off_out._readable(allocs[1], task)
                   if off_out is not None and allocs[1] else None)
        return count, new_in, new_out

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
