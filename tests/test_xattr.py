"""rsyscall.sys.xattr: the twelve extended attribute calls, on a file of
the test's temporary directory (ext4 or tmpfs: user.* works on both, on
tmpfs since 6.6), checked against os.getxattr and friends."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rsyscall import Pointer, ReadablePointer, Thread
from rsyscall.fcntl import O
from rsyscall.sys.xattr import (
    XATTR,
    XATTR_LIST_MAX,
    XATTR_NAME_MAX,
    XATTR_SIZE_MAX,
    XattrNameList,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "f"
    path.write_bytes(b"")
    try:
        os.setxattr(path, "user.probe", b"1")
    except OSError as error:
        pytest.skip(f"no user.* attributes on {tmp_path}: {error}")
    os.removexattr(path, "user.probe")
    return path


async def test_set_get_list_remove_by_path(thread: Thread, target: Path) -> None:
    task = thread.task
    path = await thread.ptr(target)
    name = await thread.ptr("user.comment")
    await task.setxattr(path, name, await thread.ptr(b"hello"))
    assert os.getxattr(target, "user.comment") == b"hello"
    # The size alone.
    assert await task.getxattr(path, name, None) == 5
    # The value, splitting the buffer.
    buf = await thread.malloc(bytes, 64)
    valid, spare = await task.getxattr(path, name, buf)
    assert buf.consumed and isinstance(valid, ReadablePointer) and type(spare) is Pointer
    assert await valid.read() == b"hello" and spare.size() == 59
    # The names.
    os.setxattr(target, "user.other", b"")
    assert await task.listxattr(path, None) == len("user.comment\0user.other\0")
    names = await thread.malloc(XattrNameList, 256)
    listed, rest = await task.listxattr(path, names)
    assert set(await listed.read()) == {"user.comment", "user.other"}
    assert rest.size() == 256 - len("user.comment\0user.other\0")
    # An empty value is fine.
    valid, _ = await task.getxattr(path, await thread.ptr("user.other"), valid + spare)
    assert await valid.read() == b""
    await task.removexattr(path, name)
    assert os.listxattr(target) == ["user.other"]
    with pytest.raises(OSError) as info:
        await task.removexattr(path, name)
    assert info.value.errno == errno.ENODATA
    assert info.value.filename == target


async def test_create_and_replace(thread: Thread, target: Path) -> None:
    task = thread.task
    path = await thread.ptr(target)
    name = await thread.ptr("user.x")
    with pytest.raises(OSError) as info:
        await task.setxattr(path, name, await thread.ptr(b"a"), XATTR.REPLACE)
    assert info.value.errno == errno.ENODATA
    await task.setxattr(path, name, await thread.ptr(b"a"), XATTR.CREATE)
    with pytest.raises(OSError) as info:
        await task.setxattr(path, name, await thread.ptr(b"b"), XATTR.CREATE)
    assert info.value.errno == errno.EEXIST
    await task.setxattr(path, name, await thread.ptr(b"c"), XATTR.REPLACE)
    assert os.getxattr(target, "user.x") == b"c"
    with pytest.raises(OSError) as info:
        await task.setxattr(path, name, await thread.ptr(b"d"), XATTR.CREATE | XATTR.REPLACE)
    assert info.value.errno in (errno.EEXIST, errno.EINVAL)
    with pytest.raises(ValueError):
        await task.setxattr(path, name, await thread.ptr(b"e"), 4)  # type: ignore[arg-type]


async def test_errors_leave_buffers_usable(thread: Thread, target: Path) -> None:
    task = thread.task
    path = await thread.ptr(target)
    os.setxattr(target, "user.big", b"0123456789")
    small = await thread.malloc(bytes, 4)
    with pytest.raises(OSError) as info:
        await task.getxattr(path, await thread.ptr("user.big"), small)
    assert info.value.errno == errno.ERANGE
    assert not small.consumed
    with pytest.raises(OSError) as info:
        await task.getxattr(path, await thread.ptr("user.none"), small)
    assert info.value.errno == errno.ENODATA
    names = await thread.malloc(XattrNameList, 3)
    with pytest.raises(OSError) as info:
        await task.listxattr(path, names)
    assert info.value.errno == errno.ERANGE
    assert not names.consumed
    # An unknown namespace: EOPNOTSUPP.
    with pytest.raises(OSError) as info:
        await task.setxattr(path, await thread.ptr("nosuch.name"), await thread.ptr(b"v"))
    assert info.value.errno == errno.EOPNOTSUPP
    # A name too long: ERANGE.
    with pytest.raises(OSError) as info:
        await task.getxattr(path, await thread.ptr("user." + "n" * XATTR_NAME_MAX), small)
    assert info.value.errno == errno.ERANGE
    # A missing file.
    with pytest.raises(OSError) as info:
        await task.listxattr(await thread.ptr(target.parent / "missing"), None)
    assert info.value.errno == errno.ENOENT
    # Type errors: a name that is not a str pointer, a value not bytes,
    # a list buffer of the wrong type.
    with pytest.raises(TypeError):
        await task.getxattr(path, await thread.ptr(b"user.big"), small)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setxattr(path, await thread.ptr("user.s"), await thread.malloc(bytes, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.setxattr(path, await thread.ptr("user.s"), await thread.ptr("text"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.getxattr(path, await thread.ptr("user.big"), await thread.malloc(str, 4))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.listxattr(path, small)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.getxattr(path, await thread.ptr("user.big"), names)  # type: ignore[arg-type]


async def test_symlink_variants(thread: Thread, target: Path) -> None:
    task = thread.task
    link = target.parent / "link"
    link.symlink_to(target)
    os.setxattr(target, "user.t", b"target's")
    path = await thread.ptr(link)
    name = await thread.ptr("user.t")
    buf = await thread.malloc(bytes, 32)
    # The plain calls follow the link; the l- calls do not.
    valid, rest = await task.getxattr(path, name, buf)
    assert await valid.read() == b"target's"
    with pytest.raises(OSError) as info:
        await task.lgetxattr(path, name, valid + rest)
    assert info.value.errno == errno.ENODATA
    listed, _ = await task.llistxattr(path, await thread.malloc(XattrNameList, 64))
    assert "user.t" not in await listed.read()
    assert await task.llistxattr(path, None) >= 0
    # user.* attributes are not allowed on symlinks: EPERM.
    with pytest.raises(OSError) as info:
        await task.lsetxattr(path, name, await thread.ptr(b"v"))
    assert info.value.errno == errno.EPERM
    with pytest.raises(OSError) as info:
        await task.lremovexattr(path, name)
    assert info.value.errno in (errno.EPERM, errno.ENODATA)
    # Through the link, setting and removing reach the target.
    await task.setxattr(path, await thread.ptr("user.via"), await thread.ptr(b"link"))
    assert os.getxattr(target, "user.via") == b"link"
    await task.removexattr(path, await thread.ptr("user.via"))
    assert "user.via" not in os.listxattr(target)
    # On a regular file the l- calls act as the plain ones.
    regular = await thread.ptr(target)
    await task.lsetxattr(regular, await thread.ptr("user.l"), await thread.ptr(b"L"))
    four = await thread.malloc(bytes, 4)
    valid, _ = await task.lgetxattr(regular, await thread.ptr("user.l"), four)
    assert await valid.read() == b"L"
    await task.lremovexattr(regular, await thread.ptr("user.l"))
    assert "user.l" not in os.listxattr(target)


async def test_fd_variants(thread: Thread, target: Path) -> None:
    fd = await thread.task.open(await thread.ptr(target), O.RDWR)
    name = await thread.ptr("user.fd")
    await fd.fsetxattr(name, await thread.ptr(b"by fd"), XATTR.CREATE)
    assert os.getxattr(target, "user.fd") == b"by fd"
    assert await fd.fgetxattr(name, None) == 5
    valid, rest = await fd.fgetxattr(name, await thread.malloc(bytes, 5))
    assert await valid.read() == b"by fd" and rest.size() == 0
    assert await fd.flistxattr(None) == len("user.fd\0")
    listed, _ = await fd.flistxattr(await thread.malloc(XattrNameList, 100))
    assert await listed.read() == XattrNameList(["user.fd"])
    await fd.fremovexattr(name)
    assert os.listxattr(target) == []
    with pytest.raises(OSError) as info:
        await fd.fremovexattr(name)
    assert info.value.errno == errno.ENODATA
    # An fd without attributes of its own kind: a pipe has no user.* (EPERM).
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.fsetxattr(name, await thread.ptr(b"v"))
    assert info.value.errno in (errno.EPERM, errno.EOPNOTSUPP)
    await fd.close()
    with pytest.raises(ValueError):
        await fd.fgetxattr(name, None)


async def test_large_value(thread: Thread, target: Path) -> None:
    task = thread.task
    path = await thread.ptr(target)
    name = await thread.ptr("user.large")
    data = os.urandom(3000)
    await task.setxattr(path, name, await thread.ptr(data))
    valid, _ = await task.getxattr(path, name, await thread.malloc(bytes, XATTR_SIZE_MAX))
    assert await valid.read() == data
    # Bigger than any value may be: E2BIG.
    with pytest.raises(OSError) as info:
        await task.setxattr(path, name, await thread.ptr(bytes(XATTR_SIZE_MAX + 1)))
    assert info.value.errno == errno.E2BIG


def test_name_list() -> None:
    names = XattrNameList(["user.a", "trusted.b"])
    assert names.to_bytes() == b"user.a\0trusted.b\0"
    assert XattrNameList.from_bytes(b"user.a\0trusted.b\0") == names
    assert XattrNameList.from_bytes(b"") == XattrNameList()
    assert XATTR_LIST_MAX == 65536
    with pytest.raises(ValueError):
        XattrNameList.from_bytes(b"user.a")  # not NUL-terminated
    with pytest.raises(ValueError):
        XattrNameList(["a\0b"])
    with pytest.raises(ValueError):
        XattrNameList([""])
    with pytest.raises(TypeError):
        XattrNameList("user.a")
    with pytest.raises(TypeError):
        XattrNameList([b"user.a"])
