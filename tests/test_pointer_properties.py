"""A property of the pointer family and the list types written through it:
whatever sequence of public calls a program makes (ptr, malloc, split,
merge, write, dropping pointers, trying to mutate written values, and
syscalls that read and write them: read, write, readv, writev, recvmsg,
sendmsg), no byte outside the pointer a call targets changes, and every
call either works or raises a clean Python error.

Each example is a random program run on the local thread and on a child
thread (which shares our memory, so a stray write would show the same).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsyscall import ReadablePointer, Thread, UseAfterConsumeError, WrittenPointer, local_thread
from rsyscall.sys.socket import AF, MSG, SOCK, RecvMsghdr, SendMsghdr
from rsyscall.sys.uio import IovecList

pytestmark = pytest.mark.anyio

OPS = 12
EXERCISED: dict[int, int] = {}  # how often each kind of call ran (for a look with -s)
programs = st.lists(
    st.tuples(st.integers(0, OPS - 1), st.integers(0, 2**16), st.integers(0, 2**16)),
    min_size=1, max_size=40,
)


class Model:
    """The pointers a program holds and what each must contain."""

    def __init__(self, thread: Thread) -> None:
        self.thread = thread
        # pointer -> the bytes it must hold (None: not initialized)
        self.live: list[tuple[Any, bytes | None]] = []

    def pick(self, n: int) -> int | None:
        return n % len(self.live) if self.live else None

    def take(self, n: int) -> tuple[Any, bytes | None] | None:
        i = self.pick(n)
        return None if i is None else self.live.pop(i)

    async def check(self) -> None:
        for ptr, expected in self.live:
            assert not ptr.consumed
            if expected is not None:
                assert await ptr.read() == expected, ptr


async def run_program(thread: Thread, program: list[tuple[int, int, int]]) -> None:
    model = Model(thread)
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    # A guard: memory no call targets, which must never change.
    guard_bytes = bytes(random.Random(0).randrange(256) for _ in range(512))
    guard = await thread.ptr(guard_bytes)
    in_flight = b""  # what is in the socket, not yet received
    for kind, a, b in program:
        if kind == 0:  # ptr
            data = bytes((a + i) % 256 for i in range(b % 300))
            model.live.append((await thread.ptr(data), data))
        elif kind == 1:  # malloc
            model.live.append((await thread.malloc(bytes, 1 + b % 300), None))
        elif kind == 2:  # split
            entry = model.take(a)
            if entry is not None:
                ptr, expected = entry
                offset = b % (ptr.size() + 1)
                first, second = ptr.split(offset)
                model.live.append((first, None if expected is None else expected[:offset]))
                model.live.append((second, None if expected is None else expected[offset:]))
        elif kind == 3:  # merge two neighbours, if any are
            by_address = {ptr.address: (ptr, exp) for ptr, exp in model.live}
            for ptr, expected in list(model.live):
                after = by_address.get(ptr.address + ptr.size())
                if after is not None and after[0] is not ptr:
                    model.live = [e for e in model.live if e[0] is not ptr and e[0] is not after[0]]
                    merged = ptr + after[0]
                    known = None if expected is None or after[1] is None else expected + after[1]
                    if not isinstance(merged, ReadablePointer):
                        known = None
                    model.live.append((merged, known))
                    break
        elif kind == 4:  # write a value into a pointer
            entry = model.take(a)
            if entry is not None:
                ptr, _ = entry
                data = bytes([b % 256]) * min(ptr.size(), b % 50)
                written = await ptr.write(data)
                model.live.append((written, data))
        elif kind == 5:  # drop a pointer
            model.take(a)
        elif kind == 6:  # write(2) from a readable pointer
            i = model.pick(a)
            if i is not None and model.live[i][1] is not None and model.live[i][1]:
                ptr, expected = model.live.pop(i)
                assert expected is not None
                done, rest = await pair.first.write(ptr)
                in_flight += expected[: done.size()]
                model.live += [(done, expected[: done.size()]), (rest, expected[done.size():])]
        elif kind == 7:  # read(2) into a pointer
            entry = model.take(a)
            if entry is not None and in_flight:
                ptr, _ = entry
                valid, rest = await pair.second.read(ptr)
                got = in_flight[: valid.size()]
                in_flight = in_flight[valid.size():]
                model.live += [(valid, got), (rest, None)]
            elif entry is not None:
                model.live.append(entry)
        elif kind == 8:  # readv into several pointers
            picked = [model.take(a + k) for k in range(1 + b % 3)]
            entries = [e for e in picked if e is not None]
            if entries and in_flight:
                iov = await thread.ptr(IovecList(ptr for ptr, _ in entries))
                # The written value cannot change under the kernel.
                with pytest.raises((AttributeError, TypeError)):
                    iov.value.append(entries[0][0])  # type: ignore[attr-defined]
                with pytest.raises((AttributeError, TypeError)):
                    iov.value[0] = entries[0][0]  # type: ignore[index]
                valid, rest = await pair.second.readv(iov)
                total = sum(p.size() for p in valid)
                got, in_flight = in_flight[:total], in_flight[total:]
                for ptr in valid:
                    model.live.append((ptr, got[: ptr.size()]))
                    got = got[ptr.size():]
                model.live += [(ptr, None) for ptr in rest]
                # Its buffers were consumed: the array cannot be used again.
                with pytest.raises(UseAfterConsumeError):
                    await pair.second.readv(iov)
            else:
                model.live += entries
        elif kind == 9:  # writev from readable pointers
            readable = [i for i, (_, exp) in enumerate(model.live) if exp]
            if readable:
                i = readable[a % len(readable)]
                ptr, expected = model.live.pop(i)
                assert expected is not None
                iov = await thread.ptr(IovecList([ptr]))
                done, rest = await pair.first.writev(iov)
                count = sum(p.size() for p in done)
                in_flight += expected[:count]
                model.live += [(p, expected[: p.size()]) for p in done]
                offset = count
                for p in rest:
                    model.live.append((p, expected[offset: offset + p.size()]))
                    offset += p.size()
        elif kind == 10:  # recvmsg into a pointer; a msghdr is immutable
            entry = model.take(a)
            if entry is not None and in_flight:
                ptr, _ = entry
                iov = await thread.ptr(IovecList([ptr]))
                header = RecvMsghdr(None, iov, None)
                with pytest.raises(AttributeError):
                    header.iov = iov  # type: ignore[misc]
                valid, rest, _ = await pair.second.recvmsg(await thread.ptr(header), MSG.NONE)
                total = sum(p.size() for p in valid)
                got, in_flight = in_flight[:total], in_flight[total:]
                model.live += [(p, got[: p.size()]) for p in valid] + [(p, None) for p in rest]
            elif entry is not None:
                model.live.append(entry)
        elif kind == 11:  # sendmsg from a written pointer
            readable = [
                i for i, (p, exp) in enumerate(model.live)
                if exp and isinstance(p, WrittenPointer)
            ]
            if readable:
                ptr, expected = model.live.pop(readable[a % len(readable)])
                assert expected is not None
                iov = await thread.ptr(IovecList([ptr]))
                done, rest = await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov)))
                count = sum(p.size() for p in done)
                in_flight += expected[:count]
                model.live += [(p, expected[: p.size()]) for p in done]
                model.live += [(p, expected[count:]) for p in rest]
        await model.check()
        assert await guard.read() == guard_bytes
        EXERCISED[kind] = EXERCISED.get(kind, 0) + 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs)
async def test_random_pointer_programs_on_the_local_thread(
    program: list[tuple[int, int, int]],
) -> None:
    await run_program(local_thread, program)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs)
async def test_random_pointer_programs_on_a_child_thread(
    program: list[tuple[int, int, int]],
) -> None:
    child = await local_thread.clone()
    await run_program(child, program)
    await child.exit(0)
