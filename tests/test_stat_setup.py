"""utimensat(2) and mknodat(2) (rsyscall.sys.stat), on every kind of thread;
the device node needs root (CI is root)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from rsyscall import Thread
from rsyscall.fcntl import AT, O
from rsyscall.sys.stat import UTIME_NOW, UTIME_OMIT, S, TimespecPair
from rsyscall.time import Timespec

pytestmark = pytest.mark.anyio


async def test_utimensat(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    ptr = thread.ptr
    times = await ptr(TimespecPair(Timespec(1000, 5), Timespec(2000, 7)))
    await thread.task.utimensat(None, await ptr(str(path)), times)
    seen = os.stat(path)  # the same machine
    assert (seen.st_atime_ns, seen.st_mtime_ns) == (1000_000_000_005, 2000_000_000_007)
    # UTIME_OMIT leaves one as it is; UTIME_NOW is now.
    keep_atime = await ptr(TimespecPair(Timespec(0, UTIME_OMIT), Timespec(0, UTIME_NOW)))
    await thread.task.utimensat(None, await ptr(str(path)), keep_atime)
    seen = os.stat(path)
    assert seen.st_atime_ns == 1000_000_000_005 and abs(seen.st_mtime - time.time()) < 60
    # No path: the file the dirfd is (futimens); no times: both now.
    fd = await thread.task.open(await ptr(str(path)), O.RDONLY)
    await thread.task.utimensat(fd, None, times)
    assert os.stat(path).st_mtime_ns == 2000_000_000_007
    await thread.task.utimensat(None, await ptr(str(path)), None)
    assert abs(os.stat(path).st_atime - time.time()) < 60
    # A symlink's own times.
    os.symlink(path, tmp_path / "link")
    await thread.task.utimensat(None, await ptr(str(tmp_path / "link")), times,
                                AT.SYMLINK_NOFOLLOW)
    assert os.lstat(tmp_path / "link").st_mtime_ns == 2000_000_000_007
    with pytest.raises(TypeError):
        await thread.task.utimensat(
            None, await ptr(str(path)), await ptr(Timespec(1, 1))  # type: ignore[arg-type]
        )
    with pytest.raises(TypeError):
        TimespecPair(1, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await thread.task.utimensat(None, None, None)
    with pytest.raises(FileNotFoundError):
        await thread.task.utimensat(None, await ptr(str(tmp_path / "none")), None)


async def test_mknodat(thread: Thread, tmp_path: Path) -> None:
    ptr = thread.ptr
    await thread.task.mknodat(None, await ptr(str(tmp_path / "fifo")), S.IFIFO | S(0o600))
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
    dirfd = await thread.task.open(await ptr(str(tmp_path)), O.RDONLY | O.DIRECTORY)
    await thread.task.mknodat(dirfd, await ptr("plain"), S.IFREG | S(0o644))
    assert stat.S_ISREG(os.stat(tmp_path / "plain").st_mode)
    with pytest.raises(FileExistsError):
        await thread.task.mknodat(dirfd, await ptr("plain"), S.IFREG | S(0o644))
    with pytest.raises(ValueError):
        await thread.task.mknodat(dirfd, await ptr("dir"), S.IFDIR | S(0o755))
    with pytest.raises(TypeError):
        await thread.task.mknodat(dirfd, await ptr("x"), 0o644)  # type: ignore[arg-type]
    if os.geteuid() == 0:  # CI is root
        await thread.task.mknodat(dirfd, await ptr("null"), S.IFCHR | S(0o666),
                                  os.makedev(1, 3))
        made = os.stat(tmp_path / "null")
        assert stat.S_ISCHR(made.st_mode) and made.st_rdev == os.makedev(1, 3)
