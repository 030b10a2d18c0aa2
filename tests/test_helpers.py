"""The small helpers users of the original rsyscall look for, on every
kind of thread."""

from __future__ import annotations

import os

import pytest

from rsyscall import Thread, UseAfterConsumeError, write_user_mappings
from rsyscall.fcntl import O
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sched import CLONE
from rsyscall.sys.socket import AF, SOCK
from rsyscall.sys.stat import Stat

pytestmark = pytest.mark.anyio


async def test_bind_getsockname_and_accept_addr(thread: Thread) -> None:
    listener = await thread.task.socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK)
    bound = await thread.bind_getsockname(listener, SockaddrIn(0, "127.0.0.1"))
    assert isinstance(bound, SockaddrIn) and bound.port != 0
    await listener.listen(4)
    client = await thread.task.socket(AF.INET, SOCK.STREAM)
    await client.connect(await thread.ptr(bound))
    afd = await thread.make_afd(listener)
    connection, peer = await afd.accept_addr()
    assert isinstance(peer, SockaddrIn) and str(peer.addr) == "127.0.0.1"
    own, _ = await client.getsockname(await thread.malloc(SockaddrIn))
    assert (await own.read()).port == peer.port
    await connection.write(await thread.ptr(b"hi"))
    got, _ = await client.read(await thread.malloc(bytes, 2))
    assert await got.read() == b"hi"
    with pytest.raises(TypeError):
        await thread.bind_getsockname(client, "127.0.0.1")  # type: ignore[arg-type]


async def test_with_handle(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    afd = await thread.make_afd(pair.first)
    other = pair.first.for_task(thread.task)
    again = afd.with_handle(other)
    assert again.handle is other
    await pair.second.write(await thread.ptr(b"via the other handle"))
    assert await again.read_some_bytes() == b"via the other handle"
    with pytest.raises(ValueError):
        afd.with_handle(pair.second)
    with pytest.raises(TypeError):
        afd.with_handle(3)  # type: ignore[arg-type]


async def test_as_proc_path(thread: Thread, tmp_path: object) -> None:
    path = f"{tmp_path}/file"
    await thread.spit(path, "contents")
    fd = await thread.task.open(await thread.ptr(path), O.RDONLY)
    proc_path = fd.as_proc_path()
    assert str(proc_path) == f"/proc/{thread.task.pid}/fd/{fd.number}"
    again = await thread.task.open(await thread.ptr(proc_path), O.RDONLY)
    first = await (await fd.fstat(await thread.malloc(Stat))).read()
    second = await (await again.fstat(await thread.malloc(Stat))).read()
    assert (first.dev, first.ino) == (second.dev, second.ino)


async def test_environ_as_arglist(thread: Thread) -> None:
    arglist = await thread.environ.as_arglist()
    assert len(arglist) == len(thread.environ)
    values = {os.fsdecode(await pointer.read()).rstrip("\0") for pointer in arglist}
    assert values == {f"{key}={value}" for key, value in thread.environ.items()}
    await thread.ptr(arglist)  # an envp, for an execve of your own


async def test_pointer_free(thread: Thread) -> None:
    pointer = await thread.malloc(bytes, 1 << 20)
    address = pointer.address
    pointer.free()
    assert pointer.consumed
    with pytest.raises(UseAfterConsumeError):
        pointer.size()
    with pytest.raises(UseAfterConsumeError):
        pointer.free()
    # The memory went back at once: the next allocation of the size gets it.
    assert (await thread.malloc(bytes, 1 << 20)).address == address


async def test_user_mappings_written_by_hand(thread: Thread) -> None:
    uid, gid = await thread.task.geteuid(), await thread.task.getegid()
    child = await thread.clone(CLONE.NEWUSER, automatically_write_user_mappings=False)
    assert await child.task.geteuid() == 65534  # unmapped: the overflow id
    await write_user_mappings(child, uid, gid, in_namespace_uid=0, in_namespace_gid=0)
    assert await child.task.geteuid() == 0 and await child.task.getegid() == 0
    with pytest.raises(ValueError):
        await write_user_mappings(child, -1, gid)
    await child.exit(0)


async def test_spit_to_an_fd(thread: Thread, tmp_path: object) -> None:
    path = f"{tmp_path}/spat"
    fd = await thread.task.open(await thread.ptr(path), O.RDWR | O.CREAT)
    assert await thread.spit(fd, "first ") is fd
    await thread.spit(fd, b"second")
    await fd.close()
    with open(path, "rb") as spat:  # the same machine
        assert spat.read() == b"first second"
    other = await thread.clone()
    with pytest.raises(ValueError):
        await thread.spit(other.stdout, "not ours")
    await other.exit(0)


async def test_unix_addresses_longer_than_sun_path(thread: Thread, tmp_path: object) -> None:
    from rsyscall.sys.un import SockaddrUn, SockaddrUnProcFd

    directory = f"{tmp_path}/{'d' * 60}/{'e' * 60}"
    os.makedirs(directory)
    path = f"{directory}/listening.sock"
    assert len(path) > 108
    with pytest.raises(ValueError):
        SockaddrUn(path)
    addr = await SockaddrUn.from_path(thread, path)
    assert isinstance(addr, SockaddrUnProcFd)
    listener = await thread.task.socket(AF.UNIX, SOCK.STREAM)
    await listener.bind(await thread.ptr(addr))
    await listener.listen(1)
    assert os.path.exists(path)  # the socket file is where the long path says
    client = await thread.task.socket(AF.UNIX, SOCK.STREAM)
    await client.connect(await thread.ptr(addr))
    accepted = await listener.accept()
    await client.write(await thread.ptr(b"long way"))
    got, _ = await accepted.read(await thread.malloc(bytes, 8))
    assert await got.read() == b"long way"
    short = await SockaddrUn.from_path(thread, "/tmp/short.sock")
    assert type(short) is SockaddrUn and short.path == b"/tmp/short.sock"


def _fds_of(pid: int) -> set[int]:
    return {int(name) for name in os.listdir(f"/proc/{pid}/fd")}


async def test_unshare_files_in_a_child(thread: Thread, tmp_path: object) -> None:
    from rsyscall.sched import CLONE as C

    from .util import thread_pid

    pipe = await thread.pipe()
    child = await thread.clone(C.FILES)
    parent_pid, child_pid = thread_pid(thread), child.process.pid
    opened_before = await child.task.open(await child.ptr("/dev/null"), O.RDONLY)
    await child.unshare(C.FILES)
    # New fds are the child's alone now.
    mine = await child.task.open(await child.ptr("/dev/null"), O.RDONLY)
    assert mine.number in _fds_of(child_pid)
    assert os.readlink(f"/proc/{child_pid}/fd/{mine.number}") == "/dev/null"
    # The copy of the parent's pipe is there to claim, like a clone's.
    write_end = child.inherit_fd(pipe.write)
    await write_end.write(await child.ptr(b"after unshare"))
    got, _ = await pipe.read.read(await thread.malloc(bytes, 13))
    assert await got.read() == b"after unshare"
    # A handle made before names the parent's table, and works through it.
    assert opened_before.number in _fds_of(parent_pid)
    await opened_before.close()
    # Exec is seen by EOF on the child's own connection, as for any clone.
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    process = await child.exec(thread.environ.sh.args("-c", "echo exec"))
    await pipe.write.close()
    assert await thread.read_to_eof(pipe.read) == b"exec\n"
    assert (await process.waitpid()).clean()


async def test_unshare_files_is_for_children(thread: Thread) -> None:
    from rsyscall import ChildThread
    from rsyscall.sched import CLONE as C

    if not isinstance(thread, ChildThread):
        with pytest.raises(ValueError):
            await thread.unshare(C.FILES)
    child = await thread.clone()  # a table of its own already: nothing to do
    await child.unshare(C.FILES)
    assert await child.task.getpid() == child.task.pid
    await child.exit(0)
