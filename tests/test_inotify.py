"""rsyscall.sys.inotify: inotify_init1, inotify_add_watch, inotify_rm_watch,
the `struct inotify_event` records, and the async Inotify watcher, on real
changes to a tmp_path directory."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import FileDescriptor, Thread, UseAfterConsumeError
from rsyscall.fcntl import FD, F
from rsyscall.sys.inotify import (
    IN,
    NAME_MAX,
    Inotify,
    InotifyEvent,
    InotifyEventList,
    WatchDescriptor,
)

from .util import thread_fds

pytestmark = pytest.mark.anyio

_BUFFER = 16 + NAME_MAX + 1


async def read_raw(thread: Thread, fd: FileDescriptor) -> bytes:
    """One read of a (non-blocking) inotify fd, as bytes."""
    valid, _ = await fd.read(await thread.malloc(bytes, 4096))
    return await valid.read()


async def still_works(thread: Thread, path: Path) -> None:
    fd = await thread.task.inotify_init1(IN.NONBLOCK)
    wd = await fd.inotify_add_watch(await thread.ptr(path), IN.ATTRIB)
    os.chmod(path, 0o755)
    expected = [InotifyEvent(wd, IN.ATTRIB | IN.ISDIR)]
    assert InotifyEventList.from_bytes(await read_raw(thread, fd)) == expected
    await fd.close()


# ---- the syscalls ----


async def test_syscalls_create_modify_delete(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    fd = await task.inotify_init1(IN.NONBLOCK)
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC  # always added
    assert await fd.fcntl(F.GETFL) & os.O_NONBLOCK
    with pytest.raises(BlockingIOError):
        await read_raw(thread, fd)
    wd = await fd.inotify_add_watch(
        await thread.ptr(tmp_path), IN.CREATE | IN.MODIFY | IN.DELETE
    )
    assert isinstance(wd, WatchDescriptor) and wd >= 1
    assert repr(wd) == f"WatchDescriptor({int(wd)})"
    (tmp_path / "a").write_text("x")
    (tmp_path / "a").unlink()
    os.mkdir(tmp_path / "sub")
    data = await read_raw(thread, fd)
    events = InotifyEventList.from_bytes(data)
    assert events == [
        InotifyEvent(wd, IN.CREATE, 0, "a"),
        InotifyEvent(wd, IN.MODIFY, 0, "a"),
        InotifyEvent(wd, IN.DELETE, 0, "a"),
        InotifyEvent(wd, IN.CREATE | IN.ISDIR, 0, "sub"),
    ]
    # The kernel's bytes, padding included, are what to_bytes writes.
    assert events.to_bytes() == data
    await fd.inotify_rm_watch(wd)
    assert InotifyEventList.from_bytes(await read_raw(thread, fd)) == [InotifyEvent(wd, IN.IGNORED)]
    await fd.close()


async def test_blocking_fd_and_rename_cookie(thread: Thread, tmp_path: Path) -> None:
    fd = await thread.task.inotify_init1()
    assert not await fd.fcntl(F.GETFL) & os.O_NONBLOCK
    wd = await fd.inotify_add_watch(await thread.ptr(tmp_path), IN.MOVE)
    (tmp_path / "old").touch()
    os.rename(tmp_path / "old", tmp_path / ("new" + "x" * 40))
    # Events are pending, so this read does not block.
    data = await read_raw(thread, fd)
    moved_from, moved_to = InotifyEventList.from_bytes(data)
    assert (moved_from.wd, moved_from.mask, moved_from.name) == (wd, IN.MOVED_FROM, "old")
    assert (moved_to.mask, moved_to.name) == (IN.MOVED_TO, "new" + "x" * 40)
    assert moved_from.cookie == moved_to.cookie != 0
    assert InotifyEventList([moved_from, moved_to]).to_bytes() == data
    await fd.close()


async def test_watch_file_itself(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    fd = await thread.task.inotify_init1(IN.NONBLOCK)
    wd = await fd.inotify_add_watch(await thread.ptr(str(path)), IN.MODIFY | IN.DELETE_SELF)
    path.write_text("more")
    path.unlink()
    events = InotifyEventList.from_bytes(await read_raw(thread, fd))
    # No names: the events are about the watched file itself.
    assert events == [
        InotifyEvent(wd, IN.MODIFY),
        InotifyEvent(wd, IN.DELETE_SELF),
        InotifyEvent(wd, IN.IGNORED),
    ]
    await fd.close()


async def test_syscall_errors(thread: Thread, tmp_path: Path) -> None:
    task = thread.task
    fd = await task.inotify_init1(IN.NONBLOCK)
    path = await thread.ptr(tmp_path)
    # Kernel rejections.
    with pytest.raises(OSError) as info:
        await task.inotify_init1(IN.ACCESS)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        await fd.inotify_add_watch(await thread.ptr(tmp_path / "missing"), IN.CREATE)
    with pytest.raises(OSError) as info:
        await fd.inotify_add_watch(path, IN.NONE)  # no events
    assert info.value.errno == errno.EINVAL
    (tmp_path / "file").touch()
    with pytest.raises(NotADirectoryError):
        await fd.inotify_add_watch(await thread.ptr(tmp_path / "file"), IN.ONLYDIR | IN.OPEN)
    wd = await fd.inotify_add_watch(path, IN.CREATE)
    with pytest.raises(FileExistsError):
        await fd.inotify_add_watch(path, IN.CREATE | IN.MASK_CREATE)
    with pytest.raises(OSError) as info:
        await fd.inotify_rm_watch(WatchDescriptor(wd + 1000))
    assert info.value.errno == errno.EINVAL
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:  # not an inotify fd
        await pipe.read.inotify_add_watch(path, IN.CREATE)
    assert info.value.errno == errno.EINVAL
    # Checked in Python.
    with pytest.raises(TypeError):
        await task.inotify_init1("NONBLOCK")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.inotify_add_watch(str(tmp_path), IN.CREATE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.inotify_add_watch(await thread.ptr(b"/tmp\0"), IN.CREATE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.inotify_add_watch(path, "CREATE")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await fd.inotify_add_watch(path, 1 << 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await fd.inotify_add_watch(path, -1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fd.inotify_rm_watch("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await fd.inotify_rm_watch(WatchDescriptor(1 << 31))
    consumed = await thread.ptr(tmp_path)
    await consumed.write(tmp_path)  # consumes it
    with pytest.raises(UseAfterConsumeError):
        await fd.inotify_add_watch(consumed, IN.CREATE)
    await pipe.read.close()
    await pipe.write.close()
    await fd.close()
    with pytest.raises(UseAfterConsumeError):
        await fd.inotify_rm_watch(wd)
    await still_works(thread, tmp_path)


# ---- Inotify ----


async def test_watcher_waits_for_changes(thread: Thread, tmp_path: Path) -> None:
    inotify = await Inotify.make(thread)
    wd = await inotify.add_watch(tmp_path, IN.CREATE | IN.CLOSE_WRITE | IN.DELETE)
    seen: list[InotifyEvent] = []

    async def watch() -> None:
        while len(seen) < 3:
            seen.extend(await inotify.read_events())

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await anyio.sleep(0.05)
        assert not seen  # waiting, without blocking this event loop
        await thread.spit(tmp_path / "made", "data")
        await anyio.sleep(0.02)
        os.unlink(tmp_path / "made")
    assert [(e.wd, e.mask, e.name) for e in seen] == [
        (wd, IN.CREATE, "made"),
        (wd, IN.CLOSE_WRITE, "made"),
        (wd, IN.DELETE, "made"),
    ]
    await inotify.rm_watch(wd)
    with anyio.fail_after(5):
        assert await inotify.read_events() == [InotifyEvent(wd, IN.IGNORED)]
    await inotify.close()


async def test_watcher_async_iteration(thread: Thread, tmp_path: Path) -> None:
    async with await Inotify.make(thread) as inotify:
        wd = await inotify.add_watch(str(tmp_path), IN.CREATE)
        names = [f"file{i}" for i in range(5)]

        async def make_files() -> None:
            for name in names:
                await anyio.sleep(0.01)
                (tmp_path / name).touch()

        got: list[str | None] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(make_files)
            with anyio.fail_after(5):
                async for event in inotify:
                    assert event.wd == wd and event.mask == IN.CREATE
                    got.append(event.name)
                    if len(got) == len(names):
                        break
        assert got == names


async def test_watcher_iteration_ends_when_closed(thread: Thread, tmp_path: Path) -> None:
    inotify = await Inotify.make(thread)
    await inotify.add_watch(tmp_path, IN.CREATE)
    got: list[InotifyEvent] = []

    async def iterate() -> None:
        async for event in inotify:
            got.append(event)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(iterate)
            await anyio.sleep(0.02)
            await inotify.close()
    assert got == []
    with pytest.raises(UseAfterConsumeError):
        await inotify.read_events()


async def test_watcher_errors(thread: Thread, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await Inotify.make(thread, buffer_size=_BUFFER - 1)
    with pytest.raises(TypeError):
        await Inotify.make(thread, buffer_size=4096.0)  # type: ignore[arg-type]
    # The smallest buffer still takes the longest name.
    inotify = await Inotify.make(thread, buffer_size=_BUFFER)
    wd = await inotify.add_watch(tmp_path, IN.CREATE)
    with pytest.raises(FileNotFoundError):
        await inotify.add_watch(tmp_path / "missing", IN.CREATE)
    with pytest.raises(TypeError):
        await inotify.add_watch(1, IN.CREATE)  # type: ignore[arg-type]
    long_name = "n" * NAME_MAX
    (tmp_path / long_name).touch()
    (tmp_path / "short").touch()
    with anyio.fail_after(5):
        first = await inotify.read_events()
        assert first == [InotifyEvent(wd, IN.CREATE, 0, long_name)]
        assert await inotify.read_events() == [InotifyEvent(wd, IN.CREATE, 0, "short")]
    await inotify.close()
    await still_works(thread, tmp_path)


async def test_watcher_churn_leaks_nothing(thread: Thread, tmp_path: Path) -> None:
    await (await Inotify.make(thread)).close()  # warm up the thread's epoll
    fds_before = await thread_fds(thread)
    # Far more than max_user_instances (128 by default): each must really close.
    for i in range(500):
        inotify = await Inotify.make(thread)
        wd = await inotify.add_watch(tmp_path, IN.CREATE)
        if i % 100 == 0:
            (tmp_path / f"f{i}").touch()
            assert await inotify.read_events() == [InotifyEvent(wd, IN.CREATE, 0, f"f{i}")]
        await inotify.close()
    assert await thread_fds(thread) == fds_before


# ---- the record format ----

names = st.none() | st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=300
) | st.binary(max_size=300).map(lambda b: os.fsdecode(b.replace(b"\0", b"")))
events = st.builds(
    InotifyEvent,
    st.integers(-(2**31), 2**31 - 1).map(WatchDescriptor),
    st.integers(0, 2**32 - 1).map(IN),
    st.integers(0, 2**32 - 1),
    names,
)


@given(events)
def test_event_roundtrip(event: InotifyEvent) -> None:
    data = event.to_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    assert len(data) == 16 + length
    if event.name is None:
        assert length == 0
    else:
        # NUL-terminated, padded to a multiple of 16 like the kernel's.
        assert length % 16 == 0
        assert len(os.fsencode(event.name)) < length <= len(os.fsencode(event.name)) + 16
    assert InotifyEvent.from_bytes(data) == event


@given(st.lists(events, max_size=20))
def test_event_list_roundtrip(values: list[InotifyEvent]) -> None:
    value = InotifyEventList(values)
    data = value.to_bytes()
    assert data == b"".join(e.to_bytes() for e in values)
    assert InotifyEventList.from_bytes(data) == value


def test_event_layout() -> None:
    data = InotifyEvent(WatchDescriptor(3), IN.CREATE | IN.ISDIR, 7, "ab").to_bytes()
    assert data == struct.pack("<iIII", 3, 0x40000100, 7, 16) + b"ab" + bytes(14)
    overflow = InotifyEvent(WatchDescriptor(-1), IN.Q_OVERFLOW)
    assert overflow.to_bytes() == struct.pack("<iIII", -1, 0x4000, 0, 0)
    assert InotifyEvent.layout.size == 16


async def test_event_list_through_memory(thread: Thread) -> None:
    value = InotifyEventList(
        [
            InotifyEvent(WatchDescriptor(1), IN.OPEN, 0, "x"),
            InotifyEvent(WatchDescriptor(2), IN.IGNORED),
        ]
    )
    ptr = await thread.ptr(value)
    assert ptr.size() == 32 + 16
    assert await ptr.read() == value


def test_in_values() -> None:
    # The documented collision: inotify_init1's O_NONBLOCK is IN_MOVE_SELF.
    assert IN["NONBLOCK"] is IN.MOVE_SELF
    assert IN.CLOEXEC == os.O_CLOEXEC and IN.NONBLOCK == os.O_NONBLOCK
    assert int(IN.ALL_EVENTS) == 0xFFF
    assert IN.CLOSE == IN.CLOSE_WRITE | IN.CLOSE_NOWRITE


def test_event_bad_values() -> None:
    with pytest.raises(TypeError):
        InotifyEvent("1", IN.CREATE)  # type: ignore[arg-type]
    assert type(InotifyEvent(1, IN.CREATE).wd) is WatchDescriptor  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        InotifyEvent(WatchDescriptor(1), IN.CREATE, 0, b"name")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        InotifyEvent(WatchDescriptor(1), 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        InotifyEvent(WatchDescriptor(1), IN.CREATE, 0, "a\0b")
    with pytest.raises(TypeError):
        InotifyEventList([InotifyEvent(WatchDescriptor(1), IN.CREATE), "b"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        InotifyEvent(WatchDescriptor(2**31), IN.CREATE).to_bytes()
    with pytest.raises(ValueError):
        InotifyEvent(WatchDescriptor(1), IN.CREATE, -1).to_bytes()
    with pytest.raises(ValueError):  # a lone surrogate cannot be a file name
        InotifyEvent(WatchDescriptor(1), IN.CREATE, 0, "\ud800").to_bytes()
    good = InotifyEvent(WatchDescriptor(1), IN.CREATE, 0, "name").to_bytes()
    for bad in (good[:10], good[:-1], good[:12] + struct.pack("<I", 1000) + good[16:]):
        with pytest.raises(ValueError):
            InotifyEventList.from_bytes(bad)
