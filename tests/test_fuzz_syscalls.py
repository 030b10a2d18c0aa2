"""Fuzz every public syscall method with bad arguments.

Every public async method of Task, FileDescriptor, Process, ChildProcess
and the thread classes (found by introspection, as in test_argcheck) is
called with random arguments: mostly plausible values for some
parameters (from the annotations), wrong-typed or out-of-range values for
others (ints of all sizes, negative numbers, None, strings, bytes, pointers
of the wrong type, a closed fd, a consumed pointer, members of random
enums).  Only TypeError, ValueError (UseAfterConsumeError is one) and
OSError may escape, and the thread must still answer afterwards.

The calls run in a child thread in new user, pid, network, mount, UTS and
IPC namespaces, in a temporary working directory; the child shares our
memory, so calls that could end or replace the process, write memory at a
random address, or block forever are left out explicitly (`EXCLUDED`),
and so is every `unsafe_*` method.  The test runs in a fresh interpreter
(`isolated`), so even a crash fails only it.

`RSYSCALL_FUZZ_SEED` picks the seed (printed on failure).
"""

from __future__ import annotations

import enum
import inspect
import os
import random
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from rsyscall import (
    AsyncChildProcess,
    AsyncFileDescriptor,
    ChildThread,
    Thread,
    UseAfterConsumeError,
    local_thread,
)
from rsyscall.argcheck import _namespace
from rsyscall.epoller import Epoller
from rsyscall.handle import ChildProcess, FileDescriptor, Pointer, Process, ReadablePointer, Task
from rsyscall.memory.pointer import WrittenPointer
from rsyscall.near.interface import SyscallHangup
from rsyscall.sched import CLONE
from rsyscall.struct import FixedSize, HasSerializer
from rsyscall.sys.eventfd import EFD
from rsyscall.sys.socket import AF, SOCK
from rsyscall.sys.wait import W
from rsyscall.time import Timespec
from tests.test_argcheck import public_methods

pytestmark = pytest.mark.anyio

EXCLUDED = {
    # End or replace the process, or make new ones.
    "Task.execve": "replaces the process",
    "ChildThread.exec": "replaces the process",
    "Task.execveat": "replaces the process",
    "ChildThread.execveat": "replaces the process (tested in test_unistd_process)",
    "Task.acct": "turns on process accounting (tested in test_unistd_process)",
    "Task.vhangup": "hangs up the controlling terminal (tested in test_unistd_process)",
    "ChildThread.exit": "ends the process",
    "Task.exit_group": "ends the process (tested in test_unistd_setup)",
    "Task.pivot_root": "changes the child's root (tested in test_unistd_setup)",
    "Task.sync": "writes every filesystem out: slow, and says nothing",
    "Thread.run": "clones and execs",
    "Thread.clone": "makes processes (tested in test_clone)",
    "ChildThread.clone": "makes processes (tested in test_clone)",
    "Process.kill": "may send a fatal signal to the child itself",
    "ChildProcess.kill": "may send a fatal signal",
    "Task.tgkill": "may send a fatal signal to the child itself",
    "Process.rt_sigqueueinfo": "may send a fatal signal to the child itself",
    "ChildProcess.rt_sigqueueinfo": "may send a fatal signal",
    "Task.rt_tgsigqueueinfo": "may send a fatal signal to the child itself",
    "Task.kill_all": "signals every process of the pid namespace (tested in test_signal)",
    "Task.clone3": "makes processes (tested in test_clone3)",
    # The child shares our memory: these could write anywhere in it.
    "Task.mmap": "MAP_FIXED at a random address would unmap our memory",
    "Task.prctl": "raw options (PR_SET_MM, PR_SET_SECCOMP) act on the shared memory",
    "Task.futex": "raw operations write memory, and WAIT blocks",
    "Task.set_robust_list": "the kernel writes the list at exit",
    "Task.sigaction": "a handler address would be jumped to",
    "Task.mlockall": "locks the shared address space: later mappings fail over RLIMIT_MEMLOCK",
    # Block forever.
    "Task.futex_wait": "blocks until woken",
    "Task.nanosleep": "sleeps as long as it is told",
    "Task.clock_nanosleep": "sleeps as long as it is told",
    "FileDescriptor.seccomp_notif_recv": "blocks until a notification comes",
    # Irreversible changes to the process (tested in test_seccomp, test_landlock).
    "Task.seccomp_set_mode_strict": "kills the process at its server's next syscall",
    "Task.seccomp_set_mode_filter": "a filter cannot be removed",
    "Task.seccomp_set_mode_filter_listener": "a filter cannot be removed",
    "FileDescriptor.landlock_restrict_self": "a Landlock domain cannot be left",
    "Task.sigsuspend": "waits for a signal handler to run",
    # ptrace: attaching changes who may wait for and signal the process,
    # and a stopped tracee answers nothing (tested in test_ptrace).
    "Task.ptrace_traceme": "makes the child's parent its tracer, irreversibly",
    "Process.ptrace_seize": "attaches to the process (tested in test_ptrace)",
    "ChildProcess.ptrace_seize": "attaches to the process (tested in test_ptrace)",
    "Process.ptrace_attach": "attaches to and stops the process (tested in test_ptrace)",
    "ChildProcess.ptrace_attach": "attaches to and stops the process (tested in test_ptrace)",
    "Task.sigtimedwait": "without a timeout, waits for a signal that never comes",
}



def _no_hang(kwargs: dict[str, object]) -> None:
    # Without W.NOHANG, waitid waits as long as some child may change state.
    options = kwargs.get("options")
    if isinstance(options, int) and not isinstance(options, bool) and options >= 0:
        kwargs["options"] = options | W.NOHANG


ADJUST: dict[str, Callable[[dict[str, object]], None]] = {"Task.waitid": _no_hang}
"""Arguments made safe for calls that would otherwise block forever."""

TIME_BUDGET = float(os.environ.get("RSYSCALL_FUZZ_SECONDS", "5"))  # per backend
TRACE = bool(os.environ.get("RSYSCALL_FUZZ_TRACE"))  # print each call before making it
OK_ERRORS = (TypeError, ValueError, OSError, UseAfterConsumeError)


class Fuzzer:
    def __init__(self, child: ChildThread, rng: random.Random, grandchild: AsyncChildProcess):
        self.child = child
        self.rng = rng
        self.grandchild = grandchild
        self.enum_members = [
            member for value in _namespace().values()
            if isinstance(value, type) and issubclass(value, enum.Enum) and issubclass(value, int)
            for member in value.__members__.values()
        ]
        self.keep: list[object] = []

    # ---- values ----

    def random_int(self) -> int:
        rng = self.rng
        return rng.choice([
            0, 1, -1, 2, 7, 4096, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1, 2**32,
            2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64), 2**100,
            rng.getrandbits(rng.choice([8, 16, 32, 64, 70])),
            -rng.getrandbits(rng.choice([8, 32, 64])),
        ])

    async def fresh_fd(self) -> FileDescriptor:
        return await self.child.task.eventfd(0, EFD.NONBLOCK)

    async def closed_fd(self) -> FileDescriptor:
        fd = await self.fresh_fd()
        await fd.close()
        return fd

    async def bad_value(self) -> object:
        rng = self.rng
        child = self.child
        kind = rng.randrange(16)
        if kind < 4:
            return self.random_int()
        if kind == 4:
            return None
        if kind == 5:
            return rng.choice(["", "x", "fuzz", "\0", "é" * 3])
        if kind == 6:
            return rng.choice([b"", b"x", b"\xff" * 16])
        if kind == 7:
            return rng.choice([1.5, True, False, object(), [1, 2], {}])
        if kind == 8:
            return rng.choice(self.enum_members)
        if kind == 9:
            return await child.malloc(bytes, rng.choice([1, 8, 64]))
        if kind == 10:
            return await child.ptr(rng.choice([b"\xff" * 16, b"\0" * 256, b"x"]))
        if kind == 11:
            return await child.ptr(rng.choice(["fuzz", "fuzz/dir", ""]))
        if kind == 12:  # a pointer of the wrong type
            return rng.choice([await child.malloc(Timespec), await child.ptr(Timespec(1, 0))])
        if kind == 13:  # a consumed pointer
            ptr = await child.ptr(b"consumed")
            ptr.split(4)
            return ptr
        if kind == 14:
            return await self.closed_fd()
        return await self.fresh_fd()

    async def plausible(self, hint: object) -> object:
        """A value of the annotated type, where one is easy to make."""
        rng = self.rng
        child = self.child
        args = typing.get_args(hint) if typing.get_origin(hint) in (
            typing.Union, types.UnionType) else (hint,)
        arg = rng.choice(args)
        if typing.get_origin(arg) is typing.Annotated:
            arg = typing.get_args(arg)[0]
        origin = typing.get_origin(arg)
        if arg is type(None):
            return None
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return rng.choice(list(arg.__members__.values()))
        if arg is bool:
            return rng.random() < 0.5
        if arg is int:
            return rng.choice([0, 1, 2, 4096])
        if arg is str:
            return "fuzz"
        if arg is bytes:
            return b"fuzz"
        if arg is FileDescriptor:
            return await self.fresh_fd()
        if arg is Epoller:
            return await child.epoller()
        if origin in (Pointer, ReadablePointer, WrittenPointer):
            (target,) = typing.get_args(arg) or (bytes,)
            if typing.get_origin(target) is not None or not isinstance(target, type):
                if origin is WrittenPointer:
                    return await child.ptr("fuzz")  # a path, most likely
                target = bytes
            if origin is Pointer and issubclass(target, HasSerializer) and issubclass(
                target, FixedSize
            ):
                return await child.malloc(target)
            if target in (bytes, str):
                return await child.ptr(b"fuzz\0" if target is bytes else "fuzz")
            return await self.bad_value()
        if arg is os.PathLike or origin is os.PathLike:
            return Path("fuzz")
        return await self.bad_value()

    # ---- receivers ----

    async def receiver(self, cls: type) -> object:
        child = self.child
        if cls is Task:
            return child.task
        if cls is Process:
            return child.task.process
        if cls is ChildProcess:
            return self.grandchild.process
        if cls is AsyncChildProcess:
            return self.grandchild
        if cls in (Thread, ChildThread):
            return child
        if cls is FileDescriptor:
            kind = self.rng.randrange(5)
            if kind == 0:
                return await self.fresh_fd()
            if kind == 1:
                return await self.closed_fd()
            pair = await child.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
            if kind == 2:
                await pair.second.close()
                return pair.first
            self.keep.append(pair.second)
            return pair.first
        if cls is AsyncFileDescriptor:
            # A socket whose peer is gone: reads see EOF and writes EPIPE at
            # once, so nothing waits.
            pair = await child.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK)
            await pair.second.close()
            return await child.make_afd(pair.first)
        raise AssertionError(cls)

    # ---- calls ----

    async def call(self, cls: type, name: str, func: Callable[..., Any]) -> None:
        from tests.test_argcheck import hints_of

        rng = self.rng
        hints = hints_of(func)
        signature = inspect.signature(inspect.unwrap(func))
        is_classmethod = isinstance(inspect.getattr_static(cls, name), classmethod)
        receiver = cls if is_classmethod else await self.receiver(cls)
        method = getattr(receiver, name)
        positional: list[object] = []
        kwargs: dict[str, object] = {}
        parameters = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
        corrupt = {p.name for p in parameters if rng.random() < 0.5}
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.default is not parameter.empty and rng.random() < 0.3:
                continue  # leave the default
            if parameter.name in corrupt:
                value = await self.bad_value()
            else:
                value = await self.plausible(hints.get(parameter.name, object))
            if parameter.kind is parameter.POSITIONAL_ONLY:
                positional.append(value)
            else:
                kwargs[parameter.name] = value
        adjust = ADJUST.get(f"{cls.__name__}.{name}")
        if adjust is not None:
            adjust(kwargs)
        description = f"{cls.__name__}.{name}(*{positional!r}, **{kwargs!r})"
        if TRACE:
            print(description, file=sys.stderr, flush=True)
        with anyio.move_on_after(10) as scope:
            try:
                await method(*positional, **kwargs)
            except SyscallHangup as error:
                raise AssertionError(f"{description} ended the child: {error!r}") from error
            except OK_ERRORS:
                pass
            except BaseException as error:
                if isinstance(error, anyio.get_cancelled_exc_class()):
                    raise
                raise AssertionError(f"{description} raised {error!r}") from error
        if scope.cancelled_caught:
            raise AssertionError(f"{description} blocked")


def fuzz_targets() -> list[tuple[type, str, Any]]:
    targets = []
    for cls, name, func in public_methods():
        if name.startswith("unsafe_") or f"{cls.__name__}.{name}" in EXCLUDED:
            continue
        targets.append((cls, name, func))
    return targets


def test_exclusions_name_real_methods() -> None:
    names = {f"{cls.__name__}.{name}" for cls, name, _ in public_methods()}
    for excluded in EXCLUDED:
        if not excluded.split(".")[1].startswith("unsafe_"):
            # A renamed method (to unsafe_*) is skipped by its name anyway.
            assert excluded in names or excluded.replace(".", ".unsafe_") in names or (
                excluded in ("Task.prctl", "Task.futex", "Task.mmap", "Task.sigaction")
            ), excluded


@pytest.mark.isolated
async def test_fuzz_every_syscall_method(tmp_path: Path) -> None:
    seed = int(os.environ.get("RSYSCALL_FUZZ_SEED", "0")) or random.randrange(1 << 32)
    rng = random.Random(seed)
    child = await local_thread.clone(
        CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWNS | CLONE.NEWUTS | CLONE.NEWIPC
    )
    await child.task.chdir(await child.ptr(str(tmp_path)))
    # A child of the child, already reaped, for the ChildProcess and
    # AsyncChildProcess methods.
    grandchild = await child.clone()
    acp = grandchild.process
    await grandchild.exit(0)
    del grandchild
    fuzzer = Fuzzer(child, rng, acp)
    targets = fuzz_targets()
    pid = await child.task.getpid()
    calls = 0
    deadline = time.monotonic() + TIME_BUDGET
    try:
        while time.monotonic() < deadline:
            rng.shuffle(targets)
            for cls, name, func in targets:
                await fuzzer.call(cls, name, func)
                calls += 1
                if calls % 25 == 0:
                    assert await child.task.getpid() == pid
                    fuzzer.keep.clear()
                if time.monotonic() > deadline:
                    break
    except BaseException as error:
        error.add_note(f"RSYSCALL_FUZZ_SEED={seed}, after {calls} calls")
        raise
    # Still usable.
    assert await child.task.getpid() == pid
    assert calls > len(targets)
    await child.exit(0)
