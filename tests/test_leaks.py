"""Heavy use releases everything: fds and the allocator's mapped memory."""

from __future__ import annotations

import gc

import pytest

from rsyscall import local_thread

from .util import open_fds

pytestmark = pytest.mark.anyio


async def test_pointer_and_fd_churn_leaks_nothing() -> None:
    thread = local_thread
    allocator = thread.task.space.allocator
    # Warm up, so the allocator's one kept arena exists before we measure.
    await thread.ptr(b"warm up")
    gc.collect()
    fds_before = open_fds()
    mapped_before = allocator.mapped_bytes()

    for i in range(10_000):
        ptr = await thread.ptr(b"x" * (i % 300))
        if i % 3 == 0:
            first, second = ptr.split(ptr.size() // 2)
            ptr = first + second
    # Many alive at once: the allocator must map more arenas, then give them back.
    alive = [await thread.malloc(bytes, 512) for _ in range(10_000)]
    assert allocator.mapped_bytes() > mapped_before
    del alive
    for _ in range(500):
        pipe = await thread.pipe()
        del pipe
    sockets = [await thread.socketpair(1, 1) for _ in range(250)]
    del sockets

    gc.collect()
    assert open_fds() == fds_before
    assert allocator.mapped_bytes() == mapped_before


async def test_explicit_close_and_gc_close_agree() -> None:
    thread = local_thread
    fds_before = open_fds()
    pipes = [await thread.pipe() for _ in range(100)]
    for pipe in pipes[::2]:
        await pipe.read.close()
        await pipe.write.close()
    del pipes
    assert open_fds() == fds_before
