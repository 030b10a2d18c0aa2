"""<netinet/in.h>: IP protocol numbers, IPv4 address constants, IPv6 addresses.

`SockaddrIn6` lives here because ipv6(7) names <netinet/in.h> as its last
header; `SockaddrIn` is in rsyscall.netinet.ip, per ip(7).
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import ClassVar

from rsyscall._enum import IntEnum
from rsyscall.struct import Layout, check_fields
from rsyscall.sys.socket import AF, Sockaddr, _define_options

__all__ = ["INADDR", "IPPROTO", "IPV6", "SockaddrIn6"]


class IPPROTO(IntEnum):
    """IP protocol numbers: socket(2)'s protocol, and option levels."""

    IP = 0
    ICMP = 1
    TCP = 6
    UDP = 17
    IPV6 = 41
    ICMPV6 = 58
    SCTP = 132
    UDPLITE = 136
    RAW = 255
    MPTCP = 262


class INADDR(IntEnum):
    """Special IPv4 addresses, as host-order integers."""

    ANY = 0x00000000
    LOOPBACK = 0x7F000001
    BROADCAST = 0xFFFFFFFF


class IPV6(IntEnum):
    """IPPROTO_IPV6 socket options (ipv6(7)).  Their values hold no
    addresses, so setsockopt and getsockopt take them."""

    V6ONLY = 26


_define_options(IPPROTO.IPV6, IPV6)


class SockaddrIn6(Sockaddr):
    """`struct sockaddr_in6`: an IPv6 address and port.

    `port` is a host-order int and `addr` an IPv6Address (or anything it
    accepts); byte order is converted when written."""

    __slots__ = ("addr", "flowinfo", "port", "scope_id")
    family: ClassVar[AF] = AF.INET6
    layout: ClassVar[Layout] = Layout(
        "struct sockaddr_in6",
        [
            ("sin6_family", "H"),
            ("sin6_port", "2s"),
            ("sin6_flowinfo", "4s"),
            ("sin6_addr", "16s"),
            ("sin6_scope_id", "I"),
        ],
    )

    def __init__(
        self, port: int, addr: IPv6Address | str | int | bytes, flowinfo: int = 0, scope_id: int = 0
    ) -> None:
        self.port = _check_port(port)
        self.addr = IPv6Address(addr)
        self.flowinfo = flowinfo
        self.scope_id = scope_id
        check_fields(self, (("flowinfo", "I"), ("scope_id", "I")))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            AF.INET6,
            self.port.to_bytes(2, "big"),
            self.flowinfo.to_bytes(4, "big"),
            self.addr.packed,
            self.scope_id,
        )

    @classmethod
    def _parse(cls, data: bytes) -> SockaddrIn6:
        if len(data) < cls.layout.size:
            raise ValueError(f"a sockaddr_in6 is {cls.layout.size} bytes, got {len(data)}")
        _, port, flowinfo, addr, scope_id = cls.layout.struct.unpack_from(data)
        return cls(
            int.from_bytes(port, "big"), IPv6Address(addr), int.from_bytes(flowinfo, "big"),
            scope_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SockaddrIn6) and (
            self.port, self.addr, self.flowinfo, self.scope_id
        ) == (other.port, other.addr, other.flowinfo, other.scope_id)

    def __hash__(self) -> int:
        return hash((self.port, self.addr, self.flowinfo, self.scope_id))

    def __repr__(self) -> str:
        return f"SockaddrIn6(port={self.port}, addr={str(self.addr)!r})"


def _check_port(port: int) -> int:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is outside 0..65535")
    return port


