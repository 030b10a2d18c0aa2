"""Pointers: sizes, split/merge, consumption, and the allocator under them."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsyscall import (
    LinearPointer,
    Pointer,
    ReadablePointer,
    Thread,
    UseAfterConsumeError,
    WrittenPointer,
    local_thread,
)
from rsyscall.fcntl import O
from rsyscall.memory.allocator import ARENA_SIZE, Allocator, Arena, Mapper
from rsyscall.struct import Int32, Int64, UInt32
from rsyscall.unistd import Pipe

pytestmark = pytest.mark.anyio


async def test_ptr_kinds_and_values(thread: Thread) -> None:
    written = await thread.ptr(b"abc")
    assert isinstance(written, WrittenPointer) and written.value == b"abc"
    assert written.size() == 3 and await written.read() == b"abc"
    text = await thread.ptr("hi")
    assert text.size() == 3 and await text.read() == "hi"  # NUL-terminated
    number = await thread.ptr(Int32(-5))
    assert number.size() == 4 and await number.read() == -5
    assert isinstance(await number.read(), Int32)
    raw = await thread.malloc(bytes, 10)
    assert type(raw) is Pointer and raw.size() == 10
    assert not hasattr(raw, "read")


async def test_split_and_merge(thread: Thread) -> None:
    ptr = await thread.ptr(b"hello world")
    first, second = ptr.split(5)
    assert ptr.consumed
    assert isinstance(first, WrittenPointer) and first.value == b"hello"
    assert await second.read() == b" world"
    whole = first + second
    assert isinstance(whole, WrittenPointer) and whole.value == b"hello world"
    assert await whole.read() == b"hello world"
    with pytest.raises(UseAfterConsumeError):
        first.size()
    # Plain pointers merge into plain pointers; mixing readable and not too.
    raw = await thread.malloc(bytes, 8)
    a, b = raw.split(3)
    assert type(a) is Pointer and type(b) is Pointer
    assert (a + b).size() == 8


async def test_merge_rejects_non_adjacent(thread: Thread) -> None:
    a, b = (await thread.malloc(bytes, 8)).split(4)
    c = await thread.malloc(bytes, 4)
    with pytest.raises(ValueError):
        a.merge(c)
    with pytest.raises(ValueError):
        b.merge(a)  # wrong order
    with pytest.raises(TypeError):
        a.merge(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        a + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        1 + a  # type: ignore[operator]
    # The failed merges consumed nothing.
    merged = a + b
    assert merged.size() == 8
    with pytest.raises(UseAfterConsumeError):
        a + merged
    with pytest.raises(UseAfterConsumeError):
        merged.merge(b)


async def test_merged_kinds(thread: Thread) -> None:
    """What a merge gives: written (with the joined value) only from two
    written pointers of bytes; readable from two readable ones, the parts of
    a struct and linear pointers included; plain otherwise."""
    written = await thread.ptr(b"abcdef")
    first, second = written.split(2)
    joined = first + second
    assert type(joined) is WrittenPointer and joined.value == b"abcdef"
    number = await thread.ptr(Int64(7))
    low, high = number.split(4)
    assert type(low) is ReadablePointer  # a struct's parts are not structs
    assert type(low + high) is ReadablePointer
    pipe = await thread.pipe()
    await pipe.write.write(await thread.ptr(b"xyz"))
    valid, rest = await pipe.read.read(await thread.malloc(bytes, 8))
    assert type(valid) is ReadablePointer and type(rest) is Pointer
    assert type(valid + rest) is Pointer
    await pipe.read.close()
    await pipe.write.close()


async def test_write_to_pointer(thread: Thread) -> None:
    ptr = await thread.malloc(bytes, 16)
    written = await ptr.write(b"1234")
    assert ptr.consumed and written.size() == 4 and written.value == b"1234"
    with pytest.raises(ValueError):
        await (await thread.malloc(bytes, 2)).write(b"toolong")
    with pytest.raises(TypeError):
        await (await thread.malloc(bytes, 8)).write("not bytes")  # type: ignore[arg-type]


async def test_consumed_pointer_raises_and_syscall_not_made(thread: Thread) -> None:
    pipe = await thread.pipe()
    buf = await thread.malloc(bytes, 8)
    await pipe.write.write(await thread.ptr(b"data"))
    valid, rest = await pipe.read.read(buf)
    with pytest.raises(UseAfterConsumeError):
        await pipe.read.read(buf)
    assert await valid.read() == b"data"
    # End of file: nothing valid, the whole buffer is the rest.
    await pipe.write.close()
    empty, rest2 = await pipe.read.read(valid + rest)
    assert empty.size() == 0 and rest2.size() == 8


async def test_failed_syscall_gives_buffer_back(thread: Thread) -> None:
    pipefd = await thread.task.pipe(await thread.malloc(Pipe), O.NONBLOCK)
    pipe = await pipefd.read()
    buf = await thread.malloc(bytes, 8)
    with pytest.raises(BlockingIOError):
        await pipe.read.read(buf)
    assert not buf.consumed
    await pipe.write.write(await thread.ptr(b"late"))
    valid, _ = await pipe.read.read(buf)
    assert await valid.read() == b"late"


async def test_linear_pointer_reads_once(thread: Thread) -> None:
    written = await thread.ptr(b"once")
    ptr: LinearPointer[bytes] = written._linear(written._alloc)  # type: ignore[arg-type]
    written._alloc = None
    assert await ptr.read() == b"once"
    with pytest.raises(UseAfterConsumeError):
        await ptr.read()


async def test_malloc_bad_input(thread: Thread) -> None:
    with pytest.raises(TypeError):
        await thread.malloc(bytes)  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        await thread.malloc(bytes, -1)
    with pytest.raises(TypeError):
        await thread.malloc(bytes, 1.5)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        await thread.malloc(Pipe, 8)
    with pytest.raises(TypeError):
        await thread.malloc(int)
    with pytest.raises(TypeError):
        await thread.ptr(object())
    with pytest.raises(ValueError):
        await thread.ptr("embedded\0nul")
    # The thread still works.
    assert (await thread.malloc(bytes, 0)).size() == 0
    assert await (await thread.ptr(b"ok")).read() == b"ok"


# Hypothesis runs each example in an event loop of its own (anyio.run), where
# only the local thread, which needs no loop of ours, can be used.
@given(st.binary(max_size=300), st.data())
@settings(max_examples=50, deadline=None)
def test_split_merge_roundtrip_property(data: bytes, draw: st.DataObject) -> None:
    import anyio

    async def body() -> None:
        ptr = await local_thread.ptr(data)
        offset = draw.draw(st.integers(0, len(data)))
        first, second = ptr.split(offset)
        assert await first.read() == data[:offset] and await second.read() == data[offset:]
        assert await (first + second).read() == data

    anyio.run(body)


@given(
    st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**32 - 1)
)
@settings(max_examples=50, deadline=None)
def test_int_serializers_roundtrip(i32: int, i64: int, u32: int) -> None:
    task = local_thread.task
    for cls, value in ((Int32, i32), (Int64, i64), (UInt32, u32)):
        serializer = cls.get_serializer(task)
        data = serializer.to_bytes(cls(value))
        assert len(data) == cls.sizeof()
        assert serializer.from_bytes(data) == value


class _CountingMapper(Mapper):
    """Hands out fake address ranges, to test the allocator's bookkeeping alone."""

    def __init__(self) -> None:
        self.next = 1 << 32
        self.mapped: dict[int, int] = {}

    async def map(self, size: int) -> int:
        address = self.next
        self.next += size + (1 << 20)
        self.mapped[address] = size
        return address

    def unmap(self, address: int, size: int) -> None:
        assert self.mapped.pop(address) == size


async def test_allocator_frees_coalesce_and_unmap() -> None:
    mapper = _CountingMapper()
    allocator = Allocator(mapper)
    rng = random.Random(1)
    live = []
    for _ in range(3000):
        if live and rng.random() < 0.45:
            live.pop(rng.randrange(len(live)))
        else:
            live.append(await allocator.allocate(rng.choice([1, 8, 100, 4096, 70000])))
    # No two live allocations overlap.
    ranges = sorted((a.address, a.address + a.size) for a in live)
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end <= start
    # Splits and merges keep the accounting right.
    big = await allocator.allocate(1000)
    left, right = big.split(300)
    live += [left.merge(right)]
    live.clear()
    # Everything freed: one standard arena stays mapped, with nothing used.
    assert allocator.mapped_bytes() == ARENA_SIZE
    arenas: list[Arena] = allocator._arenas
    assert [arena.used for arena in arenas] == [0]
    huge = await allocator.allocate(ARENA_SIZE * 2)
    assert allocator.mapped_bytes() == ARENA_SIZE * 3
    del huge
    assert allocator.mapped_bytes() == ARENA_SIZE


async def test_readable_pointer_types_after_syscalls(thread: Thread) -> None:
    pipe = await thread.pipe()
    written, unwritten = await pipe.write.write(await thread.ptr(b"xyz"))
    assert isinstance(written, WrittenPointer) and isinstance(unwritten, WrittenPointer)
    valid, rest = await pipe.read.read(await thread.malloc(bytes, 8))
    assert isinstance(valid, ReadablePointer) and type(rest) is Pointer
