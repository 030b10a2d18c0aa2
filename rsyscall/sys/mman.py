"""<sys/mman.h>: memory mappings: mmap(2), munmap(2), mprotect(2),
madvise(2), mremap(2), msync(2), mincore(2), mlock(2) / mlock2(2) /
munlock(2), pkey_mprotect(2) (methods of `MemoryMapping`); mlockall(2),
munlockall(2) and pkey_alloc(2) (of the task; a `ProtectionKey` handle,
pkey_free(2)); process_madvise(2) and process_mrelease(2) (of a pidfd).

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
the Python process.  For the same reason `pointer()` is only for memory
that cannot fault: anonymous memory, or a memfd sealed with SEAL.SHRINK
(a page of a file mapping past the file's end raises SIGBUS, and anyone
may truncate an ordinary file); `unsafe_pointer()` is for the rest.
Likewise `madvise` refuses advice that empties pages a live pointer
covers (their contents would change under it) and advice that poisons
pages (the next touch would kill the process), and `mmap` refuses
MAP.FIXED, which would map over memory in use (MAP.FIXED_NOREPLACE is
fine: it fails rather than replace anything).  The unchecked forms are
`unsafe_pointer`, `unsafe_madvise` and `Task.unsafe_mmap`, whose callers
vouch for the memory they affect.

`mapping.mremap(...)` returns a new handle for the resized (maybe moved)
mapping and consumes the old one; it is refused while pointers into the
mapping live, and MREMAP.FIXED (which replaces what is at the new
address) is `unsafe_mremap`'s.  A mapping given a protection key by
`pkey_mprotect` hands out no `pointer()`: the key's rights, which any
thread may change with one instruction, could forbid touching it.

memfd_create(2) is declared by this header (its SYNOPSIS names
<sys/mman.h>): `Task.memfd_create` and its flags `MFD` are defined here;
`rsyscall.linux.memfd`, their old home, re-exports them.
"""

from __future__ import annotations

import enum
import weakref
from bisect import bisect_right
from typing import TYPE_CHECKING

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.fcntl import SEAL, F
from rsyscall.memory.allocator import Allocation, Arena
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    UseAfterConsumeError,
    WrittenPointer,
    path_address,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import BytesSerializer, int_arg
from rsyscall.sys.stat import Stat
from rsyscall.sys.uio import RemoteIovecList, remote_iov_address

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor, Task

__all__ = [
    "MADV",
    "MAP",
    "MCL",
    "MFD",
    "MLOCK",
    "MREMAP",
    "MS",
    "PKEY",
    "PROT",
    "MemfdTask",
    "MemoryMapping",
    "MmanFileDescriptor",
    "MmanTask",
    "ProtectionKey",
]


class PROT(IntFlag):
    """Memory protection (mmap(2), mprotect(2))."""

    NONE = 0
    READ = 0x1
    WRITE = 0x2
    EXEC = 0x4
    GROWSDOWN = 0x01000000
    GROWSUP = 0x02000000


class MAP(IntFlag):
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


class MADV(IntEnum):
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


class MS(IntFlag):
    """msync(2) flags (C: MS_ASYNC, MS_SYNC, MS_INVALIDATE).  Not the
    mount flags of the same C prefix, which are rsyscall.sys.mount.MS."""

    NONE = 0
    ASYNC = 1
    INVALIDATE = 2
    SYNC = 4


class MREMAP(IntFlag):
    """mremap(2) flags.  FIXED is only `MemoryMapping.unsafe_mremap`'s."""

    NONE = 0
    MAYMOVE = 1
    FIXED = 2
    DONTUNMAP = 4


class MCL(IntFlag):
    """mlockall(2) flags."""

    CURRENT = 1
    FUTURE = 2
    ONFAULT = 4


class MLOCK(IntFlag):
    """mlock2(2) flags."""

    NONE = 0
    ONFAULT = 1


class PKEY(IntFlag):
    """The access rights of a protection key (pkey_alloc(2))."""

    NONE = 0
    DISABLE_ACCESS = 0x1
    DISABLE_WRITE = 0x2


_SYS_mmap = int(SYS.mmap)
_SYS_pkey_free = int(SYS.pkey_free)
_SYS_munmap = int(SYS.munmap)
_READ_WRITE = PROT.READ | PROT.WRITE
_BYTES = BytesSerializer()
_FIXED = int(MAP.FIXED)
_ANONYMOUS = int(MAP.ANONYMOUS)
_HUGETLB = int(MAP.HUGETLB)
_NORESERVE = int(MAP.NORESERVE)
_SYS_fcntl = int(SYS.fcntl)
_SYS_fstat = int(SYS.fstat)
_ST_SIZE_OFFSET = Stat.layout.offsets["st_size"]
# What proves a MemoryMapping is made by mmap (see its docstring).
_MMAP_KEY = object()
# Advice that replaces the contents of the pages, and advice that poisons them.
_DESTRUCTIVE = frozenset({MADV.DONTNEED, MADV.DONTNEED_LOCKED, MADV.FREE, MADV.REMOVE})
_POISON = frozenset({MADV.HWPOISON})
_PAGE_SIZE = 4096
_MREMAP_FIXED = int(MREMAP.FIXED)
_MREMAP_DONTUNMAP = int(MREMAP.DONTUNMAP)


def _flag_arg(name: str, cls: type[IntFlag], value: object) -> int:
    """The bits of `value`, a `cls` or an int of `cls`'s bits (MemoryMapping's
    methods are not wrapped by rsyscall.argcheck, so check as it would)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a {cls.__name__}, not {type(value).__name__}")
    if isinstance(value, enum.Enum) and not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, not {type(value).__name__}")
    bits = int(value)
    known = 0
    for member in cls.__members__.values():
        known |= int(member)
    if bits < 0 or bits & ~known:
        raise ValueError(f"{name} {bits:#x} has bits that are no {cls.__name__}")
    return bits


def _page_round(length: int) -> int:
    return (length + _PAGE_SIZE - 1) & ~(_PAGE_SIZE - 1)



class _MappingArena(Arena):
    """The memory of one mapping, handed out as one pointer (which may be
    split).  Not one of the allocator's arenas, so the allocator ignores it
    when it empties; its allocations keep the mapping alive."""

    __slots__ = ("__weakref__", "mapping")

    def __init__(self, mapping: MemoryMapping, address: int) -> None:
        super().__init__(mapping.task.space.allocator, address, mapping.length)
        self.mapping = mapping

    def range_free(self, start: int, end: int) -> bool:
        """Whether no pointer covers any byte of [start, end): the range is
        inside one free range.  Frees still queued count as used."""
        if self._pending:
            return False
        j = bisect_right(self._starts, start) - 1
        return j >= 0 and self._ends[j] >= min(end, self.address + self.size)


class MemoryMapping:
    """One mapping made by mmap(2) in `task`'s address space: `length`
    bytes at `address`, with protection `prot` (as last set through this
    handle).  Unmapped when garbage collected or by `munmap()`.

    Only `Task.mmap` makes these: a handle for an address that mmap did not
    return would unmap (and hand out pointers to) whatever is there, so the
    constructor refuses to be called otherwise (TypeError)."""

    __slots__ = (
        "__weakref__", "_address", "_anonymous", "_arena", "_pkey", "_pointable", "length",
        "prot", "task",
    )

    def __init__(
        self,
        task: Task,
        address: int,
        length: int,
        prot: PROT,
        *,
        _key: object = None,
        _pointable: bool = False,
        _anonymous: bool = False,
    ) -> None:
        if _key is not _MMAP_KEY:
            raise TypeError("MemoryMapping handles are made by Task.mmap, not constructed")
        self.task = task
        self._address: int | None = address
        self.length = length
        self.prot = prot
        # Whether touching any byte of it is sure not to fault (see pointer()).
        self._pointable = _pointable
        # Private anonymous memory: a grown mapping is as pointable as it was.
        self._anonymous = _anonymous
        # The protection key pkey_mprotect gave the pages, held so that it
        # is not freed while they carry it.
        self._pkey: ProtectionKey | None = None
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

    def _pointers_in(self, start: int, end: int) -> bool:
        """Whether a live pointer covers any byte from `start` to `end`."""
        arena = self._arena() if self._arena is not None else None
        return arena is not None and arena.used > 0 and not arena.range_free(start, end)

    def __repr__(self) -> str:
        address = self._address
        where = "unmapped" if address is None else f"{address:#x}"
        return f"MemoryMapping({where}, length={self.length}, prot={self.prot!r})"

    def __del__(self) -> None:
        address = getattr(self, "_address", None)  # None too if __init__ refused
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
        mapping; by default the whole mapping.

        Only the advice of `MADV` is taken (ValueError for another number:
        newer kernels have advice such as MADV_GUARD_INSTALL that makes
        memory fault).  Advice that throws the contents away (DONTNEED,
        DONTNEED_LOCKED, FREE, REMOVE) is refused while a pointer from
        `pointer()` covers part of the range, since the pointer's contents
        would change under it (a `WrittenPointer`'s `.value` would lie);
        HWPOISON is refused always (the pages would kill the process at
        their next touch): `unsafe_madvise` passes any advice."""
        address = self._live()
        number, offset, length = self._advice_range(advice, offset, length)
        try:
            known = MADV(number)
        except ValueError:
            raise ValueError(
                f"advice {number} is not one the library knows (a member of MADV): "
                "use unsafe_madvise"
            ) from None
        if known in _POISON:
            raise ValueError(
                f"{known!r} makes the pages kill whoever touches them: use unsafe_madvise"
            )
        end = address + offset + _page_round(length)
        if known in _DESTRUCTIVE and self._pointers_in(address + offset, end):
            raise ValueError(
                f"{known!r} would change memory that a live pointer into this mapping covers"
            )
        await self.task.sysif.syscall(SYS.madvise, address + offset, length, number)

    async def unsafe_madvise(
        self, advice: int, offset: int = 0, length: int | None = None
    ) -> None:
        """madvise(2) with any advice number, unchecked, on `length` bytes
        from `offset` in the mapping (by default all of it).

        Unsafe: the caller must make sure that nothing relies on memory the
        advice changes: no live pointer from `pointer()` into pages it
        empties (DONTNEED, FREE, REMOVE: they read back as zeroes or the
        file's contents) and no touch of pages it poisons (HWPOISON, and
        guard pages of newer kernels): such a touch raises SIGBUS or
        SIGSEGV, which kills the process, the Python interpreter itself for
        memory of the local address space."""
        address = self._live()
        number, offset, length = self._advice_range(advice, offset, length)
        await self.task.sysif.syscall(SYS.madvise, address + offset, length, number)

    def _advice_range(
        self, advice: int, offset: int, length: int | None
    ) -> tuple[int, int, int]:
        number = int_arg("advice", advice)
        offset = int_arg("offset", offset)
        if length is None:
            length = self.length - offset
        length = int_arg("length", length)
        if offset < 0 or length < 0 or offset + length > self.length:
            raise ValueError(f"range {offset}+{length} outside the mapping's {self.length} bytes")
        return number, offset, length

    def _range(self, offset: int, length: int | None) -> tuple[int, int]:
        """The address and length of `length` bytes from `offset` in the
        mapping (by default to its end)."""
        address = self._live()
        offset = int_arg("offset", offset)
        if length is None:
            length = self.length - offset
        length = int_arg("length", length)
        if offset < 0 or length < 0 or offset + length > self.length:
            raise ValueError(f"range {offset}+{length} outside the mapping's {self.length} bytes")
        return address + offset, length

    async def msync(self, flags: MS, offset: int = 0, length: int | None = None) -> None:
        """msync(2): write the changes in `length` bytes from `offset`
        (page-aligned) of a shared file mapping back to the file; by
        default the whole mapping.  `flags`: one of MS.ASYNC and MS.SYNC,
        optionally with MS.INVALIDATE."""
        bits = _flag_arg("flags", MS, flags)
        address, length = self._range(offset, length)
        await self.task.sysif.syscall(SYS.msync, address, length, bits)

    async def mlock(self, offset: int = 0, length: int | None = None) -> None:
        """mlock(2): lock `length` bytes from `offset` of the mapping (by
        default all of it) in RAM, faulting them in now.  Limited by
        RLIMIT_MEMLOCK without CAP_IPC_LOCK (ENOMEM, or EPERM at limit 0)."""
        address, length = self._range(offset, length)
        await self.task.sysif.syscall(SYS.mlock, address, length)

    async def mlock2(
        self, flags: MLOCK, offset: int = 0, length: int | None = None
    ) -> None:
        """mlock2(2): `mlock` with `flags`; MLOCK.ONFAULT locks the pages
        as they are faulted in instead of faulting them all in now."""
        bits = _flag_arg("flags", MLOCK, flags)
        address, length = self._range(offset, length)
        await self.task.sysif.syscall(SYS.mlock2, address, length, bits)

    async def munlock(self, offset: int = 0, length: int | None = None) -> None:
        """munlock(2): unlock `length` bytes from `offset` of the mapping
        (by default all of it)."""
        address, length = self._range(offset, length)
        await self.task.sysif.syscall(SYS.munlock, address, length)

    async def mincore(self, vec: Pointer[bytes], offset: int = 0) -> ReadablePointer[bytes]:
        """mincore(2): which pages of the mapping are resident in RAM.

        `vec` (bytes, e.g. from `thread.malloc(bytes, n)`) is consumed;
        its size n says how many pages, from `offset` (page-aligned), are
        asked about, so `offset + n * page size` may not pass the end of
        the mapping (rounded up to whole pages; ValueError otherwise).
        Returns a pointer to the same memory holding one byte per page,
        whose lowest bit is set for a resident page."""
        address = self._live()
        offset = int_arg("offset", offset)
        if not isinstance(vec, Pointer) or not isinstance(vec.serializer, BytesSerializer):
            raise TypeError(f"vec must be a Pointer to bytes, not {vec!r}")
        pages = vec.size()
        if offset < 0 or offset % _PAGE_SIZE or offset + pages * _PAGE_SIZE > _page_round(
            self.length
        ):
            raise ValueError(
                f"{pages} pages from offset {offset} are not page-aligned pages of the "
                f"mapping's {self.length} bytes"
            )
        task = self.task
        alloc = take(vec, task)
        try:
            await task.sysif.syscall(
                SYS.mincore, address + offset, pages * _PAGE_SIZE, alloc.address
            )
        except BaseException:
            restore(vec, alloc)
            raise
        return vec._readable(alloc, task)

    async def mremap(self, new_length: int, flags: MREMAP = MREMAP.NONE) -> MemoryMapping:
        """mremap(2): grow or shrink the mapping to `new_length` bytes;
        with MREMAP.MAYMOVE the kernel may move it elsewhere.

        Returns a new handle for the resized mapping, and this one is
        consumed (unusable; nothing is unmapped when it goes), except with
        MREMAP.DONTUNMAP (with MAYMOVE, on private anonymous memory, and
        the same length): the pages move to the new mapping and this one
        stays mapped, empty (its pages read as zeroes again), still owned
        by this handle.  Refused (ValueError) while a pointer from
        `pointer()` is alive, since its memory could move or vanish.
        MREMAP.FIXED, which unmaps whatever is at the new place, is
        `unsafe_mremap`'s."""
        return await self._mremap(new_length, flags, 0, allow_fixed=False)

    async def unsafe_mremap(
        self, new_length: int, flags: MREMAP, new_address: int = 0
    ) -> MemoryMapping:
        """mremap(2) allowing MREMAP.FIXED (with MAYMOVE): the mapping
        moves to exactly `new_address`, replacing whatever was mapped in
        `new_address` .. `new_address + new_length`.

        Unsafe: as for `Task.unsafe_mmap` with MAP.FIXED, the caller must
        make sure nothing in that range is in use (the interpreter's
        memory, the allocator's arenas, another live MemoryMapping)."""
        return await self._mremap(new_length, flags, new_address, allow_fixed=True)

    async def _mremap(
        self, new_length: int, flags: MREMAP, new_address: int, allow_fixed: bool
    ) -> MemoryMapping:
        address = self._live()
        new_length = int_arg("new_length", new_length)
        if new_length < 0:
            raise ValueError(f"negative length {new_length}")
        bits = _flag_arg("flags", MREMAP, flags)
        target = int_arg("new_address", new_address)
        if bits & _MREMAP_FIXED and not allow_fixed:
            raise ValueError(
                "MREMAP.FIXED replaces what is mapped at the new address, which may be "
                "memory in use: use unsafe_mremap"
            )
        if self._pointers_live():
            raise ValueError("cannot remap: pointers into this mapping are still alive")
        keep_old = bool(bits & _MREMAP_DONTUNMAP)
        if not keep_old:
            self._address = None  # consumed: the range may be gone or moved
        try:
            moved = await self.task.sysif.syscall(
                SYS.mremap, address, self.length, new_length, bits, target
            )
        except BaseException:
            self._address = address
            raise
        new = MemoryMapping(
            self.task,
            moved,
            new_length,
            self.prot,
            _key=_MMAP_KEY,
            _pointable=self._pointable and (new_length <= self.length or self._anonymous),
            _anonymous=self._anonymous,
        )
        new._pkey = self._pkey
        return new

    async def pkey_mprotect(self, prot: PROT, pkey: ProtectionKey | None) -> None:
        """pkey_mprotect(2): `mprotect`, and give the pages protection key
        `pkey` (None: the default key, -1 in C, as plain mprotect does).

        The key's access rights may forbid touching the pages, so a key is
        refused (ValueError) while a pointer into the mapping lives; the
        mapping holds the key until it gets another (a key must not be
        freed while pages carry it)."""
        address = self._live()
        value = _flag_arg("prot", PROT, prot)
        number = -1
        if pkey is not None:
            if not isinstance(pkey, ProtectionKey):
                raise TypeError(f"pkey must be a ProtectionKey or None, not {type(pkey).__name__}")
            if pkey.task.space is not self.task.space:
                raise ValueError("the protection key belongs to another address space")
            number = pkey._live()
            if self._pointers_live():
                raise ValueError("pointers into this mapping are alive: it cannot take a key")
        if value & _READ_WRITE != _READ_WRITE and self._pointers_live():
            raise ValueError("pointers into this mapping are alive: it must stay READ|WRITE")
        await self.task.sysif.syscall(SYS.pkey_mprotect, address, self.length, value, number)
        self.prot = PROT(value)
        self._pkey = pkey

    def pointer(self) -> ReadablePointer[bytes]:
        """A pointer to the whole mapping's memory, which is always
        initialized (zeroes, or the file's contents).

        There is one such pointer at a time (split it for parts; a new one
        can be had once they are all gone), so that no two pointers alias.
        The mapping must be readable and writable.  It must also be memory
        whose every byte can be touched without a fault: anonymous memory
        (but not MAP.HUGETLB with MAP.NORESERVE, which faults when the huge
        pages run out), or a memfd sealed with SEAL.SHRINK that was at
        least offset + length bytes long at mmap time.  A page of any other
        file mapping past the file's end (after anyone truncates it) raises
        SIGBUS when touched, which would kill the Python process in the
        middle of a copy: for those, ValueError, and `unsafe_pointer`."""
        if self._pkey is not None:
            self._live()
            raise ValueError(
                "this mapping's pages carry a protection key, whose rights may forbid "
                "touching them: use unsafe_pointer()"
            )
        if not self._pointable:
            self._live()
            raise ValueError(
                "this mapping's pages may fault (a file that can shrink, or huge pages "
                "not reserved): seal a memfd with SEAL.SHRINK before mmap, or use "
                "unsafe_pointer()"
            )
        return self.unsafe_pointer()

    def unsafe_pointer(self) -> ReadablePointer[bytes]:
        """`pointer()`, for a mapping whose pages might fault.

        Unsafe: the caller must make sure that every page of the mapping
        stays backed while the pointer (or a part of it) lives: the file
        is not truncated below the mapping's end by any process, and no
        I/O error or exhausted huge page pool can fail a fault.  A fault
        during a copy in the local address space raises SIGBUS in the
        Python process, which kills it."""
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


class ProtectionKey:
    """A memory protection key of one address space (pkey_alloc(2)),
    freed by `pkey_free()` or when garbage collected (and no mapping holds
    it any more: `MemoryMapping.pkey_mprotect` keeps its key alive)."""

    __slots__ = ("__weakref__", "_number", "task")

    def __init__(self, task: Task, number: int) -> None:
        self.task = task
        self._number: int | None = number

    def _live(self) -> int:
        number = self._number
        if number is None:
            raise UseAfterConsumeError("ProtectionKey was already freed")
        return number

    @property
    def number(self) -> int:
        """The key's number; raises once freed."""
        return self._live()

    def __repr__(self) -> str:
        number = self._number
        return f"ProtectionKey({'freed' if number is None else number})"

    def __del__(self) -> None:
        number = getattr(self, "_number", None)
        if number is not None:
            self._number = None
            self.task.sysif.syscall_later(_SYS_pkey_free, number)

    async def pkey_free(self) -> None:
        """pkey_free(2): free the key now; the handle can no longer be used.
        Pages that still carry it keep its number (give them another
        key, or None, with pkey_mprotect first)."""
        number = self._live()
        self._number = None
        try:
            await self.task.sysif.syscall(_SYS_pkey_free, number)
        except BaseException:
            self._number = number
            raise


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

        `addr` is a hint, or with MAP.FIXED_NOREPLACE the exact place (if
        anything is mapped there, OSError EEXIST).  MAP.FIXED is refused
        (ValueError): it replaces whatever was mapped there, which may be
        memory the Python interpreter or the library's pointers use; it is
        `unsafe_mmap`'s."""
        return await self._mmap(length, prot, flags, fd, offset, addr, allow_fixed=False)

    async def unsafe_mmap(
        self,
        length: int,
        prot: PROT,
        flags: MAP,
        fd: FileDescriptor | None = None,
        offset: int = 0,
        addr: int = 0,
    ) -> MemoryMapping:
        """mmap(2), allowing MAP.FIXED: as `mmap`, but with MAP.FIXED the
        mapping goes at exactly `addr`, replacing anything mapped there.

        Unsafe: the caller must make sure that nothing in the range
        `addr` .. `addr + length` is in use: not the Python interpreter's
        memory, nor the library's allocator arenas or any pointer's, nor
        part of another live `MemoryMapping` (whose finalizer would later
        unmap this one under its pointers).  A range the caller unmapped
        itself, with nothing mapped there since, is safe; replacing
        memory in use corrupts it or crashes the process."""
        return await self._mmap(length, prot, flags, fd, offset, addr, allow_fixed=True)

    async def _mmap(
        self,
        length: int,
        prot: PROT,
        flags: MAP,
        fd: FileDescriptor | None,
        offset: int,
        addr: int,
        allow_fixed: bool,
    ) -> MemoryMapping:
        length = int_arg("length", length)
        if length < 0:
            raise ValueError(f"negative length {length}")
        protection = int_arg("prot", prot)
        flag_bits = int_arg("flags", flags)
        if flag_bits & _FIXED and not allow_fixed:
            raise ValueError(
                "MAP.FIXED replaces what is mapped at addr, which may be memory in use: "
                "use MAP.FIXED_NOREPLACE, or unsafe_mmap"
            )
        offset = int_arg("offset", offset)
        hint = int_arg("addr", addr)
        number = _fd_number(self, fd)
        if flag_bits & _ANONYMOUS:
            pointable = not (flag_bits & _HUGETLB and flag_bits & _NORESERVE)
        else:
            # Checked before the mapping exists, so that nothing can leave it unowned.
            pointable = await self._cannot_shrink_below(number, offset + length)
        address = await self.sysif.syscall(
            _SYS_mmap, hint, length, protection, flag_bits, number, offset
        )
        return MemoryMapping(
            self,  # type: ignore[arg-type]
            address,
            length,
            PROT(protection),
            _key=_MMAP_KEY,
            _pointable=pointable,
            # Shared anonymous memory is a file of the first length: grown, its
            # new pages fault.
            _anonymous=bool(flag_bits & _ANONYMOUS) and flag_bits & 0x3 == MAP.PRIVATE,
        )

    async def mlockall(self, flags: MCL) -> None:
        """mlockall(2): lock every page of the address space in RAM
        (MCL.CURRENT), every page mapped from now on (MCL.FUTURE), or
        both; with MCL.ONFAULT only once each page is faulted in.  The
        address space is shared by all threads cloned with CLONE_VM."""
        await self.sysif.syscall(SYS.mlockall, flags)

    async def munlockall(self) -> None:
        """munlockall(2): unlock every page of the address space, and undo
        MCL.FUTURE."""
        await self.sysif.syscall(SYS.munlockall)

    async def pkey_alloc(self, access_rights: PKEY = PKEY.NONE) -> ProtectionKey:
        """pkey_alloc(2): a new protection key, with `access_rights` for the
        calling thread.  Needs CPU protection keys (x86 "pku"): else EINVAL
        (and, on some kernels, ENOSPC after the first such failure), as
        when every key is taken."""
        number = await self.sysif.syscall(SYS.pkey_alloc, 0, access_rights)
        return ProtectionKey(self, number)  # type: ignore[arg-type]

    async def _cannot_shrink_below(self, fd: int, size: int) -> bool:
        """Whether file `fd` is sealed against shrinking (a memfd with
        SEAL.SHRINK) and is at least `size` bytes long."""
        try:
            seals = await self.sysif.syscall(_SYS_fcntl, fd, F.GET_SEALS)
        except OSError:
            return False  # not a file that takes seals
        if not seals & SEAL.SHRINK:
            return False
        stat = await self.space.stage(bytes(Stat.sizeof()))
        await self.sysif.syscall(_SYS_fstat, fd, stat.address)
        data = await self.space.transport.read(stat.address + _ST_SIZE_OFFSET, 8)
        return int.from_bytes(data, "little", signed=True) >= size


class MmanFileDescriptor(BaseFileDescriptor):
    """The <sys/mman.h> calls that take a pidfd: they act on the memory
    of the process the pidfd names."""

    __slots__ = ()

    async def process_madvise(self, iov: WrittenPointer[RemoteIovecList], advice: MADV) -> int:
        """process_madvise(2): give `advice` for the memory of the process
        this pidfd names, in the ranges of `iov` (a `RemoteIovecList` of
        pointers of that process's address space); returns how many bytes
        were advised.

        For another process the kernel takes only advice that leaves the
        contents alone (MADV.COLD, PAGEOUT, WILLNEED; EINVAL for the
        rest); for the caller itself, newer kernels take any.  Since the
        ranges are live pointers, advice that empties or poisons pages
        (DONTNEED, DONTNEED_LOCKED, FREE, REMOVE, HWPOISON) is refused
        (ValueError): it would change memory a pointer holds.  Each range
        must start on a page (EINVAL): pointers from a mapping's
        `pointer()`, split at page boundaries.  Needs PTRACE_MODE_READ and
        CAP_SYS_NICE over the target (EPERM)."""
        number = int_arg("advice", advice)
        known = MADV(number)
        if known in _DESTRUCTIVE or known in _POISON:
            raise ValueError(f"{known!r} would change the memory of the pointers in iov")
        address, count = remote_iov_address(iov, self.task)
        return await self.task.sysif.syscall(
            SYS.process_madvise, self.number, address, count, number, 0
        )

    async def process_mrelease(self) -> None:
        """process_mrelease(2): free the memory of the process this pidfd
        names, which must be dying (killed by SIGKILL, not yet done
        exiting): EINVAL for a live process, ESRCH once it has exited."""
        await self.task.sysif.syscall(SYS.process_mrelease, self.number, 0)
# ---- memfd_create(2) (moved here from rsyscall.linux.memfd) ----
#
# The file is sized with `fd.ftruncate(n)`, mapped with `task.mmap(...,
# fd=fd)`, and sealed with `fd.fcntl(F.ADD_SEALS, SEAL...)` if it was made
# with `MFD.ALLOW_SEALING`.  Seal it with SEAL.SHRINK before mapping it to
# get a `mapping.pointer()`: only then can no page of the mapping fault.


class MFD(IntFlag):
    """memfd_create(2) flags (C's MFD_*, defined by <linux/memfd.h>).  (The
    MFD_HUGE_* page sizes are encoded in the high bits with MFD_HUGETLB;
    they are not named here.)"""

    NONE = 0
    CLOEXEC = 0x0001
    ALLOW_SEALING = 0x0002
    HUGETLB = 0x0004


_SYS_memfd_create = int(SYS.memfd_create)
_MFD_CLOEXEC = int(MFD.CLOEXEC)


class MemfdTask(BaseTask):
    __slots__ = ()

    async def memfd_create(
        self, name: WrittenPointer[str], flags: MFD = MFD.NONE
    ) -> FileDescriptor:
        """memfd_create(2): a new anonymous file, shown as "memfd:`name`" in
        /proc/self/fd.  `MFD.CLOEXEC` is always added, as for every fd the
        library makes (see rsyscall.fcntl)."""
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError(f"flags must be MFD, not {type(flags).__name__}")
        address = path_address(self, name)
        number = await self.sysif.syscall(_SYS_memfd_create, address, int(flags) | _MFD_CLOEXEC)
        return self.make_fd(number)


# ---- end of memfd_create ----
