"""AsyncChildProcess: waiting for a child through its pidfd.

A child's pidfd becomes readable when the child exits.  It is registered in
the epoller of the child's parent thread (the thread whose process cloned
it, the only one that may wait for it), so waiting needs no SIGCHLD
handler, and no process-wide `wait` can steal another's child.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsyscall.epoller import AsyncFileDescriptor
from rsyscall.signal import SIG
from rsyscall.struct import CInt
from rsyscall.sys.wait import CalledProcessError, ChildState, P, Siginfo, W

if TYPE_CHECKING:
    from rsyscall.handle import ChildProcess
    from rsyscall.thread import Thread

__all__ = ["AsyncChildProcess"]


class AsyncChildProcess:
    """A child process of `thread`, to wait for, signal, or renice.

    `process` is the `rsyscall.handle.ChildProcess` (pid and pidfd).  Once
    the child has been waited for, it is reaped, and its final state is
    remembered: waiting again returns it."""

    def __init__(self, process: ChildProcess, thread: Thread, command: object = None) -> None:
        self.process = process
        self.thread = thread
        self.command = command
        # The pidfd's registration in the parent thread's epoller, made on
        # first wait.
        self._afd: AsyncFileDescriptor | None = None
        self._state: ChildState | None = None

    def __repr__(self) -> str:
        state = f", {self._state!r}" if self._state is not None else ""
        return f"AsyncChildProcess(pid={self.process.pid}{state})"

    @property
    def pid(self) -> int:
        """The child's pid, as its parent thread sees it."""
        return self.process.pid

    @property
    def state(self) -> ChildState | None:
        """The final state, once the child has been waited for."""
        return self._state

    async def waitpid(self, options: W = W.EXITED) -> ChildState:
        """Wait until the child changes state as `options` ask (waitid(2)
        on its pidfd), and return that state.

        Only exits wake the wait (a pidfd signals nothing else), so with
        W.STOPPED or W.CONTINUED a stop is reported only if it already
        happened.  An exited child is reaped, unless W.NOWAIT is given."""
        if self._state is not None:
            return self._state
        pidfd = self.process.pidfd
        if pidfd is None:
            raise ValueError("this child has no pidfd to wait on")
        if self._afd is None:
            self._afd = await self.thread.make_afd(pidfd)
        task = self.thread.task

        async def attempt() -> ChildState:
            infop = await self.thread.malloc(Siginfo)
            info = await (await task.waitid(P.PIDFD, pidfd, infop, options | W.NOHANG)).read()
            if info.pid == 0:
                raise BlockingIOError
            return ChildState.from_siginfo(info)

        state = await self._afd.retry(False, attempt)
        if state.died() and not options & W.NOWAIT:
            self._reaped(state)
        return state

    def _reaped(self, state: ChildState) -> None:
        self._state = state
        self.process.reaped = True
        self.process.keep = None
        afd, self._afd = self._afd, None
        if afd is not None:
            afd.epoller.forget(afd._ident)

    async def check(self) -> ChildState:
        """Wait for the child to exit; its state if it exited 0, else
        raise `rsyscall.sys.wait.CalledProcessError`."""
        state = await self.waitpid(W.EXITED)
        if not state.clean():
            raise CalledProcessError(state, self.command)
        return state

    async def kill(self, sig: SIG = SIG.KILL) -> None:
        """Send `sig` to the child (pidfd_send_signal(2)).  After it has been
        reaped, raises ProcessLookupError."""
        if self._state is not None or self.process.pidfd is None:
            raise ProcessLookupError(f"child {self.pid} was already reaped")
        await self.process.pidfd.pidfd_send_signal(sig)

    async def setpriority(self, prio: CInt) -> None:
        """setpriority(2) of the child."""
        await self.process.setpriority(prio)

    async def getpriority(self) -> int:
        """getpriority(2) of the child: its nice value."""
        return await self.process.getpriority()

