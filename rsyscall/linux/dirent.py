"""The old name of `rsyscall.dirent` (getdents64(2)'s SYNOPSIS names
<dirent.h>): everything is re-exported from there."""

from rsyscall.dirent import DT, Dirent, DirentFileDescriptor, DirentList

__all__ = ["DT", "Dirent", "DirentFileDescriptor", "DirentList"]
