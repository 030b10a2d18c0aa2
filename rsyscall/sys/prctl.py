"""<sys/prctl.h>: prctl(2), operations on the calling thread (or process).

prctl takes an option and four unsigned longs whose meaning depends on the
option: numbers for most, addresses for a few.  The library knows which
arguments of which option are addresses, so that no integer is ever taken
for one and no pointer is ever written behind its back (a pointer the
kernel writes into is consumed):

* `prctl(option, arg2, arg3, arg4, arg5) -> int` is the raw call, for the
  options of `PR` (any other number is a ValueError: it might take an
  address).  Arguments the option takes as numbers are ints (a pointer
  there is a TypeError).  The arguments it reads memory from are readable
  pointers, or 0 for NULL (any other int is a TypeError): PR.SET_NAME's
  arg2 string, PR.SET_VMA's arg5 name.  The options that write memory
  through arg2 (`OUT_SIZES`) are refused (TypeError): use `prctl_get`.
  PR.SCHED_CORE's arg5 is where its GET command writes the cookie, so it
  must be 0 here.
* `prctl_get(option, buf) -> ReadablePointer` is for the options that
  write their result through arg2 (`OUT_SIZES` has them and how many
  bytes they write: PR.GET_NAME 16, PR.GET_TID_ADDRESS 8, the others an
  int): it consumes `buf`, as every syscall that writes memory does.
* Typed methods for the common options take and return values, using
  scratch memory where the kernel wants a pointer: `prctl_set_name` /
  `prctl_get_name`, `prctl_set_pdeathsig` / `prctl_get_pdeathsig`,
  `prctl_set_no_new_privs` / `prctl_get_no_new_privs`,
  `prctl_set_child_subreaper` / `prctl_get_child_subreaper`.
* `unsafe_prctl(option, arg2, arg3, arg4, arg5)` passes any option and
  integer arguments as they are.  It is the only way to PR.SET_MM (which
  rewrites the address space's layout: its brk, its stack and argument
  addresses, and with PR_SET_MM_MAP_SIZE writes through arg3), to
  PR.SET_SECCOMP (its struct sock_fprog holds the filter's address as a
  plain integer, and strict mode or a filter can kill the process at its
  next syscall), to PR.SET_SYSCALL_USER_DISPATCH (whose selector byte the
  kernel reads at every later syscall, and which turns syscalls into
  SIGSYS), to PR.SCHED_CORE's GET, and to options the library does not
  list.

Most options act on the calling thread: for the local thread, the Python
thread that runs the event loop; for a child thread, its one thread.  Those
about memory (PR.SET_DUMPABLE, PR.SET_THP_DISABLE, PR.SET_MM, PR.SET_VMA)
act on the address space, which a child thread shares with the Python
process (CLONE_VM): setting them in a child sets them for us too.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from rsyscall._enum import IntEnum
from rsyscall.base import BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, borrow, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG
from rsyscall.struct import int_arg

__all__ = ["OUT_SIZES", "PR", "PR_CAP_AMBIENT", "PrctlTask"]

T = TypeVar("T")


class PR(IntEnum):
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


class PR_CAP_AMBIENT(IntEnum):
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

# The arguments (by position, 2 to 5) that options read memory from: a
# readable pointer there, or 0 for NULL.  Every other argument of an option
# in PR is a number.
_READ_ARGS: Mapping[int, frozenset[int]] = MappingProxyType({
    PR.SET_NAME: frozenset({2}),
    PR.SET_VMA: frozenset({5}),
})
# Options only unsafe_prctl makes (see the module docstring).
_UNSAFE_ONLY = frozenset({PR.SET_MM, PR.SET_SECCOMP, PR.SET_SYSCALL_USER_DISPATCH})
# Arguments that must be 0 in the raw call: PR_SCHED_CORE_GET writes the
# cookie through arg5.
_MUST_BE_ZERO: Mapping[int, frozenset[int]] = MappingProxyType({
    PR.SCHED_CORE: frozenset({5}),
})

_SYS_prctl = int(SYS.prctl)
_U64 = (1 << 64) - 1
_INT = struct.Struct("<i")


def _option(option: object) -> int:
    if not isinstance(option, int) or isinstance(option, bool):
        raise TypeError(f"option must be a PR, not {type(option).__name__}")
    try:
        return PR(option)
    except ValueError:
        raise ValueError(
            f"{option} is not a prctl option the library knows (a member of PR), so it "
            "cannot tell which arguments are addresses: use unsafe_prctl"
        ) from None


def _number(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not -(1 << 63) <= value <= _U64:
        raise ValueError(f"{name} {value} does not fit in 64 bits")
    return value


def _argument(task: BaseTask, option: PR, position: int, value: object) -> int:
    name = f"arg{position}"
    if position in _READ_ARGS.get(option, ()):
        if isinstance(value, Pointer):
            return borrow(value, task).address  # type: ignore[arg-type]  # borrow checks
        if value != 0 or not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(
                f"{option!r} reads memory at {name}: pass a readable pointer, or 0 for NULL, "
                f"not {value!r} (an integer would be taken as an address)"
            )
        return 0
    if isinstance(value, Pointer):
        raise TypeError(f"{option!r} takes a number as {name}, not a pointer")
    number = _number(name, value)
    if number != 0 and position in _MUST_BE_ZERO.get(option, ()):
        raise TypeError(
            f"{option!r} may write memory at {name}, so it must be 0 here "
            "(an integer would be taken as an address): use unsafe_prctl"
        )
    return number


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

        Arguments are ints where the option takes a number, readable
        pointers (or 0) where it reads memory; an option that writes
        memory through arg2 is refused (TypeError: use `prctl_get`), and
        so are PR.SET_MM, PR.SET_SECCOMP and PR.SET_SYSCALL_USER_DISPATCH
        (ValueError: use `unsafe_prctl`).  See the module docstring."""
        number = _option(option)
        if number in OUT_SIZES:
            raise TypeError(
                f"{PR(number)!r} writes memory through arg2: use prctl_get, which "
                "consumes the pointer"
            )
        if number in _UNSAFE_ONLY:
            raise ValueError(
                f"{PR(number)!r} can corrupt the address space or kill the process: "
                "use unsafe_prctl, if you must"
            )
        args = [
            _argument(self, PR(number), position, value)
            for position, value in ((2, arg2), (3, arg3), (4, arg4), (5, arg5))
        ]
        return await self.sysif.syscall(_SYS_prctl, number, *args)

    async def unsafe_prctl(
        self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0
    ) -> int:
        """prctl(2), raw and unchecked: any option number, every argument an
        integer passed as it is.  Returns what the option returns.

        Unsafe: for the options that take addresses (PR.SET_MM and its
        PR_SET_MM_* commands, PR.SET_SECCOMP's struct sock_fprog and the
        filter it points to, PR.SET_SYSCALL_USER_DISPATCH's selector,
        PR.SCHED_CORE's cookie, those of `OUT_SIZES`, any option not in
        `PR`) the caller must pass the addresses of memory of the right
        size in this task's address space, kept alive as long as the
        kernel uses them (for PR.SET_SYSCALL_USER_DISPATCH, until it is
        turned off), whose contents nothing else relies on when the kernel
        writes them.  PR.SET_MM can move the heap's end (a wrong brk
        crashes the Python interpreter's allocator) and
        PR.SET_SYSCALL_USER_DISPATCH turns syscalls into SIGSYS, and a
        seccomp filter (or strict mode) makes them fail or kill, either of
        which kills a process that is not ready for it: the Python process
        itself, from the local thread (and the address space is shared by
        child threads, for SET_MM)."""
        number = int_arg("option", option, (-(1 << 31), (1 << 32) - 1))
        args = [
            _number(name, value)
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
