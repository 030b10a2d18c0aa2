"""<grp.h>: setgroups(2).

setgroups(2)'s SYNOPSIS names <grp.h>, so it lives here; its list type,
`GidList`, is getgroups(2)'s too and lives with it in rsyscall.unistd.

In a user namespace, setgroups is refused (OSError EPERM) once
/proc/pid/setgroups says "deny", which `thread.clone(CLONE.NEWUSER)`
writes for every new user namespace: an unprivileged process must deny it
before it may write its gid_map (user_namespaces(7)).
"""

from __future__ import annotations

from rsyscall.base import BaseTask
from rsyscall.memory.pointer import ReadablePointer, borrow, check_points_to
from rsyscall.near.sysnum import SYS
from rsyscall.unistd import GidList

__all__ = ["GrpTask"]

_GID_SIZE = 4


class GrpTask(BaseTask):
    __slots__ = ()

    async def setgroups(self, list: ReadablePointer[GidList] | None) -> None:
        """setgroups(2): make the gids in `list` this process's
        supplementary groups; the count comes from the pointer's size.
        None (or an empty GidList) clears them.  Any readable pointer to a
        GidList will do, such as the part getgroups filled."""
        if list is None:
            await self.sysif.syscall(SYS.setgroups, 0, 0)
            return
        check_points_to(list, GidList)
        alloc = borrow(list, self)
        if alloc.size % _GID_SIZE:
            raise ValueError(f"a pointer of {alloc.size} bytes holds no whole number of gids")
        await self.sysif.syscall(SYS.setgroups, alloc.size // _GID_SIZE, alloc.address)
