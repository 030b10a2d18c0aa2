"""<linux/rtnetlink.h>: route netlink (rtnetlink(7)): links, addresses and
routes of a network namespace, read and changed through a NETLINK_ROUTE
socket of any thread.

The messages are pyroute2's message classes (`ifinfmsg`, `ifaddrmsg`,
`rtmsg` of pyroute2.netlink.rtnl), which encode and decode the
attributes; only their encoding is used: the socket is a
`rsyscall.linux.netlink.NetlinkSocket` of the thread, so a request acts on
the thread's network namespace, and an fd named in a request (IFLA_NET_NS_FD)
is a number in the thread's fd table.  `Rtnetlink` sends one request at a
time, each with NLM_F_ACK; an NLMSG_ERROR from the kernel raises OSError
with its errno (FileExistsError for a duplicate link name, OSError ENODEV
for a missing interface).

Two network namespaces joined by a veth pair:

    from ipaddress import ip_interface
    from rsyscall.fcntl import O
    from rsyscall.linux.rtnetlink import Rtnetlink
    from rsyscall.sched import CLONE

    a = await thread.clone(CLONE.NEWNET)
    b = await thread.clone(CLONE.NEWNET)
    b_netns = await a.task.open(await a.ptr(f"/proc/{b.process.pid}/ns/net"), O.RDONLY)
    async with await Rtnetlink.open(a) as rt:
        await rt.add_veth("veth0", "veth1", peer_netns=b_netns)
        index = await rt.link_index("veth0")
        await rt.add_address(index, ip_interface("192.0.2.1/24"))
        await rt.link_up(index)
    async with await Rtnetlink.open(b) as rt:
        index = await rt.link_index("veth1")
        await rt.add_address(index, ip_interface("192.0.2.2/24"))
        await rt.link_up(index)

`request` and `dump` take any rtnetlink message for what the helpers
leave out:

    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    links = await rt.dump(RTM.GETLINK, ifinfmsg())
    names = [link.get_attr("IFLA_IFNAME") for link in links]
"""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)
from typing import TYPE_CHECKING, Any, Self

from pyroute2.netlink import nlmsg  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.marshal import MarshalRtnl  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # type: ignore[import-untyped]

from rsyscall._enum import IntEnum
from rsyscall.linux.netlink import NETLINK, NLM_F, NetlinkSocket
from rsyscall.net.if_ import IFF
from rsyscall.sys.socket import AF

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.thread import Thread

__all__ = ["RT_SCOPE", "RT_TABLE", "RTM", "RTN", "RTPROT", "Rtnetlink"]


class RTM(IntEnum):
    """Route netlink message types (C: RTM_NEWLINK...)."""

    NEWLINK = 16
    DELLINK = 17
    GETLINK = 18
    SETLINK = 19
    NEWADDR = 20
    DELADDR = 21
    GETADDR = 22
    NEWROUTE = 24
    DELROUTE = 25
    GETROUTE = 26
    NEWNEIGH = 28
    DELNEIGH = 29
    GETNEIGH = 30
    NEWRULE = 32
    DELRULE = 33
    GETRULE = 34
    NEWQDISC = 36
    DELQDISC = 37
    GETQDISC = 38
    NEWTCLASS = 40
    DELTCLASS = 41
    GETTCLASS = 42
    NEWTFILTER = 44
    DELTFILTER = 45
    GETTFILTER = 46
    NEWNSID = 88
    DELNSID = 89
    GETNSID = 90


class RTN(IntEnum):
    """Route types, rtmsg's `type` (C: RTN_UNICAST...)."""

    UNSPEC = 0
    UNICAST = 1
    LOCAL = 2
    BROADCAST = 3
    ANYCAST = 4
    MULTICAST = 5
    BLACKHOLE = 6
    UNREACHABLE = 7
    PROHIBIT = 8
    THROW = 9
    NAT = 10
    XRESOLVE = 11


class RTPROT(IntEnum):
    """Who installed a route, rtmsg's `proto` (C: RTPROT_*); values above
    STATIC are the routing daemons', uninterpreted by the kernel."""

    UNSPEC = 0
    REDIRECT = 1
    KERNEL = 2
    BOOT = 3
    STATIC = 4


class RT_SCOPE(IntEnum):
    """How far a route or address reaches, rtmsg's and ifaddrmsg's `scope`
    (C: RT_SCOPE_*)."""

    UNIVERSE = 0
    SITE = 200
    LINK = 253
    HOST = 254
    NOWHERE = 255


class RT_TABLE(IntEnum):
    """The reserved routing table ids (C: RT_TABLE_*); others are 1..2**32-1."""

    UNSPEC = 0
    COMPAT = 252
    DEFAULT = 253
    MAIN = 254
    LOCAL = 255


_IFA_F_NODAD = 0x02  # <linux/if_addr.h>: skip IPv6 duplicate address detection
_U32 = (1 << 32) - 1

Interface = IPv4Interface | IPv6Interface
Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def _encode(message: Any) -> bytes:
    """The payload (what follows the nlmsghdr) of a pyroute2 message."""
    if not isinstance(message, nlmsg):
        raise TypeError(f"expected a pyroute2 message (ifinfmsg...), not {type(message).__name__}")
    message.reset()
    message.encode()
    return bytes(message.data)[16:]


def _decode(type: int, data: bytes) -> Any:
    cls = MarshalRtnl.msg_map.get(type, nlmsg)
    message = cls(data)
    message.decode()
    return message


def _family(value: Interface | Network | Address) -> AF:
    return AF.INET if value.version == 4 else AF.INET6


def _index(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"an interface index must be an int, not {type(value).__name__}")
    if not 1 <= value <= 0x7FFFFFFF:
        raise ValueError(f"interface index {value} outside 1..2**31-1")
    return int(value)


def _name(value: object, what: str = "name") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    encoded = value.encode()
    if not encoded or b"\0" in encoded or b"/" in encoded or len(encoded) > 15:
        raise ValueError(f"{what} {value!r} is not an interface name (1..15 bytes, no / or NUL)")
    return value


class Rtnetlink:
    """A NETLINK_ROUTE socket of `thread`, for the links, addresses and
    routes of its network namespace.  Make one with `await
    Rtnetlink.open(thread)`; close it (or use `async with`) when done."""

    def __init__(self, socket: NetlinkSocket) -> None:
        if not isinstance(socket, NetlinkSocket):
            raise TypeError(f"socket must be a NetlinkSocket, not {type(socket).__name__}")
        self.socket = socket

    def __repr__(self) -> str:
        return f"Rtnetlink({self.socket.thread!r})"

    @classmethod
    async def open(cls, thread: Thread) -> Self:
        """A route netlink socket in `thread`."""
        return cls(await NetlinkSocket.open(thread, NETLINK.ROUTE))

    @property
    def thread(self) -> Thread:
        """The thread whose socket this is (and whose netns it acts on)."""
        return self.socket.thread

    async def close(self) -> None:
        """Close the socket."""
        await self.socket.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- any message ----

    async def request(self, type: RTM, message: Any, flags: NLM_F = NLM_F.NONE) -> list[Any]:
        """Send `message` (a pyroute2 message: ifinfmsg, ifaddrmsg,
        rtmsg...; its header is made here) as a request of `type`, with
        NLM_F.REQUEST | NLM_F.ACK | `flags`; return the replies, decoded
        as pyroute2 messages.  An error from the kernel raises OSError.

        Attributes naming fds (IFLA_NET_NS_FD) must be fd numbers of this
        socket's thread (pyroute2's way of opening a named netns file
        would open it in the Python process instead)."""
        if not isinstance(type, RTM):
            raise TypeError(f"type must be an RTM, not {_type_name(type)}")
        if not isinstance(flags, NLM_F):
            raise TypeError(f"flags must be NLM_F, not {_type_name(flags)}")
        replies = await self.socket.request(type, _encode(message), flags, f"RTM_{type.name}")
        return [_decode(reply.header.type, reply.data) for reply in replies]

    async def dump(self, type: RTM, message: Any = None) -> list[Any]:
        """Every object of a GET `type` (RTM.GETLINK...): `request` with
        NLM_F.DUMP.  `message` filters (its family, say); by default, the
        empty message of the type's class, every family."""
        if message is None:
            if not isinstance(type, RTM):
                raise TypeError(f"type must be an RTM, not {_type_name(type)}")
            message = MarshalRtnl.msg_map.get(type, nlmsg)()
        return await self.request(type, message, NLM_F.DUMP)

    # ---- links ----

    async def links(self) -> list[Any]:
        """Every link (network interface): RTM_GETLINK dump, as ifinfmsg."""
        return await self.dump(RTM.GETLINK, ifinfmsg())

    async def get_link(self, name: str) -> Any:
        """The link named `name`, an ifinfmsg (OSError ENODEV if there is none)."""
        message = ifinfmsg()
        message["attrs"] = [("IFLA_IFNAME", _name(name))]
        (reply,) = await self.request(RTM.GETLINK, message)
        return reply

    async def link_index(self, name: str) -> int:
        """The index of the link named `name` (OSError ENODEV if there is none)."""
        return int((await self.get_link(name))["index"])

    async def add_link(self, name: str, kind: str, *, data: list[Any] | None = None) -> None:
        """Create link `name` of `kind` ("dummy", "bridge", "veth"...; `data`
        its IFLA_INFO_DATA attributes), as `ip link add NAME type KIND`.
        FileExistsError if a link of that name exists."""
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"kind must be a link kind, not {kind!r}")
        info: list[Any] = [("IFLA_INFO_KIND", kind)]
        if data is not None:
            info.append(("IFLA_INFO_DATA", {"attrs": list(data)}))
        message = ifinfmsg()
        message["attrs"] = [("IFLA_IFNAME", _name(name)), ("IFLA_LINKINFO", {"attrs": info})]
        await self.request(RTM.NEWLINK, message, NLM_F.CREATE | NLM_F.EXCL)

    async def add_veth(
        self, name: str, peer: str, *, peer_netns: FileDescriptor | None = None,
        peer_pid: int | None = None,
    ) -> None:
        """Create a veth pair, `name` here and `peer` in this namespace or,
        given `peer_netns` (an fd of this socket's thread for a network
        namespace: /proc/PID/ns/net, opened by that thread) or `peer_pid`
        (a process whose network namespace, with pids as this thread sees
        them), there: `ip link add NAME type veth peer name PEER netns NS`.
        FileExistsError if either name is taken."""
        peer_attrs: list[Any] = [("IFLA_IFNAME", _name(peer, "peer"))]
        peer_attrs += self._netns_attrs(peer_netns, peer_pid)
        await self.add_link(name, "veth", data=[("VETH_INFO_PEER", {"attrs": peer_attrs})])

    def _netns_attrs(self, netns: FileDescriptor | None, pid: int | None) -> list[Any]:
        if netns is not None and pid is not None:
            raise TypeError("give a netns fd or a pid, not both")
        if netns is not None:
            from rsyscall.base import BaseFileDescriptor

            if not isinstance(netns, BaseFileDescriptor):
                raise TypeError(f"netns must be a FileDescriptor, not {type(netns).__name__}")
            if netns.task.fd_table is not self.thread.task.fd_table:
                raise ValueError(
                    "the netns fd must be in the fd table of the socket's thread, "
                    "which the kernel looks it up in")
            if netns.closed:
                raise ValueError("the netns fd is closed")
            return [("IFLA_NET_NS_FD", netns.number)]
        if pid is not None:
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise TypeError(f"pid must be an int, not {type(pid).__name__}")
            if not 1 <= pid <= 0x7FFFFFFF:
                raise ValueError(f"pid {pid} outside 1..2**31-1")
            return [("IFLA_NET_NS_PID", pid)]
        return []

    async def set_link(
        self, index: int, *, up: bool | None = None, mtu: int | None = None,
        name: str | None = None, netns: FileDescriptor | None = None,
        netns_pid: int | None = None,
    ) -> None:
        """Change link `index`: bring it up or down, set its MTU, rename it,
        or move it to the network namespace of `netns` (an fd of this
        socket's thread) or `netns_pid`: `ip link set`."""
        message = ifinfmsg()
        message["index"] = _index(index)
        if up is not None:
            if not isinstance(up, bool):
                raise TypeError(f"up must be a bool, not {type(up).__name__}")
            message["flags"] = int(IFF.UP) if up else 0
            message["change"] = int(IFF.UP)
        attrs: list[Any] = []
        if mtu is not None:
            if not isinstance(mtu, int) or isinstance(mtu, bool):
                raise TypeError(f"mtu must be an int, not {type(mtu).__name__}")
            if not 0 <= mtu <= _U32:
                raise ValueError(f"mtu {mtu} outside 0..2**32-1")
            attrs.append(("IFLA_MTU", mtu))
        if name is not None:
            attrs.append(("IFLA_IFNAME", _name(name)))
        attrs += self._netns_attrs(netns, netns_pid)
        message["attrs"] = attrs
        await self.request(RTM.NEWLINK, message)

    async def link_up(self, index: int) -> None:
        """Bring link `index` up: `ip link set DEV up`."""
        await self.set_link(index, up=True)

    async def link_down(self, index: int) -> None:
        """Take link `index` down: `ip link set DEV down`."""
        await self.set_link(index, up=False)

    async def delete_link(self, index: int) -> None:
        """Delete link `index` (both ends, for a veth): `ip link del`."""
        message = ifinfmsg()
        message["index"] = _index(index)
        await self.request(RTM.DELLINK, message)

    # ---- addresses ----

    @staticmethod
    def _address_message(index: int, address: Interface | str, nodad: bool = False) -> Any:
        interface = ip_interface(address) if isinstance(address, str) else address
        if not isinstance(interface, IPv4Interface | IPv6Interface):
            raise TypeError(
                f"address must be an IPv4Interface or IPv6Interface (address/prefix), "
                f"not {type(address).__name__}")
        message = ifaddrmsg()
        message["family"] = int(_family(interface))
        message["prefixlen"] = interface.network.prefixlen
        message["index"] = _index(index)
        message["scope"] = int(RT_SCOPE.UNIVERSE)
        message["flags"] = _IFA_F_NODAD if nodad and interface.version == 6 else 0
        text = str(interface.ip)
        message["attrs"] = [("IFA_LOCAL", text), ("IFA_ADDRESS", text)]
        return message

    async def add_address(
        self, index: int, address: Interface | str, *, nodad: bool = True
    ) -> None:
        """Add `address` (with its prefix: ip_interface("192.0.2.1/24"),
        IPv4 or IPv6) to link `index`: `ip addr add`.  An IPv6 address is
        usable at once: `nodad` (the default) skips duplicate address
        detection.  OSError ENODEV if there is no such link,
        FileExistsError if it has the address."""
        if not isinstance(nodad, bool):
            raise TypeError(f"nodad must be a bool, not {type(nodad).__name__}")
        await self.request(RTM.NEWADDR, self._address_message(index, address, nodad),
                           NLM_F.CREATE | NLM_F.EXCL)

    async def delete_address(self, index: int, address: Interface | str) -> None:
        """Remove `address` from link `index`: `ip addr del`."""
        await self.request(RTM.DELADDR, self._address_message(index, address))

    async def addresses(self, family: AF = AF.UNSPEC) -> list[Any]:
        """Every address (of `family`: AF.INET, AF.INET6, or all), as ifaddrmsg."""
        message = ifaddrmsg()
        message["family"] = int(_check_family(family))
        return await self.dump(RTM.GETADDR, message)

    # ---- routes ----

    @staticmethod
    def _route_message(
        destination: Network | str, gateway: Address | str | None, oif: int | None,
        table: RT_TABLE | int,
    ) -> Any:
        network = ip_network(destination) if isinstance(destination, str) else destination
        if not isinstance(network, IPv4Network | IPv6Network):
            raise TypeError(
                f"destination must be an IPv4Network or IPv6Network, "
                f"not {type(destination).__name__}")
        if not isinstance(table, int) or isinstance(table, bool) or not 1 <= table <= _U32:
            raise ValueError(f"table must be a routing table id (1..2**32-1), not {table!r}")
        message = rtmsg()
        message["family"] = int(_family(network))
        message["dst_len"] = network.prefixlen
        message["table"] = table if table < 256 else int(RT_TABLE.UNSPEC)
        message["proto"] = int(RTPROT.STATIC)
        message["type"] = int(RTN.UNICAST)
        message["scope"] = int(RT_SCOPE.LINK if gateway is None else RT_SCOPE.UNIVERSE)
        attrs: list[Any] = [("RTA_TABLE", table)]
        if network.prefixlen:  # a default route has no destination
            attrs.append(("RTA_DST", str(network.network_address)))
        if gateway is not None:
            address = ip_address(gateway) if isinstance(gateway, str) else gateway
            if not isinstance(address, IPv4Address | IPv6Address):
                raise TypeError(f"gateway must be an IP address, not {type(gateway).__name__}")
            if address.version != network.version:
                raise ValueError(f"gateway {address} is not of {network}'s IP version")
            attrs.append(("RTA_GATEWAY", str(address)))
        if oif is not None:
            attrs.append(("RTA_OIF", _index(oif)))
        if gateway is None and oif is None:
            raise ValueError("a route needs a gateway, an output interface (oif), or both")
        message["attrs"] = attrs
        return message

    async def add_route(
        self, destination: Network | str, *, gateway: Address | str | None = None,
        oif: int | None = None, table: RT_TABLE | int = RT_TABLE.MAIN,
    ) -> None:
        """Add a route to `destination` (ip_network("198.51.100.0/24"),
        "0.0.0.0/0" or "::/0" for the default route) via
        `gateway`, or out of link `oif`, or both, to `table`: `ip route
        add`.  Its protocol is RTPROT.STATIC, its scope LINK without a
        gateway (the destination is on the link), else UNIVERSE.
        FileExistsError if the table has that route."""
        await self.request(RTM.NEWROUTE, self._route_message(destination, gateway, oif, table),
                           NLM_F.CREATE | NLM_F.EXCL)

    async def delete_route(
        self, destination: Network | str, *, gateway: Address | str | None = None,
        oif: int | None = None, table: RT_TABLE | int = RT_TABLE.MAIN,
    ) -> None:
        """Remove the route that `add_route` with these arguments added:
        `ip route del`."""
        await self.request(RTM.DELROUTE, self._route_message(destination, gateway, oif, table))

    async def routes(self, family: AF = AF.UNSPEC) -> list[Any]:
        """Every route of every table (of `family`: AF.INET, AF.INET6, or
        all): RTM_GETROUTE dump, as rtmsg.  A route's table is its
        RTA_TABLE attribute; its destination RTA_DST (none for a default
        route) with prefix length `dst_len`."""
        message = rtmsg()
        message["family"] = int(_check_family(family))
        return await self.dump(RTM.GETROUTE, message)


def _check_family(family: object) -> AF:
    if not isinstance(family, AF):
        raise TypeError(f"family must be an AF, not {_type_name(family)}")
    if family not in (AF.UNSPEC, AF.INET, AF.INET6):
        raise ValueError(f"family must be AF.UNSPEC, AF.INET or AF.INET6, not {family!r}")
    return family


def _type_name(value: object) -> str:
    return type(value).__name__
