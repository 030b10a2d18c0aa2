"""An allocator over mmap'd arenas, one per address space.

Allocating a pointer must not cost a system call, so memory is mapped in
arenas and carved up here in Python.  An `Allocation` is a byte range in an
arena; it returns its range to the arena when it is garbage collected, and it
can be split into two allocations or merged with an adjacent one, which is
what pointers do when a syscall returns a size.

Frees happen from `__del__`, at any point where the garbage collector runs,
including in the middle of an allocation.  So an arena that is busy queues
frees and applies them when it is done.  Empty arenas are unmapped (one
standard-sized arena is kept, so a loop that allocates and frees does not
map and unmap on every turn).
"""

from __future__ import annotations

import abc
from bisect import bisect_left, insort

from rsyscall._native import _raw

__all__ = ["ARENA_SIZE", "Allocation", "Allocator", "Arena", "Mapper"]

PAGE_SIZE = 4096
ARENA_SIZE = 1 << 20
ALIGNMENT = 16
# Anything bigger than this gets an arena of its own, unmapped when freed.
_LARGE = ARENA_SIZE // 4


def _page_round(size: int) -> int:
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class Mapper(abc.ABC):
    """Maps and unmaps memory in one address space on the allocator's behalf."""

    @abc.abstractmethod
    async def map(self, size: int) -> int:
        """Map `size` bytes of readable, writable anonymous memory; return the address."""

    @abc.abstractmethod
    def unmap(self, address: int, size: int) -> None:
        """Unmap a range: now if that takes no waiting, else as soon as possible."""


class Arena:
    """One mapping, carved into allocations, best fit.

    Free ranges are kept twice: by address (two sorted parallel lists of
    starts and ends, so a freed range coalesces with its neighbours) and by
    size (a sorted list of (length, start), so finding room is a bisection,
    not a walk past every small hole)."""

    __slots__ = (
        "_busy", "_ends", "_pending", "_sizes", "_starts", "address", "allocator", "size", "used",
    )

    def __init__(self, allocator: Allocator, address: int, size: int) -> None:
        self.allocator = allocator
        self.address = address
        self.size = size
        self.used = 0
        self._starts = [address]
        self._ends = [address + size]
        self._sizes = [(size, address)]
        self._busy = False
        self._pending: list[tuple[int, int]] = []

    def allocate(self, size: int) -> int | None:
        """Carve `size` bytes (aligned) out of a free range; None if none fits."""
        if size == 0:
            return self.address  # owns no bytes; any address in the arena does
        self._busy = True
        try:
            sizes = self._sizes
            # The smallest range that is big enough, if its start is aligned
            # well enough; else the smallest that fits whatever its start.
            i = bisect_left(sizes, (size, 0))
            if i == len(sizes):
                return None
            length, start = sizes[i]
            aligned = (start + ALIGNMENT - 1) & ~(ALIGNMENT - 1)
            if aligned + size > start + length:
                i = bisect_left(sizes, (size + ALIGNMENT - 1, 0))
                if i == len(sizes):
                    return None
                length, start = sizes[i]
                aligned = (start + ALIGNMENT - 1) & ~(ALIGNMENT - 1)
            end = start + length
            del sizes[i]
            j = bisect_left(self._starts, start)
            del self._starts[j]
            del self._ends[j]
            # What is left before (alignment) and after stays free.
            if aligned > start:
                self._add(start, aligned)
            if aligned + size < end:
                self._add(aligned + size, end)
            self.used += size
            return aligned
        finally:
            self._busy = False
            if self._pending:
                self._drain()

    def _add(self, start: int, end: int) -> None:
        j = bisect_left(self._starts, start)
        self._starts.insert(j, start)
        self._ends.insert(j, end)
        insort(self._sizes, (end - start, start))

    def _remove(self, j: int) -> tuple[int, int]:
        start = self._starts.pop(j)
        end = self._ends.pop(j)
        sizes = self._sizes
        del sizes[bisect_left(sizes, (end - start, start))]
        return start, end

    def free(self, address: int, size: int) -> None:
        """Return a range; safe to call from a finalizer at any time."""
        if size == 0:
            return
        if self._busy:
            self._pending.append((address, size))
            return
        self._busy = True
        try:
            self._insert(address, size)
        finally:
            self._busy = False
        if self._pending:
            self._drain()
        if self.used == 0:
            self.allocator._arena_empty(self)

    def _drain(self) -> None:
        self._busy = True
        try:
            while self._pending:
                self._insert(*self._pending.pop())
        finally:
            self._busy = False
        if self.used == 0:
            self.allocator._arena_empty(self)

    def _insert(self, address: int, size: int) -> None:
        start, end = address, address + size
        starts = self._starts
        j = bisect_left(starts, start)
        if j > 0 and self._ends[j - 1] == start:
            start, _ = self._remove(j - 1)
            j -= 1
        if j < len(starts) and starts[j] == end:
            _, end = self._remove(j)
        self._add(start, end)
        self.used -= size


# A range of bytes in an arena, freed (arena.free) when garbage collected;
# `split` and `merge` hand the range on to new allocations, and the old one
# then frees nothing.  Made on every pointer split and merge, so it is
# written in C (memory.c in rsyscall._native).
Allocation = _raw.Allocation


class Allocator:
    """Hands out `Allocation`s in one address space."""

    __slots__ = ("_arenas", "mapper")

    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper
        self._arenas: list[Arena] = []

    def try_allocate(self, size: int) -> Allocation | None:
        """Allocate without mapping memory; None if no arena has room."""
        if size < 0:
            raise ValueError(f"negative allocation size {size}")
        for arena in self._arenas:
            address = arena.allocate(size)
            if address is not None:
                return Allocation(arena, address, size)
        return None

    async def allocate(self, size: int) -> Allocation:
        """Allocate `size` bytes, mapping a new arena if needed."""
        allocation = self.try_allocate(size)
        if allocation is not None:
            return allocation
        arena_size = ARENA_SIZE if size <= _LARGE else _page_round(size)
        address = await self.mapper.map(arena_size)
        arena = Arena(self, address, arena_size)
        self._arenas.append(arena)
        result = arena.allocate(size)
        assert result is not None
        return Allocation(arena, result, size)

    def _arena_empty(self, arena: Arena) -> None:
        if arena not in self._arenas:
            return
        if arena.size == ARENA_SIZE and sum(a.size == ARENA_SIZE for a in self._arenas) == 1:
            return  # keep one standard arena mapped
        self._arenas.remove(arena)
        self.mapper.unmap(arena.address, arena.size)

    def mapped_bytes(self) -> int:
        """The memory this allocator has mapped, in bytes."""
        return sum(arena.size for arena in self._arenas)
