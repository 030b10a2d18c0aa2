"""BaseProcess: a process named by pid, as seen from one task."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rsyscall.handle import Task

__all__ = ["BaseProcess"]


class BaseProcess:
    """A process id, and the task whose syscalls name it.

    A pid means something only in a pid namespace; syscalls that take this
    process (kill, setpriority) are made through `task`, whose namespace the
    pid belongs to."""

    __slots__ = ("__weakref__", "pid", "task")

    def __init__(self, task: Task, pid: int) -> None:
        self.task = task
        self.pid = pid

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pid={self.pid})"
