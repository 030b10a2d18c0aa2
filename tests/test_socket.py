"""<sys/socket.h>, <sys/un.h>, <netinet/*.h>: sockets, addresses and
messages, checked against the stdlib socket module."""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsyscall import (
    FileDescriptor,
    LinearPointer,
    Pointer,
    ReadablePointer,
    Thread,
    UseAfterConsumeError,
    WrittenPointer,
)
from rsyscall.fcntl import F, O
from rsyscall.netinet.in_ import INADDR, IPPROTO, IPV6, SockaddrIn6
from rsyscall.netinet.ip import IP, SockaddrIn
from rsyscall.netinet.tcp import TCP
from rsyscall.struct import Int32
from rsyscall.sys.socket import (
    AF,
    MSG,
    SCM,
    SHUT,
    SO,
    SOCK,
    SOL,
    Cmsg,
    CmsgList,
    CmsgSCMRights,
    GenericSockaddr,
    RecvMsghdr,
    RecvMsghdrOut,
    SendMsghdr,
    Sockaddr,
    Socketpair,
)
from rsyscall.sys.uio import IovecList
from rsyscall.sys.un import SockaddrUn

from .util import blocking, cloexec, fd_stat, proc, take_fd, thread_fds, thread_pid

pytestmark = pytest.mark.anyio

LOOPBACK = "127.0.0.1"


# ---- helpers ----


def stdlib_socket(thread: Thread, fd: FileDescriptor) -> socket.socket:
    """A stdlib socket object for a copy of `fd`, to look at it from outside."""
    return socket.socket(fileno=take_fd(thread, fd))


async def still_works(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    await pair.first.send(await thread.ptr(b"ok"))
    valid, _ = await pair.second.recv(await thread.malloc(bytes, 8))
    assert await valid.read() == b"ok"


async def address_of(thread: Thread, fd: FileDescriptor) -> Sockaddr:
    valid, _ = await fd.getsockname(await thread.malloc(Sockaddr))
    return await valid.read()


async def tcp_listener(thread: Thread, port: int = 0) -> tuple[FileDescriptor, SockaddrIn]:
    sock = await thread.task.socket(AF.INET, SOCK.STREAM)
    await sock.setsockopt(SOL.SOCKET, SO.REUSEADDR, await thread.ptr(Int32(1)))
    await sock.bind(await thread.ptr(SockaddrIn(port, LOOPBACK)))
    await sock.listen(10)
    addr = await address_of(thread, sock)
    assert isinstance(addr, SockaddrIn)
    return sock, addr


async def udp_socket(thread: Thread) -> tuple[FileDescriptor, SockaddrIn]:
    sock = await thread.task.socket(AF.INET, SOCK.DGRAM)
    await sock.bind(await thread.ptr(SockaddrIn(0, LOOPBACK)))
    addr = await address_of(thread, sock)
    assert isinstance(addr, SockaddrIn)
    return sock, addr


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# ---- constants ----


def test_constants_match_stdlib() -> None:
    for name in ("UNIX", "INET", "INET6", "NETLINK", "PACKET", "UNSPEC"):
        assert AF[name] == getattr(socket, "AF_" + name), name
    assert AF.LOCAL == socket.AF_UNIX  # type: ignore[attr-defined]
    for name in ("STREAM", "DGRAM", "RAW", "RDM", "SEQPACKET", "NONBLOCK", "CLOEXEC"):
        assert SOCK[name] == getattr(socket, "SOCK_" + name), name
    for name in ("OOB", "PEEK", "DONTROUTE", "CTRUNC", "TRUNC", "DONTWAIT", "EOR", "WAITALL",
                 "CONFIRM", "ERRQUEUE", "NOSIGNAL", "MORE", "CMSG_CLOEXEC"):
        assert MSG[name] == getattr(socket, "MSG_" + name), name
    assert (SHUT.RD, SHUT.WR, SHUT.RDWR) == (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR)
    assert SOL.SOCKET == socket.SOL_SOCKET
    for name in ("REUSEADDR", "TYPE", "ERROR", "BROADCAST", "SNDBUF", "RCVBUF", "KEEPALIVE",
                 "OOBINLINE", "LINGER", "REUSEPORT", "PASSCRED", "PEERCRED", "RCVLOWAT",
                 "SNDLOWAT", "ACCEPTCONN", "PROTOCOL", "DOMAIN", "PRIORITY", "MARK",
                 "BINDTODEVICE"):
        assert SO[name] == getattr(socket, "SO_" + name), name
    assert SCM.RIGHTS == socket.SCM_RIGHTS and SCM.CREDENTIALS == socket.SCM_CREDENTIALS
    for name in ("IP", "TCP", "UDP", "IPV6", "ICMP", "ICMPV6", "RAW", "SCTP"):
        assert IPPROTO[name] == getattr(socket, "IPPROTO_" + name), name
    assert TCP.NODELAY == socket.TCP_NODELAY and TCP.KEEPIDLE == socket.TCP_KEEPIDLE
    assert TCP.CORK == socket.TCP_CORK and TCP.USER_TIMEOUT == socket.TCP_USER_TIMEOUT
    assert IPV6.V6ONLY == socket.IPV6_V6ONLY
    assert IP.TOS == socket.IP_TOS and IP.TTL == socket.IP_TTL
    assert IP.MULTICAST_TTL == socket.IP_MULTICAST_TTL
    assert INADDR.LOOPBACK == socket.INADDR_LOOPBACK and INADDR.ANY == socket.INADDR_ANY


# ---- socket, socketpair ----


async def test_socket_types_and_cloexec(thread: Thread) -> None:
    task = thread.task
    for domain, type_, sdomain, stype in (
        (AF.INET, SOCK.STREAM, socket.AF_INET, socket.SOCK_STREAM),
        (AF.INET, SOCK.DGRAM, socket.AF_INET, socket.SOCK_DGRAM),
        (AF.UNIX, SOCK.SEQPACKET, socket.AF_UNIX, socket.SOCK_SEQPACKET),
    ):
        sock = await task.socket(domain, type_)
        assert isinstance(sock, FileDescriptor)
        assert stat.S_ISSOCK(fd_stat(thread, sock).st_mode)
        assert cloexec(thread, sock)
        with stdlib_socket(thread, sock) as view:
            assert view.family == sdomain and view.type == stype
        valid, _ = await sock.getsockopt(SOL.SOCKET, SO.TYPE, await thread.malloc(Int32))
        assert int(await valid.read()) == stype
        valid, _ = await sock.getsockopt(SOL.SOCKET, SO.DOMAIN, await thread.malloc(Int32))
        assert int(await valid.read()) == sdomain
    nonblocking = await task.socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK, IPPROTO.TCP)
    assert not blocking(thread, nonblocking)
    with pytest.raises(OSError) as info:
        await task.socket(AF.UNIX, SOCK.STREAM, IPPROTO.UDP)
    assert info.value.errno == errno.EPROTONOSUPPORT
    await still_works(thread)


async def test_task_socketpair(thread: Thread) -> None:
    sv = await thread.task.socketpair(AF.UNIX, SOCK.STREAM, 0, await thread.malloc(Socketpair))
    assert isinstance(sv, ReadablePointer)
    pair = await sv.read()
    assert isinstance(pair, Socketpair)
    first, second = pair
    assert pair[0] is first is pair.first and pair[1] is second is pair.second
    for fd in pair:
        assert cloexec(thread, fd)
    with stdlib_socket(thread, first) as a, stdlib_socket(thread, second) as b:
        a.sendall(b"stdlib to rsyscall")
        valid, _ = await second.recv(await thread.malloc(bytes, 64))
        assert await valid.read() == b"stdlib to rsyscall"
        await second.send(await thread.ptr(b"back"))
        assert b.recv(0) == b"" and a.recv(64) == b"back"
    with pytest.raises(ValueError):
        await thread.task.socketpair(AF.UNIX, SOCK.STREAM, 0, await thread.malloc(bytes, 4))  # type: ignore[arg-type]
    with pytest.raises(OSError) as info:
        await thread.task.socketpair(AF.INET, SOCK.STREAM, 0, await thread.malloc(Socketpair))
    assert info.value.errno == errno.EOPNOTSUPP
    await still_works(thread)


# ---- TCP: bind, listen, connect, accept, accept4, names, options ----


async def test_tcp_connection(thread: Thread) -> None:
    task = thread.task
    listener, server_addr = await tcp_listener(thread)
    assert server_addr.addr == IPv4Address(LOOPBACK) and server_addr.port != 0
    with stdlib_socket(thread, listener) as view:
        assert view.getsockname() == (LOOPBACK, server_addr.port)
    valid, _ = await listener.getsockopt(SOL.SOCKET, SO.ACCEPTCONN, await thread.malloc(Int32))
    assert await valid.read() == 1

    client = await task.socket(AF.INET, SOCK.STREAM)
    await client.connect(await thread.ptr(server_addr))
    client_addr = await address_of(thread, client)
    assert isinstance(client_addr, SockaddrIn) and client_addr.addr == IPv4Address(LOOPBACK)

    conn, peer, peer_rest = await listener.accept4(await thread.malloc(Sockaddr))
    assert isinstance(conn, FileDescriptor) and cloexec(thread, conn)
    assert blocking(thread, conn)
    assert isinstance(peer, ReadablePointer) and type(peer_rest) is Pointer
    assert peer.size() == 16 and peer.size() + peer_rest.size() == Sockaddr.sizeof()
    assert await peer.read() == client_addr

    name, _ = await client.getpeername(await thread.malloc(Sockaddr))
    assert await name.read() == server_addr
    name_in, _ = await conn.getpeername(await thread.malloc(SockaddrIn))
    assert await name_in.read() == client_addr
    with stdlib_socket(thread, client) as view:
        assert view.getpeername() == (LOOPBACK, server_addr.port)
        assert view.getsockname() == (LOOPBACK, client_addr.port)

    sent, unsent = await client.send(await thread.ptr(b"hello server"))
    assert sent.value == b"hello server" and unsent.size() == 0
    data, rest = await conn.recv(await thread.malloc(bytes, 64), MSG.NONE)
    assert await data.read() == b"hello server"
    await conn.send(await thread.ptr(b"hello client"))
    data, _ = await client.recv(data + rest)
    assert await data.read() == b"hello client"

    # shutdown(SHUT.WR): the peer reads end of file, but can still send.
    await client.shutdown(SHUT.WR)
    eof, rest = await conn.recv(await thread.malloc(bytes, 8))
    assert eof.size() == 0 and rest.size() == 8
    await conn.send(await thread.ptr(b"still open"))
    data, _ = await client.recv(await thread.malloc(bytes, 64))
    assert await data.read() == b"still open"
    with pytest.raises(BrokenPipeError):
        await client.send(await thread.ptr(b"x"), MSG.NOSIGNAL)
    await conn.shutdown(SHUT.RDWR)
    data, _ = await client.recv(await thread.malloc(bytes, 8))
    assert data.size() == 0


async def test_accept_and_accept4_flags(thread: Thread) -> None:
    listener, server_addr = await tcp_listener(thread)
    with socket.create_connection((LOOPBACK, server_addr.port)) as outside:
        conn = await listener.accept()
        assert isinstance(conn, FileDescriptor)
        assert cloexec(thread, conn) and blocking(thread, conn)
        valid, _ = await conn.getpeername(await thread.malloc(Sockaddr))
        assert await valid.read() == SockaddrIn(outside.getsockname()[1], LOOPBACK)
        outside.sendall(b"from outside")
        got, _ = await conn.recv(await thread.malloc(bytes, 64))
        assert await got.read() == b"from outside"
    with socket.create_connection((LOOPBACK, server_addr.port)) as outside:
        conn = await listener.accept(SOCK.NONBLOCK)
        assert not blocking(thread, conn) and cloexec(thread, conn)
        with pytest.raises(BlockingIOError):
            await conn.recv(await thread.malloc(bytes, 8))
    with socket.create_connection((LOOPBACK, server_addr.port)) as outside:
        conn, peer, _ = await listener.accept4(await thread.malloc(SockaddrIn), SOCK.NONBLOCK)
        assert not blocking(thread, conn)
        assert await peer.read() == SockaddrIn(outside.getsockname()[1], LOOPBACK)
    # Nothing waiting: a nonblocking listener says so.
    await listener.fcntl(F.SETFL, O.NONBLOCK)
    addr = await thread.malloc(Sockaddr)
    with pytest.raises(BlockingIOError):
        await listener.accept4(addr)
    assert not addr.consumed
    with pytest.raises(BlockingIOError):
        await listener.accept()


async def test_setsockopt_getsockopt(thread: Thread) -> None:
    sock = await thread.task.socket(AF.INET, SOCK.STREAM)
    valid, rest = await sock.getsockopt(SOL.SOCKET, SO.REUSEADDR, await thread.malloc(Int32))
    assert await valid.read() == 0 and rest.size() == 0
    value = await thread.ptr(Int32(1))
    await sock.setsockopt(SOL.SOCKET, SO.REUSEADDR, value)
    assert not value.consumed  # setsockopt only reads it
    valid, _ = await sock.getsockopt(SOL.SOCKET, SO.REUSEADDR, valid + rest)
    assert await valid.read() == 1
    with stdlib_socket(thread, sock) as view:
        assert view.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert view.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    await sock.setsockopt(IPPROTO.TCP, TCP.NODELAY, await thread.ptr(Int32(1)))
    valid, _ = await sock.getsockopt(IPPROTO.TCP, TCP.NODELAY, await thread.malloc(Int32))
    assert await valid.read() == 1
    with stdlib_socket(thread, sock) as view:
        assert view.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        view.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    valid, _ = await sock.getsockopt(SOL.SOCKET, SO.KEEPALIVE, await thread.malloc(Int32))
    assert await valid.read() == 1
    # A larger buffer: the kernel says how much it wrote.
    raw, raw_rest = await sock.getsockopt(SOL.SOCKET, SO.RCVBUF, await thread.malloc(bytes, 16))
    assert raw.size() == 4 and raw_rest.size() == 12
    (rcvbuf,) = struct.unpack("<i", await raw.read())
    with stdlib_socket(thread, sock) as view:
        assert view.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rcvbuf
    # A raw bytes option value works too.
    await sock.setsockopt(SOL.SOCKET, SO.KEEPALIVE, await thread.ptr(struct.pack("<i", 0)))
    valid, _ = await sock.getsockopt(SOL.SOCKET, SO.KEEPALIVE, await thread.malloc(Int32))
    assert await valid.read() == 0
    # Errors.
    # An option the library does not list might hold addresses: refused
    # before any syscall, and made only through the unsafe_ forms.
    buf = await thread.malloc(Int32)
    with pytest.raises(ValueError, match="unsafe_setsockopt"):
        await sock.setsockopt(SOL.SOCKET, 9999, await thread.ptr(Int32(1)))
    with pytest.raises(ValueError, match="unsafe_getsockopt"):
        await sock.getsockopt(SOL.SOCKET, 9999, buf)
    assert not buf.consumed
    with pytest.raises(OSError) as info:
        await sock.unsafe_setsockopt(SOL.SOCKET, 9999, await thread.ptr(Int32(1)))
    assert info.value.errno == errno.ENOPROTOOPT
    with pytest.raises(OSError) as info:
        await sock.unsafe_getsockopt(SOL.SOCKET, 9999, buf)
    assert info.value.errno == errno.ENOPROTOOPT
    assert not buf.consumed
    with pytest.raises(OSError) as info:
        await sock.setsockopt(SOL.SOCKET, SO.REUSEADDR, await thread.ptr(b"\1"))
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        await sock.setsockopt(SOL.SOCKET, SO.REUSEADDR, await thread.malloc(Int32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await sock.setsockopt(SOL.SOCKET, SO.REUSEADDR, 1)  # type: ignore[arg-type]
    await still_works(thread)


# ---- UDP and unix datagrams: sendto, recvfrom, send, recv ----


async def test_udp_sendto_recvfrom(thread: Thread) -> None:
    a, a_addr = await udp_socket(thread)
    b, b_addr = await udp_socket(thread)
    sent, unsent = await a.sendto(await thread.ptr(b"datagram"), await thread.ptr(b_addr))
    assert sent.value == b"datagram" and unsent.size() == 0
    valid, rest, src, src_rest = await b.recvfrom(
        await thread.malloc(bytes, 100), await thread.malloc(Sockaddr)
    )
    assert await valid.read() == b"datagram" and rest.size() == 92
    assert isinstance(src, ReadablePointer) and src.size() == 16
    assert src.size() + src_rest.size() == Sockaddr.sizeof()
    assert await src.read() == a_addr
    # From a stdlib socket: the address it reports is the one we read.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outside:
        outside.bind((LOOPBACK, 0))
        outside.sendto(b"from stdlib", (LOOPBACK, b_addr.port))
        valid, _, src, _ = await b.recvfrom(valid + rest, await thread.malloc(SockaddrIn))
        assert await valid.read() == b"from stdlib"
        assert await src.read() == SockaddrIn(outside.getsockname()[1], LOOPBACK)
        await b.sendto(await thread.ptr(b"reply"), await thread.ptr(await src.read()))
        assert outside.recvfrom(64) == (b"reply", (LOOPBACK, b_addr.port))
    # A too-small buffer truncates the datagram.
    await a.sendto(await thread.ptr(b"0123456789"), await thread.ptr(b_addr))
    small, addr = await thread.malloc(bytes, 4), await thread.malloc(Sockaddr)
    valid, rest, src, _ = await b.recvfrom(small, addr)
    assert await src.read() == a_addr
    assert await valid.read() == b"0123" and rest.size() == 0
    # Nothing to receive.
    buf, addr = await thread.malloc(bytes, 4), await thread.malloc(Sockaddr)
    with pytest.raises(BlockingIOError):
        await b.recvfrom(buf, addr, MSG.DONTWAIT)
    assert not buf.consumed and not addr.consumed


async def test_udp_connected_send_recv(thread: Thread) -> None:
    a, a_addr = await udp_socket(thread)
    b, b_addr = await udp_socket(thread)
    await a.connect(await thread.ptr(b_addr))
    peer, _ = await a.getpeername(await thread.malloc(Sockaddr))
    assert await peer.read() == b_addr
    await a.send(await thread.ptr(b"connected"))
    valid, _ = await b.recv(await thread.malloc(bytes, 64), MSG.PEEK)
    assert await valid.read() == b"connected"
    buf, addr = await thread.malloc(bytes, 64), await thread.malloc(Sockaddr)
    valid, _, src, _ = await b.recvfrom(buf, addr)
    assert await valid.read() == b"connected" and await src.read() == a_addr


async def test_unix_dgram_socketpair(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.DGRAM)
    await pair.first.send(await thread.ptr(b"one"))
    await pair.first.send(await thread.ptr(b"two"))
    valid, rest = await pair.second.recv(await thread.malloc(bytes, 64))
    assert await valid.read() == b"one"  # message boundaries kept
    # An unnamed sender: the kernel gives back no address at all.
    valid, rest, src, src_rest = await pair.second.recvfrom(
        valid + rest, await thread.malloc(Sockaddr)
    )
    assert await valid.read() == b"two"
    assert src.size() == 0 and src_rest.size() == Sockaddr.sizeof()
    # A named one (an abstract name): the address is its name.
    name = f"\0rsyscall-test-dgram-{thread_pid(thread)}-{id(pair)}".encode()
    await pair.first.bind(await thread.ptr(SockaddrUn(name)))
    assert await address_of(thread, pair.first) == SockaddrUn(name)
    await pair.first.send(await thread.ptr(b"named"))
    valid, _, src, _ = await pair.second.recvfrom(valid + rest, await thread.malloc(Sockaddr))
    assert await valid.read() == b"named"
    assert await src.read() == SockaddrUn(name)
    # sendto on a connected socketpair with an explicit address.
    await pair.second.sendto(await thread.ptr(b"to first"), await thread.ptr(SockaddrUn(name)))
    with stdlib_socket(thread, pair.first) as view:
        assert view.recv(64) == b"to first"


# ---- unix addresses: filesystem paths and abstract names ----


async def test_unix_filesystem_path(thread: Thread, tmp_path: Path) -> None:
    path = tmp_path / "sock"
    listener = await thread.task.socket(AF.UNIX, SOCK.STREAM)
    await listener.bind(await thread.ptr(SockaddrUn(path)))
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert await address_of(thread, listener) == SockaddrUn(os.fsencode(path))
    await listener.listen(5)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as outside:
        outside.connect(str(path))
        conn, peer, _ = await listener.accept4(await thread.malloc(Sockaddr))
        # The client never bound: an unnamed address, just the family.
        assert peer.size() == 2
        assert await peer.read() == SockaddrUn(b"")
        valid, _ = await conn.getsockname(await thread.malloc(Sockaddr))
        assert await valid.read() == SockaddrUn(str(path))
        outside.sendall(b"over a path")
        got, _ = await conn.recv(await thread.malloc(bytes, 64))
        assert await got.read() == b"over a path"
    # Our client, a stdlib server.
    path2 = tmp_path / "sock2"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path2))
        server.listen(1)
        client = await thread.task.socket(AF.UNIX, SOCK.STREAM)
        await client.connect(await thread.ptr(SockaddrUn(path2)))
        accepted, _ = server.accept()
        with accepted:
            valid, _ = await client.getpeername(await thread.malloc(Sockaddr))
            assert await valid.read() == SockaddrUn(os.fsencode(path2))
            await client.send(await thread.ptr(b"hi"))
            assert accepted.recv(8) == b"hi"
    with pytest.raises(OSError) as info:
        await listener.bind(await thread.ptr(SockaddrUn(tmp_path / "other")))
    assert info.value.errno == errno.EINVAL  # already bound
    other = await thread.task.socket(AF.UNIX, SOCK.STREAM)
    with pytest.raises(OSError) as info:
        await other.bind(await thread.ptr(SockaddrUn(path)))
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(FileNotFoundError):
        await other.connect(await thread.ptr(SockaddrUn(tmp_path / "nothing-here")))
    await still_works(thread)


async def test_unix_abstract_name(thread: Thread) -> None:
    name = f"\0rsyscall-test-{thread_pid(thread)}".encode()
    listener = await thread.task.socket(AF.UNIX, SOCK.STREAM)
    await listener.bind(await thread.ptr(SockaddrUn(name)))
    valid, rest = await listener.getsockname(await thread.malloc(Sockaddr))
    # Exactly the name, with no terminator.
    assert valid.size() == 2 + len(name) and rest.size() == 128 - valid.size()
    got = await valid.read()
    assert got == SockaddrUn(name) and got.path.startswith(b"\0")  # type: ignore[attr-defined]
    with stdlib_socket(thread, listener) as view:
        assert view.getsockname() == name
    await listener.listen(5)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as outside:
        outside.connect(name)
        conn = await listener.accept()
        outside.sendall(b"abstract")
        got_data, _ = await conn.recv(await thread.malloc(bytes, 64))
        assert await got_data.read() == b"abstract"
    client = await thread.task.socket(AF.UNIX, SOCK.STREAM)
    await client.connect(await thread.ptr(SockaddrUn(name)))
    valid, _ = await client.getpeername(await thread.malloc(Sockaddr))
    assert await valid.read() == SockaddrUn(name)
    with pytest.raises(ConnectionRefusedError):
        other = await thread.task.socket(AF.UNIX, SOCK.STREAM)
        await other.connect(await thread.ptr(SockaddrUn(name + b"-missing")))


# ---- IPv6 ----


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here")
async def test_ipv6_loopback(thread: Thread) -> None:
    listener = await thread.task.socket(AF.INET6, SOCK.STREAM)
    await listener.bind(await thread.ptr(SockaddrIn6(0, "::1")))
    await listener.listen(5)
    server_addr = await address_of(thread, listener)
    assert isinstance(server_addr, SockaddrIn6)
    assert server_addr.addr == IPv6Address("::1") and server_addr.port != 0
    with stdlib_socket(thread, listener) as view:
        assert view.getsockname()[:2] == ("::1", server_addr.port)
    client = await thread.task.socket(AF.INET6, SOCK.STREAM)
    await client.connect(await thread.ptr(SockaddrIn6(server_addr.port, IPv6Address("::1"))))
    conn, peer, rest = await listener.accept4(await thread.malloc(Sockaddr))
    assert peer.size() == 28 and rest.size() == 100
    client_addr = await peer.read()
    assert isinstance(client_addr, SockaddrIn6) and client_addr == await address_of(thread, client)
    with socket.create_connection(("::1", server_addr.port)) as outside:
        _, peer2, _ = await listener.accept4(await thread.malloc(SockaddrIn6))
        got = await peer2.read()
        assert (str(got.addr), got.port) == outside.getsockname()[:2]
    await client.send(await thread.ptr(b"v6"))
    valid, _ = await conn.recv(await thread.malloc(bytes, 8))
    assert await valid.read() == b"v6"
    opt, _ = await listener.getsockopt(IPPROTO.IPV6, IPV6.V6ONLY, await thread.malloc(Int32))
    with stdlib_socket(thread, listener) as view:
        assert await opt.read() == view.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)


# ---- sendmsg, recvmsg ----


async def test_sendmsg_recvmsg_several_buffers(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    pieces = [b"abc", b"de", b"fghij"]
    iov = await thread.ptr(IovecList([await thread.ptr(p) for p in pieces]))
    sent, unsent = await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov)))
    assert [p.value for p in sent] == pieces and unsent == []  # type: ignore[attr-defined]
    assert all(isinstance(p, WrittenPointer) for p in sent)

    buffers = [await thread.malloc(bytes, 4) for _ in range(4)]
    iov = await thread.ptr(IovecList(buffers))
    valid, rest, hdr = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov)))
    assert all(b.consumed for b in buffers)
    # 10 bytes into 4+4+4+4: two full, one half-filled, one untouched.
    assert [p.size() for p in valid] == [4, 4, 2]
    assert [p.size() for p in rest] == [2, 4]
    assert all(isinstance(p, ReadablePointer) for p in valid)
    assert all(type(p) is Pointer for p in rest)
    assert b"".join([await p.read() for p in valid]) == b"abcdefghij"
    assert isinstance(hdr, LinearPointer)
    out = await hdr.read()
    assert isinstance(out, RecvMsghdrOut)
    assert out.name is None and out.control is None and out.flags == MSG.NONE
    with pytest.raises(UseAfterConsumeError):
        await hdr.read()
    # The half-filled buffer merges back whole; the buffers are reusable.
    whole = valid[2] + rest[0]
    assert whole.size() == 4
    await pair.first.send(await thread.ptr(b"XYZW"))
    iov = await thread.ptr(IovecList([whole]))
    valid2, rest2, _ = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov)))
    assert [await p.read() for p in valid2] == [b"XYZW"] and rest2 == []


async def test_sendmsg_partial_with_nonblocking_socket(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
    await pair.first.setsockopt(SOL.SOCKET, SO.SNDBUF, await thread.ptr(Int32(4096)))
    big = os.urandom(1 << 20)
    iov = await thread.ptr(IovecList([await thread.ptr(b"head"), await thread.ptr(big)]))
    sent, unsent = await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov)))
    total = sum(p.size() for p in sent)
    assert 4 < total < len(big) + 4
    assert sum(p.size() for p in unsent) == len(big) + 4 - total
    assert [p.value for p in sent] == [b"head", big[: total - 4]]  # type: ignore[attr-defined]
    assert [p.value for p in unsent] == [big[total - 4 :]]  # type: ignore[attr-defined]
    with stdlib_socket(thread, pair.second) as view:
        received = b""
        while len(received) < total:
            received += view.recv(1 << 20)
    assert received == b"head" + big[: total - 4]


async def test_udp_sendmsg_recvmsg_with_names(thread: Thread) -> None:
    a, a_addr = await udp_socket(thread)
    b, b_addr = await udp_socket(thread)
    iov = await thread.ptr(IovecList([await thread.ptr(b"to "), await thread.ptr(b"b")]))
    await a.sendmsg(await thread.ptr(SendMsghdr(await thread.ptr(b_addr), iov)))
    name = await thread.malloc(Sockaddr)
    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 64)]))
    valid, rest, hdr = await b.recvmsg(await thread.ptr(RecvMsghdr(name, iov)))
    assert name.consumed
    assert [await p.read() for p in valid] == [b"to b"] and rest[0].size() == 60
    out = await hdr.read()
    assert out.name is not None and out.name.size() == 16
    assert await out.name.read() == a_addr
    assert out.control is None and not out.flags & MSG.TRUNC
    # A datagram bigger than the buffers: MSG.TRUNC.
    await a.sendto(await thread.ptr(b"0123456789"), await thread.ptr(b_addr))
    iov = await thread.ptr(IovecList(
        [await thread.malloc(bytes, 3), await thread.malloc(bytes, 3)]))
    valid, rest, hdr = await b.recvmsg(await thread.ptr(RecvMsghdr(None, iov)))
    assert [await p.read() for p in valid] == [b"012", b"345"] and rest == []
    assert (await hdr.read()).flags & MSG.TRUNC


async def test_scm_rights_several_fds(thread: Thread, tmp_path: Path) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    pipe = await thread.pipe()
    (tmp_path / "f").write_bytes(b"file contents")
    file_fd = await thread.task.open(await thread.ptr(tmp_path / "f"), O.RDONLY)
    udp, _ = await udp_socket(thread)
    originals = [pipe.write, file_fd, udp]
    iov = await thread.ptr(IovecList([await thread.ptr(b"fds")]))
    cmsgs = await thread.ptr(CmsgList([CmsgSCMRights(originals)]))
    sent, _ = await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov, cmsgs)))
    assert sum(p.size() for p in sent) == 3

    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 16)]))
    control = await thread.ptr(CmsgList([CmsgSCMRights(originals)]))  # room for three
    valid, _, hdr = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov, control)))
    assert [await p.read() for p in valid] == [b"fds"]
    out = await hdr.read()
    assert not out.flags & MSG.CTRUNC
    assert out.control is not None and isinstance(out.control, LinearPointer)
    cmsg_list = await out.control.read()
    with pytest.raises(UseAfterConsumeError):
        await out.control.read()  # reading twice would make two owners of each fd
    assert len(cmsg_list) == 1 and isinstance(cmsg_list[0], CmsgSCMRights)
    received = list(cmsg_list[0])
    assert len(received) == 3
    for got, original in zip(received, originals, strict=True):
        assert isinstance(got, FileDescriptor)
        assert got.number not in {o.number for o in originals}
        assert fd_stat(thread, got).st_ino == fd_stat(thread, original).st_ino
        assert cloexec(thread, got)  # received close-on-exec
    await received[0].write(await thread.ptr(b"through passed pipe"))
    await received[0].close()
    await pipe.write.close()
    assert await thread.read_to_eof(pipe.read) == b"through passed pipe"
    assert await thread.read_to_eof(received[1]) == b"file contents"
    assert isinstance(await address_of(thread, received[2]), SockaddrIn)


async def send_three_fds(thread: Thread, sock: FileDescriptor) -> list[FileDescriptor]:
    pipes = [await thread.pipe() for _ in range(3)]
    fds = [p.write for p in pipes]
    iov = await thread.ptr(IovecList([await thread.ptr(b"x")]))
    cmsgs = await thread.ptr(CmsgList([CmsgSCMRights(fds)]))
    await sock.sendmsg(await thread.ptr(SendMsghdr(None, iov, cmsgs)))
    return fds


async def test_scm_rights_control_too_small_ctrunc(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.DGRAM)
    fds_before = await thread_fds(thread)

    # Room for exactly one fd: a 16-byte cmsghdr and one int.
    await send_three_fds(thread, pair.first)
    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 1)]))
    control = await thread.malloc(CmsgList, 16 + 4)
    _, _, hdr = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov, control)))
    out = await hdr.read()
    assert out.flags & MSG.CTRUNC
    assert out.control is not None
    (rights,) = await out.control.read()
    assert isinstance(rights, CmsgSCMRights) and len(rights) == 1
    fd_stat(thread, rights[0])

    # The padded space for one fd (24 bytes) has room for two.
    await send_three_fds(thread, pair.first)
    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 1)]))
    control = await thread.ptr(CmsgList([CmsgSCMRights([pair.first])]))
    assert control.size() == 24
    _, _, hdr = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov, control)))
    out = await hdr.read()
    assert out.flags & MSG.CTRUNC
    assert out.control is not None
    (rights,) = await out.control.read()
    assert isinstance(rights, CmsgSCMRights) and len(rights) == 2
    assert all(stat.S_ISFIFO(fd_stat(thread, fd).st_mode) for fd in rights)

    # No control buffer at all: every fd is dropped.
    await send_three_fds(thread, pair.first)
    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 1)]))
    valid, _, hdr = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov)))
    assert [await p.read() for p in valid] == [b"x"]
    out = await hdr.read()
    assert out.flags & MSG.CTRUNC and out.control is None
    del rights, out, hdr
    # No fds leaked: the truncated ones were closed by the kernel.
    leaked = await thread_fds(thread) - fds_before
    assert not leaked, {n: os.readlink(proc(thread, f"fd/{n}")) for n in leaked}


async def test_cmsg_generic_and_serializer(thread: Thread) -> None:
    task = thread.task
    serializer = CmsgList.get_serializer(task)
    generic = Cmsg(1234, 5, b"abc")
    assert generic == Cmsg(1234, 5, b"abc") and hash(generic) == hash(Cmsg(1234, 5, b"abc"))
    data = serializer.to_bytes(CmsgList([generic]))
    assert len(data) == 24  # header 16, data 3 padded to 8
    assert struct.unpack_from("<Qii", data) == (19, 1234, 5)
    assert serializer.from_bytes(data) == (generic,)
    with pytest.raises(TypeError):
        serializer.to_bytes([generic])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CmsgSCMRights([3])  # type: ignore[list-item]


# ---- addresses: to_bytes/from_bytes ----


def test_sockaddr_in_layout() -> None:
    addr = SockaddrIn(0x1234, "10.1.2.3")
    data = addr.to_bytes()
    assert len(data) == SockaddrIn.sizeof() == 16
    assert data[:2] == socket.AF_INET.to_bytes(2, "little")
    assert data[2:4] == b"\x12\x34"  # network byte order, no htons by hand
    assert data[4:8] == socket.inet_aton("10.1.2.3") and data[8:] == b"\0" * 8
    assert SockaddrIn(80) == SockaddrIn(80, 0) == SockaddrIn(80, "0.0.0.0")
    assert SockaddrIn(80, INADDR.LOOPBACK) == SockaddrIn(80, LOOPBACK)
    assert SockaddrIn.family == AF.INET


def test_sockaddr_in6_layout() -> None:
    addr = SockaddrIn6(0xABCD, "fe80::1", flowinfo=0x01020304, scope_id=7)
    data = addr.to_bytes()
    assert len(data) == SockaddrIn6.sizeof() == 28
    assert data[:2] == socket.AF_INET6.to_bytes(2, "little")
    assert data[2:4] == b"\xab\xcd" and data[4:8] == b"\x01\x02\x03\x04"
    assert data[8:24] == socket.inet_pton(socket.AF_INET6, "fe80::1")
    assert data[24:] == (7).to_bytes(4, "little")


def test_sockaddr_un_layout() -> None:
    assert SockaddrUn("/tmp/x").to_bytes() == b"\x01\x00/tmp/x\0"
    assert SockaddrUn(b"\0abs").to_bytes() == b"\x01\x00\0abs"
    assert SockaddrUn(b"").to_bytes() == b"\x01\x00"
    assert SockaddrUn("/p") == SockaddrUn(b"/p") == SockaddrUn(Path("/p"))
    assert Sockaddr.from_bytes(b"\x01\x00/tmp/x\0" + b"\0" * 100) == SockaddrUn("/tmp/x")


def test_sockaddr_generic_and_wrong_family() -> None:
    data = AF.PACKET.to_bytes(2, "little") + b"\1\2\3"
    generic = Sockaddr.from_bytes(data)
    assert isinstance(generic, GenericSockaddr)
    assert generic == GenericSockaddr(AF.PACKET, b"\1\2\3") and generic.to_bytes() == data
    with pytest.raises(ValueError):
        SockaddrIn.from_bytes(SockaddrIn6(1, "::1").to_bytes())
    with pytest.raises(ValueError):
        SockaddrUn.from_bytes(SockaddrIn(1).to_bytes())
    with pytest.raises(ValueError):
        Sockaddr.from_bytes(b"\x02")
    with pytest.raises(ValueError):
        SockaddrIn6.from_bytes(SockaddrIn6(1, "::1").to_bytes()[:20])
    with pytest.raises(TypeError):  # abstract
        Sockaddr()


def test_sockaddr_bad_values() -> None:
    with pytest.raises(ValueError):
        SockaddrIn(70000)
    with pytest.raises(ValueError):
        SockaddrIn(-1)
    with pytest.raises(TypeError):
        SockaddrIn("80")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SockaddrIn(True)
    with pytest.raises(ValueError):
        SockaddrIn(80, "not an address")
    with pytest.raises(ValueError):
        SockaddrIn6(80, "1.2.3")
    with pytest.raises(ValueError):
        SockaddrUn("x" * 108)  # no room for the terminator
    SockaddrUn("x" * 107)
    SockaddrUn(b"\0" + b"x" * 107)  # abstract names need none
    with pytest.raises(ValueError):
        SockaddrUn(b"\0" + b"x" * 108)
    with pytest.raises(ValueError):
        SockaddrUn("a\0b")


ports = st.integers(0, 0xFFFF)


@given(ports, st.integers(0, 2**32 - 1))
@settings(max_examples=200)
def test_sockaddr_in_roundtrip(port: int, addr: int) -> None:
    value = SockaddrIn(port, addr)
    data = value.to_bytes()
    assert len(data) == 16
    assert SockaddrIn.from_bytes(data) == value
    assert Sockaddr.from_bytes(data) == value
    assert isinstance(Sockaddr.from_bytes(data), SockaddrIn)
    assert Sockaddr.from_bytes(data + b"\0" * 112) == value  # as in a sockaddr_storage
    expected = struct.pack("!H4s8x", port, IPv4Address(addr).packed)
    assert data == socket.AF_INET.to_bytes(2, "little") + expected
    assert hash(SockaddrIn.from_bytes(data)) == hash(value)


@given(ports, st.integers(0, 2**128 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
@settings(max_examples=200)
def test_sockaddr_in6_roundtrip(port: int, addr: int, flowinfo: int, scope_id: int) -> None:
    value = SockaddrIn6(port, addr, flowinfo, scope_id)
    data = value.to_bytes()
    assert len(data) == 28
    assert SockaddrIn6.from_bytes(data) == value
    parsed = Sockaddr.from_bytes(data)
    assert isinstance(parsed, SockaddrIn6) and parsed == value
    assert (parsed.port, parsed.addr, parsed.flowinfo, parsed.scope_id) == (
        port, IPv6Address(addr), flowinfo, scope_id)
    assert Sockaddr.from_bytes(data + b"\0" * 100) == value


unix_paths = st.binary(min_size=1, max_size=107).filter(
    lambda p: b"\0" not in p
)
abstract_names = st.binary(max_size=107).map(lambda p: b"\0" + p)


@given(st.one_of(unix_paths, abstract_names, st.just(b"")))
@settings(max_examples=200)
def test_sockaddr_un_roundtrip(path: bytes) -> None:
    value = SockaddrUn(path)
    data = value.to_bytes()
    assert len(data) <= SockaddrUn.sizeof() == 110
    assert SockaddrUn.from_bytes(data) == value
    parsed = Sockaddr.from_bytes(data)
    assert isinstance(parsed, SockaddrUn) and parsed.path == path
    assert hash(parsed) == hash(value)
    if path and not path.startswith(b"\0"):
        # A filesystem path reads back the same from a zero-padded buffer.
        assert Sockaddr.from_bytes(data.ljust(128, b"\0")) == value


# ---- bad input ----


async def test_socket_bad_input(thread: Thread, tmp_path: Path) -> None:
    sock = await thread.task.socket(AF.INET, SOCK.STREAM)
    with pytest.raises(TypeError):
        await sock.bind(b"x")  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await sock.bind(SockaddrIn(0, LOOPBACK))  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await sock.connect(await thread.malloc(Sockaddr))  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await sock.getsockname(b"x")  # type: ignore[arg-type]
    await still_works(thread)
    with pytest.raises(TypeError):
        await sock.send(b"x")  # type: ignore[call-overload]
    await still_works(thread)
    with pytest.raises(TypeError):
        await sock.recv(bytearray(4))  # type: ignore[arg-type]
    await still_works(thread)
    # A consumed address buffer.
    addr = await thread.malloc(Sockaddr)
    await sock.getsockname(addr)
    with pytest.raises(UseAfterConsumeError):
        await sock.getsockname(addr)
    with pytest.raises(UseAfterConsumeError):
        await sock.getpeername(addr)
    buf = await thread.malloc(bytes, 4)
    with pytest.raises(UseAfterConsumeError):
        await sock.recvfrom(buf, addr)
    assert not buf.consumed  # the failed call gave the data buffer back
    await still_works(thread)
    # Kernel errors.
    with pytest.raises(OSError) as info:
        await sock.getpeername(await thread.malloc(Sockaddr))
    assert info.value.errno == errno.ENOTCONN
    with pytest.raises(BrokenPipeError):
        await sock.send(await thread.ptr(b"x"), MSG.NOSIGNAL)
    with pytest.raises(OSError) as info:
        await sock.accept()
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        await sock.bind(await thread.ptr(SockaddrUn(tmp_path / "s")))
    assert info.value.errno == errno.EAFNOSUPPORT
    listener, server_addr = await tcp_listener(thread)
    await listener.close()
    with pytest.raises(ConnectionRefusedError):
        await sock.connect(await thread.ptr(server_addr))
    await still_works(thread)
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.bind(await thread.ptr(SockaddrIn(0)))
    assert info.value.errno == errno.ENOTSOCK
    with pytest.raises(OSError) as info:
        await pipe.read.getsockname(await thread.malloc(Sockaddr))
    assert info.value.errno == errno.ENOTSOCK
    with pytest.raises(OSError) as info:
        await pipe.write.shutdown(SHUT.RDWR)
    assert info.value.errno == errno.ENOTSOCK
    await still_works(thread)
    # A closed socket handle.
    await sock.close()
    with pytest.raises(UseAfterConsumeError):
        await sock.bind(await thread.ptr(SockaddrIn(0)))
    with pytest.raises(UseAfterConsumeError):
        await sock.listen(1)
    with pytest.raises(UseAfterConsumeError):
        await sock.recv(await thread.malloc(bytes, 4))
    with pytest.raises(UseAfterConsumeError):
        await sock.send(await thread.ptr(b"x"))
    with pytest.raises(UseAfterConsumeError):
        await sock.getsockopt(SOL.SOCKET, SO.TYPE, await thread.malloc(Int32))
    await still_works(thread)


async def test_msghdr_bad_input(thread: Thread) -> None:
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    with pytest.raises(TypeError):
        IovecList([b"x"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        SendMsghdr(None, await thread.ptr(b"not an iovec")).to_bytes()  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await thread.ptr(SendMsghdr(None, await thread.ptr(b"x")))  # type: ignore[arg-type]
    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 4)]))
    # A RecvMsghdr for sendmsg, a SendMsghdr for recvmsg, and no pointer at all.
    with pytest.raises(TypeError):
        await pair.first.sendmsg(await thread.ptr(RecvMsghdr(None, iov)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pair.first.recvmsg(await thread.ptr(SendMsghdr(None, iov)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pair.first.recvmsg(RecvMsghdr(None, iov))  # type: ignore[arg-type]
    await still_works(thread)
    # sendmsg reads its buffers: they must be written.
    with pytest.raises(TypeError):
        await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov)))
    await still_works(thread)
    # A buffer consumed after the iovec array was written.
    buf = await thread.ptr(b"data")
    iov = await thread.ptr(IovecList([buf]))
    buf.split(2)
    with pytest.raises(UseAfterConsumeError):
        await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov)))
    await still_works(thread)
    # The memory a msghdr points to, consumed after the msghdr was written:
    # the kernel would read freed memory, so the library refuses.
    data = await thread.ptr(b"data")
    iov = await thread.ptr(IovecList([data]))
    msg_out = await thread.ptr(SendMsghdr(None, iov))
    iov.split(8)
    with pytest.raises(UseAfterConsumeError):
        await pair.first.sendmsg(msg_out)
    assert not data.consumed
    room = await thread.malloc(bytes, 4)
    iov = await thread.ptr(IovecList([room]))
    msg_in = await thread.ptr(RecvMsghdr(None, iov))
    iov.split(0)
    with pytest.raises(UseAfterConsumeError):
        await pair.second.recvmsg(msg_in, MSG.DONTWAIT)
    assert not room.consumed and not msg_in.consumed
    iov = await thread.ptr(IovecList([data]))
    control = await thread.ptr(CmsgList([CmsgSCMRights([pair.first])]))
    msg_out = await thread.ptr(SendMsghdr(None, iov, control))
    control.split(4)
    with pytest.raises(UseAfterConsumeError):
        await pair.first.sendmsg(msg_out)
    udp, udp_addr = await udp_socket(thread)
    name = await thread.ptr(udp_addr)
    msg_out = await thread.ptr(SendMsghdr(name, await thread.ptr(IovecList([data]))))
    name.split(2)
    with pytest.raises(UseAfterConsumeError):
        await udp.sendmsg(msg_out)
    assert not data.consumed
    await still_works(thread)
    # An fd in an SCM_RIGHTS message closed after the message was written:
    # its number may name another file by now, so nothing is sent.
    pipe = await thread.pipe()
    control = await thread.ptr(CmsgList([CmsgSCMRights([pipe.write])]))
    msg_out = await thread.ptr(SendMsghdr(None, await thread.ptr(IovecList([data])), control))
    await pipe.write.close()
    with pytest.raises(UseAfterConsumeError):
        await pair.first.sendmsg(msg_out)
    with pytest.raises(BlockingIOError):
        await pair.second.recv(await thread.malloc(bytes, 8), MSG.DONTWAIT)
    await still_works(thread)
    # recvmsg with nothing to receive gives every buffer back.
    name_room, control_room = await thread.malloc(Sockaddr), await thread.malloc(CmsgList, 64)
    buffers = [await thread.malloc(bytes, 4), await thread.malloc(bytes, 4)]
    iov = await thread.ptr(IovecList(buffers))
    msg = await thread.ptr(RecvMsghdr(name_room, iov, control_room))
    with pytest.raises(BlockingIOError):
        await pair.second.recvmsg(msg, MSG.DONTWAIT)
    assert not name_room.consumed and not control_room.consumed and not msg.consumed
    assert not any(p.consumed for p in buffers)
    await pair.first.send(await thread.ptr(b"now"))
    valid, _, _ = await pair.second.recvmsg(msg, MSG.DONTWAIT)
    assert [await p.read() for p in valid] == [b"now"]
    # The msghdr pointer is consumed by the recvmsg that used it.
    with pytest.raises(UseAfterConsumeError):
        await pair.second.recvmsg(msg)
    await still_works(thread)


# ---- options whose values hold addresses ----


@pytest.mark.isolated
async def test_sockopt_with_addresses_refused(thread: Thread) -> None:
    """Regression: getsockopt took any option, and TCP_ZEROCOPY_RECEIVE's
    struct holds copybuf_address, where the kernel copies received data:
    an int there (the address of a live object) had it overwritten.  Now
    options the library does not list are refused before any syscall."""
    listener = await thread.task.socket(AF.INET, SOCK.STREAM)
    await listener.bind(await thread.ptr(SockaddrIn(0, "127.0.0.1")))
    await listener.listen(1)
    addr, _ = await listener.getsockname(await thread.malloc(SockaddrIn))
    client = await thread.task.socket(AF.INET, SOCK.STREAM)
    await client.connect(addr)
    server = await listener.accept()
    await client.send(await thread.ptr(b"overwrite"))
    victim = bytearray(b"untouched")
    tcp_zerocopy_receive = 35
    # struct tcp_zerocopy_receive: address, length, recv_skip_hint, inq, err,
    # copybuf_address, copybuf_len, flags, msg_control, msg_controllen, msg_flags.
    request = struct.pack("<QIIIiQiIQQI4x", 0, 0, 0, 0, 0, id(victim), 9, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="unsafe_getsockopt"):
        await server.getsockopt(IPPROTO.TCP, tcp_zerocopy_receive, await thread.ptr(request))
    so_attach_filter = 26  # struct sock_fprog: the filter's address
    with pytest.raises(ValueError, match="unsafe_setsockopt"):
        await server.setsockopt(SOL.SOCKET, so_attach_filter, await thread.ptr(bytes(16)))
    assert victim == bytearray(b"untouched")
    valid, _ = await server.recv(await thread.malloc(bytes, 9))
    assert await valid.read() == b"overwrite"


def test_listed_options_are_the_enums() -> None:
    """setsockopt and getsockopt take exactly the options of the enums."""
    from rsyscall.linux.netlink import NETLINK_OPT
    from rsyscall.sys.socket import _OPTIONS

    assert _OPTIONS == {
        SOL.SOCKET: set(SO), IPPROTO.IP: set(IP), IPPROTO.TCP: set(TCP), IPPROTO.IPV6: set(IPV6),
        SOL.NETLINK: set(NETLINK_OPT),
    }


# ---- socket options typed by level and option ----


async def test_socket_options_are_typed(thread: Thread) -> None:
    """level is a SOL or IPPROTO, optname the option enum of that level,
    and the value a pointer to the option's type: Linger, Timeval, Ucred,
    str, or Int32 for the int options (raw bytes always do)."""
    from rsyscall.sys.socket import Linger, Ucred
    from rsyscall.sys.time import Timeval

    from .util import thread_pid

    sock = await thread.task.socket(AF.INET, SOCK.STREAM)
    # SO.LINGER: a struct linger.
    await sock.setsockopt(SOL.SOCKET, SO.LINGER, await thread.ptr(Linger(True, 7)))
    valid, rest = await sock.getsockopt(SOL.SOCKET, SO.LINGER, await thread.malloc(Linger))
    assert await valid.read() == Linger(1, 7) and rest.size() == 0
    with stdlib_socket(thread, sock) as view:
        raw = view.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        assert struct.unpack("ii", raw) == (1, 7)
    # SO.RCVTIMEO: a struct timeval.
    await sock.setsockopt(SOL.SOCKET, SO.RCVTIMEO, await thread.ptr(Timeval(2, 500_000)))
    valid, _ = await sock.getsockopt(SOL.SOCKET, SO.RCVTIMEO, await thread.malloc(Timeval))
    assert await valid.read() == Timeval(2, 500_000)
    # TCP.CONGESTION: a name.
    await sock.setsockopt(IPPROTO.TCP, TCP.CONGESTION, await thread.ptr(b"reno"))
    valid, _ = await sock.getsockopt(IPPROTO.TCP, TCP.CONGESTION, await thread.malloc(bytes, 16))
    assert (await valid.read()).rstrip(b"\0") == b"reno"
    # SO.BINDTODEVICE, as root: a device name.
    await sock.setsockopt(SOL.SOCKET, SO.BINDTODEVICE, await thread.ptr("lo"))
    valid, _ = await sock.getsockopt(SOL.SOCKET, SO.BINDTODEVICE, await thread.malloc(bytes, 16))
    assert (await valid.read()).rstrip(b"\0") == b"lo"
    # IP.TTL is an int.
    await sock.setsockopt(IPPROTO.IP, IP.TTL, await thread.ptr(Int32(17)))
    valid, _ = await sock.getsockopt(IPPROTO.IP, IP.TTL, await thread.malloc(Int32))
    assert await valid.read() == 17
    # SO.PEERCRED of a socketpair: the process that made it.
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    valid, _ = await pair.first.getsockopt(SOL.SOCKET, SO.PEERCRED, await thread.malloc(Ucred))
    cred = await valid.read()
    assert cred == Ucred(thread_pid(thread), await thread.task.getuid(), await thread.task.getgid())

    # Errors, all before any syscall: the option of another level...
    value = await thread.ptr(Int32(1))
    with pytest.raises(TypeError, match="optname"):
        await sock.setsockopt(SOL.SOCKET, TCP.NODELAY, value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="optname"):
        await sock.getsockopt(IPPROTO.TCP, SO.REUSEADDR, await thread.malloc(Int32))
    with pytest.raises(TypeError, match="level"):
        await sock.setsockopt(AF.INET, SO.REUSEADDR, value)  # type: ignore[arg-type]
    # ... a value of the wrong type ...
    with pytest.raises(TypeError, match="Linger"):
        await sock.setsockopt(SOL.SOCKET, SO.LINGER, value)
    with pytest.raises(TypeError, match="Int32"):
        await sock.setsockopt(SOL.SOCKET, SO.REUSEADDR, await thread.ptr(Linger(1, 1)))
    buf = await thread.malloc(Timeval)
    with pytest.raises(TypeError, match="Ucred"):
        await pair.first.getsockopt(SOL.SOCKET, SO.PEERCRED, buf)
    assert not buf.consumed
    with pytest.raises(TypeError):  # struct tcp_info is read as bytes only
        await sock.getsockopt(IPPROTO.TCP, TCP.INFO, await thread.malloc(Int32))
    # ... an unknown level.
    with pytest.raises(ValueError, match="unsafe_setsockopt"):
        await sock.setsockopt(2, 1, value)  # type: ignore[arg-type]
    # Plain ints still name the options of their level.
    await sock.setsockopt(1, 2, value)  # type: ignore[arg-type]  # SOL_SOCKET, SO_REUSEADDR
    valid, _ = await sock.getsockopt(SOL.SOCKET, SO.REUSEADDR, await thread.malloc(Int32))
    assert await valid.read() == 1
    # The raw bytes a kernel error needs still reach it.
    with pytest.raises(OSError) as info:
        await sock.setsockopt(SOL.SOCKET, SO.LINGER, await thread.ptr(b"\1"))
    assert info.value.errno == errno.EINVAL
    await still_works(thread)


def test_socket_option_structs() -> None:
    from rsyscall.sys.socket import Linger, Ucred

    assert Linger.from_bytes(Linger(1, 30).to_bytes()) == Linger(1, 30)
    assert Ucred.from_bytes(struct.pack("iII", 5, 6, 7)) == Ucred(5, 6, 7)
    with pytest.raises(ValueError):
        Linger(1, 1 << 31).to_bytes()
    with pytest.raises(ValueError):
        Ucred(1, -1, 0)
    with pytest.raises(ValueError):
        Ucred.from_bytes(b"\0" * 11)
