"""<linux/landlock.h>: Landlock (landlock(7)), unprivileged access control
of files, TCP ports and IPC scopes: landlock_create_ruleset(2),
landlock_add_rule(2), landlock_restrict_self(2).

A ruleset names the accesses it handles (denied unless a rule allows
them); rules allow some of them beneath a directory or on a port; then the
ruleset fd restricts its own task's process, for good (and everything it
later starts).  Do that in a child (`thread.clone()`), after
`prctl_set_no_new_privs()`:

    attr = await child.ptr(LandlockRulesetAttr(handled_access_fs=ACCESS_FS_ALL))
    ruleset = await child.task.landlock_create_ruleset(attr)
    rule = await child.ptr(LandlockPathBeneathAttr(ACCESS_FS_ALL, dirfd))
    await ruleset.landlock_add_rule(rule)
    await child.task.prctl_set_no_new_privs()
    await ruleset.landlock_restrict_self()

Each access flag needs a kernel of some Landlock ABI version
(`task.landlock_create_ruleset_version()`): handling an unknown one is
EINVAL.  The constants here go up to ABI 7 (Linux 6.15); the installed C
headers may define fewer of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.memory.pointer import WrittenPointer, borrow
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Immutable, Layout, Struct, check_fields

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = [
    "LANDLOCK_ACCESS_FS",
    "LANDLOCK_ACCESS_NET",
    "LANDLOCK_CREATE_RULESET",
    "LANDLOCK_RESTRICT_SELF",
    "LANDLOCK_RULE",
    "LANDLOCK_SCOPE",
    "LandlockFileDescriptor",
    "LandlockNetPortAttr",
    "LandlockPathBeneathAttr",
    "LandlockRulesetAttr",
    "LandlockTask",
]


class LANDLOCK_CREATE_RULESET(IntFlag):
    """Flags of landlock_create_ruleset(2) (C: LANDLOCK_CREATE_RULESET_*),
    each a query with its own method: `landlock_create_ruleset_version`,
    `landlock_create_ruleset_errata`."""

    NONE = 0
    VERSION = 1 << 0
    ERRATA = 1 << 1


class LANDLOCK_RULE(IntEnum):
    """The type of a rule (C: enum landlock_rule_type), given by the attr
    struct's class."""

    PATH_BENEATH = 1
    NET_PORT = 2  # ABI 4


class LANDLOCK_ACCESS_FS(IntFlag):
    """File system accesses (C: LANDLOCK_ACCESS_FS_*), the ABI version that
    brought each in brackets."""

    NONE = 0
    EXECUTE = 1 << 0
    WRITE_FILE = 1 << 1
    READ_FILE = 1 << 2
    READ_DIR = 1 << 3
    REMOVE_DIR = 1 << 4
    REMOVE_FILE = 1 << 5
    MAKE_CHAR = 1 << 6
    MAKE_DIR = 1 << 7
    MAKE_REG = 1 << 8
    MAKE_SOCK = 1 << 9
    MAKE_FIFO = 1 << 10
    MAKE_BLOCK = 1 << 11
    MAKE_SYM = 1 << 12
    REFER = 1 << 13  # [2]
    TRUNCATE = 1 << 14  # [3]
    IOCTL_DEV = 1 << 15  # [5]


class LANDLOCK_ACCESS_NET(IntFlag):
    """Network accesses (C: LANDLOCK_ACCESS_NET_*; ABI 4): binding and
    connecting TCP sockets to a port."""

    NONE = 0
    BIND_TCP = 1 << 0
    CONNECT_TCP = 1 << 1


class LANDLOCK_SCOPE(IntFlag):
    """IPC restricted to the domain (C: LANDLOCK_SCOPE_*; ABI 6):
    connecting to abstract unix sockets, and sending signals, to processes
    outside it."""

    NONE = 0
    ABSTRACT_UNIX_SOCKET = 1 << 0
    SIGNAL = 1 << 1


class LANDLOCK_RESTRICT_SELF(IntFlag):
    """Flags of landlock_restrict_self(2) (C: LANDLOCK_RESTRICT_SELF_*; ABI
    7): which denials the audit log records."""

    NONE = 0
    LOG_SAME_EXEC_OFF = 1 << 0
    LOG_NEW_EXEC_ON = 1 << 1
    LOG_SUBDOMAINS_OFF = 1 << 2


def _flags(name: str, value: object, cls: type[IntFlag]) -> IntFlag:
    if isinstance(value, cls):
        return value
    if isinstance(value, int) and not isinstance(value, bool | IntEnum | IntFlag) and value == 0:
        return cls(0)
    raise TypeError(f"{name} must be {cls.__name__} flags, not {type(value).__name__}")


class LandlockRulesetAttr(Struct, Immutable):
    """`struct landlock_ruleset_attr`: the file system and network accesses
    a ruleset handles, and the IPC it `scoped`.  The struct grew with the
    ABI (8 bytes in ABI 1, 16 in 4, 24 in 6); the library writes the newest
    layout, which older kernels accept as long as the fields they do not
    know are zero."""

    __slots__ = ("handled_access_fs", "handled_access_net", "scoped")
    layout = Layout("struct landlock_ruleset_attr", [
        ("handled_access_fs", "Q"), ("handled_access_net", "Q"), ("scoped", "Q"),
    ])
    handled_access_fs: LANDLOCK_ACCESS_FS
    handled_access_net: LANDLOCK_ACCESS_NET
    scoped: LANDLOCK_SCOPE

    def __init__(
        self,
        handled_access_fs: LANDLOCK_ACCESS_FS = LANDLOCK_ACCESS_FS.NONE,
        handled_access_net: LANDLOCK_ACCESS_NET = LANDLOCK_ACCESS_NET.NONE,
        scoped: LANDLOCK_SCOPE = LANDLOCK_SCOPE.NONE,
    ) -> None:
        object.__setattr__(self, "handled_access_fs",
                           _flags("handled_access_fs", handled_access_fs, LANDLOCK_ACCESS_FS))
        object.__setattr__(self, "handled_access_net",
                           _flags("handled_access_net", handled_access_net, LANDLOCK_ACCESS_NET))
        object.__setattr__(self, "scoped", _flags("scoped", scoped, LANDLOCK_SCOPE))

    def __repr__(self) -> str:
        return (f"LandlockRulesetAttr(handled_access_fs={self.handled_access_fs!r}, "
                f"handled_access_net={self.handled_access_net!r}, scoped={self.scoped!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LandlockRulesetAttr):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(
            int(self.handled_access_fs), int(self.handled_access_net), int(self.scoped)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        # A shorter (older) struct: the fields it lacks are zero.
        data = data[: cls.layout.size].ljust(cls.layout.size, b"\0")
        fs, net, scoped = cls.layout.struct.unpack(data)
        return cls(LANDLOCK_ACCESS_FS(fs), LANDLOCK_ACCESS_NET(net), LANDLOCK_SCOPE(scoped))


class LandlockPathBeneathAttr(Struct, Immutable):
    """`struct landlock_path_beneath_attr` (packed, 12 bytes): a
    LANDLOCK_RULE.PATH_BENEATH rule, allowing `allowed_access` on the file
    hierarchy under `parent_fd` (a directory, or just a file; O.PATH is
    enough).  Holds the fd handle; it must be in the ruleset's fd table."""

    __slots__ = ("allowed_access", "parent_fd")
    layout = Layout("struct landlock_path_beneath_attr", [
        ("allowed_access", "Q"), ("parent_fd", "i"),
    ])
    rule_type = LANDLOCK_RULE.PATH_BENEATH
    allowed_access: LANDLOCK_ACCESS_FS
    parent_fd: FileDescriptor

    def __init__(self, allowed_access: LANDLOCK_ACCESS_FS, parent_fd: FileDescriptor) -> None:
        if not isinstance(parent_fd, BaseFileDescriptor):
            raise TypeError(f"parent_fd must be a FileDescriptor, not {type(parent_fd).__name__}")
        object.__setattr__(self, "allowed_access",
                           _flags("allowed_access", allowed_access, LANDLOCK_ACCESS_FS))
        object.__setattr__(self, "parent_fd", parent_fd)

    def __repr__(self) -> str:
        return (f"LandlockPathBeneathAttr(allowed_access={self.allowed_access!r}, "
                f"parent_fd={self.parent_fd!r})")

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(int(self.allowed_access), self.parent_fd.number)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        raise TypeError(
            "a LandlockPathBeneathAttr names a FileDescriptor handle and cannot be read back "
            "from memory; use the WrittenPointer's .value"
        )


class LandlockNetPortAttr(Struct, Immutable):
    """`struct landlock_net_port_attr`: a LANDLOCK_RULE.NET_PORT rule,
    allowing `allowed_access` on TCP `port` (in host byte order)."""

    __slots__ = ("allowed_access", "port")
    layout = Layout("struct landlock_net_port_attr", [("allowed_access", "Q"), ("port", "Q")])
    rule_type = LANDLOCK_RULE.NET_PORT
    allowed_access: LANDLOCK_ACCESS_NET
    port: int

    def __init__(self, allowed_access: LANDLOCK_ACCESS_NET, port: int) -> None:
        object.__setattr__(self, "allowed_access",
                           _flags("allowed_access", allowed_access, LANDLOCK_ACCESS_NET))
        object.__setattr__(self, "port", port)
        check_fields(self, (("port", "H"),))

    def __repr__(self) -> str:
        return f"LandlockNetPortAttr(allowed_access={self.allowed_access!r}, port={self.port})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LandlockNetPortAttr):
            return NotImplemented
        return (self.allowed_access, self.port) == (other.allowed_access, other.port)

    def __hash__(self) -> int:
        return hash((self.allowed_access, self.port))

    def to_bytes(self) -> bytes:
        return self.layout.struct.pack(int(self.allowed_access), self.port)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        size = cls.layout.size
        if len(data) < size:
            raise ValueError(f"a LandlockNetPortAttr needs {size} bytes, got {len(data)}")
        access, port = cls.layout.struct.unpack(data[:size])
        return cls(LANDLOCK_ACCESS_NET(access), port)


_SYS_create = int(SYS.landlock_create_ruleset)
_SYS_add_rule = int(SYS.landlock_add_rule)
_SYS_restrict_self = int(SYS.landlock_restrict_self)


class LandlockTask(BaseTask):
    __slots__ = ()

    async def landlock_create_ruleset(
        self, attr: WrittenPointer[LandlockRulesetAttr]
    ) -> FileDescriptor:
        """`landlock_create_ruleset(2)`: a new ruleset fd (close-on-exec)
        handling the accesses of `attr` (its size is the pointer's).  EINVAL:
        an access this kernel does not know, or none at all; EOPNOTSUPP:
        Landlock is disabled."""
        if not isinstance(attr, WrittenPointer) or not isinstance(attr.value, LandlockRulesetAttr):
            raise TypeError("attr must be a written pointer to a LandlockRulesetAttr")
        alloc = borrow(attr, self)
        number = await self.sysif.syscall(_SYS_create, alloc.address, alloc.size, 0)
        return self.make_fd(number)

    async def landlock_create_ruleset_version(self) -> int:
        """`landlock_create_ruleset(2)` LANDLOCK_CREATE_RULESET_VERSION: the
        highest Landlock ABI version this kernel supports (EOPNOTSUPP if
        Landlock is built in but disabled)."""
        return await self.sysif.syscall(_SYS_create, 0, 0, LANDLOCK_CREATE_RULESET.VERSION)

    async def landlock_create_ruleset_errata(self) -> int:
        """`landlock_create_ruleset(2)` LANDLOCK_CREATE_RULESET_ERRATA: the
        bitmask of Landlock errata fixed in this kernel (EINVAL before
        Linux 6.15, which has no such query)."""
        return await self.sysif.syscall(_SYS_create, 0, 0, LANDLOCK_CREATE_RULESET.ERRATA)


class LandlockFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    async def landlock_add_rule(
        self,
        rule_attr: WrittenPointer[LandlockPathBeneathAttr] | WrittenPointer[LandlockNetPortAttr],
    ) -> None:
        """`landlock_add_rule(2)`: add a rule to this ruleset; the rule type
        is the attr's (PATH_BENEATH for a LandlockPathBeneathAttr, NET_PORT
        for a LandlockNetPortAttr).  EINVAL: an access the ruleset does not
        handle, or a directory-only access on a file; ENOMSG: no access at
        all; EBADFD: this fd is not a ruleset (or parent_fd not a file the
        rule can name)."""
        if not isinstance(rule_attr, WrittenPointer) or not isinstance(
            rule_attr.value, LandlockPathBeneathAttr | LandlockNetPortAttr
        ):
            raise TypeError(
                "rule_attr must be a written pointer to a LandlockPathBeneathAttr "
                "or a LandlockNetPortAttr"
            )
        value = rule_attr.value
        task = self.task
        if isinstance(value, LandlockPathBeneathAttr):
            parent = value.parent_fd
            if parent.closed:
                raise ValueError("rule_attr.parent_fd is closed")
            if parent.task.fd_table is not task.fd_table:
                raise ValueError("rule_attr.parent_fd is not in the ruleset's fd table")
        alloc = borrow(rule_attr, task)
        await task.sysif.syscall(_SYS_add_rule, self.number, value.rule_type, alloc.address, 0)

    async def landlock_restrict_self(
        self, flags: LANDLOCK_RESTRICT_SELF = LANDLOCK_RESTRICT_SELF.NONE
    ) -> None:
        """`landlock_restrict_self(2)`: confine this fd's process (the
        thread that makes the call) to this ruleset, for good, on top of any
        domain it is in.  Needs no_new_privs (`prctl_set_no_new_privs`) or
        CAP_SYS_ADMIN, else EPERM; E2BIG past 16 stacked domains."""
        await self.task.sysif.syscall(_SYS_restrict_self, self.number, flags)
