"""<netinet/ip.h>: IPv4 socket addresses and IPPROTO_IP options (ip(7))."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import ClassVar

from rsyscall._enum import IntEnum
from rsyscall.netinet.in_ import IPPROTO, _check_port
from rsyscall.struct import Layout
from rsyscall.sys.socket import AF, Sockaddr, _define_options

__all__ = ["IP", "SockaddrIn"]


class IP(IntEnum):
    """IPPROTO_IP socket options."""

    TOS = 1
    TTL = 2
    HDRINCL = 3
    OPTIONS = 4
    RECVOPTS = 6
    PKTINFO = 8
    MTU_DISCOVER = 10
    RECVERR = 11
    RECVTTL = 12
    RECVTOS = 13
    MTU = 14
    FREEBIND = 15
    TRANSPARENT = 19
    MULTICAST_IF = 32
    MULTICAST_TTL = 33
    MULTICAST_LOOP = 34
    ADD_MEMBERSHIP = 35
    DROP_MEMBERSHIP = 36


# None of these options' values holds an address: setsockopt and getsockopt
# take them.  Their values are C ints but for those named here, whose
# structs (struct ip_mreqn, struct in_addr, IP options) are passed as bytes.
_define_options(IPPROTO.IP, IP, {
    IP.OPTIONS: (), IP.MULTICAST_IF: (), IP.ADD_MEMBERSHIP: (), IP.DROP_MEMBERSHIP: (),
})


class SockaddrIn(Sockaddr):
    """`struct sockaddr_in`: an IPv4 address and port.

    `port` is a host-order int; `addr` an IPv4Address, a dotted string, or
    a host-order int (0 is INADDR_ANY).  Network byte order is handled when
    the struct is written and read; never call htons."""

    __slots__ = ("addr", "port")
    family: ClassVar[AF] = AF.INET
    layout: ClassVar[Layout] = Layout(
        "struct sockaddr_in",
        [("sin_family", "H"), ("sin_port", "2s"), ("sin_addr", "4s"), ("sin_zero", "8x")],
    )

    def __init__(self, port: int, addr: IPv4Address | str | int = 0) -> None:
        self.port = _check_port(port)
        self.addr = IPv4Address(addr)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(AF.INET, self.port.to_bytes(2, "big"), self.addr.packed)

    @classmethod
    def _parse(cls, data: bytes) -> SockaddrIn:
        if len(data) < 8:
            raise ValueError(f"a sockaddr_in needs at least 8 bytes, got {len(data)}")
        _, port, addr = cls.layout.struct.unpack_from(data.ljust(cls.layout.size, b"\0"))
        return cls(int.from_bytes(port, "big"), IPv4Address(addr))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SockaddrIn) and (self.port, self.addr) == (other.port, other.addr)

    def __hash__(self) -> int:
        return hash((self.port, self.addr))

    def __repr__(self) -> str:
        return f"SockaddrIn(port={self.port}, addr={str(self.addr)!r})"
