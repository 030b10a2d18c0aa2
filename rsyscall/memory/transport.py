"""Moving bytes into and out of an address space.

In our own address space (the local thread, and every child cloned with
CLONE_VM) this is a plain memory copy.  A separate address space will get a
transport that asks the target process to read() or write() the bytes over a
data socket; callers see no difference.
"""

from __future__ import annotations

import abc

from rsyscall._native import _raw
from rsyscall.memory.allocator import Allocation, Allocator, Mapper
from rsyscall.near.sysnum import SYS

__all__ = ["AddressSpace", "LocalMapper", "LocalMemoryTransport", "MemoryTransport"]


class MemoryTransport(abc.ABC):
    """Copies bytes to and from memory in one address space."""

    __slots__ = ()

    @abc.abstractmethod
    async def read(self, address: int, size: int) -> bytes:
        """The `size` bytes at `address`."""

    @abc.abstractmethod
    async def write(self, address: int, data: bytes) -> None:
        """Store `data` at `address`."""


class LocalMemoryTransport(MemoryTransport):
    """Our own address space: a memcpy each way."""

    __slots__ = ()

    async def read(self, address: int, size: int) -> bytes:
        return _raw.read_memory(address, size)

    async def write(self, address: int, data: bytes) -> None:
        _raw.write_memory(address, data)


# From <sys/mman.h>; rsyscall.sys.mman has them as enums, but the memory layer
# sits below the header modules.
_PROT_READ_WRITE = 0x1 | 0x2
_MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20


class LocalMapper(Mapper):
    """Maps arenas in our own address space with direct syscalls."""

    __slots__ = ()

    async def map(self, size: int) -> int:
        return _raw.syscall(SYS.mmap, 0, size, _PROT_READ_WRITE, _MAP_PRIVATE_ANONYMOUS, -1, 0)

    def unmap(self, address: int, size: int) -> None:
        # Called from finalizers, where an error has nobody to go to; munmap
        # of a range we mapped cannot fail anyway.
        try:
            _raw.syscall(SYS.munmap, address, size)
        except OSError:
            pass


class AddressSpace:
    """One address space: its allocator and the way to reach its bytes.

    Tasks that share memory (a child cloned with CLONE_VM and its parent)
    share one AddressSpace, and pointers from one are valid in the other."""

    __slots__ = ("__weakref__", "allocator", "name", "transport")

    def __init__(self, name: str, allocator: Allocator, transport: MemoryTransport) -> None:
        self.name = name
        self.allocator = allocator
        self.transport = transport

    def __repr__(self) -> str:
        return f"AddressSpace({self.name!r})"

    async def stage(self, data: bytes) -> Allocation:
        """Scratch memory holding `data`, for a syscall argument the caller
        never sees (the socklen_t behind a sockaddr pointer, say)."""
        alloc = self.allocator.try_allocate(len(data))
        if alloc is None:
            alloc = await self.allocator.allocate(len(data))
        await self.transport.write(alloc.address, data)
        return alloc


def local_address_space() -> AddressSpace:
    """The address space of the Python process."""
    return AddressSpace("local", Allocator(LocalMapper()), LocalMemoryTransport())
