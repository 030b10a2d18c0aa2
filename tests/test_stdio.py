"""rsyscall.stdio: renameat2(2) and its flags, on every kind of thread."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from rsyscall import Thread
from rsyscall.fcntl import O
from rsyscall.stdio import RENAME

pytestmark = pytest.mark.anyio


async def test_renameat2(thread: Thread, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    ptr = thread.ptr
    with pytest.raises(FileExistsError):
        await thread.task.renameat2(None, await ptr(str(a)), None, await ptr(str(b)),
                                    RENAME.NOREPLACE)
    await thread.task.renameat2(None, await ptr(str(a)), None, await ptr(str(b)),
                                RENAME.EXCHANGE)
    assert (a.read_text(), b.read_text()) == ("B", "A")
    dirfd = await thread.task.open(await ptr(str(tmp_path)), O.RDONLY | O.DIRECTORY)
    await thread.task.renameat2(dirfd, await ptr("a"), dirfd, await ptr("c"), RENAME.NOREPLACE)
    assert not a.exists() and (tmp_path / "c").read_text() == "B"
    await thread.task.rename(await ptr(str(tmp_path / "c")), await ptr(str(b)))
    assert b.read_text() == "B"
    await thread.task.renameat(dirfd, await ptr("b"), None, await ptr(str(a)))
    assert a.read_text() == "B"
    with pytest.raises(OSError) as info:  # both flags at once is invalid
        await thread.task.renameat2(None, await ptr(str(a)), None, await ptr(str(b)),
                                    RENAME.NOREPLACE | RENAME.EXCHANGE)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        await thread.task.renameat2(None, await ptr(str(tmp_path / "none")), None,
                                    await ptr(str(b)), RENAME.EXCHANGE)
    with pytest.raises(TypeError):
        await thread.task.renameat2(None, await ptr(str(a)), None, await ptr(str(b)),
                                    O.CREAT)  # type: ignore[arg-type]
