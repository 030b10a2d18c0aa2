"""<linux/filter.h>: classic BPF programs, `struct sock_filter` and
`struct sock_fprog`, as seccomp(2) (rsyscall.linux.seccomp) and the
SO_ATTACH_FILTER socket option take them.

An instruction is a `SockFilter`; C's BPF_STMT and BPF_JUMP macros are
`bpf_stmt` and `bpf_jump`, and the opcode parts of <linux/bpf_common.h>
are enums, or-ed together as in C:

    insns = SockFilterList([
        bpf_stmt(BPF_CLASS.LD | BPF_SIZE.W | BPF_MODE.ABS, 0),
        bpf_jump(BPF_CLASS.JMP | BPF_JMP_OP.JEQ | BPF_SRC.K, 39, 0, 1),
        bpf_stmt(BPF_CLASS.RET | BPF_RVAL.K, 0),
        bpf_stmt(BPF_CLASS.RET | BPF_RVAL.K, 0x7FFF0000),
    ])
    filter = await thread.ptr(insns)
    prog = await thread.ptr(SockFprog(filter))

`struct sock_fprog` holds the address of the instruction array, so a
`SockFprog` is made from the `WrittenPointer` to the array: its length is
the pointer's (no count is given by hand), the array must be in the
address space the SockFprog is written to, and the SockFprog keeps the
array alive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from rsyscall._enum import IntEnum
from rsyscall.memory.pointer import UseAfterConsumeError, WrittenPointer, borrow
from rsyscall.struct import HasSerializer, Immutable, Layout, Serializer, Struct, check_fields

if TYPE_CHECKING:
    from rsyscall.base.task import BaseTask

__all__ = [
    "BPF_ALU_OP",
    "BPF_CLASS",
    "BPF_JMP_OP",
    "BPF_MAXINSNS",
    "BPF_MEMWORDS",
    "BPF_MISCOP",
    "BPF_MODE",
    "BPF_RVAL",
    "BPF_SIZE",
    "BPF_SRC",
    "SockFilter",
    "SockFilterList",
    "SockFprog",
    "bpf_jump",
    "bpf_stmt",
]

BPF_MAXINSNS = 4096
"""The most instructions a classic BPF program may have."""
BPF_MEMWORDS = 16
"""The number of scratch memory words (M[0]..M[15]) a program has."""


class BPF_CLASS(IntEnum):
    """The instruction class, the low 3 bits of an opcode (C: BPF_LD...)."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    RET = 0x06
    MISC = 0x07


class BPF_SIZE(IntEnum):
    """The width of a load (C: BPF_W, BPF_H, BPF_B)."""

    W = 0x00
    H = 0x08
    B = 0x10


class BPF_MODE(IntEnum):
    """The addressing mode of a load or store (C: BPF_IMM, BPF_ABS...)."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    LEN = 0x80
    MSH = 0xA0


class BPF_ALU_OP(IntEnum):
    """The operation of a BPF_ALU instruction (C: BPF_ADD...)."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0


class BPF_JMP_OP(IntEnum):
    """The test of a BPF_JMP instruction (C: BPF_JA, BPF_JEQ...)."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40


class BPF_SRC(IntEnum):
    """The operand of an ALU or JMP instruction: the constant `k` (BPF_K)
    or the X register (BPF_X)."""

    K = 0x00
    X = 0x08


class BPF_RVAL(IntEnum):
    """What a BPF_RET instruction returns: `k`, X, or the accumulator A."""

    K = 0x00
    X = 0x08
    A = 0x10


class BPF_MISCOP(IntEnum):
    """The BPF_MISC register moves: A to X (BPF_TAX) and X to A (BPF_TXA)."""

    TAX = 0x00
    TXA = 0x80


class SockFilter(Struct, Immutable):
    """`struct sock_filter`: one instruction, the opcode `code`, the jump
    offsets `jt` (if true) and `jf` (if false), counted in instructions
    from the next one, and the constant `k`."""

    __slots__ = ("code", "jf", "jt", "k")
    layout = Layout("struct sock_filter", [("code", "H"), ("jt", "B"), ("jf", "B"), ("k", "I")])

    def __init__(self, code: int, jt: int, jf: int, k: int) -> None:
        object.__setattr__(self, "code", int(code) if isinstance(code, int) else code)
        object.__setattr__(self, "jt", jt)
        object.__setattr__(self, "jf", jf)
        object.__setattr__(self, "k", int(k) if isinstance(k, int) else k)
        check_fields(self, (("code", "H"), ("jt", "B"), ("jf", "B"), ("k", "I")))

    code: int
    jt: int
    jf: int
    k: int

    def __repr__(self) -> str:
        return f"SockFilter({self.code:#06x}, {self.jt}, {self.jf}, {self.k:#x})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SockFilter):
            return NotImplemented
        return (self.code, self.jt, self.jf, self.k) == (other.code, other.jt, other.jf, other.k)

    def __hash__(self) -> int:
        return hash((self.code, self.jt, self.jf, self.k))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.code, self.jt, self.jf, self.k)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a SockFilter needs {size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack(data[:size]))


def bpf_stmt(code: int, k: int) -> SockFilter:
    """C's BPF_STMT(code, k): an instruction that does not jump."""
    return SockFilter(code, 0, 0, k)


def bpf_jump(code: int, k: int, jt: int, jf: int) -> SockFilter:
    """C's BPF_JUMP(code, k, jt, jf): a conditional jump, `jt` instructions
    forward if the test holds, `jf` if not."""
    return SockFilter(code, jt, jf, k)


_INSN_SIZE = SockFilter.layout.size


class _SockFilterListSerializer(Serializer["SockFilterList"]):
    __slots__ = ()

    def to_bytes(self, value: SockFilterList) -> bytes:
        if not isinstance(value, SockFilterList):
            raise TypeError(f"expected a SockFilterList, got {type(value).__name__}")
        return b"".join(insn.to_bytes() for insn in value)

    def from_bytes(self, data: bytes) -> SockFilterList:
        usable = len(data) - len(data) % _INSN_SIZE
        return SockFilterList(
            SockFilter.from_bytes(data[i : i + _INSN_SIZE]) for i in range(0, usable, _INSN_SIZE)
        )


_LIST_SERIALIZER = _SockFilterListSerializer()


class SockFilterList(tuple[SockFilter, ...], HasSerializer):
    """The array of `struct sock_filter` a `struct sock_fprog` points to: a
    program of 1 to BPF_MAXINSNS instructions, in order (an immutable
    tuple).  The library does not check the program: the kernel does
    (EINVAL for a jump past the end, a program not ending in a return...)."""

    __slots__ = ()

    def __new__(cls, insns: Iterable[SockFilter] = ()) -> Self:
        self = super().__new__(cls, insns)
        for insn in self:
            if not isinstance(insn, SockFilter):
                raise TypeError(f"a SockFilterList holds SockFilters, not {type(insn).__name__}")
        if not 1 <= len(self) <= BPF_MAXINSNS:
            raise ValueError(
                f"a BPF program has 1 to {BPF_MAXINSNS} instructions, not {len(self)}"
            )
        return self

    def __repr__(self) -> str:
        return f"SockFilterList({list(self)!r})"

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[SockFilterList]:
        return _LIST_SERIALIZER


def check_program(prog: WrittenPointer[SockFprog], task: BaseTask) -> int:
    """For syscalls that take a `struct sock_fprog *`: the address of
    `prog`, after checking that it is a written SockFprog in `task`'s
    address space whose instruction array is still alive there."""
    if not isinstance(prog, WrittenPointer) or not isinstance(prog.value, SockFprog):
        raise TypeError(
            "expected a written pointer to a SockFprog, from thread.ptr(SockFprog(...))"
        )
    alloc = borrow(prog, task)
    insns = prog.value.filter
    try:
        borrow(insns, task)
    except UseAfterConsumeError:
        raise UseAfterConsumeError(
            "the SockFprog's instruction array was consumed or freed after it was written"
        ) from None
    return alloc.address


class _SockFprogSerializer(Serializer["SockFprog"]):
    __slots__ = ("task",)

    def __init__(self, task: BaseTask) -> None:
        self.task = task

    def to_bytes(self, value: SockFprog) -> bytes:
        if not isinstance(value, SockFprog):
            raise TypeError(f"expected a SockFprog, got {type(value).__name__}")
        alloc = value.filter._live()
        if value.filter.space is not self.task.space:
            raise ValueError("the SockFprog's instruction array is in another address space")
        return SockFprog.layout.struct.pack(len(value.filter.value), alloc.address)

    def from_bytes(self, data: bytes) -> SockFprog:
        raise TypeError(
            "a SockFprog cannot be read back from memory; use the WrittenPointer's .value"
        )


class SockFprog(Immutable, HasSerializer):
    """`struct sock_fprog`: a BPF program, as the `filter` pointer to its
    instructions (`thread.ptr(SockFilterList([...]))`) and their number
    (`len`, taken from it).  Holds the instruction pointer, so the program
    stays in memory as long as this value does."""

    __slots__ = ("filter",)
    layout = Layout("struct sock_fprog", [("len", "H"), ("_pad", "6x"), ("filter", "Q")])
    filter: WrittenPointer[SockFilterList]

    def __init__(self, filter: WrittenPointer[SockFilterList]) -> None:
        if not isinstance(filter, WrittenPointer) or not isinstance(filter.value, SockFilterList):
            raise TypeError(
                "filter must be a written pointer to a SockFilterList, "
                "from thread.ptr(SockFilterList([...]))"
            )
        if filter.size() != len(filter.value) * _INSN_SIZE:
            raise ValueError("filter's memory does not hold exactly its SockFilterList")
        object.__setattr__(self, "filter", filter)

    @property
    def len(self) -> int:
        """The number of instructions."""
        return len(self.filter.value)

    def __repr__(self) -> str:
        return f"SockFprog({self.filter!r})"

    @classmethod
    def sizeof(cls) -> int:
        return cls.layout.size

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[Any]:
        return _SockFprogSerializer(task)
