"""<net/if.h>: network interfaces: their flags, `struct ifreq`, and the
interface ioctls of netdevice(7).

netdevice(7) names <sys/ioctl.h> and then <net/if.h> in its SYNOPSIS, so by
the header-module rule what it describes lives here: `IFF`, `Ifreq`, and
the `SIOC` requests (which C defines in <bits/ioctls.h>, reached through
<sys/ioctl.h>).  The ioctls work on any socket, whatever its family:

    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    ifr = await (await sock.siocgifflags(await thread.ptr(Ifreq("lo")))).read()
    await sock.siocsifflags(await thread.ptr(Ifreq("lo", flags=ifr.flags | IFF.UP)))

The typed methods below cover the common requests.  A get request writes
the ifreq, so it consumes the pointer and returns a `ReadablePointer`; a
set request only reads it ("set ... using ifr_mtu", netdevice(7)), so it
borrows the pointer, which stays usable.  Every other SIOC request works
through `fd.ioctl(SIOC.X, ptr)` (rsyscall.sys.ioctl), which knows them all
as taking a pointer to an `Ifreq`: read and written for the SIOCG ones,
only read for the others.  SIOC requests not in `SIOC` (those whose
argument holds an address, like SIOCETHTOOL's ifr_data) are refused by
`fd.ioctl`; `fd.unsafe_ioctl` is the way to them.

`if_nametoindex`, `if_indextoname` and `bring_up` are helpers built on these
ioctls, not syscalls; they take a thread because they make a socket.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, ClassVar, Self

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import Pointer, ReadablePointer, borrow, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Layout, Struct
from rsyscall.sys.ioctl import _IN, _INOUT, _define, _Spec
from rsyscall.sys.socket import AF, SOCK, GenericSockaddr, Sockaddr

if TYPE_CHECKING:
    from rsyscall.thread import Thread

__all__ = [
    "IFF",
    "IFNAMSIZ",
    "SIOC",
    "IfFileDescriptor",
    "Ifreq",
    "bring_up",
    "if_indextoname",
    "if_nametoindex",
]

IFNAMSIZ = 16
"""The size of an interface name buffer, NUL included: names have at most 15 bytes."""


class IFF(IntFlag):
    """Interface flags (SIOCGIFFLAGS, SIOCSIFFLAGS), as glibc's <net/if.h>
    has them.  The kernel's IFF_LOWER_UP, IFF_DORMANT and IFF_ECHO are not
    here: glibc lacks them, and they do not fit in the 16-bit ifr_flags."""

    NONE = 0
    UP = 0x1
    BROADCAST = 0x2
    DEBUG = 0x4
    LOOPBACK = 0x8
    POINTOPOINT = 0x10
    NOTRAILERS = 0x20
    RUNNING = 0x40
    NOARP = 0x80
    PROMISC = 0x100
    ALLMULTI = 0x200
    MASTER = 0x400
    SLAVE = 0x800
    MULTICAST = 0x1000
    PORTSEL = 0x2000
    AUTOMEDIA = 0x4000
    DYNAMIC = 0x8000


class SIOC(IntEnum):
    """The ifreq ioctl requests of netdevice(7) (C: SIOCGIFFLAGS...).

    Each takes a pointer to an `Ifreq` naming the interface; the comment
    says which union member it uses.  Left out: those taking other structs
    (SIOCGIFCONF's ifconf, SIOCGIFMAP's ifmap, SIOCDIFADDR's in6_ifreq,
    routing and ARP requests) and the obsolete ones (SIOCGIFMEM...)."""

    GIFNAME = 0x8910  # ifindex in, name out
    GIFFLAGS = 0x8913  # flags
    SIFFLAGS = 0x8914
    GIFADDR = 0x8915  # addr (AF_INET only)
    SIFADDR = 0x8916
    GIFDSTADDR = 0x8917  # dstaddr
    SIFDSTADDR = 0x8918
    GIFBRDADDR = 0x8919  # broadaddr
    SIFBRDADDR = 0x891A
    GIFNETMASK = 0x891B  # netmask
    SIFNETMASK = 0x891C
    GIFMETRIC = 0x891D  # metric
    SIFMETRIC = 0x891E
    GIFMTU = 0x8921  # mtu
    SIFMTU = 0x8922
    SIFNAME = 0x8923  # newname
    SIFHWADDR = 0x8924  # hwaddr
    GIFHWADDR = 0x8927
    ADDMULTI = 0x8931  # hwaddr
    DELMULTI = 0x8932
    GIFINDEX = 0x8933  # ifindex
    SIFPFLAGS = 0x8934  # flags (private flags)
    GIFPFLAGS = 0x8935
    SIFHWBROADCAST = 0x8937  # hwaddr
    GIFTXQLEN = 0x8942  # qlen
    SIFTXQLEN = 0x8943


# ---- struct ifreq ----

_UNION_SIZE = 24  # sizeof the ifr_ifru union: its largest member, struct ifmap
_SOCKADDR_SIZE = 16  # sizeof(struct sockaddr)
_SHORT = struct.Struct("<H")  # ifr_flags is a C short; unsigned here so IFF.DYNAMIC stays positive
_INT = struct.Struct("<i")
_FAMILY = struct.Struct("<H")


def _encode_name(name: str, what: str = "interface name") -> bytes:
    """An interface name as the NUL-padded char[IFNAMSIZ] C wants."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    encoded = os.fsencode(name)
    if b"\0" in encoded:
        raise ValueError(f"embedded null byte in {what} {name!r}")
    # The kernel overwrites byte IFNAMSIZ-1 with a NUL, silently truncating
    # a longer name; refuse it instead.
    if len(encoded) >= IFNAMSIZ:
        raise ValueError(
            f"{what} {name!r} is {len(encoded)} bytes; at most {IFNAMSIZ - 1} fit in IFNAMSIZ"
        )
    return encoded.ljust(IFNAMSIZ, b"\0")


def _decode_name(data: bytes) -> str:
    return os.fsdecode(data.split(b"\0", 1)[0])


def _encode_int(value: int, what: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"{what} {value} does not fit in a C int")
    return _INT.pack(value)


def _encode_sockaddr(value: Sockaddr, what: str) -> bytes:
    if not isinstance(value, Sockaddr):
        raise TypeError(f"{what} must be a Sockaddr, not {type(value).__name__}")
    data = value.to_bytes()
    if len(data) > _SOCKADDR_SIZE:
        raise ValueError(
            f"{what}: a {type(value).__name__} takes {len(data)} bytes, "
            f"more than the {_SOCKADDR_SIZE} of a struct sockaddr"
        )
    return data


class Ifreq(Struct):
    """`struct ifreq`: an interface name and a union of request arguments.

    Construct it with the name and at most one union member, the one the
    request uses: `Ifreq("lo")`, `Ifreq("lo", flags=IFF.UP)`,
    `Ifreq(ifindex=1)` (for SIOCGIFNAME), `Ifreq("eth0", addr=SockaddrIn(0,
    "10.0.0.1"))`; or with `ifru`, the raw 24 bytes of the union.  Members
    not given are zero.

    As in C, the members share memory: every property reads the same
    bytes, as the member of that name.  Which one holds a meaningful value
    depends on the request that filled it.  Names are at most
    IFNAMSIZ - 1 bytes.  Left out: ifr_map (struct ifmap) and ifr_data (a
    pointer for driver-private requests); use `ifru` for them."""

    __slots__ = ("ifru", "name")
    layout: ClassVar[Layout] = Layout(
        "struct ifreq", [("ifr_name", f"{IFNAMSIZ}s"), ("ifr_ifru", f"{_UNION_SIZE}s")]
    )

    name: str
    ifru: bytes

    def __init__(
        self,
        name: str = "",
        *,
        addr: Sockaddr | None = None,
        dstaddr: Sockaddr | None = None,
        broadaddr: Sockaddr | None = None,
        netmask: Sockaddr | None = None,
        hwaddr: Sockaddr | None = None,
        flags: IFF | int | None = None,
        ifindex: int | None = None,
        metric: int | None = None,
        mtu: int | None = None,
        qlen: int | None = None,
        slave: str | None = None,
        newname: str | None = None,
        ifru: bytes | None = None,
    ) -> None:
        _encode_name(name)
        given = [
            (member, value)
            for member, value in (
                ("addr", addr), ("dstaddr", dstaddr), ("broadaddr", broadaddr),
                ("netmask", netmask), ("hwaddr", hwaddr), ("flags", flags),
                ("ifindex", ifindex), ("metric", metric), ("mtu", mtu), ("qlen", qlen),
                ("slave", slave), ("newname", newname), ("ifru", ifru),
            )
            if value is not None
        ]
        if len(given) > 1:
            members = ", ".join(member for member, _ in given)
            raise TypeError(f"the ifreq union holds one member at a time; got {members}")
        data = b""
        if given:
            member, value = given[0]
            if member in ("addr", "dstaddr", "broadaddr", "netmask", "hwaddr"):
                data = _encode_sockaddr(value, member)  # type: ignore[arg-type]
            elif member == "flags":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"flags must be IFF, not {type(value).__name__}")
                if not 0 <= value <= 0xFFFF:
                    raise ValueError(f"flags {value:#x} do not fit in the 16 bits of ifr_flags")
                data = _SHORT.pack(value)
            elif member in ("slave", "newname"):
                data = _encode_name(value, member)  # type: ignore[arg-type]
            elif member == "ifru":
                if not isinstance(value, bytes):
                    raise TypeError(f"ifru must be bytes, not {type(value).__name__}")
                if len(value) > _UNION_SIZE:
                    raise ValueError(f"ifru is {len(value)} bytes; the union has {_UNION_SIZE}")
                data = value
            else:
                data = _encode_int(value, member)  # type: ignore[arg-type]
        self.name = name
        self.ifru = data.ljust(_UNION_SIZE, b"\0")

    # ---- the union members, all views of the same bytes ----

    def _sockaddr(self) -> Sockaddr:
        data = self.ifru[:_SOCKADDR_SIZE]
        try:
            return Sockaddr.from_bytes(data)
        except ValueError:
            # A family whose address does not fit in a struct sockaddr.
            return GenericSockaddr(_FAMILY.unpack_from(data)[0], data[2:])

    @property
    def addr(self) -> Sockaddr:
        """ifr_addr: the interface address (SIOCGIFADDR, SIOCSIFADDR)."""
        return self._sockaddr()

    @property
    def dstaddr(self) -> Sockaddr:
        """ifr_dstaddr: a point-to-point link's other end."""
        return self._sockaddr()

    @property
    def broadaddr(self) -> Sockaddr:
        """ifr_broadaddr: the broadcast address."""
        return self._sockaddr()

    @property
    def netmask(self) -> Sockaddr:
        """ifr_netmask: the network mask, as an address."""
        return self._sockaddr()

    @property
    def hwaddr(self) -> GenericSockaddr:
        """ifr_hwaddr: the hardware address.  Its family is the device's
        ARPHRD_* type (not an AF_*), and `data` the address from byte 0."""
        data = self.ifru[:_SOCKADDR_SIZE]
        return GenericSockaddr(_FAMILY.unpack_from(data)[0], data[2:])

    @property
    def flags(self) -> IFF:
        """ifr_flags: the interface flags."""
        return IFF(_SHORT.unpack_from(self.ifru)[0])

    @property
    def ifindex(self) -> int:
        """ifr_ifindex: the interface index (SIOCGIFINDEX, SIOCGIFNAME)."""
        return int(_INT.unpack_from(self.ifru)[0])

    @property
    def metric(self) -> int:
        """ifr_metric (shares ifr_ifindex's int)."""
        return self.ifindex

    @property
    def qlen(self) -> int:
        """ifr_qlen: the transmit queue length (shares ifr_ifindex's int)."""
        return self.ifindex

    @property
    def mtu(self) -> int:
        """ifr_mtu: the MTU."""
        return int(_INT.unpack_from(self.ifru)[0])

    @property
    def slave(self) -> str:
        """ifr_slave: a slave device's name."""
        return _decode_name(self.ifru[:IFNAMSIZ])

    @property
    def newname(self) -> str:
        """ifr_newname: the new name for SIOCSIFNAME."""
        return _decode_name(self.ifru[:IFNAMSIZ])

    # ---- serialization ----

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(_encode_name(self.name), self.ifru)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a struct ifreq is {cls.layout.size} bytes, got {len(data)}")
        name, ifru = cls.layout.struct.unpack_from(data)
        return cls(_decode_name(name), ifru=ifru)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ifreq) and (self.name, self.ifru) == (other.name, other.ifru)

    def __hash__(self) -> int:
        return hash((self.name, self.ifru))

    def __repr__(self) -> str:
        return f"Ifreq({self.name!r}, ifru={self.ifru.rstrip(bytes(1))!r})"


# ---- the ioctls ----

_SYS_ioctl = int(SYS.ioctl)

# The table entries for `fd.ioctl(SIOC.X, ifr)`: a get request reads the
# name (or index) and writes the answer; a set request only reads.
_define({
    request: _Spec(_IN if request.name[0] == "S" or request.name.endswith("MULTI") else _INOUT,
                   Ifreq.sizeof(), (Ifreq,))
    for request in SIOC
})


def _check_ifreq(ifr: ReadablePointer[Ifreq], task: BaseTask) -> None:
    # Type parameters are erased at run time; the serializer says what the
    # pointer was made for.
    if isinstance(ifr, Pointer) and ifr.serializer is not Ifreq.get_serializer(task):
        raise TypeError("expected a pointer to an Ifreq, from thread.ptr(Ifreq(...))")


class IfFileDescriptor(BaseFileDescriptor):
    """The netdevice(7) ioctls on a socket of any family."""

    __slots__ = ()

    async def _ifreq_get(
        self, request: SIOC, ifr: ReadablePointer[Ifreq]
    ) -> ReadablePointer[Ifreq]:
        _check_ifreq(ifr, self.task)
        if not isinstance(ifr, ReadablePointer):
            # Get requests read the name (or index) before writing the answer.
            raise TypeError("the ifreq must be initialized: pass thread.ptr(Ifreq(...))")
        number = self.number
        alloc = take(ifr, self.task, Ifreq.sizeof())
        try:
            await self.task.sysif.syscall(_SYS_ioctl, number, request, alloc.address)
        except BaseException:
            restore(ifr, alloc)
            raise
        return ifr._readable(alloc, self.task)

    async def _ifreq_set(self, request: SIOC, ifr: ReadablePointer[Ifreq]) -> None:
        _check_ifreq(ifr, self.task)
        alloc = borrow(ifr, self.task, Ifreq.sizeof())
        await self.task.sysif.syscall(_SYS_ioctl, self.number, request, alloc.address)

    async def siocgifname(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFNAME: the name of the interface with index
        `ifr`'s ifindex, written into its name.  Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFNAME, ifr)

    async def siocgifindex(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFINDEX: the index of interface `ifr.name`, in ifindex.
        Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFINDEX, ifr)

    async def siocgifflags(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFFLAGS: interface `ifr.name`'s flags.  Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFFLAGS, ifr)

    async def siocsifflags(self, ifr: ReadablePointer[Ifreq]) -> None:
        """netdevice(7) SIOCSIFFLAGS: set interface `ifr.name`'s flags to
        `ifr.flags` (needs CAP_NET_ADMIN in the network namespace's user
        namespace).  Only reads `ifr`."""
        await self._ifreq_set(SIOC.SIFFLAGS, ifr)

    async def siocgifaddr(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFADDR: interface `ifr.name`'s IPv4 address, in addr
        (EADDRNOTAVAIL if it has none).  Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFADDR, ifr)

    async def siocsifaddr(self, ifr: ReadablePointer[Ifreq]) -> None:
        """netdevice(7) SIOCSIFADDR: set interface `ifr.name`'s address to
        `ifr.addr` (privileged).  Only reads `ifr`."""
        await self._ifreq_set(SIOC.SIFADDR, ifr)

    async def siocgifnetmask(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFNETMASK: interface `ifr.name`'s IPv4 network mask,
        in netmask.  Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFNETMASK, ifr)

    async def siocsifnetmask(self, ifr: ReadablePointer[Ifreq]) -> None:
        """netdevice(7) SIOCSIFNETMASK: set interface `ifr.name`'s network mask to
        `ifr.netmask` (privileged).  Only reads `ifr`."""
        await self._ifreq_set(SIOC.SIFNETMASK, ifr)

    async def siocgifmtu(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFMTU: interface `ifr.name`'s MTU, in mtu.  Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFMTU, ifr)

    async def siocsifmtu(self, ifr: ReadablePointer[Ifreq]) -> None:
        """netdevice(7) SIOCSIFMTU: set interface `ifr.name`'s MTU to `ifr.mtu`
        (privileged).  Only reads `ifr`."""
        await self._ifreq_set(SIOC.SIFMTU, ifr)

    async def siocgifhwaddr(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """netdevice(7) SIOCGIFHWADDR: interface `ifr.name`'s hardware address and
        ARPHRD type, in hwaddr.  Consumes `ifr`."""
        return await self._ifreq_get(SIOC.GIFHWADDR, ifr)


# ---- helpers built on the ioctls (not syscalls) ----


async def if_nametoindex(thread: Thread, name: str) -> int:
    """The index of interface `name` in `thread`'s network namespace.

    Like libc's if_nametoindex(3), which is not a syscall but SIOCGIFINDEX
    on a throwaway socket; unlike it, raises OSError (ENODEV) for a missing
    interface instead of returning 0."""
    ifr = await thread.ptr(Ifreq(name))
    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    try:
        return (await (await sock.siocgifindex(ifr)).read()).ifindex
    finally:
        await sock.close()


async def if_indextoname(thread: Thread, ifindex: int) -> str:
    """The name of the interface with index `ifindex` in `thread`'s network
    namespace: libc's if_indextoname(3), SIOCGIFNAME on a throwaway socket.
    Raises OSError (ENODEV) if there is none."""
    ifr = await thread.ptr(Ifreq(ifindex=ifindex))
    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    try:
        return (await (await sock.siocgifname(ifr)).read()).name
    finally:
        await sock.close()


async def bring_up(thread: Thread, name: str = "lo") -> None:
    """Set IFF.UP on interface `name` in `thread`'s network namespace, as
    `ip link set name up` does: SIOCGIFFLAGS, then SIOCSIFFLAGS with UP
    added, on a throwaway socket.  A new network namespace's loopback starts
    down; this makes 127.0.0.1 usable there."""
    ifr = await thread.ptr(Ifreq(name))
    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    try:
        flags = (await (await sock.siocgifflags(ifr)).read()).flags
        # Setting flags needs CAP_NET_ADMIN; an interface already up needs nothing.
        if not flags & IFF.UP:
            await sock.siocsifflags(await thread.ptr(Ifreq(name, flags=flags | IFF.UP)))
    finally:
        await sock.close()
