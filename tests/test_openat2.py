"""rsyscall.linux.openat2: resolution rules that keep a path inside a
directory, on every kind of thread."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import FileDescriptor, Thread
from rsyscall.fcntl import O
from rsyscall.linux.openat2 import RESOLVE, OpenHow

pytestmark = pytest.mark.anyio


async def tree(thread: Thread, tmp_path: Path) -> tuple[FileDescriptor, Path]:
    root = tmp_path / "root"
    os.makedirs(root / "sub")
    (root / "sub" / "file").write_text("inside")
    (tmp_path / "secret").write_text("outside")
    os.symlink("/etc/passwd", root / "abs-link")
    os.symlink("file", root / "sub" / "rel-link")
    dirfd = await thread.task.open(await thread.ptr(str(root)), O.RDONLY | O.DIRECTORY)
    return dirfd, root


async def test_beneath_refuses_dotdot_and_absolute(thread: Thread, tmp_path: Path) -> None:
    dirfd, _ = await tree(thread, tmp_path)
    how = await thread.ptr(OpenHow(O.RDONLY, resolve=RESOLVE.BENEATH))
    fd = await thread.task.openat2(dirfd, await thread.ptr("sub/file"), how)
    assert await thread.read_to_eof(fd) == b"inside"
    for escape in ("../secret", "sub/../../secret", "/etc/passwd", "abs-link"):
        with pytest.raises(OSError) as info:
            await thread.task.openat2(dirfd, await thread.ptr(escape), how)
        assert info.value.errno == errno.EXDEV, escape


async def test_in_root_and_no_symlinks(thread: Thread, tmp_path: Path) -> None:
    dirfd, _ = await tree(thread, tmp_path)
    in_root = await thread.ptr(OpenHow(O.RDONLY, resolve=RESOLVE.IN_ROOT))
    # ".." stops at the root, as it would after chroot.
    fd = await thread.task.openat2(dirfd, await thread.ptr("../../sub/file"), in_root)
    assert await thread.read_to_eof(fd) == b"inside"
    no_symlinks = await thread.ptr(OpenHow(O.RDONLY, resolve=RESOLVE.NO_SYMLINKS))
    with pytest.raises(OSError) as info:
        await thread.task.openat2(dirfd, await thread.ptr("sub/rel-link"), no_symlinks)
    assert info.value.errno == errno.ELOOP


async def test_creating_and_bad_input(thread: Thread, tmp_path: Path) -> None:
    dirfd, root = await tree(thread, tmp_path)
    how = await thread.ptr(OpenHow(O.WRONLY | O.CREAT | O.EXCL, 0o600, RESOLVE.BENEATH))
    fd = await thread.task.openat2(dirfd, await thread.ptr("new"), how)
    await fd.close()
    assert (root / "new").stat().st_mode & 0o777 == 0o600 & ~_umask()
    with pytest.raises(FileExistsError):
        await thread.task.openat2(dirfd, await thread.ptr("new"), how)
    with pytest.raises(TypeError):
        OpenHow(0o2, resolve=RESOLVE.BENEATH)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OpenHow(O.RDONLY, resolve=8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.task.openat2(
            dirfd, await thread.ptr("new"), await thread.ptr(b"x")  # type: ignore[arg-type]
        )
    # The kernel's own checks: mode without O_CREAT is EINVAL.
    bad = await thread.ptr(OpenHow(O.RDONLY, 0o600))
    with pytest.raises(OSError) as info:
        await thread.task.openat2(dirfd, await thread.ptr("new"), bad)
    assert info.value.errno == errno.EINVAL


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
