"""The base classes the header modules build on.

`BaseTask`, `BaseFileDescriptor` and `BaseProcess` hold identity and
lifetime: which process, which fd table, which address space, when an fd is
closed.  The header modules add syscall methods to them as mixins, and
`rsyscall.handle` composes the mixins into `Task`, `FileDescriptor` and
`Process`.  Header modules refer to those composed classes only in
annotations; at run time they create handles through the owning task
(`task.make_fd`), so imports only go downward.
"""

from rsyscall.base.fd import BaseFileDescriptor, FDTable
from rsyscall.base.process import BaseProcess
from rsyscall.base.task import BaseTask

__all__ = ["BaseFileDescriptor", "BaseProcess", "BaseTask", "FDTable"]
