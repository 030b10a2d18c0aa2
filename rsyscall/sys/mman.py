"""<sys/mman.h>: memory mappings: mmap(2), munmap(2), mprotect(2), madvise(2).

`task.mmap(...)` returns a `MemoryMapping`, a handle for one mapping in
the task's address space.  Like a file descriptor, it is garbage
collected: when the last reference goes away the mapping is unmapped,
through the address space's `Mapper` (at once in the local process; a
process that takes a round trip to reach may defer it, as the mapper
decides).  `munmap()` unmaps it now; the handle is then unusable.

`mapping.pointer()` gives a `ReadablePointer[bytes]` to the mapped memory,
for reading and writing it or passing it to syscalls.  The pointer keeps
the mapping alive; while it (or any part split from it) lives, the mapping
cannot be unmapped or made inaccessible, since in the local process the
bytes are copied with plain loads and stores, and a fault there would kill
the Python process.

memfd_create(2) is documented with this header; its flags are `MFD`, from
`rsyscall.linux.memfd`, re-exported here.
"""

from __future__ import annotations

import enum
import weakref
from typing import TYPE_CHECKING

from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.linux.memfd import MFD
from rsyscall.memory.allocator import Allocation, Arena
from rsyscall.memory.pointer import ReadablePointer, UseAfterConsumeError
from rsyscall.near.sysnum import SYS
from rsyscall.struct import BytesSerializer, int_arg

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor, Task

__all__ = ["MADV", "MAP", "MFD", "PROT", "MemoryMapping", "MmanTask"]


class PROT(enum.IntFlag):
    """Memory protection (mmap(2), mprotect(2))."""

    NONE = 0
    READ = 0x1
    WRITE = 0x2
    EXEC = 0x4
    GROWSDOWN = 0x01000000
    GROWSUP = 0x02000000


class MAP(enum.IntFlag):
    """mmap(2) flags.  Exactly one of SHARED, PRIVATE and SHARED_VALIDATE
    is required.  (MAP_32BIT is left out: a name cannot start with a digit.)"""

    SHARED = 0x01
    PRIVATE = 0x02
    SHARED_VALIDATE = 0x03
    FIXED = 0x10
    ANONYMOUS = 0x20
    GROWSDOWN = 0x00100
    DENYWRITE = 0x00800
    EXECUTABLE = 0x01000
    LOCKED = 0x02000
    NORESERVE = 0x04000
    POPULATE = 0x08000
    NONBLOCK = 0x10000
    STACK = 0x20000
    HUGETLB = 0x40000
    SYNC = 0x80000
    FIXED_NOREPLACE = 0x100000


class MADV(enum.IntEnum):
    """madvise(2) advice."""

    NORMAL = 0
    RANDOM = 1
    SEQUENTIAL = 2
    WILLNEED = 3
    DONTNEED = 4
    FREE = 8
    REMOVE = 9
    DONTFORK = 10
    DOFORK = 11
    MERGEABLE = 12
    UNMERGEABLE = 13
    HUGEPAGE = 14
    NOHUGEPAGE = 15
    DONTDUMP = 16
    DODUMP = 17
    WIPEONFORK = 18
    KEEPONFORK = 19
    COLD = 20
    PAGEOUT = 21
    POPULATE_READ = 22
    POPULATE_WRITE = 23
    DONTNEED_LOCKED = 24
    HWPOISON = 100


_SYS_mmap = int(SYS.mmap)
_SYS_munmap = int(SYS.munmap)
_READ_WRITE = PROT.READ | PROT.WRITE
_BYTES = BytesSerializer()



class _MappingArena(Arena):
    """The memory of one mapping, handed out as one pointer (which may be
    split).  Not one of the allocator's arenas, so the allocator ignores it
    when it empties; its allocations keep the mapping alive."""

    __slots__ = ("__weakref__", "mapping")

    def __init__(self, mapping: MemoryMapping, address: int) -> None:
        super().__init__(mapping.task.space.allocator, address, mapping.length)
        self.mapping = mapping


class MemoryMapping:
    """One mapping made by mmap(2) in `task`'s address space: `length`
    bytes at `address`, with protection `prot` (as last set through this
    handle).  Unmapped when garbage collected or by `munmap()`."""

    __slots__ = ("__weakref__", "_address", "_arena", "length", "prot", "task")

    def __init__(self, task: Task, address: int, length: int, prot: PROT) -> None:
        self.task = task
        self._address: int | None = address
        self.length = length
        self.prot = prot
        # The arena of the live pointers into this mapping, if any; weak,
        # since the arena holds the mapping.
        self._arena: weakref.ref[_MappingArena] | None = None

    def _live(self) -> int:
        address = self._address
        if address is None:
            raise UseAfterConsumeError("MemoryMapping was already unmapped")
        return address

    @property
    def address(self) -> int:
        """The start address; raises if the mapping was unmapped."""
        return self._live()

    @property
    def unmapped(self) -> bool:
        """Whether `munmap()` was called."""
        return self._address is None

    def _pointers_live(self) -> bool:
        arena = self._arena() if self._arena is not None else None
        return arena is not None and arena.used > 0

    def __repr__(self) -> str:
        address = self._address
        where = "unmapped" if address is None else f"{address:#x}"
        return f"MemoryMapping({where}, length={self.length}, prot={self.prot!r})"

    def __del__(self) -> None:
        address = self._address
        if address is not None:
            self._address = None
            try:
                self.task.space.allocator.mapper.unmap(address, self.length)
            except OSError:
                pass  # from a finalizer there is nobody to tell

    async def munmap(self) -> None:
        """munmap(2) the whole mapping; the handle can no longer be used.

        Raises ValueError, unmapping nothing, while a pointer from
        `pointer()` (or a part of one) is alive."""
        address = self._live()
        if self._pointers_live():
            raise ValueError("cannot unmap: pointers into this mapping are still alive")
        self._address = None
        try:
            await self.task.sysif.syscall(_SYS_munmap, address, self.length)
        except BaseException:
            self._address = address
            raise

    async def mprotect(self, prot: PROT) -> None:
        """mprotect(2): set the protection of the whole mapping.

        While pointers into the mapping live it must stay readable and
        writable (ValueError otherwise)."""
        address = self._live()
        value = int_arg("prot", prot)
        if value & _READ_WRITE != _READ_WRITE and self._pointers_live():
            raise ValueError("pointers into this mapping are alive: it must stay READ|WRITE")
        await self.task.sysif.syscall(SYS.mprotect, address, self.length, value)
        self.prot = PROT(value)

    async def madvise(self, advice: MADV, offset: int = 0, length: int | None = None) -> None:
        """madvise(2) on `length` bytes from `offset` (page-aligned) in the
        mapping; by default the whole mapping."""
        address = self._live()
        number = int_arg("advice", advice)
        offset = int_arg("offset", offset)
        if length is None:
            length = self.length - offset
        length = int_arg("length", length)
        if offset < 0 or length < 0 or offset + length > self.length:
            raise ValueError(f"range {offset}+{length} outside the mapping's {self.length} bytes")
        await self.task.sysif.syscall(SYS.madvise, address + offset, length, number)

    def pointer(self) -> ReadablePointer[bytes]:
        """A pointer to the whole mapping's memory, which is always
        initialized (zeroes, or the file's contents).

        There is one such pointer at a time (split it for parts; a new one
        can be had once they are all gone), so that no two pointers alias.
        The mapping must be readable and writable.  For a file mapping the
        file must cover the whole mapping: touching a page past its end
        raises SIGBUS, as in C."""
        address = self._live()
        if self.prot & _READ_WRITE != _READ_WRITE:
            raise ValueError(f"a pointer needs a READ|WRITE mapping, this one is {self.prot!r}")
        arena = self._arena() if self._arena is not None else None
        if arena is None:
            arena = _MappingArena(self, address)
            self._arena = weakref.ref(arena)
        start = arena.allocate(self.length)
        if start is None:
            raise ValueError("a pointer to this mapping is already alive; split that one")
        return ReadablePointer(self.task, _BYTES, None, Allocation(arena, start, self.length))


def _fd_number(task: BaseTask, fd: BaseFileDescriptor | None) -> int:
    if fd is None:
        return -1
    if not isinstance(fd, BaseFileDescriptor):
        raise TypeError(f"fd must be a FileDescriptor or None, not {type(fd).__name__}")
    if fd.task.fd_table is not task.fd_table:
        raise ValueError("fd belongs to a different fd table than this task")
    return fd.number


class MmanTask(BaseTask):
    __slots__ = ()

    async def mmap(
        self,
        length: int,
        prot: PROT,
        flags: MAP,
        fd: FileDescriptor | None = None,
        offset: int = 0,
        addr: int = 0,
    ) -> MemoryMapping:
        """mmap(2): map `length` bytes of `fd` from `offset` (page-aligned),
        or of anonymous memory (MAP.ANONYMOUS, fd None).

        `addr` is a hint, or with MAP.FIXED_NOREPLACE the exact place.
        MAP.FIXED replaces whatever was mapped there, including memory other
        handles own: their finalizers would later unmap your mapping."""
        length = int_arg("length", length)
        if length < 0:
            raise ValueError(f"negative length {length}")
        protection = int_arg("prot", prot)
        flag_bits = int_arg("flags", flags)
        offset = int_arg("offset", offset)
        hint = int_arg("addr", addr)
        number = _fd_number(self, fd)
        address = await self.sysif.syscall(
            _SYS_mmap, hint, length, protection, flag_bits, number, offset
        )
        return MemoryMapping(self, address, length, PROT(protection))  # type: ignore[arg-type]
