"""<linux/audit.h>: the AUDIT_ARCH values that name a syscall ABI, as a
seccomp filter sees them in `SeccompData.arch` (rsyscall.linux.seccomp).

The arch is worth checking first in a filter: a process may make syscalls
through another ABI (the i386 one, on x86_64), whose numbers mean
different syscalls."""

from __future__ import annotations

from rsyscall._enum import IntEnum

__all__ = ["AUDIT_ARCH"]

_64BIT = 0x80000000
_LE = 0x40000000


class AUDIT_ARCH(IntEnum):
    """Syscall ABIs (C: AUDIT_ARCH_*): the ELF machine number, with bits for
    a 64-bit and a little-endian ABI."""

    X86_64 = 62 | _64BIT | _LE
    I386 = 3 | _LE
    AARCH64 = 183 | _64BIT | _LE
    RISCV64 = 243 | _64BIT | _LE
