"""<sys/prctl.h>: prctl(2), operations on the calling thread (or process).

prctl takes an option and four unsigned longs whose meaning depends on the
option: numbers for most, pointers for a few.  The library splits it by
what happens to memory, so that no pointer is ever written behind its
back (DESIGN.md rule 5):

* `prctl(option, arg2, arg3, arg4, arg5) -> int` is the raw call.  Its
  arguments are ints, or readable pointers for memory the kernel only
  reads (PR.SET_NAME's string, PR.SET_MM's struct, PR.SET_SECCOMP's filter,
  PR.SET_VMA's name): their address is passed.  A pointer is refused for
  an option that writes memory (TypeError).  An int is passed as it is,
  even where the kernel takes it for an address: that is the caller's
  business.
* `prctl_get(option, buf) -> ReadablePointer` is for the options that
  write their result through arg2 (`OUT_SIZES` has them and how many
  bytes they write: PR.GET_NAME 16, PR.GET_TID_ADDRESS 8, the others an
  int): it consumes `buf`, as every syscall that writes memory does.
* Typed methods for the common options take and return values, using
  scratch memory where the kernel wants a pointer: `prctl_set_name` /
  `prctl_get_name`, `prctl_set_pdeathsig` / `prctl_get_pdeathsig`,
  `prctl_set_no_new_privs` / `prctl_get_no_new_privs`,
  `prctl_set_child_subreaper` / `prctl_get_child_subreaper`.

Most options act on the calling thread: for the local thread, the Python
thread that runs the event loop; for a child thread, its one thread.  Those
about memory (PR.SET_DUMPABLE, PR.SET_THP_DISABLE, PR.SET_MM, PR.SET_VMA)
act on the address space, which a child thread shares with the Python
process (CLONE_VM): setting them in a child sets them for us too.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from rsyscall.base import BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, borrow, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG

__all__ = ["OUT_SIZES", "PR", "PR_CAP_AMBIENT", "PrctlTask"]

T = TypeVar("T")


class PR(enum.IntEnum):
    """prctl(2) options (C prefix PR_).  Some exist only on other
    architectures (the FP, SVE, SME, PAC, MPX ones...); x86_64 fails them
    with OSError EINVAL."""

    SET_PDEATHSIG = 1
    GET_PDEATHSIG = 2
    GET_DUMPABLE = 3
    SET_DUMPABLE = 4
    GET_UNALIGN = 5
    SET_UNALIGN = 6
    GET_KEEPCAPS = 7
    SET_KEEPCAPS = 8
    GET_FPEMU = 9
    SET_FPEMU = 10
    GET_FPEXC = 11
    SET_FPEXC = 12
    GET_TIMING = 13
    SET_TIMING = 14
    SET_NAME = 15
    GET_NAME = 16
    GET_ENDIAN = 19
    SET_ENDIAN = 20
    GET_SECCOMP = 21
    SET_SECCOMP = 22
    CAPBSET_READ = 23
    CAPBSET_DROP = 24
    GET_TSC = 25
    SET_TSC = 26
    GET_SECUREBITS = 27
    SET_SECUREBITS = 28
    SET_TIMERSLACK = 29
    GET_TIMERSLACK = 30
    TASK_PERF_EVENTS_DISABLE = 31
    TASK_PERF_EVENTS_ENABLE = 32
    MCE_KILL = 33
    MCE_KILL_GET = 34
    SET_MM = 35
    SET_CHILD_SUBREAPER = 36
    GET_CHILD_SUBREAPER = 37
    SET_NO_NEW_PRIVS = 38
    GET_NO_NEW_PRIVS = 39
    GET_TID_ADDRESS = 40
    SET_THP_DISABLE = 41
    GET_THP_DISABLE = 42
    MPX_ENABLE_MANAGEMENT = 43
    MPX_DISABLE_MANAGEMENT = 44
    SET_FP_MODE = 45
    GET_FP_MODE = 46
    CAP_AMBIENT = 47
    SVE_SET_VL = 50
    SVE_GET_VL = 51
    GET_SPECULATION_CTRL = 52
    SET_SPECULATION_CTRL = 53
    PAC_RESET_KEYS = 54
    SET_TAGGED_ADDR_CTRL = 55
    GET_TAGGED_ADDR_CTRL = 56
    SET_IO_FLUSHER = 57
    GET_IO_FLUSHER = 58
    SET_SYSCALL_USER_DISPATCH = 59
    PAC_SET_ENABLED_KEYS = 60
    PAC_GET_ENABLED_KEYS = 61
    SCHED_CORE = 62
    SME_SET_VL = 63
    SME_GET_VL = 64
    SET_PTRACER = 0x59616D61
    SET_VMA = 0x53564D41


class PR_CAP_AMBIENT(enum.IntEnum):
    """The arg2 of PR.CAP_AMBIENT: what to do with the ambient capability
    set; arg3 is the capability (a `rsyscall.sys.capability.CAP`)."""

    IS_SET = 1
    RAISE = 2
    LOWER = 3
    CLEAR_ALL = 4


_INT_SIZE = 4
_NAME_SIZE = 16  # TASK_COMM_LEN: the name and its NUL

OUT_SIZES: Mapping[int, int] = MappingProxyType({
    PR.GET_PDEATHSIG: _INT_SIZE,
    PR.GET_NAME: _NAME_SIZE,
    PR.GET_CHILD_SUBREAPER: _INT_SIZE,
    PR.GET_TSC: _INT_SIZE,
    PR.GET_UNALIGN: _INT_SIZE,
    PR.GET_FPEMU: _INT_SIZE,
    PR.GET_FPEXC: _INT_SIZE,
    PR.GET_ENDIAN: _INT_SIZE,
    PR.GET_TID_ADDRESS: 8,  # a pointer
})
"""The options that write their result through arg2, and how many bytes
they write: `prctl_get` takes these."""

# Options that write memory through some argument in some of their
# sub-commands (PR_SET_MM_MAP_SIZE, PR_SCHED_CORE_GET), besides OUT_SIZES.
_WRITE_SOMETIMES = frozenset({PR.SET_MM, PR.SCHED_CORE})

_SYS_prctl = int(SYS.prctl)
_U64 = (1 << 64) - 1
_INT = struct.Struct("<i")


def _option(option: object) -> int:
    if not isinstance(option, int) or isinstance(option, bool):
        raise TypeError(f"option must be a PR, not {type(option).__name__}")
    return option


def _argument(task: BaseTask, option: int, name: str, value: object) -> int:
    if isinstance(value, Pointer):
        if option in OUT_SIZES:
            raise TypeError(
                f"{PR(option)!r} writes memory: use prctl_get, which consumes the pointer"
            )
        if option in _WRITE_SOMETIMES:
            raise TypeError(
                f"{PR(option)!r} may write memory: pass an address as an int, at your own risk"
            )
        return borrow(value, task).address  # type: ignore[arg-type]  # borrow checks
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pointer, not {type(value).__name__}")
    if not -(1 << 63) <= value <= _U64:
        raise ValueError(f"{name} {value} does not fit in 64 bits")
    return value


def _signal(sig: object) -> int:
    if not isinstance(sig, int) or isinstance(sig, bool):
        raise TypeError(f"a signal must be a SIG or an int, not {type(sig).__name__}")
    return sig


class PrctlTask(BaseTask):
    __slots__ = ()

    async def prctl(
        self,
        option: PR,
        arg2: int | ReadablePointer[Any] = 0,
        arg3: int | ReadablePointer[Any] = 0,
        arg4: int | ReadablePointer[Any] = 0,
        arg5: int | ReadablePointer[Any] = 0,
    ) -> int:
        """prctl(2), raw: returns what the option returns (0 for most).

        Arguments are ints, or readable pointers for memory the kernel
        reads; an option that writes memory refuses pointers (TypeError):
        use `prctl_get` for those that write through arg2.  See the module
        docstring."""
        number = _option(option)
        args = [
            _argument(self, number, name, value)
            for name, value in (("arg2", arg2), ("arg3", arg3), ("arg4", arg4), ("arg5", arg5))
        ]
        return await self.sysif.syscall(_SYS_prctl, number, *args)

    async def prctl_get(self, option: PR, buf: Pointer[T]) -> ReadablePointer[T]:
        """prctl(2) for an option that writes its result through arg2 (one
        of `OUT_SIZES`): `buf` (consumed) is passed as arg2; returns a
        pointer to the bytes written (`OUT_SIZES[option]` of them; any
        more room is released).

        `await task.prctl_get(PR.GET_PDEATHSIG, await thread.malloc(Int32))`."""
        number = _option(option)
        size = OUT_SIZES.get(number)
        if size is None:
            raise ValueError(f"{option!r} does not write a result through arg2; use prctl")
        alloc = take(buf, self, size)
        try:
            await self.sysif.syscall(_SYS_prctl, number, alloc.address, 0, 0, 0)
        except BaseException:
            restore(buf, alloc)
            raise
        if alloc.size > size:
            alloc, _ = alloc.split(size)
        return buf._readable(alloc, self)

    async def _get_scratch(self, option: PR) -> bytes:
        """prctl_get into scratch memory: the bytes the option wrote."""
        size = OUT_SIZES[option]
        alloc = await self.space.stage(bytes(size))
        await self.sysif.syscall(_SYS_prctl, option, alloc.address, 0, 0, 0)
        return await self.space.transport.read(alloc.address, size)

    async def prctl_set_name(self, name: str | bytes) -> None:
        """prctl(2) PR_SET_NAME: set the calling thread's name (its `comm`, as in
        /proc/pid/task/tid/comm).  The kernel keeps at most 15 bytes and
        silently drops the rest."""
        if isinstance(name, str):
            name = os.fsencode(name)
        elif not isinstance(name, bytes):
            raise TypeError(f"name must be a str or bytes, not {type(name).__name__}")
        if b"\0" in name:
            raise ValueError("embedded null byte in name")
        alloc = await self.space.stage(name + b"\0")
        await self.sysif.syscall(_SYS_prctl, PR.SET_NAME, alloc.address, 0, 0, 0)

    async def prctl_get_name(self) -> bytes:
        """prctl(2) PR_GET_NAME: the calling thread's name, without its NUL."""
        return (await self._get_scratch(PR.GET_NAME)).split(b"\0", 1)[0]

    async def prctl_set_pdeathsig(self, sig: SIG | int) -> None:
        """prctl(2) PR_SET_PDEATHSIG: the signal this process gets when its parent
        thread dies (0: none).  Child threads have SIG.KILL from the start,
        so they never outlive the thread that made them."""
        await self.sysif.syscall(_SYS_prctl, PR.SET_PDEATHSIG, _signal(sig), 0, 0, 0)

    async def prctl_get_pdeathsig(self) -> SIG | int:
        """prctl(2) PR_GET_PDEATHSIG: the parent-death signal, 0 if none."""
        (sig,) = _INT.unpack(await self._get_scratch(PR.GET_PDEATHSIG))
        try:
            return SIG(sig)
        except ValueError:
            return int(sig)  # 0, or a real-time signal

    async def prctl_set_no_new_privs(self) -> None:
        """prctl(2) PR_SET_NO_NEW_PRIVS: execve(2) will never again grant privileges
        (set-user-ID bits, file capabilities).  It cannot be undone, and is
        inherited by children."""
        await self.sysif.syscall(_SYS_prctl, PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0)

    async def prctl_get_no_new_privs(self) -> bool:
        """prctl(2) PR_GET_NO_NEW_PRIVS: whether no_new_privs is set."""
        return bool(await self.sysif.syscall(_SYS_prctl, PR.GET_NO_NEW_PRIVS, 0, 0, 0, 0))

    async def prctl_set_child_subreaper(self, subreaper: bool = True) -> None:
        """prctl(2) PR_SET_CHILD_SUBREAPER: whether orphaned descendants of this
        process are reparented to it rather than to init."""
        if not isinstance(subreaper, bool):
            raise TypeError(f"subreaper must be a bool, not {type(subreaper).__name__}")
        await self.sysif.syscall(_SYS_prctl, PR.SET_CHILD_SUBREAPER, int(subreaper), 0, 0, 0)

    async def prctl_get_child_subreaper(self) -> bool:
        """prctl(2) PR_GET_CHILD_SUBREAPER: whether this process is a child subreaper."""
        (value,) = _INT.unpack(await self._get_scratch(PR.GET_CHILD_SUBREAPER))
        return bool(value)
