"""rsyscall.stdlib: mkdtemp and tree removal, on every kind of thread."""

from __future__ import annotations

import os

import pytest

from rsyscall import Thread
from rsyscall.stdlib import TemporaryDirectory, mkdtemp, remove_tree

pytestmark = pytest.mark.anyio


async def test_mkdtemp_removes_its_tree(thread: Thread) -> None:
    made = await mkdtemp(thread, prefix="stdlib-test")
    assert isinstance(made, TemporaryDirectory)
    async with made as path:
        assert os.path.basename(path).startswith("stdlib-test.")
        assert os.stat(path).st_mode & 0o777 == 0o700  # the same machine
        await thread.mkdir(f"{path}/a")
        await thread.mkdir(f"{path}/a/b")
        for i in range(300):  # more than one getdents buffer of names
            await thread.spit(f"{path}/a/b/file-{i:03}-{'x' * 100}", b"")
        await thread.spit(f"{path}/top", "x")
        os.symlink("/etc", f"{path}/a/link-out")  # removed, not followed
    assert not os.path.exists(path)
    assert os.path.isdir("/etc")


async def test_mkdtemp_cleans_up_on_error(thread: Thread) -> None:
    with pytest.raises(RuntimeError):
        async with await mkdtemp(thread) as path:
            await thread.spit(f"{path}/f", "x")
            raise RuntimeError("the body failed")
    assert not os.path.exists(path)


async def test_mkdtemp_bad_input_and_missing_paths(thread: Thread) -> None:
    with pytest.raises(ValueError):
        await mkdtemp(thread, prefix="a/b")
    await remove_tree(thread, "/tmp/does-not-exist-rsyscall")  # nothing to do
    made = await mkdtemp(thread)
    await made.cleanup()
    await made.cleanup()  # once only
    assert not os.path.exists(made.path)
