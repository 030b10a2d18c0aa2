"""rsyscall.sys.mman beyond mmap: msync, mlock/mlock2/munlock, mlockall,
mincore, mremap, protection keys, process_madvise and process_mrelease,
checked against /proc/<pid>/smaps, /proc/<pid>/maps and the memory."""

from __future__ import annotations

import errno
import os

import pytest

from rsyscall import MemoryMapping, Thread, UseAfterConsumeError, local_thread
from rsyscall.fcntl import SEAL, F
from rsyscall.linux.memfd import MFD
from rsyscall.signal import SIG
from rsyscall.sys.mman import MADV, MAP, MCL, MLOCK, MREMAP, MS, PKEY, PROT, ProtectionKey
from rsyscall.sys.uio import RemoteIovecList

from .util import maps_of, read_memory, thread_pid

pytestmark = pytest.mark.anyio

PAGE = os.sysconf("SC_PAGE_SIZE")
ANON = MAP.PRIVATE | MAP.ANONYMOUS
RW = PROT.READ | PROT.WRITE


def vm_flags(thread: Thread, address: int) -> set[str]:
    """The VmFlags of /proc/<pid>/smaps for the mapping covering `address`."""
    covering = False
    with open(f"/proc/{thread_pid(thread)}/smaps") as smaps:
        for line in smaps:
            first = line.split()[0] if line.split() else ""
            if "-" in first and all(c in "0123456789abcdef-" for c in first):
                start, end = (int(part, 16) for part in first.split("-"))
                covering = start <= address < end
            elif covering and line.startswith("VmFlags:"):
                return set(line.split()[1:])
    raise KeyError(hex(address))


def perms_at(thread: Thread, address: int) -> str | None:
    for start, end, perms in maps_of(thread):
        if start <= address < end:
            return perms
    return None


def has_pku() -> bool:
    with open("/proc/cpuinfo") as cpuinfo:
        return any(line.startswith("flags") and " pku" in line for line in cpuinfo)


async def still_works(thread: Thread) -> None:
    assert await thread.task.getpid() == thread_pid(thread)
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    await mapping.munmap()


async def test_msync_on_a_shared_memfd_mapping(thread: Thread) -> None:
    fd = await thread.task.memfd_create(await thread.ptr("msync"), MFD.ALLOW_SEALING)
    await fd.ftruncate(2 * PAGE)
    await fd.fcntl(F.ADD_SEALS, SEAL.SHRINK)
    mapping = await thread.task.mmap(2 * PAGE, RW, MAP.SHARED, fd)
    ptr = await mapping.pointer().write(b"synced" + bytes(2 * PAGE - 6))
    await mapping.msync(MS.SYNC)
    await mapping.msync(MS.ASYNC | MS.INVALIDATE, PAGE, PAGE)
    valid, _ = await fd.pread(await thread.malloc(bytes, 6), 0)
    assert await valid.read() == b"synced"
    # ASYNC and SYNC together, or an unaligned start: EINVAL.
    with pytest.raises(OSError) as info:
        await mapping.msync(MS.ASYNC | MS.SYNC)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await mapping.msync(MS.SYNC, 1, 10)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        await mapping.msync(MS.SYNC, PAGE, 2 * PAGE)  # past the end
    with pytest.raises(ValueError):
        await mapping.msync(8)  # type: ignore[arg-type]  # no such MS bit
    with pytest.raises(TypeError):
        await mapping.msync(MAP.SHARED)  # type: ignore[arg-type]
    del ptr
    await mapping.munmap()
    with pytest.raises(UseAfterConsumeError):
        await mapping.msync(MS.SYNC)
    await still_works(thread)


async def test_mlock_mlock2_munlock(thread: Thread) -> None:
    # Root has CAP_IPC_LOCK, so RLIMIT_MEMLOCK does not apply.
    mapping = await thread.task.mmap(4 * PAGE, RW, ANON)
    assert "lo" not in vm_flags(thread, mapping.address)
    await mapping.mlock()
    assert "lo" in vm_flags(thread, mapping.address)
    # mlock faults every page in.
    vec = await mapping.mincore(await thread.malloc(bytes, 4))
    assert await vec.read() == b"\x01" * 4
    await mapping.munlock()
    assert "lo" not in vm_flags(thread, mapping.address)
    # mlock2 ONFAULT: locked as they fault in, so nothing is resident yet.
    fresh = await thread.task.mmap(4 * PAGE, RW, ANON)
    await fresh.mlock2(MLOCK.ONFAULT)
    assert {"lo", "lf"} <= vm_flags(thread, fresh.address)
    vec = await fresh.mincore(await thread.malloc(bytes, 4))
    assert await vec.read() == bytes(4)
    await fresh.munlock()
    await fresh.mlock2(MLOCK.NONE, PAGE, PAGE)  # one page: the mapping is split
    assert "lo" in vm_flags(thread, fresh.address + PAGE)
    assert "lo" not in vm_flags(thread, fresh.address)
    await fresh.munlock(PAGE, PAGE)
    assert "lo" not in vm_flags(thread, fresh.address + PAGE)
    with pytest.raises(ValueError):
        await fresh.mlock2(2)  # type: ignore[arg-type]  # no such MLOCK bit
    with pytest.raises(ValueError):
        await fresh.mlock(0, 5 * PAGE)
    await fresh.munmap()
    with pytest.raises(UseAfterConsumeError):
        await fresh.mlock()
    await still_works(thread)


async def test_mlock_over_the_limit_without_cap_ipc_lock(thread: Thread) -> None:
    # In a new user namespace the child has no CAP_IPC_LOCK over our
    # memory, so RLIMIT_MEMLOCK (set to 0 here) forbids locking: EPERM.
    from rsyscall.sched import CLONE
    from rsyscall.sys.resource import RLIMIT, Rlimit

    child = await thread.clone(CLONE.NEWUSER)
    await child.task.setrlimit(RLIMIT.MEMLOCK, await child.ptr(Rlimit(0, 0)))
    mapping = await child.task.mmap(PAGE, RW, ANON)
    with pytest.raises(OSError) as info:
        await mapping.mlock()
    assert info.value.errno == errno.EPERM
    with pytest.raises(OSError) as info:
        await child.task.mlockall(MCL.CURRENT)
    assert info.value.errno == errno.EPERM
    await mapping.munmap()
    await child.exit(0)


async def test_mlockall_and_munlockall(thread: Thread) -> None:
    task = thread.task
    before = await task.mmap(PAGE, RW, ANON)
    await task.mlockall(MCL.FUTURE | MCL.ONFAULT)
    try:
        after = await task.mmap(PAGE, RW, ANON)
        assert {"lo", "lf"} <= vm_flags(thread, after.address)
        assert "lo" not in vm_flags(thread, before.address)  # FUTURE only
        await task.mlockall(MCL.CURRENT | MCL.ONFAULT)
        assert "lo" in vm_flags(thread, before.address)
    finally:
        await task.munlockall()
    assert "lo" not in vm_flags(thread, before.address)
    assert "lo" not in vm_flags(thread, after.address)
    later = await task.mmap(PAGE, RW, ANON)
    assert "lo" not in vm_flags(thread, later.address)
    # ONFAULT needs CURRENT or FUTURE.
    with pytest.raises(OSError) as info:
        await task.mlockall(MCL.ONFAULT)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        await task.mlockall(8)  # type: ignore[arg-type]
    await still_works(thread)


async def test_mincore_pages_touched(thread: Thread) -> None:
    mapping = await thread.task.mmap(4 * PAGE, RW, ANON)
    vec = await mapping.mincore(await thread.malloc(bytes, 4))
    assert await vec.read() == bytes(4)  # nothing touched yet
    # Touch the second and fourth pages only.
    ptr = mapping.pointer()
    first, rest = ptr.split(PAGE)
    second, rest = rest.split(PAGE)
    third, fourth = rest.split(PAGE)
    second = await second.write(b"x")
    fourth = await fourth.write(b"y")
    vec = await mapping.mincore(vec)
    assert [b & 1 for b in await vec.read()] == [0, 1, 0, 1]
    # From an offset, fewer pages.
    part = await mapping.mincore(await thread.malloc(bytes, 2), 2 * PAGE)
    assert [b & 1 for b in await part.read()] == [0, 1]
    # Outside the mapping, or not page-aligned: ValueError, vec untouched.
    big = await thread.malloc(bytes, 5)
    with pytest.raises(ValueError):
        await mapping.mincore(big)
    with pytest.raises(ValueError):
        await mapping.mincore(big.split(1)[0], 100)
    small = await thread.malloc(bytes, 1)
    with pytest.raises(ValueError):
        await mapping.mincore(small, 4 * PAGE)
    assert not small.consumed
    with pytest.raises(TypeError):
        await mapping.mincore(b"x")  # type: ignore[arg-type]
    # A length that is no page multiple counts its last page whole.
    odd = await thread.task.mmap(PAGE + 1, RW, ANON)
    vec2 = await odd.mincore(await thread.malloc(bytes, 2))
    assert (await vec2.read()) == bytes(2)
    del first, second, third, fourth
    await still_works(thread)


async def test_mremap_grows_and_moves(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    ptr = await mapping.pointer().write(b"kept" + bytes(PAGE - 4))
    with pytest.raises(ValueError):  # a live pointer could move under us
        await mapping.mremap(8 * PAGE, MREMAP.MAYMOVE)
    del ptr
    grown = await mapping.mremap(8 * PAGE, MREMAP.MAYMOVE)
    assert isinstance(grown, MemoryMapping) and grown is not mapping
    assert mapping.unmapped and grown.length == 8 * PAGE and grown.prot == RW
    with pytest.raises(UseAfterConsumeError):
        mapping.address  # noqa: B018
    data = await grown.pointer().read()
    assert data[:4] == b"kept" and data[4:] == bytes(8 * PAGE - 4)
    assert read_memory(thread, grown.address, 4) == b"kept"
    assert perms_at(thread, grown.address + 7 * PAGE) == "rw-p"
    # The consumed handle unmaps nothing when it goes.
    del mapping
    assert read_memory(thread, grown.address, 4) == b"kept"
    # Shrinking in place keeps the address.
    address = grown.address
    shrunk = await grown.mremap(PAGE)
    assert shrunk.address == address and shrunk.length == PAGE
    assert perms_at(thread, address) == "rw-p"
    await shrunk.munmap()
    assert perms_at(thread, address) is None
    await still_works(thread)


async def test_mremap_grown_shared_memory_may_fault(thread: Thread) -> None:
    # Shared anonymous memory is a file as long as the first mapping: the
    # pages a grown mapping adds past it raise SIGBUS, so no pointer().
    mapping = await thread.task.mmap(PAGE, RW, MAP.SHARED | MAP.ANONYMOUS)
    same = await mapping.mremap(PAGE, MREMAP.MAYMOVE)
    assert (await same.pointer().read()) == bytes(PAGE)
    grown = await same.mremap(2 * PAGE, MREMAP.MAYMOVE)
    with pytest.raises(ValueError):
        grown.pointer()
    smaller = await grown.mremap(PAGE, MREMAP.MAYMOVE)
    with pytest.raises(ValueError):  # still: nothing tracks how long the file is
        smaller.pointer()
    with pytest.raises(TypeError):
        await smaller.mremap(PAGE, MAP.SHARED)  # type: ignore[arg-type]
    await smaller.munmap()


async def test_mremap_without_room_fails_and_keeps_the_handle(thread: Thread) -> None:
    mapping = await thread.task.mmap(2 * PAGE, RW, ANON)
    one = await mapping.mremap(PAGE)  # free the second page
    blocker = await thread.task.mmap(PAGE, RW, ANON | MAP.FIXED_NOREPLACE, addr=one.address + PAGE)
    assert blocker.address == one.address + PAGE
    with pytest.raises(OSError) as info:
        await one.mremap(2 * PAGE)  # may not move, cannot grow
    assert info.value.errno == errno.ENOMEM
    assert not one.unmapped and one.length == PAGE
    with pytest.raises(ValueError):
        await one.mremap(2 * PAGE, MREMAP.MAYMOVE | MREMAP.FIXED)
    with pytest.raises(ValueError):
        await one.mremap(-1)
    with pytest.raises(ValueError):
        await one.mremap(PAGE, 16)  # type: ignore[arg-type]
    # DONTUNMAP with a different size: EINVAL, nothing changes.
    with pytest.raises(OSError) as info:
        await one.mremap(2 * PAGE, MREMAP.MAYMOVE | MREMAP.DONTUNMAP)
    assert info.value.errno == errno.EINVAL
    assert not one.unmapped
    await one.munmap()
    await blocker.munmap()
    await still_works(thread)


async def test_mremap_dontunmap_leaves_the_old_mapping_empty(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    await (await mapping.pointer().write(b"moved" + bytes(PAGE - 5))).read()
    moved = await mapping.mremap(PAGE, MREMAP.MAYMOVE | MREMAP.DONTUNMAP)
    assert moved.address != mapping.address
    assert not mapping.unmapped  # still this handle's
    assert (await moved.pointer().read())[:5] == b"moved"
    assert await mapping.pointer().read() == bytes(PAGE)  # its pages went
    await mapping.munmap()
    await moved.munmap()
    await still_works(thread)


async def test_unsafe_mremap_fixed(thread: Thread) -> None:
    # A range we unmapped ourselves, with nothing mapped there since: safe.
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    spot = await thread.task.mmap(2 * PAGE, RW, ANON)
    target = spot.address
    await spot.munmap()
    await mapping.pointer().write(b"fixed" + bytes(PAGE - 5))
    moved = await mapping.unsafe_mremap(2 * PAGE, MREMAP.MAYMOVE | MREMAP.FIXED, target)
    assert moved.address == target and mapping.unmapped
    assert (await moved.pointer().read())[:5] == b"fixed"
    with pytest.raises(OSError) as info:  # FIXED needs MAYMOVE
        await moved.unsafe_mremap(PAGE, MREMAP.FIXED, target + 4 * PAGE)
    assert info.value.errno == errno.EINVAL
    await moved.munmap()
    await still_works(thread)


async def test_pkey_mprotect_and_pkey_alloc(thread: Thread) -> None:
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    # With the default key (None, -1 in C) it is mprotect.
    await mapping.pkey_mprotect(PROT.READ, None)
    assert perms_at(thread, mapping.address) == "r--p" and mapping.prot == PROT.READ
    await mapping.pkey_mprotect(RW, None)
    assert perms_at(thread, mapping.address) == "rw-p"
    with pytest.raises(TypeError):
        await mapping.pkey_mprotect(RW, 1)  # type: ignore[arg-type]
    if not has_pku():
        # No protection keys in this CPU (or VM): EINVAL, as the man page
        # says; the kernel answers ENOSPC instead once a failed call has
        # left its one pseudo-key taken in the address space (seen on 6.18).
        for rights in (PKEY.NONE, PKEY.DISABLE_WRITE):
            with pytest.raises(OSError) as info:
                await thread.task.pkey_alloc(rights)
            assert info.value.errno in (errno.EINVAL, errno.ENOSPC)
    else:
        key = await thread.task.pkey_alloc(PKEY.NONE)
        assert isinstance(key, ProtectionKey) and key.number > 0
        await mapping.pkey_mprotect(RW, key)
        with pytest.raises(ValueError):  # its rights could forbid touching the pages
            mapping.pointer()
        await mapping.pkey_mprotect(RW, None)
        await key.pkey_free()
        with pytest.raises(UseAfterConsumeError):
            await mapping.pkey_mprotect(RW, key)
    with pytest.raises(ValueError):
        await thread.task.pkey_alloc(4)  # type: ignore[arg-type]
    await mapping.munmap()
    await still_works(thread)


async def test_process_madvise_own_memory(thread: Thread) -> None:
    # Root: PTRACE_MODE_READ and CAP_SYS_NICE over itself.
    pidfd = await thread.task.process.pidfd_open()
    mapping = await thread.task.mmap(4 * PAGE, RW, ANON)
    ptr = await mapping.pointer().write(b"z" * 4 * PAGE)
    first, second = ptr.split(PAGE)
    iov = await thread.ptr(RemoteIovecList([first, second]))
    assert await pidfd.process_madvise(iov, MADV.COLD) == 4 * PAGE
    assert await pidfd.process_madvise(iov, MADV.WILLNEED) == 4 * PAGE
    # The contents stay.
    assert await first.read() == b"z" * PAGE
    # Advice that empties the pointers' pages is refused.
    for advice in (MADV.DONTNEED, MADV.FREE, MADV.HWPOISON):
        with pytest.raises(ValueError):
            await pidfd.process_madvise(iov, advice)
    assert await first.read() == b"z" * PAGE
    # Not a pidfd: EBADF.
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.process_madvise(iov, MADV.COLD)
    assert info.value.errno == errno.EBADF
    with pytest.raises(TypeError):
        await pidfd.process_madvise(await thread.ptr(b"x"), MADV.COLD)  # type: ignore[arg-type]
    # A freed buffer in the list: refused before the call.
    first.free()
    with pytest.raises(UseAfterConsumeError):
        await pidfd.process_madvise(iov, MADV.COLD)
    await still_works(thread)


async def test_process_madvise_other_address_space(thread: Thread) -> None:
    # From the local thread, of `thread`'s memory: the array is ours, the
    # buffers are `thread`'s.
    task = local_thread.task
    pidfd = await task.make_process(thread_pid(thread)).pidfd_open()
    # madvise ranges start on a page: a mapping's memory.
    mapping = await thread.task.mmap(PAGE, RW, ANON)
    remote = await mapping.pointer().write(b"r" * PAGE)
    iov = await local_thread.ptr(RemoteIovecList([remote]))
    assert await pidfd.process_madvise(iov, MADV.COLD) == PAGE
    if thread.task.space is not local_thread.task.space:
        # Another process: only advice that keeps contents (EINVAL).
        with pytest.raises(OSError) as info:
            await pidfd.process_madvise(iov, MADV.DONTFORK)
        assert info.value.errno == errno.EINVAL
    assert await remote.read() == b"r" * PAGE
    await still_works(thread)


async def test_process_mrelease(thread: Thread) -> None:
    from rsyscall.sys.wait import W

    child = await thread.clone()
    pidfd = await child.process.process.pidfd_open()
    # A live process: EINVAL (only a dying one's memory may be released).
    with pytest.raises(OSError) as info:
        await pidfd.process_mrelease()
    assert info.value.errno == errno.EINVAL
    await child.process.kill()
    await child.process.waitpid(W.EXITED)
    # Gone: ESRCH.
    with pytest.raises(OSError) as info:
        await pidfd.process_mrelease()
    assert info.value.errno == errno.ESRCH
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.process_mrelease()
    assert info.value.errno == errno.EBADF
    await still_works(thread)


async def test_process_mrelease_of_a_killed_program(thread: Thread) -> None:
    # A program with memory of its own (a cloned thread shares ours, which
    # no kill frees), killed: its memory is released, or it is gone first.
    from rsyscall.sys.wait import W

    sleep = (await thread.environ.which("sleep")).args("100")
    child = await thread.clone()
    process = await child.exec(sleep)
    pidfd = await process.process.pidfd_open()
    with pytest.raises(OSError) as info:  # alive: EINVAL
        await pidfd.process_mrelease()
    assert info.value.errno == errno.EINVAL
    await pidfd.pidfd_send_signal(SIG.KILL)
    try:
        await pidfd.process_mrelease()
    except OSError as error:
        assert error.errno == errno.ESRCH  # it finished exiting first
    state = await process.waitpid(W.EXITED)
    assert state.killed_with() == SIG.KILL


async def test_local_mlockall_future_leaves_no_trace() -> None:
    # The local thread's address space is the interpreter's: after
    # munlockall a new mapping is not locked.
    await local_thread.task.mlockall(MCL.FUTURE | MCL.ONFAULT)
    await local_thread.task.munlockall()
    mapping = await local_thread.task.mmap(PAGE, RW, ANON)
    assert "lo" not in vm_flags(local_thread, mapping.address)
