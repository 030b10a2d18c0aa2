"""<sys/ioctl.h>: ioctl(2), the FIO* requests that apply to any file, and
the _IOC encoding of request numbers.

ioctl(2) is one syscall with many meanings: the request decides whether
the third argument is nothing, an integer, or the address of memory the
kernel reads, writes, or both, and how much of it.  Passing an integer
where the kernel expects an address, or a buffer smaller than what it
writes, corrupts memory, so `fd.ioctl(request, arg)` only makes requests
it knows the argument of:

* Requests the library defines are in a table: the `FIO` requests here,
  the `SIOC` interface requests of rsyscall.net.if_ (netdevice(7)).  The
  table says whether each takes no argument, an integer, or a pointer to
  what type (or raw bytes), of what size, read or written by the kernel.
* Other requests whose number is _IOC-encoded with a direction (made with
  C's _IOR, _IOW or _IOWR; `ioc` here) say in their number how many bytes
  the kernel reads or writes: they take a pointer to at least that many.
* Anything else is refused with ValueError: an old unencoded request (the
  TCGETS... of ioctl_tty(2), most SIOC ones) or an `_IO` one (direction
  none), whose numbers look alike and say nothing about the argument,
  although many of them take an address.  For those there is
  `fd.unsafe_ioctl(request, arg)`, which passes an integer as it is.

With a pointer, `await fd.ioctl(request, ptr)` returns `(result,
pointer)`: if the kernel only reads the memory (an _IOW request, FIO.NBIO)
the pointer is borrowed, must be initialized, and is returned as it was;
if the kernel writes it (an _IOR request, FIO.NREAD) the pointer is
consumed (as any pointer a syscall writes into) and a `ReadablePointer` to the bytes it wrote
is returned (any more room is released); if it reads then writes (_IOWR,
the SIOCGIF* requests) the pointer must be initialized and is consumed,
and a `ReadablePointer` to all of it returned.  Without a pointer,
`await fd.ioctl(request)` or `await fd.ioctl(request, n)` returns the
result.

A caveat of the encoded route: the size in the number is the size of the
struct the request names.  A struct holding an address, or a count of
entries that follow it (FS_IOC_FIEMAP), lets the kernel reach memory the
number does not describe: build such structs only from pointers you own,
and prefer a typed method where the library has one.

Requests whose argument is a struct get typed methods in the header module
of their man page: `sock.siocgifflags(ifr)`... in rsyscall.net.if_.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar, overload

from rsyscall._enum import IntEnum
from rsyscall.base import BaseFileDescriptor
from rsyscall.memory.pointer import (
    Pointer,
    ReadablePointer,
    borrow,
    check_points_to,
    restore,
    take,
)
from rsyscall.near.sysnum import SYS
from rsyscall.struct import C_UINT, BytesSerializer, Int32, int_arg

__all__ = [
    "FIO",
    "IOC",
    "IoctlFileDescriptor",
    "ioc",
    "ioc_dir",
    "ioc_size",
]

T = TypeVar("T")


class FIO(IntEnum):
    """Requests every open file accepts (C: FIONREAD, FIONBIO...).

    The argument each takes, as `fd.ioctl(FIO.X, arg)`:"""

    # ptr: Pointer[Int32], written: how many bytes can be read without
    # blocking (sockets, pipes, ttys; ENOTTY on a file type without it).
    NREAD = 0x541B
    # ptr: WrittenPointer[Int32], read: nonzero sets O_NONBLOCK, zero clears it.
    NBIO = 0x5421
    # No argument: clear close-on-exec, as fcntl(F.SETFD, 0).
    NCLEX = 0x5450
    # No argument: set close-on-exec, as fcntl(F.SETFD, FD.CLOEXEC).
    CLEX = 0x5451
    # ptr: WrittenPointer[Int32], read: nonzero sets O_ASYNC, zero clears it.
    ASYNC = 0x5452


class IOC(IntEnum):
    """The direction of an _IOC-encoded request, from the caller's side (C:
    _IOC_NONE, _IOC_WRITE, _IOC_READ; or READ | WRITE): WRITE means the
    caller writes the argument and the kernel reads it, READ the kernel
    writes it."""

    NONE = 0
    WRITE = 1
    READ = 2


_NRBITS = 8
_TYPEBITS = 8
_SIZEBITS = 14
_DIRBITS = 2
_TYPESHIFT = _NRBITS
_SIZESHIFT = _TYPESHIFT + _TYPEBITS
_DIRSHIFT = _SIZESHIFT + _SIZEBITS


def ioc(direction: int, type: int, nr: int, size: int) -> int:
    """An encoded request number, as C's _IOC(dir, type, nr, size): `_IOR('T',
    0x30, unsigned int)` is `ioc(IOC.READ, ord("T"), 0x30, 4)`.  `direction`
    is an `IOC`, or IOC.READ | IOC.WRITE for _IOWR."""
    for name, value, bits in (
        ("direction", direction, _DIRBITS), ("type", type, _TYPEBITS),
        ("nr", nr, _NRBITS), ("size", size, _SIZEBITS),
    ):
        int_arg(name, value, (0, (1 << bits) - 1))
    return (direction << _DIRSHIFT) | (size << _SIZESHIFT) | (type << _TYPESHIFT) | nr


def ioc_dir(request: int) -> int:
    """The direction bits of `request` (C's _IOC_DIR): an `IOC` or READ | WRITE."""
    return (int_arg("request", request, C_UINT) >> _DIRSHIFT) & ((1 << _DIRBITS) - 1)


def ioc_size(request: int) -> int:
    """The argument size encoded in `request` (C's _IOC_SIZE)."""
    return (int_arg("request", request, C_UINT) >> _SIZESHIFT) & ((1 << _SIZEBITS) - 1)


# ---- what each known request takes ----

# Argument kinds: none, an integer value, or a pointer the kernel reads
# (IN), writes (OUT), or reads and then writes (INOUT); or UNSAFE: a request
# whose number looks encoded but whose argument holds an address or more
# bytes than the number says, refused as an unknown one is.
_NONE, _VALUE, _IN, _OUT, _INOUT, _UNSAFE = range(6)


class _Spec(NamedTuple):
    kind: int
    size: int = 0
    # What a pointer argument must have been made for; None: anything.
    types: tuple[type, ...] | None = None


_TABLE: dict[int, _Spec] = {}


def _define(requests: Mapping[int, _Spec]) -> None:
    """For header modules: add the requests they define to the table.
    Not for users (a wrong entry would let the kernel write anywhere); a
    request is defined once."""
    for request, spec in requests.items():
        if request in _TABLE and _TABLE[request] != spec:
            raise ValueError(f"ioctl request {request:#x} is already defined differently")
        _TABLE[int(request)] = spec


_INT32 = _Spec(_IN, 4, (Int32,))
_define({
    FIO.NREAD: _Spec(_OUT, 4, (Int32,)),
    FIO.NBIO: _INT32,
    FIO.NCLEX: _Spec(_NONE),
    FIO.CLEX: _Spec(_NONE),
    FIO.ASYNC: _INT32,
})

_DIRECTION_KIND = {IOC.WRITE: _IN, IOC.READ: _OUT, IOC.READ | IOC.WRITE: _INOUT}


def _request(request: object) -> int:
    if not isinstance(request, int) or isinstance(request, bool):
        raise TypeError(f"request must be an int, not {type(request).__name__}")
    if not 0 <= request <= C_UINT[1]:
        raise ValueError(f"request {request} outside 0..{C_UINT[1]:#x} (an unsigned int)")
    return int(request)


def _spec(request: int) -> _Spec:
    spec = _TABLE.get(request)
    if spec is not None:
        return spec
    direction, size = ioc_dir(request), ioc_size(request)
    if direction == IOC.NONE or size == 0:
        raise ValueError(
            f"ioctl request {request:#x} is not one the library knows, and its number "
            "does not say what its argument is (an old unencoded request or an _IO one "
            "look the same, and many take an address): use fd.unsafe_ioctl(request, arg), "
            "or a typed method if the library has one"
        )
    return _Spec(_DIRECTION_KIND[direction], size)


def _is_bytes(ptr: Pointer[Any]) -> bool:
    """A pointer to raw bytes (from malloc(bytes, n) or ptr(b"...")), which
    any request may take if it is big enough."""
    return ptr._kind is None and isinstance(ptr.serializer, BytesSerializer)


_SYS_ioctl = int(SYS.ioctl)
# The kernel takes an unsigned long: a C long or unsigned long fits.
_ARG_RANGE = (-(1 << 63), (1 << 64) - 1)


class IoctlFileDescriptor(BaseFileDescriptor):
    __slots__ = ()

    @overload
    async def ioctl(self, request: int, arg: int = 0) -> int: ...
    @overload
    async def ioctl(self, request: int, arg: Pointer[T]) -> tuple[int, ReadablePointer[T]]: ...
    async def ioctl(
        self, request: int, arg: int | Pointer[T] = 0
    ) -> int | tuple[int, ReadablePointer[T]]:
        """ioctl(2): perform device-specific `request` on this fd.

        `request` must be one the library knows or one _IOC-encoded with a
        direction (see the module docstring; others raise ValueError).
        Where it takes no argument or an integer, returns the result; a
        pointer there is a TypeError.  Where it takes memory, `arg` must be
        a pointer (an integer is a TypeError: it would be taken as an
        address) of at least the size the kernel uses (ValueError), to the
        right type for a request in the table (TypeError); returns
        `(result, pointer)`, the pointer consumed and replaced if the
        kernel writes it, borrowed and returned if it only reads it."""
        number = _request(request)
        spec = _spec(number)
        if spec.kind == _UNSAFE:
            raise ValueError(
                f"ioctl request {number:#x}'s argument holds an address or more bytes than "
                "its number says: use fd.unsafe_ioctl(request, arg), or a typed method if "
                "the library has one"
            )
        fd = self.number
        task = self.task
        if spec.kind == _NONE or spec.kind == _VALUE:
            if isinstance(arg, Pointer):
                what = "no argument" if spec.kind == _NONE else "an integer argument"
                raise TypeError(f"ioctl request {number:#x} takes {what}, not a pointer")
            value = int_arg("arg", arg, _ARG_RANGE)
            if spec.kind == _NONE and value != 0:
                raise ValueError(f"ioctl request {number:#x} takes no argument")
            return await task.sysif.syscall(_SYS_ioctl, fd, number, value)
        if not isinstance(arg, Pointer):
            raise TypeError(
                f"ioctl request {number:#x} takes a pointer, not {type(arg).__name__}: "
                "an integer would be taken as an address (fd.unsafe_ioctl passes one as it is)"
            )
        if spec.types is not None and not _is_bytes(arg):
            check_points_to(arg, spec.types)
        if spec.kind == _IN:
            alloc = borrow(arg, task, spec.size)  # type: ignore[arg-type]  # borrow checks
            result = await task.sysif.syscall(_SYS_ioctl, fd, number, alloc.address)
            return result, arg  # type: ignore[return-value]  # borrow checked it is readable
        if spec.kind == _INOUT and not isinstance(arg, ReadablePointer):
            raise TypeError(
                f"ioctl request {number:#x} reads its argument before writing it: pass an "
                "initialized pointer (from thread.ptr(value)), not an uninitialized Pointer"
            )
        alloc = take(arg, task, spec.size)
        try:
            result = await task.sysif.syscall(_SYS_ioctl, fd, number, alloc.address)
        except BaseException:
            restore(arg, alloc)
            raise
        if spec.kind == _OUT and alloc.size > spec.size:
            alloc, _ = alloc.split(spec.size)
        return result, arg._readable(alloc, task)

    async def unsafe_ioctl(self, request: int, arg: int = 0) -> int:
        """ioctl(2), raw: `request` and the integer `arg` are passed as they
        are, for the requests `ioctl` refuses (old unencoded ones, _IO ones,
        those whose argument holds addresses).  Returns the result.

        Unsafe: the library cannot know what the request does with `arg`.
        The caller must make sure that if the kernel takes `arg` (or any
        address inside the memory it points to) as an address, it is the
        address of memory in this fd's task's address space that is
        allocated for as many bytes as the kernel reads or writes there (a
        live pointer's `.address`, kept alive until the call returns, and
        longer if the kernel keeps the address), and that nothing else
        relies on the bytes the kernel writes: a `WrittenPointer`'s
        `.value` no longer describes them.  A wrong address corrupts
        memory, or crashes the process (the Python interpreter, for the
        local thread or a child sharing its memory)."""
        number = _request(request)
        if isinstance(arg, Pointer):
            raise TypeError("unsafe_ioctl takes an integer; pass a pointer's .address explicitly")
        value = int_arg("arg", arg, _ARG_RANGE)
        return await self.task.sysif.syscall(_SYS_ioctl, self.number, number, value)
