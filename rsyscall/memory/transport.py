"""Moving bytes into and out of an address space.

In our own address space (the local thread, and every child cloned with
CLONE_VM) this is a plain memory copy.  A separate address space will get a
transport that asks the target process to read() or write() the bytes over a
data socket; callers see no difference.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from rsyscall._native import _raw
from rsyscall.memory.allocator import Allocation, Allocator, Mapper
from rsyscall.near.sysnum import SYS

__all__ = [
    "LOCAL_FUNCTIONS", "AddressSpace", "LocalMapper", "LocalMemoryTransport", "MemoryTransport",
    "ServerFunctions",
]


class MemoryTransport(abc.ABC):
    """Copies bytes to and from memory in one address space."""

    __slots__ = ()

    @abc.abstractmethod
    def read(self, address: int, size: int) -> Awaitable[bytes]:
        """The `size` bytes at `address`."""

    @abc.abstractmethod
    def write(self, address: int, data: bytes) -> Awaitable[None]:
        """Store `data` at `address`."""


class LocalMemoryTransport(MemoryTransport):
    """Our own address space: a memcpy each way."""

    __slots__ = ()

    # Awaitables that are already complete, not coroutines: a pointer read
    # costs one C call (the C functions themselves, with no method around).
    if TYPE_CHECKING:

        def read(self, address: int, size: int) -> Awaitable[bytes]: ...
        def write(self, address: int, data: bytes) -> Awaitable[None]: ...

    else:
        read = staticmethod(_raw.ready_read_memory)
        write = staticmethod(_raw.ready_write_memory)


# From <sys/mman.h>; rsyscall.sys.mman has them as enums, but the memory layer
# sits below the header modules.
_PROT_READ_WRITE = 0x1 | 0x2
_MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20
_MADV_HUGEPAGE = 14
_HUGE_PAGE = 2 << 20


class LocalMapper(Mapper):
    """Maps arenas in our own address space with direct syscalls."""

    __slots__ = ()

    async def map(self, size: int) -> int:
        address = _raw.syscall(SYS.mmap, 0, size, _PROT_READ_WRITE, _MAP_PRIVATE_ANONYMOUS, -1, 0)
        if size >= _HUGE_PAGE:
            # A big buffer is usually filled at once (a bulk read): with
            # transparent huge pages that takes one fault per 2 MiB, not
            # one per 4 KiB.  Only advice: where THP is off it does nothing.
            try:
                _raw.syscall(SYS.madvise, address, size, _MADV_HUGEPAGE)
            except OSError:
                pass
        return address

    def unmap(self, address: int, size: int) -> None:
        # Called from finalizers, where an error has nobody to go to; munmap
        # of a range we mapped cannot fail anyway.
        try:
            _raw.syscall(SYS.munmap, address, size)
        except OSError:
            pass


class ServerFunctions:
    """Where the C core's functions are in one address space: what a child
    cloned there starts in (rsys.h).  Our own process has them where the
    extension was loaded; a stub reports its own."""

    __slots__ = ("child_main", "futex_waiter")

    def __init__(self, child_main: int, futex_waiter: int) -> None:
        self.child_main = child_main
        self.futex_waiter = futex_waiter


LOCAL_FUNCTIONS = ServerFunctions(_raw.CHILD_MAIN_FUNCTION, _raw.FUTEX_WAITER_FUNCTION)


class AddressSpace:
    """One address space: its allocator, the way to reach its bytes, and
    where the server's functions are in it.

    Tasks that share memory (a child cloned with CLONE_VM and its parent)
    share one AddressSpace, and pointers from one are valid in the other.
    `local` says whether it is the Python process's own, whose bytes we
    touch directly; otherwise `interrupts` is how its servers' requests
    are stopped (rsyscall.tasks.clone.HelperInterrupter)."""

    __slots__ = (
        "__weakref__", "allocator", "functions", "interrupts", "local", "name", "transport",
    )

    def __init__(
        self,
        name: str,
        allocator: Allocator,
        transport: MemoryTransport,
        functions: ServerFunctions = LOCAL_FUNCTIONS,
        local: bool = False,
    ) -> None:
        self.name = name
        self.allocator = allocator
        self.transport = transport
        self.functions = functions
        self.local = local
        # For a space we cannot touch: our end of the control socket of the
        # interrupt helper that serves every server in it (a stub's).
        self.interrupts: object | None = None

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
    return AddressSpace("local", Allocator(LocalMapper()), LocalMemoryTransport(), local=True)
