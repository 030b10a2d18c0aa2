"""Helpers the tests share: counting this process's fds and mappings."""

import gc
import os


def open_fds() -> set[int]:
    """The fd numbers open in this process right now."""
    gc.collect()
    return {int(name) for name in os.listdir("/proc/self/fd")}


def mapping_count() -> int:
    """How many memory mappings this process has."""
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)
