"""<linux/if_tun.h>: TUN/TAP devices: network interfaces whose packets are
read and written through a file (/dev/net/tun).

Opening /dev/net/tun and making TUNSETIFF on the fd creates (or attaches
to) an interface in the opener's network namespace; each read(2) then
gives one packet the kernel sent out of it (an IP packet for IFF.TUN, an
Ethernet frame for IFF.TAP, with a 4-byte struct tun_pi before it unless
IFF.NO_PI), and each write(2) injects one:

    tun = await thread.task.open(await thread.ptr("/dev/net/tun"), O.RDWR)
    ifr = await (await tun.tunsetiff(
        await thread.ptr(Ifreq("tun0", flags=IFF.TUN | IFF.NO_PI)))).read()
    name = ifr.name  # the kernel's choice, for a name like "tun%d"

The TUN ioctls are typed as every ioctl is (rsyscall.sys.ioctl): those
taking an ifreq (SETIFF, GETIFF, SETQUEUE) take a pointer to an `Ifreq`
(rsyscall.net.if_), those taking an int by value (SETPERSIST, SETOWNER...)
an int, those taking a pointer to an int a pointer to an `Int32`; their
numbers say `int` for several of these, which is why the table has them.
TUNSETTXFILTER and TUNATTACHFILTER (variable-length filters, and a filter
holding an address) are left to `fd.unsafe_ioctl`.  The interface flags of
an ifreq read back here are this module's `IFF`: `IFF(ifr.flags)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsyscall._enum import IntEnum, IntFlag
from rsyscall.base import BaseFileDescriptor
from rsyscall.memory.pointer import Pointer, ReadablePointer, restore, take
from rsyscall.near.sysnum import SYS
from rsyscall.net.if_ import Ifreq, _check_ifreq
from rsyscall.struct import Int32
from rsyscall.sys.ioctl import _IN, _INOUT, _NONE, _OUT, _UNSAFE, _VALUE, _define, _Spec

if TYPE_CHECKING:
    from rsyscall.handle import FileDescriptor

__all__ = ["IFF", "TUN", "TunFileDescriptor"]


class IFF(IntFlag):
    """TUNSETIFF's ifr_flags (C: IFF_TUN...): the device kind (TUN, IP
    packets; TAP, Ethernet frames) and options.  NO_PI: no struct tun_pi
    before each packet.  (NOFILTER, a flag TUNGETFEATURES reports, has
    NO_PI's value.)"""

    NONE = 0
    TUN = 0x0001
    TAP = 0x0002
    NAPI = 0x0010
    NAPI_FRAGS = 0x0020
    NO_CARRIER = 0x0040
    MULTI_QUEUE = 0x0100
    ATTACH_QUEUE = 0x0200
    DETACH_QUEUE = 0x0400
    PERSIST = 0x0800
    NO_PI = 0x1000
    NOFILTER = 0x1000
    ONE_QUEUE = 0x2000
    VNET_HDR = 0x4000
    TUN_EXCL = 0x8000


class TUN(IntEnum):
    """The TUN/TAP ioctl requests (C: TUNSETIFF...); the comment says what
    `fd.ioctl(TUN.X, arg)` takes."""

    SETNOCSUM = 0x400454C8  # int value: nonzero disables checksums
    SETDEBUG = 0x400454C9  # int value
    SETIFF = 0x400454CA  # Ifreq, read and written (tunsetiff)
    SETPERSIST = 0x400454CB  # int value: nonzero keeps the device after close
    SETOWNER = 0x400454CC  # uid value
    SETLINK = 0x400454CD  # ARPHRD value
    SETGROUP = 0x400454CE  # gid value
    GETFEATURES = 0x800454CF  # Int32, written: the IFF flags this kernel takes
    SETOFFLOAD = 0x400454D0  # TUN_F_* value
    SETTXFILTER = 0x400454D1  # unsafe_ioctl: a variable-length struct tun_filter
    GETIFF = 0x800454D2  # Ifreq, written (tungetiff)
    GETSNDBUF = 0x800454D3  # Int32, written
    SETSNDBUF = 0x400454D4  # Int32, read
    ATTACHFILTER = 0x401054D5  # unsafe_ioctl: a sock_fprog holds the filter's address
    DETACHFILTER = 0x401054D6  # no argument
    GETVNETHDRSZ = 0x800454D7  # Int32, written
    SETVNETHDRSZ = 0x400454D8  # Int32, read
    SETQUEUE = 0x400454D9  # Ifreq, read: flags ATTACH_QUEUE or DETACH_QUEUE
    SETIFINDEX = 0x400454DA  # Int32, read
    GETFILTER = 0x801054DB  # 16 bytes (struct sock_fprog), written
    SETVNETLE = 0x400454DC  # Int32, read
    GETVNETLE = 0x800454DD  # Int32, written
    SETVNETBE = 0x400454DE  # Int32, read
    GETVNETBE = 0x800454DF  # Int32, written
    SETSTEERINGEBPF = 0x800454E0  # Int32 (a BPF program fd, or -1), read
    SETFILTEREBPF = 0x800454E1  # Int32 (a BPF program fd, or -1), read
    SETCARRIER = 0x400454E2  # Int32, read
    GETDEVNETNS = 0x54E3  # no argument; returns a new fd (tungetdevnetns)


_IFREQ = Ifreq.sizeof()
_INT_IN = _Spec(_IN, 4, (Int32,))
_INT_OUT = _Spec(_OUT, 4, (Int32,))
_define({
    TUN.SETNOCSUM: _Spec(_VALUE),
    TUN.SETDEBUG: _Spec(_VALUE),
    TUN.SETIFF: _Spec(_INOUT, _IFREQ, (Ifreq,)),
    TUN.SETPERSIST: _Spec(_VALUE),
    TUN.SETOWNER: _Spec(_VALUE),
    TUN.SETLINK: _Spec(_VALUE),
    TUN.SETGROUP: _Spec(_VALUE),
    TUN.GETFEATURES: _INT_OUT,
    TUN.SETOFFLOAD: _Spec(_VALUE),
    TUN.SETTXFILTER: _Spec(_UNSAFE),
    TUN.GETIFF: _Spec(_OUT, _IFREQ, (Ifreq,)),
    TUN.GETSNDBUF: _INT_OUT,
    TUN.SETSNDBUF: _INT_IN,
    TUN.ATTACHFILTER: _Spec(_UNSAFE),
    TUN.DETACHFILTER: _Spec(_NONE),
    TUN.GETVNETHDRSZ: _INT_OUT,
    TUN.SETVNETHDRSZ: _INT_IN,
    TUN.SETQUEUE: _Spec(_IN, _IFREQ, (Ifreq,)),
    TUN.SETIFINDEX: _INT_IN,
    TUN.GETFILTER: _Spec(_OUT, 16),
    TUN.SETVNETLE: _INT_IN,
    TUN.GETVNETLE: _INT_OUT,
    TUN.SETVNETBE: _INT_IN,
    TUN.GETVNETBE: _INT_OUT,
    TUN.SETSTEERINGEBPF: _INT_IN,
    TUN.SETFILTEREBPF: _INT_IN,
    TUN.SETCARRIER: _INT_IN,
    TUN.GETDEVNETNS: _Spec(_UNSAFE),  # returns an fd: tungetdevnetns
})

_SYS_ioctl = int(SYS.ioctl)


class TunFileDescriptor(BaseFileDescriptor):
    """The TUN/TAP ioctls of an fd of /dev/net/tun."""

    __slots__ = ()

    async def tunsetiff(self, ifr: ReadablePointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """ioctl(2) TUNSETIFF: make this /dev/net/tun fd the device named
        `ifr.name` (created if missing, in the network namespace the fd was
        opened in; an empty name or one like "tun%d" lets the kernel pick)
        with `ifr.flags` (this module's IFF: TUN or TAP, NO_PI...).
        Consumes `ifr` and returns it with the device's name.  EPERM
        without CAP_NET_ADMIN, EBUSY if the fd already has a device."""
        _check_ifreq(ifr, self.task)
        if not isinstance(ifr, ReadablePointer):
            raise TypeError("the ifreq must be initialized: pass thread.ptr(Ifreq(...))")
        alloc = take(ifr, self.task, _IFREQ)
        try:
            await self.task.sysif.syscall(_SYS_ioctl, self.number, TUN.SETIFF, alloc.address)
        except BaseException:
            restore(ifr, alloc)
            raise
        return ifr._readable(alloc, self.task)

    async def tungetiff(self, ifr: Pointer[Ifreq]) -> ReadablePointer[Ifreq]:
        """ioctl(2) TUNGETIFF: the name and flags (this module's IFF) of
        this fd's device, written into `ifr` (consumed; from
        `thread.malloc(Ifreq)`).  EBADFD before TUNSETIFF."""
        _check_ifreq(ifr, self.task)  # type: ignore[arg-type]  # any Pointer[Ifreq]
        alloc = take(ifr, self.task, _IFREQ)
        try:
            await self.task.sysif.syscall(_SYS_ioctl, self.number, TUN.GETIFF, alloc.address)
        except BaseException:
            restore(ifr, alloc)
            raise
        return ifr._readable(alloc, self.task)

    async def tunsetpersist(self, persist: bool) -> None:
        """ioctl(2) TUNSETPERSIST: whether this fd's device outlives the fd
        (a persistent one stays until deleted, or TUNSETPERSIST off)."""
        if not isinstance(persist, bool):
            raise TypeError(f"persist must be a bool, not {type(persist).__name__}")
        await self.task.sysif.syscall(_SYS_ioctl, self.number, TUN.SETPERSIST, int(persist))

    async def tungetdevnetns(self) -> FileDescriptor:
        """ioctl(2) TUNGETDEVNETNS: a new fd (close-on-exec) for the network
        namespace this fd's device is in.  EPERM without CAP_NET_ADMIN
        there."""
        number = await self.task.sysif.syscall(_SYS_ioctl, self.number, TUN.GETDEVNETNS, 0)
        return self.task.make_fd(number)
