"""Child threads: clone, the syscall connection, exec, child processes."""

from __future__ import annotations

import gc
import os
import random
import time

import anyio
import anyio.lowlevel
import pytest

from rsyscall import ChildThread, Command, SyscallHangup, local_thread
from rsyscall.fcntl import O
from rsyscall.sched import CLONE
from rsyscall.signal import SIG
from rsyscall.sys.socket import AF, SOCK
from rsyscall.sys.wait import CalledProcessError
from rsyscall.unistd import Pipe

from .util import mapping_count, open_fds

pytestmark = pytest.mark.anyio


def zombies_of(pid: int) -> list[int]:
    """Children of `pid` that are zombies (state Z)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


async def test_clone_getpid_exit() -> None:
    child = await local_thread.clone()
    assert isinstance(child, ChildThread)
    pid = await child.task.getpid()
    assert pid == child.process.pid != os.getpid()
    assert await child.task.getppid() == os.getpid()
    state = await child.exit(3)
    assert state.exit_status == 3 and not state.clean()
    with pytest.raises(SyscallHangup):
        await child.task.getpid()


async def test_nested_clone() -> None:
    child = await local_thread.clone()
    grandchild = await child.clone()
    assert await grandchild.task.getppid() == await child.task.getpid()
    # The grandchild's syscalls come straight from us, not through the child.
    assert await grandchild.task.getpid() == grandchild.process.pid
    great = await grandchild.clone()
    assert await great.task.getppid() == grandchild.process.pid
    assert (await great.exit(4)).exit_status == 4
    assert (await grandchild.exit(5)).exit_status == 5
    await child.exit(0)


async def test_exec_exit_codes_and_check() -> None:
    sh = local_thread.environ.sh
    for code in (0, 1, 42):
        child = await local_thread.clone()
        process = await child.exec(sh.args("-c", f"exit {code}"))
        state = await process.waitpid()
        assert state.exit_status == code
    assert (await local_thread.run(sh.args("-c", "true"))).clean()
    with pytest.raises(CalledProcessError) as info:
        await local_thread.run(sh.args("-c", "exit 9"))
    assert info.value.state.exit_status == 9
    state = await local_thread.run(sh.args("-c", "kill -TERM $$"), check=False)
    assert state.killed_with() == SIG.TERM


async def test_exec_output_through_pipe_with_setup() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    child = await thread.clone()
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    # Set the child up syscall by syscall before exec: its working
    # directory and a file it will read.
    directory = f"/tmp/rsyscall-test-{os.getpid()}-{random.randrange(1 << 30)}"
    await child.mkdir(directory)
    await child.task.chdir(await child.ptr(directory))
    await child.spit("greeting", "hello from the child's cwd\n")
    process = await child.exec(
        thread.environ.sh.args("-c", 'pwd; cat greeting; echo "$EXTRA"').env(EXTRA="env works")
    )
    await pipe.write.close()
    output = await thread.read_to_eof(pipe.read)
    assert (await process.check()).clean()
    assert output.decode().splitlines() == [directory, "hello from the child's cwd", "env works"]
    os.unlink(f"{directory}/greeting")
    os.rmdir(directory)


async def test_failed_exec_leaves_child_usable() -> None:
    child = await local_thread.clone()
    with pytest.raises(FileNotFoundError):
        await child.exec(Command("/nonexistent/program", ["program"]))
    with pytest.raises(PermissionError):
        await child.exec(Command("/etc", ["etc"]))  # a directory
    assert await child.task.getpid() == child.process.pid
    true = await local_thread.environ.which("true")
    assert (await (await child.exec(true)).check()).clean()


async def test_clone_files_shares_fd_table() -> None:
    child = await local_thread.clone(CLONE.FILES)
    fd = await child.task.open(await child.ptr("/dev/null"), O.RDONLY)
    # The fd is in our table too: the same number names /dev/null here.
    assert os.readlink(f"/proc/self/fd/{fd.number}") == "/dev/null"
    await fd.close()
    await child.exit(0)


async def test_inherit_fd_and_private_table() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    child = await thread.clone()
    theirs = child.inherit_fd(pipe.write)
    # Closing our copy leaves the child's open: the pipe still has a writer.
    await pipe.write.close()
    await theirs.write(await child.ptr(b"from the child's copy"))
    await theirs.close()
    await child.exit(0)
    assert await thread.read_to_eof(pipe.read) == b"from the child's copy"
    with pytest.raises(ValueError):
        child2 = await thread.clone()
        other = await child2.clone()
        child2.inherit_fd(await other.task.open(await other.ptr("/"), O.RDONLY))


async def test_sigkill_fails_pending_and_queued_calls_fast() -> None:
    thread = local_thread
    pipe = await thread.pipe()
    child = await thread.clone()
    blocked = child.inherit_fd(pipe.read)
    errors: list[BaseException] = []

    async def call(coro_fn: object) -> None:
        try:
            await coro_fn()  # type: ignore[operator]
        except SyscallHangup as error:
            errors.append(error)

    async def blocking_read() -> None:
        await blocked.read(await child.malloc(bytes, 10))

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        # One call blocks in the child; the others queue behind it.
        tg.start_soon(call, blocking_read)
        await anyio.sleep(0.05)
        for _ in range(20):
            tg.start_soon(call, child.task.getpid)
        await anyio.sleep(0.05)
        await child.process.kill(SIG.KILL)
    assert len(errors) == 21
    assert time.monotonic() - start < 5
    state = await child.process.waitpid()
    assert state.killed_with() == SIG.KILL
    with pytest.raises(SyscallHangup):
        await child.task.getpid()
    # The parent is unharmed.
    assert await thread.task.getpid() == os.getpid()
    new_child = await thread.clone()
    assert await new_child.task.getpid() == new_child.process.pid


async def test_cancellation_at_random_points_keeps_connection_in_sync() -> None:
    thread = local_thread
    fds_before = open_fds()
    child = await thread.clone()
    child_pid = child.process.pid
    await child.epoller()  # the child's epoll fd stays; count from after it
    child_fds_before = set(os.listdir(f"/proc/{child_pid}/fd"))
    rng = random.Random(1234)

    async def work() -> None:
        fd = await child.task.open(await child.ptr("/dev/null"), O.RDONLY)
        await anyio.lowlevel.checkpoint()
        assert await child.task.getpid() == child_pid
        pipe = await (await child.task.pipe(await child.malloc(Pipe), O.NONBLOCK)).read()
        reader = await child.make_afd(pipe.read)
        await anyio.lowlevel.checkpoint()

        async def write_soon() -> None:
            await anyio.sleep(rng.random() * 0.0002)
            await pipe.write.write(await child.ptr(b"x"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_soon)
            # Waits in the child's epoll_wait: the cancellable part.
            assert await reader.read_some_bytes() == b"x"
        await reader.close()
        await fd.close()

    completed = 0
    for _ in range(1000):
        with anyio.move_on_after(rng.random() * 0.002):
            await work()
            completed += 1
    # Some calls were cancelled part-way, some completed; none broke sync.
    assert 0 < completed < 1000
    # trio keeps the last Cancelled (and the frame holding our last handles)
    # until the next cancellation: make one, so what was dropped is freed.
    with anyio.move_on_after(0):
        await anyio.sleep(1)
    for _ in range(10):
        assert await child.task.getpid() == child_pid
    gc.collect()
    assert await child.task.getpid() == child_pid  # flushes deferred closes
    assert set(os.listdir(f"/proc/{child_pid}/fd")) == child_fds_before
    await child.exit(0)
    assert open_fds() == fds_before


async def test_ten_threads_twenty_concurrent_calls_with_async_io() -> None:
    thread = local_thread
    children = [await thread.clone() for _ in range(10)]

    async def exercise(child: ChildThread, results: list[int]) -> None:
        pair = await child.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
        first = await child.make_afd(pair.first)
        second = await child.make_afd(pair.second)

        async def call(i: int) -> None:
            results.append(await child.task.getpid())

        async def echo() -> None:
            data = await second.read_some_bytes()
            await second.write_all_bytes(data.upper())

        async with anyio.create_task_group() as tg:
            tg.start_soon(echo)
            for i in range(20):
                tg.start_soon(call, i)
            await first.write_all_bytes(b"async in a child")
            assert await first.read_some_bytes() == b"ASYNC IN A CHILD"
        await first.close()
        await second.close()

    all_results: list[list[int]] = [[] for _ in children]
    async with anyio.create_task_group() as tg:
        for child, results in zip(children, all_results, strict=True):
            tg.start_soon(exercise, child, results)
    for child, results in zip(children, all_results, strict=True):
        assert results == [child.process.pid] * 20
    for child in children:
        await child.exit(0)


async def test_remote_epoll_does_not_starve_other_calls() -> None:
    child = await local_thread.clone()
    pipe = await (await child.task.pipe(await child.malloc(Pipe), O.NONBLOCK)).read()
    reader = await child.make_afd(pipe.read)
    got: list[bytes] = []

    async def read() -> None:
        got.append(await reader.read_some_bytes())

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.sleep(0.05)
        # The child blocks in epoll_wait now, yet answers other calls.
        for _ in range(50):
            assert await child.task.getpid() == child.process.pid
        assert not got
        await pipe.write.write(await child.ptr(b"woken"))
    assert got == [b"woken"]
    # A cancelled wait in the child leaves it usable.
    with anyio.move_on_after(0.05):
        await reader.read_some_bytes()
    assert await child.task.getpid() == child.process.pid
    await child.exit(0)


async def test_dropped_children_are_killed_and_reaped() -> None:
    thread = local_thread
    me = os.getpid()
    child = await thread.clone()
    pid = child.process.pid
    del child
    gc.collect()
    assert pid not in children_of(me)
    grandparent = await thread.clone()
    grandchild = await grandparent.clone()
    grandchild_pid = grandchild.process.pid
    del grandchild
    gc.collect()
    await grandparent.task.getpid()  # the deferred kill and reap run in order
    assert grandchild_pid not in children_of(grandparent.process.pid)
    sleeper = await thread.clone()
    process = await sleeper.exec(thread.environ.sh.args("-c", "sleep 100"))
    sleeper_pid = process.pid
    del sleeper, process
    gc.collect()
    assert sleeper_pid not in children_of(me)
    assert not zombies_of(me)


async def test_clone_exec_wait_cycles_leak_nothing() -> None:
    thread = local_thread
    true = await thread.environ.which("true")
    await thread.run(true)  # warm up: the epoll fd and arenas exist
    gc.collect()
    fds_before = open_fds()
    maps_before = mapping_count()
    mapped_before = thread.task.space.allocator.mapped_bytes()
    for _ in range(1000):
        await thread.run(true)
    gc.collect()
    assert not zombies_of(os.getpid())
    assert not children_of(os.getpid())
    assert open_fds() == fds_before
    assert thread.task.space.allocator.mapped_bytes() == mapped_before
    # Python's own heap may grow a little; a mapping per clone would be 1000.
    assert mapping_count() <= maps_before + 5


async def test_clone_bad_input() -> None:
    with pytest.raises(ValueError):
        await local_thread.clone(CLONE.VM)
    with pytest.raises(TypeError):
        await local_thread.clone("NEWNS")  # type: ignore[arg-type]
    child = await local_thread.clone()
    with pytest.raises(TypeError):
        await child.exec(["true"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await child.exec(Command("/bin/true", ["true", "nul\0byte"]))
    with pytest.raises(TypeError):
        child.inherit_fd(3)  # type: ignore[arg-type]
    assert await child.task.getpid() == child.process.pid
    await child.exit(0)


async def test_namespaces_as_in_the_demo() -> None:
    from rsyscall.net.if_ import bring_up
    from rsyscall.netinet.ip import SockaddrIn
    from rsyscall.sys.mount import MS
    from rsyscall.sys.socket import Sockaddr
    from rsyscall.sys.utsname import Utsname

    thread = local_thread
    child = await thread.clone(
        CLONE.NEWUSER | CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWUTS | CLONE.NEWIPC
    )
    # The uid map keeps our ids; the child is pid 1 of its pid namespace.
    assert await child.task.getuid() == os.getuid()
    assert await child.task.getpid() == 1
    await child.task.sethostname(await child.ptr(b"rsyscall-test"))
    uts = await (await child.task.uname(await child.malloc(Utsname))).read()
    assert uts.nodename == "rsyscall-test" and os.uname().nodename != "rsyscall-test"
    # A tmpfs over /tmp, private to the child's mount namespace.
    await child.task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)
    await child.task.mount(
        await child.ptr("tmpfs"), await child.ptr("/tmp"), await child.ptr("tmpfs"), MS.NONE, None
    )
    marker = f"/tmp/rsyscall-namespace-test-{os.getpid()}"
    await child.spit(marker, "only in the child")
    assert not os.path.exists(marker)
    # Loopback, up, with a listener on it that the parent cannot reach.
    await bring_up(child)
    listener = await child.task.socket(AF.INET, SOCK.STREAM)
    await listener.bind(await child.ptr(SockaddrIn(0, "127.0.0.1")))
    await listener.listen(1)
    bound, _ = await listener.getsockname(await child.malloc(Sockaddr))
    address = await bound.read()
    assert isinstance(address, SockaddrIn)
    client = await child.task.socket(AF.INET, SOCK.STREAM)
    await client.connect(await child.ptr(address))
    connection = await listener.accept()
    await client.write(await child.ptr(b"inside"))
    got, _ = await connection.read(await child.malloc(bytes, 16))
    assert await got.read() == b"inside"
    with pytest.raises(ConnectionRefusedError):
        ours = await thread.task.socket(AF.INET, SOCK.STREAM)
        await ours.connect(await thread.ptr(address))
    # A grandchild lands in the same namespaces, as pid 2.
    grandchild = await child.clone()
    assert await grandchild.task.getpid() == 2
    await grandchild.exit(0)
    await child.exit(0)


async def test_child_dies_with_its_parent_thread() -> None:
    child = await local_thread.clone()
    grandchild = await child.clone()
    grandchild_pid = grandchild.process.pid
    # The grandchild's parent thread is the child: kill it, and the
    # grandchild gets SIGKILL too (PR_SET_PDEATHSIG), so its calls fail.
    await child.process.kill(SIG.KILL)
    assert (await child.process.waitpid()).killed_with() == SIG.KILL
    with pytest.raises(SyscallHangup):
        for _ in range(1000):
            await grandchild.task.getpid()
            await anyio.sleep(0.001)
    # Dead: gone, or a zombie waiting for init, which adopted the orphan
    # (the hangup can come a moment before the exit is complete).
    def dead() -> bool:
        try:
            with open(f"/proc/{grandchild_pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 5
    while not dead() and time.monotonic() < deadline:
        await anyio.sleep(0.005)
    assert dead()


async def test_exec_is_seen_without_a_helper_unless_the_table_is_shared() -> None:
    """White box: a child with its own fd table holds the only copy of its
    connection's end, so exec closes it and no helper process is needed;
    one that shares our table needs a futex helper, reaped at once."""
    ours_before = set(children_of(os.getpid()))
    child = await local_thread.clone()
    assert set(children_of(os.getpid())) - ours_before == {child.process.pid}
    process = await child.exec(local_thread.environ.sh.args("-c", "sleep 0.2"))
    assert set(children_of(os.getpid())) - ours_before == {child.process.pid}
    await process.check()
    assert set(children_of(os.getpid())) == ours_before

    shared = await local_thread.clone(CLONE.FILES)
    process = await shared.exec(local_thread.environ.sh.args("-c", "sleep 0.2"))
    # The helper saw the exec and was reaped; only the program is left.
    assert set(children_of(os.getpid())) - ours_before == {shared.process.pid}
    await process.check()
    assert set(children_of(os.getpid())) == ours_before
