"""rsyscall benchmarks, each against its baseline in the same run.

    python bench/run.py            # all benchmarks, both event loops
    python bench/run.py --quick    # fewer iterations

Each benchmark times the rsyscall way and the baseline way of doing the
same work, in turn for several rounds, takes the best round of each, and
prints the ratio (rsyscall time / baseline time, so lower is better, 1.0
is parity).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from rsyscall import Command, ReadablePointer, local_thread
from rsyscall.epoller import AsyncFileDescriptor
from rsyscall.fcntl import O
from rsyscall.sys.socket import AF, SOCK

Timer = Callable[[int], Awaitable[float]]


@dataclass
class Benchmark:
    name: str
    baseline_name: str
    ours: Timer
    baseline: Timer
    iterations: int
    goal: str


async def _best_of_pairs(
    ours: Timer, baseline: Timer, iterations: int, repeats: int
) -> tuple[float, float]:
    """The best per-iteration time of each, from `repeats` rounds that run
    the baseline and ours in turn, so that a slow spell of this (shared,
    noisy) machine falls on both rather than on one."""
    await baseline(max(1, iterations // 10))  # warm up
    await ours(max(1, iterations // 10))
    best_ours = best_baseline = float("inf")
    for _ in range(repeats):
        best_baseline = min(best_baseline, await baseline(iterations))
        best_ours = min(best_ours, await ours(iterations))
    return best_ours / iterations, best_baseline / iterations


# ---- awaited local syscall vs os.getpid() ----


async def getpid_rsyscall(n: int) -> float:
    task = local_thread.task
    start = time.perf_counter()
    for _ in range(n):
        await task.getpid()
    return time.perf_counter() - start


async def getpid_os(n: int) -> float:
    getpid = os.getpid
    start = time.perf_counter()
    for _ in range(n):
        getpid()
    return time.perf_counter() - start


# ---- 4 KiB through a pipe: pointers vs os.write/os.read ----

CHUNK = b"x" * 4096


async def pipe_rsyscall(n: int) -> float:
    thread = local_thread
    pipe = await thread.pipe()
    wbuf: ReadablePointer[bytes] = await thread.ptr(CHUNK)
    rbuf = await thread.malloc(bytes, 4096)
    start = time.perf_counter()
    for _ in range(n):
        written, unwritten = await pipe.write.write(wbuf)
        wbuf = written + unwritten
        valid, rest = await pipe.read.read(rbuf)
        data = await valid.read()
        rbuf = valid + rest
    elapsed = time.perf_counter() - start
    assert data == CHUNK
    return elapsed


async def pipe_os(n: int) -> float:
    r, w = os.pipe()
    try:
        start = time.perf_counter()
        for _ in range(n):
            os.write(w, CHUNK)
            data = os.read(r, 4096)
        elapsed = time.perf_counter() - start
    finally:
        os.close(r)
        os.close(w)
    assert data == CHUNK
    return elapsed


# ---- socketpair throughput and latency: AsyncFileDescriptor vs anyio streams ----

BIG = os.urandom(65536)


async def _afd_pair() -> tuple[AsyncFileDescriptor, AsyncFileDescriptor]:
    thread = local_thread
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    return await thread.make_afd(pair.first), await thread.make_afd(pair.second)


async def _anyio_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    first, second = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return (
        await anyio.abc.SocketStream.from_socket(first),
        await anyio.abc.SocketStream.from_socket(second),
    )


async def throughput_rsyscall(n: int) -> float:
    sender, receiver = await _afd_pair()

    async def send() -> None:
        for _ in range(n):
            await sender.write_all_bytes(BIG)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        remaining = n * len(BIG)
        while remaining:
            remaining -= len(await receiver.read_some_bytes(65536))
    elapsed = time.perf_counter() - start
    await sender.close()
    await receiver.close()
    return elapsed


async def throughput_anyio(n: int) -> float:
    sender, receiver = await _anyio_pair()

    async def send() -> None:
        for _ in range(n):
            await sender.send(BIG)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        remaining = n * len(BIG)
        while remaining:
            remaining -= len(await receiver.receive(65536))
    elapsed = time.perf_counter() - start
    await sender.aclose()
    await receiver.aclose()
    return elapsed


async def pingpong_rsyscall(n: int) -> float:
    a, b = await _afd_pair()

    async def echo() -> None:
        for _ in range(n):
            await b.write_all_bytes(await b.read_some_bytes(1))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(echo)
        for _ in range(n):
            await a.write_all_bytes(b"x")
            await a.read_some_bytes(1)
    elapsed = time.perf_counter() - start
    await a.close()
    await b.close()
    return elapsed


async def pingpong_anyio(n: int) -> float:
    a, b = await _anyio_pair()

    async def echo() -> None:
        for _ in range(n):
            await b.send(await b.receive(1))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(echo)
        for _ in range(n):
            await a.send(b"x")
            await a.receive(1)
    elapsed = time.perf_counter() - start
    await a.aclose()
    await b.aclose()
    return elapsed


# ---- child threads ----

_BUILD = Path(__file__).resolve().parent / "_build"


def _pingpong_binary() -> Path:
    """Build the C ping-pong baseline (bench/pingpong.c) if needed."""
    source = Path(__file__).resolve().parent / "pingpong.c"
    binary = _BUILD / "pingpong"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        _BUILD.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


async def child_rtt_rsyscall(n: int) -> float:
    child = await local_thread.clone()
    task = child.task
    start = time.perf_counter()
    for _ in range(n):
        await task.getpid()
    elapsed = time.perf_counter() - start
    await child.exit(0)
    return elapsed


async def child_rtt_c(n: int) -> float:
    result = await anyio.run_process([str(_pingpong_binary()), str(n)])
    return float(result.stdout) * n / 1e9


def _pinned(timer: Timer) -> Timer:
    """The same measurement with this process (and so its children) on one CPU:
    where the two ends of a round trip run changes its cost several fold."""

    async def pinned(n: int) -> float:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
        try:
            return await timer(n)
        finally:
            os.sched_setaffinity(0, before)

    return pinned


async def spawn_rsyscall(n: int) -> float:
    true = await local_thread.environ.which("true")
    start = time.perf_counter()
    for _ in range(n):
        await local_thread.run(true)
    return time.perf_counter() - start


async def spawn_subprocess(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    return time.perf_counter() - start


async def _spawns_in_flight(n: int, in_flight: int) -> float:
    """`n` runs of `true`, `in_flight` at a time (each of `in_flight` tasks
    runs its share one after another)."""
    true = await local_thread.environ.which("true")
    shares = [n // in_flight + (1 if i < n % in_flight else 0) for i in range(in_flight)]

    async def runner(count: int) -> None:
        for _ in range(count):
            await local_thread.run(true)

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for count in shares:
            group.start_soon(runner, count)
    return time.perf_counter() - start


async def spawn_10_in_flight(n: int) -> float:
    return await _spawns_in_flight(n, 10)


async def spawn_100_in_flight(n: int) -> float:
    return await _spawns_in_flight(n, 100)


async def spawn_last_100_of_1000(n: int) -> float:
    """Per-spawn time of the last 100 of 1,000 spawns one after another,
    scaled to `n` spawns: flat scaling shows as parity with the first 100."""
    true = await local_thread.environ.which("true")
    for _ in range(900):
        await local_thread.run(true)
    start = time.perf_counter()
    for _ in range(100):
        await local_thread.run(true)
    return (time.perf_counter() - start) / 100 * n


async def spawn_first_100(n: int) -> float:
    true = await local_thread.environ.which("true")
    start = time.perf_counter()
    for _ in range(100):
        await local_thread.run(true)
    return (time.perf_counter() - start) / 100 * n


# ---- a 64 MiB file into bytes: malloc, read, .read() vs open().read() ----

BULK_SIZE = 64 << 20


def _bulk_file_path() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / "rsyscall-bench-64MiB.bin"


def _bulk_file() -> Path:
    path = _bulk_file_path()
    if not path.exists() or path.stat().st_size != BULK_SIZE:
        path.write_bytes(os.urandom(1 << 20) * (BULK_SIZE >> 20))
    return path


async def bulk_read_rsyscall(n: int) -> float:
    path = _bulk_file()
    thread = local_thread
    total = 0.0
    for _ in range(n):
        fd = await thread.task.open(await thread.ptr(path), O.RDONLY)
        start = time.perf_counter()
        buf = await thread.malloc(bytes, BULK_SIZE)
        valid, rest = await fd.read(buf)
        data = await valid.read()
        total += time.perf_counter() - start
        assert len(data) == BULK_SIZE
        del buf, valid, rest, data
        await fd.close()
    return total


async def bulk_read_stdlib(n: int) -> float:
    path = _bulk_file()
    total = 0.0
    for _ in range(n):
        with open(path, "rb") as file:
            start = time.perf_counter()
            data = file.read()
            total += time.perf_counter() - start
        assert len(data) == BULK_SIZE
        del data
    return total


async def concurrent_calls(n: int) -> float:
    """100 coroutines making calls at once (made before the clock starts, so
    task creation is not what is measured)."""
    child = await local_thread.clone()
    task = child.task
    go = anyio.Event()

    async def worker() -> None:
        await go.wait()
        for _ in range(n // 100):
            await task.getpid()

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(worker)
        await anyio.sleep(0.01)
        start = time.perf_counter()
        go.set()
    elapsed = time.perf_counter() - start
    await child.exit(0)
    return elapsed


async def sequential_calls(n: int) -> float:
    return await child_rtt_rsyscall(n)


# ---- stub threads: a separate address space ----


async def _stub() -> tuple[object, object]:
    from rsyscall.tasks.stdin_bootstrap import stdin_bootstrap, stdin_bootstrap_path

    path = await stdin_bootstrap_path(local_thread)
    # The stub as the command itself (no shell in between).
    return await stdin_bootstrap(local_thread, Command(path, [path]))


async def _end_stub(process: object) -> None:
    await process.kill()  # type: ignore[attr-defined]
    await process.waitpid()  # type: ignore[attr-defined]


async def stub_rtt_rsyscall(n: int) -> float:
    process, stub = await _stub()
    task = stub.task  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(n):
        await task.getpid()
    elapsed = time.perf_counter() - start
    del stub, task
    await _end_stub(process)
    return elapsed


MEGABYTE = os.urandom(1 << 20)


async def stub_memory_rsyscall(n: int) -> float:
    process, stub = await _stub()
    buf = await stub.malloc(bytes, len(MEGABYTE))  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(n):
        written = await buf.write(MEGABYTE)
        assert await written.read() == MEGABYTE
        buf = written
    elapsed = time.perf_counter() - start
    del stub, buf, written
    await _end_stub(process)
    return elapsed


async def socket_megabyte_anyio(n: int) -> float:
    """1 MiB one way and 1 MiB back over a socketpair, as the stub's copies
    move it (anyio socket streams, a task on each end)."""
    first, second = await _anyio_pair()

    async def pump(sender: anyio.abc.SocketStream) -> None:
        await sender.send(MEGABYTE)

    async def take(receiver: anyio.abc.SocketStream) -> None:
        remaining = len(MEGABYTE)
        while remaining:
            remaining -= len(await receiver.receive(1 << 20))

    start = time.perf_counter()
    for _ in range(n):
        for sender, receiver in ((first, second), (second, first)):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, sender)
                await take(receiver)
    elapsed = time.perf_counter() - start
    await first.aclose()
    await second.aclose()
    return elapsed


def _static_true() -> Path:
    """A static `true` (no loader, like the stub), built for the baseline."""
    binary = _BUILD / "true-static"
    if not binary.exists():
        _BUILD.mkdir(exist_ok=True)
        source = _BUILD / "true.c"
        source.write_text("int main(void) { return 0; }\n")
        subprocess.run(["gcc", "-O2", "-static", "-o", str(binary), str(source)], check=True)
    return binary


async def stub_start_rsyscall(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        process, stub = await _stub()
        await stub.task.getpid()  # type: ignore[attr-defined]
        del stub
        await _end_stub(process)
    return time.perf_counter() - start


async def static_true_subprocess(n: int) -> float:
    true = str(_static_true())
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run([true], check=True)
    return time.perf_counter() - start


# ---- ssh threads: another host (this one, through a private sshd) ----

_SSH_HOST: list[object] = []


async def _ssh_host() -> object:
    from rsyscall.tasks.ssh import make_local_ssh

    if not _SSH_HOST:
        _SSH_HOST.append(await make_local_ssh(local_thread))
    return _SSH_HOST[0]


async def ssh_rtt_rsyscall(n: int) -> float:
    host = await _ssh_host()
    process, remote = await host.ssh(local_thread)  # type: ignore[attr-defined]
    task = remote.task
    start = time.perf_counter()
    for _ in range(n):
        await task.getpid()
    elapsed = time.perf_counter() - start
    del remote, task
    await _end_stub(process)
    return elapsed


def _ssh_argv(host: object, *more: str) -> list[str]:
    command = host.command  # type: ignore[attr-defined]
    return [str(command.executable_path), *command.arguments[1:], *more,
            host.destination, "true"]  # type: ignore[attr-defined]


async def ssh_true_subprocess(n: int) -> float:
    """`ssh host true`, a new connection each time (sshd -i started by
    ProxyCommand: what a connection to a real host costs, minus the
    network)."""
    argv = _ssh_argv(await _ssh_host())
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


async def ssh_multiplexed_true_subprocess(n: int) -> float:
    """`ssh host true` through an open ControlMaster: ssh's own cheapest
    per-command cost (a new session on an existing connection)."""
    import tempfile

    host = await _ssh_host()
    with tempfile.TemporaryDirectory(prefix="rsyscall-bench-") as directory:
        control = f"{directory}/control"
        master = subprocess.Popen(
            _ssh_argv(host, "-M", "-S", control, "-N")[:-1], stdin=subprocess.DEVNULL
        )
        try:
            while not os.path.exists(control):
                await anyio.sleep(0.01)
            argv = _ssh_argv(host, "-S", control)
            start = time.perf_counter()
            for _ in range(n):
                subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
            return time.perf_counter() - start
        finally:
            master.kill()
            master.wait()


async def ssh_start_rsyscall(n: int) -> float:
    host = await _ssh_host()
    start = time.perf_counter()
    for _ in range(n):
        process, remote = await host.ssh(local_thread)  # type: ignore[attr-defined]
        await remote.task.getpid()
        del remote
        await _end_stub(process)
    return time.perf_counter() - start


BENCHMARKS = [
    Benchmark("await task.getpid()", "os.getpid()", getpid_rsyscall, getpid_os, 200_000,
              "<= 2x"),
    Benchmark("4 KiB pipe write+read, pointers", "os.write+os.read", pipe_rsyscall, pipe_os,
              50_000, "<= 3x"),
    Benchmark("64 KiB chunks over a socketpair (afd)", "anyio socket streams",
              throughput_rsyscall, throughput_anyio, 5_000, "time <= 1.25x (>= 0.8x throughput)"),
    Benchmark("1-byte ping-pong over a socketpair (afd)", "anyio socket streams",
              pingpong_rsyscall, pingpong_anyio, 10_000, "<= 1.5x"),
    Benchmark("child-thread syscall round trip", "C socketpair ping-pong",
              child_rtt_rsyscall, child_rtt_c, 5_000, "<= 2x"),
    Benchmark("child-thread round trip, one CPU", "C ping-pong, one CPU",
              _pinned(child_rtt_rsyscall), _pinned(child_rtt_c), 5_000, "<= 1.5x"),
    Benchmark("clone+exec+wait of true", "subprocess.run(['true'])",
              spawn_rsyscall, spawn_subprocess, 300, "<= 1x (as many per second)"),
    Benchmark("clone+exec+wait of true, 10 in flight", "subprocess.run(['true'])",
              spawn_10_in_flight, spawn_subprocess, 300, ">= 1.8x as many per second (<= 0.56x)"),
    Benchmark("clone+exec+wait of true, 100 in flight", "subprocess.run(['true'])",
              spawn_100_in_flight, spawn_subprocess, 300, "(scaling) vs one after another"),
    Benchmark("last 100 of 1,000 spawns, per spawn", "the first 100",
              spawn_last_100_of_1000, spawn_first_100, 100, "~1x: flat"),
    Benchmark("a 64 MiB file into bytes, pointers", "open().read()",
              bulk_read_rsyscall, bulk_read_stdlib, 5, "<= 1.5x"),
    Benchmark("100 concurrent calls to one child", "100 sequential calls",
              concurrent_calls, sequential_calls, 5_000, "< 1x: pipelining shows"),
    Benchmark("stub-thread syscall round trip", "child-thread round trip",
              stub_rtt_rsyscall, child_rtt_rsyscall, 5_000, "(none set)"),
    Benchmark("stub-thread round trip", "C socketpair ping-pong",
              stub_rtt_rsyscall, child_rtt_c, 5_000, "(none set)"),
    Benchmark("1 MiB write+read of stub memory", "1 MiB each way, socketpair",
              stub_memory_rsyscall, socket_megabyte_anyio, 200, "near 1x"),
    Benchmark("stdin bootstrap to a working stub", "subprocess.run(static true)",
              stub_start_rsyscall, static_true_subprocess, 100, "(none set)"),
    Benchmark("ssh-thread syscall round trip", "ssh host true, multiplexed",
              ssh_rtt_rsyscall, ssh_multiplexed_true_subprocess, 20, "(none set)"),
    Benchmark("ssh-thread syscall round trip", "stub-thread round trip",
              ssh_rtt_rsyscall, stub_rtt_rsyscall, 5_000, "(none set)"),
    Benchmark("ssh to a working ssh thread", "ssh host true",
              ssh_start_rsyscall, ssh_true_subprocess, 10, "(none set)"),
]


def _ratio(ratio: float) -> str:
    # Small ratios (an ssh round trip against a whole ssh command) keep
    # two significant digits.
    return f"{ratio:6.2f}" if ratio >= 0.1 else f"{ratio:6.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="just the benchmarks whose name has this")
    args = parser.parse_args()
    try:
        _run(args)
    finally:
        _bulk_file_path().unlink(missing_ok=True)


def _run(args: argparse.Namespace) -> None:
    print(f"{'benchmark':40} {'loop':8} {'rsyscall':>12} {'baseline':>12} {'ratio':>7}  goal")
    for backend in ("asyncio", "trio"):
        for bench in BENCHMARKS:
            if args.only not in bench.name:
                continue
            iterations = bench.iterations // 10 if args.quick else bench.iterations

            async def measure(
                bench: Benchmark = bench, iterations: int = iterations, backend: str = backend
            ) -> None:
                ours, baseline = await _best_of_pairs(
                    bench.ours, bench.baseline, iterations, args.repeats)
                print(
                    f"{bench.name:40} {backend:8} {ours * 1e9:10.0f}ns {baseline * 1e9:10.0f}ns "
                    f"{_ratio(ours / baseline)}x  {bench.goal} vs {bench.baseline_name}",
                    flush=True,
                )

            anyio.run(measure, backend=backend)


if __name__ == "__main__":
    main()
