"""rsyscall.dirent: getdents on real directories, and the variable-length
record format of DirentList."""

import os
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import FileDescriptor, Pointer, Thread, UseAfterConsumeError
from rsyscall.dirent import DT, Dirent, DirentList
from rsyscall.fcntl import O
from rsyscall.unistd import SEEK

from .util import thread_fds

pytestmark = pytest.mark.anyio


def test_old_module_name_still_works() -> None:
    # getdents64(2)'s SYNOPSIS names <dirent.h>; rsyscall.linux.dirent, the
    # old home, re-exports everything.
    from rsyscall import dirent
    from rsyscall.linux import dirent as old

    for name in ("DT", "Dirent", "DirentList", "DirentFileDescriptor"):
        assert getattr(old, name) is getattr(dirent, name)
    assert DT.__module__ == "rsyscall.dirent"


async def open_dir(thread: Thread, path: Path) -> FileDescriptor:
    return await thread.task.open(await thread.ptr(path), O.RDONLY | O.DIRECTORY)


async def list_dir(
    thread: Thread, fd: FileDescriptor, size: int = 4096
) -> tuple[list[Dirent], int]:
    """Every entry of `fd`, reading until getdents returns nothing; and how
    many calls returned entries."""
    entries: list[Dirent] = []
    calls = 0
    buf: Pointer[DirentList] = await thread.malloc(DirentList, size)
    while True:
        valid, rest = await fd.getdents(buf)
        if valid.size() == 0:
            # The whole buffer comes back for reuse.
            assert (valid + rest).size() == size
            return entries, calls
        calls += 1
        batch = await valid.read()
        assert batch, "a non-empty part holds at least one entry"
        entries.extend(batch)
        buf = valid + rest


async def still_works(thread: Thread, path: Path) -> None:
    fd = await open_dir(thread, path)
    entries, _ = await list_dir(thread, fd)
    assert {e.name for e in entries} - {".", ".."} == set(os.listdir(path))
    await fd.close()


def scandir_view(path: Path) -> dict[str, tuple[int, DT]]:
    def kind(entry: os.DirEntry[str]) -> DT:
        if entry.is_symlink():
            return DT.LNK
        if entry.is_dir():
            return DT.DIR
        if entry.is_file():
            return DT.REG
        return DT(os.stat(entry.path, follow_symlinks=False).st_mode >> 12)

    with os.scandir(path) as it:
        return {e.name: (e.inode(), kind(e)) for e in it}


async def test_getdents_lists_directory(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "sub").mkdir()
    os.symlink("file", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
    (tmp_path / "ünïcode name").write_text("")
    fd = await open_dir(thread, tmp_path)
    entries, _ = await list_dir(thread, fd)
    names = [e.name for e in entries]
    assert sorted(names) == sorted([".", "..", *os.listdir(tmp_path)])
    got = {e.name: (e.ino, e.type) for e in entries if e.name not in (".", "..")}
    assert got == scandir_view(tmp_path)
    types = {e.name: e.type for e in entries}
    assert types["file"] == DT.REG
    assert types["sub"] == DT.DIR
    assert types["link"] == DT.LNK
    assert types["fifo"] == DT.FIFO
    assert types["sock"] == DT.SOCK
    assert types["."] == types[".."] == DT.DIR
    # The directory offsets are distinct: each says where the next entry is.
    assert len({e.off for e in entries}) == len(entries)
    await fd.close()


async def test_getdents_large_directory(thread: Thread, tmp_path: Path) -> None:
    names = {f"{i:04d}-{'n' * (i % 200)}" for i in range(400)}
    for name in names:
        (tmp_path / name).touch()
    fd = await open_dir(thread, tmp_path)
    entries, calls = await list_dir(thread, fd)
    assert calls > 1  # 400 entries do not fit in 4096 bytes
    assert len(entries) == 402
    assert {e.name for e in entries} == names | {".", ".."}
    # At end of directory getdents keeps returning nothing; after rewinding
    # it lists everything again, even with the smallest buffer allowed.
    again, _ = await list_dir(thread, fd)
    assert again == []
    await fd.lseek(0, SEEK.SET)
    again, calls = await list_dir(thread, fd, Dirent.layout.size)
    assert calls >= len(entries) // 8
    assert again == entries
    await fd.close()


async def test_getdents_buffer_reuse_and_fds(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "a").touch()
    before = await thread_fds(thread)
    for _ in range(3):
        fd = await open_dir(thread, tmp_path)
        entries, calls = await list_dir(thread, fd)
        assert calls == 1
        assert {e.name for e in entries} == {".", "..", "a"}
        del fd
    assert await thread_fds(thread) == before


async def test_getdents_errors(thread: Thread, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    fd = await open_dir(thread, tmp_path)
    # Wrong types.
    with pytest.raises(TypeError):
        await fd.getdents(b"buffer")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.getdents(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.malloc(DirentList)  # a variable-size type needs a size
    # Too small for one entry with the longest name.
    small = await thread.malloc(DirentList, Dirent.layout.size - 1)
    with pytest.raises(ValueError):
        await fd.getdents(small)
    assert not small.consumed
    # A consumed pointer.
    buf = await thread.malloc(DirentList, 4096)
    valid, _ = await fd.getdents(buf)
    with pytest.raises(UseAfterConsumeError):
        await fd.getdents(buf)
    assert {e.name for e in await valid.read()} == {".", "..", "file"}
    # Not a directory: the kernel's error, and the buffer is given back.
    filefd = await thread.task.open(await thread.ptr(tmp_path / "file"), O.RDONLY)
    buf = await thread.malloc(DirentList, 4096)
    with pytest.raises(NotADirectoryError):
        await filefd.getdents(buf)
    assert not buf.consumed
    # A closed handle.
    await fd.close()
    with pytest.raises(UseAfterConsumeError):
        await fd.getdents(buf)
    assert not buf.consumed
    # A nonexistent directory.
    with pytest.raises(FileNotFoundError):
        await open_dir(thread, tmp_path / "missing")
    await still_works(thread, tmp_path)


# ---- the record format ----

# Any str without NUL that encodes, and any bytes without NUL (a name need
# not be valid UTF-8: it decodes with surrogate escapes, and encodes back).
names = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=300
) | st.binary(max_size=300).map(lambda b: os.fsdecode(b.replace(b"\0", b"")))
dirents = st.builds(
    Dirent,
    st.integers(0, 2**64 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(DT),
    names,
)


@given(dirents)
def test_dirent_roundtrip(entry: Dirent) -> None:
    data = entry.to_bytes()
    reclen = struct.unpack_from("<H", data, 16)[0]
    assert reclen == len(data)
    assert len(data) % 8 == 0
    assert len(data) >= 19 + len(os.fsencode(entry.name)) + 1
    assert len(data) < 19 + len(os.fsencode(entry.name)) + 1 + 8
    assert Dirent.from_bytes(data) == entry


@given(st.lists(dirents, max_size=20))
def test_dirent_list_roundtrip(entries: list[Dirent]) -> None:
    value = DirentList(entries)
    data = value.to_bytes()
    assert data == b"".join(e.to_bytes() for e in entries)
    assert DirentList.from_bytes(data) == value


def test_dirent_layout() -> None:
    data = Dirent(0x0102030405060708, -2, DT.DIR, "ab").to_bytes()
    assert data == (
        bytes.fromhex("0807060504030201") + (-2).to_bytes(8, "little", signed=True)
        + (24).to_bytes(2, "little") + bytes([4]) + b"ab\0" + bytes(2)
    )  # fmt: skip


async def test_dirent_list_through_memory(thread: Thread) -> None:
    value = DirentList([Dirent(1, 2, DT.REG, "x"), Dirent(3, 4, DT.LNK, "y" * 100)])
    ptr = await thread.ptr(value)
    assert ptr.size() == 24 + 120
    assert await ptr.read() == value


def test_dirent_bad_values() -> None:
    with pytest.raises(TypeError):
        Dirent(1, 2, DT.REG, b"name")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Dirent("1", 2, DT.REG, "name")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Dirent(1, 2, DT.REG, "a\0b")
    with pytest.raises(ValueError):
        Dirent(1, 2, 3, "name")  # type: ignore[arg-type]  # not a DT
    assert Dirent(1, 2, 8, "name").type is DT.REG  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DirentList([Dirent(1, 2, DT.REG, "a"), "b"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        Dirent(-1, 0, DT.REG, "a").to_bytes()
    with pytest.raises(ValueError):  # a lone surrogate cannot be a file name
        Dirent(1, 0, DT.REG, "\ud800").to_bytes()
    good = Dirent(1, 2, DT.REG, "name").to_bytes()
    for bad in (
        good[:10],  # truncated header
        good[:-1],  # d_reclen past the end
        good[:16] + b"\0\0" + good[18:],  # d_reclen 0: must not loop forever
        good[:19] + b"x" * (len(good) - 19),  # no NUL in the name
    ):
        with pytest.raises(ValueError):
            DirentList.from_bytes(bad)
