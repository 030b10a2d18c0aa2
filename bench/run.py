"""rsyscall benchmarks, each against its baseline in the same run.

    python bench/run.py            # all benchmarks, both event loops
    python bench/run.py --quick    # fewer iterations

Each benchmark times the rsyscall way and the baseline way of doing the
same work, takes the best of several repetitions of each, and prints the
ratio (rsyscall time / baseline time, so lower is better, 1.0 is parity).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from rsyscall import local_thread

Timer = Callable[[int], Awaitable[float]]


@dataclass
class Benchmark:
    name: str
    baseline_name: str
    ours: Timer
    baseline: Timer
    iterations: int
    goal: str


async def _best(timer: Timer, iterations: int, repeats: int) -> float:
    await timer(max(1, iterations // 10))  # warm up
    return min([await timer(iterations) for _ in range(repeats)]) / iterations


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
    wbuf = await thread.ptr(CHUNK)
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


BENCHMARKS = [
    Benchmark("await task.getpid()", "os.getpid()", getpid_rsyscall, getpid_os, 200_000,
              "<= 2.5x"),
    Benchmark("4 KiB pipe write+read, pointers", "os.write+os.read", pipe_rsyscall, pipe_os,
              50_000, "(none set)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'benchmark':40} {'loop':8} {'rsyscall':>12} {'baseline':>12} {'ratio':>7}  goal")
    for backend in ("asyncio", "trio"):
        for bench in BENCHMARKS:
            iterations = bench.iterations // 10 if args.quick else bench.iterations

            async def measure(
                bench: Benchmark = bench, iterations: int = iterations, backend: str = backend
            ) -> None:
                baseline = await _best(bench.baseline, iterations, args.repeats)
                ours = await _best(bench.ours, iterations, args.repeats)
                print(
                    f"{bench.name:40} {backend:8} {ours * 1e9:10.0f}ns {baseline * 1e9:10.0f}ns "
                    f"{ours / baseline:6.2f}x  {bench.goal} vs {bench.baseline_name}",
                    flush=True,
                )

            anyio.run(measure, backend=backend)


if __name__ == "__main__":
    main()
