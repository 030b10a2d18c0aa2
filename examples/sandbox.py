"""A sandbox, as bubblewrap makes one, step by step with rsyscall.

This does what

    bwrap --unshare-all --hostname sandbox --ro-bind /usr /usr \\
          --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \\
          --tmpfs /tmp --proc /proc --dev /dev --die-with-parent sh -c SCRIPT

does: a child in new user, mount, pid, network, IPC, UTS and cgroup
namespaces, whose whole file system is a fresh tmpfs holding a read-only
/usr, an empty /tmp, its own /proc and a minimal /dev, and nothing else of
ours.  bwrap does it from inside the child, in C, between fork and exec;
here the parent does it from outside, one syscall at a time, each a
method on the child's `task`, and reads what the shell in there reports.

Run it: python examples/sandbox.py [asyncio|trio] [SCRIPT]
As root, or unprivileged wherever unprivileged user namespaces are allowed
(the user namespace gives the child the capabilities its mounts need).
Like bwrap, it cannot mount a /proc where the host's /proc has parts
hidden by other mounts (as in some containers): the kernel refuses.
"""

from __future__ import annotations

import errno
import os
import sys

import anyio

from rsyscall import ChildThread, Command, Thread, local_thread
from rsyscall.fcntl import AT, O
from rsyscall.sched import CLONE
from rsyscall.signal import SIG
from rsyscall.sys.mount import MNT, MS
from rsyscall.sys.wait import ChildState

REPORT = """
echo "I am pid $$; the processes I can see: $(ls /proc | grep '^[0-9]' | tr '\\n' ' ')"
echo "my host name: $(hostname)"
echo "my network interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')"
echo "my root: $(ls -A / | tr '\\n' ' ')"
echo "my /dev: $(ls -A /dev | tr '\\n' ' ')"
touch /usr/x 2>/dev/null || echo "/usr is read-only"
echo hello > /tmp/x && echo "/tmp is writable: $(cat /tmp/x)"
"""

# Where the new root is put together: any directory will do as the mount
# point, since the tmpfs mounted over it is seen only in the child's mount
# namespace (bwrap uses /tmp too).
NEWROOT = "/tmp"
# The device nodes bwrap's --dev gives: bind mounts of the host's, since a
# user namespace may not make device nodes (its mounts are all nodev).
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]


async def mount(child: Thread, source: str | None, target: str, fstype: str | None,
                flags: MS, data: str | None = None) -> None:
    """mount(2) in `child`, taking plain strings."""
    await child.task.mount(
        None if source is None else await child.ptr(source),
        await child.ptr(target),
        None if fstype is None else await child.ptr(fstype),
        flags,
        None if data is None else await child.ptr(data),
    )


async def make_sandbox(parent: Thread) -> ChildThread:
    """Clone a child of `parent` and turn it, from here, into a sandbox
    whose root is a new tmpfs.  It is left ready to exec."""
    # clone3(2) into new namespaces of every kind.  The user namespace
    # comes first in the kernel's eyes and owns the others: in it the child
    # is root (its uid and gid maps, written for us, map our own ids), so
    # it may mount, set a host name and so on, in its namespaces only.
    child = await parent.clone(
        CLONE.NEWUSER | CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWNET
        | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWCGROUP
    )
    # --die-with-parent: prctl(PR_SET_PDEATHSIG).  The library's children
    # have SIGKILL here from the start (they never outlive the thread that
    # made them); saying so keeps this program true on its own.  It stays
    # set across the exec below (sh is no set-uid program).
    await child.task.prctl_set_pdeathsig(SIG.KILL)

    # The copy of our mounts the child got must not pass its changes back
    # to us: make every mount in its namespace private, recursively.
    await mount(child, None, "/", None, MS.REC | MS.PRIVATE)

    # The new root: an empty tmpfs.
    await mount(child, "tmpfs", NEWROOT, "tmpfs", MS.NOSUID | MS.NODEV, "mode=0755")

    # --ro-bind /usr /usr: a bind mount (MS.REC takes the mounts under /usr
    # along), then a remount of that bind read-only.  A bind's flags can
    # only be changed by remounting it; where /usr's own mount is nosuid or
    # nodev, a user namespace may not drop those (they are locked), so
    # they are kept when the kernel insists.
    await child.mkdir(f"{NEWROOT}/usr")
    await mount(child, "/usr", f"{NEWROOT}/usr", None, MS.BIND | MS.REC)
    try:
        await mount(child, None, f"{NEWROOT}/usr", None, MS.REMOUNT | MS.BIND | MS.RDONLY)
    except PermissionError:
        await mount(child, None, f"{NEWROOT}/usr", None,
                    MS.REMOUNT | MS.BIND | MS.RDONLY | MS.NOSUID | MS.NODEV)

    # Merged /usr (Debian, Fedora...): /bin, /lib, /lib64 and /sbin are
    # symlinks into /usr, and programs name /bin/sh and
    # /lib64/ld-linux-x86-64.so.2 by those paths.  symlinkat(2).
    for name in ("bin", "lib", "lib64", "sbin"):
        if os.path.isdir(f"/usr/{name}"):
            await child.task.symlinkat(await child.ptr(f"usr/{name}"), None,
                                       await child.ptr(f"{NEWROOT}/{name}"))

    # --tmpfs /tmp: an empty, writable /tmp of its own.
    await child.mkdir(f"{NEWROOT}/tmp")
    await mount(child, "tmpfs", f"{NEWROOT}/tmp", "tmpfs", MS.NOSUID | MS.NODEV, "mode=1777")

    # --proc /proc: a proc file system shows the pid namespace of the
    # process that mounts it, so it must be mounted from inside the new one:
    # by the child, whose mount(2) this is (it is pid 1 there).
    await child.mkdir(f"{NEWROOT}/proc")
    await mount(child, "proc", f"{NEWROOT}/proc", "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC)

    # --dev /dev: a tmpfs with the harmless devices bound in from ours (an
    # empty file is the mount point of each), a tmpfs /dev/shm, a devpts
    # instance of its own for terminals, and the usual symlinks.
    dev = f"{NEWROOT}/dev"
    await child.mkdir(dev)
    await mount(child, "tmpfs", dev, "tmpfs", MS.NOSUID, "mode=0755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            node = await child.task.open(await child.ptr(f"{dev}/{name}"),
                                         O.WRONLY | O.CREAT | O.EXCL)
            await node.close()
            await mount(child, f"/dev/{name}", f"{dev}/{name}", None, MS.BIND)
    await child.mkdir(f"{dev}/shm")
    await mount(child, "tmpfs", f"{dev}/shm", "tmpfs", MS.NOSUID | MS.NODEV, "mode=1777")
    await child.mkdir(f"{dev}/pts")
    await mount(child, "devpts", f"{dev}/pts", "devpts", MS.NOSUID | MS.NOEXEC,
                "newinstance,ptmxmode=0666,mode=620")
    for link, target in [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"),
                         ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")]:
        await child.task.symlinkat(await child.ptr(target), None,
                                   await child.ptr(f"{dev}/{link}"))

    # pivot_root(2): the tmpfs becomes "/" and the old root moves to
    # /.oldroot inside it; then detach the old root (MNT.DETACH takes every
    # mount under it along) and remove its mount point.  From now on
    # nothing of our file system is reachable, not even through "..".
    await child.mkdir(f"{NEWROOT}/.oldroot")
    await child.task.pivot_root(await child.ptr(NEWROOT), await child.ptr(f"{NEWROOT}/.oldroot"))
    await child.task.chdir(await child.ptr("/"))
    await child.task.umount2(await child.ptr("/.oldroot"), MNT.DETACH)
    await child.task.unlinkat(None, await child.ptr("/.oldroot"), AT.REMOVEDIR)
    # Nothing needs to write to the root itself: read-only (as bwrap's
    # --remount-ro /).  /tmp and /dev/shm are mounts of their own.
    await mount(child, None, "/", None, MS.REMOUNT | MS.BIND | MS.RDONLY)

    # --hostname sandbox: sethostname(2), in the child's UTS namespace.
    await child.task.sethostname(await child.ptr(b"sandbox"))
    return child


async def run_sandboxed(parent: Thread, script: str) -> tuple[ChildState, bytes]:
    """Run `sh -c script` in a new sandbox; return how it ended and what it
    wrote (stdout and stderr)."""
    # A pipe in the parent's process; the child gets a copy at clone.
    pipe = await parent.pipe()
    child = await make_sandbox(parent)
    # dup2(2) in the child: its copy of the write end becomes its stdout and
    # stderr.  Exec closes the rest (only the child's fds with handles
    # survive an exec, and those are close-on-exec but 0, 1 and 2).
    theirs = child.inherit_fd(pipe.write)
    await theirs.dup2(child.stdout)
    await theirs.dup2(child.stderr)
    await theirs.close()
    await pipe.write.close()  # ours: the pipe reaches EOF when the sandbox ends

    # execve(2): /bin/sh is found through the /bin symlink into the
    # read-only /usr, and runs as pid 1 of the new pid namespace.
    process = await child.exec(Command("/bin/sh", ["sh", "-c", script],
                                       {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}))
    reader = await parent.make_afd(pipe.read, set_nonblock=True)
    output = b""
    while chunk := await reader.read_some_bytes():
        output += chunk
    await reader.close()
    return await process.waitpid(), output


async def main(script: str) -> int:
    try:
        state, output = await run_sandboxed(local_thread, script)
    except OSError as error:
        if error.errno in (errno.EPERM, errno.EACCES, errno.ENOSPC, errno.EINVAL):
            print(f"cannot make the sandbox here: {error}", file=sys.stderr)
            return 2
        raise
    sys.stdout.write(output.decode(errors="replace"))
    print(f"-- the sandbox exited with status {state.exit_status}"
          + (f" (killed by {state.killed_with()!r})" if state.killed_with() else ""))
    return state.exit_status or 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    script = sys.argv[2] if len(sys.argv) > 2 else REPORT
    sys.exit(anyio.run(main, script, backend=backend))
