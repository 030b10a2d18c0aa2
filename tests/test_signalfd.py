"""rsyscall.sys.signalfd: signalfd4 on Task and FileDescriptor, the
`struct signalfd_siginfo` format, and AsyncSignalQueue.

Signals are sent to the thread's process while blocked, and read back
through the signalfd.  Every test puts the signal mask back (and takes any
signal it left pending first); no handler is ever installed."""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import Thread, UseAfterConsumeError, local_thread
from rsyscall.fcntl import FD, F
from rsyscall.signal import SA, SIG, HowSIG, Sigaction, Sigset
from rsyscall.sys.signalfd import SFD, AsyncSignalQueue, SignalfdSiginfo

from .util import (
    blocked_signals,
    fdinfo,
    pending_signals,
    send_signal,
    thread_fds,
)

pytestmark = pytest.mark.anyio

USED = (signal.SIGUSR1, signal.SIGUSR2)


def blocked() -> set[int]:
    return {int(sig) for sig in signal.pthread_sigmask(signal.SIG_BLOCK, [])}


def fdinfo_sigmask(thread: Thread, number: int) -> int:
    return int(fdinfo(thread, number)["sigmask"], 16)


def local_mask() -> Iterator[frozenset[int]]:
    """The mask from before the test; put back afterwards, after taking any
    SIGUSR1/SIGUSR2 the test left pending (their default action would kill
    the test run)."""
    original = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        yield frozenset(int(sig) for sig in original)
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, USED)
        while set(USED) & signal.sigpending():
            signal.sigtimedwait(USED, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, original)


@pytest.fixture
def mask() -> Iterator[frozenset[int]]:
    yield from local_mask()


@pytest.fixture
def thread_mask(thread: Thread) -> Iterator[frozenset[int]]:
    """`mask` for the thread of the test: another thread's mask and the
    signals left pending go with its process."""
    if thread is local_thread:
        yield from local_mask()
    else:
        yield frozenset(blocked_signals(thread))


async def block(thread: Thread, *sigs: SIG) -> None:
    await thread.task.sigprocmask(HowSIG.BLOCK, await thread.ptr(Sigset(sigs)))


async def still_works(thread: Thread) -> None:
    fd = await thread.task.signalfd(await thread.ptr(Sigset([SIG.USR2])))
    assert fdinfo_sigmask(thread, fd.number) == 1 << (SIG.USR2 - 1)
    await fd.close()


# ---- signalfd4 ----


async def test_signalfd_reads_signal_sent_to_self(
    thread: Thread, thread_mask: frozenset[int]
) -> None:
    await block(thread, SIG.USR1)
    fd = await thread.task.signalfd(await thread.ptr(Sigset([SIG.USR1])))
    # Close-on-exec always; blocking unless asked.
    assert await fd.fcntl(F.GETFD) == FD.CLOEXEC
    assert not await fd.fcntl(F.GETFL) & os.O_NONBLOCK
    send_signal(thread, signal.SIGUSR1)
    assert signal.SIGUSR1 in pending_signals(thread)
    valid, rest = await fd.read(await thread.malloc(SignalfdSiginfo))
    assert valid.size() == 128 and rest.size() == 0
    info = await valid.read()
    assert info.signo is SIG.USR1
    assert info.pid == os.getpid()
    assert info.uid == os.getuid()
    assert signal.SIGUSR1 not in pending_signals(thread)  # the read consumed it
    await fd.close()


async def test_signalfd_reads_several_signals(thread: Thread, thread_mask: frozenset[int]) -> None:
    await block(thread, SIG.USR1, SIG.USR2)
    fd = await thread.task.signalfd(
        await thread.ptr(Sigset([SIG.USR1, SIG.USR2])), SFD.NONBLOCK
    )
    send_signal(thread, signal.SIGUSR1)
    send_signal(thread, signal.SIGUSR2)
    # Room for three: the read returns the two pending ones.
    buf = await thread.malloc(bytes, 3 * SignalfdSiginfo.sizeof())
    valid, rest = await fd.read(buf)
    assert valid.size() == 2 * 128 and rest.size() == 128
    data = await valid.read()
    signos = {SignalfdSiginfo.from_bytes(data[i : i + 128]).signo for i in (0, 128)}
    assert signos == {SIG.USR1, SIG.USR2}
    with pytest.raises(BlockingIOError):
        await fd.read(valid + rest)
    await fd.close()


async def test_signalfd_nonblock_flags(thread: Thread, thread_mask: frozenset[int]) -> None:
    fd = await thread.task.signalfd(await thread.ptr(Sigset([SIG.USR1])), SFD.NONBLOCK)
    assert await fd.fcntl(F.GETFL) & os.O_NONBLOCK
    buf = await thread.malloc(SignalfdSiginfo)
    with pytest.raises(BlockingIOError) as info:
        await fd.read(buf)
    assert info.value.errno == errno.EAGAIN
    assert not buf.consumed  # a failed read gives the buffer back
    await fd.close()


async def test_fd_signalfd_replaces_mask(thread: Thread, thread_mask: frozenset[int]) -> None:
    await block(thread, SIG.USR1, SIG.USR2)
    fd = await thread.task.signalfd(await thread.ptr(Sigset([SIG.USR1])), SFD.NONBLOCK)
    assert fdinfo_sigmask(thread, fd.number) == 1 << (SIG.USR1 - 1)
    await fd.signalfd(await thread.ptr(Sigset([SIG.USR2, 40])))
    assert fdinfo_sigmask(thread, fd.number) == 1 << (SIG.USR2 - 1) | 1 << 39
    send_signal(thread, signal.SIGUSR1)
    buf = await thread.malloc(SignalfdSiginfo)
    with pytest.raises(BlockingIOError):  # USR1 is no longer in its thread_mask
        await fd.read(buf)
    send_signal(thread, signal.SIGUSR2)
    valid, _ = await fd.read(buf)
    assert (await valid.read()).signo is SIG.USR2
    await fd.close()


async def test_signalfd_errors(thread: Thread, thread_mask: frozenset[int]) -> None:
    task = thread.task
    sigset = await thread.ptr(Sigset([SIG.USR1]))
    with pytest.raises(TypeError):
        await task.signalfd(Sigset([SIG.USR1]))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.signalfd(await thread.ptr(b"\0" * 8))  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # uninitialized memory
        await task.signalfd(await thread.malloc(Sigset))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await task.signalfd(sigset, "NONBLOCK")  # type: ignore[arg-type]
    # The kernel rejects unknown flags.
    with pytest.raises(OSError) as info:
        await task.signalfd(sigset, SFD(1))
    assert info.value.errno == errno.EINVAL
    # Not a signalfd.
    pipe = await thread.pipe()
    with pytest.raises(OSError) as info:
        await pipe.read.signalfd(sigset)
    assert info.value.errno == errno.EINVAL
    await pipe.read.close()
    await pipe.write.close()
    with pytest.raises(UseAfterConsumeError):  # closed fd
        await pipe.read.signalfd(sigset)
    renewed = await sigset.write(Sigset([SIG.USR2]))  # consumes sigset
    with pytest.raises(UseAfterConsumeError):
        await task.signalfd(sigset)
    fd = await task.signalfd(renewed)  # the new pointer works
    await fd.close()
    await still_works(thread)


# ---- AsyncSignalQueue ----


async def test_queue_waits_for_signal(thread: Thread, thread_mask: frozenset[int]) -> None:
    assert signal.SIGUSR1 not in thread_mask
    queue = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1]))
    assert blocked_signals(thread) == thread_mask | {signal.SIGUSR1}
    got: list[SignalfdSiginfo] = []

    async def reader() -> None:
        got.append(await queue.read())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.05)
        assert not got  # still waiting: nothing sent yet
        send_signal(thread, signal.SIGUSR1)
    assert len(got) == 1
    assert got[0].signo is SIG.USR1
    assert got[0].pid == os.getpid()
    # Signals sent before a read are queued, not lost.
    send_signal(thread, signal.SIGUSR1)
    with anyio.fail_after(5):
        assert (await queue.read()).signo is SIG.USR1
    await queue.close()
    assert blocked_signals(thread) == thread_mask
    await queue.close()  # closing twice is harmless
    with pytest.raises(UseAfterConsumeError):
        await queue.read()


async def test_queue_close_ends_waiting_read(thread: Thread, thread_mask: frozenset[int]) -> None:
    queue = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1]))
    errors: list[BaseException] = []

    async def reader() -> None:
        try:
            await queue.read()
        except UseAfterConsumeError as error:
            errors.append(error)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.02)
            await queue.close()
    assert len(errors) == 1
    assert blocked_signals(thread) == thread_mask


async def test_queue_sender_coroutine(thread: Thread, thread_mask: frozenset[int]) -> None:
    async with await AsyncSignalQueue.make(thread, Sigset([SIG.USR1, SIG.USR2])) as queue:

        async def sender() -> None:
            await anyio.sleep(0.02)
            send_signal(thread, signal.SIGUSR2)
            await anyio.sleep(0.02)
            send_signal(thread, signal.SIGUSR1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            with anyio.fail_after(5):
                first = await queue.read()
                second = await queue.read()
        assert (first.signo, second.signo) == (SIG.USR2, SIG.USR1)
    assert blocked_signals(thread) == thread_mask


async def test_queue_keeps_signals_blocked_before(
    thread: Thread, thread_mask: frozenset[int]
) -> None:
    if thread is local_thread:  # by the stdlib, behind the library's back
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
    else:
        await block(thread, SIG.USR2)
    queue = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1, SIG.USR2]))
    await queue.close()
    # Only what the queue blocked is unblocked.
    assert blocked_signals(thread) == thread_mask | {signal.SIGUSR2}


async def test_overlapping_queues(thread: Thread, thread_mask: frozenset[int]) -> None:
    first = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1]))
    second = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1, SIG.USR2]))
    await first.close()
    # The second needs both.
    assert blocked_signals(thread) == thread_mask | {signal.SIGUSR1, signal.SIGUSR2}
    send_signal(thread, signal.SIGUSR1)
    with anyio.fail_after(5):
        assert (await second.read()).signo is SIG.USR1
    await second.close()
    assert blocked_signals(thread) == thread_mask


async def test_queue_errors(thread: Thread, thread_mask: frozenset[int]) -> None:
    with pytest.raises(TypeError):
        await AsyncSignalQueue.make(thread, {SIG.USR1})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await AsyncSignalQueue.make(thread, Sigset([0]))
    assert blocked_signals(thread) == thread_mask
    await still_works(thread)


async def test_queue_cancelled_read_loses_nothing(
    thread: Thread, thread_mask: frozenset[int]
) -> None:
    queue = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1]))
    with anyio.move_on_after(0.02):
        await queue.read()
    send_signal(thread, signal.SIGUSR1)
    with anyio.fail_after(5):
        assert (await queue.read()).signo is SIG.USR1
    await queue.close()
    assert blocked_signals(thread) == thread_mask


async def test_queue_churn_leaks_nothing(thread: Thread, thread_mask: frozenset[int]) -> None:
    # Warm up: the thread's epoll fd is made on first use.
    await (await AsyncSignalQueue.make(thread, Sigset([SIG.USR1]))).close()
    fds_before = await thread_fds(thread)
    for i in range(500):
        queue = await AsyncSignalQueue.make(thread, Sigset([SIG.USR1, SIG.USR2]))
        if i % 50 == 0:
            send_signal(thread, signal.SIGUSR2)
            assert (await queue.read()).signo is SIG.USR2
        await queue.close()
        if i % 100 == 0:
            assert blocked_signals(thread) == thread_mask
    assert await thread_fds(thread) == fds_before
    assert blocked_signals(thread) == thread_mask


# ---- struct signalfd_siginfo ----

u32 = st.integers(0, 2**32 - 1)
s32 = st.integers(-(2**31), 2**31 - 1)
u64 = st.integers(0, 2**64 - 1)
siginfos = st.builds(
    SignalfdSiginfo,
    u32, s32, s32, u32, u32, s32, u32, u32, u32, u32, s32, s32,
    u64, u64, u64, u64, st.integers(0, 2**16 - 1), s32, u64, u32,
)  # fmt: skip


@given(siginfos)
def test_siginfo_roundtrip(info: SignalfdSiginfo) -> None:
    data = info.to_bytes()
    assert len(data) == 128 == SignalfdSiginfo.sizeof()
    assert SignalfdSiginfo.from_bytes(data) == info
    assert data[82:84] == bytes(2) and data[100:] == bytes(28)  # padding


def test_siginfo_layout() -> None:
    info = SignalfdSiginfo(SIG.CHLD, pid=0x01020304, status=-1, addr_lsb=7, arch=0xC000003E)
    data = info.to_bytes()
    assert data[0:4] == (17).to_bytes(4, "little")
    assert data[12:16] == bytes([4, 3, 2, 1])
    assert data[40:44] == b"\xff" * 4
    assert data[80:82] == bytes([7, 0])
    assert data[96:100] == (0xC000003E).to_bytes(4, "little")
    assert SignalfdSiginfo(40).signo == 40  # a real-time signal stays an int
    assert SignalfdSiginfo.from_bytes(data + b"extra") == info


async def test_siginfo_through_memory(thread: Thread) -> None:
    info = SignalfdSiginfo(SIG.USR1, code=-6, pid=1, uid=2, ptr=2**64 - 1)
    ptr = await thread.ptr(info)
    assert ptr.size() == 128
    assert await ptr.read() == info


def test_siginfo_bad_values() -> None:
    with pytest.raises(TypeError):
        SignalfdSiginfo("USR1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SignalfdSiginfo(10, pid=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SignalfdSiginfo(10, status=True)
    with pytest.raises(ValueError):
        SignalfdSiginfo(10, pid=-1).to_bytes()
    with pytest.raises(ValueError):
        SignalfdSiginfo(10, addr_lsb=1 << 16).to_bytes()
    with pytest.raises(ValueError):
        SignalfdSiginfo(2**32).to_bytes()
    with pytest.raises(ValueError):
        SignalfdSiginfo.from_bytes(bytes(127))


# ---- the local thread when the process has other OS threads ----
#
# A queue blocks its signals in the thread that reads it only; the others
# would take the default action (death, for SIGUSR1/SIGUSR2), so these run
# in a fresh interpreter: a signal that gets through fails just the test.

SI_USER = 0
SI_QUEUE = -1


async def action(sig: SIG) -> Sigaction:
    old = await local_thread.task.sigaction(sig, None, await local_thread.malloc(Sigaction))
    return await old.read()


class Sleeper:
    """An OS thread that sleeps, with nothing blocked, until stopped."""

    def __init__(self, target: Callable[[threading.Event], None] | None = None) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=target or (lambda stop: stop.wait()),
                                       args=(self.stop,))
        self.thread.start()

    def join(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.isolated
async def test_queue_reads_signals_other_threads_would_take(mask: frozenset[int]) -> None:
    sleeper = Sleeper()  # started before the queue
    await anyio.to_thread.run_sync(lambda: None)  # so is a worker thread
    before = [await action(SIG.USR1), await action(SIG.USR2)]
    try:
        async with await AsyncSignalQueue.make(
            local_thread, Sigset([SIG.USR1, SIG.USR2])
        ) as queue, anyio.create_task_group() as tg:
            # A worker busy in a thread the whole time.
            tg.start_soon(anyio.to_thread.run_sync, sleeper.stop.wait)
            # Threads started after make from a thread that does not block
            # the signals (the first worker) do not block them either.
            late = await anyio.to_thread.run_sync(Sleeper)
            try:
                for i in range(200):
                    sig = SIG.USR1 if i % 2 else SIG.USR2
                    os.kill(os.getpid(), sig)  # to the process: any thread
                    with anyio.fail_after(5):
                        info = await queue.read()
                    assert (info.signo, info.pid, info.uid) == (sig, os.getpid(), os.getuid())
                    assert info.code in (SI_USER, SI_QUEUE)
                # Sent to each other thread: always forwarded, as SI_QUEUE.
                for thread in (sleeper.thread, late.thread):
                    for sig in (SIG.USR1, SIG.USR2):
                        assert thread.ident is not None
                        signal.pthread_kill(thread.ident, sig)
                        with anyio.fail_after(5):
                            info = await queue.read()
                        assert (info.signo, info.code) == (sig, SI_QUEUE)
                        assert (info.pid, info.uid, info.int) == (os.getpid(), os.getuid(), 0)
                # Unblocked in this thread, the reader, a signal sent here
                # reaches the forwarder, which blocks it again: still read.
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])
                assert signal.SIGUSR1 not in blocked()
                signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
                assert signal.SIGUSR1 in blocked()
                with anyio.fail_after(5):
                    assert (await queue.read()).signo is SIG.USR1
            finally:
                late.join()
                sleeper.stop.set()
        # The queue closed: the dispositions and the mask from before are back.
        assert [await action(SIG.USR1), await action(SIG.USR2)] == before
        assert blocked() == mask
    finally:
        sleeper.join()


@pytest.mark.isolated
async def test_queue_and_python_handlers(mask: frozenset[int]) -> None:
    got: list[int] = []
    signal.signal(signal.SIGUSR1, lambda sig, frame: got.append(sig))
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    before = [await action(SIG.USR1), await action(SIG.USR2)]
    sleeper = Sleeper()
    try:
        queue = await AsyncSignalQueue.make(local_thread, Sigset([SIG.USR1, SIG.USR2]))
        assert await action(SIG.USR1) != before[0]  # the forwarder
        for sig in (SIG.USR1, SIG.USR2):
            for _ in range(20):
                os.kill(os.getpid(), sig)
                with anyio.fail_after(5):
                    assert (await queue.read()).signo == sig
        await anyio.sleep(0.01)
        assert got == []  # the Python handler did not run meanwhile
        await queue.close()
        assert [await action(SIG.USR1), await action(SIG.USR2)] == before
        # They work as before: the handler runs, the ignored one is ignored.
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        with anyio.fail_after(5):
            while not got:
                await anyio.sleep(0.001)
        assert got == [signal.SIGUSR1]

        # A Python handler set while a queue is open replaces the forwarder,
        # and stays after close.
        queue = await AsyncSignalQueue.make(local_thread, Sigset([SIG.USR2]))
        signal.signal(signal.SIGUSR2, lambda sig, frame: got.append(sig))
        python_handler = await action(SIG.USR2)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)  # blocked here: the queue's
        with anyio.fail_after(5):
            assert (await queue.read()).signo is SIG.USR2
        await queue.close()
        assert await action(SIG.USR2) == python_handler
    finally:
        sleeper.join()
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)


# Python's SIGCHLD disposition is our process's: local only.
async def test_queue_for_sigchld_keeps_children_unwaited(mask: frozenset[int]) -> None:
    # SIG_IGN for SIGCHLD means no zombies; the forwarder says so with
    # SA_NOCLDWAIT, and the old action comes back.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        before = await action(SIG.CHLD)
        async with await AsyncSignalQueue.make(local_thread, Sigset([SIG.CHLD])):
            assert (await action(SIG.CHLD)).flags & SA.NOCLDWAIT
        assert await action(SIG.CHLD) == before
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


# The local thread's queue is read by one OS thread of our process: local only.
async def test_queue_reader_is_one_os_thread(mask: frozenset[int]) -> None:
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            anyio.run(AsyncSignalQueue.make, local_thread, Sigset([SIG.USR2]))
        except BaseException as error:
            errors.append(error)

    async with await AsyncSignalQueue.make(local_thread, Sigset([SIG.USR1, SIG.USR2])):
        other = threading.Thread(target=elsewhere)
        other.start()
        other.join()
        assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
        assert blocked() == mask | {signal.SIGUSR1, signal.SIGUSR2}
    assert blocked() == mask
