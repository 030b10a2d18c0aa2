"""<linux/futex.h>: futex(2), set_robust_list(2) and get_robust_list(2).

set_robust_list(2) is `Task.unsafe_set_robust_list`: the kernel writes
futex words at the addresses in the list when the thread exits, and the
library cannot check them (see its docstring).

A futex word is a 32-bit integer in memory: a `Pointer[Int32]` or
`Pointer[UInt32]` here (from `thread.ptr(UInt32(0))`, say).  futex_wait
blocks while the word holds an expected value, futex_wake wakes waiters.
For WAIT and WAKE the kernel only reads the word, never writes it, so
these calls borrow the pointer rather than consume it; to change the word,
write it (`word = await word.write(UInt32(1))`) or let another thread
sharing the memory do so.  The word must be 4-byte aligned (EINVAL).

`futex_wait` blocks the process it runs in until it is woken: the whole
thread, and on `local_thread` the calling OS thread and with it the event
loop (the syscall releases the GIL, so other Python threads run).  Futexes
are not pollable, so there is no async form.

Deviation: `RobustListLocation` is not a C type.  It is the two
out-parameters of get_robust_list (a `struct robust_list_head *` and a
`size_t`) placed side by side, so the call takes one pointer.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import ClassVar, Self

from rsyscall._enum import IntEnum
from rsyscall.base import BaseProcess, BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, WrittenPointer, borrow, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.struct import (
    FixedSize,
    Int32,
    Layout,
    Serializable,
    Struct,
    UInt32,
    check_fields,
    int_arg,
)
from rsyscall.time import Timespec

__all__ = [
    "FUTEX",
    "FUTEX_BITSET_MATCH_ANY",
    "FUTEX_CMD_MASK",
    "FUTEX_OP",
    "FUTEX_OP_CMP",
    "FUTEX_OWNER_DIED",
    "FUTEX_TID_MASK",
    "FUTEX_WAITERS",
    "ROBUST_LIST_LIMIT",
    "FutexProcess",
    "FutexTask",
    "RobustListHead",
    "RobustListLocation",
    "futex_op",
]


class FUTEX(IntEnum):
    """futex(2) operations, and the option bits or'd into them (the
    result of `|` is a plain int).  FUTEX_FD is left out: Linux removed it
    in 2.6.26.  The *_PRIVATE names are the header's shorthands for the
    operation with PRIVATE_FLAG."""

    WAIT = 0
    WAKE = 1
    REQUEUE = 3
    CMP_REQUEUE = 4
    WAKE_OP = 5
    LOCK_PI = 6
    UNLOCK_PI = 7
    TRYLOCK_PI = 8
    WAIT_BITSET = 9
    WAKE_BITSET = 10
    WAIT_REQUEUE_PI = 11
    CMP_REQUEUE_PI = 12
    LOCK_PI2 = 13
    # Options: the futex is not shared with another address space; the
    # timeout is measured against CLOCK_REALTIME instead of CLOCK_MONOTONIC.
    PRIVATE_FLAG = 128
    CLOCK_REALTIME = 256
    WAIT_PRIVATE = WAIT | PRIVATE_FLAG
    WAKE_PRIVATE = WAKE | PRIVATE_FLAG
    REQUEUE_PRIVATE = REQUEUE | PRIVATE_FLAG
    CMP_REQUEUE_PRIVATE = CMP_REQUEUE | PRIVATE_FLAG
    WAKE_OP_PRIVATE = WAKE_OP | PRIVATE_FLAG
    LOCK_PI_PRIVATE = LOCK_PI | PRIVATE_FLAG
    LOCK_PI2_PRIVATE = LOCK_PI2 | PRIVATE_FLAG
    UNLOCK_PI_PRIVATE = UNLOCK_PI | PRIVATE_FLAG
    TRYLOCK_PI_PRIVATE = TRYLOCK_PI | PRIVATE_FLAG
    WAIT_BITSET_PRIVATE = WAIT_BITSET | PRIVATE_FLAG
    WAKE_BITSET_PRIVATE = WAKE_BITSET | PRIVATE_FLAG
    WAIT_REQUEUE_PI_PRIVATE = WAIT_REQUEUE_PI | PRIVATE_FLAG
    CMP_REQUEUE_PI_PRIVATE = CMP_REQUEUE_PI | PRIVATE_FLAG


FUTEX_CMD_MASK = ~(FUTEX.PRIVATE_FLAG | FUTEX.CLOCK_REALTIME)
"""The operation bits of an op: `op & FUTEX_CMD_MASK` drops the options."""

FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
"""The `val3` bitset of WAIT_BITSET / WAKE_BITSET that matches every waiter."""

# Bits of a PI or robust futex word.
FUTEX_WAITERS = 0x80000000
FUTEX_OWNER_DIED = 0x40000000
FUTEX_TID_MASK = 0x3FFFFFFF

ROBUST_LIST_LIMIT = 2048
"""The most robust-list entries the kernel walks when a thread dies."""


class FUTEX_OP(IntEnum):
    """The operation of a FUTEX.WAKE_OP on the word at `uaddr2` (C prefix
    FUTEX_OP_); or OPARG_SHIFT in to use 1 << oparg as the operand."""

    SET = 0
    ADD = 1
    OR = 2
    ANDN = 3
    XOR = 4
    OPARG_SHIFT = 8


class FUTEX_OP_CMP(IntEnum):
    """The comparison of a FUTEX.WAKE_OP: wake the waiters at `uaddr2` if
    the old value compares so with cmparg."""

    EQ = 0
    NE = 1
    LT = 2
    LE = 3
    GT = 4
    GE = 5


def futex_op(op: FUTEX_OP | int, oparg: int, cmp: FUTEX_OP_CMP, cmparg: int) -> int:
    """The `val3` of a FUTEX.WAKE_OP, as C's FUTEX_OP macro encodes it:
    `op` and `oparg` change the word at uaddr2, `cmp` and `cmparg` test its
    old value.  oparg and cmparg are 12-bit fields (ValueError if they do
    not fit; negative values are taken as 12-bit two's complement)."""
    for name, value in (("op", op), ("oparg", oparg), ("cmp", cmp), ("cmparg", cmparg)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= op <= 0xF or not 0 <= cmp <= 0xF:
        raise ValueError(f"op {op} and cmp {cmp} must fit in 4 bits")
    for name, value in (("oparg", oparg), ("cmparg", cmparg)):
        if not -0x800 <= value <= 0xFFF:
            raise ValueError(f"{name} {value} does not fit in 12 bits")
    return ((op & 0xF) << 28) | ((cmp & 0xF) << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)


@dataclasses.dataclass(frozen=True)
class RobustListHead(Struct):
    """`struct robust_list_head`: the head of a thread's list of robust
    futexes, registered with set_robust_list(2) (`unsafe_set_robust_list`).

    `next` is C's `list.next`, the address of the first entry (an empty
    list points back at the head itself); `futex_offset` is where a
    futex word sits relative to each entry; `list_op_pending` is the
    address of an entry being added or removed, or 0.  Addresses are in
    the registering thread's address space."""

    __slots__ = ("futex_offset", "list_op_pending", "next")

    next: int
    futex_offset: int
    list_op_pending: int
    layout: ClassVar[Layout] = Layout(
        "struct robust_list_head",
        [("list", "Q"), ("futex_offset", "q"), ("list_op_pending", "Q")],
    )

    def __post_init__(self) -> None:
        check_fields(self, (("next", "Q"), ("futex_offset", "q"), ("list_op_pending", "Q")))

    def to_bytes(self) -> bytes:
        try:
            return self.layout.struct.pack(self.next, self.futex_offset, self.list_op_pending)
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in a struct robust_list_head: {e}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a struct robust_list_head needs {size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))


_LOCATION = struct.Struct("<QQ")


@dataclasses.dataclass(frozen=True)
class RobustListLocation(Serializable, FixedSize):
    """What get_robust_list(2) reports: the address `head` of a thread's
    `struct robust_list_head` (0 if it registered none), in that thread's
    address space, and `len`, the size it registered it with.

    Not a C type: the syscall's two out-parameters side by side (the
    head pointer at offset 0, the size_t at offset 8)."""

    __slots__ = ("head", "len")

    head: int
    len: int

    def __post_init__(self) -> None:
        check_fields(self, (("head", "Q"), ("len", "Q")))

    @classmethod
    def sizeof(cls) -> int:
        return _LOCATION.size

    def to_bytes(self) -> bytes:
        try:
            return _LOCATION.pack(self.head, self.len)
        except struct.error as e:
            raise ValueError(f"{self!r} does not fit in two 64-bit words: {e}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < _LOCATION.size:
            raise ValueError(f"a RobustListLocation needs {_LOCATION.size} bytes, got {len(data)}")
        return cls(*_LOCATION.unpack_from(data))


_SYS_futex = int(SYS.futex)
_SYS_set_robust_list = int(SYS.set_robust_list)
_SYS_get_robust_list = int(SYS.get_robust_list)
_WORD_SIZE = 4
_INT_MIN = -(1 << 31)
_U32_MAX = (1 << 32) - 1




def _u32(name: str, value: object) -> int:
    """A 32-bit argument, given as a C int or a uint32_t; the kernel sees the bits."""
    number = int_arg(name, value)
    if not _INT_MIN <= number <= _U32_MAX:
        raise ValueError(f"{name} {number} does not fit in 32 bits")
    return number & _U32_MAX


def _word_address(task: BaseTask, word: object, need_value: bool, typed: bool) -> int:
    """The address of a futex word for a syscall in `task`.

    `need_value`: the kernel reads it, so it must be initialized memory.
    `typed`: it must point to an Int32 or UInt32 (the raw `futex` takes any
    pointer of at least 4 bytes).  Either way it is only borrowed."""
    if not isinstance(word, Pointer):
        raise TypeError(f"a futex word must be a Pointer to an Int32 or UInt32, not {word!r}")
    if typed and (word._kind is None or not issubclass(word._kind, Int32 | UInt32)):
        raise TypeError(f"a futex word must be a Pointer to an Int32 or UInt32, not {word!r}")
    if need_value:
        # borrow raises TypeError for a pointer that is not readable.
        return borrow(word, task, _WORD_SIZE).address  # type: ignore[arg-type]
    # Only the address matters (as for WAKE): any live pointer will do.
    alloc = take(word, task, _WORD_SIZE)
    restore(word, alloc)
    return alloc.address


def _timeout_address(task: BaseTask, timeout: object) -> int:
    if timeout is None:
        return 0
    if isinstance(timeout, Pointer) and (
        timeout._kind is None or not issubclass(timeout._kind, Timespec)
    ):
        raise TypeError(f"timeout must be a pointer to a Timespec, not {timeout!r}")
    return borrow(timeout, task, Timespec.sizeof()).address  # type: ignore[arg-type]


def _private(private: object) -> int:
    if not isinstance(private, bool):
        raise TypeError(f"private must be a bool, not {type(private).__name__}")
    return FUTEX.PRIVATE_FLAG if private else 0


async def _get_robust_list(
    task: BaseTask, pid: int, out: Pointer[RobustListLocation]
) -> ReadablePointer[RobustListLocation]:
    if isinstance(out, Pointer) and (
        out._kind is None or not issubclass(out._kind, RobustListLocation)
    ):
        raise TypeError(f"out must be a pointer to a RobustListLocation, not {out!r}")
    alloc = take(out, task, _LOCATION.size)
    try:
        await task.sysif.syscall(_SYS_get_robust_list, pid, alloc.address, alloc.address + 8)
    except BaseException:
        restore(out, alloc)
        raise
    return out._readable(alloc, task)


class FutexTask(BaseTask):
    __slots__ = ()

    async def futex(
        self,
        uaddr: Pointer[Int32] | Pointer[UInt32] | Pointer[bytes],
        op: FUTEX | int,
        val: int = 0,
        timeout_or_val2: WrittenPointer[Timespec] | int | None = None,
        uaddr2: Pointer[Int32] | Pointer[UInt32] | Pointer[bytes] | None = None,
        val3: int = 0,
    ) -> int:
        """futex(2), raw: any `op` (a FUTEX operation, or'd with options),
        returning what the kernel returns.

        `timeout_or_val2` is the timeout (a Timespec pointer, or None for
        none) of the waiting operations, or the integer val2 of the
        requeueing ones.  The words need not be Int32 or UInt32 pointers
        here, only 4 bytes; they are borrowed, not consumed, though some
        operations (the PI ones, WAKE_OP) write them: read the memory
        again rather than trust a WrittenPointer's `.value`."""
        address = _word_address(self, uaddr, False, False)
        address2 = 0 if uaddr2 is None else _word_address(self, uaddr2, False, False)
        if timeout_or_val2 is None or isinstance(timeout_or_val2, Pointer):
            fourth = _timeout_address(self, timeout_or_val2)
        else:
            fourth = _u32("val2", timeout_or_val2)
        return await self.sysif.syscall(
            _SYS_futex, address, _u32("op", op), _u32("val", val), fourth, address2,
            _u32("val3", val3),
        )

    async def futex_wait(
        self,
        uaddr: ReadablePointer[Int32] | ReadablePointer[UInt32],
        val: int,
        timeout: WrittenPointer[Timespec] | None = None,
        private: bool = False,
    ) -> None:
        """futex(2) FUTEX_WAIT: if the word at `uaddr` holds `val`, sleep
        until a futex_wake on it, or until the relative `timeout` (measured
        on CLOCK_MONOTONIC) passes.

        Raises BlockingIOError (EAGAIN) at once if the word does not hold
        `val`, TimeoutError (ETIMEDOUT) when the timeout passes, and
        InterruptedError (EINTR) if a signal handler runs.  Returning
        does not prove the word changed (wake-ups may be spurious): check
        it again.  `private` (FUTEX_PRIVATE_FLAG) is faster but only
        meets wakers in the same address space: the library's cloned
        threads share ours, separate processes sharing a mapping do not."""
        address = _word_address(self, uaddr, True, True)
        timeout_address = _timeout_address(self, timeout)
        await self.sysif.syscall(
            _SYS_futex, address, FUTEX.WAIT | _private(private), _u32("val", val), timeout_address
        )

    async def futex_wake(
        self, uaddr: Pointer[Int32] | Pointer[UInt32], count: int, private: bool = False
    ) -> int:
        """futex(2) FUTEX_WAKE: wake at most `count` waiters on the word at
        `uaddr` (2**31 - 1 wakes them all); returns how many were woken.

        The kernel does not read the word, so `uaddr` may be any live
        pointer to it, initialized or not.  `private` must match the
        waiters' (see `futex_wait`)."""
        address = _word_address(self, uaddr, False, True)
        number = int_arg("count", count)
        if not 0 <= number < 1 << 31:
            raise ValueError(f"count {number} outside 0..2**31-1")
        return await self.sysif.syscall(_SYS_futex, address, FUTEX.WAKE | _private(private), number)

    async def unsafe_set_robust_list(self, head: WrittenPointer[RobustListHead]) -> None:
        """set_robust_list(2): register `head` as the calling thread's
        robust futex list.

        Unsafe: the kernel keeps only the address, and when the thread
        exits or execs it walks the list from there, following `next`
        through up to ROBUST_LIST_LIMIT entries and `list_op_pending`, and
        writes FUTEX_OWNER_DIED into the futex word at each entry plus
        `futex_offset` that the dying thread holds.  The caller must make
        sure that `head` stays alive and unchanged while it is registered
        (or is unregistered first), and that every address in the list is
        a live entry in this address space whose futex word nothing else
        relies on: a wrong address has the kernel write there, corrupting
        the memory of the Python process for the local thread and for
        child threads, which share it.  glibc registers a list of its own
        for every thread, which this replaces: on `local_thread`, put
        glibc's back (get_robust_list tells its address) before using
        pthread robust mutexes again."""
        if isinstance(head, Pointer) and (
            head._kind is None or not issubclass(head._kind, RobustListHead)
        ):
            raise TypeError(f"head must be a pointer to a RobustListHead, not {head!r}")
        address = borrow(head, self, RobustListHead.sizeof()).address
        await self.sysif.syscall(_SYS_set_robust_list, address, RobustListHead.sizeof())

    async def get_robust_list(
        self, out: Pointer[RobustListLocation]
    ) -> ReadablePointer[RobustListLocation]:
        """get_robust_list(2) of the calling thread: fill `out` (consumed)
        with the address and size of its robust list head."""
        return await _get_robust_list(self, 0, out)


class FutexProcess(BaseProcess):
    __slots__ = ()

    async def get_robust_list(
        self, out: Pointer[RobustListLocation]
    ) -> ReadablePointer[RobustListLocation]:
        """get_robust_list(2) of this process's thread (its pid is a thread
        id): fill `out` (consumed) with the address, in that thread's
        address space, and size of its robust list head.  Needs ptrace
        read access to it (EPERM), and ESRCH if it is gone."""
        return await _get_robust_list(self.task, self.pid, out)
