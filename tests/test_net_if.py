"""<net/if.h>: interface flags, struct ifreq and the netdevice(7) ioctls.

Nothing here changes the host's interfaces: the thread of the test only
reads them, and every set request runs in a child of it with its own
network namespace (or, to see EPERM, in a user namespace that does not own
the host's)."""

from __future__ import annotations

import errno
import fcntl as stdlib_fcntl
import os
import socket
import struct
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsyscall import ChildThread, FileDescriptor, Thread, UseAfterConsumeError
from rsyscall.net.if_ import (
    IFF,
    IFNAMSIZ,
    SIOC,
    Ifreq,
    bring_up,
    if_indextoname,
    if_nametoindex,
)
from rsyscall.netinet.in_ import SockaddrIn6
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sched import CLONE
from rsyscall.struct import Int32
from rsyscall.sys.socket import AF, SOCK, GenericSockaddr, Sockaddr

pytestmark = pytest.mark.anyio

LO = Path("/sys/class/net/lo")
# Flags the kernel computes for SIOCGIFFLAGS but keeps out of the device's
# own flag word, which sysfs shows.
COMPUTED = IFF.RUNNING | IFF.PROMISC | IFF.ALLMULTI


# ---- helpers ----


async def dgram(thread: Any) -> FileDescriptor:
    sock: FileDescriptor = await thread.task.socket(AF.INET, SOCK.DGRAM)
    return sock


async def flags_of(thread: Any, sock: FileDescriptor, name: str = "lo") -> IFF:
    return (await (await sock.siocgifflags(await thread.ptr(Ifreq(name)))).read()).flags


def stdlib_ifreq(request: int, name: str) -> bytes:
    """The same ioctl made by the stdlib, as an independent witness."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return stdlib_fcntl.ioctl(sock.fileno(), request, struct.pack("16s24x", name.encode()))


async def still_works(thread: Any) -> None:
    sock = await dgram(thread)
    assert await flags_of(thread, sock) & IFF.LOOPBACK
    await sock.close()


async def new_netns(thread: Thread) -> ChildThread:
    return await thread.clone(CLONE.NEWUSER | CLONE.NEWNET)


# ---- constants and the struct ----


def test_values_match_stdlib() -> None:
    assert IFNAMSIZ == 16
    assert Ifreq.sizeof() == 40
    # socket.if_nametoindex enforces the same limit.
    with pytest.raises(OSError):
        socket.if_nametoindex("x" * IFNAMSIZ)


def test_ifreq_layout() -> None:
    value = Ifreq("eth0", flags=IFF.UP | IFF.MULTICAST)
    assert value.to_bytes() == struct.pack("16sH22x", b"eth0", 0x1001)
    assert Ifreq("lo", ifindex=-2).to_bytes() == struct.pack("16si20x", b"lo", -2)
    assert Ifreq("lo", mtu=1500).to_bytes() == struct.pack("16si20x", b"lo", 1500)
    sin = SockaddrIn(0, "10.0.0.1")
    assert Ifreq("lo", addr=sin).to_bytes() == b"lo".ljust(16, b"\0") + sin.to_bytes() + bytes(8)
    assert Ifreq(ifindex=3).name == ""
    assert Ifreq("lo", newname="lo2").to_bytes() == struct.pack("16s16s8x", b"lo", b"lo2")


def test_union_members_match_header(tmp_path: Path) -> None:
    """tests/test_abi.py checks ifr_name and ifr_ifru; here, that each member
    the properties decode sits at the union's start with the size assumed."""
    members = {
        "ifr_addr": 16, "ifr_dstaddr": 16, "ifr_broadaddr": 16, "ifr_netmask": 16,
        "ifr_hwaddr": 16, "ifr_flags": 2, "ifr_ifindex": 4, "ifr_metric": 4,
        "ifr_mtu": 4, "ifr_qlen": 4, "ifr_slave": IFNAMSIZ, "ifr_newname": IFNAMSIZ,
    }
    lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <sys/ioctl.h>",
             "#include <net/if.h>", "int main(void) {", "struct ifreq r;"]
    for member in members:
        lines.append(
            f'printf("%zu %zu\\n", offsetof(struct ifreq, {member}), sizeof(r.{member}));')
    lines.append("return 0; }")
    (tmp_path / "u.c").write_text("\n".join(lines) + "\n")
    subprocess.run(["gcc", "-w", "-o", str(tmp_path / "u"), str(tmp_path / "u.c")], check=True)
    output = subprocess.run([str(tmp_path / "u")], capture_output=True, text=True, check=True)
    actual = [tuple(map(int, line.split())) for line in output.stdout.splitlines()]
    assert actual == [(IFNAMSIZ, size) for size in members.values()]


def test_union_members_alias() -> None:
    # As in C, every member reads the same bytes.
    value = Ifreq("lo", ifindex=0x49)
    assert value.flags == IFF.UP | IFF.LOOPBACK | IFF.RUNNING
    assert value.mtu == value.metric == value.qlen == value.ifindex == 0x49
    value = Ifreq("lo", addr=SockaddrIn(0, "1.2.3.4"))
    sin = SockaddrIn(0, "1.2.3.4")
    assert value.netmask == value.broadaddr == value.dstaddr == value.addr == sin
    assert int(value.flags) == AF.INET
    assert value.hwaddr == GenericSockaddr(AF.INET, bytes([0, 0, 1, 2, 3, 4]) + bytes(8))
    assert Ifreq(slave="bond0").newname == "bond0"


names = (
    st.binary(max_size=IFNAMSIZ - 1)
    .filter(lambda raw: b"\0" not in raw)
    .map(os.fsdecode)
)


@given(names, st.integers(0, 0xFFFF))
@settings(max_examples=200)
def test_ifreq_flags_roundtrip(name: str, flags: int) -> None:
    value = Ifreq(name, flags=IFF(flags))
    data = value.to_bytes()
    assert len(data) == 40
    assert data == struct.pack("16sH22x", os.fsencode(name), flags)
    back = Ifreq.from_bytes(data)
    assert back == value and hash(back) == hash(value)
    assert back.name == name and back.flags == flags
    assert Ifreq.from_bytes(back.to_bytes()) == back


@given(names, st.integers(-(2**31), 2**31 - 1))
@settings(max_examples=200)
def test_ifreq_int_roundtrip(name: str, number: int) -> None:
    for value in (Ifreq(name, ifindex=number), Ifreq(name, mtu=number)):
        back = Ifreq.from_bytes(value.to_bytes())
        assert back == value
        assert back.ifindex == back.mtu == number


@given(names, st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1))
@settings(max_examples=200)
def test_ifreq_addr_roundtrip(name: str, port: int, addr: int) -> None:
    sin = SockaddrIn(port, addr)
    back = Ifreq.from_bytes(Ifreq(name, addr=sin).to_bytes())
    assert back.addr == sin
    assert isinstance(back.netmask, SockaddrIn)


@given(names, st.integers(0, 0xFFFF), st.binary(min_size=14, max_size=14))
@settings(max_examples=200)
def test_ifreq_hwaddr_roundtrip(name: str, arphrd: int, data: bytes) -> None:
    hw = GenericSockaddr(arphrd, data)
    back = Ifreq.from_bytes(Ifreq(name, hwaddr=hw).to_bytes())
    assert back.hwaddr == hw


@given(names, names)
@settings(max_examples=200)
def test_ifreq_newname_roundtrip(name: str, newname: str) -> None:
    back = Ifreq.from_bytes(Ifreq(name, newname=newname).to_bytes())
    assert (back.name, back.newname, back.slave) == (name, newname, newname)


@given(names, st.binary(max_size=24))
@settings(max_examples=200)
def test_ifreq_raw_roundtrip(name: str, ifru: bytes) -> None:
    value = Ifreq(name, ifru=ifru)
    data = value.to_bytes()
    assert data == os.fsencode(name).ljust(16, b"\0") + ifru.ljust(24, b"\0")
    assert Ifreq.from_bytes(data) == value
    assert eval(repr(value), {"Ifreq": Ifreq}) == value


async def test_ifreq_through_memory(thread: Thread) -> None:
    value = Ifreq("lo", addr=SockaddrIn(80, "127.0.0.1"))
    ptr = await thread.ptr(value)
    assert ptr.size() == 40
    assert await ptr.read() == value


def test_bad_ifreq() -> None:
    with pytest.raises(ValueError, match="IFNAMSIZ"):
        Ifreq("x" * IFNAMSIZ)
    with pytest.raises(ValueError, match="IFNAMSIZ"):
        Ifreq("é" * 8)  # 16 bytes encoded
    Ifreq("x" * (IFNAMSIZ - 1))
    with pytest.raises(ValueError, match="null"):
        Ifreq("l\0o")
    with pytest.raises(TypeError):
        Ifreq(b"lo")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Ifreq(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="one member"):
        Ifreq("lo", flags=IFF.UP, mtu=1500)
    with pytest.raises(ValueError):
        Ifreq("lo", flags=0x10000)  # IFF_LOWER_UP does not fit in ifr_flags
    with pytest.raises(ValueError):
        Ifreq("lo", flags=-1)
    with pytest.raises(TypeError):
        Ifreq("lo", flags=True)
    with pytest.raises(ValueError):
        Ifreq("lo", ifindex=2**31)
    with pytest.raises(TypeError):
        Ifreq("lo", mtu="1500")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="struct sockaddr"):
        Ifreq("lo", addr=SockaddrIn6(0, "::1"))
    with pytest.raises(TypeError):
        Ifreq("lo", addr="127.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Ifreq("lo", newname="y" * IFNAMSIZ)
    with pytest.raises(ValueError):
        Ifreq("lo", ifru=bytes(25))
    with pytest.raises(ValueError):
        Ifreq.from_bytes(bytes(39))


# ---- reading the host's interfaces (never changing them) ----


async def test_lo_flags(thread: Thread) -> None:
    sock = await dgram(thread)
    flags = await flags_of(thread, sock)
    assert flags & (IFF.UP | IFF.LOOPBACK) == IFF.UP | IFF.LOOPBACK
    assert isinstance(flags, IFF)
    sysfs = int((LO / "flags").read_text(), 16)
    assert flags & ~COMPUTED == sysfs & 0xFFFF & ~COMPUTED
    raw = stdlib_ifreq(SIOC.GIFFLAGS, "lo")
    assert Ifreq.from_bytes(raw).flags == flags


async def test_index_and_name(thread: Thread) -> None:
    sock = await dgram(thread)
    for index, name in socket.if_nameindex():
        out = await sock.siocgifindex(await thread.ptr(Ifreq(name)))
        assert (await out.read()).ifindex == index
        out = await sock.siocgifname(await thread.ptr(Ifreq(ifindex=index)))
        assert (await out.read()).name == name
        assert await if_nametoindex(thread, name) == index
        assert await if_indextoname(thread, index) == name


async def test_get_pointer_chains(thread: Thread) -> None:
    """A get request returns a readable pointer that can be passed to the
    next request, as the name is still in it."""
    sock = await dgram(thread)
    ifr = await thread.ptr(Ifreq("lo"))
    out = await sock.siocgifindex(ifr)
    with pytest.raises(UseAfterConsumeError):
        await sock.siocgifflags(ifr)
    out = await sock.siocgifmtu(out)
    value = await out.read()
    assert value.name == "lo"
    assert value.mtu == int((LO / "mtu").read_text())


async def test_lo_hwaddr(thread: Thread) -> None:
    sock = await dgram(thread)
    hw = (await (await sock.siocgifhwaddr(await thread.ptr(Ifreq("lo")))).read()).hwaddr
    assert hw.generic_family == int((LO / "type").read_text())  # ARPHRD_LOOPBACK
    mac = bytes.fromhex((LO / "address").read_text().strip().replace(":", ""))
    assert hw.data[: len(mac)] == mac


async def test_lo_addr_and_netmask(thread: Thread) -> None:
    sock = await dgram(thread)
    addr = (await (await sock.siocgifaddr(await thread.ptr(Ifreq("lo")))).read()).addr
    assert addr == Sockaddr.from_bytes(stdlib_ifreq(SIOC.GIFADDR, "lo")[16:32])
    assert isinstance(addr, SockaddrIn) and addr.addr.is_loopback
    mask = (await (await sock.siocgifnetmask(await thread.ptr(Ifreq("lo")))).read()).netmask
    assert mask == Sockaddr.from_bytes(stdlib_ifreq(SIOC.GIFNETMASK, "lo")[16:32])


async def test_missing_interface(thread: Thread) -> None:
    sock = await dgram(thread)
    ifr = await thread.ptr(Ifreq("nosuchif0"))
    with pytest.raises(OSError) as info:
        await sock.siocgifflags(ifr)
    assert info.value.errno == errno.ENODEV
    # Nothing was written: the pointer is still ours.
    assert not ifr.consumed and await ifr.read() == Ifreq("nosuchif0")
    await still_works(thread)
    with pytest.raises(OSError) as info:
        await if_nametoindex(thread, "nosuchif0")
    assert info.value.errno == errno.ENODEV
    await still_works(thread)
    with pytest.raises(OSError) as info:
        await if_indextoname(thread, 0x7FFFFFF0)
    assert info.value.errno == errno.ENODEV
    await still_works(thread)


async def test_bad_arguments(thread: Thread) -> None:
    sock = await dgram(thread)
    with pytest.raises(ValueError):
        await bring_up(thread, "x" * IFNAMSIZ)
    await still_works(thread)
    with pytest.raises(ValueError):
        await if_nametoindex(thread, "l\0o")
    await still_works(thread)
    with pytest.raises(TypeError):
        await if_nametoindex(thread, 1)  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError, match="Ifreq"):
        await sock.siocgifflags(await thread.ptr(b"lo".ljust(40, b"\0")))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Ifreq"):
        await sock.siocsifflags(await thread.ptr(Int32(1)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="initialized"):
        await sock.siocgifflags(await thread.malloc(Ifreq))  # type: ignore[arg-type]
    with pytest.raises(OSError) as info:
        # The ioctls are for sockets.
        pipe = await thread.pipe()
        await pipe.read.siocgifflags(await thread.ptr(Ifreq("lo")))
    assert info.value.errno == errno.ENOTTY
    await still_works(thread)


async def test_set_needs_privilege_over_the_netns(thread: Thread) -> None:
    """A new user namespace gives no power over the host's network
    namespace: setting lo's flags (to what they already are) is EPERM."""
    child = await thread.clone(CLONE.NEWUSER)
    try:
        sock = await dgram(child)
        flags = await flags_of(child, sock)
        with pytest.raises(OSError) as info:
            await sock.siocsifflags(await child.ptr(Ifreq("lo", flags=flags)))
        assert info.value.errno == errno.EPERM
        await still_works(child)
    finally:
        await child.exit(0)


# ---- a new network namespace ----


async def tcp_roundtrip(thread: ChildThread) -> None:
    """Listen on 127.0.0.1, connect, send both ways: all in `thread`'s
    process, in an order where no blocking call waits on a later one."""
    task = thread.task
    listener = await task.socket(AF.INET, SOCK.STREAM)
    await listener.bind(await thread.ptr(SockaddrIn(0, "127.0.0.1")))
    await listener.listen(1)
    bound, _ = await listener.getsockname(await thread.malloc(Sockaddr))
    address = await bound.read()
    assert isinstance(address, SockaddrIn) and address.port != 0
    client = await task.socket(AF.INET, SOCK.STREAM)
    # The handshake completes in the kernel, before accept is called.
    await client.connect(await thread.ptr(address))
    server = await listener.accept()
    await client.send(await thread.ptr(b"ping"))
    valid, _ = await server.recv(await thread.malloc(bytes, 16))
    assert await valid.read() == b"ping"
    await server.send(await thread.ptr(b"pong"))
    valid, _ = await client.recv(await thread.malloc(bytes, 16))
    assert await valid.read() == b"pong"
    for fd in (client, server, listener):
        await fd.close()


async def test_bring_up_loopback(thread: Thread) -> None:
    child = await new_netns(thread)
    try:
        sock = await dgram(child)
        # Only lo exists, and it starts down.
        assert await if_indextoname(child, 1) == "lo"
        flags = await flags_of(child, sock)
        assert flags & IFF.LOOPBACK
        assert not flags & IFF.UP
        # So 127.0.0.1 is unreachable.
        client = await child.task.socket(AF.INET, SOCK.STREAM)
        with pytest.raises(OSError) as info:
            await client.connect(await child.ptr(SockaddrIn(80, "127.0.0.1")))
        assert info.value.errno == errno.ENETUNREACH
        await client.close()
        await bring_up(child)
        assert await flags_of(child, sock) & (IFF.UP | IFF.RUNNING) == IFF.UP | IFF.RUNNING
        await bring_up(child)  # already up: nothing to do
        await tcp_roundtrip(child)
        # The host's lo was not touched.
        assert int((LO / "flags").read_text(), 16) & IFF.UP
    finally:
        await child.exit(0)


async def test_set_requests_in_netns(thread: Thread) -> None:
    child = await new_netns(thread)
    try:
        sock = await dgram(child)
        flags = await flags_of(child, sock)
        # A set request only reads its ifreq: the written pointer stays valid.
        up = await child.ptr(Ifreq("lo", flags=flags | IFF.UP))
        await sock.siocsifflags(up)
        assert not up.consumed and await up.read() == up.value
        assert await flags_of(child, sock) & IFF.UP
        # The same pointer again is fine (setting what is already set).
        await sock.siocsifflags(up)

        await sock.siocsifmtu(await child.ptr(Ifreq("lo", mtu=1280)))
        out = await sock.siocgifmtu(await child.ptr(Ifreq("lo")))
        assert (await out.read()).mtu == 1280
        with pytest.raises(OSError) as info:
            await sock.siocsifmtu(await child.ptr(Ifreq("lo", mtu=-1)))
        assert info.value.errno == errno.EINVAL
        await still_works(child)

        # An alias label ("lo:1") gets an address without disturbing 127.0.0.1.
        await sock.siocsifaddr(await child.ptr(Ifreq("lo:1", addr=SockaddrIn(0, "10.1.2.3"))))
        mask = SockaddrIn(0, "255.255.255.0")
        await sock.siocsifnetmask(await child.ptr(Ifreq("lo:1", netmask=mask)))
        out = await sock.siocgifaddr(await child.ptr(Ifreq("lo:1")))
        assert (await out.read()).addr == SockaddrIn(0, "10.1.2.3")
        out = await sock.siocgifnetmask(await child.ptr(Ifreq("lo:1")))
        assert (await out.read()).netmask == mask
        out = await sock.siocgifaddr(await child.ptr(Ifreq("lo")))
        assert (await out.read()).addr == SockaddrIn(0, IPv4Address("127.0.0.1"))

        with pytest.raises(OSError) as info:
            await sock.siocsifflags(await child.ptr(Ifreq("nosuchif0", flags=IFF.UP)))
        assert info.value.errno == errno.ENODEV
        await still_works(child)
        await tcp_roundtrip(child)
    finally:
        await child.exit(0)


async def test_get_addr_of_down_netns_lo(thread: Thread) -> None:
    child = await new_netns(thread)
    try:
        sock = await dgram(child)
        ifr = await child.ptr(Ifreq("lo"))
        with pytest.raises(OSError) as info:
            await sock.siocgifaddr(ifr)
        assert info.value.errno == errno.EADDRNOTAVAIL
        assert not ifr.consumed
        out = await sock.siocgifindex(ifr)
        assert (await out.read()).ifindex == 1
    finally:
        await child.exit(0)
