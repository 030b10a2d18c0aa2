"""rsyscall.linux.futex: futex waits that really block and wakes that
really wake them, the raw futex call, and the robust list.

The thread of the test wakes; what waits shares its memory.  For the local
thread, that is a Python thread that calls futex_wait through
`local_thread`: the local syscall entry releases the GIL while in the
kernel, so it blocks in the kernel while this one runs.  For any other
thread, it is a clone of that thread (which shares its address space),
whose futex_wait runs in a task of ours.  /proc/.../syscall tells when a
waiter is blocked in futex(2) on our word."""

from __future__ import annotations

import errno
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import ChildThread, Thread, UseAfterConsumeError, local_thread
from rsyscall._native import _raw
from rsyscall.handle import Pointer, Process, ReadablePointer
from rsyscall.linux.futex import (
    FUTEX,
    FUTEX_BITSET_MATCH_ANY,
    FUTEX_CMD_MASK,
    FUTEX_OP,
    FUTEX_OP_CMP,
    FUTEX_OWNER_DIED,
    FUTEX_WAITERS,
    RobustListHead,
    RobustListLocation,
    futex_op,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Int32, UInt32
from rsyscall.time import Timespec

from .util import thread_pid

pytestmark = pytest.mark.anyio

INT_MAX = 2**31 - 1


class Waiter(threading.Thread):
    """A thread that runs one coroutine function in its own event loop and
    keeps its result or exception."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        super().__init__(daemon=True)
        self.func = func
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        # Futex words to wake it from, if a test fails to.
        self.addresses: list[int] = []

    def run(self) -> None:
        try:
            self.result = anyio.run(self.func, *self.args)
        except BaseException as error:
            self.error = error

    def waiting_on(self, address: int) -> bool:
        """Whether this thread is blocked in futex(2) on `address` now."""
        assert self.native_id is not None
        return in_futex_on(f"/proc/self/task/{self.native_id}/syscall", address)

    async def finish(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) for it to end."""
        self.join(timeout)


def in_futex_on(syscall_file: str, address: int) -> bool:
    with open(syscall_file) as info:
        fields = info.read().split()
    return fields[0] == str(int(SYS.futex)) and int(fields[1], 16) == address


class CloneWaiter:
    """A clone of the test's thread, sharing its memory, that makes one
    syscall of its task in a task of ours, and keeps its result or error."""

    def __init__(self, clone: ChildThread, method: str, *args: Any) -> None:
        self.clone = clone
        self.call = getattr(clone.task, method)
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = anyio.Event()

    async def run(self) -> None:
        try:
            self.result = await self.call(*self.args)
        except Exception as error:
            self.error = error
        finally:
            self.done.set()

    def is_alive(self) -> bool:
        return not self.done.is_set()

    def waiting_on(self, address: int) -> bool:
        return in_futex_on(f"/proc/{self.clone.process.pid}/syscall", address)

    async def finish(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            await self.done.wait()


class AnyWaiter(Protocol):
    result: Any
    error: BaseException | None

    def is_alive(self) -> bool: ...
    def waiting_on(self, address: int) -> bool: ...
    async def finish(self, timeout: float) -> None: ...


async def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await anyio.sleep(0.005)


@pytest.fixture
async def waiters() -> AsyncIterator[list[AnyWaiter]]:
    """Waiters a test starts: threads, woken at the end if it failed to;
    clones, exited (their tasks end with the test's task group)."""
    started: list[AnyWaiter] = []
    yield started
    for waiter in started:
        if isinstance(waiter, Waiter):
            while waiter.is_alive():
                for address in waiter.addresses:
                    _raw.syscall(int(SYS.futex), address, FUTEX.WAKE, INT_MAX)
                waiter.join(0.05)
        elif isinstance(waiter, CloneWaiter) and waiter.clone.process.state is None:
            await waiter.clone.exit(0)


async def start(
    thread: Thread, waiters: list[AnyWaiter], tg: anyio.abc.TaskGroup, word: Pointer[Any],
    method: str, *args: Any,
) -> AnyWaiter:
    """A waiter sharing `thread`'s memory that calls `method` of its task with `args`."""
    waiter: AnyWaiter
    if thread is local_thread:
        local = Waiter(getattr(local_thread.task, method), *args)
        local.addresses.append(word.address)
        local.start()
        waiter = local
    else:
        clone = CloneWaiter(await thread.clone(), method, *args)
        tg.start_soon(clone.run)
        waiter = clone
    waiters.append(waiter)
    return waiter


async def still_works(thread: Thread) -> None:
    word = await thread.ptr(UInt32(3))
    with pytest.raises(BlockingIOError):
        await thread.task.futex_wait(word, 4)
    assert await thread.task.futex_wake(word, 1) == 0


# ---- wait and wake ----


async def test_wait_blocks_until_woken(thread: Thread, waiters: list[AnyWaiter]) -> None:
    task = thread.task
    word = await thread.ptr(UInt32(0))
    async with anyio.create_task_group() as tg:
        waiter = await start(thread, waiters, tg, word, "futex_wait", word, 0)
        await wait_until(lambda: waiter.waiting_on(word.address))
        await anyio.sleep(0.05)
        assert waiter.is_alive()  # really blocked, in the kernel
        assert waiter.waiting_on(word.address)
        # The waker changes the word (a new pointer to the same memory), then wakes.
        word2 = await word.write(UInt32(1))
        assert await task.futex_wake(word2, 1) == 1
        await waiter.finish(5)
    assert not waiter.is_alive()
    assert waiter.error is None and waiter.result is None
    assert await task.futex_wake(word2, 1) == 0  # nobody left


async def test_wake_all_and_private(thread: Thread, waiters: list[AnyWaiter]) -> None:
    task = thread.task
    word = await thread.ptr(Int32(-1))
    timeout = await thread.ptr(Timespec(30, 0))
    async with anyio.create_task_group() as tg:
        group = [
            await start(thread, waiters, tg, word, "futex_wait", word, -1, timeout, True)
            for _ in range(3)
        ]
        await wait_until(lambda: all(w.waiting_on(word.address) for w in group))
        # A shared wake does not meet private waiters.
        assert await task.futex_wake(word, INT_MAX) == 0
        assert await task.futex_wake(word, 1, private=True) == 1
        assert await task.futex_wake(word, INT_MAX, private=True) == 2
        for waiter in group:
            await waiter.finish(5)
            assert waiter.error is None


async def test_wait_value_mismatch_is_eagain(thread: Thread) -> None:
    task = thread.task
    word = await thread.ptr(UInt32(7))
    with pytest.raises(BlockingIOError) as info:
        await task.futex_wait(word, 8)
    assert info.value.errno == errno.EAGAIN
    signed = await thread.ptr(Int32(-2))
    with pytest.raises(BlockingIOError):
        await task.futex_wait(signed, 2**32 - 1)  # -1, not -2
    await still_works(thread)


async def test_wait_timeout(thread: Thread) -> None:
    task = thread.task
    word = await thread.ptr(UInt32(0xFFFFFFFF))
    timeout = await thread.ptr(Timespec(0, 20_000_000))
    before = time.monotonic()
    # -1 and 2**32 - 1 are the same 32 bits: the value matches, so it waits.
    with pytest.raises(TimeoutError) as info:
        await task.futex_wait(word, -1, timeout)
    assert info.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - before >= 0.02
    with pytest.raises(TimeoutError):
        await task.futex_wait(word, 2**32 - 1, timeout, private=True)
    await still_works(thread)


async def test_wait_wake_errors(thread: Thread) -> None:
    task = thread.task
    word = await thread.ptr(UInt32(0))
    short = await thread.ptr(Timespec(0, 1000))
    # Kernel rejections.
    bad_timeout = await thread.ptr(Timespec(-1, 0))
    with pytest.raises(OSError) as info:
        await task.futex_wait(word, 0, bad_timeout)
    assert info.value.errno == errno.EINVAL
    bytes_ptr = await thread.ptr(bytes(8))
    _, misaligned = bytes_ptr.split(1)
    with pytest.raises(OSError) as info:
        await task.futex(misaligned, FUTEX.WAKE, 1)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await task.futex(word, 99)
    assert info.value.errno == errno.ENOSYS
    # Wrong types.
    with pytest.raises(TypeError):
        await task.futex_wait(UInt32(0), 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex_wait(await thread.ptr(b"\0" * 4), 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # the kernel would read uninitialized memory
        await task.futex_wait(await thread.malloc(UInt32), 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex_wait(word, 0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex_wait(word, True)
    with pytest.raises(TypeError):
        await task.futex_wait(word, 0, await thread.ptr(b"\0" * 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex_wait(word, 0, short, private=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex_wake(bytes_ptr, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex_wake(word, "all")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.futex(word, FUTEX.WAKE, 1, "x")  # type: ignore[arg-type]
    # Out of range.
    with pytest.raises(ValueError):
        await task.futex_wait(word, 2**32)
    with pytest.raises(ValueError):
        await task.futex_wait(word, -(2**31) - 1)
    with pytest.raises(ValueError):
        await task.futex_wake(word, -1)
    with pytest.raises(ValueError):
        await task.futex_wake(word, 2**31)
    with pytest.raises(ValueError):
        await task.futex(word, FUTEX.WAKE, 1, 0, None, 2**32)
    small = await thread.ptr(b"\0\0")
    with pytest.raises(ValueError):
        await task.futex(small, FUTEX.WAKE, 1)
    # Consumed pointers.
    await word.write(UInt32(1))
    with pytest.raises(UseAfterConsumeError):
        await task.futex_wait(word, 1)
    with pytest.raises(UseAfterConsumeError):
        await task.futex_wake(word, 1)
    await short.write(Timespec(0, 1))
    with pytest.raises(UseAfterConsumeError):
        await task.futex_wait(await thread.ptr(UInt32(0)), 0, short)
    await still_works(thread)


async def test_wake_needs_no_initialized_word(thread: Thread) -> None:
    word: Pointer[UInt32] = await thread.malloc(UInt32)
    assert await thread.task.futex_wake(word, 1) == 0
    assert not word.consumed  # only borrowed


# ---- the raw call ----


async def test_raw_wait_bitset_absolute_timeout(thread: Thread) -> None:
    task = thread.task
    word = await thread.ptr(UInt32(5))
    deadline = Timespec.from_float(time.monotonic() + 0.02)
    with pytest.raises(TimeoutError):
        await task.futex(
            word, FUTEX.WAIT_BITSET, 5, await thread.ptr(deadline), None,
            FUTEX_BITSET_MATCH_ANY,
        )  # fmt: skip
    assert time.monotonic() >= deadline.to_float()
    with pytest.raises(OSError) as info:  # an empty bitset matches nothing
        await task.futex(word, FUTEX.WAIT_BITSET, 5, None, None, 0)
    assert info.value.errno == errno.EINVAL


async def test_raw_wake_op_writes_second_word(thread: Thread) -> None:
    task = thread.task
    first = await thread.ptr(UInt32(0))
    second = await thread.ptr(UInt32(10))
    # *second += 5; wake waiters on second if its old value was 10.
    val3 = futex_op(FUTEX_OP.ADD, 5, FUTEX_OP_CMP.EQ, 10)
    assert await task.futex(first, FUTEX.WAKE_OP | FUTEX.PRIVATE_FLAG, 1, 1, second, val3) == 0
    # The kernel wrote the word: `.value` is stale, the memory is not.
    assert second.value == 10
    assert await second.read() == 15
    val3 = futex_op(FUTEX_OP.SET | FUTEX_OP.OPARG_SHIFT, 4, FUTEX_OP_CMP.GT, 0)
    await task.futex(first, FUTEX.WAKE_OP, 0, 0, second, val3)
    assert await second.read() == 16


async def test_raw_cmp_requeue(thread: Thread, waiters: list[AnyWaiter]) -> None:
    task = thread.task
    source = await thread.ptr(UInt32(0))
    target = await thread.ptr(UInt32(0))
    async with anyio.create_task_group() as tg:
        waiter = await start(thread, waiters, tg, source, "futex_wait", source, 0)
        if isinstance(waiter, Waiter):
            waiter.addresses.append(target.address)
        await wait_until(lambda: waiter.waiting_on(source.address))
        with pytest.raises(BlockingIOError):  # val3 must equal *source
            await task.futex(source, FUTEX.CMP_REQUEUE, 0, 1, target, 1)
        # Wake none, move one to target.
        assert await task.futex(source, FUTEX.CMP_REQUEUE, 0, 1, target, 0) == 1
        assert await task.futex_wake(source, INT_MAX) == 0
        assert waiter.is_alive()
        assert await task.futex_wake(target, 1) == 1
        await waiter.finish(5)
    assert waiter.error is None


def test_futex_op_encoding() -> None:
    # FUTEX_OP(op, oparg, cmp, cmparg) from <linux/futex.h>, by hand.
    assert futex_op(FUTEX_OP.SET, 5, FUTEX_OP_CMP.EQ, 0) == 0x00005000
    assert futex_op(FUTEX_OP.XOR, 0xFFF, FUTEX_OP_CMP.GE, 0xABC) == 0x45FFFABC
    assert futex_op(FUTEX_OP.ADD, -1, FUTEX_OP_CMP.NE, -2) == 0x11FFFFFE
    assert futex_op(FUTEX_OP.OR | FUTEX_OP.OPARG_SHIFT, 3, FUTEX_OP_CMP.LT, 1) == 0xA2003001
    with pytest.raises(ValueError):
        futex_op(FUTEX_OP.SET, 0x1000, FUTEX_OP_CMP.EQ, 0)
    with pytest.raises(ValueError):
        futex_op(16, 0, FUTEX_OP_CMP.EQ, 0)
    with pytest.raises(TypeError):
        futex_op(FUTEX_OP.SET, 1.0, FUTEX_OP_CMP.EQ, 0)  # type: ignore[arg-type]
    assert FUTEX.WAIT | FUTEX.PRIVATE_FLAG == FUTEX.WAIT_PRIVATE
    assert FUTEX.LOCK_PI2_PRIVATE & FUTEX_CMD_MASK == FUTEX.LOCK_PI2


# ---- robust lists ----


async def get_location(thread: Thread, getter: Any) -> RobustListLocation:
    out = await thread.malloc(RobustListLocation)
    result: ReadablePointer[RobustListLocation] = await getter(out)
    assert out.consumed
    return await result.read()


async def test_get_robust_list_of_self_and_child(thread: Thread) -> None:
    mine = await get_location(thread, thread.task.get_robust_list)
    if thread is local_thread:  # glibc registers a list for every thread it makes
        assert mine.head != 0
    assert mine.len == RobustListHead.sizeof() == 24
    child = subprocess.Popen(["sleep", "100"])
    try:
        process = Process(thread.task, child.pid)
        # The child's libc registers its list as it starts: until then, none.
        with anyio.fail_after(5):
            while (theirs := await get_location(thread, process.get_robust_list)).head == 0:
                await anyio.sleep(0.001)
        assert theirs.len == 24
    finally:
        child.kill()
        child.wait()
    out = await thread.malloc(RobustListLocation)
    with pytest.raises(ProcessLookupError):
        await process.get_robust_list(out)
    assert not out.consumed  # given back
    with pytest.raises(TypeError):
        await thread.task.get_robust_list(await thread.malloc(bytes, 16))  # type: ignore[arg-type]
    await out.write(RobustListLocation(0, 0))
    with pytest.raises(UseAfterConsumeError):
        await thread.task.get_robust_list(out)
    assert await get_location(thread, thread.task.get_robust_list) == mine


async def test_set_robust_list_replaces_and_restores(thread: Thread) -> None:
    task = thread.task
    glibc = await get_location(thread, task.get_robust_list)
    slot = await thread.malloc(RobustListHead)
    # An empty list points back at its own head.
    head = await slot.write(RobustListHead(slot.address, 0, 0))
    try:
        await task.unsafe_set_robust_list(head)
        expected = RobustListLocation(head.address, 24)
        assert await get_location(thread, task.get_robust_list) == expected
    finally:
        # Give glibc its own list back (or none, where there was none).
        await task.sysif.syscall(int(SYS.set_robust_list), glibc.head, glibc.len)
    assert await get_location(thread, task.get_robust_list) == glibc
    with pytest.raises(TypeError):
        await task.unsafe_set_robust_list(await thread.ptr(bytes(24)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.unsafe_set_robust_list(RobustListHead(0, 0, 0))  # type: ignore[arg-type]


# An OS thread of our process, with glibc's list: local only (the next
# test does the same with a clone of any thread).
async def test_kernel_marks_dead_owner() -> None:
    """A thread that exits holding a futex on its robust list: the kernel
    sets FUTEX_OWNER_DIED in the word and wakes a waiter, as the robust
    list promises."""
    head_slot = await local_thread.malloc(RobustListHead)
    # An entry: its `next` link, then the futex word at futex_offset 8.
    entry_slot = await local_thread.malloc(bytes, 16)
    written: list[Any] = []
    registered = threading.Event()

    async def hold_and_exit() -> None:
        owner = threading.get_native_id() | FUTEX_WAITERS
        entry = await entry_slot.write(struct.pack("<QI4x", head_slot.address, owner))
        head = await head_slot.write(RobustListHead(entry.address, 8, 0))
        written.extend((entry, head))  # kept alive past the thread's exit
        await local_thread.task.unsafe_set_robust_list(head)
        registered.set()
        # The thread now exits with the "lock" held, without restoring glibc's list.

    thread = Waiter(hold_and_exit)
    thread.start()
    assert registered.wait(5)
    entry = written[0]
    _, word = entry.split(8)  # a pointer to the futex word
    written[0] = None
    owner = struct.unpack("<I", entry.value[8:12])[0]
    timeout = await local_thread.ptr(Timespec(5, 0))
    try:
        # Python's join can return before the OS thread is gone; the
        # kernel's wake is the sure sign.
        await local_thread.task.futex(word, FUTEX.WAIT, owner, timeout)
    except BlockingIOError:
        pass  # it had already died
    thread.join(5)
    assert thread.error is None
    value = struct.unpack_from("<I", await word.read())[0]
    assert value == FUTEX_OWNER_DIED | FUTEX_WAITERS  # the owner's tid is gone


async def test_kernel_marks_dead_owner_of_a_clone(thread: Thread) -> None:
    """The same, with a clone of the thread (sharing its memory) that
    exits holding the futex; the thread waits for the kernel's wake."""
    holder = await thread.clone()
    head_slot = await thread.malloc(RobustListHead)
    entry_slot = await thread.malloc(bytes, 16)
    owner = holder.process.pid | FUTEX_WAITERS
    entry = await entry_slot.write(struct.pack("<QI4x", head_slot.address, owner))
    head = await head_slot.write(RobustListHead(entry.address, 8, 0))
    await holder.task.unsafe_set_robust_list(head)
    assert await get_location(holder, holder.task.get_robust_list) == RobustListLocation(
        head.address, 24)
    _, word = entry.split(8)  # a pointer to the futex word
    timeout = await thread.ptr(Timespec(5, 0))
    if thread is local_thread:
        # A local wait would block our event loop: the holder dies first.
        await holder.exit(0)  # with the "lock" held
        with pytest.raises(BlockingIOError):
            await thread.task.futex(word, FUTEX.WAIT, owner, timeout)
    else:
        async with anyio.create_task_group() as tg:

            async def wait() -> None:
                try:
                    await thread.task.futex(word, FUTEX.WAIT, owner, timeout)
                except BlockingIOError:
                    pass  # it had already died

            tg.start_soon(wait)
            await holder.exit(0)  # with the "lock" held
    value = struct.unpack_from("<I", await word.read())[0]
    assert value == FUTEX_OWNER_DIED | FUTEX_WAITERS
    assert thread_pid(thread) != holder.process.pid


# ---- structs ----

u64 = st.integers(0, 2**64 - 1)


@given(u64, st.integers(-(2**63), 2**63 - 1), u64)
def test_robust_list_head_roundtrip(next: int, offset: int, pending: int) -> None:
    head = RobustListHead(next, offset, pending)
    data = head.to_bytes()
    assert data == struct.pack("<QqQ", next, offset, pending)
    assert RobustListHead.from_bytes(data) == head


@given(u64, u64)
def test_robust_list_location_roundtrip(address: int, length: int) -> None:
    location = RobustListLocation(address, length)
    data = location.to_bytes()
    assert len(data) == RobustListLocation.sizeof() == 16
    assert RobustListLocation.from_bytes(data) == location


async def test_structs_through_memory(thread: Thread) -> None:
    head = RobustListHead(0x1000, -8, 0)
    assert await (await thread.ptr(head)).read() == head


def test_struct_bad_values() -> None:
    with pytest.raises(TypeError):
        RobustListHead("0", 0, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RobustListHead(0, False, 0)
    with pytest.raises(ValueError):
        RobustListHead(-1, 0, 0).to_bytes()
    with pytest.raises(ValueError):
        RobustListHead(0, 2**63, 0).to_bytes()
    with pytest.raises(ValueError):
        RobustListHead.from_bytes(bytes(23))
    with pytest.raises(TypeError):
        RobustListLocation(0, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RobustListLocation(2**64, 0).to_bytes()
    with pytest.raises(ValueError):
        RobustListLocation.from_bytes(bytes(15))

