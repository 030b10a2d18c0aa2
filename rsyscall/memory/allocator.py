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
from bisect import bisect_left

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
    """One mapping, carved into allocations with a first-fit free list.

    The free list is two sorted parallel lists of range starts and ends;
    adjacent free ranges are always coalesced."""

    __slots__ = ("_busy", "_ends", "_pending", "_starts", "address", "allocator", "size", "used")

    def __init__(self, allocator: Allocator, address: int, size: int) -> None:
        self.allocator = allocator
        self.address = address
        self.size = size
        self.used = 0
        self._starts = [address]
        self._ends = [address + size]
        self._busy = False
        self._pending: list[tuple[int, int]] = []

    def allocate(self, size: int) -> int | None:
        """Carve `size` bytes (aligned) out of a free range; None if none fits."""
        self._busy = True
        try:
            starts, ends = self._starts, self._ends
            for i in range(len(starts)):
                start = starts[i]
                aligned = (start + ALIGNMENT - 1) & ~(ALIGNMENT - 1)
                end = aligned + size
                if end > ends[i]:
                    continue
                if size == 0:
                    return aligned
                if aligned == start:
                    if end == ends[i]:
                        del starts[i]
                        del ends[i]
                    else:
                        starts[i] = end
                else:
                    # Keep the unaligned head free; the tail, if any, too.
                    if end == ends[i]:
                        ends[i] = aligned
                    else:
                        starts.insert(i + 1, end)
                        ends.insert(i + 1, ends[i])
                        ends[i] = aligned
                self.used += size
                return aligned
            return None
        finally:
            self._busy = False
            if self._pending:
                self._drain()

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
        starts, ends = self._starts, self._ends
        end = address + size
        i = bisect_left(starts, address)
        merge_left = i > 0 and ends[i - 1] == address
        merge_right = i < len(starts) and starts[i] == end
        if merge_left and merge_right:
            ends[i - 1] = ends[i]
            del starts[i]
            del ends[i]
        elif merge_left:
            ends[i - 1] = end
        elif merge_right:
            starts[i] = address
        else:
            starts.insert(i, address)
            ends.insert(i, end)
        self.used -= size


class Allocation:
    """A range of bytes in an arena, freed when garbage collected.

    `split` and `merge` hand the range on to new allocations; the old one is
    then disarmed and frees nothing."""

    __slots__ = ("address", "arena", "size")

    def __init__(self, arena: Arena, address: int, size: int) -> None:
        self.arena: Arena | None = arena
        self.address = address
        self.size = size

    def __del__(self) -> None:
        arena = self.arena
        if arena is not None:
            self.arena = None
            arena.free(self.address, self.size)

    def _disarm(self) -> Arena:
        arena = self.arena
        if arena is None:
            raise ValueError("allocation already handed on")
        self.arena = None
        return arena

    def split(self, offset: int) -> tuple[Allocation, Allocation]:
        """The first `offset` bytes and the rest, as two allocations."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"split offset {offset} outside 0..{self.size}")
        arena = self._disarm()
        return (
            Allocation(arena, self.address, offset),
            Allocation(arena, self.address + offset, self.size - offset),
        )

    def merge(self, other: Allocation) -> Allocation:
        """One allocation covering this one and the one right after it."""
        if self.arena is None or other.arena is not self.arena:
            raise ValueError("can only merge allocations from the same arena")
        if self.address + self.size != other.address:
            raise ValueError("can only merge a range with the range right after it")
        arena = self._disarm()
        other._disarm()
        return Allocation(arena, self.address, self.size + other.size)

    def __repr__(self) -> str:
        return f"Allocation({self.address:#x}, {self.size})"


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
