"""<linux/netlink.h>: netlink sockets (netlink(7)): the NETLINK_* protocols,
`struct sockaddr_nl`, the message header and its flags, NLMSG_ERROR's
`struct nlmsgerr`, and the SOL_NETLINK socket options.

A netlink socket is an ordinary socket of the thread that makes it, local,
child, stub or ssh; `SockaddrNl` works with bind, sendto, recvfrom and
getsockname like the other address families:

    sock = await thread.task.socket(AF.NETLINK, SOCK.RAW, NETLINK.ROUTE)
    await sock.bind(await thread.ptr(SockaddrNl()))  # the kernel picks the port id
    bound, _ = await sock.getsockname(await thread.malloc(Sockaddr))
    port_id = (await bound.read()).pid

`NetlinkSocket` does the request/acknowledgement exchange every netlink
protocol uses: it sends one request (NLM_F_REQUEST | NLM_F_ACK, a fresh
sequence number) to the kernel, and collects the replies up to the
acknowledgement (or, for a dump, NLMSG_DONE); an NLMSG_ERROR with an error
raises OSError with its errno, and the kernel's extended-ack message if it
gave one:

    nl = await NetlinkSocket.open(thread, NETLINK.ROUTE)
    # RTM_GETLINK (18), with an empty struct ifinfomsg: every link.
    replies = await nl.request(18, bytes(16), NLM_F.DUMP)
    await nl.close()

A socket opened with multicast `groups` gets the kernel's notifications
(a link appeared, an address went away), read with `receive`.
rsyscall.linux.rtnetlink builds the route netlink messages (links,
addresses, routes) on it.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Self

import anyio

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.struct import Layout, Struct, check_fields
from rsyscall.sys.socket import AF, SOCK, SOL, Sockaddr, _define_options

if TYPE_CHECKING:
    from rsyscall.epoller import AsyncFileDescriptor
    from rsyscall.handle import FileDescriptor, Pointer, WrittenPointer
    from rsyscall.thread import Thread

__all__ = [
    "NETLINK",
    "NETLINK_OPT",
    "NLM_F",
    "NLMSG",
    "NLMSGERR_ATTR",
    "NLMSG_ALIGNTO",
    "NLMSG_HDRLEN",
    "SockaddrNl",
    "Nlmsghdr",
    "Nlmsgerr",
    "NetlinkMessage",
    "NetlinkSocket",
    "nlmsg_align",
    "split_messages",
]


class NETLINK(IntEnum):
    """Netlink protocols: socket(2)'s protocol for AF.NETLINK (C: NETLINK_ROUTE...)."""

    ROUTE = 0
    UNUSED = 1
    USERSOCK = 2
    FIREWALL = 3
    SOCK_DIAG = 4
    NFLOG = 5
    XFRM = 6
    SELINUX = 7
    ISCSI = 8
    AUDIT = 9
    FIB_LOOKUP = 10
    CONNECTOR = 11
    NETFILTER = 12
    IP6_FW = 13
    DNRTMSG = 14
    KOBJECT_UEVENT = 15
    GENERIC = 16
    SCSITRANSPORT = 18
    ECRYPTFS = 19
    RDMA = 20
    CRYPTO = 21
    SMC = 22


NETLINK.INET_DIAG = NETLINK.SOCK_DIAG  # type: ignore[attr-defined]  # the old name


class NETLINK_OPT(IntEnum):
    """SOL_NETLINK socket options (C: NETLINK_ADD_MEMBERSHIP...).  Each value
    is an int (a group number, or a flag), except LIST_MEMBERSHIPS, which
    getsockopt fills with a bitmask of the groups.  The memory-mapped ring
    options (NETLINK_RX_RING, NETLINK_TX_RING) are gone from the kernel and
    left out."""

    ADD_MEMBERSHIP = 1
    DROP_MEMBERSHIP = 2
    PKTINFO = 3
    BROADCAST_ERROR = 4
    NO_ENOBUFS = 5
    LISTEN_ALL_NSID = 8
    LIST_MEMBERSHIPS = 9
    CAP_ACK = 10
    EXT_ACK = 11
    GET_STRICT_CHK = 12


# None of these options' values holds an address.
_define_options(SOL.NETLINK, NETLINK_OPT)


class NLM_F(IntFlag):
    """nlmsg_flags (C: NLM_F_*).  The high byte means different things for
    GET requests (ROOT, MATCH, ATOMIC, DUMP), NEW requests (REPLACE, EXCL,
    CREATE, APPEND), DELETE requests (NONREC, BULK) and acknowledgements
    (CAPPED, ACK_TLVS), so those share values."""

    NONE = 0
    REQUEST = 0x01
    MULTI = 0x02
    ACK = 0x04
    ECHO = 0x08
    DUMP_INTR = 0x10
    DUMP_FILTERED = 0x20
    ROOT = 0x100
    MATCH = 0x200
    ATOMIC = 0x400
    DUMP = 0x300
    REPLACE = 0x100
    EXCL = 0x200
    CREATE = 0x400
    APPEND = 0x800
    NONREC = 0x100
    BULK = 0x200
    CAPPED = 0x100
    ACK_TLVS = 0x200


class NLMSG(IntEnum):
    """The control message types every protocol shares (C: NLMSG_*); a
    protocol's own types start at MIN_TYPE."""

    NOOP = 0x1
    ERROR = 0x2
    DONE = 0x3
    OVERRUN = 0x4
    MIN_TYPE = 0x10


class NLMSGERR_ATTR(IntEnum):
    """The attributes of an extended acknowledgement (C: NLMSGERR_ATTR_*),
    sent after the `Nlmsgerr` when NETLINK_EXT_ACK is on."""

    UNUSED = 0
    MSG = 1
    OFFS = 2
    COOKIE = 3
    POLICY = 4
    MISS_TYPE = 5
    MISS_NEST = 6


NLMSG_ALIGNTO = 4
"""Messages and attributes start at multiples of this many bytes."""
NLMSG_HDRLEN = 16
"""The size of a `Nlmsghdr`, aligned: where a message's payload starts."""


def nlmsg_align(length: int) -> int:
    """`length` rounded up to NLMSG_ALIGNTO (C: NLMSG_ALIGN)."""
    return (length + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1)


class SockaddrNl(Sockaddr):
    """`struct sockaddr_nl`: a netlink address.

    `pid` is the port id (0 is the kernel, or, to bind, "pick one for me");
    `groups` a bitmask of multicast groups (to bind: the groups to join,
    of the first 32)."""

    __slots__ = ("groups", "pid")
    family: ClassVar[AF] = AF.NETLINK
    layout: ClassVar[Layout] = Layout(
        "struct sockaddr_nl",
        [("nl_family", "H"), ("nl_pad", "H"), ("nl_pid", "I"), ("nl_groups", "I")],
    )

    def __init__(self, pid: int = 0, groups: int = 0) -> None:
        self.pid = pid
        self.groups = groups
        check_fields(self, (("pid", "I"), ("groups", "I")))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(AF.NETLINK, 0, self.pid, self.groups)

    @classmethod
    def _parse(cls, data: bytes) -> SockaddrNl:
        if len(data) < cls.layout.size:
            raise ValueError(f"a sockaddr_nl is {cls.layout.size} bytes, got {len(data)}")
        _, _, pid, groups = cls.layout.struct.unpack_from(data)
        return cls(pid, groups)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SockaddrNl) and (self.pid, self.groups) == (
            other.pid, other.groups)

    def __hash__(self) -> int:
        return hash((self.pid, self.groups))

    def __repr__(self) -> str:
        return f"SockaddrNl(pid={self.pid}, groups={self.groups:#x})"


class Nlmsghdr(Struct):
    """`struct nlmsghdr`: the header of every netlink message.  `len` counts
    the header and the payload (not the padding to the next message)."""

    __slots__ = ("flags", "len", "pid", "seq", "type")
    layout: ClassVar[Layout] = Layout(
        "struct nlmsghdr",
        [("nlmsg_len", "I"), ("nlmsg_type", "H"), ("nlmsg_flags", "H"),
         ("nlmsg_seq", "I"), ("nlmsg_pid", "I")],
    )

    def __init__(
        self, len: int, type: int, flags: NLM_F | int = NLM_F.NONE, seq: int = 0, pid: int = 0
    ) -> None:
        self.len = len
        self.type = type
        self.flags = flags
        self.seq = seq
        self.pid = pid
        check_fields(self, (("len", "I"), ("type", "H"), ("flags", "H"), ("seq", "I"),
                            ("pid", "I")))
        self.flags = NLM_F(flags)

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.len, self.type, self.flags, self.seq, self.pid)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a nlmsghdr is {cls.layout.size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Nlmsghdr) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[int, int, int, int, int]:
        return (self.len, self.type, int(self.flags), self.seq, self.pid)

    def __repr__(self) -> str:
        return (f"Nlmsghdr(len={self.len}, type={self.type}, flags={self.flags!r}, "
                f"seq={self.seq}, pid={self.pid})")


class Nlmsgerr(Struct):
    """`struct nlmsgerr`: the payload of an NLMSG_ERROR: `error` is 0 for
    an acknowledgement or a negative errno, `msg` the header of the
    request it answers (followed, in the message, by the request's payload
    unless NETLINK_CAP_ACK is on, then by extended-ack attributes)."""

    __slots__ = ("error", "msg")
    layout: ClassVar[Layout] = Layout("struct nlmsgerr", [("error", "i"), ("msg", "16s")])

    def __init__(self, error: int, msg: Nlmsghdr) -> None:
        if not isinstance(msg, Nlmsghdr):
            raise TypeError(f"msg must be a Nlmsghdr, not {type(msg).__name__}")
        self.error = error
        self.msg = msg
        check_fields(self, (("error", "i"),))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.error, self.msg.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a nlmsgerr is {cls.layout.size} bytes, got {len(data)}")
        error, header = cls.layout.struct.unpack_from(data)
        return cls(error, Nlmsghdr.from_bytes(header))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Nlmsgerr) and (self.error, self.msg) == (other.error, other.msg)

    def __hash__(self) -> int:
        return hash((self.error, self.msg))

    def __repr__(self) -> str:
        return f"Nlmsgerr(error={self.error}, msg={self.msg!r})"


class NetlinkMessage(NamedTuple):
    """One message of a datagram: its header, and all its bytes (header
    included, padding not), as message classes that decode a whole
    message (pyroute2's) want them."""

    header: Nlmsghdr
    data: bytes

    @property
    def payload(self) -> bytes:
        """The bytes after the header."""
        return self.data[NLMSG_HDRLEN:]


def split_messages(data: bytes) -> list[NetlinkMessage]:
    """The messages of one netlink datagram, in order (C's NLMSG_OK and
    NLMSG_NEXT walk).  ValueError if a header is cut off or claims more
    bytes than there are."""
    messages = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < NLMSG_HDRLEN:
            raise ValueError(f"{len(data) - offset} bytes left at offset {offset}: no nlmsghdr")
        header = Nlmsghdr.from_bytes(data[offset:offset + NLMSG_HDRLEN])
        if header.len < NLMSG_HDRLEN or offset + header.len > len(data):
            raise ValueError(
                f"nlmsghdr at offset {offset} claims {header.len} bytes; "
                f"{len(data) - offset} are there")
        messages.append(NetlinkMessage(header, bytes(data[offset:offset + header.len])))
        offset += nlmsg_align(header.len)
    return messages


_NLATTR = struct.Struct("<HH")


def _extack_message(message: NetlinkMessage) -> str | None:
    """NLMSGERR_ATTR_MSG of an NLMSG_ERROR (or a dump's NLMSG_DONE), if any."""
    header = message.header
    if not header.flags & NLM_F.ACK_TLVS:
        return None
    payload = message.payload
    if header.type == NLMSG.DONE:
        offset = 4
    else:
        request = Nlmsghdr.from_bytes(payload[4:4 + NLMSG_HDRLEN])
        offset = 4 + (NLMSG_HDRLEN if header.flags & NLM_F.CAPPED else nlmsg_align(request.len))
    while offset + _NLATTR.size <= len(payload):
        length, kind = _NLATTR.unpack_from(payload, offset)
        if length < _NLATTR.size:
            break
        if kind & 0x3FFF == NLMSGERR_ATTR.MSG:
            text = payload[offset + _NLATTR.size:offset + length].split(b"\0", 1)[0]
            return text.decode(errors="replace")
        offset += nlmsg_align(length)
    return None


def _netlink_error(code: int, what: str, message: NetlinkMessage) -> OSError:
    try:
        text = os.strerror(code)
    except ValueError:
        text = errno.errorcode.get(code, f"error {code}")
    extack = _extack_message(message)
    detail = f"{what}: {extack}" if extack else what
    # OSError(errno, text) is the builtin subclass for the errno (FileExistsError...).
    return OSError(code, f"{text} ({detail})")


_builtin_type = type
_RECV_SIZE = 1 << 16  # the kernel's dump datagrams are at most 32 KiB
_U32 = (1 << 32) - 1


class NetlinkSocket:
    """A netlink socket of `thread`, bound to a port id the kernel picked,
    non-blocking and waited on in the thread's epoll (so a request never
    blocks the thread): requests to the kernel and their replies.

    Requests are made one at a time (a lock orders concurrent callers).  A
    request cancelled before its end leaves replies behind; the next one
    skips them (by sequence number), finishing a dump left half-read."""

    def __init__(
        self, thread: Thread, afd: AsyncFileDescriptor, address: SockaddrNl, protocol: int,
        kernel: WrittenPointer[SockaddrNl],
    ) -> None:
        self.thread = thread
        self.afd = afd
        self.address = address
        self.protocol = protocol
        self._kernel = kernel
        self._buffer: Pointer[bytes] | None = None
        self._seq = 0
        self._lock = anyio.Lock()
        self._unfinished: int | None = None

    def __repr__(self) -> str:
        return f"NetlinkSocket({self.thread!r}, protocol={self.protocol}, {self.address!r})"

    @property
    def fd(self) -> FileDescriptor:
        """The socket, a FileDescriptor of `thread`."""
        return self.afd.handle

    @property
    def port_id(self) -> int:
        """The port id the socket is bound to (its nl_pid)."""
        return self.address.pid

    @classmethod
    async def open(
        cls, thread: Thread, protocol: NETLINK | int = NETLINK.ROUTE, groups: int = 0
    ) -> Self:
        """A new netlink socket of `protocol` in `thread`: socket(AF.NETLINK,
        SOCK.RAW | SOCK.NONBLOCK), NETLINK_EXT_ACK on (errors carry the
        kernel's explanation), bound to a port id the kernel picks and to
        the multicast `groups` (a bitmask: for NETLINK.ROUTE, RTMGRP_LINK
        is 1), whose notifications `receive` reads."""
        from rsyscall.struct import Int32
        from rsyscall.thread import Thread as ThreadClass

        if not isinstance(thread, ThreadClass):
            raise TypeError(f"thread must be a Thread, not {type(thread).__name__}")
        if not isinstance(protocol, int) or isinstance(protocol, bool):
            raise TypeError(f"protocol must be a NETLINK, not {type(protocol).__name__}")
        local = SockaddrNl(0, groups)
        sock = await thread.task.socket(AF.NETLINK, SOCK.RAW | SOCK.NONBLOCK, protocol)
        try:
            await sock.setsockopt(SOL.NETLINK, NETLINK_OPT.EXT_ACK, await thread.ptr(Int32(1)))
            await sock.bind(await thread.ptr(local))
            bound, _ = await sock.getsockname(await thread.malloc(Sockaddr))
            address = await bound.read()
            if not isinstance(address, SockaddrNl):
                raise OSError(errno.EAFNOSUPPORT, f"getsockname gave {address!r}")
            afd = await thread.make_afd(sock)
            kernel = await thread.ptr(SockaddrNl())
        except BaseException:
            await sock.close()
            raise
        return cls(thread, afd, address, int(protocol), kernel)

    async def close(self) -> None:
        """Close the socket."""
        await self.afd.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _recv(self) -> bytes:
        buf, self._buffer = self._buffer, None
        if buf is None:
            buf = await self.thread.malloc(bytes, _RECV_SIZE)
        valid, rest = await self.afd.recv(buf)
        data = await valid.read()
        self._buffer = valid.merge(rest)
        return data

    async def receive(self) -> list[NetlinkMessage]:
        """The messages of the next datagram the socket gets, waiting for
        one: the notifications of the multicast groups it joined (sequence
        number 0).  Use a socket of its own for them: `request` skips
        whatever is not a reply to it, notifications included."""
        async with self._lock:
            return split_messages(await self._recv())

    async def _drain(self, seq: int) -> None:
        """Read and drop what is left of request `seq`'s replies, as far as
        the kernel has them (a dump left half-read goes on to its end)."""
        while True:
            try:
                buf, self._buffer = self._buffer, None
                if buf is None:
                    buf = await self.thread.malloc(bytes, _RECV_SIZE)
                try:
                    valid, rest = await self.afd.handle.recv(buf)
                except BaseException:
                    self._buffer = buf
                    raise
                data = await valid.read()
                self._buffer = valid.merge(rest)
            except BlockingIOError:
                return
            for message in split_messages(data):
                if message.header.seq == seq and message.header.type in (NLMSG.ERROR, NLMSG.DONE):
                    return

    async def request(
        self, type: int, payload: bytes = b"", flags: NLM_F = NLM_F.NONE, what: str | None = None
    ) -> list[NetlinkMessage]:
        """Send one request of message type `type` with `payload` (what
        follows the header) to the kernel, with NLM_F.REQUEST | NLM_F.ACK
        and `flags`; return its replies, in order, without the final
        acknowledgement or NLMSG_DONE.

        Replies are read up to the acknowledgement, or for a dump (NLM_F.DUMP
        in a GET request's `flags`) up to NLMSG_DONE.  An NLMSG_ERROR with
        an error, or a dump's NLMSG_DONE with one, raises OSError (the
        builtin subclass for its errno) naming `what` (default: the message
        type) and the kernel's extended-ack message; a dump the kernel marks inconsistent
        (NLM_F.DUMP_INTR: the objects changed while it ran) raises
        InterruptedError, to be retried."""
        if not isinstance(type, int) or isinstance(type, bool) or not 0 <= type <= 0xFFFF:
            raise ValueError(f"type must be a message type (0..65535), not {type!r}")
        if not isinstance(payload, bytes | bytearray):
            raise TypeError(f"payload must be bytes, not {_builtin_type(payload).__name__}")
        if not isinstance(flags, int) or isinstance(flags, bool) or not 0 <= flags <= 0xFFFF:
            raise ValueError(f"flags must be NLM_F, not {flags!r}")
        what = what or f"netlink message type {type}"
        async with self._lock:
            if self._unfinished is not None:
                await self._drain(self._unfinished)
                self._unfinished = None
            self._seq = self._seq % _U32 + 1
            seq = self._seq
            header = Nlmsghdr(NLMSG_HDRLEN + len(payload), type,
                              NLM_F.REQUEST | NLM_F.ACK | flags, seq, self.port_id)
            data = await self.thread.ptr(header.to_bytes() + bytes(payload))
            self._unfinished = seq
            await self.afd.retry(True, lambda: self.fd.sendto(data, self._kernel))
            replies: list[NetlinkMessage] = []
            interrupted = False
            while True:
                for message in split_messages(await self._recv()):
                    reply = message.header
                    if reply.seq != seq:
                        continue  # a reply to an earlier, abandoned request
                    if reply.type == NLMSG.ERROR:
                        code = -Nlmsgerr.from_bytes(message.payload).error
                        self._unfinished = None
                        if code:
                            raise _netlink_error(code, what, message)
                        return replies
                    # A dump (which the kernel never acknowledges) ends here.
                    # (Its NLM_F.DUMP bits are NEW's REPLACE | EXCL too: the
                    # flags cannot tell.)
                    if reply.type == NLMSG.DONE:
                        self._unfinished = None
                        code = (-struct.unpack_from("<i", message.payload)[0]
                                if len(message.payload) >= 4 else 0)
                        if code:
                            raise _netlink_error(code, what, message)
                        if interrupted:
                            raise InterruptedError(
                                errno.EINTR, f"dump interrupted: the objects changed ({what})")
                        return replies
                    if reply.type in (NLMSG.NOOP, NLMSG.OVERRUN):
                        continue
                    if reply.flags & NLM_F.DUMP_INTR:
                        interrupted = True
                    replies.append(message)

