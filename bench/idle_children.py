"""What an idle child thread costs: processes and memory.

    python bench/idle_children.py [N]

Makes N child threads of the local thread (default 200) that sit idle, and
prints, per child: the processes it added (children of this process and
their descendants), the kernel memory the machine lost to them (the
KernelStack, Slab and PageTables lines of /proc/meminfo, so other activity
on the machine adds noise), and the user memory of ours they hold (their
stacks and server state, from the allocator).  Then drops them and checks
that all of it comes back.
"""

from __future__ import annotations

import gc
import os
import sys

import anyio

from rsyscall import local_thread

KERNEL_LINES = ("KernelStack", "Slab", "PageTables")


def kernel_kib() -> dict[str, int]:
    values = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, value = line.split(":")
            if name in KERNEL_LINES:
                values[name] = int(value.split()[0])
    return values


def processes() -> int:
    """This process's descendants."""
    count, frontier = 0, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                found = [int(child) for child in children.read().split()]
        except FileNotFoundError:
            continue
        count += len(found)
        frontier += found
    return count


async def main(count: int) -> None:
    space = local_thread.task.space
    warm = await local_thread.clone()  # what the first child makes once (epoller...)
    await warm.task.getpid()
    gc.collect()
    before_kernel, before_processes = kernel_kib(), processes()
    before_user = space.allocator.mapped_bytes()
    children = [await local_thread.clone() for _ in range(count)]
    for child in children:
        await child.task.getpid()
    after_kernel, after_processes = kernel_kib(), processes()
    after_user = space.allocator.mapped_bytes()
    print(f"{count} idle child threads")
    print(f"  processes per child: {(after_processes - before_processes) / count:.2f}")
    kernel_total = 0.0
    for name in KERNEL_LINES:
        per = (after_kernel[name] - before_kernel[name]) / count
        kernel_total += per
        print(f"  {name:12} {per:7.1f} KiB per child")
    print(f"  {'kernel':12} {kernel_total:7.1f} KiB per child (total of the above)")
    print(f"  {'our memory':12} {(after_user - before_user) / count / 1024:7.1f} KiB per child "
          "(stack and server state, mapped in our arenas)")
    del children, child
    gc.collect()
    for _ in range(50):
        if processes() <= before_processes:
            break
        await anyio.sleep(0.05)
    print(f"  after dropping them: {processes() - before_processes} processes left")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200)
