"""<sys/socket.h>: sockets, addresses, and messages with ancillary data.

`Task.socket` and `Task.socketpair` make sockets (always close-on-exec);
the rest are `FileDescriptor` methods.  Addresses are `Sockaddr`
subclasses: `SockaddrIn` (rsyscall.netinet.ip), `SockaddrIn6`
(rsyscall.netinet.in_), `SockaddrUn` (rsyscall.sys.un).  A
`Pointer[Sockaddr]` from `thread.malloc(Sockaddr)` has room for any of
them, and reading it gives the right subclass.

The `socklen_t` arguments are never passed: pointers know their sizes, and
the value-result lengths of accept, getsockname and friends are handled
inside, which then split the address buffer into `(valid, rest)`.

`struct msghdr` is three classes, the one deviation from the headers the
library makes (the one the translation rules allow): `SendMsghdr` for sendmsg,
`RecvMsghdr` for recvmsg, and `RecvMsghdrOut` for what recvmsg writes back.

setsockopt(2) and getsockopt(2) take the options of `SO` (and of IP, TCP
and IPV6 in rsyscall.netinet), whose values hold no addresses.  Options
whose values do (SO_ATTACH_FILTER, TCP_ZEROCOPY_RECEIVE, the netfilter
and AF_XDP ones) go through `unsafe_setsockopt` / `unsafe_getsockopt`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, overload

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.base.fd import FDPairSerializer
from rsyscall.memory.allocator import Allocation
from rsyscall.memory.pointer import (
    LinearPointer,
    Pointer,
    ReadablePointer,
    WrittenPointer,
    borrow,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import (
    CInt,
    FixedSize,
    HasSerializer,
    Immutable,
    Int32,
    Layout,
    Serializer,
    Struct,
    check_fields,
)
from rsyscall.sys.time import Timeval
from rsyscall.sys.uio import IovecList, restore_buffers, split_buffers, take_buffers

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor
    from rsyscall.linux.netlink import NETLINK_OPT
    from rsyscall.netinet.in_ import IPPROTO, IPV6
    from rsyscall.netinet.ip import IP
    from rsyscall.netinet.tcp import TCP

__all__ = [
    "AF",
    "SOCK",
    "MSG",
    "SHUT",
    "SOL",
    "SO",
    "SCM",
    "Linger",
    "Ucred",
    "Sockaddr",
    "GenericSockaddr",
    "Socketpair",
    "SendMsghdr",
    "RecvMsghdr",
    "RecvMsghdrOut",
    "Cmsg",
    "CmsgSCMRights",
    "CmsgList",
    "SocketTask",
    "SocketFileDescriptor",
]

T = TypeVar("T")
A = TypeVar("A", bound="Sockaddr")


class AF(IntEnum):
    """Address families (socket(2) domain)."""

    UNSPEC = 0
    UNIX = 1
    INET = 2
    INET6 = 10
    NETLINK = 16
    PACKET = 17
    VSOCK = 40


AF.LOCAL = AF.UNIX  # type: ignore[attr-defined]  # the POSIX name


class SOCK(IntFlag):
    """Socket types, with the flags socket(2) lets you or into them."""

    NONE = 0
    STREAM = 1
    DGRAM = 2
    RAW = 3
    RDM = 4
    SEQPACKET = 5
    PACKET = 10
    NONBLOCK = 0o4000
    CLOEXEC = 0o2000000


class MSG(IntFlag):
    """send(2) and recv(2) flags."""

    NONE = 0
    OOB = 0x1
    PEEK = 0x2
    DONTROUTE = 0x4
    CTRUNC = 0x8
    TRUNC = 0x20
    DONTWAIT = 0x40
    EOR = 0x80
    WAITALL = 0x100
    CONFIRM = 0x800
    ERRQUEUE = 0x2000
    NOSIGNAL = 0x4000
    MORE = 0x8000
    CMSG_CLOEXEC = 0x40000000


class SHUT(IntEnum):
    """shutdown(2) how."""

    RD = 0
    WR = 1
    RDWR = 2


class SOL(IntEnum):
    """Socket option levels defined here; protocol levels are IPPROTO values
    (rsyscall.netinet.in_)."""

    SOCKET = 1
    NETLINK = 270  # netlink(7)'s options: rsyscall.linux.netlink.NETLINK_OPT


class SO(IntEnum):
    """SOL_SOCKET options (socket(7))."""

    DEBUG = 1
    REUSEADDR = 2
    TYPE = 3
    ERROR = 4
    DONTROUTE = 5
    BROADCAST = 6
    SNDBUF = 7
    RCVBUF = 8
    KEEPALIVE = 9
    OOBINLINE = 10
    PRIORITY = 12
    LINGER = 13
    REUSEPORT = 15
    PASSCRED = 16
    PEERCRED = 17
    RCVLOWAT = 18
    SNDLOWAT = 19
    RCVTIMEO = 20
    SNDTIMEO = 21
    BINDTODEVICE = 25
    ACCEPTCONN = 30
    MARK = 36
    PROTOCOL = 38
    DOMAIN = 39
    PEEK_OFF = 42


class SCM(IntEnum):
    """Ancillary message types at level SOL_SOCKET."""

    RIGHTS = 1
    CREDENTIALS = 2


# ---- addresses ----


_FAMILY = struct.Struct("<H")
_SOCKADDR_DATA = 126  # sockaddr_storage after the family


class Sockaddr(Struct):
    """Any socket address.  `thread.malloc(Sockaddr)` makes room for any
    family (struct sockaddr_storage); reading gives the right subclass."""

    __slots__ = ()
    layout: ClassVar[Layout] = Layout(
        "struct sockaddr_storage", [("ss_family", "H"), ("_ss_padding", "126x")]
    )
    family: ClassVar[AF] = AF.UNSPEC
    _families: ClassVar[dict[int, type[Sockaddr]]] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is Sockaddr:
            raise TypeError("Sockaddr is abstract; make a subclass such as SockaddrIn")
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        family = cls.__dict__.get("family")
        if isinstance(family, AF):
            Sockaddr._families[family] = cls

    def to_bytes(self) -> bytes:
        raise NotImplementedError("Sockaddr is abstract; use a subclass such as SockaddrIn")

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < 2:
            raise ValueError(f"a socket address needs at least 2 bytes, got {len(data)}")
        (family,) = _FAMILY.unpack_from(data)
        subclass = Sockaddr._families.get(family, GenericSockaddr)
        if cls is not Sockaddr and not issubclass(subclass, cls):
            raise ValueError(f"address family {family} is not a {cls.__name__}")
        return subclass._parse(data)  # type: ignore[return-value]

    @classmethod
    def _parse(cls, data: bytes) -> Sockaddr:
        raise NotImplementedError


class GenericSockaddr(Sockaddr):
    """An address of a family this library has no class for: the family and
    the bytes after it."""

    __slots__ = ("data", "generic_family")

    def __init__(self, family: int, data: bytes = b"") -> None:
        self.generic_family = family
        check_fields(self, (("generic_family", "H"),))
        if not isinstance(data, bytes):
            raise TypeError(f"GenericSockaddr.data must be bytes, not {type(data).__name__}")
        if len(data) > _SOCKADDR_DATA:
            raise ValueError(f"GenericSockaddr.data of {len(data)} bytes: at most {_SOCKADDR_DATA}")
        self.data = data

    # The class-level family of the other subclasses is per address here.
    @property
    def family(self) -> int:  # type: ignore[override]
        """This address's family (which may be no AF this library knows)."""
        return self.generic_family

    def to_bytes(self) -> bytes:
        return _FAMILY.pack(self.generic_family) + self.data

    @classmethod
    def _parse(cls, data: bytes) -> GenericSockaddr:
        return cls(_FAMILY.unpack_from(data)[0], data[2:])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, GenericSockaddr)
            and (self.generic_family, self.data) == (other.generic_family, other.data)
        )

    def __hash__(self) -> int:
        return hash((self.generic_family, self.data))

    def __repr__(self) -> str:
        return f"GenericSockaddr({self.generic_family}, {self.data!r})"


class Socketpair(HasSerializer, FixedSize):
    """The `int sv[2]` of socketpair(2): two connected sockets."""

    __slots__ = ("first", "second")

    def __init__(self, first: FileDescriptor, second: FileDescriptor) -> None:
        self.first = first
        self.second = second

    def __iter__(self) -> Any:
        return iter((self.first, self.second))

    def __getitem__(self, index: int) -> FileDescriptor:
        return (self.first, self.second)[index]

    def __repr__(self) -> str:
        return f"Socketpair(first={self.first!r}, second={self.second!r})"

    @classmethod
    def sizeof(cls) -> int:
        return 8

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[Socketpair]:
        return FDPairSerializer(task, Socketpair)


def type_name(value: object) -> str:
    return type(value).__name__


# ---- ancillary data ----

_CMSGHDR = struct.Struct("<Qii")


def _cmsg_align(length: int) -> int:
    return (length + 7) & ~7


class Cmsg(Immutable):
    """One ancillary message of a kind without its own class: level, type,
    data.  Immutable, like every value written to memory."""

    __slots__ = ("data", "level", "type")
    level: int
    type: int
    data: bytes

    def __init__(self, level: int, type: int, data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError(f"Cmsg data must be bytes, not {type_name(data)}")
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "data", data)

    def _data(self, task: BaseTask) -> bytes:
        return self.data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cmsg) and (self.level, self.type, self.data) == (
            other.level, other.type, other.data)

    def __hash__(self) -> int:
        return hash((self.level, self.type, self.data))

    def __repr__(self) -> str:
        return f"Cmsg({self.level}, {self.type}, {self.data!r})"


class CmsgSCMRights(tuple["FileDescriptor", ...]):
    """SCM_RIGHTS: file descriptors passed over a unix socket.

    Sending, the fds must be in the sending task's table.  Receiving, the
    tuple in a RecvMsghdr's control buffer only makes room (one int per fd);
    the fds that arrive are new handles in the receiving task, created
    close-on-exec.  Immutable, like every value written to memory."""

    __slots__ = ()
    level: ClassVar[int] = SOL.SOCKET
    type: ClassVar[int] = SCM.RIGHTS

    def __new__(cls, fds: Iterable[FileDescriptor] = ()) -> Self:
        self = super().__new__(cls, fds)
        for fd in self:
            if not isinstance(fd, BaseFileDescriptor):
                raise TypeError(f"CmsgSCMRights holds FileDescriptors, not {type(fd).__name__}")
        return self

    def __repr__(self) -> str:
        return f"CmsgSCMRights({list(self)!r})"

    def _data(self, task: BaseTask) -> bytes:
        for fd in self:
            if fd.task.fd_table is not task.fd_table:
                raise ValueError("an fd in CmsgSCMRights is not in this task's fd table")
        return struct.pack(f"<{len(self)}i", *(fd.number for fd in self))


class _CmsgListSerializer(Serializer["CmsgList"]):
    __slots__ = ("task",)

    def __init__(self, task: BaseTask) -> None:
        self.task = task

    def to_bytes(self, value: CmsgList) -> bytes:
        if not isinstance(value, CmsgList):
            raise TypeError(f"expected a CmsgList, got {type(value).__name__}")
        parts = []
        for cmsg in value:
            data = cmsg._data(self.task)
            header = _CMSGHDR.pack(_CMSGHDR.size + len(data), cmsg.level, cmsg.type)
            padding = _cmsg_align(len(data)) - len(data)
            parts.append(header + data + b"\0" * padding)
        return b"".join(parts)

    def from_bytes(self, data: bytes) -> CmsgList:
        result: list[Cmsg | CmsgSCMRights] = []
        offset = 0
        while offset + _CMSGHDR.size <= len(data):
            length, level, type_ = _CMSGHDR.unpack_from(data, offset)
            if length < _CMSGHDR.size:
                raise ValueError(f"corrupt control message: cmsg_len {length}")
            body = data[offset + _CMSGHDR.size : offset + length]
            if level == SOL.SOCKET and type_ == SCM.RIGHTS:
                numbers = struct.unpack(f"<{len(body) // 4}i", body[: len(body) // 4 * 4])
                result.append(CmsgSCMRights(self.task.make_fd(n) for n in numbers))
            else:
                result.append(Cmsg(level, type_, body))
            offset += _cmsg_align(length)
        return CmsgList(result)


class CmsgList(tuple["Cmsg | CmsgSCMRights", ...], HasSerializer):
    """The control buffer of a msghdr: ancillary messages in order.
    Immutable, like every value written to memory."""

    __slots__ = ()

    def __new__(cls, messages: Iterable[Cmsg | CmsgSCMRights] = ()) -> Self:
        self = super().__new__(cls, messages)
        for message in self:
            if not isinstance(message, Cmsg | CmsgSCMRights):
                raise TypeError(
                    f"a CmsgList holds Cmsg or CmsgSCMRights, not {type(message).__name__}"
                )
        return self

    def __repr__(self) -> str:
        return f"CmsgList({list(self)!r})"

    @classmethod
    def get_serializer(cls, task: BaseTask) -> Serializer[CmsgList]:
        return _CmsgListSerializer(task)


# ---- msghdr, in three parts ----


_MSGHDR_LAYOUT = Layout(
    "struct msghdr",
    [
        ("msg_name", "Q"),
        ("msg_namelen", "I"),
        ("_pad1", "4x"),
        ("msg_iov", "Q"),
        ("msg_iovlen", "Q"),
        ("msg_control", "Q"),
        ("msg_controllen", "Q"),
        ("msg_flags", "i"),
        ("_pad2", "4x"),
    ],
)


def _address_size(ptr: Pointer[Any] | None) -> tuple[int, int]:
    if ptr is None:
        return 0, 0
    if not isinstance(ptr, Pointer):
        raise TypeError(f"expected a Pointer or None, got {type(ptr).__name__}")
    alloc = ptr._live()
    return alloc.address, alloc.size


def _iov_address_count(iov: WrittenPointer[IovecList]) -> tuple[int, int]:
    if not isinstance(iov, WrittenPointer) or not isinstance(iov.value, IovecList):
        raise TypeError("iov must be a pointer to an IovecList, from thread.ptr(IovecList([...]))")
    return iov._live().address, len(iov.value)


def _check_msghdr(
    owner: str, name: object, iov: object, control: object, kind: type[Pointer[Any]]
) -> None:
    for field, value in (("name", name), ("control", control)):
        if value is not None and not isinstance(value, kind):
            raise TypeError(
                f"{owner}.{field} must be a {kind.__name__} or None, not {type(value).__name__}"
            )
    if not isinstance(iov, WrittenPointer) or not isinstance(iov.value, IovecList):
        raise TypeError(
            f"{owner}.iov must be a pointer to an IovecList, from thread.ptr(IovecList([...]))"
        )


def _msghdr_bytes(
    name: Pointer[Any] | None, iov: WrittenPointer[IovecList], control: Pointer[Any] | None
) -> bytes:
    name_address, namelen = _address_size(name)
    iov_address, iovlen = _iov_address_count(iov)
    control_address, controllen = _address_size(control)
    return _MSGHDR_LAYOUT.struct.pack(
        name_address, namelen, iov_address, iovlen, control_address, controllen, 0
    )


# The msghdr classes are immutable: sendmsg and recvmsg take the buffers
# the Python value names, and the kernel uses the addresses written to
# memory, which must stay the same ones.


class SendMsghdr(Immutable, Struct):
    """`struct msghdr` for sendmsg(2): an optional destination address, the
    buffers to send, and optional ancillary messages."""

    __slots__ = ("control", "iov", "name")
    layout: ClassVar[Layout] = _MSGHDR_LAYOUT
    name: WrittenPointer[Any] | None
    iov: WrittenPointer[IovecList]
    control: WrittenPointer[CmsgList] | None

    def __init__(
        self,
        name: WrittenPointer[Any] | None,
        iov: WrittenPointer[IovecList],
        control: WrittenPointer[CmsgList] | None = None,
    ) -> None:
        _check_msghdr("SendMsghdr", name, iov, control, WrittenPointer)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "iov", iov)
        object.__setattr__(self, "control", control)

    def to_bytes(self) -> bytes:
        return _msghdr_bytes(self.name, self.iov, self.control)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        raise TypeError("a SendMsghdr cannot be read back; use the WrittenPointer's .value")


class RecvMsghdr(Immutable, Struct):
    """`struct msghdr` for recvmsg(2): optional room for the source address,
    the buffers to fill, and optional room for ancillary messages."""

    __slots__ = ("control", "iov", "name")
    layout: ClassVar[Layout] = _MSGHDR_LAYOUT
    name: Pointer[Any] | None
    iov: WrittenPointer[IovecList]
    control: Pointer[CmsgList] | None

    def __init__(
        self,
        name: Pointer[Any] | None,
        iov: WrittenPointer[IovecList],
        control: Pointer[CmsgList] | None = None,
    ) -> None:
        _check_msghdr("RecvMsghdr", name, iov, control, Pointer)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "iov", iov)
        object.__setattr__(self, "control", control)

    def to_bytes(self) -> bytes:
        return _msghdr_bytes(self.name, self.iov, self.control)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        raise TypeError("read the RecvMsghdrOut pointer recvmsg returns instead")


class RecvMsghdrOut:
    """What recvmsg(2) wrote back into the msghdr: the part of the name
    buffer holding the source address, the part of the control buffer
    holding ancillary messages (readable once: reading creates the passed
    fds' handles), and the message flags (MSG.TRUNC, MSG.CTRUNC...)."""

    __slots__ = ("control", "flags", "name")

    def __init__(
        self,
        name: ReadablePointer[Any] | None,
        control: LinearPointer[CmsgList] | None,
        flags: MSG,
    ) -> None:
        self.name = name
        self.control = control
        self.flags = flags

    def __repr__(self) -> str:
        return f"RecvMsghdrOut(name={self.name!r}, control={self.control!r}, flags={self.flags!r})"


class _RecvMsghdrOutSerializer(Serializer[RecvMsghdrOut]):
    """Owns the name and control buffers between recvmsg and the read of
    its msghdr, which hands them on as the valid parts of each."""

    __slots__ = ("control", "control_alloc", "name", "name_alloc", "task")

    def __init__(
        self,
        task: BaseTask,
        name: Pointer[Any] | None,
        name_alloc: Allocation | None,
        control: Pointer[CmsgList] | None,
        control_alloc: Allocation | None,
    ) -> None:
        self.task = task
        self.name = name
        self.name_alloc = name_alloc
        self.control = control
        self.control_alloc = control_alloc

    def to_bytes(self, value: RecvMsghdrOut) -> bytes:
        raise TypeError("a RecvMsghdrOut is only read")

    def from_bytes(self, data: bytes) -> RecvMsghdrOut:
        fields = _MSGHDR_LAYOUT.struct.unpack(data)
        namelen, controllen, flags = fields[1], fields[5], fields[6]
        name_out: ReadablePointer[Any] | None = None
        control_out: LinearPointer[CmsgList] | None = None
        if self.name is not None and self.name_alloc is not None:
            valid, _ = self.name._readable_split(
                self.name_alloc, min(namelen, self.name_alloc.size), self.task)
            name_out = valid
        if self.control is not None and self.control_alloc is not None:
            valid_alloc, _ = self.control_alloc.split(min(controllen, self.control_alloc.size))
            control_out = self.control._linear(valid_alloc, self.task)
        self.name_alloc = self.control_alloc = None
        # recvmsg always passes MSG_CMSG_CLOEXEC, and the kernel echoes it
        # back in msg_flags; it says nothing about the message, so drop it.
        return RecvMsghdrOut(name_out, control_out, MSG(flags & ~_MSG_CMSG_CLOEXEC))


def _check_send_parts(header: SendMsghdr, task: BaseTask) -> None:
    """Check that what a SendMsghdr points to is still live.

    The addresses of the iovec array, name and control buffer, and the fd
    numbers of SCM_RIGHTS messages, were written into memory when the
    pointers were made; sendmsg makes the kernel read them now.  A consumed
    pointer's memory may be freed and reused, and a closed fd's number may
    name another file: raise instead of sending either."""
    borrow(header.iov, task)
    if header.name is not None:
        borrow(header.name, task)
    if header.control is not None:
        borrow(header.control, task)
        for cmsg in getattr(header.control, "value", ()):
            if isinstance(cmsg, CmsgSCMRights):
                for fd in cmsg:
                    fd.number  # noqa: B018 (raises if the handle was closed)


# ---- the syscalls ----


_SYS_recvfrom = int(SYS.recvfrom)
_SYS_sendto = int(SYS.sendto)
_SOCK_CLOEXEC = int(SOCK.CLOEXEC)
_MSG_CMSG_CLOEXEC = int(MSG.CMSG_CLOEXEC)
_SOCKLEN = struct.Struct("<I")


# The socket options `setsockopt` and `getsockopt` take, by level: those
# whose value holds no address.  Each header module adds its own (SO here;
# IP, TCP and IPV6 in rsyscall.netinet, which the package imports), with
# the enum class of its option names and the value type of the options
# whose value is not a C int.
_OPTIONS: dict[int, set[int]] = {}
_OPTION_CLASSES: dict[int, type[IntEnum]] = {}
_OPTION_VALUES: dict[tuple[int, int], tuple[type, ...]] = {}


def _define_options(
    level: int, options: type[IntEnum], values: dict[int, tuple[type, ...]] | None = None
) -> None:
    """For header modules: the options of `level` whose values hold no
    addresses (a wrong entry would let the kernel write anywhere), as the
    enum class naming them; `values`, the pointer types each option's
    value may have when it is not a C int (`Int32`).  Raw `bytes` are
    always accepted."""
    _OPTIONS.setdefault(int(level), set()).update(int(option) for option in options)
    _OPTION_CLASSES[int(level)] = options
    for option, kinds in (values or {}).items():
        _OPTION_VALUES[int(level), int(option)] = kinds


def _check_option(call: str, level: object, optname: object, optval: object = None) -> None:
    for name, value in (("level", level), ("optname", optname)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an enum member or an int, not {type(value).__name__}")
    level_class = type(level)
    if isinstance(level, IntEnum) and level_class.__name__ not in ("SOL", "IPPROTO"):
        raise TypeError(f"level must be a SOL or IPPROTO, not {level_class.__name__}.{level.name}")
    names = _OPTION_CLASSES.get(level)  # type: ignore[call-overload]
    if isinstance(optname, IntEnum) and names is not None and not isinstance(optname, names):
        raise TypeError(
            f"optname {type(optname).__name__}.{optname.name} is no option of level {level!r}: "
            f"that level's options are {names.__name__}"
        )
    if optname not in _OPTIONS.get(level, ()):  # type: ignore[call-overload]
        raise ValueError(
            f"optname {optname} at level {level} is not a socket option the library knows to "
            f"hold no addresses: use unsafe_{call} if its value holds none, or only "
            "addresses of memory you own"
        )
    kind = getattr(optval, "_kind", None)
    if kind is not None:  # raw bytes and str pointers carry no kind: any option takes them
        kinds = _OPTION_VALUES.get((int(level), int(optname)), (Int32,))  # type: ignore[call-overload]
        if not kinds or not issubclass(kind, kinds):
            wanted = " or ".join(k.__name__ for k in (*kinds, bytes))
            raise TypeError(
                f"{call} {optname!r} takes a pointer to {wanted}, not to {kind.__name__}"
            )


class Linger(Struct):
    """`struct linger`, the value of SO.LINGER: whether `onoff` and for
    how many seconds (`linger`) close waits for unsent data."""

    __slots__ = ("linger", "onoff")
    layout: ClassVar[Layout] = Layout("struct linger", [("l_onoff", "i"), ("l_linger", "i")])

    def __init__(self, onoff: bool | int, linger: int = 0) -> None:
        # A bool is the natural value of a flag; stored as the C int.
        self.onoff = int(onoff) if isinstance(onoff, bool) else onoff
        self.linger = linger
        check_fields(self, (("onoff", "i"), ("linger", "i")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Linger) and (self.onoff, self.linger) == (
            other.onoff, other.linger
        )

    def __hash__(self) -> int:
        return hash((self.onoff, self.linger))

    def __repr__(self) -> str:
        return f"Linger(onoff={self.onoff}, linger={self.linger})"

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.onoff, self.linger)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a struct linger is {cls.layout.size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))


class Ucred(Struct):
    """`struct ucred`: a process's `pid`, `uid` and `gid`, the value of
    SO.PEERCRED (the peer of a unix socket, as its connect or
    socketpair saw it)."""

    __slots__ = ("gid", "pid", "uid")
    layout: ClassVar[Layout] = Layout("struct ucred", [("pid", "i"), ("uid", "I"), ("gid", "I")])

    def __init__(self, pid: int, uid: int, gid: int) -> None:
        self.pid = pid
        self.uid = uid
        self.gid = gid
        check_fields(self, (("pid", "i"), ("uid", "I"), ("gid", "I")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ucred) and (self.pid, self.uid, self.gid) == (
            other.pid, other.uid, other.gid
        )

    def __hash__(self) -> int:
        return hash((self.pid, self.uid, self.gid))

    def __repr__(self) -> str:
        return f"Ucred(pid={self.pid}, uid={self.uid}, gid={self.gid})"

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(self.pid, self.uid, self.gid)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) < cls.layout.size:
            raise ValueError(f"a struct ucred is {cls.layout.size} bytes, got {len(data)}")
        return cls(*cls.layout.struct.unpack_from(data))


_define_options(SOL.SOCKET, SO, {
    SO.LINGER: (Linger,),
    SO.RCVTIMEO: (Timeval,),
    SO.SNDTIMEO: (Timeval,),
    SO.PEERCRED: (Ucred,),
    SO.BINDTODEVICE: (str,),
})


class SocketTask(BaseTask):
    __slots__ = ()

    async def socket(self, domain: AF, type: SOCK, protocol: CInt = 0) -> FileDescriptor:
        """socket(2): a new socket; SOCK.CLOEXEC is always added to `type`."""
        number = await self.sysif.syscall(SYS.socket, domain, int(type) | _SOCK_CLOEXEC, protocol)
        return self.make_fd(number)

    async def socketpair(
        self, domain: AF, type: SOCK, protocol: CInt, sv: Pointer[Socketpair]
    ) -> ReadablePointer[Socketpair]:
        """socketpair(2): fill `sv` with two connected sockets (close-on-exec)."""
        alloc = take(sv, self, 8)
        try:
            await self.sysif.syscall(
                SYS.socketpair, domain, int(type) | _SOCK_CLOEXEC, protocol, alloc.address
            )
        except BaseException:
            restore(sv, alloc)
            raise
        return sv._readable(alloc, self)


class SocketFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def bind(self, addr: WrittenPointer[A]) -> None:
        """bind(2): give the socket the address `addr`."""
        alloc = borrow(addr, self.task)
        await self.task.sysif.syscall(SYS.bind, self.number, alloc.address, alloc.size)

    async def connect(self, addr: WrittenPointer[A]) -> None:
        """connect(2) to `addr`."""
        alloc = borrow(addr, self.task)
        await self.task.sysif.syscall(SYS.connect, self.number, alloc.address, alloc.size)

    async def listen(self, backlog: CInt) -> None:
        """listen(2) with queue length `backlog`."""
        await self.task.sysif.syscall(SYS.listen, self.number, backlog)

    async def shutdown(self, how: SHUT) -> None:
        """shutdown(2): shut down reading, writing, or both."""
        await self.task.sysif.syscall(SYS.shutdown, self.number, how)

    async def accept(self, flags: SOCK = SOCK.NONE) -> FileDescriptor:
        """accept4(2) without the peer address: the new connection's fd
        (close-on-exec; `flags` may add SOCK.NONBLOCK)."""
        number = await self.task.sysif.syscall(
            SYS.accept4, self.number, 0, 0, int(flags) | _SOCK_CLOEXEC
        )
        return self.task.make_fd(number)

    async def _addr_call(
        self, number: int, before: tuple[int, ...], addr: Pointer[A], after: tuple[int, ...]
    ) -> tuple[int, ReadablePointer[A], Pointer[A]]:
        """A syscall taking (fd, *before, addr, &addrlen, *after): returns its
        result and `addr` split into the part holding an address and the rest."""
        task = self.task
        fd = self.number
        alloc = take(addr, task)
        try:
            addrlen = await task.space.stage(_SOCKLEN.pack(alloc.size))
            result = await task.sysif.syscall(
                number, fd, *before, alloc.address, addrlen.address, *after
            )
            (length,) = _SOCKLEN.unpack(await task.space.transport.read(addrlen.address, 4))
        except BaseException:
            restore(addr, alloc)
            raise
        valid, rest = addr._readable_split(alloc, min(length, alloc.size), task)
        return result, valid, rest

    async def accept4(
        self, addr: Pointer[A], flags: SOCK = SOCK.NONE
    ) -> tuple[FileDescriptor, ReadablePointer[A], Pointer[A]]:
        """accept4(2): the new connection's fd (close-on-exec), and `addr`
        split into the part holding the peer's address and the rest."""
        number, valid, rest = await self._addr_call(
            SYS.accept4, (), addr, (int(flags) | _SOCK_CLOEXEC,)
        )
        return self.task.make_fd(number), valid, rest

    async def getsockname(self, addr: Pointer[A]) -> tuple[ReadablePointer[A], Pointer[A]]:
        """getsockname(2): the socket's own address, as the valid part of `addr`."""
        _, valid, rest = await self._addr_call(SYS.getsockname, (), addr, ())
        return valid, rest

    async def getpeername(self, addr: Pointer[A]) -> tuple[ReadablePointer[A], Pointer[A]]:
        """getpeername(2): the connected peer's address, as the valid part of `addr`."""
        _, valid, rest = await self._addr_call(SYS.getpeername, (), addr, ())
        return valid, rest

    async def setsockopt(
        self,
        level: SOL | IPPROTO,
        optname: SO | IP | TCP | IPV6 | NETLINK_OPT,
        optval: ReadablePointer[Any],
    ) -> None:
        """setsockopt(2): set option `optname` at `level` (SOL.SOCKET or an
        IPPROTO) to the value at `optval`, which is only read.

        Only the options the library lists are taken (ValueError for the
        rest): those of `SO` at SOL.SOCKET, of IP, TCP and IPV6
        (rsyscall.netinet) at their IPPROTO levels and of NETLINK_OPT
        (rsyscall.linux.netlink) at SOL.NETLINK, whose values hold no
        addresses; an option of another level's enum is a TypeError.  The
        value is a pointer to the option's type: `Int32` for the int
        options, `Linger` for SO.LINGER, `Timeval` for SO.RCVTIMEO and
        SO.SNDTIMEO, `str` for SO.BINDTODEVICE and TCP.CONGESTION (raw
        `bytes` always do; TypeError for another type).  Others, such as
        SO_ATTACH_FILTER, whose struct holds the address of the filter, are
        `unsafe_setsockopt`'s."""
        _check_option("setsockopt", level, optname, optval)
        await self.unsafe_setsockopt(level, optname, optval)

    async def unsafe_setsockopt(
        self, level: CInt, optname: CInt, optval: ReadablePointer[Any]
    ) -> None:
        """setsockopt(2) with any option, unchecked: as `setsockopt`.

        Unsafe: the value of some options holds addresses the kernel reads
        or writes (SO_ATTACH_FILTER's filter, the netfilter tables' counters,
        AF_XDP's packet memory, which the kernel keeps and fills later).
        The caller must make sure every address in `optval` is of live
        memory in this task's address space, of the size the option
        uses, kept as long as the kernel uses it, that nothing else relies
        on the bytes the kernel writes there."""
        alloc = borrow(optval, self.task)
        await self.task.sysif.syscall(
            SYS.setsockopt, self.number, level, optname, alloc.address, alloc.size
        )

    async def getsockopt(
        self, level: SOL | IPPROTO, optname: SO | IP | TCP | IPV6 | NETLINK_OPT,
        optval: Pointer[T],
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """getsockopt(2): read option `optname` at `level` into `optval`
        (consumed); returns the part holding the value and the rest.

        Only the options the library lists are taken, with the value types
        of `setsockopt` (and `Ucred` for SO.PEERCRED), ValueError for the
        rest: some others read addresses from the buffer and write there
        (TCP_ZEROCOPY_RECEIVE's copy buffer); they are
        `unsafe_getsockopt`'s."""
        _check_option("getsockopt", level, optname, optval)
        return await self.unsafe_getsockopt(level, optname, optval)

    async def unsafe_getsockopt(
        self, level: CInt, optname: CInt, optval: Pointer[T]
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """getsockopt(2) with any option, unchecked: as `getsockopt`.

        Unsafe: for options whose buffer holds addresses (which it must
        then hold on input: pass an initialized pointer) the caller must
        make sure each is of live memory in this task's address space with
        room for what the kernel writes there, and that nothing else relies
        on those bytes."""
        task = self.task
        fd = self.number
        alloc = take(optval, task)
        try:
            optlen = await task.space.stage(_SOCKLEN.pack(alloc.size))
            await task.sysif.syscall(
                SYS.getsockopt, fd, level, optname, alloc.address, optlen.address
            )
            (length,) = _SOCKLEN.unpack(await task.space.transport.read(optlen.address, 4))
        except BaseException:
            restore(optval, alloc)
            raise
        return optval._readable_split(alloc, min(length, alloc.size), task)

    @overload
    async def send(
        self, buf: WrittenPointer[bytes], flags: MSG = MSG.NONE
    ) -> tuple[WrittenPointer[bytes], WrittenPointer[bytes]]: ...
    @overload
    async def send(
        self, buf: ReadablePointer[T], flags: MSG = MSG.NONE
    ) -> tuple[ReadablePointer[T], ReadablePointer[T]]: ...
    async def send(self, buf: ReadablePointer[Any], flags: MSG = MSG.NONE) -> tuple[Any, Any]:
        """send(2) from `buf`; returns the part sent and the rest."""
        return await self._send(buf, flags, 0, 0)

    @overload
    async def sendto(
        self, buf: WrittenPointer[bytes], dest_addr: WrittenPointer[A], flags: MSG = MSG.NONE
    ) -> tuple[WrittenPointer[bytes], WrittenPointer[bytes]]: ...
    @overload
    async def sendto(
        self, buf: ReadablePointer[T], dest_addr: WrittenPointer[A], flags: MSG = MSG.NONE
    ) -> tuple[ReadablePointer[T], ReadablePointer[T]]: ...
    async def sendto(
        self, buf: ReadablePointer[Any], dest_addr: WrittenPointer[Any], flags: MSG = MSG.NONE
    ) -> tuple[Any, Any]:
        """sendto(2) from `buf` to `dest_addr`; returns the part sent and the rest."""
        dest = borrow(dest_addr, self.task)
        return await self._send(buf, flags, dest.address, dest.size)

    async def _send(
        self, buf: ReadablePointer[Any], flags: MSG, dest: int, destlen: int
    ) -> tuple[Any, Any]:
        number = self.number
        alloc = borrow(buf, self.task)
        buf._alloc = None
        try:
            count = await self.task.sysif.syscall(
                _SYS_sendto, number, alloc.address, alloc.size, flags, dest, destlen
            )
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._unchanged_split(alloc, count)

    async def recv(
        self, buf: Pointer[T], flags: MSG = MSG.NONE
    ) -> tuple[ReadablePointer[T], Pointer[T]]:
        """recv(2) into `buf`; returns the part received into and the rest."""
        number = self.number
        alloc = take(buf, self.task)
        try:
            count = await self.task.sysif.syscall(
                _SYS_recvfrom, number, alloc.address, alloc.size, flags, 0, 0
            )
        except BaseException:
            restore(buf, alloc)
            raise
        return buf._readable_split(alloc, count, self.task)

    async def recvfrom(
        self, buf: Pointer[T], src_addr: Pointer[A], flags: MSG = MSG.NONE
    ) -> tuple[ReadablePointer[T], Pointer[T], ReadablePointer[A], Pointer[A]]:
        """recvfrom(2) into `buf`, the sender's address into `src_addr`;
        returns both buffers split into their valid parts and the rest."""
        task = self.task
        alloc = take(buf, task)
        try:
            count, addr_valid, addr_rest = await self._addr_call(
                _SYS_recvfrom, (alloc.address, alloc.size, flags), src_addr, ()
            )
        except BaseException:
            restore(buf, alloc)
            raise
        valid, rest = buf._readable_split(alloc, count, task)
        return valid, rest, addr_valid, addr_rest

    async def sendmsg(
        self, msg: WrittenPointer[SendMsghdr], flags: MSG = MSG.NONE
    ) -> tuple[list[ReadablePointer[bytes]], list[ReadablePointer[bytes]]]:
        """sendmsg(2): send the buffers, address and ancillary data of `msg`;
        returns the buffers (or parts) sent and the rest, as lists."""
        task = self.task
        fd = self.number
        header = msg.value if isinstance(msg, WrittenPointer) else None
        if not isinstance(header, SendMsghdr):
            raise TypeError("sendmsg needs a pointer to a SendMsghdr: thread.ptr(SendMsghdr(...))")
        msg_alloc = borrow(msg, task)
        _check_send_parts(header, task)
        buffers = header.iov.value
        allocs = take_buffers(buffers, task, readable=True)
        try:
            count = await task.sysif.syscall(SYS.sendmsg, fd, msg_alloc.address, flags)
        except BaseException:
            restore_buffers(buffers, allocs)
            raise
        return split_buffers(buffers, allocs, count, task, filled=False)

    async def recvmsg(
        self, msg: WrittenPointer[RecvMsghdr], flags: MSG = MSG.NONE
    ) -> tuple[
        list[ReadablePointer[bytes]], list[Pointer[bytes]], LinearPointer[RecvMsghdrOut]
    ]:
        """recvmsg(2): receive into the buffers of `msg`, and the source
        address and ancillary data into its name and control buffers.

        Returns the filled buffers (or parts), the rest, and a pointer to
        the msghdr as the kernel left it: read it once for a `RecvMsghdrOut`.
        Passed fds arrive close-on-exec."""
        task = self.task
        fd = self.number
        header = msg.value if isinstance(msg, WrittenPointer) else None
        if not isinstance(header, RecvMsghdr):
            raise TypeError("recvmsg needs a pointer to a RecvMsghdr: thread.ptr(RecvMsghdr(...))")
        # The iovec array's address was written into the msghdr; it must
        # still be live memory when the kernel reads it.
        borrow(header.iov, task)
        msg_alloc = take(msg, task)
        name_alloc = control_alloc = None
        allocs: list[Allocation] = []
        try:
            name_alloc = take(header.name, task) if header.name is not None else None
            control_alloc = take(header.control, task) if header.control is not None else None
            allocs = take_buffers(header.iov.value, task, readable=False)
            count = await task.sysif.syscall(
                SYS.recvmsg, fd, msg_alloc.address, int(flags) | _MSG_CMSG_CLOEXEC
            )
        except BaseException:
            restore(msg, msg_alloc)
            if name_alloc is not None and header.name is not None:
                restore(header.name, name_alloc)
            if control_alloc is not None and header.control is not None:
                restore(header.control, control_alloc)
            restore_buffers(header.iov.value, allocs)
            raise
        valid, rest = split_buffers(header.iov.value, allocs, count, task, filled=True)
        serializer = _RecvMsghdrOutSerializer(
            task, header.name, name_alloc, header.control, control_alloc
        )
        return valid, rest, LinearPointer(task, serializer, None, msg_alloc)
