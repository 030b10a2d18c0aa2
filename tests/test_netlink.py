"""Netlink (rsyscall.linux.netlink), route netlink through pyroute2's
message classes (rsyscall.linux.rtnetlink), and TUN devices
(rsyscall.linux.if_tun).

The socket itself runs on every kind of thread and only reads the host's
network namespace.  Everything that changes links, addresses or routes
runs in children with network namespaces of their own (CLONE.NEWNET; we
run as root, which moving a veth end between two namespaces needs: a
user namespace would own only its own).  The addresses are the
documentation ranges, inside those namespaces."""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import IPv4Address, IPv6Address, ip_interface, ip_network
from typing import Any

import anyio
import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from rsyscall import ChildThread, FileDescriptor, Thread, local_thread
from rsyscall.fcntl import O
from rsyscall.linux.if_tun import IFF, TUN
from rsyscall.linux.netlink import (
    NETLINK,
    NETLINK_OPT,
    NLM_F,
    NLMSG,
    NLMSG_HDRLEN,
    NetlinkSocket,
    Nlmsgerr,
    Nlmsghdr,
    SockaddrNl,
    split_messages,
)
from rsyscall.linux.rtnetlink import RT_TABLE, RTM, Rtnetlink
from rsyscall.net.if_ import Ifreq
from rsyscall.netinet.in_ import IPPROTO, SockaddrIn6
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sched import CLONE
from rsyscall.struct import Int32
from rsyscall.sys.socket import AF, MSG, SOCK, SOL, Sockaddr

pytestmark = pytest.mark.anyio


# ---- the structs, without a kernel ----


def test_sockaddr_nl_bytes() -> None:
    value = SockaddrNl(1234, 0x5)
    assert SockaddrNl.sizeof() == 12
    assert value.to_bytes() == struct.pack("=HHII", socket.AF_NETLINK, 0, 1234, 5)
    back = Sockaddr.from_bytes(value.to_bytes())
    assert isinstance(back, SockaddrNl) and back == value and hash(back) == hash(value)
    assert SockaddrNl() == SockaddrNl(0, 0) != SockaddrNl(1)
    assert "1234" in repr(value)
    with pytest.raises(ValueError):
        SockaddrNl(-1)
    with pytest.raises(ValueError):
        SockaddrNl(0, 1 << 32)
    with pytest.raises(TypeError):
        SockaddrNl("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SockaddrNl.from_bytes(value.to_bytes()[:8])


def test_messages_split() -> None:
    first = Nlmsghdr(NLMSG_HDRLEN + 3, 16, NLM_F.MULTI, 7, 9).to_bytes() + b"abc"
    second = Nlmsghdr(NLMSG_HDRLEN, NLMSG.DONE, NLM_F.MULTI, 7, 9).to_bytes()
    messages = split_messages(first + b"\0" + second)  # padded to 4 bytes
    assert [m.header.type for m in messages] == [16, NLMSG.DONE]
    assert messages[0].payload == b"abc" and messages[0].data == first
    assert messages[0].header == Nlmsghdr.from_bytes(first)
    assert isinstance(messages[0].header.flags, NLM_F)
    with pytest.raises(ValueError):
        split_messages(first[:-1])  # the header claims more than there is
    with pytest.raises(ValueError):
        split_messages(first + b"\0" + second[:10])
    error = Nlmsgerr(-errno.EEXIST, Nlmsghdr(NLMSG_HDRLEN, 16))
    assert Nlmsgerr.from_bytes(error.to_bytes()) == error and Nlmsgerr.sizeof() == 20
    with pytest.raises(ValueError):
        Nlmsghdr(1 << 32, 0)
    with pytest.raises(TypeError):
        Nlmsgerr(0, b"")  # type: ignore[arg-type]


def test_tun_constants() -> None:
    assert IFF.TUN == 1 and IFF.TAP == 2 and IFF.NO_PI == 0x1000
    assert TUN.SETIFF == 0x400454CA


# ---- the socket, on every kind of thread (reading the host's netns only) ----


async def test_socket_with_sockaddr_nl(thread: Thread) -> None:
    sock = await thread.task.socket(AF.NETLINK, SOCK.RAW, NETLINK.ROUTE)
    try:
        await sock.bind(await thread.ptr(SockaddrNl()))
        bound, _ = await sock.getsockname(await thread.malloc(Sockaddr))
        address = await bound.read()
        assert isinstance(address, SockaddrNl) and address.pid != 0 and address.groups == 0
        # A GETLINK dump, made by hand: a header and an empty ifinfomsg.
        request = Nlmsghdr(NLMSG_HDRLEN + 16, RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, 1)
        await sock.sendto(await thread.ptr(request.to_bytes() + bytes(16)),
                          await thread.ptr(SockaddrNl(0)))
        # The kernel answers within sendto: the first part is queued already.
        data, _, sender, _ = await sock.recvfrom(
            await thread.malloc(bytes, 65536), await thread.malloc(Sockaddr), MSG.DONTWAIT)
        assert await sender.read() == SockaddrNl(0, 0)
        names = []
        for message in split_messages(await data.read()):
            assert message.header.seq == 1 and message.header.pid == address.pid
            if message.header.type == RTM.NEWLINK:
                link = ifinfmsg(message.data)
                link.decode()
                names.append(link.get_attr("IFLA_IFNAME"))
        assert "lo" in names
        # The SOL_NETLINK options: join RTNLGRP_LINK (group 1), see it listed.
        await sock.setsockopt(SOL.NETLINK, NETLINK_OPT.ADD_MEMBERSHIP, await thread.ptr(Int32(1)))
        groups, _ = await sock.getsockopt(
            SOL.NETLINK, NETLINK_OPT.LIST_MEMBERSHIPS, await thread.malloc(Int32))
        assert await groups.read() == 1
        with pytest.raises(ValueError):
            await sock.setsockopt(SOL.NETLINK, 6, await thread.ptr(Int32(1)))  # NETLINK_RX_RING
    finally:
        await sock.close()


async def test_rtnetlink_reads_the_host(thread: Thread) -> None:
    async with await Rtnetlink.open(thread) as rt:
        names = {link.get_attr("IFLA_IFNAME"): link["index"] for link in await rt.links()}
        assert names == {name: index for index, name in socket.if_nameindex()}
        assert await rt.link_index("lo") == socket.if_nametoindex("lo")
        with pytest.raises(OSError) as info:
            await rt.link_index("no-such-link")
        assert info.value.errno == errno.ENODEV and "RTM_GETLINK" in str(info.value)
        local = [address for address in await rt.addresses(AF.INET)
                 if address.get_attr("IFA_ADDRESS") == "127.0.0.1"]
        assert local and local[0]["prefixlen"] == 8
        assert all(address["family"] == AF.INET for address in await rt.addresses(AF.INET))
        tables = {route.get_attr("RTA_TABLE") for route in await rt.routes()}
        assert RT_TABLE.LOCAL in tables
        # Bad arguments raise before anything is sent; the socket goes on.
        with pytest.raises(TypeError):
            await rt.request(18, ifinfmsg())  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await rt.request(RTM.GETLINK, b"")
        with pytest.raises(ValueError):
            await rt.link_index("x" * 16)
        with pytest.raises(TypeError):
            await rt.add_address(1, 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await rt.addresses(2)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await rt.add_route("198.51.100.0/24")  # neither gateway nor oif
        assert await rt.link_index("lo") == socket.if_nametoindex("lo")


async def test_requests_are_ordered_and_dumps_finish(thread: Thread) -> None:
    async with await NetlinkSocket.open(thread, NETLINK.ROUTE) as nl:
        assert nl.port_id != 0 and nl.fd.task is thread.task
        results: list[int] = []

        async def dump() -> None:
            replies = await nl.request(RTM.GETLINK, bytes(16), NLM_F.DUMP)
            results.append(len(replies))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(dump)
        assert results == [len(socket.if_nameindex())] * 3
        # A dump cancelled after it was sent, its replies unread: the kernel
        # refuses a second dump on the socket (EBUSY) until the first is read
        # to its end, which the next request does first, dropping them.
        with anyio.CancelScope() as scope:
            async def cancelled_recv() -> bytes:
                scope.cancel()
                await anyio.sleep(10)
                raise AssertionError("not cancelled")

            nl._recv = cancelled_recv  # type: ignore[method-assign]
            await nl.request(RTM.GETLINK, bytes(16), NLM_F.DUMP)
        del nl._recv
        assert scope.cancelled_caught
        replies = await nl.request(RTM.GETLINK, bytes(16), NLM_F.DUMP)
        assert len(replies) == len(socket.if_nameindex())
        assert all(reply.header.type == RTM.NEWLINK for reply in replies)
        with pytest.raises(ValueError):
            await nl.request(1 << 16)


# ---- changing things, in network namespaces of our own ----


async def netns_child() -> ChildThread:
    # Root in the initial user namespace: moving a veth end into another
    # namespace needs CAP_NET_ADMIN over both.
    return await local_thread.clone(CLONE.NEWNET)


async def netns_fd(of: ChildThread, opener: Thread) -> FileDescriptor:
    fd: FileDescriptor = await opener.task.open(
        await opener.ptr(f"/proc/{of.process.pid}/ns/net"), O.RDONLY)
    return fd


async def veth_pair() -> tuple[ChildThread, ChildThread]:
    """Two namespaces joined by a veth: 192.0.2.1/24 and 2001:db8::1/64 in
    the first (veth-a), .2 and ::2 in the second (veth-b), links up."""
    a, b = await netns_child(), await netns_child()
    async with await Rtnetlink.open(a) as rt:
        await rt.add_veth("veth-a", "veth-b", peer_netns=await netns_fd(b, a))
        index = await rt.link_index("veth-a")
        await rt.add_address(index, ip_interface("192.0.2.1/24"))
        await rt.add_address(index, ip_interface("2001:db8::1/64"))
        await rt.link_up(index)
        assert "veth-b" not in {link.get_attr("IFLA_IFNAME") for link in await rt.links()}
    async with await Rtnetlink.open(b) as rt:
        index = await rt.link_index("veth-b")
        await rt.add_address(index, "192.0.2.2/24")
        await rt.add_address(index, "2001:db8::2/64")
        await rt.link_up(index)
        await rt.link_up(await rt.link_index("lo"))
        assert {(address.get_attr("IFA_ADDRESS"), address["prefixlen"])
                for address in await rt.addresses() if address["index"] == index} >= {
            ("192.0.2.2", 24), ("2001:db8::2", 64)}
    return a, b


async def tcp_across(a: ChildThread, b: ChildThread, family: AF, address: str) -> None:
    """Listen in `b` on `address`, connect from `a`, send bytes both ways."""
    def sockaddr(port: int) -> Sockaddr:
        return SockaddrIn(port, address) if family == AF.INET else SockaddrIn6(port, address)

    listener = await b.task.socket(family, SOCK.STREAM)
    await listener.bind(await b.ptr(sockaddr(0)))
    await listener.listen(1)
    bound, _ = await listener.getsockname(await b.malloc(Sockaddr))
    port = (await bound.read()).port  # type: ignore[attr-defined]
    client = await a.task.socket(family, SOCK.STREAM)
    with anyio.fail_after(30):
        await client.connect(await a.ptr(sockaddr(port)))
        connection = await listener.accept()
        await client.write(await a.ptr(b"across the veth"))
        got, _ = await connection.read(await b.malloc(bytes, 64))
        assert await got.read() == b"across the veth"
        await connection.write(await b.ptr(b"and back"))
        got, _ = await client.read(await a.malloc(bytes, 64))
        assert await got.read() == b"and back"
    peer, _ = await connection.getpeername(await b.malloc(Sockaddr))
    peer_address = (await peer.read()).addr  # type: ignore[attr-defined]
    assert peer_address == (IPv4Address("192.0.2.1") if family == AF.INET
                            else IPv6Address("2001:db8::1"))
    for fd in (client, connection, listener):
        await fd.close()


async def test_veth_between_namespaces_carries_tcp() -> None:
    a, b = await veth_pair()
    try:
        await tcp_across(a, b, AF.INET, "192.0.2.2")
        await tcp_across(a, b, AF.INET6, "2001:db8::2")
        # The host's namespace saw none of it.
        assert "veth-a" not in {name for _, name in socket.if_nameindex()}
    finally:
        await a.exit(0)
        await b.exit(0)


async def test_route_added_shows_in_the_dump() -> None:
    a, b = await veth_pair()
    try:
        async with await Rtnetlink.open(a) as rt:
            await rt.add_route(ip_network("198.51.100.0/24"), gateway="192.0.2.2")
            await rt.add_route("2001:db8:1::/64", gateway="2001:db8::2")
            index = await rt.link_index("veth-a")
            await rt.add_route("203.0.113.0/24", oif=index)
            await rt.add_route("0.0.0.0/0", gateway="192.0.2.2")

            def found(routes: list[Any]) -> set[tuple[str, int, str | None, int | None]]:
                return {(route.get_attr("RTA_DST"), route["dst_len"],
                         route.get_attr("RTA_GATEWAY"), route.get_attr("RTA_OIF"))
                        for route in routes if route.get_attr("RTA_TABLE") == RT_TABLE.MAIN}

            routes = found(await rt.routes())
            assert ("198.51.100.0", 24, "192.0.2.2", index) in routes
            assert ("2001:db8:1::", 64, "2001:db8::2", index) in routes
            assert ("203.0.113.0", 24, None, index) in routes
            assert (None, 0, "192.0.2.2", index) in routes
            assert all(route["family"] == AF.INET6 for route in await rt.routes(AF.INET6))
            with pytest.raises(FileExistsError):
                await rt.add_route("198.51.100.0/24", gateway="192.0.2.2")
            await rt.delete_route("198.51.100.0/24", gateway="192.0.2.2")
            assert ("198.51.100.0", 24, "192.0.2.2", index) not in found(await rt.routes())
        # The route is used: a connection to an address behind it goes to b,
        # which has that address on its loopback (and answers through the
        # prefix route of its veth address).
        async with await Rtnetlink.open(b) as rt:
            await rt.add_address(await rt.link_index("lo"), "198.51.100.7/32")
        async with await Rtnetlink.open(a) as rt:
            await rt.add_route("198.51.100.0/24", gateway="192.0.2.2")
        await tcp_across_to(a, b, "198.51.100.7")
    finally:
        await a.exit(0)
        await b.exit(0)


async def tcp_across_to(a: ChildThread, b: ChildThread, address: str) -> None:
    listener = await b.task.socket(AF.INET, SOCK.STREAM)
    await listener.bind(await b.ptr(SockaddrIn(0, address)))
    await listener.listen(1)
    bound, _ = await listener.getsockname(await b.malloc(Sockaddr))
    client = await a.task.socket(AF.INET, SOCK.STREAM)
    with anyio.fail_after(30):
        await client.connect(await a.ptr(await bound.read()))
        connection = await listener.accept()
    for fd in (client, connection, listener):
        await fd.close()


async def test_kernel_errors_raise_oserror() -> None:
    child = await netns_child()
    other = await netns_child()
    try:
        async with await Rtnetlink.open(child) as rt:
            with pytest.raises(OSError) as info:
                await rt.add_address(4242, ip_interface("192.0.2.1/24"))
            assert info.value.errno == errno.ENODEV and "RTM_NEWADDR" in str(info.value)
            await rt.add_veth("dup0", "dup1")
            with pytest.raises(FileExistsError) as exists:
                await rt.add_veth("dup0", "dup2")
            assert exists.value.errno == errno.EEXIST and "RTM_NEWLINK" in str(exists.value)
            index = await rt.link_index("dup0")
            await rt.add_address(index, "192.0.2.1/24")
            with pytest.raises(FileExistsError):
                await rt.add_address(index, "192.0.2.1/24")
            # REPLACE | EXCL has the bits of DUMP: still a NEW request, acknowledged.
            message = ifaddrmsg()
            message["family"], message["prefixlen"], message["index"] = AF.INET, 24, index
            message["attrs"] = [("IFA_LOCAL", "192.0.2.9"), ("IFA_ADDRESS", "192.0.2.9")]
            with anyio.fail_after(10):
                assert await rt.request(
                    RTM.NEWADDR, message, NLM_F.CREATE | NLM_F.REPLACE | NLM_F.EXCL) == []
            assert "192.0.2.9" in {a.get_attr("IFA_ADDRESS") for a in await rt.addresses()}
            with pytest.raises(OSError) as info:
                await rt.delete_link(4242)
            assert info.value.errno == errno.ENODEV
            # An fd of another table is refused before the kernel sees a number.
            with pytest.raises(ValueError, match="fd table"):
                await rt.add_veth("x0", "x1", peer_netns=await netns_fd(other, other))
            # The peer by pid instead of fd; then deleting one end deletes both.
            await rt.add_veth("bypid0", "bypid1", peer_pid=other.process.pid)
            await rt.delete_link(index)
            names = {link.get_attr("IFLA_IFNAME") for link in await rt.links()}
            assert names == {"lo", "bypid0"}
        async with await Rtnetlink.open(other) as rt:
            assert await rt.link_index("bypid1") > 0
    finally:
        await child.exit(0)
        await other.exit(0)


async def test_tun_device_gets_the_packets() -> None:
    child = await netns_child()
    try:
        tun = await child.task.open(await child.ptr("/dev/net/tun"), O.RDWR | O.NONBLOCK)
        ifr = await (await tun.tunsetiff(
            await child.ptr(Ifreq("tun-test", flags=IFF.TUN | IFF.NO_PI)))).read()
        assert ifr.name == "tun-test"
        got = await (await tun.tungetiff(await child.malloc(Ifreq))).read()
        assert got.name == "tun-test" and IFF(got.flags) & (IFF.TUN | IFF.NO_PI) == (
            IFF.TUN | IFF.NO_PI)
        _, features = await tun.ioctl(TUN.GETFEATURES, await child.malloc(Int32))
        assert IFF(await features.read()) & (IFF.TUN | IFF.TAP | IFF.NO_PI) == (
            IFF.TUN | IFF.TAP | IFF.NO_PI)
        with pytest.raises(ValueError, match="unsafe_ioctl"):
            await tun.ioctl(TUN.ATTACHFILTER, await child.malloc(bytes, 16))
        with pytest.raises(FileExistsError):  # the fd has its device
            await tun.tunsetiff(await child.ptr(Ifreq("tun-other", flags=IFF.TUN)))
        async with await Rtnetlink.open(child) as rt:
            index = await rt.link_index("tun-test")
            await rt.add_address(index, "192.0.2.1/24")
            await rt.link_up(index)
        sock = await child.task.socket(AF.INET, SOCK.DGRAM)
        await sock.bind(await child.ptr(SockaddrIn(0, "192.0.2.1")))
        bound, _ = await sock.getsockname(await child.malloc(Sockaddr))
        source_port = (await bound.read()).port  # type: ignore[attr-defined]
        await sock.sendto(await child.ptr(b"into the tun"),
                          await child.ptr(SockaddrIn(9999, "192.0.2.99")))
        afd = await child.make_afd(tun)
        packet = b""
        with anyio.fail_after(30):
            for _ in range(20):  # skip anything else the kernel sends (IPv6 chatter)
                data, _ = await afd.read(await child.malloc(bytes, 2048))
                packet = await data.read()
                if packet[0] >> 4 == 4 and packet[9] == IPPROTO.UDP:
                    break
        header_length = (packet[0] & 0xF) * 4
        assert packet[0] >> 4 == 4 and header_length == 20
        total, = struct.unpack_from("!H", packet, 2)
        assert total == len(packet) == 20 + 8 + len(b"into the tun")
        assert IPv4Address(packet[12:16]) == IPv4Address("192.0.2.1")
        assert IPv4Address(packet[16:20]) == IPv4Address("192.0.2.99")
        sport, dport, length = struct.unpack_from("!HHH", packet, 20)
        assert (sport, dport, length) == (source_port, 9999, 8 + len(b"into the tun"))
        assert packet[28:] == b"into the tun"
        netns = await tun.tungetdevnetns()
        await netns.close()
        await sock.close()
        await afd.close()
    finally:
        await child.exit(0)


async def test_notifications_of_a_multicast_group() -> None:
    child = await netns_child()
    try:
        # RTMGRP_LINK (1): a message for every link that appears or changes.
        async with await NetlinkSocket.open(child, NETLINK.ROUTE, groups=1) as monitor:
            assert monitor.address.groups == 1
            async with await Rtnetlink.open(child) as rt:
                await rt.add_veth("seen0", "seen1")
            names = set()
            with anyio.fail_after(30):
                while not {"seen0", "seen1"} <= names:
                    for message in await monitor.receive():
                        assert message.header.seq == 0 and message.header.pid == 0
                        if message.header.type == RTM.NEWLINK:
                            link = ifinfmsg(message.data)
                            link.decode()
                            names.add(link.get_attr("IFLA_IFNAME"))
    finally:
        await child.exit(0)


async def test_tap_device_named_by_the_kernel_and_persistent() -> None:
    child = await netns_child()
    try:
        tap = await child.task.open(await child.ptr("/dev/net/tun"), O.RDWR)
        ifr = await (await tap.tunsetiff(
            await child.ptr(Ifreq("rstap%d", flags=IFF.TAP | IFF.NO_PI)))).read()
        assert ifr.name == "rstap0"
        await tap.tunsetpersist(True)
        await tap.close()
        async with await Rtnetlink.open(child) as rt:
            link = await rt.get_link("rstap0")  # outlived its fd
            assert len(link.get_attr("IFLA_ADDRESS").split(":")) == 6  # an Ethernet device
            await rt.delete_link(link["index"])
            with pytest.raises(OSError) as info:
                await rt.link_index("rstap0")
            assert info.value.errno == errno.ENODEV
        with pytest.raises(TypeError):
            await tap.tunsetpersist(1)  # type: ignore[arg-type]
    finally:
        await child.exit(0)
