"""<sys/uio.h>: vectored I/O, readv(2), writev(2), preadv(2), pwritev(2),
preadv2(2), pwritev2(2), and copies between address spaces,
process_vm_readv(2) and process_vm_writev(2).

The `struct iovec` array is an `IovecList` of byte pointers; the pointers
know their sizes, so the array is written with no lengths given by hand.
A vectored read fills the buffers in order and returns `(valid, rest)` as
two lists of pointers: the buffers (or parts of a buffer) that were filled,
and those that were not.  A vectored write likewise returns the parts that
were written and those that were not.

process_vm_readv and process_vm_writev name memory of another process:
their remote array is a `RemoteIovecList`, whose pointers belong to that
process's address space (from its thread's `malloc` or `ptr`, or a
MemoryMapping's `pointer()` there), so that no address is made up; the
array itself is written in the calling thread's memory.  They are methods
of the `Process` handle of the target, which must be the process that
made the remote pointers (ValueError otherwise).  The check compares
pids, so the caller and the target must share a pid namespace; a reaped
child's handle is refused (its pid may name another process by now).
`unsafe_process_vm_readv` and `unsafe_process_vm_writev` take raw
`(address, length)` ranges instead, for memory no pointer of ours names.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from rsyscall._enum import IntFlag
from rsyscall.base import BaseFileDescriptor, BaseProcess, BaseTask
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import HasSerializer, Serializer, int_arg

if TYPE_CHECKING:
    from rsyscall.handle import Task

__all__ = [
    "RWF",
    "UIO_MAXIOV",
    "IovecList",
    "RemoteIovecList",
    "UioFileDescriptor",
    "UioProcess",
]

UIO_MAXIOV = 1024


class RWF(IntFlag):
    """Per-call flags of preadv2(2) and pwritev2(2)."""

    NONE = 0
    HIPRI = 1
    DSYNC = 2
    SYNC = 4
    NOWAIT = 8
    APPEND = 16


_IOVEC = struct.Struct("<QQ")


class _IovecSerializer(Serializer["IovecList"]):
    __slots__ = ("task",)

    def __init__(self, task: BaseTask) -> None:
        self.task = task

    def to_bytes(self, value: IovecList) -> bytes:
        if not isinstance(value, IovecList):
            raise TypeError(f"expected an IovecList, got {type(value).__name__}")
        parts = []
        for ptr in value:
            alloc = ptr._live()
            if ptr.space is not self.task.space:
                raise ValueError("an iovec buffer is in another address space")
            parts.append(_IOVEC.pack(alloc.address, alloc.size))
        return b"".join(parts)

    def from_bytes(self, data: bytes) -> IovecList:
        raise TypeError(
            "an IovecList cannot be read back from memory; use the WrittenPointer's .value"
        )


class IovecList(tuple[Pointer[bytes], ...], HasSerializer):
    """An array of `struct iovec`, one per buffer pointer, in order.

    `thread.ptr(IovecList([buf1, buf2]))` writes the array; the list keeps
    the buffers alive for as long as the array pointer lives.  It is a
    tuple, immutable: the syscalls take the buffers it names for the
    kernel to fill, so it must name exactly the buffers whose addresses
    were written (a list changed after writing would leave the kernel
    writing into a buffer nothing holds any more)."""

    __slots__ = ()

    def __new__(cls, buffers: Iterable[Pointer[bytes]] = ()) -> Self:
        if isinstance(buffers, Pointer):
            raise TypeError("an IovecList is made from an iterable of Pointers, not one Pointer")
        self = super().__new__(cls, buffers)
        if len(self) > UIO_MAXIOV:
            raise ValueError(f"at most {UIO_MAXIOV} buffers, got {len(self)}")
        for ptr in self:
            if not isinstance(ptr, Pointer):
                raise TypeError(f"an IovecList holds Pointers, not {type(ptr).__name__}")
        return self

    def __repr__(self) -> str:
        return f"IovecList({list(self)!r})"

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[IovecList]:
        return _IovecSerializer(task)


class _RemoteIovecSerializer(Serializer["RemoteIovecList"]):
    __slots__ = ()

    def to_bytes(self, value: RemoteIovecList) -> bytes:
        if not isinstance(value, RemoteIovecList):
            raise TypeError(f"expected a RemoteIovecList, got {type(value).__name__}")
        return b"".join(_IOVEC.pack(alloc.address, alloc.size) for alloc in value._allocs())

    def from_bytes(self, data: bytes) -> RemoteIovecList:
        raise TypeError(
            "a RemoteIovecList cannot be read back from memory; use the WrittenPointer's .value"
        )


_REMOTE_SERIALIZER = _RemoteIovecSerializer()


class RemoteIovecList(tuple[Pointer[bytes], ...], HasSerializer):
    """An array of `struct iovec` naming memory of another process: byte
    pointers of one address space (the target's), in order.

    Written into the calling thread's memory like any value
    (`thread.ptr(RemoteIovecList([...]))`, `thread` the caller), though
    its pointers are the target's; it keeps them alive while the array
    pointer lives.  Immutable, as `IovecList`."""

    __slots__ = ()

    def __new__(cls, buffers: Iterable[Pointer[bytes]] = ()) -> Self:
        if isinstance(buffers, Pointer):
            raise TypeError(
                "a RemoteIovecList is made from an iterable of Pointers, not one Pointer"
            )
        self = super().__new__(cls, buffers)
        if len(self) > UIO_MAXIOV:
            raise ValueError(f"at most {UIO_MAXIOV} buffers, got {len(self)}")
        for ptr in self:
            if not isinstance(ptr, Pointer):
                raise TypeError(f"a RemoteIovecList holds Pointers, not {type(ptr).__name__}")
        if len({id(ptr.space) for ptr in self}) > 1:
            raise ValueError("the buffers of a RemoteIovecList must be in one address space")
        return self

    def __repr__(self) -> str:
        return f"RemoteIovecList({list(self)!r})"

    def _allocs(self) -> list[Allocation]:
        return [ptr._live() for ptr in self]

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[RemoteIovecList]:
        return _REMOTE_SERIALIZER


def remote_iov_address(iov: WrittenPointer[RemoteIovecList], task: BaseTask) -> tuple[int, int]:
    """The address, in `task`'s memory, of the array `iov`, and its number
    of entries; every buffer it names must still be live."""
    if not isinstance(iov, WrittenPointer) or not isinstance(iov.value, RemoteIovecList):
        raise TypeError(
            "expected a pointer to a RemoteIovecList, from thread.ptr(RemoteIovecList([...]))"
        )
    alloc = borrow(iov, task)
    iov.value._allocs()  # a freed buffer's address could name anything by now
    return alloc.address, len(iov.value)


def iov_buffers(iov: WrittenPointer[IovecList], task: Task) -> tuple[int, IovecList]:
    if not isinstance(iov, WrittenPointer):
        raise TypeError("expected a pointer to an IovecList, from thread.ptr(IovecList([...]))")
    alloc = borrow(iov, task)
    value = iov.value
    if not isinstance(value, IovecList):
        raise TypeError("expected a pointer to an IovecList, from thread.ptr(IovecList([...]))")
    return alloc.address, value


def take_buffers(
    buffers: tuple[Pointer[bytes], ...], task: BaseTask, readable: bool
) -> list[Allocation]:
    """Consume every buffer of an iovec array for a syscall in `task`;
    `readable`: they must hold data (a write), else anything (a read)."""
    allocs: list[Allocation] = []
    try:
        for ptr in buffers:
            if readable:
                alloc = borrow(ptr, task)  # type: ignore[arg-type]  # checked here
                ptr._alloc = None
            else:
                alloc = take(ptr, task)
            allocs.append(alloc)
    except BaseException:
        restore_buffers(buffers, allocs)
        raise
    return allocs


def restore_buffers(buffers: tuple[Pointer[bytes], ...], allocs: list[Allocation]) -> None:
    for ptr, alloc in zip(buffers, allocs, strict=False):
        restore(ptr, alloc)


def split_buffers(
    buffers: tuple[Pointer[bytes], ...],
    allocs: list[Allocation],
    count: int,
    task: BaseTask,
    filled: bool,
) -> tuple[list[Any], list[Any]]:
    """After a vectored syscall handled `count` bytes: the pointers to the
    handled parts and to the rest.  `filled`: the syscall wrote the handled
    parts (a read), which become readable; else (a write) each part keeps
    its kind."""
    done: list[Any] = []
    rest: list[Any] = []
    for ptr, alloc in zip(buffers, allocs, strict=True):
        # Once a buffer was left (partly) unhandled, all after it are rest,
        # even empty ones: `done` is a prefix of the array, `rest` the remainder.
        if not rest and alloc.size <= count:
            done.append(ptr._readable(alloc, task) if filled else ptr._unchanged(alloc))
            count -= alloc.size
        elif count == 0:
            rest.append(ptr._as(Pointer, alloc, task) if filled else ptr._unchanged(alloc))
        else:
            if filled:
                first, second = ptr._readable_split(alloc, count, task)
            else:
                first, second = ptr._unchanged_split(alloc, count)
            done.append(first)
            rest.append(second)
            count = 0
    return done, rest


class UioFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def _vectored(
        self, number: int, iov: WrittenPointer[IovecList], args: tuple[int, ...], filled: bool
    ) -> tuple[list[Any], list[Any]]:
        task = self.task
        address, buffers = iov_buffers(iov, task)
        fd = self.number
        allocs = take_buffers(buffers, task, readable=not filled)
        try:
            count = await task.sysif.syscall(number, fd, address, len(buffers), *args)
        except BaseException:
            restore_buffers(buffers, allocs)
            raise
        return split_buffers(buffers, allocs, count, task, filled)

    async def readv(
        self, iov: WrittenPointer[IovecList]
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """readv(2) into the buffers of `iov`; returns the filled parts and the rest.

        Consumes the buffers (not the array): make a new IovecList from the
        returned pointers to read again."""
        return await self._vectored(SYS.readv, iov, (), filled=True)

    async def writev(
        self, iov: WrittenPointer[IovecList]
    ) -> tuple[list[ReadablePointer[bytes]], list[ReadablePointer[bytes]]]:
        """writev(2) from the buffers of `iov`; returns the written parts and the rest."""
        return await self._vectored(SYS.writev, iov, (), filled=False)

    async def preadv(
        self, iov: WrittenPointer[IovecList], offset: int
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """preadv(2): readv at file `offset`, leaving the file offset alone."""
        return await self._vectored(SYS.preadv, iov, (offset, 0), filled=True)

    async def pwritev(
        self, iov: WrittenPointer[IovecList], offset: int
    ) -> tuple[list[ReadablePointer[bytes]], list[ReadablePointer[bytes]]]:
        """pwritev(2): writev at file `offset`, leaving the file offset alone."""
        return await self._vectored(SYS.pwritev, iov, (offset, 0), filled=False)

    async def preadv2(
        self, iov: WrittenPointer[IovecList], offset: int = -1, flags: RWF = RWF.NONE
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """preadv2(2): readv at file `offset` (-1: the current offset), with `flags`."""
        # On 64-bit the offset goes whole in pos_l; pos_h is ignored.
        return await self._vectored(SYS.preadv2, iov, (offset, 0, flags), filled=True)

    async def pwritev2(
        self, iov: WrittenPointer[IovecList], offset: int = -1, flags: RWF = RWF.NONE
    ) -> tuple[list[ReadablePointer[bytes]], list[ReadablePointer[bytes]]]:
        """pwritev2(2): writev at file `offset` (-1: the current offset), with `flags`."""
        return await self._vectored(SYS.pwritev2, iov, (offset, 0, flags), filled=False)



class UioProcess(BaseProcess):
    __slots__ = ()

    def _remote(self, remote_iov: WrittenPointer[RemoteIovecList]) -> tuple[int, RemoteIovecList]:
        task = self.task
        if getattr(self, "reaped", False):
            # A reaped child's pid may name another process by now.
            raise ProcessLookupError(errno.ESRCH, f"process {self.pid} was reaped")
        address, _ = remote_iov_address(remote_iov, task)
        buffers = remote_iov.value
        for ptr in buffers:
            if ptr.task.pid != self.pid or ptr.task.space is not buffers[0].task.space:
                raise ValueError(
                    f"a remote buffer belongs to {ptr.task!r}, not to process {self.pid}: "
                    "allocate it with that process's thread"
                )
        return address, buffers

    async def process_vm_readv(
        self, local_iov: WrittenPointer[IovecList], remote_iov: WrittenPointer[RemoteIovecList]
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """process_vm_readv(2): copy the memory of this process named by
        `remote_iov` (its buffers, which must be readable pointers of this
        process's address space) into the buffers of `local_iov` (in the
        calling task's memory), in order; returns the filled local parts
        and the rest, as readv does.  The remote buffers are left as they
        were.  Needs PTRACE_MODE_ATTACH_REALCREDS over the process (EPERM)."""
        task = self.task
        remote_address, remote = self._remote(remote_iov)
        for ptr in remote:
            if not isinstance(ptr, ReadablePointer):
                raise TypeError("a remote buffer to read from must be initialized memory")
        local_address, local = iov_buffers(local_iov, task)
        allocs = take_buffers(local, task, readable=False)
        try:
            count = await task.sysif.syscall(
                SYS.process_vm_readv, self.pid, local_address, len(local), remote_address,
                len(remote), 0,
            )
        except BaseException:
            restore_buffers(local, allocs)
            raise
        return split_buffers(local, allocs, count, task, filled=True)

    async def process_vm_writev(
        self, local_iov: WrittenPointer[IovecList], remote_iov: WrittenPointer[RemoteIovecList]
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """process_vm_writev(2): copy the buffers of `local_iov` (written
        memory of the calling task) into this process's memory named by
        `remote_iov`, in order.  The remote buffers are consumed: returns
        pointers (of this process's address space) to the remote parts
        that were written, now readable, and to the rest.  Needs
        PTRACE_MODE_ATTACH_REALCREDS over the process (EPERM)."""
        task = self.task
        remote_address, remote = self._remote(remote_iov)
        local_address, local = iov_buffers(local_iov, task)
        for ptr in local:
            borrow(ptr, task)  # type: ignore[arg-type]  # checks it holds data
        if not remote:
            return [], []
        owner = remote[0].task
        allocs = take_buffers(remote, owner, readable=False)
        try:
            count = await task.sysif.syscall(
                SYS.process_vm_writev, self.pid, local_address, len(local), remote_address,
                len(remote), 0,
            )
        except BaseException:
            restore_buffers(remote, allocs)
            raise
        return split_buffers(remote, allocs, count, owner, filled=True)

    async def _unsafe_remote(
        self, remote: Iterable[tuple[int, int]]
    ) -> tuple[Allocation, int]:
        """A staged iovec array for raw (address, length) ranges of this
        process, and its length; the allocation must be held until the
        syscall is answered."""
        ranges = list(remote)
        if len(ranges) > UIO_MAXIOV:
            raise ValueError(f"at most {UIO_MAXIOV} ranges, got {len(ranges)}")
        parts = []
        for entry in ranges:
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise TypeError(f"a remote range is an (address, length) tuple, not {entry!r}")
            address, length = (int_arg("address", entry[0]), int_arg("length", entry[1]))
            if not (0 <= address < 1 << 64 and 0 <= length < 1 << 63):
                raise ValueError(f"not a range: {entry!r}")
            parts.append(_IOVEC.pack(address, length))
        if getattr(self, "reaped", False):
            raise ProcessLookupError(errno.ESRCH, f"process {self.pid} was reaped")
        array = await self.task.space.stage(b"".join(parts) or bytes(1))
        return array, len(ranges)

    async def unsafe_process_vm_readv(
        self, local_iov: WrittenPointer[IovecList], remote: Iterable[tuple[int, int]]
    ) -> tuple[list[ReadablePointer[bytes]], list[Pointer[bytes]]]:
        """process_vm_readv(2) from raw `(address, length)` ranges of this
        process's memory (any the kernel lets us read: its stack, its
        heap), into the buffers of `local_iov`; returns the filled parts
        and the rest.  EFAULT for a range that is not mapped there.

        Unsafe: the caller must make sure the ranges name what it means
        to read in the right process (a pid can be reused once its process
        is reaped); nothing is written there, so no memory is harmed."""
        task = self.task
        local_address, local = iov_buffers(local_iov, task)
        array, count = await self._unsafe_remote(remote)
        allocs = take_buffers(local, task, readable=False)
        try:
            done = await task.sysif.syscall(
                SYS.process_vm_readv, self.pid, local_address, len(local), array.address,
                count, 0,
            )
        except BaseException:
            restore_buffers(local, allocs)
            raise
        return split_buffers(local, allocs, done, task, filled=True)

    async def unsafe_process_vm_writev(
        self, local_iov: WrittenPointer[IovecList], remote: Iterable[tuple[int, int]]
    ) -> int:
        """process_vm_writev(2) of the buffers of `local_iov` into raw
        `(address, length)` ranges of this process's memory; returns how
        many bytes were written.

        Unsafe: the caller must make sure the ranges are memory of this
        process that nothing there relies on (not its allocator's, its
        stack's or its library's pointers' memory, unless that is the
        point): the bytes replace whatever was there."""
        task = self.task
        local_address, local = iov_buffers(local_iov, task)
        for ptr in local:
            borrow(ptr, task)  # type: ignore[arg-type]  # checks it holds data
        array, count = await self._unsafe_remote(remote)
        return await task.sysif.syscall(
            SYS.process_vm_writev, self.pid, local_address, len(local), array.address, count, 0
        )
