"""A tour of rsyscall on the local thread: the Python process itself.

Every system call is a method on the object it acts on, its memory comes
from pointers that know their size, and results come back as new pointers.
Run it: python examples/demo.py
"""

import anyio

from rsyscall import local_thread
from rsyscall.sys.socket import AF, SOCK, CmsgList, CmsgSCMRights, RecvMsghdr, SendMsghdr
from rsyscall.sys.uio import IovecList


async def main() -> None:
    thread = local_thread
    print("our pid, from getpid(2):", await thread.task.getpid())

    # A pipe: pipe2(2) fills a Pointer[Pipe]; reading it gives two fd handles.
    pipe = await thread.pipe()
    print("pipe:", pipe)

    # A socket pair, and the pipe's write end passed across it with SCM_RIGHTS,
    # as a C program would do it with sendmsg(2) and recvmsg(2).
    pair = await thread.socketpair(AF.UNIX, SOCK.STREAM)
    iov = await thread.ptr(IovecList([await thread.ptr(b"!")]))
    control = await thread.ptr(CmsgList([CmsgSCMRights([pipe.write])]))
    await pair.first.sendmsg(await thread.ptr(SendMsghdr(None, iov, control)))

    iov = await thread.ptr(IovecList([await thread.malloc(bytes, 1)]))
    room = await thread.ptr(CmsgList([CmsgSCMRights([pipe.write])]))  # room for one fd
    _, _, header = await pair.second.recvmsg(await thread.ptr(RecvMsghdr(None, iov, room)))
    received = await header.read()
    assert received.control is not None
    passed_fd = (await received.control.read())[0][0]
    print("the pipe's write end arrived as:", passed_fd)

    # Write through the passed fd; read from the pipe.  write(2) returns the
    # part written and the rest; read(2) the part filled and the rest.
    written, _ = await passed_fd.write(await thread.ptr(b"hello through a passed fd"))
    print("wrote", written.size(), "bytes")
    buf = await thread.malloc(bytes, 4096)
    valid, rest = await pipe.read.read(buf)
    print("read back:", await valid.read())
    buf = valid + rest  # merge the halves to reuse the whole buffer
    print("buffer whole again:", buf)


if __name__ == "__main__":
    anyio.run(main)
    anyio.run(main, backend="trio")
