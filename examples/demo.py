"""A tour of rsyscall: one straight-line program acting in other processes,
here and on another host.

We clone a child into new user, mount, pid and network namespaces.  From
here, syscall by syscall, we set it up: mount a tmpfs, write a file in it,
bring up its loopback interface, open a listening socket.  Then it execs a
shell command that reports what it sees, and we read the report through a
pipe.  Every syscall is a method on the object it acts on, named as in its
man page; memory for it comes from pointers that know their size.

Then the same again on another host, through ssh: the same function, given
a thread on that host.  The host here is a private sshd started for the
demo (make_local_ssh, when sshd is installed); `make_ssh_host(local_thread,
"user@host")` would give a real one, with nothing installed there.

Run it: python examples/demo.py [trio]   (needs user namespaces, as most Linux has)
"""

import sys

import anyio

from rsyscall import Thread, local_thread
from rsyscall.net.if_ import bring_up
from rsyscall.netinet.ip import SockaddrIn
from rsyscall.sched import CLONE
from rsyscall.sys.mount import MS
from rsyscall.sys.socket import AF, SOCK

REPORT = """
echo "I am pid $$ in my pid namespace"
echo "my network interfaces:"; tail -n +3 /proc/net/dev | cut -d: -f1
echo "listening TCP sockets (hex; 0100007F:1F90 is 127.0.0.1:8080):"
tail -n +2 /proc/net/tcp | awk '{print "  " $2}'
echo "the file the parent wrote:"; cat /tmp/hello.txt
"""


async def setup_and_report(parent: Thread) -> None:
    """Clone a child of `parent` into new namespaces, set it up from here,
    and print what it reports."""
    # A pipe in the parent's process; the child will get a copy at clone.
    pipe = await parent.pipe()

    # clone3(2): a new process sharing our memory, in new namespaces.  It
    # runs nothing of its own: it waits for our syscalls.
    child = await parent.clone(
        CLONE.NEWUSER | CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWNET
    )
    print(f"cloned pid {child.process.pid}; inside its namespace it is pid "
          f"{await child.task.getpid()}")

    # mount(2), in the child: first stop its mounts from propagating back to
    # ours, then put a fresh tmpfs over /tmp - visible to the child only.
    await child.task.mount(None, await child.ptr("/"), None, MS.REC | MS.PRIVATE, None)
    await child.task.mount(
        await child.ptr("tmpfs"), await child.ptr("/tmp"), await child.ptr("tmpfs"),
        MS.NONE, None,
    )
    # open(2) and write(2) in the child: the file exists in its tmpfs alone.
    await child.spit("/tmp/hello.txt", "written by the parent, through the child's syscalls\n")

    # ioctl(SIOCSIFFLAGS) in the child: its new network namespace has only a
    # loopback interface, and it starts down.
    await bring_up(child, "lo")

    # socket(2), bind(2), listen(2) in the child: a listener on 127.0.0.1:8080
    # that exists only inside the child's network namespace.
    listener = await child.task.socket(AF.INET, SOCK.STREAM)
    await listener.bind(await child.ptr(SockaddrIn(8080, "127.0.0.1")))
    await listener.listen(16)
    await listener.disable_cloexec()  # keep it open across exec, for the report

    # dup2(2) in the child: its copy of our pipe's write end becomes its stdout.
    await child.inherit_fd(pipe.write).dup2(child.stdout)
    await pipe.write.close()  # ours; the child still holds its copy

    # execve(2): the child becomes a shell running the report.
    process = await child.exec(parent.environ.sh.args("-c", REPORT))

    # We read its output through the pipe until it exits.
    reader = await parent.make_afd(pipe.read, set_nonblock=True)
    output = b""
    while chunk := await reader.read_some_bytes():
        output += chunk
    await process.check()
    print(output.decode(), end="")


async def main() -> None:
    print("== here ==")
    await setup_and_report(local_thread)

    from rsyscall.tasks.ssh import make_local_ssh

    try:
        host = await make_local_ssh(local_thread)
    except FileNotFoundError as missing:
        print(f"== no ssh part: {missing} ==")
        return
    # ssh copies the stub over and runs it: `remote` is a thread there.
    process, remote = await host.ssh(local_thread)
    print(f"== on {host.destination}, through ssh (pid {remote.task.pid} there) ==")
    await setup_and_report(remote)
    await process.kill()
    await process.waitpid()


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
