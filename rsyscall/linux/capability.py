"""<linux/capability.h>: capget(2), capset(2) and the CAP_* capability numbers.

capget(2)'s SYNOPSIS names the kernel's <linux/capability.h> (and
<unistd.h> only for syscall(2): glibc has no wrappers), so the module is
rsyscall.linux.capability, as rsyscall.linux.futex is for futex(2).
(<sys/capability.h> is libcap's, a library over these calls.)

The raw calls take a header (`CapUserHeader`: the ABI version and a
thread id) and the data: for version 3, the only one supported here, an
array of two `struct __user_cap_data_struct`, the low and high 32 bits of
each of the three capability sets.  That array is `CapSet`, which holds
the effective, permitted and inheritable sets as frozensets of `CAP`:

    header = await thread.ptr(CapUserHeader())
    caps = await (await thread.task.capget(header, await thread.malloc(CapSet))).read()
    if CAP.SYS_ADMIN in caps.effective: ...

capget of the calling thread is `Task.capget` (header pid 0); of another
thread, `Process.capget` (header pid = that thread's id).  capset can only
change the calling thread's sets (the kernel refuses any other), so it is
a method of `Task` alone.  Capabilities are per thread: a child thread has
its own, and in a new user namespace (`thread.clone(CLONE.NEWUSER)`) it
starts with all of them, valid inside that namespace.

The bounding and ambient sets are reached through prctl(2)
(rsyscall.sys.prctl: PR.CAPBSET_READ, PR.CAPBSET_DROP, PR.CAP_AMBIENT).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Self

from rsyscall._enum import IntEnum
from rsyscall.base import BaseProcess, BaseTask
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_UINT, FixedSize, Layout, Serializable, Struct, int_arg

__all__ = [
    "CAP",
    "CAP_LAST_CAP",
    "_LINUX_CAPABILITY_VERSION_3",
    "CapSet",
    "CapUserData",
    "CapUserHeader",
    "CapabilityProcess",
    "CapabilityTask",
]

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
"""The capget/capset ABI version whose data is two `CapUserData` (64-bit
sets); the one `CapUserHeader` defaults to, and the only one accepted."""

_LINUX_CAPABILITY_U32S_3 = 2  # data structs per call in version 3


class CAP(IntEnum):
    """Capability numbers (C prefix CAP_), bit positions in the sets; see
    capabilities(7)."""

    CHOWN = 0
    DAC_OVERRIDE = 1
    DAC_READ_SEARCH = 2
    FOWNER = 3
    FSETID = 4
    KILL = 5
    SETGID = 6
    SETUID = 7
    SETPCAP = 8
    LINUX_IMMUTABLE = 9
    NET_BIND_SERVICE = 10
    NET_BROADCAST = 11
    NET_ADMIN = 12
    NET_RAW = 13
    IPC_LOCK = 14
    IPC_OWNER = 15
    SYS_MODULE = 16
    SYS_RAWIO = 17
    SYS_CHROOT = 18
    SYS_PTRACE = 19
    SYS_PACCT = 20
    SYS_ADMIN = 21
    SYS_BOOT = 22
    SYS_NICE = 23
    SYS_RESOURCE = 24
    SYS_TIME = 25
    SYS_TTY_CONFIG = 26
    MKNOD = 27
    LEASE = 28
    AUDIT_WRITE = 29
    AUDIT_CONTROL = 30
    SETFCAP = 31
    MAC_OVERRIDE = 32
    MAC_ADMIN = 33
    SYSLOG = 34
    WAKE_ALARM = 35
    BLOCK_SUSPEND = 36
    AUDIT_READ = 37
    PERFMON = 38
    BPF = 39
    CHECKPOINT_RESTORE = 40


CAP_LAST_CAP = 40
"""The highest capability the headers know.  The running kernel's is in
/proc/sys/kernel/cap_last_cap and may be higher: `CapSet` keeps the bits
it has no name for as plain ints."""

_U32 = 0xFFFFFFFF
_CAP_BITS = 32 * _LINUX_CAPABILITY_U32S_3  # 64 bits per set in version 3



@dataclasses.dataclass(frozen=True, slots=True)  # slots made here: the fields have defaults
class CapUserHeader(Struct):
    """`struct __user_cap_header_struct`: the ABI `version` (only version
    3 is accepted here, and is the default) and the thread id `pid` whose
    capabilities are meant, 0 for the calling thread."""

    version: int = _LINUX_CAPABILITY_VERSION_3
    pid: int = 0
    layout = Layout("struct __user_cap_header_struct", [("version", "I"), ("pid", "i")])

    def __post_init__(self) -> None:
        int_arg("version", self.version, C_UINT)
        if not isinstance(self.pid, int) or isinstance(self.pid, bool):
            raise TypeError(f"pid must be an int, not {type(self.pid).__name__}")
        if not -(1 << 31) <= self.pid < 1 << 31:
            raise ValueError(f"pid {self.pid} does not fit in a C int")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.version, self.pid)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        layout = cls.layout
        if len(data) < layout.size:
            raise ValueError(f"a {layout.c_type} needs {layout.size} bytes, got {len(data)}")
        return cls(*layout.struct.unpack_from(data))


@dataclasses.dataclass(frozen=True)
class CapUserData(Struct):
    """`struct __user_cap_data_struct`: 32 bits of each of the three sets
    as raw bitmasks (bit n for capability n, or n + 32 in the second of
    version 3's two).  `CapSet` is the pair of them, as sets of `CAP`."""

    __slots__ = ("effective", "inheritable", "permitted")

    effective: int
    permitted: int
    inheritable: int
    layout = Layout(
        "struct __user_cap_data_struct",
        [("effective", "I"), ("permitted", "I"), ("inheritable", "I")],
    )

    def __post_init__(self) -> None:
        for name in ("effective", "permitted", "inheritable"):
            int_arg(name, getattr(self, name), C_UINT)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.effective, self.permitted, self.inheritable)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        layout = cls.layout
        if len(data) < layout.size:
            raise ValueError(f"a {layout.c_type} needs {layout.size} bytes, got {len(data)}")
        return cls(*layout.struct.unpack_from(data))


def _as_cap(cap: object) -> CAP | int:
    if not isinstance(cap, int) or isinstance(cap, bool):
        raise TypeError(f"a capability must be a CAP or an int, not {type(cap).__name__}")
    if not 0 <= cap < _CAP_BITS:
        raise ValueError(f"capability {cap} outside 0..{_CAP_BITS - 1}")
    try:
        return CAP(cap)
    except ValueError:
        return int(cap)  # one the headers do not name yet


def _caps(caps: Iterable[CAP | int]) -> frozenset[CAP | int]:
    if isinstance(caps, str | bytes) or not isinstance(caps, Iterable):
        raise TypeError(f"a capability set is made from CAPs, not a {type(caps).__name__}")
    return frozenset(_as_cap(cap) for cap in caps)


def _bits(caps: frozenset[CAP | int]) -> int:
    bits = 0
    for cap in caps:
        bits |= 1 << cap
    return bits


def _from_bits(bits: int) -> frozenset[CAP | int]:
    return frozenset(_as_cap(n) for n in range(_CAP_BITS) if bits >> n & 1)


class CapSet(Serializable, FixedSize):
    """A thread's effective, permitted and inheritable capability sets, as
    frozensets of `CAP` (plain ints for capabilities the headers do not
    name).  In memory, version 3's `struct __user_cap_data_struct[2]`:
    24 bytes, the first struct holding capabilities 0..31, the second
    32..63.  Immutable, so a `WrittenPointer`'s `.value` stays true.

    A deviation for type safety: C's `cap_user_data_t` is a pointer to the
    first of the two structs; here it is one value."""

    __slots__ = ("effective", "inheritable", "permitted")

    effective: frozenset[CAP | int]
    permitted: frozenset[CAP | int]
    inheritable: frozenset[CAP | int]

    def __init__(
        self,
        effective: Iterable[CAP | int] = (),
        permitted: Iterable[CAP | int] = (),
        inheritable: Iterable[CAP | int] = (),
    ) -> None:
        object.__setattr__(self, "effective", _caps(effective))
        object.__setattr__(self, "permitted", _caps(permitted))
        object.__setattr__(self, "inheritable", _caps(inheritable))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a CapSet is immutable; make a new one")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CapSet):
            return NotImplemented
        return self.bits() == other.bits()

    def __hash__(self) -> int:
        return hash(self.bits())

    def __repr__(self) -> str:
        def show(caps: frozenset[CAP | int]) -> str:
            names = [f"CAP.{c.name}" if isinstance(c, CAP) else str(c) for c in sorted(caps)]
            return "{" + ", ".join(names) + "}" if names else "set()"

        return (
            f"CapSet(effective={show(self.effective)}, permitted={show(self.permitted)}, "
            f"inheritable={show(self.inheritable)})"
        )

    def bits(self) -> tuple[int, int, int]:
        """The three sets as 64-bit masks: (effective, permitted, inheritable)."""
        return _bits(self.effective), _bits(self.permitted), _bits(self.inheritable)

    @classmethod
    def from_bits(cls, effective: int, permitted: int, inheritable: int) -> Self:
        """The sets of three 64-bit masks (bit n for capability n)."""
        for name, mask in (
            ("effective", effective),
            ("permitted", permitted),
            ("inheritable", inheritable),
        ):
            if not isinstance(mask, int) or isinstance(mask, bool):
                raise TypeError(f"{name} must be an int, not {type(mask).__name__}")
            if not 0 <= mask < 1 << _CAP_BITS:
                raise ValueError(f"{name} {mask:#x} does not fit in {_CAP_BITS} bits")
        return cls(_from_bits(effective), _from_bits(permitted), _from_bits(inheritable))

    def to_data(self) -> tuple[CapUserData, CapUserData]:
        """The two C structs: capabilities 0..31, then 32..63."""
        masks = self.bits()
        return (
            CapUserData(*(mask & _U32 for mask in masks)),
            CapUserData(*(mask >> 32 for mask in masks)),
        )

    @classmethod
    def from_data(cls, low: CapUserData, high: CapUserData) -> Self:
        """The sets that the two C structs describe."""
        return cls.from_bits(
            low.effective | high.effective << 32,
            low.permitted | high.permitted << 32,
            low.inheritable | high.inheritable << 32,
        )

    @classmethod
    def sizeof(cls) -> int:
        return _LINUX_CAPABILITY_U32S_3 * CapUserData.sizeof()

    def to_bytes(self) -> bytes:
        low, high = self.to_data()
        return low.to_bytes() + high.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.sizeof()
        if len(data) < size:
            raise ValueError(f"a CapSet needs {size} bytes, got {len(data)}")
        half = CapUserData.sizeof()
        low, high = CapUserData.from_bytes(data[:half]), CapUserData.from_bytes(data[half:])
        return cls.from_data(low, high)




def _header_address(task: BaseTask, header: WrittenPointer[CapUserHeader], pid: int) -> int:
    """Check that `header` is version 3 and names `pid`; its address."""
    if not isinstance(header, WrittenPointer) or not isinstance(header.value, CapUserHeader):
        raise TypeError(
            "header must be a written pointer to a CapUserHeader, from thread.ptr(CapUserHeader())"
        )
    value = header.value
    if value.version != _LINUX_CAPABILITY_VERSION_3:
        raise ValueError(
            f"header version {value.version:#x}: only _LINUX_CAPABILITY_VERSION_3 is supported"
        )
    if value.pid != pid:
        where = "0 (the calling thread)" if pid == 0 else f"this process's {pid}"
        hint = "; use Process.capget for another thread" if pid == 0 else ""
        raise ValueError(f"header pid {value.pid} must be {where}{hint}")
    return borrow(header, task, CapUserHeader.sizeof()).address


_SYS_capget = int(SYS.capget)
_SYS_capset = int(SYS.capset)
_CAPSET_SIZE = CapSet.sizeof()


async def _capget(
    task: BaseTask, pid: int, header: WrittenPointer[CapUserHeader], data: Pointer[CapSet]
) -> ReadablePointer[CapSet]:
    header_address = _header_address(task, header, pid)
    check_points_to(data, CapSet)
    alloc = take(data, task, _CAPSET_SIZE)
    try:
        await task.sysif.syscall(_SYS_capget, header_address, alloc.address)
    except BaseException:
        restore(data, alloc)
        raise
    return data._readable(alloc, task)


class CapabilityTask(BaseTask):
    __slots__ = ()

    async def capget(
        self, header: WrittenPointer[CapUserHeader], data: Pointer[CapSet]
    ) -> ReadablePointer[CapSet]:
        """capget(2) of the calling thread: write its capability sets into
        `data` (consumed).  `header` must be `CapUserHeader()`: version 3,
        pid 0; another thread's are `Process.capget`'s."""
        return await _capget(self, 0, header, data)

    async def capset(
        self, header: WrittenPointer[CapUserHeader], data: ReadablePointer[CapSet]
    ) -> None:
        """capset(2): set the calling thread's capability sets to those in
        `data`, any readable pointer to a `CapSet` (such as one capget
        filled).  `header` must be `CapUserHeader()`: version 3, pid 0
        (the kernel changes no other thread's).  Sets can only shrink,
        except inheritable within the bounding set with CAP.SETPCAP, and
        effective must stay within permitted (OSError EPERM).  Bits beyond
        the kernel's last capability are silently dropped."""
        header_address = _header_address(self, header, 0)
        check_points_to(data, CapSet)
        alloc = borrow(data, self, _CAPSET_SIZE)
        await self.sysif.syscall(_SYS_capset, header_address, alloc.address)


class CapabilityProcess(BaseProcess):
    __slots__ = ()

    async def capget(
        self, header: WrittenPointer[CapUserHeader], data: Pointer[CapSet]
    ) -> ReadablePointer[CapSet]:
        """capget(2) of this process (strictly, of the thread whose id is
        this pid: a process's main thread): write its capability sets into
        `data` (consumed).  `header` must be `CapUserHeader(pid=self.pid)`."""
        return await _capget(self.task, self.pid, header, data)
