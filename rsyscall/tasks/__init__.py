"""Ways to reach a process: each is a SyscallInterface.

`local`: direct syscalls in the Python process.  Later: `connection`
(requests over a socket to the server loop in another process) and `clone`.
"""
