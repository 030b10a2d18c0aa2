"""rsyscall.sys.mman: mmap, munmap, mprotect, madvise, and MemoryMapping's
lifetime, checked against /proc/<pid>/maps and the memory itself."""

from __future__ import annotations

import errno
import gc
import os
from pathlib import Path

import pytest

from rsyscall import MemoryMapping, ReadablePointer, Thread, UseAfterConsumeError
from rsyscall.fcntl import SEAL, F, O
from rsyscall.sys.mman import MADV, MAP, MFD, PROT

from .util import maps_of, read_memory, thread_pid, write_memory

pytestmark = pytest.mark.anyio

PAGE = os.sysconf("SC_PAGE_SIZE")
ANON = MAP.PRIVATE | MAP.ANONYMOUS
RW = PROT.READ | PROT.WRITE


def maps_entry(thread: Thread, address: int) -> tuple[int, str] | None:
    """(end, perms) of the mapping of `thread`'s address space that covers
    `address`, if any.  The kernel merges neighbouring mappings that agree,
    so it may start before."""
    for start, end, perms in maps_of(thread):
        if start <= address < end:
            return end, perms
    return None


def is_mapped(thread: Thread, address: int) -> bool:
    """Whether any mapping covers `address`."""
    return maps_entry(thread, address) is not None


async def still_works(thread: Thread) -> None:
    assert await thread.task.getpid() == thread_pid(thread)
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    await mapping.munmap()


async def test_anonymous_mapping(thread: Thread) -> None:
    mapping = await thread.task.mmap(2 * PAGE, RW, ANON)
    assert isinstance(mapping, MemoryMapping)
    assert mapping.address % PAGE == 0
    assert mapping.length == 2 * PAGE
    entry = maps_entry(thread, mapping.address)
    assert entry is not None
    end, perms = entry
    assert end >= mapping.address + 2 * PAGE
    assert perms == "rw-p"
    # Anonymous memory starts zeroed; writes through the pointer land in it.
    ptr = mapping.pointer()
    assert ptr.size() == 2 * PAGE
    assert await ptr.read() == bytes(2 * PAGE)
    written = await ptr.write(b"hello" + bytes(2 * PAGE - 5))
    assert read_memory(thread, mapping.address, 5) == b"hello"
    write_memory(thread, mapping.address + PAGE, b"world")
    assert (await written.read())[PAGE : PAGE + 5] == b"world"
    address = mapping.address
    del ptr, written
    await mapping.munmap()
    assert not is_mapped(thread, address)


async def test_file_mapping_through_memfd(thread: Thread) -> None:
    task = thread.task
    fd = await task.memfd_create(await thread.ptr("mman-test"), MFD.ALLOW_SEALING)
    await fd.ftruncate(PAGE)
    await fd.fcntl(F.ADD_SEALS, SEAL.SHRINK)  # so pointer() can never fault
    await fd.pwrite(await thread.ptr(b"from the file"), 0)
    mapping = await task.mmap(PAGE, RW, MAP.SHARED, fd)
    entry = maps_entry(thread, mapping.address)
    assert entry is not None and entry[1] == "rw-s"
    ptr = mapping.pointer()
    data = await ptr.read()
    assert data.startswith(b"from the file")
    # A write to shared memory is a write to the file.
    ptr = await ptr.write(b"from memory!!")
    valid, _ = await fd.pread(await thread.malloc(bytes, 13), 0)
    assert await valid.read() == b"from memory!!"
    # The pointer can go to syscalls too: write(2) from the mapping.
    pipe = await thread.pipe()
    written, rest = await pipe.write.write(ptr)
    assert rest.size() == 0
    valid, _ = await pipe.read.read(await thread.malloc(bytes, 64))
    assert await valid.read() == b"from memory!!"
    del ptr, written, rest
    await mapping.munmap()


async def test_file_mapping_at_an_offset(thread: Thread) -> None:
    task = thread.task
    fd = await task.memfd_create(await thread.ptr("mman-offset"))
    await fd.ftruncate(2 * PAGE)
    await fd.pwrite(await thread.ptr(b"second page"), PAGE)
    mapping = await task.mmap(PAGE, PROT.READ, MAP.PRIVATE, fd, offset=PAGE)
    assert read_memory(thread, mapping.address, 11) == b"second page"
    entry = maps_entry(thread, mapping.address)
    assert entry is not None and entry[1] == "r--p"


async def test_mprotect_changes_permissions(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    await mapping.mprotect(PROT.READ)
    assert mapping.prot == PROT.READ
    entry = maps_entry(thread, mapping.address)
    assert entry is not None and entry[1] == "r--p"
    await mapping.mprotect(PROT.NONE)
    entry = maps_entry(thread, mapping.address)
    assert entry is not None and entry[1] == "---p"
    # No pointer into memory we could not copy to or from.
    with pytest.raises(ValueError):
        mapping.pointer()
    await mapping.mprotect(RW)
    entry = maps_entry(thread, mapping.address)
    assert entry is not None and entry[1] == "rw-p"
    ptr = mapping.pointer()
    # While a pointer lives the mapping stays readable and writable.
    with pytest.raises(ValueError):
        await mapping.mprotect(PROT.READ)
    await mapping.mprotect(RW | PROT.EXEC)
    entry = maps_entry(thread, mapping.address)
    assert entry is not None and entry[1] == "rwxp"
    del ptr
    await mapping.mprotect(PROT.READ)
    await mapping.munmap()


async def test_munmap_removes_mapping_and_consumes_handle(thread: Thread) -> None:
    mapping = await thread.task.mmap(3 * PAGE, RW, ANON)
    address = mapping.address
    assert is_mapped(thread, address)
    await mapping.munmap()
    assert not is_mapped(thread, address)
    assert not is_mapped(thread, address + 2 * PAGE)
    assert mapping.unmapped
    with pytest.raises(UseAfterConsumeError):
        _ = mapping.address
    with pytest.raises(UseAfterConsumeError):
        await mapping.munmap()
    with pytest.raises(UseAfterConsumeError):
        await mapping.mprotect(PROT.READ)
    with pytest.raises(UseAfterConsumeError):
        await mapping.madvise(MADV.DONTNEED)
    with pytest.raises(UseAfterConsumeError):
        mapping.pointer()
    assert "unmapped" in repr(mapping)
    del mapping
    gc.collect()  # the finalizer of an unmapped handle does nothing
    await still_works(thread)


async def test_garbage_collection_unmaps(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    address = mapping.address
    assert is_mapped(thread, address)
    del mapping
    gc.collect()
    assert not is_mapped(thread, address)


async def test_pointer_keeps_mapping_alive(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    address = mapping.address
    ptr = await mapping.pointer().write(b"kept")
    del mapping
    gc.collect()
    assert is_mapped(thread, address)
    first, second = ptr.split(2)
    assert isinstance(first, ReadablePointer) and isinstance(second, ReadablePointer)
    del ptr
    assert await first.read() == b"ke"
    del first
    gc.collect()
    assert is_mapped(thread, address)  # `second` still holds it
    assert await second.read() == b"pt"
    del second
    gc.collect()
    assert not is_mapped(thread, address)


async def test_one_pointer_at_a_time(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    ptr = mapping.pointer()
    with pytest.raises(ValueError):
        mapping.pointer()
    first, second = ptr.split(100)
    with pytest.raises(ValueError):
        mapping.pointer()
    # munmap refuses while pointers live, and unmaps nothing.
    with pytest.raises(ValueError):
        await mapping.munmap()
    assert is_mapped(thread, mapping.address)
    whole = first + second
    assert whole.size() == PAGE
    del ptr, first, second, whole
    again = mapping.pointer()
    assert again.size() == PAGE
    del again
    await mapping.munmap()


async def test_madvise(thread: Thread) -> None:
    mapping = await thread.task.mmap(2 * PAGE, RW, ANON)
    write_memory(thread, mapping.address, b"x" * 10)
    write_memory(thread, mapping.address + PAGE, b"y" * 10)
    # DONTNEED on private anonymous memory gives back zero pages.
    await mapping.madvise(MADV.DONTNEED, PAGE, PAGE)
    assert read_memory(thread, mapping.address, 10) == b"x" * 10
    assert read_memory(thread, mapping.address + PAGE, 10) == bytes(10)
    await mapping.madvise(MADV.DONTNEED)
    assert read_memory(thread, mapping.address, 10) == bytes(10)
    await mapping.madvise(MADV.SEQUENTIAL)
    await mapping.madvise(MADV.NORMAL, length=PAGE)
    with pytest.raises(ValueError):
        await mapping.madvise(MADV.NORMAL, PAGE, 2 * PAGE)
    with pytest.raises(ValueError):
        await mapping.madvise(MADV.NORMAL, -PAGE)
    with pytest.raises(OSError) as info:
        await mapping.madvise(MADV.NORMAL, 1, 10)  # not page-aligned
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match="unsafe_madvise"):  # unknown advice
        await mapping.madvise(12345)  # type: ignore[arg-type]
    with pytest.raises(OSError) as info:
        await mapping.unsafe_madvise(12345)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await mapping.madvise("normal")  # type: ignore[arg-type]
    await mapping.munmap()
    await still_works(thread)


async def test_fixed_noreplace_refuses_to_clobber(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    with pytest.raises(OSError) as info:
        await thread.task.mmap(PAGE, RW, ANON | MAP.FIXED_NOREPLACE, addr=mapping.address)
    assert info.value.errno == errno.EEXIST
    assert maps_entry(thread, mapping.address) is not None
    await mapping.munmap()
    await still_works(thread)


async def test_bad_arguments(thread: Thread) -> None:
    task = thread.task
    with pytest.raises(TypeError):
        await task.mmap("4096", RW, ANON)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mmap(PAGE, RW, ANON, fd=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.mmap(PAGE, 1.5, ANON)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await task.mmap(-1, RW, ANON)
    with pytest.raises(OSError) as info:
        await task.mmap(0, RW, ANON)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.mmap(PAGE, RW, MAP.PRIVATE)  # a file mapping with no file
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        await task.mmap(PAGE, RW, MAP.ANONYMOUS)  # neither shared nor private
    assert info.value.errno == errno.EINVAL
    mapping = await task.mmap(PAGE, RW, ANON)
    with pytest.raises(TypeError):
        await mapping.mprotect("rw")  # type: ignore[arg-type]
    with pytest.raises(OSError) as info:
        await mapping.mprotect(0x1000)  # type: ignore[arg-type]
    assert info.value.errno == errno.EINVAL
    await mapping.munmap()
    await still_works(thread)


async def test_closed_fd_is_refused(thread: Thread) -> None:
    fd = await thread.task.memfd_create(await thread.ptr("closed"))
    await fd.close()
    with pytest.raises(UseAfterConsumeError):
        await thread.task.mmap(PAGE, RW, MAP.SHARED, fd)
    await still_works(thread)


# ---- what would change memory under live pointers ----


async def test_mmap_fixed_refused(thread: Thread) -> None:
    """Regression: mmap with MAP.FIXED used to replace whatever was mapped
    at the address, here a mapping whose pointer is alive (the same call
    over the interpreter's heap would crash it)."""
    task = thread.task
    mapping = await task.mmap(PAGE, RW, ANON)
    ptr = await mapping.pointer().write(b"still here")
    for flags in (ANON | MAP.FIXED, ANON | MAP.FIXED | MAP.FIXED_NOREPLACE):
        with pytest.raises(ValueError, match="unsafe_mmap"):
            await task.mmap(PAGE, RW, flags, addr=mapping.address)
    assert await ptr.read() == b"still here"
    await still_works(thread)


async def test_unsafe_mmap_fixed_into_space_we_freed(thread: Thread) -> None:
    """The hatch's legitimate use: map at an exact address we own, one we
    just unmapped ourselves."""
    task = thread.task
    first = await task.mmap(2 * PAGE, RW, ANON)
    address = first.address
    await first.munmap()
    second = await task.unsafe_mmap(2 * PAGE, RW, ANON | MAP.FIXED, addr=address)
    assert second.address == address and is_mapped(thread, address)
    ptr = await second.pointer().write(b"fixed")
    assert read_memory(thread, address, 5) == b"fixed"
    del ptr
    await second.munmap()
    assert not is_mapped(thread, address)


async def test_madvise_refused_under_live_pointers(thread: Thread) -> None:
    """Advice that empties pages is refused where a live pointer covers
    them (its contents would silently become zeroes); elsewhere, and for
    harmless advice, it goes through."""
    mapping = await thread.task.mmap(2 * PAGE, RW, ANON)
    first, second = mapping.pointer().split(PAGE)
    first = await first.write(b"x" * 10)
    second = await second.write(b"y" * 10)
    del second  # the second page is no pointer's now
    for advice in (MADV.DONTNEED, MADV.FREE, MADV.REMOVE, MADV.DONTNEED_LOCKED):
        with pytest.raises(ValueError):
            await mapping.madvise(advice)
        with pytest.raises(ValueError):
            await mapping.madvise(advice, 0, 1)  # any byte of a live pointer's page
    assert await first.read() == b"x" * 10
    await mapping.madvise(MADV.DONTNEED, PAGE, PAGE)
    assert read_memory(thread, mapping.address + PAGE, 10) == bytes(10)
    await mapping.madvise(MADV.WILLNEED)  # harmless advice under live pointers
    await mapping.madvise(MADV.COLD)
    # HWPOISON would kill whoever touches the page: never through madvise.
    with pytest.raises(ValueError, match="unsafe_madvise"):
        await mapping.madvise(MADV.HWPOISON, PAGE, PAGE)
    assert await first.read() == b"x" * 10
    del first
    await mapping.madvise(MADV.DONTNEED)  # no pointer is alive now
    assert read_memory(thread, mapping.address, 10) == bytes(10)
    await mapping.munmap()


async def test_unsafe_madvise_legitimate_use(thread: Thread) -> None:
    """The hatch lets a caller who knows the contents may go throw them
    away under a live pointer: the pointer then reads zeroes."""
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    ptr = await mapping.pointer().write(b"scratch")
    await mapping.unsafe_madvise(MADV.DONTNEED)
    assert await ReadablePointer.read(ptr) == bytes(7)
    del ptr
    await mapping.munmap()


@pytest.mark.isolated
async def test_memory_mapping_not_constructible(thread: Thread) -> None:
    """Regression: MemoryMapping(task, address, length, prot) made a handle
    for any address, whose finalizer unmapped it: under a live pointer,
    the next read crashed the interpreter.  Only mmap makes them now."""
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    ptr = await mapping.pointer().write(b"mine")
    with pytest.raises(TypeError):
        MemoryMapping(thread.task, mapping.address, PAGE, RW)
    gc.collect()
    assert is_mapped(thread, mapping.address)
    assert await ptr.read() == b"mine"


async def test_pointer_into_file_that_can_shrink_refused(thread: Thread) -> None:
    """Regression: a pointer into a file mapping read a page past the end
    of the file once it was truncated, and the SIGBUS killed the
    interpreter.  pointer() now needs a file that cannot shrink (a memfd
    sealed with SEAL.SHRINK, long enough); others get unsafe_pointer()."""
    task = thread.task
    fd = await task.memfd_create(await thread.ptr("shrinkable"), MFD.ALLOW_SEALING)
    await fd.ftruncate(PAGE)
    mapping = await task.mmap(PAGE, RW, MAP.SHARED, fd)
    with pytest.raises(ValueError, match="unsafe_pointer"):
        mapping.pointer()
    # Truncating is what would have made a read through the pointer fault.
    await fd.ftruncate(0)
    del mapping
    # Sealed after mmap is too late; sealed but shorter than the mapping too.
    await fd.ftruncate(PAGE)
    mapping = await task.mmap(2 * PAGE, RW, MAP.SHARED, fd)
    await fd.fcntl(F.ADD_SEALS, SEAL.SHRINK)
    with pytest.raises(ValueError):
        mapping.pointer()
    del mapping
    short = await task.mmap(2 * PAGE, RW, MAP.SHARED, fd)
    with pytest.raises(ValueError):
        short.pointer()
    mapping = await task.mmap(PAGE, RW, MAP.SHARED, fd)
    ptr = await mapping.pointer().write(b"safe")
    with pytest.raises(OSError):  # the seal holds
        await fd.ftruncate(0)
    assert await ptr.read() == b"safe"
    await still_works(thread)


async def test_unsafe_pointer_legitimate_use(thread: Thread, tmp_path: Path) -> None:
    """The hatch: a file mapping of a file the caller knows stays long enough."""
    task = thread.task
    path = tmp_path / "f"
    path.write_bytes(b"file contents".ljust(PAGE, b"\0"))
    fd = await task.open(await thread.ptr(path), O.RDWR)
    mapping = await task.mmap(PAGE, RW, MAP.SHARED, fd)
    with pytest.raises(ValueError):
        mapping.pointer()
    ptr = mapping.unsafe_pointer()
    assert (await ptr.read()).startswith(b"file contents")
    await ptr.write(b"FILE")
    assert path.read_bytes().startswith(b"FILE contents")
    # Anonymous memory never needs the hatch.
    anon = await task.mmap(PAGE, RW, ANON)
    assert anon.pointer().size() == PAGE
