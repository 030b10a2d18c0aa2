"""The old name of memfd_create(2)'s module: its SYNOPSIS names
<sys/mman.h>, so `Task.memfd_create` and `MFD` live in `rsyscall.sys.mman`
and are re-exported here."""

from rsyscall.sys.mman import MFD, MemfdTask

__all__ = ["MFD", "MemfdTask"]
