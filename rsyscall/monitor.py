"""AsyncChildProcess: waiting for a child through its pidfds.

A child's pidfd becomes readable when the child exits.  Every child on our
host has one in the local process (`ChildProcess.local_pidfd`), registered
once in the local thread's epoller: that registration wakes waiters, and
tells a child thread's connection that its process is gone.  A child on
another host (an ssh thread's) has none: its pidfd in the parent's table
is registered in the parent thread's epoller instead, which blocks there.
The wait itself, waitid(2) on the pidfd in the parent's table, is made by
the parent thread, the only one the kernel lets reap the child.  No SIGCHLD handler, and no
process-wide `wait` can steal another's child.

If the parent can no longer make syscalls (it exec'd: a grandchild outlives
a child thread that became some program), the child can still be waited
for: once whoever is now its parent has reaped it, the kernel gives its
exit status to any holder of a pidfd (PIDFD_GET_INFO, Linux 6.15).
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from rsyscall._native import _raw
from rsyscall.epoller import AsyncFileDescriptor
from rsyscall.near.interface import SyscallHangup
from rsyscall.near.sysnum import SYS
from rsyscall.signal import SIG
from rsyscall.struct import CInt
from rsyscall.sys.epoll import EPOLL
from rsyscall.sys.wait import CLD, CalledProcessError, ChildState, P, Siginfo, W

if TYPE_CHECKING:
    from rsyscall.handle import ChildProcess
    from rsyscall.thread import Thread

__all__ = ["AsyncChildProcess"]

# PIDFD_GET_INFO from <linux/pidfd.h> (Linux 6.13; PIDFD_INFO_EXIT 6.15),
# newer than this system's headers, so written out: _IOWR(0xFF, 11, struct
# pidfd_info) with the first published, 64-byte struct.  Its fields: mask,
# cgroupid (u64); pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid,
# fsuid, fsgid (u32); exit_code (s32, a wait status).
_PIDFD_GET_INFO = 0xC040FF0B
_PIDFD_INFO_EXIT = 1 << 3
_PIDFD_INFO = struct.Struct("<QQ11Ii")
_SYS_ioctl = int(SYS.ioctl)


def _exit_status(pidfd: int, pid: int) -> ChildState | None:
    """The exit status of the reaped process `pidfd` (in the local process)
    names, as a ChildState of `pid`, or None if it has not been reaped yet.
    (The kernel reports no pid and no credentials for a reaped process.)"""
    buffer = bytearray(_PIDFD_INFO.size)
    buffer[:8] = _PIDFD_INFO_EXIT.to_bytes(8, "little")
    address = _address_of(buffer)
    try:
        _raw.syscall(_SYS_ioctl, pidfd, _PIDFD_GET_INFO, address)
    except OSError:
        return None  # ESRCH: exited but not reaped
    fields = _PIDFD_INFO.unpack(_raw.read_memory(address, _PIDFD_INFO.size))
    mask, uid, status = fields[0], fields[5], fields[-1]
    if not mask & _PIDFD_INFO_EXIT:
        return None
    if status & 0x7F:
        code = CLD.DUMPED if status & 0x80 else CLD.KILLED
        return ChildState(code, pid, uid, status & 0x7F)
    return ChildState(CLD.EXITED, pid, uid, (status >> 8) & 0xFF)


def _address_of(buffer: bytearray) -> int:
    import ctypes

    return ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))


class AsyncChildProcess:
    """A child process of `thread`, to wait for, signal, or renice.

    `process` is the `rsyscall.handle.ChildProcess` (pid and pidfds).  Once
    the child has been waited for, it is reaped: its state is remembered
    (waiting again returns it), and its pidfds are closed at once."""

    def __init__(self, process: ChildProcess, thread: Thread, command: object = None) -> None:
        self.process = process
        self.thread = thread
        self.command = command
        # The local pidfd's registration in the local epoller, made once.
        self._afd: AsyncFileDescriptor | None = None
        self._state: ChildState | None = None
        # Called (synchronously, from the epoller) once the child exits.
        self._on_exit: list[Callable[[], None]] = []

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

    def on_exit(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once the child has exited (from the epoll loop,
        or when it is reaped, whichever comes first)."""
        if self._state is not None:
            callback()
        else:
            self._on_exit.append(callback)

    def _exited(self) -> None:
        callbacks, self._on_exit = self._on_exit, []
        for callback in callbacks:
            callback()
        memory = self.process.memory
        if memory is not None:
            # Exited: it runs on nothing of ours any more.
            memory.release()

    async def watch(self) -> AsyncFileDescriptor:
        """The registration of the local pidfd in the local epoller (made on
        first use), whose edges mean the child exited; for a child on
        another host, of the parent's pidfd in the parent's epoller."""
        if self._afd is None:
            pidfd = self.process.local_pidfd
            if pidfd is not None:
                epoller = await self.thread.local.epoller()
            else:
                pidfd = self.process.pidfd
                if pidfd is None or pidfd.closed:
                    raise ValueError("this child has no pidfd to wait on")
                epoller = await self.thread.epoller()
            this = weakref.ref(self)

            def exited() -> None:
                live = this()
                if live is not None:
                    live._exited()

            ident, status = await epoller.register(pidfd, exited, EPOLL.IN | EPOLL.ET)
            if self._afd is None:
                self._afd = AsyncFileDescriptor(epoller, pidfd, ident, status)
            else:
                epoller.forget(ident)
        return self._afd

    async def waitpid(self, options: W = W.EXITED) -> ChildState:
        """Wait until the child changes state as `options` ask (waitid(2)
        on its pidfd), and return that state.

        Only exits wake the wait (a pidfd signals nothing else), so with
        W.STOPPED or W.CONTINUED a stop is reported only if it already
        happened.  Without W.STOPPED, the ptrace stops of a child this
        thread traces (`Process.ptrace_seize`) are left for the tracer's
        own waitid, which the kernel reports them to.  An exited child is
        reaped, unless W.NOWAIT is given.
        Cancelled, the wait kills and reaps the child first (as
        anyio.run_process does): a child is never left running unwatched."""
        if self._state is not None:
            return self._state
        if self.process.pidfd is None:
            raise ValueError("this child has no pidfd to wait on")
        try:
            state = await self._wait(options)
        except BaseException:
            if self._state is None:
                with anyio.CancelScope(shield=True):
                    await self._kill_and_reap()
            raise
        if state.died() and not options & W.NOWAIT:
            self._reaped(state)
        return state

    async def _wait(self, options: W) -> ChildState:
        afd = await self.watch()
        pidfd = self.process.pidfd
        assert pidfd is not None
        parent = self.thread
        task = parent.task

        async def attempt() -> ChildState:
            infop = await parent.malloc(Siginfo)
            # W.ALL: also a child whose exit signal is not SIGCHLD (clone3's
            # exit_signal), which waitid would otherwise pass over.
            flags = options | W.NOHANG | W.ALL
            if self.process.traced and not flags & (W.STOPPED | W.NOWAIT):
                # Its tracer's waitid reports its ptrace stops even without
                # W.STOPPED: look first, and leave a stop for the tracer.
                peek = await (await task.waitid(
                    P.PIDFD, pidfd, infop, flags | W.NOWAIT)).read()
                if peek.pid == 0 or peek.code in (CLD.TRAPPED, CLD.STOPPED):
                    raise BlockingIOError
                infop = await parent.malloc(Siginfo)
            info = await (await task.waitid(P.PIDFD, pidfd, infop, flags)).read()
            if info.pid == 0:
                raise BlockingIOError
            return ChildState.from_siginfo(info)

        try:
            return await afd.retry(False, attempt)
        except SyscallHangup:
            if (self._afd is afd and self.process.local_pidfd is None
                    and afd.epoller is not parent._epoller
                    and getattr(task.sysif, "hung_up", None) is None):
                # The parent is there, on a new connection (a persistent
                # thread reconnected), with a new epoller: watch from that.
                self._afd = None
                return await self._wait(options)
        # The parent is gone or exec'd: wait for whoever is its parent now.
        return await self._wait_reaped_elsewhere()

    async def _wait_reaped_elsewhere(self) -> ChildState:
        local = self.process.local_pidfd
        if local is None:
            # On another host, with its parent gone: nothing can tell.
            raise SyscallHangup(f"child {self.pid}: its parent thread is gone")
        delay = 0.001
        while True:
            state = _exit_status(local.number, self.pid)
            if state is not None:
                return state
            # Exit is an edge of the pidfd, but being reaped need not be:
            # look again now and then.
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def _kill_and_reap(self) -> None:
        try:
            await self.kill(SIG.KILL)
        except ProcessLookupError:
            return
        try:
            state = await self._wait(W.EXITED)
        except (SyscallHangup, OSError):
            return
        self._reaped(state)

    def _reaped(self, state: ChildState) -> None:
        if self._state is not None:
            return
        self._state = state
        process = self.process
        process.reaped = True
        self._exited()
        afd, self._afd = self._afd, None
        if afd is not None:
            afd.epoller.forget(afd._ident)
        # Nothing can be asked of a reaped child's pidfds: close them now,
        # rather than whenever this object goes.
        for pidfd in (process.pidfd, process.local_pidfd):
            if pidfd is not None:
                pidfd.drop()

    async def check(self) -> ChildState:
        """Wait for the child to exit; its state if it exited 0, else
        raise `rsyscall.sys.wait.CalledProcessError`.  Cancelled, it kills
        and reaps the child, as `waitpid` does."""
        state = await self.waitpid(W.EXITED)
        if not state.clean():
            raise CalledProcessError(state, self.command)
        return state

    async def kill(self, sig: SIG = SIG.KILL) -> None:
        """Send `sig` to the child (pidfd_send_signal(2), through the local
        pidfd, or for a child on another host the parent's).  After it has
        been reaped, raises ProcessLookupError."""
        process = self.process
        pidfd = process.local_pidfd if process.local_pidfd is not None else process.pidfd
        if self._state is not None or pidfd is None or pidfd.closed:
            raise ProcessLookupError(f"child {self.pid} was already reaped")
        await pidfd.pidfd_send_signal(sig)

    async def setpriority(self, prio: CInt) -> None:
        """setpriority(2) of the child."""
        await self.process.setpriority(prio)

    async def getpriority(self) -> int:
        """getpriority(2) of the child: its nice value."""
        return await self.process.getpriority()
